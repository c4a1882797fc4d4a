#include "http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <sstream>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "core/check.h"
#include "core/ids.h"
#include "http/deadline.h"
#include "http/path.h"
#include "http/request_parser.h"
#include "http/status_response.h"

namespace moatless::http {

static_assert(static_cast<int>(RejectReason::kTlsHandshake) + 1 == kRejectReasonCount,
              "kRejectReasonCount must count every RejectReason");

std::string_view RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kNone:
      return "";
    case RejectReason::kMalformed:
      return "malformed";
    case RejectReason::kHeaderTooLarge:
      return "header_too_large";
    case RejectReason::kBodyTooLarge:
      return "body_too_large";
    case RejectReason::kHeaderTimeout:
      return "header_timeout";
    case RejectReason::kBodyTimeout:
      return "body_timeout";
    case RejectReason::kOverCapacity:
      return "over_capacity";
    case RejectReason::kTlsHandshake:
      return "tls_handshake";
  }
  return "unknown";
}

namespace internal {
namespace {

using GenericProtocol = asio::generic::stream_protocol;
using Socket = GenericProtocol::socket;
using Acceptor = asio::basic_socket_acceptor<GenericProtocol>;
using SteadyClock = std::chrono::steady_clock;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// Reads are at most this large; the read buffer holds at most a header plus one read.
constexpr std::size_t kReadChunk = 64 * 1024;
// The first read of an idle keep-alive connection is small: most idle connections stay idle.
constexpr std::size_t kIdleReadChunk = 4 * 1024;
// After the server answers with an error and closes, it reads and drops what the client still
// sends, for at most this long and this much, so that closing does not reset the connection and
// destroy the response before the client has read it.
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr std::size_t kLingerMaxBytes = 1024 * 1024;
// Connections answered 503 at the same time; beyond this, excess connections are just closed.
constexpr std::size_t kMaxRejecting = 256;
constexpr std::size_t kMaxRecordedPath = 1024;
constexpr std::size_t kMaxRecordedError = 512;

std::string Truncate(std::string_view s, std::size_t n) { return std::string(s.substr(0, n)); }

std::string FormatRemote(const Socket& socket) {
  boost::system::error_code ec;
  const auto ep = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  const auto* sa = static_cast<const sockaddr*>(ep.data());
  char buf[INET6_ADDRSTRLEN] = {};
  switch (sa->sa_family) {
    case AF_INET: {
      const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
      ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
      return std::string(buf) + ":" + std::to_string(ntohs(in->sin_port));
    }
    case AF_INET6: {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
      ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
      return "[" + std::string(buf) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    case AF_UNIX:
      return "unix";
    default:
      return "unknown";
  }
}

std::optional<PeerCredentials> PeerOf(Socket& socket) {
  boost::system::error_code ec;
  const auto local = socket.local_endpoint(ec);
  if (ec || local.protocol().family() != AF_UNIX) return std::nullopt;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return std::nullopt;
  }
  return PeerCredentials{.pid = cred.pid, .uid = cred.uid, .gid = cred.gid};
}

bool IsTokenChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// Beast writes header names and values as given; a CR or LF from a handler would let it inject
// headers or a whole response.
bool HeadersAreSafe(const Response& res) {
  for (const auto& field : res) {
    const std::string_view name = field.name_string();
    if (name.empty()) return false;
    for (unsigned char c : name) {
      if (!IsTokenChar(c)) return false;
    }
    for (unsigned char c : field.value()) {
      if (c == '\r' || c == '\n' || c == '\0') return false;
    }
  }
  return true;
}

// IMF-fixdate (RFC 9110 5.6.7), without strftime: its names would follow the process locale.
std::string HttpDate(core::WallTime now) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

bool HasCloseToken(std::string_view connection) {
  for (auto token : beast::http::token_list(connection)) {
    if (beast::iequals(token, "close")) return true;
  }
  return false;
}

}  // namespace

struct Listener {
  explicit Listener(const asio::any_io_executor& strand) : acceptor(strand) {}
  std::string name;
  // Set for TLS listeners: what their context is built (and rebuilt by ReloadTls) from.
  std::optional<TlsOptions> tls_options;
  Acceptor acceptor;
  // For ListenUnix: the socket file to remove when the listener closes, if it is still ours.
  std::string unix_path;
  dev_t unix_dev = 0;
  ino_t unix_ino = 0;

  bool is_tls() const { return tls_options.has_value(); }
  // The context new connections handshake with. Thread-safe: ReloadTls swaps it while the
  // accept loop reads it; connections keep the one they were given.
  std::shared_ptr<asio::ssl::context> tls_context() const {
    std::lock_guard lock(tls_mu_);
    return tls_context_;
  }
  void set_tls_context(std::shared_ptr<asio::ssl::context> context) {
    std::lock_guard lock(tls_mu_);
    tls_context_ = std::move(context);
  }

