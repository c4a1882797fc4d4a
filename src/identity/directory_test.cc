#include "identity/directory.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "identity/test_fixture.h"

namespace moatless::identity {
namespace {

constexpr char kReadSecrets[] = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]})";
constexpr char kTrust[] = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/alice"},
   "Action":"sts:AssumeRole"}]})";

using DirectoryTest = IdentityStoreTest;

TEST_F(DirectoryTest, UsersHaveAwsShapedArnsIdsPoliciesAndBoundaries) {
  auto alice = directory_->CreateUser("alice", {{"team", "orders"}});
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ(alice->arn, "arn:aws:iam::000000000000:user/alice");
  EXPECT_TRUE(alice->id.starts_with("AIDA"));
  EXPECT_EQ(alice->id.size(), 21u);
  EXPECT_EQ(alice->tags.at("team"), "orders");
  ASSERT_TRUE(directory_->PutPolicy(PrincipalType::kUser, "alice", "read", kReadSecrets).ok());
  ASSERT_TRUE(directory_->SetBoundary(PrincipalType::kUser, "alice", kReadSecrets).ok());
  auto loaded = directory_->Get(PrincipalType::kUser, "alice");
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->policies.size(), 1u);
  EXPECT_EQ(loaded->policies[0], (NamedPolicy{"read", kReadSecrets}));
  EXPECT_EQ(loaded->boundary, kReadSecrets);
  ASSERT_TRUE(directory_->SetBoundary(PrincipalType::kUser, "alice", std::nullopt).ok());
  EXPECT_FALSE(directory_->Get(PrincipalType::kUser, "alice")->boundary.has_value());
  ASSERT_TRUE(directory_->DeletePolicy(PrincipalType::kUser, "alice", "read").ok());
  EXPECT_TRUE(directory_->Get(PrincipalType::kUser, "alice")->policies.empty());
}

TEST_F(DirectoryTest, RejectsBadNamesDuplicatesInvalidPoliciesAndUnknownPrincipals) {
  EXPECT_EQ(directory_->CreateUser("").status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(directory_->CreateUser("a/b").status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(directory_->CreateUser(std::string(65, 'a')).status().code(),
            core::StatusCode::kInvalidArgument);
  ASSERT_TRUE(directory_->CreateUser("bob").ok());
  auto again = directory_->CreateUser("bob");
  EXPECT_EQ(again.status().code(), core::StatusCode::kAlreadyExists);
  EXPECT_EQ(again.status().aws_type(), "EntityAlreadyExists");
  // A policy that does not validate is refused and nothing is stored.
  auto bad = directory_->PutPolicy(PrincipalType::kUser, "bob", "p",
                                   R"({"Statement":[{"Effect":"allow","Action":"*"}]})");
  EXPECT_EQ(bad.code(), core::StatusCode::kInvalidArgument);
  EXPECT_TRUE(directory_->Get(PrincipalType::kUser, "bob")->policies.empty());
  // Principal inside an identity policy is invalid.
  EXPECT_FALSE(directory_
                   ->PutPolicy(PrincipalType::kUser, "bob", "p",
                               R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
                                   "Principal":"*","Action":"*","Resource":"*"}]})")
                   .ok());
  EXPECT_EQ(directory_->PutPolicy(PrincipalType::kUser, "nobody", "p", kReadSecrets).code(),
            core::StatusCode::kNotFound);
  EXPECT_EQ(directory_->Get(PrincipalType::kUser, "nobody").status().aws_type(), "NoSuchEntity");
  EXPECT_EQ(directory_->Delete(PrincipalType::kUser, "nobody").code(), core::StatusCode::kNotFound);
  EXPECT_EQ(directory_->CreateUser("t", {{"aws:x", "y"}}).status().code(),
            core::StatusCode::kInvalidArgument);
}

