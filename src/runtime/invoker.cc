#include "runtime/invoker.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/json.hpp>
#include <cstdio>
#include <future>
#include <thread>

#include "core/ids.h"

namespace moatless::runtime {
namespace {

constexpr std::size_t kLogTailBytes = 4096;
constexpr std::size_t kLogBufferBytes = 64 * 1024;

std::string ErrorBody(std::string_view type, std::string_view message) {
  return boost::json::serialize(
      boost::json::object{{"errorMessage", message}, {"errorType", type}});
}

std::string Seconds(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

std::string Millis(std::chrono::microseconds us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f ms", static_cast<double>(us.count()) / 1000.0);
  return buf;
}

// The REPORT line of an invocation, as Lambda writes it.
std::string ReportLine(const FunctionConfig& function, const InvokeResult& r,
                       std::string_view status, std::string_view error_type) {
  const auto billed = (r.duration.count() + 999) / 1000;  // whole milliseconds, rounded up
  std::string line = "REPORT RequestId: " + r.request_id + "\tDuration: " + Millis(r.duration) +
                     "\tBilled Duration: " + std::to_string(std::max<long>(billed, 1)) +
                     " ms\tMemory Size: " + std::to_string(function.memory_mb) +
                     " MB\tMax Memory Used: " + std::to_string(r.peak_memory_bytes >> 20) + " MB";
  if (r.cold_start) line += "\tInit Duration: " + Millis(r.init_duration);
  if (!status.empty()) line += "\tStatus: " + std::string(status);
  if (!error_type.empty()) line += "\tError Type: " + std::string(error_type);
  return line;
}

// Reads whatever is in `fd` (non-blocking) onto `out`, keeping the latest kLogBufferBytes; false
// once the pipe is closed.
bool DrainInto(int fd, std::string& out) {
  std::array<char, 8192> buffer;
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n > 0) {
      out.append(buffer.data(), static_cast<std::size_t>(n));
      if (out.size() > kLogBufferBytes) out.erase(0, out.size() - kLogBufferBytes);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
}

}  // namespace

// One execution environment of one function version.
struct Invoker::Warm {
  std::string id;
  std::string key;
  std::unique_ptr<sandbox::Environment> env;
  std::shared_ptr<RuntimeChannel> channel;
  std::thread monitor;

  // Output is read under log_mu (by the monitor, and by TakeLog for what is still in the pipes),
  // so it stays in order.
  std::mutex log_mu;
  std::string log;                       // the most recent output, at most kLogBufferBytes
  std::array<bool, 2> open{true, true};  // stdout, stderr not yet at EOF; guarded by log_mu
  std::atomic<bool> ended{false};
  std::optional<sandbox::ExitStatus> exit;  // guarded by log_mu
  // When the credentials in its environment variables expire (unix seconds); 0: it has none.
  std::int64_t env_credentials_expire = 0;
  // Idle bookkeeping, guarded by the Invoker's mu_.
  std::chrono::steady_clock::time_point idle_since;
  bool frozen = false;

  // Everything written so far, including what is still in the pipes.
  std::string TakeLog() {
    std::lock_guard lock(log_mu);
    const std::array<int, 2> fds{env->stdout_fd(), env->stderr_fd()};
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (open[i]) open[i] = DrainInto(fds[i], log);
    }
    return std::exchange(log, std::string());
  }
};

std::string InvokeResult::LogTail() const {
  return log.size() > kLogTailBytes ? log.substr(log.size() - kLogTailBytes) : log;
}

Invoker::Invoker(sandbox::Sandboxer& sandboxer, RuntimeApi& api, core::Random& random,
                 const core::Clock& clock, InvokerOptions options)
    : sandboxer_(sandboxer),
      api_(api),
      random_(random),
      clock_(clock),
      options_(std::move(options)),
      gate_(options_.concurrency) {
  reaper_ = std::thread([this] { ReapLoop(); });
}

Invoker::~Invoker() {
  std::map<std::string, std::vector<std::unique_ptr<Warm>>> idle;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    idle.swap(idle_);
  }
  reaper_wake_.notify_all();
  reaper_.join();
  for (auto& [key, list] : idle) {
    for (auto& warm : list) Discard(std::move(warm));
  }
}

