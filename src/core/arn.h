// Amazon Resource Names: arn:partition:service:region:account-id:resource
//
// moatless names every resource with an ARN so that IAM policies written for AWS apply unchanged.
// Parse accepts what AWS accepts structurally: six colon-separated fields where the resource
// (the last) may itself contain colons and slashes; partition, service and resource must be
// non-empty, region and account may be empty (e.g. arn:aws:iam::123456789012:role/x,
// arn:aws:s3:::bucket). Wildcards are not interpreted here (that is the policy engine's job).
// Plain value type.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace moatless::core {

struct Arn {
  std::string partition;
  std::string service;
  std::string region;
  std::string account;
  std::string resource;

  static Result<Arn> Parse(std::string_view text);
  std::string ToString() const;

  // The resource's type and id for the "type/id" and "type:id" forms ("role/x" -> "role", "x");
  // type is empty when the resource has neither separator.
  std::string_view ResourceType() const;
  std::string_view ResourceId() const;

  friend bool operator==(const Arn&, const Arn&) = default;
};

// The longest ARN accepted (IAM's documented maximum for resource ARNs).
inline constexpr std::size_t kMaxArnLength = 2048;

}  // namespace moatless::core
