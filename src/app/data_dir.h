// DataDir: the daemon's private folder and exclusive ownership of it.
//
// Open creates the folder (mode 0700) if missing, refuses one that other users can access (as
// ssh does for ~/.ssh), takes an exclusive flock on `<dir>/lock` so two daemons never share a
// store, and creates the audit and master keys (32 random bytes each, 0600) on first use. The lock
// is held until the DataDir is destroyed. Not copyable; used by one thread (the composition root).
#pragma once

#include <memory>
#include <string>

#include "core/env.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace moatless::app {

class DataDir {
 public:
  static core::Result<std::unique_ptr<DataDir>> Open(const std::string& path, core::Env& env);
  ~DataDir();
  DataDir(const DataDir&) = delete;
  DataDir& operator=(const DataDir&) = delete;

  const std::string& path() const { return path_; }
  std::string StorePath() const { return StorePathIn(path_); }
  // The store of the data directory `path`, for tools that work on it beside a running daemon
  // (the store allows that; the lock is the daemon's).
  static std::string StorePathIn(const std::string& path) { return path + "/moatless.db"; }
  std::string AuditLogPath() const { return path_ + "/audit/audit.log"; }
  std::string AuditKeyPath() const { return path_ + "/keys/audit.key"; }
  std::string MasterKeyPath() const { return path_ + "/keys/master.key"; }
  // The folder of the secrets master key versions (app/secret_key_files.h).
  std::string SecretKeysPath() const { return path_ + "/keys/secrets"; }
  // The folder of the self-signed development certificate (http/self_signed.h).
  std::string TlsPath() const { return path_ + "/tls"; }
  // The folder of the log files (app/log_files.h).
  std::string LogsPath() const { return path_ + "/logs"; }

  // Reads the audit HMAC key, creating it on first use.
  core::Result<core::SecretBytes> LoadOrCreateAuditKey(core::Env& env) const;
  // Reads the master key (32 random bytes, 0600) that seals access-key secrets and session
  // tokens, creating it on first use. Refused if group or others can read it.
  core::Result<core::SecretBytes> LoadOrCreateMasterKey(core::Env& env) const;

 private:
  DataDir(std::string path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}
  core::Result<core::SecretBytes> LoadOrCreateKey(core::Env& env, const std::string& path,
                                                  std::string_view what) const;
  std::string path_;
  int lock_fd_;
};

// Checks that a file holding key material is a regular file that group and others cannot read.
core::Status CheckPrivateFile(const std::string& path, std::string_view what);

}  // namespace moatless::app
