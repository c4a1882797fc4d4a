#include "http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <set>
#include <stdexcept>
#include <thread>

#include "core/clock.h"
#include "core/random.h"
#include "http/router.h"
#include "http/status_response.h"
#include "http/test_support.h"

namespace moatless::http {
namespace {

using namespace std::chrono_literals;
using testing::Eventually;
using testing::Get;
using testing::RawConnection;
using testing::RawResponse;

// Test routes. /slow and /wait report when their handler starts, so tests can act while a request
// is in flight without guessing with sleeps.
class ServerTest : public ::testing::Test {
 protected:
  ServerTest() {
    EXPECT_TRUE(router_
                    .Add("GET", "/hello",
                         [](Request&, RequestContext&) -> asio::awaitable<Response> {
                           co_return TextResponse(HttpStatus::ok, "hello");
                         })
                    .ok());
    EXPECT_TRUE(router_
                    .Add("POST", "/echo",
                         [](Request& req, RequestContext&) -> asio::awaitable<Response> {
                           co_return TextResponse(HttpStatus::ok, req.body());
                         })
                    .ok());
    EXPECT_TRUE(router_
                    .Add("GET", "/ctx",
                         [](Request&, RequestContext& ctx) -> asio::awaitable<Response> {
                           co_return TextResponse(
                               HttpStatus::ok,
                               ctx.request_id + "|" + ctx.remote + "|" + ctx.listener_name + "|" +
                                   (ctx.tls ? "tls" : "plain") + "|" +
                                   (ctx.peer ? std::to_string(ctx.peer->pid) : "-"));
                         })
                    .ok());
    EXPECT_TRUE(router_
                    .Add("GET", "/slow/{ms}",
                         [this](Request&, RequestContext& ctx) -> asio::awaitable<Response> {
                           in_handler_.fetch_add(1);
                           asio::steady_timer timer(
                               co_await asio::this_coro::executor,
                               std::chrono::milliseconds(std::stoi(ctx.path_params.at("ms"))));
                           co_await timer.async_wait(asio::use_awaitable);
                           co_return TextResponse(HttpStatus::ok, "slow");
                         })
                    .ok());
    EXPECT_TRUE(router_
                    .Add("GET", "/throw",
                         [](Request&, RequestContext&) -> asio::awaitable<Response> {
                           throw std::runtime_error("boom");
                           co_return Response();
                         })
                    .ok());
    EXPECT_TRUE(router_
                    .Add("GET", "/inject",
                         [](Request&, RequestContext&) -> asio::awaitable<Response> {
                           Response res = TextResponse(HttpStatus::ok, "x");
                           res.set("X-Evil", "a\r\nSet-Cookie: stolen=1");
                           co_return res;
                         })
                    .ok());
    EXPECT_TRUE(router_
                    .Add("GET", "/close",
                         [](Request&, RequestContext&) -> asio::awaitable<Response> {
                           Response res = TextResponse(HttpStatus::ok, "bye");
                           res.set(Field::connection, "close");
                           co_return res;
                         })
                    .ok());
    pool_.Start();
  }

  ~ServerTest() override {
    server_.reset();
    pool_.Stop();
    pool_.Join();
  }

  ServerOptions Options() {
    ServerOptions options;
    options.random = &random_;
    options.clock = &clock_;
    options.on_access = records_.Hook();
    return options;
  }

  // Starts a server on 127.0.0.1 and returns its port.
  std::uint16_t Start(ServerOptions options) {
    server_ = std::make_unique<Server>(pool_, std::move(options), router_.AsHandler());
    auto endpoint = server_->ListenTcp("127.0.0.1", 0, std::nullopt, "test-listener");
    EXPECT_TRUE(endpoint.ok()) << endpoint.status();
    return endpoint.ok() ? endpoint->port() : 0;
  }
  std::uint16_t Start() { return Start(Options()); }

  RawResponse MustGet(std::uint16_t port, const std::string& target) {
    RawConnection c = RawConnection::Tcp(port);
    EXPECT_TRUE(c.ok());
    EXPECT_TRUE(c.Send(Get(target)));
    auto res = c.ReadResponse();
    EXPECT_TRUE(res.has_value()) << target;
    return res.value_or(RawResponse{});
  }

