#include "runtime/egress_proxy.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/authority_view.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cctype>
#include <condition_variable>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "runtime/loopback_listener.h"

namespace moatless::runtime {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using ErrorCode = boost::system::error_code;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kChunk = 16 * 1024;
// After an error answer the proxy drops what the client still sends for a short while, so that
// closing with unread data does not reset the connection before the client reads the answer.
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr std::size_t kLingerMaxBytes = 1024 * 1024;

// Where a request wants to go.
struct Destination {
  std::string scheme;  // "http" or "https"
  std::string host;    // lower case; an IPv6 literal without brackets
  std::uint16_t port = 0;
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The host of a parsed authority, for the allowlist and the resolver; nullopt if unusable.
template <typename View>
std::optional<std::string> HostOf(const View& view) {
  switch (view.host_type()) {
    case boost::urls::host_type::name:
    case boost::urls::host_type::ipv4:
    case boost::urls::host_type::ipv6: {
      const std::string_view host = view.encoded_host_address();
      // Percent-encoded names and zone indexes: nothing legitimate needs them here.
      if (host.empty() || host.find('%') != std::string_view::npos) return std::nullopt;
      std::string out = Lower(host);
      if (out.back() == '.') out.pop_back();
      if (out.empty()) return std::nullopt;
      return out;
    }
    default:
      return std::nullopt;
  }
}

template <typename Fields>
void RemoveHopByHop(Fields& fields) {
  std::vector<std::string> listed;
  const auto range = fields.equal_range(bhttp::field::connection);
  for (auto it = range.first; it != range.second; ++it) {
    for (auto token : bhttp::token_list(it->value())) listed.emplace_back(token);
  }
  for (const std::string& name : listed) {
    // Framing stays: the serializer re-frames the body from these.
    if (beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding")) {
      continue;
    }
    fields.erase(name);
  }
  for (const bhttp::field f :
       {bhttp::field::connection, bhttp::field::keep_alive, bhttp::field::proxy_connection,
        bhttp::field::proxy_authorization, bhttp::field::proxy_authenticate, bhttp::field::te,
        bhttp::field::upgrade}) {
    fields.erase(f);
  }
}

std::size_t Count(const bhttp::request_header<>& req, bhttp::field f) {
  const auto range = req.equal_range(f);
  return static_cast<std::size_t>(std::distance(range.first, range.second));
}

// The framing checks Beast does not make (the same as http::ValidateRequest's): two parsers that
// could disagree on where a request ends must never both see it.
std::optional<std::string> FramingProblem(const bhttp::request_header<>& req) {
  if (req.version() != 10 && req.version() != 11) return "unsupported HTTP version";
  const std::size_t lengths = Count(req, bhttp::field::content_length);
  const std::size_t encodings = Count(req, bhttp::field::transfer_encoding);
  if (lengths > 1) return "more than one Content-Length header";
  if (encodings > 1) return "more than one Transfer-Encoding header";
  if (encodings == 1) {
    if (lengths == 1) return "both Content-Length and Transfer-Encoding";
    if (!beast::iequals(req[bhttp::field::transfer_encoding], "chunked")) {
      return "unsupported Transfer-Encoding (only chunked is accepted)";
    }
  }
  return std::nullopt;
}

}  // namespace

namespace egress_internal {
struct Environment;
class Connection;
}  // namespace egress_internal
using egress_internal::Connection;
using egress_internal::Environment;

class EgressProxy::Core : public std::enable_shared_from_this<EgressProxy::Core> {
 public:
  Core(http::IoPool& pool_in, EgressProxyOptions options_in)
      : pool(pool_in), options(std::move(options_in)) {}

  http::IoPool& pool;
  const EgressProxyOptions options;
  std::atomic<std::uint64_t> connections{0}, refusals{0}, outbound_connects{0};

  core::Result<std::uint16_t> Listen(const std::string& environment_id, std::string function,
                                     EgressAllowlist allowlist, std::uint16_t port);
  void Forget(const std::string& environment_id);
  void Shutdown();

