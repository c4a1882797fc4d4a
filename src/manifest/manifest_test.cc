#include "manifest/manifest.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <string>

namespace moatless::manifest {
namespace {

namespace fs = std::filesystem;

// The issue's example manifest, complete.
constexpr std::string_view kNotes = R"(app: notes
stage: dev
functions:
  create-note:
    runtime: nodejs20
    handler: index.handler
    code: functions/create-note
    memory: 256
    timeout: 10
    concurrency: 20
    environment: { LOG_LEVEL: info }
    egress: []
    policy:
      - Effect: Allow
        Action: secretsmanager:GetSecretValue
        Resource: secret:db
      - Effect: Allow
        Action: lambda:InvokeFunction
        Resource: [function:get-note]
  get-note:
    runtime: python3
    handler: app.handler
    code: functions/get-note
  health:
    runtime: nodejs20
    handler: index.handler
    code: functions/health
routes:
  - route: POST /notes
    function: create-note
    auth: { jwt: users, scopes: [notes.write] }
    schema: schemas/note.json
  - route: GET /notes/{id}
    function: get-note
    auth: { api_key: true, usage_plan: basic }
  - route: GET /health
    function: health
    auth: none
authorizers:
  users: { type: jwt, issuer: "https://id.example.com", audience: [notes-api], jwks: keys/jwks.json }
usage_plans:
  basic: { rate: 10, burst: 20, quota: { limit: 10000, period: day } }
secrets:
  db: { description: database credentials, rotation: { function: get-note, every: 30d } }
alerts:
  - { function: create-note, metric: errors, above: 5, for: 5m }
)";

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moatless-manifest-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Write("functions/create-note/index.js", "exports.handler = async () => ({});\n");
    Write("functions/get-note/app.py", "def handler(event, context):\n    return {}\n");
    Write("functions/health/index.mjs", "export const handler = async () => ({});\n");
    Write("schemas/note.json", R"({"type": "object"})");
    Write("keys/jwks.json", R"({"keys": []})");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& relative, std::string_view text) {
    const fs::path path = fs::path(dir_) / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  ParseOutcome Parse(std::string_view yaml, std::string stage = "") {
    ParseOptions options;
    options.base_dir = dir_;
    options.stage = std::move(stage);
    options.region = "eu-west-1";
    options.account_id = "123456789012";
    return ParseManifest(yaml, options);
  }
  // The one diagnostic of a manifest that has exactly one problem, as "line:column: message".
  std::string OneError(std::string_view yaml) {
    ParseOutcome outcome = Parse(yaml);
    EXPECT_FALSE(outcome.manifest.has_value());
    if (outcome.diagnostics.size() != 1) {
      ADD_FAILURE() << outcome.ToStatus("moatless.yaml").message();
      return "";
    }
    const Diagnostic& d = outcome.diagnostics[0];
    return std::to_string(d.at.line) + ":" + std::to_string(d.at.column) + ": " + d.message;
  }
  // The example with one line replaced.
  static std::string Edit(std::string_view from, std::string_view to) {
    std::string text(kNotes);
    const std::size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
  }

  std::string dir_;
};

