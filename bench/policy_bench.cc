// Policy engine benchmarks (issue 3): decisions per second and per-decision latency of Evaluate()
// on compiled policies, single-threaded, for
//   (a) a typical function role: 12 statements with wildcards and 3 conditions, plus a boundary;
//   (b) a large role of 1,000 statements over 27 services (plus a boundary);
//   (c) (a) under a deny-heavy guardrail set (two SCP-like levels, 23 Deny statements).
// Policies are compiled once, outside the timed loops. Each case cycles through a fixed mix of
// request contexts over real AWS action names (allowed, implicitly and explicitly denied, case
// variants), built before timing. BM_*_Throughput reports decisions/s (items_per_second);
// BM_*_Latency times every decision with steady_clock and reports p50/p99/p999 in ns (clock
// overhead, measured first, subtracted) as counters. allowed_pct says how the mix decided;
// POLICY_BENCH_VERBOSE=1 prints every request's decision once, before timing.
// POLICY_BENCH_DUMP=FILE first writes every case as JSON (the policy texts, every request and
// moatless's decision) for bench/node/policy_compare.mjs, which replays the same requests through
// other engines in the same run.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "policy/compiled.h"
#include "policy/evaluator.h"

namespace moatless::policy {
namespace {

constexpr char kAccount[] = "111122223333";

// A case's policies as written: compiled for timing, and dumped for the other engines.
struct PolicyText {
  std::string name;
  std::string json;
};
struct PolicySources {
  std::vector<PolicyText> identity;
  std::optional<PolicyText> boundary;
  std::vector<std::vector<PolicyText>> guardrails;  // levels, root first
};

CompiledPolicyPtr MustCompile(const std::string& json, const std::string& name, PolicyType type) {
  auto r = CompiledPolicy::FromJson(json, name, {.type = type});
  if (!r.ok()) {
    std::fprintf(stderr, "policy_bench: %s does not compile: %s\n", name.c_str(),
                 r.status().ToString().c_str());
    std::abort();
  }
  return *r;
}

// --- (a) typical function role --------------------------------------------------------------

// 12 statements, wildcards in actions and resources, 3 conditions (team tag, SSE, kms:ViaService).
constexpr char kTypicalRole[] = R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "ReadSecrets", "Effect": "Allow",
     "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
     "Resource": "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/orders/*",
     "Condition": {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}},
    {"Sid": "Queue", "Effect": "Allow",
     "Action": ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
     "Resource": "arn:aws:sqs:us-east-1:111122223333:orders-*"},
    {"Sid": "Table", "Effect": "Allow",
     "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"],
     "Resource": ["arn:aws:dynamodb:us-east-1:111122223333:table/orders",
                  "arn:aws:dynamodb:us-east-1:111122223333:table/orders/index/*"]},
    {"Sid": "ReadObjects", "Effect": "Allow", "Action": "s3:Get*",
     "Resource": "arn:aws:s3:::acme-orders/*"},
    {"Sid": "WriteUploads", "Effect": "Allow", "Action": "s3:PutObject",
     "Resource": "arn:aws:s3:::acme-orders/uploads/${aws:username}/*",
     "Condition": {"StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
    {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
     "Resource": "arn:aws:logs:us-east-1:111122223333:log-group:/moatless/orders:*"},
    {"Sid": "Invoke", "Effect": "Allow", "Action": "lambda:InvokeFunction",
     "Resource": "arn:aws:lambda:us-east-1:111122223333:function:orders-*"},
    {"Sid": "Decrypt", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
     "Resource": "arn:aws:kms:us-east-1:111122223333:key/*",
     "Condition": {"StringLike": {"kms:ViaService": ["secretsmanager.*.amazonaws.com", "s3.*.amazonaws.com"]}}},
    {"Sid": "Publish", "Effect": "Allow", "Action": "sns:Publish",
     "Resource": "arn:aws:sns:us-east-1:111122223333:orders-events"},
    {"Sid": "Events", "Effect": "Allow", "Action": "events:PutEvents",
     "Resource": "arn:aws:events:us-east-1:111122223333:event-bus/default"},
    {"Sid": "Tracing", "Effect": "Allow",
     "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource": "*"},
    {"Sid": "NoDestroy", "Effect": "Deny",
     "Action": ["secretsmanager:DeleteSecret", "s3:DeleteObject*", "dynamodb:DeleteTable"],
     "Resource": "*"}
  ]
})";

