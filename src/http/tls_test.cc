#include "http/tls.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "core/clock.h"
#include "core/random.h"
#include "http/client.h"
#include "http/server.h"
#include "http/status_response.h"
#include "http/test_support.h"

namespace moatless::http {
namespace {

using namespace std::chrono_literals;
using testing::RawConnection;

class TlsTest : public ::testing::Test {
 protected:
  TlsTest() : cert_(testing::MakeSelfSignedCert(dir_)) { pool_.Start(); }
  ~TlsTest() override {
    server_.reset();
    pool_.Stop();
    pool_.Join();
  }

  std::uint16_t Start() {
    ServerOptions options;
    options.random = &random_;
    options.clock = &clock_;
    options.on_access = records_.Hook();
    server_ = std::make_unique<Server>(
        pool_, options, [](Request&, RequestContext& ctx) -> asio::awaitable<Response> {
          co_return TextResponse(HttpStatus::ok, ctx.tls ? "tls" : "plain");
        });
    auto endpoint = server_->ListenTcp("127.0.0.1", 0, TlsOptions{cert_.cert, cert_.key});
    EXPECT_TRUE(endpoint.ok()) << endpoint.status();
    return endpoint.ok() ? endpoint->port() : 0;
  }

  // Handshakes with a client limited to [min, max] protocol versions; returns the version agreed,
  // or 0 if the handshake failed.
  int HandshakeWith(std::uint16_t port, int min_version, int max_version) {
    asio::io_context io;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    // Security level 0 lets this client offer TLS 1.1 at all; the server must still refuse it.
    SSL_CTX_set_security_level(ctx.native_handle(), 0);
    SSL_CTX_set_cipher_list(ctx.native_handle(), "ALL:@SECLEVEL=0");
    SSL_CTX_set_min_proto_version(ctx.native_handle(), min_version);
    SSL_CTX_set_max_proto_version(ctx.native_handle(), max_version);
    ctx.set_verify_mode(asio::ssl::verify_none);
    asio::ssl::stream<asio::ip::tcp::socket> stream(io, ctx);
    boost::system::error_code ec;
    stream.next_layer().connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    if (ec) return 0;
    stream.handshake(asio::ssl::stream_base::client, ec);
    if (ec) return 0;
    return SSL_version(stream.native_handle());
  }