  void Refused(const EgressRefusal& refusal) {
    refusals.fetch_add(1, std::memory_order_relaxed);
    if (!options.on_refusal) return;
    try {
      options.on_refusal(refusal);
    } catch (...) {  // a failing hook must not fail the proxy
    }
  }

  // Every accept loop and connection holds one while it exists, so that Shutdown can wait for
  // all of them: after that nothing calls on_refusal.
  class LiveToken {
   public:
    explicit LiveToken(std::shared_ptr<Core> core) : core_(std::move(core)) {
      std::lock_guard lock(core_->live_mu_);
      ++core_->live_;
    }
    ~LiveToken() {
      std::lock_guard lock(core_->live_mu_);
      if (--core_->live_ == 0) core_->drained_.notify_all();
    }
    LiveToken(const LiveToken&) = delete;
    LiveToken& operator=(const LiveToken&) = delete;
    Core& core() const { return *core_; }
    const std::shared_ptr<Core>& shared() const { return core_; }

   private:
    std::shared_ptr<Core> core_;
  };

 private:
  void Close(const std::shared_ptr<Environment>& env);

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Environment>> environments_;
  bool shut_down_ = false;

  std::mutex live_mu_;
  std::condition_variable drained_;
  std::size_t live_ = 0;
};

using Core = EgressProxy::Core;

namespace egress_internal {

// One environment's listener and connections.
struct Environment {
  Environment(std::string id_in, std::string function_in, EgressAllowlist allowlist_in,
              asio::any_io_executor strand)
      : id(std::move(id_in)),
        function(std::move(function_in)),
        allowlist(std::move(allowlist_in)),
        acceptor(std::move(strand)) {}

  const std::string id;
  const std::string function;
  const EgressAllowlist allowlist;
  tcp::acceptor acceptor;  // used on its strand only

  std::mutex mu;
  bool closed = false;
  std::uint64_t next_id = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<Connection>> connections;
};

// One client connection: one request, and then a tunnel or one forwarded exchange. Everything
// runs on the client socket's executor: one pool context, run by one thread, so no strand.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<Core> core, std::shared_ptr<Environment> env, tcp::socket client)
      : live_(std::move(core)),
        env_(std::move(env)),
        executor_(client.get_executor()),
        client_(std::move(client)),
        upstream_(executor_),
        resolver_(executor_),
        timer_(executor_),
        client_buffer_(live_.core().options.max_header_bytes + kChunk) {}

  ~Connection() {
    std::lock_guard lock(env_->mu);
    env_->connections.erase(id_);
  }

  void Start() {
    {
      std::lock_guard lock(env_->mu);
      if (env_->closed) return;  // forgotten meanwhile: the socket closes with this object
      id_ = ++env_->next_id;
      env_->connections.emplace(id_, weak_from_this());
    }
    auto self = shared_from_this();
    asio::co_spawn(executor_, Watch(self), asio::detached);
    asio::co_spawn(executor_, Run(self), asio::detached);
  }

  // Thread-safe: closes both sides on the connection's thread.
  void Close() {
    asio::dispatch(executor_, [self = shared_from_this()] {
      self->closed_ = true;
      self->CloseSockets();
    });
  }

 private:
  const EgressProxyOptions& opts() const { return live_.core().options; }

  void CloseSockets() {
    ErrorCode ignored;
    client_.close(ignored);
    upstream_.close(ignored);
    resolver_.cancel();
  }

  // Cancels the operation under way (only one side ever waits outside a tunnel; in a tunnel both
  // pumps fail and close both sockets). The sockets stay open so that a timeout can be answered.
  void CancelIo() {
    ErrorCode ignored;
    client_.cancel(ignored);
    upstream_.cancel(ignored);
    resolver_.cancel();
  }

