#include <boost/url/pct_string_view.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "app/init.h"
#include "cli/commands.h"
#include "cli/iam_client.h"
#include "core/env.h"

namespace moatless::cli {
namespace {

namespace pt = boost::property_tree;

std::string Basename(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  if (const auto dot = name.rfind('.'); dot != std::string::npos && dot > 0) name.resize(dot);
  return name;
}

core::Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return core::NotFoundError("cannot read " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

void AddConnectionFlags(CLI::App* app, AdminCommands::Connection& c) {
  app->add_option("--endpoint", c.endpoint,
                  "moatless server URL (default: $MOATLESS_ENDPOINT, $AWS_ENDPOINT_URL, "
                  "http://127.0.0.1:8420)");
  app->add_option("--profile", c.profile,
                  "AWS credentials profile (default: $AWS_PROFILE, then "
                  "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then default)");
  app->add_option("--region", c.region, "region to sign for (default: $AWS_REGION or local)");
}

AdminCommands::AdminCommands(CLI::App& parent) {
  users_ = parent.add_subcommand("users", "Manage users (signed IAM API calls to the server)");
  users_->require_subcommand(1);
  auto* create = users_->add_subcommand("create", "Create a user");
  create->add_option("name", name_, "user name")->required();
  create->add_option("--tag", tags_, "KEY=VALUE (repeatable)");
  create->add_option("--boundary-arn", policy_arn_, "managed policy to use as its boundary");
  users_->add_subcommand("list", "List users");
  auto* remove = users_->add_subcommand("delete", "Delete a user, its policies and keys");
  remove->add_option("name", name_, "user name")->required();
  auto* attach = users_->add_subcommand(
      "attach-policy",
      "Attach a managed policy (--policy-arn) or put an inline one (--policy-file)");
  attach->add_option("name", name_, "user name")->required();
  auto* attach_arn = attach->add_option("--policy-arn", policy_arn_, "managed policy ARN");
  auto* attach_file = attach->add_option("--policy-file", policy_file_, "inline policy JSON file");
  attach_arn->excludes(attach_file);
  attach->add_option("--policy-name", policy_name_, "inline policy name (default: file name)");
  auto* detach = users_->add_subcommand("detach-policy", "Detach a managed or inline policy");
  detach->add_option("name", name_, "user name")->required();
  auto* detach_arn = detach->add_option("--policy-arn", policy_arn_, "managed policy ARN");
  auto* detach_name = detach->add_option("--policy-name", policy_name_, "inline policy name");
  detach_arn->excludes(detach_name);
  auto* boundary = users_->add_subcommand("set-boundary", "Set or remove the permissions boundary");
  boundary->add_option("name", name_, "user name")->required();
  auto* boundary_arn = boundary->add_option("--policy-arn", policy_arn_, "managed policy ARN");
  auto* boundary_remove = boundary->add_flag("--remove", remove_, "remove the boundary");
  boundary_arn->excludes(boundary_remove);

  keys_ = parent.add_subcommand("keys", "Manage access keys");
  keys_->require_subcommand(1);
  auto* key_create = keys_->add_subcommand(
      "create", "Create an access key (at most two per user); the secret is shown only now");
  key_create->add_option("--user", name_, "user (default: the caller)");
  key_create->add_option("--write-profile", write_profile_,
                         "write the new key to this profile of the credentials file instead of "
                         "printing the secret");
  auto* key_list = keys_->add_subcommand("list", "List access keys");
  key_list->add_option("--user", name_, "user (default: the caller)");
  for (const char* verb : {"deactivate", "activate", "delete"}) {
    auto* cmd = keys_->add_subcommand(verb, std::string(verb) + " an access key");
    cmd->add_option("key_id", key_id_, "access key id")->required();
    cmd->add_option("--user", name_, "user (default: the caller)");
  }

  roles_ = parent.add_subcommand("roles", "Inspect roles");
  roles_->require_subcommand(1);
  roles_->add_subcommand("list", "List roles");
  auto* show = roles_->add_subcommand("show", "Show a role, its trust policy and policies");
  show->add_option("name", name_, "role name")->required();

  for (CLI::App* group : {users_, keys_, roles_}) {
    for (CLI::App* sub : group->get_subcommands({})) {
      AddConnectionFlags(sub, connection_);
    }
  }
}

bool AdminCommands::parsed() const {
  return users_->parsed() || keys_->parsed() || roles_->parsed();
}

int AdminCommands::Run(const std::map<std::string, std::string>& environment) {
  auto settings = ResolveClientSettings(connection_.endpoint, connection_.profile,
                                        connection_.region, environment);
  if (!settings.ok()) {
    std::cerr << "moatless: " << settings.status().message() << "\n";
    return kExitUsage;
  }
  IamClient iam(std::move(*settings));
  CLI::App* group = users_->parsed() ? users_ : keys_->parsed() ? keys_ : roles_;
  const std::string command = group->get_subcommands()[0]->get_name();
  const std::string what = group->get_name() + " " + command;
  auto fail = [&](const core::Status& status) {
    std::cerr << "moatless " << what << ": " << status.aws_type() << ": " << status.message()
              << "\n";
    return kExitRuntime;
  };
  using Params = std::vector<std::pair<std::string, std::string>>;
  auto call = [&](const std::string& action, const Params& params) {
    return iam.Call(action, params);
  };
  auto user_param = [&]() { return name_.empty() ? Params{} : Params{{"UserName", name_}}; };

  if (group == users_) {
    if (command == "create") {
      Params p = {{"UserName", name_}};
      int n = 0;
      for (const std::string& tag : tags_) {
        const auto eq = tag.find('=');
        if (eq == std::string::npos) {
          std::cerr << "moatless users create: --tag must be KEY=VALUE\n";
          return kExitUsage;
        }
        const std::string prefix = "Tags.member." + std::to_string(++n) + ".";
        p.emplace_back(prefix + "Key", tag.substr(0, eq));
        p.emplace_back(prefix + "Value", tag.substr(eq + 1));
      }
      if (!policy_arn_.empty()) p.emplace_back("PermissionsBoundary", policy_arn_);
      auto r = call("CreateUser", p);
      if (!r.ok()) return fail(r.status());
      std::cout << r->get("User.Arn", "") << "\n";
    } else if (command == "list") {
      auto r = call("ListUsers", {});
      if (!r.ok()) return fail(r.status());
      for (const auto& [_, user] : r->get_child("Users", pt::ptree())) {
        std::cout << user.get("UserName", "") << "\t" << user.get("Arn", "") << "\n";
      }
    } else if (command == "delete") {
      auto r = call("DeleteUser", {{"UserName", name_}});
      if (!r.ok()) return fail(r.status());
    } else if (command == "attach-policy") {
      if (!policy_arn_.empty()) {
        auto r = call("AttachUserPolicy", {{"UserName", name_}, {"PolicyArn", policy_arn_}});
        if (!r.ok()) return fail(r.status());
      } else if (!policy_file_.empty()) {
        auto document = ReadFile(policy_file_);
        if (!document.ok()) return fail(document.status());
        const std::string name = policy_name_.empty() ? Basename(policy_file_) : policy_name_;
        auto r = call("PutUserPolicy",
                      {{"UserName", name_}, {"PolicyName", name}, {"PolicyDocument", *document}});
        if (!r.ok()) return fail(r.status());
      } else {
        std::cerr << "moatless users attach-policy: pass --policy-arn or --policy-file\n";
        return kExitUsage;
      }
    } else if (command == "detach-policy") {
      if (policy_arn_.empty() && policy_name_.empty()) {
        std::cerr << "moatless users detach-policy: pass --policy-arn or --policy-name\n";
        return kExitUsage;
      }
      auto r = !policy_arn_.empty()
                   ? call("DetachUserPolicy", {{"UserName", name_}, {"PolicyArn", policy_arn_}})
                   : call("DeleteUserPolicy", {{"UserName", name_}, {"PolicyName", policy_name_}});
      if (!r.ok()) return fail(r.status());
    } else if (command == "set-boundary") {
      if (policy_arn_.empty() && !remove_) {
        std::cerr << "moatless users set-boundary: pass --policy-arn or --remove\n";
        return kExitUsage;
      }
      auto r = remove_ ? call("DeleteUserPermissionsBoundary", {{"UserName", name_}})
                       : call("PutUserPermissionsBoundary",
                              {{"UserName", name_}, {"PermissionsBoundary", policy_arn_}});
      if (!r.ok()) return fail(r.status());
    }
    return kExitOk;
  }

  if (group == keys_) {
    if (command == "create") {
      auto r = call("CreateAccessKey", user_param());
      if (!r.ok()) return fail(r.status());
      const std::string id = r->get("AccessKey.AccessKeyId", "");
      std::string secret = r->get("AccessKey.SecretAccessKey", "");
      if (!write_profile_.empty()) {
        std::string file;
        if (auto it = environment.find("AWS_SHARED_CREDENTIALS_FILE"); it != environment.end()) {
          file = it->second;
        } else if (auto home = environment.find("HOME"); home != environment.end()) {
          file = home->second + "/.aws/credentials";
        }
        auto env = core::Env::Real();
        std::string existing;
        if (env->fs().Exists(file)) {
          auto read = env->fs().ReadFile(file);
          if (!read.ok()) return fail(read.status());
          existing = std::move(*read);
        }
        std::string text = app::WithCredentialsProfile(existing, write_profile_, id, secret);
        const core::Status written = env->fs().WriteFileAtomic(file, text, 0600);
        core::SecretBytes wipe_text = core::SecretBytes::TakeFrom(text);
        core::SecretBytes wipe_existing = core::SecretBytes::TakeFrom(existing);
        if (!written.ok()) return fail(written);
        std::cout << id << " written to profile '" << write_profile_ << "' of " << file << "\n";
      } else {
        std::cout << "AccessKeyId     " << id << "\nSecretAccessKey " << secret
                  << "\n(the secret cannot be shown again)\n";
      }
      core::SecretBytes wipe_secret = core::SecretBytes::TakeFrom(secret);
    } else if (command == "list") {
      auto r = call("ListAccessKeys", user_param());
      if (!r.ok()) return fail(r.status());
      for (const auto& [_, key] : r->get_child("AccessKeyMetadata", pt::ptree())) {
        std::cout << key.get("AccessKeyId", "") << "\t" << key.get("Status", "") << "\t"
                  << key.get("UserName", "") << "\t" << key.get("CreateDate", "") << "\n";
      }
    } else {
      Params p = user_param();
      p.emplace_back("AccessKeyId", key_id_);
      if (command == "delete") {
        auto r = call("DeleteAccessKey", p);
        if (!r.ok()) return fail(r.status());
      } else {
        p.emplace_back("Status", command == "activate" ? "Active" : "Inactive");
        auto r = call("UpdateAccessKey", p);
        if (!r.ok()) return fail(r.status());
      }
    }
    return kExitOk;
  }

  // roles
  if (command == "list") {
    auto r = call("ListRoles", {});
    if (!r.ok()) return fail(r.status());
    for (const auto& [_, role] : r->get_child("Roles", pt::ptree())) {
      std::cout << role.get("RoleName", "") << "\t" << role.get("Arn", "") << "\n";
    }
    return kExitOk;
  }
  auto role = call("GetRole", {{"RoleName", name_}});
  if (!role.ok()) return fail(role.status());
  auto inline_policies = call("ListRolePolicies", {{"RoleName", name_}});
  if (!inline_policies.ok()) return fail(inline_policies.status());
  auto attached = call("ListAttachedRolePolicies", {{"RoleName", name_}});
  if (!attached.ok()) return fail(attached.status());
  std::cout << "Arn                " << role->get("Role.Arn", "") << "\n"
            << "MaxSessionDuration " << role->get("Role.MaxSessionDuration", "") << "\n";
  if (auto boundary =
          role->get_optional<std::string>("Role.PermissionsBoundary.PermissionsBoundaryArn")) {
    std::cout << "Boundary           " << *boundary << "\n";
  }
  for (const auto& [_, name] : inline_policies->get_child("PolicyNames", pt::ptree())) {
    std::cout << "Inline policy      " << name.data() << "\n";
  }
  for (const auto& [_, policy] : attached->get_child("AttachedPolicies", pt::ptree())) {
    std::cout << "Attached policy    " << policy.get("PolicyArn", "") << "\n";
  }
  const std::string trust = role->get("Role.AssumeRolePolicyDocument", "");
  auto decoded = boost::urls::make_pct_string_view(trust);
  std::cout << "Trust policy       " << (decoded ? decoded->decode() : trust) << "\n";
  return kExitOk;
}

}  // namespace moatless::cli
