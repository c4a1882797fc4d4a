#include "policy/evaluator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace moatless::policy {
namespace {

using ::testing::HasSubstr;

constexpr char kAccount[] = "111122223333";
constexpr char kRoleArn[] = "arn:aws:iam::111122223333:role/fn";
constexpr char kSessionArn[] = "arn:aws:sts::111122223333:assumed-role/fn/s1";
constexpr char kUserArn[] = "arn:aws:iam::111122223333:user/alice";
constexpr char kSecret[] = "arn:aws:secretsmanager:us-east-1:111122223333:secret:db";

CompiledPolicyPtr Compile(PolicyType type, const std::string& statements,
                          const std::string& name = "p",
                          const std::string& version = "2012-10-17") {
  std::string doc = "{";
  if (!version.empty()) doc += R"("Version":")" + version + R"(",)";
  doc += R"("Statement":[)" + statements + "]}";
  auto r = CompiledPolicy::FromJson(doc, name, {.type = type});
  EXPECT_TRUE(r.ok()) << r.status() << " in " << doc;
  return r.ok() ? *r : nullptr;
}

CompiledPolicyPtr Identity(const std::string& statements,
                           const std::string& version = "2012-10-17") {
  return Compile(PolicyType::kIdentity, statements, "identity", version);
}

std::string Stmt(const std::string& effect, const std::string& action, const std::string& resource,
                 const std::string& extra = "") {
  return R"({"Effect":")" + effect + R"(","Action":)" + action + R"(,"Resource":)" + resource +
         (extra.empty() ? "" : "," + extra) + "}";
}

const std::string kAllowAll = Stmt("Allow", R"("*")", R"("*")");

RequestContext SessionRequest(const std::string& action = "secretsmanager:GetSecretValue",
                              const std::string& resource = kSecret) {
  RequestContext r;
  r.principal_arn = kSessionArn;
  r.principal_kind = PrincipalKind::kRoleSession;
  r.principal_account = kAccount;
  r.issuer_arn = kRoleArn;
  r.action = action;
  r.resource = resource;
  return r;
}

RequestContext UserRequest(const std::string& action = "secretsmanager:GetSecretValue") {
  RequestContext r = SessionRequest(action);
  r.principal_arn = kUserArn;
  r.principal_kind = PrincipalKind::kUser;
  r.issuer_arn.clear();
  return r;
}

Decision Decide(const RequestContext& r, const PolicySet& set) { return Evaluate(r, set).decision; }

// Evaluates an Allow-everything identity policy guarded by one condition block.
bool Cond(const std::string& condition, const RequestContext& r,
          const std::string& version = "2012-10-17") {
  PolicySet set;
  set.identity = {
      Identity(Stmt("Allow", R"("*")", R"("*")", R"("Condition":)" + condition), version)};
  if (set.identity[0] == nullptr) return false;
  return Evaluate(r, set).allowed();
}

CompiledPolicyPtr ResourcePolicy(const std::string& principal,
                                 const std::string& effect = "Allow") {
  return Compile(PolicyType::kResource,
                 R"({"Sid":"Grant","Effect":")" + effect + R"(","Principal":)" + principal +
                     R"(,"Action":"secretsmanager:*","Resource":"*"})",
                 "secret-policy");
}

CompiledPolicyPtr DenyingBoundary() {
  return Compile(PolicyType::kBoundary, Stmt("Allow", R"("s3:*")", R"("*")"), "boundary");
}

// --- §1.8 edge-case table -------------------------------------------------------------------

TEST(EdgeCase, 01_IdentityAllowBoundaryWithoutAllowIsImplicitDeny) {
  PolicySet set{.identity = {Identity(kAllowAll)}, .boundary = DenyingBoundary()};
  auto result = Evaluate(SessionRequest(), set);
  EXPECT_EQ(result.decision, Decision::kImplicitlyDenied);
  EXPECT_EQ(result.missing_allow, Layer::kBoundary);
}

TEST(EdgeCase, 02_ResourcePolicyGrantsRoleArnBoundaryDoesNotAllow) {
  PolicySet set{.boundary = DenyingBoundary(),
                .resource = ResourcePolicy(R"({"AWS":")" + std::string(kRoleArn) + R"("})")};
  EXPECT_EQ(Decide(SessionRequest(), set), Decision::kImplicitlyDenied);
}

TEST(EdgeCase, 03_ResourcePolicyGrantsSessionArnIgnoresBoundary) {
  PolicySet set{.boundary = DenyingBoundary(),
                .resource = ResourcePolicy(R"({"AWS":")" + std::string(kSessionArn) + R"("})")};
  EXPECT_EQ(Decide(SessionRequest(), set), Decision::kAllowed);
}

TEST(EdgeCase, 04_ResourcePolicyGrantsUserArnIgnoresIdentityAndBoundary) {
  PolicySet set{.boundary = DenyingBoundary(),
                .resource = ResourcePolicy(R"({"AWS":")" + std::string(kUserArn) + R"("})")};
  EXPECT_EQ(Decide(UserRequest(), set), Decision::kAllowed);
}

TEST(EdgeCase, 05_FederatedUserWithoutSessionPolicyIsDenied) {
  RequestContext r = SessionRequest();
  r.principal_arn = "arn:aws:sts::111122223333:federated-user/bob";
  r.principal_kind = PrincipalKind::kFederatedUser;
  r.issuer_arn = "arn:aws:iam::111122223333:user/bob";
  PolicySet set{.identity = {Identity(kAllowAll)}};
  auto result = Evaluate(r, set);
  EXPECT_EQ(result.decision, Decision::kImplicitlyDenied);
  EXPECT_EQ(result.missing_allow, Layer::kSession);
}

TEST(EdgeCase, 06_RoleSessionWithoutSessionPolicyIsAllowed) {
  PolicySet set{.identity = {Identity(kAllowAll)}};
  EXPECT_EQ(Decide(SessionRequest(), set), Decision::kAllowed);
}

TEST(EdgeCase, 07_SessionPolicyAllowsButIdentityDoesNot) {
  PolicySet set{.identity = {Identity(Stmt("Allow", R"("s3:*")", R"("*")"))},
                .session = Compile(PolicyType::kSession, kAllowAll, "session")};
  auto result = Evaluate(SessionRequest(), set);
  EXPECT_EQ(result.decision, Decision::kImplicitlyDenied);
  EXPECT_EQ(result.missing_allow, Layer::kIdentity);
}

TEST(EdgeCase, 08_GuardrailAllowAtRootOnlyNotAtLowerLevelDenies) {
  PolicySet set{.identity = {Identity(kAllowAll)},
                .guardrails = {{Compile(PolicyType::kGuardrail, kAllowAll, "root")},
                               {Compile(PolicyType::kGuardrail,
                                        Stmt("Allow", R"("s3:*")", R"("*")"), "stage")}}};
  auto result = Evaluate(SessionRequest(), set);
  EXPECT_EQ(result.decision, Decision::kImplicitlyDenied);
  EXPECT_EQ(result.missing_allow, Layer::kGuardrail);
}

TEST(EdgeCase, 09_GuardrailDenyBoolIfExistsWithKeyAbsentDenies) {
  PolicySet set{.identity = {Identity(kAllowAll)},
                .guardrails = {{Compile(
                    PolicyType::kGuardrail,
                    kAllowAll + "," +
                        Stmt("Deny", R"("*")", R"("*")",
                             R"("Condition":{"BoolIfExists":{"aws:SecureTransport":"false"}})"),
                    "tls")}}};
  EXPECT_EQ(Decide(SessionRequest(), set), Decision::kExplicitlyDenied);
}

TEST(EdgeCase, 10_DenyNotPrincipalAlwaysDeniesPrincipalWithBoundary) {
  auto resource =
      Compile(PolicyType::kResource, R"({"Effect":"Deny","NotPrincipal":{"AWS":[")" +
                                         std::string(kSessionArn) + R"(",")" + kRoleArn +
                                         R"(","111122223333"]},"Action":"*","Resource":"*"})");
  PolicySet with_boundary{.identity = {Identity(kAllowAll)},
                          .boundary = Compile(PolicyType::kBoundary, kAllowAll),
                          .resource = resource};
  EXPECT_EQ(Decide(SessionRequest(), with_boundary), Decision::kExplicitlyDenied);
  PolicySet without{.identity = {Identity(kAllowAll)}, .resource = resource};
  EXPECT_EQ(Decide(SessionRequest(), without), Decision::kAllowed);
}

