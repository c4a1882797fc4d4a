// The Lambda Runtime API (2018-06-01), served to each execution environment on a listening socket
// opened inside that environment's own network namespace (127.0.0.1:9001 there), so the
// connection itself says which environment is calling: an environment can only fetch its own
// invocations and answer them, and a request id that is not the one it is working on gets 403.
//
//   GET  /2018-06-01/runtime/invocation/next            long poll; the event and its headers
//   POST /2018-06-01/runtime/invocation/{id}/response   202; 413 above the payload limit
//   POST /2018-06-01/runtime/invocation/{id}/error      202; Lambda-Runtime-Function-Error-Type
//   POST /2018-06-01/runtime/init/error                 202; the first invocation fails with it
//   GET  /moatless/credentials                           the environment's role credentials, for
//                                                        the AWS SDKs' container-credentials
//                                                        provider (Authorization: its token)
//   anything else                                        the platform's service endpoint (the
//                                                        SDKs' AWS_ENDPOINT_URL), with
//                                                        RequestContext::environment set
//
// Threading: RuntimeApi and RuntimeChannel are thread-safe. The HTTP side runs on the IoPool (which
// the owner starts and stops; destroy the RuntimeApi while the pool still runs).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/random.h"
#include "core/secret_bytes.h"
#include "core/status.h"
#include "http/io_pool.h"
#include "http/router.h"
#include "http/server.h"

namespace moatless::runtime {

inline constexpr std::uint16_t kRuntimeApiPort = 9001;
inline constexpr std::size_t kMaxResponsePayloadBytes = 6 * 1024 * 1024;

struct Invocation {
  std::string request_id;
  std::string payload;  // the event, JSON
  std::int64_t deadline_epoch_ms = 0;
  std::string function_arn;
  std::string trace_id;
  std::string client_context;    // optional
  std::string cognito_identity;  // optional
};

struct InvocationResult {
  bool is_error = false;
  std::string body;        // the response, or the {errorMessage, errorType, stackTrace} body
  std::string error_type;  // Lambda-Runtime-Function-Error-Type (errors only)
};

using InvocationDone = std::function<void(core::Result<InvocationResult>)>;

inline constexpr std::string_view kCredentialsPath = "/moatless/credentials";

// What the container-credentials endpoint hands out.
struct ContainerCredentials {
  std::string access_key_id;
  core::SecretBytes secret_access_key;
  std::string session_token;
  std::int64_t expires_at = 0;  // unix seconds
};
using CredentialSource = std::function<core::Result<ContainerCredentials>()>;

// One environment's end of the Runtime API.
class RuntimeChannel {
 public:
  // Queues `invocation` for the runtime's /next; `done` is called exactly once, from any thread:
  // with the runtime's response or error, with the runtime's init error, or with the status given
  // to Fail. One invocation at a time (a second Deliver before the first is done is a bug).
  void Deliver(Invocation invocation, InvocationDone done);
  // The environment ended or is being discarded: the invocation in progress fails with `why`, and
  // so does every later Deliver and /next.
  void Fail(const core::Status& why);
  // Whether the runtime is waiting in /next with nothing to do (initialised and idle).
  bool idle() const;
  // When the runtime last fetched an invocation with /next (nullopt: never): where its init ends
  // and an invocation's duration starts.
  std::optional<std::chrono::steady_clock::time_point> fetched_at() const;

  // ---- the HTTP side (RuntimeApi's handlers) ----
  // Waits for the next invocation; nullopt once the channel has failed.
  http::asio::awaitable<std::optional<Invocation>> Next();
  // Completes the invocation `request_id` if it is the one in progress; false otherwise.
  bool Complete(const std::string& request_id, InvocationResult result);
  void InitError(InvocationResult error);

  // The credentials endpoint: requests must carry `token` as their Authorization header.
  void SetCredentialSource(core::SecretBytes token, CredentialSource source);
  // The credentials, if `authorization` is the token; PermissionDenied otherwise.
  core::Result<ContainerCredentials> Credentials(std::string_view authorization) const;

 private:
  mutable std::mutex mu_;
  std::optional<Invocation> queued_;  // delivered, not yet fetched by /next
  std::string in_progress_;           // request id fetched by /next, not yet answered
  InvocationDone done_;
  std::optional<InvocationResult> init_error_;
  core::Status failed_;
  bool waiting_ = false;  // a /next is waiting
  std::optional<std::chrono::steady_clock::time_point> fetched_at_;
  std::shared_ptr<http::asio::steady_timer> waiter_;
  core::SecretBytes credentials_token_;
  CredentialSource credentials_;
};

class RuntimeApi {
 public:
  // `random` and `clock` are the HTTP server's (request ids, Date headers); all must outlive it.
  // `services` answers every other request on an environment's listener (null: 404).
  RuntimeApi(http::IoPool& pool, core::Random& random, const core::Clock& clock,
             http::Handler services = nullptr);
  ~RuntimeApi();
  RuntimeApi(const RuntimeApi&) = delete;
  RuntimeApi& operator=(const RuntimeApi&) = delete;

  // Opens 127.0.0.1:9001 in the calling thread's network namespace — call it from
  // sandbox::Spec::in_network_namespace — and serves the Runtime API there for `environment_id`.
  core::Result<std::shared_ptr<RuntimeChannel>> ListenInCurrentNamespace(
      const std::string& environment_id);
  // Stops routing to the environment (its listener closes when its namespace goes).
  void Forget(const std::string& environment_id);

 private:
  http::asio::awaitable<http::Response> Next(http::Request& req, http::RequestContext& ctx);
  http::Response Post(const http::Request& req, const http::RequestContext& ctx, bool is_error);
  http::Response InitError(const http::Request& req, const http::RequestContext& ctx);
  http::Response Credentials(const http::Request& req, const http::RequestContext& ctx);
  http::asio::awaitable<http::Response> Dispatch(http::Request& req, http::RequestContext& ctx);
  std::shared_ptr<RuntimeChannel> ChannelFor(const http::RequestContext& ctx) const;

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<RuntimeChannel>> channels_;  // by listener name
  http::Router router_;
  http::Handler services_;
  std::unique_ptr<http::Server> server_;
};

}  // namespace moatless::runtime
