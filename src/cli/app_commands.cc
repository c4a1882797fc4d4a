#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/iam_client.h"
#include "manifest/app_api.h"
#include "manifest/bundle.h"
#include "manifest/manifest.h"

namespace moatless::cli {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

std::string ReadAll(const std::string& path, bool& ok) {
  std::ifstream in(path, std::ios::binary);
  ok = static_cast<bool>(in);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return "";
  if (v->is_string()) return std::string(v->as_string());
  return json::serialize(*v);
}

std::string Kib(std::uint64_t bytes) {
  std::ostringstream out;
  out.precision(1);
  out << std::fixed << static_cast<double>(bytes) / 1024.0 << " KiB";
  return out.str();
}

std::string AppPath(const std::string& app, const std::string& stage) {
  return std::string(manifest::kAppApiPrefix) + "apps/" + app + "/stages/" + stage;
}

void PrintDead(const json::object& o) {
  const json::value* dead = o.if_contains("DeadStatements");
  if (dead == nullptr || !dead->is_array() || dead->as_array().empty()) return;
  std::cout << "\nDead statements — the permissions boundary can never allow them:\n";
  for (const auto& d : dead->as_array()) {
    const json::object& s = d.as_object();
    std::cout << "  " << Str(s, "Function") << " statement " << Str(s, "Index") << ": "
              << Str(s, "Statement") << "\n";
  }
}

void PrintPlan(const json::object& o) {
  const std::int64_t previous = o.at("PreviousVersion").as_int64();
  std::cout << "Plan for " << Str(o, "App") << "/" << Str(o, "Stage") << " ("
            << (previous == 0 ? std::string("first deployment")
                              : "live version " + std::to_string(previous))
            << ", " << Str(o, "BoundarySource") << " boundary, bundle "
            << Str(o, "BundleSha256").substr(0, 12) << "):\n";
  const json::array& changes = o.at("Changes").as_array();
  if (changes.empty()) std::cout << "  no changes\n";
  for (const auto& c : changes) {
    const json::object& change = c.as_object();
    const std::string kind = Str(change, "Kind");
    const char mark = kind == "create" ? '+' : kind == "delete" ? '-' : '~';
    std::cout << "  " << mark << " " << Str(change, "Section") << " " << Str(change, "Name")
              << "\n";
    for (const auto& d : change.at("Details").as_array()) {
      std::cout << "      " << d.as_string().c_str() << "\n";
    }
  }
  PrintDead(o);
  const json::array& pending = o.at("Pending").as_array();
  if (!pending.empty()) {
    std::cout << "\nRecorded with the version, not enforced by this platform yet:";
    for (const auto& p : pending) std::cout << " " << p.as_string().c_str() << ";";
    std::cout << "\n";
  }
}

bool Confirm(const std::string& question) {
  if (::isatty(STDIN_FILENO) == 0) return false;
  std::cout << question << " [y/N] " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "Y" || answer == "yes";
}

}  // namespace

