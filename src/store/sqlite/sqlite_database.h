// The SQLite backend of store::Database: the default, embedded store of `moatless serve`.
//
// One database file under the data directory, created with mode 0600 (its -wal and -shm files
// inherit that mode) in a folder created 0700 if missing; symbolic links are refused. The file is
// in WAL mode with foreign keys on. Connections form a pool: one writer, on which write
// transactions are serialised (a mutex, then BEGIN IMMEDIATE, so another process writing the same
// file waits up to busy_timeout and then gets kUnavailable), and up to `reader_connections`
// query_only readers, opened on demand, on which read-only transactions run concurrently with
// each other and with the writer, each on its own snapshot. Every connection caches its prepared
// statements. A write transaction commits with synchronous=FULL (kDurable: the write-ahead log
// is fsynced before Transact returns) or NORMAL (kNormal); the pragma is changed on the writer
// only when a transaction asks for the other level.
//
// Thread safety: the returned Database is thread-safe (see store/database.h). Close (or the
// destructor) waits for running transactions, checkpoints the log into the main file and closes
// every connection.
#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "store/database.h"
#include "store/migrations.h"

namespace moatless::store {

struct SqliteOptions {
  // Required: timestamps of applied migrations. Must outlive OpenSqlite only.
  const core::Clock* clock = nullptr;
  // Applied at open (see store/migrations.h); must outlive OpenSqlite only.
  std::span<const Migration> migrations;
  // Maximum number of read-only transactions running at once (1..64).
  int reader_connections = 4;
  // How long a statement waits for a lock held by another connection before kUnavailable.
  std::chrono::milliseconds busy_timeout{5000};
  // Prepared statements kept per connection (least recently used are finalized).
  std::size_t statement_cache_size = 64;
};

// Opens (creating if needed) the database file at `path` and applies the migrations. Fails with
// kInvalidArgument for bad options or ":memory:", kFailedPrecondition if the schema is newer than
// the migrations or the path is a symbolic link or not a regular file, kInternal if the file is
// corrupt or not an SQLite database.
core::Result<std::unique_ptr<Database>> OpenSqlite(const std::string& path,
                                                   const SqliteOptions& options);

// Runs PRAGMA integrity_check in a read-only transaction on an SQLite database: OK, or kInternal
// listing the first problems found. kInvalidArgument for a database of another backend.
core::Status CheckSqliteIntegrity(Database& db);

}  // namespace moatless::store
