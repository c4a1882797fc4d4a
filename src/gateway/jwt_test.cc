#include "gateway/jwt.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cctype>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "core/base64.h"
#include "core/clock.h"
#include "core/status.h"

namespace moatless::gateway {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr std::string_view kIssuer = "https://issuer.example";
constexpr std::string_view kAudience = "api://notes";
// 2026-01-01T00:00:00Z, a whole second so that the leeway edges are exact.
constexpr std::int64_t kNowSeconds = 1767225600;
const core::WallTime kNow{std::chrono::seconds(kNowSeconds)};

// ---- A test-only JWS signer, built on OpenSSL like the verifier but independent of it. --------

using Pkey = std::shared_ptr<EVP_PKEY>;

Pkey Wrap(EVP_PKEY* key) {
  if (key == nullptr) ADD_FAILURE() << "OpenSSL key generation failed";
  return Pkey(key, &EVP_PKEY_free);
}

Pkey GenerateRsa(std::size_t bits) {
  return Wrap(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits));
}
Pkey GenerateEc(const char* curve) {
  return Wrap(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
}
Pkey GenerateEd25519() { return Wrap(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")); }

std::string B64Url(std::string_view bytes) {
  std::string text = core::Base64Encode(bytes);
  std::replace(text.begin(), text.end(), '+', '-');
  std::replace(text.begin(), text.end(), '/', '_');
  text.erase(std::remove(text.begin(), text.end(), '='), text.end());
  return text;
}

std::string FromB64Url(std::string_view text) {
  std::string standard(text);
  std::replace(standard.begin(), standard.end(), '-', '+');
  std::replace(standard.begin(), standard.end(), '_', '/');
  while (standard.size() % 4 != 0) standard += '=';
  return core::Base64Decode(standard).value_or("<undecodable>");
}

std::string BnBytes(EVP_PKEY* key, const char* param, int pad = 0) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &bn) != 1) {
    ADD_FAILURE() << "EVP_PKEY_get_bn_param " << param;
    return "";
  }
  std::string out(static_cast<std::size_t>(std::max(pad, BN_num_bytes(bn))), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

// The public JWK of a key, with optional kid and alg.
boost::json::object PublicJwk(EVP_PKEY* key, std::string_view kid, std::string_view alg = "") {
  boost::json::object jwk;
  if (EVP_PKEY_is_a(key, "RSA")) {
    jwk["kty"] = "RSA";
    jwk["n"] = B64Url(BnBytes(key, OSSL_PKEY_PARAM_RSA_N));
    jwk["e"] = B64Url(BnBytes(key, OSSL_PKEY_PARAM_RSA_E));
  } else if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {};
    EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, nullptr);
    const bool p256 = std::string_view(group) == "prime256v1";
    unsigned char point[256];
    std::size_t length = 0;
    EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &length);
    const std::size_t half = p256 ? 32 : 48;
    EXPECT_EQ(length, 1 + 2 * half);
    jwk["kty"] = "EC";
    jwk["crv"] = p256 ? "P-256" : "P-384";
    jwk["x"] = B64Url(std::string_view(reinterpret_cast<char*>(point) + 1, half));
    jwk["y"] = B64Url(std::string_view(reinterpret_cast<char*>(point) + 1 + half, half));
  } else {
    unsigned char raw[32];
    std::size_t length = sizeof raw;
    EVP_PKEY_get_raw_public_key(key, raw, &length);
    jwk["kty"] = "OKP";
    jwk["crv"] = "Ed25519";
    jwk["x"] = B64Url(std::string_view(reinterpret_cast<char*>(raw), length));
  }
  if (!kid.empty()) jwk["kid"] = kid;
  if (!alg.empty()) jwk["alg"] = alg;
  jwk["use"] = "sig";
  return jwk;
}

std::string Jwks(const std::vector<boost::json::object>& keys) {
  boost::json::array array;
  for (const auto& key : keys) array.push_back(key);
  return boost::json::serialize(boost::json::object{{"keys", std::move(array)}});
}

const EVP_MD* DigestFor(std::string_view alg) {
  if (alg.ends_with("256")) return EVP_sha256();
  if (alg.ends_with("384")) return EVP_sha384();
  if (alg.ends_with("512")) return EVP_sha512();
  return nullptr;  // EdDSA
}

// Signs `input` as JWS `alg` does. ECDSA signatures come out as raw R || S unless `der`.
std::string SignBytes(EVP_PKEY* key, std::string_view alg, std::string_view input, bool der = false,
                      int pss_salt = RSA_PSS_SALTLEN_DIGEST, const EVP_MD* mgf1 = nullptr) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  const EVP_MD* md = DigestFor(alg);
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, key), 1);
  if (alg.starts_with("PS")) {
    EXPECT_EQ(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
    EXPECT_EQ(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, mgf1 != nullptr ? mgf1 : md), 1);
    EXPECT_EQ(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt), 1);
  }
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  std::size_t length = 0;
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &length, data, input.size()), 1);
  std::string sig(length, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &length, data,
                           input.size()),
            1);
  sig.resize(length);
  if (!alg.starts_with("ES") || der) return sig;
  const int half = alg == "ES256" ? 32 : 48;
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string raw(2 * static_cast<std::size_t>(half), '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), out, half);
  BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), out + half, half);
  ECDSA_SIG_free(ecdsa);
  return raw;
}

// A compact JWS over the given header and payload JSON texts, used as they are.
std::string SignText(EVP_PKEY* key, std::string_view alg, std::string_view header_json,
                     std::string_view payload_json, bool der = false) {
  const std::string input = B64Url(header_json) + "." + B64Url(payload_json);
  return input + "." + B64Url(SignBytes(key, alg, input, der));
}

std::string Sign(EVP_PKEY* key, const boost::json::object& header,
                 const boost::json::object& claims) {
  return SignText(key, header.at("alg").as_string(), boost::json::serialize(header),
                  boost::json::serialize(claims));
}

boost::json::object Header(std::string_view alg, std::string_view kid) {
  boost::json::object header{{"alg", alg}, {"typ", "JWT"}};
  if (!kid.empty()) header["kid"] = kid;
  return header;
}

boost::json::object Claims() {
  return {{"iss", kIssuer},          {"sub", "user-1"},
          {"aud", kAudience},        {"exp", kNowSeconds + 300},
          {"iat", kNowSeconds - 10}, {"scope", "notes:read notes:write"}};
}

std::vector<std::string> Parts(std::string_view token) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = token.find('.', start);
    parts.emplace_back(token.substr(start, dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i == 0 ? "" : ".") + parts[i];
  return out;
}

