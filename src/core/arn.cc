#include "core/arn.h"

#include <algorithm>
#include <array>

namespace moatless::core {
namespace {

bool IsServiceChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

bool IsPrintable(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f; });
}

}  // namespace

Result<Arn> Arn::Parse(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    // The text is the caller's own input; it is quoted so that its boundaries are visible.
    std::string shown(text.substr(0, 200));
    if (!IsPrintable(shown)) shown = "<non-printable>";
    return InvalidArgumentError("invalid ARN \"" + shown + "\": " + std::string(why));
  };
  if (text.size() > kMaxArnLength) return bad("longer than 2048 characters");
  if (!IsPrintable(text)) return bad("contains control characters");
  if (!text.starts_with("arn:")) return bad("must start with \"arn:\"");
  std::array<std::string_view, 5> parts;
  std::string_view rest = text.substr(4);
  for (std::size_t i = 0; i < 4; ++i) {
    const auto colon = rest.find(':');
    if (colon == std::string_view::npos) return bad("must have six colon-separated fields");
    parts[i] = rest.substr(0, colon);
    rest.remove_prefix(colon + 1);
  }
  parts[4] = rest;
  Arn arn{std::string(parts[0]), std::string(parts[1]), std::string(parts[2]),
          std::string(parts[3]), std::string(parts[4])};
  if (arn.partition.empty()) return bad("empty partition");
  if (arn.service.empty()) return bad("empty service");
  if (!std::all_of(arn.service.begin(), arn.service.end(), IsServiceChar)) {
    return bad("service must be lower-case letters, digits and '-'");
  }
  if (arn.resource.empty()) return bad("empty resource");
  return arn;
}

std::string Arn::ToString() const {
  return "arn:" + partition + ":" + service + ":" + region + ":" + account + ":" + resource;
}

std::string_view Arn::ResourceType() const {
  const auto sep = resource.find_first_of("/:");
  return sep == std::string::npos ? std::string_view() : std::string_view(resource).substr(0, sep);
}

std::string_view Arn::ResourceId() const {
  const auto sep = resource.find_first_of("/:");
  return sep == std::string::npos ? std::string_view(resource)
                                  : std::string_view(resource).substr(sep + 1);
}

}  // namespace moatless::core
