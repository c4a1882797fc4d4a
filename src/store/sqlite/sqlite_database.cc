#include "store/sqlite/sqlite_database.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/filesystem.h"
#include "store/sqlite/connection.h"

namespace moatless::store {
namespace {

using core::Result;
using core::Status;
using sqlite_internal::Connection;
using sqlite_internal::ConnectionConfig;
using sqlite_internal::Excerpt;
using sqlite_internal::Role;
using sqlite_internal::SqliteError;

constexpr int kMinSqliteVersion = 3035000;  // RETURNING, ALTER TABLE DROP COLUMN
constexpr int kMaxReaders = 64;

// Runs a callable on scope exit.
template <typename F>
class ScopeExit {
 public:
  explicit ScopeExit(F f) : f_(std::move(f)) {}
  ~ScopeExit() { f_(); }
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;

 private:
  F f_;
};

class SqliteTransaction final : public Transaction {
 public:
  SqliteTransaction(Connection& conn, bool read_only) : conn_(conn), read_only_(read_only) {}

  bool read_only() const override { return read_only_; }

  Result<std::int64_t> Exec(std::string_view sql, Params params) override {
    std::int64_t changes = 0;
    RETURN_IF_ERROR(Run(sql, params, nullptr, &changes));
    return changes;
  }

  Result<std::vector<Row>> Query(std::string_view sql, Params params) override {
    std::vector<Row> rows;
    RETURN_IF_ERROR(Run(sql, params, &rows, nullptr));
    return rows;
  }

  Status ExecScript(std::string_view sql) override {
    RETURN_IF_ERROR(CheckUsable());
    return Poison(RunScript(sql));
  }

  // The first statement failure, OK if none.
  const Status& failure() const { return failure_; }

 private:
  Status CheckUsable() const {
    if (failure_.ok()) return Status::Ok();
    return core::AbortedError(
        "an earlier statement of this transaction failed, so it will be rolled back (" +
        failure_.message() + ")");
  }

  Status Poison(Status status) {
    if (!status.ok() && failure_.ok()) failure_ = status;
    // SQLite rolls the transaction back by itself after some errors (I/O, full disk, out of
    // memory); nothing after that point may run outside of it in autocommit mode.
    if (failure_.ok() && !conn_.in_transaction()) {
      failure_ = core::InternalError("sqlite: the transaction ended unexpectedly");
    }
    return status;
  }

  Status Run(std::string_view sql, Params params, std::vector<Row>* rows, std::int64_t* changes) {
    RETURN_IF_ERROR(CheckUsable());
    return Poison(RunStatement(sql, params, rows, changes));
  }

  Status RunStatement(std::string_view sql, Params params, std::vector<Row>* rows,
                      std::int64_t* changes) {
    sqlite3* db = conn_.handle();
    ASSIGN_OR_RETURN(sqlite3_stmt * stmt, conn_.Prepare(sql));
    sqlite_internal::StatementResetter resetter(stmt);
    if (read_only_ && !sqlite3_stmt_readonly(stmt)) {
      return core::FailedPreconditionError("sqlite: " + Excerpt(sql) +
                                           " writes, in a read-only transaction");
    }
    RETURN_IF_ERROR(sqlite_internal::BindParams(stmt, params).Annotate("sqlite: " + Excerpt(sql)));
    std::shared_ptr<const std::vector<std::string>> columns;
    if (rows != nullptr) {
      ASSIGN_OR_RETURN(columns, sqlite_internal::ColumnNames(stmt));
    }
    const sqlite3_int64 total_before = sqlite3_total_changes64(db);
    for (;;) {
      const int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return SqliteError(rc, db, "running " + Excerpt(sql));
      if (rows != nullptr) {
        ASSIGN_OR_RETURN(std::vector<Value> values, sqlite_internal::ReadColumns(stmt));
        rows->emplace_back(columns, std::move(values));
      }
    }
    if (changes != nullptr) {
      // sqlite3_changes keeps the count of the last INSERT/UPDATE/DELETE; a statement that
      // changed nothing (DDL, SELECT, a no-op) must report 0, not that stale count.
      *changes = sqlite3_total_changes64(db) != total_before ? sqlite3_changes64(db) : 0;
    }
    return Status::Ok();
  }