 private:
  mutable std::mutex tls_mu_;
  std::shared_ptr<asio::ssl::context> tls_context_;
};

std::string HstsValue(std::chrono::seconds max_age) {
  if (max_age.count() <= 0) return "";
  return "max-age=" + std::to_string(max_age.count()) + "; includeSubDomains";
}

class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  // Both are thread-safe: they dispatch to the connection's strand.
  virtual void Drain() = 0;
  virtual void ForceClose() = 0;
};

class ServerCore : public std::enable_shared_from_this<ServerCore> {
 public:
  ServerCore(IoPool& pool_in, ServerOptions options_in, Handler handler_in)
      : pool(pool_in),
        options(std::move(options_in)),
        handler(std::move(handler_in)),
        hsts(HstsValue(options.hsts_max_age)) {}

  IoPool& pool;
  const ServerOptions options;
  const Handler handler;
  // The Strict-Transport-Security value for responses on TLS connections; empty: none.
  const std::string hsts;

  std::atomic<bool> draining{false};
  std::atomic<std::size_t> active{0};
  std::atomic<std::size_t> rejecting{0};
  std::atomic<std::uint64_t> accepted{0}, responses{0}, handler_failures{0}, accept_errors{0};
  std::array<std::atomic<std::uint64_t>, kRejectReasonCount> rejects{};

  void Emit(const AccessRecord& record) {
    if (record.status != 0) responses.fetch_add(1, std::memory_order_relaxed);
    if (record.reject != RejectReason::kNone) {
      rejects[static_cast<std::size_t>(record.reject)].fetch_add(1, std::memory_order_relaxed);
    }
    if (!options.on_access) return;
    try {
      options.on_access(record);
    } catch (...) {  // a failing hook must not fail the request path
    }
  }

  // Connections register at construction and unregister at destruction, so Wait() returns only
  // when no connection object (and so no handler frame) remains.
  std::uint64_t Register(std::weak_ptr<ConnectionBase> connection) {
    std::lock_guard lock(mu_);
    const std::uint64_t id = ++next_id_;
    connections_.emplace(id, std::move(connection));
    ++live_;
    return id;
  }
  void Unregister(std::uint64_t id) {
    std::lock_guard lock(mu_);
    connections_.erase(id);
    ReleaseLocked();
  }
  // Accept loops hold one of these while they run.
  struct LiveToken {
    explicit LiveToken(std::shared_ptr<ServerCore> c) : core(std::move(c)) {}
    ~LiveToken() {
      std::lock_guard lock(core->mu_);
      core->ReleaseLocked();
    }
    std::shared_ptr<ServerCore> core;
  };

  core::Status AddListener(std::shared_ptr<Listener> listener);
  core::Status ReloadTls();
  void OnAccepted(const std::shared_ptr<Listener>& listener, Socket socket);
  void Shutdown(std::chrono::milliseconds drain);
  void ForceCloseAll();
  void Wait() {
    std::unique_lock lock(mu_);
    drained_.wait(lock, [&] { return draining.load() && live_ == 0; });
  }
  bool WaitFor(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return drained_.wait_for(lock, timeout, [&] { return draining.load() && live_ == 0; });
  }

 private:
  template <bool kTls>
  void Spawn(const std::shared_ptr<Listener>& listener, Socket socket, bool over_capacity);
  std::vector<std::shared_ptr<ConnectionBase>> LiveConnections() {
    std::vector<std::shared_ptr<ConnectionBase>> out;
    std::lock_guard lock(mu_);
    out.reserve(connections_.size());
    for (auto& [id, weak] : connections_) {
      if (auto c = weak.lock()) out.push_back(std::move(c));
    }
    return out;
  }
  void ReleaseLocked() {
    if (--live_ == 0 && draining.load()) {
      drained_.notify_all();
      if (drain_timer_) {
        asio::post(drain_timer_->get_executor(), [timer = drain_timer_] { timer->cancel(); });
      }
    }
  }

  std::mutex mu_;
  std::mutex reload_mu_;  // one ReloadTls at a time, so each swaps all its contexts together
  std::condition_variable drained_;
  std::vector<std::shared_ptr<Listener>> listeners_;
  std::unordered_map<std::uint64_t, std::weak_ptr<ConnectionBase>> connections_;
  std::uint64_t next_id_ = 0;
  std::size_t live_ = 0;
  std::shared_ptr<asio::steady_timer> drain_timer_;
};

