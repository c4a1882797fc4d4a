#include "http/path.h"

#include <gtest/gtest.h>

namespace moatless::http {
namespace {

TEST(PathTest, SplitTargetSeparatesQuery) {
  EXPECT_EQ(SplitTarget("/a/b?x=1&y=2").path, "/a/b");
  EXPECT_EQ(SplitTarget("/a/b?x=1&y=2").query, "x=1&y=2");
  EXPECT_EQ(SplitTarget("/a?").query, "");
  EXPECT_EQ(SplitTarget("/a").path, "/a");
  EXPECT_EQ(SplitTarget("/a?b?c").query, "b?c");
}

TEST(PathTest, AcceptsOrdinaryPaths) {
  for (const char* path : {"/", "/a", "/a/b/", "/2015-03-31/functions/my-fn/invocations",
                           "/fn/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af", "/a.b/..c/d..",
                           "/~user/@x:y;z=1,2+3!$&'()*", "//double"}) {
    EXPECT_TRUE(ValidatePath(path).ok()) << path;
  }
}

TEST(PathTest, RejectsTraversalNulAndBadEncoding) {
  for (const char* path :
       {"",          "a/b",     "/..",     "/a/../b",      "/a/./b",      "/a/..",   "/.",
        "/%2e%2e/x", "/%2E%2e", "/.%2e/x", "/a/%2e",       "/a%2F..%2Fb", "/a%2f..", "/..%5Cwin",
        "/x/%00",    "/x%00y",  "/%zz",    "/%2",          "/%",          "/a b",    "/a\\..\\b",
        "/a\"b",     "/a<b>",   "/a#b",    "/caf\xc3\xa9", "/a\x01"}) {
    EXPECT_FALSE(ValidatePath(path).ok()) << path;
    EXPECT_EQ(ValidatePath(path).code(), core::StatusCode::kInvalidArgument) << path;
  }
}

TEST(PathTest, DecodesSegments) {
  auto segments = DecodePathSegments("/a/b%20c/%7Euser/");
  ASSERT_TRUE(segments.ok());
  EXPECT_EQ(*segments, (std::vector<std::string>{"a", "b c", "~user", ""}));
  EXPECT_EQ(*DecodePathSegments("/"), (std::vector<std::string>{""}));
  EXPECT_EQ(*DecodePathSegments("/role%2Fname"), (std::vector<std::string>{"role/name"}));
}

TEST(PathTest, PercentDecode) {
  EXPECT_EQ(*PercentDecode("a%41%62+c"), "aAb+c");
  EXPECT_FALSE(PercentDecode("%4").ok());
  EXPECT_FALSE(PercentDecode("%g0").ok());
}

}  // namespace
}  // namespace moatless::http
