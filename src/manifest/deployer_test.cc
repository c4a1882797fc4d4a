#include "manifest/deployer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "identity/test_fixture.h"
#include "runtime/function_registry.h"
#include "secrets/keyring.h"
#include "secrets/secret_store.h"

namespace moatless::manifest {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kManifest = R"(app: notes
stage: dev
functions:
  create-note:
    runtime: nodejs20
    handler: index.handler
    code: create
    policy:
      - Effect: Allow
        Action: lambda:InvokeFunction
        Resource: function:get-note
  get-note:
    runtime: python3
    handler: app.handler
    code: get
    memory: 256
routes:
  - route: GET /notes/{id}
    function: get-note
    auth: none
)";

class DeployerTest : public identity::IdentityStoreTest {
 protected:
  void SetUp() override {
    identity::IdentityStoreTest::SetUp();
    ::chmod(dir_.c_str(), 0711);  // sandboxes must be able to reach deployed code below it
    registry_ = std::make_unique<runtime::FunctionRegistry>(*db_, env_->clock());
    keyring_ = std::move(*secrets::MasterKeyring::Open(keys_, env_->random()));
    secrets_ = std::make_unique<secrets::SecretStore>(
        *db_, *env_, *keyring_,
        secrets::SecretStore::Options{.region = "us-east-1", .account = "000000000000"});
    deployer_ = std::make_unique<Deployer>(Deployer::Deps{
        .db = *db_,
        .directory = *directory_,
        .registry = *registry_,
        .env = *env_,
        .apps_dir = dir_ + "/apps",
        .region = "us-east-1",
        .account_id = "000000000000",
        .limits = {},
        .secrets = secrets_.get(),
        .on_api_applied = [this](const gateway::ApiConfig& api) { applied_.push_back(api); }});
    app_ = dir_ + "/src";
    Write("moatless.yaml", kManifest);
    Write("create/index.js", "exports.handler = async () => 'v1';\n");
    Write("get/app.py", "def handler(e, c):\n    return 'v1'\n");
  }
  void TearDown() override {
    deployer_.reset();
    secrets_.reset();
    registry_.reset();
    identity::IdentityStoreTest::TearDown();
  }
  void Write(const std::string& relative, std::string_view text) {
    const fs::path path = fs::path(app_) / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  core::Result<DeployOutcome> Deploy(bool dry_run = false, bool strict = false,
                                     std::optional<std::int64_t> expected = std::nullopt) {
    std::ifstream in(app_ + "/moatless.yaml");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ParseOptions options;
    options.base_dir = app_;
    ParseOutcome parsed = ParseManifest(text, options);
    if (!parsed.manifest) {
      // Still send it, with the files of the original: the server's validation is under test.
      parsed = ParseManifest(kManifest, options);
    }
    const Manifest manifest = parsed.manifest.value_or(Manifest{});
    auto packed = PackBundle(app_, manifest);
    if (!packed.ok()) return packed.status();
    return deployer_->Deploy({.app = "notes",
                              .stage = "dev",
                              .bundle = packed->bytes,
                              .dry_run = dry_run,
                              .strict = strict,
                              .expected_version = expected,
                              .deployer = "arn:aws:iam::000000000000:user/ci"});
  }
  const FunctionDeployment& Function(const DeployOutcome& o, const std::string& name) {
    for (const FunctionDeployment& f : o.functions) {
      if (f.name == name) return f;
    }
    static const FunctionDeployment kNone;
    ADD_FAILURE() << "no function " << name;
    return kNone;
  }
  std::int64_t LatestVersion(const std::string& function) {
    auto f = registry_->Get(function);
    return f.ok() ? std::stoll(f->version) : 0;
  }

  std::unique_ptr<runtime::FunctionRegistry> registry_;
  secrets::MemoryKeyringStorage keys_;
  std::unique_ptr<secrets::MasterKeyring> keyring_;
  std::unique_ptr<secrets::SecretStore> secrets_;
  std::unique_ptr<Deployer> deployer_;
  std::string app_;
  std::vector<gateway::ApiConfig> applied_;  // what on_api_applied was told
};

TEST_F(DeployerTest, FirstDeploymentCreatesOneRolePerFunctionUnderTheBoundary) {
  auto outcome = Deploy();
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->version, 1);
  EXPECT_EQ(outcome->previous_version, 0);
  EXPECT_TRUE(outcome->changed);
  EXPECT_EQ(outcome->boundary_source, "default");
  EXPECT_TRUE(outcome->pending.empty());
  ASSERT_EQ(outcome->functions.size(), 2u);