namespace {

// One client connection: reads requests, calls the handler, writes responses, enforces the
// limits. Everything runs on its socket's executor: one pool context, run by one thread.
template <bool kTls>
class Connection final : public ConnectionBase,
                         public std::enable_shared_from_this<Connection<kTls>> {
 public:
  using Stream = std::conditional_t<kTls, asio::ssl::stream<Socket>, Socket>;

  Connection(std::shared_ptr<ServerCore> core, std::shared_ptr<Listener> listener, Socket socket,
             std::shared_ptr<asio::ssl::context> tls_context, bool over_capacity)
      : core_(std::move(core)),
        listener_(std::move(listener)),
        strand_(socket.get_executor()),
        remote_(FormatRemote(socket)),
        peer_(PeerOf(socket)),
        tls_context_(std::move(tls_context)),
        stream_(MakeStream(std::move(socket), tls_context_.get())),
        deadline_(strand_),
        buffer_(core_->options.max_header_bytes + kReadChunk),
        over_capacity_(over_capacity) {}

  ~Connection() override {
    if (over_capacity_) {
      core_->rejecting.fetch_sub(1);
    } else {
      core_->active.fetch_sub(1);
    }
    if (id_ != 0) core_->Unregister(id_);
  }

  void Start() {
    id_ = core_->Register(this->weak_from_this());
    auto self = this->shared_from_this();
    asio::co_spawn(strand_, Deadline::Watch(self, &deadline_, [raw = this] { raw->CancelIo(); }),
                   asio::detached);
    asio::co_spawn(strand_, Run(self),
                   asio::bind_cancellation_slot(cancel_.slot(), [self](std::exception_ptr) {}));
  }

  void Drain() override {
    asio::dispatch(strand_, [self = this->shared_from_this()] {
      // Only connections with no request under way are closed now; the others finish their
      // current request, whose response then says Connection: close. A request counts as under
      // way as soon as its first bytes are in the kernel's buffer, even if not read yet.
      boost::system::error_code ec;
      const bool started = self->buffer_.size() > 0 || self->socket().available(ec) > 0;
      const bool idle =
          self->phase_ == Phase::kHandshake ||
          ((self->phase_ == Phase::kIdle || self->phase_ == Phase::kHeader) && !started);
      if (idle) {
        self->closing_ = true;
        self->CancelIo();
      }
    });
  }

  void ForceClose() override {
    asio::dispatch(strand_, [self = this->shared_from_this()] {
      self->closing_ = true;
      self->forced_ = true;
      boost::system::error_code ec;
      self->socket().close(ec);
      self->cancel_.emit(asio::cancellation_type::terminal);
    });
  }

 private:
  enum class Phase { kHandshake, kIdle, kHeader, kBody, kHandler, kWriting, kClosing };

  // What is known about the request being read, for its AccessRecord.
  struct Exchange {
    core::MonoTime started;
    std::string request_id;
    std::string method;
    std::string path;
    std::uint64_t request_bytes = 0;
  };

  static Stream MakeStream(Socket socket, asio::ssl::context* tls_context) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *tls_context);
    } else {
      (void)tls_context;
      return socket;
    }
  }

  Socket& socket() {
    if constexpr (kTls) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }
  const ServerOptions& opts() const { return core_->options; }
  core::MonoTime Now() const { return opts().clock->MonotonicNow(); }

  void CancelIo() {
    boost::system::error_code ec;
    socket().cancel(ec);
  }

  static asio::awaitable<void> Run(std::shared_ptr<Connection> self) {
    // Failures travel as error codes; after a drain-deadline cancellation the remaining awaits
    // must still complete (with an error) rather than throw.
    co_await asio::this_coro::throw_if_cancelled(false);
    try {
      co_await self->Serve();
    } catch (...) {
      // Serve reports its own failures; an exception here means the connection cannot go on.
    }
    self->phase_ = Phase::kClosing;
    self->deadline_.Stop();
    boost::system::error_code ec;
    self->socket().close(ec);
  }

  asio::awaitable<void> Serve() {
    if constexpr (kTls) {
      phase_ = Phase::kHandshake;
      deadline_.ExpiresAfter(opts().tls_handshake_timeout);
      auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::server, kUseTuple);
      if (ec) {
        if (!closing_) {
          AccessRecord record = BaseRecord();
          record.reject = RejectReason::kTlsHandshake;
          record.error = deadline_.expired() ? "TLS handshake timed out" : ec.message();
          core_->Emit(record);
        }
        co_return;
      }
      auto client_cert = PeerClientCertificate(stream_.native_handle());
      if (!client_cert.ok()) {
        AccessRecord record = BaseRecord();
        record.reject = RejectReason::kTlsHandshake;
        record.error = Truncate(client_cert.status().message(), kMaxRecordedError);
        core_->Emit(record);
        co_return;
      }
      client_cert_ = std::move(client_cert).value();
    }
    if (over_capacity_) {
      Exchange exchange{.started = Now()};
      co_await Reject(RejectReason::kOverCapacity, core::Status(), exchange);
      co_return;
    }

    for (;;) {
      // Between requests: wait for the first byte of the next one under the idle deadline. The
      // first request of a connection is under the header deadline from the start.
      if (requests_ > 0 && buffer_.size() == 0) {
        if (core_->draining.load()) co_return;
        phase_ = Phase::kIdle;
        deadline_.ExpiresAfter(opts().idle_timeout);
        auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(kIdleReadChunk), kUseTuple);
        if (ec) co_return;  // idle timeout, client gone, or shutdown: nothing to answer
        buffer_.commit(n);
      }

      phase_ = Phase::kHeader;
      deadline_.ExpiresAfter(opts().header_timeout);
      Exchange exchange{.started = Now()};
      parser_.emplace();
      ConfigureParser(*parser_, opts());
      auto [ec, header_bytes] =
          co_await beast::http::async_read_header(stream_, buffer_, *parser_, kUseTuple);
      exchange.request_bytes = header_bytes;
      Describe(exchange);
      if (ec) {
        if (closing_) co_return;
        if (deadline_.expired()) {
          // Nothing at all arrived: close quietly, like an idle connection.
          if (buffer_.size() == 0 && header_bytes == 0) co_return;
          co_await Reject(RejectReason::kHeaderTimeout, core::Status(), exchange);
          co_return;
        }
        const RejectReason reason = ClassifyReadError(ec);
        if (reason == RejectReason::kNone) co_return;
        co_await Reject(reason, core::InvalidArgumentError("malformed request: " + ec.message()),
                        exchange);
        co_return;
      }

      if (core::Status valid = ValidateRequest(parser_->get()); !valid.ok()) {
        co_await Reject(RejectReason::kMalformed, valid, exchange);
        co_return;
      }

      if (!parser_->is_done()) {
        if (parser_->get().version() == 11 &&
            beast::iequals(parser_->get()[Field::expect], "100-continue")) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          deadline_.ExpiresAfter(opts().write_timeout);
          auto [wec, wn] = co_await asio::async_write(
              stream_, asio::buffer(kContinue.data(), kContinue.size()), kUseTuple);
          if (wec) co_return;
          extra_response_bytes_ = wn;
        }
        phase_ = Phase::kBody;
        deadline_.ExpiresAfter(opts().body_timeout);
        auto [bec, body_bytes] =
            co_await beast::http::async_read(stream_, buffer_, *parser_, kUseTuple);
        exchange.request_bytes += body_bytes;
        if (bec) {
          if (closing_) co_return;
          if (deadline_.expired()) {
            co_await Reject(RejectReason::kBodyTimeout, core::Status(), exchange);
            co_return;
          }
          RejectReason reason = ClassifyReadError(bec);
          if (reason == RejectReason::kNone) {  // the client went away mid-body
            AccessRecord record = RecordFor(exchange);
            record.error = "reading the request body: " + bec.message();
            core_->Emit(record);
            co_return;
          }
          if (reason == RejectReason::kHeaderTooLarge) reason = RejectReason::kBodyTooLarge;
          co_await Reject(reason, core::InvalidArgumentError("malformed request: " + bec.message()),
                          exchange);
          co_return;
        }
      }
      deadline_.Clear();

      const bool keep_going = co_await Respond(exchange);
      if (!keep_going) co_return;
      if (buffer_.size() == 0 && buffer_.capacity() > kReadChunk) buffer_.shrink_to_fit();
    }
  }

  // Runs the handler and writes its response. Returns whether to read another request.
  asio::awaitable<bool> Respond(Exchange& exchange) {
    phase_ = Phase::kHandler;
    Request request = parser_->release();
    parser_.reset();
    RequestContext ctx{.request_id = exchange.request_id,
                       .remote = remote_,
                       .tls = kTls,
                       .listener_name = listener_->name,
                       .path_params = {},
                       .peer = peer_,
                       .environment = {},
                       .client_cert = client_cert_};
    Response res;
    std::string error;
    try {
      res = co_await core_->handler(request, ctx);
    } catch (const std::exception& e) {
      error = Truncate(std::string("handler threw: ") + e.what(), kMaxRecordedError);
    } catch (...) {
      error = "handler threw a non-standard exception";
    }
    if (forced_) {
      AccessRecord record = RecordFor(exchange);
      record.error = "connection closed at the shutdown drain deadline";
      core_->Emit(record);
      co_return false;
    }
    if (!error.empty()) {
      core_->handler_failures.fetch_add(1, std::memory_order_relaxed);
      res = StatusResponse(core::InternalError("internal error"), exchange.request_id);
    } else if (res.result_int() < 200 || res.result_int() > 599) {
      error = "handler returned status " + std::to_string(res.result_int());
      res = StatusResponse(core::InternalError("internal error"), exchange.request_id);
    } else if (!HeadersAreSafe(res)) {
      error = "handler set a header with an invalid name or value";
      res = StatusResponse(core::InternalError("internal error"), exchange.request_id);
    }

    bool keep_alive = request.keep_alive() && !core_->draining.load();
    const std::size_t max_requests = opts().max_requests_per_connection;
    if (max_requests > 0 && requests_ + 1 >= max_requests) keep_alive = false;
    if (auto it = res.find(Field::connection); it != res.end() && HasCloseToken(it->value())) {
      keep_alive = false;
    }
    res.version(request.version());
    res.set(kRequestIdHeader, exchange.request_id);
    if (res.find(Field::date) == res.end()) {
      // The Date header changes once a second: format it once a second per connection.
      const core::WallTime now = opts().clock->Now();
      const std::time_t second = std::chrono::system_clock::to_time_t(now);
      if (second != date_second_) {
        date_second_ = second;
        date_text_ = HttpDate(now);
      }
      res.set(Field::date, date_text_);
    }
    if (!opts().server_header.empty()) res.set(Field::server, opts().server_header);
    AddHsts(res);
    res.keep_alive(keep_alive);
    PreparePayload(res);

    phase_ = Phase::kWriting;
    deadline_.ExpiresAfter(opts().write_timeout);
    boost::system::error_code wec;
    std::size_t written = 0;
    if (request.method() == Verb::head) {
      beast::http::response_serializer<beast::http::string_body> serializer(res);
      std::tie(wec, written) =
          co_await beast::http::async_write_header(stream_, serializer, kUseTuple);
    } else {
      std::tie(wec, written) = co_await beast::http::async_write(stream_, res, kUseTuple);
    }
    ++requests_;
    AccessRecord record = RecordFor(exchange);
    record.status = static_cast<int>(res.result_int());
    record.response_bytes = written + std::exchange(extra_response_bytes_, 0);
    record.error = std::move(error);
    if (wec && record.error.empty()) {
      record.error = deadline_.expired() ? "writing the response timed out"
                                         : "writing the response: " + wec.message();
    }
    core_->Emit(record);
    if (wec) co_return false;
    if (!keep_alive) {
      co_await CloseGracefully();
      co_return false;
    }
    co_return true;
  }

  // Answers a request the handler will not see, then closes the connection.
  asio::awaitable<void> Reject(RejectReason reason, core::Status status, Exchange& exchange) {
    if (exchange.request_id.empty()) exchange.request_id = core::NewUuid(*opts().random);
    const std::string& id = exchange.request_id;
    Response res;
    switch (reason) {
      case RejectReason::kHeaderTooLarge:
        res = ErrorResponse(
            HttpStatus::request_header_fields_too_large, "RequestHeaderFieldsTooLargeException",
            "the request header exceeds " + std::to_string(opts().max_header_bytes) + " bytes", id);
        break;
      case RejectReason::kBodyTooLarge:
        res = StatusResponse(
            core::PayloadTooLargeError("the request body exceeds " +
                                       std::to_string(opts().max_body_bytes) + " bytes"),
            id);
        break;
      case RejectReason::kHeaderTimeout:
      case RejectReason::kBodyTimeout:
        res = ErrorResponse(HttpStatus::request_timeout, "RequestTimeoutException",
                            reason == RejectReason::kHeaderTimeout
                                ? "the request header did not arrive in time"
                                : "the request body did not arrive in time",
                            id);
        break;
      case RejectReason::kOverCapacity:
        res = StatusResponse(
            core::UnavailableError("the server is at its connection limit; retry later"), id);
        res.set(Field::retry_after, "1");
        break;
      default:
        res = StatusResponse(status.ok() ? core::InvalidArgumentError("malformed request") : status,
                             id);
        break;
    }
    res.set(kRequestIdHeader, id);
    res.set(Field::date, HttpDate(opts().clock->Now()));
    if (!opts().server_header.empty()) res.set(Field::server, opts().server_header);
    AddHsts(res);
    res.keep_alive(false);
    PreparePayload(res);

    phase_ = Phase::kWriting;
    deadline_.ExpiresAfter(opts().write_timeout);
    auto [ec, written] = co_await beast::http::async_write(stream_, res, kUseTuple);
    AccessRecord record = RecordFor(exchange);
    record.status = static_cast<int>(res.result_int());
    record.response_bytes = written;
    record.reject = reason;
    if (!status.ok()) record.error = Truncate(status.message(), kMaxRecordedError);
    core_->Emit(record);
    if (!ec) co_await CloseGracefully();
  }

  // Sends close_notify (TLS) and FIN, then drops what the client still sends for a short while.
  asio::awaitable<void> CloseGracefully() {
    if (closing_) co_return;
    phase_ = Phase::kClosing;
    deadline_.ExpiresAfter(kLingerTimeout);
    if constexpr (kTls) {
      // Marking the peer's close_notify as received makes SSL_shutdown send ours and return at
      // once instead of waiting for a reply most clients never send.
      SSL_set_shutdown(stream_.native_handle(), SSL_RECEIVED_SHUTDOWN);
      auto [ec] = co_await stream_.async_shutdown(kUseTuple);
      if (ec && deadline_.expired()) co_return;
    }
    boost::system::error_code ignored;
    socket().shutdown(asio::socket_base::shutdown_send, ignored);
    std::array<char, 4096> sink;
    std::size_t dropped = 0;
    while (dropped < kLingerMaxBytes && !closing_) {
      auto [ec, n] = co_await socket().async_read_some(asio::buffer(sink), kUseTuple);
      if (ec) break;
      dropped += n;
    }
  }

  // Strict-Transport-Security on every response of a TLS connection (never on plaintext, where
  // browsers ignore it and it would only mislead), unless the handler chose its own.
  void AddHsts(Response& res) const {
    if constexpr (kTls) {
      if (!core_->hsts.empty() && res.find(Field::strict_transport_security) == res.end()) {
        res.set(Field::strict_transport_security, core_->hsts);
      }
    } else {
      (void)res;
    }
  }

  // Copies what the parser has seen of the request line (even of a rejected request).
  void Describe(Exchange& exchange) {
    const Request& req = parser_->get();
    exchange.method = Truncate(req.method_string(), 32);
    exchange.path = Truncate(SplitTarget(req.target()).path, kMaxRecordedPath);
    if (parser_->is_header_done() || !exchange.method.empty()) {
      exchange.request_id = core::NewUuid(*opts().random);
    }
  }

  AccessRecord BaseRecord() const {
    AccessRecord record;
    record.remote = remote_;
    record.listener_name = listener_->name;
    record.tls = kTls;
    return record;
  }

  AccessRecord RecordFor(const Exchange& exchange) const {
    AccessRecord record = BaseRecord();
    record.method = exchange.method;
    record.path = exchange.path;
    record.request_bytes = exchange.request_bytes;
    record.request_id = exchange.request_id;
    record.duration =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Now() - exchange.started);
    return record;
  }

  const std::shared_ptr<ServerCore> core_;
  const std::shared_ptr<Listener> listener_;
  const asio::any_io_executor strand_;
  const std::string remote_;
  const std::optional<PeerCredentials> peer_;
  // The context this connection was accepted with (null for plaintext); it outlives stream_,
  // whatever ReloadTls does to the listener meanwhile.
  const std::shared_ptr<asio::ssl::context> tls_context_;
  Stream stream_;
  Deadline deadline_;
  beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  std::shared_ptr<const ClientCertificate> client_cert_;  // set after the TLS handshake
  asio::cancellation_signal cancel_;
  const bool over_capacity_;
  std::uint64_t id_ = 0;
  std::size_t requests_ = 0;
  std::size_t extra_response_bytes_ = 0;
  Phase phase_ = Phase::kHeader;
  bool closing_ = false;  // the server closes this connection (shutdown): report nothing more
  bool forced_ = false;   // closed at the drain deadline
  std::time_t date_second_ = -1;  // the second date_text_ was formatted for
  std::string date_text_;
};

