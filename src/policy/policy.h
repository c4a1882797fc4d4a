// The IAM policy document model: what ParsePolicy (parser.h) produces and CompilePolicy
// (compiled.h) consumes.
//
// A Policy is a plain value holding the document as written, after shape normalisation (scalars
// become one-element lists, JSON booleans and numbers in condition values become strings).
// It carries no evaluation logic. Plain value type: copy freely; not synchronised.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moatless::policy {

enum class Effect { kAllow, kDeny };

// Version decides whether ${...} is a policy variable (2012-10-17) or literal text (else).
enum class PolicyVersion { kAbsent, k2008_10_17, k2012_10_17 };

// Which kind of policy a document is; decides which elements are legal (Principal only in
// resource and trust policies; Resource optional only in trust policies).
enum class PolicyType {
  kIdentity,   // attached to a user or role
  kBoundary,   // permissions boundary
  kSession,    // session policy passed when a session is created
  kGuardrail,  // operator-level SCP-like limit
  kResource,   // resource-based policy (Principal required)
  kTrust,      // role trust policy (Principal required, Resource optional)
};

std::string_view PolicyTypeName(PolicyType type);

// One principal entry: type is "*" (for "Principal":"*"), "AWS", "Service", "Federated" or
// "CanonicalUser"; value is the name as written.
struct PrincipalEntry {
  std::string type;
  std::string value;
  friend bool operator==(const PrincipalEntry&, const PrincipalEntry&) = default;
};

// One condition clause: Condition -> operator -> key -> values (the values are ORed, or NORed for
// negated operators).
struct ConditionClause {
  std::string op;   // as written, e.g. "ForAnyValue:StringLikeIfExists"
  std::string key;  // as written; matched case-insensitively
  std::vector<std::string> values;
  friend bool operator==(const ConditionClause&, const ConditionClause&) = default;
};

struct Statement {
  std::optional<std::string> sid;
  Effect effect = Effect::kAllow;
  // Principal or NotPrincipal (not_principal says which); empty when neither is present.
  std::vector<PrincipalEntry> principals;
  bool has_principal = false;
  bool not_principal = false;
  std::vector<std::string> actions;  // Action or NotAction
  bool not_action = false;
  std::vector<std::string> resources;  // Resource or NotResource; absent only in trust policies
  bool has_resource = false;
  bool not_resource = false;
  std::vector<ConditionClause> conditions;

  // "statement 2 (Sid \"ReadSecrets\")" or "statement 2": used in errors and explanations.
  std::string Label(std::size_t index) const;
};

struct Policy {
  PolicyVersion version = PolicyVersion::kAbsent;
  std::optional<std::string> id;
  std::vector<Statement> statements;
};

}  // namespace moatless::policy