  auto config = registry_->Get("notes_dev_get-note");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->version, "1");
  EXPECT_EQ(config->memory_mb, 256u);
  EXPECT_TRUE(config->code_dir.starts_with(dir_ + "/apps/bundles/")) << config->code_dir;
  EXPECT_TRUE(fs::exists(config->code_dir + "/app.py"));
  EXPECT_EQ(config->role_arn, "arn:aws:iam::000000000000:role/notes_dev_get-note");

  auto role = directory_->Get(identity::PrincipalType::kRole, "notes_dev_create-note");
  ASSERT_TRUE(role.ok()) << role.status();
  ASSERT_TRUE(role->boundary.has_value());
  EXPECT_NE(role->boundary->find("notes_dev_*"), std::string::npos);
  EXPECT_NE(role->trust_policy->find("lambda.amazonaws.com"), std::string::npos);
  ASSERT_EQ(role->policies.size(), 1u);
  EXPECT_NE(role->policies[0].document.find("function:notes_dev_get-note"), std::string::npos);
  // A function without a policy gets a role with none: it may do nothing.
  auto bare = directory_->Get(identity::PrincipalType::kRole, "notes_dev_get-note");
  ASSERT_TRUE(bare.ok());
  EXPECT_TRUE(bare->policies.empty());
}

TEST_F(DeployerTest, RedeployingTheSameFilesChangesNothing) {
  ASSERT_TRUE(Deploy().ok());
  auto again = Deploy();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->changed);
  EXPECT_EQ(again->version, 1);
  EXPECT_TRUE(again->changes.empty());
  EXPECT_EQ(LatestVersion("notes_dev_get-note"), 1);
}

TEST_F(DeployerTest, OnlyChangedFunctionsGetNewVersionsAndPoliciesDiffByStatement) {
  ASSERT_TRUE(Deploy().ok());
  Write("create/index.js", "exports.handler = async () => 'v2';\n");
  std::string text(kManifest);
  text.replace(text.find("Resource: function:get-note"), 27,
               "Resource: [function:get-note, function:create-note]");
  Write("moatless.yaml", text);
  auto outcome = Deploy();
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->version, 2);
  ASSERT_EQ(outcome->changes.size(), 1u);
  const Change& change = outcome->changes[0];
  EXPECT_EQ(change.name, "create-note");
  EXPECT_EQ(change.kind, ChangeKind::kUpdate);
  ASSERT_EQ(change.details.size(), 3u);
  EXPECT_TRUE(change.details[0].starts_with("code: ")) << change.details[0];
  EXPECT_TRUE(change.details[1].starts_with("policy - ")) << change.details[1];
  EXPECT_TRUE(change.details[2].starts_with("policy + ")) << change.details[2];
  EXPECT_EQ(Function(*outcome, "create-note").version, 2);
  EXPECT_EQ(Function(*outcome, "get-note").version, 1);
  EXPECT_EQ(LatestVersion("notes_dev_create-note"), 2);
  EXPECT_EQ(LatestVersion("notes_dev_get-note"), 1);
}

TEST_F(DeployerTest, DryRunPlansWithoutChangingAnything) {
  auto outcome = Deploy(/*dry_run=*/true);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->changes.size(), 3u);  // two functions and a route
  EXPECT_EQ(outcome->version, 0);
  EXPECT_EQ(registry_->Get("notes_dev_get-note").status().code(), core::StatusCode::kNotFound);
  EXPECT_FALSE(directory_->Get(identity::PrincipalType::kRole, "notes_dev_get-note").ok());
  auto apps = deployer_->ListApps();
  ASSERT_TRUE(apps.ok());
  EXPECT_TRUE(apps->empty());
}

