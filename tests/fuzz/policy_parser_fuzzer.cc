// libFuzzer target for the policy engine's input path: arbitrary bytes go through ParsePolicy as
// every PolicyType, and each document that parses is compiled and evaluated, in the layer its
// type belongs to, against a few fixed request contexts (a role session with tags and context
// keys, a cross-account user, an anonymous caller).
//
// Besides the sanitizers, it checks the promises the engine makes: a parsed policy re-validates
// and compiles (ParsePolicy and Compile apply the same rules), evaluation is deterministic, and a
// decision is consistent with its explanation (an evaluation error never allows; an implicit deny
// names the layer that lacked an allow; Message() always renders).
//
// Input layout: the whole input is the policy document (so the seed corpus is plain JSON).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/compiled.h"
#include "policy/evaluator.h"
#include "policy/parser.h"
#include "policy/policy.h"

namespace {

namespace policy = moatless::policy;
using policy::CompiledPolicy;
using policy::CompiledPolicyPtr;
using policy::Decision;
using policy::PolicySet;
using policy::PolicyType;
using policy::PrincipalKind;
using policy::RequestContext;

void Require(bool condition) {
  if (!condition) __builtin_trap();
}

constexpr PolicyType kTypes[] = {PolicyType::kIdentity, PolicyType::kBoundary,
                                 PolicyType::kSession,  PolicyType::kGuardrail,
                                 PolicyType::kResource, PolicyType::kTrust};

std::vector<RequestContext> MakeRequests() {
  std::vector<RequestContext> requests;
  RequestContext session;
  session.principal_arn = "arn:aws:sts::111122223333:assumed-role/fn-orders/s1";
  session.principal_kind = PrincipalKind::kRoleSession;
  session.principal_account = "111122223333";
  session.issuer_arn = "arn:aws:iam::111122223333:role/fn-orders";
  session.principal_tags = {{"team", "orders"}, {"stage", "prod"}};
  session.action = "secretsmanager:GetSecretValue";
  session.resource = "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/orders/db-AbCdEf";
  session.resource_tags = {{"team", "orders"}, {"Stage", "prod"}};
  session.context.Set("aws:SourceIp", "10.1.2.3");
  session.context.Set("aws:CurrentTime", "2026-01-01T12:00:00Z");
  session.context.Set("aws:EpochTime", "1767268800");
  session.context.Set("aws:SecureTransport", "true");
  session.context.Set("aws:username", "fn-orders");
  session.context.Set("aws:PrincipalType", "AssumedRole");
  session.context.SetMulti("aws:TagKeys", {"team", "cost-center"});
  session.context.SetMulti("aws:CalledVia", {});
  requests.push_back(session);

  RequestContext user;
  user.principal_arn = "arn:aws:iam::444455556666:user/alice";
  user.principal_kind = PrincipalKind::kUser;
  user.principal_account = "444455556666";
  user.action = "s3:PutObject";
  user.resource = "arn:aws:s3:::orders-bucket/uploads/2026/${x}/a?b*c";
  user.resource_account = "111122223333";
  user.context.Set("aws:SourceIp", "2001:db8::1");
  user.context.Set("s3:x-amz-server-side-encryption", "aws:kms");
  user.context.Set("aws:MultiFactorAuthAge", "not-a-number");
  requests.push_back(user);

  RequestContext anonymous;
  anonymous.principal_kind = PrincipalKind::kAnonymous;
  anonymous.action = "lambda:InvokeFunction";
  anonymous.resource = "arn:aws:lambda:eu-west-1:111122223333:function:hello:live";
  requests.push_back(anonymous);
  return requests;
}

const std::vector<RequestContext>& Requests() {
  static const std::vector<RequestContext>* requests =
      new std::vector<RequestContext>(MakeRequests());
  return *requests;
}

const CompiledPolicyPtr& AllowAll() {
  static const CompiledPolicyPtr* allow = [] {
    auto r = CompiledPolicy::FromJson(
        R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}})",
        "allow-all", {.type = PolicyType::kIdentity});
    Require(r.ok());
    return new CompiledPolicyPtr(*r);
  }();
  return *allow;
}

// Puts compiled into the layer its type belongs to, with allow-all where another layer must
// allow for compiled to matter.
PolicySet SetFor(const CompiledPolicyPtr& compiled, PolicyType type) {
  PolicySet set;
  switch (type) {
    case PolicyType::kIdentity:
      set.identity = {compiled};
      break;
    case PolicyType::kBoundary:
      set.identity = {AllowAll()};
      set.boundary = compiled;
      break;
    case PolicyType::kSession:
      set.identity = {AllowAll()};
      set.session = compiled;
      break;
    case PolicyType::kGuardrail:
      set.identity = {AllowAll()};
      set.guardrails = {{AllowAll()}, {compiled}};
      break;
    case PolicyType::kResource:
      set.resource = compiled;
      break;
    case PolicyType::kTrust:
      set.identity = {AllowAll()};
      set.resource = compiled;
      set.resource_policy_must_allow = true;
      break;
  }
  return set;
}

void CheckDecision(const policy::EvaluationResult& result, const RequestContext& request) {
  if (!result.error.empty()) Require(!result.allowed());
  if (result.decision == Decision::kImplicitlyDenied && result.error.empty()) {
    Require(result.missing_allow.has_value());
  }
  if (result.decision == Decision::kExplicitlyDenied) Require(!result.statements.empty());
  Require(!result.Message(request).empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  for (const PolicyType type : kTypes) {
    const policy::ParseOptions options{.type = type};
    auto parsed = policy::ParsePolicy(json, options);
    if (!parsed.ok()) {
      Require(!parsed.status().ok());
      continue;
    }
    Require(policy::ValidatePolicy(*parsed, options).ok());
    auto compiled = CompiledPolicy::Compile(*parsed, "fuzz", type);
    Require(compiled.ok());
    const PolicySet set = SetFor(*compiled, type);
    for (const RequestContext& request : Requests()) {
      const policy::EvaluationResult first = policy::Evaluate(request, set);
      CheckDecision(first, request);
      const policy::EvaluationResult again = policy::Evaluate(request, set);
      Require(first.decision == again.decision && first.statements == again.statements &&
              first.missing_allow == again.missing_allow && first.error == again.error);
    }
  }
  return 0;
}