constexpr char kBoundary[] = R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Ceiling", "Effect": "Allow",
     "Action": ["secretsmanager:Get*", "secretsmanager:Describe*", "sqs:*", "dynamodb:*", "s3:*",
                "logs:*", "lambda:InvokeFunction", "kms:Decrypt", "kms:GenerateDataKey*",
                "sns:Publish", "events:PutEvents", "xray:*"],
     "Resource": "*"},
    {"Sid": "NoIdentityAdmin", "Effect": "Deny", "Action": ["iam:*", "sts:*", "organizations:*"],
     "Resource": "*"}
  ]
})";

RequestContext Session(std::string action, std::string resource) {
  RequestContext r;
  r.principal_arn = "arn:aws:sts::111122223333:assumed-role/fn-orders/inv-7f3a";
  r.principal_kind = PrincipalKind::kRoleSession;
  r.principal_account = kAccount;
  r.issuer_arn = "arn:aws:iam::111122223333:role/fn-orders";
  r.principal_tags = {{"team", "orders"}, {"stage", "prod"}};
  r.action = std::move(action);
  r.resource = std::move(resource);
  r.context.Set("aws:username", "fn-orders");
  r.context.Set("aws:SourceIp", "10.20.30.40");
  r.context.Set("aws:SecureTransport", "true");
  r.context.Set("aws:CurrentTime", "2026-11-23T12:00:00Z");
  r.context.Set("aws:EpochTime", "1795435200");
  r.context.Set("aws:RequestedRegion", "us-east-1");
  r.context.Set("aws:PrincipalType", "AssumedRole");
  return r;
}

RequestContext WithResourceTag(RequestContext r, std::string key, std::string value) {
  r.resource_tags[std::move(key)] = std::move(value);
  return r;
}

RequestContext WithKey(RequestContext r, const std::string& key, std::string value) {
  r.context.Set(key, std::move(value));
  return r;
}

