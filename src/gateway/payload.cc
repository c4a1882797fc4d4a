#include "gateway/payload.h"

#include <array>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>

#include "core/base64.h"
#include "http/path.h"

namespace moatless::gateway {
namespace {

namespace json = boost::json;

// ---- UTF-8 ----------------------------------------------------------------------------------

// The length of the well-formed UTF-8 sequence (Unicode table 3-7) starting at `i`, or 0 when
// there is none. `*prefix` gets the length of the longest prefix that could still begin a
// well-formed sequence (at least 1): the "maximal subpart" that one U+FFFD replaces, the
// substitution the Unicode standard recommends and browsers use.
std::size_t Utf8SequenceAt(std::string_view s, std::size_t i, std::size_t* prefix) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  *prefix = 1;
  if (b0 < 0x80) return 1;
  std::size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 == 0xE0) {
    need = 3, lo = 0xA0;
  } else if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) {
    need = 3;
  } else if (b0 == 0xED) {
    need = 3, hi = 0x9F;  // no UTF-16 surrogates
  } else if (b0 == 0xF0) {
    need = 4, lo = 0x90;
  } else if (b0 >= 0xF1 && b0 <= 0xF3) {
    need = 4;
  } else if (b0 == 0xF4) {
    need = 4, hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  std::size_t k = 1;
  for (; k < need && i + k < s.size(); ++k) {
    const unsigned char b = byte(i + k);
    const unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
    if (b < min || b > max) break;
  }
  *prefix = k;
  return k == need ? need : 0;
}

bool IsValidUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    std::size_t prefix = 0;
    const std::size_t n = Utf8SequenceAt(s, i, &prefix);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

json::string Text(std::string_view s) {
  if (IsValidUtf8(s)) return json::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (std::size_t i = 0; i < s.size();) {
    std::size_t prefix = 0;
    const std::size_t n = Utf8SequenceAt(s, i, &prefix);
    if (n != 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD
      i += prefix;
    }
  }
  return json::string(out);
}

// The authorizer object usually comes from parsed JSON (already valid), but the event must be
// valid whatever a caller built, so its strings get the same treatment as the request's.
json::value SanitizedCopy(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string:
      return Text(v.get_string());
    case json::kind::array: {
      json::array out;
      out.reserve(v.get_array().size());
      for (const json::value& element : v.get_array()) out.push_back(SanitizedCopy(element));
      return out;
    }
    case json::kind::object: {
      json::object out;
      for (const auto& [key, element] : v.get_object()) out[Text(key)] = SanitizedCopy(element);
      return out;
    }
    default:
      return v;
  }
}

// ---- Request side -----------------------------------------------------------------------------

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// A query component: '+' is a space (form encoding, as API Gateway decodes queries), then %XX.
// A malformed escape leaves the component as it came rather than failing a request AWS serves.
std::string DecodeQueryComponent(std::string_view raw) {
  std::string plus_decoded(raw);
  for (char& c : plus_decoded) {
    if (c == '+') c = ' ';
  }
  auto decoded = http::PercentDecode(plus_decoded);
  return decoded.ok() ? std::move(decoded).value() : plus_decoded;
}

// Joins repeated names with "," in order of first appearance, as 2.0 does for headers and query
// parameters alike. json::object keeps insertion order.
void AddJoined(json::object& into, std::string_view name, std::string_view value) {
  const json::string key = Text(name);
  if (json::value* existing = into.if_contains(key)) {
    json::string& joined = existing->get_string();
    joined.push_back(',');
    joined.append(Text(value));
  } else {
    into.emplace(key, Text(value));
  }
}

json::object QueryParameters(std::string_view query) {
  json::object out;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const std::size_t eq = part.find('=');
    const std::string name = DecodeQueryComponent(part.substr(0, eq));
    if (name.empty()) continue;
    const std::string value =
        eq == std::string_view::npos ? std::string() : DecodeQueryComponent(part.substr(eq + 1));
    AddJoined(out, name, value);
  }
  return out;
}

bool IsTextualContentType(std::string_view content_type) {
  const std::string media = Lower(Trim(content_type.substr(0, content_type.find(';'))));
  if (media.empty()) return true;
  if (media.starts_with("text/")) return true;
  if (media == "application/json" || media == "application/xml" ||
      media == "application/javascript" || media == "application/x-www-form-urlencoded") {
    return true;
  }
  return media.starts_with("application/") && (media.ends_with("+json") || media.ends_with("+xml"));
}

const std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

enum class EventKind { kIntegration, kAuthorizer };