asio::awaitable<void> AcceptLoop(std::shared_ptr<ServerCore::LiveToken> token,
                                 std::shared_ptr<Listener> listener) {
  ServerCore& core = *token->core;
  for (;;) {
    // Each pool context is run by exactly one thread, so its executor already serialises the
    // connection's handlers: no strand needed.
    auto [ec, socket] = co_await listener->acceptor.async_accept(
        asio::any_io_executor(core.pool.NextContext().get_executor()), kUseTuple);
    if (core.draining.load()) break;
    if (ec) {
      if (ec == asio::error::operation_aborted || !listener->acceptor.is_open()) break;
      core.accept_errors.fetch_add(1, std::memory_order_relaxed);
      if (ec == asio::error::connection_aborted) continue;
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: pause so that a full descriptor table does not turn
      // this loop into a busy one; connections wait in the backlog meanwhile.
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
      co_await pause.async_wait(kUseTuple);
      continue;
    }
    core.OnAccepted(listener, std::move(socket));
  }
}

void RemoveUnixSocketFile(const Listener& listener) {
  if (listener.unix_path.empty()) return;
  struct stat st {};
  if (::lstat(listener.unix_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
      st.st_dev == listener.unix_dev && st.st_ino == listener.unix_ino) {
    ::unlink(listener.unix_path.c_str());
  }
}

}  // namespace

