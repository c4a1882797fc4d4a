#include "core/ids.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace moatless::core {
namespace {

TEST(IdsTest, UuidIsVersion4) {
  SecureRandom random;
  const std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewUuid(random);
    EXPECT_TRUE(std::regex_match(id, uuid)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(IdsTest, Base32AlphabetAndLength) {
  SecureRandom random;
  const std::string s = RandomBase32(random, 16);
  EXPECT_EQ(s.size(), 16u);
  EXPECT_EQ(s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), std::string::npos);
}

TEST(IdsTest, DeterministicRandomReproduces) {
  DeterministicRandom a(42), b(42), c(43);
  EXPECT_EQ(NewId(a, "dep"), NewId(b, "dep"));
  EXPECT_NE(RandomHex(a, 8), RandomHex(c, 8));
  EXPECT_EQ(NewId(a, "dep").size(), std::string("dep-").size() + 16);
}

TEST(IdsTest, HexEncode) { EXPECT_EQ(HexEncode(std::string("\x00\xff\x10", 3)), "00ff10"); }

TEST(RandomTest, UniformStaysInRange) {
  SecureRandom random;
  for (int i = 0; i < 1000; ++i) EXPECT_LT(random.Uniform(7), 7u);
}

}  // namespace
}  // namespace moatless::core

namespace moatless::core {
namespace {

// Small fills come from a buffered block: across many block refills and mixed sizes, no output
// repeats and none is all zeros (a wiped byte handed out twice would show as zeros).
TEST(RandomTest, BufferedFillsNeverRepeat) {
  SecureRandom random;
  std::set<std::string> seen;
  for (int i = 0; i < 5000; ++i) {
    std::string bytes(i % 3 == 0 ? 16 : (i % 3 == 1 ? 37 : 64), '\0');
    random.Fill(std::span(reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size()));
    EXPECT_NE(bytes, std::string(bytes.size(), '\0'));
    EXPECT_TRUE(seen.insert(bytes).second);
  }
  std::string big(1000, '\0');
  random.Fill(std::span(reinterpret_cast<std::uint8_t*>(big.data()), big.size()));
  EXPECT_NE(big, std::string(1000, '\0'));
}

}  // namespace
}  // namespace moatless::core
