#include "identity/session_token.h"

#include <gtest/gtest.h>

#include <chrono>
#include <sstream>

namespace moatless::identity {
namespace {

using std::chrono::seconds;

core::AeadKey Master(std::uint64_t seed = 1) {
  core::DeterministicRandom random(seed);
  return core::AeadKey::Generate(random);
}

core::WallTime At(std::int64_t unix_seconds) { return core::WallTime(seconds(unix_seconds)); }

SessionClaims Claims() {
  SessionClaims c;
  c.principal_arn = "arn:aws:sts::000000000000:assumed-role/deployer/ci-run-7";
  c.source_arn = "arn:aws:iam::000000000000:role/deployer";
  c.session_name = "ci-run-7";
  c.session_policy = R"({"Version":"2012-10-17","Statement":[]})";
  c.tags = {{"team", "orders"}};
  c.issued_at = 1'800'000'000;
  c.expires_at = 1'800'003'600;
  return c;
}

TEST(SessionTokens, IssuedCredentialsOpenWithTheirKeyIdUntilExpiry) {
  core::SecureRandom random;
  SessionTokens tokens(Master());
  const TemporaryCredentials creds = tokens.Issue(Claims(), random);
  EXPECT_TRUE(creds.access_key_id.starts_with("ASIA"));
  EXPECT_EQ(creds.access_key_id.size(), 20u);
  EXPECT_EQ(creds.secret_access_key.size(), 40u);
  EXPECT_EQ(creds.expires_at, 1'800'003'600);
  // The secret is not readable in the token.
  EXPECT_EQ(creds.session_token.find(creds.secret_access_key.Reveal()), std::string::npos);

  auto opened = tokens.Open(creds.session_token, creds.access_key_id, At(1'800'000'100));
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->claims.principal_arn, Claims().principal_arn);
  EXPECT_EQ(opened->claims.source_arn, Claims().source_arn);
  EXPECT_EQ(opened->claims.session_name, "ci-run-7");
  EXPECT_EQ(opened->claims.session_policy, Claims().session_policy);
  EXPECT_EQ(opened->claims.tags, Claims().tags);
  EXPECT_EQ(opened->claims.access_key_id, creds.access_key_id);
  EXPECT_EQ(opened->secret_access_key.Reveal(), creds.secret_access_key.Reveal());

  auto expired = tokens.Open(creds.session_token, creds.access_key_id, At(1'800'003'600));
  EXPECT_EQ(expired.status().code(), core::StatusCode::kUnauthenticated);
  EXPECT_EQ(expired.status().aws_type(), "ExpiredToken");
}

TEST(SessionTokens, EditedForgedOrMisusedTokensAreInvalid) {
  core::SecureRandom random;
  SessionTokens tokens(Master());
  const TemporaryCredentials creds = tokens.Issue(Claims(), random);
  const auto now = At(1'800'000'100);
  auto expect_invalid = [&](const core::Result<OpenedSession>& r, const std::string& what) {
    EXPECT_EQ(r.status().code(), core::StatusCode::kUnauthenticated) << what;
    EXPECT_EQ(r.status().aws_type(), "InvalidClientTokenId") << what;
  };
  // Every single-character edit of the token fails.
  const std::string alphabet = "AB+/=a0";
  for (std::size_t i = 0; i < creds.session_token.size(); ++i) {
    std::string edited = creds.session_token;
    edited[i] = edited[i] == alphabet[i % alphabet.size()] ? 'Z' : alphabet[i % alphabet.size()];
    expect_invalid(tokens.Open(edited, creds.access_key_id, now), "edit at " + std::to_string(i));
  }
  expect_invalid(tokens.Open(creds.session_token.substr(1), creds.access_key_id, now), "cut");
  expect_invalid(tokens.Open("", creds.access_key_id, now), "empty");
  expect_invalid(tokens.Open("not base64 !!", creds.access_key_id, now), "garbage");
  // Another key id, another master key, another deployment's tokens.
  const TemporaryCredentials other = tokens.Issue(Claims(), random);
  expect_invalid(tokens.Open(creds.session_token, other.access_key_id, now), "swapped key id");
  expect_invalid(SessionTokens(Master(2)).Open(creds.session_token, creds.access_key_id, now),
                 "other master key");
  // The error never carries the secret.
  auto r = tokens.Open(creds.session_token, other.access_key_id, now);
  EXPECT_EQ(r.status().message().find(creds.secret_access_key.Reveal()), std::string::npos);
}

TEST(SessionTokens, EnvironmentBindingTravelsInTheToken) {
  core::SecureRandom random;
  SessionTokens tokens(Master());
  SessionClaims claims = Claims();
  claims.bound_environment = "sandbox-42";
  const TemporaryCredentials creds = tokens.Issue(claims, random);
  auto opened = tokens.Open(creds.session_token, creds.access_key_id, At(1'800'000'100));
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->claims.bound_environment, "sandbox-42");
}

}  // namespace
}  // namespace moatless::identity
