// store_crash_writer <database> [count]: writes transactions N = last+1, last+2, ... into the
// crash-test schema (crash_schema.h), each durable, and prints "ack N" on stdout (flushed) only
// after Transact returned OK. Runs until killed, or until `count` transactions are written.
// Exit status 1 with a message on stderr if anything fails.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/clock.h"
#include "crash_schema.h"
#include "store/sqlite/sqlite_database.h"

namespace moatless::store::crash {
namespace {

int Fail(const core::Status& status) {
  std::fprintf(stderr, "store_crash_writer: %s\n", status.ToString().c_str());
  return 1;
}

int Main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: store_crash_writer <database> [count]\n");
    return 2;
  }
  const long long count = argc == 3 ? std::atoll(argv[2]) : -1;
  core::RealClock clock;
  auto db = OpenSqlite(argv[1], {.clock = &clock, .migrations = kMigrations});
  if (!db.ok()) return Fail(db.status());

  auto last = TransactValue(
      **db, {.access = Access::kReadOnly}, [](Transaction& tx) -> core::Result<std::int64_t> {
        ASSIGN_OR_RETURN(Row row, tx.QueryOne("SELECT last FROM progress WHERE id = 1"));
        return row.GetInt("last");
      });
  if (!last.ok()) return Fail(last.status());

  for (std::int64_t n = *last + 1; count < 0 || n <= *last + count; ++n) {
    const Blob payload = Payload(n);
    const core::Status status = (*db)->Write([&](Transaction& tx) -> core::Status {
      RETURN_IF_ERROR(tx.Exec("INSERT INTO a (n, payload) VALUES (?, ?)", {n, payload}));
      RETURN_IF_ERROR(tx.Exec("INSERT INTO b (n, checksum) VALUES (?, ?)", {n, Checksum(payload)}));
      ASSIGN_OR_RETURN(
          std::int64_t updated,
          tx.Exec("UPDATE progress SET last = ? WHERE id = 1 AND last = ?", {n, n - 1}));
      if (updated != 1) return core::InternalError("progress is not at " + std::to_string(n - 1));
      return core::Status::Ok();
    });
    if (!status.ok()) return Fail(status);
    std::printf("ack %lld\n", static_cast<long long>(n));
    std::fflush(stdout);
  }
  const core::Status closed = (*db)->Close();
  if (!closed.ok()) return Fail(closed);
  return 0;
}

}  // namespace
}  // namespace moatless::store::crash

int main(int argc, char** argv) { return moatless::store::crash::Main(argc, argv); }