// What a function with the typical role calls: mostly its own resources (allowed), plus the
// denials a busy platform sees (other teams' secrets, neighbouring queues, destroy attempts,
// actions outside the boundary, missing encryption, case variants of action names).
std::vector<RequestContext> TypicalRequests() {
  const std::string secret =
      "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/orders/db-a1B2c3";
  const std::string other_secret =
      "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/billing/db-x9Y8z7";
  const std::string queue = "arn:aws:sqs:us-east-1:111122223333:orders-incoming";
  const std::string table = "arn:aws:dynamodb:us-east-1:111122223333:table/orders";
  const std::string key =
      "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
  std::vector<RequestContext> v;
  v.push_back(WithResourceTag(Session("secretsmanager:GetSecretValue", secret), "team", "orders"));
  v.push_back(WithResourceTag(Session("secretsmanager:DescribeSecret", secret), "team", "orders"));
  v.push_back(
      WithResourceTag(Session("secretsmanager:GetSecretValue", other_secret), "team", "billing"));
  v.push_back(WithResourceTag(Session("secretsmanager:GetSecretValue", secret), "team", "billing"));
  v.push_back(Session("secretsmanager:DeleteSecret", secret));
  v.push_back(WithResourceTag(Session("secretsmanager:PutSecretValue", secret), "team", "orders"));
  v.push_back(Session("sqs:SendMessage", queue));
  v.push_back(Session("sqs:ReceiveMessage", queue));
  v.push_back(Session("SQS:deletemessage", queue));
  v.push_back(Session("sqs:SendMessage", "arn:aws:sqs:us-east-1:111122223333:billing-incoming"));
  v.push_back(Session("sqs:PurgeQueue", queue));
  v.push_back(Session("dynamodb:GetItem", table));
  v.push_back(Session("dynamodb:Query", table + "/index/by-customer"));
  v.push_back(Session("dynamodb:PutItem", table));
  v.push_back(Session("dynamodb:Scan", table));
  v.push_back(Session("dynamodb:DeleteTable", table));
  v.push_back(
      Session("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:111122223333:table/orders-archive"));
  v.push_back(Session("s3:GetObject", "arn:aws:s3:::acme-orders/invoices/2026/11/inv-1001.pdf"));
  v.push_back(
      Session("s3:GetObjectTagging", "arn:aws:s3:::acme-orders/invoices/2026/11/inv-1001.pdf"));
  v.push_back(
      WithKey(Session("s3:PutObject", "arn:aws:s3:::acme-orders/uploads/fn-orders/batch-17.csv"),
              "s3:x-amz-server-side-encryption", "aws:kms"));
  v.push_back(
      WithKey(Session("s3:PutObject", "arn:aws:s3:::acme-orders/uploads/fn-orders/batch-18.csv"),
              "s3:x-amz-server-side-encryption", "AES256"));
  v.push_back(
      WithKey(Session("s3:PutObject", "arn:aws:s3:::acme-orders/uploads/fn-billing/batch-1.csv"),
              "s3:x-amz-server-side-encryption", "aws:kms"));
  v.push_back(Session("s3:DeleteObject", "arn:aws:s3:::acme-orders/invoices/2026/11/inv-1001.pdf"));
  v.push_back(Session("s3:GetObject", "arn:aws:s3:::acme-billing/ledger.csv"));
  v.push_back(Session(
      "logs:CreateLogStream",
      "arn:aws:logs:us-east-1:111122223333:log-group:/moatless/orders:log-stream:2026/11/23"));
  v.push_back(Session(
      "logs:PutLogEvents",
      "arn:aws:logs:us-east-1:111122223333:log-group:/moatless/orders:log-stream:2026/11/23"));
  v.push_back(Session("logs:DeleteLogGroup",
                      "arn:aws:logs:us-east-1:111122223333:log-group:/moatless/orders"));
  v.push_back(Session("lambda:InvokeFunction",
                      "arn:aws:lambda:us-east-1:111122223333:function:orders-notify"));
  v.push_back(Session("lambda:InvokeFunction",
                      "arn:aws:lambda:us-east-1:111122223333:function:billing-charge"));
  v.push_back(Session("lambda:UpdateFunctionCode",
                      "arn:aws:lambda:us-east-1:111122223333:function:orders-notify"));
  v.push_back(WithKey(Session("kms:Decrypt", key), "kms:ViaService",
                      "secretsmanager.us-east-1.amazonaws.com"));
  v.push_back(
      WithKey(Session("kms:GenerateDataKey", key), "kms:ViaService", "s3.us-east-1.amazonaws.com"));
  v.push_back(Session("kms:Decrypt", key));
  v.push_back(Session("sns:Publish", "arn:aws:sns:us-east-1:111122223333:orders-events"));
  v.push_back(Session("sns:Publish", "arn:aws:sns:us-east-1:111122223333:ops-alerts"));
  v.push_back(
      Session("events:PutEvents", "arn:aws:events:us-east-1:111122223333:event-bus/default"));
  v.push_back(Session("xray:PutTraceSegments", "*"));
  v.push_back(Session("iam:PassRole", "arn:aws:iam::111122223333:role/admin"));
  v.push_back(Session("sts:AssumeRole", "arn:aws:iam::111122223333:role/admin"));
  v.push_back(Session("ec2:DescribeInstances", "*"));
  return v;
}

PolicySources TypicalSources() {
  return {.identity = {{"fn-orders", kTypicalRole}},
          .boundary = PolicyText{"function-boundary", kBoundary}};
}

// --- (b) large role -------------------------------------------------------------------------

struct Service {
  const char* prefix;
  std::vector<const char*> actions;
  const char* arn_head;  // resource ARN up to the resource name
};

