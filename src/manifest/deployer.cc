#include "manifest/deployer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

#include "core/clock.h"
#include "core/ids.h"
#include "gateway/jwt.h"
#include "gateway/schema_validator.h"
#include "policy/parser.h"
#include "secrets/rotation.h"

namespace moatless::manifest {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kTrustPolicy =
    R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",)"
    R"("Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]})";

std::string SettingsJson(const FunctionSpec& f) {
  boost::json::object o;
  o["runtime"] = std::string(runtime::RuntimeName(f.runtime));
  o["handler"] = f.handler;
  o["memory_mb"] = f.memory_mb;
  o["timeout_s"] = f.timeout_s;
  if (f.concurrency) o["concurrency"] = *f.concurrency;
  boost::json::object env;
  for (const auto& [k, v] : f.environment) env[k] = v;
  o["environment"] = std::move(env);
  boost::json::array egress;
  for (const std::string& e : f.egress) egress.push_back(boost::json::string(e));
  o["egress"] = std::move(egress);
  return boost::json::serialize(o);
}

// "key: old → new" for every member that differs between two settings objects.
void DiffSettings(const std::string& before, const std::string& after,
                  std::vector<std::string>& details) {
  boost::system::error_code ec;
  const boost::json::value a = boost::json::parse(before, ec);
  const boost::json::value b = boost::json::parse(after, ec);
  if (ec || !a.is_object() || !b.is_object()) return;
  std::set<std::string> keys;
  for (const auto& kv : a.as_object()) keys.insert(std::string(kv.key()));
  for (const auto& kv : b.as_object()) keys.insert(std::string(kv.key()));
  for (const std::string& key : keys) {
    const boost::json::value* x = a.as_object().if_contains(key);
    const boost::json::value* y = b.as_object().if_contains(key);
    const std::string xs = x ? boost::json::serialize(*x) : "(none)";
    const std::string ys = y ? boost::json::serialize(*y) : "(none)";
    if (xs != ys) details.push_back(key + ": " + xs + " → " + ys);
  }
}

std::vector<std::string> StatementsOf(const std::string& policy) {
  std::vector<std::string> out;
  if (policy.empty()) return out;
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(policy, ec);
  if (ec || !doc.is_object()) return out;
  const boost::json::value* statements = doc.as_object().if_contains("Statement");
  if (statements == nullptr) return out;
  if (statements->is_array()) {
    for (const auto& s : statements->as_array()) out.push_back(boost::json::serialize(s));
  } else {
    out.push_back(boost::json::serialize(*statements));
  }
  return out;
}

void DiffPolicies(const std::string& before, const std::string& after,
                  std::vector<std::string>& details) {
  const std::vector<std::string> a = StatementsOf(before);
  const std::vector<std::string> b = StatementsOf(after);
  for (const std::string& s : a) {
    if (std::find(b.begin(), b.end(), s) == b.end()) details.push_back("policy - " + s);
  }
  for (const std::string& s : b) {
    if (std::find(a.begin(), a.end(), s) == a.end()) details.push_back("policy + " + s);
  }
}

std::string ShortHash(const std::string& sha) { return sha.substr(0, 12); }

// Compares two specs ignoring where they were written.
template <typename T>
bool SameIgnoringLocation(T a, T b) {
  a.at = {};
  b.at = {};
  return a == b;
}

template <typename T>
void DiffNamed(const std::string& section, const std::map<std::string, T>& before,
               const std::map<std::string, T>& after, std::vector<Change>& changes) {
  for (const auto& [name, spec] : after) {
    auto it = before.find(name);
    if (it == before.end()) {
      changes.push_back({section, name, ChangeKind::kCreate, {}});
    } else if (!SameIgnoringLocation(it->second, spec)) {
      changes.push_back({section, name, ChangeKind::kUpdate, {}});
    }
  }
  for (const auto& [name, spec] : before) {
    if (!after.contains(name)) changes.push_back({section, name, ChangeKind::kDelete, {}});
  }
}

template <typename T>
std::map<std::string, T> ByKey(const std::vector<T>& items) {
  std::map<std::string, T> out;
  for (const T& item : items) out.emplace(item.key(), item);
  return out;
}

boost::json::object DeploymentJson(const FunctionDeployment& f) {
  return {{"name", f.name},         {"function_name", f.function_name},
          {"version", f.version},   {"code_sha256", f.code_sha256},
          {"role_arn", f.role_arn}, {"settings", f.settings},
          {"policy", f.policy}};
}

core::Result<FunctionDeployment> DeploymentFromJson(const boost::json::value& v) {
  try {
    const boost::json::object& o = v.as_object();
    FunctionDeployment f;
    f.name = std::string(o.at("name").as_string());
    f.function_name = std::string(o.at("function_name").as_string());
    f.version = o.at("version").as_int64();
    f.code_sha256 = std::string(o.at("code_sha256").as_string());
    f.role_arn = std::string(o.at("role_arn").as_string());
    f.settings = std::string(o.at("settings").as_string());
    f.policy = std::string(o.at("policy").as_string());
    return f;
  } catch (const std::exception& e) {
    return core::InternalError(std::string("a stored app version is corrupt: ") + e.what());
  }
}

