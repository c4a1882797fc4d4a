#include "gateway/jwt.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

#include "core/base64.h"

namespace moatless::gateway {

namespace internal {

enum class JwtKeyKind { kRsa, kEcP256, kEcP384, kEd25519 };

struct JwtKey {
  std::optional<std::string> kid;
  JwtKeyKind kind = JwtKeyKind::kRsa;
  std::string alg;  // the JWK's own "alg"; "" when it has none
  std::shared_ptr<EVP_PKEY> pkey;
};

}  // namespace internal

namespace {

using internal::JwtKey;
using internal::JwtKeyKind;

// A JWKS is configuration, not request input, but it is still parsed from text someone supplied.
constexpr std::size_t kMaxJwksSize = 1024 * 1024;
constexpr int kMinRsaBits = 2048;
// OpenSSL's own ceiling (OPENSSL_RSA_MAX_MODULUS_BITS); larger keys would only fail later.
constexpr int kMaxRsaBits = 16384;
// Above 64 bits OpenSSL refuses large-modulus keys, and a huge exponent makes verification slow.
constexpr int kMaxRsaExponentBits = 64;
// Claims nest little; a deep document is an attack on the parser, not a token.
constexpr std::size_t kMaxJsonDepth = 16;

template <auto Free>
struct OsslDeleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OsslDeleter<&EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OsslDeleter<&EVP_MD_CTX_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, OsslDeleter<&OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, OsslDeleter<&OSSL_PARAM_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, OsslDeleter<&BN_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OsslDeleter<&ECDSA_SIG_free>>;

struct Algorithm {
  std::string_view name;
  JwtKeyKind kind;
  const EVP_MD* (*md)();  // nullptr: the algorithm hashes internally (EdDSA)
  bool pss;
  std::size_t ec_half;  // ECDSA: the length of R and of S in the JWS signature
};

constexpr std::array kAlgorithms = {
    Algorithm{"RS256", JwtKeyKind::kRsa, &EVP_sha256, false, 0},
    Algorithm{"RS384", JwtKeyKind::kRsa, &EVP_sha384, false, 0},
    Algorithm{"RS512", JwtKeyKind::kRsa, &EVP_sha512, false, 0},
    Algorithm{"PS256", JwtKeyKind::kRsa, &EVP_sha256, true, 0},
    Algorithm{"PS384", JwtKeyKind::kRsa, &EVP_sha384, true, 0},
    Algorithm{"PS512", JwtKeyKind::kRsa, &EVP_sha512, true, 0},
    Algorithm{"ES256", JwtKeyKind::kEcP256, &EVP_sha256, false, 32},
    Algorithm{"ES384", JwtKeyKind::kEcP384, &EVP_sha384, false, 48},
    Algorithm{"EdDSA", JwtKeyKind::kEd25519, nullptr, false, 0},
};

const Algorithm* FindAlgorithm(std::string_view name) {
  for (const Algorithm& alg : kAlgorithms) {
    if (alg.name == name) return &alg;
  }
  return nullptr;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return lower(x) == lower(y);
  });
}

// Strict base64url without padding (RFC 7515 §2): anything else — '=', '+', '/', whitespace,
// non-zero trailing bits — is refused, so one token has exactly one encoding. The decoding itself
// is core's (libsodium); only the alphabet is mapped here.
std::optional<std::string> DecodeBase64Url(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string standard;
  standard.reserve(text.size() + 3);
  for (char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      standard += c;
    } else if (c == '-') {
      standard += '+';
    } else if (c == '_') {
      standard += '/';
    } else {
      return std::nullopt;
    }
  }
  while (standard.size() % 4 != 0) standard += '=';
  return core::Base64Decode(standard);
}

