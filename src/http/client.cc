#include "http/client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <optional>

#include "http/deadline.h"
#include "http/tls.h"

namespace moatless::http {
namespace {

using GenericProtocol = asio::generic::stream_protocol;
using Socket = GenericProtocol::socket;
using TlsStream = asio::ssl::stream<Socket>;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// co_spawn needs a default-constructible result; Result<T> is not.
struct Outcome {
  core::Status status;
  Response response;
};

std::string Millis(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

}  // namespace

core::Result<ParsedUrl> ParseUrl(std::string_view text) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return core::InvalidArgumentError("malformed URL");
  const boost::urls::url_view& url = *parsed;
  std::string scheme(url.scheme());
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  ParsedUrl out;
  bool unix_socket = false;
  if (scheme == "http") {
  } else if (scheme == "https") {
    out.tls = true;
  } else if (scheme == "http+unix") {
    unix_socket = true;
  } else if (scheme == "https+unix") {
    unix_socket = true;
    out.tls = true;
  } else {
    return core::InvalidArgumentError("unsupported URL scheme '" + scheme + "'");
  }
  if (url.has_userinfo()) {
    return core::InvalidArgumentError("credentials in URLs are not supported");
  }
  if (!url.has_authority() || url.encoded_host().empty()) {
    return core::InvalidArgumentError("URL has no host");
  }
  if (unix_socket) {
    out.unix_path = url.host_address();
    out.host = "localhost";
    out.host_header = "localhost";
  } else {
    out.host = url.host_address();
    out.host_header = std::string(url.encoded_host_and_port());
    if (url.has_port()) {
      const std::string_view digits = url.port();
      unsigned port = 0;
      const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
      if (digits.empty() || err != std::errc() || end != digits.data() + digits.size() ||
          port == 0 || port > 65535) {
        return core::InvalidArgumentError("URL has an invalid port");
      }
      out.port = static_cast<std::uint16_t>(port);
    } else {
      out.port = out.tls ? 443 : 80;
    }
  }
  out.target = url.encoded_path().empty() ? "/" : std::string(url.encoded_path());
  if (url.has_query()) out.target += "?" + std::string(url.encoded_query());
  return out;
}

Request MakeRequest(Verb method, std::string_view target, std::string body,
                    std::string_view content_type) {
  Request req(method, target, 11);
  if (!body.empty() && !content_type.empty()) req.set(Field::content_type, content_type);
  req.body() = std::move(body);
  return req;
}

struct ClientConnection::Impl : std::enable_shared_from_this<ClientConnection::Impl> {
  Impl(asio::any_io_executor ex, ClientOptions opts, std::shared_ptr<asio::ssl::context> ctx,
       ParsedUrl u)
      : strand(std::move(ex)),
        options(std::move(opts)),
        tls_context(std::move(ctx)),
        url(std::move(u)),
        socket(strand) {}

  asio::any_io_executor strand;
  ClientOptions options;
  std::shared_ptr<asio::ssl::context> tls_context;
  ParsedUrl url;
  Socket socket;                   // until the TLS handshake, or for plain HTTP
  std::unique_ptr<TlsStream> tls;  // owns the socket once TLS starts
  std::optional<asio::ip::tcp::resolver> resolver;
  beast::flat_buffer buffer;
  bool open = false;
  bool timed_out = false;

  Socket& Lowest() { return tls ? tls->next_layer() : socket; }

  // Called by the deadline: abandon whatever is under way.
  void Abort() {
    timed_out = true;
    if (resolver) resolver->cancel();
    boost::system::error_code ec;
    Lowest().close(ec);
    open = false;
  }

  void Close() {
    open = false;
    boost::system::error_code ec;
    Lowest().close(ec);
  }

  // Runs `deadline` for the lifetime of one operation.
  struct Watch {
    explicit Watch(const std::shared_ptr<Impl>& impl, std::chrono::milliseconds limit)
        : deadline(std::make_shared<internal::Deadline>(impl->strand)) {
      impl->timed_out = false;
      deadline->ExpiresAfter(limit);
      asio::co_spawn(impl->strand,
                     internal::Deadline::Watch(deadline, deadline.get(), [impl] { impl->Abort(); }),
                     asio::detached);
    }
    ~Watch() { deadline->Stop(); }
    std::shared_ptr<internal::Deadline> deadline;
  };

