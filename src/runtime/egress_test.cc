// Tests of the egress allowlist (parsing, matching, restricted addresses) and of the egress proxy
// end to end on 127.0.0.1 in the test process's own network namespace: a real origin server
// (http::Server), real client sockets, the proxy on an ephemeral port.
#include "runtime/egress.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/random.h"
#include "http/io_pool.h"
#include "http/server.h"
#include "runtime/egress_proxy.h"

namespace moatless::runtime {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::ip::make_address;

// ---------------------------------------------------------------------------------------------
// Parsing

EgressAllowlist MustParse(const std::vector<std::string>& entries) {
  auto parsed = EgressAllowlist::Parse(entries);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : EgressAllowlist();
}

TEST(EgressAllowlistParse, AcceptsSpinForms) {
  const std::vector<std::string> valid = {"http://example.com",
                                          "https://example.com",
                                          "*://example.com:443",
                                          "https://example.com:8443",
                                          "http://EXAMPLE.com.:80",
                                          "https://*.example.com",
                                          "*://*:*",
                                          "http://*:8000-8100",
                                          "https://203.0.113.7",
                                          "http://[2001:db8::1]:8080",
                                          "http://[::1]",
                                          "*://10.0.0.0/8:*",
                                          "*://[fd00::]/8:443",
                                          "*://[fd00::/8]:443",
                                          "http://my-host_1.internal:1",
                                          "https://x.example.com:65535"};
  for (const std::string& entry : valid) {
    auto parsed = EgressAllowlist::Parse({entry});
    EXPECT_TRUE(parsed.ok()) << entry << ": " << parsed.status();
  }
  const EgressAllowlist list = MustParse({"http://EXAMPLE.com.", "*://10.1.2.3/8:1-2"});
  ASSERT_EQ(list.entries().size(), 2u);
  EXPECT_EQ(list.entries()[0].name, "example.com");
  EXPECT_EQ(list.entries()[0].port_min, 80);
  EXPECT_EQ(list.entries()[0].port_max, 80);
  EXPECT_EQ(list.entries()[1].host, EgressEntry::Host::kCidr);
  EXPECT_EQ(list.entries()[1].prefix_length, 8u);
  EXPECT_TRUE(MustParse({}).empty());
}

TEST(EgressAllowlistParse, RefusesBadEntriesNamingThem) {
  const std::vector<std::pair<std::string, std::string>> invalid = {
      {"http://example.com/path", "path"},
      {"http://example.com:80/", "path"},
      {"http://example.com?q=1", "query"},
      {"http://example.com#frag", "fragment"},
      {"http://user:pw@example.com", "userinfo"},
      {"ftp://example.com:21", "scheme"},
      {"example.com:80", "scheme://"},
      {"*://example.com", "port is required"},
      {"http://example.com:0", "bad port"},
      {"http://example.com:65536", "bad port"},
      {"http://example.com:http", "bad port"},
      {"http://example.com:", "bad port"},
      {"http://example.com:9000-8000", "reversed"},
      {"http://:80", "host is empty"},
      {"http://", "host is empty"},
      {"http://foo.*.com", "wildcard"},
      {"http://*example.com", "wildcard"},
      {"http://example.*", "wildcard"},
      {"http://**.example.com", "wildcard"},
      {"http://::1:80", "host is empty"},
      {"http://[not-v6]:80", "IPv6"},
      {"http://[::1", "unterminated"},
      {"http://10.0.0.0/33", "prefix"},
      {"http://example.com/8", "CIDR"},
      {"http://exa mple.com", "space"},
      {"http://-bad-.com", "host name"},
      {"http://127.1", "host name"},
      {"", "empty"},
  };
  for (const auto& [entry, problem] : invalid) {
    auto parsed = EgressAllowlist::Parse({"https://fine.example.com", entry});
    ASSERT_FALSE(parsed.ok()) << entry;
    EXPECT_EQ(parsed.status().code(), core::StatusCode::kInvalidArgument) << entry;
    EXPECT_NE(parsed.status().message().find("'" + entry + "'"), std::string::npos)
        << entry << ": " << parsed.status();
    EXPECT_NE(parsed.status().message().find(problem), std::string::npos)
        << entry << ": " << parsed.status();
  }
}

TEST(EgressAllowlistParse, RefusesMoreThan64Entries) {
  std::vector<std::string> entries(kMaxEgressEntries, "https://example.com");
  EXPECT_TRUE(EgressAllowlist::Parse(entries).ok());
  entries.push_back("https://example.com");
  auto parsed = EgressAllowlist::Parse(entries);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find("65"), std::string::npos) << parsed.status();
}