TEST(EdgeCase, 11_CrossAccountResourcePolicyAllowsIdentityDoesNot) {
  RequestContext r = SessionRequest();
  r.resource_account = "999988887777";
  PolicySet set{.resource = ResourcePolicy(R"({"AWS":")" + std::string(kSessionArn) + R"("})")};
  auto result = Evaluate(r, set);
  EXPECT_EQ(result.decision, Decision::kImplicitlyDenied);
  EXPECT_EQ(result.missing_allow, Layer::kIdentity);
  set.identity = {Identity(kAllowAll)};
  EXPECT_EQ(Decide(r, set), Decision::kAllowed);
}

TEST(EdgeCase, 12_KeyOrTrustPolicyMustAllowExplicitly) {
  PolicySet set{.identity = {Identity(kAllowAll)},
                .resource = ResourcePolicy(R"({"AWS":"999988887777"})"),
                .resource_policy_must_allow = true};
  auto result = Evaluate(SessionRequest(), set);
  EXPECT_EQ(result.decision, Decision::kImplicitlyDenied);
  EXPECT_EQ(result.missing_allow, Layer::kResource);
  set.resource = ResourcePolicy(R"({"AWS":"111122223333"})");
  EXPECT_EQ(Decide(SessionRequest(), set), Decision::kAllowed);
}

TEST(EdgeCase, 13_ActionMatchingIsCaseInsensitive) {
  PolicySet set{.identity = {Identity(Stmt("Allow", R"("IAM:listaccesskeys")", R"("*")"))}};
  EXPECT_EQ(Decide(SessionRequest("iam:ListAccessKeys", "*"), set), Decision::kAllowed);
}

TEST(EdgeCase, 14_QuestionMarkInAction) {
  PolicySet set{.identity = {Identity(Stmt("Allow", R"("s3:Get?bject")", R"("*")"))}};
  EXPECT_EQ(Decide(SessionRequest("s3:GetObject", "arn:aws:s3:::b/k"), set), Decision::kAllowed);
  EXPECT_EQ(Decide(SessionRequest("s3:GetObjects", "arn:aws:s3:::b/k"), set),
            Decision::kImplicitlyDenied);
}

TEST(EdgeCase, 15_NotActionAllowGrantsOtherServices) {
  PolicySet set{.identity = {Identity(R"({"Effect":"Allow","NotAction":"iam:*","Resource":"*"})")}};
  EXPECT_EQ(Decide(SessionRequest("s3:GetObject", "arn:aws:s3:::b/k"), set), Decision::kAllowed);
  EXPECT_EQ(Decide(SessionRequest("iam:CreateUser", "*"), set), Decision::kImplicitlyDenied);
}

TEST(EdgeCase, 16_NotActionWithArnResourceDoesNotMatchStarResource) {
  PolicySet set{
      .identity = {Identity(
          R"({"Effect":"Allow","NotAction":"s3:DeleteBucket","Resource":"arn:aws:s3:::*"})")}};
  EXPECT_EQ(Decide(SessionRequest("s3:ListAllMyBuckets", "*"), set), Decision::kImplicitlyDenied);
}

