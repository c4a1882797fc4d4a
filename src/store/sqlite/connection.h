// Connection: one SQLite connection of the SQLite backend (internal to store_sqlite), with its
// configuration, its prepared-statement cache and the mapping of SQLite result codes to Status.
//
// A Connection is used by one thread at a time (the pool in sqlite_database.cc hands it out; the
// connection is opened in SQLite's multi-thread mode, without its own mutex). It owns the sqlite3
// handle and every cached statement, and closes them on destruction.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "store/database.h"
#include "store/value.h"

namespace moatless::store::sqlite_internal {

enum class Role {
  kWriter,  // the one connection that writes: WAL set up here, synchronous per transaction
  kReader,  // query_only; read-only transactions
};

struct ConnectionConfig {
  std::string path;
  Role role = Role::kReader;
  std::chrono::milliseconds busy_timeout{5000};
  std::size_t statement_cache_size = 64;
};

// Maps an SQLite result code (primary or extended) to a Status whose message starts with
// "sqlite: <context>: " and carries SQLite's message for `db` if it describes `rc`.
core::Status SqliteError(int rc, sqlite3* db, std::string_view context);

// The first 80 characters of a statement, whitespace collapsed, for error messages (statements
// are code: parameter values are never part of them).
std::string Excerpt(std::string_view sql);

class Connection {
 public:
  static core::Result<std::unique_ptr<Connection>> Open(const ConnectionConfig& config);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* handle() const { return db_; }
  Role role() const { return role_; }

  // A prepared statement for `sql`, which must hold exactly one statement that may run inside a
  // transaction (no BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE/ATTACH/DETACH) and whose parameters
  // are all anonymous `?`. Cached (LRU); the caller resets it after use and must not keep it
  // across another Prepare call.
  core::Result<sqlite3_stmt*> Prepare(std::string_view sql);

  // Runs a fixed internal statement without parameters (BEGIN, COMMIT, PRAGMA x = y).
  core::Status ExecInternal(const char* sql, std::string_view context);

  // Sets PRAGMA synchronous (FULL for kDurable, NORMAL for kNormal) if it differs. Only outside a
  // transaction (SQLite refuses to change it inside one).
  core::Status SetDurability(Durability durability);

  bool in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

  // A connection left in an unknown state (a failed rollback) is marked broken; the pool closes
  // it instead of reusing it.
  void MarkBroken() { broken_ = true; }
  bool broken() const { return broken_; }

  // PRAGMA wal_checkpoint(TRUNCATE); OK if another process keeps the log busy.
  core::Status Checkpoint();

 private:
  Connection(sqlite3* db, const ConnectionConfig& config);
  core::Status Configure(const ConnectionConfig& config);
  core::Result<std::string> PragmaText(const char* sql);

  struct CachedStatement {
    std::string sql;
    sqlite3_stmt* stmt = nullptr;
  };

  sqlite3* db_;
  Role role_;
  std::size_t cache_capacity_;
  // Most recently used first; the index points into the list (its string_view keys view the
  // list's strings, which never move).
  std::list<CachedStatement> lru_;
  std::unordered_map<std::string_view, std::list<CachedStatement>::iterator> index_;
  std::optional<Durability> durability_;
  bool broken_ = false;
};

// Checks a prepared statement for use inside a transaction: no transaction control, only
// anonymous parameters. kInvalidArgument otherwise.
core::Status CheckStatementForTransaction(sqlite3_stmt* stmt);

// Binds params to the statement's `?` placeholders. Text and blobs are bound without copying:
// params must outlive the statement's execution, and the caller must clear the bindings after.
core::Status BindParams(sqlite3_stmt* stmt, Params params);

// Reads the columns of the current row.
core::Result<std::vector<Value>> ReadColumns(sqlite3_stmt* stmt);

// Names of the statement's result columns.
core::Result<std::shared_ptr<const std::vector<std::string>>> ColumnNames(sqlite3_stmt* stmt);

// Resets a statement and clears its bindings when it goes out of scope.
class StatementResetter {
 public:
  explicit StatementResetter(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~StatementResetter() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StatementResetter(const StatementResetter&) = delete;
  StatementResetter& operator=(const StatementResetter&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

}  // namespace moatless::store::sqlite_internal