  // Sends raw bytes on a new connection; expects `status` and then the connection closed.
  void ExpectRejected(std::uint16_t port, const std::string& raw, int status) {
    RawConnection c = RawConnection::Tcp(port);
    ASSERT_TRUE(c.ok());
    c.Send(raw);
    auto res = c.ReadResponse();
    ASSERT_TRUE(res.has_value()) << raw.substr(0, 60);
    EXPECT_EQ(res->status, status) << raw.substr(0, 60);
    EXPECT_EQ(res->Header("connection"), "close");
    EXPECT_FALSE(res->Header("x-amzn-requestid").empty());
    EXPECT_TRUE(c.PeerClosed()) << raw.substr(0, 60);
  }

  IoPool pool_{2};
  core::SecureRandom random_;
  core::RealClock clock_;
  core::FakeClock fake_clock_;  // 2026-01-01T00:00:00Z
  testing::RecordSink records_;
  Router router_;
  std::atomic<int> in_handler_{0};
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  const auto port = Start();
  RawConnection c = RawConnection::Tcp(port);
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.Send(Get("/hello")));
    auto res = c.ReadResponse();
    ASSERT_TRUE(res.has_value()) << i;
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "hello");
    EXPECT_EQ(res->Header("server"), "");
    EXPECT_EQ(res->Header("connection"), "");
    ids.insert(res->Header("x-amzn-requestid"));
  }
  EXPECT_EQ(ids.size(), 5u);
  // Pipelined: two requests in one write, two responses in order.
  ASSERT_TRUE(
      c.Send(Get("/hello") + "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nping"));
  auto first = c.ReadResponse();
  auto second = c.ReadResponse();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->body, "hello");
  EXPECT_EQ(second->body, "ping");
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
}

TEST_F(ServerTest, DateComesFromTheInjectedClock) {
  ServerOptions options = Options();
  options.clock = &fake_clock_;
  const auto port = Start(options);
  EXPECT_EQ(MustGet(port, "/hello").Header("date"), "Thu, 01 Jan 2026 00:00:00 GMT");
  EXPECT_EQ(MustGet(port, "/nope").Header("date"), "Thu, 01 Jan 2026 00:00:00 GMT");
}

