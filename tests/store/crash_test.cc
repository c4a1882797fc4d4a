// The store survives kill -9 during a write transaction with nothing acknowledged lost.
//
// One database, many lives: each round starts store_crash_writer on it, waits until it has
// acknowledged a random number of durable transactions, waits a random further moment (the
// writer commits back to back, so the kill usually lands inside a transaction or its fsync),
// kills it with SIGKILL, then reopens the database and checks that it is intact, that every
// acknowledged transaction is there, that no transaction is half applied, and that writing
// continues. The seed is printed; MOATLESS_CRASH_SEED=<n> replays a run.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/process.h"
#include "crash_schema.h"
#include "store/sqlite/sqlite_database.h"

namespace moatless::store::crash {
namespace {

using core::Result;
using core::Status;

constexpr int kRounds = 20;
// Only a guard against a hang (a writer that never acks); no assertion depends on timing.
constexpr auto kAckWaitLimit = std::chrono::seconds(30);

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The N of every complete "ack N" line (a line cut short by the kill is not an acknowledgement).
std::set<std::int64_t> ParseAcks(const std::string& out) {
  std::set<std::int64_t> acks;
  std::size_t pos = 0;
  for (;;) {
    const auto nl = out.find('\n', pos);
    if (nl == std::string::npos) break;
    const std::string line = out.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind("ack ", 0) == 0) acks.insert(std::stoll(line.substr(4)));
  }
  return acks;
}

struct Contents {
  std::set<std::int64_t> a, b;
  std::int64_t progress = -1;
  std::int64_t bad_payloads = 0;
  std::int64_t bad_checksums = 0;
};

Result<Contents> ReadContents(Database& db) {
  return TransactValue(db, {.access = Access::kReadOnly}, [](Transaction& tx) -> Result<Contents> {
    Contents c;
    ASSIGN_OR_RETURN(std::vector<Row> a, tx.Query("SELECT n, payload FROM a ORDER BY n"));
    for (const Row& row : a) {
      ASSIGN_OR_RETURN(std::int64_t n, row.GetInt("n"));
      ASSIGN_OR_RETURN(Blob payload, row.GetBlob("payload"));
      if (payload != Payload(n)) ++c.bad_payloads;
      c.a.insert(n);
    }
    ASSIGN_OR_RETURN(std::vector<Row> b, tx.Query("SELECT n, checksum FROM b ORDER BY n"));
    for (const Row& row : b) {
      ASSIGN_OR_RETURN(std::int64_t n, row.GetInt("n"));
      ASSIGN_OR_RETURN(std::int64_t checksum, row.GetInt("checksum"));
      if (checksum != Checksum(Payload(n))) ++c.bad_checksums;
      c.b.insert(n);
    }
    ASSIGN_OR_RETURN(Row progress, tx.QueryOne("SELECT last FROM progress WHERE id = 1"));
    ASSIGN_OR_RETURN(c.progress, progress.GetInt("last"));
    return c;
  });
}

class StoreCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir();
    if (tmpl.empty() || tmpl.back() != '/') tmpl += '/';
    tmpl += "moatless-crash-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    db_path_ = dir_ + "/data/crash.db";
  }
  void TearDown() override {
    std::error_code ignored;
    if (!HasFailure()) std::filesystem::remove_all(dir_, ignored);  // kept for a post-mortem
  }

  core::RealClock clock_;
  core::RealProcessLauncher launcher_;
  std::string dir_;
  std::string db_path_;
};