AppCommands::AppCommands(CLI::App& parent) {
  deploy_ = parent.add_subcommand("deploy",
                                  "Validate, plan and deploy the app described by moatless.yaml");
  AddConnectionFlags(deploy_, connection_);
  deploy_->add_option("--dir", dir_, "Directory holding moatless.yaml (default: .)");
  deploy_->add_option("--stage", stage_, "Stage to deploy to (default: the manifest's)");
  deploy_->add_flag("--dry-run", dry_run_, "Show the plan; change nothing");
  deploy_->add_flag("--strict", strict_,
                    "Fail if the permissions boundary makes any policy statement dead");
  deploy_->add_flag("--yes", yes_, "Apply without asking");
  deploy_->add_flag("--json", json_, "Print the server's answer as JSON");

  rollback_ = parent.add_subcommand("rollback",
                                    "Deploy an earlier version of an app again (as a new version)");
  AddConnectionFlags(rollback_, connection_);
  rollback_->add_option("--app", app_, "App (default: the one in --dir's moatless.yaml)");
  rollback_->add_option("--stage", stage_, "Stage (default: the manifest's)");
  rollback_->add_option("--dir", dir_, "Directory holding moatless.yaml (default: .)");
  rollback_->add_option("--to", to_, "Version to restore (default: the one before the live one)");
  rollback_->add_flag("--dry-run", dry_run_, "Show the plan; change nothing");
  rollback_->add_flag("--yes", yes_, "Apply without asking");
  rollback_->add_flag("--json", json_, "Print the server's answer as JSON");

  apps_ = parent.add_subcommand("apps", "List deployed apps and show one");
  apps_->require_subcommand(1);
  apps_list_ = apps_->add_subcommand("list", "Every app and stage with its live version");
  AddConnectionFlags(apps_list_, connection_);
  apps_list_->add_flag("--json", json_, "Print JSON");
  apps_show_ = apps_->add_subcommand("show", "An app's functions, roles, routes and versions");
  AddConnectionFlags(apps_show_, connection_);
  apps_show_->add_option("app", app_, "App")->required();
  apps_show_->add_option("--stage", stage_, "Stage")->required();
  apps_show_->add_flag("--json", json_, "Print JSON");

  boundaries_ = parent.add_subcommand("boundaries",
                                      "The operator's permissions boundary of an app and stage");
  boundaries_->require_subcommand(1);
  boundaries_set_ = boundaries_->add_subcommand(
      "set", "Set the boundary (a policy file); applies at once to the live roles");
  boundaries_show_ = boundaries_->add_subcommand("show", "Print the boundary in force");
  boundaries_delete_ = boundaries_->add_subcommand("delete", "Go back to the default boundary");
  for (CLI::App* sub : {boundaries_set_, boundaries_show_, boundaries_delete_}) {
    AddConnectionFlags(sub, connection_);
    sub->add_option("--app", app_, "App")->required();
    sub->add_option("--stage", stage_, "Stage")->required();
  }
  boundaries_set_->add_option("file", file_, "IAM policy JSON file")->required();

  apikeys_ = parent.add_subcommand(
      "apikeys", "API keys of an app stage (the x-api-key of its api_key routes)");
  apikeys_->require_subcommand(1);
  apikeys_create_ = apikeys_->add_subcommand(
      "create", "Create a key on a usage plan; its value is printed once, only its hash is kept");
  apikeys_list_ = apikeys_->add_subcommand("list", "The app stage's keys (never their values)");
  apikeys_show_ = apikeys_->add_subcommand("show", "One key");
  apikeys_enable_ = apikeys_->add_subcommand("enable", "Accept a key again");
  apikeys_disable_ = apikeys_->add_subcommand("disable", "Refuse a key from the next request on");
  apikeys_attach_ = apikeys_->add_subcommand("attach", "Move a key to another usage plan");
  apikeys_delete_ = apikeys_->add_subcommand("delete", "Delete a key and its quota use");
  for (CLI::App* sub : {apikeys_create_, apikeys_list_, apikeys_show_, apikeys_enable_,
                        apikeys_disable_, apikeys_attach_, apikeys_delete_}) {
    AddConnectionFlags(sub, connection_);
    sub->add_option("--app", app_, "App")->required();
    sub->add_option("--stage", stage_, "Stage")->required();
    sub->add_flag("--json", json_, "Print JSON");
  }
  for (CLI::App* sub :
       {apikeys_show_, apikeys_enable_, apikeys_disable_, apikeys_attach_, apikeys_delete_}) {
    sub->add_option("id", key_id_, "Key id (key-...)")->required();
  }
  apikeys_create_->add_option("--plan", plan_, "Usage plan (defined by the app's manifest)")
      ->required();
  apikeys_create_->add_option("--name", name_, "A name for people (who holds the key)");
  apikeys_attach_->add_option("--plan", plan_, "Usage plan")->required();

  alerts_ = parent.add_subcommand("alerts", "The alerts of an app stage (its manifest's alerts:)");
  alerts_->require_subcommand(1);
  alerts_list_ = alerts_->add_subcommand(
      "list",
      "Every alert of an app stage with its state (inactive, pending, firing), since when "
      "and its last value");
  AddConnectionFlags(alerts_list_, connection_);
  alerts_list_->add_option("--app", app_, "App")->required();
  alerts_list_->add_option("--stage", stage_, "Stage")->required();
  alerts_list_->add_flag("--json", json_, "Print JSON");
}