TEST(EdgeCase, 17_StarInResourceSegmentMatchesSlash) {
  PolicySet set{
      .identity = {Identity(Stmt("Allow", R"("s3:GetObject")", R"("arn:aws:s3:::B/*/test/*")"))}};
  for (const char* key : {"B/1/test/object.jpg", "B/1/2/test/3/object.jpg",
                          "B/1///test///object.jpg", "B//test/object.jpg", "B/1/test/"}) {
    EXPECT_EQ(Decide(SessionRequest("s3:GetObject", std::string("arn:aws:s3:::") + key), set),
              Decision::kAllowed)
        << key;
  }
  for (const char* key : {"B/1-test/object.jpg", "B/test/object.jpg", "B/1/2/test.jpg"}) {
    EXPECT_EQ(Decide(SessionRequest("s3:GetObject", std::string("arn:aws:s3:::") + key), set),
              Decision::kImplicitlyDenied)
        << key;
  }
}

TEST(EdgeCase, 18_WildcardInServiceSegmentIsRejected) {
  auto r = CompiledPolicy::FromJson(
      R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"arn:aws:s*:::x"}})",
      "p");
  EXPECT_FALSE(r.ok());
}

TEST(EdgeCase, 19_UsernameVariableForRoleSessionMatchesNothing) {
  PolicySet set{.identity = {Identity(Stmt("Allow", R"("s3:GetObject")",
                                           R"("arn:aws:s3:::home/${aws:username}/*")"))}};
  EXPECT_EQ(Decide(SessionRequest("s3:GetObject", "arn:aws:s3:::home/fn/x"), set),
            Decision::kImplicitlyDenied);
  RequestContext user = SessionRequest("s3:GetObject", "arn:aws:s3:::home/alice/x");
  user.context.Set("aws:username", "alice");
  EXPECT_EQ(Decide(user, set), Decision::kAllowed);
}

TEST(EdgeCase, 20_Version2008VariablesAreLiteral) {
  const std::string st =
      Stmt("Allow", R"("s3:GetObject")", R"("arn:aws:s3:::home/${aws:username}")");
  PolicySet set{.identity = {Identity(st, "2008-10-17")}};
  RequestContext r = SessionRequest("s3:GetObject", "arn:aws:s3:::home/${aws:username}");
  r.context.Set("aws:username", "alice");
  EXPECT_EQ(Decide(r, set), Decision::kAllowed);
  EXPECT_EQ(Decide(SessionRequest("s3:GetObject", "arn:aws:s3:::home/alice"), set),
            Decision::kImplicitlyDenied);
  PolicySet absent{.identity = {Identity(st, "")}};
  EXPECT_EQ(Decide(r, absent), Decision::kAllowed);
}

TEST(EdgeCase, 21_EscapedStarInStringLikeIsLiteral) {
  RequestContext r = SessionRequest();
  r.context.Set("k", "a*b");
  EXPECT_TRUE(Cond(R"({"StringLike":{"k":"a${*}b"}})", r));
  r.context.Set("k", "axb");
  EXPECT_FALSE(Cond(R"({"StringLike":{"k":"a${*}b"}})", r));
}

TEST(EdgeCase, 22_StringEqualsStarIsLiteral) {
  RequestContext r = SessionRequest();
  r.context.Set("k", "*");
  EXPECT_TRUE(Cond(R"({"StringEquals":{"k":"*"}})", r));
  r.context.Set("k", "x");
  EXPECT_FALSE(Cond(R"({"StringEquals":{"k":"*"}})", r));
}

TEST(EdgeCase, 23_ConditionKeysAreCaseInsensitive) {
  RequestContext r = SessionRequest();
  r.context.Set("aws:SourceIp", "10.0.0.1");
  EXPECT_TRUE(Cond(R"({"IpAddress":{"aws:sourceip":"10.0.0.0/8"}})", r));
}

TEST(EdgeCase, 24_NegatedOperatorWithSeveralValuesIsNor) {
  const std::string c = R"({"StringNotEquals":{"k":["A","B"]}})";
  RequestContext r = SessionRequest();
  r.context.Set("k", "A");
  EXPECT_FALSE(Cond(c, r));
  r.context.Set("k", "C");
  EXPECT_TRUE(Cond(c, r));
  r.context.Erase("k");
  EXPECT_TRUE(Cond(c, r));
}

TEST(EdgeCase, 25_StringLikeWithMissingKeyIsFalse) {
  EXPECT_FALSE(Cond(R"({"StringLike":{"k":"*"}})", SessionRequest()));
}

TEST(EdgeCase, 26_IfExistsWithMissingKeyIsTrue) {
  EXPECT_TRUE(Cond(R"({"StringEqualsIfExists":{"k":"v"}})", SessionRequest()));
  RequestContext r = SessionRequest();
  r.context.Set("k", "w");
  EXPECT_FALSE(Cond(R"({"StringEqualsIfExists":{"k":"v"}})", r));
}

TEST(EdgeCase, 27_NullOperator) {
  EXPECT_TRUE(Cond(R"({"Null":{"k":"true"}})", SessionRequest()));
  RequestContext r = SessionRequest();
  r.context.Set("k", "v");
  EXPECT_FALSE(Cond(R"({"Null":{"k":"true"}})", r));
  EXPECT_TRUE(Cond(R"({"Null":{"k":"false"}})", r));
}

TEST(EdgeCase, 28_ForAllValues) {
  const std::string c = R"({"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}})";
  RequestContext r = SessionRequest();
  EXPECT_TRUE(Cond(c, r));
  r.context.SetMulti("aws:TagKeys", {});
  EXPECT_TRUE(Cond(c, r));
  r.context.SetMulti("aws:TagKeys", {"a"});
  EXPECT_TRUE(Cond(c, r));
  r.context.SetMulti("aws:TagKeys", {"a", "z"});
  EXPECT_FALSE(Cond(c, r));
}

TEST(EdgeCase, 29_ForAnyValueWithMissingOrEmptyKeyIsFalse) {
  const std::string c = R"({"ForAnyValue:StringEquals":{"aws:TagKeys":["a"]}})";
  RequestContext r = SessionRequest();
  EXPECT_FALSE(Cond(c, r));
  r.context.SetMulti("aws:TagKeys", {});
  EXPECT_FALSE(Cond(c, r));
  r.context.SetMulti("aws:TagKeys", {"z", "a"});
  EXPECT_TRUE(Cond(c, r));
}

TEST(EdgeCase, 30_ForAllValuesWithNegatedBase) {
  const std::string c = R"({"ForAllValues:StringNotLike":{"aws:TagKeys":"key1*"}})";
  RequestContext r = SessionRequest();
  EXPECT_TRUE(Cond(c, r));
  r.context.SetMulti("aws:TagKeys", {"key2:x"});
  EXPECT_TRUE(Cond(c, r));
  r.context.SetMulti("aws:TagKeys", {"key1:a"});
  EXPECT_FALSE(Cond(c, r));
}

TEST(EdgeCase, 31_PlainOperatorOnMultivaluedKeyIsFalse) {
  RequestContext r = SessionRequest();
  r.context.SetMulti("aws:TagKeys", {"a"});
  EXPECT_FALSE(Cond(R"({"StringEquals":{"aws:TagKeys":"a"}})", r));
}

TEST(EdgeCase, 32_ForAnyValueIfExistsWithMissingKeyIsFalse) {
  EXPECT_FALSE(
      Cond(R"({"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":"a"}})", SessionRequest()));
}

TEST(EdgeCase, 33_IpAddressV4BareAndV6) {
  RequestContext r = SessionRequest();
  r.context.Set("aws:SourceIp", "203.0.113.255");
  EXPECT_TRUE(Cond(R"({"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}})", r));
  r.context.Set("aws:SourceIp", "203.0.114.0");
  EXPECT_FALSE(Cond(R"({"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}})", r));
  r.context.Set("aws:SourceIp", "10.0.0.1");
  EXPECT_TRUE(Cond(R"({"IpAddress":{"aws:SourceIp":"10.0.0.1"}})", r));
  r.context.Set("aws:SourceIp", "10.0.0.2");
  EXPECT_FALSE(Cond(R"({"IpAddress":{"aws:SourceIp":"10.0.0.1"}})", r));
  r.context.Set("aws:SourceIp", "2001:db8:1234:5678::9");
  EXPECT_TRUE(Cond(R"({"IpAddress":{"aws:SourceIp":"2001:DB8:1234:5678::/64"}})", r));
}

TEST(EdgeCase, 34_IpAddressWithoutSourceIp) {
  EXPECT_FALSE(Cond(R"({"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}})", SessionRequest()));
  EXPECT_TRUE(Cond(R"({"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}})", SessionRequest()));
}

TEST(EdgeCase, 35_ArnLikeIsSegmentWiseStringLikeIsNot) {
  RequestContext r = SessionRequest();
  r.context.Set(
      "aws:SourceArn",
      "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt");
  EXPECT_TRUE(Cond(
      R"({"StringLike":{"aws:SourceArn":"arn:aws:someservice:*:111122223333:finance/*"}})", r));
  EXPECT_FALSE(
      Cond(R"({"ArnLike":{"aws:SourceArn":"arn:aws:someservice:*:111122223333:finance/*"}})", r));
}

TEST(EdgeCase, 36_DateIsoAndEpochHaveEqualSemantics) {
  RequestContext r = SessionRequest();
  r.context.Set("aws:CurrentTime", "2021-06-01T00:00:00Z");
  EXPECT_TRUE(Cond(R"({"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}})", r));
  EXPECT_TRUE(Cond(R"({"DateGreaterThan":{"aws:CurrentTime":"1577836800"}})", r));
  EXPECT_FALSE(Cond(R"({"DateGreaterThan":{"aws:CurrentTime":"1640995200"}})", r));
  r.context.Set("aws:EpochTime", "1622505600");
  EXPECT_TRUE(Cond(R"({"DateEquals":{"aws:EpochTime":"2021-06-01T00:00:00Z"}})", r));
}

TEST(EdgeCase, 37_NumericComparison) {
  RequestContext r = SessionRequest();
  r.context.Set("s3:max-keys", "10.0");
  EXPECT_TRUE(Cond(R"({"NumericLessThanEquals":{"s3:max-keys":"10"}})", r));
  r.context.Set("s3:max-keys", "9");
  EXPECT_TRUE(Cond(R"({"NumericLessThanEquals":{"s3:max-keys":"10"}})", r));
  r.context.Set("s3:max-keys", "11");
  EXPECT_FALSE(Cond(R"({"NumericLessThanEquals":{"s3:max-keys":"10"}})", r));
}

TEST(EdgeCase, 38_BoolIsCaseInsensitive) {
  RequestContext r = SessionRequest();
  r.context.Set("aws:SecureTransport", "true");
  EXPECT_TRUE(Cond(R"({"Bool":{"aws:SecureTransport":"True"}})", r));
  EXPECT_TRUE(Cond(R"({"Bool":{"aws:SecureTransport":true}})", r));
  EXPECT_FALSE(Cond(R"({"Bool":{"aws:SecureTransport":"false"}})", r));
}

TEST(EdgeCase, 39_BinaryEqualsIsByteExact) {
  RequestContext r = SessionRequest();
  r.context.Set("k", "QmluYXJ5");
  EXPECT_TRUE(Cond(R"({"BinaryEquals":{"k":"QmluYXJ5"}})", r));
  r.context.Set("k", "QmluYXJy");
  EXPECT_FALSE(Cond(R"({"BinaryEquals":{"k":"QmluYXJ5"}})", r));
}

TEST(EdgeCase, 40_ResourceTagKeyMatchesCaseInsensitively) {
  RequestContext r = SessionRequest();
  r.resource_tags = {{"env", "prod"}};
  EXPECT_TRUE(Cond(R"({"StringEquals":{"aws:ResourceTag/Env":"prod"}})", r));
}

TEST(EdgeCase, 41_PrincipalStarMatchesAnonymous) {
  RequestContext r;
  r.principal_kind = PrincipalKind::kAnonymous;
  r.action = "secretsmanager:GetSecretValue";
  r.resource = kSecret;
  PolicySet set{.resource = ResourcePolicy(R"("*")")};
  EXPECT_EQ(Decide(r, set), Decision::kAllowed);
  set.resource = ResourcePolicy(R"({"AWS":"111122223333"})");
  EXPECT_EQ(Decide(r, set), Decision::kImplicitlyDenied);
}

TEST(EdgeCase, 42_AccountPrincipalDelegatesToIdentityPolicy) {
  PolicySet set{.resource = ResourcePolicy(R"({"AWS":"111122223333"})")};
  auto result = Evaluate(SessionRequest(), set);
  EXPECT_EQ(result.decision, Decision::kImplicitlyDenied);
  EXPECT_EQ(result.missing_allow, Layer::kIdentity);
  set.resource = ResourcePolicy(R"({"AWS":"arn:aws:iam::111122223333:root"})");
  EXPECT_EQ(Decide(SessionRequest(), set), Decision::kImplicitlyDenied);
  set.identity = {Identity(kAllowAll)};
  EXPECT_EQ(Decide(SessionRequest(), set), Decision::kAllowed);
}

TEST(EdgeCase, 43_LowercaseEffectIsInvalid) {
  auto r = CompiledPolicy::FromJson(
      R"({"Version":"2012-10-17","Statement":{"Effect":"allow","Action":"*","Resource":"*"}})",
      "p");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("Effect"));
}

TEST(EdgeCase, 44_VariableDefaultUsedWhenTagAbsent) {
  RequestContext r = SessionRequest();
  r.context.Set("k", "company-wide");
  const std::string c = R"({"StringEquals":{"k":"${aws:PrincipalTag/team, 'company-wide'}"}})";
  EXPECT_TRUE(Cond(c, r));
  r.principal_tags = {{"team", "orders"}};
  EXPECT_FALSE(Cond(c, r));
  r.context.Set("k", "orders");
  EXPECT_TRUE(Cond(c, r));
}

TEST(EdgeCase, 45_AllowAndDenyInDifferentIdentityPoliciesDenies) {
  PolicySet set{
      .identity = {
          Identity(kAllowAll),
          Compile(
              PolicyType::kIdentity,
              R"({"Sid":"NoSecrets","Effect":"Deny","Action":"secretsmanager:*","Resource":"*"})",
              "guard")}};
  auto result = Evaluate(SessionRequest(), set);
  EXPECT_EQ(result.decision, Decision::kExplicitlyDenied);
  ASSERT_EQ(result.statements.size(), 1u);
  EXPECT_EQ(result.statements[0].policy, "guard");
  EXPECT_EQ(result.statements[0].sid, "NoSecrets");
}

TEST(EdgeCase, 46_ResourcePolicyPrincipalStarFollowsOracleAllowed) {
  PolicySet set{.boundary = DenyingBoundary(), .resource = ResourcePolicy(R"("*")")};
  EXPECT_EQ(Decide(SessionRequest(), set), Decision::kAllowed);
  EXPECT_EQ(Decide(UserRequest(), set), Decision::kAllowed);
}

TEST(EdgeCase, 47_ExplicitDenyInBoundaryBeatsRoleArnGrant) {
  PolicySet set{
      .boundary = Compile(PolicyType::kBoundary,
                          kAllowAll + "," + Stmt("Deny", R"("secretsmanager:*")", R"("*")")),
      .resource = ResourcePolicy(R"({"AWS":")" + std::string(kRoleArn) + R"("})")};
  EXPECT_EQ(Decide(SessionRequest(), set), Decision::kExplicitlyDenied);
}

// --- explanation ------------------------------------------------------------------------------

TEST(Explanation, ImplicitDenyNamesTheLayerAwsStyle) {
  PolicySet set{.identity = {Identity(Stmt("Allow", R"("s3:*")", R"("*")"))}};
  RequestContext r = SessionRequest();
  auto result = Evaluate(r, set);
  EXPECT_EQ(
      result.Message(r),
      std::string("User: ") + kSessionArn +
          " is not authorized to perform: secretsmanager:GetSecretValue on resource: " + kSecret +
          " because no identity-based policy allows the secretsmanager:GetSecretValue action");
}

TEST(Explanation, AllowNamesDecisiveStatements) {
  PolicySet set{.identity = {Compile(PolicyType::kIdentity,
                                     R"({"Effect":"Allow","Action":"s3:*","Resource":"*"},
                                        {"Sid":"Secrets","Effect":"Allow","Action":"secretsmanager:Get*","Resource":"*"})",
                                     "fn-role")}};
  auto result = Evaluate(SessionRequest(), set);
  ASSERT_TRUE(result.allowed());
  ASSERT_EQ(result.statements.size(), 1u);
  EXPECT_EQ(
      result.statements[0],
      (StatementRef{.layer = Layer::kIdentity, .policy = "fn-role", .index = 1, .sid = "Secrets"}));
}

TEST(Explanation, ExplicitDenyMessage) {
  PolicySet set{.identity = {Identity(Stmt("Deny", R"("*")", R"("*")"))}};
  RequestContext r = SessionRequest();
  EXPECT_THAT(Evaluate(r, set).Message(r),
              HasSubstr("with an explicit deny in an identity-based policy"));
}

// --- evaluation details -----------------------------------------------------------------------

TEST(Evaluation, ResourceArnCaseRules) {
  PolicySet set{
      .identity = {Identity(Stmt("Allow", R"("s3:GetObject")", R"("arn:AWS:S3:::Bucket/Key")"))}};
  EXPECT_EQ(Decide(SessionRequest("s3:GetObject", "arn:aws:s3:::Bucket/Key"), set),
            Decision::kAllowed);
  EXPECT_EQ(Decide(SessionRequest("s3:GetObject", "arn:aws:s3:::bucket/key"), set),
            Decision::kImplicitlyDenied);
}

TEST(Evaluation, SubstitutedValuesAreLiteralInResources) {
  PolicySet set{.identity = {Identity(Stmt("Allow", R"("s3:GetObject")",
                                           R"("arn:aws:s3:::home/${aws:PrincipalTag/team}")"))}};
  RequestContext r = SessionRequest("s3:GetObject", "arn:aws:s3:::home/anything");
  r.principal_tags = {{"team", "*"}};
  EXPECT_EQ(Decide(r, set), Decision::kImplicitlyDenied);
  r.resource = "arn:aws:s3:::home/*";
  EXPECT_EQ(Decide(r, set), Decision::kAllowed);
}

TEST(Evaluation, NotResourceDenyOnlyTouchesListedActions) {
  PolicySet set{.identity = {Identity(
                    kAllowAll + "," +
                    R"({"Effect":"Deny","Action":"s3:*","NotResource":"arn:aws:s3:::ok/*"})")}};
  EXPECT_EQ(Decide(SessionRequest("s3:GetObject", "arn:aws:s3:::other/x"), set),
            Decision::kExplicitlyDenied);
  EXPECT_EQ(Decide(SessionRequest("s3:GetObject", "arn:aws:s3:::ok/x"), set), Decision::kAllowed);
  EXPECT_EQ(Decide(SessionRequest("ec2:RunInstances", "*"), set), Decision::kAllowed);
}

TEST(Evaluation, UnreadableTypedContextValueFailsClosed) {
  RequestContext r = SessionRequest();
  r.context.Set("aws:SourceIp", "not-an-ip");
  PolicySet set{.identity = {Identity(
                    Stmt("Allow", R"("*")", R"("*")",
                         R"("Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}})"))}};
  auto result = Evaluate(r, set);
  EXPECT_FALSE(result.allowed());
  EXPECT_FALSE(result.error.empty());
}

TEST(Evaluation, StatementIndexVisitsOnlyApplicableServices) {
  auto p = Compile(PolicyType::kIdentity,
                   Stmt("Allow", R"("s3:GetObject")", R"("*")") + "," +
                       Stmt("Allow", R"(["sqs:SendMessage","SQS:ReceiveMessage"])", R"("*")") +
                       "," + Stmt("Allow", R"("*")", R"("*")") + "," +
                       R"({"Effect":"Allow","NotAction":"s3:*","Resource":"*"})");
  std::vector<std::size_t> visited;
  auto visit = [&](std::string_view service, std::string_view action) {
    visited.clear();
    p->ForEachCandidate(service, action,
                        [&](const CompiledStatement& st) { visited.push_back(st.index); });
    return visited;
  };
  EXPECT_EQ(visit("sqs", "sqs:receivemessage"), (std::vector<std::size_t>{1, 2, 3}));
  EXPECT_EQ(visit("sqs", "sqs:deletemessage"), (std::vector<std::size_t>{2, 3}));
  EXPECT_EQ(visit("lambda", "lambda:invokefunction"), (std::vector<std::size_t>{2, 3}));
  EXPECT_EQ(visit("s3", "s3:getobject"), (std::vector<std::size_t>{0, 2, 3}));
}

TEST(Evaluation, StatementWithLiteralAndGlobActionsIsVisitedOnce) {
  auto p = Compile(PolicyType::kIdentity,
                   Stmt("Allow", R"(["s3:GetObject","s3:Get*","s3:getobject"])", R"("*")") + "," +
                       Stmt("Allow", R"("s3:Put*")", R"("*")"));
  std::vector<std::size_t> visited;
  p->ForEachCandidate("s3", "s3:getobject",
                      [&](const CompiledStatement& st) { visited.push_back(st.index); });
  EXPECT_EQ(visited, (std::vector<std::size_t>{0, 1}));
}

TEST(Evaluation, AccountRootHasFullAccessButDenyStillWins) {
  RequestContext r = SessionRequest();
  r.principal_arn = "arn:aws:iam::111122223333:root";
  r.principal_kind = PrincipalKind::kAccountRoot;
  r.issuer_arn.clear();
  EXPECT_EQ(Decide(r, PolicySet{}), Decision::kAllowed);
  PolicySet guarded{.guardrails = {{Compile(PolicyType::kGuardrail,
                                            Stmt("Deny", R"("secretsmanager:*")", R"("*")"))}}};
  EXPECT_EQ(Decide(r, guarded), Decision::kExplicitlyDenied);
}

TEST(Evaluation, NoPoliciesMeansImplicitDeny) {
  auto result = Evaluate(SessionRequest(), PolicySet{});
  EXPECT_EQ(result.decision, Decision::kImplicitlyDenied);
  EXPECT_EQ(result.missing_allow, Layer::kIdentity);
}

TEST(Evaluation, CompiledPoliciesAreSharedAcrossThreads) {
  PolicySet set{.identity = {Identity(Stmt("Allow", R"("s3:Get*")", R"("arn:aws:s3:::b/*")"))},
                .boundary = Compile(PolicyType::kBoundary, kAllowAll)};
  std::vector<std::thread> threads;
  std::atomic<int> allowed{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (Evaluate(SessionRequest("s3:GetObject", "arn:aws:s3:::b/k"), set).allowed()) ++allowed;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 4000);
}

TEST(Evaluation, DerivedPrincipalKeys) {
  RequestContext r = SessionRequest();
  EXPECT_TRUE(Cond(R"({"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/fn"}})", r));
  EXPECT_TRUE(Cond(R"({"StringEquals":{"aws:PrincipalAccount":"111122223333"}})", r));
  r.context.Set("aws:PrincipalArn", "arn:aws:iam::111122223333:role/other");
  EXPECT_FALSE(
      Cond(R"({"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/fn"}})", r));
}

TEST(Evaluation, DenyWithNegatedIfExistsStillDeniesWhenKeyMissing) {
  PolicySet set{
      .identity = {Identity(
          kAllowAll + "," +
          Stmt("Deny", R"("*")", R"("*")",
               R"("Condition":{"StringNotEqualsIfExists":{"aws:RequestedRegion":"eu-west-1"}})"))}};
  EXPECT_EQ(Decide(SessionRequest(), set), Decision::kExplicitlyDenied);
  RequestContext r = SessionRequest();
  r.context.Set("aws:RequestedRegion", "eu-west-1");
  EXPECT_EQ(Decide(r, set), Decision::kAllowed);
}

TEST(Evaluation, LargePolicyOnlyVisitsItsService) {
  std::string statements;
  for (int i = 0; i < 1000; ++i) {
    if (i > 0) statements += ",";
    statements += Stmt("Allow", R"("svc)" + std::to_string(i) + R"(:Get*")", R"("*")");
  }
  auto p = Compile(PolicyType::kIdentity, statements);
  ASSERT_NE(p, nullptr);
  int visited = 0;
  p->ForEachCandidate("svc999", "svc999:getthing", [&](const CompiledStatement&) { ++visited; });
  EXPECT_EQ(visited, 1);
  PolicySet set{.identity = {p}};
  EXPECT_EQ(Decide(SessionRequest("SVC999:GetThing", "*"), set), Decision::kAllowed);
  EXPECT_EQ(Decide(SessionRequest("svc1000:GetThing", "*"), set), Decision::kImplicitlyDenied);
}

// A cheap, deterministic stand-in for the parser fuzz target: mutated documents either fail to
// parse with an error or compile and evaluate; nothing crashes or throws.
TEST(Robustness, MutatedDocumentsNeverCrash) {
  const std::string seed_doc = R"({"Version":"2012-10-17","Id":"x","Statement":[{"Sid":"A",
    "Effect":"Allow","Action":["s3:Get*","sqs:*"],"Resource":"arn:aws:s3:::b/${aws:username}/*",
    "Condition":{"ForAnyValue:StringLike":{"aws:TagKeys":["a*"]},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},
    "DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"},"NumericEquals":{"n":1.5},
    "Null":{"k":"false"}}},{"Effect":"Deny","NotAction":"iam:*","NotResource":"*"}]})";
  const std::string alphabet = "{}[]\":,*?$ 0aZ\\/-.";
  std::mt19937 rng(12345);
  int parsed = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string doc = seed_doc;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !doc.empty(); ++e) {
      const std::size_t pos = rng() % doc.size();
      switch (rng() % 3) {
        case 0:
          doc[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          doc.insert(pos, 1, alphabet[rng() % alphabet.size()]);
          break;
        default:
          doc.erase(pos, 1 + rng() % 8);
      }
    }
    auto p = CompiledPolicy::FromJson(doc, "m", {.type = PolicyType::kIdentity});
    if (!p.ok()) {
      EXPECT_FALSE(p.status().message().empty());
      continue;
    }
    ++parsed;
    RequestContext r = SessionRequest("s3:GetObject", "arn:aws:s3:::b/alice/k");
    r.context.Set("aws:username", "alice");
    r.context.SetMulti("aws:TagKeys", {"a1"});
    r.context.Set("aws:SourceIp", "10.1.2.3");
    r.context.Set("aws:CurrentTime", "2026-01-01T00:00:00Z");
    PolicySet set{.identity = {*p}};
    (void)Evaluate(r, set).Message(r);
  }
  EXPECT_GT(parsed, 0);
}

TEST(Operators, StringFamily) {
  RequestContext r = SessionRequest();
  r.context.Set("k", "Hello");
  EXPECT_TRUE(Cond(R"({"StringEqualsIgnoreCase":{"k":"hello"}})", r));
  EXPECT_FALSE(Cond(R"({"StringNotEqualsIgnoreCase":{"k":"HELLO"}})", r));
  EXPECT_FALSE(Cond(R"({"StringEquals":{"k":"hello"}})", r));
  EXPECT_TRUE(Cond(R"({"StringLike":{"k":"H?ll*"}})", r));
  EXPECT_FALSE(Cond(R"({"StringLike":{"k":"h*"}})", r));
  EXPECT_TRUE(Cond(R"({"StringNotLike":{"k":["x*","y*"]}})", r));
}

TEST(Operators, ArnFamilyAndVariables) {
  RequestContext r = SessionRequest();
  r.context.Set("aws:SourceArn", "arn:aws:lambda:us-east-1:111122223333:function:fn");
  EXPECT_TRUE(Cond(
      R"({"ArnEquals":{"aws:SourceArn":"arn:aws:lambda:*:${aws:PrincipalAccount}:function:*"}})",
      r));
  EXPECT_FALSE(Cond(R"({"ArnNotLike":{"aws:SourceArn":"arn:aws:lambda:*:*:function:fn"}})", r));
  EXPECT_TRUE(Cond(R"({"ArnNotLike":{"aws:SourceArn":"arn:aws:lambda:*:*:function:other"}})", r));
}

TEST(Operators, SeveralOperatorsAndKeysAreAnded) {
  RequestContext r = SessionRequest();
  r.context.Set("a", "1");
  r.context.Set("b", "2");
  EXPECT_TRUE(Cond(R"({"StringEquals":{"a":"1","b":"2"},"NumericEquals":{"a":"1"}})", r));
  EXPECT_FALSE(Cond(R"({"StringEquals":{"a":"1","b":"3"}})", r));
  EXPECT_FALSE(Cond(R"({"StringEquals":{"a":"1"},"NumericGreaterThan":{"b":"2"}})", r));
}

TEST(Operators, DateFamily) {
  RequestContext r = SessionRequest();
  r.context.Set("aws:CurrentTime", "2021-06-01T12:00:00Z");
  EXPECT_TRUE(Cond(R"({"DateLessThan":{"aws:CurrentTime":"2021-06-02"}})", r));
  EXPECT_TRUE(Cond(R"({"DateNotEquals":{"aws:CurrentTime":"2021-06-02"}})", r));
  EXPECT_TRUE(Cond(R"({"DateGreaterThanEquals":{"aws:CurrentTime":"2021-06-01T12:00:00Z"}})", r));
}

// --- rules settled by the differential test (tests/policy_diff) ------------------------------

CompiledPolicyPtr SessionPolicy(const std::string& action) {
  return Compile(PolicyType::kSession, Stmt("Allow", "\"" + action + "\"", R"("*")"), "session");
}

TEST(ResourceGrants, WildcardPrincipalIsLimitedBySessionPolicyButNotByBoundary) {
  PolicySet with_session{.session = SessionPolicy("s3:GetObject"),
                         .resource = ResourcePolicy(R"("*")")};
  auto result = Evaluate(SessionRequest(), with_session);
  EXPECT_EQ(result.decision, Decision::kImplicitlyDenied);
  EXPECT_EQ(result.missing_allow, Layer::kSession);
  PolicySet allowing_session{.session = SessionPolicy("secretsmanager:*"),
                             .resource = ResourcePolicy(R"("*")")};
  EXPECT_EQ(Decide(SessionRequest(), allowing_session), Decision::kAllowed);
  PolicySet with_boundary{.boundary = DenyingBoundary(), .resource = ResourcePolicy(R"("*")")};
  EXPECT_EQ(Decide(SessionRequest(), with_boundary), Decision::kAllowed);
}

TEST(ResourceGrants, NotPrincipalAllowGrantsEveryoneElse) {
  const std::string other = R"({"AWS":"arn:aws:iam::444455556666:root"})";
  auto policy = Compile(PolicyType::kResource,
                        R"({"Effect":"Allow","NotPrincipal":)" + other +
                            R"(,"Action":"secretsmanager:*","Resource":"*"})",
                        "secret-policy");
  PolicySet set{.resource = policy};
  EXPECT_EQ(Decide(UserRequest(), set), Decision::kAllowed);
  EXPECT_EQ(Decide(SessionRequest(), set), Decision::kAllowed);
  // A role acting directly: like a grant to its own ARN, so its boundary still applies.
  RequestContext role = SessionRequest();
  role.principal_arn = kRoleArn;
  role.principal_kind = PrincipalKind::kRole;
  role.issuer_arn.clear();
  EXPECT_EQ(Decide(role, set), Decision::kAllowed);
  PolicySet bounded{.boundary = DenyingBoundary(), .resource = policy};
  EXPECT_EQ(Decide(role, bounded), Decision::kImplicitlyDenied);
  EXPECT_EQ(Decide(UserRequest(), bounded), Decision::kAllowed);
}

TEST(Resources, UnresolvedVariableUnderNotResourceFailsClosed) {
  const std::string not_resource =
      R"("NotResource":"arn:aws:secretsmanager:*:*:secret:${aws:PrincipalTag/missing}")";
  auto stmt = [&](const std::string& effect) {
    return R"({"Effect":")" + effect + R"(","Action":"*",)" + not_resource + "}";
  };
  // The request cannot be shown to be outside the listed set: an Allow does not apply...
  PolicySet allow{.identity = {Identity(stmt("Allow"))}};
  EXPECT_EQ(Decide(SessionRequest(), allow), Decision::kImplicitlyDenied);
  // ...and a Deny does.
  PolicySet deny{.identity = {Identity(kAllowAll + "," + stmt("Deny"))}};
  EXPECT_EQ(Decide(SessionRequest(), deny), Decision::kExplicitlyDenied);
  // When the text before the variable already rules the resource out, NotResource holds.
  PolicySet other_type{
      .identity = {
          Identity(R"({"Effect":"Allow","Action":"*","NotResource":)"
                   R"("arn:aws:secretsmanager:*:*:rotation:${aws:PrincipalTag/missing}"})")}};
  EXPECT_EQ(Decide(SessionRequest(), other_type), Decision::kAllowed);
}

TEST(Resources, QuestionMarkMatchesOneUtf8Character) {
  const std::string cafe = "arn:aws:secretsmanager:us-east-1:111122223333:secret:caf\xC3\xA9";
  PolicySet one{
      .identity = {Identity(Stmt(
          "Allow", R"("*")", R"("arn:aws:secretsmanager:us-east-1:111122223333:secret:caf?")"))}};
  EXPECT_EQ(Decide(SessionRequest("secretsmanager:GetSecretValue", cafe), one), Decision::kAllowed);
  PolicySet two{
      .identity = {Identity(Stmt(
          "Allow", R"("*")", R"("arn:aws:secretsmanager:us-east-1:111122223333:secret:caf??")"))}};
  EXPECT_EQ(Decide(SessionRequest("secretsmanager:GetSecretValue", cafe), two),
            Decision::kImplicitlyDenied);
}

}  // namespace
}  // namespace moatless::policy
