#include "policy/parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace moatless::policy {
namespace {

using ::testing::HasSubstr;

std::string Doc(const std::string& statement, const std::string& version = "2012-10-17") {
  return R"({"Version":")" + version + R"(","Statement":[)" + statement + "]}";
}

std::string ErrorOf(const std::string& json, PolicyType type = PolicyType::kIdentity) {
  auto p = ParsePolicy(json, {.type = type});
  return p.ok() ? std::string("OK") : p.status().message();
}

TEST(Parser, ParsesScalarsAndArrays) {
  auto p = ParsePolicy(R"({"Version":"2012-10-17","Id":"x","Statement":{"Sid":"A","Effect":"Allow",
      "Action":"s3:GetObject","Resource":["arn:aws:s3:::b/*","arn:aws:s3:::c/*"],
      "Condition":{"Bool":{"aws:SecureTransport":false},"NumericLessThan":{"s3:max-keys":10},
                   "StringEquals":{"k":["a","b"]}}}})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->version, PolicyVersion::k2012_10_17);
  EXPECT_EQ(p->id, "x");
  ASSERT_EQ(p->statements.size(), 1u);
  const Statement& st = p->statements[0];
  EXPECT_EQ(st.sid, "A");
  EXPECT_EQ(st.actions, std::vector<std::string>{"s3:GetObject"});
  EXPECT_EQ(st.resources.size(), 2u);
  ASSERT_EQ(st.conditions.size(), 3u);
  EXPECT_EQ(st.conditions[2].values, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(st.conditions[0].values, std::vector<std::string>{"false"});
  EXPECT_EQ(st.conditions[1].values, std::vector<std::string>{"10"});
}

TEST(Parser, VersionsAndAbsentVersion) {
  EXPECT_EQ(
      ParsePolicy(Doc(R"({"Effect":"Allow","Action":"*","Resource":"*"})", "2008-10-17"))->version,
      PolicyVersion::k2008_10_17);
  EXPECT_EQ(ParsePolicy(R"({"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}})")->version,
            PolicyVersion::kAbsent);
  EXPECT_THAT(ErrorOf(Doc(R"({"Effect":"Allow","Action":"*","Resource":"*"})", "2012-10-18")),
              HasSubstr("Version"));
}

TEST(Parser, RejectsUnknownKeysNamingStatementAndSid) {
  EXPECT_THAT(
      ErrorOf(Doc(R"({"Sid":"S1","Effect":"Allow","Action":"*","Resource":"*","Actions":"x"})")),
      HasSubstr("statement 0 (Sid \"S1\"): unknown element \"Actions\""));
  EXPECT_THAT(ErrorOf(R"({"Statement":[],"Extra":1})"), HasSubstr("unknown element \"Extra\""));
}

TEST(Parser, ActionAndNotActionExactlyOne) {
  EXPECT_THAT(ErrorOf(Doc(R"({"Effect":"Allow","Action":"*","NotAction":"s3:*","Resource":"*"})")),
              HasSubstr("both Action and NotAction"));
  EXPECT_THAT(ErrorOf(Doc(R"({"Effect":"Allow","Resource":"*"})")),
              HasSubstr("exactly one of Action or NotAction"));
  EXPECT_THAT(ErrorOf(Doc(R"({"Effect":"Allow","Action":"*"})")),
              HasSubstr("exactly one of Resource or NotResource"));
  EXPECT_THAT(ErrorOf(Doc(R"({"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"})")),
              HasSubstr("both Resource and NotResource"));
}

TEST(Parser, EdgeCase43EffectIsCaseSensitive) {
  EXPECT_THAT(ErrorOf(Doc(R"({"Sid":"X","Effect":"allow","Action":"*","Resource":"*"})")),
              HasSubstr("statement 0 (Sid \"X\"): Effect: must be exactly \"Allow\" or \"Deny\""));
}

TEST(Parser, RejectsUnknownConditionOperator) {
  EXPECT_THAT(
      ErrorOf(Doc(
          R"({"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqualz":{"k":"v"}}})")),
      HasSubstr("unknown condition operator \"StringEqualz\""));
}