// A basic_parser handler that only looks for an object with a repeated member name. Boost.JSON
// keeps the last of duplicates silently; other JWT libraries keep the first, so a token with two
// "iss" or two "alg" could mean different things to different verifiers (RFC 7515 §5.2 allows
// refusing it, and we do).
class DuplicateKeyFinder {
 public:
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);

  bool duplicate() const { return duplicate_; }

  bool on_document_begin(boost::json::error_code&) { return true; }
  bool on_document_end(boost::json::error_code&) { return true; }
  bool on_array_begin(boost::json::error_code&) { return true; }
  bool on_array_end(std::size_t, boost::json::error_code&) { return true; }
  bool on_object_begin(boost::json::error_code&) {
    open_.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, boost::json::error_code&) {
    open_.pop_back();
    return true;
  }
  bool on_string_part(boost::json::string_view, std::size_t, boost::json::error_code&) {
    return true;
  }
  bool on_string(boost::json::string_view, std::size_t, boost::json::error_code&) { return true; }
  bool on_key_part(boost::json::string_view s, std::size_t, boost::json::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(boost::json::string_view s, std::size_t, boost::json::error_code& ec) {
    key_.append(s.data(), s.size());
    const bool fresh = open_.back().insert(std::move(key_)).second;
    key_.clear();
    if (!fresh) {
      duplicate_ = true;
      ec = boost::json::error::syntax;
      return false;
    }
    return true;
  }
  bool on_number_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_int64(std::int64_t, boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_uint64(std::uint64_t, boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_double(double, boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_bool(bool, boost::json::error_code&) { return true; }
  bool on_null(boost::json::error_code&) { return true; }
  bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }

 private:
  std::vector<std::set<std::string>> open_;  // the member names seen, per open object
  std::string key_;
  bool duplicate_ = false;
};

enum class JsonError { kNone, kMalformed, kNotObject, kDuplicate };

// Parses a JSON object without throwing. The text is read twice (duplicate check, then the value),
// which is cheap at the sizes involved and keeps the parsing itself Boost's.
std::optional<boost::json::object> ParseObject(std::string_view text, JsonError& error) {
  boost::json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  {
    boost::json::basic_parser<DuplicateKeyFinder> finder(options);
    boost::json::error_code ec;
    const std::size_t used = finder.write_some(false, text.data(), text.size(), ec);
    if (finder.handler().duplicate()) {
      error = JsonError::kDuplicate;
      return std::nullopt;
    }
    if (ec || used != text.size()) {
      error = JsonError::kMalformed;
      return std::nullopt;
    }
  }
  boost::json::error_code ec;
  boost::json::value value =
      boost::json::parse(boost::json::string_view(text.data(), text.size()), ec, {}, options);
  if (ec) {
    error = JsonError::kMalformed;
    return std::nullopt;
  }
  if (!value.is_object()) {
    error = JsonError::kNotObject;
    return std::nullopt;
  }
  error = JsonError::kNone;
  return std::move(value.as_object());
}

std::string_view View(const boost::json::string& s) { return std::string_view(s.data(), s.size()); }

// ---- The JWK Set --------------------------------------------------------------------------------

class JwkReader {
 public:
  JwkReader(const boost::json::object& jwk, std::size_t index) : jwk_(jwk), index_(index) {}

  core::Status Error(std::string_view what) const {
    return core::InvalidArgumentError("key " + std::to_string(index_) + " of the JWKS " +
                                      std::string(what));
  }

  // A string member; nullopt when absent. Not a string: an error.
  core::Result<std::optional<std::string>> OptionalString(std::string_view name) const {
    const boost::json::value* v = jwk_.if_contains(name);
    if (v == nullptr) return std::optional<std::string>();
    if (!v->is_string()) return Error("has a \"" + std::string(name) + "\" that is not a string");
    return std::optional<std::string>(std::string(View(v->get_string())));
  }

  // A required base64url member, decoded.
  core::Result<std::string> Bytes(std::string_view name) const {
    ASSIGN_OR_RETURN(std::optional<std::string> text, OptionalString(name));
    if (!text) return Error("has no \"" + std::string(name) + "\"");
    std::optional<std::string> bytes = DecodeBase64Url(*text);
    if (!bytes || bytes->empty()) {
      return Error("has a \"" + std::string(name) + "\" that is not base64url");
    }
    return std::move(*bytes);
  }

 private:
  const boost::json::object& jwk_;
  std::size_t index_;
};

std::shared_ptr<EVP_PKEY> FromData(const char* type, OSSL_PARAM_BLD* builder) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(builder));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    EVP_PKEY_free(pkey);
    return nullptr;
  }
  return std::shared_ptr<EVP_PKEY>(pkey, &EVP_PKEY_free);
}

