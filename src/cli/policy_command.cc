// `moatless policy check|simulate`: reads policy files, hands them to the policy engine and maps
// the outcome onto text, JSON and exit codes. The engine (src/policy) does all the deciding.
#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "policy/compiled.h"
#include "policy/evaluator.h"
#include "policy/parser.h"

namespace moatless::cli {
namespace {

namespace json = boost::json;

const std::map<std::string, policy::PolicyType>& PolicyTypes() {
  static const std::map<std::string, policy::PolicyType> kTypes = {
      {"identity", policy::PolicyType::kIdentity},   {"boundary", policy::PolicyType::kBoundary},
      {"session", policy::PolicyType::kSession},     {"resource", policy::PolicyType::kResource},
      {"guardrail", policy::PolicyType::kGuardrail}, {"trust", policy::PolicyType::kTrust},
  };
  return kTypes;
}

const std::map<std::string, policy::PrincipalKind>& PrincipalKinds() {
  static const std::map<std::string, policy::PrincipalKind> kKinds = {
      {"anonymous", policy::PrincipalKind::kAnonymous},
      {"account-root", policy::PrincipalKind::kAccountRoot},
      {"user", policy::PrincipalKind::kUser},
      {"role", policy::PrincipalKind::kRole},
      {"role-session", policy::PrincipalKind::kRoleSession},
      {"federated-user", policy::PrincipalKind::kFederatedUser},
      {"service", policy::PrincipalKind::kService},
  };
  return kKinds;
}

std::string PrincipalKindName(policy::PrincipalKind kind) {
  for (const auto& [name, k] : PrincipalKinds()) {
    if (k == kind) return name;
  }
  return "unknown";
}

std::vector<std::string> Keys(const auto& map) {
  std::vector<std::string> out;
  for (const auto& entry : map) out.push_back(entry.first);
  return out;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Reads a policy file, but no more than the parser would accept: a huge or endless file
// (/dev/zero) is refused once it passes the limit instead of exhausting memory.
core::Result<std::string> ReadPolicyFile(const std::string& path, std::size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return core::InvalidArgumentError("cannot read " + path + ": " + std::strerror(errno));
  }
  std::string out;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<std::size_t>(in.gcount()));
    if (out.size() > limit) {
      return core::InvalidArgumentError(path + ": larger than " + std::to_string(limit) +
                                        " bytes, the limit for a policy document");
    }
  }
  if (in.bad()) {
    return core::InvalidArgumentError("cannot read " + path + ": " + std::strerror(errno));
  }
  return out;
}

// The six ':'-separated segments of an ARN (the last keeps its colons); nullopt if not an ARN.
std::optional<std::vector<std::string>> ArnSegments(std::string_view arn) {
  if (!arn.starts_with("arn:")) return std::nullopt;
  std::vector<std::string> out;
  std::size_t start = 0;
  for (int i = 0; i < 5; ++i) {
    const std::size_t colon = arn.find(':', start);
    if (colon == std::string_view::npos) return std::nullopt;
    out.emplace_back(arn.substr(start, colon - start));
    start = colon + 1;
  }
  out.emplace_back(arn.substr(start));
  return out;
}

