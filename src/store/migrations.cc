#include "store/migrations.h"

#include <map>
#include <string>

namespace moatless::store {
namespace {

using core::Result;
using core::Status;
using History = std::map<std::int64_t, std::string>;  // version -> name

constexpr std::string_view kCreateSchemaMigrations =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version BIGINT PRIMARY KEY NOT NULL,"
    " name TEXT NOT NULL,"
    " applied_at TEXT NOT NULL)";

std::string Describe(const Migration& m) {
  return "migration " + std::to_string(m.version) + " (" + m.name + ")";
}

Result<History> ReadHistory(Transaction& tx) {
  ASSIGN_OR_RETURN(std::vector<Row> rows,
                   tx.Query("SELECT version, name FROM schema_migrations ORDER BY version"));
  History history;
  for (const Row& row : rows) {
    ASSIGN_OR_RETURN(std::int64_t version, row.GetInt("version"));
    ASSIGN_OR_RETURN(std::string name, row.GetText("name"));
    history.emplace(version, std::move(name));
  }
  return history;
}

Status CheckHistory(const History& history, std::span<const Migration> migrations) {
  const auto known = static_cast<std::int64_t>(migrations.size());
  if (!history.empty() && history.rbegin()->first > known) {
    return core::FailedPreconditionError(
        "the database schema is at version " + std::to_string(history.rbegin()->first) +
        " but this build knows versions up to " + std::to_string(known) +
        "; it was written by a newer moatless: upgrade moatless or restore a backup made by this "
        "version");
  }
  for (const auto& [version, name] : history) {
    if (version < 1) {
      return core::FailedPreconditionError("schema_migrations holds invalid version " +
                                           std::to_string(version));
    }
    const Migration& m = migrations[static_cast<std::size_t>(version - 1)];
    if (m.name != name) {
      return core::FailedPreconditionError(
          "schema_migrations records version " + std::to_string(version) + " as '" + name +
          "' but this build calls it '" + m.name + "'; the database belongs to another schema");
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateMigrations(std::span<const Migration> migrations) {
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    const Migration& m = migrations[i];
    const auto expected = static_cast<std::int64_t>(i + 1);
    if (m.version != expected) {
      return core::InvalidArgumentError(
          "migration list: entry " + std::to_string(i + 1) + " has version " +
          std::to_string(m.version) + ", expected " + std::to_string(expected) +
          " (versions must be 1..N in order, without gaps or duplicates)");
    }
    if (m.name.empty())
      return core::InvalidArgumentError("migration list: " + Describe(m) + " has no name");
    if (m.sql.find_first_not_of(" \t\r\n") == std::string::npos) {
      return core::InvalidArgumentError("migration list: " + Describe(m) + " has no SQL");
    }
  }
  return Status::Ok();
}

Status ApplyMigrations(Database& db, std::span<const Migration> migrations,
                       const core::Clock& clock) {
  RETURN_IF_ERROR(ValidateMigrations(migrations));

  History history;
  const Status read = db.Write([&](Transaction& tx) -> Status {
    RETURN_IF_ERROR(tx.Exec(kCreateSchemaMigrations));
    ASSIGN_OR_RETURN(history, ReadHistory(tx));
    return CheckHistory(history, migrations);
  });
  RETURN_IF_ERROR(read.Annotate("reading schema_migrations"));

  for (const Migration& m : migrations) {
    if (history.contains(m.version)) continue;
    const Status applied = db.Write([&](Transaction& tx) -> Status {
      // Another process may have applied it since the history was read.
      ASSIGN_OR_RETURN(History now, ReadHistory(tx));
      RETURN_IF_ERROR(CheckHistory(now, migrations));
      if (now.contains(m.version)) return Status::Ok();
      RETURN_IF_ERROR(tx.ExecScript(m.sql));
      return tx
          .Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                {m.version, m.name, core::FormatRfc3339(clock.Now())})
          .status();
    });
    RETURN_IF_ERROR(applied.Annotate("applying " + Describe(m)));
  }
  return Status::Ok();
}

Result<std::int64_t> SchemaVersion(Database& db) {
  return TransactValue(
      db, {.access = Access::kReadOnly}, [](Transaction& tx) -> Result<std::int64_t> {
        ASSIGN_OR_RETURN(Row row,
                         tx.QueryOne("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS v "
                                     "FROM schema_migrations"));
        return row.GetInt("v");
      });
}

}  // namespace moatless::store