TEST_F(ServerTest, Http10ClosesUnlessKeepAliveAsked) {
  const auto port = Start();
  RawConnection c = RawConnection::Tcp(port);
  ASSERT_TRUE(c.Send("GET /hello HTTP/1.0\r\n\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(c.PeerClosed());

  RawConnection k = RawConnection::Tcp(port);
  ASSERT_TRUE(k.Send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  res = k.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->Header("connection"), "keep-alive");
  ASSERT_TRUE(k.Send("GET /hello HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(k.ReadResponse().has_value());
}

TEST_F(ServerTest, HeadSendsHeadersOnly) {
  const auto port = Start();
  RawConnection c = RawConnection::Tcp(port);
  ASSERT_TRUE(c.Send("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto res = c.ReadResponse(10s, /*head=*/true);
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->Header("content-length"), "5");
  // Had a body been sent, it would be read as the start of the next response.
  ASSERT_TRUE(c.Send(Get("/hello")));
  res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "hello");
}

TEST_F(ServerTest, RouterErrorsAreJsonWithRequestId) {
  const auto port = Start();
  RawResponse res = MustGet(port, "/nope");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.Header("content-type"), "application/x-amz-json-1.1");
  EXPECT_EQ(res.Header("x-amzn-errortype"), "ResourceNotFoundException");
  RawConnection c = RawConnection::Tcp(port);
  c.Send("DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  auto deleted = c.ReadResponse();
  ASSERT_TRUE(deleted.has_value());
  EXPECT_EQ(deleted->status, 405);
  EXPECT_EQ(deleted->Header("allow"), "GET, HEAD");
}

TEST_F(ServerTest, OversizedHeaderIs431AndClosed) {
  ServerOptions options = Options();
  options.max_header_bytes = 2048;
  const auto port = Start(options);
  ExpectRejected(port, Get("/hello", "X-Big: " + std::string(20000, 'a') + "\r\n"), 431);
  // Many small headers count too.
  std::string many;
  for (int i = 0; i < 400; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  ExpectRejected(port, Get("/hello", many), 431);
  EXPECT_EQ(MustGet(port, "/hello").status, 200);
  auto record = records_.WaitFor([](const AccessRecord& r) { return r.status == 431; });
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->reject, RejectReason::kHeaderTooLarge);
  EXPECT_GE(server_->stats().rejects[static_cast<int>(RejectReason::kHeaderTooLarge)], 1u);
}

TEST_F(ServerTest, OversizedBodyIs413WithoutReadingIt) {
  ServerOptions options = Options();
  options.max_body_bytes = 1024;
  const auto port = Start(options);
  // Only the header is sent: the server must answer from the Content-Length alone.
  ExpectRejected(port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n", 413);
  // A chunked body is cut once it passes the limit.
  std::string chunked = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 8; ++i) chunked += "200\r\n" + std::string(512, 'z') + "\r\n";
  ExpectRejected(port, chunked + "0\r\n\r\n", 413);
  RawConnection c = RawConnection::Tcp(port);
  c.Send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n" + std::string(1024, 'y'));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body.size(), 1024u);
}

TEST_F(ServerTest, MalformedRequestsAre400AndClosed) {
  const auto port = Start();
  for (const std::string raw : {
           "GARBAGE\r\n\r\n",
           "GET /hello HTTP/9.9\r\nHost: x\r\n\r\n",
           "GET /hello HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
           "GET /hello HTTP/1.1\r\n\r\n",
           "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
           "GET /a/../hello HTTP/1.1\r\nHost: x\r\n\r\n",
           "GET /%2e%2e/hello HTTP/1.1\r\nHost: x\r\n\r\n",
           "GET /hello%00 HTTP/1.1\r\nHost: x\r\n\r\n",
           "GET /hello%zz HTTP/1.1\r\nHost: x\r\n\r\n",
           "GET http://other.example/hello HTTP/1.1\r\nHost: x\r\n\r\n",
           "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
       }) {
    ExpectRejected(port, raw, 400);
  }
  EXPECT_EQ(MustGet(port, "/hello").status, 200);
}

TEST_F(ServerTest, SmugglingShapesAre400AndClosed) {
  const auto port = Start();
  for (const std::string raw : {
           "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: "
           "chunked\r\n\r\n0\r\n\r\n",
           "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: "
           "5\r\n\r\n0\r\n\r\n",
           "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
           "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
           "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2,2\r\n\r\nab",
           "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, "
           "identity\r\n\r\n0\r\n\r\n",
           "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nGET /hello "
           "HTTP/1.1\r\n\r\n",
           "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: "
           "chunked\r\n\r\n0\r\n\r\n",
           "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       }) {
    ExpectRejected(port, raw, 400);
  }
  auto record = records_.WaitFor([](const AccessRecord& r) { return r.status == 400; });
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->reject, RejectReason::kMalformed);
  EXPECT_EQ(record->method, "POST");
  EXPECT_EQ(record->path, "/echo");
}

TEST_F(ServerTest, SlowlorisGets408WhileOthersAreServed) {
  ServerOptions options = Options();
  options.header_timeout = 300ms;
  const auto port = Start(options);
  RawConnection slow = RawConnection::Tcp(port);
  ASSERT_TRUE(slow.Send("GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: "));
  int served = 0;
  bool answered = false;
  // Each byte comes well inside any per-read timeout; only a total header deadline ends this.
  for (int i = 0; i < 400 && !answered; ++i) {
    if (!slow.Send("a")) break;
    if (MustGet(port, "/hello").status == 200) ++served;
    answered = slow.Readable(20ms);
  }
  ASSERT_TRUE(answered) << "the slow header was never cut off";
  auto res = slow.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 408);
  EXPECT_TRUE(slow.PeerClosed());
  EXPECT_GT(served, 0);
  auto record = records_.WaitFor([](const AccessRecord& r) { return r.status == 408; });
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->reject, RejectReason::kHeaderTimeout);
}

TEST_F(ServerTest, SlowBodyGets408) {
  ServerOptions options = Options();
  options.body_timeout = 300ms;
  const auto port = Start(options);
  RawConnection c = RawConnection::Tcp(port);
  ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 408);
  EXPECT_TRUE(c.PeerClosed());
}

TEST_F(ServerTest, ConnectionThatSendsNothingIsClosedQuietly) {
  ServerOptions options = Options();
  options.header_timeout = 200ms;
  const auto port = Start(options);
  RawConnection c = RawConnection::Tcp(port);
  EXPECT_FALSE(c.ReadResponse().has_value());  // closed, without a response
  EXPECT_EQ(server_->stats().responses, 0u);
}

TEST_F(ServerTest, IdleKeepAliveConnectionIsClosed) {
  ServerOptions options = Options();
  options.idle_timeout = 200ms;
  const auto port = Start(options);
  RawConnection c = RawConnection::Tcp(port);
  ASSERT_TRUE(c.Send(Get("/hello")));
  ASSERT_TRUE(c.ReadResponse().has_value());
  EXPECT_TRUE(c.PeerClosed());
}

TEST_F(ServerTest, ThousandConcurrentConnections) {
  constexpr int kConnections = 1000;
  ASSERT_GE(testing::RaiseFileLimit(2 * kConnections + 256), 2u * kConnections + 64)
      << "RLIMIT_NOFILE too low for this test";
  const auto port = Start();
  std::vector<RawConnection> connections;
  connections.reserve(kConnections);
  for (int i = 0; i < kConnections; ++i) {
    connections.push_back(RawConnection::Tcp(port));
    ASSERT_TRUE(connections.back().ok()) << i;
  }
  // Every connection is open before any request is sent.
  for (auto& c : connections) ASSERT_TRUE(c.Send(Get("/hello")));
  int ok = 0;
  for (auto& c : connections) {
    auto res = c.ReadResponse(30s);
    if (res && res->status == 200) ++ok;
  }
  EXPECT_EQ(ok, kConnections);
  EXPECT_EQ(server_->stats().connections_accepted, static_cast<std::uint64_t>(kConnections));
}

TEST_F(ServerTest, MaxConnectionsAnswers503) {
  ServerOptions options = Options();
  options.max_connections = 2;
  const auto port = Start(options);
  RawConnection a = RawConnection::Tcp(port);
  RawConnection b = RawConnection::Tcp(port);
  for (RawConnection* c : {&a, &b}) {
    ASSERT_TRUE(c->Send(Get("/hello")));
    ASSERT_TRUE(c->ReadResponse().has_value());
  }
  RawConnection third = RawConnection::Tcp(port);
  auto res = third.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->Header("retry-after"), "1");
  EXPECT_TRUE(third.PeerClosed());
  auto record = records_.WaitFor([](const AccessRecord& r) { return r.status == 503; });
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->reject, RejectReason::kOverCapacity);

  a.Close();
  ASSERT_TRUE(Eventually([&] { return server_->stats().connections_active == 1; }));
  EXPECT_EQ(MustGet(port, "/hello").status, 200);
}