TEST_F(DeployerTest, AnInvalidManifestChangesNothingAndSaysWhere) {
  ASSERT_TRUE(Deploy().ok());
  std::string text(kManifest);
  text.replace(text.find("memory: 256"), 11, "memory: 2");
  Write("moatless.yaml", text);
  auto outcome = Deploy();
  ASSERT_EQ(outcome.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(outcome.status().message(),
            "moatless.yaml:16:13: functions.get-note.memory: 2 is out of range; expected [128, "
            "10240]");
  auto details = deployer_->GetApp("notes", "dev");
  ASSERT_TRUE(details.ok());
  EXPECT_EQ(details->summary.live_version, 1);
}

TEST_F(DeployerTest, RemovedFunctionsLoseTheirVersionsAndRoles) {
  ASSERT_TRUE(Deploy().ok());
  const std::string text = R"(app: notes
stage: dev
functions:
  create-note:
    runtime: nodejs20
    handler: index.handler
    code: create
)";
  Write("moatless.yaml", text);
  auto outcome = Deploy();
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(registry_->Get("notes_dev_get-note").status().code(), core::StatusCode::kNotFound);
  EXPECT_FALSE(directory_->Get(identity::PrincipalType::kRole, "notes_dev_get-note").ok());
  EXPECT_TRUE(directory_->Get(identity::PrincipalType::kRole, "notes_dev_create-note").ok());
}

TEST_F(DeployerTest, DeadStatementsAreReportedAndStrictFails) {
  std::string text(kManifest);
  text.replace(text.find("Resource: function:get-note"), 27,
               "Resource: arn:aws:lambda:us-east-1:000000000000:function:billing_dev_charge");
  Write("moatless.yaml", text);
  auto strict = Deploy(false, /*strict=*/true);
  ASSERT_EQ(strict.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(strict.status().message().find("billing_dev_charge"), std::string::npos);
  EXPECT_FALSE(directory_->Get(identity::PrincipalType::kRole, "notes_dev_create-note").ok());
  auto outcome = Deploy();
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(outcome->dead.count("create-note"), 1u);
  EXPECT_EQ(outcome->dead.at("create-note")[0].index, 0u);
  // Applied anyway (not strict), but the role is capped: the boundary is on it.
  auto role = directory_->Get(identity::PrincipalType::kRole, "notes_dev_create-note");
  ASSERT_TRUE(role.ok());
  EXPECT_TRUE(role->boundary.has_value());
}

TEST_F(DeployerTest, OperatorBoundaryAppliesAtOnceAndToLaterDeployments) {
  ASSERT_TRUE(Deploy().ok());
  const std::string boundary =
      R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]})";
  auto dead = deployer_->PutBoundary("notes", "dev", boundary);
  ASSERT_TRUE(dead.ok()) << dead.status();
  EXPECT_EQ(dead->count("create-note"), 1u);
  auto role = directory_->Get(identity::PrincipalType::kRole, "notes_dev_create-note");
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(role->boundary, boundary);
  auto current = deployer_->GetBoundary("notes", "dev");
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(current->second, "operator");
  EXPECT_FALSE(
      deployer_->PutBoundary("notes", "dev", R"({"Statement":[{"Effect":"Maybe"}]})").ok());
  ASSERT_TRUE(deployer_->DeleteBoundary("notes", "dev").ok());
  role = directory_->Get(identity::PrincipalType::kRole, "notes_dev_create-note");
  EXPECT_NE(role->boundary->find("notes_dev_*"), std::string::npos);
}

TEST_F(DeployerTest, ConcurrentDeploymentsAreDetected) {
  ASSERT_TRUE(Deploy().ok());
  Write("get/app.py", "def handler(e, c):\n    return 'v2'\n");
  auto stale = Deploy(false, false, /*expected=*/0);
  EXPECT_EQ(stale.status().code(), core::StatusCode::kAborted);
  EXPECT_EQ(LatestVersion("notes_dev_get-note"), 1);
  EXPECT_TRUE(Deploy(false, false, 1).ok());
}

