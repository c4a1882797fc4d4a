#include "http/tls.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <mutex>

#include "core/clock.h"
#include "core/random.h"
#include "http/client.h"
#include "http/router.h"
#include "http/server.h"
#include "http/status_response.h"
#include "http/test_support.h"

namespace moatless::http {
namespace {

using namespace std::chrono_literals;
using testing::RawConnection;

std::string Fingerprint(X509* cert) {
  if (cert == nullptr) return "";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  X509_digest(cert, EVP_sha256(), digest, &len);
  std::string out;
  char hex[4];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(hex, sizeof hex, i == 0 ? "%02X" : ":%02X", digest[i]);
    out += hex;
  }
  return out;
}

std::string FileFingerprint(const std::string& cert_file) {
  auto fingerprint = CertificateSha256Fingerprint(testing::ReadFile(cert_file));
  return fingerprint.ok() ? *fingerprint : "unreadable " + cert_file;
}

// One TLS client connection driven synchronously from the test thread; every wait is bounded.
class TlsClient {
 public:
  struct Options {
    const testing::CertFiles* client_cert = nullptr;  // presented if the server asks
    int max_version = 0;                              // e.g. TLS1_2_VERSION; 0: no limit
  };

  TlsClient(std::uint16_t port, Options options) {
    SSL_CTX* native = ctx_.native_handle();
    ctx_.set_verify_mode(asio::ssl::verify_none);
    if (options.max_version != 0) SSL_CTX_set_max_proto_version(native, options.max_version);
    if (options.client_cert != nullptr) {
      ctx_.use_certificate_chain_file(options.client_cert->cert);
      ctx_.use_private_key_file(options.client_cert->key, asio::ssl::context::pem);
    } else {
      // Called when the server sends a CertificateRequest and the client has no certificate.
      SSL_CTX_set_ex_data(native, AskedIndex(), &asked_);
      SSL_CTX_set_client_cert_cb(native, [](SSL* ssl, X509**, EVP_PKEY**) {
        auto* asked = static_cast<bool*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), AskedIndex()));
        *asked = true;
        return 0;  // no certificate
      });
    }
    stream_.emplace(io_, ctx_);
    boost::system::error_code ec;
    stream_->next_layer().connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    if (ec) return;
    ec = Run([&](auto handler) {
      stream_->async_handshake(asio::ssl::stream_base::client, std::move(handler));
    });
    connected_ = !ec;
  }
  explicit TlsClient(std::uint16_t port) : TlsClient(port, Options{}) {}

  bool connected() const { return connected_; }
  // Whether the server asked for a client certificate (known only without Options::client_cert).
  bool asked_for_certificate() const { return asked_; }
  std::string PeerFingerprint() { return Fingerprint(SSL_get0_peer_certificate(ssl())); }
  int version() { return SSL_version(ssl()); }

  // Sends `bytes` and reads one response; nullopt on any failure.
  std::optional<testing::RawResponse> Exchange(const std::string& bytes) {
    if (!connected_) return std::nullopt;
    auto ec = Run([&](auto handler) {
      asio::async_write(*stream_, asio::buffer(bytes), std::move(handler));
    });
    if (ec) return std::nullopt;
    Response res;
    ec = Run(
        [&](auto handler) { beast::http::async_read(*stream_, buffer_, res, std::move(handler)); });
    if (ec) return std::nullopt;
    testing::RawResponse out;
    out.status = static_cast<int>(res.result_int());
    for (const auto& field : res) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(field.value());
    }
    out.body = res.body();
    return out;
  }

 private:
  static int AskedIndex() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
  }
  SSL* ssl() { return stream_->native_handle(); }

  template <typename Start>
  boost::system::error_code Run(Start start) {
    std::optional<boost::system::error_code> result;
    start([&result](boost::system::error_code ec, auto&&...) { result = ec; });
    io_.restart();
    io_.run_for(10s);
    if (!result) {
      boost::system::error_code ignored;
      stream_->next_layer().close(ignored);
      io_.restart();
      io_.run();
      return asio::error::timed_out;
    }
    return *result;
  }

  asio::io_context io_;
  asio::ssl::context ctx_{asio::ssl::context::tls_client};
  std::optional<asio::ssl::stream<asio::ip::tcp::socket>> stream_;
  beast::flat_buffer buffer_;
  bool connected_ = false;
  bool asked_ = false;
};