TEST_F(ServerTest, MaxRequestsPerConnection) {
  ServerOptions options = Options();
  options.max_requests_per_connection = 2;
  const auto port = Start(options);
  RawConnection c = RawConnection::Tcp(port);
  ASSERT_TRUE(c.Send(Get("/hello")));
  auto first = c.ReadResponse();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->Header("connection"), "");
  ASSERT_TRUE(c.Send(Get("/hello")));
  auto second = c.ReadResponse();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->Header("connection"), "close");
  EXPECT_TRUE(c.PeerClosed());
}

TEST_F(ServerTest, HandlerAskingToCloseIsHonoured) {
  const auto port = Start();
  RawConnection c = RawConnection::Tcp(port);
  ASSERT_TRUE(c.Send(Get("/close")));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->Header("connection"), "close");
  EXPECT_TRUE(c.PeerClosed());
}

TEST_F(ServerTest, Expect100Continue) {
  const auto port = Start();
  RawConnection c = RawConnection::Tcp(port);
  ASSERT_TRUE(c.Send(
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = c.ReadResponse();
  ASSERT_TRUE(interim.has_value());
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c.Send("hello"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "hello");
}

TEST_F(ServerTest, HandlerExceptionIs500AndServerKeepsWorking) {
  const auto port = Start();
  RawConnection c = RawConnection::Tcp(port);
  ASSERT_TRUE(c.Send(Get("/throw")));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 500);
  EXPECT_EQ(res->Header("x-amzn-errortype"), "InternalFailure");
  EXPECT_EQ(res->body.find("boom"), std::string::npos);  // the exception text is not shown
  // The same connection goes on.
  ASSERT_TRUE(c.Send(Get("/hello")));
  res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  auto record = records_.WaitFor([](const AccessRecord& r) { return r.status == 500; });
  ASSERT_TRUE(record.has_value());
  EXPECT_NE(record->error.find("boom"), std::string::npos);
  EXPECT_EQ(record->reject, RejectReason::kNone);
  EXPECT_EQ(server_->stats().handler_failures, 1u);
}

TEST_F(ServerTest, HeaderInjectionFromHandlerBecomes500) {
  const auto port = Start();
  RawResponse res = MustGet(port, "/inject");
  EXPECT_EQ(res.status, 500);
  EXPECT_EQ(res.Header("set-cookie"), "");
  EXPECT_EQ(res.Header("x-evil"), "");
}

TEST_F(ServerTest, AccessRecordLeavesOutTheQuery) {
  const auto port = Start();
  RawResponse res = MustGet(port, "/hello?X-Amz-Signature=secret&key=abc");
  ASSERT_EQ(res.status, 200);
  const std::string id = res.Header("x-amzn-requestid");
  auto record = records_.WaitFor([&](const AccessRecord& r) { return r.request_id == id; });
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->method, "GET");
  EXPECT_EQ(record->path, "/hello");
  EXPECT_EQ(record->status, 200);
  EXPECT_GT(record->request_bytes, 0u);
  EXPECT_GT(record->response_bytes, 0u);
  EXPECT_EQ(record->listener_name, "test-listener");
  EXPECT_FALSE(record->tls);
  EXPECT_EQ(record->remote.rfind("127.0.0.1:", 0), 0u);
  for (const auto& r : records_.All()) {
    EXPECT_EQ(r.path.find("secret"), std::string::npos);
  }
}