bool AppCommands::parsed() const {
  return deploy_->parsed() || rollback_->parsed() || apps_->parsed() || boundaries_->parsed() ||
         apikeys_->parsed() || alerts_->parsed();
}

int AppCommands::Run(const std::map<std::string, std::string>& environment) {
  if (deploy_->parsed()) return RunDeploy(environment);
  if (rollback_->parsed()) return RunRollback(environment);
  if (apps_->parsed()) return RunApps(environment);
  if (apikeys_->parsed()) return RunApiKeys(environment);
  if (alerts_->parsed()) return RunAlerts(environment);
  return RunBoundaries(environment);
}

int AppCommands::RunAlerts(const std::map<std::string, std::string>& environment) {
  auto settings = ResolveClientSettings(connection_.endpoint, connection_.profile,
                                        connection_.region, environment);
  if (!settings.ok()) {
    std::cerr << "moatless alerts: " << settings.status().message() << "\n";
    return kExitUsage;
  }
  auto alerts = CallRestJson(*settings, http::Verb::get,
                             std::string(manifest::kAppApiPrefix) + "alerts/" + app_ + "/" + stage_,
                             "", "", "alerts list");
  if (!alerts) return kExitRuntime;
  if (json_) {
    std::cout << json::serialize(*alerts) << "\n";
    return kExitOk;
  }
  const json::array& list = alerts->at("Alerts").as_array();
  if (list.empty()) std::cout << app_ << "/" << stage_ << " has no alerts\n";
  for (const auto& a : list) {
    const json::object& alert = a.as_object();
    std::string value = "no value yet";
    if (const json::value* v = alert.if_contains("Value"); v != nullptr && v->is_number()) {
      std::ostringstream out;
      out << "value " << v->to_number<double>();
      value = out.str();
    }
    std::cout << Str(alert, "Name") << "  " << Str(alert, "State")
              << (Str(alert, "Since").empty() ? "" : " since " + Str(alert, "Since")) << "  "
              << value << "\n    " << Str(alert, "Description") << "\n";
  }
  return kExitOk;
}