std::string Build(const GatewayRequest& request, EventKind kind,
                  const boost::json::object* authorizer, std::string_view route_arn,
                  const std::vector<std::string>* identity_source) {
  json::object headers;
  json::array cookies;
  std::optional<std::string> content_type;
  for (const auto& [raw_name, value] : request.headers) {
    const std::string name = Lower(raw_name);
    if (name == "cookie") {
      std::string_view rest = value;
      while (!rest.empty()) {
        const std::size_t semi = rest.find(';');
        const std::string_view cookie = Trim(rest.substr(0, semi));
        rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
        if (!cookie.empty()) cookies.push_back(Text(cookie));
      }
      continue;
    }
    // The first one decides: a request repeating content-type has no single type anyway.
    if (name == "content-type" && !content_type) content_type = value;
    AddJoined(headers, name, value);
  }

  json::object event;
  event["version"] = "2.0";
  if (kind == EventKind::kAuthorizer) {
    event["type"] = "REQUEST";
    event["routeArn"] = Text(route_arn);
    json::array sources;
    for (const std::string& source : *identity_source) sources.push_back(Text(source));
    event["identitySource"] = std::move(sources);
  }
  event["routeKey"] = Text(request.route_key);
  event["rawPath"] = Text(request.raw_path);
  event["rawQueryString"] = Text(request.raw_query);
  if (!cookies.empty()) event["cookies"] = std::move(cookies);
  const json::value* user_agent = headers.if_contains("user-agent");
  const json::string agent = user_agent != nullptr ? user_agent->get_string() : json::string();
  event["headers"] = std::move(headers);
  json::object query = QueryParameters(request.raw_query);
  if (!query.empty()) event["queryStringParameters"] = std::move(query);

  json::object context;
  context["accountId"] = Text(request.account_id);
  context["apiId"] = Text(request.api_id);
  if (authorizer != nullptr && !authorizer->empty()) {
    context["authorizer"] = SanitizedCopy(*authorizer);
  }
  if (request.client_cert) {
    const ClientCertInfo& c = *request.client_cert;
    context["authentication"] = json::object{
        {"clientCert", json::object{{"clientCertPem", Text(c.pem)},
                                    {"subjectDN", Text(c.subject_dn)},
                                    {"issuerDN", Text(c.issuer_dn)},
                                    {"serialNumber", Text(c.serial_number)},
                                    {"validity", json::object{{"notBefore", Text(c.not_before)},
                                                              {"notAfter", Text(c.not_after)}}}}}};
  }
  context["domainName"] = Text(request.domain_name);
  context["domainPrefix"] =
      Text(std::string_view(request.domain_name).substr(0, request.domain_name.find('.')));
  json::object http;
  http["method"] = Text(request.method);
  http["path"] = Text(request.raw_path);
  http["protocol"] = Text(request.protocol);
  http["sourceIp"] = Text(request.source_ip);
  http["userAgent"] = agent;
  context["http"] = std::move(http);
  context["requestId"] = Text(request.request_id);
  context["routeKey"] = Text(request.route_key);
  context["stage"] = Text(request.stage);
  context["time"] = FormatRequestTime(request.time);
  context["timeEpoch"] = static_cast<std::int64_t>(
      std::chrono::floor<std::chrono::milliseconds>(request.time.time_since_epoch()).count());
  event["requestContext"] = std::move(context);

  bool base64 = false;
  if (kind == EventKind::kIntegration && !request.body.empty()) {
    base64 = !IsValidUtf8(request.body) ||
             (content_type.has_value() && !IsTextualContentType(*content_type));
    event["body"] = base64 ? core::Base64Encode(request.body) : request.body;
  }
  if (!request.path_parameters.empty()) {
    json::object params;
    for (const auto& [name, value] : request.path_parameters) params[Text(name)] = Text(value);
    event["pathParameters"] = std::move(params);
  }
  if (kind == EventKind::kIntegration) event["isBase64Encoded"] = base64;
  return json::serialize(event);
}

// ---- Response side ----------------------------------------------------------------------------

// Deep enough for any response a real function returns, shallow enough that destroying the parsed
// value (which recurses) stays far from the stack limit of an I/O thread.
constexpr std::size_t kMaxResponseDepth = 1000;

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// Framing and connection management belong to the server: a function's content-length could
// desynchronise the client from the body actually sent (response splitting).
bool IsDroppedHeader(std::string_view name) {
  const std::string lower = Lower(name);
  return lower == "connection" || lower == "keep-alive" || lower == "transfer-encoding" ||
         lower == "content-length" || lower == "upgrade" || lower == "te" || lower == "trailer" ||
         lower.starts_with("proxy-");
}

core::Status CheckHeaderValue(std::string_view what, std::string_view value) {
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    return core::InvalidArgumentError(std::string(what) + " holds CR, LF or NUL");
  }
  return core::Status::Ok();
}

// How JavaScript's String() writes a number, which is what a Node function that put a number in
// a header would expect to see on the wire (AWS accepts numbers there).
std::string NumberText(const json::value& v) {
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  std::array<char, 64> buffer{};
  const auto [end, ec] =
      std::to_chars(buffer.data(), buffer.data() + buffer.size(), v.get_double());
  return ec == std::errc() ? std::string(buffer.data(), end) : std::string();
}

std::optional<unsigned> StatusCodeOf(const json::value& v) {
  if (v.is_int64() && v.get_int64() >= 100 && v.get_int64() <= 599) {
    return static_cast<unsigned>(v.get_int64());
  }
  if (v.is_uint64() && v.get_uint64() >= 100 && v.get_uint64() <= 599) {
    return static_cast<unsigned>(v.get_uint64());
  }
  // Python's json.dumps writes 200.0 for a float; an integral value is still a status code.
  if (v.is_double() && v.get_double() >= 100 && v.get_double() <= 599) {
    const double d = v.get_double();
    const auto code = static_cast<unsigned>(d);
    if (static_cast<double>(code) == d) return code;
  }
  return std::nullopt;
}

