#include "identity/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace moatless::identity {
namespace {

using core::Status;

// ---- Errors --------------------------------------------------------------------------------

Status MissingTokenError(std::string message) {
  return core::PermissionDeniedError(std::move(message))
      .WithAwsType(std::string(kMissingAuthenticationToken));
}
Status IncompleteError(std::string message) {
  return core::InvalidArgumentError(std::move(message))
      .WithAwsType(std::string(kIncompleteSignature));
}
Status SkewedError(std::string message) {
  return core::PermissionDeniedError(std::move(message))
      .WithAwsType(std::string(kRequestTimeTooSkewed));
}
Status AccessDeniedError(std::string message) {
  return core::PermissionDeniedError(std::move(message)).WithAwsType(std::string(kAccessDenied));
}
Status MismatchError(std::string message) {
  return core::PermissionDeniedError(std::move(message))
      .WithAwsType(std::string(kSignatureDoesNotMatch));
}

// Client-supplied text echoed in a message: control and non-ASCII bytes become '?', long text is
// cut, so a message stays one printable line (or several, when keep_newlines).
std::string Printable(std::string_view text, std::size_t max_len = 128,
                      bool keep_newlines = false) {
  std::string out;
  const std::size_t n = std::min(text.size(), max_len);
  out.reserve(n + 3);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c >= 0x20 && c < 0x7f) || (keep_newlines && c == '\n')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('?');
    }
  }
  if (text.size() > max_len) out += "...";
  return out;
}

// ---- Strings -------------------------------------------------------------------------------

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

// Header whitespace, including the line breaks of an obsolete folded value.
bool IsHeaderSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// SigV4 "trimall": trims both ends and collapses every inner run of whitespace to one space.
std::string TrimAll(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool pending_space = false;
  for (char c : value) {
    if (IsHeaderSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::string Join(std::span<const std::string> parts, char sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out.push_back(sep);
    out += parts[i];
  }
  return out;
}

void ReplaceAll(std::string& text, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
}

std::vector<std::string_view> HeaderValues(const HttpRequestView& request,
                                           std::string_view lower_name) {
  std::vector<std::string_view> values;
  for (const auto& [name, value] : request.headers) {
    if (EqualsIgnoreCase(name, lower_name)) values.push_back(value);
  }
  return values;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsLowerHex(std::string_view s, std::size_t length) {
  return s.size() == length && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string HexLower(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

// RFC 3986 percent-decoding. A '%' not followed by two hex digits stays literal ('+' is a plus:
// SigV4 clients encode spaces as %20).
std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = HexDigit(s[i + 1]);
      const int lo = HexDigit(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::pair<std::string_view, std::string_view> SplitTarget(std::string_view target) {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

// Decoded (name, value) pairs of a raw query; empty pieces ("a&&b") are skipped and a piece
// without '=' has an empty value.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view raw_query) {
  std::vector<std::pair<std::string, std::string>> params;
  if (raw_query.empty()) return params;
  for (std::string_view piece : Split(raw_query, '&')) {
    if (piece.empty()) continue;
    const std::size_t eq = piece.find('=');
    if (eq == std::string_view::npos) {
      params.emplace_back(PercentDecode(piece), std::string());
    } else {
      params.emplace_back(PercentDecode(piece.substr(0, eq)), PercentDecode(piece.substr(eq + 1)));
    }
  }
  return params;
}

// Removes dot segments (RFC 3986 §5.2.4) and empty segments (repeated slashes). The result
// starts with '/' and keeps a trailing slash.
std::string NormalizePath(std::string_view path) {
  // As the AWS SDKs do (botocore, smithy): drop empty and "." segments, let ".." remove the one
  // before it, and keep a trailing slash only if the path itself ends with one ("/a/." -> "/a").
  std::vector<std::string_view> segments;
  for (std::string_view segment : Split(path, '/')) {
    if (segment.empty() || segment == ".") continue;
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
      continue;
    }
    segments.push_back(segment);
  }
  std::string out = "/";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out.push_back('/');
    out += segments[i];
  }
  if (path.ends_with('/') && !segments.empty()) out.push_back('/');
  return out;
}

// ---- Dates ---------------------------------------------------------------------------------

std::optional<int> Digits(std::string_view s, std::size_t pos, std::size_t count) {
  if (pos + count > s.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    value = value * 10 + (s[i] - '0');
  }
  return value;
}

std::optional<core::WallTime> MakeTime(int y, int mo, int d, int h, int mi, int s) {
  using namespace std::chrono;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  // WallTime counts nanoseconds in 64 bits (years 1678..2261): keep well inside that range.
  if (y < 1970 || y > 2200 || !ymd.ok() || h > 23 || mi > 59 || s > 59) return std::nullopt;
  return core::WallTime(sys_days(ymd) + hours(h) + minutes(mi) + seconds(s));
}

bool ValidScopeDate(std::string_view date) {
  if (date.size() != 8) return false;
  const auto y = Digits(date, 0, 4);
  const auto m = Digits(date, 4, 2);
  const auto d = Digits(date, 6, 2);
  return y && m && d && MakeTime(*y, *m, *d, 0, 0, 0).has_value();
}

// IMF-fixdate (RFC 9110 §5.6.7), the only Date format current clients send:
// "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<core::WallTime> ParseImfFixdate(std::string_view s) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (s.size() != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT") {
    return std::nullopt;
  }
  const auto month_it = std::find(kMonths.begin(), kMonths.end(), s.substr(8, 3));
  if (month_it == kMonths.end()) return std::nullopt;
  const auto d = Digits(s, 5, 2);
  const auto y = Digits(s, 12, 4);
  const auto h = Digits(s, 17, 2);
  const auto mi = Digits(s, 20, 2);
  const auto sec = Digits(s, 23, 2);
  if (!d || !y || !h || !mi || !sec) return std::nullopt;
  return MakeTime(*y, static_cast<int>(month_it - kMonths.begin()) + 1, *d, *h, *mi, *sec);
}

// ---- Crypto (OpenSSL) ----------------------------------------------------------------------

std::array<std::uint8_t, 32> Sha256(std::string_view data) {
  std::array<std::uint8_t, 32> digest{};
  unsigned int length = 0;
  const int ok =
      EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr);
  MOATLESS_CHECK(ok == 1 && length == digest.size(), "EVP_Digest(SHA-256) failed");
  return digest;
}

core::SecretBytes HmacSha256(std::span<const std::uint8_t> key, std::string_view data) {
  static constexpr unsigned char kEmpty = 0;
  core::SecretBytes mac;
  mac.Resize(32);
  unsigned int length = 0;
  const unsigned char* input =
      data.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(data.data());
  const unsigned char* result = HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), input,
                                     data.size(), mac.MutableBytes().data(), &length);
  MOATLESS_CHECK(result != nullptr && length == 32, "HMAC-SHA256 failed");
  return mac;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // The length of a signature is not secret; its bytes are compared in constant time.
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---- Parsing -------------------------------------------------------------------------------