// ---------------------------------------------------------------------------------------------
// Matching

TEST(EgressAllowlistMatch, ExactHostCaseInsensitiveTrailingDot) {
  const EgressAllowlist list = MustParse({"https://API.Example.com"});
  EXPECT_TRUE(list.Allows("https", "api.example.com", 443));
  EXPECT_TRUE(list.Allows("HTTPS", "Api.EXAMPLE.com.", 443));
  EXPECT_FALSE(list.Allows("https", "example.com", 443));
  EXPECT_FALSE(list.Allows("https", "x.api.example.com", 443));
  EXPECT_FALSE(list.Allows("https", "api.example.com", 8443));
  EXPECT_FALSE(list.Allows("http", "api.example.com", 443));
  EXPECT_FALSE(list.Allows("ftp", "api.example.com", 443));
  EXPECT_FALSE(list.Allows("https", "", 443));
}

TEST(EgressAllowlistMatch, SubdomainWildcard) {
  const EgressAllowlist list = MustParse({"https://*.example.com"});
  EXPECT_TRUE(list.Allows("https", "a.example.com", 443));
  EXPECT_TRUE(list.Allows("https", "a.b.example.com", 443));
  EXPECT_TRUE(list.Allows("https", "A.Example.Com.", 443));
  EXPECT_FALSE(list.Allows("https", "example.com", 443));
  EXPECT_FALSE(list.Allows("https", "badexample.com", 443));
  EXPECT_FALSE(list.Allows("https", "a.example.com.evil.net", 443));
  EXPECT_FALSE(list.Allows("https", ".example.com", 443));
  // A wildcard name never matches an IP literal.
  EXPECT_FALSE(list.Allows("https", "93.184.216.34", 443));
}

TEST(EgressAllowlistMatch, PortsRangesAndDefaults) {
  const EgressAllowlist list =
      MustParse({"http://a.test", "https://b.test", "*://c.test:8000-8100", "https://d.test:*"});
  EXPECT_TRUE(list.Allows("http", "a.test", 80));
  EXPECT_FALSE(list.Allows("http", "a.test", 443));
  EXPECT_FALSE(list.Allows("https", "a.test", 80));
  EXPECT_TRUE(list.Allows("https", "b.test", 443));
  EXPECT_FALSE(list.Allows("https", "b.test", 80));
  EXPECT_FALSE(list.Allows("http", "c.test", 7999));
  EXPECT_TRUE(list.Allows("http", "c.test", 8000));
  EXPECT_TRUE(list.Allows("https", "c.test", 8050));
  EXPECT_TRUE(list.Allows("http", "c.test", 8100));
  EXPECT_FALSE(list.Allows("http", "c.test", 8101));
  EXPECT_TRUE(list.Allows("https", "d.test", 1));
  EXPECT_TRUE(list.Allows("https", "d.test", 65535));
  EXPECT_FALSE(list.Allows("http", "d.test", 443));
}

TEST(EgressAllowlistMatch, SchemeWildcardAndAnyHost) {
  const EgressAllowlist any_scheme = MustParse({"*://e.test:443"});
  EXPECT_TRUE(any_scheme.Allows("http", "e.test", 443));
  EXPECT_TRUE(any_scheme.Allows("https", "e.test", 443));
  const EgressAllowlist any_host = MustParse({"http://*:*"});
  EXPECT_TRUE(any_host.Allows("http", "anything.test", 1234));
  EXPECT_TRUE(any_host.Allows("http", "8.8.8.8", 80));
  EXPECT_FALSE(any_host.Allows("https", "anything.test", 443));
  EXPECT_FALSE(MustParse({}).Allows("http", "anything.test", 80));
}

