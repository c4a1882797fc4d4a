#include "identity/authenticator.h"

#include <gtest/gtest.h>

#include <chrono>

#include "identity/sts.h"
#include "identity/test_fixture.h"

namespace moatless::identity {
namespace {

using std::chrono::seconds;

constexpr char kAllowAssumeDeployer[] = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::000000000000:role/deployer"}]})";
constexpr char kTrustAccount[] = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]})";
constexpr char kTrustBob[] = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"sts:AssumeRole"}]})";
constexpr char kDeployPolicy[] = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"lambda:*","Resource":"*"}]})";

// A signed request and the storage its views point into.
struct SignedRequest {
  std::string method = "POST";
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body = "Action=GetCallerIdentity&Version=2011-06-15";

  HttpRequestView View() const {
    HttpRequestView view{.method = method, .target = target, .body = body};
    for (const auto& [k, v] : headers) view.headers.emplace_back(k, v);
    return view;
  }
};

class AuthenticatorTest : public IdentityStoreTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(IdentityStoreTest::SetUp());
    auth_ = std::make_unique<Authenticator>(*directory_, *tokens_, *clock_);
    sts_ = std::make_unique<Sts>(*directory_, *tokens_, *env_, "local");

    ASSERT_TRUE(directory_->CreateUser("alice", {{"team", "platform"}}).ok());
    ASSERT_TRUE(
        directory_->PutPolicy(PrincipalType::kUser, "alice", "assume", kAllowAssumeDeployer).ok());
    ASSERT_TRUE(directory_->CreateUser("bob").ok());
    ASSERT_TRUE(directory_->CreateRole("deployer", kTrustAccount, 7200, {{"role", "deploy"}}).ok());
    ASSERT_TRUE(
        directory_->PutPolicy(PrincipalType::kRole, "deployer", "deploy", kDeployPolicy).ok());
    ASSERT_TRUE(directory_->CreateRole("bob-only", kTrustBob).ok());
    auto key = directory_->CreateAccessKey("alice");
    ASSERT_TRUE(key.ok());
    alice_key_ = std::move(*key);
    auto bob_key = directory_->CreateAccessKey("bob");
    ASSERT_TRUE(bob_key.ok());
    bob_key_ = std::move(*bob_key);
  }
  void TearDown() override {
    auth_.reset();
    sts_.reset();
    IdentityStoreTest::TearDown();
  }

  SignedRequest Sign(std::string_view key_id, const core::SecretBytes& secret,
                     std::optional<std::string_view> token = std::nullopt,
                     std::string_view region = "local", std::string_view service = "sts") {
    SignedRequest r;
    r.headers = {{"Host", "127.0.0.1:9000"},
                 {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    auto added = SignRequest(r.View(),
                             {.access_key_id = key_id,
                              .region = region,
                              .service = service,
                              .time = clock_->Now(),
                              .security_token = token},
                             secret);
    EXPECT_TRUE(added.ok()) << added.status();
    if (added.ok()) {
      for (auto& h : *added) r.headers.push_back(std::move(h));
    }
    return r;
  }

  core::Result<Caller> Authenticate(const SignedRequest& r, RequestOrigin origin = {}) {
    return auth_->Authenticate(r.View(), origin, "sts");
  }

  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<Sts> sts_;
  AccessKeyWithSecret alice_key_;
  AccessKeyWithSecret bob_key_;
};

void ExpectAwsError(const core::Status& status, std::string_view type) {
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.aws_type(), type) << status;
}

TEST_F(AuthenticatorTest, ALongTermKeyAuthenticatesAsItsUserWithItsPolicies) {
  auto caller = Authenticate(Sign(alice_key_.info.id, alice_key_.secret));
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->arn, "arn:aws:iam::000000000000:user/alice");
  EXPECT_EQ(caller->kind, policy::PrincipalKind::kUser);
  EXPECT_EQ(caller->account, "000000000000");
  EXPECT_EQ(caller->tags.at("team"), "platform");
  EXPECT_FALSE(caller->temporary);
  ASSERT_EQ(caller->policies.identity.size(), 1u);
  const CallerIdentity id = sts_->GetCallerIdentity(*caller);
  EXPECT_EQ(id.arn, caller->arn);
  EXPECT_TRUE(id.user_id.starts_with("AIDA"));
  // Last use is tracked.
  EXPECT_EQ(directory_->ListAccessKeys("alice")->at(0).last_used_service, "sts");
}