std::string Invoker::PoolKey(const FunctionConfig& function) {
  return function.name + "\n" + function.version;
}

std::size_t Invoker::IdleEnvironments(const FunctionConfig& function) const {
  std::lock_guard lock(mu_);
  const auto it = idle_.find(PoolKey(function));
  return it == idle_.end() ? 0 : it->second.size();
}

std::size_t Invoker::FrozenEnvironments(const FunctionConfig& function) const {
  std::lock_guard lock(mu_);
  const auto it = idle_.find(PoolKey(function));
  if (it == idle_.end()) return 0;
  return static_cast<std::size_t>(
      std::count_if(it->second.begin(), it->second.end(), [](const auto& w) { return w->frozen; }));
}

Invoker::PoolStats Invoker::Pool() const {
  PoolStats stats;
  std::lock_guard lock(mu_);
  for (const auto& [key, list] : idle_) {
    stats.idle += list.size();
    for (const auto& warm : list) stats.frozen += warm->frozen ? 1 : 0;
  }
  return stats;
}

void Invoker::ReapLoop() {
  const auto tick = std::clamp<std::chrono::milliseconds>(
      std::min(options_.freeze_after, options_.idle_timeout) / 2, std::chrono::milliseconds(10),
      std::chrono::milliseconds(1000));
  std::unique_lock lock(mu_);
  while (!stopping_) {
    reaper_wake_.wait_for(lock, tick);
    if (stopping_) break;
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<Warm>> expired, to_freeze;
    for (auto it = idle_.begin(); it != idle_.end();) {
      auto& list = it->second;
      for (auto w = list.begin(); w != list.end();) {
        const auto idle_for = now - (*w)->idle_since;
        if ((*w)->ended || idle_for >= options_.idle_timeout) {
          expired.push_back(std::move(*w));
          w = list.erase(w);
        } else if (!(*w)->frozen && idle_for >= options_.freeze_after) {
          to_freeze.push_back(std::move(*w));
          w = list.erase(w);
        } else {
          ++w;
        }
      }
      it = list.empty() && to_freeze.empty() ? idle_.erase(it) : std::next(it);
    }
    if (expired.empty() && to_freeze.empty()) continue;
    lock.unlock();
    for (auto& w : expired) Discard(std::move(w));
    // Frozen outside the lock (it can take a while); meanwhile an invocation may start another.
    for (auto& w : to_freeze) w->frozen = w->env->Freeze().ok();
    lock.lock();
    for (auto& w : to_freeze) {
      if (!w->frozen || stopping_) {
        lock.unlock();
        Discard(std::move(w));
        lock.lock();
        continue;
      }
      // Least recently used: at the front.
      auto& list = idle_[w->key];
      list.insert(list.begin(), std::move(w));
    }
  }
}

std::unique_ptr<Invoker::Warm> Invoker::TakeIdle(const FunctionConfig& function) {
  // An environment whose variable credentials would expire during this invocation is retired.
  const std::int64_t latest_end = std::chrono::duration_cast<std::chrono::seconds>(
                                      clock_.Now().time_since_epoch() + function.timeout)
                                      .count() +
                                  60;
  for (;;) {
    std::unique_ptr<Warm> warm;
    {
      std::lock_guard lock(mu_);
      const auto it = idle_.find(PoolKey(function));
      if (it == idle_.end() || it->second.empty()) return nullptr;
      warm = std::move(it->second.back());
      it->second.pop_back();
    }
    const bool usable =
        !warm->ended &&
        (warm->env_credentials_expire == 0 || warm->env_credentials_expire >= latest_end) &&
        (!warm->frozen || warm->env->Thaw().ok());
    if (usable) {
      warm->frozen = false;
      return warm;
    }
    Discard(std::move(warm));
  }
}