// What `policy check --json` reports of one parser error: the message, and where the message
// says it is, the statement index, its Sid and the element.
json::object Finding(const std::string& message, std::string_view document) {
  json::object out{{"message", message}};
  std::string_view rest = message;
  constexpr std::string_view kStatement = "statement ";
  constexpr std::string_view kPolicy = "policy: ";
  if (rest.starts_with(kStatement)) {
    rest.remove_prefix(kStatement.size());
    std::size_t digits = 0;
    while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) {
      ++digits;
    }
    if (digits == 0) return out;
    const std::size_t index = std::stoul(std::string(rest.substr(0, digits)));
    out["statement"] = index;
    // The Sid as written in the document (the message quotes it, which may escape it).
    boost::system::error_code ec;
    const json::value doc = json::parse(document, ec);
    if (!ec && doc.is_object()) {
      if (const json::value* statements = doc.as_object().if_contains("Statement")) {
        const json::value* st = nullptr;
        if (statements->is_array() && index < statements->as_array().size()) {
          st = &statements->as_array()[index];
        } else if (statements->is_object() && index == 0) {
          st = statements;
        }
        if (st != nullptr && st->is_object()) {
          if (const json::value* sid = st->as_object().if_contains("Sid");
              sid != nullptr && sid->is_string()) {
            out["sid"] = sid->as_string();
          }
        }
      }
    }
    const std::size_t label_end = rest.find(": ");
    if (label_end == std::string_view::npos) return out;
    rest.remove_prefix(label_end + 2);
  } else if (rest.starts_with(kPolicy)) {
    rest.remove_prefix(kPolicy.size());
  } else {
    return out;
  }
  // "Element: detail" or "Condition.Operator.key: detail" names the element and where in it;
  // "has both Action and NotAction" does not.
  const std::size_t end = rest.find(": ");
  if (end == std::string_view::npos || end == 0) return out;
  const std::string_view location = rest.substr(0, end);
  if (location.find(' ') != std::string_view::npos) return out;
  out["element"] = std::string(location.substr(0, location.find_first_of(".[")));
  if (location.size() != std::string_view(out["element"].as_string()).size()) {
    out["location"] = std::string(location);
  }
  return out;
}

// "statement 2 (Sid "ReadSecrets")" or "statement 2".
std::string StatementLabel(const policy::StatementRef& ref) {
  std::string out = "statement " + std::to_string(ref.index);
  if (ref.sid) out += " (Sid " + json::serialize(json::value(*ref.sid)) + ")";
  return out;
}

// Splits "key=value"; false if there is no '=' or the key is empty.
bool SplitKeyValue(const std::string& text, std::string* key, std::string* value) {
  const std::size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  *key = text.substr(0, eq);
  *value = text.substr(eq + 1);
  return true;
}

}  // namespace

PolicyCommands::PolicyCommands(CLI::App& parent) {
  policy_ = parent.add_subcommand("policy", "Validate IAM policy files and simulate decisions");
  policy_->require_subcommand(1);

  check_ = policy_->add_subcommand(
      "check",
      "Validate IAM policy JSON files. Prints OK or the findings (statement index, Sid, element) "
      "per file. Exit 0 if every file is valid, 1 if any file has a finding or cannot be read, "
      "2 on usage errors.");
  check_
      ->add_option("--type", check_type_,
                   "what kind of policy the files are (decides e.g. whether Principal is legal) "
                   "[default: identity]")
      ->check(CLI::IsMember(Keys(PolicyTypes())));
  check_->add_flag("--json", json_, "print the report as JSON");
  check_->add_option("files", check_files_, "policy files")->required();

  simulate_ = policy_->add_subcommand(
      "simulate",
      "Evaluate one request against policy files and print the decision (Allowed, "
      "ExplicitlyDenied, ImplicitlyDenied), the decisive statements and the explanation. Exit 0 "
      "if allowed, 1 if denied or a policy file is invalid, 2 on usage errors.");
  simulate_->add_option("--identity", identity_files_,
                        "identity-based policy of the principal (repeatable; their union applies)");
  simulate_->add_option("--boundary", boundary_file_, "permissions boundary");
  simulate_->add_option("--session", session_file_,
                        "session policy (applies to role-session and federated-user principals)");
  simulate_->add_option("--resource-policy", resource_file_,
                        "resource-based policy of the resource (must have Principal)");
  simulate_->add_flag("--resource-policy-must-allow", resource_must_allow_,
                      "the resource policy itself must allow, like a role trust policy or a KMS "
                      "key policy");
  simulate_->add_option(
      "--guardrail", guardrail_levels_,
      "guardrail (SCP-like) level, root first; repeat for each level; FILE,FILE for several "
      "policies at one level (any of them may allow)");
  simulate_->add_option("--principal", principal_,
                        "the caller's ARN (or a service name such as lambda.amazonaws.com); not "
                        "needed with --principal-type anonymous");
  simulate_
      ->add_option("--principal-type", principal_type_,
                   "the caller's kind [default: derived from --principal: iam root, user/, "
                   "role/; sts assumed-role/ (role-session), federated-user/; *.amazonaws.com "
                   "(service)]")
      ->check(CLI::IsMember(Keys(PrincipalKinds())));
  simulate_->add_option("--principal-account", principal_account_,
                        "the caller's account [default: the account segment of --principal]");
  simulate_->add_option("--issuer", issuer_,
                        "for sessions: the role or user that issued it [default for "
                        "assumed-role sessions: arn:PARTITION:iam::ACCOUNT:role/ROLE]");
  simulate_->add_option("--principal-tag", principal_tags_,
                        "KEY=VALUE tag of the caller (aws:PrincipalTag/KEY; repeatable)");
  simulate_->add_option("--action", action_, "the action, service:Action")->required();
  simulate_->add_option("--resource", resource_, "the resource ARN, or *")->required();
  simulate_->add_option("--resource-account", resource_account_,
                        "the account that owns the resource [default: the account segment of "
                        "--resource, or the caller's account when it has none]");
  simulate_->add_option("--resource-tag", resource_tags_,
                        "KEY=VALUE tag of the resource (aws:ResourceTag/KEY; repeatable)");
  simulate_->add_option("--context", context_,
                        "KEY=VALUE condition key of the request, e.g. aws:SourceIp=10.0.0.1; "
                        "repeat a key to give it several values (a multivalued key)");
  simulate_->add_option("--multi", multi_keys_,
                        "KEY: treat this context key as multivalued even with one value, or as "
                        "an empty set when no --context gives it a value (repeatable)");
  simulate_->add_flag("--json", json_, "print the decision as JSON");
}

