#include "store/sqlite/connection.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>

namespace moatless::store::sqlite_internal {
namespace {

using core::Result;
using core::Status;
using core::StatusCode;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

// The first keyword of a statement, upper-cased, after whitespace and comments.
std::string FirstKeyword(std::string_view sql) {
  std::size_t i = 0;
  for (;;) {
    while (i < sql.size() && IsSpace(sql[i])) ++i;
    if (sql.substr(i, 2) == "--") {
      const auto nl = sql.find('\n', i);
      i = nl == std::string_view::npos ? sql.size() : nl + 1;
    } else if (sql.substr(i, 2) == "/*") {
      const auto end = sql.find("*/", i + 2);
      i = end == std::string_view::npos ? sql.size() : end + 2;
    } else {
      break;
    }
  }
  std::string word;
  for (; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c >= 'a' && c <= 'z') {
      word.push_back(static_cast<char>(c - 'a' + 'A'));
    } else if (c >= 'A' && c <= 'Z') {
      word.push_back(c);
    } else {
      break;
    }
  }
  return word;
}

std::string WithErrno(std::string message, sqlite3* db) {
  const int err = db != nullptr ? sqlite3_system_errno(db) : 0;
  if (err != 0) message += std::string(" (") + std::strerror(err) + ")";
  return message;
}

}  // namespace

std::string Excerpt(std::string_view sql) {
  constexpr std::size_t kMax = 80;
  std::string out;
  bool space = false;
  for (char c : sql) {
    if (IsSpace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    if (out.size() >= kMax) {
      out += "...";
      break;
    }
    out.push_back(c);
  }
  return "\"" + out + "\"";
}

Status SqliteError(int rc, sqlite3* db, std::string_view context) {
  const int primary = rc & 0xff;
  // sqlite3_errmsg describes the most recent failure on the connection, which is not always
  // the one we were handed (e.g. a failed bind); then fall back to the generic text.
  const bool own_message = db != nullptr && sqlite3_extended_errcode(db) == rc;
  std::string message = "sqlite: " + std::string(context) + ": " +
                        (own_message ? sqlite3_errmsg(db) : sqlite3_errstr(rc)) + " [code " +
                        std::to_string(rc) + "]";
  switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return core::UnavailableError(
          message +
          "; the database is locked by another connection: nothing was committed, "
          "retry the transaction");
    case SQLITE_CONSTRAINT:
      switch (rc) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
        case SQLITE_CONSTRAINT_ROWID:
          return core::AlreadyExistsError(std::move(message));
        default:
          return core::FailedPreconditionError(std::move(message));
      }
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return core::InternalError(message +
                                 "; the database file is corrupt or not an SQLite database");
    case SQLITE_FULL:
      return core::ResourceExhaustedError(std::move(message));
    case SQLITE_NOMEM:
      return core::ResourceExhaustedError(std::move(message));
    case SQLITE_TOOBIG:
      return core::PayloadTooLargeError(std::move(message));
    case SQLITE_READONLY:
      return core::FailedPreconditionError(WithErrno(message, db));
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return core::PermissionDeniedError(WithErrno(message, db));
    case SQLITE_CANTOPEN: {
      const int err = db != nullptr ? sqlite3_system_errno(db) : 0;
      message = WithErrno(std::move(message), db);
      if (err == ENOENT) return core::NotFoundError(std::move(message));
      if (err == EACCES || err == EPERM) return core::PermissionDeniedError(std::move(message));
      return core::InternalError(std::move(message));
    }
    case SQLITE_IOERR: {
      const int err = db != nullptr ? sqlite3_system_errno(db) : 0;
      message = WithErrno(std::move(message), db);
      if (err == ENOSPC || err == EDQUOT) return core::ResourceExhaustedError(std::move(message));
      return core::InternalError(std::move(message));
    }
    case SQLITE_INTERRUPT:
    case SQLITE_ABORT:
      return core::AbortedError(std::move(message));
    case SQLITE_SCHEMA:
    case SQLITE_PROTOCOL:
      return core::UnavailableError(message + "; nothing was committed, retry the transaction");
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return core::InvalidArgumentError(std::move(message));
    default:
      return core::InternalError(std::move(message));
  }
}

