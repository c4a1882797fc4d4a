// ParsePolicy: IAM policy JSON -> Policy (policy.h), validated and fail-closed.
//
// Accepts what the IAM grammar accepts (Version 2012-10-17 / 2008-10-17 / absent, Id, Statement
// object or array, scalars or arrays wherever AWS takes both) and rejects, with an error naming the
// statement (index and Sid) and the element, everything else: unknown keys, both or neither of
// Action/NotAction and Resource/NotResource, Effect not exactly "Allow"/"Deny", unknown condition
// operators, wildcards in an ARN's service segment, Principal outside resource/trust policies,
// duplicate Sids, malformed CIDRs, dates, numbers, booleans and base64, policy variables where they
// are not allowed, and documents over the size limits. Never throws (Boost.JSON errors are caught
// here), never does I/O. Stateless and thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/status.h"
#include "policy/policy.h"

namespace moatless::policy {

struct ParseOptions {
  PolicyType type = PolicyType::kIdentity;
  // Generous defaults (AWS's own limits are 2-20 KiB per document); the benchmark's large role
  // has 1,000 statements.
  std::size_t max_document_bytes = 1 << 20;
  std::size_t max_statements = 10000;
  std::size_t max_values_per_element = 1000;  // entries of one Action/Resource/condition key
  std::size_t max_string_bytes = 2048;        // one action, ARN, Sid or condition value
  int max_json_depth = 16;
};

// Errors are InvalidArgument ("statement 1 (Sid \"X\"): Effect: ...") or PayloadTooLarge.
core::Result<Policy> ParsePolicy(std::string_view json, const ParseOptions& options = {});

// Validates an already-built Policy (e.g. from YAML) with the same rules as ParsePolicy.
core::Status ValidatePolicy(const Policy& policy, const ParseOptions& options = {});

}  // namespace moatless::policy