// The failure a client would see: Unauthenticated, naming `reason`, fit for an RFC 6750
// error_description (lower-case, no quote or backslash), and without any piece of `token`.
::testing::AssertionResult Refused(const core::Result<VerifiedJwt>& result, std::string_view reason,
                                   std::string_view token = "") {
  if (result.ok()) return ::testing::AssertionFailure() << "the token was accepted";
  const core::Status status = result.status();
  if (status.code() != core::StatusCode::kUnauthenticated) {
    return ::testing::AssertionFailure() << "not Unauthenticated: " << status;
  }
  const std::string& message = status.message();
  if (message.find(reason) == std::string::npos) {
    return ::testing::AssertionFailure() << "'" << message << "' does not say '" << reason << "'";
  }
  for (char c : message) {
    if (c == '"' || c == '\\' || std::isupper(static_cast<unsigned char>(c)) || c < 0x20) {
      return ::testing::AssertionFailure() << "'" << message << "' is unfit for error_description";
    }
  }
  if (!token.empty()) {
    for (const std::string& part : Parts(token)) {
      if (part.size() >= 4 && message.find(part) != std::string::npos) {
        return ::testing::AssertionFailure() << "'" << message << "' echoes the token";
      }
    }
  }
  return ::testing::AssertionSuccess();
}

// Accepted, or why not.
::testing::AssertionResult Passes(const core::Result<VerifiedJwt>& result) {
  if (result.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << result.status();
}

JwtRules Rules(std::chrono::seconds leeway = 30s) {
  return JwtRules{.issuer = std::string(kIssuer),
                  .audience = {"api://other", std::string(kAudience)},
                  .leeway = leeway};
}

struct TestKeys {
  Pkey rsa;         // kid "rsa-1", no JWK alg: every RS* / PS*
  Pkey rsa_rs256;   // kid "rsa-rs256", JWK alg RS256
  Pkey rsa_absent;  // in no JWKS
  Pkey ec256;       // kid "ec-256"
  Pkey ec384;       // kid "ec-384"
  Pkey ed;          // kid "ed-1"
  Pkey ec256_absent;
};

class JwtTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    keys_ = new TestKeys{.rsa = GenerateRsa(2048),
                         .rsa_rs256 = GenerateRsa(2048),
                         .rsa_absent = GenerateRsa(2048),
                         .ec256 = GenerateEc("P-256"),
                         .ec384 = GenerateEc("P-384"),
                         .ed = GenerateEd25519(),
                         .ec256_absent = GenerateEc("P-256")};
  }
  static void TearDownTestSuite() {
    delete keys_;
    keys_ = nullptr;
  }

  void SetUp() override {
    auto verifier = JwtVerifier::Create(Rules(), StandardJwks());
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_.emplace(std::move(*verifier));
  }

  static std::string StandardJwks() {
    return Jwks({PublicJwk(keys_->rsa.get(), "rsa-1"),
                 PublicJwk(keys_->rsa_rs256.get(), "rsa-rs256", "RS256"),
                 PublicJwk(keys_->ec256.get(), "ec-256"), PublicJwk(keys_->ec384.get(), "ec-384"),
                 PublicJwk(keys_->ed.get(), "ed-1")});
  }

  core::Result<VerifiedJwt> Verify(std::string_view token, core::WallTime now = kNow) const {
    return verifier_->Verify(token, now);
  }

  // A token signed by the RSA key "rsa-1" with RS256 and these claims.
  static std::string RsaToken(const boost::json::object& claims) {
    return Sign(keys_->rsa.get(), Header("RS256", "rsa-1"), claims);
  }

  static inline TestKeys* keys_ = nullptr;
  std::optional<JwtVerifier> verifier_;
};

// ---- Valid tokens
// --------------------------------------------------------------------------------

TEST_F(JwtTest, AcceptsEveryAlgorithmWithItsKey) {
  struct Case {
    std::string alg;
    EVP_PKEY* key;
    std::string kid;
  };
  const std::vector<Case> cases = {
      {"RS256", keys_->rsa.get(), "rsa-1"},           {"RS384", keys_->rsa.get(), "rsa-1"},
      {"RS512", keys_->rsa.get(), "rsa-1"},           {"PS256", keys_->rsa.get(), "rsa-1"},
      {"PS384", keys_->rsa.get(), "rsa-1"},           {"PS512", keys_->rsa.get(), "rsa-1"},
      {"RS256", keys_->rsa_rs256.get(), "rsa-rs256"}, {"ES256", keys_->ec256.get(), "ec-256"},
      {"ES384", keys_->ec384.get(), "ec-384"},        {"EdDSA", keys_->ed.get(), "ed-1"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.alg + " " + c.kid);
    const std::string token = Sign(c.key, Header(c.alg, c.kid), Claims());
    auto result = Verify(token);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->claims.at("sub").as_string(), "user-1");
    EXPECT_EQ(result->claims.at("iss").as_string(), kIssuer);
    EXPECT_EQ(result->scopes, (std::vector<std::string>{"notes:read", "notes:write"}));
  }
  EXPECT_EQ(verifier_->key_count(), 5u);
}

TEST_F(JwtTest, AcceptsTheTypesOfJwtsAndAccessTokens) {
  for (std::string_view typ : {"JWT", "jwt", "at+jwt", "AT+JWT", "application/at+jwt"}) {
    auto header = Header("ES256", "ec-256");
    header["typ"] = typ;
    EXPECT_TRUE(Passes(Verify(Sign(keys_->ec256.get(), header, Claims())))) << typ;
  }
  auto header = Header("ES256", "ec-256");
  header.erase("typ");
  EXPECT_TRUE(Passes(Verify(Sign(keys_->ec256.get(), header, Claims()))));
}

TEST_F(JwtTest, VerifierCopiesShareKeysAndVerifyConcurrently) {
  const JwtVerifier copy = *verifier_;
  const std::vector<std::string> tokens = {
      Sign(keys_->rsa.get(), Header("RS256", "rsa-1"), Claims()),
      Sign(keys_->rsa.get(), Header("PS256", "rsa-1"), Claims()),
      Sign(keys_->ec256.get(), Header("ES256", "ec-256"), Claims()),
      Sign(keys_->ed.get(), Header("EdDSA", "ed-1"), Claims()),
  };
  std::string forged = tokens[0];
  forged[forged.size() - 5] = forged[forged.size() - 5] == 'A' ? 'B' : 'A';
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        const std::string& token = tokens[static_cast<std::size_t>(t + i) % tokens.size()];
        if (!copy.Verify(token, kNow).ok()) ++failures;
        if (copy.Verify(forged, kNow).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

// ---- Time
// ----------------------------------------------------------------------------------------

TEST_F(JwtTest, RefusesAnExpiredToken) {
  auto claims = Claims();
  claims["iat"] = kNowSeconds - 7200;
  claims["exp"] = kNowSeconds - 3600;
  const std::string token = RsaToken(claims);
  EXPECT_TRUE(Refused(Verify(token), "the token has expired", token));
  // The same token was fine while it lived.
  EXPECT_TRUE(Passes(Verify(token, kNow - 90min)));
}

TEST_F(JwtTest, ARememberedTokenIsStillCheckedForItsTimes) {
  auto claims = Claims();
  claims["iat"] = kNowSeconds - 60;
  claims["nbf"] = kNowSeconds - 60;
  claims["exp"] = kNowSeconds + 600;
  const std::string token = RsaToken(claims);
  ASSERT_TRUE(Passes(Verify(token)));  // verified once: remembered
  auto again = Verify(token);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->claims, claims);
  EXPECT_TRUE(Refused(Verify(token, kNow + 2h), "the token has expired", token));
  EXPECT_TRUE(Refused(Verify(token, kNow - 2h), "the token is not valid yet", token));
  // Copies share what is remembered, and nothing but the exact token is served from it.
  const JwtVerifier copy = *verifier_;
  EXPECT_TRUE(Passes(copy.Verify(token, kNow)));
  // (Not the last character: its low bits are padding, so changing it may only make the
  // base64url non-canonical.)
  std::string flipped = token;
  char& c = flipped[flipped.size() - 2];
  c = c == 'A' ? 'B' : 'A';
  EXPECT_TRUE(Refused(Verify(flipped), "signature is not valid"));
}

TEST_F(JwtTest, RefusesATokenWithoutExpiry) {
  auto claims = Claims();
  claims.erase("exp");
  EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "the token has no expiry time"));
}

