#include "core/random.h"

#include <sodium.h>

#include <cstring>

#include "core/check.h"

namespace moatless::core {

std::uint64_t Random::Uint64() {
  std::uint64_t v = 0;
  Fill(std::span(reinterpret_cast<std::uint8_t*>(&v), sizeof v));
  return v;
}

std::uint64_t Random::Uniform(std::uint64_t bound) {
  MOATLESS_CHECK(bound > 0, "Uniform(0)");
  // Rejection sampling: no modulo bias.
  const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  for (;;) {
    const std::uint64_t v = Uint64();
    if (v < limit) return v % bound;
  }
}

SecureRandom::SecureRandom() {
  MOATLESS_CHECK(sodium_init() >= 0, "libsodium failed to initialise");
}

SecureRandom::~SecureRandom() { sodium_memzero(block_.data(), block_.size()); }

void SecureRandom::Fill(std::span<std::uint8_t> out) {
  if (out.size() > kMaxBufferedRequest) {
    randombytes_buf(out.data(), out.size());
    return;
  }
  std::lock_guard lock(mu_);
  if (kBlockBytes - used_ < out.size()) {
    randombytes_buf(block_.data(), block_.size());
    used_ = 0;
  }
  std::memcpy(out.data(), block_.data() + used_, out.size());
  sodium_memzero(block_.data() + used_, out.size());
  used_ += out.size();
}

void DeterministicRandom::Fill(std::span<std::uint8_t> out) {
  std::size_t i = 0;
  while (i < out.size()) {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (int b = 0; b < 8 && i < out.size(); ++b, ++i)
      out[i] = static_cast<std::uint8_t>(z >> (8 * b));
  }
}

}  // namespace moatless::core