TEST_F(AuthenticatorTest, ChangesToPoliciesAndKeysTakeEffectOnTheNextRequest) {
  // Resolved keys and callers are cached; any change to the directory invalidates them.
  for (int i = 0; i < 3; ++i) {
    auto caller = Authenticate(Sign(alice_key_.info.id, alice_key_.secret));
    ASSERT_TRUE(caller.ok());
    EXPECT_EQ(caller->policies.identity.size(), 1u);
  }
  ASSERT_TRUE(directory_->PutPolicy(PrincipalType::kUser, "alice", "more", kDeployPolicy).ok());
  auto more = Authenticate(Sign(alice_key_.info.id, alice_key_.secret));
  ASSERT_TRUE(more.ok());
  EXPECT_EQ(more->policies.identity.size(), 2u);
  ASSERT_TRUE(directory_->SetBoundary(PrincipalType::kUser, "alice", kDeployPolicy).ok());
  EXPECT_NE(Authenticate(Sign(alice_key_.info.id, alice_key_.secret))->policies.boundary, nullptr);
  ASSERT_TRUE(directory_->DeleteAccessKey("alice", alice_key_.info.id).ok());
  ExpectAwsError(Authenticate(Sign(alice_key_.info.id, alice_key_.secret)).status(),
                 "InvalidClientTokenId");
}

TEST_F(AuthenticatorTest, ForgedUnknownInactiveSkewedAndUnsignedRequestsAreRefused) {
  core::SecretBytes wrong(std::string(40, 'x'));
  ExpectAwsError(Authenticate(Sign(alice_key_.info.id, wrong)).status(), "SignatureDoesNotMatch");
  ExpectAwsError(Authenticate(Sign("AKIAAAAAAAAAAAAAAAAA", wrong)).status(),
                 "InvalidClientTokenId");
  // Signed for another region or service.
  ExpectAwsError(
      Authenticate(Sign(alice_key_.info.id, alice_key_.secret, std::nullopt, "us-east-1")).status(),
      "SignatureDoesNotMatch");
  ExpectAwsError(
      Authenticate(Sign(alice_key_.info.id, alice_key_.secret, std::nullopt, "local", "iam"))
          .status(),
      "SignatureDoesNotMatch");
  // Replayed outside the skew window.
  const SignedRequest captured = Sign(alice_key_.info.id, alice_key_.secret);
  ASSERT_TRUE(Authenticate(captured).ok());
  clock_->Advance(seconds(16 * 60));
  ExpectAwsError(Authenticate(captured).status(), "RequestTimeTooSkewed");
  // Unsigned.
  SignedRequest unsigned_request;
  unsigned_request.headers = {{"Host", "127.0.0.1:9000"}};
  ExpectAwsError(Authenticate(unsigned_request).status(), "MissingAuthenticationToken");
  // Deactivated, then deleted.
  ASSERT_TRUE(
      directory_->SetAccessKeyStatus("alice", alice_key_.info.id, KeyStatus::kInactive).ok());
  ExpectAwsError(Authenticate(Sign(alice_key_.info.id, alice_key_.secret)).status(),
                 "InvalidClientTokenId");
  ASSERT_TRUE(directory_->Delete(PrincipalType::kUser, "alice").ok());
  ExpectAwsError(Authenticate(Sign(alice_key_.info.id, alice_key_.secret)).status(),
                 "InvalidClientTokenId");
}