TEST(Parser, EdgeCase18WildcardInServiceSegmentIsInvalid) {
  EXPECT_THAT(ErrorOf(Doc(R"({"Effect":"Allow","Action":"*","Resource":"arn:aws:s*:::x"})")),
              HasSubstr("wildcard service segment"));
}

TEST(Parser, PrincipalOnlyInResourcePolicies) {
  const std::string st =
      Doc(R"({"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*"})");
  EXPECT_THAT(ErrorOf(st, PolicyType::kIdentity),
              HasSubstr("Principal: not allowed in a identity"));
  EXPECT_THAT(ErrorOf(st, PolicyType::kBoundary), HasSubstr("Principal: not allowed"));
  EXPECT_EQ(ErrorOf(st, PolicyType::kResource), "OK");
  EXPECT_THAT(
      ErrorOf(Doc(R"({"Effect":"Allow","Action":"*","Resource":"*"})"), PolicyType::kResource),
      HasSubstr("needs Principal or NotPrincipal"));
  EXPECT_THAT(ErrorOf(Doc(R"({"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1234:user/a*"},
                              "Action":"*","Resource":"*"})"),
                      PolicyType::kResource),
              HasSubstr("partial wildcards"));
  // Trust policies may omit Resource.
  EXPECT_EQ(ErrorOf(Doc(R"({"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},
                            "Action":"sts:AssumeRole"})"),
                    PolicyType::kTrust),
            "OK");
}

TEST(Parser, RejectsDuplicateSid) {
  EXPECT_THAT(ErrorOf(Doc(R"({"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},
                            {"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"})")),
              HasSubstr("statement 1 (Sid \"A\"): Sid: duplicate Sid"));
}

TEST(Parser, RejectsMalformedTypedConditionValues) {
  auto cond = [](const std::string& c) {
    return ErrorOf(
        Doc(R"({"Sid":"C","Effect":"Allow","Action":"*","Resource":"*","Condition":)" + c + "}"));
  };
  EXPECT_THAT(cond(R"({"IpAddress":{"aws:SourceIp":"10.0.0.0/40"}})"),
              HasSubstr("Condition.IpAddress.aws:SourceIp: \"10.0.0.0/40\" is not a CIDR block"));
  EXPECT_THAT(cond(R"({"DateGreaterThan":{"aws:CurrentTime":"soon"}})"),
              HasSubstr("not an ISO 8601 date"));
  EXPECT_THAT(cond(R"({"NumericEquals":{"k":"1x"}})"), HasSubstr("is not a number"));
  EXPECT_THAT(cond(R"({"Bool":{"k":"yes"}})"), HasSubstr("not a boolean"));
  EXPECT_THAT(cond(R"({"BinaryEquals":{"k":"%%%"}})"), HasSubstr("base64"));
  EXPECT_THAT(cond(R"({"NumericEquals":{"k":"${aws:x}"}})"),
              HasSubstr("policy variables are not allowed"));
  EXPECT_THAT(cond(R"({"StringEquals":{"k":null}})"), HasSubstr("string, boolean or number"));
  EXPECT_THAT(cond(R"({"StringEquals":{"k":[]}})"), HasSubstr("empty list"));
}

TEST(Parser, VariablesOnlyInResourceSegment) {
  EXPECT_THAT(
      ErrorOf(Doc(R"({"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:${aws:region}::b"})")),
      HasSubstr("only in the resource segment"));
  EXPECT_EQ(
      ErrorOf(Doc(R"({"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:${aws:region}::b"})",
                  "2008-10-17")),
      "OK");
}

