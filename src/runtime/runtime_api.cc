#include "runtime/runtime_api.h"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "core/filesystem.h"
#include "http/status_response.h"
#include "runtime/loopback_listener.h"

namespace moatless::runtime {
namespace {

constexpr std::string_view kListenerPrefix = "rapi:";

http::Response ApiError(http::HttpStatus status, std::string_view type, std::string_view message) {
  return http::JsonResponse(status,
                            boost::json::object{{"errorMessage", message}, {"errorType", type}});
}

http::Response Accepted() {
  return http::JsonResponse(http::HttpStatus::accepted, std::string(R"({"status":"OK"})"));
}

}  // namespace

// ---- RuntimeChannel --------------------------------------------------------------------------

void RuntimeChannel::Deliver(Invocation invocation, InvocationDone done) {
  std::unique_lock lock(mu_);
  if (!failed_.ok() || init_error_) {
    const core::Result<InvocationResult> result = init_error_
                                                      ? core::Result<InvocationResult>(*init_error_)
                                                      : core::Result<InvocationResult>(failed_);
    lock.unlock();
    done(result);
    return;
  }
  MOATLESS_CHECK(!done_, "RuntimeChannel::Deliver while an invocation is in progress");
  queued_ = std::move(invocation);
  done_ = std::move(done);
  if (waiter_) http::asio::post(waiter_->get_executor(), [t = waiter_] { t->cancel(); });
}

void RuntimeChannel::Fail(const core::Status& why) {
  std::unique_lock lock(mu_);
  if (failed_.ok()) failed_ = why;
  InvocationDone done = std::move(done_);
  done_ = nullptr;
  queued_.reset();
  in_progress_.clear();
  if (waiter_) http::asio::post(waiter_->get_executor(), [t = waiter_] { t->cancel(); });
  lock.unlock();
  if (done) done(why);
}

std::optional<std::chrono::steady_clock::time_point> RuntimeChannel::fetched_at() const {
  std::lock_guard lock(mu_);
  return fetched_at_;
}

bool RuntimeChannel::idle() const {
  std::lock_guard lock(mu_);
  return waiting_ && !queued_ && in_progress_.empty() && failed_.ok();
}

http::asio::awaitable<std::optional<Invocation>> RuntimeChannel::Next() {
  const auto executor = co_await http::asio::this_coro::executor;
  for (;;) {
    auto timer = std::make_shared<http::asio::steady_timer>(
        executor, http::asio::steady_timer::time_point::max());
    {
      std::lock_guard lock(mu_);
      if (!failed_.ok()) co_return std::nullopt;
      if (queued_) {
        Invocation next = std::move(*queued_);
        queued_.reset();
        in_progress_ = next.request_id;
        fetched_at_ = std::chrono::steady_clock::now();
        waiting_ = false;
        waiter_.reset();
        co_return next;
      }
      // A runtime asking again has given up on what it was doing (it cannot answer twice).
      waiting_ = true;
      waiter_ = timer;
    }
    boost::system::error_code ec;
    co_await timer->async_wait(http::asio::redirect_error(http::asio::use_awaitable, ec));
    std::lock_guard lock(mu_);
    if (waiter_ == timer) {
      waiter_.reset();
      waiting_ = false;
    }
  }
}

bool RuntimeChannel::Complete(const std::string& request_id, InvocationResult result) {
  std::unique_lock lock(mu_);
  if (request_id.empty() || request_id != in_progress_ || !done_) return false;
  in_progress_.clear();
  InvocationDone done = std::move(done_);
  done_ = nullptr;
  lock.unlock();
  done(std::move(result));
  return true;
}

void RuntimeChannel::InitError(InvocationResult error) {
  std::unique_lock lock(mu_);
  init_error_ = error;
  InvocationDone done = std::move(done_);
  done_ = nullptr;
  queued_.reset();
  lock.unlock();
  if (done) done(std::move(error));
}

void RuntimeChannel::SetCredentialSource(core::SecretBytes token, CredentialSource source) {
  std::lock_guard lock(mu_);
  credentials_token_ = std::move(token);
  credentials_ = std::move(source);
}

core::Result<ContainerCredentials> RuntimeChannel::Credentials(
    std::string_view authorization) const {
  CredentialSource source;
  {
    std::lock_guard lock(mu_);
    if (!credentials_ || credentials_token_.empty() ||
        !credentials_token_.ConstantTimeEquals(core::SecretBytes(std::string(authorization)))) {
      return core::PermissionDeniedError("missing or wrong authorization token");
    }
    source = credentials_;
  }
  return source();
}

// ---- RuntimeApi ------------------------------------------------------------------------------

RuntimeApi::RuntimeApi(http::IoPool& pool, core::Random& random, const core::Clock& clock,
                       http::Handler services)
    : services_(std::move(services)) {
  const auto add = [this](std::string_view method, std::string_view pattern, http::Handler h) {
    const core::Status added = router_.Add(method, pattern, std::move(h));
    MOATLESS_CHECK(added.ok(), added.ToString());
  };
  add("GET", "/2018-06-01/runtime/invocation/next",
      [this](http::Request& req, http::RequestContext& ctx) { return Next(req, ctx); });
  add("POST", "/2018-06-01/runtime/invocation/{id}/response",
      [this](http::Request& req, http::RequestContext& ctx)
          -> http::asio::awaitable<http::Response> { co_return Post(req, ctx, false); });
  add("POST", "/2018-06-01/runtime/invocation/{id}/error",
      [this](http::Request& req, http::RequestContext& ctx)
          -> http::asio::awaitable<http::Response> { co_return Post(req, ctx, true); });
  add("GET", kCredentialsPath,
      [this](http::Request& req, http::RequestContext& ctx)
          -> http::asio::awaitable<http::Response> { co_return Credentials(req, ctx); });
  add("POST", "/2018-06-01/runtime/init/error",
      [this](http::Request& req, http::RequestContext& ctx)
          -> http::asio::awaitable<http::Response> { co_return InitError(req, ctx); });
  http::ServerOptions options;
  options.random = &random;
  options.clock = &clock;
  // One byte over the payload limit still reads, so that the limit answers 413 itself.
  options.max_body_bytes = kMaxResponsePayloadBytes + 1;
  options.max_requests_per_connection = 0;
  // A runtime frozen between invocations keeps its connection.
  options.idle_timeout = std::chrono::hours(24);
  server_ = std::make_unique<http::Server>(
      pool, options,
      [this](http::Request& req, http::RequestContext& ctx) { return Dispatch(req, ctx); });
}

RuntimeApi::~RuntimeApi() {
  server_->Shutdown(std::chrono::milliseconds(0));
  server_->Wait();
}

core::Result<std::shared_ptr<RuntimeChannel>> RuntimeApi::ListenInCurrentNamespace(
    const std::string& environment_id) {
  ASSIGN_OR_RETURN(const int fd, ListenOnLoopback(kRuntimeApiPort, "the Runtime API"));
  auto channel = std::make_shared<RuntimeChannel>();
  const std::string name = std::string(kListenerPrefix) + environment_id;
  {
    std::lock_guard lock(mu_);
    channels_[name] = channel;
  }
  if (core::Status served = server_->ServeListeningFd(fd, std::nullopt, name); !served.ok()) {
    Forget(environment_id);
    return served;
  }
  return channel;
}

void RuntimeApi::Forget(const std::string& environment_id) {
  std::lock_guard lock(mu_);
  channels_.erase(std::string(kListenerPrefix) + environment_id);
}

http::asio::awaitable<http::Response> RuntimeApi::Dispatch(http::Request& req,
                                                           http::RequestContext& ctx) {
  const std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  const bool ours = path.starts_with("/2018-06-01/") || path == kCredentialsPath;
  if (ours || !services_) co_return co_await router_.Dispatch(req, ctx);
  // Only an environment's own listener gets here: the request comes from inside it.
  if (!ChannelFor(ctx)) {
    co_return ApiError(http::HttpStatus::forbidden, "Forbidden", "unknown execution environment");
  }
  ctx.environment = ctx.listener_name.substr(kListenerPrefix.size());
  co_return co_await services_(req, ctx);
}

http::Response RuntimeApi::Credentials(const http::Request& req, const http::RequestContext& ctx) {
  const std::shared_ptr<RuntimeChannel> channel = ChannelFor(ctx);
  if (!channel) {
    return ApiError(http::HttpStatus::forbidden, "Forbidden", "unknown execution environment");
  }
  const auto authorization = req.find(http::Field::authorization);
  const std::string_view presented =
      authorization == req.end() ? std::string_view() : std::string_view(authorization->value());
  auto creds = channel->Credentials(presented);
  if (!creds.ok()) {
    const bool denied = creds.status().code() == core::StatusCode::kPermissionDenied;
    return ApiError(denied ? http::HttpStatus::forbidden : http::HttpStatus::internal_server_error,
                    denied ? "AccessDenied" : "CredentialsUnavailable", creds.status().message());
  }
  boost::json::object body;
  body["AccessKeyId"] = creds->access_key_id;
  body["SecretAccessKey"] = std::string(creds->secret_access_key.Reveal());
  body["Token"] = creds->session_token;
  body["Expiration"] = core::FormatRfc3339(core::WallTime(std::chrono::seconds(creds->expires_at)));
  http::Response res = http::JsonResponse(http::HttpStatus::ok, body);
  res.set(http::Field::cache_control, "no-store");
  return res;
}

std::shared_ptr<RuntimeChannel> RuntimeApi::ChannelFor(const http::RequestContext& ctx) const {
  std::lock_guard lock(mu_);
  const auto it = channels_.find(ctx.listener_name);
  return it == channels_.end() ? nullptr : it->second;
}

http::asio::awaitable<http::Response> RuntimeApi::Next(http::Request&, http::RequestContext& ctx) {
  const std::shared_ptr<RuntimeChannel> channel = ChannelFor(ctx);
  if (!channel) {
    co_return ApiError(http::HttpStatus::forbidden, "Forbidden", "unknown execution environment");
  }
  std::optional<Invocation> next = co_await channel->Next();
  if (!next) {
    co_return ApiError(http::HttpStatus::internal_server_error, "Runtime.ExitError",
                       "Container error. Non-recoverable state. Runtime should exit promptly.");
  }
  http::Response res = http::JsonResponse(http::HttpStatus::ok, std::move(next->payload));
  res.set("Lambda-Runtime-Aws-Request-Id", next->request_id);
  res.set("Lambda-Runtime-Deadline-Ms", std::to_string(next->deadline_epoch_ms));
  res.set("Lambda-Runtime-Invoked-Function-Arn", next->function_arn);
  if (!next->trace_id.empty()) res.set("Lambda-Runtime-Trace-Id", next->trace_id);
  if (!next->client_context.empty()) {
    res.set("Lambda-Runtime-Client-Context", next->client_context);
  }
  if (!next->cognito_identity.empty()) {
    res.set("Lambda-Runtime-Cognito-Identity", next->cognito_identity);
  }
  co_return res;
}

http::Response RuntimeApi::Post(const http::Request& req, const http::RequestContext& ctx,
                                bool is_error) {
  const std::shared_ptr<RuntimeChannel> channel = ChannelFor(ctx);
  if (!channel) {
    return ApiError(http::HttpStatus::forbidden, "Forbidden", "unknown execution environment");
  }
  const auto id = ctx.path_params.find("id");
  if (!is_error && req.body().size() > kMaxResponsePayloadBytes) {
    // The invocation stays open: the runtime reports the error next.
    return ApiError(http::HttpStatus::payload_too_large, "RequestEntityTooLarge",
                    "Response payload size exceeded maximum allowed payload size (6291456 bytes).");
  }
  InvocationResult result{.is_error = is_error, .body = req.body()};
  if (is_error) {
    const auto type = req.find("Lambda-Runtime-Function-Error-Type");
    result.error_type = type == req.end() ? "Unhandled" : std::string(type->value());
  }
  if (id == ctx.path_params.end() || !channel->Complete(id->second, std::move(result))) {
    return ApiError(http::HttpStatus::forbidden, "InvalidRequestID",
                    "the request id is not the invocation in progress in this environment");
  }
  return Accepted();
}

http::Response RuntimeApi::InitError(const http::Request& req, const http::RequestContext& ctx) {
  const std::shared_ptr<RuntimeChannel> channel = ChannelFor(ctx);
  if (!channel) {
    return ApiError(http::HttpStatus::forbidden, "Forbidden", "unknown execution environment");
  }
  const auto type = req.find("Lambda-Runtime-Function-Error-Type");
  channel->InitError(
      {.is_error = true,
       .body = req.body(),
       .error_type = type == req.end() ? "Runtime.Unknown" : std::string(type->value())});
  return Accepted();
}

}  // namespace moatless::runtime