int AppCommands::RunDeploy(const std::map<std::string, std::string>& environment) {
  const std::string manifest_path = (fs::path(dir_) / manifest::kManifestFileName).string();
  bool readable = false;
  const std::string text = ReadAll(manifest_path, readable);
  if (!readable) {
    std::cerr << "moatless deploy: cannot read " << manifest_path << "\n";
    return kExitUsage;
  }
  auto settings = ResolveClientSettings(connection_.endpoint, connection_.profile,
                                        connection_.region, environment);
  if (!settings.ok()) {
    std::cerr << "moatless deploy: " << settings.status().message() << "\n";
    return kExitUsage;
  }
  manifest::ParseOptions options;
  options.file_name = manifest_path;
  options.stage = stage_;
  options.base_dir = dir_;
  options.region = settings->region;
  manifest::ParseOutcome parsed = manifest::ParseManifest(text, options);
  if (!parsed.manifest) {
    std::cerr << parsed.ToStatus(manifest_path).message() << "\n";
    return kExitRuntime;
  }
  const manifest::Manifest& m = *parsed.manifest;
  auto packed = manifest::PackBundle(dir_, m);
  if (!packed.ok()) {
    std::cerr << "moatless deploy: " << packed.status().message() << "\n";
    return kExitRuntime;
  }
  std::cerr << "Packed " << packed->files << " files, " << Kib(packed->expanded_bytes) << " → "
            << Kib(packed->bytes.size()) << "\n";
  for (const std::string& s : packed->skipped) {
    std::cerr << "  left out (symbolic link): " << s << "\n";
  }
  const std::string path = AppPath(m.app, m.stage) + "/deployments";
  std::cerr << "Uploading to " << settings->endpoint << " and planning…\n";
  auto plan = CallRestJson(*settings, http::Verb::post,
                           path + "?dryRun=true" + (strict_ ? "&strict=true" : ""), packed->bytes,
                           "application/gzip", "deploy");
  if (!plan) return kExitRuntime;
  if (json_ && (dry_run_ || !plan->at("Changed").as_bool())) {
    std::cout << json::serialize(*plan) << "\n";
    return kExitOk;
  }
  if (!json_) PrintPlan(*plan);
  if (!plan->at("Changed").as_bool()) {
    if (!json_) {
      std::cout << "\nNothing to deploy: version " << plan->at("Version").as_int64()
                << " is live.\n";
    }
    return kExitOk;
  }
  if (dry_run_) return kExitOk;
  if (!yes_ && !Confirm("\nDeploy?")) {
    std::cerr << "moatless deploy: not applied (confirm on a terminal, or pass --yes)\n";
    return kExitRuntime;
  }
  std::cerr << "Applying…\n";
  auto applied = CallRestJson(
      *settings, http::Verb::post,
      path + "?expectedVersion=" + std::to_string(plan->at("PreviousVersion").as_int64()) +
          (strict_ ? "&strict=true" : ""),
      packed->bytes, "application/gzip", "deploy");
  if (!applied) return kExitRuntime;
  if (json_) {
    std::cout << json::serialize(*applied) << "\n";
    return kExitOk;
  }
  std::cout << "\nDeployed " << m.app << "/" << m.stage << " version "
            << applied->at("Version").as_int64() << ":\n";
  for (const auto& f : applied->at("Functions").as_array()) {
    const json::object& fn = f.as_object();
    std::cout << "  " << Str(fn, "FunctionName") << " version " << Str(fn, "Version") << "  role "
              << Str(fn, "RoleArn") << "\n";
  }
  return kExitOk;
}

int AppCommands::RunRollback(const std::map<std::string, std::string>& environment) {
  if (app_.empty() || stage_.empty()) {
    bool readable = false;
    const std::string manifest_path = (fs::path(dir_) / manifest::kManifestFileName).string();
    const std::string text = ReadAll(manifest_path, readable);
    manifest::ParseOptions options;
    options.stage = stage_;
    manifest::ParseOutcome parsed = manifest::ParseManifest(text, options);
    if (!readable || !parsed.manifest) {
      std::cerr << "moatless rollback: give --app and --stage (no valid " << manifest_path << ")\n";
      return kExitUsage;
    }
    if (app_.empty()) app_ = parsed.manifest->app;
    if (stage_.empty()) stage_ = parsed.manifest->stage;
  }
  auto settings = ResolveClientSettings(connection_.endpoint, connection_.profile,
                                        connection_.region, environment);
  if (!settings.ok()) {
    std::cerr << "moatless rollback: " << settings.status().message() << "\n";
    return kExitUsage;
  }
  std::string path = AppPath(app_, stage_) + "/rollback?";
  if (to_) path += "to=" + std::to_string(*to_) + "&";
  auto plan = CallRestJson(*settings, http::Verb::post, path + "dryRun=true", "", "", "rollback");
  if (!plan) return kExitRuntime;
  if (!json_) PrintPlan(*plan);
  if (dry_run_) {
    if (json_) std::cout << json::serialize(*plan) << "\n";
    return kExitOk;
  }
  if (!yes_ && !Confirm("\nRoll back?")) {
    std::cerr << "moatless rollback: not applied (confirm on a terminal, or pass --yes)\n";
    return kExitRuntime;
  }
  auto applied = CallRestJson(*settings, http::Verb::post, path, "", "", "rollback");
  if (!applied) return kExitRuntime;
  if (json_) {
    std::cout << json::serialize(*applied) << "\n";
  } else {
    std::cout << "\nRolled back " << app_ << "/" << stage_ << ": version "
              << applied->at("Version").as_int64() << " is live.\n";
  }
  return kExitOk;
}

