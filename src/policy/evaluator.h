// The decision procedure: a request context against the policies that apply to it, in the order
// of the reference (iam-semantics.md §1.2), with an explanation of the outcome.
//
// Evaluate() is a pure function of its arguments: it never throws, never does I/O, and keeps no
// state, so any number of threads may call it at once on shared CompiledPolicy objects. An
// evaluation error (e.g. a context value that a typed operator cannot parse) fails closed: the
// request is denied and the error is reported in the decision.
//
// Layers: identity policies (union), permissions boundary, session policy, resource policy and
// guardrails (SCP-like, one list per level, root first; every level must allow). Explicit deny in
// any layer wins; boundary, session policy and guardrails only intersect; a same-account
// resource-policy grant is sufficient on its own or limited by boundary/session depending on the
// principal it names (role ARN vs session ARN vs user ARN, §1.2 step 4).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "policy/compiled.h"

namespace moatless::policy {

enum class PrincipalKind {
  kAnonymous,
  kAccountRoot,
  kUser,
  kRole,           // a role acting directly (rare; roles normally act through sessions)
  kRoleSession,    // arn:aws:sts::ACCT:assumed-role/R/S
  kFederatedUser,  // arn:aws:sts::ACCT:federated-user/U (GetFederationToken)
  kService,        // e.g. lambda.amazonaws.com
};

// A condition-key value: single-valued keys hold one value; multivalued keys (aws:TagKeys, ...)
// hold a set that may be empty.
struct ContextValue {
  std::vector<std::string> values;
  bool multi = false;
};

// Case-insensitive map of condition keys. Plain value type.
class ContextKeys {
 public:
  void Set(std::string_view key, std::string value);
  void SetMulti(std::string_view key, std::vector<std::string> values);
  void Erase(std::string_view key);
  // key must be lowercased.
  const ContextValue* FindLower(std::string_view lower_key) const;
  // Calls fn(lowercased key, const ContextValue&) for every key, in key order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& [key, value] : values_) fn(key, value);
  }

 private:
  std::map<std::string, ContextValue, std::less<>> values_;  // lowercased keys
};

struct RequestContext {
  std::string principal_arn;  // empty for anonymous
  PrincipalKind principal_kind = PrincipalKind::kRoleSession;
  std::string principal_account;
  // For sessions: the role (or federating user) the session was issued from; resource-policy
  // grants to this ARN are limited by the boundary and session policy.
  std::string issuer_arn;
  std::map<std::string, std::string> principal_tags;  // aws:PrincipalTag/<k>
  std::string action;                                 // "service:Action"
  std::string resource;                               // ARN or "*"
  std::string resource_account;                       // empty = the principal's account
  std::map<std::string, std::string> resource_tags;   // aws:ResourceTag/<k>
  ContextKeys context;  // everything else: aws:SourceIp, aws:CurrentTime, aws:TagKeys, ...
};

struct PolicySet {
  std::vector<CompiledPolicyPtr> identity;
  CompiledPolicyPtr boundary;  // null: no boundary
  CompiledPolicyPtr session;   // null: no session policy
  CompiledPolicyPtr resource;  // null: no resource policy
  // Trust policies and KMS key policies: the resource policy itself must allow (§1.2 step 4).
  bool resource_policy_must_allow = false;
  std::vector<std::vector<CompiledPolicyPtr>> guardrails;  // levels, root first
};

enum class Decision { kAllowed, kExplicitlyDenied, kImplicitlyDenied };
enum class Layer { kIdentity, kBoundary, kSession, kResource, kGuardrail };

std::string_view DecisionName(Decision decision);
std::string_view LayerName(Layer layer);  // "identity-based policy", "permissions boundary", ...

struct StatementRef {
  Layer layer = Layer::kIdentity;
  std::string policy;  // CompiledPolicy::name()
  std::size_t index = 0;
  std::optional<std::string> sid;
  friend bool operator==(const StatementRef&, const StatementRef&) = default;
};

struct EvaluationResult {
  Decision decision = Decision::kImplicitlyDenied;
  // Explicit deny: the matching Deny statements. Allowed: the Allow statements that decided.
  std::vector<StatementRef> statements;
  // Implicit deny: the layer that lacked an Allow.
  std::optional<Layer> missing_allow;
  std::string error;  // non-empty when evaluation failed (and therefore denied)

  bool allowed() const { return decision == Decision::kAllowed; }
  // "User: ARN is not authorized to perform: A on resource: R because no identity-based policy
  // allows the A action" (AWS style); for Allowed, a one-line summary.
  std::string Message(const RequestContext& request) const;
};

EvaluationResult Evaluate(const RequestContext& request, const PolicySet& policies);

// What a principal's ARN says about it: its kind, its account and, for a role session, the role it
// was issued from (arn:aws:sts::A:assumed-role/R/S -> arn:aws:iam::A:role/R). Accepts IAM root,
// user and role ARNs, STS assumed-role and federated-user ARNs, and service principals
// ("lambda.amazonaws.com"); InvalidArgument for anything else.
struct PrincipalInfo {
  PrincipalKind kind = PrincipalKind::kRoleSession;
  std::string account;
  std::string issuer_arn;
};
core::Result<PrincipalInfo> ClassifyPrincipal(std::string_view principal);

// Evaluates one compiled condition block against a request (exposed for tests and analysis).
// Returns nullopt on an evaluation error.
std::optional<bool> ConditionsMatch(const CompiledStatement& statement,
                                    const RequestContext& request);

}  // namespace moatless::policy
