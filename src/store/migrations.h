// Schema migrations: the numbered, append-only history of the schema, applied in order.
//
// The code owns the list (a constant of the composition root, in the portable SQL subset of
// database.h); the database records what it has applied in `schema_migrations(version, name,
// applied_at)`. Versions are 1..N without gaps; a released migration is never edited or renamed,
// only followed by a new one. ApplyMigrations applies each missing migration in its own durable
// write transaction (the script and its schema_migrations row commit together or not at all),
// and refuses a database whose schema is newer than the code (a downgrade would corrupt it) or
// whose recorded names disagree with the code's. Backends call it from their Open functions.
//
// Thread safety: the functions are stateless; concurrent ApplyMigrations on one database are
// safe because each step re-checks inside its write transaction whether it is still missing.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "store/database.h"

namespace moatless::store {

struct Migration {
  std::int64_t version = 0;  // 1, 2, 3, ... in list order
  std::string name;          // short snake_case description, e.g. "create_secrets"
  std::string sql;           // one or more `;`-separated statements (portable subset)
};

// kInvalidArgument unless versions are exactly 1..N in order and every name and script is
// non-empty. A failure is a bug in the list, reported before anything is touched.
core::Status ValidateMigrations(std::span<const Migration> migrations);

// Validates the list, creates schema_migrations if needed, checks the recorded history against
// the list (kFailedPrecondition if the database is newer or a recorded name differs), and applies
// the missing migrations in order; applied_at is `clock.Now()` in RFC 3339. Errors name the
// migration that failed; migrations applied before it stay applied.
core::Status ApplyMigrations(Database& db, std::span<const Migration> migrations,
                             const core::Clock& clock);

// The highest applied version, 0 if none. Needs schema_migrations, which ApplyMigrations (run
// by every backend's Open) creates.
core::Result<std::int64_t> SchemaVersion(Database& db);

}  // namespace moatless::store
