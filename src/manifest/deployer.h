// Deployer: plans and applies deployments of apps, per stage, and keeps every deployed version so
// that any of them can be restored.
//
// A deployment takes a bundle (bundle.h), extracts it into the apps directory — content-addressed
// under bundles/SHA256/, so identical uploads share a directory and a directory never changes
// once written — validates its manifest there (every file it names must be in the bundle), and
// computes a plan against the live version: create / update / delete for every function, route,
// authorizer, usage plan, secret and alert, with what changed (code hash, settings, and policies
// as a statement diff). Each function gets its own role, APP_STAGE_FUNCTION, trusted by
// lambda.amazonaws.com, holding exactly the function's policy and the app's permissions
// boundary: the operator's for this app and stage, or DefaultBoundary. Statements the boundary
// makes dead are reported; with `strict` they fail the deployment.
//
// Applying is one durable store transaction: every role, every new function version, the app
// version record and the live-version pointer commit together, or nothing changes. Invocations
// resolve a function's configuration once, when they start, so one in flight finishes on the
// version it started with. A deployment planned against live version N commits only if N is
// still live (kAborted otherwise: deploy again). Versions of functions whose code and settings
// did not change are kept; roles are brought to the definition on every deployment.
//
// Routes, authorizers, usage plans and CORS become the app stage's gateway API
// (gateway::ApiConfig: each route bound to the function version this app version runs, JWKS files
// read inline), stored in the same transaction and handed to `on_api_applied` once committed.
// Secrets are declared in the secrets manager in the same transaction. Sections whose services are
// not part of this platform yet (alerts) are validated, planned and recorded with the version;
// they are listed in DeployOutcome::pending.
//
// Errors: kInvalidArgument (a manifest's diagnostics, with file, line and column, or a bad
// bundle), kPayloadTooLarge, kNotFound (an unknown app or version), kFailedPrecondition (strict
// deployment with dead statements), kAborted (a concurrent deployment), kAlreadyExists (a role of
// the same name not managed by this app), kUnavailable (apps_dir lies below a directory function
// sandboxes cannot traverse), the store's errors.
//
// Thread-safe: state is in the store and in write-once directories. (uploads/ remembers which
// bundle the exact bytes of an earlier upload were, so a plan's apply does not unpack it again.)
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "core/status.h"
#include "gateway/api_config.h"
#include "identity/directory.h"
#include "manifest/boundary.h"
#include "manifest/bundle.h"
#include "manifest/manifest.h"
#include "runtime/function_registry.h"
#include "secrets/secret_store.h"
#include "store/database.h"

namespace moatless::manifest {

// A function as a version of its app deployed it.
struct FunctionDeployment {
  std::string name;           // as in the manifest
  std::string function_name;  // APP_STAGE_NAME: the Lambda function and its role
  std::int64_t version = 0;   // the function version this app version runs
  std::string code_sha256;    // TreeHash of its code directory
  std::string role_arn;
  std::string settings;  // runtime, handler, limits, environment, egress (JSON)
  std::string policy;    // the role's policy ("" for none)
  friend bool operator==(const FunctionDeployment&, const FunctionDeployment&) = default;
};

enum class ChangeKind { kCreate, kUpdate, kDelete };
std::string_view ChangeKindName(ChangeKind kind);  // "create", "update", "delete"

struct Change {
  std::string section;  // "function", "route", "authorizer", "usage_plan", "secret", "alert"
  std::string name;
  ChangeKind kind = ChangeKind::kCreate;
  std::vector<std::string> details;  // "code abc123… → def456…", "+ {statement}", "- {statement}"
};

struct DeployOutcome {
  std::string app;
  std::string stage;
  std::int64_t version = 0;           // the live version after this call (unchanged: the same)
  std::int64_t previous_version = 0;  // 0 before the first deployment
  bool dry_run = false;
  bool changed = false;  // false: the bundle and boundary match the live version; nothing done
  std::string bundle_sha256;
  std::string boundary_source;  // "operator" or "default"
  std::vector<Change> changes;
  std::map<std::string, std::vector<DeadStatement>> dead;  // function name -> statements
  std::vector<FunctionDeployment> functions;
  std::vector<std::string> pending;  // sections recorded, not applied by this platform yet
};

struct AppVersionInfo {
  std::int64_t version = 0;
  std::string created_at;
  std::string deployer;
  std::string description;  // "deploy" or "rollback to N"
  std::string bundle_sha256;
};

struct AppSummary {
  std::string app;
  std::string stage;
  std::int64_t live_version = 0;
  std::string updated_at;
};

struct AppDetails {
  AppSummary summary;
  std::vector<FunctionDeployment> functions;
  std::vector<RouteSpec> routes;
  std::vector<AppVersionInfo> versions;  // oldest first
  std::string boundary;
  std::string boundary_source;
};

struct DeployRequest {
  std::string app;
  std::string stage;
  std::string_view bundle;  // .tar.gz
  bool dry_run = false;
  bool strict = false;
  // Apply only if this version is still live (0: only if nothing is deployed yet).
  std::optional<std::int64_t> expected_version;
  std::string deployer;  // the caller's ARN, recorded with the version
};

class Deployer {
 public:
  struct Deps {
    store::Database& db;
    identity::Directory& directory;
    runtime::FunctionRegistry& registry;
    core::Env& env;
    // Created if missing; holds bundles/ (mode 0711: function sandboxes reach a bundle by its
    // name, nobody may list them) and staging/ (0700). Outside the private data directory,
    // because every directory above a function's code must be traversable by its sandbox.
    std::string apps_dir;
    std::string region;
    std::string account_id;
    BundleLimits limits;
    // Where the manifest's `secrets` are declared (created without a value, described, their
    // rotation set); null: they are only recorded.
    secrets::SecretStore* secrets = nullptr;
    // Called after a deployment or rollback committed, with the app stage's new gateway API (the
    // gateway serves it from then on). Null: nobody is told (it is stored all the same).
    std::function<void(const gateway::ApiConfig&)> on_api_applied;
  };
  explicit Deployer(Deps deps);
  Deployer(const Deployer&) = delete;
  Deployer& operator=(const Deployer&) = delete;