TEST_F(JwtTest, RefusesNumericDatesThatAreNotNumbers) {
  for (std::string_view name : {"exp", "nbf", "iat"}) {
    auto claims = Claims();
    claims[name] = std::to_string(kNowSeconds);
    EXPECT_TRUE(Refused(Verify(RsaToken(claims)),
                        "the token's " + std::string(name) + " claim is not a number"))
        << name;
    claims[name] = true;
    EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "is not a number")) << name;
  }
  // Fractional NumericDates are numbers too.
  auto claims = Claims();
  claims["exp"] = static_cast<double>(kNowSeconds) + 100.5;
  EXPECT_TRUE(Passes(Verify(RsaToken(claims))));
}

TEST_F(JwtTest, RefusesATokenNotValidYet) {
  auto claims = Claims();
  claims["nbf"] = kNowSeconds + 600;
  claims["exp"] = kNowSeconds + 3600;
  const std::string token = RsaToken(claims);
  EXPECT_TRUE(Refused(Verify(token), "the token is not valid yet", token));
  EXPECT_TRUE(Passes(Verify(token, kNow + 600s)));
}

TEST_F(JwtTest, RefusesATokenIssuedInTheFuture) {
  auto claims = Claims();
  claims["iat"] = kNowSeconds + 600;
  claims["exp"] = kNowSeconds + 3600;
  const std::string token = RsaToken(claims);
  EXPECT_TRUE(Refused(Verify(token), "the token was issued in the future", token));
  EXPECT_TRUE(Passes(Verify(token, kNow + 600s)));
}

TEST_F(JwtTest, HonoursTheLeewayAtBothEdges) {
  // exp must be after now - leeway.
  auto claims = Claims();
  claims["exp"] = kNowSeconds - 29;
  EXPECT_TRUE(Passes(Verify(RsaToken(claims))));
  claims["exp"] = kNowSeconds - 30;
  EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "the token has expired"));
  // nbf and iat may be up to now + leeway.
  for (std::string_view name : {"nbf", "iat"}) {
    claims = Claims();
    claims[name] = kNowSeconds + 30;
    EXPECT_TRUE(Passes(Verify(RsaToken(claims)))) << name;
    claims[name] = kNowSeconds + 31;
    EXPECT_FALSE(Verify(RsaToken(claims)).ok()) << name;
  }
  // Without leeway the edges are now itself.
  auto strict = JwtVerifier::Create(Rules(0s), StandardJwks());
  ASSERT_TRUE(strict.ok()) << strict.status();
  claims = Claims();
  claims["exp"] = kNowSeconds;
  EXPECT_TRUE(Refused(strict->Verify(RsaToken(claims), kNow), "the token has expired"));
  claims["exp"] = kNowSeconds + 1;
  claims["nbf"] = kNowSeconds;
  claims["iat"] = kNowSeconds;
  EXPECT_TRUE(Passes(strict->Verify(RsaToken(claims), kNow)));
  claims["nbf"] = kNowSeconds + 1;
  EXPECT_TRUE(Refused(strict->Verify(RsaToken(claims), kNow), "the token is not valid yet"));
}

// ---- Issuer and audience -----------------------------------------------------------------------

TEST_F(JwtTest, RefusesAnotherIssuer) {
  auto claims = Claims();
  claims["iss"] = "https://evil.example";
  const std::string token = RsaToken(claims);
  const auto result = Verify(token);
  EXPECT_TRUE(Refused(result, "the token's issuer is not accepted", token));
  EXPECT_THAT(result.status().message(), ::testing::Not(HasSubstr("evil")));
  // Exactly equal: no prefix, no trailing slash, no case folding.
  for (std::string_view iss :
       {"https://issuer.example/", "HTTPS://issuer.example", "https://issuer"}) {
    claims["iss"] = iss;
    EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "issuer is not accepted")) << iss;
  }
  claims.erase("iss");
  EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "issuer is not accepted"));
  claims["iss"] = boost::json::array{kIssuer};
  EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "issuer is not accepted"));
}

TEST_F(JwtTest, RefusesAnotherAudience) {
  auto claims = Claims();
  claims["aud"] = "api://billing";
  const std::string token = RsaToken(claims);
  const auto result = Verify(token);
  EXPECT_TRUE(Refused(result, "the token's audience is not accepted", token));
  EXPECT_THAT(result.status().message(), ::testing::Not(HasSubstr("billing")));
  claims["aud"] = boost::json::array{"api://billing", "api://payroll"};
  EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "audience is not accepted"));
  claims["aud"] = boost::json::array{};
  EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "audience is not accepted"));
  claims["aud"] = 42;
  EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "audience is not accepted"));
  claims["aud"] = boost::json::array{kAudience, 42};
  EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "audience is not accepted"));
}

TEST_F(JwtTest, AcceptsAnAudienceArrayContainingTheAudience) {
  auto claims = Claims();
  claims["aud"] = boost::json::array{"api://billing", kAudience};
  EXPECT_TRUE(Passes(Verify(RsaToken(claims))));
  claims["aud"] = "api://other";  // the rules' other accepted audience
  EXPECT_TRUE(Passes(Verify(RsaToken(claims))));
}

TEST_F(JwtTest, UsesClientIdOnlyWhenTheTokenHasNoAudience) {
  auto claims = Claims();
  claims.erase("aud");
  claims["client_id"] = kAudience;
  EXPECT_TRUE(Passes(Verify(RsaToken(claims))));
  claims["client_id"] = "someone-else";
  EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "the token's audience is not accepted"));
  claims.erase("client_id");
  EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "the token's audience is not accepted"));
  // An aud that names someone else is final, even with the right client_id.
  claims["aud"] = "api://billing";
  claims["client_id"] = kAudience;
  EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "the token's audience is not accepted"));
}

// ---- Scopes
// --------------------------------------------------------------------------------------