core::Result<GatewayResponse> MapStructured(const json::object& doc) {
  GatewayResponse response;
  const std::optional<unsigned> status = StatusCodeOf(doc.at("statusCode"));
  if (!status) {
    return core::InvalidArgumentError("function response statusCode is not an integer in 100-599");
  }
  response.status = *status;

  if (const json::value* headers = doc.if_contains("headers"); headers && !headers->is_null()) {
    if (!headers->is_object()) {
      return core::InvalidArgumentError("function response headers is not an object");
    }
    for (const auto& [name, value] : headers->get_object()) {
      std::string text;
      if (value.is_string()) {
        text = value.get_string();
      } else if (value.is_number()) {
        text = NumberText(value);
      } else if (value.is_bool()) {
        text = value.get_bool() ? "true" : "false";
      } else {
        return core::InvalidArgumentError("function response header '" + std::string(name) +
                                          "' is not a string, number or boolean");
      }
      if (!IsToken(name)) {
        return core::InvalidArgumentError("function response header name is not a token");
      }
      RETURN_IF_ERROR(
          CheckHeaderValue("function response header '" + std::string(name) + "'", text));
      if (IsDroppedHeader(name)) continue;
      response.headers.emplace_back(std::string(name), std::move(text));
    }
  }

  if (const json::value* cookies = doc.if_contains("cookies"); cookies && !cookies->is_null()) {
    if (!cookies->is_array()) {
      return core::InvalidArgumentError("function response cookies is not an array");
    }
    for (const json::value& cookie : cookies->get_array()) {
      if (!cookie.is_string()) {
        return core::InvalidArgumentError("function response cookie is not a string");
      }
      RETURN_IF_ERROR(CheckHeaderValue("function response cookie", cookie.get_string()));
      response.headers.emplace_back("set-cookie", std::string(cookie.get_string()));
    }
  }

  bool base64 = false;
  if (const json::value* flag = doc.if_contains("isBase64Encoded"); flag && !flag->is_null()) {
    if (!flag->is_bool()) {
      return core::InvalidArgumentError("function response isBase64Encoded is not a boolean");
    }
    base64 = flag->get_bool();
  }

  if (const json::value* body = doc.if_contains("body"); body && !body->is_null()) {
    if (!body->is_string()) {
      return core::InvalidArgumentError("function response body is not a string");
    }
    if (base64) {
      std::optional<std::string> decoded = core::Base64Decode(body->get_string());
      if (!decoded) {
        return core::InvalidArgumentError(
            "function response body is not valid base64 although isBase64Encoded is true");
      }
      response.body = std::move(*decoded);
    } else {
      response.body = body->get_string();
    }
  }
  return response;
}

core::Result<GatewayResponse> Map(std::string_view payload) {
  json::parse_options options;
  options.max_depth = kMaxResponseDepth;
  boost::system::error_code ec;
  const json::value doc = json::parse(payload, ec, json::storage_ptr(), options);
  if (ec) {
    return core::InvalidArgumentError("function response is not valid JSON: " + ec.message());
  }
  if (doc.is_object() && doc.get_object().contains("statusCode")) {
    return MapStructured(doc.get_object());
  }
  GatewayResponse response;
  response.headers.emplace_back("content-type", "application/json");
  response.body = payload;
  return response;
}

}  // namespace

std::string FormatRequestTime(core::WallTime time) {
  using namespace std::chrono;
  const auto day = floor<days>(time);
  const year_month_day date(day);
  const hh_mm_ss clock(floor<seconds>(time - day));
  std::array<char, 40> out{};
  std::snprintf(out.data(), out.size(), "%02u/%s/%04d:%02d:%02d:%02d +0000",
                static_cast<unsigned>(date.day()), kMonths[static_cast<unsigned>(date.month()) - 1],
                static_cast<int>(date.year()), static_cast<int>(clock.hours().count()),
                static_cast<int>(clock.minutes().count()),
                static_cast<int>(clock.seconds().count()));
  return out.data();
}

std::string BuildEvent(const GatewayRequest& request, const boost::json::object& authorizer) {
  return Build(request, EventKind::kIntegration, &authorizer, {}, nullptr);
}

std::string BuildAuthorizerEvent(const GatewayRequest& request, std::string_view route_arn,
                                 const std::vector<std::string>& identity_source) {
  return Build(request, EventKind::kAuthorizer, nullptr, route_arn, &identity_source);
}

core::Result<GatewayResponse> MapResponse(std::string_view function_payload) {
  // Boost.JSON throws only when memory runs out; that must not unwind into the request path.
  try {
    return Map(function_payload);
  } catch (const std::exception& e) {
    return core::InternalError(std::string("mapping the function response: ") + e.what());
  }
}

}  // namespace moatless::gateway
