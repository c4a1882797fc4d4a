#include "policy/parser.h"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <charconv>
#include <cstdint>
#include <exception>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "policy/matching.h"

namespace moatless::policy {
namespace {

namespace json = boost::json;
using core::InvalidArgumentError;
using core::Result;
using core::Status;

std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text.substr(0, 128)) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\') {
      out += '?';
    } else {
      out += c;
    }
  }
  if (text.size() > 128) out += "...";
  return out + "\"";
}

class Parser {
 public:
  explicit Parser(const ParseOptions& options) : options_(options) {}

  Result<Policy> ParseDocument(const json::value& root) {
    const json::object* doc = root.if_object();
    if (doc == nullptr) return InvalidArgumentError("policy: the document must be a JSON object");
    Policy policy;
    bool has_statement = false;
    for (const auto& [key, value] : *doc) {
      if (key == "Version") {
        const json::string* v = value.if_string();
        if (v != nullptr && *v == "2012-10-17") {
          policy.version = PolicyVersion::k2012_10_17;
        } else if (v != nullptr && *v == "2008-10-17") {
          policy.version = PolicyVersion::k2008_10_17;
        } else {
          return InvalidArgumentError("policy: Version: must be \"2012-10-17\" or \"2008-10-17\"");
        }
      } else if (key == "Id") {
        ASSIGN_OR_RETURN(std::string id, String(value, "policy: Id"));
        policy.id = std::move(id);
      } else if (key == "Statement") {
        has_statement = true;
        std::vector<const json::value*> items;
        if (const json::array* arr = value.if_array()) {
          for (const json::value& item : *arr) items.push_back(&item);
        } else {
          items.push_back(&value);
        }
        if (items.size() > options_.max_statements) {
          return core::PayloadTooLargeError("policy: Statement: " + std::to_string(items.size()) +
                                            " statements exceed the limit of " +
                                            std::to_string(options_.max_statements));
        }
        for (std::size_t i = 0; i < items.size(); ++i) {
          ASSIGN_OR_RETURN(Statement statement, ParseStatement(*items[i], i));
          policy.statements.push_back(std::move(statement));
        }
      } else {
        return InvalidArgumentError("policy: unknown element " + Quote(key));
      }
    }
    if (!has_statement) return InvalidArgumentError("policy: Statement is missing");
    return policy;
  }

 private:
  Result<std::string> String(const json::value& value, const std::string& where) {
    const json::string* s = value.if_string();
    if (s == nullptr) return InvalidArgumentError(where + ": must be a string");
    if (s->size() > options_.max_string_bytes) {
      return core::PayloadTooLargeError(where + ": value longer than " +
                                        std::to_string(options_.max_string_bytes) + " bytes");
    }
    return std::string(s->data(), s->size());
  }

  Result<std::vector<std::string>> StringList(const json::value& value, const std::string& where) {
    std::vector<std::string> out;
    if (const json::array* arr = value.if_array()) {
      if (arr->empty()) return InvalidArgumentError(where + ": must not be an empty list");
      if (arr->size() > options_.max_values_per_element) {
        return core::PayloadTooLargeError(
            where + ": more than " + std::to_string(options_.max_values_per_element) + " entries");
      }
      for (const json::value& item : *arr) {
        ASSIGN_OR_RETURN(std::string s, String(item, where));
        out.push_back(std::move(s));
      }
    } else {
      ASSIGN_OR_RETURN(std::string s, String(value, where));
      out.push_back(std::move(s));
    }
    return out;
  }

  // Condition values: strings, booleans and numbers (normalised to strings), or a list of them.
  Result<std::string> ConditionScalar(const json::value& value, const std::string& where) {
    if (value.is_string()) return String(value, where);
    if (value.is_bool()) return std::string(value.get_bool() ? "true" : "false");
    if (value.is_int64()) return std::to_string(value.get_int64());
    if (value.is_uint64()) return std::to_string(value.get_uint64());
    if (value.is_double()) {
      char buffer[64];
      auto [ptr, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value.get_double());
      if (ec != std::errc()) return InvalidArgumentError(where + ": unrepresentable number");
      return std::string(buffer, ptr);
    }
    return InvalidArgumentError(where + ": must be a string, boolean or number");
  }

