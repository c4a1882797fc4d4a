#include "policy/matching.h"

#include <gtest/gtest.h>

namespace moatless::policy {
namespace {

TEST(GlobMatch, QuestionMarkAndStarStepOverWholeUtf8Characters) {
  EXPECT_TRUE(GlobMatch("caf?", "caf\xC3\xA9", false));
  EXPECT_FALSE(GlobMatch("caf??", "caf\xC3\xA9", false));
  EXPECT_TRUE(GlobMatch("*?", "\xE2\x82\xAC", false));  // one 3-byte character
  EXPECT_FALSE(GlobMatch("*??", "\xE2\x82\xAC", false));
  EXPECT_TRUE(GlobMatch("?", "\xFF", false));  // a malformed byte counts as one character
}

TEST(GlobMatch, StarAndQuestionMark) {
  EXPECT_TRUE(GlobMatch("s3:get?bject", "s3:getobject", false));
  EXPECT_TRUE(GlobMatch("*", "", false));
  EXPECT_TRUE(GlobMatch("a*b*c", "aXXbYYc", false));
  EXPECT_FALSE(GlobMatch("a*b*c", "aXXbYY", false));
  EXPECT_TRUE(GlobMatch("IAM:List*", "iam:listusers", true));
  EXPECT_FALSE(GlobMatch("IAM:List*", "iam:listusers", false));
}

TEST(GlobMatch, EscapedCharactersAreLiteral) {
  EXPECT_TRUE(GlobMatch(GlobEscape("a*b"), "a*b", false));
  EXPECT_FALSE(GlobMatch(GlobEscape("a*b"), "axb", false));
  EXPECT_FALSE(GlobMatch(GlobEscape("a?b"), "axb", false));
}

TEST(ConditionOperator, ParsesQualifiersAndSuffix) {
  auto op = ParseConditionOperator("ForAnyValue:StringNotLikeIfExists");
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(op->family, OperatorFamily::kString);
  EXPECT_EQ(op->test, OperatorTest::kLike);
  EXPECT_TRUE(op->negated);
  EXPECT_TRUE(op->if_exists);
  EXPECT_EQ(op->set, SetQualifier::kForAnyValue);
  EXPECT_FALSE(ParseConditionOperator("StringEqualz").ok());
  EXPECT_FALSE(ParseConditionOperator("NullIfExists").ok());
  EXPECT_FALSE(ParseConditionOperator("ForSomeValues:StringEquals").ok());
}

TEST(TypedValues, Numbers) {
  EXPECT_DOUBLE_EQ(*ParseNumber("10.0"), 10.0);
  EXPECT_DOUBLE_EQ(*ParseNumber("-3"), -3.0);
  EXPECT_FALSE(ParseNumber("1e3").ok());
  EXPECT_FALSE(ParseNumber("ten").ok());
  EXPECT_FALSE(ParseNumber("").ok());
  EXPECT_FALSE(ParseNumber("1.").ok());
}

TEST(TypedValues, DatesIsoAndEpochAgree) {
  EXPECT_EQ(*ParseDateMillis("2020-01-01T00:00:00Z"), 1577836800000);
  EXPECT_EQ(*ParseDateMillis("1577836800"), 1577836800000);
  EXPECT_EQ(*ParseDateMillis("2020-01-01"), 1577836800000);
  EXPECT_EQ(*ParseDateMillis("2020-01-01T01:00:00+01:00"), 1577836800000);
  EXPECT_EQ(*ParseDateMillis("2020-01-01T00:00:00.250Z"), 1577836800250);
  EXPECT_FALSE(ParseDateMillis("2020-02-30").ok());
  EXPECT_FALSE(ParseDateMillis("yesterday").ok());
  EXPECT_FALSE(ParseDateMillis("2020-01-01T25:00:00Z").ok());
}

TEST(TypedValues, Cidrs) {
  auto net = ParseCidr("203.0.113.0/24");
  ASSERT_TRUE(net.ok());
  EXPECT_TRUE(CidrContains(*net, *ParseIpAddress("203.0.113.255")));
  EXPECT_FALSE(CidrContains(*net, *ParseIpAddress("203.0.114.0")));
  auto bare = ParseCidr("10.0.0.1");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->prefix, 32);
  auto v6 = ParseCidr("2001:DB8:1234:5678::/64");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(CidrContains(*v6, *ParseIpAddress("2001:db8:1234:5678:abcd::1")));
  EXPECT_FALSE(CidrContains(*v6, *ParseIpAddress("2001:db8:1234:5679::1")));
  EXPECT_FALSE(CidrContains(*v6, *ParseIpAddress("10.0.0.1")));
  EXPECT_FALSE(ParseCidr("10.0.0.0/33").ok());
  EXPECT_FALSE(ParseCidr("10.0.0/8").ok());
  EXPECT_FALSE(ParseCidr("not-an-ip").ok());
}

TEST(TypedValues, BoolAndBase64) {
  EXPECT_TRUE(*ParseBool("True"));
  EXPECT_FALSE(*ParseBool("false"));
  EXPECT_FALSE(ParseBool("yes").ok());
  EXPECT_TRUE(ValidateBase64("QmluYXJ5").ok());
  EXPECT_TRUE(ValidateBase64("QQ==").ok());
  EXPECT_FALSE(ValidateBase64("QQ=").ok());
  EXPECT_FALSE(ValidateBase64("Q!==").ok());
}

TEST(Template, VariablesDefaultsAndEscapes) {
  auto t = ParseTemplate("home/${aws:username}/${aws:PrincipalTag/team, 'company-wide'}${*}", true);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->parts.size(), 5u);
  EXPECT_TRUE(t->parts[1].is_variable);
  EXPECT_EQ(t->parts[1].text, "aws:username");
  EXPECT_EQ(t->parts[3].text, "aws:principaltag/team");
  EXPECT_EQ(t->parts[3].default_value, "company-wide");
  EXPECT_TRUE(t->parts[4].literal_escape);
  auto literal = ParseTemplate("home/${aws:username}", false);
  ASSERT_TRUE(literal.ok());
  EXPECT_FALSE(literal->has_variables());
  EXPECT_FALSE(ParseTemplate("a${aws:username", true).ok());
  EXPECT_FALSE(ParseTemplate("${}", true).ok());
}

}  // namespace
}  // namespace moatless::policy
