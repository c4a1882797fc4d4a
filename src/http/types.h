// The vocabulary of the http module: the request and response types handlers see, the context
// the server attaches to each request, and the Handler signature.
//
// Request and Response are Beast messages with std::string bodies: the server reads a whole body
// (bounded by ServerOptions::max_body_bytes) before it calls a handler, and writes the response the
// handler returns in one go. A Handler is a coroutine that runs on the connection's strand; it may
// co_await anything but must not block the thread (I/O workers are shared by every connection).
// A handler reports expected failures as a response (see status_response.h); an exception that
// escapes it becomes a 500 for that request and never reaches the caller of the server.
// These are plain value types with no synchronisation of their own.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace moatless::http {

namespace asio = boost::asio;
namespace beast = boost::beast;

using Request = beast::http::request<beast::http::string_body>;
using Response = beast::http::response<beast::http::string_body>;
using Verb = beast::http::verb;
using Field = beast::http::field;
using HttpStatus = beast::http::status;

// Values of the `{name}` and `{name+}` segments of the route that matched, percent-decoded.
using PathParams = std::map<std::string, std::string, std::less<>>;

// The process on the other end of a Unix socket, as the kernel reports it (SO_PEERCRED): an
// identity the peer cannot forge.
struct PeerCredentials {
  int pid = 0;
  unsigned uid = 0;
  unsigned gid = 0;
};

struct RequestContext {
  // A UUID v4 drawn from the server's core::Random; also sent as x-amzn-RequestId.
  std::string request_id;
  // "203.0.113.7:51234", "[2001:db8::1]:51234", or "unix" for a Unix socket.
  std::string remote;
  bool tls = false;
  // The name the listener was given (ListenTcp / ListenUnix / ServeListeningFd): later layers use
  // it to tell which endpoint, e.g. which sandbox's socket, a request came through.
  std::string listener_name;
  // Filled by Router::Dispatch.
  PathParams path_params;
  // Set for connections accepted on a Unix socket.
  std::optional<PeerCredentials> peer;
  // The execution environment (a function's sandbox) the connection comes from, when the listener
  // belongs to one: set by the runtime for requests on a sandbox's own in-namespace listener,
  // which nothing outside that sandbox can reach. Empty otherwise.
  std::string environment;
};

using Handler = std::function<asio::awaitable<Response>(Request&, RequestContext&)>;

}  // namespace moatless::http