  Result<Statement> ParseStatement(const json::value& value, std::size_t index) {
    const std::string at = "statement " + std::to_string(index);
    const json::object* obj = value.if_object();
    if (obj == nullptr) return InvalidArgumentError(at + ": must be a JSON object");
    Statement st;
    // The Sid first, so that every later error names it.
    if (const json::value* sid = obj->if_contains("Sid")) {
      ASSIGN_OR_RETURN(std::string s, String(*sid, at + ": Sid"));
      st.sid = std::move(s);
    }
    const std::string label = st.Label(index);
    bool has_effect = false;
    bool has_action = false;
    for (const auto& [key, v] : *obj) {
      const std::string where = label + ": " + std::string(key);
      if (key == "Sid") continue;
      if (key == "Effect") {
        const json::string* e = v.if_string();
        if (e != nullptr && *e == "Allow") {
          st.effect = Effect::kAllow;
        } else if (e != nullptr && *e == "Deny") {
          st.effect = Effect::kDeny;
        } else {
          return InvalidArgumentError(where + ": must be exactly \"Allow\" or \"Deny\"" +
                                      (e != nullptr ? " (got " + Quote(*e) + ")" : ""));
        }
        has_effect = true;
      } else if (key == "Action" || key == "NotAction") {
        if (has_action) {
          return InvalidArgumentError(label + ": has both Action and NotAction");
        }
        has_action = true;
        st.not_action = key == "NotAction";
        ASSIGN_OR_RETURN(st.actions, StringList(v, where));
      } else if (key == "Resource" || key == "NotResource") {
        if (st.has_resource) {
          return InvalidArgumentError(label + ": has both Resource and NotResource");
        }
        st.has_resource = true;
        st.not_resource = key == "NotResource";
        ASSIGN_OR_RETURN(st.resources, StringList(v, where));
      } else if (key == "Principal" || key == "NotPrincipal") {
        if (st.has_principal) {
          return InvalidArgumentError(label + ": has both Principal and NotPrincipal");
        }
        st.has_principal = true;
        st.not_principal = key == "NotPrincipal";
        RETURN_IF_ERROR(ParsePrincipal(v, where, st.principals));
      } else if (key == "Condition") {
        RETURN_IF_ERROR(ParseCondition(v, where, st.conditions));
      } else {
        return InvalidArgumentError(label + ": unknown element " + Quote(key));
      }
    }
    if (!has_effect) return InvalidArgumentError(label + ": Effect is missing");
    if (!has_action)
      return InvalidArgumentError(label + ": needs exactly one of Action or NotAction");
    return st;
  }

  Status ParsePrincipal(const json::value& value, const std::string& where,
                        std::vector<PrincipalEntry>& out) {
    if (const json::string* s = value.if_string()) {
      if (*s != "*") {
        return InvalidArgumentError(where +
                                    ": a string principal must be \"*\"; use {\"AWS\": ...}");
      }
      out.push_back({"*", "*"});
      return Status::Ok();
    }
    const json::object* obj = value.if_object();
    if (obj == nullptr || obj->empty()) {
      return InvalidArgumentError(where + ": must be \"*\" or a non-empty object");
    }
    for (const auto& [type, values] : *obj) {
      if (type != "AWS" && type != "Service" && type != "Federated" && type != "CanonicalUser") {
        return InvalidArgumentError(where + ": unknown principal type " + Quote(type));
      }
      ASSIGN_OR_RETURN(std::vector<std::string> list,
                       StringList(values, where + "." + std::string(type)));
      for (std::string& v : list) out.push_back({std::string(type), std::move(v)});
    }
    return Status::Ok();
  }

