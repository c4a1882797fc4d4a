// Random: the only source of randomness. SecureRandom (libsodium's CSPRNG) is what the
// composition root passes everywhere, including to anything that makes keys, ids or nonces;
// tests may pass a DeterministicRandom to get reproducible ids. Both are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

namespace moatless::core {

class Random {
 public:
  virtual ~Random() = default;
  virtual void Fill(std::span<std::uint8_t> out) = 0;
  std::uint64_t Uint64();
  // Uniform in [0, bound); bound > 0.
  std::uint64_t Uniform(std::uint64_t bound);
};

class SecureRandom final : public Random {
 public:
  SecureRandom();  // initialises libsodium (fatal if it cannot: there is no safe fallback)
  void Fill(std::span<std::uint8_t> out) override;
};

// Not cryptographically secure: a SplitMix64 stream for reproducible tests only.
class DeterministicRandom final : public Random {
 public:
  explicit DeterministicRandom(std::uint64_t seed) : state_(seed) {}
  void Fill(std::span<std::uint8_t> out) override;

 private:
  std::atomic<std::uint64_t> state_;
};

}  // namespace moatless::core
