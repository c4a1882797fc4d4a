// A function as the runtime runs it: code, runtime, handler, limits, environment, role, version.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace moatless::runtime {

enum class RuntimeKind {
  kNodejs20,  // /usr/bin/node running runtimes/nodejs20/bootstrap.mjs; handler "file.export"
  kPython3,   // /usr/bin/python3 running runtimes/python3/bootstrap.py; handler "module.function"
  kProvided,  // the code's own executable `bootstrap` (a Lambda custom runtime)
};
// "nodejs20", "python3", "provided" (also "provided.al2023" and "python3.x" / "nodejs20.x").
core::Result<RuntimeKind> ParseRuntime(std::string_view name);
std::string_view RuntimeName(RuntimeKind kind);

struct FunctionConfig {
  std::string name;                 // [A-Za-z0-9-_]{1,64}
  std::string version = "$LATEST";  // environments are never shared across versions
  RuntimeKind runtime = RuntimeKind::kNodejs20;
  std::string handler;   // "index.handler"; ignored by kProvided (passed as _HANDLER)
  std::string code_dir;  // host directory, mounted read-only at /var/task
  std::uint32_t memory_mb = 128;
  std::chrono::milliseconds timeout{3000};
  std::map<std::string, std::string> environment;  // not secret: visible to the function only
  std::string role_arn;
  // At most this many invocations of the function at once (a share of the platform's limit);
  // unset: no cap of its own. 0 turns the function off (every invocation is throttled).
  std::optional<std::uint32_t> reserved_concurrency;
  // Outbound destinations, "scheme://host:port" with Spin's wildcards (runtime/egress.h); empty:
  // no network beyond the environment's own loopback.
  std::vector<std::string> egress;
};

// InvalidArgument naming the field: name shape, memory 128–10240 MB, timeout 1 ms–900 s, an
// absolute code directory, a handler for the built-in runtimes, environment keys
// [A-Za-z][A-Za-z0-9_]+ that are not reserved by Lambda, at most 4 KB of environment in all.
core::Status ValidateFunction(const FunctionConfig& function);

// The function's ARN: arn:aws:lambda:REGION:ACCOUNT:function:NAME.
std::string FunctionArn(const FunctionConfig& function, std::string_view region,
                        std::string_view account_id);

// The process environment of an execution environment of `function`: the function's own
// variables, then the standard Lambda ones (which a function cannot override).
std::vector<std::string> LambdaEnvironment(const FunctionConfig& function, std::string_view region,
                                           std::string_view log_stream);

}  // namespace moatless::runtime