// Whether OpenSSL's own validation accepts the public key (for EC: the point is on the curve and
// not the identity), so that a bad JWKS fails at load instead of at every request.
bool PublicCheck(EVP_PKEY* pkey) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  return ctx != nullptr && EVP_PKEY_public_check(ctx.get()) == 1;
}

core::Result<std::shared_ptr<EVP_PKEY>> ImportRsa(const JwkReader& jwk) {
  ASSIGN_OR_RETURN(std::string n_bytes, jwk.Bytes("n"));
  ASSIGN_OR_RETURN(std::string e_bytes, jwk.Bytes("e"));
  BignumPtr n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n_bytes.data()),
                        static_cast<int>(n_bytes.size()), nullptr));
  BignumPtr e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e_bytes.data()),
                        static_cast<int>(e_bytes.size()), nullptr));
  if (n == nullptr || e == nullptr) return core::InternalError("BN_bin2bn failed");
  const int bits = BN_num_bits(n.get());
  if (bits < kMinRsaBits) {
    return jwk.Error("is an RSA key of " + std::to_string(bits) + " bits; at least " +
                     std::to_string(kMinRsaBits) + " are required");
  }
  if (bits > kMaxRsaBits) {
    return jwk.Error("is an RSA key of more than " + std::to_string(kMaxRsaBits) + " bits");
  }
  if (!BN_is_odd(n.get())) return jwk.Error("is not a valid RSA public key (even modulus)");
  if (!BN_is_odd(e.get()) || BN_is_one(e.get()) || BN_num_bits(e.get()) > kMaxRsaExponentBits) {
    return jwk.Error("is not a valid RSA public key (unusable exponent)");
  }
  ParamBldPtr builder(OSSL_PARAM_BLD_new());
  if (builder == nullptr ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return core::InternalError("building RSA key parameters failed");
  }
  std::shared_ptr<EVP_PKEY> pkey = FromData("RSA", builder.get());
  if (pkey == nullptr) return jwk.Error("is not a valid RSA public key");
  return pkey;
}

core::Result<std::shared_ptr<EVP_PKEY>> ImportEc(const JwkReader& jwk, JwtKeyKind kind) {
  const std::size_t size = kind == JwtKeyKind::kEcP256 ? 32 : 48;
  ASSIGN_OR_RETURN(std::string x, jwk.Bytes("x"));
  ASSIGN_OR_RETURN(std::string y, jwk.Bytes("y"));
  // RFC 7518 §6.2.1.2: the coordinates are the full size of the field, never shortened.
  if (x.size() != size || y.size() != size) {
    return jwk.Error("has EC coordinates of the wrong length for its curve");
  }
  const std::string point = '\x04' + x + y;  // SEC 1 uncompressed point
  ParamBldPtr builder(OSSL_PARAM_BLD_new());
  const char* group = kind == JwtKeyKind::kEcP256 ? "prime256v1" : "secp384r1";
  if (builder == nullptr ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return core::InternalError("building EC key parameters failed");
  }
  std::shared_ptr<EVP_PKEY> pkey = FromData("EC", builder.get());
  if (pkey == nullptr || !PublicCheck(pkey.get())) {
    return jwk.Error("is not a valid EC public key (the point is not on the curve)");
  }
  return pkey;
}

core::Result<std::shared_ptr<EVP_PKEY>> ImportEd25519(const JwkReader& jwk) {
  ASSIGN_OR_RETURN(std::string x, jwk.Bytes("x"));
  if (x.size() != 32) return jwk.Error("has an Ed25519 public key that is not 32 bytes");
  EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x.data()), x.size());
  if (pkey == nullptr) return jwk.Error("is not a valid Ed25519 public key");
  return std::shared_ptr<EVP_PKEY>(pkey, &EVP_PKEY_free);
}

