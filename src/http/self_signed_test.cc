#include "http/self_signed.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <memory>

#include "core/clock.h"
#include "core/random.h"
#include "http/client.h"
#include "http/io_pool.h"
#include "http/server.h"
#include "http/status_response.h"
#include "http/test_support.h"
#include "http/tls.h"

namespace moatless::http {
namespace {

using namespace std::chrono_literals;

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};

std::unique_ptr<X509, X509Free> ReadCert(const std::string& path) {
  const std::string pem = testing::ReadFile(path);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  return cert;
}

std::unique_ptr<EVP_PKEY, PkeyFree> ReadKey(const std::string& path) {
  const std::string pem = testing::ReadFile(path);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  std::unique_ptr<EVP_PKEY, PkeyFree> key(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  return key;
}

unsigned Mode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// Seconds from `from` to `to` (ASN1 times).
int SecondsBetween(const ASN1_TIME* from, const ASN1_TIME* to) {
  int days = 0, seconds = 0;
  ASN1_TIME_diff(&days, &seconds, from, to);
  return days * 86400 + seconds;
}

class SelfSignedTest : public ::testing::Test {
 protected:
  std::string Dir() const { return root_.File("tls"); }
  core::Result<SelfSignedCertificate> Ensure() {
    return EnsureSelfSignedCertificate(Dir(), clock_, random_);
  }

  testing::TempDir root_;
  core::FakeClock clock_{std::chrono::system_clock::now()};
  core::SecureRandom random_;
};

TEST_F(SelfSignedTest, GeneratesALocalhostCertificateThatMatchesItsKey) {
  auto made = Ensure();
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_TRUE(made->generated);
  EXPECT_EQ(made->cert_file, Dir() + "/self-signed-cert.pem");
  EXPECT_EQ(made->key_file, Dir() + "/self-signed-key.pem");
  EXPECT_EQ(Mode(Dir()), 0700u);
  EXPECT_EQ(Mode(made->key_file), 0600u);
  EXPECT_EQ(Mode(made->cert_file), 0600u);

  auto cert = ReadCert(made->cert_file);
  auto key = ReadKey(made->key_file);
  ASSERT_NE(cert, nullptr);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
  EXPECT_EQ(X509_verify(cert.get(), key.get()), 1);  // signed by its own key
  EXPECT_EQ(EVP_PKEY_get_base_id(key.get()), EVP_PKEY_EC);
  char curve[64] = {};
  std::size_t curve_len = 0;
  ASSERT_EQ(EVP_PKEY_get_utf8_string_param(key.get(), "group", curve, sizeof curve, &curve_len), 1);
  EXPECT_STREQ(curve, "prime256v1");
  EXPECT_EQ(X509_get_signature_nid(cert.get()), NID_ecdsa_with_SHA256);

  char cn[64] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, "localhost");
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "example.com", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);  // a leaf

  const int lifetime =
      SecondsBetween(X509_get0_notBefore(cert.get()), X509_get0_notAfter(cert.get()));
  EXPECT_EQ(lifetime, 30 * 86400 + 3600);
  std::time_t now = std::chrono::system_clock::to_time_t(clock_.Now());
  EXPECT_LT(X509_cmp_time(X509_get0_notBefore(cert.get()), &now), 0);

  auto fingerprint = CertificateSha256Fingerprint(testing::ReadFile(made->cert_file));
  ASSERT_TRUE(fingerprint.ok());
  EXPECT_EQ(made->sha256_fingerprint, *fingerprint);
  EXPECT_EQ(made->sha256_fingerprint.size(), 32u * 3 - 1);
}

TEST_F(SelfSignedTest, ReusedWhileValidForMoreThanADay) {
  auto first = Ensure();
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string key_pem = testing::ReadFile(first->key_file);
  clock_.Advance(std::chrono::hours(24 * 28));
  auto second = Ensure();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->generated);
  EXPECT_EQ(second->sha256_fingerprint, first->sha256_fingerprint);
  EXPECT_EQ(testing::ReadFile(second->key_file), key_pem);
}

