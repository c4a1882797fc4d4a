#include "store/schema.h"

#include <array>

namespace moatless::store {

std::span<const Migration> PlatformMigrations() {
  static const std::array<Migration, 3> kMigrations = {{
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
      // identity: customer-managed policies, their attachments to users and roles, and
      // permissions boundaries that name a managed policy.
      {3, "create_managed_policies",
       "CREATE TABLE managed_policies (\n"
       "  arn TEXT PRIMARY KEY,\n"
       "  name TEXT NOT NULL UNIQUE,\n"
       "  id TEXT NOT NULL UNIQUE,\n"
       "  document TEXT NOT NULL,\n"
       "  description TEXT NOT NULL,\n"
       "  created_at TEXT NOT NULL,\n"
       "  updated_at TEXT NOT NULL\n"
       ");\n"
       "CREATE TABLE policy_attachments (\n"
       "  principal_arn TEXT NOT NULL REFERENCES principals (arn) ON DELETE CASCADE,\n"
       "  policy_arn TEXT NOT NULL REFERENCES managed_policies (arn),\n"
       "  PRIMARY KEY (principal_arn, policy_arn)\n"
       ");\n"
       "CREATE INDEX policy_attachments_by_policy ON policy_attachments (policy_arn);\n"
       "ALTER TABLE principals ADD COLUMN boundary_arn TEXT REFERENCES managed_policies (arn)"},
  }};
  return kMigrations;
}

}  // namespace moatless::store
