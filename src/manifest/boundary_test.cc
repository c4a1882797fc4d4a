#include "manifest/boundary.h"

#include <gtest/gtest.h>

#include "policy/parser.h"

namespace moatless::manifest {
namespace {

TEST(GlobsIntersectTest, ComparesPatternsAsLanguages) {
  EXPECT_TRUE(GlobsIntersect("abc", "abc"));
  EXPECT_FALSE(GlobsIntersect("abc", "abd"));
  EXPECT_TRUE(GlobsIntersect("a?c", "abc"));
  EXPECT_FALSE(GlobsIntersect("a?c", "ac"));
  EXPECT_TRUE(GlobsIntersect("a*", "*b"));  // "ab"
  EXPECT_TRUE(GlobsIntersect("secretsmanager:get*", "secretsmanager:*value"));
  EXPECT_FALSE(GlobsIntersect("lambda:*", "secretsmanager:*"));
  EXPECT_TRUE(GlobsIntersect("*", ""));
  EXPECT_FALSE(GlobsIntersect("?", ""));
  EXPECT_TRUE(GlobsIntersect("a*b*c", "*x*"));  // "axbc"
  EXPECT_FALSE(GlobsIntersect("notes_dev_*", "notes_prod_*"));
  EXPECT_TRUE(GlobsIntersect("secret:dev/notes/*", "secret:dev/notes/db-??????"));
  EXPECT_FALSE(GlobsIntersect("secret:dev/notes/*", "secret:dev/other/db-??????"));
}

TEST(DefaultBoundaryTest, IsAValidBoundaryConfinedToTheAppAndStage) {
  const std::string boundary = DefaultBoundary("123456789012", "notes", "dev");
  ASSERT_TRUE(policy::ParsePolicy(boundary, {.type = policy::PolicyType::kBoundary}).ok())
      << boundary;
  EXPECT_NE(boundary.find("secret:dev/notes/*"), std::string::npos);
  EXPECT_NE(boundary.find("function:notes_dev_*"), std::string::npos);
  // Rotation functions make passwords with GetRandomPassword, which names no resource.
  auto dead = DeadStatements(R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",)"
                             R"("Action":"secretsmanager:GetRandomPassword","Resource":"*"}]})",
                             boundary);
  ASSERT_TRUE(dead.ok()) << dead.status();
  EXPECT_TRUE(dead->empty());
}

std::string Policy(std::string statements) {
  return R"({"Version":"2012-10-17","Statement":[)" + statements + "]}";
}

TEST(DeadStatementsTest, FindsStatementsTheBoundaryCannotAllow) {
  const std::string boundary = DefaultBoundary("123456789012", "notes", "dev");
  const std::string policy = Policy(
      // 0: own secret — live
      R"({"Effect":"Allow","Action":"secretsmanager:GetSecretValue",)"
      R"("Resource":"arn:aws:secretsmanager:us-east-1:123456789012:secret:dev/notes/db-??????"},)"
      // 1: another app's secret — dead
      R"({"Effect":"Allow","Action":"secretsmanager:GetSecretValue",)"
      R"("Resource":"arn:aws:secretsmanager:us-east-1:123456789012:secret:dev/billing/db-??????"},)"
      // 2: a service the boundary does not name — dead
      R"({"Effect":"Allow","Action":"s3:GetObject","Resource":"*"},)"
      // 3: wildcards that reach the app's own functions — live
      R"({"Effect":"Allow","Action":"lambda:Invoke*","Resource":"*"},)"
      // 4: Deny statements are never dead: they only take away
      R"({"Effect":"Deny","Action":"s3:*","Resource":"*"},)"
      // 5: NotAction cannot be proven dead here
      R"({"Effect":"Allow","NotAction":"s3:*","Resource":"*"},)"
      // 6: another stage of the same app — dead
      R"({"Effect":"Allow","Action":"lambda:InvokeFunction",)"
      R"("Resource":"arn:aws:lambda:us-east-1:123456789012:function:notes_prod_get-note"})");
  auto dead = DeadStatements(policy, boundary);
  ASSERT_TRUE(dead.ok()) << dead.status();
  std::vector<std::size_t> indexes;
  for (const DeadStatement& d : *dead) indexes.push_back(d.index);
  EXPECT_EQ(indexes, (std::vector<std::size_t>{1, 2, 6}));
  EXPECT_NE((*dead)[1].statement.find("s3:GetObject"), std::string::npos);
}

TEST(DeadStatementsTest, ConditionsAndVariablesCountAsPossiblyAllowed) {
  const std::string boundary = Policy(
      R"({"Effect":"Allow","Action":"secretsmanager:*","Resource":"arn:aws:secretsmanager:*:*:secret:${aws:PrincipalTag/team}/*",)"
      R"("Condition":{"Bool":{"aws:SecureTransport":"true"}}})");
  auto dead = DeadStatements(
      Policy(
          R"({"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:1:secret:x/y"})"),
      boundary);
  ASSERT_TRUE(dead.ok()) << dead.status();
  EXPECT_TRUE(dead->empty());
  EXPECT_FALSE(DeadStatements("{", boundary).ok());
}

}  // namespace
}  // namespace moatless::manifest