TEST(EgressAllowlistMatch, IpLiteralsAndCidrs) {
  const EgressAllowlist list =
      MustParse({"http://203.0.113.7:80", "*://198.51.100.0/24:*", "https://[2001:db8::1]"});
  EXPECT_TRUE(list.Allows("http", "203.0.113.7", 80));
  EXPECT_TRUE(list.Allows("http", "[::ffff:203.0.113.7]", 80));  // the same destination
  EXPECT_FALSE(list.Allows("http", "203.0.113.8", 80));
  EXPECT_TRUE(list.Allows("https", "198.51.100.255", 9));
  EXPECT_FALSE(list.Allows("https", "198.51.101.0", 9));
  EXPECT_TRUE(list.Allows("https", "[2001:DB8::1]", 443));
  EXPECT_TRUE(list.Allows("https", "2001:db8:0::1", 443));
  EXPECT_FALSE(list.Allows("https", "2001:db8::2", 443));
  // A name is not an address, even one that would resolve to it.
  EXPECT_FALSE(list.Allows("http", "host.test", 80));
}

// ---------------------------------------------------------------------------------------------
// Restricted addresses

TEST(EgressRestrictedAddress, BoundariesOfEveryClass) {
  const std::vector<std::pair<std::string, bool>> table = {
      // "this network" and unspecified
      {"0.0.0.0", true},
      {"0.255.255.255", true},
      {"1.0.0.0", false},
      // RFC 1918
      {"9.255.255.255", false},
      {"10.0.0.0", true},
      {"10.255.255.255", true},
      {"11.0.0.0", false},
      {"172.15.255.255", false},
      {"172.16.0.0", true},
      {"172.31.255.255", true},
      {"172.32.0.0", false},
      {"192.167.255.255", false},
      {"192.168.0.0", true},
      {"192.168.255.255", true},
      {"192.169.0.0", false},
      // CGNAT
      {"100.63.255.255", false},
      {"100.64.0.0", true},
      {"100.127.255.255", true},
      {"100.128.0.0", false},
      // loopback
      {"126.255.255.255", false},
      {"127.0.0.1", true},
      {"127.255.255.255", true},
      {"128.0.0.0", false},
      // link-local and the metadata address
      {"169.253.255.255", false},
      {"169.254.0.0", true},
      {"169.254.169.254", true},
      {"169.255.0.0", false},
      // multicast, reserved, broadcast
      {"223.255.255.255", false},
      {"224.0.0.1", true},
      {"239.255.255.255", true},
      {"240.0.0.0", true},
      {"255.255.255.255", true},
      // public
      {"8.8.8.8", false},
      {"93.184.216.34", false},
      // IPv6
      {"::", true},
      {"::1", true},
      {"::2", true},
      {"2001:4860:4860::8888", false},
      {"fe80::1", true},
      {"febf:ffff::1", true},
      {"fec0::1", true},
      {"feff::1", true},
      {"fe7f:ffff::1", false},
      {"fbff:ffff::1", false},
      {"fc00::1", true},
      {"fd00:ec2::254", true},
      {"ff02::1", true},
      // IPv4-mapped and IPv4-compatible
      {"::ffff:127.0.0.1", true},
      {"::ffff:169.254.169.254", true},
      {"::ffff:10.1.2.3", true},
      {"::ffff:8.8.8.8", false},
      {"::127.0.0.1", true},
      // NAT64
      {"64:ff9b::127.0.0.1", true},
      {"64:ff9b::a9fe:a9fe", true},
      {"64:ff9b::8.8.8.8", false},
      {"64:ff9b:1::808:808", true},
      // 6to4
      {"2002:7f00:1::", true},
      {"2002:a9fe:a9fe::1", true},
      {"2002:0808:0808::1", false},
      // Teredo: server 8.8.8.8, client ~(127.0.0.1) = 128.255.255.254
      {"2001:0:808:808:0:0:80ff:fffe", true},
      {"2001:0:808:808:0:0:f7f7:f7f7", false},
  };
  for (const auto& [text, restricted] : table) {
    EXPECT_EQ(IsRestrictedAddress(make_address(text)), restricted) << text;
  }
}