std::string StateJson(const std::vector<FunctionDeployment>& functions,
                      const std::string& boundary) {
  boost::json::array array;
  for (const FunctionDeployment& f : functions) array.push_back(DeploymentJson(f));
  return boost::json::serialize(
      boost::json::object{{"functions", std::move(array)}, {"boundary", boundary}});
}

core::Status ReadText(const fs::path& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::InternalError("cannot read " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  out = buffer.str();
  return core::Status::Ok();
}

// A small file written whole or not at all (temporary file, fsync, rename).
core::Status WriteRecord(const fs::path& path, const std::string& text) {
  const fs::path temporary = path.string() + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return core::InternalError("cannot write " + temporary.string());
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(temporary.c_str(), path.c_str()) != 0) {
    return core::InternalError("cannot write " + path.string());
  }
  return core::Status::Ok();
}

core::Status SyncDirectory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return core::InternalError("cannot open " + dir.string());
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return core::InternalError("cannot sync " + dir.string());
  return core::Status::Ok();
}

// Function sandboxes run as unprivileged users: they reach their code only if every directory
// above it lets others search it.
core::Status CheckTraversable(const fs::path& dir) {
  for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return core::InternalError("cannot stat " + p.string());
    if ((st.st_mode & S_IXOTH) == 0) {
      return core::UnavailableError(
          "function sandboxes cannot reach code below " + p.string() +
          " (others may not search it); set apps.code_dir to a directory under a path they can "
          "traverse, or chmod o+x " +
          p.string());
    }
    if (p == p.root_path()) break;
  }
  return core::Status::Ok();
}

}  // namespace

std::string_view ChangeKindName(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kCreate:
      return "create";
    case ChangeKind::kUpdate:
      return "update";
    case ChangeKind::kDelete:
      return "delete";
  }
  return "?";
}

struct Deployer::Live {
  std::int64_t version = 0;
  std::string manifest;
  std::string bundle_sha256;
  std::vector<FunctionDeployment> functions;
  std::string boundary;
  std::string updated_at;
};

Deployer::Deployer(Deps deps) : deps_(std::move(deps)) {
  // Function versions record where their code is: never relative to a working directory.
  std::error_code ec;
  const fs::path absolute = fs::absolute(deps_.apps_dir, ec);
  if (!ec) deps_.apps_dir = absolute.lexically_normal().string();
}

std::string Deployer::BundleDir(const std::string& sha256) const {
  return (fs::path(deps_.apps_dir) / "bundles" / sha256).string();
}