TEST_F(StoreCrashTest, KillDuringWriteTransactionsLosesNothingAcknowledged) {
  std::uint32_t seed = std::random_device()();
  if (const char* forced = std::getenv("MOATLESS_CRASH_SEED")) {
    seed = static_cast<std::uint32_t>(std::strtoul(forced, nullptr, 10));
  }
  std::cout << "MOATLESS_CRASH_SEED=" << seed << std::endl;
  SCOPED_TRACE("MOATLESS_CRASH_SEED=" + std::to_string(seed) + ", files in " + dir_);
  std::mt19937 random(seed);

  std::int64_t total_acked = 0;
  std::int64_t unacked_commits = 0;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string out_path = dir_ + "/writer-" + std::to_string(round) + ".out";
    const std::string err_path = dir_ + "/writer-" + std::to_string(round) + ".err";
    const int wanted_acks = std::uniform_int_distribution<int>(1, 40)(random);
    const auto extra_delay =
        std::chrono::microseconds(std::uniform_int_distribution<int>(0, 4000)(random));

    auto child = launcher_.Launch({.argv = {MOATLESS_STORE_CRASH_WRITER, db_path_},
                                   .stdout_path = out_path,
                                   .stderr_path = err_path});
    ASSERT_TRUE(child.ok()) << child.status();

    // Wait for the acknowledgements (polling the output file), then a little longer, then kill.
    const auto give_up = std::chrono::steady_clock::now() + kAckWaitLimit;
    for (;;) {
      if (ParseAcks(ReadWholeFile(out_path)).size() >= static_cast<std::size_t>(wanted_acks)) break;
      const Result<int> exited = (*child)->WaitFor(std::chrono::milliseconds(0));
      ASSERT_FALSE(exited.ok()) << "the writer exited early with " << *exited << ": "
                                << ReadWholeFile(err_path);
      ASSERT_LT(std::chrono::steady_clock::now(), give_up)
          << "the writer acknowledged nothing for too long: " << ReadWholeFile(err_path);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(extra_delay);
    ASSERT_TRUE((*child)->Signal(SIGKILL).ok());
    const Result<int> exit_code = (*child)->Wait();
    ASSERT_TRUE(exit_code.ok()) << exit_code.status();
    EXPECT_EQ(*exit_code, 128 + SIGKILL) << ReadWholeFile(err_path);

    const std::set<std::int64_t> acks = ParseAcks(ReadWholeFile(out_path));
    ASSERT_GE(acks.size(), static_cast<std::size_t>(wanted_acks));
    total_acked += static_cast<std::int64_t>(acks.size());

    // Reopen after the crash: recovery, integrity, and the data.
    auto db = OpenSqlite(db_path_, {.clock = &clock_, .migrations = kMigrations});
    ASSERT_TRUE(db.ok()) << db.status();
    const Status integrity = CheckSqliteIntegrity(**db);
    ASSERT_TRUE(integrity.ok()) << integrity;
    const Result<Contents> contents = ReadContents(**db);
    ASSERT_TRUE(contents.ok()) << contents.status();
    const Contents& c = *contents;

    for (std::int64_t n : acks) ASSERT_TRUE(c.a.contains(n)) << "acknowledged " << n << " lost";
    EXPECT_EQ(c.a, c.b) << "a transaction was half applied";
    EXPECT_EQ(c.bad_payloads, 0);
    EXPECT_EQ(c.bad_checksums, 0);
    ASSERT_FALSE(c.a.empty());
    // Transactions are numbered 1, 2, 3, ... without holes, and progress agrees.
    EXPECT_EQ(*c.a.begin(), 1);
    EXPECT_EQ(*c.a.rbegin(), static_cast<std::int64_t>(c.a.size()));
    EXPECT_EQ(c.progress, *c.a.rbegin());
    // At most the one transaction in flight at the kill committed without its ack.
    const std::int64_t max_ack = *acks.rbegin();
    EXPECT_GE(*c.a.rbegin(), max_ack);
    EXPECT_LE(*c.a.rbegin(), max_ack + 1);
    unacked_commits += *c.a.rbegin() - max_ack;

    // Writing continues after the crash.
    const std::int64_t next = *c.a.rbegin() + 1;
    const Status write = (*db)->Write([&](Transaction& tx) -> Status {
      const Blob payload = Payload(next);
      RETURN_IF_ERROR(tx.Exec("INSERT INTO a (n, payload) VALUES (?, ?)", {next, payload}));
      RETURN_IF_ERROR(
          tx.Exec("INSERT INTO b (n, checksum) VALUES (?, ?)", {next, Checksum(payload)}));
      return tx.Exec("UPDATE progress SET last = ? WHERE id = 1", {next}).status();
    });
    ASSERT_TRUE(write.ok()) << write;
    ASSERT_TRUE((*db)->Close().ok());
    if (HasFatalFailure()) return;
  }
  std::cout << "acknowledged " << total_acked << " transactions over " << kRounds << " kills; "
            << unacked_commits << " kills fell after a commit and before its ack" << std::endl;
}

}  // namespace
}  // namespace moatless::store::crash