core::Result<std::unique_ptr<Invoker::Warm>> Invoker::StartEnvironment(
    const FunctionConfig& function) {
  auto warm = std::make_unique<Warm>();
  warm->id = core::RandomHex(random_, 8);
  warm->key = PoolKey(function);

  sandbox::Spec spec;
  spec.hostname = "moatless";
  spec.working_dir = "/var/task";
  spec.mounts.push_back({.source = function.code_dir, .target = "/var/task"});
  switch (function.runtime) {
    case RuntimeKind::kNodejs20:
      spec.program = "/usr/bin/node";
      spec.args = {"/opt/runtime/bootstrap.mjs"};
      spec.mounts.push_back(
          {.source = options_.runtimes_dir + "/nodejs20", .target = "/opt/runtime"});
      break;
    case RuntimeKind::kPython3:
      spec.program = "/usr/bin/python3";
      spec.args = {"-u", "/opt/runtime/bootstrap.py"};
      spec.mounts.push_back(
          {.source = options_.runtimes_dir + "/python3", .target = "/opt/runtime"});
      break;
    case RuntimeKind::kProvided:
      spec.program = "/var/task/bootstrap";
      break;
  }
  spec.env = LambdaEnvironment(function, options_.region, "moatless/" + warm->id);
  const std::string listener = "http://127.0.0.1:" + std::to_string(kRuntimeApiPort);
  spec.env.push_back("AWS_ENDPOINT_URL=" + listener);
  CredentialSource credential_source;
  core::SecretBytes credentials_token;
  if (!function.role_arn.empty() && options_.credentials) {
    auto first = options_.credentials(function, warm->id);
    if (!first.ok()) {
      return first.status().Annotate("the credentials of the function's role " + function.role_arn);
    }
    warm->env_credentials_expire = first->expires_at;
    spec.env.push_back("AWS_ACCESS_KEY_ID=" + first->access_key_id);
    spec.env.push_back("AWS_SECRET_ACCESS_KEY=" + std::string(first->secret_access_key.Reveal()));
    spec.env.push_back("AWS_SESSION_TOKEN=" + first->session_token);
    const std::string token = core::RandomHex(random_, 32);
    spec.env.push_back("AWS_CONTAINER_CREDENTIALS_FULL_URI=" + listener +
                       std::string(kCredentialsPath));
    spec.env.push_back("AWS_CONTAINER_AUTHORIZATION_TOKEN=" + token);
    credentials_token = core::SecretBytes(token);
    // The endpoint's credentials: the first ones until they near expiry, then fresh ones.
    struct Cache {
      std::mutex mu;
      ContainerCredentials current;
    };
    auto cache = std::make_shared<Cache>();
    cache->current = std::move(*first);
    credential_source = [cache, issue = options_.credentials, function, id = warm->id,
                         margin = options_.credentials_refresh_margin,
                         &clock = clock_]() -> core::Result<ContainerCredentials> {
      std::lock_guard lock(cache->mu);
      const std::int64_t now =
          std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count();
      if (cache->current.expires_at - now < margin.count()) {
        ASSIGN_OR_RETURN(cache->current, issue(function, id));
      }
      return ContainerCredentials{.access_key_id = cache->current.access_key_id,
                                  .secret_access_key = cache->current.secret_access_key.Copy(),
                                  .session_token = cache->current.session_token,
                                  .expires_at = cache->current.expires_at};
    };
  }
  std::optional<EgressAllowlist> egress;
  if (!function.egress.empty()) {
    if (options_.egress == nullptr) {
      return core::FailedPreconditionError("this node cannot give functions egress")
          .WithAwsType("ServiceException");
    }
    ASSIGN_OR_RETURN(egress, EgressAllowlist::Parse(function.egress));
    const std::string proxy = "http://127.0.0.1:" + std::to_string(kEgressProxyPort);
    for (const char* name : {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}) {
      spec.env.push_back(std::string(name) + "=" + proxy);
    }
    // The function's own listener (Runtime API, credentials, service endpoint) stays direct.
    spec.env.push_back("NO_PROXY=127.0.0.1:" + std::to_string(kRuntimeApiPort));
    spec.env.push_back("no_proxy=127.0.0.1:" + std::to_string(kRuntimeApiPort));
  }
  spec.limits.memory_bytes = static_cast<std::uint64_t>(function.memory_mb) << 20;
  spec.limits.max_pids = 256;
  spec.limits.tmp_bytes = 512ull << 20;  // Lambda's default ephemeral storage
  spec.in_network_namespace = [&]() -> core::Status {
    ASSIGN_OR_RETURN(warm->channel, api_.ListenInCurrentNamespace(warm->id));
    if (credential_source) {
      warm->channel->SetCredentialSource(std::move(credentials_token), credential_source);
    }
    if (egress) {
      auto listening = options_.egress->ListenInCurrentNamespace(warm->id, std::move(*egress),
                                                                 kEgressProxyPort, function.name);
      if (!listening.ok()) return listening.status();
    }
    return core::Status::Ok();
  };
  auto env = sandboxer_.Start(spec);
  if (!env.ok()) {
    api_.Forget(warm->id);
    if (options_.egress != nullptr) options_.egress->Forget(warm->id);
    return env.status();
  }
  warm->env = std::move(*env);

  // The monitor: collects output until the environment closes it, then notes the end and fails
  // whatever invocation is in progress.
  for (const int fd : {warm->env->stdout_fd(), warm->env->stderr_fd()}) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  Warm* w = warm.get();
  w->monitor = std::thread([w] {
    std::array<pollfd, 2> fds{{{w->env->stdout_fd(), POLLIN, 0}, {w->env->stderr_fd(), POLLIN, 0}}};
    for (;;) {
      {
        std::lock_guard lock(w->log_mu);
        for (std::size_t i = 0; i < fds.size(); ++i) {
          if (w->open[i] && fds[i].revents != 0) w->open[i] = DrainInto(fds[i].fd, w->log);
          if (!w->open[i]) fds[i].fd = -1;
          fds[i].revents = 0;
        }
        if (!w->open[0] && !w->open[1]) break;
      }
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) break;
    }
    auto status = w->env->Wait();
    {
      std::lock_guard lock(w->log_mu);
      if (status.ok()) w->exit = *status;
    }
    w->ended = true;
    std::string type = "Runtime.ExitError";
    std::string message = "Runtime exited";
    if (status.ok()) {
      if (status->reason == sandbox::ExitReason::kOutOfMemory) {
        type = "Runtime.OutOfMemory";
        message = "Runtime exited with error: signal: killed (out of memory)";
      } else if (status->reason == sandbox::ExitReason::kExited) {
        message = "Runtime exited with error: exit status " + std::to_string(status->exit_code);
      } else if (status->reason == sandbox::ExitReason::kSignalled) {
        message = "Runtime exited with error: signal " + std::to_string(status->signal);
      } else {
        message = "Runtime exited: " + status->ToString();
      }
    }
    if (w->channel) w->channel->Fail(core::UnavailableError(message).WithAwsType(type));
  });
  return warm;
}