core::Result<gateway::ApiConfig> Deployer::GatewayApi(
    const Manifest& manifest, const std::vector<FunctionDeployment>& functions,
    const std::string& dir, std::int64_t version) const {
  std::map<std::string, const FunctionDeployment*> by_name;
  for (const FunctionDeployment& f : functions) by_name[f.name] = &f;
  auto bind = [&](const std::string& name, std::string& function, std::int64_t& fn_version) {
    const FunctionDeployment& f = *by_name.at(name);
    function = f.function_name;
    fn_version = f.version;
  };
  auto sources = [](const std::vector<std::string>& expressions)
      -> core::Result<std::vector<gateway::IdentitySource>> {
    std::vector<gateway::IdentitySource> out;
    for (const std::string& e : expressions) {
      ASSIGN_OR_RETURN(gateway::IdentitySource s, gateway::ParseIdentitySource(e));
      out.push_back(std::move(s));
    }
    return out;
  };
  gateway::ApiConfig api;
  api.app = manifest.app;
  api.stage = manifest.stage;
  api.version = version;
  for (const RouteSpec& spec : manifest.routes) {
    gateway::RouteConfig route;
    route.method = spec.method;
    route.path = spec.path;
    bind(spec.function, route.function, route.function_version);
    switch (spec.auth.kind) {
      case AuthSpec::Kind::kNone:
        route.auth = gateway::AuthKind::kNone;
        break;
      case AuthSpec::Kind::kJwt:
        route.auth = gateway::AuthKind::kJwt;
        break;
      case AuthSpec::Kind::kApiKey:
        route.auth = gateway::AuthKind::kApiKey;
        break;
      case AuthSpec::Kind::kAuthorizer:
        route.auth = gateway::AuthKind::kAuthorizer;
        break;
      case AuthSpec::Kind::kIam:
        route.auth = gateway::AuthKind::kIam;
        break;
    }
    route.authorizer = spec.auth.authorizer;
    route.scopes = spec.auth.scopes;
    route.usage_plan = spec.auth.usage_plan;
    if (spec.throttle_rate) {
      route.throttle = gateway::Throttle{.rate = *spec.throttle_rate, .burst = spec.throttle_burst};
    }
    if (!spec.schema.empty()) {
      std::ifstream in(fs::path(dir) / spec.schema, std::ios::binary);
      std::stringstream text;
      text << in.rdbuf();
      if (!in) {
        return core::InvalidArgumentError("routes." + spec.key() + ".schema: cannot read " +
                                          spec.schema);
      }
      route.body_schema = text.str();
      auto compiled = gateway::CompiledSchema::Compile(route.body_schema);
      if (!compiled.ok()) {
        return core::InvalidArgumentError("route " + spec.key() + ": schema " + spec.schema + ": " +
                                          compiled.status().message());
      }
    }
    for (const ParameterSpec& p : spec.parameters) {
      gateway::ParameterConfig parameter{.in = p.header ? gateway::ParameterConfig::In::kHeader
                                                        : gateway::ParameterConfig::In::kQuery,
                                         .name = p.name,
                                         .required = p.required,
                                         .schema = p.schema};
      if (!p.schema.empty()) {
        auto compiled = gateway::CompiledSchema::Compile(p.schema);
        if (!compiled.ok()) {
          return core::InvalidArgumentError("route " + spec.key() + ": parameters." +
                                            (p.header ? "headers." : "query.") + p.name +
                                            ".schema: " + compiled.status().message());
        }
      }
      route.parameters.push_back(std::move(parameter));
    }
    // The app's WAF settings, then the route's on top.
    for (const std::optional<WafSpec>* waf : {&manifest.waf, &spec.waf}) {
      if (!waf->has_value()) continue;
      const WafSpec& w = **waf;
      if (w.mode) route.waf.mode = *w.mode;
      if (w.paranoia) route.waf.paranoia = *w.paranoia;
      if (w.anomaly_threshold) route.waf.anomaly_threshold = *w.anomaly_threshold;
      route.waf.exclude_rules.insert(route.waf.exclude_rules.end(), w.exclude_rules.begin(),
                                     w.exclude_rules.end());
      route.waf.exclude_tags.insert(route.waf.exclude_tags.end(), w.exclude_tags.begin(),
                                    w.exclude_tags.end());
    }
    api.routes.push_back(std::move(route));
  }
  if (!manifest.mtls_truststore.empty()) {
    std::ifstream in(fs::path(dir) / manifest.mtls_truststore, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      return core::InvalidArgumentError("mtls.truststore: cannot read " + manifest.mtls_truststore);
    }
    api.mtls = gateway::MtlsConfig{.truststore_pem = text.str()};
  }
  for (const auto& [name, spec] : manifest.authorizers) {
    gateway::AuthorizerConfig a;
    a.name = name;
    if (spec.type == AuthorizerSpec::Type::kJwt) {
      a.type = gateway::AuthKind::kJwt;
      a.jwt.issuer = spec.issuer;
      a.jwt.audience = spec.audience;
      a.jwt.leeway_s = spec.leeway_s;
      if (!spec.identity_sources.empty()) {
        ASSIGN_OR_RETURN(a.jwt.identity_source,
                         gateway::ParseIdentitySource(spec.identity_sources[0]));
      }
      if (!spec.jwks_inline.empty()) {
        a.jwt.jwks = spec.jwks_inline;
      } else if (spec.jwks.starts_with("https://")) {
        return core::InvalidArgumentError(
            "authorizers." + name +
            ".jwks: a JWKS URL is not fetched by this platform yet; give the keys in a file beside "
            "the manifest or inline");
      } else {
        std::ifstream in(fs::path(dir) / spec.jwks, std::ios::binary);
        std::stringstream text;
        text << in.rdbuf();
        if (!in)
          return core::InvalidArgumentError("authorizers." + name + ".jwks: cannot read " +
                                            spec.jwks);
        a.jwt.jwks = text.str();
      }
    } else {
      a.type = gateway::AuthKind::kAuthorizer;
      bind(spec.function, a.function.function, a.function.function_version);
      ASSIGN_OR_RETURN(a.function.identity_sources, sources(spec.identity_sources));
      a.function.ttl_s = spec.ttl_s;
      a.function.simple_responses = spec.simple_responses;
    }
    api.authorizers.emplace(name, std::move(a));
  }
  for (const auto& [name, spec] : manifest.usage_plans) {
    api.usage_plans.emplace(name, gateway::UsagePlanConfig{.name = name,
                                                           .rate = spec.rate,
                                                           .burst = spec.burst,
                                                           .quota_limit = spec.quota_limit,
                                                           .quota_period = spec.quota_period,
                                                           .quota_offset = spec.quota_offset});
  }
  if (manifest.cors) {
    const CorsSpec& c = *manifest.cors;
    api.cors = gateway::CorsConfig{.allow_origins = c.allow_origins,
                                   .allow_methods = c.allow_methods,
                                   .allow_headers = c.allow_headers,
                                   .expose_headers = c.expose_headers,
                                   .max_age_s = c.max_age_s,
                                   .allow_credentials = c.allow_credentials};
  }
  RETURN_IF_ERROR(gateway::ValidateApiConfig(api));
  return api;
}

