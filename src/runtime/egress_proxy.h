// EgressProxy: the HTTP/HTTPS forward proxy a function with an egress allowlist reaches at
// 127.0.0.1:9002 inside its own network namespace (its HTTP_PROXY and HTTPS_PROXY), and its only
// way out of that namespace.
//
// The listening socket is opened in the sandbox's namespace (ListenInCurrentNamespace, called from
// sandbox::Spec::in_network_namespace, as RuntimeApi::ListenInCurrentNamespace is), so only that
// function can connect to it and the listener says which environment is calling. The outbound
// connections are made by the IoPool's threads, which are in the host's namespace. For each
// request the proxy:
//  - parses it with Beast (header limit: 431; malformed: 400; origin-form "GET /x": 400);
//  - `CONNECT host:port` is scheme https, an absolute-form request `GET http://host[:port]/path`
//    (any method) is scheme http (absolute https:// URLs are refused with 400: use CONNECT);
//  - checks the destination against the allowlist (EgressAllowlist::Allows), resolves the name
//    itself, and checks EVERY resolved address (EgressAllowlist::AllowsAddress): one refused
//    address refuses the request, so a DNS answer cannot slip a restricted address in beside a
//    public one, and it connects only to addresses it checked. A refusal is a 403 with a short
//    text body, and on_refusal is called with the destination and the reason (never headers,
//    bodies or credentials);
//  - resolution failure: 502; connection refused or unreachable: 502; connect timeout: 504;
//  - CONNECT: answers `200 Connection established` and relays bytes both ways (half-closes are
//    passed on) until both sides are done, either fails, or idle_timeout passes without traffic;
//  - http: forwards the request in origin-form (hop-by-hop headers, Proxy-Authorization and
//    Proxy-Connection removed, Host set from the URL, `Connection: close` to the origin), streams
//    the response back with `Connection: close` and closes the client connection. Redirects are
//    passed back, not followed: the client follows them with a new request, checked again.
//
// Ownership and threading: the proxy runs on the IoPool it is given (the owner starts and stops
// the pool; destroy the proxy while the pool still runs, from a thread that is not one of its
// workers, so that the destructor can wait for every connection to end and on_refusal is never
// called after it returns). ListenInCurrentNamespace, Forget and stats are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/status.h"
#include "http/io_pool.h"
#include "runtime/egress.h"

namespace moatless::runtime {

inline constexpr std::uint16_t kEgressProxyPort = 9002;

// A refused attempt, for the platform's log.
struct EgressRefusal {
  std::string environment_id;
  std::string function;  // as given to ListenInCurrentNamespace
  std::string scheme;    // "http" or "https"
  std::string host;      // as the function asked for it (lower case; IPv6 without brackets)
  std::uint16_t port = 0;
  // "not in the egress allowlist", or "restricted address 169.254.169.254 not named in the
  // egress allowlist".
  std::string reason;
};

struct EgressProxyOptions {
  // Called once per refused request, from an I/O thread; must not block.
  std::function<void(const EgressRefusal&)> on_refusal;
  std::chrono::milliseconds connect_timeout{10'000};   // resolve and connect
  std::chrono::milliseconds idle_timeout{5 * 60'000};  // no byte either way: close
  std::chrono::milliseconds header_timeout{30'000};    // the request header must arrive by then
  std::size_t max_header_bytes = 16 * 1024;            // request and response headers
};

struct EgressProxyStats {
  std::uint64_t connections = 0;        // client connections accepted
  std::uint64_t refusals = 0;           // 403s (each also reported to on_refusal)
  std::uint64_t outbound_connects = 0;  // connections attempted to destinations
};

class EgressProxy {
 public:
  EgressProxy(http::IoPool& pool, EgressProxyOptions options = {});
  ~EgressProxy();
  EgressProxy(const EgressProxy&) = delete;
  EgressProxy& operator=(const EgressProxy&) = delete;

  // Opens 127.0.0.1:`port` in the calling thread's network namespace and serves the proxy there
  // for `environment_id` (of `function`, named in refusals) with `allowlist`. Returns the bound
  // port (the one picked when `port` is 0, for tests). AlreadyExists if the environment already has
  // a listener; Unavailable if the port cannot be bound.
  core::Result<std::uint16_t> ListenInCurrentNamespace(const std::string& environment_id,
                                                       EgressAllowlist allowlist,
                                                       std::uint16_t port = kEgressProxyPort,
                                                       std::string function = "");

  // Closes the environment's listener (a connection attempt made after Forget returns fails) and
  // every connection and tunnel of the environment (asynchronously, on their I/O threads). An
  // unknown environment is ignored.
  void Forget(const std::string& environment_id);

  EgressProxyStats stats() const;

  class Core;

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace moatless::runtime