TEST_F(DeployerTest, RollbackRedeploysAnEarlierVersionAsANewOne) {
  ASSERT_TRUE(Deploy().ok());
  auto first_code = registry_->Get("notes_dev_get-note")->code_dir;
  Write("get/app.py", "def handler(e, c):\n    return 'v2'\n");
  ASSERT_TRUE(Deploy().ok());
  EXPECT_NE(registry_->Get("notes_dev_get-note")->code_dir, first_code);
  auto rolled = deployer_->Rollback("notes", "dev", std::nullopt, false, "operator");
  ASSERT_TRUE(rolled.ok()) << rolled.status();
  EXPECT_EQ(rolled->version, 3);
  EXPECT_EQ(registry_->Get("notes_dev_get-note")->code_dir, first_code);
  EXPECT_EQ(LatestVersion("notes_dev_get-note"), 3);
  auto details = deployer_->GetApp("notes", "dev");
  ASSERT_TRUE(details.ok());
  ASSERT_EQ(details->versions.size(), 3u);
  EXPECT_EQ(details->versions[2].description, "rollback to 1");
  EXPECT_EQ(details->versions[0].deployer, "arn:aws:iam::000000000000:user/ci");
  EXPECT_EQ(deployer_->Rollback("notes", "dev", 9, false, "x").status().code(),
            core::StatusCode::kNotFound);
}

TEST_F(DeployerTest, RefusesACodeDirectorySandboxesCannotReach) {
  ::chmod(dir_.c_str(), 0700);
  auto outcome = Deploy();
  ASSERT_EQ(outcome.status().code(), core::StatusCode::kUnavailable);
  EXPECT_NE(outcome.status().message().find("function sandboxes cannot reach code below " + dir_),
            std::string::npos)
      << outcome.status();
  EXPECT_EQ(registry_->Get("notes_dev_get-note").status().code(), core::StatusCode::kNotFound);
}

TEST_F(DeployerTest, ARoleOfTheSameNameNotOwnedByTheAppStopsEverything) {
  ASSERT_TRUE(directory_
                  ->CreateRole("notes_dev_get-note",
                               R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",)"
                               R"("Principal":{"Service":"lambda.amazonaws.com"},)"
                               R"("Action":"sts:AssumeRole"}]})")
                  .ok());
  auto outcome = Deploy();
  EXPECT_EQ(outcome.status().code(), core::StatusCode::kAlreadyExists);
  // Atomic: the other function was not published and its role not created either.
  EXPECT_EQ(registry_->Get("notes_dev_create-note").status().code(), core::StatusCode::kNotFound);
  EXPECT_FALSE(directory_->Get(identity::PrincipalType::kRole, "notes_dev_create-note").ok());
}

TEST_F(DeployerTest, DeclaredSecretsAreCreatedWithoutAValueWithTheirRotationAndPolicy) {
  std::string text(kManifest);
  text += R"(secrets:
  db:
    description: database credentials
    rotation: { function: create-note, every: 30d }
    policy:
      - Effect: Allow
        Principal: { AWS: function:get-note }
        Action: secretsmanager:GetSecretValue
        Resource: "*"
)";
  Write("moatless.yaml", text);
  auto outcome = Deploy();
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  auto secret = secrets_->Describe("dev/notes/db");
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(secret->description, "database credentials");
  EXPECT_TRUE(secret->version_stages.empty()) << "a value never comes from the manifest";
  EXPECT_TRUE(secret->rotation_enabled);
  EXPECT_EQ(secret->rotation_lambda_arn,
            "arn:aws:lambda:us-east-1:000000000000:function:notes_dev_create-note");
  EXPECT_EQ(secret->rotation_rules.automatically_after_days, 30);
  EXPECT_NE(secret->resource_policy.find("arn:aws:iam::000000000000:role/notes_dev_get-note"),
            std::string::npos)
      << secret->resource_policy;
  EXPECT_EQ(secret->tags,
            (std::vector<secrets::Tag>{{"moatless:app", "notes"}, {"moatless:stage", "dev"}}));
  // A value put by an operator survives redeployments, which update the rest.
  ASSERT_TRUE(secrets_
                  ->PutValue(secret->arn,
                             secrets::NewValue{.kind = secrets::ValueKind::kString,
                                               .bytes = core::SecretBytes("pw")},
                             "", {})
                  .ok());
  text.replace(text.find("database credentials"), 20, "the database's login");
  text.replace(text.find("every: 30d"), 10, "every: 7d");
  Write("moatless.yaml", text);
  ASSERT_TRUE(Deploy().ok());
  secret = secrets_->Describe("dev/notes/db");
  EXPECT_EQ(secret->description, "the database's login");
  EXPECT_EQ(secret->rotation_rules.automatically_after_days, 7);
  EXPECT_EQ(secrets_->GetValue(secret->arn, "", "")->value.Reveal(), "pw");
  // A rotation waiting between steps is abandoned when the manifest turns rotation off.
  ASSERT_TRUE(secrets_
                  ->ConfigureRotation(secret->arn, std::nullopt, std::nullopt, 0,
                                      "00000000-0000-4000-8000-00000000000a")
                  .ok());
  std::string without_rotation = text;
  without_rotation.erase(
      without_rotation.find("    rotation:"),
      std::string("    rotation: { function: create-note, every: 7d }\n").size());
  Write("moatless.yaml", without_rotation);
  ASSERT_TRUE(Deploy().ok());
  secret = secrets_->Describe("dev/notes/db");
  EXPECT_FALSE(secret->rotation_enabled);
  EXPECT_TRUE(secret->rotation.token.empty());
  EXPECT_EQ(secret->VersionWith("AWSPENDING"), nullptr);
  EXPECT_EQ(secrets_->GetValue(secret->arn, "", "")->value.Reveal(), "pw");
  // Without the secret in the manifest it is kept (its values are data), and the plan says so.
  text.erase(text.find("secrets:"));
  Write("moatless.yaml", text);
  auto removed = Deploy();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_TRUE(secrets_->Describe("dev/notes/db").ok());
  EXPECT_NE(removed->pending.back().find("dev/notes/db is kept"), std::string::npos);
}