void Invoker::Discard(std::unique_ptr<Warm> warm) {
  if (!warm) return;
  if (warm->env) warm->env->Kill().IgnoreError();
  if (warm->monitor.joinable()) warm->monitor.join();
  api_.Forget(warm->id);
  if (options_.egress != nullptr) options_.egress->Forget(warm->id);
  warm.reset();  // the Environment's destructor removes its cgroups and root
}

core::Result<InvokeResult> Invoker::Invoke(const FunctionConfig& function, std::string payload,
                                           std::string request_id, std::string client_context) {
  RETURN_IF_ERROR(ValidateFunction(function));
  ASSIGN_OR_RETURN(ConcurrencyGate::Slot slot,
                   gate_.Acquire(function.name, function.reserved_concurrency));
  InvokeResult result;
  result.request_id = request_id.empty() ? core::NewUuid(random_) : std::move(request_id);
  result.version = function.version;

  const auto started = std::chrono::steady_clock::now();
  std::unique_ptr<Warm> warm = TakeIdle(function);
  if (!warm) {
    core::Result<std::unique_ptr<Warm>> started_env = StartEnvironment(function);
    if (options_.on_environment_start)
      options_.on_environment_start(function, started_env.status());
    ASSIGN_OR_RETURN(warm, std::move(started_env));
    result.cold_start = true;
  }

  auto promise = std::make_shared<std::promise<core::Result<InvocationResult>>>();
  std::future<core::Result<InvocationResult>> answer = promise->get_future();
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
          .count();
  const std::string init_output = warm->TakeLog();  // a cold start's init belongs to this one
  const auto delivered = std::chrono::steady_clock::now();
  warm->channel->Deliver(
      Invocation{.request_id = result.request_id,
                 .payload = std::move(payload),
                 .deadline_epoch_ms = now_ms + function.timeout.count(),
                 .function_arn = FunctionArn(function, options_.region, options_.account_id),
                 .client_context = std::move(client_context)},
      [promise](core::Result<InvocationResult> r) { promise->set_value(std::move(r)); });

  const bool in_time = answer.wait_for(function.timeout) == std::future_status::ready;
  const auto finished = std::chrono::steady_clock::now();
  // The runtime's init ends when it fetches the invocation; the invocation runs from there.
  const auto fetched =
      std::clamp(warm->channel->fetched_at().value_or(delivered), delivered, finished);
  result.duration = std::chrono::duration_cast<std::chrono::microseconds>(finished - fetched);
  if (result.cold_start) {
    result.init_duration = std::chrono::duration_cast<std::chrono::microseconds>(fetched - started);
  }
  if (auto usage = warm->env->ResourceUsage(); usage.ok()) {
    result.peak_memory_bytes = usage->peak_memory_bytes;
  }

  bool keep = false;
  std::string status;  // the REPORT line's Status for failures
  if (!in_time) {
    // The environment is killed; its monitor fails the invocation, which nobody waits for now.
    result.function_error = "Unhandled";
    status = "timeout";
    result.payload = ErrorBody("Sandbox.Timedout", "RequestId: " + result.request_id +
                                                       " Error: Task timed out after " +
                                                       Seconds(function.timeout) + " seconds");
  } else {
    core::Result<InvocationResult> outcome = answer.get();
    if (outcome.ok() && !outcome->is_error) {
      result.payload = std::move(outcome->body);
      keep = true;
    } else if (outcome.ok()) {
      result.function_error = outcome->error_type.empty() ? "Unhandled" : outcome->error_type;
      result.payload = outcome->body.empty()
                           ? ErrorBody(*result.function_error, "the function failed")
                           : std::move(outcome->body);
      // A handled error leaves the runtime ready for more; an init error does not.
      keep = !outcome->error_type.starts_with("Runtime.");
      if (!keep) status = "error";
    } else {
      result.function_error = "Unhandled";
      status = "error";
      result.payload =
          ErrorBody(outcome.status().aws_type(),
                    "RequestId: " + result.request_id + " Error: " + outcome.status().message());
    }
  }
  if (!keep) {
    warm->env->Kill().IgnoreError();
    if (warm->monitor.joinable()) warm->monitor.join();
  }
  std::string error_type;
  if (!status.empty()) {
    boost::system::error_code ec;
    const boost::json::value parsed = boost::json::parse(result.payload, ec);
    const auto* object = ec ? nullptr : parsed.if_object();
    const auto* type = object != nullptr ? object->if_contains("errorType") : nullptr;
    if (in_time && type != nullptr && type->is_string()) error_type = type->as_string().c_str();
  }
  result.report = ReportLine(function, result, status, error_type);
  result.log = (result.cold_start ? init_output : std::string()) +
               "START RequestId: " + result.request_id + " Version: " + function.version + "\n" +
               warm->TakeLog() + "END RequestId: " + result.request_id + "\n" + result.report +
               "\n";
  if (options_.on_invocation) options_.on_invocation(function, result);
  if (!keep || warm->ended) {
    Discard(std::move(warm));
    return result;
  }
  std::unique_lock lock(mu_);
  auto& list = idle_[PoolKey(function)];
  if (list.size() < options_.max_idle_per_version && !stopping_) {
    warm->idle_since = std::chrono::steady_clock::now();
    list.push_back(std::move(warm));
  } else {
    lock.unlock();
    Discard(std::move(warm));
  }
  return result;
}

}  // namespace moatless::runtime
