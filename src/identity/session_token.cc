#include "identity/session_token.h"

#include <sodium.h>

#include <array>
#include <boost/json.hpp>
#include <chrono>
#include <utility>

#include "core/base64.h"
#include "core/ids.h"

namespace moatless::identity {
namespace {

constexpr std::string_view kTokenPurpose = "moatless.identity.session-token.v1";

core::Status Invalid() {
  return core::UnauthenticatedError("The security token included in the request is invalid.")
      .WithAwsType("InvalidClientTokenId");
}

}  // namespace

SessionTokens::SessionTokens(const core::AeadKey& master_key)
    : key_(master_key.Derive(kTokenPurpose)) {}

TemporaryCredentials SessionTokens::Issue(SessionClaims claims, core::Random& random) const {
  TemporaryCredentials out;
  out.access_key_id = "ASIA" + core::RandomBase32(random, 16);
  claims.access_key_id = out.access_key_id;
  std::array<std::uint8_t, 30> raw{};
  random.Fill(raw);
  std::string secret =
      core::Base64Encode(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
  sodium_memzero(raw.data(), raw.size());

  boost::json::object o{{"v", 1},
                        {"kid", claims.access_key_id},
                        {"sk", secret},
                        {"p", claims.principal_arn},
                        {"src", claims.source_arn},
                        {"sn", claims.session_name},
                        {"iat", claims.issued_at},
                        {"exp", claims.expires_at}};
  if (claims.session_policy) o["sp"] = *claims.session_policy;
  if (claims.bound_environment) o["env"] = *claims.bound_environment;
  boost::json::object tags;
  for (const auto& [k, v] : claims.tags) tags[k] = v;
  o["tags"] = std::move(tags);
  std::string plain = boost::json::serialize(o);
  out.session_token = core::Base64Encode(key_.Seal(plain, out.access_key_id, random));
  sodium_memzero(plain.data(), plain.size());
  out.secret_access_key = core::SecretBytes::TakeFrom(secret);
  out.expires_at = claims.expires_at;
  return out;
}

core::Result<OpenedSession> SessionTokens::Open(std::string_view token,
                                                std::string_view access_key_id,
                                                core::WallTime now) const {
  if (token.empty() || token.size() > 16 * 1024) return Invalid();
  std::optional<std::string> sealed = core::Base64Decode(token);
  if (!sealed) return Invalid();
  auto plain = key_.Open(*sealed, access_key_id);
  if (!plain.ok()) return Invalid();
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(plain->Reveal(), ec);
  if (ec || !v.is_object()) return Invalid();  // cannot happen for a token we sealed
  const boost::json::object& o = v.as_object();
  OpenedSession out;
  try {
    SessionClaims& c = out.claims;
    c.access_key_id = std::string(o.at("kid").as_string());
    c.principal_arn = std::string(o.at("p").as_string());
    c.source_arn = std::string(o.at("src").as_string());
    c.session_name = std::string(o.at("sn").as_string());
    c.issued_at = o.at("iat").to_number<std::int64_t>();
    c.expires_at = o.at("exp").to_number<std::int64_t>();
    if (const auto* sp = o.if_contains("sp")) c.session_policy = std::string(sp->as_string());
    if (const auto* env = o.if_contains("env")) c.bound_environment = std::string(env->as_string());
    for (const auto& [k, tag] : o.at("tags").as_object()) {
      c.tags.emplace(std::string(k), std::string(tag.as_string()));
    }
    out.secret_access_key = core::SecretBytes(std::string_view(o.at("sk").as_string()));
  } catch (const std::exception&) {
    return Invalid();
  }
  if (out.claims.access_key_id != access_key_id) return Invalid();
  const std::int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (now_s >= out.claims.expires_at) {
    return core::UnauthenticatedError("The security token included in the request is expired")
        .WithAwsType("ExpiredToken");
  }
  return out;
}

}  // namespace moatless::identity
