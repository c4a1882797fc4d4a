// Store micro-benchmarks: what one durable write, one relaxed write and one read transaction
// cost on the SQLite backend (on this machine's disk; fsync dominates the durable case).
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <array>

#include "core/clock.h"
#include "store/sqlite/sqlite_database.h"

namespace moatless::store {
namespace {

const std::array<Migration, 1> kMigrations = {{
    {1, "create_kv", "CREATE TABLE kv (k BIGINT PRIMARY KEY, v TEXT NOT NULL)"},
}};

class StoreFixture : public benchmark::Fixture {
 public:
  void SetUp(const benchmark::State&) override {
    char tmpl[] = "/tmp/moatless-bench-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    auto db = OpenSqlite(dir_ + "/bench.db", {.clock = &clock_, .migrations = kMigrations});
    if (!db.ok()) std::abort();
    db_ = std::move(db).value();
  }
  void TearDown(const benchmark::State&) override {
    (void)db_->Close();
    db_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

 protected:
  core::FakeClock clock_;
  std::string dir_;
  std::unique_ptr<Database> db_;
};

BENCHMARK_DEFINE_F(StoreFixture, WriteDurable)(benchmark::State& state) {
  std::int64_t k = 0;
  for (auto _ : state) {
    const core::Status s = db_->Write([&](Transaction& tx) {
      return tx.Exec("INSERT INTO kv (k, v) VALUES (?, ?)", {++k, "value"}).status();
    });
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
}
BENCHMARK_REGISTER_F(StoreFixture, WriteDurable)->UseRealTime();

BENCHMARK_DEFINE_F(StoreFixture, WriteNormal)(benchmark::State& state) {
  std::int64_t k = 0;
  for (auto _ : state) {
    const core::Status s = db_->Write(
        [&](Transaction& tx) {
          return tx.Exec("INSERT INTO kv (k, v) VALUES (?, ?)", {++k, "value"}).status();
        },
        Durability::kNormal);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
}
BENCHMARK_REGISTER_F(StoreFixture, WriteNormal)->UseRealTime();

BENCHMARK_DEFINE_F(StoreFixture, ReadOneRow)(benchmark::State& state) {
  (void)db_->Write(
      [](Transaction& tx) { return tx.Exec("INSERT INTO kv (k, v) VALUES (1, 'one')").status(); });
  for (auto _ : state) {
    const core::Status s = db_->Read([](Transaction& tx) {
      return tx.QueryOne("SELECT v FROM kv WHERE k = ?", {std::int64_t{1}}).status();
    });
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
}
BENCHMARK_REGISTER_F(StoreFixture, ReadOneRow)->UseRealTime();

}  // namespace
}  // namespace moatless::store

BENCHMARK_MAIN();