TEST_F(AuthenticatorTest, AssumeRoleNeedsTheTrustPolicyAndTheCallersPermission) {
  auto alice = Authenticate(Sign(alice_key_.info.id, alice_key_.secret));
  auto bob = Authenticate(Sign(bob_key_.info.id, bob_key_.secret));
  ASSERT_TRUE(alice.ok() && bob.ok());
  const AssumeRoleRequest to_deployer{.role_arn = "arn:aws:iam::000000000000:role/deployer",
                                      .role_session_name = "ci-run-1"};
  // The trust policy names the account: the caller's own policy must allow sts:AssumeRole.
  StsDecision decision;
  auto assumed = sts_->AssumeRole(*alice, to_deployer, {}, &decision);
  ASSERT_TRUE(assumed.ok()) << assumed.status();
  EXPECT_TRUE(decision.result.allowed());
  EXPECT_EQ(assumed->assumed_role_arn, "arn:aws:sts::000000000000:assumed-role/deployer/ci-run-1");
  EXPECT_TRUE(assumed->credentials.access_key_id.starts_with("ASIA"));
  // Bob has no such permission: denied, in AWS's words, naming the layer.
  auto denied = sts_->AssumeRole(*bob, to_deployer, {}, &decision);
  ExpectAwsError(denied.status(), "AccessDenied");
  EXPECT_NE(denied.status().message().find("is not authorized to perform: sts:AssumeRole"),
            std::string::npos);
  EXPECT_FALSE(decision.result.allowed());
  // A trust policy naming Bob himself is enough on its own (same account).
  EXPECT_TRUE(sts_->AssumeRole(*bob,
                               {.role_arn = "arn:aws:iam::000000000000:role/bob-only",
                                .role_session_name = "bob"},
                               {})
                  .ok());
  ExpectAwsError(sts_->AssumeRole(*alice,
                                  {.role_arn = "arn:aws:iam::000000000000:role/bob-only",
                                   .role_session_name = "alice"},
                                  {})
                     .status(),
                 "AccessDenied");
  // A role that does not exist is denied the same way.
  ExpectAwsError(
      sts_->AssumeRole(
              *alice,
              {.role_arn = "arn:aws:iam::000000000000:role/nope", .role_session_name = "alice"}, {})
          .status(),
      "AccessDenied");
  // Validation.
  ExpectAwsError(
      sts_->AssumeRole(*alice, {.role_arn = to_deployer.role_arn, .role_session_name = "x"}, {})
          .status(),
      "ValidationError");
  ExpectAwsError(sts_->AssumeRole(*alice,
                                  {.role_arn = to_deployer.role_arn,
                                   .role_session_name = "ci",
                                   .duration_seconds = 7201},
                                  {})
                     .status(),
                 "ValidationError");
  ExpectAwsError(sts_->AssumeRole(*alice,
                                  {.role_arn = to_deployer.role_arn,
                                   .role_session_name = "ci",
                                   .policy = R"({"Statement":"nope"})"},
                                  {})
                     .status(),
                 "MalformedPolicyDocument");
}

TEST_F(AuthenticatorTest, TrustPolicyConditionsSeeWhereTheRequestComesFrom) {
  ASSERT_TRUE(directory_
                  ->CreateRole("office", R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
                      "Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},
                      "Action":"sts:AssumeRole",
                      "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},
                                   "Bool":{"aws:SecureTransport":"true"}}}]})")
                  .ok());
  auto bob = Authenticate(Sign(bob_key_.info.id, bob_key_.secret));
  ASSERT_TRUE(bob.ok());
  const AssumeRoleRequest office{.role_arn = "arn:aws:iam::000000000000:role/office",
                                 .role_session_name = "bob"};
  EXPECT_TRUE(
      sts_->AssumeRole(*bob, office, {.source_ip = "10.1.2.3", .secure_transport = true}).ok());
  ExpectAwsError(
      sts_->AssumeRole(*bob, office, {.source_ip = "203.0.113.9", .secure_transport = true})
          .status(),
      "AccessDenied");
  ExpectAwsError(
      sts_->AssumeRole(*bob, office, {.source_ip = "10.1.2.3", .secure_transport = false}).status(),
      "AccessDenied");
}

