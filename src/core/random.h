// Random: the only source of randomness. SecureRandom (libsodium's CSPRNG) is what the
// composition root passes everywhere, including to anything that makes keys, ids or nonces;
// tests may pass a DeterministicRandom to get reproducible ids. Both are thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
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

// Small requests (ids, nonces: up to 64 bytes) are served from a 4 KiB block drawn from the
// kernel in one call, so a request id does not cost a getrandom(2) system call; bytes are wiped
// from the block as they are handed out, so memory never holds output already used.
class SecureRandom final : public Random {
 public:
  SecureRandom();  // initialises libsodium (fatal if it cannot: there is no safe fallback)
  ~SecureRandom() override;
  void Fill(std::span<std::uint8_t> out) override;

 private:
  static constexpr std::size_t kBlockBytes = 4096;
  static constexpr std::size_t kMaxBufferedRequest = 64;
  std::mutex mu_;
  std::array<std::uint8_t, kBlockBytes> block_{};
  std::size_t used_ = kBlockBytes;  // bytes of block_ already handed out (and wiped)
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
