#include "store/schema.h"

#include <array>

namespace moatless::store {

std::span<const Migration> PlatformMigrations() {
  static const std::array<Migration, 8> kMigrations = {{
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
      // runtime: every published version of every function (its configuration as JSON, without
      // the version, which is the row's), and the asynchronous invocations accepted but not yet
      // finished (runtime/event_queue.h). Times in async_invocations are unix milliseconds from
      // core::Clock; running is the portable boolean (0/1).
      {4, "create_functions",
       "CREATE TABLE functions (\n"
       "  name TEXT NOT NULL,\n"
       "  version BIGINT NOT NULL,\n"
       "  config TEXT NOT NULL,\n"
       "  created_at TEXT NOT NULL,\n"
       "  PRIMARY KEY (name, version)\n"
       ");\n"
       "CREATE TABLE async_invocations (\n"
       "  id TEXT PRIMARY KEY NOT NULL,\n"
       "  function_name TEXT NOT NULL,\n"
       "  qualifier TEXT NOT NULL,\n"
       "  payload BLOB NOT NULL,\n"
       "  attempts BIGINT NOT NULL,\n"
       "  running BIGINT NOT NULL CHECK (running IN (0, 1)),\n"
       "  next_attempt_ms BIGINT NOT NULL,\n"
       "  accepted_at_ms BIGINT NOT NULL\n"
       ");\n"
       "CREATE INDEX async_invocations_by_next_attempt ON async_invocations (next_attempt_ms);\n"
       "CREATE INDEX async_invocations_by_function ON async_invocations (function_name)"},
      // manifest: deployed apps per stage, every deployed version of each (the manifest as
      // written, the state it produced as JSON, who deployed it), the live version, and the
      // operator's permissions boundary per app and stage.
      {5, "create_apps",
       "CREATE TABLE apps (\n"
       "  app TEXT NOT NULL,\n"
       "  stage TEXT NOT NULL,\n"
       "  live_version BIGINT NOT NULL,\n"
       "  updated_at TEXT NOT NULL,\n"
       "  PRIMARY KEY (app, stage)\n"
       ");\n"
       "CREATE TABLE app_versions (\n"
       "  app TEXT NOT NULL,\n"
       "  stage TEXT NOT NULL,\n"
       "  version BIGINT NOT NULL,\n"
       "  manifest TEXT NOT NULL,\n"
       "  state TEXT NOT NULL,\n"
       "  bundle_sha256 TEXT NOT NULL,\n"
       "  deployer TEXT NOT NULL,\n"
       "  description TEXT NOT NULL,\n"
       "  created_at TEXT NOT NULL,\n"
       "  PRIMARY KEY (app, stage, version)\n"
       ");\n"
       "CREATE TABLE app_boundaries (\n"
       "  app TEXT NOT NULL,\n"
       "  stage TEXT NOT NULL,\n"
       "  document TEXT NOT NULL,\n"
       "  updated_at TEXT NOT NULL,\n"
       "  PRIMARY KEY (app, stage)\n"
       ")"},
      // secrets: every secret (metadata, tags, resource policy, rotation settings and the state
      // of a rotation in progress), its versions (the value sealed under a data key of its own,
      // which is wrapped by a version of the secrets master key; none yet for the version a
      // rotation is about to fill), the staging labels (each on at most one version of its
      // secret), and the master key versions that exist. rotation_due_ms is when the rotator
      // next acts on the secret. Times are unix milliseconds; 0 means "never" / "not set".
      {6, "create_secrets",
       "CREATE TABLE secrets (\n"
       "  arn TEXT PRIMARY KEY,\n"
       "  name TEXT NOT NULL UNIQUE,\n"
       "  description TEXT NOT NULL,\n"
       "  kms_key_id TEXT NOT NULL,\n"
       "  tags TEXT NOT NULL,\n"
       "  resource_policy TEXT NOT NULL,\n"
       "  created_ms BIGINT NOT NULL,\n"
       "  changed_ms BIGINT NOT NULL,\n"
       "  accessed_ms BIGINT NOT NULL,\n"
       "  deleted_ms BIGINT NOT NULL,\n"
       "  purge_ms BIGINT NOT NULL,\n"
       "  rotation_lambda_arn TEXT NOT NULL,\n"
       "  rotation_rules TEXT NOT NULL,\n"
       "  rotation_enabled BIGINT NOT NULL,\n"
       "  last_rotated_ms BIGINT NOT NULL,\n"
       "  next_rotation_ms BIGINT NOT NULL,\n"
       "  rotation TEXT NOT NULL,\n"
       "  rotation_due_ms BIGINT NOT NULL\n"
       ");\n"
       "CREATE INDEX secrets_by_purge ON secrets (purge_ms);\n"
       "CREATE INDEX secrets_by_rotation_due ON secrets (rotation_due_ms);\n"
       "CREATE TABLE secret_versions (\n"
       "  secret_arn TEXT NOT NULL REFERENCES secrets (arn) ON DELETE CASCADE,\n"
       "  version_id TEXT NOT NULL,\n"
       "  created_ms BIGINT NOT NULL,\n"
       "  accessed_ms BIGINT NOT NULL,\n"
       "  kind BIGINT NOT NULL,\n"
       "  key_version BIGINT NOT NULL,\n"
       "  wrapped_key BLOB NOT NULL,\n"
       "  sealed_value BLOB NOT NULL,\n"
       "  PRIMARY KEY (secret_arn, version_id)\n"
       ");\n"
       "CREATE INDEX secret_versions_by_key_version ON secret_versions (key_version);\n"
       "CREATE TABLE secret_stages (\n"
       "  secret_arn TEXT NOT NULL,\n"
       "  label TEXT NOT NULL,\n"
       "  version_id TEXT NOT NULL,\n"
       "  PRIMARY KEY (secret_arn, label),\n"
       "  FOREIGN KEY (secret_arn, version_id) REFERENCES secret_versions (secret_arn, "
       "version_id)\n"
       "    ON DELETE CASCADE\n"
       ");\n"
       "CREATE TABLE secret_master_keys (\n"
       "  version BIGINT PRIMARY KEY,\n"
       "  created_ms BIGINT NOT NULL,\n"
       "  check_value TEXT NOT NULL,\n"
       "  retired_ms BIGINT NOT NULL\n"
       ")"},
      // gateway: each app stage's API as the gateway serves it (routes, authorizers with their
      // JWKS inline, usage plans, CORS; JSON written by the deployer with the app version), the
      // API keys (only a SHA-256 of each value is kept; a key belongs to one app stage and one
      // usage plan), and each key's quota use in its current period. Times are unix milliseconds.
      {7, "create_gateway",
       "CREATE TABLE gateway_apis (\n"
       "  app TEXT NOT NULL,\n"
       "  stage TEXT NOT NULL,\n"
       "  version BIGINT NOT NULL,\n"
       "  config TEXT NOT NULL,\n"
       "  updated_ms BIGINT NOT NULL,\n"
       "  PRIMARY KEY (app, stage)\n"
       ");\n"
       "CREATE TABLE gateway_api_keys (\n"
       "  id TEXT PRIMARY KEY,\n"
       "  app TEXT NOT NULL,\n"
       "  stage TEXT NOT NULL,\n"
       "  plan TEXT NOT NULL,\n"
       "  name TEXT NOT NULL,\n"
       "  value_sha256 TEXT NOT NULL UNIQUE,\n"
       "  enabled BIGINT NOT NULL,\n"
       "  created_ms BIGINT NOT NULL,\n"
       "  updated_ms BIGINT NOT NULL\n"
       ");\n"
       "CREATE INDEX gateway_api_keys_by_app ON gateway_api_keys (app, stage);\n"
       "CREATE TABLE gateway_quota_usage (\n"
       "  key_id TEXT NOT NULL,\n"
       "  plan TEXT NOT NULL,\n"
       "  period_start_ms BIGINT NOT NULL,\n"
       "  used BIGINT NOT NULL,\n"
       "  PRIMARY KEY (key_id, plan)\n"
       ")"},
      // alerts: each alert's state (rule id APP/STAGE/NAME; inactive, pending or firing since),
      // and the outbox of notifications to webhooks, written in the same transaction as the state
      // change that caused them and deleted once delivered (or given up). Times are unix ms.
      {8, "create_alerts",
       "CREATE TABLE alert_states (\n"
       "  rule_id TEXT PRIMARY KEY,\n"
       "  state TEXT NOT NULL,\n"
       "  since_ms BIGINT NOT NULL,\n"
       "  updated_ms BIGINT NOT NULL\n"
       ");\n"
       "CREATE TABLE alert_notifications (\n"
       "  id TEXT PRIMARY KEY,\n"
       "  rule_id TEXT NOT NULL,\n"
       "  webhook TEXT NOT NULL,\n"
       "  url TEXT NOT NULL,\n"
       "  secret TEXT NOT NULL,\n"
       "  body TEXT NOT NULL,\n"
       "  created_ms BIGINT NOT NULL,\n"
       "  attempts BIGINT NOT NULL,\n"
       "  next_attempt_ms BIGINT NOT NULL,\n"
       "  last_error TEXT NOT NULL\n"
       ");\n"
       "CREATE INDEX alert_notifications_due ON alert_notifications (next_attempt_ms)"},
  }};
  return kMigrations;
}

}  // namespace moatless::store
