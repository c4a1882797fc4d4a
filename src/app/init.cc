#include "app/init.h"

#include <sodium.h>

#include <sstream>

#include "app/data_dir.h"
#include "core/aead.h"
#include "identity/directory.h"
#include "observe/audit_log.h"
#include "store/schema.h"
#include "store/sqlite/sqlite_database.h"

namespace moatless::app {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string ParentOf(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? std::string() : path.substr(0, slash);
}

}  // namespace

std::string WithCredentialsProfile(std::string_view existing, std::string_view profile,
                                   std::string_view access_key_id,
                                   std::string_view secret_access_key) {
  const std::string header = "[" + std::string(profile) + "]";
  const std::string section = header + "\naws_access_key_id = " + std::string(access_key_id) +
                              "\naws_secret_access_key = " + std::string(secret_access_key) + "\n";
  std::string out;
  bool in_profile = false;
  bool written = false;
  std::istringstream lines{std::string(existing)};
  std::string line;
  while (std::getline(lines, line)) {
    const std::string_view t = Trim(line);
    if (t.starts_with("[")) {
      in_profile = t == header;
      if (in_profile) {
        out += section;
        written = true;
        continue;
      }
    }
    if (!in_profile) out += line + "\n";
  }
  if (!written) {
    if (!out.empty() && !out.ends_with("\n\n")) out += "\n";
    out += section;
  }
  return out;
}

core::Result<InitResult> InitializeDataDir(const InitOptions& options, core::Env& env) {
  RETURN_IF_ERROR(identity::ValidateAccountId(options.account_id));
  if (options.credentials_file.empty()) {
    return core::InvalidArgumentError("a credentials file path is required");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<DataDir> data_dir, DataDir::Open(options.data_dir, env));
  ASSIGN_OR_RETURN(core::SecretBytes audit_key, data_dir->LoadOrCreateAuditKey(env));
  ASSIGN_OR_RETURN(core::SecretBytes master_bytes, data_dir->LoadOrCreateMasterKey(env));
  ASSIGN_OR_RETURN(const core::AeadKey master_key,
                   core::AeadKey::FromBytes(std::move(master_bytes)));
  auto audit_or =
      observe::AuditLog::Open(data_dir->AuditLogPath(), std::move(audit_key), env.clock());
  if (!audit_or.ok()) return audit_or.status().Annotate("audit log");
  auto db_or = store::OpenSqlite(
      data_dir->StorePath(), {.clock = &env.clock(), .migrations = store::PlatformMigrations()});
  if (!db_or.ok()) return db_or.status().Annotate("store " + data_dir->StorePath());
  std::unique_ptr<store::Database> db = std::move(db_or).value();

  identity::Directory directory(*db, env, master_key, {.account_id = options.account_id});
  ASSIGN_OR_RETURN(const identity::Principal root, directory.EnsureRoot());
  ASSIGN_OR_RETURN(const std::vector<identity::AccessKeyInfo> keys, directory.ListRootAccessKeys());
  if (!keys.empty()) {
    return core::FailedPreconditionError(
        options.data_dir + " is already initialised: the root user has an access key (" +
        keys[0].id + "); root credentials are never replaced by init");
  }

  // Create the key, then write it; if the write fails, delete the key again so that a retry can
  // start over (init refuses to run while the root has a key).
  ASSIGN_OR_RETURN(identity::AccessKeyWithSecret key, directory.CreateRootAccessKey());
  auto write = [&]() -> core::Status {
    const std::string parent = ParentOf(options.credentials_file);
    if (!parent.empty() && !env.fs().Exists(parent))
      RETURN_IF_ERROR(env.fs().MakeDirs(parent, 0700));
    std::string existing;
    if (env.fs().Exists(options.credentials_file)) {
      ASSIGN_OR_RETURN(existing, env.fs().ReadFile(options.credentials_file));
    }
    std::string text =
        WithCredentialsProfile(existing, options.profile, key.info.id, key.secret.Reveal());
    const core::Status written = env.fs().WriteFileAtomic(options.credentials_file, text, 0600);
    sodium_memzero(text.data(), text.size());
    sodium_memzero(existing.data(), existing.size());
    return written;
  };
  if (core::Status written = write(); !written.ok()) {
    directory.DeleteRootAccessKey(key.info.id).IgnoreError();
    return written.Annotate("writing " + options.credentials_file);
  }

  observe::AuditRecord record;
  record.actor = "moatless";
  record.action = "moatless:Init";
  record.resource = root.arn;
  record.outcome = observe::AuditOutcome::kAllowed;
  record.reason = "root access key created and written to the credentials file";
  record.fields = {{"access_key_id", key.info.id},
                   {"credentials_file", options.credentials_file},
                   {"profile", options.profile}};
  RETURN_IF_ERROR((*audit_or)->Append(record).Annotate("audit log"));
  RETURN_IF_ERROR(db->Close());
  return InitResult{.root_arn = root.arn,
                    .access_key_id = key.info.id,
                    .credentials_file = options.credentials_file,
                    .profile = options.profile};
}

}  // namespace moatless::app
