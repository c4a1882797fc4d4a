#include "manifest/boundary.h"

#include <algorithm>
#include <boost/json.hpp>

#include "manifest/manifest.h"
#include "policy/matching.h"
#include "policy/parser.h"

namespace moatless::manifest {
namespace {

// ${...} stands for whatever the request's context holds: any text.
std::string VariablesAsWildcards(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    if (text.substr(i, 2) == "${") {
      const std::size_t end = text.find('}', i);
      if (end != std::string_view::npos) {
        out += '*';
        i = end + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

bool AnyIntersects(const std::vector<std::string>& patterns, const std::string& value,
                   bool case_insensitive) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
    std::string pattern = VariablesAsWildcards(p);
    return case_insensitive ? GlobsIntersect(policy::AsciiLower(pattern), value)
                            : GlobsIntersect(pattern, value);
  });
}

}  // namespace

std::string DefaultBoundary(std::string_view account_id, std::string_view app,
                            std::string_view stage) {
  const std::string account(account_id);
  const std::string prefix = QualifiedFunctionName(app, stage, "");  // APP_STAGE_
  boost::json::array statements;
  statements.push_back(boost::json::object{
      {"Sid", "OwnSecrets"},
      {"Effect", "Allow"},
      {"Action", "secretsmanager:*"},
      {"Resource",
       "arn:aws:secretsmanager:*:" + account + ":secret:" + QualifiedSecretName(app, stage, "*")}});
  statements.push_back(boost::json::object{
      {"Sid", "OwnFunctions"},
      {"Effect", "Allow"},
      {"Action", "lambda:*"},
      {"Resource", "arn:aws:lambda:*:" + account + ":function:" + prefix + "*"}});
  statements.push_back(
      boost::json::object{{"Sid", "OwnQueues"},
                          {"Effect", "Allow"},
                          {"Action", "sqs:*"},
                          {"Resource", "arn:aws:sqs:*:" + account + ":" + prefix + "*"}});
  // Random passwords (rotation functions make them) touch no resource.
  statements.push_back(boost::json::object{{"Sid", "RandomPasswords"},
                                           {"Effect", "Allow"},
                                           {"Action", "secretsmanager:GetRandomPassword"},
                                           {"Resource", "*"}});
  statements.push_back(boost::json::object{{"Sid", "WhoAmI"},
                                           {"Effect", "Allow"},
                                           {"Action", "sts:GetCallerIdentity"},
                                           {"Resource", "*"}});
  return boost::json::serialize(
      boost::json::object{{"Version", "2012-10-17"}, {"Statement", std::move(statements)}});
}

bool GlobsIntersect(std::string_view a, std::string_view b) {
  // A search over pairs (i, j): some string matches a[0..i) and b[0..j) at once.
  const std::size_t n = a.size();
  const std::size_t m = b.size();
  std::vector<char> seen((n + 1) * (m + 1), 0);
  std::vector<std::pair<std::size_t, std::size_t>> stack{{0, 0}};
  auto push = [&](std::size_t i, std::size_t j) {
    char& s = seen[i * (m + 1) + j];
    if (!s) {
      s = 1;
      stack.emplace_back(i, j);
    }
  };
  seen[0] = 1;
  while (!stack.empty()) {
    const auto [i, j] = stack.back();
    stack.pop_back();
    if (i == n && j == m) return true;
    if (i < n && a[i] == '*') {
      push(i + 1, j);             // the star matches nothing more
      if (j < m) push(i, j + 1);  // the star takes what b's next element produces
    }
    if (j < m && b[j] == '*') {
      push(i, j + 1);
      if (i < n) push(i + 1, j);
    }
    if (i < n && j < m && a[i] != '*' && b[j] != '*' &&
        (a[i] == '?' || b[j] == '?' || a[i] == b[j])) {
      push(i + 1, j + 1);
    }
  }
  return false;
}

core::Result<std::vector<DeadStatement>> DeadStatements(std::string_view policy_json,
                                                        std::string_view boundary_json) {
  ASSIGN_OR_RETURN(const policy::Policy policy, policy::ParsePolicy(policy_json));
  ASSIGN_OR_RETURN(const policy::Policy boundary,
                   policy::ParsePolicy(boundary_json, {.type = policy::PolicyType::kBoundary}));
  boost::system::error_code ec;
  const boost::json::value document = boost::json::parse(policy_json, ec);
  std::vector<DeadStatement> dead;
  for (std::size_t index = 0; index < policy.statements.size(); ++index) {
    const policy::Statement& s = policy.statements[index];
    if (s.effect != policy::Effect::kAllow || s.not_action || s.not_resource) continue;
    bool live = false;
    for (const std::string& raw_action : s.actions) {
      const std::string action = policy::AsciiLower(VariablesAsWildcards(raw_action));
      for (const std::string& raw_resource : s.resources) {
        const std::string resource = VariablesAsWildcards(raw_resource);
        for (const policy::Statement& b : boundary.statements) {
          if (b.effect != policy::Effect::kAllow) continue;
          const bool action_ok = b.not_action || AnyIntersects(b.actions, action, true);
          const bool resource_ok = b.not_resource || AnyIntersects(b.resources, resource, false);
          if (action_ok && resource_ok) live = true;
          if (live) break;
        }
        if (live) break;
      }
      if (live) break;
    }
    if (live) continue;
    DeadStatement d;
    d.index = index;
    if (!ec && document.is_object()) {
      const boost::json::value* statements = document.as_object().if_contains("Statement");
      if (statements != nullptr && statements->is_array() &&
          index < statements->as_array().size()) {
        d.statement = boost::json::serialize(statements->as_array()[index]);
      } else if (statements != nullptr && statements->is_object()) {
        d.statement = boost::json::serialize(*statements);
      }
    }
    dead.push_back(std::move(d));
  }
  return dead;
}

}  // namespace moatless::manifest