// One JWK: the imported key, nullopt when the key is not for signatures (skipped), or an error.
core::Result<std::optional<JwtKey>> ReadJwk(const boost::json::value& value, std::size_t index) {
  if (!value.is_object()) {
    return core::InvalidArgumentError("key " + std::to_string(index) +
                                      " of the JWKS is not a JSON object");
  }
  const boost::json::object& o = value.get_object();
  const JwkReader jwk(o, index);
  // Checked before anything else, "use" included: a set that holds a private or secret key has
  // leaked it, whatever the key was meant for, and must be fixed, not half-used.
  for (std::string_view member : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
    if (o.contains(member)) {
      return jwk.Error("holds private key material (\"" + std::string(member) +
                       "\"); a JWKS must hold public keys only");
    }
  }
  ASSIGN_OR_RETURN(std::optional<std::string> kty, jwk.OptionalString("kty"));
  if (!kty) return jwk.Error("has no \"kty\"");
  if (*kty == "oct") {
    return jwk.Error("is a symmetric (\"oct\") key; only public keys verify tokens");
  }
  ASSIGN_OR_RETURN(std::optional<std::string> use, jwk.OptionalString("use"));
  if (use && *use != "sig") return std::optional<JwtKey>();
  if (const boost::json::value* ops = o.if_contains("key_ops")) {
    if (!ops->is_array()) return jwk.Error("has a \"key_ops\" that is not an array");
    bool verify = false;
    for (const boost::json::value& op : ops->get_array()) {
      if (!op.is_string()) return jwk.Error("has a \"key_ops\" entry that is not a string");
      verify = verify || op.get_string() == "verify";
    }
    if (!verify) return std::optional<JwtKey>();
  }

  JwtKey key;
  ASSIGN_OR_RETURN(key.kid, jwk.OptionalString("kid"));
  ASSIGN_OR_RETURN(std::optional<std::string> alg, jwk.OptionalString("alg"));
  ASSIGN_OR_RETURN(std::optional<std::string> crv, jwk.OptionalString("crv"));
  if (*kty == "RSA") {
    key.kind = JwtKeyKind::kRsa;
    ASSIGN_OR_RETURN(key.pkey, ImportRsa(jwk));
  } else if (*kty == "EC") {
    if (crv == "P-256") {
      key.kind = JwtKeyKind::kEcP256;
    } else if (crv == "P-384") {
      key.kind = JwtKeyKind::kEcP384;
    } else {
      return jwk.Error("is an EC key on an unsupported curve (P-256 and P-384 are supported)");
    }
    ASSIGN_OR_RETURN(key.pkey, ImportEc(jwk, key.kind));
  } else if (*kty == "OKP") {
    if (crv != "Ed25519") {
      return jwk.Error("is an OKP key on an unsupported curve (Ed25519 is supported)");
    }
    key.kind = JwtKeyKind::kEd25519;
    ASSIGN_OR_RETURN(key.pkey, ImportEd25519(jwk));
  } else {
    return jwk.Error("has an unsupported \"kty\" (RSA, EC and OKP are supported)");
  }
  if (alg) {
    const Algorithm* known = FindAlgorithm(*alg);
    if (known == nullptr) return jwk.Error("declares an \"alg\" that is not accepted");
    if (known->kind != key.kind) return jwk.Error("declares an \"alg\" that does not fit the key");
    key.alg = *alg;
  }
  return std::optional<JwtKey>(std::move(key));
}

// ---- Verification -------------------------------------------------------------------------------

core::Status Refuse(std::string_view description) {
  return core::UnauthenticatedError(std::string(description));
}

bool Usable(const JwtKey& key, const Algorithm& alg) {
  return key.kind == alg.kind && (key.alg.empty() || key.alg == alg.name);
}