  // The watchdog: one deadline at a time. Arm() moves it (an idle timer, re-armed on progress, or
  // a phase deadline); when it passes, the operation under way is cancelled and expired_ tells
  // why. Everything runs on one thread, so an expiry always finds an operation to cancel.
  void Arm(SteadyClock::duration d) {
    expired_ = false;
    deadline_ = SteadyClock::now() + d;
    if (deadline_ < timer_.expiry()) timer_.cancel();
  }

  static asio::awaitable<void> Watch(std::shared_ptr<Connection> self) {
    while (!self->stopped_) {
      if (self->deadline_ <= SteadyClock::now()) {
        self->deadline_ = SteadyClock::time_point::max();
        self->expired_ = true;
        self->CancelIo();
        continue;
      }
      self->timer_.expires_at(self->deadline_);
      co_await self->timer_.async_wait(kUseTuple);
    }
  }

  static asio::awaitable<void> Run(std::shared_ptr<Connection> self) {
    try {
      co_await self->Serve();
    } catch (...) {
      // Serve reports its own failures; an exception means the connection cannot go on.
    }
    self->stopped_ = true;
    self->timer_.cancel();
    self->CloseSockets();
  }

  asio::awaitable<void> Serve() {
    Arm(opts().header_timeout);
    bhttp::request_parser<bhttp::buffer_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(opts().max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    auto [ec, header_bytes] =
        co_await bhttp::async_read_header(client_, client_buffer_, parser, kUseTuple);
    if (ec) {
      if (closed_) co_return;
      if (expired_) {
        if (header_bytes == 0 && client_buffer_.size() == 0) co_return;
        co_await Answer(bhttp::status::request_timeout,
                        "the request header did not arrive in time");
        co_return;
      }
      if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
        co_await Answer(
            bhttp::status::request_header_fields_too_large,
            "the request header exceeds " + std::to_string(opts().max_header_bytes) + " bytes");
        co_return;
      }
      if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
          ec != bhttp::error::end_of_stream) {
        co_await Answer(bhttp::status::bad_request, "malformed request");
      }
      co_return;
    }
    const auto& req = parser.get();
    if (auto problem = FramingProblem(req)) {
      co_await Answer(bhttp::status::bad_request, "malformed request: " + *problem);
      co_return;
    }
    if (req.method() == bhttp::verb::connect) {
      co_await Tunnel(parser);
      co_return;
    }
    const std::string_view target = req.target();
    if (target.empty() || target.front() == '/' || target == "*") {
      co_await Answer(bhttp::status::bad_request,
                      "this is an HTTP proxy: send an absolute URL (http://host/path), or CONNECT "
                      "host:port for https");
      co_return;
    }
    auto url = boost::urls::parse_absolute_uri(target);
    if (!url) {
      co_await Answer(bhttp::status::bad_request, "malformed request target");
      co_return;
    }
    if (url->scheme_id() == boost::urls::scheme::https) {
      co_await Answer(bhttp::status::bad_request, "use CONNECT host:443 for https");
      co_return;
    }
    if (url->scheme_id() != boost::urls::scheme::http) {
      co_await Answer(bhttp::status::bad_request, "only http:// URLs and CONNECT are proxied");
      co_return;
    }
    co_await Forward(parser, *url);
  }

  // ---- CONNECT ----

