// The `moatless` command. Exit codes: 0 ok, 1 runtime error, 2 usage error (bad flags, bad
// configuration). Every subcommand is documented in `moatless --help`.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include "app/version.h"
#include "cli/commands.h"

extern char** environ;

namespace moatless::cli {
namespace {

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry = *e;
    const auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

int Main(int argc, char** argv) {
  CLI::App cli{
      "moatless — a self-hosted serverless platform where zero trust and least privilege are the "
      "default.\nExit codes: 0 ok, 1 runtime error (or findings, or a denied simulation), 2 usage "
      "error.",
      "moatless"};
  cli.require_subcommand(1);
  cli.set_help_all_flag("--help-all", "Print help for every subcommand");

  ServeCommand serve(cli);
  InitCommand init(cli);
  AdminCommands admin(cli);
  AuditCommands audit(cli);
  PolicyCommands policy(cli);
  DoctorCommand doctor(cli);
  FunctionsCommands functions(cli);
  InvokeCommand invoke(cli);
  AppCommands apps(cli);
  SecretsCommands secrets(cli);
  LogsCommand logs(cli);
  TopCommand top(cli);
  auto* version = cli.add_subcommand("version", "Print the version and build information");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return cli.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return cli.exit(e);
  } catch (const CLI::ParseError& e) {
    cli.exit(e);  // prints the message and usage to stderr
    return kExitUsage;
  }

  if (version->parsed()) {
    std::cout << "moatless " << app::kVersion << " (" << app::kBuildInfo << ")\n";
    return kExitOk;
  }
  if (serve.parsed()) return serve.Run(ProcessEnvironment());
  if (init.parsed()) return init.Run(ProcessEnvironment());
  if (admin.parsed()) return admin.Run(ProcessEnvironment());
  if (audit.parsed()) return audit.Run(ProcessEnvironment());
  if (policy.parsed()) return policy.Run();
  if (doctor.parsed()) return doctor.Run();
  if (functions.parsed()) return functions.Run();
  if (invoke.parsed()) return invoke.Run(ProcessEnvironment());
  if (apps.parsed()) return apps.Run(ProcessEnvironment());
  if (secrets.parsed()) return secrets.Run(ProcessEnvironment());
  if (logs.parsed()) return logs.Run(ProcessEnvironment());
  if (top.parsed()) return top.Run(ProcessEnvironment());
  return kExitUsage;
}

}  // namespace
}  // namespace moatless::cli

int main(int argc, char** argv) { return moatless::cli::Main(argc, argv); }
