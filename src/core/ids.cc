#include "core/ids.h"

#include <array>
#include <vector>

namespace moatless::core {

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

std::string RandomHex(Random& random, std::size_t n_bytes) {
  std::string bytes(n_bytes, '\0');
  random.Fill(std::span(reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size()));
  return HexEncode(bytes);
}

std::string NewUuid(Random& random) {
  std::array<std::uint8_t, 16> b{};
  random.Fill(b);
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(36, '-');  // 8-4-4-4-12
  std::size_t pos = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
    out[pos++] = kDigits[b[i] >> 4];
    out[pos++] = kDigits[b[i] & 0xf];
  }
  return out;
}

std::string RandomBase32(Random& random, std::size_t length) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::vector<std::uint8_t> bytes(length);
  random.Fill(bytes);
  std::string out;
  out.reserve(length);
  for (std::uint8_t b : bytes) out.push_back(kAlphabet[b & 31]);  // 256 % 32 == 0: unbiased
  return out;
}

std::string NewId(Random& random, std::string_view prefix) {
  return std::string(prefix) + "-" + RandomHex(random, 8);
}

}  // namespace moatless::core