class TlsTest : public ::testing::Test {
 protected:
  TlsTest() : cert_(testing::MakeSelfSignedCert(dir_)) { pool_.Start(); }
  ~TlsTest() override {
    server_.reset();
    pool_.Stop();
    pool_.Join();
  }

  std::uint16_t Start() { return Start(TlsOptions{cert_.cert, cert_.key}); }

  // Serves `tls` (plaintext when nullopt) with a handler that answers "tls" or "plain" and
  // remembers the client certificate of every request; `handler` replaces it when set.
  std::uint16_t Start(std::optional<TlsOptions> tls, Handler handler = {},
                      std::chrono::seconds hsts_max_age = 31'536'000s) {
    ServerOptions options;
    options.random = &random_;
    options.clock = &clock_;
    options.on_access = records_.Hook();
    options.hsts_max_age = hsts_max_age;
    if (!handler) {
      handler = [this](Request&, RequestContext& ctx) -> asio::awaitable<Response> {
        {
          std::lock_guard lock(mu_);
          client_certs_.push_back(ctx.client_cert);
        }
        co_return TextResponse(HttpStatus::ok, ctx.tls ? "tls" : "plain");
      };
    }
    server_ = std::make_unique<Server>(pool_, options, std::move(handler));
    auto endpoint = server_->ListenTcp("127.0.0.1", 0, tls);
    EXPECT_TRUE(endpoint.ok()) << endpoint.status();
    return endpoint.ok() ? endpoint->port() : 0;
  }

  std::vector<std::shared_ptr<const ClientCertificate>> ClientCerts() {
    std::lock_guard lock(mu_);
    return client_certs_;
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
  std::mutex mu_;
  std::vector<std::shared_ptr<const ClientCertificate>> client_certs_;
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

TEST_F(TlsTest, ReloadServesTheNewCertificateToNewConnectionsAndKeepsEstablishedOnes) {
  const auto port = Start();
  const std::string old_fingerprint = FileFingerprint(cert_.cert);
  TlsClient established(port);
  ASSERT_TRUE(established.connected());
  auto res = established.Exchange(testing::Get("/before"));
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(established.PeerFingerprint(), old_fingerprint);

  // Renewal: new files in the same places, then a reload.
  testing::TempDir other_dir;
  const auto renewed = testing::MakeSelfSignedCert(other_dir, "DNS:localhost", "renewed");
  const std::string new_fingerprint = FileFingerprint(renewed.cert);
  ASSERT_NE(new_fingerprint, old_fingerprint);
  testing::WriteFile(cert_.cert, testing::ReadFile(renewed.cert), 0644);
  testing::WriteFile(cert_.key, testing::ReadFile(renewed.key), 0600);
  ASSERT_TRUE(server_->ReloadTls().ok());

  TlsClient fresh(port);
  ASSERT_TRUE(fresh.connected());
  EXPECT_EQ(fresh.PeerFingerprint(), new_fingerprint);
  res = fresh.Exchange(testing::Get("/new"));
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);

  // The connection accepted before the reload carries on, on its own context.
  res = established.Exchange(testing::Get("/after"));
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "tls");
  res = established.Exchange(testing::Get("/again"));
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(server_->stats().connections_accepted, 2u);
}

TEST_F(TlsTest, FailedReloadKeepsTheOldCertificateAndSaysWhy) {
  const auto port = Start();
  const std::string old_fingerprint = FileFingerprint(cert_.cert);
  testing::TempDir other_dir;
  const auto renewed = testing::MakeSelfSignedCert(other_dir, "DNS:localhost", "renewed");
  const std::string original_cert = testing::ReadFile(cert_.cert);
  const std::string original_key = testing::ReadFile(cert_.key);

  struct Case {
    std::string name;
    std::function<void()> break_files;
    std::string file_named;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"key file holds no key",
       [&] {
         testing::WriteFile(cert_.cert, testing::ReadFile(renewed.cert), 0644);
         testing::WriteFile(cert_.key, "-----BEGIN PRIVATE KEY-----\nbroken\n", 0600);
       },
       cert_.key, "no usable PEM private key"},
      {"key file missing", [&] { ::unlink(cert_.key.c_str()); }, cert_.key, "No such file"},
      {"certificate file missing",
       [&] {
         testing::WriteFile(cert_.key, testing::ReadFile(renewed.key), 0600);
         ::unlink(cert_.cert.c_str());
       },
       cert_.cert, ""},
      {"key readable by the group",
       [&] {
         testing::WriteFile(cert_.cert, testing::ReadFile(renewed.cert), 0644);
         testing::WriteFile(cert_.key, testing::ReadFile(renewed.key), 0640);
       },
       cert_.key, "group or others"},
      {"key of another certificate",
       [&] {
         testing::WriteFile(cert_.cert, testing::ReadFile(renewed.cert), 0644);
         testing::WriteFile(cert_.key, original_key, 0600);
       },
       cert_.key, "mismatch"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    testing::WriteFile(cert_.cert, original_cert, 0644);
    testing::WriteFile(cert_.key, original_key, 0600);
    c.break_files();
    const core::Status status = server_->ReloadTls();
    ASSERT_FALSE(status.ok());
    EXPECT_NE(status.message().find(c.file_named), std::string::npos) << status;
    EXPECT_NE(status.message().find(c.reason), std::string::npos) << status;
    TlsClient client(port);
    ASSERT_TRUE(client.connected());
    EXPECT_EQ(client.PeerFingerprint(), old_fingerprint);
    auto res = client.Exchange(testing::Get("/x"));
    ASSERT_TRUE(res.has_value());
    EXPECT_EQ(res->status, 200);
  }
}

