#include <unistd.h>

#include <boost/json.hpp>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "cli/commands.h"
#include "cli/iam_client.h"
#include "core/base64.h"
#include "core/secret_bytes.h"

namespace moatless::cli {
namespace {

namespace json = boost::json;

std::string Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return "";
  if (v->is_string()) return std::string(v->as_string());
  return json::serialize(*v);
}

std::string Date(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_number()) return "-";
  const auto seconds = static_cast<std::time_t>(v->to_number<double>());
  char out[32];
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

// "30d" -> 30; "7" -> 7; 0 if not a number of days.
std::int64_t Days(std::string text) {
  if (!text.empty() && text.back() == 'd') text.pop_back();
  if (text.empty() || text.size() > 4 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return 0;
  }
  return std::stoll(text);
}

}  // namespace

SecretsCommands::SecretsCommands(CLI::App& parent) {
  secrets_ = parent.add_subcommand("secrets",
                                   "Secrets (the Secrets Manager API of a running server, signed)");
  secrets_->require_subcommand(1);
  auto add = [&](const char* name, const char* help) {
    CLI::App* sub = secrets_->add_subcommand(name, help);
    AddConnectionFlags(sub, connection_);
    return sub;
  };
  list_ = add("list", "Every secret (name, last change, rotation)");
  list_->add_option("--prefix", prefix_, "Only names starting with this");
  list_->add_flag("--json", json_, "Print JSON");
  get_ = add("get", "Print a secret's value (AWSCURRENT unless told otherwise)");
  put_ = add("put", "Write a new value (creating the secret if it does not exist)");
  describe_ = add("describe", "A secret's metadata, versions, rotation and its last failure");
  history_ = add("history", "Every version of a secret, newest first, with its labels");
  rotate_ = add("rotate", "Rotate now with a rotation function, and set the schedule");
  delete_ = add("delete", "Schedule deletion (7 to 30 days' recovery window), or delete now");
  restore_ = add("restore", "Cancel a scheduled deletion");
  for (CLI::App* sub : {get_, put_, describe_, history_, rotate_, delete_, restore_}) {
    sub->add_option("name", name_, "Secret name or ARN")->required();
  }
  get_->add_option("--version-id", version_id_, "A version id");
  get_->add_option("--stage", stage_, "A staging label (AWSCURRENT, AWSPREVIOUS, ...)");
  auto* from_file = put_->add_option("--from-file", from_file_, "Read the value from this file");
  auto* from_stdin = put_->add_flag("--from-stdin", from_stdin_, "Read the value from stdin");
  from_file->excludes(from_stdin);
  put_->add_option("--description", description_, "Description (when the secret is created)");
  put_->add_flag("--binary", binary_, "Store the bytes as SecretBinary, not SecretString");
  rotate_->add_option("--function", function_,
                      "Rotation function ARN, or moatless:rotation:postgresql-single-user");
  rotate_->add_option("--every", every_, "Rotate every N days (\"30d\")");
  rotate_->add_option("--schedule", schedule_, "rate(...) or cron(...) schedule");
  rotate_->add_flag("--no-rotate-now", no_rotate_now_, "Only set the schedule");
  auto* days = delete_->add_option("--recovery-days", recovery_days_, "7 to 30 (default 30)");
  auto* force = delete_->add_flag("--force", force_, "Delete at once, without recovery");
  days->excludes(force);
  history_->add_flag("--json", json_, "Print JSON");
  describe_->add_flag("--json", json_, "Print JSON");
  rotate_master_key_ =
      add("rotate-master-key", "New secrets master key version; re-wrap every data key under it");
}

bool SecretsCommands::parsed() const { return secrets_->parsed(); }