TEST_F(DeployerTest, EachVersionStoresTheGatewayApiBoundToItsFunctionVersions) {
  auto first = Deploy();
  ASSERT_TRUE(first.ok()) << first.status();
  auto stored = gateway::ApiStore::Load(*db_, "notes", "dev");
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_TRUE(stored->has_value());
  const gateway::ApiConfig& api = **stored;
  EXPECT_EQ(api.version, first->version);
  ASSERT_EQ(api.routes.size(), 1u);
  EXPECT_EQ(api.routes[0].key(), "GET /notes/{id}");
  EXPECT_EQ(api.routes[0].function, "notes_dev_get-note");
  EXPECT_EQ(api.routes[0].auth, gateway::AuthKind::kNone);
  std::int64_t get_version = 0;
  for (const FunctionDeployment& f : first->functions) {
    if (f.name == "get-note") get_version = f.version;
  }
  EXPECT_EQ(api.routes[0].function_version, get_version);
  ASSERT_EQ(applied_.size(), 1u);
  EXPECT_EQ(applied_[0], api);

  // A new code version moves the route to it; a dry run stores and announces nothing.
  Write("get/app.py", "def handler(e, c):\n    return 'v2'\n");
  ASSERT_TRUE(Deploy(/*dry_run=*/true).ok());
  EXPECT_EQ(applied_.size(), 1u);
  auto second = Deploy();
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(applied_.size(), 2u);
  EXPECT_EQ(applied_[1].routes[0].function_version, get_version + 1);
  EXPECT_EQ(applied_[1].version, second->version);
}

TEST_F(DeployerTest, AJwksThatTheGatewayWouldRefuseFailsThePlan) {
  std::string text(kManifest);
  text.replace(text.find("    auth: none"), 14, "    auth: { jwt: users }");
  text +=
      "authorizers:\n  users: { type: jwt, issuer: \"https://id.example.com\", audience: [a], "
      "jwks: keys/jwks.json }\n";
  Write("moatless.yaml", text);
  Write("keys/jwks.json", R"({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})");
  auto outcome = Deploy();
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(outcome.status().message().find("authorizers.users.jwks"), std::string::npos)
      << outcome.status();
  EXPECT_NE(outcome.status().message().find("private key material"), std::string::npos)
      << outcome.status();
  EXPECT_TRUE(applied_.empty());
  auto stored = gateway::ApiStore::Load(*db_, "notes", "dev");
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->has_value());
}