core::Result<std::optional<Deployer::Live>> Deployer::ReadLive(store::Transaction& tx,
                                                               std::string_view app,
                                                               std::string_view stage) {
  ASSIGN_OR_RETURN(
      std::optional<store::Row> row,
      tx.QueryOptional("SELECT v.version AS version, v.manifest AS manifest, v.state AS state, "
                       "v.bundle_sha256 AS bundle_sha256, a.updated_at AS updated_at FROM apps a "
                       "JOIN app_versions v ON v.app = a.app AND v.stage = a.stage AND "
                       "v.version = a.live_version WHERE a.app = ? AND a.stage = ?",
                       {app, stage}));
  if (!row) return std::optional<Live>();
  Live live;
  ASSIGN_OR_RETURN(live.version, row->GetInt("version"));
  ASSIGN_OR_RETURN(live.manifest, row->GetText("manifest"));
  ASSIGN_OR_RETURN(live.bundle_sha256, row->GetText("bundle_sha256"));
  ASSIGN_OR_RETURN(live.updated_at, row->GetText("updated_at"));
  ASSIGN_OR_RETURN(const std::string state, row->GetText("state"));
  boost::system::error_code ec;
  const boost::json::value json = boost::json::parse(state, ec);
  if (ec || !json.is_object() || !json.as_object().contains("functions")) {
    return core::InternalError("the stored state of " + std::string(app) + "/" +
                               std::string(stage) + " is corrupt");
  }
  for (const auto& f : json.at("functions").as_array()) {
    ASSIGN_OR_RETURN(FunctionDeployment d, DeploymentFromJson(f));
    live.functions.push_back(std::move(d));
  }
  if (const auto* b = json.as_object().if_contains("boundary"); b && b->is_string()) {
    live.boundary = std::string(b->as_string());
  }
  return std::optional<Live>(std::move(live));
}

core::Result<std::pair<std::string, std::string>> Deployer::BoundaryIn(store::Transaction& tx,
                                                                       std::string_view app,
                                                                       std::string_view stage) {
  ASSIGN_OR_RETURN(
      std::optional<store::Row> row,
      tx.QueryOptional("SELECT document FROM app_boundaries WHERE app = ? AND stage = ?",
                       {app, stage}));
  if (row) {
    ASSIGN_OR_RETURN(std::string document, row->GetText("document"));
    return std::pair(std::move(document), std::string("operator"));
  }
  return std::pair(DefaultBoundary(deps_.account_id, app, stage), std::string("default"));
}

identity::RoleDefinition Deployer::RoleFor(std::string_view app, std::string_view stage,
                                           const FunctionDeployment& function,
                                           const std::string& boundary) const {
  identity::RoleDefinition role;
  role.name = function.function_name;
  role.trust_policy = std::string(kTrustPolicy);
  if (!function.policy.empty()) role.policies.push_back({"manifest", function.policy});
  role.boundary = boundary;
  role.tags = {{"moatless:app", std::string(app)}, {"moatless:stage", std::string(stage)}};
  return role;
}

core::Result<DeployOutcome> Deployer::Deploy(const DeployRequest& request) {
  RETURN_IF_ERROR(ValidateAppName(request.app));
  RETURN_IF_ERROR(ValidateStageName(request.stage));
  // Unpack into a private staging directory, then move it to its content address.
  std::error_code ec;
  const fs::path staging_root = fs::path(deps_.apps_dir) / "staging";
  const fs::path bundles_root = fs::path(deps_.apps_dir) / "bundles";
  fs::create_directories(staging_root, ec);
  fs::create_directories(bundles_root, ec);
  if (ec) return core::InternalError("cannot create " + deps_.apps_dir + ": " + ec.message());
  // Sandboxes reach code in bundles/SHA256 by name; nobody else may list what is deployed.
  ::chmod(deps_.apps_dir.c_str(), 0711);
  ::chmod(bundles_root.c_str(), 0711);
  ::chmod(staging_root.c_str(), 0700);
  RETURN_IF_ERROR(CheckTraversable(bundles_root));
  // The same bytes again (a plan, then its apply): the bundle is on disk already.
  const fs::path uploads = fs::path(deps_.apps_dir) / "uploads";
  fs::create_directories(uploads, ec);
  ::chmod(uploads.c_str(), 0700);
  const fs::path upload_record = uploads / BytesHash(request.bundle);
  std::string known;
  if (ReadText(upload_record, known).ok() && known.size() == 64 &&
      fs::is_directory(BundleDir(known), ec)) {
    return DeployBundle(request.app, request.stage, known, request.dry_run, request.strict,
                        request.expected_version, request.deployer, "deploy");
  }
  const fs::path staging = staging_root / core::RandomHex(deps_.env.random(), 16);
  RETURN_IF_ERROR(ExtractBundle(request.bundle, staging.string(), deps_.limits));
  auto hash = TreeHash(staging.string());
  if (!hash.ok()) {
    fs::remove_all(staging, ec);
    return hash.status();
  }
  const fs::path final_dir = BundleDir(*hash);
  if (fs::exists(final_dir, ec)) {
    fs::remove_all(staging, ec);
  } else {
    fs::rename(staging, final_dir, ec);
    if (ec) {
      fs::remove_all(staging, ec);
      if (!fs::exists(final_dir)) return core::InternalError("cannot store the bundle");
    }
    RETURN_IF_ERROR(SyncDirectory(bundles_root));
  }
  RETURN_IF_ERROR(WriteRecord(upload_record, *hash));
  return DeployBundle(request.app, request.stage, *hash, request.dry_run, request.strict,
                      request.expected_version, request.deployer, "deploy");
}