  core::Result<DeployOutcome> Deploy(const DeployRequest& request);
  // Deploys again what version `to` deployed (default: the version before the live one), as a
  // new version described "rollback to N".
  core::Result<DeployOutcome> Rollback(std::string_view app, std::string_view stage,
                                       std::optional<std::int64_t> to, bool dry_run,
                                       std::string deployer);

  core::Result<std::vector<AppSummary>> ListApps();
  core::Result<AppDetails> GetApp(std::string_view app, std::string_view stage);

  // The operator's boundary for an app and stage: stored, and applied at once to the roles of
  // the live version (in the same transaction). Returns the live functions' statements that the
  // new boundary makes dead.
  core::Result<std::map<std::string, std::vector<DeadStatement>>> PutBoundary(
      std::string_view app, std::string_view stage, std::string_view document);
  // Back to the default boundary (also applied at once).
  core::Status DeleteBoundary(std::string_view app, std::string_view stage);
  // The gateway API the live version of an app stage serves; nullopt when none is deployed.
  core::Result<std::optional<gateway::ApiConfig>> GatewayApiOf(std::string_view app,
                                                               std::string_view stage);
  // The boundary in force and where it comes from ("operator" or "default").
  core::Result<std::pair<std::string, std::string>> GetBoundary(std::string_view app,
                                                                std::string_view stage);

 private:
  struct Live;  // the live version as stored
  core::Result<std::optional<Live>> ReadLive(store::Transaction& tx, std::string_view app,
                                             std::string_view stage);
  core::Result<std::pair<std::string, std::string>> BoundaryIn(store::Transaction& tx,
                                                               std::string_view app,
                                                               std::string_view stage);
  // Plans (and unless dry_run applies) the bundle already in bundles/<sha256>.
  core::Result<DeployOutcome> DeployBundle(std::string app, std::string stage,
                                           const std::string& bundle_sha256, bool dry_run,
                                           bool strict,
                                           std::optional<std::int64_t> expected_version,
                                           const std::string& deployer,
                                           const std::string& description);
  core::Status ApplyBoundary(std::string_view app, std::string_view stage,
                             std::optional<std::string> document);
  identity::RoleDefinition RoleFor(std::string_view app, std::string_view stage,
                                   const FunctionDeployment& function,
                                   const std::string& boundary) const;
  std::string BundleDir(const std::string& sha256) const;
  // The gateway API of a manifest whose functions run the versions in `functions`. JWKS files are
  // read from the bundle directory.
  core::Result<gateway::ApiConfig> GatewayApi(const Manifest& manifest,
                                              const std::vector<FunctionDeployment>& functions,
                                              const std::string& dir, std::int64_t version) const;

  Deps deps_;
};

}  // namespace moatless::manifest