TEST(Parser, SizeLimitsAndMalformedJson) {
  ParseOptions small{.max_document_bytes = 10};
  auto p = ParsePolicy(Doc(R"({"Effect":"Allow","Action":"*","Resource":"*"})"), small);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), core::StatusCode::kPayloadTooLarge);
  ParseOptions few{.max_statements = 1};
  auto q = ParsePolicy(Doc(R"({"Effect":"Allow","Action":"*","Resource":"*"},
                             {"Effect":"Allow","Action":"*","Resource":"*"})"),
                       few);
  ASSERT_FALSE(q.ok());
  EXPECT_THAT(q.status().message(), HasSubstr("exceed the limit of 1"));
  EXPECT_THAT(ErrorOf("{"), HasSubstr("malformed JSON"));
  EXPECT_THAT(ErrorOf("[]"), HasSubstr("must be a JSON object"));
  std::string deep(1000, '[');
  EXPECT_THAT(ErrorOf(deep), HasSubstr("malformed JSON"));
  EXPECT_THAT(ErrorOf(Doc(R"({"Effect":"Allow","Action":")" + std::string(3000, 'a') +
                          R"(","Resource":"*"})")),
              HasSubstr("longer than"));
}

TEST(Parser, RejectsDuplicateJsonKeys) {
  EXPECT_THAT(ErrorOf(Doc(R"({"Effect":"Deny","Action":"*","Resource":"*","Effect":"Allow"})")),
              HasSubstr("duplicate JSON key \"Effect\""));
  // The same key in sibling objects is fine.
  EXPECT_EQ(ErrorOf(Doc(R"({"Effect":"Allow","Action":"*","Resource":"*"},
                          {"Effect":"Deny","Action":"s3:*","Resource":"*"})")),
            "OK");
}

TEST(Parser, NotPrincipalNotAllowedInTrustPolicies) {
  EXPECT_THAT(ErrorOf(Doc(R"({"Sid":"T","Effect":"Allow","NotPrincipal":{"AWS":"123456789012"},
                              "Action":"sts:AssumeRole"})"),
                      PolicyType::kTrust),
              HasSubstr("statement 0 (Sid \"T\"): NotPrincipal: not allowed in a trust policy"));
}

TEST(Parser, NullTakesNoQualifiers) {
  EXPECT_THAT(ErrorOf(Doc(R"({"Effect":"Allow","Action":"*","Resource":"*",
                              "Condition":{"NullIfExists":{"k":"true"}}})")),
              HasSubstr("Null takes neither IfExists nor a set qualifier"));
}

TEST(Parser, UnknownPrincipalTypeAndBadPrincipalString) {
  EXPECT_THAT(
      ErrorOf(Doc(R"({"Effect":"Allow","Principal":{"Aws":"*"},"Action":"*","Resource":"*"})"),
              PolicyType::kResource),
      HasSubstr("unknown principal type \"Aws\""));
  EXPECT_THAT(
      ErrorOf(Doc(R"({"Effect":"Allow","Principal":"123456789012","Action":"*","Resource":"*"})"),
              PolicyType::kResource),
      HasSubstr("a string principal must be \"*\""));
}

TEST(Parser, ValidatePolicyAppliesTheSameRulesToBuiltPolicies) {
  Policy p;
  p.version = PolicyVersion::k2012_10_17;
  Statement st;
  st.actions = {"s3:GetObject"};
  st.has_resource = true;
  st.resources = {"*"};
  st.conditions = {{.op = "StringEqualz", .key = "k", .values = {"v"}}};
  p.statements.push_back(st);
  EXPECT_THAT(ValidatePolicy(p).message(), HasSubstr("unknown condition operator"));
  p.statements[0].conditions.clear();
  EXPECT_TRUE(ValidatePolicy(p).ok());
}

TEST(Parser, RejectsMalformedActionsAndResources) {
  EXPECT_THAT(ErrorOf(Doc(R"({"Effect":"Allow","Action":"GetObject","Resource":"*"})")),
              HasSubstr("is not \"*\" or \"service:action\""));
  EXPECT_THAT(ErrorOf(Doc(R"({"Effect":"Allow","Action":"s3:Get*","Resource":"bucket"})")),
              HasSubstr("is not \"*\" or an ARN"));
}

}  // namespace
}  // namespace moatless::policy
