// The subcommands of `moatless`, each a small class that registers its flags on a CLI11 app and
// runs once parsed. They translate between the command line and the app/observe/policy modules, and
// between Status and exit codes; they hold no logic of their own. Single-threaded.
#pragma once

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace moatless::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

// `moatless doctor`: what isolation this host offers and what moatless will use. Exit 0 when
// functions get full isolation, 1 when they would not (or would only with the insecure opt-in).
class DoctorCommand {
 public:
  explicit DoctorCommand(CLI::App& parent);
  bool parsed() const { return command_->parsed(); }
  int Run();

 private:
  CLI::App* command_;
  bool insecure_ = false;
  bool json_ = false;
};

// `moatless serve`: every key of app::ServeSchema() as a flag, plus --config.
class ServeCommand {
 public:
  explicit ServeCommand(CLI::App& parent);
  bool parsed() const { return command_->parsed(); }
  int Run(const std::map<std::string, std::string>& environment);

 private:
  CLI::App* command_;
  std::string config_file_;
  std::map<std::string, std::string> values_;  // key name -> flag value (stable addresses)
  std::map<std::string, CLI::Option*> options_;
};

// `moatless init`: app::InitializeDataDir.
class InitCommand {
 public:
  explicit InitCommand(CLI::App& parent);
  bool parsed() const { return command_->parsed(); }
  int Run(const std::map<std::string, std::string>& environment);

 private:
  CLI::App* command_;
  std::string data_dir_ = ".moatless";
  std::string account_id_ = "000000000000";
  std::string credentials_file_;
  std::string profile_ = "moatless";
};

// `moatless users|keys|roles ...`: IAM administration through the signed API (cli/iam_client.h),
// with credentials from the standard AWS places, so one credentials file serves this and the
// aws CLI.
class AdminCommands {
 public:
  struct Connection {
    std::string endpoint;
    std::string profile;
    std::string region;
  };
  explicit AdminCommands(CLI::App& parent);
  bool parsed() const;
  int Run(const std::map<std::string, std::string>& environment);

 private:
  CLI::App* users_;
  CLI::App* keys_;
  CLI::App* roles_;
  Connection connection_;
  std::string name_;
  std::vector<std::string> tags_;
  std::string policy_arn_;
  std::string policy_file_;
  std::string policy_name_;
  bool remove_ = false;
  std::string key_id_;
  std::string write_profile_;
};

// --endpoint, --profile and --region, for the commands that call the signed API.
void AddConnectionFlags(CLI::App* app, AdminCommands::Connection& connection);

// `moatless functions publish|list|versions|delete`: the function registry of a data directory
// (written directly to its store; a running daemon sees a publish at the next invocation). Every
// publish is a new immutable version.
class FunctionsCommands {
 public:
  explicit FunctionsCommands(CLI::App& parent);
  bool parsed() const { return functions_->parsed(); }
  int Run();

 private:
  CLI::App* functions_;
  CLI::App* publish_;
  CLI::App* list_;
  CLI::App* versions_;
  CLI::App* delete_;
  std::string data_dir_ = ".moatless";
  std::string name_;
  std::string runtime_ = "nodejs20";
  std::string handler_;
  std::string code_;
  std::string role_;
  std::uint32_t memory_mb_ = 128;
  double timeout_seconds_ = 3;
  std::optional<std::uint32_t> reserved_concurrency_;
  std::vector<std::string> environment_;  // KEY=VALUE
  std::vector<std::string> egress_;
  bool json_ = false;
};

// `moatless invoke NAME`: Lambda's Invoke through the signed API, like `aws lambda invoke`.
// Prints the response (or the function's error) on stdout; exit 0 on success, 1 on a function
// error or a refused request.
class InvokeCommand {
 public:
  explicit InvokeCommand(CLI::App& parent);
  bool parsed() const { return command_->parsed(); }
  int Run(const std::map<std::string, std::string>& environment);

 private:
  CLI::App* command_;
  AdminCommands::Connection connection_;
  std::string name_;
  std::string payload_;  // JSON, or @file
  std::string qualifier_;
  std::string invocation_type_ = "RequestResponse";
  bool log_ = false;
};