std::optional<json::object> SecretsCommands::Call(const std::string& operation,
                                                  const json::object& input, bool quiet_not_found) {
  auto settings = ResolveClientSettings(connection_.endpoint, connection_.profile,
                                        connection_.region, environment_);
  if (!settings.ok()) {
    std::cerr << "moatless secrets: " << settings.status().message() << "\n";
    return std::nullopt;
  }
  http::Request request(http::Verb::post, "/", 11);
  request.set(http::Field::content_type, "application/x-amz-json-1.1");
  request.set("X-Amz-Target", "secretsmanager." + operation);
  request.body() = json::serialize(input);
  auto response =
      SendSigned(*settings, "secretsmanager", std::move(request), std::chrono::minutes(10));
  if (!response.ok()) {
    std::cerr << "moatless secrets: " << response.status().message() << "\n";
    return std::nullopt;
  }
  boost::system::error_code ec;
  json::value value = json::parse(response->body(), ec);
  if (ec || !value.is_object()) {
    std::cerr << "moatless secrets: the server answered something that is not JSON (HTTP "
              << response->result_int() << ")\n";
    return std::nullopt;
  }
  if (response->result_int() >= 300) {
    last_error_ = Str(value.as_object(), "__type");
    if (!(quiet_not_found && last_error_ == "ResourceNotFoundException")) {
      std::cerr << "moatless secrets " << operation << ": " << last_error_ << ": "
                << Str(value.as_object(), "message") << "\n";
    }
    return std::nullopt;
  }
  return std::move(value.as_object());
}

int SecretsCommands::Run(const std::map<std::string, std::string>& environment) {
  environment_ = environment;
  if (list_->parsed()) return RunList();
  if (get_->parsed()) return RunGet();
  if (put_->parsed()) return RunPut();
  if (describe_->parsed()) return RunDescribe();
  if (history_->parsed()) return RunHistory();
  if (rotate_->parsed()) return RunRotate();
  if (delete_->parsed()) return RunDelete();
  if (restore_->parsed()) return RunRestore();
  return RunRotateMasterKey();
}

int SecretsCommands::RunList() {
  json::object input{{"MaxResults", 100}, {"SortBy", "name"}, {"SortOrder", "asc"}};
  if (!prefix_.empty()) {
    input["Filters"] = json::array{json::object{{"Key", "name"}, {"Values", {prefix_}}}};
  }
  json::array all;
  for (;;) {
    auto page = Call("ListSecrets", input);
    if (!page) return kExitRuntime;
    for (auto& entry : page->at("SecretList").as_array()) all.push_back(entry);
    if (!page->contains("NextToken")) break;
    input["NextToken"] = page->at("NextToken");
  }
  if (json_) {
    std::cout << json::serialize(all) << "\n";
    return kExitOk;
  }
  for (const auto& entry : all) {
    const json::object& s = entry.as_object();
    std::cout << Str(s, "Name") << "  changed " << Date(s, "LastChangedDate")
              << (s.contains("RotationEnabled") && s.at("RotationEnabled").as_bool()
                      ? "  rotation: next " + Date(s, "NextRotationDate")
                      : "")
              << "\n";
  }
  return kExitOk;
}

int SecretsCommands::RunGet() {
  json::object input{{"SecretId", name_}};
  if (!version_id_.empty()) input["VersionId"] = version_id_;
  if (!stage_.empty()) input["VersionStage"] = stage_;
  auto value = Call("GetSecretValue", input);
  if (!value) return kExitRuntime;
  if (value->contains("SecretString")) {
    core::SecretBytes text(value->at("SecretString").as_string());
    std::cout.write(text.Reveal().data(), static_cast<std::streamsize>(text.size()));
    if (::isatty(STDOUT_FILENO)) std::cout << "\n";
  } else {
    // Binary values are printed base64-encoded, as the API carries them.
    std::cout << Str(*value, "SecretBinary") << "\n";
  }
  return kExitOk;
}