TEST_F(TlsTest, ReloadWithoutTlsListenersDoesNothing) {
  Start(std::nullopt);
  EXPECT_TRUE(server_->ReloadTls().ok());
}

TEST_F(TlsTest, ClientCertificateIsCapturedWithEveryFieldOncePerConnection) {
  const auto ca = testing::MakeCert(dir_, "ca", {.common_name = "Test CA", .ca = true});
  const auto client = testing::MakeCert(dir_, "client",
                                        {.common_name = "client",
                                         .organization = "Example Org",
                                         .serial = {0x0a, 0x1b, 0x2c, 0x3d},
                                         .not_before = "20240102030405Z",
                                         .not_after = "20990101000000Z"},
                                        &ca);
  const std::string ca_pem = testing::ReadFile(ca.cert);
  const std::string chain_file = testing::ReadFile(client.cert);
  const std::string leaf_pem = chain_file.substr(0, chain_file.size() - ca_pem.size());
  ASSERT_EQ(chain_file.substr(leaf_pem.size()), ca_pem);

  // The CA is trusted by nobody here: the TLS layer takes the chain for a later layer to judge.
  const auto port = Start(
      TlsOptions{.cert_file = cert_.cert, .key_file = cert_.key, .request_client_cert = true});
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version);
    const std::size_t before = ClientCerts().size();
    TlsClient c(port, {.client_cert = &client, .max_version = version});
    ASSERT_TRUE(c.connected());
    EXPECT_EQ(c.version(), version);
    for (int i = 0; i < 2; ++i) {
      auto res = c.Exchange(testing::Get("/whoami"));
      ASSERT_TRUE(res.has_value());
      EXPECT_EQ(res->status, 200);
    }
    const auto certs = ClientCerts();
    ASSERT_EQ(certs.size(), before + 2);
    const auto& cert = certs[before];
    ASSERT_NE(cert, nullptr);
    EXPECT_EQ(cert.get(), certs[before + 1].get());  // one capture for the connection
    EXPECT_EQ(cert->leaf_pem, leaf_pem);
    EXPECT_EQ(cert->chain_pem, ca_pem);
    EXPECT_EQ(cert->subject_dn, "CN=client,O=Example Org");
    EXPECT_EQ(cert->issuer_dn, "CN=Test CA");
    EXPECT_EQ(cert->serial_number, "0a:1b:2c:3d");
    EXPECT_EQ(cert->not_before, "Jan  2 03:04:05 2024 GMT");
    EXPECT_EQ(cert->not_after, "Jan  1 00:00:00 2099 GMT");
  }
}

TEST_F(TlsTest, SelfSignedClientCertificateHasAnEmptyChain) {
  testing::TempDir other_dir;
  const auto client = testing::MakeSelfSignedCert(other_dir, "DNS:client", "client");
  const auto port = Start(
      TlsOptions{.cert_file = cert_.cert, .key_file = cert_.key, .request_client_cert = true});
  TlsClient c(port, {.client_cert = &client});
  ASSERT_TRUE(c.connected());
  auto res = c.Exchange(testing::Get("/x"));
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  const auto certs = ClientCerts();
  ASSERT_EQ(certs.size(), 1u);
  ASSERT_NE(certs[0], nullptr);
  EXPECT_EQ(certs[0]->leaf_pem, testing::ReadFile(client.cert));
  EXPECT_EQ(certs[0]->chain_pem, "");
  EXPECT_EQ(certs[0]->subject_dn, "CN=localhost");
  EXPECT_EQ(certs[0]->serial_number, "01");
}

