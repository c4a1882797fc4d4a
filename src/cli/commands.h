// The subcommands of `moatless`, each a small class that registers its flags on a CLI11 app and
// runs once parsed. They translate between the command line and the app/observe modules, and
// between Status and exit codes; they hold no logic of their own. Single-threaded.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>

namespace moatless::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

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

// `moatless audit verify`.
class AuditCommands {
 public:
  explicit AuditCommands(CLI::App& parent);
  bool parsed() const { return audit_->parsed(); }
  int Run();

 private:
  CLI::App* audit_;
  CLI::App* verify_;
  std::string data_dir_ = ".moatless";
  std::string file_;
  std::string expect_head_;
  bool json_ = false;
};

}  // namespace moatless::cli