TEST_F(ManifestTest, ParsesTheWholeModel) {
  ParseOutcome outcome = Parse(kNotes);
  ASSERT_TRUE(outcome.manifest.has_value()) << outcome.ToStatus("moatless.yaml").message();
  const Manifest& m = *outcome.manifest;
  EXPECT_EQ(m.app, "notes");
  EXPECT_EQ(m.stage, "dev");
  ASSERT_EQ(m.functions.size(), 3u);
  const FunctionSpec& create = m.functions.at("create-note");
  EXPECT_EQ(create.runtime, runtime::RuntimeKind::kNodejs20);
  EXPECT_EQ(create.code, "functions/create-note");
  EXPECT_EQ(create.memory_mb, 256u);
  EXPECT_EQ(create.timeout_s, 10u);
  EXPECT_EQ(create.concurrency, 20u);
  EXPECT_EQ(create.environment.at("LOG_LEVEL"), "info");
  EXPECT_TRUE(create.egress.empty());
  EXPECT_EQ(create.at.line, 5);  // where its definition starts
  EXPECT_EQ(m.functions.at("get-note").runtime, runtime::RuntimeKind::kPython3);
  EXPECT_TRUE(m.functions.at("get-note").policy.empty());  // no policy: it may do nothing

  // Short forms expand to the app's own resources in its own stage.
  const boost::json::value policy = boost::json::parse(create.policy);
  const auto& statements = policy.at("Statement").as_array();
  ASSERT_EQ(statements.size(), 2u);
  EXPECT_EQ(statements[0].at("Resource").as_array()[0].as_string(),
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dev/notes/db-??????");
  const auto& functions = statements[1].at("Resource").as_array();
  ASSERT_EQ(functions.size(), 2u);
  EXPECT_EQ(functions[0].as_string(),
            "arn:aws:lambda:eu-west-1:123456789012:function:notes_dev_get-note");
  EXPECT_EQ(functions[1].as_string(),
            "arn:aws:lambda:eu-west-1:123456789012:function:notes_dev_get-note:*");

  ASSERT_EQ(m.routes.size(), 3u);
  EXPECT_EQ(m.routes[0].key(), "POST /notes");
  EXPECT_EQ(m.routes[0].auth.kind, AuthSpec::Kind::kJwt);
  EXPECT_EQ(m.routes[0].auth.authorizer, "users");
  EXPECT_EQ(m.routes[0].auth.scopes, std::vector<std::string>{"notes.write"});
  EXPECT_EQ(m.routes[0].schema, "schemas/note.json");
  EXPECT_EQ(m.routes[1].auth.kind, AuthSpec::Kind::kApiKey);
  EXPECT_EQ(m.routes[1].auth.usage_plan, "basic");
  EXPECT_EQ(m.routes[2].auth.kind, AuthSpec::Kind::kNone);
  EXPECT_EQ(m.authorizers.at("users").audience, std::vector<std::string>{"notes-api"});
  EXPECT_EQ(m.usage_plans.at("basic").burst, 20u);
  EXPECT_EQ(m.usage_plans.at("basic").quota_limit, 10000u);
  EXPECT_EQ(m.usage_plans.at("basic").quota_period, "day");
  EXPECT_EQ(m.secrets.at("db").rotation_every_s, 30 * 86400);
  ASSERT_EQ(m.alerts.size(), 1u);
  EXPECT_EQ(m.alerts[0].for_s, 300);
  EXPECT_EQ(m.alerts[0].key(), "create-note errors > 5 over 300s for 300s");
}

TEST_F(ManifestTest, StageFlagOverridesTheManifest) {
  ParseOutcome outcome = Parse(kNotes, "prod");
  ASSERT_TRUE(outcome.manifest.has_value());
  EXPECT_EQ(outcome.manifest->stage, "prod");
  EXPECT_NE(outcome.manifest->functions.at("create-note").policy.find("secret:prod/notes/db-"),
            std::string::npos);
  EXPECT_EQ(Parse(kNotes, "Prod!").diagnostics.size(), 1u);
}

TEST_F(ManifestTest, EveryErrorNamesLineAndColumnAndWhatWasExpected) {
  EXPECT_EQ(OneError(Edit("    memory: 256", "    memroy: 256")),
            "8:5: functions.create-note: unknown key 'memroy'; expected one of runtime, handler, "
            "code, memory, timeout, concurrency, environment, egress, policy");
  EXPECT_EQ(OneError(Edit("memory: 256", "memory: lots")),
            "8:13: functions.create-note.memory: expected an integer in [128, 10240], not 'lots'");
  EXPECT_EQ(OneError(Edit("memory: 256", "memory: 64")),
            "8:13: functions.create-note.memory: 64 is out of range; expected [128, 10240]");
  EXPECT_EQ(OneError(Edit("timeout: 10", "timeout: 901")),
            "9:14: functions.create-note.timeout: 901 is out of range; expected [1, 900]");
  EXPECT_EQ(OneError(Edit("runtime: python3", "runtime: ruby")),
            "21:14: functions.get-note.runtime: unknown runtime 'ruby'; expected nodejs20, "
            "python3 or provided");
}

TEST_F(ManifestTest, RoutesMustDeclareAuth) {
  const std::string error = OneError(Edit("    auth: none\n", ""));
  EXPECT_TRUE(error.starts_with("36:5: routes[2]: 'auth' is required")) << error;
}

TEST_F(ManifestTest, DuplicateRoutesDifferOnlyInParameterNames) {
  const std::string yaml = Edit("  - route: GET /health", "  - route: GET /notes/{note}");
  EXPECT_EQ(OneError(yaml),
            "36:12: routes[2].route: 'GET /notes/{note}' duplicates the route at line 33");
  EXPECT_TRUE(Parse(Edit("  - route: GET /health", "  - route: PUT /notes/{note}")).manifest);
}

TEST_F(ManifestTest, GatewaySettingsAreParsedWithTheirDefaults) {
  ParseOutcome plain = Parse(kNotes);
  ASSERT_TRUE(plain.manifest) << plain.ToStatus("moatless.yaml");
  const AuthorizerSpec& users = plain.manifest->authorizers.at("users");
  EXPECT_EQ(users.leeway_s, 30);
  EXPECT_TRUE(users.identity_sources.empty());  // the gateway's default: Authorization
  EXPECT_FALSE(plain.manifest->cors.has_value());

  std::string yaml = Edit(
      "  users: { type: jwt, issuer: \"https://id.example.com\", audience: [notes-api], jwks: "
      "keys/jwks.json }",
      "  users:\n"
      "    type: jwt\n"
      "    issuer: \"https://id.example.com\"\n"
      "    audience: notes-api\n"
      "    identity_source: $request.querystring.token\n"
      "    leeway: 1m\n"
      "    jwks: { keys: [ { kty: OKP, crv: Ed25519, x: abc } ] }\n"
      "  gate:\n"
      "    type: function\n"
      "    function: health\n"
      "    identity_source: [$request.header.X-Token, $context.routeKey]\n"
      "    response: iam\n"
      "  plain: { type: function, function: health }");
  yaml = std::string(yaml).replace(yaml.find("period: day }"), 13, "period: day, offset: 5 }");
  yaml +=
      "cors:\n  allow_origins: [\"https://app.example.com\"]\n  allow_headers: [X-Token]\n"
      "  max_age: 10m\n  allow_credentials: true\n";
  ParseOutcome outcome = Parse(yaml);
  ASSERT_TRUE(outcome.manifest) << outcome.ToStatus("moatless.yaml");
  const Manifest& m = *outcome.manifest;
  EXPECT_EQ(m.authorizers.at("users").leeway_s, 60);
  EXPECT_EQ(m.authorizers.at("users").identity_sources,
            std::vector<std::string>{"$request.querystring.token"});
  EXPECT_EQ(m.authorizers.at("users").jwks_inline,
            R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"abc"}]})");
  const AuthorizerSpec& gate = m.authorizers.at("gate");
  EXPECT_EQ(gate.identity_sources,
            (std::vector<std::string>{"$request.header.X-Token", "$context.routeKey"}));
  EXPECT_FALSE(gate.simple_responses);
  EXPECT_EQ(gate.ttl_s, 300u);
  EXPECT_EQ(m.authorizers.at("plain").identity_sources,
            std::vector<std::string>{"$request.header.Authorization"});
  EXPECT_TRUE(m.authorizers.at("plain").simple_responses);
  EXPECT_EQ(m.usage_plans.at("basic").quota_offset, 5u);
  ASSERT_TRUE(m.cors.has_value());
  EXPECT_EQ(m.cors->allow_origins, std::vector<std::string>{"https://app.example.com"});
  EXPECT_EQ(m.cors->allow_headers, std::vector<std::string>{"x-token"});
  EXPECT_EQ(m.cors->max_age_s, 600);
  EXPECT_TRUE(m.cors->allow_credentials);
}