TEST_F(JwtTest, ReadsScopesFromScopeOrScp) {
  auto claims = Claims();
  claims["scope"] = "  a  b c ";
  auto result = Verify(RsaToken(claims));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->scopes, (std::vector<std::string>{"a", "b", "c"}));

  claims.erase("scope");
  claims["scp"] = boost::json::array{"x", "y"};
  result = Verify(RsaToken(claims));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->scopes, (std::vector<std::string>{"x", "y"}));

  claims["scp"] = "x y";
  result = Verify(RsaToken(claims));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->scopes, (std::vector<std::string>{"x", "y"}));

  // scope wins over scp.
  claims["scope"] = "a";
  result = Verify(RsaToken(claims));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->scopes, (std::vector<std::string>{"a"}));

  claims.erase("scope");
  claims.erase("scp");
  result = Verify(RsaToken(claims));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->scopes.empty());
}

TEST_F(JwtTest, RefusesMalformedScopeClaims) {
  auto claims = Claims();
  claims["scope"] = boost::json::array{"a"};
  EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "scope claim is not a string"));
  claims.erase("scope");
  claims["scp"] = boost::json::array{"a", 1};
  EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "scp claim is not a list of strings"));
  claims["scp"] = 7;
  EXPECT_TRUE(Refused(Verify(RsaToken(claims)), "scp claim is not a list of strings"));
}

TEST_F(JwtTest, HasScopesRequiresEveryScope) {
  auto result = Verify(RsaToken(Claims()));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(HasScopes(*result, {}));
  EXPECT_TRUE(HasScopes(*result, {"notes:read"}));
  EXPECT_TRUE(HasScopes(*result, {"notes:write", "notes:read"}));
  EXPECT_FALSE(HasScopes(*result, {"notes:delete"}));
  EXPECT_FALSE(HasScopes(*result, {"notes:read", "notes:delete"}));
  EXPECT_FALSE(HasScopes(*result, {"notes"}));  // whole scopes, not prefixes

  auto claims = Claims();
  claims.erase("scope");
  result = Verify(RsaToken(claims));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(HasScopes(*result, {}));
  EXPECT_FALSE(HasScopes(*result, {"notes:read"}));
}

// ---- Signatures
// ----------------------------------------------------------------------------------

TEST_F(JwtTest, RefusesAFlippedSignatureByte) {
  struct Case {
    std::string alg;
    EVP_PKEY* key;
    std::string kid;
  };
  for (const Case& c : std::vector<Case>{{"RS256", keys_->rsa.get(), "rsa-1"},
                                         {"PS256", keys_->rsa.get(), "rsa-1"},
                                         {"ES256", keys_->ec256.get(), "ec-256"},
                                         {"ES384", keys_->ec384.get(), "ec-384"},
                                         {"EdDSA", keys_->ed.get(), "ed-1"}}) {
    SCOPED_TRACE(c.alg);
    const std::string token = Sign(c.key, Header(c.alg, c.kid), Claims());
    ASSERT_TRUE(Passes(Verify(token)));
    auto parts = Parts(token);
    std::string sig = FromB64Url(parts[2]);
    sig[sig.size() / 2] = static_cast<char>(sig[sig.size() / 2] ^ 0x01);
    parts[2] = B64Url(sig);
    EXPECT_TRUE(Refused(Verify(Join(parts)), "the token's signature is not valid", Join(parts)));
  }
}

TEST_F(JwtTest, RefusesATamperedPayload) {
  const std::string token = RsaToken(Claims());
  ASSERT_TRUE(Passes(Verify(token)));
  auto claims = Claims();
  claims["sub"] = "admin";
  claims["scope"] = "notes:read notes:write notes:admin";
  auto parts = Parts(token);
  parts[1] = B64Url(boost::json::serialize(claims));
  EXPECT_TRUE(Refused(Verify(Join(parts)), "the token's signature is not valid", Join(parts)));

  // The same with an ECDSA and an EdDSA token.
  for (auto [key, alg, kid] : {std::tuple{keys_->ec256.get(), "ES256", "ec-256"},
                               std::tuple{keys_->ed.get(), "EdDSA", "ed-1"}}) {
    auto tampered = Parts(Sign(key, Header(alg, kid), Claims()));
    tampered[1] = B64Url(boost::json::serialize(claims));
    EXPECT_TRUE(Refused(Verify(Join(tampered)), "signature is not valid")) << alg;
  }
}

TEST_F(JwtTest, RefusesASignatureByAKeyOutsideTheSet) {
  // Claims to be "rsa-1" but is signed by another key.
  const std::string token = Sign(keys_->rsa_absent.get(), Header("RS256", "rsa-1"), Claims());
  EXPECT_TRUE(Refused(Verify(token), "the token's signature is not valid", token));
  const std::string ec = Sign(keys_->ec256_absent.get(), Header("ES256", "ec-256"), Claims());
  EXPECT_TRUE(Refused(Verify(ec), "the token's signature is not valid", ec));
}

TEST_F(JwtTest, RefusesOneRsaPaddingPassedOffAsTheOther) {
  // A PSS signature labelled RS256, and a PKCS#1 v1.5 signature labelled PS256.
  const std::string input = B64Url(boost::json::serialize(Header("RS256", "rsa-1"))) + "." +
                            B64Url(boost::json::serialize(Claims()));
  const std::string pss_as_rs = input + "." + B64Url(SignBytes(keys_->rsa.get(), "PS256", input));
  EXPECT_TRUE(Refused(Verify(pss_as_rs), "signature is not valid"));
  const std::string input2 = B64Url(boost::json::serialize(Header("PS256", "rsa-1"))) + "." +
                             B64Url(boost::json::serialize(Claims()));
  const std::string rs_as_pss = input2 + "." + B64Url(SignBytes(keys_->rsa.get(), "RS256", input2));
  EXPECT_TRUE(Refused(Verify(rs_as_pss), "signature is not valid"));
}

TEST_F(JwtTest, RefusesPssWithOtherParameters) {
  // RFC 7518 §3.5: the salt is as long as the hash, and MGF1 uses the same hash. Other choices
  // are valid PSS signatures, but not PS256.
  const std::string input = B64Url(boost::json::serialize(Header("PS256", "rsa-1"))) + "." +
                            B64Url(boost::json::serialize(Claims()));
  ASSERT_TRUE(Passes(Verify(input + "." + B64Url(SignBytes(keys_->rsa.get(), "PS256", input)))));
  for (int salt : {0, 20, RSA_PSS_SALTLEN_MAX}) {
    const std::string sig = SignBytes(keys_->rsa.get(), "PS256", input, false, salt);
    EXPECT_TRUE(Refused(Verify(input + "." + B64Url(sig)), "signature is not valid")) << salt;
  }
  const std::string sha1_mgf =
      SignBytes(keys_->rsa.get(), "PS256", input, false, RSA_PSS_SALTLEN_DIGEST, EVP_sha1());
  EXPECT_TRUE(Refused(Verify(input + "." + B64Url(sha1_mgf)), "signature is not valid"));
}

