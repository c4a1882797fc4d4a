// SecretBytes: key material, passwords, tokens. The bytes are wiped (sodium_memzero) whenever
// their storage is released, including on reallocation; the type prints as "[redacted]" on
// every stream and formatter path, and is not implicitly convertible to a string, so a secret
// cannot reach a log or an error message by accident. Use Reveal() only at the point where the
// raw bytes are handed to a crypto call or a wire encoder. Move-only; not synchronised.
#pragma once

#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moatless::core {

namespace internal {
void WipeMemory(void* data, std::size_t size);

template <typename T>
struct WipingAllocator {
  using value_type = T;
  WipingAllocator() = default;
  template <typename U>
  WipingAllocator(const WipingAllocator<U>&) {}  // NOLINT
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) {
    WipeMemory(p, n * sizeof(T));
    std::allocator<T>().deallocate(p, n);
  }
  template <typename U>
  bool operator==(const WipingAllocator<U>&) const {
    return true;
  }
};
}  // namespace internal

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::string_view bytes) : bytes_(bytes.begin(), bytes.end()) {}
  explicit SecretBytes(std::span<const std::uint8_t> bytes) : bytes_(bytes.begin(), bytes.end()) {}
  // Takes the string's contents and wipes the source, so no copy of the secret stays behind.
  static SecretBytes TakeFrom(std::string& source);
  ~SecretBytes() { Clear(); }

  SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) { other.Clear(); }
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  // An explicit copy, for the rare case where two owners are needed.
  SecretBytes Copy() const { return SecretBytes(Reveal()); }

  std::size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  std::string_view Reveal() const {
    return std::string_view(reinterpret_cast<const char*>(bytes_.data()), bytes_.size());
  }
  std::span<const std::uint8_t> RevealBytes() const { return bytes_; }
  // Writable storage, e.g. for a key derivation to write into.
  std::span<std::uint8_t> MutableBytes() { return bytes_; }
  void Resize(std::size_t n) { bytes_.resize(n); }
  void Clear();

  // Constant-time comparison (for MACs, tokens).
  bool ConstantTimeEquals(const SecretBytes& other) const;

 private:
  std::vector<std::uint8_t, internal::WipingAllocator<std::uint8_t>> bytes_;
};

inline std::ostream& operator<<(std::ostream& os, const SecretBytes&) { return os << "[redacted]"; }
// Same as operator<<, for string building.
inline std::string ToString(const SecretBytes&) { return "[redacted]"; }

}  // namespace moatless::core
