#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "app/data_dir.h"
#include "cli/commands.h"
#include "cli/iam_client.h"
#include "core/base64.h"
#include "core/env.h"
#include "runtime/function_registry.h"
#include "store/schema.h"
#include "store/sqlite/sqlite_database.h"

namespace moatless::cli {
namespace {

namespace json = boost::json;

json::object Describe(const runtime::FunctionConfig& f) {
  json::object env;
  for (const auto& [k, v] : f.environment) env[k] = v;
  json::array egress;
  for (const auto& e : f.egress) egress.emplace_back(json::string(e));
  json::object out{{"name", f.name},
                   {"version", f.version},
                   {"runtime", runtime::RuntimeName(f.runtime)},
                   {"handler", f.handler},
                   {"code", f.code_dir},
                   {"memory_mb", f.memory_mb},
                   {"timeout_ms", f.timeout.count()},
                   {"role", f.role_arn},
                   {"environment", std::move(env)},
                   {"egress", std::move(egress)}};
  if (f.reserved_concurrency) out["reserved_concurrency"] = *f.reserved_concurrency;
  return out;
}

void Print(const std::vector<runtime::FunctionConfig>& functions, bool as_json) {
  if (as_json) {
    json::array all;
    for (const auto& f : functions) all.emplace_back(Describe(f));
    std::cout << json::serialize(all) << "\n";
    return;
  }
  for (const auto& f : functions) {
    std::cout << f.name << "\tversion " << f.version << "\t" << runtime::RuntimeName(f.runtime)
              << "\t" << f.handler << "\t" << (f.role_arn.empty() ? "(no role)" : f.role_arn)
              << "\n";
  }
}

}  // namespace

FunctionsCommands::FunctionsCommands(CLI::App& parent) {
  functions_ = parent.add_subcommand(
      "functions", "Publish, list and delete functions in a data directory's registry");
  functions_->require_subcommand(1);
  functions_->add_option("--data-dir", data_dir_, "Data directory")->capture_default_str();

  publish_ = functions_->add_subcommand(
      "publish", "Publish a new version of a function (the previous versions stay invocable)");
  publish_->add_option("name", name_, "function name, 1-64 of [A-Za-z0-9-_]")->required();
  publish_->add_option("--runtime", runtime_, "nodejs20, python3 or provided")
      ->capture_default_str();
  publish_->add_option("--handler", handler_, "file.export (Node) or module.function (Python)");
  publish_->add_option("--code", code_, "directory holding the code (mounted read-only)")
      ->required();
  publish_->add_option("--role", role_, "ARN of the role whose credentials the function gets");
  publish_->add_option("--memory", memory_mb_, "memory in MB (128-10240)")->capture_default_str();
  publish_->add_option("--timeout", timeout_seconds_, "timeout in seconds")->capture_default_str();
  publish_->add_option("--reserved-concurrency", reserved_concurrency_,
                       "at most this many invocations at once (0: off)");
  publish_->add_option("--env", environment_, "KEY=VALUE environment variable (repeatable)");
  publish_->add_option("--egress", egress_,
                       "allowed outbound destination scheme://host:port (repeatable)");
  list_ = functions_->add_subcommand("list", "List functions (latest versions)");
  versions_ = functions_->add_subcommand("versions", "List the versions of a function");
  versions_->add_option("name", name_, "function name")->required();
  delete_ = functions_->add_subcommand("delete", "Delete a function and all its versions");
  delete_->add_option("name", name_, "function name")->required();
  for (CLI::App* sub : {publish_, list_, versions_}) {
    sub->add_flag("--json", json_, "print JSON");
  }
  for (CLI::App* sub : {publish_, list_, versions_, delete_}) {
    sub->add_option("--data-dir", data_dir_, "Data directory")->capture_default_str();
  }
}

int FunctionsCommands::Run() {
  auto env = core::Env::Real();
  // Beside a running daemon (which holds the data directory's lock): the store only.
  const std::string store_path = app::DataDir::StorePathIn(data_dir_);
  if (!std::filesystem::exists(store_path)) {
    std::cerr << "moatless functions: " << data_dir_
              << " holds no store: run moatless init (or moatless serve) first\n";
    return kExitRuntime;
  }
  auto db = store::OpenSqlite(store_path,
                              {.clock = &env->clock(), .migrations = store::PlatformMigrations()});
  if (!db.ok()) {
    std::cerr << "moatless functions: " << db.status().message() << "\n";
    return kExitRuntime;
  }
  runtime::FunctionRegistry registry(**db, env->clock());
  const auto fail = [](const core::Status& status) {
    std::cerr << "moatless functions: " << status.message() << "\n";
    return status.code() == core::StatusCode::kInvalidArgument ? kExitUsage : kExitRuntime;
  };

  if (publish_->parsed()) {
    runtime::FunctionConfig f;
    f.name = name_;
    auto kind = runtime::ParseRuntime(runtime_);
    if (!kind.ok()) return fail(kind.status());
    f.runtime = *kind;
    f.handler = handler_;
    std::error_code ec;
    f.code_dir = std::filesystem::absolute(code_, ec).lexically_normal().string();
    if (f.code_dir.size() > 1 && f.code_dir.ends_with('/')) f.code_dir.pop_back();
    if (!std::filesystem::is_directory(f.code_dir)) {
      return fail(core::InvalidArgumentError("--code " + code_ + " is not a directory"));
    }
    f.role_arn = role_;
    f.memory_mb = memory_mb_;
    f.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(timeout_seconds_ * 1000));
    f.reserved_concurrency = reserved_concurrency_;
    for (const std::string& kv : environment_) {
      const std::size_t eq = kv.find('=');
      if (eq == std::string::npos) {
        return fail(core::InvalidArgumentError("--env " + kv + ": expected KEY=VALUE"));
      }
      f.environment[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    f.egress = egress_;
    auto published = registry.Publish(std::move(f));
    if (!published.ok()) return fail(published.status());
    if (json_) {
      std::cout << json::serialize(Describe(*published)) << "\n";
    } else {
      std::cout << "Published " << published->name << " version " << published->version << ".\n";
    }
    return kExitOk;
  }
  if (list_->parsed()) {
    auto all = registry.List();
    if (!all.ok()) return fail(all.status());
    Print(*all, json_);
    return kExitOk;
  }
  if (versions_->parsed()) {
    auto all = registry.Versions(name_);
    if (!all.ok()) return fail(all.status());
    Print(*all, json_);
    return kExitOk;
  }
  if (core::Status deleted = registry.Delete(name_); !deleted.ok()) return fail(deleted);
  std::cout << "Deleted " << name_ << " and all its versions.\n";
  return kExitOk;
}

InvokeCommand::InvokeCommand(CLI::App& parent) {
  command_ = parent.add_subcommand("invoke", "Invoke a function (Lambda's Invoke, signed)");
  command_->add_option("name", name_, "function name or ARN")->required();
  command_->add_option("--payload", payload_, "the event: JSON, or @FILE");
  command_->add_option("--qualifier", qualifier_, "version (default: the latest)");
  command_->add_option("--invocation-type", invocation_type_, "RequestResponse, Event or DryRun")
      ->capture_default_str();
  command_->add_flag("--log", log_, "print the invocation's log (the last 4 KiB) on stderr");
  AddConnectionFlags(command_, connection_);
}

int InvokeCommand::Run(const std::map<std::string, std::string>& environment) {
  std::string payload = payload_;
  if (payload.starts_with("@")) {
    std::ifstream in(payload.substr(1));
    if (!in) {
      std::cerr << "moatless invoke: cannot read " << payload.substr(1) << "\n";
      return kExitUsage;
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    payload = buffer.str();
  }
  auto settings = ResolveClientSettings(connection_.endpoint, connection_.profile,
                                        connection_.region, environment);
  if (!settings.ok()) {
    std::cerr << "moatless invoke: " << settings.status().message() << "\n";
    return kExitUsage;
  }
  std::string target = "/2015-03-31/functions/" + name_ + "/invocations";
  if (!qualifier_.empty()) target += "?Qualifier=" + qualifier_;
  http::Request request(http::Verb::post, target, 11);
  request.set(http::Field::content_type, "application/json");
  request.set("X-Amz-Invocation-Type", invocation_type_);
  if (log_) request.set("X-Amz-Log-Type", "Tail");
  request.body() = std::move(payload);
  auto response = SendSigned(*settings, "lambda", std::move(request), std::chrono::minutes(16));
  if (!response.ok()) {
    std::cerr << "moatless invoke: " << response.status().message() << "\n";
    return kExitRuntime;
  }
  const int code = response->result_int();
  if (code >= 300) {
    std::string message = response->body();
    boost::system::error_code ec;
    const json::value body = json::parse(response->body(), ec);
    if (!ec && body.is_object()) {
      if (const auto* m = body.as_object().if_contains("message"); m && m->is_string()) {
        message = m->as_string().c_str();
      }
    }
    std::cerr << "moatless invoke: " << (*response)["x-amzn-ErrorType"] << " (HTTP " << code
              << "): " << message << "\n";
    return kExitRuntime;
  }
  if (log_) {
    if (auto log = core::Base64Decode((*response)["X-Amz-Log-Result"])) std::cerr << *log;
  }
  if (code == 202) {
    std::cout << "Accepted: request " << (*response)["x-amzn-RequestId"] << "\n";
    return kExitOk;
  }
  if (code == 204) return kExitOk;
  std::cout << response->body() << "\n";
  return (*response)["X-Amz-Function-Error"].empty() ? kExitOk : kExitRuntime;
}

}  // namespace moatless::cli