TEST_F(ManifestTest, GatewaySettingsAreRefusedWhereWrong) {
  EXPECT_EQ(OneError(Edit("period: day }", "period: day, offset: 10000 }")),
            "42:77: usage_plans.basic.quota.offset: the offset must be below the limit");
  EXPECT_EQ(
      OneError(std::string(kNotes) + "cors: { allow_origins: [\"https://a.example/path\"] }\n"),
      "47:24: cors.allow_origins: 'https://a.example/path' is not an origin: "
      "scheme://host[:port], without a path, or *");
  EXPECT_EQ(
      OneError(std::string(kNotes) + "cors: { allow_origins: \"*\", allow_credentials: true }\n"),
      "47:7: cors: allow_credentials cannot be used with the origin '*'");
  EXPECT_TRUE(OneError(Edit("jwks: keys/jwks.json }",
                            "jwks: keys/jwks.json, identity_source: $request.body.token }"))
                  .find("is not an identity source") != std::string::npos);
  EXPECT_TRUE(OneError(Edit("jwks: keys/jwks.json }", "jwks: { keys: [] } }"))
                  .find("an inline JWK Set needs a non-empty 'keys' list") != std::string::npos);
  EXPECT_TRUE(OneError(Edit("jwks: keys/jwks.json }", "jwks: keys/jwks.json, leeway: 10m }"))
                  .find("out of range") != std::string::npos);
}

