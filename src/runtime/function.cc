#include "runtime/function.h"

#include <algorithm>
#include <array>

#include "runtime/egress.h"
#include "runtime/runtime_api.h"

namespace moatless::runtime {
namespace {

constexpr std::array<std::string_view, 28> kReserved = {"_HANDLER",
                                                        "_X_AMZN_TRACE_ID",
                                                        "AWS_DEFAULT_REGION",
                                                        "AWS_REGION",
                                                        "AWS_EXECUTION_ENV",
                                                        "AWS_LAMBDA_FUNCTION_NAME",
                                                        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                                                        "AWS_LAMBDA_FUNCTION_VERSION",
                                                        "AWS_LAMBDA_INITIALIZATION_TYPE",
                                                        "AWS_LAMBDA_LOG_GROUP_NAME",
                                                        "AWS_LAMBDA_LOG_STREAM_NAME",
                                                        "AWS_ACCESS_KEY",
                                                        "AWS_ACCESS_KEY_ID",
                                                        "AWS_SECRET_ACCESS_KEY",
                                                        "AWS_SESSION_TOKEN",
                                                        "AWS_LAMBDA_RUNTIME_API",
                                                        "LAMBDA_TASK_ROOT",
                                                        "LAMBDA_RUNTIME_DIR",
                                                        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                                        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                                                        "AWS_ENDPOINT_URL",
                                                        "TZ",
                                                        "HTTP_PROXY",
                                                        "HTTPS_PROXY",
                                                        "NO_PROXY",
                                                        "http_proxy",
                                                        "https_proxy",
                                                        "no_proxy"};

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool IsEnvKey(const std::string& key) {
  if (key.size() < 2 || !((key[0] >= 'a' && key[0] <= 'z') || (key[0] >= 'A' && key[0] <= 'Z'))) {
    return false;
  }
  return std::all_of(key.begin(), key.end(), [](char c) { return c != '-' && IsNameChar(c); });
}

}  // namespace

core::Result<RuntimeKind> ParseRuntime(std::string_view name) {
  if (name == "nodejs20" || name == "nodejs20.x") return RuntimeKind::kNodejs20;
  if (name == "python3" || name.starts_with("python3.")) return RuntimeKind::kPython3;
  if (name == "provided" || name.starts_with("provided.")) return RuntimeKind::kProvided;
  return core::InvalidArgumentError("unknown runtime '" + std::string(name) +
                                    "': nodejs20, python3 or provided");
}

std::string_view RuntimeName(RuntimeKind kind) {
  switch (kind) {
    case RuntimeKind::kNodejs20:
      return "nodejs20";
    case RuntimeKind::kPython3:
      return "python3";
    case RuntimeKind::kProvided:
      return "provided";
  }
  return "?";
}

core::Status ValidateFunction(const FunctionConfig& f) {
  if (f.name.empty() || f.name.size() > 64 ||
      !std::all_of(f.name.begin(), f.name.end(), IsNameChar)) {
    return core::InvalidArgumentError("function name must be 1-64 of [A-Za-z0-9-_]");
  }
  if (f.version.empty() || f.version.size() > 64) {
    return core::InvalidArgumentError("function version must be 1-64 characters");
  }
  if (f.memory_mb < 128 || f.memory_mb > 10240) {
    return core::InvalidArgumentError("memory must be 128-10240 MB");
  }
  if (f.timeout < std::chrono::milliseconds(1) || f.timeout > std::chrono::seconds(900)) {
    return core::InvalidArgumentError("timeout must be 1 ms to 900 s");
  }
  if (f.code_dir.empty() || f.code_dir[0] != '/') {
    return core::InvalidArgumentError("the code directory must be an absolute path");
  }
  if (f.runtime != RuntimeKind::kProvided && f.handler.find('.') == std::string::npos) {
    return core::InvalidArgumentError("handler must be file.function for " +
                                      std::string(RuntimeName(f.runtime)));
  }
  std::size_t total = 0;
  for (const auto& [key, value] : f.environment) {
    if (!IsEnvKey(key)) {
      return core::InvalidArgumentError("environment variable name '" + key +
                                        "' must match [A-Za-z][A-Za-z0-9_]+");
    }
    if (std::find(kReserved.begin(), kReserved.end(), key) != kReserved.end()) {
      return core::InvalidArgumentError("environment variable " + key +
                                        " is reserved by the runtime");
    }
    total += key.size() + value.size();
  }
  if (total > 4096) return core::InvalidArgumentError("environment variables exceed 4 KB");
  if (f.reserved_concurrency && *f.reserved_concurrency > 1000) {
    return core::InvalidArgumentError("reserved concurrency must be 0-1000");
  }
  if (!f.egress.empty()) {
    if (auto egress = EgressAllowlist::Parse(f.egress); !egress.ok()) return egress.status();
  }
  return core::Status::Ok();
}

std::string FunctionArn(const FunctionConfig& f, std::string_view region,
                        std::string_view account_id) {
  return "arn:aws:lambda:" + std::string(region) + ":" + std::string(account_id) +
         ":function:" + f.name;
}

std::vector<std::string> LambdaEnvironment(const FunctionConfig& f, std::string_view region,
                                           std::string_view log_stream) {
  std::vector<std::string> env;
  for (const auto& [key, value] : f.environment) env.push_back(key + "=" + value);
  const std::string runtime(RuntimeName(f.runtime));
  const std::initializer_list<std::pair<std::string, std::string>> standard = {
      {"_HANDLER", f.handler},
      {"AWS_REGION", std::string(region)},
      {"AWS_DEFAULT_REGION", std::string(region)},
      {"AWS_EXECUTION_ENV", "AWS_Lambda_" + runtime},
      {"AWS_LAMBDA_FUNCTION_NAME", f.name},
      {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE", std::to_string(f.memory_mb)},
      {"AWS_LAMBDA_FUNCTION_VERSION", f.version},
      {"AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"},
      {"AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/" + f.name},
      {"AWS_LAMBDA_LOG_STREAM_NAME", std::string(log_stream)},
      {"AWS_LAMBDA_RUNTIME_API", "127.0.0.1:" + std::to_string(kRuntimeApiPort)},
      {"LAMBDA_TASK_ROOT", "/var/task"},
      {"LAMBDA_RUNTIME_DIR", "/opt/runtime"},
      {"TZ", "UTC"},
      {"LANG", "en_US.UTF-8"},
      {"HOME", "/tmp"},
      {"PATH", "/usr/local/bin:/usr/bin:/bin:/opt/bin"},
  };
  for (const auto& [key, value] : standard) {
    // The function's own LANG/PATH win (they are unreserved); everything else is the runtime's.
    if ((key == "LANG" || key == "PATH") && f.environment.contains(key)) continue;
    env.push_back(key + "=" + value);
  }
  return env;
}

}  // namespace moatless::runtime
