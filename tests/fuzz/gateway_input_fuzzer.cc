// libFuzzer target for what reaches the gateway from outside: arbitrary bytes as a bearer token
// (JwtVerifier::Verify against a fixed JWK Set) and as a function's answer (MapResponse).
//
// Besides the sanitizers, it checks the promises both make: a token is refused with
// Unauthenticated and a description that never repeats the token's parts and never holds a
// quote or backslash (it goes into a WWW-Authenticate header); nothing random verifies; a mapped
// response has a status of 100-599, header names that are tokens, and no CR, LF or NUL in any
// header.
//
// Input layout: the first byte chooses the path (even: token, odd: response); the rest is the
// input (so the seed corpus is tokens and responses behind one byte).
#include <openssl/evp.h>

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/base64.h"
#include "gateway/jwt.h"
#include "gateway/payload.h"

namespace {

namespace gateway = moatless::gateway;

void Require(bool condition) {
  if (!condition) __builtin_trap();
}

std::string Base64Url(std::string_view bytes) {
  std::string out = moatless::core::Base64Encode(bytes);
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

const gateway::JwtVerifier& Verifier() {
  static const gateway::JwtVerifier verifier = [] {
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    unsigned char pub[32];
    std::size_t len = sizeof pub;
    EVP_PKEY_get_raw_public_key(key, pub, &len);
    EVP_PKEY_free(key);
    const std::string jwks = boost::json::serialize(boost::json::object{
        {"keys", boost::json::array{boost::json::object{
                     {"kty", "OKP"},
                     {"crv", "Ed25519"},
                     {"kid", "k1"},
                     {"x", Base64Url(std::string_view(reinterpret_cast<char*>(pub), len))}}}}});
    auto created = gateway::JwtVerifier::Create(
        {.issuer = "https://id.example.com", .audience = {"api"}}, jwks);
    Require(created.ok());
    return *std::move(created);
  }();
  return verifier;
}

bool IsToken(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    auto verified = Verifier().Verify(input, std::chrono::system_clock::now());
    Require(!verified.ok());  // nothing random carries a valid Ed25519 signature
    Require(verified.status().code() == moatless::core::StatusCode::kUnauthenticated);
    const std::string message = verified.status().message();
    Require(message.find('"') == std::string::npos && message.find('\\') == std::string::npos);
    // The token's first part, when it looks like one (a base64url run no message word matches).
    const std::string_view header = input.substr(0, input.find('.'));
    const bool base64url =
        header.size() >= 16 && header.find_first_not_of(
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmno"
                                   "pqrstuvwxyz0123456789-_") == std::string_view::npos;
    if (base64url) Require(message.find(header) == std::string::npos);
    return 0;
  }
  auto mapped = gateway::MapResponse(input);
  if (!mapped.ok()) return 0;
  Require(mapped->status >= 100 && mapped->status <= 599);
  for (const auto& [name, value] : mapped->headers) {
    Require(IsToken(name));
    Require(value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
  }
  return 0;
}
