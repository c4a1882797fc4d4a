// Invoker: runs invocations of functions in sandboxed execution environments through the Runtime
// API, and keeps initialised environments warm for later invocations of the same function
// version — never another function's or another version's.
//
// An invocation takes an idle warm environment of its function version, or starts a new one (a
// cold start: the sandbox starts, the runtime initialises and asks for its first invocation). The
// invocation is handed to the runtime; its response or error comes back through the Runtime API.
// The function's timeout kills the environment ("Task timed out after N.NN seconds"); an
// environment whose runtime exits, crashes or runs out of memory is discarded and the invocation
// reports why; an init error is reported to the invocation that started the environment.
//
// A function with a role gets that role's short-lived credentials, bound to its environment: from
// the container-credentials endpoint on its own listener (AWS_CONTAINER_CREDENTIALS_FULL_URI and
// AWS_CONTAINER_AUTHORIZATION_TOKEN, refreshed before expiry) and, for compatibility, in
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, which do not refresh: an
// environment is reused only while those are valid for a whole invocation. AWS_ENDPOINT_URL
// points the SDKs at the same listener, where the platform's service endpoint answers.
//
// Every invocation first takes a slot of the ConcurrencyGate (the platform's limit, the function's
// reserved concurrency, a bounded wait) or is throttled (TooManyRequestsException). An idle
// environment is frozen (cgroup freezer: it uses no CPU) after `freeze_after` and discarded after
// `idle_timeout`; it is thawed when an invocation takes it.
//
// Each invocation yields a Lambda-style log: START, what the function wrote, END and REPORT
// (duration, billed duration, memory size, max memory used, init duration on cold starts, and the
// status of a failed one).
//
// Threading: Invoke is thread-safe and blocks the calling thread until the invocation is over.
// Each environment has a monitor thread that reads its stdout/stderr and notices its end; one
// reaper thread freezes and discards idle environments.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/random.h"
#include "core/status.h"
#include "runtime/concurrency.h"
#include "runtime/egress_proxy.h"
#include "runtime/function.h"
#include "runtime/runtime_api.h"
#include "sandbox/sandbox.h"

namespace moatless::runtime {

struct InvokeResult {
  std::string request_id;
  // The response, or the Lambda error body {errorMessage, errorType[, stackTrace]}.
  std::string payload;
  // Set when the function failed (X-Amz-Function-Error): "Unhandled", or the runtime's type.
  std::optional<std::string> function_error;
  bool cold_start = false;
  std::chrono::microseconds init_duration{0};  // cold starts: sandbox start to first /next
  std::chrono::microseconds duration{0};       // the runtime fetching it to its answer
  std::uint64_t peak_memory_bytes = 0;
  std::string version;  // the function version that ran
  // START, what the environment wrote during this invocation (at most 64 KiB, the latest), END
  // and REPORT lines, as Lambda logs them.
  std::string log;
  std::string report;  // the REPORT line alone (no newline)
  // The last 4 KiB of `log` (what X-Amz-Log-Result carries).
  std::string LogTail() const;
};

struct InvokerOptions {
  // Holds nodejs20/bootstrap.mjs and python3/bootstrap.py (the repository's runtimes/).
  std::string runtimes_dir;
  std::string region = "local";
  std::string account_id = "000000000000";
  // Idle warm environments per function version beyond this are discarded.
  std::size_t max_idle_per_version = 8;
  ConcurrencyLimits concurrency;
  // Serves the egress proxy of functions that declare egress (null: such functions cannot start).
  EgressProxy* egress = nullptr;
  // An idle environment is frozen after this, and discarded after idle_timeout.
  std::chrono::milliseconds freeze_after{1000};
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};
  // Called at the end of every invocation that ran (not for throttled or invalid ones), on the
  // invoking thread: the platform's logs and metrics.
  std::function<void(const FunctionConfig& function, const InvokeResult& result)> on_invocation;
  // Called after every attempt to start an execution environment (a cold start), on the invoking
  // thread, with its outcome: the platform's sandbox-start metrics.
  std::function<void(const FunctionConfig& function, const core::Status& status)>
      on_environment_start;
  // Issues the credentials of a function's role for one environment, bound to it
  // (identity::Sts::CredentialsForEnvironment in the daemon). Null: functions get none.
  std::function<core::Result<ContainerCredentials>(const FunctionConfig& function,
                                                   const std::string& environment_id)>
      credentials;
  // Credentials are refreshed when less than this is left (the SDKs refresh earlier still).
  std::chrono::seconds credentials_refresh_margin{300};
};

class Invoker {
 public:
  Invoker(sandbox::Sandboxer& sandboxer, RuntimeApi& api, core::Random& random,
          const core::Clock& clock, InvokerOptions options);
  ~Invoker();  // discards every environment
  Invoker(const Invoker&) = delete;
  Invoker& operator=(const Invoker&) = delete;

  // Runs one invocation to its end. A function error is an OK result with function_error set;
  // an error Status means the platform could not run it: an invalid config, a throttle
  // (ResourceExhausted, TooManyRequestsException), a sandbox that did not start. `request_id`:
  // the invocation's id (empty: a new UUID); `client_context`: JSON for the runtime's
  // Lambda-Runtime-Client-Context header (empty: none).
  core::Result<InvokeResult> Invoke(const FunctionConfig& function, std::string payload,
                                    std::string request_id = "", std::string client_context = "");

  // Idle warm environments of a function version, and how many of them are frozen (for tests and
  // metrics).
  std::size_t IdleEnvironments(const FunctionConfig& function) const;
  std::size_t FrozenEnvironments(const FunctionConfig& function) const;
  // Idle warm environments of every function version, and how many of them are frozen.
  struct PoolStats {
    std::size_t idle = 0;
    std::size_t frozen = 0;
  };
  PoolStats Pool() const;
  ConcurrencyGate& gate() { return gate_; }

 private:
  struct Warm;
  core::Result<std::unique_ptr<Warm>> StartEnvironment(const FunctionConfig& function);
  // An idle environment of the function version, thawed; null if there is none.
  std::unique_ptr<Warm> TakeIdle(const FunctionConfig& function);
  void Discard(std::unique_ptr<Warm> warm);
  void ReapLoop();
  static std::string PoolKey(const FunctionConfig& function);

  sandbox::Sandboxer& sandboxer_;
  RuntimeApi& api_;
  core::Random& random_;
  const core::Clock& clock_;
  InvokerOptions options_;
  ConcurrencyGate gate_;
  mutable std::mutex mu_;
  // By function version; the most recently used last.
  std::map<std::string, std::vector<std::unique_ptr<Warm>>> idle_;
  std::condition_variable reaper_wake_;
  bool stopping_ = false;
  std::thread reaper_;
};

}  // namespace moatless::runtime
