// SQLite-specific behaviour of the backend; what every backend must do is in the conformance
// suite (store/conformance/).
#include "store/sqlite/sqlite_database.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/clock.h"
#include "store/conformance/conformance.h"

namespace moatless::store {
namespace {

using core::Result;
using core::Status;
using core::StatusCode;

const Migration kSchema[] = {
    {1, "create_counters",
     "CREATE TABLE counters (name TEXT PRIMARY KEY NOT NULL, n BIGINT NOT NULL)"},
};

int ModeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 0777);
}

class SqliteDatabaseTest : public ::testing::Test {
 protected:
  ~SqliteDatabaseTest() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  SqliteOptions Options() const { return {.clock = &clock_, .migrations = kSchema}; }

  std::unique_ptr<Database> OpenOrDie(SqliteOptions options) {
    Result<std::unique_ptr<Database>> db = OpenSqlite(path_, options);
    MOATLESS_CHECK(db.ok(), db.status().ToString());
    return std::move(db).value();
  }

  Result<std::int64_t> Synchronous(Database& db, Durability durability) {
    return TransactValue(db, {.durability = durability},
                         [](Transaction& tx) -> Result<std::int64_t> {
                           ASSIGN_OR_RETURN(Row row, tx.QueryOne("PRAGMA synchronous"));
                           return row.values().at(0).AsInt();
                         });
  }

  core::RealClock clock_;
  const std::string dir_ = conformance::MakeTestDir();
  const std::string path_ = dir_ + "/data/store.db";
};

TEST_F(SqliteDatabaseTest, CreatesPrivateFilesInAPrivateFolder) {
  auto db = OpenOrDie(Options());
  EXPECT_EQ(ModeOf(dir_ + "/data"), 0700);
  EXPECT_EQ(ModeOf(path_), 0600);
  EXPECT_EQ(ModeOf(path_ + "-wal"), 0600);
  EXPECT_EQ(ModeOf(path_ + "-shm"), 0600);
  EXPECT_EQ(db->backend_name(), "sqlite");
  ASSERT_OK(CheckSqliteIntegrity(*db));
}

TEST_F(SqliteDatabaseTest, UsesWriteAheadLogAndForeignKeys) {
  auto db = OpenOrDie(Options());
  ASSERT_OK(db->Write([](Transaction& tx) -> Status {
    ASSIGN_OR_RETURN(Row mode, tx.QueryOne("PRAGMA journal_mode"));
    EXPECT_EQ(mode.values().at(0), Value("wal"));
    ASSIGN_OR_RETURN(Row fk, tx.QueryOne("PRAGMA foreign_keys"));
    EXPECT_EQ(fk.values().at(0), Value(1));
    return Status::Ok();
  }));
}

TEST_F(SqliteDatabaseTest, CloseCheckpointsAndRemovesTheLog) {
  auto db = OpenOrDie(Options());
  ASSERT_OK(db->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)", {"a", 1}).status();
  }));
  ASSERT_OK(db->Read([](Transaction& tx) { return tx.Query("SELECT * FROM counters").status(); }));
  ASSERT_OK(db->Close());
  EXPECT_FALSE(std::filesystem::exists(path_ + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(path_ + "-shm"));
  // Everything is in the main file: a plain read-only open sees the row.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT COUNT(*) FROM counters", -1, &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), 1);
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
}

TEST_F(SqliteDatabaseTest, DurabilityIsSetPerWriteTransaction) {
  auto db = OpenOrDie(Options());
  constexpr std::int64_t kFull = 2, kNormal = 1;
  EXPECT_EQ(Synchronous(*db, Durability::kDurable).value(), kFull);
  EXPECT_EQ(Synchronous(*db, Durability::kNormal).value(), kNormal);
  EXPECT_EQ(Synchronous(*db, Durability::kNormal).value(), kNormal);
  EXPECT_EQ(Synchronous(*db, Durability::kDurable).value(), kFull);
}