TEST_F(DirectoryTest, RolesNeedAValidTrustPolicyAndSessionLimits) {
  auto role = directory_->CreateRole("fn-orders", kTrust, 7200);
  ASSERT_TRUE(role.ok()) << role.status();
  EXPECT_EQ(role->arn, "arn:aws:iam::000000000000:role/fn-orders");
  EXPECT_TRUE(role->id.starts_with("AROA"));
  EXPECT_EQ(role->trust_policy, kTrust);
  EXPECT_EQ(role->max_session_seconds, 7200);
  EXPECT_EQ(directory_->CreateRole("r2", kTrust, 60).status().code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(directory_->CreateRole("r3", kReadSecrets).status().code(),  // no Principal
            core::StatusCode::kInvalidArgument);
  // A user and a role may share a name; lists are per type.
  ASSERT_TRUE(directory_->CreateUser("fn-orders").ok());
  EXPECT_EQ(directory_->List(PrincipalType::kRole)->size(), 1u);
  EXPECT_EQ(directory_->List(PrincipalType::kUser)->size(), 1u);
  EXPECT_EQ(directory_->GetByArn(role->arn)->type, PrincipalType::kRole);
}

TEST_F(DirectoryTest, AccessKeysAreSealedAtRestAndLimitedToTwo) {
  ASSERT_TRUE(directory_->CreateUser("ci").ok());
  auto key = directory_->CreateAccessKey("ci");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_TRUE(key->info.id.starts_with("AKIA"));
  EXPECT_EQ(key->info.id.size(), 20u);
  EXPECT_EQ(key->secret.size(), 40u);
  std::ostringstream printed;
  printed << key->secret;
  EXPECT_EQ(printed.str(), "[redacted]");

  auto resolved = directory_->ResolveAccessKey(key->info.id);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->secret.Reveal(), key->secret.Reveal());
  EXPECT_EQ(resolved->info.user_arn, "arn:aws:iam::000000000000:user/ci");

  // The secret is nowhere in the database file in clear.
  ASSERT_TRUE(db_->Close().ok());
  {
    std::ifstream file(dir_ + "/moatless.db", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(key->secret.Reveal()), std::string::npos);
    EXPECT_NE(bytes.find(key->info.id), std::string::npos);
  }
  ASSERT_NO_FATAL_FAILURE(OpenStore());
  EXPECT_EQ(directory_->ResolveAccessKey(key->info.id)->secret.Reveal(), key->secret.Reveal());
  // Another master key cannot open it.
  core::DeterministicRandom other_random(99);
  Directory other(*db_, *env_, core::AeadKey::Generate(other_random));
  EXPECT_FALSE(other.ResolveAccessKey(key->info.id).ok());

  ASSERT_TRUE(directory_->CreateAccessKey("ci").ok());
  auto third = directory_->CreateAccessKey("ci");
  EXPECT_EQ(third.status().code(), core::StatusCode::kResourceExhausted);
  EXPECT_EQ(third.status().aws_type(), "LimitExceeded");
  EXPECT_EQ(directory_->ListAccessKeys("ci")->size(), 2u);
}

TEST_F(DirectoryTest, KeysCanBeDeactivatedTrackedAndDeleted) {
  ASSERT_TRUE(directory_->CreateUser("ci").ok());
  ASSERT_TRUE(directory_->CreateUser("other").ok());
  auto key = directory_->CreateAccessKey("ci");
  ASSERT_TRUE(key.ok());
  const std::string id = key->info.id;
  // Only the owner's name reaches the key.
  EXPECT_EQ(directory_->SetAccessKeyStatus("other", id, KeyStatus::kInactive).code(),
            core::StatusCode::kNotFound);
  ASSERT_TRUE(directory_->SetAccessKeyStatus("ci", id, KeyStatus::kInactive).ok());
  EXPECT_EQ(directory_->ResolveAccessKey(id)->info.status, KeyStatus::kInactive);
  ASSERT_TRUE(directory_->RecordKeyUse(id, "sts").ok());
  auto listed = directory_->ListAccessKeys("ci");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ((*listed)[0].last_used_service, "sts");
  EXPECT_TRUE((*listed)[0].last_used_at.has_value());
  EXPECT_EQ(directory_->DeleteAccessKey("other", id).code(), core::StatusCode::kNotFound);
  ASSERT_TRUE(directory_->DeleteAccessKey("ci", id).ok());
  auto gone = directory_->ResolveAccessKey(id);
  EXPECT_EQ(gone.status().code(), core::StatusCode::kUnauthenticated);
  EXPECT_EQ(gone.status().aws_type(), "InvalidClientTokenId");
  // Deleting a user deletes its keys.
  auto second = directory_->CreateAccessKey("ci");
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(directory_->Delete(PrincipalType::kUser, "ci").ok());
  EXPECT_FALSE(directory_->ResolveAccessKey(second->info.id).ok());
}