core::Status ServerCore::AddListener(std::shared_ptr<Listener> listener) {
  std::shared_ptr<LiveToken> token;
  {
    std::lock_guard lock(mu_);
    if (draining.load()) {
      boost::system::error_code ec;
      listener->acceptor.close(ec);
      RemoveUnixSocketFile(*listener);
      return core::FailedPreconditionError("the server is shutting down");
    }
    listeners_.push_back(listener);
    ++live_;
  }
  token = std::make_shared<LiveToken>(shared_from_this());
  asio::co_spawn(listener->acceptor.get_executor(), AcceptLoop(std::move(token), listener),
                 asio::detached);
  return core::Status::Ok();
}

void ServerCore::OnAccepted(const std::shared_ptr<Listener>& listener, Socket socket) {
  accepted.fetch_add(1, std::memory_order_relaxed);
  bool over_capacity = false;
  if (active.fetch_add(1) >= options.max_connections) {
    active.fetch_sub(1);
    over_capacity = true;
    if (rejecting.fetch_add(1) >= kMaxRejecting) {
      // Too many 503s in flight already: close without one.
      rejecting.fetch_sub(1);
      AccessRecord record;
      record.remote = FormatRemote(socket);
      record.listener_name = listener->name;
      record.tls = listener->is_tls();
      record.reject = RejectReason::kOverCapacity;
      record.error = "closed without a response: too many rejections under way";
      Emit(record);
      return;
    }
  }
  boost::system::error_code ec;
  const auto local = socket.local_endpoint(ec);
  if (!ec && (local.protocol().family() == AF_INET || local.protocol().family() == AF_INET6)) {
    const int one = 1;
    ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (listener->is_tls()) {
    Spawn<true>(listener, std::move(socket), over_capacity);
  } else {
    Spawn<false>(listener, std::move(socket), over_capacity);
  }
}

template <bool kTls>
void ServerCore::Spawn(const std::shared_ptr<Listener>& listener, Socket socket,
                       bool over_capacity) {
  std::shared_ptr<asio::ssl::context> tls_context;
  if constexpr (kTls) tls_context = listener->tls_context();
  auto connection = std::make_shared<Connection<kTls>>(
      shared_from_this(), listener, std::move(socket), std::move(tls_context), over_capacity);
  connection->Start();
  // A connection accepted while Shutdown was collecting the others would be missed by it.
  if (draining.load()) connection->Drain();
}

void ServerCore::Shutdown(std::chrono::milliseconds drain) {
  std::vector<std::shared_ptr<Listener>> listeners;
  {
    std::lock_guard lock(mu_);
    if (draining.exchange(true)) {
      if (drain.count() > 0) return;
    }
    listeners.swap(listeners_);
    if (live_ == 0) drained_.notify_all();
  }
  for (auto& listener : listeners) {
    asio::dispatch(listener->acceptor.get_executor(), [listener] {
      boost::system::error_code ec;
      listener->acceptor.close(ec);
      RemoveUnixSocketFile(*listener);
    });
  }
  if (drain.count() <= 0) {
    ForceCloseAll();
    return;
  }
  for (auto& connection : LiveConnections()) connection->Drain();
  auto timer = std::make_shared<asio::steady_timer>(asio::make_strand(pool.context()), drain);
  {
    std::lock_guard lock(mu_);
    drain_timer_ = timer;
    if (live_ == 0) return;
  }
  // The wait is started on the timer's strand, where ReleaseLocked's cancel also runs.
  asio::dispatch(timer->get_executor(), [timer, self = shared_from_this()] {
    timer->async_wait([self](boost::system::error_code ec) {
      if (!ec) self->ForceCloseAll();
    });
  });
}

core::Status ServerCore::ReloadTls() {
  std::lock_guard reload(reload_mu_);
  std::vector<std::shared_ptr<Listener>> listeners;
  {
    std::lock_guard lock(mu_);
    listeners = listeners_;
  }
  // Every new context is built before any is swapped in: a failure changes nothing.
  std::vector<std::pair<Listener*, std::shared_ptr<asio::ssl::context>>> fresh;
  for (const auto& listener : listeners) {
    if (!listener->is_tls()) continue;
    auto made = MakeServerTlsContext(*listener->tls_options);
    if (!made.ok()) return made.status().Annotate("listener " + listener->name);
    fresh.emplace_back(listener.get(), std::move(made).value());
  }
  for (auto& [listener, context] : fresh) listener->set_tls_context(std::move(context));
  return core::Status::Ok();
}

void ServerCore::ForceCloseAll() {
  for (auto& connection : LiveConnections()) connection->ForceClose();
}

}  // namespace internal