TEST_F(SqliteDatabaseTest, RefusesBadOptionsAndPaths) {
  SqliteOptions no_clock = Options();
  no_clock.clock = nullptr;
  EXPECT_STATUS_CODE(OpenSqlite(path_, no_clock), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(OpenSqlite(":memory:", Options()), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(OpenSqlite("file:x.db?mode=memory", Options()), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(OpenSqlite("", Options()), StatusCode::kInvalidArgument);
  SqliteOptions no_readers = Options();
  no_readers.reader_connections = 0;
  EXPECT_STATUS_CODE(OpenSqlite(path_, no_readers), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(OpenSqlite(dir_, Options()), StatusCode::kFailedPrecondition);  // a folder
}

TEST_F(SqliteDatabaseTest, RefusesASymbolicLink) {
  const std::string target = dir_ + "/real.db";
  { auto db = OpenOrDie({.clock = &clock_, .migrations = kSchema}); }
  std::filesystem::rename(path_, target);
  std::filesystem::create_symlink(target, path_);
  EXPECT_STATUS_CODE(OpenSqlite(path_, Options()), StatusCode::kFailedPrecondition);
}

TEST_F(SqliteDatabaseTest, ForeignFileIsInternalNotACrash) {
  std::filesystem::create_directories(dir_ + "/data");
  {
    std::ofstream out(path_, std::ios::binary);
    out << std::string(8192, 'x');
  }
  const Result<std::unique_ptr<Database>> db = OpenSqlite(path_, Options());
  EXPECT_STATUS_CODE(db, StatusCode::kInternal);
  EXPECT_NE(db.status().message().find("not an SQLite database"), std::string::npos) << db.status();
}

TEST_F(SqliteDatabaseTest, CorruptionIsInternalNotACrash) {
  {
    auto db = OpenOrDie(Options());
    ASSERT_OK(db->Write([](Transaction& tx) -> Status {
      for (int i = 0; i < 2000; ++i) {
        RETURN_IF_ERROR(tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)",
                                {"counter-" + std::to_string(i) + std::string(50, 'p'), i}));
      }
      return Status::Ok();
    }));
    ASSERT_OK(db->Close());
  }
  // Scribble over every page but the first (the header stays valid, the b-trees do not).
  {
    std::fstream file(path_, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(0, std::ios::end);
    const auto size = static_cast<std::size_t>(file.tellg());
    ASSERT_GT(size, 3 * 4096u);
    std::string garbage("\xff\x00\xff\x13", 4);
    garbage.resize(64, 'g');
    for (std::size_t offset = 4096; offset + garbage.size() <= size; offset += 512) {
      file.seekp(static_cast<std::streamoff>(offset));
      file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    }
  }
  Result<std::unique_ptr<Database>> db = OpenSqlite(path_, Options());
  if (!db.ok()) {
    EXPECT_STATUS_CODE(db, StatusCode::kInternal);
    return;
  }
  const Status scan = (*db)->Read(
      [](Transaction& tx) { return tx.Query("SELECT name, n FROM counters ORDER BY n").status(); });
  EXPECT_STATUS_CODE(scan, StatusCode::kInternal);
  EXPECT_STATUS_CODE(CheckSqliteIntegrity(**db), StatusCode::kInternal);
}

TEST_F(SqliteDatabaseTest, LockHeldByAnotherConnectionIsUnavailable) {
  SqliteOptions options = Options();
  options.busy_timeout = std::chrono::milliseconds(20);
  auto db = OpenOrDie(options);
  // Another process (here: a raw connection) holds the write lock.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &other, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  const Status busy = db->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)", {"a", 1}).status();
  });
  EXPECT_STATUS_CODE(busy, StatusCode::kUnavailable);
  EXPECT_NE(busy.message().find("retry"), std::string::npos) << busy;
  // Readers are not blocked by a writer.
  ASSERT_OK(db->Read([](Transaction& tx) { return tx.Query("SELECT * FROM counters").status(); }));
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  ASSERT_OK(db->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)", {"a", 1}).status();
  }));
}