  Status RunScript(std::string_view sql) {
    sqlite3* db = conn_.handle();
    if (sql.size() >= static_cast<std::size_t>(INT_MAX)) {
      return core::InvalidArgumentError("sqlite: script too long");
    }
    const char* p = sql.data();
    const char* const end = sql.data() + sql.size();
    while (p < end) {
      sqlite3_stmt* stmt = nullptr;
      const char* tail = nullptr;
      const int prc = sqlite3_prepare_v3(db, p, static_cast<int>(end - p), 0, &stmt, &tail);
      const std::string_view text(p, static_cast<std::size_t>((tail != nullptr ? tail : end) - p));
      if (prc != SQLITE_OK) {
        Status status = SqliteError(prc, db, "preparing " + Excerpt(text));
        if ((prc & 0xff) == SQLITE_ERROR) return core::InvalidArgumentError(status.message());
        return status;
      }
      std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(stmt, sqlite3_finalize);
      if (tail == nullptr || tail == p) break;
      p = tail;
      if (stmt == nullptr) continue;  // only whitespace or comments
      RETURN_IF_ERROR(sqlite_internal::CheckStatementForTransaction(stmt));
      if (sqlite3_bind_parameter_count(stmt) != 0) {
        return core::InvalidArgumentError("sqlite: " + Excerpt(text) +
                                          ": script statements take no parameters");
      }
      if (read_only_ && !sqlite3_stmt_readonly(stmt)) {
        return core::FailedPreconditionError("sqlite: " + Excerpt(text) +
                                             " writes, in a read-only transaction");
      }
      int rc;
      while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      }
      if (rc != SQLITE_DONE) return SqliteError(rc, db, "running " + Excerpt(text));
    }
    return Status::Ok();
  }

  Connection& conn_;
  const bool read_only_;
  Status failure_;
};

// Runs fn in one transaction on conn: BEGIN, fn, COMMIT iff everything succeeded, else ROLLBACK.
Status RunTransaction(Connection& conn, bool read_only, const TransactionFn& fn) {
  if (conn.in_transaction()) {
    // Left open by an earlier transaction that was interrupted (an exception between BEGIN and
    // COMMIT outside fn): never let this one build on top of it.
    const Status rollback = conn.ExecInternal("ROLLBACK", "rolling back a stale transaction");
    if (!rollback.ok() || conn.in_transaction()) {
      conn.MarkBroken();
      return core::UnavailableError(
          "sqlite: the connection was left inside a transaction; retry the transaction");
    }
  }
  RETURN_IF_ERROR(conn.ExecInternal(read_only ? "BEGIN DEFERRED" : "BEGIN IMMEDIATE",
                                    "beginning a transaction"));
  Status status;
  {
    SqliteTransaction tx(conn, read_only);
    try {
      status = fn(tx);
    } catch (const std::exception& e) {
      status = core::InternalError(std::string("exception in a transaction: ") + e.what());
    } catch (...) {
      status = core::InternalError("unknown exception in a transaction");
    }
    if (status.ok()) status = tx.failure();
  }
  if (status.ok()) {
    status = conn.ExecInternal("COMMIT", "committing");
    if (status.ok()) return status;
  }
  if (conn.in_transaction()) {
    const Status rollback = conn.ExecInternal("ROLLBACK", "rolling back");
    if (!rollback.ok() || conn.in_transaction()) conn.MarkBroken();
  }
  return status;
}

class SqliteDatabase final : public Database {
 public:
  SqliteDatabase(ConnectionConfig writer_config, ConnectionConfig reader_config, int readers,
                 std::unique_ptr<Connection> writer)
      : writer_config_(std::move(writer_config)),
        reader_config_(std::move(reader_config)),
        max_readers_(readers),
        writer_(std::move(writer)),
        free_reader_slots_(readers) {
    // Giving a reader back (in a scope guard) must not allocate.
    idle_readers_.reserve(static_cast<std::size_t>(readers));
  }