TEST(EgressRestrictedAddress, UnlockedOnlyByEntriesNamingThem) {
  const auto loopback = make_address("127.0.0.1");
  const auto metadata = make_address("169.254.169.254");
  const auto mapped = make_address("::ffff:127.0.0.1");
  const auto public_address = make_address("93.184.216.34");

  const EgressAllowlist wildcards = MustParse({"*://*:*", "http://*.internal.test:80"});
  EXPECT_TRUE(wildcards.AllowsAddress("http", public_address, "example.com", 80));
  EXPECT_FALSE(wildcards.AllowsAddress("http", loopback, "localhost", 80));
  EXPECT_FALSE(wildcards.AllowsAddress("http", metadata, "169.254.169.254", 80));
  EXPECT_FALSE(wildcards.AllowsAddress("http", loopback, "db.internal.test", 80));
  EXPECT_FALSE(wildcards.AllowsAddress("http", mapped, "127.0.0.1", 80));

  const EgressAllowlist literal = MustParse({"http://127.0.0.1:8080"});
  EXPECT_TRUE(literal.AllowsAddress("http", loopback, "127.0.0.1", 8080));
  EXPECT_TRUE(literal.AllowsAddress("http", mapped, "::ffff:127.0.0.1", 8080));
  EXPECT_FALSE(literal.AllowsAddress("http", loopback, "127.0.0.1", 8081));
  EXPECT_FALSE(literal.AllowsAddress("https", loopback, "127.0.0.1", 8080));
  EXPECT_FALSE(literal.AllowsAddress("http", make_address("127.0.0.2"), "127.0.0.2", 8080));

  const EgressAllowlist cidr = MustParse({"*://10.0.0.0/8:*"});
  EXPECT_TRUE(cidr.AllowsAddress("https", make_address("10.9.8.7"), "db.corp.test", 5432));
  EXPECT_FALSE(cidr.AllowsAddress("https", make_address("192.168.1.1"), "db.corp.test", 5432));

  const EgressAllowlist name = MustParse({"http://localhost:8080", "https://db.internal.test"});
  EXPECT_TRUE(name.AllowsAddress("http", loopback, "localhost", 8080));
  EXPECT_TRUE(name.AllowsAddress("http", make_address("::1"), "LOCALHOST.", 8080));
  EXPECT_FALSE(name.AllowsAddress("http", loopback, "other.test", 8080));
  EXPECT_TRUE(name.AllowsAddress("https", make_address("10.0.0.5"), "db.internal.test", 443));
  EXPECT_FALSE(name.AllowsAddress("https", make_address("10.0.0.5"), "x.db.internal.test", 443));
}

// ---------------------------------------------------------------------------------------------
// The proxy, end to end

// A blocking client; every read gives up after 10 s so that a broken proxy fails a test instead
// of hanging it.
class TestClient {
 public:
  explicit TestClient(std::uint16_t port) : socket_(io_) {
    boost::system::error_code ec;
    socket_.connect({make_address("127.0.0.1"), port}, ec);
    connected_ = !ec;
    if (!connected_) return;
    timeval tv{.tv_sec = 10, .tv_usec = 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  bool connected() const { return connected_; }

  bool Send(std::string_view bytes) {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(bytes.data(), bytes.size()), ec);
    return !ec;
  }

  // The next response; `header_only` for the answer to CONNECT (no body follows a 200).
  std::optional<bhttp::response<bhttp::string_body>> Read(bool header_only = false) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    if (header_only) parser.skip(true);
    boost::system::error_code ec;
    bhttp::read(socket_, buffer_, parser, ec);
    if (ec) return std::nullopt;
    return parser.release();
  }

  // True if the peer closes (FIN or reset) before the 10 s read timeout; data is dropped.
  bool PeerClosed() {
    buffer_.clear();
    char sink[4096];
    for (;;) {
      boost::system::error_code ec;
      socket_.read_some(asio::buffer(sink), ec);
      if (!ec) continue;
      return ec == asio::error::eof || ec == asio::error::connection_reset;
    }
  }