// `moatless logs FUNCTION [--follow] [--since 10m|RFC3339] [--until T] [--request-id ID]
// [--filter TEXT] [--json]`: a function's logs through the signed API (app/logs_api.h), filtered
// on the server. --follow polls with the page cursor until interrupted.
class LogsCommand {
 public:
  explicit LogsCommand(CLI::App& parent);
  bool parsed() const { return command_->parsed(); }
  int Run(const std::map<std::string, std::string>& environment);

 private:
  CLI::App* command_;
  AdminCommands::Connection connection_;
  std::string name_;
  std::string since_;
  std::string until_;
  std::string request_id_;
  std::string filter_;
  double interval_seconds_ = 1;
  bool follow_ = false;
  bool json_ = false;
};

// `moatless top [--interval S] [--iterations N] [--function PREFIX]`: a refreshing table of every
// function's requests per second, errors, p50/p99 duration, cold starts, throttles and
// concurrency, from the signed metrics API (app/metrics_api.h).
class TopCommand {
 public:
  explicit TopCommand(CLI::App& parent);
  bool parsed() const { return command_->parsed(); }
  int Run(const std::map<std::string, std::string>& environment);

 private:
  CLI::App* command_;
  AdminCommands::Connection connection_;
  double interval_seconds_ = 2;
  std::int64_t iterations_ = 0;
  std::string prefix_;
};

// `moatless secrets ...`: the Secrets Manager API of a running server, signed like the aws CLI:
//   list [--prefix P] | get NAME [--version-id V] [--stage S] | describe NAME | history NAME
//   put NAME --from-file F|--from-stdin [--binary] [--description D]   (creates if missing)
//   rotate NAME [--function ARN] [--every 30d | --schedule EXPR] [--no-rotate-now]
//   delete NAME [--recovery-days N | --force] | restore NAME | rotate-master-key
// Values are never taken from the command line (other users and shell history would see them).
class SecretsCommands {
 public:
  explicit SecretsCommands(CLI::App& parent);
  bool parsed() const;
  int Run(const std::map<std::string, std::string>& environment);

 private:
  // One signed JSON 1.1 call; prints the error (unless it is ResourceNotFoundException and
  // quiet_not_found) and returns nullopt if it failed (last_error_ holds its type).
  std::optional<boost::json::object> Call(const std::string& operation,
                                          const boost::json::object& input,
                                          bool quiet_not_found = false);
  int RunList();
  int RunGet();
  int RunPut();
  int RunDescribe();
  int RunHistory();
  int RunRotate();
  int RunDelete();
  int RunRestore();
  int RunRotateMasterKey();

  CLI::App* secrets_;
  CLI::App* list_;
  CLI::App* get_;
  CLI::App* put_;
  CLI::App* describe_;
  CLI::App* history_;
  CLI::App* rotate_;
  CLI::App* delete_;
  CLI::App* restore_;
  CLI::App* rotate_master_key_;
  AdminCommands::Connection connection_;
  std::map<std::string, std::string> environment_;
  std::string last_error_;
  std::string name_;
  std::string prefix_;
  std::string version_id_;
  std::string stage_;
  std::string from_file_;
  bool from_stdin_ = false;
  bool binary_ = false;
  std::string description_;
  std::string function_;
  std::string every_;
  std::string schedule_;
  bool no_rotate_now_ = false;
  std::int64_t recovery_days_ = 0;
  bool force_ = false;
  bool json_ = false;
};

// The app commands, through the app API (manifest/app_api.h) on the signed endpoint:
//   moatless deploy [--dir D] [--stage S] [--dry-run] [--strict] [--yes] [--json]
//   moatless rollback [--app A] [--stage S] [--to N] [--dry-run] [--yes]
//   moatless apps list | apps show APP [--stage S]
//   moatless boundaries set --app A --stage S FILE | show | delete
// deploy validates the manifest locally first (the server validates it again), packs the bundle,
// shows the plan, asks before applying (or --yes; refused without a terminal), and applies only
// if the live version is still the one the plan was made against.
class AppCommands {
 public:
  explicit AppCommands(CLI::App& parent);
  bool parsed() const;
  int Run(const std::map<std::string, std::string>& environment);

