#include "core/secret_bytes.h"

#include <sodium.h>

namespace moatless::core {

void internal::WipeMemory(void* data, std::size_t size) {
  if (data != nullptr && size > 0) sodium_memzero(data, size);
}

SecretBytes SecretBytes::TakeFrom(std::string& source) {
  SecretBytes secret(source);
  internal::WipeMemory(source.data(), source.size());
  source.clear();
  source.shrink_to_fit();
  return secret;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Clear();
    bytes_ = std::move(other.bytes_);
    other.Clear();
  }
  return *this;
}

void SecretBytes::Clear() {
  internal::WipeMemory(bytes_.data(), bytes_.size());
  bytes_.clear();
}

bool SecretBytes::ConstantTimeEquals(const SecretBytes& other) const {
  if (bytes_.size() != other.bytes_.size()) return false;
  if (bytes_.empty()) return true;
  return sodium_memcmp(bytes_.data(), other.bytes_.data(), bytes_.size()) == 0;
}

}  // namespace moatless::core