  void ShutdownSend() {
    boost::system::error_code ec;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  beast::flat_buffer buffer_;
  bool connected_ = false;
};

std::string AbsoluteGet(const std::string& url, const std::string& host,
                        const std::string& extra = "") {
  return "GET " + url + " HTTP/1.1\r\nHost: " + host + "\r\n" + extra + "\r\n";
}

class EgressProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_.Start();
    origin_ = std::make_unique<http::Server>(
        pool_, http::ServerOptions{.random = &random_, .clock = &clock_},
        [this](http::Request& req, http::RequestContext&) { return Origin(req); });
    auto bound = origin_->ListenTcp("127.0.0.1", 0);
    ASSERT_TRUE(bound.ok()) << bound.status();
    origin_port_ = bound->port();
    proxy_ = std::make_unique<EgressProxy>(
        pool_, EgressProxyOptions{.on_refusal = [this](const EgressRefusal& refusal) {
          std::lock_guard lock(mu_);
          refusals_.push_back(refusal);
        }});
  }

  void TearDown() override {
    proxy_.reset();
    origin_.reset();
    pool_.Stop();
    pool_.Join();
  }

  http::asio::awaitable<http::Response> Origin(const http::Request& req) {
    http::Response res{http::HttpStatus::ok, req.version()};
    const std::string target(req.target());
    if (target == "/hello") {
      res.body() = "hello from the origin";
    } else if (target == "/headers") {
      res.body() = "host=" + std::string(req[http::Field::host]) +
                   " proxy-authorization=" + std::string(req[http::Field::proxy_authorization]) +
                   " connection=" + std::string(req[http::Field::connection]) + "|" +
                   std::string(req["X-Hop"]) + "|" + std::string(req["X-Kept"]);
    } else if (target == "/echo") {
      res.body() = req.body();
    } else if (target == "/to-metadata") {
      res.result(http::HttpStatus::found);
      res.set(http::Field::location, "http://169.254.169.254/latest/meta-data/");
    } else if (target == "/to-elsewhere") {
      res.result(http::HttpStatus::found);
      res.set(http::Field::location, "http://elsewhere.test/");
    } else {
      res.result(http::HttpStatus::not_found);
    }
    co_return res;
  }

  std::uint16_t Listen(const std::vector<std::string>& entries) {
    auto port = proxy_->ListenInCurrentNamespace("env-1", MustParse(entries), 0, "fn-1");
    EXPECT_TRUE(port.ok()) << port.status();
    return port.ok() ? *port : 0;
  }

  std::string OriginUrl(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(origin_port_) + path;
  }
  std::string OriginAuthority() const { return "127.0.0.1:" + std::to_string(origin_port_); }

  std::vector<EgressRefusal> Refusals() {
    std::lock_guard lock(mu_);
    return refusals_;
  }

  http::IoPool pool_{2};
  core::SecureRandom random_;
  core::RealClock clock_;
  std::unique_ptr<http::Server> origin_;
  std::uint16_t origin_port_ = 0;
  std::unique_ptr<EgressProxy> proxy_;
  std::mutex mu_;
  std::vector<EgressRefusal> refusals_;
};

TEST_F(EgressProxyTest, ForwardsAbsoluteFormToAnAllowedOrigin) {
  const std::uint16_t port = Listen({"http://127.0.0.1:" + std::to_string(origin_port_)});
  TestClient client(port);
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(AbsoluteGet(OriginUrl("/hello"), OriginAuthority())));
  auto res = client.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(res->body(), "hello from the origin");
  EXPECT_TRUE(client.PeerClosed());  // one exchange per connection
  EXPECT_TRUE(Refusals().empty());
}

