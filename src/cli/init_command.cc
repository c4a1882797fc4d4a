#include <cstdlib>
#include <iostream>

#include "app/init.h"
#include "cli/commands.h"
#include "core/env.h"
#include "identity/directory.h"

namespace moatless::cli {

InitCommand::InitCommand(CLI::App& parent) {
  command_ = parent.add_subcommand(
      "init",
      "Create a data directory, its keys and the account root; write the root's access key once to "
      "an AWS credentials file profile");
  command_->add_option("--data-dir", data_dir_, "Data directory to create")->capture_default_str();
  command_->add_option("--account-id", account_id_, "12-digit account id of every ARN")
      ->capture_default_str();
  command_->add_option("--credentials-file", credentials_file_,
                       "AWS shared credentials file (default: $AWS_SHARED_CREDENTIALS_FILE, else "
                       "~/.aws/credentials)");
  command_->add_option("--profile", profile_, "Profile to write the root credentials to")
      ->capture_default_str();
}

int InitCommand::Run(const std::map<std::string, std::string>& environment) {
  std::string credentials = credentials_file_;
  if (credentials.empty()) {
    if (auto it = environment.find("AWS_SHARED_CREDENTIALS_FILE"); it != environment.end()) {
      credentials = it->second;
    } else if (auto home = environment.find("HOME"); home != environment.end()) {
      credentials = home->second + "/.aws/credentials";
    } else {
      std::cerr << "moatless init: HOME is not set; pass --credentials-file\n";
      return kExitUsage;
    }
  }
  if (core::Status valid = identity::ValidateAccountId(account_id_); !valid.ok()) {
    std::cerr << "moatless init: --account-id: " << valid.message() << "\n";
    return kExitUsage;
  }
  auto env = core::Env::Real();
  auto result = app::InitializeDataDir({.data_dir = data_dir_,
                                        .account_id = account_id_,
                                        .credentials_file = credentials,
                                        .profile = profile_},
                                       *env);
  if (!result.ok()) {
    std::cerr << "moatless init: " << result.status().message() << "\n";
    return kExitRuntime;
  }
  std::cout << "Initialised " << data_dir_ << ".\n"
            << "The account root (" << result->root_arn << ") has access key "
            << result->access_key_id << "; its secret was written to " << result->credentials_file
            << " (profile '" << result->profile << "') and will not be shown again.\n"
            << "Use the root only to create least-privileged users and roles (docs/identity.md), "
               "then stop using it.\n";
  return kExitOk;
}

}  // namespace moatless::cli