using internal::ServerCore;

Server::Server(IoPool& pool, ServerOptions options, Handler handler) {
  MOATLESS_CHECK(options.random != nullptr, "ServerOptions::random is required");
  MOATLESS_CHECK(options.clock != nullptr, "ServerOptions::clock is required");
  core_ = std::make_shared<ServerCore>(pool, std::move(options), std::move(handler));
}

Server::~Server() {
  core_->Shutdown(std::chrono::milliseconds(0));
  if (core_->pool.running() && !core_->pool.InWorkerThread()) core_->Wait();
}

core::Result<asio::ip::tcp::endpoint> Server::ListenTcp(const std::string& host, std::uint16_t port,
                                                        std::optional<TlsOptions> tls,
                                                        std::string name) {
  std::shared_ptr<asio::ssl::context> context;
  if (tls) {
    ASSIGN_OR_RETURN(context, MakeServerTlsContext(*tls));
  }
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) {
    asio::ip::tcp::resolver resolver(core_->pool.context());
    auto results = resolver.resolve(host, "", asio::ip::tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return core::InvalidArgumentError("cannot resolve listen host '" + host +
                                        "': " + (ec ? ec.message() : "no address"));
    }
    address = results.begin()->endpoint().address();
  }
  const asio::ip::tcp::endpoint wanted(address, port);
  const auto where = [&] {
    std::ostringstream os;
    os << wanted;
    return os.str();
  };
  asio::ip::tcp::acceptor acceptor(core_->pool.context());
  if (acceptor.open(wanted.protocol(), ec); !ec) {
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) acceptor.bind(wanted, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return core::UnavailableError("listening on " + where() + ": " + ec.message());
  const asio::ip::tcp::endpoint bound = acceptor.local_endpoint(ec);
  if (ec) return core::InternalError("listening on " + where() + ": " + ec.message());
  if (name.empty()) {
    std::ostringstream os;
    os << "tcp:" << bound;
    name = os.str();
  }
  const int family = bound.protocol().family();
  const int fd = acceptor.release(ec);
  if (ec) return core::InternalError("listening on " + where() + ": " + ec.message());

  auto listener = std::make_shared<internal::Listener>(asio::make_strand(core_->pool.context()));
  listener->name = std::move(name);
  listener->tls_options = std::move(tls);
  listener->set_tls_context(std::move(context));
  listener->acceptor.assign(internal::GenericProtocol(family, IPPROTO_TCP), fd, ec);
  if (ec) {
    ::close(fd);
    return core::InternalError("listening on " + where() + ": " + ec.message());
  }
  RETURN_IF_ERROR(core_->AddListener(std::move(listener)));
  return bound;
}