TEST_F(AuthenticatorTest, RoleSessionCredentialsActAsTheSessionUntilTheyExpire) {
  auto alice = Authenticate(Sign(alice_key_.info.id, alice_key_.secret));
  ASSERT_TRUE(alice.ok());
  auto assumed = sts_->AssumeRole(*alice,
                                  {.role_arn = "arn:aws:iam::000000000000:role/deployer",
                                   .role_session_name = "ci-run-2",
                                   .duration_seconds = 900,
                                   .policy = R"({"Version":"2012-10-17","Statement":[
                   {"Effect":"Allow","Action":"lambda:GetFunction","Resource":"*"}]})",
                                   .tags = {{"run", "2"}}},
                                  {});
  ASSERT_TRUE(assumed.ok()) << assumed.status();
  const TemporaryCredentials& creds = assumed->credentials;
  auto session = Authenticate(
      Sign(creds.access_key_id, creds.secret_access_key, std::string_view(creds.session_token)));
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_EQ(session->arn, "arn:aws:sts::000000000000:assumed-role/deployer/ci-run-2");
  EXPECT_EQ(session->kind, policy::PrincipalKind::kRoleSession);
  EXPECT_EQ(session->issuer_arn, "arn:aws:iam::000000000000:role/deployer");
  EXPECT_TRUE(session->user_id.ends_with(":ci-run-2"));
  EXPECT_EQ(session->tags.at("role"), "deploy");
  EXPECT_EQ(session->tags.at("run"), "2");
  ASSERT_NE(session->policies.session, nullptr);
  // The session's permissions are the role's, capped by the session policy.
  policy::RequestContext get{.principal_arn = session->arn,
                             .principal_kind = session->kind,
                             .principal_account = session->account,
                             .issuer_arn = session->issuer_arn,
                             .action = "lambda:GetFunction",
                             .resource = "arn:aws:lambda:local:000000000000:function:f"};
  EXPECT_TRUE(policy::Evaluate(get, session->policies).allowed());
  get.action = "lambda:DeleteFunction";
  EXPECT_FALSE(policy::Evaluate(get, session->policies).allowed());

  // The session policy caps what the session may do, AssumeRole included.
  ExpectAwsError(sts_->AssumeRole(*session,
                                  {.role_arn = "arn:aws:iam::000000000000:role/deployer",
                                   .role_session_name = "chained"},
                                  {})
                     .status(),
                 "AccessDenied");
  // GetSessionToken is refused to session credentials.
  ExpectAwsError(sts_->GetSessionToken(*session, std::nullopt).status(), "AccessDenied");

  // A token edited by one byte, a token with a long-term key, and expiry.
  std::string edited = creds.session_token;
  edited[edited.size() / 2] = edited[edited.size() / 2] == 'A' ? 'B' : 'A';
  ExpectAwsError(
      Authenticate(Sign(creds.access_key_id, creds.secret_access_key, std::string_view(edited)))
          .status(),
      "InvalidClientTokenId");
  ExpectAwsError(Authenticate(Sign(alice_key_.info.id, alice_key_.secret,
                                   std::string_view(creds.session_token)))
                     .status(),
                 "InvalidClientTokenId");
  ExpectAwsError(Authenticate(Sign(creds.access_key_id, creds.secret_access_key)).status(),
                 "InvalidClientTokenId");
  clock_->Advance(seconds(900));
  ExpectAwsError(Authenticate(Sign(creds.access_key_id, creds.secret_access_key,
                                   std::string_view(creds.session_token)))
                     .status(),
                 "ExpiredToken");
}

TEST_F(AuthenticatorTest, RoleChainingIsLimitedToOneHour) {
  ASSERT_TRUE(
      directory_->PutPolicy(PrincipalType::kRole, "deployer", "chain", kAllowAssumeDeployer).ok());
  auto alice = Authenticate(Sign(alice_key_.info.id, alice_key_.secret));
  ASSERT_TRUE(alice.ok());
  auto first = sts_->AssumeRole(*alice,
                                {.role_arn = "arn:aws:iam::000000000000:role/deployer",
                                 .role_session_name = "first",
                                 .duration_seconds = 7200},
                                {});
  ASSERT_TRUE(first.ok()) << first.status();
  auto session =
      Authenticate(Sign(first->credentials.access_key_id, first->credentials.secret_access_key,
                        std::string_view(first->credentials.session_token)));
  ASSERT_TRUE(session.ok()) << session.status();
  const AssumeRoleRequest chained{.role_arn = "arn:aws:iam::000000000000:role/deployer",
                                  .role_session_name = "chained",
                                  .duration_seconds = 3601};
  ExpectAwsError(sts_->AssumeRole(*session, chained, {}).status(), "ValidationError");
  AssumeRoleRequest hour = chained;
  hour.duration_seconds = 3600;
  EXPECT_TRUE(sts_->AssumeRole(*session, hour, {}).ok());
}

