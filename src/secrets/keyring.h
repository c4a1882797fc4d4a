// MasterKeyring: the versions of the secrets master key, and the envelope encryption of secret
// values under them.
//
// Every version of every secret is sealed with a data key of its own (32 random bytes, XChaCha20-
// Poly1305 via core::AeadKey); the data key is stored wrapped (sealed) by one version of the master
// key. The associated data of both seals names the secret's ARN, the version id and the value's
// kind, so a ciphertext or a wrapped key copied to another row, another secret or another version
// does not open: reading it fails with an integrity error instead of returning the wrong value.
// Rotating the master key (AddVersion, then SecretStore::RewrapAll) re-wraps only the data keys:
// each is opened in memory (SecretBytes) and sealed again under the new version, and the values'
// ciphertexts are never touched, so no plaintext reaches the disk at any point.
//
// The key material itself lives in a KeyringStorage (files under the data directory in the daemon,
// app/data_dir.h; memory in tests). The keyring keeps every version it loaded so that values
// wrapped under an older version stay readable while a re-wrap runs; new values are always wrapped
// under the newest version. Thread-safe: reads share a lock, AddVersion takes it exclusively.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/aead.h"
#include "core/random.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace moatless::secrets {

// Where master key versions are kept. Implementations must be durable: Store returns only once the
// key would survive a crash, and never overwrites an existing version.
class KeyringStorage {
 public:
  virtual ~KeyringStorage() = default;
  // Every stored version (>= 1) with its 32 bytes.
  virtual core::Result<std::map<std::int64_t, core::SecretBytes>> LoadAll() = 0;
  // kAlreadyExists if the version is stored already.
  virtual core::Status Store(std::int64_t version, const core::SecretBytes& key) = 0;
};

// KeyringStorage in memory, for tests and tools.
class MemoryKeyringStorage final : public KeyringStorage {
 public:
  core::Result<std::map<std::int64_t, core::SecretBytes>> LoadAll() override;
  core::Status Store(std::int64_t version, const core::SecretBytes& key) override;

 private:
  std::map<std::int64_t, core::SecretBytes> keys_;
};

// The kind of a stored value: AWS's SecretString or SecretBinary. Part of the sealed value's
// associated data. kNone marks a version without a value (never stored by this module).
enum class ValueKind : std::int64_t { kNone = 0, kString = 1, kBinary = 2 };

// A value as stored: the version of the master key that wraps its data key, the wrapped data key
// and the sealed value.
struct SealedValue {
  std::int64_t key_version = 0;
  std::string wrapped_key;
  std::string sealed_value;
};

class MasterKeyring {
 public:
  // Loads every version from `storage`. When it holds none: with `create_first`, creates version
  // 1 (a new installation); without, fails with kFailedPrecondition (the key files are missing,
  // and a new key would seal new values beside old ones nothing can open). `storage` and
  // `random` must outlive the keyring.
  static core::Result<std::unique_ptr<MasterKeyring>> Open(KeyringStorage& storage,
                                                           core::Random& random,
                                                           bool create_first = true);

  // The newest version: what new values are wrapped under.
  std::int64_t current_version() const;
  std::vector<std::int64_t> versions() const;
  bool Has(std::int64_t version) const;
  // A public fingerprint of a version (32 hex characters, derived one-way from the key): stored
  // beside the secrets so that a key file replaced by another key is detected before anything is
  // sealed or opened with it. Empty if the version is not loaded.
  std::string CheckValue(std::int64_t version) const;

  // Creates version current_version() + 1, stores it durably, and makes it current.
  core::Result<std::int64_t> AddVersion();

  // Seals `value` under a fresh data key wrapped by the current version.
  SealedValue Seal(std::string_view arn, std::string_view version_id, ValueKind kind,
                   const core::SecretBytes& value) const;
  // Opens a stored value. kFailedPrecondition if its master key version is not loaded;
  // kInternal (AWS type DecryptionFailure) if the data key or the value fails its integrity check
  // — a changed byte, or a ciphertext that belongs to another row.
  core::Result<core::SecretBytes> Open(std::string_view arn, std::string_view version_id,
                                       ValueKind kind, const SealedValue& sealed) const;
  // The same value with its data key wrapped under `to_version` instead; the sealed value is
  // unchanged. Errors as Open (the wrapped key is checked before it is re-wrapped).
  core::Result<SealedValue> Rewrap(std::string_view arn, std::string_view version_id,
                                   ValueKind kind, const SealedValue& sealed,
                                   std::int64_t to_version) const;

 private:
  MasterKeyring(KeyringStorage& storage, core::Random& random)
      : storage_(storage), random_(random) {}
  core::Result<std::shared_ptr<const core::AeadKey>> Wrapping(std::int64_t version) const;

  KeyringStorage& storage_;
  core::Random& random_;
  mutable std::shared_mutex mu_;
  struct Version {
    std::shared_ptr<const core::AeadKey> wrapping;  // derived from the stored key for wrapping
    std::string check_value;
  };
  void Load(std::int64_t version, const core::AeadKey& key);

  // Per version, the key that wraps data keys and the version's check value.
  std::map<std::int64_t, Version> versions_;
};

}  // namespace moatless::secrets
