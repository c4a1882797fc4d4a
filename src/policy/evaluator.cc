#include "policy/evaluator.h"

#include <algorithm>
#include <array>
#include <span>
#include <utility>

#include "core/arn.h"

namespace moatless::policy {
namespace {

// A condition key's value as seen by the evaluator: absent, single or multivalued. Views into the
// request; valid while it lives.
struct KeyView {
  bool present = false;
  bool multi = false;
  std::span<const std::string> values;
};

KeyView Single(const std::string& value) {
  return {.present = true, .multi = false, .values = std::span<const std::string>(&value, 1)};
}

const std::string* FindTag(const std::map<std::string, std::string>& tags, std::string_view key) {
  // Tag keys match case-insensitively; with several case variants the first (in byte order) wins.
  for (const auto& [k, v] : tags) {
    if (EqualsIgnoreCase(k, key)) return &v;
  }
  return nullptr;
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

KeyView Lookup(const RequestContext& request, std::string_view key) {
  if (const ContextValue* v = request.context.FindLower(key)) {
    return {.present = true, .multi = v->multi, .values = v->values};
  }
  constexpr std::string_view kPrincipalTag = "aws:principaltag/";
  constexpr std::string_view kResourceTag = "aws:resourcetag/";
  if (StartsWith(key, kPrincipalTag)) {
    const std::string* v = FindTag(request.principal_tags, key.substr(kPrincipalTag.size()));
    return v != nullptr ? Single(*v) : KeyView{};
  }
  if (StartsWith(key, kResourceTag)) {
    const std::string* v = FindTag(request.resource_tags, key.substr(kResourceTag.size()));
    return v != nullptr ? Single(*v) : KeyView{};
  }
  if (key == "aws:principalarn") {
    // For a role session AWS reports the role's ARN, not the session's.
    if (request.principal_kind == PrincipalKind::kRoleSession && !request.issuer_arn.empty()) {
      return Single(request.issuer_arn);
    }
    if (!request.principal_arn.empty()) return Single(request.principal_arn);
  }
  if (key == "aws:principalaccount" && !request.principal_account.empty()) {
    return Single(request.principal_account);
  }
  if (key == "aws:resourceaccount") {
    if (!request.resource_account.empty()) return Single(request.resource_account);
    if (!request.principal_account.empty()) return Single(request.principal_account);
  }
  return {};
}

// Renders a template against the request. glob=true protects substituted text and escapes so
// that GlobMatch treats them literally. nullopt: a variable without value or default.
std::optional<std::string> Render(const Template& t, const RequestContext& request, bool glob) {
  std::string out;
  for (const TemplatePart& part : t.parts) {
    if (part.literal_escape) {
      out += glob ? GlobEscape(part.text) : part.text;
    } else if (!part.is_variable) {
      out += part.text;
    } else {
      const KeyView v = Lookup(request, part.text);
      const std::string* value = nullptr;
      if (v.present && !v.multi && !v.values.empty()) value = &v.values[0];
      if (value == nullptr && part.default_value) value = &*part.default_value;
      if (value == nullptr) return std::nullopt;
      out += glob ? GlobEscape(*value) : *value;
    }
  }
  return out;
}

// The single literal of a variable-free template (the common case), to avoid copying it.
const std::string* PlainText(const Template& t) {
  if (t.parts.size() == 1 && !t.parts[0].is_variable && !t.parts[0].literal_escape) {
    return &t.parts[0].text;
  }
  static const std::string kEmpty;
  return t.parts.empty() ? &kEmpty : nullptr;
}

template <typename T>
bool Compare(OperatorTest test, T request, T policy) {
  switch (test) {
    case OperatorTest::kEquals:
    case OperatorTest::kEqualsIgnoreCase:
    case OperatorTest::kLike:
      return request == policy;
    case OperatorTest::kLessThan:
      return request < policy;
    case OperatorTest::kLessThanEquals:
      return request <= policy;
    case OperatorTest::kGreaterThan:
      return request > policy;
    case OperatorTest::kGreaterThanEquals:
      return request >= policy;
  }
  return false;
}

bool ArnSegmentsMatch(std::string_view pattern, std::string_view value) {
  auto p = SplitArn(pattern);
  auto v = SplitArn(value);
  if (!p || !v) return false;
  for (std::size_t i = 0; i < 6; ++i) {
    if (!GlobMatch((*p)[i], (*v)[i], false)) return false;
  }
  return true;
}

// One request value against one policy value with the base (non-negated) test. nullopt: the
// request value cannot be read as the operator's type (an evaluation error).
std::optional<bool> BaseMatch(const ConditionOperator& op, const std::string& value,
                              const CompiledValue& policy, const RequestContext& request) {
  switch (op.family) {
    case OperatorFamily::kString: {
      const bool glob = op.test == OperatorTest::kLike;
      std::optional<std::string> rendered;
      const std::string* pattern = PlainText(policy.text);
      if (pattern == nullptr) {
        rendered = Render(policy.text, request, glob);
        if (!rendered) return false;  // a variable without value matches nothing
        pattern = &*rendered;
      }
      if (op.test == OperatorTest::kEqualsIgnoreCase) return EqualsIgnoreCase(*pattern, value);
      if (glob) return GlobMatch(*pattern, value, false);
      return *pattern == value;
    }
    case OperatorFamily::kArn: {
      std::optional<std::string> rendered;
      const std::string* pattern = PlainText(policy.text);
      if (pattern == nullptr) {
        rendered = Render(policy.text, request, true);
        if (!rendered) return false;
        pattern = &*rendered;
      }
      return ArnSegmentsMatch(*pattern, value);
    }
    case OperatorFamily::kNumeric: {
      auto number = ParseNumber(value);
      if (!number.ok()) return std::nullopt;
      return Compare(op.test, *number, policy.number);
    }
    case OperatorFamily::kDate: {
      auto date = ParseDateMillis(value);
      if (!date.ok()) return std::nullopt;
      return Compare(op.test, *date, policy.date_millis);
    }
    case OperatorFamily::kBool: {
      auto b = ParseBool(value);
      if (!b.ok()) return std::nullopt;
      return *b == policy.boolean;
    }
    case OperatorFamily::kBinary:
      return value == policy.raw;
    case OperatorFamily::kIp: {
      std::optional<Cidr> address = ParseIpAddress(value);
      if (!address) return std::nullopt;
      return CidrContains(policy.cidr, *address);
    }
    case OperatorFamily::kNull:
      return false;  // handled by the caller
  }
  return false;
}

// Whether a request value passes the operator's (possibly negated) test against all values.
std::optional<bool> ValuePasses(const CompiledCondition& c, const std::string& value,
                                const RequestContext& request) {
  bool any = false;
  for (const CompiledValue& policy : c.values) {
    std::optional<bool> m = BaseMatch(c.op, value, policy, request);
    if (!m) return std::nullopt;
    if (*m) {
      any = true;
      break;
    }
  }
  return c.op.negated ? !any : any;
}

std::optional<bool> ClauseMatches(const CompiledCondition& c, const RequestContext& request) {
  const KeyView kv = Lookup(request, c.key);
  if (c.op.family == OperatorFamily::kNull) {
    const bool has_value = kv.present && !kv.values.empty() && !(!kv.multi && kv.values[0].empty());
    for (const CompiledValue& v : c.values) {
      if (v.boolean ? !has_value : has_value) return true;
    }
    return false;
  }
  switch (c.op.set) {
    case SetQualifier::kNone:
      if (!kv.present) return c.op.if_exists || c.op.negated;
      // A plain operator needs a set qualifier to look at a multivalued key.
      if (kv.multi) return false;
      return ValuePasses(c, kv.values[0], request);
    case SetQualifier::kForAllValues:
      if (!kv.present || kv.values.empty()) return true;
      for (const std::string& value : kv.values) {
        std::optional<bool> pass = ValuePasses(c, value, request);
        if (!pass) return std::nullopt;
        if (!*pass) return false;
      }
      return true;
    case SetQualifier::kForAnyValue:
      if (!kv.present || kv.values.empty()) return false;  // IfExists does not change this
      for (const std::string& value : kv.values) {
        std::optional<bool> pass = ValuePasses(c, value, request);
        if (!pass) return std::nullopt;
        if (*pass) return true;
      }
      return false;
  }
  return false;
}

bool ActionMatches(const CompiledStatement& st, std::string_view action_lower) {
  bool any = false;
  for (std::size_t i = 0; i < st.actions.size(); ++i) {
    const std::string& pattern = st.actions[i];
    if (st.action_is_glob[i] ? GlobMatch(pattern, action_lower, false) : pattern == action_lower) {
      any = true;
      break;
    }
  }
  return st.not_action ? !any : any;
}

enum class ResourceMatch { kNo, kYes, kUnresolved };  // kUnresolved: a variable has no value

ResourceMatch OneResourceMatches(const CompiledResource& r,
                                 const std::optional<std::array<std::string_view, 6>>& arn,
                                 const RequestContext& request) {
  if (r.any) return ResourceMatch::kYes;
  if (!arn) return ResourceMatch::kNo;  // an ARN pattern never matches "*" or a non-ARN resource
  if (!(*arn)[5].starts_with(r.resource_prefix)) return ResourceMatch::kNo;
  for (std::size_t i = 0; i < 4; ++i) {
    const bool match = r.head_is_glob[i] ? GlobMatch(r.head[i], (*arn)[i + 1], true)
                                         : EqualsIgnoreCase(r.head[i], (*arn)[i + 1]);
    if (!match) return ResourceMatch::kNo;
  }
  const std::string* pattern = PlainText(r.resource);
  if (pattern != nullptr) {
    return GlobMatch(*pattern, (*arn)[5], false) ? ResourceMatch::kYes : ResourceMatch::kNo;
  }
  std::optional<std::string> rendered = Render(r.resource, request, true);
  if (rendered) {
    return GlobMatch(*rendered, (*arn)[5], false) ? ResourceMatch::kYes : ResourceMatch::kNo;
  }
  // A variable has no value. If the text before it already rules the resource out, whatever the
  // value, the answer is a plain no; otherwise it is unknown.
  std::string prefix;
  for (const TemplatePart& part : r.resource.parts) {
    if (part.is_variable) break;
    prefix += part.literal_escape ? GlobEscape(part.text) : part.text;
  }
  prefix += '*';
  return GlobMatch(prefix, (*arn)[5], false) ? ResourceMatch::kUnresolved : ResourceMatch::kNo;
}

// An entry whose variable has no value matches nothing (§1.6). Under NotResource that leaves the
// request's membership unknown, and the statement fails closed: a Deny applies, an Allow does not.
bool ResourceMatches(const CompiledStatement& st, const RequestContext& request,
                     const std::optional<std::array<std::string_view, 6>>& arn) {
  if (!st.has_resource) return true;
  bool unresolved = false;
  for (const CompiledResource& r : st.resources) {
    const ResourceMatch m = OneResourceMatches(r, arn, request);
    if (m == ResourceMatch::kYes) return !st.not_resource;
    unresolved = unresolved || m == ResourceMatch::kUnresolved;
  }
  if (!st.not_resource) return false;
  return !unresolved || st.effect == Effect::kDeny;
}

// How a resource-policy statement's Principal names the caller, weakest first.
// kEveryone ("*") stands on its own against a boundary but, unlike a grant naming the session
// itself, not against a session policy.
enum class Grant { kNone, kAccount, kIssuer, kEveryone, kFull };

Grant PrincipalGrant(const CompiledStatement& st, const RequestContext& request) {
  Grant best = Grant::kNone;
  const bool anonymous = request.principal_kind == PrincipalKind::kAnonymous;
  for (const PrincipalEntry& p : st.principals) {
    Grant g = Grant::kNone;
    if (p.type == "*" || (p.type == "AWS" && p.value == "*")) {
      g = Grant::kEveryone;
    } else if (anonymous) {
      g = Grant::kNone;
    } else if (p.type == "AWS") {
      const bool root_arn = p.value.size() > 5 && p.value.ends_with(":root");
      std::string_view account = p.value;
      if (root_arn) {
        auto segments = SplitArn(p.value);
        account = segments ? (*segments)[4] : std::string_view();
        if (segments && (*segments)[2] != "iam") account = {};
      }
      if (p.value == request.principal_arn) {
        const bool limited = request.principal_kind == PrincipalKind::kRole;
        g = limited ? Grant::kIssuer : Grant::kFull;
      } else if (!request.issuer_arn.empty() && p.value == request.issuer_arn) {
        g = Grant::kIssuer;
      } else if ((root_arn || account.size() == 12) && !account.empty() &&
                 account == request.principal_account) {
        g = Grant::kAccount;
      }
    } else if (p.value == request.principal_arn) {
      g = Grant::kFull;  // Service, Federated, CanonicalUser: exact name
    }
    best = std::max(best, g);
  }
  return best;
}

struct LayerResult {
  std::vector<StatementRef> allows;
  std::vector<StatementRef> denies;
  Grant grant = Grant::kNone;  // resource policy: the strongest grant among its allows
  std::string error;
};

void EvaluatePolicy(const CompiledPolicy& policy, Layer layer, const RequestContext& request,
                    std::string_view action_lower, std::string_view service,
                    const std::optional<std::array<std::string_view, 6>>& arn, bool has_boundary,
                    LayerResult& out) {
  policy.ForEachCandidate(service, action_lower, [&](const CompiledStatement& st) {
    if (!ActionMatches(st, action_lower) || !ResourceMatches(st, request, arn)) return;
    Grant grant = Grant::kFull;
    if (layer == Layer::kResource) {
      grant = PrincipalGrant(st, request);
      if (st.not_principal) {
        // Deny + NotPrincipal always denies a principal with a boundary (§1.3).
        const bool applies = grant == Grant::kNone || (st.effect == Effect::kDeny && has_boundary);
        if (!applies) return;
        // "Everyone except ...": a Deny applies as it would to anyone. An Allow names the caller
        // among everyone not listed: like "*" for a session or user, and for a role acting
        // directly like a grant to the role's own ARN, which its boundary limits (§1.2 step 4).
        grant = request.principal_kind == PrincipalKind::kRole ? Grant::kIssuer : Grant::kEveryone;
      } else if (grant == Grant::kNone) {
        return;
      }
    }
    std::optional<bool> conditions = ConditionsMatch(st, request);
    if (!conditions) {
      if (out.error.empty()) {
        out.error = "cannot evaluate the condition of " + policy.name() + " " + st.Label();
      }
      return;
    }
    if (!*conditions) return;
    StatementRef ref{.layer = layer, .policy = policy.name(), .index = st.index, .sid = st.sid};
    if (st.effect == Effect::kDeny) {
      out.denies.push_back(std::move(ref));
    } else {
      out.allows.push_back(std::move(ref));
      out.grant = std::max(out.grant, grant);
    }
  });
}

void Append(std::vector<StatementRef>& to, const std::vector<StatementRef>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

EvaluationResult Implicit(Layer layer) {
  EvaluationResult r;
  r.decision = Decision::kImplicitlyDenied;
  r.missing_allow = layer;
  return r;
}

}  // namespace

void ContextKeys::Set(std::string_view key, std::string value) {
  values_[AsciiLower(key)] = ContextValue{.values = {std::move(value)}, .multi = false};
}

void ContextKeys::SetMulti(std::string_view key, std::vector<std::string> values) {
  values_[AsciiLower(key)] = ContextValue{.values = std::move(values), .multi = true};
}

void ContextKeys::Erase(std::string_view key) { values_.erase(AsciiLower(key)); }

const ContextValue* ContextKeys::FindLower(std::string_view lower_key) const {
  auto it = values_.find(lower_key);
  return it == values_.end() ? nullptr : &it->second;
}

std::optional<bool> ConditionsMatch(const CompiledStatement& statement,
                                    const RequestContext& request) {
  for (const CompiledCondition& c : statement.conditions) {
    std::optional<bool> m = ClauseMatches(c, request);
    if (!m) return std::nullopt;
    if (!*m) return false;
  }
  return true;
}

EvaluationResult Evaluate(const RequestContext& request, const PolicySet& policies) {
  // The lowered action lives on the stack unless it is unusually long (no allocation per call).
  std::array<char, 128> action_buffer;
  std::string action_heap;
  std::string_view action_lower;
  if (request.action.size() <= action_buffer.size()) {
    std::transform(request.action.begin(), request.action.end(), action_buffer.begin(), [](char c) {
      return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    action_lower = std::string_view(action_buffer.data(), request.action.size());
  } else {
    action_heap = AsciiLower(request.action);
    action_lower = action_heap;
  }
  const std::string_view service = action_lower.substr(0, action_lower.find(':'));
  const std::optional<std::array<std::string_view, 6>> arn =
      request.resource == "*" ? std::nullopt : SplitArn(request.resource);
  const bool has_boundary = policies.boundary != nullptr;

  LayerResult identity, boundary, session, resource;
  std::vector<LayerResult> guardrails(policies.guardrails.size());
  auto run = [&](const CompiledPolicyPtr& p, Layer layer, LayerResult& out) {
    if (p != nullptr) {
      EvaluatePolicy(*p, layer, request, action_lower, service, arn, has_boundary, out);
    }
  };
  for (const CompiledPolicyPtr& p : policies.identity) run(p, Layer::kIdentity, identity);
  run(policies.boundary, Layer::kBoundary, boundary);
  run(policies.session, Layer::kSession, session);
  run(policies.resource, Layer::kResource, resource);
  for (std::size_t i = 0; i < policies.guardrails.size(); ++i) {
    for (const CompiledPolicyPtr& p : policies.guardrails[i]) {
      run(p, Layer::kGuardrail, guardrails[i]);
    }
  }

  // 1. Explicit deny anywhere wins.
  EvaluationResult result;
  const std::array<const LayerResult*, 4> layers = {&identity, &boundary, &session, &resource};
  for (const LayerResult* layer : layers) Append(result.statements, layer->denies);
  for (const LayerResult& g : guardrails) Append(result.statements, g.denies);
  const std::string* error = nullptr;
  for (const LayerResult* layer : layers) {
    if (error == nullptr && !layer->error.empty()) error = &layer->error;
  }
  for (const LayerResult& g : guardrails) {
    if (error == nullptr && !g.error.empty()) error = &g.error;
  }
  if (error != nullptr) {
    // Fail closed: a condition that cannot be evaluated denies the request.
    EvaluationResult failed;
    failed.decision = Decision::kImplicitlyDenied;
    failed.statements = std::move(result.statements);
    failed.error = *error;
    if (!failed.statements.empty()) failed.decision = Decision::kExplicitlyDenied;
    return failed;
  }
  if (!result.statements.empty()) {
    result.decision = Decision::kExplicitlyDenied;
    return result;
  }

  // 2-3. Guardrails: every level must allow.
  for (const LayerResult& level : guardrails) {
    if (level.allows.empty()) return Implicit(Layer::kGuardrail);
  }

  const bool session_principal = request.principal_kind == PrincipalKind::kRoleSession ||
                                 request.principal_kind == PrincipalKind::kFederatedUser;
  const bool boundary_ok = !has_boundary || !boundary.allows.empty();
  const bool session_ok =
      !session_principal ||
      (policies.session != nullptr ? !session.allows.empty()
                                   : request.principal_kind == PrincipalKind::kRoleSession);
  const bool resource_grants = !resource.allows.empty();
  const bool same_account =
      request.resource_account.empty() || request.resource_account == request.principal_account;

  if (policies.resource_policy_must_allow && !resource_grants) return Implicit(Layer::kResource);

  auto allowed = [&](bool with_resource, bool with_identity) {
    EvaluationResult r;
    r.decision = Decision::kAllowed;
    if (with_resource) Append(r.statements, resource.allows);
    if (with_identity) Append(r.statements, identity.allows);
    if (has_boundary) Append(r.statements, boundary.allows);
    if (session_principal && policies.session != nullptr) Append(r.statements, session.allows);
    for (const LayerResult& g : guardrails) Append(r.statements, g.allows);
    return r;
  };

  if (request.principal_kind == PrincipalKind::kAnonymous) {
    if (resource.grant < Grant::kEveryone) return Implicit(Layer::kResource);
    return allowed(true, false);
  }

  // The account root user has full access in its own account; only deny and guardrails apply.
  if (request.principal_kind == PrincipalKind::kAccountRoot && same_account) {
    return allowed(false, true);
  }

  if (!same_account) {
    // Both accounts must allow: the resource policy, and the principal's whole identity side.
    if (!resource_grants) return Implicit(Layer::kResource);
    if (identity.allows.empty()) return Implicit(Layer::kIdentity);
    if (!boundary_ok) return Implicit(Layer::kBoundary);
    if (!session_ok) return Implicit(Layer::kSession);
    return allowed(true, true);
  }

  // 4. Same account: a grant naming the caller itself (session, user) is enough; one to everyone
  // is enough unless a session policy withholds the action.
  if (resource.grant == Grant::kFull ||
      (resource.grant == Grant::kEveryone && (policies.session == nullptr || session_ok))) {
    EvaluationResult r;
    r.decision = Decision::kAllowed;
    r.statements = resource.allows;
    for (const LayerResult& g : guardrails) Append(r.statements, g.allows);
    return r;
  }
  if (resource.grant == Grant::kEveryone) return Implicit(Layer::kSession);
  // 5. A grant to the issuing role stands in for the identity policy; one to the account does not.
  const bool issuer_grant = resource.grant == Grant::kIssuer;
  if (!issuer_grant && identity.allows.empty()) return Implicit(Layer::kIdentity);
  // 6-7. Boundary and session policy intersect.
  if (!boundary_ok) return Implicit(Layer::kBoundary);
  if (!session_ok) return Implicit(Layer::kSession);
  return allowed(issuer_grant, true);
}

std::string_view DecisionName(Decision decision) {
  switch (decision) {
    case Decision::kAllowed:
      return "Allowed";
    case Decision::kExplicitlyDenied:
      return "ExplicitlyDenied";
    case Decision::kImplicitlyDenied:
      return "ImplicitlyDenied";
  }
  return "ImplicitlyDenied";
}

std::string_view LayerName(Layer layer) {
  switch (layer) {
    case Layer::kIdentity:
      return "identity-based policy";
    case Layer::kBoundary:
      return "permissions boundary";
    case Layer::kSession:
      return "session policy";
    case Layer::kResource:
      return "resource-based policy";
    case Layer::kGuardrail:
      return "guardrail policy";
  }
  return "policy";
}

std::string EvaluationResult::Message(const RequestContext& request) const {
  const std::string who = request.principal_arn.empty() ? "anonymous" : request.principal_arn;
  const std::string what = request.action + " on resource: " + request.resource;
  if (decision == Decision::kAllowed) {
    return "User: " + who + " is authorized to perform: " + what;
  }
  std::string out = "User: " + who + " is not authorized to perform: " + what;
  if (!error.empty()) return out + " because the policy could not be evaluated (" + error + ")";
  if (decision == Decision::kExplicitlyDenied && !statements.empty()) {
    const Layer layer = statements.front().layer;
    const std::string_view name = LayerName(layer);
    const bool vowel = name.front() == 'i';
    return out + " with an explicit deny in " + (vowel ? "an " : "a ") + std::string(name);
  }
  if (missing_allow) {
    return out + " because no " + std::string(LayerName(*missing_allow)) + " allows the " +
           request.action + " action";
  }
  return out;
}

core::Result<PrincipalInfo> ClassifyPrincipal(std::string_view principal) {
  if (!principal.starts_with("arn:")) {
    if (principal.ends_with(".amazonaws.com") && principal.size() > 14) {
      return PrincipalInfo{.kind = PrincipalKind::kService};
    }
    return core::InvalidArgumentError("'" + std::string(principal) +
                                      "' is neither an ARN nor a service principal");
  }
  ASSIGN_OR_RETURN(const core::Arn arn, core::Arn::Parse(principal));
  PrincipalInfo info{.account = arn.account};
  const std::string_view type = arn.ResourceType();
  const std::string_view id = arn.ResourceId();
  if (arn.service == "iam" && arn.resource == "root") {
    info.kind = PrincipalKind::kAccountRoot;
  } else if (arn.service == "iam" && type == "user" && !id.empty()) {
    info.kind = PrincipalKind::kUser;
  } else if (arn.service == "iam" && type == "role" && !id.empty()) {
    info.kind = PrincipalKind::kRole;
  } else if (arn.service == "sts" && type == "assumed-role" && id.find('/') != 0 &&
             id.find('/') != std::string_view::npos) {
    info.kind = PrincipalKind::kRoleSession;
    info.issuer_arn = "arn:" + arn.partition + ":iam::" + arn.account + ":role/" +
                      std::string(id.substr(0, id.find('/')));
  } else if (arn.service == "sts" && type == "federated-user" && !id.empty()) {
    info.kind = PrincipalKind::kFederatedUser;
  } else {
    return core::InvalidArgumentError("cannot tell what kind of principal " +
                                      std::string(principal) + " is");
  }
  if (info.account.empty()) {
    return core::InvalidArgumentError("principal " + std::string(principal) + " names no account");
  }
  return info;
}

}  // namespace moatless::policy