core::Result<const JwtKey*> SelectKey(const std::vector<JwtKey>& keys, const Algorithm& alg,
                                      const std::optional<std::string>& kid) {
  if (kid) {
    for (const JwtKey& key : keys) {
      if (key.kid == kid) {
        // A kid picks exactly one key; the header's alg may not reinterpret it (an EC key's kid
        // with RS256, or an RS256 key used for PS256).
        if (!Usable(key, alg)) return Refuse("the token's algorithm does not match its key");
        return &key;
      }
    }
    return Refuse("the token's key is not known");
  }
  const JwtKey* found = nullptr;
  for (const JwtKey& key : keys) {
    if (!Usable(key, alg)) continue;
    if (found != nullptr) return Refuse("the token does not name its key (kid)");
    found = &key;
  }
  if (found == nullptr) return Refuse("the token's key is not known");
  return found;
}

// JWS carries an ECDSA signature as the fixed-size big-endian R || S (RFC 7518 §3.4); OpenSSL
// verifies DER. "" if the conversion fails.
std::string EcdsaRawToDer(std::string_view raw) {
  const std::size_t half = raw.size() / 2;
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BignumPtr r(BN_bin2bn(bytes, static_cast<int>(half), nullptr));
  BignumPtr s(BN_bin2bn(bytes + half, static_cast<int>(half), nullptr));
  if (sig == nullptr || r == nullptr || s == nullptr ||
      ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return "";
  }
  r.release();  // owned by sig now
  s.release();
  const int length = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (length <= 0) return "";
  std::string der(static_cast<std::size_t>(length), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != length) return "";
  return der;
}

bool SignatureValid(const Algorithm& alg, EVP_PKEY* pkey, std::string_view signing_input,
                    std::string_view signature) {
  std::string der;
  if (alg.ec_half != 0) {
    // Exactly R || S: a DER signature, or one with extra bytes, is a different encoding of
    // perhaps the same signature, and accepting several encodings invites malleability bugs.
    if (signature.size() != 2 * alg.ec_half) return false;
    der = EcdsaRawToDer(signature);
    if (der.empty()) return false;
    signature = der;
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (ctx == nullptr ||
      EVP_DigestVerifyInit(ctx.get(), &pctx, alg.md != nullptr ? alg.md() : nullptr, nullptr,
                           pkey) != 1) {
    return false;
  }
  if (alg.kind == JwtKeyKind::kRsa) {
    if (alg.pss) {
      if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
          EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, alg.md()) != 1 ||
          EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1) {
        return false;
      }
    } else if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
      return false;
    }
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(),
                          reinterpret_cast<const unsigned char*>(signing_input.data()),
                          signing_input.size()) == 1;
}

// A NumericDate claim (RFC 7519 §2): absent, or a JSON number of seconds since the epoch.
core::Status NumericDate(const boost::json::object& claims, std::string_view name,
                         std::optional<double>& out) {
  const boost::json::value* v = claims.if_contains(name);
  if (v == nullptr) return core::Status::Ok();
  switch (v->kind()) {
    case boost::json::kind::int64:
      out = static_cast<double>(v->get_int64());
      return core::Status::Ok();
    case boost::json::kind::uint64:
      out = static_cast<double>(v->get_uint64());
      return core::Status::Ok();
    case boost::json::kind::double_:
      out = v->get_double();
      return core::Status::Ok();
    default:
      return Refuse("the token's " + std::string(name) + " claim is not a number");
  }
}

bool Accepted(const std::vector<std::string>& accepted, std::string_view value) {
  return std::find(accepted.begin(), accepted.end(), value) != accepted.end();
}

core::Status CheckAudience(const boost::json::object& claims, const JwtRules& rules) {
  if (const boost::json::value* aud = claims.if_contains("aud")) {
    if (aud->is_string()) {
      if (Accepted(rules.audience, View(aud->get_string()))) return core::Status::Ok();
    } else if (aud->is_array()) {
      for (const boost::json::value& entry : aud->get_array()) {
        if (!entry.is_string()) return Refuse("the token's audience is not accepted");
      }
      for (const boost::json::value& entry : aud->get_array()) {
        if (Accepted(rules.audience, View(entry.get_string()))) return core::Status::Ok();
      }
    }
    // An aud that names someone else is final: client_id is no second chance.
    return Refuse("the token's audience is not accepted");
  }
  const boost::json::value* client_id = claims.if_contains("client_id");
  if (client_id != nullptr && client_id->is_string() &&
      Accepted(rules.audience, View(client_id->get_string()))) {
    return core::Status::Ok();
  }
  return Refuse("the token's audience is not accepted");
}

