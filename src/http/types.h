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
#include <memory>
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

// The certificate a TLS client presented (TlsOptions::request_client_cert), as API Gateway's
// requestContext.authentication.clientCert describes it. The TLS layer accepted it without
// judging its chain: it proves only that the client holds the certificate's key. Whoever
// trusts it must verify leaf_pem + chain_pem against a truststore first.
struct ClientCertificate {
  std::string leaf_pem;       // the client's own certificate, PEM
  std::string chain_pem;      // the other certificates it sent, PEM, concatenated; may be empty
  std::string subject_dn;     // RFC 2253 form, e.g. "CN=client,O=Example"
  std::string issuer_dn;      // RFC 2253 form
  std::string serial_number;  // lower-case hex bytes separated by ':', e.g. "0a:1b:2c"
  std::string not_before;     // ASN1_TIME_print form, e.g. "May 28 12:30:02 2019 GMT"
  std::string not_after;
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
  // The client's certificate, captured once per TLS connection after its handshake; shared by
  // every request of the connection. Null on plaintext connections, on listeners that do not ask
  // for one, and when the client sent none.
  std::shared_ptr<const ClientCertificate> client_cert;
};

using Handler = std::function<asio::awaitable<Response>(Request&, RequestContext&)>;

}  // namespace moatless::http