core::Result<DeployOutcome> Deployer::Rollback(std::string_view app, std::string_view stage,
                                               std::optional<std::int64_t> to, bool dry_run,
                                               std::string deployer) {
  RETURN_IF_ERROR(ValidateAppName(app));
  RETURN_IF_ERROR(ValidateStageName(stage));
  std::int64_t live_version = 0;
  ASSIGN_OR_RETURN(const std::string bundle,
                   store::TransactValue(
                       deps_.db, {.access = store::Access::kReadOnly},
                       [&](store::Transaction& tx) -> core::Result<std::string> {
                         ASSIGN_OR_RETURN(std::optional<Live> live, ReadLive(tx, app, stage));
                         if (!live) {
                           return core::NotFoundError(std::string(app) + "/" + std::string(stage) +
                                                      " has never been deployed");
                         }
                         live_version = live->version;
                         const std::int64_t target = to.value_or(live->version - 1);
                         ASSIGN_OR_RETURN(
                             std::optional<store::Row> row,
                             tx.QueryOptional("SELECT bundle_sha256 FROM app_versions WHERE app = "
                                              "? AND stage = ? AND version = ?",
                                              {app, stage, target}));
                         if (!row) {
                           return core::NotFoundError(std::string(app) + "/" + std::string(stage) +
                                                      " has no version " + std::to_string(target));
                         }
                         to = target;
                         return row->GetText("bundle_sha256");
                       }));
  return DeployBundle(std::string(app), std::string(stage), bundle, dry_run, /*strict=*/false,
                      live_version, deployer, "rollback to " + std::to_string(*to));
}