int SecretsCommands::RunPut() {
  if (from_file_.empty() && !from_stdin_) {
    std::cerr << "moatless secrets put: give --from-file FILE or --from-stdin (values are never "
                 "taken from the command line, where other users and shell history see them)\n";
    return kExitUsage;
  }
  std::string read;
  if (from_stdin_) {
    read.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(from_file_, std::ios::binary);
    if (!in) {
      std::cerr << "moatless secrets put: cannot read " << from_file_ << "\n";
      return kExitUsage;
    }
    read.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  core::SecretBytes value = core::SecretBytes::TakeFrom(read);
  if (value.empty()) {
    std::cerr << "moatless secrets put: the value is empty\n";
    return kExitUsage;
  }
  json::object input{{"SecretId", name_}};
  if (binary_) {
    input["SecretBinary"] = core::Base64Encode(value.Reveal());
  } else {
    input["SecretString"] = value.Reveal();
  }
  auto put = Call("PutSecretValue", input, /*quiet_not_found=*/true);
  if (!put && last_error_ == "ResourceNotFoundException") {
    json::object create = input;
    create.erase("SecretId");
    create["Name"] = name_;
    if (!description_.empty()) create["Description"] = description_;
    put = Call("CreateSecret", create);
    if (put) std::cerr << "created " << Str(*put, "ARN") << "\n";
  }
  if (!put) return kExitRuntime;
  std::cout << "version " << Str(*put, "VersionId") << "\n";
  return kExitOk;
}

int SecretsCommands::RunDescribe() {
  auto described = Call("DescribeSecret", json::object{{"SecretId", name_}});
  if (!described) return kExitRuntime;
  if (json_) {
    std::cout << json::serialize(*described) << "\n";
    return kExitOk;
  }
  const json::object& d = *described;
  std::cout << "name         " << Str(d, "Name") << "\n"
            << "arn          " << Str(d, "ARN") << "\n";
  if (d.contains("Description")) std::cout << "description  " << Str(d, "Description") << "\n";
  std::cout << "created      " << Date(d, "CreatedDate") << "\n"
            << "changed      " << Date(d, "LastChangedDate") << "\n"
            << "accessed     " << Date(d, "LastAccessedDate") << "\n";
  if (d.contains("DeletedDate")) {
    std::cout << "deletion     requested on " << Date(d, "DeletedDate")
              << " (moatless secrets restore cancels it)\n";
  }
  const bool rotating = d.contains("RotationEnabled") && d.at("RotationEnabled").as_bool();
  std::cout << "rotation     " << (rotating ? "enabled" : "disabled");
  if (d.contains("RotationLambdaARN")) std::cout << ", " << Str(d, "RotationLambdaARN");
  std::cout << "\n";
  if (rotating || d.contains("LastRotatedDate")) {
    std::cout << "  last       " << Date(d, "LastRotatedDate") << "\n"
              << "  next       " << Date(d, "NextRotationDate") << "\n";
  }
  if (d.contains("RotationInProgress")) {
    const json::object& p = d.at("RotationInProgress").as_object();
    std::cout << "  running    to version " << Str(p, "VersionId") << ", next step "
              << Str(p, "NextStep") << "\n";
  }
  if (d.contains("RotationFailure")) {
    const json::object& f = d.at("RotationFailure").as_object();
    std::cout << "  FAILED     " << Date(f, "Date") << " at " << Str(f, "Step") << " (attempt "
              << Str(f, "Attempts") << "): " << Str(f, "Message") << "\n";
  }
  std::cout << "versions\n";
  if (const auto* stages = d.if_contains("VersionIdsToStages"); stages && stages->is_object()) {
    for (const auto& [version, labels] : stages->as_object()) {
      std::cout << "  " << std::string(version) << "  " << json::serialize(labels) << "\n";
    }
  }
  if (const auto* tags = d.if_contains("Tags"); tags && !tags->as_array().empty()) {
    std::cout << "tags         " << json::serialize(*tags) << "\n";
  }
  return kExitOk;
}

int SecretsCommands::RunHistory() {
  json::object input{{"SecretId", name_}, {"IncludeDeprecated", true}, {"MaxResults", 100}};
  json::array versions;
  for (;;) {
    auto page = Call("ListSecretVersionIds", input);
    if (!page) return kExitRuntime;
    for (auto& v : page->at("Versions").as_array()) versions.push_back(v);
    if (!page->contains("NextToken")) break;
    input["NextToken"] = page->at("NextToken");
  }
  if (json_) {
    std::cout << json::serialize(versions) << "\n";
    return kExitOk;
  }
  for (const auto& v : versions) {
    const json::object& o = v.as_object();
    std::cout << Date(o, "CreatedDate") << "  " << Str(o, "VersionId") << "  "
              << (o.contains("VersionStages") ? json::serialize(o.at("VersionStages"))
                                              : std::string("(no label)"))
              << "\n";
  }
  return kExitOk;
}

int SecretsCommands::RunRotate() {
  json::object input{{"SecretId", name_}, {"RotateImmediately", !no_rotate_now_}};
  if (!function_.empty()) input["RotationLambdaARN"] = function_;
  if (!every_.empty() && !schedule_.empty()) {
    std::cerr << "moatless secrets rotate: give --every or --schedule, not both\n";
    return kExitUsage;
  }
  if (!every_.empty()) {
    const std::int64_t days = Days(every_);
    if (days == 0) {
      std::cerr << "moatless secrets rotate: --every takes a number of days (\"30d\")\n";
      return kExitUsage;
    }
    input["RotationRules"] = json::object{{"AutomaticallyAfterDays", days}};
  } else if (!schedule_.empty()) {
    input["RotationRules"] = json::object{{"ScheduleExpression", schedule_}};
  }
  auto rotated = Call("RotateSecret", input);
  if (!rotated) return kExitRuntime;
  if (rotated->contains("VersionId")) {
    std::cout << "rotating " << Str(*rotated, "Name") << " to version "
              << Str(*rotated, "VersionId") << " (moatless secrets describe shows how it went)\n";
  } else {
    std::cout << "rotation scheduled for " << Str(*rotated, "Name") << "\n";
  }
  return kExitOk;
}

int SecretsCommands::RunDelete() {
  json::object input{{"SecretId", name_}};
  if (force_) {
    input["ForceDeleteWithoutRecovery"] = true;
  } else if (recovery_days_ != 0) {
    input["RecoveryWindowInDays"] = recovery_days_;
  }
  auto deleted = Call("DeleteSecret", input);
  if (!deleted) return kExitRuntime;
  std::cout << (force_ ? "deleted " : "deletion scheduled: ") << Str(*deleted, "Name")
            << (force_ ? ""
                       : " will be deleted on " + Date(*deleted, "DeletionDate") +
                             " (moatless secrets restore cancels it)")
            << "\n";
  return kExitOk;
}

int SecretsCommands::RunRestore() {
  auto restored = Call("RestoreSecret", json::object{{"SecretId", name_}});
  if (!restored) return kExitRuntime;
  std::cout << "restored " << Str(*restored, "Name") << "\n";
  return kExitOk;
}

int SecretsCommands::RunRotateMasterKey() {
  auto rotated = Call("RotateMasterKey", json::object{});
  if (!rotated) return kExitRuntime;
  std::cout << "secrets master key version " << Str(*rotated, "MasterKeyVersion") << " is current; "
            << Str(*rotated, "Rewrapped") << " data keys re-wrapped under it\n";
  const json::value* retired = rotated->if_contains("RetiredVersions");
  if (retired != nullptr && retired->is_array()) {
    for (const auto& v : retired->as_array()) {
      std::cout << "version " << json::serialize(v)
                << " is retired: nothing is sealed under it any more. Keep its key file until "
                   "no backup older than now needs it, then remove it.\n";
    }
  }
  return kExitOk;
}

}  // namespace moatless::cli