TEST_F(EgressProxyTest, ForwardsInOriginFormWithoutHopByHopOrProxyHeaders) {
  const std::uint16_t port = Listen({"http://127.0.0.1:" + std::to_string(origin_port_)});
  TestClient client(port);
  ASSERT_TRUE(client.Send(AbsoluteGet(OriginUrl("/headers"), "wrong.test",
                                      "Proxy-Authorization: Basic c2VjcmV0\r\n"
                                      "Proxy-Connection: keep-alive\r\n"
                                      "Connection: X-Hop\r\nX-Hop: 1\r\nX-Kept: 2\r\n")));
  auto res = client.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(res->body(), "host=" + OriginAuthority() + " proxy-authorization= connection=close||2");

  TestClient post(port);
  const std::string body(100 * 1024, 'b');
  ASSERT_TRUE(post.Send("POST " + OriginUrl("/echo") + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body));
  res = post.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(res->body().size(), body.size());
  EXPECT_TRUE(res->body() == body);
}

TEST_F(EgressProxyTest, ConnectTunnelsRawBytes) {
  const std::uint16_t port = Listen({"*://127.0.0.1:" + std::to_string(origin_port_)});
  TestClient client(port);
  ASSERT_TRUE(client.Send("CONNECT " + OriginAuthority() +
                          " HTTP/1.1\r\nHost: " + OriginAuthority() + "\r\n\r\n"));
  auto established = client.Read(/*header_only=*/true);
  ASSERT_TRUE(established);
  EXPECT_EQ(established->result_int(), 200);
  // Through the tunnel the origin sees an ordinary origin-form request.
  ASSERT_TRUE(client.Send("GET /hello HTTP/1.1\r\nHost: origin\r\n\r\n"));
  auto res = client.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(res->body(), "hello from the origin");
  ASSERT_TRUE(client.Send("GET /echo HTTP/1.1\r\nHost: origin\r\nContent-Length: 3\r\n\r\nabc"));
  res = client.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "abc");
  // The client's half-close reaches the origin, which then closes: so does the tunnel.
  client.ShutdownSend();
  EXPECT_TRUE(client.PeerClosed());
  EXPECT_TRUE(Refusals().empty());
}

TEST_F(EgressProxyTest, RefusesAnotherPortAndReportsIt) {
  const std::uint16_t port = Listen({"http://127.0.0.1:" + std::to_string(origin_port_)});
  const std::uint16_t other =
      static_cast<std::uint16_t>(origin_port_ == 65535 ? 1 : origin_port_ + 1);
  const std::uint64_t connects_before = proxy_->stats().outbound_connects;
  TestClient client(port);
  ASSERT_TRUE(client.Send(AbsoluteGet("http://127.0.0.1:" + std::to_string(other) + "/hello",
                                      "127.0.0.1", "Authorization: Bearer secret-token\r\n")));
  auto res = client.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 403);
  EXPECT_NE(res->body().find("not in the egress allowlist"), std::string::npos) << res->body();
  EXPECT_TRUE(client.PeerClosed());

  const std::vector<EgressRefusal> refusals = Refusals();
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].environment_id, "env-1");
  EXPECT_EQ(refusals[0].function, "fn-1");
  EXPECT_EQ(refusals[0].scheme, "http");
  EXPECT_EQ(refusals[0].host, "127.0.0.1");
  EXPECT_EQ(refusals[0].port, other);
  EXPECT_NE(refusals[0].reason.find("not in the egress allowlist"), std::string::npos);
  EXPECT_EQ(refusals[0].reason.find("secret-token"), std::string::npos);
  EXPECT_EQ(proxy_->stats().outbound_connects, connects_before);
  EXPECT_EQ(proxy_->stats().refusals, 1u);

  // CONNECT to it is refused the same way, as https.
  TestClient tunnel(port);
  ASSERT_TRUE(
      tunnel.Send("CONNECT 127.0.0.1:" + std::to_string(other) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  res = tunnel.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 403);
  ASSERT_EQ(Refusals().size(), 2u);
  EXPECT_EQ(Refusals()[1].scheme, "https");
}