core::Result<DeployOutcome> Deployer::DeployBundle(std::string app, std::string stage,
                                                   const std::string& bundle_sha256, bool dry_run,
                                                   bool strict,
                                                   std::optional<std::int64_t> expected_version,
                                                   const std::string& deployer,
                                                   const std::string& description) {
  const fs::path dir = BundleDir(bundle_sha256);
  std::string text;
  RETURN_IF_ERROR(ReadText(dir / kManifestFileName, text));
  ParseOptions options;
  options.stage = stage;
  options.base_dir = dir.string();
  options.region = deps_.region;
  options.account_id = deps_.account_id;
  ParseOutcome parsed = ParseManifest(text, options);
  RETURN_IF_ERROR(parsed.ToStatus(kManifestFileName));
  const Manifest& manifest = *parsed.manifest;
  if (manifest.app != app) {
    return core::InvalidArgumentError("the manifest describes app '" + manifest.app + "', not '" +
                                      app + "'");
  }

  // What is live, and the boundary in force.
  std::optional<Live> live;
  std::pair<std::string, std::string> boundary;
  RETURN_IF_ERROR(deps_.db.Read([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(live, ReadLive(tx, app, stage));
    ASSIGN_OR_RETURN(boundary, BoundaryIn(tx, app, stage));
    return core::Status::Ok();
  }));
  if (expected_version && *expected_version != (live ? live->version : 0)) {
    return core::AbortedError("the live version of " + app + "/" + stage + " is " +
                              std::to_string(live ? live->version : 0) + ", not " +
                              std::to_string(*expected_version) +
                              ": another deployment happened; plan again");
  }
  std::optional<Manifest> before;
  if (live) {
    ParseOptions previous = options;
    previous.base_dir.clear();  // its files were checked when it was deployed
    ParseOutcome old = ParseManifest(live->manifest, previous);
    if (old.manifest) before = std::move(old.manifest);
  }

  DeployOutcome outcome;
  outcome.app = app;
  outcome.stage = stage;
  outcome.dry_run = dry_run;
  outcome.bundle_sha256 = bundle_sha256;
  outcome.boundary_source = boundary.second;
  outcome.previous_version = live ? live->version : 0;
  outcome.version = outcome.previous_version;

  // Functions: what each becomes, and what changes.
  std::map<std::string, const FunctionDeployment*> current;
  if (live) {
    for (const FunctionDeployment& f : live->functions) current[f.name] = &f;
  }
  std::vector<FunctionDeployment> desired;
  std::set<std::string> republish;
  std::map<std::string, std::string> code_hashes;  // functions may share a code directory
  for (const auto& [name, spec] : manifest.functions) {
    FunctionDeployment d;
    d.name = name;
    d.function_name = QualifiedFunctionName(app, stage, name);
    d.role_arn = deps_.directory.RoleArn(d.function_name);
    if (auto it = code_hashes.find(spec.code); it != code_hashes.end()) {
      d.code_sha256 = it->second;
    } else {
      ASSIGN_OR_RETURN(d.code_sha256, TreeHash((dir / spec.code).string()));
      code_hashes.emplace(spec.code, d.code_sha256);
    }
    d.settings = SettingsJson(spec);
    d.policy = spec.policy;
    auto it = current.find(name);
    if (it == current.end()) {
      outcome.changes.push_back({"function", name, ChangeKind::kCreate, {}});
      republish.insert(name);
    } else {
      const FunctionDeployment& old = *it->second;
      Change change{"function", name, ChangeKind::kUpdate, {}};
      if (old.code_sha256 != d.code_sha256) {
        change.details.push_back("code: " + ShortHash(old.code_sha256) + " → " +
                                 ShortHash(d.code_sha256));
      }
      DiffSettings(old.settings, d.settings, change.details);
      const bool code_or_settings = !change.details.empty();
      DiffPolicies(old.policy, d.policy, change.details);
      if (code_or_settings) {
        republish.insert(name);
      } else {
        d.version = old.version;
      }
      if (!change.details.empty()) outcome.changes.push_back(std::move(change));
    }
    desired.push_back(std::move(d));
  }
  for (const auto& [name, f] : current) {
    if (!manifest.functions.contains(name)) {
      outcome.changes.push_back({"function", name, ChangeKind::kDelete, {}});
    }
  }
  const bool boundary_changed = live && live->boundary != boundary.first;
  if (boundary_changed) {
    outcome.changes.push_back({"boundary",
                               app + "/" + stage,
                               ChangeKind::kUpdate,
                               {"the " + boundary.second + " boundary applies to every role"}});
  }
  // The other sections: planned and recorded.
  const Manifest empty;
  const Manifest& old = before ? *before : empty;
  DiffNamed("route", ByKey(old.routes), ByKey(manifest.routes), outcome.changes);
  DiffNamed("authorizer", old.authorizers, manifest.authorizers, outcome.changes);
  DiffNamed("usage_plan", old.usage_plans, manifest.usage_plans, outcome.changes);
  DiffNamed("secret", old.secrets, manifest.secrets, outcome.changes);
  DiffNamed("alert", ByKey(old.alerts), ByKey(manifest.alerts), outcome.changes);
  if (manifest.cors != old.cors) {
    outcome.changes.push_back({"cors",
                               app + "/" + stage,
                               !manifest.cors ? ChangeKind::kDelete
                               : !old.cors    ? ChangeKind::kCreate
                                              : ChangeKind::kUpdate,
                               {}});
  }
  // The gateway API, checked now (JWKS included) so that a plan never promises what the apply
  // would refuse; versions of functions not yet published are placeholders until the apply.
  {
    std::vector<FunctionDeployment> planned = desired;
    for (FunctionDeployment& f : planned) {
      if (f.version == 0) f.version = 1;
    }
    ASSIGN_OR_RETURN(gateway::ApiConfig api, GatewayApi(manifest, planned, dir.string(), 1));
    for (const auto& [name, a] : api.authorizers) {
      if (a.type != gateway::AuthKind::kJwt) continue;
      auto verifier = gateway::JwtVerifier::Create({.issuer = a.jwt.issuer,
                                                    .audience = a.jwt.audience,
                                                    .leeway = std::chrono::seconds(a.jwt.leeway_s)},
                                                   a.jwt.jwks);
      if (!verifier.ok()) {
        return core::InvalidArgumentError("authorizers." + name +
                                          ".jwks: " + verifier.status().message());
      }
    }
  }
  if (!manifest.secrets.empty() && deps_.secrets == nullptr) {
    outcome.pending.push_back("secrets (the secrets manager)");
  }
  // The secrets as the secrets manager will hold them (values are never in the manifest).
  std::vector<secrets::SecretDeclaration> declared;
  if (deps_.secrets != nullptr) {
    const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deps_.env.clock().Now().time_since_epoch())
                                    .count();
    for (const auto& [name, spec] : manifest.secrets) {
      secrets::SecretDeclaration d{
          .name = QualifiedSecretName(app, stage, name),
          .description = spec.description,
          .tags = {{"moatless:app", std::string(app)}, {"moatless:stage", std::string(stage)}},
          .resource_policy = spec.policy};
      if (!spec.rotation_function.empty()) {
        d.rotation_function =
            "arn:aws:lambda:" + deps_.region + ":" + deps_.account_id +
            ":function:" + QualifiedFunctionName(app, stage, spec.rotation_function);
        if (spec.rotation_every_s % 86400 == 0) {
          d.rotation_rules.automatically_after_days = spec.rotation_every_s / 86400;
        } else {
          d.rotation_rules.schedule_expression =
              "rate(" + std::to_string(spec.rotation_every_s / 3600) + " hours)";
        }
        auto next = secrets::NextRotation(d.rotation_rules, now_ms);
        if (!next.ok()) {
          return core::InvalidArgumentError("secrets." + name +
                                            ".rotation: " + next.status().message());
        }
        d.next_rotation_ms = *next;
      }
      declared.push_back(std::move(d));
    }
    for (const auto& [name, spec] : old.secrets) {
      if (!manifest.secrets.contains(name)) {
        outcome.pending.push_back("secret " + QualifiedSecretName(app, stage, name) +
                                  " is kept with its values (moatless secrets delete removes it)");
      }
    }
  }

  // What the boundary leaves of each policy.
  for (const FunctionDeployment& d : desired) {
    if (d.policy.empty()) continue;
    ASSIGN_OR_RETURN(std::vector<DeadStatement> dead, DeadStatements(d.policy, boundary.first));
    if (!dead.empty()) outcome.dead[d.name] = std::move(dead);
  }
  if (strict && !outcome.dead.empty()) {
    std::string message =
        "strict deployment: the " + boundary.second + " boundary makes these statements dead:";
    for (const auto& [name, statements] : outcome.dead) {
      for (const DeadStatement& s : statements) {
        message += "\n  " + name + " statement " + std::to_string(s.index) + ": " + s.statement;
      }
    }
    return core::FailedPreconditionError(message);
  }

  outcome.changed = !live || live->bundle_sha256 != bundle_sha256 || !outcome.changes.empty();
  if (dry_run || !outcome.changed) {
    outcome.functions = std::move(desired);
    for (FunctionDeployment& f : outcome.functions) {
      if (republish.contains(f.name)) f.version = 0;  // not published yet
    }
    return outcome;
  }

  // Apply: one transaction.
  const std::string now = core::FormatRfc3339(deps_.env.clock().Now());
  const std::int64_t planned = live ? live->version : 0;
  gateway::ApiConfig api;
  core::Status applied = deps_.db.Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(std::optional<Live> still, ReadLive(tx, app, stage));
    if ((still ? still->version : 0) != planned) {
      return core::AbortedError("another deployment of " + app + "/" + stage +
                                " finished while this one was planned; deploy again");
    }
    for (FunctionDeployment& d : desired) {
      RETURN_IF_ERROR(deps_.directory.ApplyRole(tx, RoleFor(app, stage, d, boundary.first)));
      if (!republish.contains(d.name)) continue;
      const FunctionSpec& spec = manifest.functions.at(d.name);
      runtime::FunctionConfig config;
      config.name = d.function_name;
      config.runtime = spec.runtime;
      config.handler = spec.handler;
      config.code_dir = (dir / spec.code).string();
      config.memory_mb = spec.memory_mb;
      config.timeout = std::chrono::seconds(spec.timeout_s);
      config.environment = spec.environment;
      config.role_arn = d.role_arn;
      config.reserved_concurrency = spec.concurrency;
      config.egress = spec.egress;
      ASSIGN_OR_RETURN(runtime::FunctionConfig published, deps_.registry.PublishIn(tx, config));
      d.version = std::stoll(published.version);
    }
    for (const secrets::SecretDeclaration& d : declared) {
      RETURN_IF_ERROR(deps_.secrets->DeclareIn(tx, d).status());
    }
    for (const auto& [name, f] : current) {
      if (manifest.functions.contains(name)) continue;
      const core::Status deleted = deps_.registry.DeleteIn(tx, f->function_name);
      if (!deleted.ok() && deleted.code() != core::StatusCode::kNotFound) return deleted;
      RETURN_IF_ERROR(deps_.directory.DeleteRoleIn(tx, f->function_name));
    }
    const std::int64_t version = planned + 1;
    ASSIGN_OR_RETURN(std::optional<store::Row> highest,
                     tx.QueryOptional("SELECT MAX(version) AS v FROM app_versions WHERE app = ? "
                                      "AND stage = ?",
                                      {app, stage}));
    std::int64_t next = version;
    if (highest) {
      ASSIGN_OR_RETURN(const std::optional<std::int64_t> v,
                       highest->Get<std::optional<std::int64_t>>("v"));
      if (v) next = *v + 1;
    }
    RETURN_IF_ERROR(
        tx.Exec("INSERT INTO app_versions (app, stage, version, manifest, state, bundle_sha256, "
                "deployer, description, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                {app, stage, next, text, StateJson(desired, boundary.first), bundle_sha256,
                 deployer, description, now}));
    RETURN_IF_ERROR(
        tx.Exec("INSERT INTO apps (app, stage, live_version, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (app, stage) DO UPDATE SET live_version = excluded.live_version, "
                "updated_at = excluded.updated_at",
                {app, stage, next, now}));
    outcome.version = next;
    ASSIGN_OR_RETURN(api, GatewayApi(manifest, desired, dir.string(), next));
    return gateway::ApiStore::PutIn(tx, api, deps_.env.clock().Now());
  });
  deps_.directory.NoteWrite();
  RETURN_IF_ERROR(applied);
  if (deps_.on_api_applied) deps_.on_api_applied(api);
  outcome.functions = std::move(desired);
  return outcome;
}