  asio::awaitable<void> Tunnel(bhttp::request_parser<bhttp::buffer_body>& parser) {
    const std::string_view target = parser.get().target();
    auto authority = boost::urls::parse_authority(target);
    std::optional<std::string> host;
    if (authority) host = HostOf(*authority);
    if (!authority || authority->has_userinfo() || !host || !authority->has_port() ||
        authority->port_number() == 0) {
      co_await Answer(bhttp::status::bad_request, "CONNECT needs a target host:port");
      co_return;
    }
    if (!parser.is_done()) {
      co_await Answer(bhttp::status::bad_request, "a CONNECT request has no body");
      co_return;
    }
    const Destination destination{
        .scheme = "https", .host = *host, .port = authority->port_number()};
    const bool connected = co_await ConnectUpstream(destination);
    if (!connected) co_return;

    bhttp::response<bhttp::empty_body> established{bhttp::status::ok, 11};
    established.reason("Connection established");
    Arm(opts().idle_timeout);
    auto [wec, written] = co_await bhttp::async_write(client_, established, kUseTuple);
    if (wec) co_return;
    // Bytes the client sent after the CONNECT header (e.g. a TLS ClientHello) go first.
    if (client_buffer_.size() > 0) {
      auto [pec, pushed] = co_await asio::async_write(upstream_, client_buffer_.data(), kUseTuple);
      if (pec) co_return;
      client_buffer_.consume(pushed);
    }
    using namespace asio::experimental::awaitable_operators;
    co_await (Pump(client_, upstream_) && Pump(upstream_, client_));
  }

  // Copies `from` to `to` until `from` ends (passed on as a half-close) or either fails (both
  // close).
  asio::awaitable<void> Pump(tcp::socket& from, tcp::socket& to) {
    std::array<char, kChunk> chunk;
    for (;;) {
      auto [rec, n] = co_await from.async_read_some(asio::buffer(chunk), kUseTuple);
      if (rec) {
        ErrorCode ignored;
        if (rec == asio::error::eof) {
          to.shutdown(tcp::socket::shutdown_send, ignored);
        } else {
          CloseSockets();
        }
        co_return;
      }
      Arm(opts().idle_timeout);
      auto [wec, written] =
          co_await asio::async_write(to, asio::buffer(chunk.data(), n), kUseTuple);
      if (wec) {
        CloseSockets();
        co_return;
      }
      Arm(opts().idle_timeout);
    }
  }

  // ---- absolute-form http ----

