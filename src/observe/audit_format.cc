#include "observe/audit_format.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json.hpp>

#include "core/check.h"
#include "core/ids.h"

namespace moatless::observe::internal {
namespace {

namespace json = boost::json;

json::string_view AsJson(std::string_view s) { return json::string_view(s.data(), s.size()); }

core::Status Malformed(std::string what) { return core::InvalidArgumentError(std::move(what)); }

core::Result<std::string> GetString(const json::object& obj, std::string_view key) {
  const json::value* v = obj.if_contains(AsJson(key));
  if (v == nullptr) return Malformed("missing \"" + std::string(key) + "\"");
  if (!v->is_string()) return Malformed("\"" + std::string(key) + "\" is not a string");
  const json::string& s = v->get_string();
  return std::string(s.data(), s.size());
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  MOATLESS_CHECK(EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) == 1,
                 "EVP_Digest(SHA-256) failed");
  return core::HexEncode(std::string_view(reinterpret_cast<const char*>(digest), len));
}

std::string HmacSha256Hex(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // An empty span may carry a null pointer, which HMAC() takes for "no output buffer" semantics
  // on the data side; give it a valid address instead.
  static const std::uint8_t kEmpty = 0;
  const std::uint8_t* data_ptr = data.empty() ? &kEmpty : data.data();
  MOATLESS_CHECK(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data_ptr, data.size(),
                      mac, &len) != nullptr,
                 "HMAC-SHA-256 failed");
  return core::HexEncode(std::string_view(reinterpret_cast<const char*>(mac), len));
}

std::string CanonicalBody(const AuditEntry& e) {
  json::object fields;
  fields.reserve(e.fields.size());
  for (const auto& [key, value] : e.fields) fields.emplace(AsJson(key), AsJson(value));
  json::object obj;
  obj.reserve(10);
  obj.emplace("seq", e.seq);
  obj.emplace("time", AsJson(e.time));
  obj.emplace("actor", AsJson(e.actor));
  obj.emplace("action", AsJson(e.action));
  obj.emplace("resource", AsJson(e.resource));
  obj.emplace("outcome", AsJson(e.outcome));
  obj.emplace("request_id", AsJson(e.request_id));
  obj.emplace("reason", AsJson(e.reason));
  obj.emplace("fields", std::move(fields));
  obj.emplace("prev", AsJson(e.prev));
  return json::serialize(obj);
}

std::string LineWithHash(std::string_view body, std::string_view hash) {
  MOATLESS_CHECK(!body.empty() && body.back() == '}', "audit body is not a JSON object");
  std::string line;
  line.reserve(body.size() + hash.size() + 12);
  line.append(body.substr(0, body.size() - 1));
  line.append(",\"hash\":\"");
  line.append(hash);
  line.append("\"}");
  return line;
}

bool IsLowerHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

core::Result<ParsedAuditLine> ParseAuditLine(std::string_view line) {
  boost::system::error_code ec;
  json::value root;
  try {
    root = json::parse(AsJson(line), ec);
  } catch (const std::exception& e) {  // bad_alloc, or a limit of the parser
    return Malformed(std::string("not JSON: ") + e.what());
  }
  if (ec) return Malformed("not JSON: " + ec.message());
  if (!root.is_object()) return Malformed("not a JSON object");
  const json::object& obj = root.get_object();

  ParsedAuditLine out;
  AuditEntry& e = out.entry;
  const json::value* seq = obj.if_contains("seq");
  if (seq == nullptr) return Malformed("missing \"seq\"");
  if (seq->is_uint64()) {
    e.seq = seq->get_uint64();
  } else if (seq->is_int64() && seq->get_int64() > 0) {
    e.seq = static_cast<std::uint64_t>(seq->get_int64());
  } else {
    return Malformed("\"seq\" is not a positive integer");
  }
  if (e.seq == 0) return Malformed("\"seq\" is not a positive integer");
  ASSIGN_OR_RETURN(e.time, GetString(obj, "time"));
  ASSIGN_OR_RETURN(e.actor, GetString(obj, "actor"));
  ASSIGN_OR_RETURN(e.action, GetString(obj, "action"));
  ASSIGN_OR_RETURN(e.resource, GetString(obj, "resource"));
  ASSIGN_OR_RETURN(e.outcome, GetString(obj, "outcome"));
  if (e.outcome != "allowed" && e.outcome != "denied" && e.outcome != "error") {
    return Malformed("\"outcome\" is not allowed, denied or error");
  }
  ASSIGN_OR_RETURN(e.request_id, GetString(obj, "request_id"));
  ASSIGN_OR_RETURN(e.reason, GetString(obj, "reason"));
  const json::value* fields = obj.if_contains("fields");
  if (fields == nullptr) return Malformed("missing \"fields\"");
  if (!fields->is_object()) return Malformed("\"fields\" is not an object");
  for (const auto& kv : fields->get_object()) {
    if (!kv.value().is_string()) {
      return Malformed("field \"" + std::string(kv.key()) + "\" is not a string");
    }
    const json::string& v = kv.value().get_string();
    e.fields.insert_or_assign(std::string(kv.key()), std::string(v.data(), v.size()));
  }
  ASSIGN_OR_RETURN(e.prev, GetString(obj, "prev"));
  if (!IsLowerHex64(e.prev)) return Malformed("\"prev\" is not 64 lower-case hex digits");
  ASSIGN_OR_RETURN(out.hash, GetString(obj, "hash"));
  if (!IsLowerHex64(out.hash)) return Malformed("\"hash\" is not 64 lower-case hex digits");
  return out;
}

}  // namespace moatless::observe::internal