core::Status Server::ListenUnix(const std::string& path, std::string name) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return core::InvalidArgumentError("Unix socket path must be 1 to " +
                                      std::to_string(sizeof addr.sun_path - 1) + " bytes: '" +
                                      path + "'");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  const auto error = [&](std::string_view what, int err) {
    return core::UnavailableError("Unix socket '" + path + "': " + std::string(what) + ": " +
                                  std::strerror(err));
  };

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return core::FailedPreconditionError("'" + path +
                                           "' exists and is not a socket; refusing to replace it");
    }
    // A socket file with nobody listening is left over from a process that died: replace it.
    // One somebody still listens on is not ours to take.
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) return error("socket", errno);
    const int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    const int err = errno;
    ::close(probe);
    if (rc == 0) {
      return core::AlreadyExistsError("another process is listening on Unix socket '" + path + "'");
    }
    if (err != ECONNREFUSED) return error("probing the existing socket", err);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return error("removing stale socket", errno);
  }

  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return error("socket", errno);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd);
    return error("bind", err);
  }
  // Permissions are set before listen(): until then nobody can connect, whatever the umask gave.
  if (::chmod(path.c_str(), 0660) != 0 || ::lstat(path.c_str(), &st) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return error("chmod", err);
  }
  if (::listen(fd, SOMAXCONN) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return error("listen", err);
  }
  auto listener = std::make_shared<internal::Listener>(asio::make_strand(core_->pool.context()));
  listener->name = name.empty() ? "unix:" + path : std::move(name);
  listener->unix_path = path;
  listener->unix_dev = st.st_dev;
  listener->unix_ino = st.st_ino;
  boost::system::error_code ec;
  listener->acceptor.assign(internal::GenericProtocol(AF_UNIX, 0), fd, ec);
  if (ec) {
    ::close(fd);
    ::unlink(path.c_str());
    return core::InternalError("Unix socket '" + path + "': " + ec.message());
  }
  return core_->AddListener(std::move(listener));
}