  core::Status Failure(std::string_view what, const boost::system::error_code& ec,
                       std::chrono::milliseconds limit) {
    open = false;
    const std::string where =
        url.unix_path.empty() ? url.host + ":" + std::to_string(url.port) : "unix:" + url.unix_path;
    if (timed_out) {
      return core::DeadlineExceededError(std::string(what) + " " + where + " timed out after " +
                                         Millis(limit));
    }
    return core::UnavailableError(std::string(what) + " " + where + ": " + ec.message());
  }

  static asio::awaitable<Outcome> DoConnect(std::shared_ptr<Impl> self) {
    Outcome out;
    const auto limit = self->options.connect_timeout;
    Watch watch(self, limit);
    boost::system::error_code ec;
    if (!self->url.unix_path.empty()) {
      self->socket.open(GenericProtocol(AF_UNIX, 0), ec);
      if (!ec) {
        std::tie(ec) = co_await self->socket.async_connect(
            GenericProtocol::endpoint(asio::local::stream_protocol::endpoint(self->url.unix_path)),
            kUseTuple);
      }
    } else {
      self->resolver.emplace(self->strand);
      auto [rec, results] = co_await self->resolver->async_resolve(
          self->url.host, std::to_string(self->url.port), kUseTuple);
      self->resolver.reset();
      ec = rec;
      if (!ec && results.empty()) ec = asio::error::host_not_found;
      if (!ec) {
        for (const auto& entry : results) {
          const auto& ep = entry.endpoint();
          boost::system::error_code open_ec;
          self->socket.close(open_ec);
          self->socket.open(GenericProtocol(ep.protocol().family(), IPPROTO_TCP), open_ec);
          if (open_ec) {
            ec = open_ec;
            continue;
          }
          std::tie(ec) =
              co_await self->socket.async_connect(GenericProtocol::endpoint(ep), kUseTuple);
          if (!ec || self->timed_out) break;
        }
      }
      if (!ec) {
        const int one = 1;
        ::setsockopt(self->socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
    }
    if (ec) {
      out.status = self->Failure("connecting to", ec, limit);
      co_return out;
    }
    if (self->url.tls) {
      self->tls = std::make_unique<TlsStream>(std::move(self->socket), *self->tls_context);
      SSL* ssl = self->tls->native_handle();
      boost::system::error_code address_ec;
      asio::ip::make_address(self->url.host, address_ec);
      if (address_ec) {  // SNI carries names only, never addresses
        SSL_set_tlsext_host_name(ssl, self->url.host.c_str());
      }
      if (self->options.verify_tls) {
        self->tls->set_verify_callback(asio::ssl::host_name_verification(self->url.host));
      }
      std::tie(ec) = co_await self->tls->async_handshake(asio::ssl::stream_base::client, kUseTuple);
      if (ec) {
        out.status = self->Failure("TLS handshake with", ec, limit);
        co_return out;
      }
    }
    self->open = true;
    co_return out;
  }

  template <typename Stream>
  static asio::awaitable<Outcome> Exchange(std::shared_ptr<Impl> self, Stream& stream,
                                           Request& request) {
    Outcome out;
    const auto limit = self->options.read_timeout;
    auto [wec, written] = co_await beast::http::async_write(stream, request, kUseTuple);
    if (wec) {
      out.status = self->Failure("sending the request to", wec, limit);
      co_return out;
    }
    for (;;) {
      beast::http::response_parser<beast::http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(self->options.max_response_header_bytes));
      parser.body_limit(self->options.max_response_body_bytes);
      if (request.method() == Verb::head) parser.skip(true);
      auto [rec, read] = co_await beast::http::async_read(stream, self->buffer, parser, kUseTuple);
      if (rec == beast::http::error::body_limit || rec == beast::http::error::header_limit) {
        self->open = false;
        out.status = core::PayloadTooLargeError(
            rec == beast::http::error::body_limit
                ? "response body exceeds " + std::to_string(self->options.max_response_body_bytes) +
                      " bytes"
                : "response header exceeds " +
                      std::to_string(self->options.max_response_header_bytes) + " bytes");
        co_return out;
      }
      if (rec) {
        out.status = self->Failure("reading the response from", rec, limit);
        co_return out;
      }
      out.response = parser.release();
      const unsigned code = out.response.result_int();
      // Interim responses (100 Continue, 103 Early Hints) precede the real one.
      if (code >= 100 && code < 200 && code != 101) continue;
      if (!out.response.keep_alive()) self->open = false;
      co_return out;
    }
  }

  static asio::awaitable<Outcome> DoRoundTrip(std::shared_ptr<Impl> self, Request request) {
    Outcome out;
    if (!self->open) {
      out.status = core::UnavailableError("the connection is closed");
      co_return out;
    }
    if (request.find(Field::host) == request.end()) request.set(Field::host, self->url.host_header);
    if (!request.body().empty() || request.method() == Verb::post ||
        request.method() == Verb::put || request.method() == Verb::patch) {
      request.erase(Field::transfer_encoding);
      request.content_length(request.body().size());
    }
    Watch watch(self, self->options.read_timeout);
    if (self->tls) {
      out = co_await Exchange(self, *self->tls, request);
    } else {
      out = co_await Exchange(self, self->socket, request);
    }
    if (!self->open) self->Close();
    co_return out;
  }
};

ClientConnection::ClientConnection(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

ClientConnection::~ClientConnection() {
  asio::dispatch(impl_->strand, [impl = impl_] { impl->Close(); });
}

bool ClientConnection::is_open() const { return impl_->open; }

asio::awaitable<core::Result<Response>> ClientConnection::RoundTrip(Request request) {
  Outcome out = co_await asio::co_spawn(impl_->strand, Impl::DoRoundTrip(impl_, std::move(request)),
                                        asio::use_awaitable);
  if (!out.status.ok()) co_return out.status;
  co_return std::move(out.response);
}

core::Result<Client> Client::Create(ClientOptions options) {
  auto tls = MakeClientTlsContext(options.ca_file, options.verify_tls);
  if (!tls.ok()) return tls.status();
  return Client(std::move(options), std::move(tls).value());
}

asio::awaitable<core::Result<std::unique_ptr<ClientConnection>>> Client::Connect(
    std::string url) const {
  auto parsed = ParseUrl(url);
  if (!parsed.ok()) co_return parsed.status();
  auto strand = asio::make_strand(co_await asio::this_coro::executor);
  auto impl =
      std::make_shared<ClientConnection::Impl>(strand, options_, tls_, std::move(parsed).value());
  Outcome out =
      co_await asio::co_spawn(strand, ClientConnection::Impl::DoConnect(impl), asio::use_awaitable);
  auto connection = std::make_unique<ClientConnection>(std::move(impl));
  if (!out.status.ok()) co_return out.status;
  co_return std::move(connection);
}

asio::awaitable<core::Result<Response>> Client::Fetch(std::string url, Request request) const {
  auto parsed = ParseUrl(url);
  if (!parsed.ok()) co_return parsed.status();
  request.target(parsed->target);
  if (request.find(Field::connection) == request.end()) request.keep_alive(false);
  auto connection = co_await Connect(std::move(url));
  if (!connection.ok()) co_return connection.status();
  co_return co_await (*connection)->RoundTrip(std::move(request));
}

core::Result<Response> Client::FetchBlocking(std::string_view url, Request request) const {
  asio::io_context io(1);
  std::optional<core::Result<Response>> result;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        result.emplace(co_await Fetch(std::string(url), std::move(request)));
      },
      [&](std::exception_ptr e) {
        if (e && !result) result.emplace(core::InternalError("HTTP client failed unexpectedly"));
      });
  io.run();
  if (!result) return core::InternalError("HTTP client did not complete");
  return std::move(*result);
}

}  // namespace moatless::http