TEST_F(SelfSignedTest, RegeneratedWhenExpiringWithinADayOrExpired) {
  for (const auto advance : {std::chrono::hours(24 * 29 + 12), std::chrono::hours(24 * 40)}) {
    auto first = Ensure();
    ASSERT_TRUE(first.ok()) << first.status();
    clock_.Advance(advance);
    auto second = Ensure();
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_TRUE(second->generated);
    EXPECT_NE(second->sha256_fingerprint, first->sha256_fingerprint);
    auto cert = ReadCert(second->cert_file);
    ASSERT_NE(cert, nullptr);
    std::time_t later = std::chrono::system_clock::to_time_t(clock_.Now() + 29 * 24h);
    EXPECT_GT(X509_cmp_time(X509_get0_notAfter(cert.get()), &later), 0);
  }
}

TEST_F(SelfSignedTest, RegeneratedWhenUnusable) {
  const std::vector<std::pair<std::string, std::function<void(const SelfSignedCertificate&)>>>
      breakages = {
          {"key readable by the group",
           [](const SelfSignedCertificate& c) { ::chmod(c.key_file.c_str(), 0640); }},
          {"key not a key",
           [](const SelfSignedCertificate& c) { testing::WriteFile(c.key_file, "garbage"); }},
          {"key missing", [](const SelfSignedCertificate& c) { ::unlink(c.key_file.c_str()); }},
          {"certificate not a certificate",
           [](const SelfSignedCertificate& c) { testing::WriteFile(c.cert_file, "garbage"); }},
          {"certificate missing",
           [](const SelfSignedCertificate& c) { ::unlink(c.cert_file.c_str()); }},
          {"key of another certificate",
           [this](const SelfSignedCertificate& c) {
             const auto other = testing::MakeSelfSignedCert(root_, "DNS:localhost", "other");
             testing::WriteFile(c.key_file, testing::ReadFile(other.key));
           }},
      };
  for (const auto& [name, breakage] : breakages) {
    SCOPED_TRACE(name);
    auto first = Ensure();
    ASSERT_TRUE(first.ok()) << first.status();
    breakage(*first);
    auto second = Ensure();
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_TRUE(second->generated);
    EXPECT_EQ(Mode(second->key_file), 0600u);
    EXPECT_TRUE(MakeServerTlsContext({second->cert_file, second->key_file}).ok());
    auto third = Ensure();
    ASSERT_TRUE(third.ok());
    EXPECT_FALSE(third->generated);
  }
}

TEST_F(SelfSignedTest, FolderIsMadePrivate) {
  ASSERT_EQ(::mkdir(Dir().c_str(), 0755), 0);
  ASSERT_EQ(::chmod(Dir().c_str(), 0755), 0);
  ASSERT_TRUE(Ensure().ok());
  EXPECT_EQ(Mode(Dir()), 0700u);
  testing::WriteFile(root_.File("file"), "x");
  EXPECT_FALSE(EnsureSelfSignedCertificate(root_.File("file"), clock_, random_).ok());
}

TEST_F(SelfSignedTest, ClientsThatTrustItVerifyTheServer) {
  auto made = Ensure();
  ASSERT_TRUE(made.ok()) << made.status();
  IoPool pool(1);
  pool.Start();
  core::RealClock clock;
  ServerOptions options;
  options.random = &random_;
  options.clock = &clock;
  {
    Server server(pool, options, [](Request&, RequestContext&) -> asio::awaitable<Response> {
      co_return TextResponse(HttpStatus::ok, "dev");
    });
    auto v4 = server.ListenTcp("127.0.0.1", 0, TlsOptions{made->cert_file, made->key_file});
    ASSERT_TRUE(v4.ok()) << v4.status();
    auto client = Client::Create({.ca_file = made->cert_file});
    ASSERT_TRUE(client.ok());
    for (const std::string host : {"localhost", "127.0.0.1"}) {
      auto res = client->FetchBlocking("https://" + host + ":" + std::to_string(v4->port()) + "/",
                                       MakeRequest(Verb::get));
      ASSERT_TRUE(res.ok()) << host << ": " << res.status();
      EXPECT_EQ(res->body(), "dev");
    }
    if (auto v6 = server.ListenTcp("::1", 0, TlsOptions{made->cert_file, made->key_file});
        v6.ok()) {
      auto res = client->FetchBlocking("https://[::1]:" + std::to_string(v6->port()) + "/",
                                       MakeRequest(Verb::get));
      ASSERT_TRUE(res.ok()) << res.status();
      EXPECT_EQ(res->body(), "dev");
    }
  }
  pool.Stop();
  pool.Join();
}

}  // namespace
}  // namespace moatless::http
