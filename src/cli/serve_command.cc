#include <iostream>

#include "app/daemon.h"
#include "app/settings.h"
#include "cli/commands.h"
#include "core/config.h"
#include "core/env.h"

namespace moatless::cli {

ServeCommand::ServeCommand(CLI::App& parent) {
  command_ = parent.add_subcommand(
      "serve",
      "Run the moatless daemon: the control and service endpoint (--listen) and, when "
      "--gateway-listen is set, the public gateway. Settings come from flags, MOATLESS_* "
      "environment variables and a YAML --config file, in that order of precedence.");
  command_->add_option("--config", config_file_,
                       "YAML config file; its keys are the flag names below without '--' "
                       "(nested maps or dotted keys; '-' or '_'). Also MOATLESS_CONFIG");
  const core::ConfigSchema schema = app::ServeSchema();
  for (const auto& key : schema.keys()) {
    std::string help = key.help;
    if (!key.default_value.empty()) help += " [default: " + key.default_value + "]";
    help += " (env " + core::ConfigSchema::EnvName(key.name) + ")";
    CLI::Option* option = command_->add_option(app::FlagName(key.name), values_[key.name], help);
    // A switch may stand alone (`--tls-self-signed`) or take a value (`--log.access false`).
    if (key.type == core::ConfigType::kBool) option->expected(0, 1);
    options_[key.name] = option;
  }
}

int ServeCommand::Run(const std::map<std::string, std::string>& environment) {
  core::ConfigSources sources;
  sources.environment = environment;
  sources.file_path = config_file_;
  if (sources.file_path.empty()) {
    if (auto it = environment.find("MOATLESS_CONFIG"); it != environment.end()) {
      sources.file_path = it->second;
    }
  }
  for (const auto& [name, option] : options_) {
    if (option->count() == 0) continue;
    const std::string& value = values_[name];
    sources.flags[name] = value.empty() && option->get_expected_min() == 0 ? "true" : value;
  }
  auto config = core::Config::Load(app::ServeSchema(), sources);
  if (!config.ok()) {
    std::cerr << "moatless serve: " << config.status().message() << "\n";
    return kExitUsage;
  }
  auto settings = app::ReadServeSettings(*config);
  if (!settings.ok()) {
    std::cerr << "moatless serve: " << settings.status().message() << "\n";
    return kExitUsage;
  }
  auto env = core::Env::Real();
  const core::Status status = app::RunDaemon(*settings, *env);
  if (!status.ok()) {
    std::cerr << "moatless serve: " << status.message() << "\n";
    return kExitRuntime;
  }
  return kExitOk;
}

}  // namespace moatless::cli