TEST_F(TlsTest, ClientWithoutCertificateIsAskedAndServedWithNone) {
  const auto port = Start(
      TlsOptions{.cert_file = cert_.cert, .key_file = cert_.key, .request_client_cert = true});
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version);
    TlsClient c(port, {.max_version = version});
    ASSERT_TRUE(c.connected());
    auto res = c.Exchange(testing::Get("/x"));
    ASSERT_TRUE(res.has_value());
    EXPECT_EQ(res->status, 200);
    EXPECT_TRUE(c.asked_for_certificate());
  }
  const auto certs = ClientCerts();
  ASSERT_EQ(certs.size(), 2u);
  EXPECT_EQ(certs[0], nullptr);
  EXPECT_EQ(certs[1], nullptr);
}

TEST_F(TlsTest, ClientCertificateIsNotRequestedByDefault) {
  testing::TempDir other_dir;
  const auto client = testing::MakeSelfSignedCert(other_dir, "DNS:client", "client");
  const auto port = Start();
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version);
    TlsClient without(port, {.max_version = version});
    ASSERT_TRUE(without.connected());
    ASSERT_TRUE(without.Exchange(testing::Get("/x")).has_value());
    EXPECT_FALSE(without.asked_for_certificate());
    TlsClient with(port, {.client_cert = &client, .max_version = version});
    ASSERT_TRUE(with.connected());
    ASSERT_TRUE(with.Exchange(testing::Get("/x")).has_value());
  }
  const auto certs = ClientCerts();
  ASSERT_EQ(certs.size(), 4u);
  for (const auto& cert : certs) EXPECT_EQ(cert, nullptr);
}

Handler HstsTestHandler() {
  auto router = std::make_shared<Router>();
  EXPECT_TRUE(router
                  ->Add("GET", "/x",
                        [](Request&, RequestContext&) -> asio::awaitable<Response> {
                          co_return TextResponse(HttpStatus::ok, "x");
                        })
                  .ok());
  EXPECT_TRUE(router
                  ->Add("GET", "/own",
                        [](Request&, RequestContext&) -> asio::awaitable<Response> {
                          Response res = TextResponse(HttpStatus::ok, "own");
                          res.set(Field::strict_transport_security, "max-age=60");
                          co_return res;
                        })
                  .ok());
  return [router](Request& req, RequestContext& ctx) { return router->Dispatch(req, ctx); };
}

TEST_F(TlsTest, HstsOnEveryTlsResponseIncludingTheServersOwn) {
  const auto port = Start(TlsOptions{cert_.cert, cert_.key}, HstsTestHandler());
  constexpr const char* kHsts = "max-age=31536000; includeSubDomains";
  TlsClient c(port);
  ASSERT_TRUE(c.connected());
  auto res = c.Exchange(testing::Get("/x"));
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->Header("strict-transport-security"), kHsts);
  res = c.Exchange(testing::Get("/missing"));  // the router's 404
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->Header("strict-transport-security"), kHsts);
  res = c.Exchange(testing::Get("/own"));  // the handler's own value wins
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->Header("strict-transport-security"), "max-age=60");
  // The server's own 400 (no Host), which the handler never sees.
  res = c.Exchange("GET /x HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(res->Header("strict-transport-security"), kHsts);
}

TEST_F(TlsTest, HstsCanBeTurnedOff) {
  const auto port = Start(TlsOptions{cert_.cert, cert_.key}, HstsTestHandler(), 0s);
  TlsClient c(port);
  ASSERT_TRUE(c.connected());
  auto res = c.Exchange(testing::Get("/x"));
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->headers.count("strict-transport-security"), 0u);
}

TEST_F(TlsTest, NoHstsOnPlaintext) {
  const auto port = Start(std::nullopt, HstsTestHandler());
  RawConnection c = RawConnection::Tcp(port);
  ASSERT_TRUE(c.Send(testing::Get("/x")));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->headers.count("strict-transport-security"), 0u);
  ASSERT_TRUE(c.Send(testing::Get("/missing")));
  res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->headers.count("strict-transport-security"), 0u);
  ASSERT_TRUE(c.Send("GET /x HTTP/1.1\r\n\r\n"));
  res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(res->headers.count("strict-transport-security"), 0u);
}

}  // namespace
}  // namespace moatless::http