TEST_F(AuthenticatorTest, EnvironmentBoundCredentialsWorkOnlyFromTheirEnvironment) {
  SessionClaims claims{.principal_arn = "arn:aws:sts::000000000000:assumed-role/deployer/fn",
                       .source_arn = "arn:aws:iam::000000000000:role/deployer",
                       .session_name = "fn",
                       .issued_at = 1'800'000'000,
                       .expires_at = 1'800'003'600,
                       .bound_environment = "sandbox-7"};
  const TemporaryCredentials creds = tokens_->Issue(claims, env_->random());
  const SignedRequest r =
      Sign(creds.access_key_id, creds.secret_access_key, std::string_view(creds.session_token));
  EXPECT_TRUE(Authenticate(r, {.environment = "sandbox-7"}).ok());
  ExpectAwsError(Authenticate(r, {.environment = "sandbox-8"}).status(), "InvalidClientTokenId");
  ExpectAwsError(Authenticate(r, {}).status(), "InvalidClientTokenId");
}

TEST_F(AuthenticatorTest, FunctionCredentialsNeedALambdaTrustAndStayInTheirEnvironment) {
  constexpr char kTrustLambda[] = R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]})";
  ASSERT_TRUE(directory_->CreateRole("fn-orders", kTrustLambda).ok());
  StsDecision decision;
  auto issued = sts_->CredentialsForEnvironment("arn:aws:iam::000000000000:role/fn-orders",
                                                "orders-env1", "env1", 900, &decision);
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_TRUE(decision.result.allowed());
  const TemporaryCredentials& creds = issued->credentials;
  const SignedRequest r =
      Sign(creds.access_key_id, creds.secret_access_key, std::string_view(creds.session_token));
  auto caller = Authenticate(r, {.environment = "env1"});
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->arn, "arn:aws:sts::000000000000:assumed-role/fn-orders/orders-env1");
  // Copied out of the environment: refused, from the host or from another environment.
  ExpectAwsError(Authenticate(r, {}).status(), "InvalidClientTokenId");
  ExpectAwsError(Authenticate(r, {.environment = "env2"}).status(), "InvalidClientTokenId");
  // A role that does not trust the service is not handed out, nor is a role that does not exist.
  ExpectAwsError(
      sts_->CredentialsForEnvironment("arn:aws:iam::000000000000:role/deployer", "s1", "env1")
          .status(),
      "AccessDenied");
  ExpectAwsError(
      sts_->CredentialsForEnvironment("arn:aws:iam::000000000000:role/nope", "s1", "env1").status(),
      "AccessDenied");
  // Session names follow AssumeRole's rules.
  ExpectAwsError(
      sts_->CredentialsForEnvironment("arn:aws:iam::000000000000:role/fn-orders", "bad name", "e1")
          .status(),
      "ValidationError");
}

TEST_F(AuthenticatorTest, GetSessionTokenGivesAUserTemporaryCredentialsWithItsOwnPermissions) {
  auto alice = Authenticate(Sign(alice_key_.info.id, alice_key_.secret));
  ASSERT_TRUE(alice.ok());
  auto creds = sts_->GetSessionToken(*alice, 900);
  ASSERT_TRUE(creds.ok()) << creds.status();
  auto session = Authenticate(
      Sign(creds->access_key_id, creds->secret_access_key, std::string_view(creds->session_token)));
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_EQ(session->arn, "arn:aws:iam::000000000000:user/alice");
  EXPECT_EQ(session->kind, policy::PrincipalKind::kUser);
  EXPECT_TRUE(session->temporary);
  EXPECT_EQ(session->policies.identity.size(), 1u);
  ExpectAwsError(sts_->GetSessionToken(*alice, 60).status(), "ValidationError");
}

}  // namespace
}  // namespace moatless::identity