const std::vector<Service>& Services() {
  static const auto* services = new std::vector<Service>{
      {"s3", {"GetObject", "PutObject", "GetObjectTagging", "ListBucket"}, "arn:aws:s3:::"},
      {"dynamodb",
       {"GetItem", "PutItem", "UpdateItem", "Query", "Scan", "BatchWriteItem"},
       "arn:aws:dynamodb:us-east-1:111122223333:table/"},
      {"sqs",
       {"SendMessage", "ReceiveMessage", "DeleteMessage", "GetQueueAttributes"},
       "arn:aws:sqs:us-east-1:111122223333:"},
      {"sns",
       {"Publish", "Subscribe", "ListSubscriptionsByTopic"},
       "arn:aws:sns:us-east-1:111122223333:"},
      {"secretsmanager",
       {"GetSecretValue", "DescribeSecret", "PutSecretValue", "RotateSecret"},
       "arn:aws:secretsmanager:us-east-1:111122223333:secret:"},
      {"lambda",
       {"InvokeFunction", "GetFunction", "UpdateFunctionCode"},
       "arn:aws:lambda:us-east-1:111122223333:function:"},
      {"kms",
       {"Decrypt", "Encrypt", "GenerateDataKey", "DescribeKey"},
       "arn:aws:kms:us-east-1:111122223333:key/"},
      {"logs",
       {"CreateLogGroup", "CreateLogStream", "PutLogEvents"},
       "arn:aws:logs:us-east-1:111122223333:log-group:"},
      {"events",
       {"PutEvents", "PutRule", "PutTargets"},
       "arn:aws:events:us-east-1:111122223333:rule/"},
      {"states",
       {"StartExecution", "DescribeExecution", "StopExecution"},
       "arn:aws:states:us-east-1:111122223333:stateMachine:"},
      {"kinesis",
       {"PutRecord", "PutRecords", "GetRecords", "GetShardIterator"},
       "arn:aws:kinesis:us-east-1:111122223333:stream/"},
      {"ssm",
       {"GetParameter", "GetParameters", "GetParametersByPath"},
       "arn:aws:ssm:us-east-1:111122223333:parameter/"},
      {"ecr",
       {"BatchGetImage", "GetDownloadUrlForLayer", "BatchCheckLayerAvailability"},
       "arn:aws:ecr:us-east-1:111122223333:repository/"},
      {"cloudwatch",
       {"DescribeAlarms", "PutMetricAlarm", "SetAlarmState"},
       "arn:aws:cloudwatch:us-east-1:111122223333:alarm:"},
      {"rds-data",
       {"ExecuteStatement", "BatchExecuteStatement", "BeginTransaction"},
       "arn:aws:rds:us-east-1:111122223333:cluster:"},
      {"ses", {"SendEmail", "SendRawEmail"}, "arn:aws:ses:us-east-1:111122223333:identity/"},
      {"firehose",
       {"PutRecord", "PutRecordBatch"},
       "arn:aws:firehose:us-east-1:111122223333:deliverystream/"},
      {"glue",
       {"GetTable", "GetDatabase", "GetPartitions"},
       "arn:aws:glue:us-east-1:111122223333:table/"},
      {"athena",
       {"StartQueryExecution", "GetQueryResults", "GetQueryExecution"},
       "arn:aws:athena:us-east-1:111122223333:workgroup/"},
      {"elasticfilesystem",
       {"ClientMount", "ClientWrite"},
       "arn:aws:elasticfilesystem:us-east-1:111122223333:file-system/"},
      {"appsync", {"GraphQL"}, "arn:aws:appsync:us-east-1:111122223333:apis/"},
      {"execute-api",
       {"Invoke", "ManageConnections"},
       "arn:aws:execute-api:us-east-1:111122223333:"},
      {"cognito-idp",
       {"AdminGetUser", "AdminUpdateUserAttributes", "ListUsers"},
       "arn:aws:cognito-idp:us-east-1:111122223333:userpool/"},
      {"ec2",
       {"DescribeInstances", "StartInstances", "StopInstances"},
       "arn:aws:ec2:us-east-1:111122223333:instance/"},
      {"ecs",
       {"RunTask", "DescribeTasks", "StopTask"},
       "arn:aws:ecs:us-east-1:111122223333:task-definition/"},
      {"sagemaker",
       {"InvokeEndpoint", "DescribeEndpoint"},
       "arn:aws:sagemaker:us-east-1:111122223333:endpoint/"},
      {"codebuild",
       {"StartBuild", "BatchGetBuilds"},
       "arn:aws:codebuild:us-east-1:111122223333:project/"},
  };
  return *services;
}

constexpr int kLargeStatements = 1000;

// Statement i grants 1-3 actions of service i % 27 on resources named "app<i>-*"; every 25th has
// a tag condition, every 40th is a Deny of one action on "app<i>-locked*".
std::string LargeRole() {
  const auto& services = Services();
  std::string doc = R"({"Version":"2012-10-17","Statement":[)";
  for (int i = 0; i < kLargeStatements; ++i) {
    const Service& s = services[i % services.size()];
    const std::string name = "app" + std::to_string(i);
    const bool deny = i % 40 == 39;
    std::string actions;
    const std::size_t n = deny ? 1 : 1 + i % 3;
    for (std::size_t k = 0; k < n && k < s.actions.size(); ++k) {
      if (!actions.empty()) actions += ",";
      actions += "\"" + std::string(s.prefix) + ":" + s.actions[(i + k) % s.actions.size()] + "\"";
    }
    if (i != 0) doc += ",";
    doc += R"({"Sid":"S)" + std::to_string(i) + R"(","Effect":")" + (deny ? "Deny" : "Allow") +
           R"(","Action":[)" + actions + R"(],"Resource":")" + s.arn_head + name +
           (deny ? "-locked*" : "-*") + "\"";
    if (i % 25 == 0) {
      doc += R"(,"Condition":{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}})";
    }
    doc += "}";
  }
  return doc + "]}";
}