  Status ParseCondition(const json::value& value, const std::string& where,
                        std::vector<ConditionClause>& out) {
    const json::object* ops = value.if_object();
    if (ops == nullptr) return InvalidArgumentError(where + ": must be an object");
    for (const auto& [op, keys] : *ops) {
      const std::string op_where = where + "." + std::string(op);
      const json::object* key_obj = keys.if_object();
      if (key_obj == nullptr || key_obj->empty()) {
        return InvalidArgumentError(op_where + ": must be a non-empty object of keys");
      }
      for (const auto& [key, values] : *key_obj) {
        const std::string key_where = op_where + "." + std::string(key);
        ConditionClause clause{.op = std::string(op), .key = std::string(key)};
        if (const json::array* arr = values.if_array()) {
          if (arr->empty()) return InvalidArgumentError(key_where + ": must not be an empty list");
          if (arr->size() > options_.max_values_per_element) {
            return core::PayloadTooLargeError(key_where + ": too many values");
          }
          for (const json::value& item : *arr) {
            ASSIGN_OR_RETURN(std::string s, ConditionScalar(item, key_where));
            clause.values.push_back(std::move(s));
          }
        } else {
          ASSIGN_OR_RETURN(std::string s, ConditionScalar(values, key_where));
          clause.values.push_back(std::move(s));
        }
        out.push_back(std::move(clause));
      }
    }
    return Status::Ok();
  }

  const ParseOptions& options_;
};

// Boost.JSON keeps the last of duplicate object keys silently; a policy with two "Effect"s is
// ambiguous, so a SAX pass over the document rejects any duplicate key first.
class DuplicateKeyHandler {
 public:
  constexpr static std::size_t max_object_size = std::size_t(-1);
  constexpr static std::size_t max_array_size = std::size_t(-1);
  constexpr static std::size_t max_key_size = std::size_t(-1);
  constexpr static std::size_t max_string_size = std::size_t(-1);

  std::string duplicate;

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_object_begin(boost::system::error_code&) {
    scopes_.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, boost::system::error_code&) {
    scopes_.pop_back();
    return true;
  }
  bool on_array_begin(boost::system::error_code&) { return true; }
  bool on_array_end(std::size_t, boost::system::error_code&) { return true; }
  bool on_key_part(json::string_view part, std::size_t, boost::system::error_code&) {
    key_.append(part.data(), part.size());
    return true;
  }
  bool on_key(json::string_view part, std::size_t, boost::system::error_code& ec) {
    key_.append(part.data(), part.size());
    const bool inserted = scopes_.back().insert(key_).second;
    if (!inserted) {
      duplicate = key_;
      ec = json::error::syntax;
      return false;
    }
    key_.clear();
    return true;
  }
  bool on_string_part(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_number_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, boost::system::error_code&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, boost::system::error_code&) { return true; }
  bool on_double(double, json::string_view, boost::system::error_code&) { return true; }
  bool on_bool(bool, boost::system::error_code&) { return true; }
  bool on_null(boost::system::error_code&) { return true; }
  bool on_comment_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_comment(json::string_view, boost::system::error_code&) { return true; }

 private:
  std::vector<std::set<std::string>> scopes_;
  std::string key_;
};

Status CheckDuplicateKeys(std::string_view text, const json::parse_options& options) {
  json::basic_parser<DuplicateKeyHandler> parser(options);
  boost::system::error_code ec;
  parser.write_some(false, text.data(), text.size(), ec);
  if (!parser.handler().duplicate.empty()) {
    return InvalidArgumentError("policy: duplicate JSON key " + Quote(parser.handler().duplicate));
  }
  return Status::Ok();  // other syntax errors are reported by the real parse
}