  ~SqliteDatabase() override { Close().IgnoreError(); }

  Status Transact(const TransactionOptions& options, const TransactionFn& fn) override {
    try {
      if (options.access == Access::kReadOnly) return ReadTransaction(fn);
      return WriteTransaction(options.durability, fn);
    } catch (const std::exception& e) {
      // Only our own allocations can get here (fn's exceptions are caught around fn).
      return core::InternalError(std::string("sqlite: ") + e.what());
    } catch (...) {
      return core::InternalError("sqlite: unknown exception");
    }
  }

  Status Close() override {
    if (writer_thread_.load() == std::this_thread::get_id()) {
      return core::FailedPreconditionError("sqlite: Close called inside a write transaction");
    }
    std::lock_guard writer_lock(writer_mu_);
    std::unique_lock readers_lock(readers_mu_);
    if (closed_) return Status::Ok();
    closed_ = true;
    readers_cv_.notify_all();
    // Wait for running read-only transactions; new ones now see closed_.
    readers_cv_.wait(readers_lock, [&] { return free_reader_slots_ == max_readers_; });
    idle_readers_.clear();  // readers first, so the writer is the last connection
    if (writer_ == nullptr) return Status::Ok();
    Status status = writer_->Checkpoint();
    writer_.reset();  // the last connection to close removes the -wal and -shm files
    return status;
  }

  std::string_view backend_name() const override { return "sqlite"; }

 private:
  Status WriteTransaction(Durability durability, const TransactionFn& fn) {
    if (writer_thread_.load() == std::this_thread::get_id()) {
      return core::FailedPreconditionError(
          "sqlite: Transact called inside a write transaction on the same thread (it would "
          "deadlock); nest no transactions");
    }
    std::lock_guard lock(writer_mu_);
    if (closed_) return core::FailedPreconditionError("sqlite: the database is closed");
    if (writer_ == nullptr || writer_->broken()) {
      writer_.reset();
      ASSIGN_OR_RETURN(writer_, Connection::Open(writer_config_));
    }
    writer_thread_.store(std::this_thread::get_id());
    ScopeExit clear_owner([&] { writer_thread_.store(std::thread::id()); });
    RETURN_IF_ERROR(writer_->SetDurability(durability));
    return RunTransaction(*writer_, /*read_only=*/false, fn);
  }

  Status ReadTransaction(const TransactionFn& fn) {
    std::unique_ptr<Connection> conn;
    {
      std::unique_lock lock(readers_mu_);
      readers_cv_.wait(lock, [&] { return closed_ || free_reader_slots_ > 0; });
      if (closed_) return core::FailedPreconditionError("sqlite: the database is closed");
      --free_reader_slots_;
      if (!idle_readers_.empty()) {
        conn = std::move(idle_readers_.back());
        idle_readers_.pop_back();
      }
    }
    ScopeExit give_back([&] {
      std::lock_guard lock(readers_mu_);
      if (conn != nullptr && !conn->broken()) idle_readers_.push_back(std::move(conn));
      ++free_reader_slots_;
      readers_cv_.notify_all();
    });
    if (conn == nullptr) {
      ASSIGN_OR_RETURN(conn, Connection::Open(reader_config_));
    }
    return RunTransaction(*conn, /*read_only=*/true, fn);
  }

  const ConnectionConfig writer_config_;
  const ConnectionConfig reader_config_;
  const int max_readers_;

