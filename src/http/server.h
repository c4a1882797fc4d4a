// Server: an HTTP/1.1 server on Boost.Beast and C++20 coroutines, running on a shared IoPool.
//
// A Server owns its listeners (TCP, Unix, or an already-open listening socket handed over, e.g.
// one opened inside a sandbox's network namespace), each optionally with TLS, and calls one
// Handler for every valid request (use Router::AsHandler to route). Each connection runs as a
// coroutine on its own strand; the handler runs on that strand too. What the server guarantees:
//  - limits and deadlines from ServerOptions, each a total deadline for its phase: oversized
//    header 431, oversized body 413 (a Content-Length over the limit before reading any body),
//    malformed or ambiguous request (smuggling shapes, bad path, missing Host) 400, header or
//    body too slow 408, over max_connections 503; each such answer closes the connection;
//  - keep-alive, up to max_requests_per_connection requests per connection;
//  - every response carries x-amzn-RequestId (a UUID v4 from options.random), Date (from
//    options.clock), Content-Length, and no Server header unless configured; HEAD responses
//    carry the headers only;
//  - a handler that throws yields a 500 for that request and the connection carries on;
//  - options.on_access is called once per response written and once per connection rejected
//    without one (see server_options.h); stats() counts the same events;
//  - on TLS connections every response (the handler's or the server's own) carries
//    Strict-Transport-Security (options.hsts_max_age) unless the handler set one; plaintext
//    connections never do;
//  - on TLS listeners with TlsOptions::request_client_cert, the client's certificate is read
//    once, after the handshake, and every request of the connection gets it in
//    RequestContext::client_cert.
//
// ReloadTls rebuilds the context of every TLS listener from its TlsOptions (the same files, read
// again): new connections handshake with the new certificate, connections already accepted keep
// the context they started with until they close.
//
// Shutdown(drain) stops accepting (new connections are refused), closes idle keep-alive
// connections, lets requests in flight finish with `Connection: close`, and at the drain
// deadline closes whatever remains and cancels its handler (terminal cancellation of the
// coroutine: handlers should let their awaited operations be cancelled). Wait() blocks until
// all of that is over; never call it from an IoPool worker. The destructor shuts down with a
// zero drain deadline and waits if the pool is running.
//
// Listen* and ServeListeningFd may be called from any thread, before or after the pool starts;
// ReloadTls, Shutdown, Wait, WaitFor and stats are thread-safe too.
#pragma once

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/status.h"
#include "http/io_pool.h"
#include "http/server_options.h"
#include "http/tls.h"
#include "http/types.h"

namespace moatless::http {

namespace internal {
class ServerCore;
}

struct ServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_active = 0;  // being served (not counting 503 rejects)
  std::uint64_t responses = 0;           // responses written, handler's or server's own
  std::uint64_t handler_failures = 0;    // handlers that threw (each answered 500)
  std::uint64_t accept_errors = 0;       // e.g. EMFILE; the listener backs off and retries
  std::array<std::uint64_t, kRejectReasonCount> rejects{};  // indexed by RejectReason
};

class Server {
 public:
  // options.random and options.clock must be set (a missing one is a bug: fatal).
  Server(IoPool& pool, ServerOptions options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (an IP literal or a name resolved now; port 0 picks a free port) and serves
  // on it. Returns the bound endpoint. `name` (default "tcp:<endpoint>") is reported in
  // RequestContext and AccessRecord.
  core::Result<boost::asio::ip::tcp::endpoint> ListenTcp(const std::string& host,
                                                         std::uint16_t port,
                                                         std::optional<TlsOptions> tls = {},
                                                         std::string name = "");
  // Binds a Unix socket at `path` with mode 0660. A stale socket file (nobody listening) is
  // replaced; a live one, or any other kind of file, is an error. The file is removed when the
  // server stops listening. `name` defaults to "unix:<path>".
  core::Status ListenUnix(const std::string& path, std::string name = "");
  // Serves on an already bound and listening stream socket (TCP or Unix). The server takes
  // ownership of `fd` whatever the outcome (it is closed on error). `name` defaults to "fd:<n>".
  core::Status ServeListeningFd(int fd, std::optional<TlsOptions> tls = {}, std::string name = "");

  // Re-reads the certificate and key files of every TLS listener and swaps in the new contexts
  // for connections accepted from now on. All or nothing: if any listener's files cannot be
  // loaded (missing, unparsable, a key that does not match, a key file others can read), no
  // listener changes and the error names the listener, the file and what is wrong. OK when the
  // server has no TLS listener. It reads a few small files and parses the keys: cheap enough
  // for an occasional call (a SIGHUP) from an I/O thread.
  core::Status ReloadTls();

  // Starts a graceful shutdown (see above). Later calls do nothing, except that a zero deadline
  // closes everything at once.
  void Shutdown(std::chrono::milliseconds drain_deadline);
  // After Shutdown: blocks until every listener and connection is gone.
  void Wait();
  // Wait() with a timeout; true if drained.
  bool WaitFor(std::chrono::milliseconds timeout);

  ServerStats stats() const;

 private:
  std::shared_ptr<internal::ServerCore> core_;
};

}  // namespace moatless::http