void SplitScopes(std::string_view text, std::vector<std::string>& out) {
  while (!text.empty()) {
    const std::size_t space = text.find(' ');
    const std::string_view scope = text.substr(0, space);
    if (!scope.empty()) out.emplace_back(scope);
    if (space == std::string_view::npos) break;
    text.remove_prefix(space + 1);
  }
}

core::Result<std::vector<std::string>> Scopes(const boost::json::object& claims) {
  std::vector<std::string> scopes;
  if (const boost::json::value* scope = claims.if_contains("scope")) {
    if (!scope->is_string()) return Refuse("the token's scope claim is not a string");
    SplitScopes(View(scope->get_string()), scopes);
  } else if (const boost::json::value* scp = claims.if_contains("scp")) {
    if (scp->is_string()) {
      SplitScopes(View(scp->get_string()), scopes);
    } else if (scp->is_array()) {
      for (const boost::json::value& entry : scp->get_array()) {
        if (!entry.is_string()) return Refuse("the token's scp claim is not a list of strings");
        scopes.emplace_back(View(entry.get_string()));
      }
    } else {
      return Refuse("the token's scp claim is not a list of strings");
    }
  }
  return scopes;
}

core::Status CheckHeader(const boost::json::object& header) {
  // Keys come only from the configured set; a token that brings or points at its own key would
  // otherwise vouch for itself.
  for (std::string_view member : {"jku", "x5u", "jwk", "x5c"}) {
    if (header.contains(member)) {
      return Refuse("the token's header refers to a key outside the trusted set");
    }
  }
  if (header.contains("crit")) {
    return Refuse("the token's header has critical extensions, which are not supported");
  }
  if (const boost::json::value* typ = header.if_contains("typ")) {
    if (!typ->is_string()) return Refuse("the token's type is not accepted");
    const std::string_view t = View(typ->get_string());
    if (!EqualsIgnoreCase(t, "JWT") && !EqualsIgnoreCase(t, "at+jwt") &&
        !EqualsIgnoreCase(t, "application/at+jwt")) {
      return Refuse("the token's type is not accepted");
    }
  }
  return core::Status::Ok();
}

std::string_view TrimWhitespace(std::string_view s) {
  const std::size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  const std::size_t end = s.find_last_not_of(" \t");
  return s.substr(begin, end - begin + 1);
}

}  // namespace

core::Result<JwtVerifier> JwtVerifier::Create(JwtRules rules, std::string_view jwks_json) {
  if (rules.issuer.empty()) return core::InvalidArgumentError("a JWT verifier needs an issuer");
  if (rules.audience.empty() || std::any_of(rules.audience.begin(), rules.audience.end(),
                                            [](const std::string& a) { return a.empty(); })) {
    return core::InvalidArgumentError("a JWT verifier needs a non-empty audience");
  }
  if (rules.leeway < std::chrono::seconds(0) || rules.leeway > std::chrono::seconds(300)) {
    return core::InvalidArgumentError("a JWT verifier's leeway must be 0 to 300 seconds");
  }
  if (jwks_json.size() > kMaxJwksSize) {
    return core::InvalidArgumentError("the JWKS is larger than 1 MiB");
  }
  JsonError json_error = JsonError::kNone;
  std::optional<boost::json::object> jwks = ParseObject(jwks_json, json_error);
  switch (json_error) {
    case JsonError::kNone:
      break;
    case JsonError::kMalformed:
      return core::InvalidArgumentError("the JWKS is not valid JSON");
    case JsonError::kNotObject:
      return core::InvalidArgumentError("the JWKS is not a JSON object ({\"keys\": [...]})");
    case JsonError::kDuplicate:
      return core::InvalidArgumentError("the JWKS repeats a member name within one object");
  }
  const boost::json::value* key_array = jwks->if_contains("keys");
  if (key_array == nullptr || !key_array->is_array()) {
    return core::InvalidArgumentError("the JWKS has no \"keys\" array");
  }
  auto keys = std::make_shared<std::vector<JwtKey>>();
  std::vector<std::size_t> positions;  // the JWKS index of each kept key, for messages
  const boost::json::array& entries = key_array->get_array();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    core::Result<std::optional<JwtKey>> key = ReadJwk(entries[i], i);
    // OpenSSL leaves its reasons on this thread's error queue; they are not ours to report.
    ERR_clear_error();
    if (!key.ok()) return key.status();
    if (!key->has_value()) continue;
    for (std::size_t j = 0; j < keys->size(); ++j) {
      if ((**key).kid && (*keys)[j].kid == (**key).kid) {
        return core::InvalidArgumentError("keys " + std::to_string(positions[j]) + " and " +
                                          std::to_string(i) + " of the JWKS have the same kid");
      }
    }
    keys->push_back(std::move(**key));
    positions.push_back(i);
  }
  if (keys->empty()) {
    return core::InvalidArgumentError("the JWKS holds no key for verifying signatures");
  }
  return JwtVerifier(std::move(rules), std::move(keys));
}