bool IsAccountId(std::string_view text) {
  if (text.size() != 12) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

Status ValidateAction(const std::string& action, const std::string& where) {
  if (action == "*") return Status::Ok();
  const std::size_t colon = action.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == action.size() ||
      action.find(':', colon + 1) != std::string::npos) {
    return InvalidArgumentError(where + ": " + Quote(action) +
                                " is not \"*\" or \"service:action\"");
  }
  for (char c : action) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '*' || c == '?' || c == ':';
    if (!ok) return InvalidArgumentError(where + ": " + Quote(action) + " has invalid characters");
  }
  return Status::Ok();
}

Status ValidateResource(const std::string& resource, bool variables, const std::string& where) {
  if (resource == "*") return Status::Ok();
  auto segments = SplitArn(resource);
  if (!segments || (*segments)[0] != "arn") {
    return InvalidArgumentError(where + ": " + Quote(resource) + " is not \"*\" or an ARN");
  }
  if ((*segments)[2].empty() || HasWildcard((*segments)[2])) {
    return InvalidArgumentError(where + ": " + Quote(resource) +
                                " has an empty or wildcard service segment");
  }
  for (std::size_t i = 0; i < 5 && variables; ++i) {
    if ((*segments)[i].find("${") != std::string_view::npos) {
      return InvalidArgumentError(where + ": " + Quote(resource) +
                                  ": policy variables are allowed only in the resource segment");
    }
  }
  auto parsed = ParseTemplate((*segments)[5], variables);
  if (!parsed.ok()) return InvalidArgumentError(where + ": " + parsed.status().message());
  return Status::Ok();
}

Status ValidatePrincipal(const PrincipalEntry& p, const std::string& where) {
  if (p.type == "*") return Status::Ok();
  if (p.value != "*" && HasWildcard(p.value)) {
    return InvalidArgumentError(where + ": " + Quote(p.value) +
                                ": partial wildcards are not allowed in principals");
  }
  if (p.type == "AWS" && p.value != "*" && !IsAccountId(p.value)) {
    auto segments = SplitArn(p.value);
    if (!segments || (*segments)[0] != "arn") {
      return InvalidArgumentError(where + ": " + Quote(p.value) +
                                  " is not \"*\", an account ID or an ARN");
    }
  }
  if (p.value.empty()) return InvalidArgumentError(where + ": empty principal");
  return Status::Ok();
}

Status ValidateCondition(const ConditionClause& clause, bool variables, const std::string& where) {
  auto op = ParseConditionOperator(clause.op);
  if (!op.ok()) return InvalidArgumentError(where + ": " + op.status().message());
  if (clause.key.empty()) return InvalidArgumentError(where + ": empty condition key");
  if (clause.values.empty()) return InvalidArgumentError(where + ": no values");
  for (const std::string& v : clause.values) {
    if (variables && !FamilyAllowsVariables(op->family) && v.find("${") != std::string::npos) {
      return InvalidArgumentError(where + ": policy variables are not allowed in " + clause.op +
                                  " values");
    }
    Status s;
    switch (op->family) {
      case OperatorFamily::kString:
      case OperatorFamily::kArn:
        s = ParseTemplate(v, variables).status();
        break;
      case OperatorFamily::kNumeric:
        s = ParseNumber(v).status();
        break;
      case OperatorFamily::kDate:
        s = ParseDateMillis(v).status();
        break;
      case OperatorFamily::kBool:
      case OperatorFamily::kNull:
        s = ParseBool(v).status();
        break;
      case OperatorFamily::kBinary:
        s = ValidateBase64(v);
        break;
      case OperatorFamily::kIp:
        s = ParseCidr(v).status();
        break;
    }
    if (!s.ok()) return InvalidArgumentError(where + ": " + s.message());
  }
  return Status::Ok();
}

}  // namespace