Status ParseCredential(std::string_view credential, ParsedSignature& out) {
  const std::vector<std::string_view> parts = Split(credential, '/');
  if (parts.size() != 5) {
    return IncompleteError(
        "Credential should be of the form '<access key id>/<YYYYMMDD>/<region>/<service>/"
        "aws4_request', not '" +
        Printable(credential) + "'.");
  }
  if (parts[4] != kSigV4Terminator) {
    return IncompleteError(
        "Credential should be scoped with a valid terminator: 'aws4_request', not '" +
        Printable(parts[4]) + "'.");
  }
  for (std::string_view part : parts) {
    if (part.empty()) {
      return IncompleteError("Credential has an empty component: '" + Printable(credential) + "'.");
    }
  }
  if (!ValidScopeDate(parts[1])) {
    return IncompleteError("Credential should be scoped to a valid date in YYYYMMDD form, not '" +
                           Printable(parts[1]) + "'.");
  }
  out.access_key_id = std::string(parts[0]);
  out.date = std::string(parts[1]);
  out.region = std::string(parts[2]);
  out.service = std::string(parts[3]);
  out.terminator = std::string(parts[4]);
  return Status::Ok();
}

Status ParseSignedHeaderList(std::string_view list, ParsedSignature& out) {
  for (std::string_view name : Split(list, ';')) {
    if (name.empty()) {
      return IncompleteError("SignedHeaders has an empty header name: '" + Printable(list) + "'.");
    }
    out.signed_headers.emplace_back(name);
  }
  return Status::Ok();
}