std::size_t JwtVerifier::key_count() const { return keys_->size(); }

struct JwtVerifier::Remembered {
  std::mutex mu;
  std::unordered_map<std::string, std::shared_ptr<const VerifiedJwt>> tokens;
};

JwtVerifier::JwtVerifier(JwtRules rules, std::shared_ptr<const std::vector<internal::JwtKey>> keys)
    : rules_(std::move(rules)),
      remembered_(std::make_shared<Remembered>()),
      keys_(std::move(keys)) {}

core::Result<VerifiedJwt> JwtVerifier::Verify(std::string_view token, core::WallTime now) const {
  if (token.size() > kMaxRememberedTokenSize) return VerifyAll(token, now);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (EVP_Digest(token.data(), token.size(), digest, &digest_size, EVP_sha256(), nullptr) != 1) {
    ERR_clear_error();
    return VerifyAll(token, now);
  }
  const std::string key(reinterpret_cast<const char*>(digest), digest_size);
  std::shared_ptr<const VerifiedJwt> known;
  {
    std::lock_guard lock(remembered_->mu);
    if (auto it = remembered_->tokens.find(key); it != remembered_->tokens.end())
      known = it->second;
  }
  if (known) {
    RETURN_IF_ERROR(CheckTimes(*known, now));
    return *known;
  }
  ASSIGN_OR_RETURN(VerifiedJwt verified, VerifyAll(token, now));
  auto shared = std::make_shared<const VerifiedJwt>(verified);
  std::lock_guard lock(remembered_->mu);
  if (remembered_->tokens.size() >= kMaxRememberedTokens) remembered_->tokens.clear();
  remembered_->tokens.emplace(key, std::move(shared));
  return verified;
}

core::Status JwtVerifier::CheckTimes(const VerifiedJwt& jwt, core::WallTime now) const {
  const double now_s = std::chrono::duration<double>(now.time_since_epoch()).count();
  const double leeway_s = static_cast<double>(rules_.leeway.count());
  if (!(jwt.expires_at > now_s - leeway_s)) return Refuse("the token has expired");
  if (jwt.not_before && !(*jwt.not_before <= now_s + leeway_s)) {
    return Refuse("the token is not valid yet");
  }
  if (jwt.issued_at && !(*jwt.issued_at <= now_s + leeway_s)) {
    return Refuse("the token was issued in the future");
  }
  return core::Status::Ok();
}