Status ValidatePolicy(const Policy& policy, const ParseOptions& options) {
  const bool variables = policy.version == PolicyVersion::k2012_10_17;
  const bool principal_policy =
      options.type == PolicyType::kResource || options.type == PolicyType::kTrust;
  std::set<std::string> sids;
  if (policy.statements.size() > options.max_statements) {
    return core::PayloadTooLargeError("policy: too many statements");
  }
  for (std::size_t i = 0; i < policy.statements.size(); ++i) {
    const Statement& st = policy.statements[i];
    const std::string label = st.Label(i);
    if (st.sid) {
      if (!sids.insert(*st.sid).second) {
        return InvalidArgumentError(label + ": Sid: duplicate Sid " + Quote(*st.sid));
      }
    }
    if (st.actions.empty()) {
      return InvalidArgumentError(label + ": needs exactly one of Action or NotAction");
    }
    const std::string action_el = label + (st.not_action ? ": NotAction" : ": Action");
    for (const std::string& a : st.actions) RETURN_IF_ERROR(ValidateAction(a, action_el));
    if (!st.has_resource && options.type != PolicyType::kTrust) {
      return InvalidArgumentError(label + ": needs exactly one of Resource or NotResource");
    }
    const std::string resource_el = label + (st.not_resource ? ": NotResource" : ": Resource");
    for (const std::string& r : st.resources) {
      RETURN_IF_ERROR(ValidateResource(r, variables, resource_el));
    }
    const std::string principal_el = label + (st.not_principal ? ": NotPrincipal" : ": Principal");
    if (st.has_principal && !principal_policy) {
      return InvalidArgumentError(principal_el + ": not allowed in a " +
                                  std::string(PolicyTypeName(options.type)) + " policy");
    }
    if (principal_policy && !st.has_principal) {
      return InvalidArgumentError(label + ": a " + std::string(PolicyTypeName(options.type)) +
                                  " policy statement needs Principal or NotPrincipal");
    }
    if (st.not_principal && options.type == PolicyType::kTrust) {
      return InvalidArgumentError(principal_el + ": not allowed in a trust policy");
    }
    for (const PrincipalEntry& p : st.principals)
      RETURN_IF_ERROR(ValidatePrincipal(p, principal_el));
    for (const ConditionClause& c : st.conditions) {
      RETURN_IF_ERROR(ValidateCondition(c, variables, label + ": Condition." + c.op + "." + c.key));
    }
  }
  return Status::Ok();
}

Result<Policy> ParsePolicy(std::string_view text, const ParseOptions& options) {
  if (text.size() > options.max_document_bytes) {
    return core::PayloadTooLargeError("policy: document of " + std::to_string(text.size()) +
                                      " bytes exceeds the limit of " +
                                      std::to_string(options.max_document_bytes));
  }
  try {
    json::parse_options json_options;
    json_options.max_depth = static_cast<std::size_t>(options.max_json_depth);
    RETURN_IF_ERROR(CheckDuplicateKeys(text, json_options));
    boost::system::error_code ec;
    json::value root = json::parse(text, ec, json::storage_ptr(), json_options);
    if (ec) return InvalidArgumentError("policy: malformed JSON: " + ec.message());
    Parser parser(options);
    ASSIGN_OR_RETURN(Policy policy, parser.ParseDocument(root));
    RETURN_IF_ERROR(ValidatePolicy(policy, options));
    return policy;
  } catch (const std::exception& e) {
    return InvalidArgumentError(std::string("policy: cannot parse: ") + e.what());
  }
}

std::string_view PolicyTypeName(PolicyType type) {
  switch (type) {
    case PolicyType::kIdentity:
      return "identity";
    case PolicyType::kBoundary:
      return "permissions boundary";
    case PolicyType::kSession:
      return "session";
    case PolicyType::kGuardrail:
      return "guardrail";
    case PolicyType::kResource:
      return "resource";
    case PolicyType::kTrust:
      return "trust";
  }
  return "unknown";
}

std::string Statement::Label(std::size_t index) const {
  std::string out = "statement " + std::to_string(index);
  if (sid) out += " (Sid " + Quote(*sid) + ")";
  return out;
}

}  // namespace moatless::policy