int PolicyCommands::Run() {
  if (check_->parsed()) return RunCheck();
  if (simulate_->parsed()) return RunSimulate();
  return kExitUsage;
}

int PolicyCommands::RunCheck() {
  policy::ParseOptions options;
  options.type = PolicyTypes().at(check_type_);
  bool all_ok = true;
  json::array files;
  for (const std::string& file : check_files_) {
    json::object report{{"file", file}};
    auto text = ReadPolicyFile(file, options.max_document_bytes);
    if (!text.ok()) {
      all_ok = false;
      const std::string message = text.status().message();
      report["ok"] = false;
      report["findings"] = json::array{json::object{{"message", message}}};
      if (!json_) std::cout << file << ": error: " << message << "\n";
      files.push_back(std::move(report));
      continue;
    }
    auto compiled = policy::CompiledPolicy::FromJson(*text, file, options);
    if (!compiled.ok()) {
      all_ok = false;
      report["ok"] = false;
      report["findings"] = json::array{Finding(compiled.status().message(), *text)};
      if (!json_) std::cout << file << ": error: " << compiled.status().message() << "\n";
    } else {
      const std::size_t count = (*compiled)->statements().size();
      report["ok"] = true;
      report["statements"] = count;
      if (!json_) {
        std::cout << file << ": OK (" << policy::PolicyTypeName(options.type) << " policy, "
                  << count << (count == 1 ? " statement" : " statements") << ")\n";
      }
    }
    files.push_back(std::move(report));
  }
  if (json_) {
    json::object out{{"ok", all_ok}, {"type", check_type_}, {"files", std::move(files)}};
    std::cout << json::serialize(out) << "\n";
  }
  return all_ok ? kExitOk : kExitRuntime;
}