core::Result<VerifiedJwt> JwtVerifier::VerifyAll(std::string_view token, core::WallTime now) const {
  // Before any decoding, so an oversized header costs nothing.
  if (token.size() > kMaxJwtSize) return Refuse("the token is too large");
  const std::size_t dot1 = token.find('.');
  const std::size_t dot2 =
      dot1 == std::string_view::npos ? std::string_view::npos : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Refuse("the token is not a compact jws of three parts");
  }
  const std::string_view signing_input = token.substr(0, dot2);
  std::optional<std::string> header_json = DecodeBase64Url(token.substr(0, dot1));
  std::optional<std::string> payload_json =
      DecodeBase64Url(token.substr(dot1 + 1, dot2 - dot1 - 1));
  std::optional<std::string> signature = DecodeBase64Url(token.substr(dot2 + 1));
  if (!header_json || !payload_json || !signature) {
    return Refuse("the token is not valid base64url");
  }

  JsonError json_error = JsonError::kNone;
  std::optional<boost::json::object> header = ParseObject(*header_json, json_error);
  if (json_error == JsonError::kDuplicate) return Refuse("the token's header repeats a member");
  if (!header) return Refuse("the token's header is not a json object");

  const boost::json::value* alg_value = header->if_contains("alg");
  if (alg_value == nullptr || !alg_value->is_string()) {
    return Refuse("the token's header has no algorithm");
  }
  const std::string_view alg_name = View(alg_value->get_string());
  if (EqualsIgnoreCase(alg_name, "none")) return Refuse("unsigned tokens are not accepted");
  // HS*, and anything else not listed: a verifier holding public keys has no business with MACs.
  const Algorithm* alg = FindAlgorithm(alg_name);
  if (alg == nullptr) return Refuse("the token's algorithm is not accepted");
  RETURN_IF_ERROR(CheckHeader(*header));
  std::optional<std::string> kid;
  if (const boost::json::value* kid_value = header->if_contains("kid")) {
    if (!kid_value->is_string()) return Refuse("the token's key id is not a string");
    kid.emplace(View(kid_value->get_string()));
  }

  ASSIGN_OR_RETURN(const JwtKey* key, SelectKey(*keys_, *alg, kid));
  const bool valid = SignatureValid(*alg, key->pkey.get(), signing_input, *signature);
  ERR_clear_error();
  if (!valid) return Refuse("the token's signature is not valid");

  std::optional<boost::json::object> claims = ParseObject(*payload_json, json_error);
  if (json_error == JsonError::kDuplicate) return Refuse("the token's payload repeats a claim");
  if (!claims) return Refuse("the token's payload is not a json object");

  const boost::json::value* iss = claims->if_contains("iss");
  if (iss == nullptr || !iss->is_string() || View(iss->get_string()) != rules_.issuer) {
    return Refuse("the token's issuer is not accepted");
  }
  RETURN_IF_ERROR(CheckAudience(*claims, rules_));

  std::optional<double> exp, nbf, iat;
  RETURN_IF_ERROR(NumericDate(*claims, "exp", exp));
  RETURN_IF_ERROR(NumericDate(*claims, "nbf", nbf));
  RETURN_IF_ERROR(NumericDate(*claims, "iat", iat));
  if (!exp) return Refuse("the token has no expiry time");
  ASSIGN_OR_RETURN(std::vector<std::string> scopes, Scopes(*claims));
  VerifiedJwt verified{.claims = std::move(*claims),
                       .scopes = std::move(scopes),
                       .expires_at = *exp,
                       .not_before = nbf,
                       .issued_at = iat};
  RETURN_IF_ERROR(CheckTimes(verified, now));
  return verified;
}

std::string_view BearerToken(std::string_view header_value) {
  const std::string_view value = TrimWhitespace(header_value);
  const std::size_t space = value.find_first_of(" \t");
  if (space == std::string_view::npos) {
    // A bare token; the scheme alone is not one.
    return EqualsIgnoreCase(value, "bearer") ? std::string_view() : value;
  }
  if (!EqualsIgnoreCase(value.substr(0, space), "bearer")) return {};
  const std::string_view token = TrimWhitespace(value.substr(space));
  if (token.find_first_of(" \t") != std::string_view::npos) return {};
  return token;
}

bool HasScopes(const VerifiedJwt& jwt, const std::vector<std::string>& required) {
  return std::all_of(required.begin(), required.end(), [&](const std::string& scope) {
    return std::find(jwt.scopes.begin(), jwt.scopes.end(), scope) != jwt.scopes.end();
  });
}

}  // namespace moatless::gateway