Result<std::unique_ptr<Connection>> Connection::Open(const ConnectionConfig& config) {
  sqlite3* db = nullptr;
  // Multi-thread mode (NOMUTEX): the pool guarantees one thread per connection. NOFOLLOW: the
  // database is never reached through a symbolic link. No CREATE: OpenSqlite creates the file
  // itself with mode 0600. No URI: the path is taken literally.
  const int flags =
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE;
  const int rc = sqlite3_open_v2(config.path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status status = SqliteError(rc, db, "opening " + config.path);
    sqlite3_close_v2(db);  // a handle is returned even on failure (or nullptr, which is a no-op)
    return status;
  }
  std::unique_ptr<Connection> conn(new Connection(db, config));
  RETURN_IF_ERROR(conn->Configure(config).Annotate("configuring " + config.path));
  return conn;
}

Connection::Connection(sqlite3* db, const ConnectionConfig& config)
    : db_(db),
      role_(config.role),
      cache_capacity_(std::max<std::size_t>(1, config.statement_cache_size)) {}

Connection::~Connection() {
  for (auto& cached : lru_) sqlite3_finalize(cached.stmt);
  // close_v2 never fails on a busy handle; every statement is finalized above anyway.
  sqlite3_close_v2(db_);
}

Status Connection::Configure(const ConnectionConfig& config) {
  sqlite3_extended_result_codes(db_, 1);
  const auto busy_ms = config.busy_timeout.count();
  sqlite3_busy_timeout(db_, static_cast<int>(std::clamp<std::int64_t>(busy_ms, 0, INT_MAX)));
  // Hardening, and the portable subset where SQLite can enforce it: no double-quoted string
  // literals (PostgreSQL reads them as identifiers), no schema tricks through writable_schema
  // (DEFENSIVE), no functions with side effects in schema objects (TRUSTED_SCHEMA off), no
  // extensions, no ATTACH.
  const struct {
    int option;
    int value;
  } settings[] = {
      {SQLITE_DBCONFIG_DEFENSIVE, 1},
      {SQLITE_DBCONFIG_DQS_DML, 0},
      {SQLITE_DBCONFIG_DQS_DDL, 0},
      {SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0},
      {SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0},
  };
  for (const auto& s : settings) {
    const int rc = sqlite3_db_config(db_, s.option, s.value, nullptr);
    if (rc != SQLITE_OK) return SqliteError(rc, db_, "sqlite3_db_config");
  }
  sqlite3_limit(db_, SQLITE_LIMIT_ATTACHED, 0);

  if (role_ == Role::kWriter) {
    // Reading the header here is also where a corrupt or foreign file is first noticed.
    ASSIGN_OR_RETURN(std::string mode, PragmaText("PRAGMA journal_mode = WAL"));
    if (mode != "wal") {
      return core::FailedPreconditionError(
          "sqlite: cannot enable write-ahead logging (journal "
          "mode stays '" +
          mode + "')");
    }
    RETURN_IF_ERROR(SetDurability(Durability::kDurable));
  } else {
    RETURN_IF_ERROR(ExecInternal("PRAGMA query_only = ON", "setting query_only"));
  }
  RETURN_IF_ERROR(ExecInternal("PRAGMA foreign_keys = ON", "enabling foreign keys"));
  ASSIGN_OR_RETURN(std::string fk, PragmaText("PRAGMA foreign_keys"));
  if (fk != "1") return core::FailedPreconditionError("sqlite: foreign keys cannot be enabled");
  return Status::Ok();
}