  asio::awaitable<void> Forward(bhttp::request_parser<bhttp::buffer_body>& parser,
                                const boost::urls::url_view& url) {
    const std::optional<std::string> host = HostOf(url);
    if (!host || url.has_userinfo() || (url.has_port() && url.port_number() == 0)) {
      co_await Answer(bhttp::status::bad_request, "the URL needs a host (and no userinfo)");
      co_return;
    }
    const Destination destination{.scheme = "http",
                                  .host = *host,
                                  .port = url.has_port() ? url.port_number() : std::uint16_t{80}};
    const bool connected = co_await ConnectUpstream(destination);
    if (!connected) co_return;

    auto& req = parser.get();
    const bool head = req.method() == bhttp::verb::head;
    const bool expects_continue = beast::iequals(req[bhttp::field::expect], "100-continue");
    // `url` views the request's target: copy what is needed before the request changes.
    std::string origin_target(url.encoded_target());
    if (origin_target.empty() || origin_target.front() != '/') origin_target.insert(0, "/");
    const std::string host_header(url.encoded_host_and_port());
    req.target(origin_target);
    RemoveHopByHop(req);
    req.set(bhttp::field::host, host_header);
    req.set(bhttp::field::connection, "close");
    if (expects_continue) {
      // The proxy answers the client's Expect itself and sends the origin the whole request.
      req.erase(bhttp::field::expect);
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      Arm(opts().idle_timeout);
      auto [cec, cn] = co_await asio::async_write(
          client_, asio::buffer(kContinue.data(), kContinue.size()), kUseTuple);
      if (cec) co_return;
    }
    const ErrorCode sent = co_await Relay(client_, client_buffer_, parser, upstream_);
    if (sent) co_return;

    beast::flat_buffer upstream_buffer(opts().max_header_bytes + kChunk);
    std::optional<bhttp::response_parser<bhttp::buffer_body>> response;
    for (;;) {
      response.emplace();
      response->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(
          opts().max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
      response->body_limit(std::numeric_limits<std::uint64_t>::max());
      if (head) response->skip(true);
      Arm(opts().idle_timeout);
      auto [rec, rn] =
          co_await bhttp::async_read_header(upstream_, upstream_buffer, *response, kUseTuple);
      if (rec) {
        if (closed_) co_return;
        if (expired_) {
          co_await Answer(bhttp::status::gateway_timeout, "the destination did not answer in time");
        } else {
          co_await Answer(bhttp::status::bad_gateway, "the destination's response is unusable");
        }
        co_return;
      }
      const unsigned status = response->get().result_int();
      if (status == 101) {
        co_await Answer(bhttp::status::bad_gateway, "the destination switched protocols");
        co_return;
      }
      if (status >= 200) break;  // interim 1xx responses are the proxy's to drop
    }
    auto& res = response->get();
    RemoveHopByHop(res);
    res.set(bhttp::field::connection, "close");
    const ErrorCode relayed = co_await Relay(upstream_, upstream_buffer, *response, client_);
    if (relayed) co_return;
    co_await CloseGracefully();
  }

  // Streams a message whose header `parser` has read from `from` to `to`, header first (as
  // modified), then its body as it arrives; the serializer frames it from the header's fields.
  template <bool kIsRequest>
  asio::awaitable<ErrorCode> Relay(tcp::socket& from, beast::flat_buffer& buffer,
                                   bhttp::parser<kIsRequest, bhttp::buffer_body>& parser,
                                   tcp::socket& to) {
    bhttp::serializer<kIsRequest, bhttp::buffer_body> serializer(parser.get());
    std::array<char, kChunk> chunk;
    auto& body = parser.get().body();
    for (;;) {
      if (!parser.is_done()) {
        body.data = chunk.data();
        body.size = chunk.size();
        Arm(opts().idle_timeout);
        auto [rec, rn] = co_await bhttp::async_read(from, buffer, parser, kUseTuple);
        if (rec == bhttp::error::need_buffer) rec = {};
        if (rec) co_return rec;
        body.size = chunk.size() - body.size;
        body.data = chunk.data();
        body.more = !parser.is_done();
      } else {
        body.data = nullptr;
        body.size = 0;
        body.more = false;
      }
      Arm(opts().idle_timeout);
      auto [wec, wn] = co_await bhttp::async_write(to, serializer, kUseTuple);
      if (wec == bhttp::error::need_buffer) wec = {};
      if (wec) co_return wec;
      if (serializer.is_done() || (parser.is_done() && !body.more && body.size == 0)) break;
    }
    co_return ErrorCode();
  }

  // ---- checking and connecting ----

  // Checks the destination, resolves it, checks every address and connects. On any failure it
  // answers the client (403, 502 or 504) and returns false.
  asio::awaitable<bool> ConnectUpstream(const Destination& destination) {
    const EgressAllowlist& allowlist = env_->allowlist;
    if (!allowlist.Allows(destination.scheme, destination.host, destination.port)) {
      co_await Refuse(destination, "not in the egress allowlist");
      co_return false;
    }
    Arm(opts().connect_timeout);
    std::vector<tcp::endpoint> endpoints;
    ErrorCode literal_ec;
    const asio::ip::address literal = asio::ip::make_address(destination.host, literal_ec);
    if (!literal_ec) {
      endpoints.emplace_back(literal, destination.port);
    } else {
      auto [rec, results] =
          co_await resolver_.async_resolve(destination.host, std::to_string(destination.port),
                                           tcp::resolver::numeric_service, kUseTuple);
      if (closed_) co_return false;
      if (rec || results.empty()) {
        if (expired_) {
          co_await Answer(bhttp::status::gateway_timeout,
                          "resolving " + destination.host + " timed out");
        } else {
          co_await Answer(bhttp::status::bad_gateway, "cannot resolve " + destination.host);
        }
        co_return false;
      }
      for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    }
    // Every address, not the first: one restricted address refuses the destination.
    for (const tcp::endpoint& endpoint : endpoints) {
      if (!allowlist.AllowsAddress(destination.scheme, endpoint.address(), destination.host,
                                   destination.port)) {
        co_await Refuse(destination, "restricted address " + endpoint.address().to_string() +
                                         " not named in the egress allowlist");
        co_return false;
      }
    }
    live_.core().outbound_connects.fetch_add(1, std::memory_order_relaxed);
    auto [cec, connected] = co_await asio::async_connect(upstream_, endpoints, kUseTuple);
    if (closed_) co_return false;
    if (cec) {
      if (expired_) {
        co_await Answer(bhttp::status::gateway_timeout,
                        "connecting to " + destination.host + " timed out");
      } else {
        co_await Answer(bhttp::status::bad_gateway,
                        "cannot connect to " + destination.host + ": " + cec.message());
      }
      co_return false;
    }
    (void)connected;
    co_return true;
  }

  asio::awaitable<void> Refuse(const Destination& destination, std::string reason) {
    live_.core().Refused(EgressRefusal{.environment_id = env_->id,
                                       .function = env_->function,
                                       .scheme = destination.scheme,
                                       .host = destination.host,
                                       .port = destination.port,
                                       .reason = reason});
    co_await Answer(bhttp::status::forbidden, destination.scheme + "://" + destination.host + ":" +
                                                  std::to_string(destination.port) +
                                                  " is refused: " + reason + " of this function");
  }

  // Writes a short text answer and closes the connection.
  asio::awaitable<void> Answer(bhttp::status status, std::string text) {
    if (closed_) co_return;
    bhttp::response<bhttp::string_body> res{status, 11};
    res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    res.set(bhttp::field::connection, "close");
    res.body() = "moatless egress proxy: " + text + "\n";
    res.prepare_payload();
    Arm(opts().header_timeout);
    auto [ec, written] = co_await bhttp::async_write(client_, res, kUseTuple);
    if (!ec) co_await CloseGracefully();
  }

  // Sends FIN, then drops what the client still sends for a short while.
  asio::awaitable<void> CloseGracefully() {
    Arm(kLingerTimeout);
    ErrorCode ignored;
    client_.shutdown(tcp::socket::shutdown_send, ignored);
    upstream_.close(ignored);
    std::array<char, 4096> sink;
    std::size_t dropped = 0;
    while (dropped < kLingerMaxBytes && !closed_) {
      auto [ec, n] = co_await client_.async_read_some(asio::buffer(sink), kUseTuple);
      if (ec) break;
      dropped += n;
    }
  }

  const Core::LiveToken live_;
  const std::shared_ptr<Environment> env_;
  const asio::any_io_executor executor_;
  tcp::socket client_;
  tcp::socket upstream_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;
  SteadyClock::time_point deadline_ = SteadyClock::time_point::max();
  beast::flat_buffer client_buffer_;
  std::uint64_t id_ = 0;
  bool expired_ = false;
  bool stopped_ = false;
  bool closed_ = false;
};

}  // namespace egress_internal