core::Result<std::optional<gateway::ApiConfig>> Deployer::GatewayApiOf(std::string_view app,
                                                                       std::string_view stage) {
  return gateway::ApiStore::Load(deps_.db, app, stage);
}

core::Result<std::vector<AppSummary>> Deployer::ListApps() {
  return store::TransactValue(
      deps_.db, {.access = store::Access::kReadOnly},
      [&](store::Transaction& tx) -> core::Result<std::vector<AppSummary>> {
        ASSIGN_OR_RETURN(std::vector<store::Row> rows,
                         tx.Query("SELECT app, stage, live_version, updated_at FROM apps ORDER BY "
                                  "app, stage LIMIT 10000"));
        std::vector<AppSummary> out;
        for (const store::Row& row : rows) {
          AppSummary s;
          ASSIGN_OR_RETURN(s.app, row.GetText("app"));
          ASSIGN_OR_RETURN(s.stage, row.GetText("stage"));
          ASSIGN_OR_RETURN(s.live_version, row.GetInt("live_version"));
          ASSIGN_OR_RETURN(s.updated_at, row.GetText("updated_at"));
          out.push_back(std::move(s));
        }
        return out;
      });
}

core::Result<AppDetails> Deployer::GetApp(std::string_view app, std::string_view stage) {
  RETURN_IF_ERROR(ValidateAppName(app));
  RETURN_IF_ERROR(ValidateStageName(stage));
  AppDetails details;
  std::string manifest_text;
  RETURN_IF_ERROR(deps_.db.Read([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(std::optional<Live> live, ReadLive(tx, app, stage));
    if (!live) {
      return core::NotFoundError(std::string(app) + "/" + std::string(stage) +
                                 " has never been deployed");
    }
    details.summary = {std::string(app), std::string(stage), live->version, live->updated_at};
    details.functions = live->functions;
    manifest_text = live->manifest;
    ASSIGN_OR_RETURN(auto boundary, BoundaryIn(tx, app, stage));
    details.boundary = std::move(boundary.first);
    details.boundary_source = std::move(boundary.second);
    ASSIGN_OR_RETURN(std::vector<store::Row> rows,
                     tx.Query("SELECT version, created_at, deployer, description, bundle_sha256 "
                              "FROM app_versions WHERE app = ? AND stage = ? ORDER BY version "
                              "LIMIT 10000",
                              {app, stage}));
    for (const store::Row& row : rows) {
      AppVersionInfo v;
      ASSIGN_OR_RETURN(v.version, row.GetInt("version"));
      ASSIGN_OR_RETURN(v.created_at, row.GetText("created_at"));
      ASSIGN_OR_RETURN(v.deployer, row.GetText("deployer"));
      ASSIGN_OR_RETURN(v.description, row.GetText("description"));
      ASSIGN_OR_RETURN(v.bundle_sha256, row.GetText("bundle_sha256"));
      details.versions.push_back(std::move(v));
    }
    return core::Status::Ok();
  }));
  ParseOptions options;
  options.stage = std::string(stage);
  options.region = deps_.region;
  options.account_id = deps_.account_id;
  if (auto parsed = ParseManifest(manifest_text, options); parsed.manifest) {
    details.routes = parsed.manifest->routes;
  }
  return details;
}