TEST_F(ServerTest, ContextCarriesRequestIdRemoteAndListener) {
  const auto port = Start();
  RawResponse res = MustGet(port, "/ctx");
  ASSERT_EQ(res.status, 200);
  EXPECT_EQ(res.body.substr(0, res.body.find('|')), res.Header("x-amzn-requestid"));
  EXPECT_NE(res.body.find("|127.0.0.1:"), std::string::npos);
  EXPECT_NE(res.body.find("|test-listener|plain|-"), std::string::npos);
}

TEST_F(ServerTest, GracefulShutdownLetsInFlightRequestsFinish) {
  const auto port = Start();
  RawConnection idle = RawConnection::Tcp(port);
  ASSERT_TRUE(idle.Send(Get("/hello")));
  ASSERT_TRUE(idle.ReadResponse().has_value());
  RawConnection busy = RawConnection::Tcp(port);
  ASSERT_TRUE(busy.Send(Get("/slow/500")));
  ASSERT_TRUE(Eventually([&] { return in_handler_.load() == 1; }));
  // A request whose body is still arriving is in flight too.
  RawConnection partial = RawConnection::Tcp(port);
  ASSERT_TRUE(partial.Send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234"));
  ASSERT_TRUE(Eventually([&] { return server_->stats().connections_active == 3; }));

  server_->Shutdown(20s);
  EXPECT_TRUE(idle.PeerClosed());
  EXPECT_TRUE(Eventually([&] { return !RawConnection::Tcp(port).ok(); }))
      << "new connections must be refused while draining";
  auto res = busy.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->Header("connection"), "close");
  EXPECT_TRUE(busy.PeerClosed());
  ASSERT_TRUE(partial.Send("56789"));
  res = partial.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->body, "0123456789");
  EXPECT_EQ(res->Header("connection"), "close");
  EXPECT_TRUE(server_->WaitFor(20s));
}