TEST_F(SqliteDatabaseTest, TwoProcessesSharingTheFileLoseNoUpdate) {
  auto first = OpenOrDie(Options());
  auto second = OpenOrDie(Options());  // as another process would: its own pool
  ASSERT_OK(first->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)", {"shared", 0}).status();
  }));
  constexpr int kIncrements = 30;
  auto work = [&](Database* db) {
    for (int i = 0; i < kIncrements; ++i) {
      EXPECT_OK(db->Write([](Transaction& tx) -> Status {
        ASSIGN_OR_RETURN(Row row, tx.QueryOne("SELECT n FROM counters WHERE name = 'shared'"));
        ASSIGN_OR_RETURN(std::int64_t n, row.GetInt("n"));
        return tx.Exec("UPDATE counters SET n = ? WHERE name = 'shared'", {n + 1}).status();
      }));
    }
  };
  std::thread a(work, first.get());
  std::thread b(work, second.get());
  a.join();
  b.join();
  ASSERT_OK(second->Read([](Transaction& tx) -> Status {
    ASSIGN_OR_RETURN(Row row, tx.QueryOne("SELECT n FROM counters WHERE name = 'shared'"));
    EXPECT_EQ(row.GetInt("n").value(), 2 * kIncrements);
    return Status::Ok();
  }));
}

TEST_F(SqliteDatabaseTest, NestedWriteTransactionIsRefusedNotADeadlock) {
  auto db = OpenOrDie(Options());
  Status nested;
  ASSERT_OK(db->Write([&](Transaction& tx) -> Status {
    RETURN_IF_ERROR(tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)", {"outer", 1}));
    nested = db->Write([](Transaction&) { return Status::Ok(); });
    EXPECT_STATUS_CODE(db->Close(), StatusCode::kFailedPrecondition);
    return Status::Ok();
  }));
  EXPECT_STATUS_CODE(nested, StatusCode::kFailedPrecondition);
  ASSERT_OK(db->Read([](Transaction& tx) -> Status {
    ASSIGN_OR_RETURN(Row row, tx.QueryOne("SELECT COUNT(*) AS n FROM counters"));
    EXPECT_EQ(row.GetInt("n").value(), 1);
    return Status::Ok();
  }));
}

TEST_F(SqliteDatabaseTest, SmallStatementCacheEvictsAndStillWorks) {
  SqliteOptions options = Options();
  options.statement_cache_size = 2;
  options.reader_connections = 1;
  auto db = OpenOrDie(options);
  for (int round = 0; round < 3; ++round) {
    ASSERT_OK(db->Write([&](Transaction& tx) -> Status {
      for (int i = 0; i < 10; ++i) {
        // Ten distinct statements through a cache of two.
        const std::string sql =
            "INSERT INTO counters (name, n) VALUES (?, ?) ON CONFLICT (name) "
            "DO UPDATE SET n = counters.n + " +
            std::to_string(i);
        RETURN_IF_ERROR(tx.Exec(sql, {"c" + std::to_string(i), 0}));
      }
      return Status::Ok();
    }));
  }
  ASSERT_OK(db->Read([](Transaction& tx) -> Status {
    ASSIGN_OR_RETURN(Row row, tx.QueryOne("SELECT CAST(SUM(n) AS BIGINT) AS total FROM counters"));
    EXPECT_EQ(row.GetInt("total").value(), 2 * 45);  // rounds 2 and 3 add i to counter i
    return Status::Ok();
  }));
}

TEST_F(SqliteDatabaseTest, ScriptsTakeNoParametersAndRespectReadOnly) {
  auto db = OpenOrDie(Options());
  EXPECT_STATUS_CODE(db->Write([](Transaction& tx) {
    return tx.ExecScript("INSERT INTO counters (name, n) VALUES (?, 1)");
  }),
                     StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(db->Read([](Transaction& tx) {
    return tx.ExecScript("SELECT 1; INSERT INTO counters (name, n) VALUES ('x', 1);");
  }),
                     StatusCode::kFailedPrecondition);
  EXPECT_STATUS_CODE(db->Write([](Transaction& tx) {
    return tx.ExecScript("CREATE TABLE t (x BIGINT); COMMIT;");
  }),
                     StatusCode::kInvalidArgument);
  ASSERT_OK(db->Write([](Transaction& tx) {
    return tx.ExecScript("CREATE TABLE t (x BIGINT);\n-- comment\nINSERT INTO t (x) VALUES (1);;");
  }));
}

}  // namespace
}  // namespace moatless::store