TEST_F(JwtTest, RefusesAnEcdsaSignatureInDerForm) {
  const std::string header = boost::json::serialize(Header("ES256", "ec-256"));
  const std::string payload = boost::json::serialize(Claims());
  const std::string der = SignText(keys_->ec256.get(), "ES256", header, payload, /*der=*/true);
  EXPECT_TRUE(Refused(Verify(der), "the token's signature is not valid", der));
  // Raw R || S with a byte more or less is not accepted either.
  auto parts = Parts(SignText(keys_->ec256.get(), "ES256", header, payload));
  ASSERT_TRUE(Passes(Verify(Join(parts))));
  const std::string raw = FromB64Url(parts[2]);
  parts[2] = B64Url(raw + '\0');
  EXPECT_TRUE(Refused(Verify(Join(parts)), "signature is not valid"));
  parts[2] = B64Url(raw.substr(1));
  EXPECT_TRUE(Refused(Verify(Join(parts)), "signature is not valid"));
  parts[2] = "";
  EXPECT_TRUE(Refused(Verify(Join(parts)), "signature is not valid"));
}

// ---- Algorithms and key selection
// ----------------------------------------------------------------

TEST_F(JwtTest, RefusesUnsignedTokens) {
  for (std::string_view alg : {"none", "None", "NONE", "nOnE"}) {
    const std::string header = boost::json::serialize(boost::json::object{{"alg", alg}});
    const std::string token = B64Url(header) + "." + B64Url(boost::json::serialize(Claims())) + ".";
    EXPECT_TRUE(Refused(Verify(token), "unsigned tokens are not accepted", token)) << alg;
    // A signature does not make it any better.
    EXPECT_TRUE(Refused(Verify(token + "c2lnbmF0dXJl"), "unsigned tokens are not accepted"));
  }
}

std::string HmacToken(std::string_view alg, std::string_view kid, std::string_view secret) {
  auto header = Header(alg, kid);
  const std::string input =
      B64Url(boost::json::serialize(header)) + "." + B64Url(boost::json::serialize(Claims()));
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::size_t length = 0;
  const char* digest = alg == "HS256" ? "SHA256" : alg == "HS384" ? "SHA384" : "SHA512";
  EXPECT_NE(EVP_Q_mac(nullptr, "HMAC", nullptr, digest, nullptr, secret.data(), secret.size(),
                      reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
                      sizeof mac, &length),
            nullptr);
  return input + "." + B64Url(std::string_view(reinterpret_cast<char*>(mac), length));
}

TEST_F(JwtTest, RefusesHmacSignedWithThePublicKey) {
  // The classic confusion: a verifier that feeds its "key" to whatever alg the token names would
  // check an HMAC keyed with the public key, which anyone can compute.
  BIO* bio = BIO_new(BIO_s_mem());
  ASSERT_EQ(PEM_write_bio_PUBKEY(bio, keys_->rsa.get()), 1);
  char* pem_data = nullptr;
  const long pem_length = BIO_get_mem_data(bio, &pem_data);
  const std::string pem(pem_data, static_cast<std::size_t>(pem_length));
  BIO_free(bio);
  unsigned char* der_data = nullptr;
  const int der_length = i2d_PUBKEY(keys_->rsa.get(), &der_data);
  ASSERT_GT(der_length, 0);
  const std::string der(reinterpret_cast<char*>(der_data), static_cast<std::size_t>(der_length));
  OPENSSL_free(der_data);
  const std::string jwk = boost::json::serialize(PublicJwk(keys_->rsa.get(), "rsa-1"));

  for (const std::string& secret : {pem, der, jwk}) {
    for (std::string_view alg : {"HS256", "HS384", "HS512"}) {
      for (std::string_view kid : {"rsa-1", ""}) {
        const std::string token = HmacToken(alg, kid, secret);
        EXPECT_TRUE(Refused(Verify(token), "the token's algorithm is not accepted", token))
            << alg << " kid=" << kid;
      }
    }
  }
}

TEST_F(JwtTest, RefusesUnknownAlgorithms) {
  for (std::string_view alg : {"ES512", "RS1", "rs256", "Ed25519", "ES256K", "", "RSA-OAEP"}) {
    const std::string token = Sign(keys_->rsa.get(), Header("RS256", "rsa-1"), Claims());
    auto parts = Parts(token);
    parts[0] = B64Url(boost::json::serialize(Header(alg, "rsa-1")));
    EXPECT_TRUE(Refused(Verify(Join(parts)), "the token's algorithm is not accepted")) << alg;
  }
  const std::string claims = boost::json::serialize(Claims());
  for (std::string_view header : {R"({"kid":"rsa-1"})", R"({"alg":null,"kid":"rsa-1"})",
                                  R"({"alg":["RS256"],"kid":"rsa-1"})"}) {
    EXPECT_TRUE(Refused(Verify(SignText(keys_->rsa.get(), "RS256", header, claims)),
                        "the token's header has no algorithm"))
        << header;
  }
}

TEST_F(JwtTest, RefusesAnUnknownKid) {
  const std::string token = Sign(keys_->rsa.get(), Header("RS256", "rsa-2"), Claims());
  EXPECT_TRUE(Refused(Verify(token), "the token's key is not known", token));
  auto header = Header("RS256", "");
  header["kid"] = 1;
  EXPECT_TRUE(Refused(Verify(Sign(keys_->rsa.get(), header, Claims())), "key id is not a string"));
}

TEST_F(JwtTest, RefusesAnAlgorithmThatDoesNotFitTheKeyOfItsKid) {
  // The kid of an EC key with RS256 (signed by an RSA key), and the other way round.
  const std::string rs = Sign(keys_->rsa.get(), Header("RS256", "ec-256"), Claims());
  EXPECT_TRUE(Refused(Verify(rs), "the token's algorithm does not match its key", rs));
  const std::string es = Sign(keys_->ec256.get(), Header("ES256", "rsa-1"), Claims());
  EXPECT_TRUE(Refused(Verify(es), "the token's algorithm does not match its key", es));
  // ES384 with the P-256 key, EdDSA with an EC key.
  EXPECT_TRUE(Refused(Verify(Sign(keys_->ec384.get(), Header("ES384", "ec-256"), Claims())),
                      "does not match its key"));
  EXPECT_TRUE(Refused(Verify(Sign(keys_->ed.get(), Header("EdDSA", "ec-256"), Claims())),
                      "does not match its key"));
}

TEST_F(JwtTest, RefusesAnAlgorithmOtherThanTheJwksAlg) {
  // "rsa-rs256" is declared RS256 in the JWKS: the same key with PS256 or RS512 is refused even
  // though the signature itself would verify.
  for (std::string_view alg : {"PS256", "RS512"}) {
    const std::string token = Sign(keys_->rsa_rs256.get(), Header(alg, "rsa-rs256"), Claims());
    EXPECT_TRUE(Refused(Verify(token), "the token's algorithm does not match its key", token));
  }
  EXPECT_TRUE(Passes(Verify(Sign(keys_->rsa_rs256.get(), Header("RS256", "rsa-rs256"), Claims()))));
}

