#include "core/aead.h"

#include <sodium.h>

#include <array>
#include <cstdint>
#include <vector>

#include "core/check.h"

namespace moatless::core {
namespace {

constexpr char kVersion = 0x01;
constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

Result<AeadKey> AeadKey::FromBytes(SecretBytes key) {
  MOATLESS_CHECK(sodium_init() >= 0, "libsodium failed to initialise");
  if (key.size() != kKeyBytes) {
    return InvalidArgumentError("a key must be " + std::to_string(kKeyBytes) + " bytes, not " +
                                std::to_string(key.size()));
  }
  return AeadKey(std::move(key));
}

AeadKey AeadKey::Generate(Random& random) {
  MOATLESS_CHECK(sodium_init() >= 0, "libsodium failed to initialise");
  SecretBytes key;
  key.Resize(kKeyBytes);
  random.Fill(key.MutableBytes());
  return AeadKey(std::move(key));
}

AeadKey AeadKey::Derive(std::string_view purpose) const {
  // BLAKE2b keyed with the master key over the purpose string: a PRF, so subkeys for different
  // purposes are independent.
  SecretBytes sub;
  sub.Resize(kKeyBytes);
  const int rc = crypto_generichash(sub.MutableBytes().data(), kKeyBytes, Bytes(purpose),
                                    purpose.size(), key_.RevealBytes().data(), key_.size());
  MOATLESS_CHECK(rc == 0, "crypto_generichash failed");
  return AeadKey(std::move(sub));
}

std::string AeadKey::Seal(std::string_view plaintext, std::string_view associated_data,
                          Random& random) const {
  std::string out(1 + kNonceBytes + plaintext.size() + kTagBytes, '\0');
  out[0] = kVersion;
  auto* nonce = reinterpret_cast<unsigned char*>(out.data() + 1);
  random.Fill(std::span<std::uint8_t>(nonce, kNonceBytes));
  unsigned long long written = 0;
  const int rc = crypto_aead_xchacha20poly1305_ietf_encrypt(
      nonce + kNonceBytes, &written, Bytes(plaintext), plaintext.size(), Bytes(associated_data),
      associated_data.size(), nullptr, nonce, key_.RevealBytes().data());
  MOATLESS_CHECK(rc == 0 && written == plaintext.size() + kTagBytes, "AEAD encryption failed");
  return out;
}

Result<SecretBytes> AeadKey::Open(std::string_view sealed, std::string_view associated_data) const {
  if (sealed.size() < 1 + kNonceBytes + kTagBytes || sealed[0] != kVersion) {
    return PermissionDeniedError("sealed data is malformed");
  }
  const auto* nonce = Bytes(sealed.substr(1, kNonceBytes));
  const std::string_view ciphertext = sealed.substr(1 + kNonceBytes);
  SecretBytes plain;
  plain.Resize(ciphertext.size() - kTagBytes);
  unsigned long long written = 0;
  const int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
      plain.MutableBytes().data(), &written, nullptr, Bytes(ciphertext), ciphertext.size(),
      Bytes(associated_data), associated_data.size(), nonce, key_.RevealBytes().data());
  if (rc != 0) return PermissionDeniedError("sealed data does not authenticate");
  plain.Resize(written);
  return plain;
}

}  // namespace moatless::core