std::vector<RequestContext> LargeRequests() {
  const auto& services = Services();
  std::vector<RequestContext> v;
  std::uint32_t x = 12345;
  auto next = [&x] { return x = x * 1664525u + 1013904223u; };
  for (int n = 0; n < 64; ++n) {
    const int i = static_cast<int>(next() % kLargeStatements);
    const Service& s = services[i % services.size()];
    const std::size_t granted = 1 + i % 3;
    std::string resource = std::string(s.arn_head) + "app" + std::to_string(i) + "-prod";
    std::size_t action = (i + next() % granted) % s.actions.size();
    switch (n % 4) {
      case 0:  // granted action, matching resource
      case 1:
        break;
      case 2:  // neighbouring resource (app<i+1> is another service's or not granted)
        resource = std::string(s.arn_head) + "other" + std::to_string(i) + "-prod";
        break;
      case 3:  // an action the statement does not grant (unless another statement does)
        action = (i + granted) % s.actions.size();
        break;
    }
    v.push_back(WithResourceTag(
        Session(std::string(s.prefix) + ":" + s.actions[action], std::move(resource)), "team",
        n % 8 == 0 ? "billing" : "orders"));
  }
  return v;
}

PolicySources LargeSources() {
  return {.identity = {{"large-role", LargeRole()}},
          .boundary = PolicyText{"function-boundary", R"({"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"*","Resource":"*"},
        {"Effect":"Deny","Action":["iam:*","organizations:*","account:*"],"Resource":"*"}]})"}};
}

// --- (c) deny-heavy guardrails ----------------------------------------------------------------

// Root level: organisation-wide SCP denies. Stage level: the prod stage's guardrails.
constexpr char kRootGuardrails[] = R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "AllowAll", "Effect": "Allow", "Action": "*", "Resource": "*"},
    {"Sid": "DenyOutsideRegions", "Effect": "Deny",
     "NotAction": ["iam:*", "sts:*", "organizations:*", "support:*", "cloudfront:*", "route53:*"],
     "Resource": "*",
     "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}}},
    {"Sid": "DenyLeaveOrg", "Effect": "Deny", "Action": "organizations:LeaveOrganization", "Resource": "*"},
    {"Sid": "DenyRoot", "Effect": "Deny", "Action": "*", "Resource": "*",
     "Condition": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}}},
    {"Sid": "DenyCloudTrailOff", "Effect": "Deny",
     "Action": ["cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail"], "Resource": "*"},
    {"Sid": "DenyConfigOff", "Effect": "Deny",
     "Action": ["config:DeleteConfigRule", "config:StopConfigurationRecorder", "config:DeleteDeliveryChannel"], "Resource": "*"},
    {"Sid": "DenyGuardDutyOff", "Effect": "Deny",
     "Action": ["guardduty:DeleteDetector", "guardduty:DisassociateFromMasterAccount", "guardduty:UpdateDetector"], "Resource": "*"},
    {"Sid": "DenyPublicS3", "Effect": "Deny",
     "Action": ["s3:PutBucketPublicAccessBlock", "s3:DeletePublicAccessBlock", "s3:PutAccountPublicAccessBlock"], "Resource": "*"},
    {"Sid": "DenyUnencryptedObjects", "Effect": "Deny", "Action": "s3:PutObject", "Resource": "*",
     "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": ["aws:kms", "AES256"]}}},
    {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Action": "*", "Resource": "*",
     "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    {"Sid": "DenyKmsKeyDeletion", "Effect": "Deny",
     "Action": ["kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy"], "Resource": "*"},
    {"Sid": "DenyIamUsers", "Effect": "Deny",
     "Action": ["iam:CreateUser", "iam:CreateAccessKey", "iam:CreateLoginProfile"], "Resource": "*"},
    {"Sid": "DenyVpcChanges", "Effect": "Deny",
     "Action": ["ec2:CreateVpc", "ec2:DeleteVpc", "ec2:AttachInternetGateway", "ec2:CreateNatGateway"], "Resource": "*"}
  ]
})";