TEST_F(JwtTest, ChoosesAKeyWithoutKidOnlyWhenOneFits) {
  // One P-256 key and one Ed25519 key in the set: no kid is needed for them.
  EXPECT_TRUE(Passes(Verify(Sign(keys_->ec256.get(), Header("ES256", ""), Claims()))));
  EXPECT_TRUE(Passes(Verify(Sign(keys_->ed.get(), Header("EdDSA", ""), Claims()))));
  // Two RSA keys fit RS256: which one is meant is not guessed.
  const std::string token = Sign(keys_->rsa.get(), Header("RS256", ""), Claims());
  EXPECT_TRUE(Refused(Verify(token), "the token does not name its key", token));
  // ...but only one fits PS256 (the other is declared RS256).
  EXPECT_TRUE(Passes(Verify(Sign(keys_->rsa.get(), Header("PS256", ""), Claims()))));

  // A set of one key: kid-less tokens of its algorithm pass, others are refused.
  auto single = JwtVerifier::Create(Rules(), Jwks({PublicJwk(keys_->rsa.get(), "")}));
  ASSERT_TRUE(single.ok()) << single.status();
  EXPECT_TRUE(Passes(single->Verify(Sign(keys_->rsa.get(), Header("RS256", ""), Claims()), kNow)));
  EXPECT_TRUE(Refused(single->Verify(Sign(keys_->ec256.get(), Header("ES256", ""), Claims()), kNow),
                      "the token's key is not known"));
  EXPECT_TRUE(Refused(single->Verify(Sign(keys_->rsa.get(), Header("RS256", "x"), Claims()), kNow),
                      "the token's key is not known"));
}

// ---- Header
// ----------------------------------------------------------------------------------------

TEST_F(JwtTest, RefusesHeadersThatBringTheirOwnKey) {
  const boost::json::object jwk = PublicJwk(keys_->rsa_absent.get(), "mine");
  for (std::string_view member : {"jku", "x5u", "jwk", "x5c"}) {
    auto header = Header("RS256", "rsa-1");
    if (member == "jwk") {
      header["jwk"] = jwk;
    } else if (member == "x5c") {
      header["x5c"] = boost::json::array{"MIIB"};
    } else {
      header[member] = "https://attacker.example/keys";
    }
    // Signed by the right key: the header alone is the reason.
    const std::string token = Sign(keys_->rsa.get(), header, Claims());
    EXPECT_TRUE(
        Refused(Verify(token), "the token's header refers to a key outside the trusted set", token))
        << member;
    EXPECT_THAT(Verify(token).status().message(), ::testing::Not(HasSubstr("attacker")));
  }
}

TEST_F(JwtTest, RefusesCriticalExtensions) {
  auto header = Header("RS256", "rsa-1");
  header["crit"] = boost::json::array{"exp"};
  header["exp"] = kNowSeconds;
  const std::string token = Sign(keys_->rsa.get(), header, Claims());
  EXPECT_TRUE(Refused(Verify(token), "the token's header has critical extensions", token));
  header["crit"] = boost::json::array{};
  EXPECT_TRUE(Refused(Verify(Sign(keys_->rsa.get(), header, Claims())), "critical extensions"));
}

TEST_F(JwtTest, RefusesOtherTypes) {
  for (std::string_view typ : {"JWS", "JOSE", "secevent+jwt", "application/jwt+json", ""}) {
    auto header = Header("RS256", "rsa-1");
    header["typ"] = typ;
    EXPECT_TRUE(Refused(Verify(Sign(keys_->rsa.get(), header, Claims())),
                        "the token's type is not accepted"))
        << typ;
  }
  auto header = Header("RS256", "rsa-1");
  header["typ"] = 1;
  EXPECT_TRUE(Refused(Verify(Sign(keys_->rsa.get(), header, Claims())), "type is not accepted"));
}

TEST_F(JwtTest, RefusesDuplicateMembers) {
  const std::string payload = boost::json::serialize(Claims());
  // Boost.JSON would keep the last "alg"; other libraries keep the first.
  const std::string header = R"({"alg":"RS256","kid":"rsa-1","alg":"RS256"})";
  const std::string token = SignText(keys_->rsa.get(), "RS256", header, payload);
  EXPECT_TRUE(Refused(Verify(token), "the token's header repeats a member", token));
  const std::string claims = R"({"iss":"https://evil.example","aud":"api://notes","exp":)" +
                             std::to_string(kNowSeconds + 60) +
                             R"(,"iss":"https://issuer.example"})";
  const std::string duplicate_claim =
      SignText(keys_->rsa.get(), "RS256", R"({"alg":"RS256","kid":"rsa-1"})", claims);
  EXPECT_TRUE(Refused(Verify(duplicate_claim), "the token's payload repeats a claim"));
  // Nested duplicates too.
  const std::string nested = R"({"iss":"https://issuer.example","aud":"api://notes","exp":)" +
                             std::to_string(kNowSeconds + 60) + R"(,"x":{"a":1,"a":2}})";
  EXPECT_TRUE(Refused(
      Verify(SignText(keys_->rsa.get(), "RS256", R"({"alg":"RS256","kid":"rsa-1"})", nested)),
      "repeats a claim"));
  // Same names in different objects are fine.
  const std::string distinct = R"({"iss":"https://issuer.example","aud":"api://notes","exp":)" +
                               std::to_string(kNowSeconds + 60) +
                               R"(,"x":{"iss":1},"y":[{"a":1},{"a":2}]})";
  EXPECT_TRUE(Passes(
      Verify(SignText(keys_->rsa.get(), "RS256", R"({"alg":"RS256","kid":"rsa-1"})", distinct))));
}

// ---- Shape and encoding
// ---------------------------------------------------------------------------

TEST_F(JwtTest, RefusesNonObjectHeaderOrPayload) {
  const std::string header = R"({"alg":"RS256","kid":"rsa-1"})";
  for (std::string_view payload : {"[1,2]", "\"claims\"", "42", "null", "{", "", "{}x"}) {
    const std::string token = SignText(keys_->rsa.get(), "RS256", header, payload);
    EXPECT_TRUE(Refused(Verify(token), "the token's payload is not a json object", token))
        << payload;
  }
  const std::string claims = boost::json::serialize(Claims());
  for (std::string_view bad_header : {"[\"RS256\"]", "\"RS256\"", "{\"alg\":", "{} {}"}) {
    const std::string token = SignText(keys_->rsa.get(), "RS256", bad_header, claims);
    EXPECT_TRUE(Refused(Verify(token), "the token's header is not a json object", token))
        << bad_header;
  }
}

TEST_F(JwtTest, RefusesAnythingButStrictBase64Url) {
  const std::string token = RsaToken(Claims());
  ASSERT_TRUE(Passes(Verify(token)));
  const auto parts = Parts(token);
  // The RS256 signature is 256 bytes: its encoding ends mid-quantum, where padding would go.
  ASSERT_NE(parts[2].size() % 4, 0u);
  std::vector<std::string> bad = {
      token + "=",
      token + "==",
      parts[0] + "=." + parts[1] + "." + parts[2],
      parts[0] + "." + parts[1] + " ." + parts[2],
      " " + token,
      token + "\n",
      parts[0] + "." + parts[1] + "." + parts[2].substr(0, 10) + "\n" + parts[2].substr(10),
      token + "AAA",  // a length no base64 text has
  };
  for (char c : {'+', '/', '*', '%'}) {
    std::string s = token;
    s[token.size() - 7] = c;
    bad.push_back(s);
  }
  // Standard base64 of the same bytes (with '+' or '/', which a 256-byte signature almost surely
  // has).
  const std::string sig = FromB64Url(parts[2]);
  std::string standard = core::Base64Encode(sig);
  if (standard.find_first_of("+/") != std::string::npos) {
    bad.push_back(parts[0] + "." + parts[1] + "." + standard);
    standard.erase(standard.find('='));
    bad.push_back(parts[0] + "." + parts[1] + "." + standard);
  }
  // Non-zero bits after the last byte: another spelling of the same signature.
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string sloppy = token;
  sloppy.back() = kAlphabet[kAlphabet.find(sloppy.back()) | 1];
  bad.push_back(sloppy);
  for (const std::string& b : bad) {
    EXPECT_TRUE(Refused(Verify(b), "the token is not valid base64url", b)) << b;
  }
}