namespace {

asio::awaitable<void> AcceptLoop(std::shared_ptr<Core::LiveToken> token,
                                 std::shared_ptr<Environment> env) {
  Core& core = token->core();
  for (;;) {
    auto [ec, socket] = co_await env->acceptor.async_accept(
        asio::any_io_executor(core.pool.NextContext().get_executor()), kUseTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !env->acceptor.is_open()) break;
      if (ec == asio::error::connection_aborted) continue;
      // EMFILE and the like: pause so that a full descriptor table does not spin this loop.
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
      co_await pause.async_wait(kUseTuple);
      continue;
    }
    core.connections.fetch_add(1, std::memory_order_relaxed);
    std::make_shared<Connection>(token->shared(), env, std::move(socket))->Start();
  }
}

}  // namespace

core::Result<std::uint16_t> Core::Listen(const std::string& environment_id, std::string function,
                                         EgressAllowlist allowlist, std::uint16_t port) {
  {
    std::lock_guard lock(mu_);
    if (shut_down_) return core::FailedPreconditionError("the egress proxy is shutting down");
    if (environments_.contains(environment_id)) {
      return core::AlreadyExistsError("environment " + environment_id +
                                      " already has an egress proxy listener");
    }
  }
  ASSIGN_OR_RETURN(const int fd, ListenOnLoopback(port, "the egress proxy"));
  const core::Result<std::uint16_t> bound = LocalPort(fd);
  if (!bound.ok()) {
    ::close(fd);
    return bound.status();
  }
  auto env = std::make_shared<Environment>(environment_id, std::move(function),
                                           std::move(allowlist), asio::make_strand(pool.context()));
  ErrorCode ec;
  env->acceptor.assign(tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    return core::InternalError("egress proxy listener: " + ec.message());
  }
  {
    std::lock_guard lock(mu_);
    if (shut_down_ || environments_.contains(environment_id)) {
      env->acceptor.close(ec);
      return shut_down_ ? core::FailedPreconditionError("the egress proxy is shutting down")
                        : core::AlreadyExistsError("environment " + environment_id +
                                                   " already has an egress proxy listener");
    }
    environments_.emplace(environment_id, env);
  }
  auto token = std::make_shared<LiveToken>(shared_from_this());
  asio::co_spawn(env->acceptor.get_executor(), AcceptLoop(std::move(token), env), asio::detached);
  return *bound;
}

