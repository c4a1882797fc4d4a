#include "http/path.h"

namespace moatless::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 pchar minus pct-encoded (handled separately), plus '/'.
bool IsPathChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  // unreserved "-._~", sub-delims "!$&'()*+,;=", and ":@/"
  return std::string_view("-._~!$&'()*+,;=:@/").find(static_cast<char>(c)) !=
         std::string_view::npos;
}

bool IsDotSegment(std::string_view s) { return s == "." || s == ".."; }

// A decoded segment may itself contain '/' or '\' (from %2F / %5C); whatever a handler later does
// with it, none of its components may be a dot segment.
bool HidesDotSegment(std::string_view decoded) {
  std::size_t start = 0;
  for (std::size_t i = 0; i <= decoded.size(); ++i) {
    if (i == decoded.size() || decoded[i] == '/' || decoded[i] == '\\') {
      if (IsDotSegment(decoded.substr(start, i - start))) return true;
      start = i + 1;
    }
  }
  return false;
}

}  // namespace

TargetParts SplitTarget(std::string_view target) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

core::Result<std::string> PercentDecode(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    const char c = encoded[i];
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= encoded.size()) {
      return core::InvalidArgumentError("malformed percent-encoding");
    }
    const int hi = HexValue(encoded[i + 1]);
    const int lo = HexValue(encoded[i + 2]);
    if (hi < 0 || lo < 0) return core::InvalidArgumentError("malformed percent-encoding");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

core::Status ValidatePath(std::string_view path) { return DecodePathSegments(path).status(); }

core::Result<std::vector<std::string>> DecodePathSegments(std::string_view path) {
  if (path.empty() || path.front() != '/') {
    return core::InvalidArgumentError("request path must start with '/'");
  }
  for (unsigned char c : path) {
    if (c != '%' && !IsPathChar(c)) {
      return core::InvalidArgumentError(
          "request path contains a character that must be percent-encoded");
    }
  }
  std::vector<std::string> segments;
  std::size_t start = 1;
  for (std::size_t i = 1; i <= path.size(); ++i) {
    if (i != path.size() && path[i] != '/') continue;
    const std::string_view raw = path.substr(start, i - start);
    auto decoded = PercentDecode(raw);
    if (!decoded.ok())
      return core::InvalidArgumentError("request path has malformed percent-encoding");
    if (decoded->find('\0') != std::string::npos) {
      return core::InvalidArgumentError("request path contains an encoded NUL");
    }
    if (HidesDotSegment(*decoded)) {
      return core::InvalidArgumentError("request path contains a '.' or '..' segment");
    }
    segments.push_back(std::move(decoded).value());
    start = i + 1;
  }
  return segments;
}

}  // namespace moatless::http