 private:
  int RunDeploy(const std::map<std::string, std::string>& environment);
  int RunRollback(const std::map<std::string, std::string>& environment);
  int RunApps(const std::map<std::string, std::string>& environment);
  int RunBoundaries(const std::map<std::string, std::string>& environment);
  int RunApiKeys(const std::map<std::string, std::string>& environment);
  int RunAlerts(const std::map<std::string, std::string>& environment);

  CLI::App* deploy_;
  CLI::App* rollback_;
  CLI::App* apps_;
  CLI::App* apps_list_;
  CLI::App* apps_show_;
  CLI::App* boundaries_;
  CLI::App* boundaries_set_;
  CLI::App* boundaries_show_;
  CLI::App* boundaries_delete_;
  CLI::App* apikeys_;
  CLI::App* apikeys_create_;
  CLI::App* apikeys_list_;
  CLI::App* apikeys_show_;
  CLI::App* apikeys_enable_;
  CLI::App* apikeys_disable_;
  CLI::App* apikeys_attach_;
  CLI::App* apikeys_delete_;
  CLI::App* alerts_;
  CLI::App* alerts_list_;
  AdminCommands::Connection connection_;
  std::string dir_ = ".";
  std::string app_;
  std::string stage_;
  std::string file_;
  std::string plan_;
  std::string name_;
  std::string key_id_;
  std::optional<std::int64_t> to_;
  bool dry_run_ = false;
  bool strict_ = false;
  bool yes_ = false;
  bool json_ = false;
};

// `moatless audit verify` (the files of a data directory, read locally), and `moatless audit
// query|export|hash` (the audit API of a server, app/audit_api.h, through signed requests).
class AuditCommands {
 public:
  explicit AuditCommands(CLI::App& parent);
  bool parsed() const { return audit_->parsed(); }
  int Run(const std::map<std::string, std::string>& environment);

 private:
  int RunVerify();
  int RunQuery(const std::map<std::string, std::string>& environment, bool exporting);
  int RunHash(const std::map<std::string, std::string>& environment);

  CLI::App* audit_;
  CLI::App* verify_;
  CLI::App* query_;
  CLI::App* export_;
  CLI::App* hash_;
  AdminCommands::Connection connection_;
  std::string data_dir_ = ".moatless";
  std::string file_;
  bool segment_ = false;
  std::string expect_head_;
  bool json_ = false;
  // query / export filters
  std::string principal_, action_, resource_, decision_, since_, until_;
  std::vector<std::string> fields_, secret_fields_;
  std::size_t limit_ = 100;
  std::string value_;  // hash
};

// `moatless policy check` and `moatless policy simulate`: the policy engine (src/policy) on
// policy files. check exits 0 when every file is valid, 1 on any finding or unreadable file;
// simulate exits 0 when the request is allowed, 1 when it is denied or a policy file is bad.
class PolicyCommands {
 public:
  explicit PolicyCommands(CLI::App& parent);
  bool parsed() const { return policy_->parsed(); }
  int Run();

 private:
  int RunCheck();
  int RunSimulate();

  CLI::App* policy_;
  CLI::App* check_;
  CLI::App* simulate_;
  bool json_ = false;
  // check
  std::string check_type_ = "identity";
  std::vector<std::string> check_files_;
  // simulate
  std::vector<std::string> identity_files_;
  std::string boundary_file_;
  std::string session_file_;
  std::string resource_file_;
  bool resource_must_allow_ = false;
  std::vector<std::string> guardrail_levels_;  // one per --guardrail; files split on ','
  std::string principal_;
  std::string principal_type_;  // empty: derived from the ARN
  std::string principal_account_;
  std::string issuer_;
  std::vector<std::string> principal_tags_;  // key=value
  std::string action_;
  std::string resource_;
  std::string resource_account_;
  std::vector<std::string> resource_tags_;  // key=value
  std::vector<std::string> context_;        // key=value, repeated key = multivalued
  std::vector<std::string> multi_keys_;     // keys that are multivalued even with 0 or 1 value
};

}  // namespace moatless::cli
