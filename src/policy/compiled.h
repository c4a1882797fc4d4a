// CompiledPolicy: a validated Policy lowered into the form the evaluator wants.
//
// Compiling does all per-policy work once: action patterns are lowercased, resource ARNs split
// into segments (with the case rules of the engine applied), condition operators resolved and
// their values pre-parsed (numbers, dates, CIDRs, booleans, variable templates), and statements
// indexed by the service prefix of their actions so that a request visits only the statements
// that can apply to it (plus those with wildcard services or NotAction).
//
// A CompiledPolicy is immutable after Compile and is shared as shared_ptr<const CompiledPolicy>:
// safe to use from any number of threads without synchronisation.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "policy/matching.h"
#include "policy/parser.h"
#include "policy/policy.h"

namespace moatless::policy {

struct CompiledValue {
  Template text;  // String / Arn values (literal text when there are no variables)
  double number = 0;
  std::int64_t date_millis = 0;
  bool boolean = false;
  Cidr cidr;
  std::string raw;  // as written (Binary compares it byte for byte)
};

struct CompiledCondition {
  ConditionOperator op;
  std::string key;  // lowercased
  std::vector<CompiledValue> values;
};

struct CompiledResource {
  bool any = false;  // "*"
  // partition, service, region, account: lowercased globs (matched case-insensitively).
  std::array<std::string, 4> head;
  std::array<bool, 4> head_is_glob{};  // false: a plain case-insensitive comparison suffices
  Template resource;  // the resource segment (case-sensitive glob after substitution)
  // Literal text every matching resource segment starts with (up to the first wildcard or
  // variable): most non-matching statements of a large policy are rejected by this comparison.
  std::string resource_prefix;
};

struct CompiledStatement {
  std::size_t index = 0;
  std::optional<std::string> sid;
  Effect effect = Effect::kAllow;
  bool has_principal = false;
  bool not_principal = false;
  std::vector<PrincipalEntry> principals;
  bool not_action = false;
  std::vector<std::string> actions;  // lowercased globs
  // Parallel to `actions`: true where the pattern has `*`, `?` or `\`; the others are compared for
  // equality, which is most of a real role's actions and far cheaper than glob matching.
  std::vector<bool> action_is_glob;
  bool has_resource = false;
  bool not_resource = false;
  std::vector<CompiledResource> resources;
  std::vector<CompiledCondition> conditions;

  std::string Label() const;  // "Sid \"X\"" or "statement 3"
};

class CompiledPolicy {
 public:
  // Validates (ValidatePolicy with options.type = type) and compiles. name identifies the policy
  // in explanations ("inline", a managed policy's name, ...).
  static core::Result<std::shared_ptr<const CompiledPolicy>> Compile(const Policy& policy,
                                                                     std::string name,
                                                                     PolicyType type);
  // ParsePolicy + Compile.
  static core::Result<std::shared_ptr<const CompiledPolicy>> FromJson(
      std::string_view json, std::string name, const ParseOptions& options = {});

  const std::string& name() const { return name_; }
  PolicyType type() const { return type_; }
  PolicyVersion version() const { return version_; }
  const std::vector<CompiledStatement>& statements() const { return statements_; }

  // Calls fn(const CompiledStatement&) for the statements whose Action/NotAction may match
  // action_lower ("service:name", lowercased; service is its part before ':'), in document order,
  // each once; allocates nothing. Three indexes make this cheap for large policies: literal action
  // names, glob patterns by service ("s3:get*"), and statements that can match any service
  // (NotAction, "*", "s?s:*").
  template <typename Fn>
  void ForEachCandidate(std::string_view service, std::string_view action_lower, Fn&& fn) const {
    static const std::vector<std::uint32_t> kNone;
    auto find = [](const auto& index, std::string_view key) -> const std::vector<std::uint32_t>& {
      auto it = index.find(key);
      return it == index.end() ? kNone : it->second;
    };
    const std::vector<std::uint32_t>& a = find(by_action_, action_lower);
    const std::vector<std::uint32_t>& b = find(globs_by_service_, service);
    const std::vector<std::uint32_t>& c = any_service_;
    std::size_t i = 0, j = 0, k = 0;
    constexpr std::uint32_t kEnd = UINT32_MAX;
    while (true) {
      const std::uint32_t next = std::min(
          {i < a.size() ? a[i] : kEnd, j < b.size() ? b[j] : kEnd, k < c.size() ? c[k] : kEnd});
      if (next == kEnd) break;
      // A statement with both a literal and a glob pattern sits in two indexes: visit it once.
      if (i < a.size() && a[i] == next) ++i;
      if (j < b.size() && b[j] == next) ++j;
      if (k < c.size() && c[k] == next) ++k;
      fn(statements_[next]);
    }
  }

 private:
  CompiledPolicy() = default;

  std::string name_;
  PolicyType type_ = PolicyType::kIdentity;
  PolicyVersion version_ = PolicyVersion::kAbsent;
  std::vector<CompiledStatement> statements_;
  // Transparent hashing: lookups by string_view allocate nothing.
  struct ServiceHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Index =
      std::unordered_map<std::string, std::vector<std::uint32_t>, ServiceHash, std::equal_to<>>;
  Index by_action_;         // "s3:getobject" -> statements naming it literally
  Index globs_by_service_;  // "s3" -> statements with a glob pattern of that service
  std::vector<std::uint32_t> any_service_;
};

using CompiledPolicyPtr = std::shared_ptr<const CompiledPolicy>;

}  // namespace moatless::policy
