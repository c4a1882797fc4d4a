// Truststore: client certificates are admitted only when they chain to one of the app's CAs, are
// within their validity and allow TLS client authentication; damaged or wrong input is refused.
#include "gateway/truststore.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace moatless::gateway {
namespace {

namespace fs = std::filesystem;

std::string Fixture(const std::string& name) {
  const fs::path path = fs::path(__FILE__).parent_path() / "testdata" / "mtls" / name;
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_TRUE(in) << "missing test fixture " << path;
  return text.str();
}

core::WallTime Now() { return core::WallTime(std::chrono::seconds(1'800'000'000)); }  // 2027

TEST(TruststoreTest, AdmitsACertificateIssuedByItsCa) {
  auto store = Truststore::FromPem(Fixture("ca.pem"));
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(store->size(), 1);
  EXPECT_TRUE(store->Verify(Fixture("client.pem"), "", Now()).ok());
}

TEST(TruststoreTest, RefusesCertificatesOfOtherCasOrForOtherPurposes) {
  auto store = Truststore::FromPem(Fixture("ca.pem"));
  ASSERT_TRUE(store.ok()) << store.status();
  core::Status s = store->Verify(Fixture("other-client.pem"), "", Now());
  EXPECT_EQ(s.code(), core::StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("unable to get local issuer certificate"), std::string::npos) << s;
  // Sending the other CA along as an "intermediate" does not make it trusted.
  s = store->Verify(Fixture("other-client.pem"), Fixture("other-ca.pem"), Now());
  EXPECT_EQ(s.code(), core::StatusCode::kPermissionDenied) << s;
  // A certificate for servers only is not a client certificate.
  s = store->Verify(Fixture("server-only.pem"), "", Now());
  EXPECT_EQ(s.code(), core::StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("purpose"), std::string::npos) << s;
  // The CA itself is not a client.
  EXPECT_FALSE(store->Verify(Fixture("ca.pem"), "", Now()).ok());
}

TEST(TruststoreTest, ChecksValidityAtTheGivenTime) {
  auto store = Truststore::FromPem(Fixture("ca.pem"));
  ASSERT_TRUE(store.ok());
  const core::WallTime before_issue(std::chrono::seconds(1'600'000'000));  // 2020
  core::Status s = store->Verify(Fixture("client.pem"), "", before_issue);
  EXPECT_EQ(s.code(), core::StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("not yet valid"), std::string::npos) << s;
  const core::WallTime after_expiry(std::chrono::seconds(5'000'000'000));  // 2128
  s = store->Verify(Fixture("client.pem"), "", after_expiry);
  EXPECT_NE(s.message().find("expired"), std::string::npos) << s;
}

TEST(TruststoreTest, SeveralCasInOneFile) {
  auto store = Truststore::FromPem(Fixture("ca.pem") + Fixture("other-ca.pem"));
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(store->size(), 2);
  EXPECT_TRUE(store->Verify(Fixture("client.pem"), "", Now()).ok());
  EXPECT_TRUE(store->Verify(Fixture("other-client.pem"), "", Now()).ok());
}

TEST(TruststoreTest, RefusesBadTruststoresAndBadInput) {
  EXPECT_EQ(Truststore::FromPem("").status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(Truststore::FromPem("not a certificate").status().code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(Truststore::FromPem("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
                .status()
                .code(),
            core::StatusCode::kInvalidArgument);
  // A leaf is not a CA.
  auto leaf = Truststore::FromPem(Fixture("client.pem"));
  EXPECT_EQ(leaf.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(leaf.status().message().find("not a CA certificate"), std::string::npos);

  auto store = Truststore::FromPem(Fixture("ca.pem"));
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(store->Verify("garbage", "", Now()).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Verify(Fixture("client.pem") + Fixture("other-client.pem"), "", Now()).code(),
            core::StatusCode::kInvalidArgument);
  std::string damaged = Fixture("client.pem");
  damaged[damaged.size() / 2] ^= 0x01;
  EXPECT_FALSE(store->Verify(damaged, "", Now()).ok());
}

}  // namespace
}  // namespace moatless::gateway
