// Differential check of the policy engine: reads the NDJSON cases of generate.mjs (each with the
// decision of an independent IAM simulator), decides every case with moatless, and compares.
//
//   node generate.mjs --seed 7 --count 100000 | policy_diff_check [--show N]
//
// A case is an identity policy list, an optional permissions boundary, session policy, resource
// policy and one guardrail level, and a request (principal ARN, action, resource ARN, context
// keys). Every disagreement fails the run, except those in a recorded divergence class: inputs on
// which the reference (iam-semantics.md §5.1.6) documents that the simulator departs from AWS's
// documented behaviour, which moatless follows. Those are counted and shown, never silently
// dropped. The run also fails if the input ends without the generator's trailer (a generator that
// died) or if a policy the generator wrote does not compile.
//
// Exit status: 0 all agree outside recorded divergences; 1 otherwise; 2 usage.
#include <array>
#include <boost/json.hpp>
#include <cctype>
#include <cstddef>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/case_stream.h"
#include "policy/compiled.h"
#include "policy/evaluator.h"

namespace moatless::policy {
namespace {

namespace json = boost::json;

// Why the oracle's answer on a case is not trusted, or nullopt if it is.
struct Divergence {
  std::string_view name;
  std::string_view reason;
};

constexpr Divergence kVersionGating{
    "variables-outside-2012-10-17",
    "a policy without Version 2012-10-17 uses ${...}: AWS treats it as literal text, the simulator "
    "substitutes it (iam-semantics.md §5.1.6 item 1)"};
constexpr Divergence kEpochDates{"date-epoch-values",
                                 "a Date operator meets an epoch-seconds value: the simulator "
                                 "reads epoch strings as seconds but "
                                 "ISO dates as milliseconds (iam-semantics.md §5.1.6 item 3)"};
constexpr Divergence kSessionArnGrant{
    "session-arn-grant-with-session-policy",
    "the resource policy names the caller's role-session ARN and a session policy is present: the "
    "IAM User Guide says such grants are not limited by the session policy's implicit deny, the "
    "simulator limits them (iam-semantics.md §5.1.6 item 2)"};

constexpr Divergence kResourceTypeWildcard{
    "wildcard-in-resource-type",
    "a Resource/NotResource ARN has a wildcard or variable in its resource-type part (up to the "
    "first '/' or ':' of the resource): AWS calls this incorrect usage, the simulator compares "
    "that "
    "part literally (so a Deny on arn:aws:ec2:*:*:*/* would deny nothing), moatless keeps matching "
    "it "
    "as a wildcard and never lets such a Deny go inert (iam-semantics.md §1.4 'Incorrect wildcard "
    "usage'; docs/policies.md)"};

constexpr Divergence kIpv4PrefixZero{
    "ipv4-prefix-0",
    "an IpAddress/NotIpAddress value is an IPv4 CIDR with prefix /0: the simulator computes the "
    "mask as -1 << 32, which JavaScript reduces to -1 << 0, so 0.0.0.0/0 matches only 0.0.0.0 "
    "(simulator bug; RFC 4632: /0 contains every address)"};
constexpr Divergence kBareIpv4NotIpAddress{
    "bare-ipv4-in-notipaddress",
    "NotIpAddress lists a bare IPv4 address (no prefix) and the request's address is IPv6: the "
    "simulator answers false, though it answers true for the same address written /32; AWS reads a "
    "bare address as /32 (IAM User Guide, IP address condition operators)"};
constexpr Divergence kUnresolvedNotResourceDeny{
    "unresolved-variable-in-deny-notresource",
    "a Deny statement's NotResource entry has a variable without value: the entry matches nothing, "
    "so the request cannot be shown to be outside the listed set; moatless fails closed and "
    "applies the Deny, the simulator skips the statement (docs/policies.md)"};

constexpr Divergence kNullOnEmptySet{"null-on-empty-set",
                                     "a Null condition meets a multivalued key whose set is empty: "
                                     "the IAM User Guide counts an empty "
                                     "(null) value as no value, so Null:true holds in moatless; "
                                     "the simulator treats the empty set as "
                                     "present (iam-semantics.md §1.5 'Missing keys')"};
constexpr Divergence kUnresolvedNegated{
    "unresolved-variable-in-negated-condition",
    "a negated String/Arn operator lists a value whose variable has no value: per the IAM User "
    "Guide "
    "that value matches nothing, so moatless lets the other values decide; the simulator makes the "
    "whole condition false"};

bool Contains(std::string_view text, std::string_view needle) {
  return text.find(needle) != std::string_view::npos;
}

bool IsAllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Calls fn(operator, key, values) for every condition of every statement of a policy.
template <typename Fn>
void ForEachCondition(const json::value& policy, Fn&& fn) {
  const json::value* statements = policy.as_object().if_contains("Statement");
  if (statements == nullptr) return;
  auto visit = [&](const json::value& st) {
    if (!st.is_object()) return;
    const json::value* cond = st.as_object().if_contains("Condition");
    if (cond == nullptr || !cond->is_object()) return;
    for (const auto& [op, keys] : cond->as_object()) {
      if (!keys.is_object()) continue;
      for (const auto& [key, values] : keys.as_object()) fn(op, key, values);
    }
  };
  if (statements->is_array()) {
    for (const json::value& st : statements->as_array()) visit(st);
  } else {
    visit(*statements);
  }
}

// True if an ARN pattern has '*', '?' or '${' in the part of its resource segment that the
// simulator treats as the literal resource type: up to and including the first '/' or ':' (none for
// S3 ARNs without region and account).
bool ResourceTypeHasWildcard(std::string_view pattern) {
  std::size_t pos = 0;
  std::array<std::string_view, 6> segments;
  for (int i = 0; i < 5; ++i) {
    const std::size_t colon = pattern.find(':', pos);
    if (colon == std::string_view::npos) return false;
    segments[i] = pattern.substr(pos, colon - pos);
    pos = colon + 1;
  }
  segments[5] = pattern.substr(pos);
  if (segments[2] == "s3" && segments[3].empty() && segments[4].empty()) return false;
  const std::size_t sep = segments[5].find_first_of("/:");
  if (sep == std::string_view::npos) return false;
  return segments[5].substr(0, sep + 1).find_first_of("*?$") != std::string_view::npos;
}

// Calls fn(pattern) for every Resource and NotResource entry of a policy.
template <typename Fn>
void ForEachResource(const json::value& policy, Fn&& fn) {
  const json::value* statements = policy.as_object().if_contains("Statement");
  if (statements == nullptr) return;
  auto visit = [&](const json::value& st) {
    if (!st.is_object()) return;
    for (const char* element : {"Resource", "NotResource"}) {
      const json::value* v = st.as_object().if_contains(element);
      if (v == nullptr) continue;
      if (v->is_string()) fn(std::string_view(v->as_string()));
      if (v->is_array()) {
        for (const json::value& e : v->as_array()) {
          if (e.is_string()) fn(std::string_view(e.as_string()));
        }
      }
    }
  };
  if (statements->is_array()) {
    for (const json::value& st : statements->as_array()) visit(st);
  } else {
    visit(*statements);
  }
}

// True if a Deny statement of the policy has a NotResource entry with a variable (no default) that
// the request does not provide.
bool DenyNotResourceUnresolved(const json::value& policy, const RequestContext& request) {
  const json::value* statements = policy.as_object().if_contains("Statement");
  if (statements == nullptr) return false;
  auto unresolved = [&](std::string_view entry) {
    for (std::size_t at = entry.find("${"); at != std::string_view::npos;
         at = entry.find("${", at + 2)) {
      const std::size_t end = entry.find('}', at);
      if (end == std::string_view::npos) return false;
      const std::string_view key = entry.substr(at + 2, end - at - 2);
      if (key == "*" || key == "?" || key == "$" || Contains(key, ",")) continue;
      std::string lower(key);
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (request.context.FindLower(lower) == nullptr) return true;
    }
    return false;
  };
  auto visit = [&](const json::value& st) {
    if (!st.is_object() || st.as_object().if_contains("Effect") == nullptr ||
        st.at("Effect") != "Deny") {
      return false;
    }
    const json::value* v = st.as_object().if_contains("NotResource");
    if (v == nullptr) return false;
    if (v->is_string()) return unresolved(v->as_string());
    for (const json::value& e : v->as_array()) {
      if (e.is_string() && unresolved(e.as_string())) return true;
    }
    return false;
  };
  if (statements->is_array()) {
    for (const json::value& st : statements->as_array()) {
      if (visit(st)) return true;
    }
    return false;
  }
  return visit(*statements);
}

std::vector<const json::value*> AllPolicies(const json::object& c) {
  std::vector<const json::value*> out;
  for (const json::value& p : c.at("identity").as_array()) out.push_back(&p.at("policy"));
  for (const char* k : {"boundary", "session", "resource"}) {
    if (const json::value* p = c.if_contains(k)) out.push_back(p);
  }
  for (const json::value& p : c.at("guardrails").as_array()) out.push_back(&p);
  return out;
}

std::optional<Divergence> Classify(const json::object& c, const RequestContext& request) {
  for (const json::value* p : AllPolicies(c)) {
    const json::value* version = p->as_object().if_contains("Version");
    const bool modern =
        version != nullptr && version->is_string() && version->as_string() == "2012-10-17";
    if (!modern && Contains(json::serialize(*p), "${")) return kVersionGating;
  }
  for (const json::value* p : AllPolicies(c)) {
    bool epoch = false;
    ForEachCondition(*p, [&](std::string_view op, std::string_view key, const json::value& values) {
      if (!Contains(op, "Date")) return;
      auto check = [&](const json::value& v) {
        if (v.is_string() && IsAllDigits(v.as_string())) epoch = true;
      };
      if (values.is_array()) {
        for (const json::value& v : values.as_array()) check(v);
      } else {
        check(values);
      }
      std::string lower(key);
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (const ContextValue* v = request.context.FindLower(lower)) {
        for (const std::string& s : v->values) epoch = epoch || IsAllDigits(s);
      }
    });
    if (epoch) return kEpochDates;
  }
  for (const json::value* p : AllPolicies(c)) {
    if (DenyNotResourceUnresolved(*p, request)) return kUnresolvedNotResourceDeny;
    bool null_empty = false;
    bool negated_unresolved = false;
    ForEachCondition(*p, [&](std::string_view op, std::string_view key, const json::value& values) {
      std::string lower(key);
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      const ContextValue* v = request.context.FindLower(lower);
      if (op == "Null" && v != nullptr && v->multi && v->values.empty()) null_empty = true;
      if (!Contains(op, "Not") || Contains(op, "IpAddress")) return;
      const std::string text = json::serialize(values);
      for (std::size_t at = text.find("${"); at != std::string::npos;
           at = text.find("${", at + 2)) {
        const std::size_t end = text.find('}', at);
        if (end == std::string::npos) break;
        std::string var = text.substr(at + 2, end - at - 2);
        if (var == "*" || var == "?" || var == "$" || Contains(var, ",")) continue;
        for (char& ch : var) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (request.context.FindLower(var) == nullptr) negated_unresolved = true;
      }
    });
    if (null_empty) return kNullOnEmptySet;
    if (negated_unresolved) return kUnresolvedNegated;
  }
  for (const json::value* p : AllPolicies(c)) {
    bool prefix_zero = false;
    bool bare_v4 = false;
    ForEachCondition(*p, [&](std::string_view op, std::string_view key, const json::value& values) {
      if (!Contains(op, "IpAddress")) return;
      std::string lower(key);
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      const ContextValue* request_value = request.context.FindLower(lower);
      const bool request_v6 = request_value != nullptr && !request_value->values.empty() &&
                              Contains(request_value->values[0], ":");
      auto check = [&](const json::value& v) {
        if (!v.is_string()) return;
        const std::string_view cidr = v.as_string();
        if (Contains(cidr, ".") && cidr.ends_with("/0")) prefix_zero = true;
        if (op.starts_with("NotIpAddress") && Contains(cidr, ".") && !Contains(cidr, "/") &&
            request_v6) {
          bare_v4 = true;
        }
      };
      if (values.is_array()) {
        for (const json::value& v : values.as_array()) check(v);
      } else {
        check(values);
      }
    });
    if (prefix_zero) return kIpv4PrefixZero;
    if (bare_v4) return kBareIpv4NotIpAddress;
  }
  for (const json::value* p : AllPolicies(c)) {
    bool wildcard = false;
    ForEachResource(*p,
                    [&](std::string_view r) { wildcard = wildcard || ResourceTypeHasWildcard(r); });
    if (wildcard) return kResourceTypeWildcard;
  }
  if (c.contains("session") && c.contains("resource") &&
      request.principal_kind == PrincipalKind::kRoleSession &&
      Contains(json::serialize(c.at("resource")), "\"" + request.principal_arn + "\"")) {
    return kSessionArnGrant;
  }
  return std::nullopt;
}

struct Stats {
  std::size_t cases = 0;
  std::size_t agreed = 0;
  std::map<std::string, std::size_t> by_decision;  // agreed cases by decision
  std::map<std::string_view, std::size_t> divergences;
  std::size_t mismatches = 0;
  std::size_t errors = 0;  // cases moatless could not even load
};

core::Result<CompiledPolicyPtr> Compile(const json::value& policy, std::string name,
                                        PolicyType type) {
  return CompiledPolicy::FromJson(json::serialize(policy), std::move(name), {.type = type});
}

// Builds the request and policy set of a case; an error names what moatless rejected.
core::Status Load(const json::object& c, RequestContext* request, PolicySet* set) {
  const json::object& r = c.at("request").as_object();
  request->principal_arn = std::string(r.at("principal").as_string());
  ASSIGN_OR_RETURN(const PrincipalInfo info, ClassifyPrincipal(request->principal_arn));
  request->principal_kind = info.kind;
  request->principal_account = info.account;
  request->issuer_arn = info.issuer_arn;
  request->action = std::string(r.at("action").as_string());
  request->resource = std::string(r.at("resource").as_string());
  request->resource_account = std::string(r.at("resourceAccount").as_string());
  for (const auto& [key, value] : r.at("context").as_object()) {
    if (value.is_array()) {
      std::vector<std::string> values;
      for (const json::value& v : value.as_array()) values.emplace_back(v.as_string());
      request->context.SetMulti(key, std::move(values));
    } else {
      request->context.Set(key, std::string(value.as_string()));
    }
  }
  for (const json::value& p : c.at("identity").as_array()) {
    ASSIGN_OR_RETURN(
        CompiledPolicyPtr compiled,
        Compile(p.at("policy"), std::string(p.at("name").as_string()), PolicyType::kIdentity));
    set->identity.push_back(std::move(compiled));
  }
  if (const json::value* p = c.if_contains("boundary")) {
    ASSIGN_OR_RETURN(set->boundary, Compile(*p, "boundary", PolicyType::kBoundary));
  }
  if (const json::value* p = c.if_contains("session")) {
    ASSIGN_OR_RETURN(set->session, Compile(*p, "session", PolicyType::kSession));
  }
  if (const json::value* p = c.if_contains("resource")) {
    ASSIGN_OR_RETURN(set->resource, Compile(*p, "resource", PolicyType::kResource));
  }
  const json::array& guardrails = c.at("guardrails").as_array();
  if (!guardrails.empty()) {
    std::vector<CompiledPolicyPtr> level;
    for (std::size_t i = 0; i < guardrails.size(); ++i) {
      ASSIGN_OR_RETURN(
          CompiledPolicyPtr compiled,
          Compile(guardrails[i], "guardrail-" + std::to_string(i), PolicyType::kGuardrail));
      level.push_back(std::move(compiled));
    }
    set->guardrails.push_back(std::move(level));
  }
  return core::Status::Ok();
}

int Run(int show) {
  Stats stats;
  std::map<std::string_view, int> shown_divergences;
  int shown = 0;
  testing::CaseStream input(std::cin, "policy_diff_check");
  std::string line;
  while (const std::optional<json::object> next = input.Next(line)) {
    const json::object& c = *next;
    ++stats.cases;
    const std::string oracle(c.at("oracle").as_string());
    RequestContext request;
    PolicySet set;
    if (core::Status loaded = Load(c, &request, &set); !loaded.ok()) {
      ++stats.errors;
      if (shown++ < show) {
        std::cout << "REJECTED case " << c.at("id") << ": " << loaded.ToString() << "\n  " << line
                  << "\n";
      }
      continue;
    }
    const EvaluationResult result = Evaluate(request, set);
    const std::string mine(DecisionName(result.decision));
    if (mine == oracle) {
      ++stats.agreed;
      ++stats.by_decision[mine];
      continue;
    }
    if (const auto divergence = Classify(c, request)) {
      ++stats.divergences[divergence->name];
      if (shown_divergences[divergence->name]++ < 2) {
        std::cout << "known divergence " << divergence->name << " (case " << c.at("id")
                  << "): moatless " << mine << ", simulator " << oracle << "\n";
      }
      continue;
    }
    ++stats.mismatches;
    if (shown++ < show) {
      std::cout << "MISMATCH case " << c.at("id") << " (" << c.at("kind").as_string()
                << "): moatless " << mine << ", simulator " << oracle
                << "\n  moatless says: " << result.Message(request)
                << (result.error.empty() ? "" : " [" + result.error + "]")
                << "\n  moatless's deciding statements:";
      for (const StatementRef& ref : result.statements) {
        std::cout << " " << LayerName(ref.layer) << " " << ref.policy << " #" << ref.index;
      }
      std::cout << "\n  " << line << "\n";
    }
  }
  std::cout << "policy differential: " << stats.cases << " cases, " << stats.agreed << " agree (";
  const char* sep = "";
  for (const auto& [decision, n] : stats.by_decision) {
    std::cout << sep << n << " " << decision;
    sep = ", ";
  }
  std::cout << "), " << stats.mismatches << " disagree, " << stats.errors
            << " not loadable by moatless\n";
  for (const Divergence& d :
       {kVersionGating, kEpochDates, kSessionArnGrant, kResourceTypeWildcard, kIpv4PrefixZero,
        kBareIpv4NotIpAddress, kUnresolvedNotResourceDeny, kNullOnEmptySet, kUnresolvedNegated}) {
    std::cout << "  recorded divergence " << d.name << ": " << stats.divergences[d.name]
              << " cases; " << d.reason << "\n";
  }
  if (!input.Complete()) return 1;
  return stats.mismatches == 0 && stats.errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace moatless::policy

int main(int argc, char** argv) {
  int show = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--show" && i + 1 < argc) {
      show = std::atoi(argv[++i]);
    } else {
      std::cerr << "usage: generate.mjs ... | policy_diff_check [--show N]\n";
      return 2;
    }
  }
  return moatless::policy::Run(show);
}
