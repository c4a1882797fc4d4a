// Client: an HTTP/1.1 client for http://, https:// and Unix sockets, with a coroutine API and a
// blocking wrapper for CLIs and tests.
//
// URLs: "http://host[:port]/path?query", "https://..." and, for Unix sockets, the socket path
// percent-encoded as the host of "http+unix://" (or "https+unix://"):
// "http+unix://%2Frun%2Fmoatless.sock/healthz". https verifies the server's chain against
// ClientOptions::ca_file (or the system store) and its host name (DNS or IP SAN), and sends SNI;
// TLS 1.2 is the minimum. Every phase is bounded: resolve + connect + handshake by
// connect_timeout, sending the request and reading the whole response by read_timeout, and the
// response header and body by the size limits. Failures are Status values: DeadlineExceeded for a
// timeout, PayloadTooLarge for a response over a limit, Unavailable for network and TLS errors,
// InvalidArgument for a bad URL. Nothing throws.
//
// A Client is an immutable configuration (it holds the TLS context) and is thread-safe; copy it
// freely. A ClientConnection is one connection for several requests in sequence (keep-alive); it
// runs on its own strand, so it can be awaited from any executor, but one request at a time.
// FetchBlocking runs a private io_context on the calling thread: do not call it from an I/O
// worker of a pool that the target server needs.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "http/types.h"

namespace boost::asio::ssl {
class context;
}

namespace moatless::http {

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{10'000};  // resolve, connect and TLS handshake
  std::chrono::milliseconds read_timeout{60'000};     // send the request, read the whole response
  std::size_t max_response_header_bytes = 64 * 1024;
  std::size_t max_response_body_bytes = 64 * 1024 * 1024;
  std::string ca_file;     // PEM trust anchors for https; empty: the system store
  bool verify_tls = true;  // chain and host name; off only for tests against throwaway certs
};

struct ParsedUrl {
  bool tls = false;
  std::string host;  // for TCP: a name or IP address (no brackets)
  std::uint16_t port = 0;
  std::string unix_path;  // for http+unix / https+unix
  std::string target;     // "/path?query", as encoded in the URL
  std::string host_header;
};
core::Result<ParsedUrl> ParseUrl(std::string_view url);

// A request with method, target and, when `body` is not empty, its Content-Type.
Request MakeRequest(Verb method, std::string_view target = "/", std::string body = {},
                    std::string_view content_type = {});

class ClientConnection {
 public:
  ~ClientConnection();
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Sends `request` (Host is filled in if missing; its target is used as is) and reads the
  // response. After an error, or a response that closes the connection, is_open() is false.
  asio::awaitable<core::Result<Response>> RoundTrip(Request request);
  bool is_open() const;

  struct Impl;
  explicit ClientConnection(std::shared_ptr<Impl> impl);

 private:
  std::shared_ptr<Impl> impl_;
};

class Client {
 public:
  // InvalidArgument if the CA file cannot be loaded.
  static core::Result<Client> Create(ClientOptions options = {});

  // Opens a connection to the URL's server (the URL's path is ignored).
  asio::awaitable<core::Result<std::unique_ptr<ClientConnection>>> Connect(std::string url) const;
  // One request on a fresh connection, closed afterwards. The request's target is replaced by
  // the URL's path and query.
  // The Client must outlive the returned awaitable.
  asio::awaitable<core::Result<Response>> Fetch(std::string url, Request request) const;
  core::Result<Response> FetchBlocking(std::string_view url, Request request) const;

  const ClientOptions& options() const { return options_; }

 private:
  Client(ClientOptions options, std::shared_ptr<boost::asio::ssl::context> tls)
      : options_(std::move(options)), tls_(std::move(tls)) {}
  ClientOptions options_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
};

}  // namespace moatless::http