TEST_F(ManifestTest, WafParameterAndMtlsSettingsAreCheckedWhereWritten) {
  EXPECT_NE(
      OneError(std::string(kNotes) + "waf: { mode: on }\n").find("expected off, detect or block"),
      std::string::npos);
  EXPECT_NE(OneError(std::string(kNotes) + "waf: { paranoia: 5 }\n").find("out of range"),
            std::string::npos);
  EXPECT_NE(OneError(std::string(kNotes) + "waf: { exclude_rules: [abc] }\n").find("integer"),
            std::string::npos);
  EXPECT_NE(OneError(std::string(kNotes) + "waf: { level: 2 }\n").find("unknown key 'level'"),
            std::string::npos);
  EXPECT_NE(OneError(std::string(kNotes) + "mtls: {}\n").find("'truststore' is required"),
            std::string::npos);
  EXPECT_NE(OneError(std::string(kNotes) + "mtls: { truststore: ../ca.pem }\n")
                .find("relative to the manifest"),
            std::string::npos);
}

TEST_F(ManifestTest, ReferencesMustResolve) {
  EXPECT_EQ(OneError(Edit("    function: get-note\n", "    function: get-notes\n")),
            "34:15: routes[1].function: 'get-notes' is not a function of this manifest (it "
            "defines create-note, get-note, health)");
  EXPECT_EQ(OneError(Edit("jwt: users", "jwt: admins")),
            "31:18: routes[0].auth.jwt: 'admins' is not an authorizer of this manifest (it "
            "defines users)");
  EXPECT_EQ(OneError(Edit("usage_plan: basic", "usage_plan: gold")),
            "35:40: routes[1].auth.usage_plan: 'gold' is not a usage plan of this manifest (it "
            "defines basic)");
  EXPECT_EQ(OneError(Edit("Resource: secret:db", "Resource: secret:dbx")),
            "16:19: functions.create-note.policy[0].Resource: 'secret:dbx' names a secret that "
            "`secrets` does not define");
  EXPECT_EQ(OneError(Edit("rotation: { function: get-note", "rotation: { function: rotate-db")),
            "44:66: secrets.db.rotation.function: 'rotate-db' is not a function of this "
            "manifest (it defines create-note, get-note, health)");
  EXPECT_EQ(OneError(Edit("{ function: create-note, metric: errors",
                          "{ function: create-notes, metric: errors")),
            "46:17: alerts[0].function: 'create-notes' is not a function of this manifest (it "
            "defines create-note, get-note, health)");
}

