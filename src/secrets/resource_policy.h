// The checks a secret's resource policy goes through before it is stored (PutResourcePolicy) and
// that ValidateResourcePolicy reports: the policy grammar of the policy engine (as a resource
// policy: Principal required, unknown condition operators refused, ...) and whether the policy is
// public — whether an Allow grants access to every principal (`"Principal": "*"`,
// `{"AWS": "*"}`, or NotPrincipal) without a condition that pins the caller's account,
// organisation or ARN. Stateless; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace moatless::secrets {

struct PolicyCheck {
  std::string check;  // "SYNTAX_CHECK", "PUBLIC_ACCESS_CHECK"
  std::string message;
};

struct PolicyReview {
  std::vector<PolicyCheck> failures;  // empty: the policy passed
  bool is_public = false;
};

// MalformedPolicyDocumentException if `document` is not a JSON object at all; otherwise what the
// checks found.
core::Result<PolicyReview> ReviewResourcePolicy(std::string_view document);

}  // namespace moatless::secrets
