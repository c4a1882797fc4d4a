#include "core/secret_bytes.h"

#include <gtest/gtest.h>

#include <sstream>

namespace moatless::core {
namespace {

TEST(SecretBytesTest, PrintsRedacted) {
  SecretBytes secret(std::string_view("hunter2"));
  std::ostringstream os;
  os << secret;
  EXPECT_EQ(os.str(), "[redacted]");
  EXPECT_EQ(ToString(secret), "[redacted]");
  EXPECT_EQ(secret.Reveal(), "hunter2");
}

TEST(SecretBytesTest, TakeFromWipesSource) {
  std::string source = "super-secret-token";
  SecretBytes secret = SecretBytes::TakeFrom(source);
  EXPECT_TRUE(source.empty());
  EXPECT_EQ(secret.Reveal(), "super-secret-token");
}

TEST(SecretBytesTest, MoveLeavesSourceEmpty) {
  SecretBytes a(std::string_view("k1"));
  SecretBytes b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the contract under test
  EXPECT_EQ(b.Reveal(), "k1");
}

TEST(SecretBytesTest, ConstantTimeEquals) {
  SecretBytes a(std::string_view("abc")), b(std::string_view("abc")), c(std::string_view("abd"));
  EXPECT_TRUE(a.ConstantTimeEquals(b));
  EXPECT_FALSE(a.ConstantTimeEquals(c));
  EXPECT_FALSE(a.ConstantTimeEquals(SecretBytes(std::string_view("ab"))));
}

// The allocator wipes storage before handing it back, so freed memory holds no secret.
TEST(SecretBytesTest, AllocatorWipesOnDeallocate) {
  internal::WipingAllocator<std::uint8_t> alloc;
  std::uint8_t* p = alloc.allocate(8);
  for (int i = 0; i < 8; ++i) p[i] = 0xAA;
  internal::WipeMemory(p, 8);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(p[i], 0);
  alloc.deallocate(p, 8);
}

}  // namespace
}  // namespace moatless::core
