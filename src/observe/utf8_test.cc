#include "observe/utf8.h"

#include <gtest/gtest.h>

namespace moatless::observe {
namespace {

TEST(Utf8Test, ValidInputIsUnchanged) {
  for (const std::string_view s :
       {std::string_view(""), std::string_view("plain ascii"), std::string_view("h\xC3\xA9llo"),
        std::string_view("\xE2\x82\xAC"), std::string_view("\xF0\x9F\x98\x80"),
        std::string_view("nul\0inside", 10)}) {
    EXPECT_TRUE(IsValidUtf8(s));
    EXPECT_EQ(SanitizeUtf8(s), s);
  }
}

TEST(Utf8Test, IllFormedSequencesAreReplaced) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(SanitizeUtf8("a\xFF"
                         "b"),
            "a" + r + "b");
  EXPECT_EQ(SanitizeUtf8("\xC0\xAF"), r + r);                  // overlong '/': two bad bytes
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), r + r + r);          // a surrogate
  EXPECT_EQ(SanitizeUtf8("\xF4\x90\x80\x80"), r + r + r + r);  // past U+10FFFF
  EXPECT_EQ(SanitizeUtf8("\xE2\x82"), r);                      // truncated: one maximal subpart
  EXPECT_EQ(SanitizeUtf8("\xE2\x82x"), r + "x");
  EXPECT_EQ(SanitizeUtf8("\x80"), r);
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));
  EXPECT_TRUE(IsValidUtf8(SanitizeUtf8("\xE2\x82\xF0")));
}

}  // namespace
}  // namespace moatless::observe