TEST_F(DirectoryTest, TheRootIsCreatedOnceAndHoldsKeys) {
  auto root = directory_->EnsureRoot();
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->arn, "arn:aws:iam::000000000000:root");
  EXPECT_EQ(root->type, PrincipalType::kRoot);
  auto again = directory_->EnsureRoot();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, root->id);
  auto key = directory_->CreateRootAccessKey();
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(directory_->ResolveAccessKey(key->info.id)->info.user_arn, root->arn);
  EXPECT_EQ(directory_->Delete(PrincipalType::kRoot, "root").code(),
            core::StatusCode::kFailedPrecondition);
  // A user named "root" is an ordinary user with its own ARN.
  auto user = directory_->CreateUser("root");
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->arn, "arn:aws:iam::000000000000:user/root");
}

TEST_F(DirectoryTest, ManagedPoliciesAttachAndServeAsBoundaries) {
  ASSERT_TRUE(directory_->CreateUser("dev").ok());
  auto policy = directory_->CreateManagedPolicy("read-secrets", kReadSecrets, "reads secrets");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->arn, "arn:aws:iam::000000000000:policy/read-secrets");
  EXPECT_TRUE(policy->id.starts_with("ANPA"));
  EXPECT_EQ(directory_->CreateManagedPolicy("read-secrets", kReadSecrets).status().aws_type(),
            "EntityAlreadyExists");
  EXPECT_EQ(directory_->CreateManagedPolicy("empty", R"({"Statement":[]})").status().code(),
            core::StatusCode::kOk);  // empty but valid
  EXPECT_FALSE(directory_->CreateManagedPolicy("worse", R"({"Statement":"x"})").ok());

  ASSERT_TRUE(directory_->AttachPolicy(PrincipalType::kUser, "dev", policy->arn).ok());
  ASSERT_TRUE(directory_->AttachPolicy(PrincipalType::kUser, "dev", policy->arn).ok());  // again
  auto dev = directory_->Get(PrincipalType::kUser, "dev");
  ASSERT_TRUE(dev.ok());
  ASSERT_EQ(dev->attached.size(), 1u);
  EXPECT_EQ(dev->attached[0].document, kReadSecrets);
  EXPECT_EQ(directory_->GetManagedPolicy(policy->arn)->attachment_count, 1);
  EXPECT_EQ(
      directory_->AttachPolicy(PrincipalType::kUser, "dev", "arn:aws:iam::000000000000:policy/nope")
          .aws_type(),
      "NoSuchEntity");

  ASSERT_TRUE(directory_->SetBoundaryPolicy(PrincipalType::kUser, "dev", policy->arn).ok());
  dev = directory_->Get(PrincipalType::kUser, "dev");
  EXPECT_EQ(dev->boundary_arn, policy->arn);
  EXPECT_EQ(dev->boundary, kReadSecrets);
  // In use: cannot be deleted.
  EXPECT_EQ(directory_->DeleteManagedPolicy(policy->arn).aws_type(), "DeleteConflict");
  ASSERT_TRUE(directory_->DetachPolicy(PrincipalType::kUser, "dev", policy->arn).ok());
  EXPECT_EQ(directory_->DeleteManagedPolicy(policy->arn).aws_type(), "DeleteConflict");
  ASSERT_TRUE(directory_->SetBoundaryPolicy(PrincipalType::kUser, "dev", std::nullopt).ok());
  EXPECT_FALSE(directory_->Get(PrincipalType::kUser, "dev")->boundary.has_value());
  EXPECT_TRUE(directory_->DeleteManagedPolicy(policy->arn).ok());
  EXPECT_EQ(directory_->DetachPolicy(PrincipalType::kUser, "dev", policy->arn).aws_type(),
            "NoSuchEntity");
  // At most 10 attached policies.
  for (int i = 0; i < 10; ++i) {
    auto p = directory_->CreateManagedPolicy("p" + std::to_string(i), kReadSecrets);
    ASSERT_TRUE(p.ok());
    ASSERT_TRUE(directory_->AttachPolicy(PrincipalType::kUser, "dev", p->arn).ok());
  }
  auto eleventh = directory_->CreateManagedPolicy("p10", kReadSecrets);
  ASSERT_TRUE(eleventh.ok());
  EXPECT_EQ(directory_->AttachPolicy(PrincipalType::kUser, "dev", eleventh->arn).aws_type(),
            "LimitExceeded");
}

}  // namespace
}  // namespace moatless::identity