int AppCommands::RunApps(const std::map<std::string, std::string>& environment) {
  auto settings = ResolveClientSettings(connection_.endpoint, connection_.profile,
                                        connection_.region, environment);
  if (!settings.ok()) {
    std::cerr << "moatless apps: " << settings.status().message() << "\n";
    return kExitUsage;
  }
  if (apps_list_->parsed()) {
    auto apps = CallRestJson(*settings, http::Verb::get,
                             std::string(manifest::kAppApiPrefix) + "apps", "", "", "apps list");
    if (!apps) return kExitRuntime;
    if (json_) {
      std::cout << json::serialize(*apps) << "\n";
      return kExitOk;
    }
    for (const auto& a : apps->at("Apps").as_array()) {
      const json::object& app = a.as_object();
      std::cout << Str(app, "App") << "/" << Str(app, "Stage") << "  version "
                << Str(app, "LiveVersion") << "  updated " << Str(app, "UpdatedAt") << "\n";
    }
    return kExitOk;
  }
  auto app = CallRestJson(*settings, http::Verb::get, AppPath(app_, stage_), "", "", "apps show");
  if (!app) return kExitRuntime;
  if (json_) {
    std::cout << json::serialize(*app) << "\n";
    return kExitOk;
  }
  std::cout << app_ << "/" << stage_ << ": version " << Str(*app, "LiveVersion") << " live since "
            << Str(*app, "UpdatedAt") << ", " << Str(*app, "BoundarySource") << " boundary\n"
            << "Functions:\n";
  for (const auto& f : app->at("Functions").as_array()) {
    const json::object& fn = f.as_object();
    std::cout << "  " << Str(fn, "Name") << " → " << Str(fn, "FunctionName") << " version "
              << Str(fn, "Version") << ", code " << Str(fn, "CodeSha256").substr(0, 12)
              << "\n      role " << Str(fn, "RoleArn")
              << (Str(fn, "Policy").empty() ? " (no policy: it may do nothing)" : "") << "\n";
  }
  std::cout << "Routes:\n";
  for (const auto& r : app->at("Routes").as_array()) {
    const json::object& route = r.as_object();
    std::cout << "  " << Str(route, "Route") << " → " << Str(route, "Function") << "  auth "
              << Str(route, "Auth")
              << (Str(route, "Authorizer").empty() ? "" : " " + Str(route, "Authorizer"))
              << (Str(route, "UsagePlan").empty() ? "" : ", plan " + Str(route, "UsagePlan"))
              << "\n";
  }
  std::cout << "Versions:\n";
  for (const auto& v : app->at("Versions").as_array()) {
    const json::object& version = v.as_object();
    std::cout << "  " << Str(version, "Version") << "  " << Str(version, "CreatedAt") << "  "
              << Str(version, "Description") << " by " << Str(version, "Deployer") << "\n";
  }
  return kExitOk;
}