TEST_F(ManifestTest, AlertsOnFunctionsRoutesAndTheApiWithSignedWebhooks) {
  const std::string alerts = Edit(
      "alerts:\n  - { function: create-note, metric: errors, above: 5, "
      "for: 5m }\n",
      R"(webhooks:
  ops: { url: "https://hooks.example.com/moatless", secret: db }
alerts:
  - { function: create-note, metric: error_rate, above: 0.05, window: 10m, for: 0s, notify: ops }
  - { name: slow-reads, route: "GET /notes/{id}", metric: duration_p99_ms, above: 800 }
  - { metric: denials, above: 100, window: 1m, notify: [ops] }
  - { metric: invocations, below: 1 }
)");
  ParseOutcome outcome = Parse(alerts);
  ASSERT_TRUE(outcome.manifest.has_value()) << outcome.ToStatus("moatless.yaml");
  const Manifest& m = *outcome.manifest;
  ASSERT_EQ(m.webhooks.size(), 1u);
  EXPECT_EQ(m.webhooks.at("ops").url, "https://hooks.example.com/moatless");
  EXPECT_EQ(m.webhooks.at("ops").secret, "db");
  ASSERT_EQ(m.alerts.size(), 4u);
  EXPECT_EQ(m.alerts[0].name, "create-note-error-rate");
  EXPECT_EQ(m.alerts[0].window_s, 600);
  EXPECT_EQ(m.alerts[0].for_s, 0);
  EXPECT_EQ(m.alerts[0].notify, std::vector<std::string>{"ops"});
  EXPECT_EQ(m.alerts[1].name, "slow-reads");
  EXPECT_EQ(m.alerts[1].route, "GET /notes/{id}");
  EXPECT_EQ(m.alerts[1].window_s, 300);
  EXPECT_EQ(m.alerts[1].for_s, 60);
  EXPECT_EQ(m.alerts[2].name, "api-denials");
  EXPECT_TRUE(m.alerts[3].below);
  EXPECT_EQ(m.alerts[3].key(), "api invocations < 1 over 300s for 60s");

  const auto refused = [&](std::string_view from, std::string_view to) {
    std::string text = alerts;
    const std::size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return OneError(text);
  };
  EXPECT_NE(refused("secret: db }", "secret: nope }").find("'nope' is not a secret of this app"),
            std::string::npos);
  EXPECT_NE(refused("https://hooks.example.com/moatless", "https://user:pw@hooks.example.com/")
                .find("without credentials"),
            std::string::npos);
  EXPECT_NE(refused("https://hooks.example.com/moatless", "file:///etc/passwd")
                .find("expected an absolute http(s) URL"),
            std::string::npos);
  EXPECT_NE(refused("notify: ops }", "notify: pager }").find("'pager' is not a webhook"),
            std::string::npos);
  EXPECT_NE(refused("GET /notes/{id}", "GET /notes/{key}").find("is not a route of this app"),
            std::string::npos);
  EXPECT_NE(refused("metric: denials", "metric: cold_start_rate").find("give 'function'"),
            std::string::npos);
  EXPECT_NE(refused("{ metric: invocations, below: 1 }",
                    "{ function: health, route: \"GET /health\", metric: errors, above: 1 }")
                .find("not both"),
            std::string::npos);
  EXPECT_NE(refused("metric: invocations, below: 1", "metric: invocations, below: 1, above: 2")
                .find("'above' or 'below', not both"),
            std::string::npos);
  EXPECT_NE(refused("window: 1m", "window: 5s").find("out of range"), std::string::npos);
  EXPECT_NE(refused("name: slow-reads", "name: api-denials").find("another alert is named"),
            std::string::npos);
}

TEST_F(ManifestTest, FilesMustExistInsideTheApp) {
  fs::remove(fs::path(dir_) / "functions/get-note/app.py");
  EXPECT_EQ(OneError(kNotes),
            "22:14: functions.get-note.handler: handler 'app.handler' needs "
            "functions/get-note/app.py or app/__init__.py, which is missing");
  Write("functions/get-note/app.py", "def handler(e, c): return {}\n");
  EXPECT_EQ(OneError(Edit("code: functions/health", "code: ../health")),
            "27:11: functions.health.code: '../health' must be a path relative to the "
            "manifest's directory, inside it");
  EXPECT_EQ(OneError(Edit("code: functions/health", "code: /etc")),
            "27:11: functions.health.code: '/etc' must be a path relative to the manifest's "
            "directory, inside it");
  EXPECT_EQ(OneError(Edit("schemas/note.json", "schemas/nothere.json")),
            "32:13: routes[0].schema: 'schemas/nothere.json' is not a regular file beside the "
            "manifest");
  Write("schemas/note.json", "not json");
  EXPECT_EQ(OneError(kNotes), "32:13: routes[0].schema: 'schemas/note.json' is not a JSON object");
}

TEST_F(ManifestTest, PoliciesAreCheckedByThePolicyEngine) {
  std::string error = OneError(Edit("      - Effect: Allow\n        Action: secretsmanager",
                                    "      - Effect: Maybe\n        Action: secretsmanager"));
  EXPECT_TRUE(error.starts_with("14:9: functions.create-note.policy[0]: ")) << error;
  EXPECT_NE(error.find("Effect"), std::string::npos) << error;
  error = OneError(Edit("Action: secretsmanager:GetSecretValue", "Actions: secretsmanager:Get"));
  EXPECT_TRUE(error.starts_with("14:9: functions.create-note.policy[0]: ")) << error;
  error = OneError(Edit("Resource: secret:db", "Resource: db"));
  EXPECT_EQ(error,
            "16:19: functions.create-note.policy[0].Resource: 'db' is not a resource: expected "
            "an ARN, '*', or secret:NAME, function:NAME, queue:NAME");
}