core::Status Server::ServeListeningFd(int fd, std::optional<TlsOptions> tls, std::string name) {
  if (fd < 0) return core::InvalidArgumentError("invalid listening socket descriptor");
  const auto fail = [fd](core::Status status) {
    ::close(fd);
    return status;
  };
  int type = 0, listening = 0, domain = 0, protocol = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    return fail(core::InvalidArgumentError("descriptor " + std::to_string(fd) +
                                           " is not a socket: " + std::strerror(errno)));
  }
  len = sizeof listening;
  ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
  len = sizeof domain;
  ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
  len = sizeof protocol;
  ::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len);
  if (type != SOCK_STREAM || listening != 1 ||
      (domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX)) {
    return fail(core::InvalidArgumentError("descriptor " + std::to_string(fd) +
                                           " is not a listening TCP or Unix stream socket"));
  }
  std::shared_ptr<asio::ssl::context> context;
  if (tls) {
    auto made = MakeServerTlsContext(*tls);
    if (!made.ok()) return fail(made.status());
    context = std::move(made).value();
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  auto listener = std::make_shared<internal::Listener>(asio::make_strand(core_->pool.context()));
  listener->name = name.empty() ? "fd:" + std::to_string(fd) : std::move(name);
  listener->tls_options = std::move(tls);
  listener->set_tls_context(std::move(context));
  boost::system::error_code ec;
  listener->acceptor.assign(internal::GenericProtocol(domain, domain == AF_UNIX ? 0 : protocol), fd,
                            ec);
  if (ec) return fail(core::InternalError("serving descriptor: " + ec.message()));
  return core_->AddListener(std::move(listener));
}

core::Status Server::ReloadTls() { return core_->ReloadTls(); }

void Server::Shutdown(std::chrono::milliseconds drain_deadline) { core_->Shutdown(drain_deadline); }

void Server::Wait() { core_->Wait(); }

bool Server::WaitFor(std::chrono::milliseconds timeout) { return core_->WaitFor(timeout); }

ServerStats Server::stats() const {
  ServerStats s;
  s.connections_accepted = core_->accepted.load();
  s.connections_active = core_->active.load();
  s.responses = core_->responses.load();
  s.handler_failures = core_->handler_failures.load();
  s.accept_errors = core_->accept_errors.load();
  for (int i = 0; i < kRejectReasonCount; ++i) {
    s.rejects[static_cast<std::size_t>(i)] = core_->rejects[static_cast<std::size_t>(i)].load();
  }
  return s;
}

}  // namespace moatless::http