int AppCommands::RunApiKeys(const std::map<std::string, std::string>& environment) {
  auto settings = ResolveClientSettings(connection_.endpoint, connection_.profile,
                                        connection_.region, environment);
  if (!settings.ok()) {
    std::cerr << "moatless apikeys: " << settings.status().message() << "\n";
    return kExitUsage;
  }
  const std::string path = AppPath(app_, stage_) + "/apikeys";
  auto print_key = [&](const json::object& key) {
    std::cout << Str(key, "Id") << "  plan " << Str(key, "Plan") << "  "
              << (key.contains("Enabled") && key.at("Enabled").is_bool() &&
                          key.at("Enabled").as_bool()
                      ? "enabled"
                      : "disabled")
              << "  created " << Str(key, "CreatedAt");
    if (!Str(key, "Name").empty()) std::cout << "  " << Str(key, "Name");
    std::cout << "\n";
  };
  std::optional<json::object> answer;
  if (apikeys_create_->parsed()) {
    const std::string body = json::serialize(json::object{{"Plan", plan_}, {"Name", name_}});
    answer =
        CallRestJson(*settings, http::Verb::post, path, body, "application/json", "apikeys create");
    if (!answer) return kExitRuntime;
    if (json_) {
      std::cout << json::serialize(*answer) << "\n";
      return kExitOk;
    }
    print_key(*answer);
    std::cerr << "The key's value follows; it is shown only now (send it as x-api-key):\n";
    std::cout << Str(*answer, "Value") << "\n";
    return kExitOk;
  }
  if (apikeys_list_->parsed()) {
    answer = CallRestJson(*settings, http::Verb::get, path, "", "", "apikeys list");
    if (!answer) return kExitRuntime;
    if (json_) {
      std::cout << json::serialize(*answer) << "\n";
      return kExitOk;
    }
    if (const json::value* keys = answer->if_contains("ApiKeys"); keys && keys->is_array()) {
      for (const json::value& key : keys->as_array()) {
        if (key.is_object()) print_key(key.as_object());
      }
    }
    return kExitOk;
  }
  const std::string one = path + "/" + key_id_;
  if (apikeys_show_->parsed()) {
    answer = CallRestJson(*settings, http::Verb::get, one, "", "", "apikeys show");
  } else if (apikeys_delete_->parsed()) {
    answer = CallRestJson(*settings, http::Verb::delete_, one, "", "", "apikeys delete");
    if (!answer) return kExitRuntime;
    std::cout << "Deleted " << key_id_ << ".\n";
    return kExitOk;
  } else {
    json::object body;
    if (apikeys_enable_->parsed()) body["Enabled"] = true;
    if (apikeys_disable_->parsed()) body["Enabled"] = false;
    if (apikeys_attach_->parsed()) body["Plan"] = plan_;
    answer = CallRestJson(*settings, http::Verb::patch, one, json::serialize(body),
                          "application/json", "apikeys update");
  }
  if (!answer) return kExitRuntime;
  if (json_) {
    std::cout << json::serialize(*answer) << "\n";
  } else {
    print_key(*answer);
  }
  return kExitOk;
}

int AppCommands::RunBoundaries(const std::map<std::string, std::string>& environment) {
  auto settings = ResolveClientSettings(connection_.endpoint, connection_.profile,
                                        connection_.region, environment);
  if (!settings.ok()) {
    std::cerr << "moatless boundaries: " << settings.status().message() << "\n";
    return kExitUsage;
  }
  const std::string path = AppPath(app_, stage_) + "/boundary";
  if (boundaries_show_->parsed()) {
    auto boundary = CallRestJson(*settings, http::Verb::get, path, "", "", "boundaries show");
    if (!boundary) return kExitRuntime;
    std::cerr << "(" << Str(*boundary, "Source") << " boundary)\n";
    std::cout << Str(*boundary, "Boundary") << "\n";
    return kExitOk;
  }
  if (boundaries_delete_->parsed()) {
    if (!CallRestJson(*settings, http::Verb::delete_, path, "", "", "boundaries delete")) {
      return kExitRuntime;
    }
    std::cout << "The default boundary applies to " << app_ << "/" << stage_ << ".\n";
    return kExitOk;
  }
  bool readable = false;
  const std::string document = ReadAll(file_, readable);
  if (!readable) {
    std::cerr << "moatless boundaries set: cannot read " << file_ << "\n";
    return kExitUsage;
  }
  auto dead = CallRestJson(*settings, http::Verb::put, path, document, "application/json",
                           "boundaries set");
  if (!dead) return kExitRuntime;
  std::cout << "Boundary set for " << app_ << "/" << stage_ << " (applied to its live roles).\n";
  PrintDead(*dead);
  return kExitOk;
}

}  // namespace moatless::cli