int PolicyCommands::RunSimulate() {
  constexpr std::string_view kName = "moatless policy simulate: ";
  // The request first: its usage errors should not wait for policy files to be read.
  policy::RequestContext request;
  request.action = action_;
  request.resource = resource_;
  request.principal_arn = principal_;
  std::optional<policy::PrincipalInfo> principal_info;
  if (!principal_.empty()) {
    auto info = policy::ClassifyPrincipal(principal_);
    if (info.ok()) {
      principal_info = *info;
    } else if (principal_type_.empty()) {
      std::cerr << kName << info.status().message() << ": pass --principal-type\n";
      return kExitUsage;
    }
  }
  if (!principal_type_.empty()) {
    request.principal_kind = PrincipalKinds().at(principal_type_);
  } else if (principal_.empty()) {
    std::cerr << kName << "--principal is required (or --principal-type anonymous)\n";
    return kExitUsage;
  } else {
    request.principal_kind = principal_info->kind;
  }
  if (request.principal_kind == policy::PrincipalKind::kAnonymous) {
    if (!principal_.empty()) {
      std::cerr << kName << "an anonymous request has no --principal\n";
      return kExitUsage;
    }
  } else if (principal_.empty()) {
    std::cerr << kName << "--principal is required for --principal-type " << principal_type_
              << "\n";
    return kExitUsage;
  }
  request.principal_account = principal_account_;
  if (request.principal_account.empty() && principal_info) {
    request.principal_account = principal_info->account;
  }
  request.issuer_arn = issuer_;
  if (request.issuer_arn.empty() && principal_info &&
      request.principal_kind == policy::PrincipalKind::kRoleSession) {
    request.issuer_arn = principal_info->issuer_arn;
  }
  request.resource_account = resource_account_;
  if (request.resource_account.empty()) {
    if (const auto resource_arn = ArnSegments(resource_)) {
      request.resource_account = (*resource_arn)[4];
    }
  }
  std::string key;
  std::string value;
  for (const std::string& tag : principal_tags_) {
    if (!SplitKeyValue(tag, &key, &value)) {
      std::cerr << kName << "--principal-tag must be KEY=VALUE, got '" << tag << "'\n";
      return kExitUsage;
    }
    request.principal_tags[key] = value;
  }
  for (const std::string& tag : resource_tags_) {
    if (!SplitKeyValue(tag, &key, &value)) {
      std::cerr << kName << "--resource-tag must be KEY=VALUE, got '" << tag << "'\n";
      return kExitUsage;
    }
    request.resource_tags[key] = value;
  }
  // Condition keys are case-insensitive: group the values of one key however it is spelled.
  std::map<std::string, std::pair<std::string, std::vector<std::string>>> context;
  for (const std::string& entry : context_) {
    if (!SplitKeyValue(entry, &key, &value)) {
      std::cerr << kName << "--context must be KEY=VALUE, got '" << entry << "'\n";
      return kExitUsage;
    }
    auto& [name, values] = context[Lower(key)];
    if (name.empty()) name = key;
    values.push_back(value);
  }
  std::map<std::string, bool> multi;
  for (const std::string& k : multi_keys_) {
    if (k.empty() || k.find('=') != std::string::npos) {
      std::cerr << kName << "--multi takes a KEY, got '" << k << "'\n";
      return kExitUsage;
    }
    multi[Lower(k)] = true;
    auto& [name, values] = context[Lower(k)];
    if (name.empty()) name = k;
  }
  for (auto& [lower, entry] : context) {
    auto& [name, values] = entry;
    if (values.size() == 1 && !multi.contains(lower)) {
      request.context.Set(name, std::move(values.front()));
    } else {
      request.context.SetMulti(name, std::move(values));
    }
  }

  // The policies. A file that cannot be read or does not validate is a runtime error (exit 1).
  auto load = [&](const std::string& file,
                  policy::PolicyType type) -> std::optional<policy::CompiledPolicyPtr> {
    policy::ParseOptions options;
    options.type = type;
    auto text = ReadPolicyFile(file, options.max_document_bytes);
    if (!text.ok()) {
      std::cerr << kName << text.status().message() << "\n";
      return std::nullopt;
    }
    auto compiled = policy::CompiledPolicy::FromJson(*text, file, options);
    if (!compiled.ok()) {
      std::cerr << kName << file << " (" << policy::PolicyTypeName(type)
                << " policy): " << compiled.status().message() << "\n";
      return std::nullopt;
    }
    return *compiled;
  };
  policy::PolicySet set;
  for (const std::string& file : identity_files_) {
    auto p = load(file, policy::PolicyType::kIdentity);
    if (!p) return kExitRuntime;
    set.identity.push_back(std::move(*p));
  }
  if (!boundary_file_.empty()) {
    auto p = load(boundary_file_, policy::PolicyType::kBoundary);
    if (!p) return kExitRuntime;
    set.boundary = std::move(*p);
  }
  if (!session_file_.empty()) {
    auto p = load(session_file_, policy::PolicyType::kSession);
    if (!p) return kExitRuntime;
    set.session = std::move(*p);
  }
  if (!resource_file_.empty()) {
    auto p = load(resource_file_, resource_must_allow_ ? policy::PolicyType::kTrust
                                                       : policy::PolicyType::kResource);
    if (!p) return kExitRuntime;
    set.resource = std::move(*p);
  } else if (resource_must_allow_) {
    std::cerr << kName << "--resource-policy-must-allow needs --resource-policy\n";
    return kExitUsage;
  }
  set.resource_policy_must_allow = resource_must_allow_;
  for (const std::string& level : guardrail_levels_) {
    std::vector<policy::CompiledPolicyPtr> policies;
    std::size_t start = 0;
    while (start <= level.size()) {
      std::size_t comma = level.find(',', start);
      if (comma == std::string::npos) comma = level.size();
      const std::string file = level.substr(start, comma - start);
      start = comma + 1;
      if (file.empty()) {
        std::cerr << kName << "--guardrail '" << level << "' has an empty file name\n";
        return kExitUsage;
      }
      auto p = load(file, policy::PolicyType::kGuardrail);
      if (!p) return kExitRuntime;
      policies.push_back(std::move(*p));
    }
    set.guardrails.push_back(std::move(policies));
  }

  const policy::EvaluationResult result = policy::Evaluate(request, set);
  const std::string message = result.Message(request);
  if (json_) {
    json::array statements;
    for (const policy::StatementRef& ref : result.statements) {
      json::object s{{"layer", policy::LayerName(ref.layer)},
                     {"policy", ref.policy},
                     {"statement", ref.index}};
      s["sid"] = ref.sid ? json::value(*ref.sid) : json::value(nullptr);
      statements.push_back(std::move(s));
    }
    json::object out{{"decision", policy::DecisionName(result.decision)},
                     {"allowed", result.allowed()},
                     {"message", message},
                     {"statements", std::move(statements)},
                     {"request",
                      {{"principal", request.principal_arn},
                       {"principal_type", PrincipalKindName(request.principal_kind)},
                       {"principal_account", request.principal_account},
                       {"issuer", request.issuer_arn},
                       {"action", request.action},
                       {"resource", request.resource},
                       {"resource_account", request.resource_account}}}};
    out["missing_allow"] = result.missing_allow
                               ? json::value(policy::LayerName(*result.missing_allow))
                               : json::value(nullptr);
    out["error"] = result.error.empty() ? json::value(nullptr) : json::value(result.error);
    std::cout << json::serialize(out) << "\n";
  } else {
    std::cout << policy::DecisionName(result.decision) << "\n" << message << "\n";
    if (result.missing_allow) {
      std::cout << "missing allow: " << policy::LayerName(*result.missing_allow) << "\n";
    }
    if (!result.error.empty()) std::cout << "evaluation error: " << result.error << "\n";
    if (!result.statements.empty()) {
      std::cout << (result.allowed() ? "allowed by:" : "denied by:") << "\n";
      for (const policy::StatementRef& ref : result.statements) {
        std::cout << "  " << policy::LayerName(ref.layer) << " " << ref.policy << ": "
                  << StatementLabel(ref) << "\n";
      }
    }
  }
  return result.allowed() ? kExitOk : kExitRuntime;
}

}  // namespace moatless::cli