TEST_F(EgressProxyTest, WildcardsNeverReachRestrictedAddresses) {
  for (const std::string entry : {"http://*:*", "*://*:*"}) {
    SCOPED_TRACE(entry);
    const std::uint16_t port = Listen({entry});
    const std::uint64_t connects_before = proxy_->stats().outbound_connects;
    {
      TestClient client(port);
      ASSERT_TRUE(client.Send(AbsoluteGet(OriginUrl("/hello"), OriginAuthority())));
      auto res = client.Read();
      ASSERT_TRUE(res);
      EXPECT_EQ(res->result_int(), 403);
      EXPECT_NE(res->body().find("restricted address 127.0.0.1"), std::string::npos) << res->body();
    }
    {
      TestClient client(port);
      ASSERT_TRUE(
          client.Send(AbsoluteGet("http://169.254.169.254/latest/meta-data/", "169.254.169.254")));
      auto res = client.Read();
      ASSERT_TRUE(res);
      EXPECT_EQ(res->result_int(), 403);
    }
    {
      TestClient client(port);
      ASSERT_TRUE(client.Send(
          AbsoluteGet("http://[::ffff:169.254.169.254]/latest/meta-data/", "169.254.169.254")));
      auto res = client.Read();
      ASSERT_TRUE(res);
      EXPECT_EQ(res->result_int(), 403);
    }
    if (std::string(entry).starts_with("*")) {
      TestClient client(port);
      ASSERT_TRUE(client.Send("CONNECT " + OriginAuthority() + " HTTP/1.1\r\nHost: x\r\n\r\n"));
      auto res = client.Read();
      ASSERT_TRUE(res);
      EXPECT_EQ(res->result_int(), 403);
    }
    // Refused before any connection was attempted.
    EXPECT_EQ(proxy_->stats().outbound_connects, connects_before);
    const std::vector<EgressRefusal> refusals = Refusals();
    ASSERT_FALSE(refusals.empty());
    EXPECT_EQ(refusals.back().environment_id, "env-1");
    EXPECT_NE(refusals.back().reason.find("restricted address"), std::string::npos);
    proxy_->Forget("env-1");
  }
}

TEST_F(EgressProxyTest, ExactNameUnlocksLoopback) {
  const std::uint16_t port = Listen({"http://localhost:" + std::to_string(origin_port_)});
  TestClient client(port);
  ASSERT_TRUE(client.Send(
      AbsoluteGet("http://LOCALHOST:" + std::to_string(origin_port_) + "/hello", "localhost")));
  auto res = client.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(res->body(), "hello from the origin");

  // The name does not unlock the address when asked for by number.
  TestClient by_number(port);
  ASSERT_TRUE(by_number.Send(AbsoluteGet(OriginUrl("/hello"), OriginAuthority())));
  res = by_number.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 403);
}

TEST_F(EgressProxyTest, RedirectsArePassedBackAndFollowingThemIsChecked) {
  const std::uint16_t port = Listen({"http://127.0.0.1:" + std::to_string(origin_port_)});
  for (const std::string path : {"/to-metadata", "/to-elsewhere"}) {
    SCOPED_TRACE(path);
    std::string location;
    {
      TestClient client(port);
      ASSERT_TRUE(client.Send(AbsoluteGet(OriginUrl(path), OriginAuthority())));
      auto res = client.Read();
      ASSERT_TRUE(res);
      EXPECT_EQ(res->result_int(), 302);
      location = std::string((*res)[bhttp::field::location]);
    }
    ASSERT_FALSE(location.empty());
    TestClient follow(port);
    ASSERT_TRUE(follow.Send(AbsoluteGet(location, "x")));
    auto res = follow.Read();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 403);
  }
  ASSERT_EQ(Refusals().size(), 2u);
  EXPECT_EQ(Refusals()[0].host, "169.254.169.254");
  EXPECT_EQ(Refusals()[1].host, "elsewhere.test");
}

