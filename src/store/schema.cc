#include "store/schema.h"

#include <array>

namespace moatless::store {

std::span<const Migration> PlatformMigrations() {
  static const std::array<Migration, 2> kMigrations = {{
      {1, "create_meta",
       "CREATE TABLE meta (\n"
       "  key TEXT PRIMARY KEY,\n"
       "  value TEXT NOT NULL,\n"
       "  updated_at TEXT NOT NULL\n"
       ")"},
      // identity: the account root, users and roles, their named identity policies, and access
      // keys (the secret sealed under a key derived from the master key; never stored in clear).
      {2, "create_identity",
       "CREATE TABLE principals (\n"
       "  arn TEXT PRIMARY KEY,\n"
       "  kind TEXT NOT NULL CHECK (kind IN ('root', 'user', 'role')),\n"
       "  name TEXT NOT NULL,\n"
       "  id TEXT NOT NULL UNIQUE,\n"
       "  tags TEXT NOT NULL,\n"
       "  boundary TEXT,\n"
       "  trust_policy TEXT,\n"
       "  max_session_seconds BIGINT NOT NULL,\n"
       "  created_at TEXT NOT NULL,\n"
       "  UNIQUE (kind, name)\n"
       ");\n"
       "CREATE TABLE principal_policies (\n"
       "  principal_arn TEXT NOT NULL REFERENCES principals (arn) ON DELETE CASCADE,\n"
       "  name TEXT NOT NULL,\n"
       "  document TEXT NOT NULL,\n"
       "  PRIMARY KEY (principal_arn, name)\n"
       ");\n"
       "CREATE TABLE access_keys (\n"
       "  id TEXT PRIMARY KEY,\n"
       "  principal_arn TEXT NOT NULL REFERENCES principals (arn) ON DELETE CASCADE,\n"
       "  sealed_secret BLOB NOT NULL,\n"
       "  status TEXT NOT NULL CHECK (status IN ('Active', 'Inactive')),\n"
       "  created_at TEXT NOT NULL,\n"
       "  last_used_at TEXT,\n"
       "  last_used_service TEXT\n"
       ");\n"
       "CREATE INDEX access_keys_by_principal ON access_keys (principal_arn)"},
  }};
  return kMigrations;
}

}  // namespace moatless::store