  testing::TempDir dir_;
  testing::CertFiles cert_;
  IoPool pool_{2};
  core::SecureRandom random_;
  core::RealClock clock_;
  testing::RecordSink records_;
  std::unique_ptr<Server> server_;
};

TEST_F(TlsTest, VerifiedRoundTrip) {
  const auto port = Start();
  auto client = Client::Create({.ca_file = cert_.cert});
  ASSERT_TRUE(client.ok()) << client.status();
  for (const std::string host : {"localhost", "127.0.0.1"}) {
    auto res = client->FetchBlocking("https://" + host + ":" + std::to_string(port) + "/x",
                                     MakeRequest(Verb::get));
    ASSERT_TRUE(res.ok()) << host << ": " << res.status();
    EXPECT_EQ(res->result_int(), 200u);
    EXPECT_EQ(res->body(), "tls");
  }
  auto record = records_.WaitFor([](const AccessRecord& r) { return r.status == 200; });
  ASSERT_TRUE(record.has_value());
  EXPECT_TRUE(record->tls);
}

TEST_F(TlsTest, KeepAliveOverTls) {
  const auto port = Start();
  auto client = Client::Create({.ca_file = cert_.cert});
  ASSERT_TRUE(client.ok());
  auto responses = testing::RunSync([&]() -> asio::awaitable<std::vector<int>> {
    std::vector<int> statuses;
    auto connection = co_await client->Connect("https://localhost:" + std::to_string(port));
    if (!connection.ok()) co_return statuses;
    for (int i = 0; i < 3; ++i) {
      auto res = co_await (*connection)->RoundTrip(MakeRequest(Verb::get, "/x"));
      statuses.push_back(res.ok() ? static_cast<int>(res->result_int()) : 0);
    }
    co_return statuses;
  }());
  EXPECT_EQ(responses, (std::vector<int>{200, 200, 200}));
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
}

TEST_F(TlsTest, Tls12AndTls13AreAcceptedTls11IsNot) {
  const auto port = Start();
  EXPECT_EQ(HandshakeWith(port, TLS1_2_VERSION, TLS1_2_VERSION), TLS1_2_VERSION);
  EXPECT_EQ(HandshakeWith(port, TLS1_3_VERSION, TLS1_3_VERSION), TLS1_3_VERSION);
  EXPECT_EQ(HandshakeWith(port, TLS1_1_VERSION, TLS1_1_VERSION), 0);
  EXPECT_EQ(HandshakeWith(port, TLS1_VERSION, TLS1_VERSION), 0);
  auto record = records_.WaitFor(
      [](const AccessRecord& r) { return r.reject == RejectReason::kTlsHandshake; });
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->status, 0);
}

TEST_F(TlsTest, ClientRejectsUntrustedOrMismatchedCertificates) {
  const auto port = Start();
  const std::string url = "https://localhost:" + std::to_string(port) + "/x";
  // The system store does not trust a throwaway certificate.
  auto system = Client::Create({});
  ASSERT_TRUE(system.ok());
  auto res = system->FetchBlocking(url, MakeRequest(Verb::get));
  EXPECT_EQ(res.status().code(), core::StatusCode::kUnavailable) << res.status();
  // Trusted, but issued for another name.
  testing::TempDir other_dir;
  const auto other = testing::MakeSelfSignedCert(other_dir, "DNS:other.example", "other");
  ServerOptions options;
  options.random = &random_;
  options.clock = &clock_;
  Server wrong_name(pool_, options, [](Request&, RequestContext&) -> asio::awaitable<Response> {
    co_return TextResponse(HttpStatus::ok, "x");
  });
  auto endpoint = wrong_name.ListenTcp("127.0.0.1", 0, TlsOptions{other.cert, other.key});
  ASSERT_TRUE(endpoint.ok());
  auto trusting = Client::Create({.ca_file = other.cert});
  ASSERT_TRUE(trusting.ok());
  res = trusting->FetchBlocking("https://localhost:" + std::to_string(endpoint->port()) + "/x",
                                MakeRequest(Verb::get));
  EXPECT_EQ(res.status().code(), core::StatusCode::kUnavailable) << res.status();
}

TEST_F(TlsTest, KeyFileReadableByOthersIsRefused) {
  ServerOptions options;
  options.random = &random_;
  options.clock = &clock_;
  Server server(pool_, options, [](Request&, RequestContext&) -> asio::awaitable<Response> {
    co_return Response();
  });
  for (mode_t mode : {0644, 0640, 0604, 0660}) {
    ASSERT_EQ(::chmod(cert_.key.c_str(), mode), 0);
    auto endpoint = server.ListenTcp("127.0.0.1", 0, TlsOptions{cert_.cert, cert_.key});
    ASSERT_FALSE(endpoint.ok()) << std::oct << mode;
    EXPECT_EQ(endpoint.status().code(), core::StatusCode::kFailedPrecondition);
    EXPECT_NE(endpoint.status().message().find("key"), std::string::npos);
  }
  ASSERT_EQ(::chmod(cert_.key.c_str(), 0400), 0);
  EXPECT_TRUE(server.ListenTcp("127.0.0.1", 0, TlsOptions{cert_.cert, cert_.key}).ok());
}

TEST_F(TlsTest, BadCertificateOrKeyFilesAreRefused) {
  testing::TempDir other_dir;
  const auto other = testing::MakeSelfSignedCert(other_dir, "DNS:localhost", "other");
  EXPECT_EQ(MakeServerTlsContext({cert_.cert, other.key}).status().code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_FALSE(MakeServerTlsContext({dir_.File("missing.pem"), cert_.key}).ok());
  EXPECT_FALSE(MakeServerTlsContext({cert_.cert, dir_.File("missing.pem")}).ok());
  EXPECT_FALSE(MakeServerTlsContext({cert_.key, cert_.key}).ok());  // a key is not a certificate
  EXPECT_FALSE(MakeServerTlsContext({}).ok());
  EXPECT_TRUE(MakeServerTlsContext({cert_.cert, cert_.key}).ok());
  EXPECT_FALSE(MakeClientTlsContext(dir_.File("missing.pem"), true).ok());
}

TEST_F(TlsTest, PlaintextToTlsPortGetsNoHttpResponse) {
  const auto port = Start();
  RawConnection c = RawConnection::Tcp(port);
  ASSERT_TRUE(c.Send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_FALSE(c.ReadResponse().has_value());
}

}  // namespace
}  // namespace moatless::http