TEST_F(JwtTest, RefusesTokensWithoutThreeParts) {
  const std::string token = RsaToken(Claims());
  const auto parts = Parts(token);
  for (const std::string& bad :
       {parts[0] + "." + parts[1], token + "." + parts[2], token + ".", Join({parts[0]}),
        std::string(""), std::string(".."), std::string("...")}) {
    if (bad == "..") {
      EXPECT_TRUE(Refused(Verify(bad), "the token's header is not a json object"));
      continue;
    }
    EXPECT_TRUE(Refused(Verify(bad), "the token is not a compact jws of three parts", bad)) << bad;
  }
}

TEST_F(JwtTest, RefusesOversizedTokensBeforeDecoding) {
  auto claims = Claims();
  claims["pad"] = std::string(9000, 'a');
  const std::string big_but_fine = RsaToken(claims);
  ASSERT_LT(big_but_fine.size(), kMaxJwtSize);
  EXPECT_TRUE(Passes(Verify(big_but_fine)));

  claims["pad"] = std::string(13000, 'a');
  const std::string oversized = RsaToken(claims);
  ASSERT_GT(oversized.size(), kMaxJwtSize);
  EXPECT_TRUE(Refused(Verify(oversized), "the token is too large", oversized));
  // Garbage that large is refused for its size, not for what it contains.
  EXPECT_TRUE(Refused(Verify(std::string(kMaxJwtSize + 1, '*')), "the token is too large"));
}

TEST_F(JwtTest, ErrorsNeverEchoTheToken) {
  // A token whose every part is distinctive, checked through several failures.
  auto claims = Claims();
  claims["iss"] = "https://secret-issuer.example";
  claims["sub"] = "secret-subject";
  const std::vector<std::string> tokens = {
      RsaToken(claims),                                                 // issuer
      Sign(keys_->rsa.get(), Header("RS256", "secret-kid"), Claims()),  // kid
      Sign(keys_->rsa_absent.get(), Header("RS256", "rsa-1"), Claims()),
      HmacToken("HS256", "rsa-1", "secret"),
  };
  for (const std::string& token : tokens) {
    const auto result = Verify(token);
    EXPECT_TRUE(Refused(result, "the token", token));
    for (std::string_view secret : {"secret", "https://", "rsa-1"}) {
      EXPECT_THAT(result.status().message(), ::testing::Not(HasSubstr(secret)));
    }
  }
}

// ---- The JWK Set
// ---------------------------------------------------------------------------------

core::Status CreateStatus(const std::string& jwks, JwtRules rules = Rules()) {
  return JwtVerifier::Create(std::move(rules), jwks).status();
}

TEST_F(JwtTest, RefusesAJwksWithPrivateKeys) {
  // The private scalar of the EC key, as a leaked JWKS would carry it.
  const std::string d = B64Url(BnBytes(keys_->ec256.get(), OSSL_PKEY_PARAM_PRIV_KEY, 32));
  auto jwk = PublicJwk(keys_->ec256.get(), "ec-256");
  jwk["d"] = d;
  const core::Status status = CreateStatus(Jwks({PublicJwk(keys_->rsa.get(), "rsa-1"), jwk}));
  EXPECT_EQ(status.code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("key 1 of the JWKS holds private key material"));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr(d)));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr(jwk.at("x").as_string().c_str())));
  // Refused whatever the key says it is for.
  jwk["use"] = "enc";
  EXPECT_EQ(CreateStatus(Jwks({jwk})).code(), core::StatusCode::kInvalidArgument);
  for (std::string_view member : {"p", "q", "dp", "dq", "qi", "oth"}) {
    auto rsa = PublicJwk(keys_->rsa.get(), "rsa-1");
    rsa[member] = "AQAB";
    EXPECT_THAT(CreateStatus(Jwks({rsa})).message(), HasSubstr("private key material")) << member;
  }
}

TEST_F(JwtTest, RefusesAJwksWithSymmetricKeys) {
  const boost::json::object oct{
      {"kty", "oct"}, {"kid", "hmac"}, {"k", "c2VjcmV0LWtleS1tYXRlcmlhbA"}};
  const core::Status status = CreateStatus(Jwks({PublicJwk(keys_->rsa.get(), "rsa-1"), oct}));
  EXPECT_EQ(status.code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("key 1 of the JWKS"));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("c2VjcmV0")));
  // Without "k" it is still a symmetric key type.
  const boost::json::object oct_no_k{{"kty", "oct"}, {"kid", "hmac"}};
  EXPECT_THAT(CreateStatus(Jwks({oct_no_k})).message(), HasSubstr("symmetric"));
}

TEST_F(JwtTest, RefusesWeakOrBrokenRsaKeys) {
  Pkey weak = GenerateRsa(1024);
  const core::Status status = CreateStatus(Jwks({PublicJwk(weak.get(), "weak")}));
  EXPECT_EQ(status.code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("1024 bits; at least 2048"));

  auto even = PublicJwk(keys_->rsa.get(), "rsa-1");
  std::string n = FromB64Url(even.at("n").as_string());
  n.back() = static_cast<char>(n.back() & ~1);
  even["n"] = B64Url(n);
  EXPECT_EQ(CreateStatus(Jwks({even})).code(), core::StatusCode::kInvalidArgument);

  auto one = PublicJwk(keys_->rsa.get(), "rsa-1");
  one["e"] = "AQ";  // e = 1
  EXPECT_THAT(CreateStatus(Jwks({one})).message(), HasSubstr("exponent"));
  auto missing = PublicJwk(keys_->rsa.get(), "rsa-1");
  missing.erase("e");
  EXPECT_THAT(CreateStatus(Jwks({missing})).message(), HasSubstr("has no \"e\""));
  auto padded = PublicJwk(keys_->rsa.get(), "rsa-1");
  padded["n"] = std::string(padded.at("n").as_string()) + "==";
  EXPECT_THAT(CreateStatus(Jwks({padded})).message(), HasSubstr("not base64url"));
}

