#include "secrets/resource_policy.h"

#include <algorithm>
#include <boost/json.hpp>

#include "policy/parser.h"

namespace moatless::secrets {
namespace {

// Condition keys whose fixed value limits a wildcard principal to known callers.
bool PinsTheCaller(const policy::ConditionClause& clause) {
  std::string key = clause.key;
  std::transform(key.begin(), key.end(), key.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool pinning_key = key == "aws:principalaccount" || key == "aws:principalarn" ||
                           key == "aws:principalorgid" || key == "aws:sourceaccount" ||
                           key == "aws:sourcearn" || key == "aws:userid";
  const bool exact = clause.op == "StringEquals" || clause.op == "ArnEquals" ||
                     clause.op == "StringEqualsIgnoreCase";
  const bool wildcard = std::any_of(clause.values.begin(), clause.values.end(), [](const auto& v) {
    return v.find_first_of("*?") != std::string::npos;
  });
  return pinning_key && exact && !wildcard;
}

bool IsPublic(const policy::Statement& statement) {
  if (statement.effect != policy::Effect::kAllow) return false;
  const bool everyone = statement.not_principal ||
                        std::any_of(statement.principals.begin(), statement.principals.end(),
                                    [](const policy::PrincipalEntry& p) {
                                      return p.value == "*" && (p.type == "*" || p.type == "AWS");
                                    });
  if (!everyone) return false;
  return !std::any_of(statement.conditions.begin(), statement.conditions.end(), PinsTheCaller);
}

}  // namespace

core::Result<PolicyReview> ReviewResourcePolicy(std::string_view document) {
  boost::system::error_code ec;
  const boost::json::value parsed = boost::json::parse(document, ec);
  if (ec || !parsed.is_object()) {
    return core::InvalidArgumentError(
               "This resource policy contains a syntax error: it is not a "
               "JSON object.")
        .WithAwsType("MalformedPolicyDocumentException");
  }
  PolicyReview review;
  auto policy = policy::ParsePolicy(document, {.type = policy::PolicyType::kResource});
  if (!policy.ok()) {
    review.failures.push_back(
        PolicyCheck{.check = "SYNTAX_CHECK", .message = policy.status().message()});
    return review;
  }
  for (std::size_t i = 0; i < policy->statements.size(); ++i) {
    if (!IsPublic(policy->statements[i])) continue;
    review.is_public = true;
    const auto& sid = policy->statements[i].sid;
    review.failures.push_back(PolicyCheck{
        .check = "PUBLIC_ACCESS_CHECK",
        .message = "statement " + std::to_string(i) + (sid ? " (Sid \"" + *sid + "\")" : "") +
                   " allows every principal: this resource policy grants public access"});
  }
  return review;
}

}  // namespace moatless::secrets
