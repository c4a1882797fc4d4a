// AeadKey: authenticated encryption of small records under a 256-bit key, and derivation of
// purpose-specific subkeys from one master key.
//
// Seal produces `v1 | 24-byte random nonce | XChaCha20-Poly1305 ciphertext and tag` (libsodium's
// crypto_aead_xchacha20poly1305_ietf); the associated data binds a ciphertext to where it belongs
// (a table and row id, a token type), so one cannot be moved to another place and still open.
// Open fails with kPermissionDenied, saying nothing more, on any change of a single bit, on the
// wrong key and on the wrong associated data. Derive gives independent keys for independent uses
// (access-key secrets, session tokens, ...) so that no key is used for two purposes.
//
// An AeadKey owns its bytes in SecretBytes (wiped on destruction, printed as [redacted]).
// Move-only; const methods are safe to call from several threads at once.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/random.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace moatless::core {

class AeadKey {
 public:
  static constexpr std::size_t kKeyBytes = 32;

  // kInvalidArgument unless key is exactly kKeyBytes long.
  static Result<AeadKey> FromBytes(SecretBytes key);
  static AeadKey Generate(Random& random);

  // A subkey for one purpose: the same master key and purpose always give the same subkey;
  // different purposes give unrelated ones. purpose is a short constant such as
  // "moatless.identity.access-key-secret.v1".
  AeadKey Derive(std::string_view purpose) const;

  std::string Seal(std::string_view plaintext, std::string_view associated_data,
                   Random& random) const;
  Result<SecretBytes> Open(std::string_view sealed, std::string_view associated_data) const;

  // The key's bytes, for writing a newly generated key to its file.
  const SecretBytes& bytes() const { return key_; }

 private:
  explicit AeadKey(SecretBytes key) : key_(std::move(key)) {}
  SecretBytes key_;
};

}  // namespace moatless::core