TEST_F(ServerTest, DrainDeadlineForceClosesWhatRemains) {
  const auto port = Start();
  RawConnection stuck = RawConnection::Tcp(port);
  ASSERT_TRUE(stuck.Send(Get("/slow/60000")));
  ASSERT_TRUE(Eventually([&] { return in_handler_.load() == 1; }));
  RawConnection stuck_body = RawConnection::Tcp(port);
  ASSERT_TRUE(stuck_body.Send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc"));
  ASSERT_TRUE(Eventually([&] { return server_->stats().connections_active == 2; }));
  server_->Shutdown(200ms);
  EXPECT_FALSE(stuck.ReadResponse().has_value());
  EXPECT_FALSE(stuck_body.ReadResponse().has_value());
  // The cancelled handler unwinds, so the drain completes.
  EXPECT_TRUE(server_->WaitFor(20s));
  auto record = records_.WaitFor([](const AccessRecord& r) {
    return r.path == "/slow/60000" && r.error.find("drain deadline") != std::string::npos;
  });
  EXPECT_TRUE(record.has_value());
}

TEST_F(ServerTest, ShutdownWithNothingToDrain) {
  Start();
  server_->Shutdown(5s);
  EXPECT_TRUE(server_->WaitFor(10s));
  EXPECT_FALSE(server_->ListenTcp("127.0.0.1", 0).ok());
}

TEST_F(ServerTest, UnixSocket) {
  testing::TempDir dir;
  const std::string path = dir.File("api.sock");
  server_ = std::make_unique<Server>(pool_, Options(), router_.AsHandler());
  ASSERT_TRUE(server_->ListenUnix(path).ok());
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);

  RawConnection c = RawConnection::Unix(path);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.Send(Get("/ctx")));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("|unix|unix:" + path + "|plain|" + std::to_string(::getpid())),
            std::string::npos)
      << res->body;

  // A live socket is not taken over; a regular file is not replaced.
  Server other(pool_, Options(), router_.AsHandler());
  EXPECT_EQ(other.ListenUnix(path).code(), core::StatusCode::kAlreadyExists);
  const std::string file = dir.File("file");
  const int file_fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(file_fd, 0);
  ::close(file_fd);
  EXPECT_EQ(other.ListenUnix(file).code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(other.ListenUnix(dir.File(std::string(200, 'x'))).code(),
            core::StatusCode::kInvalidArgument);

  server_->Shutdown(1s);
  EXPECT_TRUE(server_->WaitFor(10s));
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "the socket file is removed on shutdown";
}

TEST_F(ServerTest, UnixSocketReplacesStaleFile) {
  testing::TempDir dir;
  const std::string path = dir.File("stale.sock");
  {  // A socket file left behind by a process that is gone: bound, never listened on, closed.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
  }
  server_ = std::make_unique<Server>(pool_, Options(), router_.AsHandler());
  ASSERT_TRUE(server_->ListenUnix(path).ok());
  RawConnection c = RawConnection::Unix(path);
  ASSERT_TRUE(c.Send(Get("/hello")));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
}

TEST_F(ServerTest, ServeListeningFd) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::uint16_t port = ntohs(addr.sin_port);

  server_ = std::make_unique<Server>(pool_, Options(), router_.AsHandler());
  ASSERT_TRUE(server_->ServeListeningFd(fd, std::nullopt, "sandbox-fn-1").ok());
  RawResponse res = MustGet(port, "/ctx");
  EXPECT_EQ(res.status, 200);
  EXPECT_NE(res.body.find("|sandbox-fn-1|"), std::string::npos);

  // Not a listening socket: refused (and closed).
  const int plain = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(server_->ServeListeningFd(plain).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(::fcntl(plain, F_GETFD), -1);
  const int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(server_->ServeListeningFd(udp).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(server_->ServeListeningFd(-1).code(), core::StatusCode::kInvalidArgument);
}

TEST_F(ServerTest, ServeListeningUnixFd) {
  testing::TempDir dir;
  const std::string path = dir.File("handed.sock");
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  server_ = std::make_unique<Server>(pool_, Options(), router_.AsHandler());
  ASSERT_TRUE(server_->ServeListeningFd(fd).ok());
  RawConnection c = RawConnection::Unix(path);
  ASSERT_TRUE(c.Send(Get("/ctx")));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_NE(res->body.find("|unix|fd:"), std::string::npos) << res->body;
}

TEST_F(ServerTest, ListenErrorsAreStatuses) {
  const auto port = Start();
  Server other(pool_, Options(), router_.AsHandler());
  auto taken = other.ListenTcp("127.0.0.1", port);
  EXPECT_EQ(taken.status().code(), core::StatusCode::kUnavailable);
  EXPECT_FALSE(other.ListenTcp("no-such-host.invalid", 0).ok());
}

}  // namespace
}  // namespace moatless::http