TEST_F(ManifestTest, ReportsEveryProblemAtOnceInFileOrder) {
  std::string yaml = Edit("memory: 256", "memory: 1");
  yaml = yaml.replace(yaml.find("    auth: none\n"), 15, "");
  yaml = yaml.replace(yaml.find("app: notes"), 10, "app: Notes");
  ParseOutcome outcome = Parse(yaml);
  ASSERT_EQ(outcome.diagnostics.size(), 3u) << outcome.ToStatus("moatless.yaml").message();
  EXPECT_EQ(outcome.diagnostics[0].at.line, 1);
  EXPECT_EQ(outcome.diagnostics[1].at.line, 8);
  EXPECT_EQ(outcome.diagnostics[2].at.line, 36);
  const std::string message = outcome.ToStatus("app/moatless.yaml").message();
  EXPECT_TRUE(message.starts_with("app/moatless.yaml:1:6: app: 'Notes' is not an app name"))
      << message;
}

TEST_F(ManifestTest, HostileYamlIsRefusedNotExpanded) {
  EXPECT_EQ(OneError("app: notes\nstage: [dev\n"),
            "3:1: not valid YAML: end of sequence flow not found");
  // A billion laughs: each level refers to the one before ten times.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) bomb += std::string(j ? ", " : "") + "*a" + std::to_string(i - 1);
    bomb += "]\n";
  }
  const std::string error = OneError(bomb);
  EXPECT_NE(error.find("expands to more than"), std::string::npos) << error;
  EXPECT_FALSE(Parse(std::string(2 << 20, ' ')).manifest.has_value());
}

TEST_F(ManifestTest, FullNamesMustFitLambdaAndIam) {
  const std::string longer(60, 'x');
  ParseOutcome outcome = Parse(Edit("  health:\n", "  " + longer + ":\n"));
  bool found = false;
  for (const Diagnostic& d : outcome.diagnostics) {
    if (d.message.find("longer than 64 characters") != std::string::npos) found = true;
  }
  EXPECT_TRUE(found) << outcome.ToStatus("moatless.yaml").message();
}

TEST_F(ManifestTest, NamesAndArns) {
  EXPECT_EQ(QualifiedFunctionName("notes", "dev", "get-note"), "notes_dev_get-note");
  EXPECT_EQ(QualifiedSecretName("notes", "dev", "db"), "dev/notes/db");
  EXPECT_EQ(AppArn("us-east-1", "000000000000", "notes", "dev"),
            "arn:aws:moatless:us-east-1:000000000000:app/notes/dev");
  EXPECT_TRUE(ValidateAppName("notes-2").ok());
  EXPECT_FALSE(ValidateAppName("2notes").ok());
  EXPECT_FALSE(ValidateAppName(std::string(33, 'a')).ok());
  EXPECT_FALSE(ValidateStageName("dev/x").ok());
}

TEST_F(ManifestTest, ASecretsResourcePolicyNamesTheAppsFunctionsAndIsNeverPublic) {
  const std::string with_policy = Edit(
      "  db: { description: database credentials, rotation: { function: get-note, every: 30d } }\n",
      "  db:\n"
      "    policy:\n"
      "      - Effect: Allow\n"
      "        Principal: { AWS: function:get-note }\n"
      "        Action: secretsmanager:GetSecretValue\n"
      "        Resource: \"*\"\n");
  ParseOutcome outcome = Parse(with_policy);
  ASSERT_TRUE(outcome.manifest) << outcome.ToStatus("moatless.yaml");
  EXPECT_NE(outcome.manifest->secrets.at("db").policy.find(
                "\"arn:aws:iam::123456789012:role/notes_dev_get-note\""),
            std::string::npos)
      << outcome.manifest->secrets.at("db").policy;
  std::string error =
      OneError(std::string(with_policy)
                   .replace(with_policy.find("{ AWS: function:get-note }"), 26, "\"*\""));
  EXPECT_NE(error.find("public"), std::string::npos) << error;
  error = OneError(
      std::string(with_policy).replace(with_policy.find("function:get-note"), 17, "function:nope"));
  EXPECT_NE(error.find("'function:nope' names a function that `functions` does not define"),
            std::string::npos)
      << error;
  error = OneError(
      std::string(with_policy)
          .replace(with_policy.find("        Principal: { AWS: function:get-note }\n"), 46, ""));
  EXPECT_NE(error.find("Principal"), std::string::npos) << error;
}

}  // namespace
}  // namespace moatless::manifest
