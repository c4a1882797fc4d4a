// SecretKeyFiles: the versions of the secrets master key as files of the data directory,
// `<data dir>/keys/secrets/master-<N>.key` (32 random bytes each, mode 0600, folder 0700) — the
// KeyringStorage the daemon's secrets::MasterKeyring loads and adds versions to.
//
// A new version is written durably (temporary file, fsync, rename, fsync of the folder) and never
// over an existing one. A key file that other users can read, that is not 32 bytes long or whose
// name is not master-<N>.key refuses the load, naming the file. Used by the keyring, which
// serialises its calls.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/env.h"
#include "secrets/keyring.h"

namespace moatless::app {

class SecretKeyFiles final : public secrets::KeyringStorage {
 public:
  // `dir`: the folder of the key files (created on first use). `env` must outlive this.
  SecretKeyFiles(std::string dir, core::Env& env) : dir_(std::move(dir)), env_(env) {}

  core::Result<std::map<std::int64_t, core::SecretBytes>> LoadAll() override;
  core::Status Store(std::int64_t version, const core::SecretBytes& key) override;

  // The file of a version.
  std::string PathOf(std::int64_t version) const;

 private:
  std::string dir_;
  core::Env& env_;
};

}  // namespace moatless::app
