#include "policy/compiled.h"

#include <utility>

namespace moatless::policy {
namespace {

using core::Result;

Result<CompiledValue> CompileValue(const ConditionOperator& op, const std::string& raw,
                                   bool variables) {
  CompiledValue v;
  v.raw = raw;
  switch (op.family) {
    case OperatorFamily::kString:
    case OperatorFamily::kArn: {
      ASSIGN_OR_RETURN(v.text, ParseTemplate(raw, variables));
      break;
    }
    case OperatorFamily::kNumeric: {
      ASSIGN_OR_RETURN(v.number, ParseNumber(raw));
      break;
    }
    case OperatorFamily::kDate: {
      ASSIGN_OR_RETURN(v.date_millis, ParseDateMillis(raw));
      break;
    }
    case OperatorFamily::kBool:
    case OperatorFamily::kNull: {
      ASSIGN_OR_RETURN(v.boolean, ParseBool(raw));
      break;
    }
    case OperatorFamily::kBinary:
      RETURN_IF_ERROR(ValidateBase64(raw));
      break;
    case OperatorFamily::kIp: {
      ASSIGN_OR_RETURN(v.cidr, ParseCidr(raw));
      break;
    }
  }
  return v;
}

}  // namespace

std::string CompiledStatement::Label() const {
  if (sid) return "Sid \"" + *sid + "\"";
  return "statement " + std::to_string(index);
}

Result<std::shared_ptr<const CompiledPolicy>> CompiledPolicy::Compile(const Policy& policy,
                                                                      std::string name,
                                                                      PolicyType type) {
  ParseOptions options;
  options.type = type;
  options.max_statements = static_cast<std::size_t>(UINT32_MAX);
  RETURN_IF_ERROR(ValidatePolicy(policy, options));
  const bool variables = policy.version == PolicyVersion::k2012_10_17;
  std::shared_ptr<CompiledPolicy> out(new CompiledPolicy());
  out->name_ = std::move(name);
  out->type_ = type;
  out->version_ = policy.version;
  out->statements_.reserve(policy.statements.size());
  for (std::size_t i = 0; i < policy.statements.size(); ++i) {
    const Statement& st = policy.statements[i];
    CompiledStatement cs;
    cs.index = i;
    cs.sid = st.sid;
    cs.effect = st.effect;
    cs.has_principal = st.has_principal;
    cs.not_principal = st.not_principal;
    cs.principals = st.principals;
    cs.not_action = st.not_action;
    bool any_service = st.not_action;
    std::vector<std::string> literal_actions;  // index keys, filled unless any_service
    std::vector<std::string> glob_services;
    for (const std::string& a : st.actions) {
      std::string lowered = AsciiLower(a);
      const std::size_t colon = lowered.find(':');
      const std::string service = colon == std::string::npos ? "*" : lowered.substr(0, colon);
      const bool glob = lowered.find_first_of("*?\\") != std::string::npos;
      if (HasWildcard(service)) {
        any_service = true;
      } else if (glob) {
        glob_services.push_back(service);
      } else {
        literal_actions.push_back(lowered);
      }
      cs.action_is_glob.push_back(glob);
      cs.actions.push_back(std::move(lowered));
    }
    cs.has_resource = st.has_resource;
    cs.not_resource = st.not_resource;
    for (const std::string& r : st.resources) {
      CompiledResource cr;
      if (r == "*") {
        cr.any = true;
      } else {
        auto segments = SplitArn(r);  // validated above
        for (std::size_t s = 0; s < 4; ++s) {
          cr.head[s] = AsciiLower((*segments)[s + 1]);
          cr.head_is_glob[s] = cr.head[s].find_first_of("*?\\") != std::string::npos;
        }
        ASSIGN_OR_RETURN(cr.resource, ParseTemplate((*segments)[5], variables));
        for (const TemplatePart& part : cr.resource.parts) {
          if (part.is_variable) break;
          if (part.literal_escape) {
            cr.resource_prefix += part.text;
            continue;
          }
          const std::size_t wildcard = part.text.find_first_of("*?\\");
          cr.resource_prefix += part.text.substr(0, wildcard);
          if (wildcard != std::string::npos) break;
        }
      }
      cs.resources.push_back(std::move(cr));
    }
    for (const ConditionClause& c : st.conditions) {
      CompiledCondition cc;
      ASSIGN_OR_RETURN(cc.op, ParseConditionOperator(c.op));
      cc.key = AsciiLower(c.key);
      for (const std::string& v : c.values) {
        ASSIGN_OR_RETURN(CompiledValue value, CompileValue(cc.op, v, variables));
        cc.values.push_back(std::move(value));
      }
      cs.conditions.push_back(std::move(cc));
    }
    const auto index = static_cast<std::uint32_t>(i);
    auto add = [index](std::vector<std::uint32_t>& list) {
      if (list.empty() || list.back() != index) list.push_back(index);
    };
    if (any_service) {
      out->any_service_.push_back(index);
    } else {
      for (const std::string& action : literal_actions) add(out->by_action_[action]);
      for (const std::string& service : glob_services) add(out->globs_by_service_[service]);
    }
    out->statements_.push_back(std::move(cs));
  }
  return std::shared_ptr<const CompiledPolicy>(std::move(out));
}

Result<std::shared_ptr<const CompiledPolicy>> CompiledPolicy::FromJson(
    std::string_view json, std::string name, const ParseOptions& options) {
  ASSIGN_OR_RETURN(Policy policy, ParsePolicy(json, options));
  return Compile(policy, std::move(name), options.type);
}

}  // namespace moatless::policy