Result<std::string> Connection::PragmaText(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(rc, db_, sql);
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(stmt, sqlite3_finalize);
  rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return std::string();
  if (rc != SQLITE_ROW) return SqliteError(rc, db_, sql);
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  std::string out = text != nullptr ? text : "";
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) return SqliteError(rc, db_, sql);
  return out;
}

Status Connection::ExecInternal(const char* sql, std::string_view context) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(rc, db_, context);
  return Status::Ok();
}

Status Connection::SetDurability(Durability durability) {
  if (durability_ == durability) return Status::Ok();
  durability_.reset();  // unknown until the pragma succeeds
  RETURN_IF_ERROR(ExecInternal(durability == Durability::kDurable ? "PRAGMA synchronous = FULL"
                                                                  : "PRAGMA synchronous = NORMAL",
                               "setting synchronous"));
  durability_ = durability;
  return Status::Ok();
}

Status Connection::Checkpoint() {
  const int rc =
      sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  if (rc == SQLITE_OK || (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
    return Status::Ok();
  }
  return SqliteError(rc, db_, "checkpointing the write-ahead log");
}

Result<sqlite3_stmt*> Connection::Prepare(std::string_view sql) {
  if (auto it = index_.find(sql); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->stmt;
  }
  if (sql.size() >= static_cast<std::size_t>(INT_MAX)) {
    return core::InvalidArgumentError("sqlite: statement too long");
  }
  const char* const end = sql.data() + sql.size();
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
  if (rc != SQLITE_OK) {
    // An error found while preparing is an error in the statement: syntax, unknown table or
    // column, too many parameters.
    Status status = SqliteError(rc, db_, "preparing " + Excerpt(sql));
    if ((rc & 0xff) == SQLITE_ERROR) return core::InvalidArgumentError(status.message());
    return status;
  }
  if (stmt == nullptr) return core::InvalidArgumentError("sqlite: empty statement");
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(stmt, sqlite3_finalize);
  // Only whitespace, comments and semicolons may follow: a second statement would otherwise be
  // silently ignored (or, built from input, be an injection).
  while (tail != nullptr && tail < end) {
    sqlite3_stmt* extra = nullptr;
    const char* next = nullptr;
    rc = sqlite3_prepare_v3(db_, tail, static_cast<int>(end - tail), 0, &extra, &next);
    sqlite3_finalize(extra);
    if (rc != SQLITE_OK || extra != nullptr || next == tail) {
      return core::InvalidArgumentError("sqlite: " + Excerpt(sql) +
                                        " holds more than one statement; run one per call");
    }
    tail = next;
  }
  RETURN_IF_ERROR(CheckStatementForTransaction(stmt));

  lru_.push_front(CachedStatement{std::string(sql), guard.release()});
  index_.emplace(lru_.front().sql, lru_.begin());
  if (lru_.size() > cache_capacity_) {
    index_.erase(lru_.back().sql);
    sqlite3_finalize(lru_.back().stmt);
    lru_.pop_back();
  }
  return lru_.front().stmt;
}

Status CheckStatementForTransaction(sqlite3_stmt* stmt) {
  const char* text = sqlite3_sql(stmt);
  const std::string keyword = FirstKeyword(text != nullptr ? text : "");
  for (const char* forbidden :
       {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "ATTACH", "DETACH"}) {
    if (keyword == forbidden) {
      return core::InvalidArgumentError(
          "sqlite: " + keyword +
          " is not allowed inside a transaction: Transact commits or rolls back according to "
          "the status fn returns");
    }
  }
  const int count = sqlite3_bind_parameter_count(stmt);
  for (int i = 1; i <= count; ++i) {
    const char* name = sqlite3_bind_parameter_name(stmt, i);
    if (name != nullptr) {
      return core::InvalidArgumentError(std::string("sqlite: parameter ") + name +
                                        " is not portable: use anonymous ? parameters");
    }
  }
  return Status::Ok();
}

Status BindParams(sqlite3_stmt* stmt, Params params) {
  const int expected = sqlite3_bind_parameter_count(stmt);
  if (params.size() != static_cast<std::size_t>(expected)) {
    return core::InvalidArgumentError("the statement has " + std::to_string(expected) +
                                      " parameters but " + std::to_string(params.size()) +
                                      " values were given");
  }
  for (int i = 1; i <= expected; ++i) {
    const Value& value = params.values()[static_cast<std::size_t>(i - 1)];
    const std::string where = "parameter " + std::to_string(i);
    int rc = SQLITE_OK;
    switch (value.type()) {
      case ValueType::kNull:
        rc = sqlite3_bind_null(stmt, i);
        break;
      case ValueType::kInt:
        rc = sqlite3_bind_int64(stmt, i, *value.if_int());
        break;
      case ValueType::kReal:
        if (std::isnan(*value.if_real())) {
          return core::InvalidArgumentError(where + ": NaN cannot be stored portably");
        }
        rc = sqlite3_bind_double(stmt, i, *value.if_real());
        break;
      case ValueType::kText: {
        const std::string& text = *value.if_text();
        RETURN_IF_ERROR(ValidatePortableText(text).Annotate(where));
        // SQLITE_STATIC: the value outlives the step; the caller clears the bindings after.
        rc = sqlite3_bind_text64(stmt, i, text.empty() ? "" : text.data(), text.size(),
                                 SQLITE_STATIC, SQLITE_UTF8);
        break;
      }
      case ValueType::kBlob: {
        const Blob& blob = *value.if_blob();
        // A null data pointer would bind NULL: an empty blob is bound as a zero-length blob.
        rc = blob.empty() ? sqlite3_bind_zeroblob(stmt, i, 0)
                          : sqlite3_bind_blob64(stmt, i, blob.data(), blob.size(), SQLITE_STATIC);
        break;
      }
    }
    if (rc != SQLITE_OK) return SqliteError(rc, sqlite3_db_handle(stmt), "binding " + where);
  }
  return Status::Ok();
}

Result<std::vector<Value>> ReadColumns(sqlite3_stmt* stmt) {
  const int n = sqlite3_column_count(stmt);
  std::vector<Value> values;
  values.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    switch (sqlite3_column_type(stmt, i)) {
      case SQLITE_NULL:
        values.emplace_back();
        break;
      case SQLITE_INTEGER:
        values.emplace_back(static_cast<std::int64_t>(sqlite3_column_int64(stmt, i)));
        break;
      case SQLITE_FLOAT:
        values.emplace_back(sqlite3_column_double(stmt, i));
        break;
      case SQLITE_TEXT: {
        const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
        const int size = sqlite3_column_bytes(stmt, i);
        if (data == nullptr && size > 0) {
          return SqliteError(SQLITE_NOMEM, sqlite3_db_handle(stmt), "reading a column");
        }
        values.emplace_back(
            std::string(data != nullptr ? data : "", static_cast<std::size_t>(size)));
        break;
      }
      case SQLITE_BLOB: {
        const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt, i));
        const int size = sqlite3_column_bytes(stmt, i);
        if (data == nullptr && size > 0) {
          return SqliteError(SQLITE_NOMEM, sqlite3_db_handle(stmt), "reading a column");
        }
        values.emplace_back(data != nullptr ? Blob(data, data + size) : Blob());
        break;
      }
    }
  }
  return values;
}

Result<std::shared_ptr<const std::vector<std::string>>> ColumnNames(sqlite3_stmt* stmt) {
  const int n = sqlite3_column_count(stmt);
  auto names = std::make_shared<std::vector<std::string>>();
  names->reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const char* name = sqlite3_column_name(stmt, i);
    if (name == nullptr) {
      return SqliteError(SQLITE_NOMEM, sqlite3_db_handle(stmt), "reading column names");
    }
    names->emplace_back(name);
  }
  return std::shared_ptr<const std::vector<std::string>>(std::move(names));
}

}  // namespace moatless::store::sqlite_internal