TEST_F(DeployerTest, WafParametersAndMtlsReachTheStoredApi) {
  std::string text(kManifest);
  text.replace(text.find("    auth: none\n"), 15,
               "    auth: none\n"
               "    parameters:\n"
               "      query:\n"
               "        limit: { required: true, schema: { type: string, maxLength: 3 } }\n"
               "      headers:\n"
               "        X-Client: { required: true }\n"
               "    waf: { mode: detect, exclude_rules: [942100] }\n"
               "  - route: POST /notes\n"
               "    function: create-note\n"
               "    auth: none\n");
  text +=
      "waf: { paranoia: 2, anomaly_threshold: 10, exclude_tags: [attack-php] }\n"
      "mtls: { truststore: certs/ca.pem }\n";
  Write("moatless.yaml", text);
  std::ifstream ca(fs::path(__FILE__).parent_path().parent_path() / "gateway" / "testdata" /
                   "mtls" / "ca.pem");
  const std::string ca_pem((std::istreambuf_iterator<char>(ca)), std::istreambuf_iterator<char>());
  ASSERT_NE(ca_pem.find("BEGIN CERTIFICATE"), std::string::npos);
  Write("certs/ca.pem", ca_pem);
  auto outcome = Deploy();
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(applied_.size(), 1u);
  const gateway::ApiConfig& api = applied_[0];
  ASSERT_EQ(api.routes.size(), 2u);
  const gateway::RouteConfig& get = api.routes[0];
  EXPECT_EQ(get.waf.mode, "detect");  // the route's mode over the app's default
  EXPECT_EQ(get.waf.paranoia, 2);     // the app's
  EXPECT_EQ(get.waf.anomaly_threshold, 10);
  EXPECT_EQ(get.waf.exclude_rules, std::vector<int>{942100});
  EXPECT_EQ(get.waf.exclude_tags, std::vector<std::string>{"attack-php"});
  ASSERT_EQ(get.parameters.size(), 2u);
  EXPECT_EQ(get.parameters[0].name, "limit");
  EXPECT_TRUE(get.parameters[0].required);
  EXPECT_EQ(get.parameters[0].schema, R"({"type":"string","maxLength":3})");
  EXPECT_EQ(get.parameters[1].in, gateway::ParameterConfig::In::kHeader);
  EXPECT_EQ(get.parameters[1].name, "x-client");
  const gateway::RouteConfig& post = api.routes[1];
  EXPECT_EQ(post.waf.mode, "block");
  EXPECT_EQ(post.waf.paranoia, 2);
  EXPECT_TRUE(post.parameters.empty());
  ASSERT_TRUE(api.mtls.has_value());
  EXPECT_EQ(api.mtls->truststore_pem, ca_pem);
  auto stored = gateway::ApiStore::Load(*db_, "notes", "dev");
  ASSERT_TRUE(stored.ok() && stored->has_value()) << stored.status();
  EXPECT_EQ(**stored, api);  // all of it survives the store
}

TEST_F(DeployerTest, WafSettingsOrParameterSchemasTheGatewayWouldRefuseFailThePlan) {
  const std::string base(kManifest);
  struct Case {
    std::string route_extra;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"    waf: { exclude_rules: [949110] }\n", "cannot be excluded"},
           {"    waf: { exclude_tags: [attack-generic] }\n", "cannot be excluded"},
           {"    parameters: { query: { q: { schema: { pattern: \"(?<=a)b\" } } } }\n",
            "parameters.query.q.schema"},
           {"    parameters: { query: { q: { schema: { type: 5 } } } }\n",
            "parameters.query.q.schema"},
           {"", "no PEM certificate"}}) {
    std::string text = base;
    text.replace(text.find("    auth: none\n"), 15, "    auth: none\n" + c.route_extra);
    if (c.route_extra.empty()) {  // a truststore without certificates
      text += "mtls: { truststore: ca.pem }\n";
      Write("ca.pem", "not a certificate\n");
    }
    Write("moatless.yaml", text);
    auto outcome = Deploy();
    ASSERT_FALSE(outcome.ok()) << c.route_extra;
    EXPECT_EQ(outcome.status().code(), core::StatusCode::kInvalidArgument);
    EXPECT_NE(outcome.status().message().find(c.message), std::string::npos) << outcome.status();
  }
  EXPECT_TRUE(applied_.empty());
}

}  // namespace
}  // namespace moatless::manifest