Status ParseAuthorizationHeader(std::string_view header, ParsedSignature& out) {
  header = TrimOws(header);
  const std::size_t space = header.find(' ');
  const std::string_view algorithm = header.substr(0, space);
  if (algorithm != kSigV4Algorithm) {
    return IncompleteError("Unsupported AWS 'algorithm': '" + Printable(algorithm, 32) +
                           "'; only AWS4-HMAC-SHA256 is supported.");
  }
  const std::string_view rest =
      space == std::string_view::npos ? std::string_view() : header.substr(space + 1);
  std::optional<std::string_view> credential, signed_headers, signature;
  if (!TrimSpaces(rest).empty()) {
    for (std::string_view part : Split(rest, ',')) {
      part = TrimSpaces(part);
      const std::size_t eq = part.find('=');
      if (eq == std::string_view::npos) {
        return IncompleteError("Authorization header component '" + Printable(part, 32) +
                               "' is not of the form key=value.");
      }
      const std::string_view key = part.substr(0, eq);
      const std::string_view value = part.substr(eq + 1);
      std::optional<std::string_view>* slot = nullptr;
      if (key == "Credential") {
        slot = &credential;
      } else if (key == "SignedHeaders") {
        slot = &signed_headers;
      } else if (key == "Signature") {
        slot = &signature;
      } else {
        return IncompleteError("Authorization header has an unknown component '" +
                               Printable(key, 32) + "'.");
      }
      if (slot->has_value()) {
        return IncompleteError("Authorization header has a duplicate '" + std::string(key) +
                               "' component.");
      }
      if (value.empty()) {
        return IncompleteError("Authorization header component '" + std::string(key) +
                               "' is empty.");
      }
      *slot = value;
    }
  }
  std::string missing;
  if (!credential) missing += "Authorization header requires 'Credential' parameter. ";
  if (!signature) missing += "Authorization header requires 'Signature' parameter. ";
  if (!signed_headers) missing += "Authorization header requires 'SignedHeaders' parameter. ";
  if (!missing.empty()) {
    missing.pop_back();
    return IncompleteError(std::move(missing));
  }
  RETURN_IF_ERROR(ParseCredential(*credential, out));
  RETURN_IF_ERROR(ParseSignedHeaderList(*signed_headers, out));
  out.signature = std::string(*signature);
  return Status::Ok();
}

