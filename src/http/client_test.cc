#include "http/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/clock.h"
#include "core/random.h"
#include "http/router.h"
#include "http/server.h"
#include "http/status_response.h"
#include "http/test_support.h"

namespace moatless::http {
namespace {

using namespace std::chrono_literals;

TEST(ParseUrlTest, Forms) {
  auto u = ParseUrl("http://example.com/a/b?c=d%20e");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "example.com");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/a/b?c=d%20e");
  EXPECT_EQ(u->host_header, "example.com");

  u = ParseUrl("HTTPS://127.0.0.1:8443");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->host_header, "127.0.0.1:8443");

  u = ParseUrl("https://[::1]/x");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->host_header, "[::1]");

  u = ParseUrl("http+unix://%2Frun%2Fmoatless%2Fapi.sock/healthz?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->unix_path, "/run/moatless/api.sock");
  EXPECT_EQ(u->target, "/healthz?x=1");
  EXPECT_EQ(u->host_header, "localhost");

  for (const char* bad : {"ftp://x/", "http://user:pw@x/", "http:///path", "not a url",
                          "http://x:0/", "http://x:99999/"}) {
    EXPECT_EQ(ParseUrl(bad).status().code(), core::StatusCode::kInvalidArgument) << bad;
  }
}

class ClientTest : public ::testing::Test {
 protected:
  ClientTest() {
    EXPECT_TRUE(router_
                    .Add("GET", "/hello",
                         [](Request& req, RequestContext&) -> asio::awaitable<Response> {
                           co_return TextResponse(HttpStatus::ok,
                                                  "hello " + std::string(req[Field::host]));
                         })
                    .ok());
    EXPECT_TRUE(router_
                    .Add("POST", "/echo",
                         [](Request& req, RequestContext&) -> asio::awaitable<Response> {
                           co_return TextResponse(HttpStatus::ok, req.body());
                         })
                    .ok());
    EXPECT_TRUE(router_
                    .Add("GET", "/big",
                         [](Request&, RequestContext&) -> asio::awaitable<Response> {
                           co_return TextResponse(HttpStatus::ok, std::string(100000, 'b'));
                         })
                    .ok());
    EXPECT_TRUE(router_
                    .Add("GET", "/slow",
                         [](Request&, RequestContext&) -> asio::awaitable<Response> {
                           asio::steady_timer timer(co_await asio::this_coro::executor, 30s);
                           co_await timer.async_wait(asio::use_awaitable);
                           co_return TextResponse(HttpStatus::ok, "late");
                         })
                    .ok());
    pool_.Start();
    ServerOptions options;
    options.random = &random_;
    options.clock = &clock_;
    server_ = std::make_unique<Server>(pool_, options, router_.AsHandler());
    auto endpoint = server_->ListenTcp("127.0.0.1", 0);
    EXPECT_TRUE(endpoint.ok());
    base_ = "http://127.0.0.1:" + std::to_string(endpoint->port());
    socket_path_ = dir_.File("c.sock");
    EXPECT_TRUE(server_->ListenUnix(socket_path_).ok());
  }
  ~ClientTest() override {
    server_.reset();
    pool_.Stop();
    pool_.Join();
  }

  Client MakeClient(ClientOptions options = {}) {
    auto client = Client::Create(std::move(options));
    EXPECT_TRUE(client.ok());
    return std::move(client).value();
  }

  testing::TempDir dir_;
  IoPool pool_{2};
  core::SecureRandom random_;
  core::RealClock clock_;
  Router router_;
  std::unique_ptr<Server> server_;
  std::string base_;
  std::string socket_path_;
};

TEST_F(ClientTest, FetchOverTcpAndUnix) {
  Client client = MakeClient();
  auto res = client.FetchBlocking(base_ + "/hello", MakeRequest(Verb::get));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_EQ(res->body(), "hello " + base_.substr(7));  // Host came from the URL

  res =
      client.FetchBlocking(base_ + "/echo", MakeRequest(Verb::post, "/", "payload", "text/plain"));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->body(), "payload");

  std::string encoded;
  for (char c : socket_path_) encoded += c == '/' ? std::string("%2F") : std::string(1, c);
  res = client.FetchBlocking("http+unix://" + encoded + "/hello", MakeRequest(Verb::get));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->body(), "hello localhost");

  // Error statuses are responses, not failures.
  res = client.FetchBlocking(base_ + "/missing", MakeRequest(Verb::get));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->result_int(), 404u);
}

TEST_F(ClientTest, ConnectionCarriesSeveralRequests) {
  Client client = MakeClient();
  auto bodies = testing::RunSync([&]() -> asio::awaitable<std::vector<std::string>> {
    std::vector<std::string> out;
    auto connection = co_await client.Connect(base_);
    if (!connection.ok()) co_return out;
    for (int i = 0; i < 3; ++i) {
      auto res = co_await (*connection)
                     ->RoundTrip(MakeRequest(Verb::post, "/echo", "n" + std::to_string(i)));
      out.push_back(res.ok() ? res->body() : res.status().ToString());
    }
    EXPECT_TRUE((*connection)->is_open());
    co_return out;
  }());
  EXPECT_EQ(bodies, (std::vector<std::string>{"n0", "n1", "n2"}));
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
}

TEST_F(ClientTest, RefusedConnectionIsUnavailable) {
  // A port that was just free: bind, read the port, close.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  auto res = MakeClient().FetchBlocking("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)),
                                        MakeRequest(Verb::get));
  EXPECT_EQ(res.status().code(), core::StatusCode::kUnavailable) << res.status();
  res = MakeClient().FetchBlocking("http+unix://%2Fno%2Fsuch.sock/", MakeRequest(Verb::get));
  EXPECT_EQ(res.status().code(), core::StatusCode::kUnavailable) << res.status();
}

TEST_F(ClientTest, ReadTimeoutIsDeadlineExceeded) {
  auto res =
      MakeClient({.read_timeout = 200ms}).FetchBlocking(base_ + "/slow", MakeRequest(Verb::get));
  EXPECT_EQ(res.status().code(), core::StatusCode::kDeadlineExceeded) << res.status();
}

TEST_F(ClientTest, ConnectTimeoutCoversTheTlsHandshake) {
  // A listener nobody accepts on: TCP connects (the kernel's backlog), the TLS handshake never
  // gets an answer.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  auto res = MakeClient({.connect_timeout = 200ms, .verify_tls = false})
                 .FetchBlocking("https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)),
                                MakeRequest(Verb::get));
  ::close(fd);
  EXPECT_EQ(res.status().code(), core::StatusCode::kDeadlineExceeded) << res.status();
}

TEST_F(ClientTest, ResponseBodyLimit) {
  auto res = MakeClient({.max_response_body_bytes = 1000})
                 .FetchBlocking(base_ + "/big", MakeRequest(Verb::get));
  EXPECT_EQ(res.status().code(), core::StatusCode::kPayloadTooLarge) << res.status();
  res = MakeClient().FetchBlocking(base_ + "/big", MakeRequest(Verb::get));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->body().size(), 100000u);
}

TEST_F(ClientTest, BadUrlIsInvalidArgument) {
  auto res = MakeClient().FetchBlocking("gopher://x/", MakeRequest(Verb::get));
  EXPECT_EQ(res.status().code(), core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace moatless::http