constexpr char kStageGuardrails[] = R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "AllowAll", "Effect": "Allow", "Action": "*", "Resource": "*"},
    {"Sid": "DenyOtherStages", "Effect": "Deny", "Action": "*",
     "Resource": ["arn:aws:secretsmanager:*:*:secret:dev/*", "arn:aws:secretsmanager:*:*:secret:staging/*"]},
    {"Sid": "DenyUntaggedCreate", "Effect": "Deny",
     "Action": ["sqs:CreateQueue", "sns:CreateTopic", "dynamodb:CreateTable", "lambda:CreateFunction"],
     "Resource": "*", "Condition": {"Null": {"aws:RequestTag/team": "true"}}},
    {"Sid": "ProtectTags", "Effect": "Deny", "Action": ["*:TagResource", "*:UntagResource"],
     "Resource": "*", "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["stage", "team"]}}},
    {"Sid": "DenyCrossTeamSecrets", "Effect": "Deny", "Action": "secretsmanager:GetSecretValue",
     "Resource": "*",
     "Condition": {"StringNotEqualsIfExists": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}},
    {"Sid": "DenyDataDestroy", "Effect": "Deny",
     "Action": ["dynamodb:DeleteTable", "s3:DeleteBucket", "rds:DeleteDBCluster", "sqs:DeleteQueue", "sqs:PurgeQueue"],
     "Resource": "*"},
    {"Sid": "DenyLambdaConfig", "Effect": "Deny",
     "Action": ["lambda:UpdateFunctionConfiguration", "lambda:UpdateFunctionCode", "lambda:AddPermission"],
     "Resource": "*"},
    {"Sid": "DenyOffHours", "Effect": "Deny", "Action": ["ec2:RunInstances", "ecs:RunTask"], "Resource": "*",
     "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}},
    {"Sid": "DenyFromOutside", "Effect": "Deny", "NotAction": ["xray:*", "logs:*"], "Resource": "*",
     "Condition": {"NotIpAddressIfExists": {"aws:SourceIp": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}},
    {"Sid": "DenyPassRole", "Effect": "Deny", "Action": "iam:PassRole",
     "NotResource": "arn:aws:iam::111122223333:role/fn-*"},
    {"Sid": "DenyLargeBatches", "Effect": "Deny", "Action": "sqs:ReceiveMessage", "Resource": "*",
     "Condition": {"NumericGreaterThan": {"sqs:MaxNumberOfMessages": "10"}}},
    {"Sid": "DenyMarketplace", "Effect": "Deny", "Action": ["aws-marketplace:*", "savingsplans:*"], "Resource": "*"}
  ]
})";

std::vector<RequestContext> GuardrailRequests() {
  std::vector<RequestContext> v = TypicalRequests();
  // What the guardrails are for: requests the role alone would allow or that probe the rails.
  const std::string secret =
      "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/orders/db-a1B2c3";
  v.push_back(
      WithKey(WithResourceTag(Session("secretsmanager:GetSecretValue", secret), "team", "orders"),
              "aws:RequestedRegion", "ap-southeast-2"));
  v.push_back(
      WithKey(Session("sqs:SendMessage", "arn:aws:sqs:us-east-1:111122223333:orders-incoming"),
              "aws:SourceIp", "203.0.113.9"));
  v.push_back(
      WithKey(Session("sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:111122223333:orders-incoming"),
              "sqs:MaxNumberOfMessages", "50"));
  v.push_back(WithKey(Session("s3:GetObject", "arn:aws:s3:::acme-orders/invoices/a.pdf"),
                      "aws:SecureTransport", "false"));
  v.push_back(Session("sqs:PurgeQueue", "arn:aws:sqs:us-east-1:111122223333:orders-incoming"));
  v.push_back(
      Session("kms:ScheduleKeyDeletion", "arn:aws:kms:us-east-1:111122223333:key/1234abcd"));
  v.push_back(
      Session("cloudtrail:StopLogging", "arn:aws:cloudtrail:us-east-1:111122223333:trail/org"));
  v.push_back(Session("secretsmanager:GetSecretValue",
                      "arn:aws:secretsmanager:us-east-1:111122223333:secret:dev/orders/db-q1W2e3"));
  return v;
}