Status ParseHeaderDate(const HttpRequestView& request, ParsedSignature& out) {
  const std::vector<std::string_view> amz_dates = HeaderValues(request, "x-amz-date");
  if (amz_dates.size() > 1) return IncompleteError("Only one X-Amz-Date header is allowed.");
  if (amz_dates.size() == 1) {
    const std::string_view value = TrimOws(amz_dates[0]);
    const auto time = ParseAmzDate(value);
    if (!time) {
      return IncompleteError(
          "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", not '" +
          Printable(value, 40) + "'.");
    }
    out.request_time = *time;
    out.amz_date = std::string(value);
    out.date_header = "x-amz-date";
    return Status::Ok();
  }
  const std::vector<std::string_view> dates = HeaderValues(request, "date");
  if (dates.size() > 1) return IncompleteError("Only one Date header is allowed.");
  if (dates.empty()) {
    return IncompleteError(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  }
  const std::string_view value = TrimOws(dates[0]);
  auto time = ParseAmzDate(value);
  if (!time) time = ParseImfFixdate(value);
  if (!time) {
    return IncompleteError("Date header must be an IMF-fixdate or ISO8601 basic date, not '" +
                           Printable(value, 40) + "'.");
  }
  out.request_time = *time;
  out.amz_date = FormatAmzDate(*time);
  out.date_header = "date";
  return Status::Ok();
}

Status ParsePresigned(const std::vector<std::pair<std::string, std::string>>& params,
                      ParsedSignature& out) {
  static constexpr std::array<std::string_view, 8> kNames = {
      "X-Amz-Algorithm",     "X-Amz-Credential", "X-Amz-Date",           "X-Amz-Expires",
      "X-Amz-SignedHeaders", "X-Amz-Signature",  "X-Amz-Security-Token", "X-Amz-Content-Sha256"};
  std::array<const std::string*, kNames.size()> found{};
  // The payload-hash parameter is matched in any case: the AWS SDKs' presigners move a lower-case
  // x-amz-content-sha256 header into the query as it is.
  constexpr std::size_t kContentSha256 = 7;
  for (const auto& [name, value] : params) {
    for (std::size_t i = 0; i < kNames.size(); ++i) {
      const bool match =
          i == kContentSha256 ? EqualsIgnoreCase(name, kNames[i]) : name == kNames[i];
      if (!match) continue;
      if (found[i] != nullptr) {
        return IncompleteError("Only one " + std::string(kNames[i]) +
                               " query parameter is allowed.");
      }
      found[i] = &value;
    }
  }
  const auto [algorithm, credential, date, expires, signed_headers, signature, token,
              content_sha256] = found;
  if (!algorithm || !credential || !date || !expires || !signed_headers || !signature) {
    return IncompleteError(
        "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', "
        "'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders', and 'X-Amz-Expires'. "
        "Re-examine the query-string parameters.");
  }
  if (*algorithm != kSigV4Algorithm) {
    return IncompleteError("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\".");
  }
  RETURN_IF_ERROR(ParseCredential(*credential, out));
  RETURN_IF_ERROR(ParseSignedHeaderList(*signed_headers, out));
  if (signature->empty()) return IncompleteError("X-Amz-Signature is empty.");
  out.signature = *signature;
  const auto time = ParseAmzDate(*date);
  if (!time) {
    return IncompleteError(
        "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", not '" +
        Printable(*date, 40) + "'.");
  }
  out.request_time = *time;
  out.amz_date = *date;
  std::int64_t seconds = 0;
  const char* begin = expires->data();
  const char* end = begin + expires->size();
  const bool all_digits = !expires->empty() && expires->size() <= 12 &&
                          std::all_of(begin, end, [](char c) { return c >= '0' && c <= '9'; });
  if (!all_digits || std::from_chars(begin, end, seconds).ptr != end) {
    return IncompleteError("X-Amz-Expires should be a non-negative number of seconds.");
  }
  out.expires_seconds = seconds;
  if (token) out.security_token = *token;
  if (content_sha256) {
    out.payload_hash = *content_sha256;
    out.payload_hash_declared = true;
  }
  out.presigned = true;
  return Status::Ok();
}

bool IsPresignParam(std::string_view name) {
  return name == "X-Amz-Algorithm" || name == "X-Amz-Credential" || name == "X-Amz-Signature" ||
         name == "X-Amz-SignedHeaders";
}

bool Contains(std::span<const std::string> names, std::string_view lower_name) {
  return std::any_of(names.begin(), names.end(),
                     [&](const std::string& n) { return EqualsIgnoreCase(n, lower_name); });
}

// Headers a signer leaves out: hop-by-hop, or rewritten by proxies (botocore's list).
bool IsUnsignableHeader(std::string_view lower_name) {
  static constexpr std::array<std::string_view, 12> kSkip = {"authorization",
                                                             "connection",
                                                             "expect",
                                                             "keep-alive",
                                                             "proxy-authenticate",
                                                             "proxy-authorization",
                                                             "te",
                                                             "trailer",
                                                             "transfer-encoding",
                                                             "upgrade",
                                                             "user-agent",
                                                             "x-amzn-trace-id"};
  return std::find(kSkip.begin(), kSkip.end(), lower_name) != kSkip.end();
}

std::vector<std::string> HeadersToSign(const HttpRequestView& request) {
  std::vector<std::string> names;
  for (const auto& [name, value] : request.headers) {
    std::string lower = AsciiLower(name);
    if (!IsUnsignableHeader(lower)) names.push_back(std::move(lower));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace

// ---- Public: building blocks ---------------------------------------------------------------

std::string UriEncode(std::string_view bytes, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size());
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string CanonicalUri(std::string_view raw_path, const CanonicalOptions& options) {
  std::string path = options.double_encode_path ? std::string(raw_path) : PercentDecode(raw_path);
  if (options.normalize_path) path = NormalizePath(path);
  if (path.empty()) return "/";
  return UriEncode(path, /*keep_slash=*/true);
}

std::string CanonicalQueryString(std::string_view raw_query, const CanonicalOptions& options) {
  std::vector<std::pair<std::string, std::string>> encoded;
  for (const auto& [name, value] : ParseQuery(raw_query)) {
    if (options.presigned && name == "X-Amz-Signature") continue;
    encoded.emplace_back(UriEncode(name, false), UriEncode(value, false));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

core::Result<std::string> CanonicalHeaders(const HttpRequestView& request,
                                           std::span<const std::string> signed_headers) {
  std::string out;
  for (const std::string& name : signed_headers) {
    const std::string lower = AsciiLower(name);
    const std::vector<std::string_view> values = HeaderValues(request, lower);
    if (values.empty()) {
      return MismatchError("Signed header '" + Printable(name, 64) +
                           "' is not present in the request.");
    }
    out += lower;
    out.push_back(':');
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out.push_back(',');
      out += TrimAll(values[i]);
    }
    out.push_back('\n');
  }
  return out;
}

core::Result<std::string> CanonicalRequest(const HttpRequestView& request,
                                           std::span<const std::string> signed_headers,
                                           std::string_view payload_hash,
                                           const CanonicalOptions& options) {
  if (signed_headers.empty()) return IncompleteError("SignedHeaders is empty.");
  const auto [path, query] = SplitTarget(request.target);
  ASSIGN_OR_RETURN(std::string headers, CanonicalHeaders(request, signed_headers));
  std::string out;
  out.reserve(256 + headers.size() + request.target.size());
  out += request.method;
  out.push_back('\n');
  out += CanonicalUri(path, options);
  out.push_back('\n');
  out += CanonicalQueryString(query, options);
  out.push_back('\n');
  out += headers;
  out.push_back('\n');
  out += Join(signed_headers, ';');
  out.push_back('\n');
  out += payload_hash;
  return out;
}

std::string CredentialScope(std::string_view date, std::string_view region,
                            std::string_view service) {
  std::string scope;
  scope.reserve(date.size() + region.size() + service.size() + 16);
  scope.append(date).append("/").append(region).append("/").append(service).append("/");
  scope.append(kSigV4Terminator);
  return scope;
}

std::string StringToSign(std::string_view amz_date, std::string_view credential_scope,
                         std::string_view canonical_request) {
  std::string out;
  out.append(kSigV4Algorithm).append("\n");
  out.append(amz_date).append("\n");
  out.append(credential_scope).append("\n");
  out += Sha256Hex(canonical_request);
  return out;
}

core::SecretBytes SigningKey(const core::SecretBytes& secret_access_key, std::string_view date,
                             std::string_view region, std::string_view service) {
  // "AWS4" + secret, built in wiping storage so no plain copy of the secret is left behind.
  core::SecretBytes seed;
  seed.Resize(4 + secret_access_key.size());
  std::memcpy(seed.MutableBytes().data(), "AWS4", 4);
  if (!secret_access_key.empty()) {
    std::memcpy(seed.MutableBytes().data() + 4, secret_access_key.RevealBytes().data(),
                secret_access_key.size());
  }
  const core::SecretBytes k_date = HmacSha256(seed.RevealBytes(), date);
  const core::SecretBytes k_region = HmacSha256(k_date.RevealBytes(), region);
  const core::SecretBytes k_service = HmacSha256(k_region.RevealBytes(), service);
  return HmacSha256(k_service.RevealBytes(), kSigV4Terminator);
}

std::string SignatureHex(const core::SecretBytes& signing_key, std::string_view string_to_sign) {
  return HexLower(HmacSha256(signing_key.RevealBytes(), string_to_sign).RevealBytes());
}

std::string Sha256Hex(std::string_view bytes) { return HexLower(Sha256(bytes)); }

std::optional<core::WallTime> ParseAmzDate(std::string_view text) {
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') return std::nullopt;
  const auto y = Digits(text, 0, 4);
  const auto mo = Digits(text, 4, 2);
  const auto d = Digits(text, 6, 2);
  const auto h = Digits(text, 9, 2);
  const auto mi = Digits(text, 11, 2);
  const auto s = Digits(text, 13, 2);
  if (!y || !mo || !d || !h || !mi || !s) return std::nullopt;
  return MakeTime(*y, *mo, *d, *h, *mi, *s);
}

std::string FormatAmzDate(core::WallTime time) {
  using namespace std::chrono;
  const auto secs = floor<seconds>(time);
  const auto whole_days = floor<days>(secs);
  const year_month_day ymd{whole_days};
  const hh_mm_ss hms{secs - whole_days};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02d%02d%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

// ---- Public: verification ------------------------------------------------------------------

core::Result<ParsedSignature> ParseSignature(const HttpRequestView& request) {
  const std::vector<std::string_view> authorization = HeaderValues(request, "authorization");
  const auto params = ParseQuery(SplitTarget(request.target).second);
  const bool query_auth = std::any_of(params.begin(), params.end(),
                                      [](const auto& p) { return IsPresignParam(p.first); });
  if (authorization.size() > 1) return IncompleteError("Only one Authorization header is allowed.");
  if (!authorization.empty() && query_auth) {
    return IncompleteError(
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the "
        "Authorization header should be specified.");
  }
  if (authorization.empty() && !query_auth)
    return MissingTokenError("Missing Authentication Token");

  ParsedSignature out;
  if (query_auth) {
    RETURN_IF_ERROR(ParsePresigned(params, out));
  } else {
    RETURN_IF_ERROR(ParseAuthorizationHeader(authorization[0], out));
    RETURN_IF_ERROR(ParseHeaderDate(request, out));
    const std::vector<std::string_view> tokens = HeaderValues(request, "x-amz-security-token");
    if (tokens.size() > 1) return IncompleteError("Only one X-Amz-Security-Token is allowed.");
    if (tokens.size() == 1) out.security_token = std::string(TrimOws(tokens[0]));
  }
  // A declared payload hash in a header wins over the presigned query parameter.
  const std::vector<std::string_view> hashes = HeaderValues(request, "x-amz-content-sha256");
  if (hashes.size() > 1) return IncompleteError("Only one X-Amz-Content-Sha256 is allowed.");
  if (hashes.size() == 1) {
    out.payload_hash = TrimAll(hashes[0]);
    out.payload_hash_declared = true;
  }
  if (!out.payload_hash_declared) out.payload_hash = Sha256Hex(request.body);
  return out;
}

core::Status VerifySignature(const HttpRequestView& request, const ParsedSignature& sig,
                             const core::SecretBytes& secret_access_key,
                             const VerifyOptions& options) {
  return VerifySignatureWithSigningKey(
      request, sig, SigningKey(secret_access_key, sig.date, sig.region, sig.service), options);
}

core::Status VerifySignatureWithSigningKey(const HttpRequestView& request,
                                           const ParsedSignature& sig,
                                           const core::SecretBytes& signing_key,
                                           const VerifyOptions& options) {
  if (sig.terminator != kSigV4Terminator || sig.signed_headers.empty() || sig.signature.empty()) {
    return IncompleteError("The signature parameters are incomplete.");
  }
  // Scope.
  if (!options.expected_region.empty() && sig.region != options.expected_region) {
    return MismatchError("Credential should be scoped to a valid region, not '" +
                         Printable(sig.region, 64) + "'.");
  }
  if (!options.expected_service.empty() && sig.service != options.expected_service) {
    return MismatchError("Credential should be scoped to correct service: '" +
                         std::string(options.expected_service) + "'.");
  }
  if (std::string_view(sig.amz_date).substr(0, 8) != sig.date) {
    return MismatchError(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '" +
        Printable(sig.date, 16) + "' != '" + Printable(sig.amz_date.substr(0, 8), 16) +
        "', from '" + Printable(sig.amz_date, 32) + "'.");
  }

  // Headers that must be covered by the signature.
  if (!Contains(sig.signed_headers, "host")) {
    return IncompleteError("'Host' must be a 'SignedHeader' in the AWS Authorization.");
  }
  if (!sig.presigned) {
    if (sig.date_header.empty() || !Contains(sig.signed_headers, sig.date_header)) {
      return IncompleteError(std::string(sig.date_header == "date" ? "'Date'" : "'X-Amz-Date'") +
                             " must be a 'SignedHeader' in the AWS Authorization.");
    }
    if (sig.security_token && !options.allow_unsigned_security_token &&
        !Contains(sig.signed_headers, "x-amz-security-token")) {
      return IncompleteError(
          "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.");
    }
  }

  // Time.
  const core::WallTime now = options.now;
  if (sig.presigned) {
    if (!sig.expires_seconds) return IncompleteError("X-Amz-Expires is missing.");
    if (*sig.expires_seconds > kMaxPresignExpiresSeconds) {
      return AccessDeniedError(
          "X-Amz-Expires must be less than a week (in seconds) that is; 604800");
    }
    if (now < sig.request_time - options.max_skew) {
      return SkewedError("Request is not valid yet: " + sig.amz_date + " is later than " +
                         FormatAmzDate(now + options.max_skew) + ".");
    }
    if (now > sig.request_time + std::chrono::seconds(*sig.expires_seconds)) {
      return AccessDeniedError("Request has expired");
    }
  } else {
    const std::string minutes = std::to_string(options.max_skew.count() / 60);
    if (now > sig.request_time + options.max_skew) {
      return SkewedError("Signature expired: " + sig.amz_date + " is now earlier than " +
                         FormatAmzDate(now - options.max_skew) + " (" + FormatAmzDate(now) + " - " +
                         minutes + " min.)");
    }
    if (now < sig.request_time - options.max_skew) {
      return SkewedError("Signature not yet current: " + sig.amz_date + " is still later than " +
                         FormatAmzDate(now + options.max_skew) + " (" + FormatAmzDate(now) + " + " +
                         minutes + " min.)");
    }
  }

  // Payload hash: what was declared, else the hash of the body we have.
  const std::string payload_hash =
      sig.payload_hash_declared ? sig.payload_hash : Sha256Hex(request.body);
  const bool unsigned_payload = sig.payload_hash_declared && payload_hash == kUnsignedPayload;
  if (sig.payload_hash_declared && !unsigned_payload) {
    if (payload_hash.starts_with("STREAMING-")) {
      return core::UnimplementedError("Chunk-signed (STREAMING-*) payloads are not supported.")
          .WithAwsType("NotImplemented");
    }
    if (!IsLowerHex(payload_hash, 64)) {
      return core::InvalidArgumentError(
                 "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.")
          .WithAwsType("InvalidArgument");
    }
  }

  // Signature.
  const CanonicalOptions canonical_options{.normalize_path = options.normalize_path,
                                           .double_encode_path = options.double_encode_path,
                                           .presigned = sig.presigned};
  ASSIGN_OR_RETURN(std::string canonical,
                   CanonicalRequest(request, sig.signed_headers, payload_hash, canonical_options));
  const std::string scope = CredentialScope(sig.date, sig.region, sig.service);
  std::string string_to_sign = StringToSign(sig.amz_date, scope, canonical);
  const std::string expected = SignatureHex(signing_key, string_to_sign);
  if (!ConstantTimeEquals(expected, sig.signature)) {
    // Like AWS, show the canonical request and string to sign (never the computed signature),
    // with the session token, a credential, blanked out.
    if (sig.security_token && !sig.security_token->empty()) {
      ReplaceAll(canonical, TrimAll(*sig.security_token), "[redacted]");
      ReplaceAll(canonical, UriEncode(*sig.security_token, false), "[redacted]");
    }
    return MismatchError(
        "The request signature we calculated does not match the signature you provided. Check "
        "your AWS Secret Access Key and signing method. Consult the service documentation for "
        "details.\n\nThe Canonical String for this request should have been\n'" +
        Printable(canonical, 8192, true) + "'\n\nThe String-to-Sign should have been\n'" +
        string_to_sign + "'\n");
  }

  // Only now that the declared hash is known to be the client's: does the body match it?
  if (sig.payload_hash_declared && !unsigned_payload && options.verify_payload_hash &&
      Sha256Hex(request.body) != payload_hash) {
    return core::InvalidArgumentError(
               "The provided 'x-amz-content-sha256' header does not match what was computed.")
        .WithAwsType(std::string(kXAmzContentSha256Mismatch));
  }
  return Status::Ok();
}

// ---- Public: signing -----------------------------------------------------------------------

core::Result<std::vector<std::pair<std::string, std::string>>> SignRequest(
    const HttpRequestView& request, const SigningParams& params,
    const core::SecretBytes& secret_access_key) {
  if (!HeaderValues(request, "authorization").empty() ||
      !HeaderValues(request, "x-amz-date").empty()) {
    return core::InvalidArgumentError("the request already carries Authorization or X-Amz-Date");
  }
  if (HeaderValues(request, "host").empty()) {
    return core::InvalidArgumentError("a request must have a Host header to be signed");
  }
  const std::string amz_date = FormatAmzDate(params.time);
  std::vector<std::pair<std::string, std::string>> added;
  added.emplace_back("X-Amz-Date", amz_date);
  if (params.security_token) added.emplace_back("X-Amz-Security-Token", *params.security_token);
  std::string payload_hash;
  const std::vector<std::string_view> declared = HeaderValues(request, "x-amz-content-sha256");
  if (declared.size() > 1) {
    return core::InvalidArgumentError("the request has more than one X-Amz-Content-Sha256");
  }
  if (declared.size() == 1) {
    payload_hash = TrimAll(declared[0]);
  } else {
    payload_hash = Sha256Hex(request.body);
    if (params.add_content_sha256) added.emplace_back("x-amz-content-sha256", payload_hash);
  }

  HttpRequestView extended = request;
  for (const auto& [name, value] : added) extended.headers.emplace_back(name, value);
  const std::vector<std::string> signed_headers = HeadersToSign(extended);
  CanonicalOptions canonical_options = params.canonical;
  canonical_options.presigned = false;
  ASSIGN_OR_RETURN(const std::string canonical,
                   CanonicalRequest(extended, signed_headers, payload_hash, canonical_options));
  const std::string scope = CredentialScope(amz_date.substr(0, 8), params.region, params.service);
  const core::SecretBytes key =
      SigningKey(secret_access_key, amz_date.substr(0, 8), params.region, params.service);
  const std::string signature = SignatureHex(key, StringToSign(amz_date, scope, canonical));
  added.emplace_back("Authorization", std::string(kSigV4Algorithm) +
                                          " Credential=" + std::string(params.access_key_id) + "/" +
                                          scope + ", SignedHeaders=" + Join(signed_headers, ';') +
                                          ", Signature=" + signature);
  return added;
}

core::Result<std::string> PresignRequest(const HttpRequestView& request,
                                         const SigningParams& params,
                                         const core::SecretBytes& secret_access_key,
                                         std::chrono::seconds expires) {
  if (!HeaderValues(request, "authorization").empty()) {
    return core::InvalidArgumentError("the request already carries an Authorization header");
  }
  if (HeaderValues(request, "host").empty()) {
    return core::InvalidArgumentError("a request must have a Host header to be signed");
  }
  if (expires.count() < 0 || expires.count() > kMaxPresignExpiresSeconds) {
    return core::InvalidArgumentError("expires must be between 0 and 604800 seconds");
  }
  const auto [path, query] = SplitTarget(request.target);
  for (const auto& [name, value] : ParseQuery(query)) {
    if (IsPresignParam(name) || name == "X-Amz-Date" || name == "X-Amz-Expires") {
      return core::InvalidArgumentError("the request is already presigned");
    }
  }
  const std::string amz_date = FormatAmzDate(params.time);
  const std::string scope = CredentialScope(amz_date.substr(0, 8), params.region, params.service);
  const std::vector<std::string> signed_headers = HeadersToSign(request);

  std::string target(request.target);
  if (target.find('?') == std::string::npos) {
    target.push_back('?');
  } else if (target.back() != '?' && target.back() != '&') {
    target.push_back('&');
  }
  target += "X-Amz-Algorithm=" + std::string(kSigV4Algorithm);
  target +=
      "&X-Amz-Credential=" + UriEncode(std::string(params.access_key_id) + "/" + scope, false);
  target += "&X-Amz-Date=" + amz_date;
  target += "&X-Amz-SignedHeaders=" + UriEncode(Join(signed_headers, ';'), false);
  target += "&X-Amz-Expires=" + std::to_string(expires.count());
  if (params.security_token) {
    target += "&X-Amz-Security-Token=" + UriEncode(*params.security_token, false);
  }

  HttpRequestView presigned = request;
  presigned.target = target;
  CanonicalOptions canonical_options = params.canonical;
  canonical_options.presigned = true;
  ASSIGN_OR_RETURN(
      const std::string canonical,
      CanonicalRequest(presigned, signed_headers, Sha256Hex(request.body), canonical_options));
  const core::SecretBytes key =
      SigningKey(secret_access_key, amz_date.substr(0, 8), params.region, params.service);
  target += "&X-Amz-Signature=" + SignatureHex(key, StringToSign(amz_date, scope, canonical));
  return target;
}

}  // namespace moatless::identity