void Core::Close(const std::shared_ptr<Environment>& env) {
  std::vector<std::shared_ptr<Connection>> connections;
  {
    std::lock_guard lock(env->mu);
    env->closed = true;
    for (auto& [id, weak] : env->connections) {
      if (auto c = weak.lock()) connections.push_back(std::move(c));
    }
  }
  // The acceptor belongs to its strand. Closing it there and waiting makes "a connection attempt
  // after Forget fails" hold; a pool worker must not wait for another worker, and a stopped pool
  // runs no handler that could race with closing it here.
  auto close_acceptor = [env] {
    ErrorCode ignored;
    env->acceptor.close(ignored);
  };
  if (!pool.running()) {
    close_acceptor();
  } else if (pool.InWorkerThread()) {
    asio::dispatch(env->acceptor.get_executor(), close_acceptor);
  } else {
    std::promise<void> done;
    asio::dispatch(env->acceptor.get_executor(), [&] {
      close_acceptor();
      done.set_value();
    });
    done.get_future().wait();
  }
  for (auto& connection : connections) connection->Close();
}

void Core::Forget(const std::string& environment_id) {
  std::shared_ptr<Environment> env;
  {
    std::lock_guard lock(mu_);
    auto it = environments_.find(environment_id);
    if (it == environments_.end()) return;
    env = std::move(it->second);
    environments_.erase(it);
  }
  Close(env);
}

void Core::Shutdown() {
  std::map<std::string, std::shared_ptr<Environment>> environments;
  {
    std::lock_guard lock(mu_);
    shut_down_ = true;
    environments.swap(environments_);
  }
  for (auto& [id, env] : environments) Close(env);
  if (pool.running() && !pool.InWorkerThread()) {
    std::unique_lock lock(live_mu_);
    drained_.wait(lock, [&] { return live_ == 0; });
  }
}

EgressProxy::EgressProxy(http::IoPool& pool, EgressProxyOptions options)
    : core_(std::make_shared<Core>(pool, std::move(options))) {}

EgressProxy::~EgressProxy() { core_->Shutdown(); }

core::Result<std::uint16_t> EgressProxy::ListenInCurrentNamespace(const std::string& environment_id,
                                                                  EgressAllowlist allowlist,
                                                                  std::uint16_t port,
                                                                  std::string function) {
  return core_->Listen(environment_id, std::move(function), std::move(allowlist), port);
}

void EgressProxy::Forget(const std::string& environment_id) { core_->Forget(environment_id); }

EgressProxyStats EgressProxy::stats() const {
  return EgressProxyStats{.connections = core_->connections.load(),
                          .refusals = core_->refusals.load(),
                          .outbound_connects = core_->outbound_connects.load()};
}

}  // namespace moatless::runtime