PolicySources GuardrailSources() {
  PolicySources sources = TypicalSources();
  sources.guardrails = {{{"org-root", kRootGuardrails}}, {{"stage-prod", kStageGuardrails}}};
  return sources;
}

// --- harness -----------------------------------------------------------------------------------

struct Case {
  std::string name;
  PolicySources sources;
  PolicySet set;
  std::vector<RequestContext> requests;
  double allowed_pct = 0;
};

PolicySet CompileSources(const PolicySources& sources) {
  PolicySet set;
  for (const PolicyText& p : sources.identity) {
    set.identity.push_back(MustCompile(p.json, p.name, PolicyType::kIdentity));
  }
  if (sources.boundary) {
    set.boundary =
        MustCompile(sources.boundary->json, sources.boundary->name, PolicyType::kBoundary);
  }
  for (const auto& level : sources.guardrails) {
    std::vector<CompiledPolicyPtr> compiled;
    for (const PolicyText& p : level) {
      compiled.push_back(MustCompile(p.json, p.name, PolicyType::kGuardrail));
    }
    set.guardrails.push_back(std::move(compiled));
  }
  return set;
}

Case MakeCase(std::string name, PolicySources sources, std::vector<RequestContext> requests) {
  PolicySet set = CompileSources(sources);
  Case c{std::move(name), std::move(sources), std::move(set), std::move(requests)};
  int allowed = 0;
  for (const auto& r : c.requests) {
    const EvaluationResult result = Evaluate(r, c.set);
    if (!result.error.empty()) {
      std::fprintf(stderr, "policy_bench: evaluation error for %s: %s\n", r.action.c_str(),
                   result.error.c_str());
      std::abort();
    }
    allowed += result.allowed();
    if (std::getenv("POLICY_BENCH_VERBOSE") != nullptr) {
      std::fprintf(stderr, "%-18s %-34s %s\n", std::string(DecisionName(result.decision)).c_str(),
                   r.action.c_str(), r.resource.c_str());
    }
  }
  c.allowed_pct = 100.0 * allowed / static_cast<double>(c.requests.size());
  return c;
}

const Case& Typical() {
  static const Case* c = new Case(MakeCase("typical", TypicalSources(), TypicalRequests()));
  return *c;
}
const Case& Large() {
  static const Case* c = new Case(MakeCase("large", LargeSources(), LargeRequests()));
  return *c;
}
const Case& Guardrails() {
  static const Case* c = new Case(MakeCase("guardrails", GuardrailSources(), GuardrailRequests()));
  return *c;
}

void Throughput(benchmark::State& state, const Case& c) {
  std::size_t i = 0;
  const std::size_t n = c.requests.size();
  for (auto _ : state) {
    EvaluationResult result = Evaluate(c.requests[i], c.set);
    benchmark::DoNotOptimize(result);
    if (++i == n) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["allowed_pct"] = c.allowed_pct;
  state.counters["requests"] = static_cast<double>(n);
}

using Clock = std::chrono::steady_clock;

std::int64_t ClockOverheadNs() {
  std::vector<std::int64_t> samples(20000);
  for (auto& s : samples) {
    const auto t0 = Clock::now();
    const auto t1 = Clock::now();
    s = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
  }
  std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
  return samples[samples.size() / 2];
}

// Times each decision on its own; the percentiles are over every timed decision of the run.
void Latency(benchmark::State& state, const Case& c) {
  const std::int64_t overhead = ClockOverheadNs();
  std::vector<std::int64_t> ns;
  ns.reserve(1 << 20);
  std::size_t i = 0;
  const std::size_t n = c.requests.size();
  for (auto _ : state) {
    const auto t0 = Clock::now();
    EvaluationResult result = Evaluate(c.requests[i], c.set);
    benchmark::DoNotOptimize(result);
    const auto t1 = Clock::now();
    ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count() - overhead);
    if (++i == n) i = 0;
  }
  std::sort(ns.begin(), ns.end());
  auto at = [&ns](double q) {
    return static_cast<double>(
        ns[std::min(ns.size() - 1, static_cast<std::size_t>(q * ns.size()))]);
  };
  state.counters["p50_ns"] = at(0.50);
  state.counters["p99_ns"] = at(0.99);
  state.counters["p999_ns"] = at(0.999);
  state.counters["clock_overhead_ns"] = static_cast<double>(overhead);
}