TEST_F(JwtTest, RefusesBrokenEcAndOkpKeys) {
  auto off_curve = PublicJwk(keys_->ec256.get(), "ec-256");
  std::string y = FromB64Url(off_curve.at("y").as_string());
  y.back() = static_cast<char>(y.back() ^ 1);
  off_curve["y"] = B64Url(y);
  EXPECT_THAT(CreateStatus(Jwks({off_curve})).message(), HasSubstr("not a valid EC public key"));

  auto short_x = PublicJwk(keys_->ec256.get(), "ec-256");
  short_x["x"] = B64Url(FromB64Url(short_x.at("x").as_string()).substr(1));
  EXPECT_THAT(CreateStatus(Jwks({short_x})).message(), HasSubstr("wrong length"));

  auto p521 = PublicJwk(keys_->ec256.get(), "ec-256");
  p521["crv"] = "P-521";
  EXPECT_THAT(CreateStatus(Jwks({p521})).message(), HasSubstr("unsupported curve"));

  auto curve_mixup = PublicJwk(keys_->ec256.get(), "ec-256");
  curve_mixup["crv"] = "P-384";
  EXPECT_THAT(CreateStatus(Jwks({curve_mixup})).message(), HasSubstr("wrong length"));

  auto ed448 = PublicJwk(keys_->ed.get(), "ed-1");
  ed448["crv"] = "Ed448";
  EXPECT_THAT(CreateStatus(Jwks({ed448})).message(), HasSubstr("unsupported curve"));

  auto short_ed = PublicJwk(keys_->ed.get(), "ed-1");
  short_ed["x"] = "AQAB";
  EXPECT_THAT(CreateStatus(Jwks({short_ed})).message(), HasSubstr("not 32 bytes"));
}

TEST_F(JwtTest, RefusesMalformedJwks) {
  for (std::string_view text : {"", "not json", "{", "[]", "{\"keys\":{}}", "{\"keys\":[1]}", "{}",
                                "{\"keys\":[]}", "{\"keys\":[{\"kty\":\"RSA\"}]}",
                                "{\"keys\":[{\"n\":\"AQAB\"}]}", "{\"keys\":[{\"kty\":\"XYZ\"}]}",
                                "{\"keys\":[{\"kty\":7}]}", "{\"keys\":[],\"keys\":[]}"}) {
    const core::Status status = CreateStatus(std::string(text));
    EXPECT_EQ(status.code(), core::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(status.message(), HasSubstr("JWKS")) << text;
  }
  EXPECT_THAT(CreateStatus("{\"keys\":[]}").message(), HasSubstr("holds no key"));
  EXPECT_THAT(CreateStatus("not json").message(), HasSubstr("not valid JSON"));
  EXPECT_THAT(CreateStatus("{}").message(), HasSubstr("no \"keys\" array"));
  EXPECT_EQ(CreateStatus(std::string(2 * 1024 * 1024, ' ')).code(),
            core::StatusCode::kInvalidArgument);
}

TEST_F(JwtTest, RefusesDuplicateKids) {
  const core::Status status = CreateStatus(
      Jwks({PublicJwk(keys_->rsa.get(), "same"), PublicJwk(keys_->ec256.get(), "other"),
            PublicJwk(keys_->ec384.get(), "same")}));
  EXPECT_EQ(status.code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("keys 0 and 2 of the JWKS have the same kid"));
  // Keys without kids do not clash.
  EXPECT_TRUE(JwtVerifier::Create(Rules(), Jwks({PublicJwk(keys_->rsa.get(), ""),
                                                 PublicJwk(keys_->ec256.get(), "")}))
                  .ok());
}

TEST_F(JwtTest, SkipsKeysNotMeantForSignatures) {
  auto enc = PublicJwk(keys_->rsa_absent.get(), "enc-1");
  enc["use"] = "enc";
  auto wrap = PublicJwk(keys_->ec256_absent.get(), "wrap-1");
  wrap.erase("use");
  wrap["key_ops"] = boost::json::array{"wrapKey"};
  auto verify_ops = PublicJwk(keys_->ed.get(), "ed-1");
  verify_ops.erase("use");
  verify_ops["key_ops"] = boost::json::array{"verify"};
  auto verifier = JwtVerifier::Create(
      Rules(), Jwks({enc, PublicJwk(keys_->rsa.get(), "rsa-1"), wrap, verify_ops}));
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  EXPECT_EQ(verifier->key_count(), 2u);
  EXPECT_TRUE(Refused(
      verifier->Verify(Sign(keys_->rsa_absent.get(), Header("RS256", "enc-1"), Claims()), kNow),
      "the token's key is not known"));
  EXPECT_TRUE(
      Passes(verifier->Verify(Sign(keys_->ed.get(), Header("EdDSA", "ed-1"), Claims()), kNow)));
  // A set with nothing left is refused.
  EXPECT_THAT(CreateStatus(Jwks({enc, wrap})).message(), HasSubstr("holds no key"));
}

TEST_F(JwtTest, RefusesAJwkAlgThatDoesNotFitItsKey) {
  EXPECT_THAT(CreateStatus(Jwks({PublicJwk(keys_->rsa.get(), "rsa-1", "ES256")})).message(),
              HasSubstr("does not fit the key"));
  EXPECT_THAT(CreateStatus(Jwks({PublicJwk(keys_->ec256.get(), "ec-256", "ES384")})).message(),
              HasSubstr("does not fit the key"));
  EXPECT_THAT(CreateStatus(Jwks({PublicJwk(keys_->rsa.get(), "rsa-1", "HS256")})).message(),
              HasSubstr("not accepted"));
}

TEST_F(JwtTest, RefusesIncompleteRules) {
  const std::string jwks = StandardJwks();
  JwtRules rules = Rules();
  rules.issuer.clear();
  EXPECT_EQ(CreateStatus(jwks, rules).code(), core::StatusCode::kInvalidArgument);
  rules = Rules();
  rules.audience.clear();
  EXPECT_EQ(CreateStatus(jwks, rules).code(), core::StatusCode::kInvalidArgument);
  rules = Rules();
  rules.audience.push_back("");
  EXPECT_EQ(CreateStatus(jwks, rules).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateStatus(jwks, Rules(-1s)).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateStatus(jwks, Rules(301s)).code(), core::StatusCode::kInvalidArgument);
}

// ---- Helpers
// -------------------------------------------------------------------------------------

TEST(BearerTokenTest, ExtractsTheToken) {
  EXPECT_EQ(BearerToken("Bearer abc.def.ghi"), "abc.def.ghi");
  EXPECT_EQ(BearerToken("bearer x"), "x");
  EXPECT_EQ(BearerToken("BEARER x"), "x");
  EXPECT_EQ(BearerToken("Bearer   x  "), "x");
  EXPECT_EQ(BearerToken("x"), "x");
  EXPECT_EQ(BearerToken("  x "), "x");
  EXPECT_EQ(BearerToken("Basic x"), "");
  EXPECT_EQ(BearerToken("Bearerx y"), "");
  EXPECT_EQ(BearerToken("Bearer x y"), "");
  EXPECT_EQ(BearerToken("Bearer"), "");
  EXPECT_EQ(BearerToken("Bearer "), "");
  EXPECT_EQ(BearerToken(""), "");
  EXPECT_EQ(BearerToken("   "), "");
}

}  // namespace
}  // namespace moatless::gateway