TEST_F(EgressProxyTest, MalformedOversizedAndOriginFormRequests) {
  const std::uint16_t port = Listen({"http://127.0.0.1:" + std::to_string(origin_port_)});
  const std::vector<std::pair<std::string, int>> cases = {
      {"THIS IS NOT HTTP\r\n\r\n", 400},
      {"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400},
      {"GET " + OriginUrl("/x") +
           " HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
           "Content-Length: 1\r\n\r\nab",
       400},
      {"GET https://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET ftp://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET http://user:pw@127.0.0.1:" + std::to_string(origin_port_) +
           "/ HTTP/1.1\r\nHost: x\r\n\r\n",
       400},
      {"CONNECT 127.0.0.1 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {AbsoluteGet(OriginUrl("/hello"), "x", "X-Big: " + std::string(20 * 1024, 'a') + "\r\n"),
       431},
  };
  for (const auto& [request, status] : cases) {
    SCOPED_TRACE(request.substr(0, 60));
    TestClient client(port);
    ASSERT_TRUE(client.Send(request));
    auto res = client.Read();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), status);
    EXPECT_TRUE(client.PeerClosed());
  }
  EXPECT_TRUE(Refusals().empty());
  EXPECT_EQ(proxy_->stats().outbound_connects, 0u);
}

TEST_F(EgressProxyTest, UnreachableAndUnresolvableDestinationsAre502) {
  // A port nobody listens on: bind one, then close it.
  std::uint16_t closed_port = 0;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {make_address("127.0.0.1"), 0});
    closed_port = acceptor.local_endpoint().port();
  }
  const std::uint16_t port =
      Listen({"http://127.0.0.1:" + std::to_string(closed_port), "http://no-such-host.invalid:80"});
  {
    TestClient client(port);
    ASSERT_TRUE(client.Send(
        AbsoluteGet("http://127.0.0.1:" + std::to_string(closed_port) + "/", "127.0.0.1")));
    auto res = client.Read();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 502);
  }
  {
    TestClient client(port);
    ASSERT_TRUE(client.Send(AbsoluteGet("http://no-such-host.invalid/", "no-such-host.invalid")));
    auto res = client.Read();
    ASSERT_TRUE(res);
    // 502 when the resolver answers, 504 when a resolver without network does not in time.
    EXPECT_TRUE(res->result_int() == 502 || res->result_int() == 504) << res->result_int();
  }
  EXPECT_TRUE(Refusals().empty());
}

TEST_F(EgressProxyTest, SlowHeadersAndIdleTunnelsAreClosed) {
  EgressProxy proxy(pool_, EgressProxyOptions{.idle_timeout = std::chrono::milliseconds(200),
                                              .header_timeout = std::chrono::milliseconds(200)});
  auto port = proxy.ListenInCurrentNamespace(
      "env-2", MustParse({"https://127.0.0.1:" + std::to_string(origin_port_)}), 0);
  ASSERT_TRUE(port.ok()) << port.status();
  {
    TestClient client(*port);
    ASSERT_TRUE(client.Send("CONNECT 127.0.0.1:"));  // and nothing more
    auto res = client.Read();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 408);
    EXPECT_TRUE(client.PeerClosed());
  }
  {
    TestClient tunnel(*port);
    ASSERT_TRUE(tunnel.Send("CONNECT " + OriginAuthority() + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto established = tunnel.Read(/*header_only=*/true);
    ASSERT_TRUE(established);
    ASSERT_EQ(established->result_int(), 200);
    EXPECT_TRUE(tunnel.PeerClosed());  // no traffic either way: the idle timeout closes it
  }
}

TEST_F(EgressProxyTest, ForgetClosesTheListenerAndOpenTunnels) {
  const std::uint16_t port = Listen({"https://127.0.0.1:" + std::to_string(origin_port_)});
  TestClient tunnel(port);
  ASSERT_TRUE(tunnel.Send("CONNECT " + OriginAuthority() + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto established = tunnel.Read(/*header_only=*/true);
  ASSERT_TRUE(established);
  ASSERT_EQ(established->result_int(), 200);

  proxy_->Forget("env-1");
  EXPECT_FALSE(TestClient(port).connected());
  EXPECT_TRUE(tunnel.PeerClosed());

  // The environment can be served again; another environment is independent.
  EXPECT_NE(Listen({"https://127.0.0.1:" + std::to_string(origin_port_)}), 0);
  auto again = proxy_->ListenInCurrentNamespace("env-1", EgressAllowlist(), 0);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), core::StatusCode::kAlreadyExists);
  proxy_->Forget("unknown-env");
}

}  // namespace
}  // namespace moatless::runtime