void BM_TypicalRole_Throughput(benchmark::State& state) { Throughput(state, Typical()); }
void BM_LargeRole1000_Throughput(benchmark::State& state) { Throughput(state, Large()); }
void BM_Guardrails_Throughput(benchmark::State& state) { Throughput(state, Guardrails()); }
void BM_TypicalRole_Latency(benchmark::State& state) { Latency(state, Typical()); }
void BM_LargeRole1000_Latency(benchmark::State& state) { Latency(state, Large()); }
void BM_Guardrails_Latency(benchmark::State& state) { Latency(state, Guardrails()); }

BENCHMARK(BM_TypicalRole_Throughput);
BENCHMARK(BM_LargeRole1000_Throughput);
BENCHMARK(BM_Guardrails_Throughput);
BENCHMARK(BM_TypicalRole_Latency)->Iterations(400000);
BENCHMARK(BM_LargeRole1000_Latency)->Iterations(400000);
BENCHMARK(BM_Guardrails_Latency)->Iterations(400000);

// --- dump for bench/node/policy_compare.mjs ---------------------------------------------------

std::string_view KindName(PrincipalKind kind) {
  switch (kind) {
    case PrincipalKind::kAnonymous:
      return "anonymous";
    case PrincipalKind::kAccountRoot:
      return "account-root";
    case PrincipalKind::kUser:
      return "user";
    case PrincipalKind::kRole:
      return "role";
    case PrincipalKind::kRoleSession:
      return "role-session";
    case PrincipalKind::kFederatedUser:
      return "federated-user";
    case PrincipalKind::kService:
      return "service";
  }
  return "unknown";
}

boost::json::object TextJson(const PolicyText& p) { return {{"name", p.name}, {"policy", p.json}}; }

boost::json::object TagsJson(const std::map<std::string, std::string>& tags) {
  boost::json::object out;
  for (const auto& [k, v] : tags) out[k] = v;
  return out;
}

boost::json::object CaseJson(const Case& c) {
  boost::json::array identity;
  for (const PolicyText& p : c.sources.identity) identity.push_back(TextJson(p));
  boost::json::array guardrails;
  for (const auto& level : c.sources.guardrails) {
    boost::json::array texts;
    for (const PolicyText& p : level) texts.push_back(TextJson(p));
    guardrails.push_back(std::move(texts));
  }
  boost::json::array requests;
  for (const RequestContext& r : c.requests) {
    boost::json::object context;
    r.context.ForEach([&](const std::string& key, const ContextValue& v) {
      if (v.multi) {
        boost::json::array values;
        for (const std::string& value : v.values) values.emplace_back(value);
        context[key] = std::move(values);
      } else if (!v.values.empty()) {
        context[key] = v.values[0];
      }
    });
    requests.push_back(boost::json::object{
        {"principal_arn", r.principal_arn},
        {"principal_kind", KindName(r.principal_kind)},
        {"principal_account", r.principal_account},
        {"issuer_arn", r.issuer_arn},
        {"principal_tags", TagsJson(r.principal_tags)},
        {"action", r.action},
        {"resource", r.resource},
        {"resource_account", r.resource_account},
        {"resource_tags", TagsJson(r.resource_tags)},
        {"context", std::move(context)},
        {"decision", DecisionName(Evaluate(r, c.set).decision)},
    });
  }
  boost::json::object out{{"name", c.name},
                          {"identity", std::move(identity)},
                          {"guardrails", std::move(guardrails)},
                          {"requests", std::move(requests)}};
  if (c.sources.boundary) out["boundary"] = TextJson(*c.sources.boundary);
  return out;
}

bool Dump(const char* path) {
  boost::json::array cases;
  for (const Case* c : {&Typical(), &Large(), &Guardrails()}) cases.push_back(CaseJson(*c));
  std::ofstream out(path);
  out << boost::json::serialize(boost::json::object{{"cases", std::move(cases)}}) << "\n";
  out.close();
  if (!out) std::fprintf(stderr, "policy_bench: cannot write %s\n", path);
  return static_cast<bool>(out);
}

}  // namespace
}  // namespace moatless::policy

int main(int argc, char** argv) {
  if (const char* path = std::getenv("POLICY_BENCH_DUMP"); path != nullptr && *path != '\0') {
    if (!moatless::policy::Dump(path)) return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