core::Status Deployer::ApplyBoundary(std::string_view app, std::string_view stage,
                                     std::optional<std::string> document) {
  const std::string now = core::FormatRfc3339(deps_.env.clock().Now());
  core::Status status = deps_.db.Write([&](store::Transaction& tx) -> core::Status {
    if (document) {
      RETURN_IF_ERROR(tx.Exec(
          "INSERT INTO app_boundaries (app, stage, document, updated_at) VALUES (?, ?, ?, ?) "
          "ON CONFLICT (app, stage) DO UPDATE SET document = excluded.document, "
          "updated_at = excluded.updated_at",
          {app, stage, *document, now}));
    } else {
      RETURN_IF_ERROR(
          tx.Exec("DELETE FROM app_boundaries WHERE app = ? AND stage = ?", {app, stage}));
    }
    ASSIGN_OR_RETURN(std::optional<Live> live, ReadLive(tx, app, stage));
    if (!live) return core::Status::Ok();
    ASSIGN_OR_RETURN(auto boundary, BoundaryIn(tx, app, stage));
    for (const FunctionDeployment& f : live->functions) {
      RETURN_IF_ERROR(deps_.directory.ApplyRole(tx, RoleFor(app, stage, f, boundary.first)));
    }
    return core::Status::Ok();
  });
  deps_.directory.NoteWrite();
  return status;
}

core::Result<std::map<std::string, std::vector<DeadStatement>>> Deployer::PutBoundary(
    std::string_view app, std::string_view stage, std::string_view document) {
  RETURN_IF_ERROR(ValidateAppName(app));
  RETURN_IF_ERROR(ValidateStageName(stage));
  policy::ParseOptions parse;
  parse.type = policy::PolicyType::kBoundary;
  parse.max_document_bytes = 10 * 1024;
  if (auto parsed = policy::ParsePolicy(document, parse); !parsed.ok()) {
    return parsed.status().Annotate("permissions boundary");
  }
  RETURN_IF_ERROR(ApplyBoundary(app, stage, std::string(document)));
  std::map<std::string, std::vector<DeadStatement>> dead;
  auto details = GetApp(app, stage);
  if (!details.ok()) return dead;  // not deployed yet: nothing to check
  for (const FunctionDeployment& f : details->functions) {
    if (f.policy.empty()) continue;
    ASSIGN_OR_RETURN(std::vector<DeadStatement> d, DeadStatements(f.policy, document));
    if (!d.empty()) dead[f.name] = std::move(d);
  }
  return dead;
}

core::Status Deployer::DeleteBoundary(std::string_view app, std::string_view stage) {
  RETURN_IF_ERROR(ValidateAppName(app));
  RETURN_IF_ERROR(ValidateStageName(stage));
  return ApplyBoundary(app, stage, std::nullopt);
}

core::Result<std::pair<std::string, std::string>> Deployer::GetBoundary(std::string_view app,
                                                                        std::string_view stage) {
  RETURN_IF_ERROR(ValidateAppName(app));
  RETURN_IF_ERROR(ValidateStageName(stage));
  return store::TransactValue(deps_.db, {.access = store::Access::kReadOnly},
                              [&](store::Transaction& tx) { return BoundaryIn(tx, app, stage); });
}

}  // namespace moatless::manifest