  std::mutex writer_mu_;  // held for the whole of a write transaction; before readers_mu_
  std::unique_ptr<Connection> writer_;            // guarded by writer_mu_; reopened if broken
  std::atomic<std::thread::id> writer_thread_{};  // the thread inside a write transaction

  std::mutex readers_mu_;
  std::condition_variable readers_cv_;
  int free_reader_slots_;                                  // guarded by readers_mu_
  std::vector<std::unique_ptr<Connection>> idle_readers_;  // guarded by readers_mu_
  bool closed_ = false;  // written with both mutexes held, read with either
};

// Creates the folder (0700) and the database file (0600) if missing; refuses links and
// non-regular files.
Status PrepareDatabaseFile(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash != std::string::npos && slash != 0) {
    RETURN_IF_ERROR(core::RealFileSystem().MakeDirs(path.substr(0, slash), 0700));
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == ELOOP) {
      return core::FailedPreconditionError(path + " is a symbolic link; refusing to open it");
    }
    if (errno == EISDIR) return core::FailedPreconditionError(path + " is a folder");
    return core::ErrnoStatus("open " + path, errno);
  }
  struct stat st {};
  const int rc = ::fstat(fd, &st);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return core::ErrnoStatus("stat " + path, err);
  if (!S_ISREG(st.st_mode)) return core::FailedPreconditionError(path + " is not a regular file");
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Database>> OpenSqlite(const std::string& path,
                                             const SqliteOptions& options) {
  if (options.clock == nullptr) return core::InvalidArgumentError("OpenSqlite: no clock");
  if (path.empty() || path == ":memory:" || path.starts_with("file:")) {
    return core::InvalidArgumentError("OpenSqlite: '" + path +
                                      "' is not a path to a database file");
  }
  if (options.reader_connections < 1 || options.reader_connections > kMaxReaders) {
    return core::InvalidArgumentError("OpenSqlite: reader_connections must be 1.." +
                                      std::to_string(kMaxReaders));
  }
  if (sqlite3_libversion_number() < kMinSqliteVersion) {
    return core::FailedPreconditionError(std::string("SQLite ") + sqlite3_libversion() +
                                         " is too old; 3.35 or newer is needed");
  }
  RETURN_IF_ERROR(ValidateMigrations(options.migrations));
  RETURN_IF_ERROR(PrepareDatabaseFile(path));

  ConnectionConfig writer_config{.path = path,
                                 .role = Role::kWriter,
                                 .busy_timeout = options.busy_timeout,
                                 .statement_cache_size = options.statement_cache_size};
  ConnectionConfig reader_config = writer_config;
  reader_config.role = Role::kReader;
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer, Connection::Open(writer_config));
  auto db = std::make_unique<SqliteDatabase>(std::move(writer_config), std::move(reader_config),
                                             options.reader_connections, std::move(writer));
  RETURN_IF_ERROR(
      ApplyMigrations(*db, options.migrations, *options.clock).Annotate("opening " + path));
  return std::unique_ptr<Database>(std::move(db));
}

Status CheckSqliteIntegrity(Database& db) {
  if (db.backend_name() != "sqlite") {
    return core::InvalidArgumentError("CheckSqliteIntegrity: not an SQLite database");
  }
  return db.Read([](Transaction& tx) -> Status {
    ASSIGN_OR_RETURN(std::vector<Row> rows, tx.Query("PRAGMA integrity_check"));
    std::string problems;
    for (std::size_t i = 0; i < rows.size() && i < 10; ++i) {
      ASSIGN_OR_RETURN(std::string line, rows[i].values().empty()
                                             ? Result<std::string>(std::string())
                                             : rows[i].values()[0].AsText());
      if (rows.size() == 1 && line == "ok") return Status::Ok();
      problems += (problems.empty() ? "" : "; ") + line;
    }
    return core::InternalError("sqlite: integrity check failed: " + problems);
  });
}

}  // namespace moatless::store
