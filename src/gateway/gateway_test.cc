// The gateway through a real http::Server on 127.0.0.1, with real API keys and usage plans on a
// SQLite store, a FakeClock (JWT validity, rate buckets and quota periods) and fake functions
// that record every invocation, so each test can prove what reached a function and what did not.
#include "gateway/gateway.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/base64.h"
#include "core/clock.h"
#include "core/random.h"
#include "gateway/api_config.h"
#include "http/io_pool.h"
#include "http/server.h"
#include "observe/logger.h"
#include "store/schema.h"
#include "store/sqlite/sqlite_database.h"

namespace moatless::gateway {
namespace {

namespace json = boost::json;
using std::chrono::seconds;

// ---------------------------------------------------------------------------------------------
// Fakes and helpers

class FakeFunctions : public Functions {
 public:
  using Behaviour = std::function<core::Result<runtime::InvokeResult>(const std::string& event)>;
  struct Call {
    std::string function;
    std::int64_t version = 0;
    std::string event;
  };

  void Set(const std::string& function, Behaviour behaviour) {
    std::lock_guard lock(mu_);
    behaviours_[function] = std::move(behaviour);
  }
  core::Result<runtime::InvokeResult> Invoke(std::string_view function, std::int64_t version,
                                             std::string payload, std::string) override {
    Behaviour behaviour;
    {
      std::lock_guard lock(mu_);
      calls_.push_back({std::string(function), version, payload});
      auto it = behaviours_.find(std::string(function));
      if (it == behaviours_.end()) return core::NotFoundError("no such function");
      behaviour = it->second;
    }
    return behaviour(payload);
  }
  int Count(const std::string& function) const {
    std::lock_guard lock(mu_);
    return static_cast<int>(std::count_if(calls_.begin(), calls_.end(),
                                          [&](const Call& c) { return c.function == function; }));
  }
  int Total() const {
    std::lock_guard lock(mu_);
    return static_cast<int>(calls_.size());
  }
  Call Last(const std::string& function) const {
    std::lock_guard lock(mu_);
    for (auto it = calls_.rbegin(); it != calls_.rend(); ++it) {
      if (it->function == function) return *it;
    }
    return {};
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, Behaviour> behaviours_;
  std::vector<Call> calls_;
};

runtime::InvokeResult Answer(std::string payload) {
  runtime::InvokeResult r;
  r.payload = std::move(payload);
  return r;
}

// The function's answer: the event it received, as the body of a 2.0 structured response.
FakeFunctions::Behaviour Echo() {
  return [](const std::string& event) {
    return Answer(json::serialize(json::object{{"statusCode", 200},
                                               {"headers", {{"content-type", "application/json"}}},
                                               {"cookies", json::array{"a=1", "b=2; Secure"}},
                                               {"body", event}}));
  };
}

struct HttpAnswer {
  int status = 0;
  std::multimap<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// Sends raw bytes (a whole request with Connection: close) and reads the answer to EOF, so the
// request target reaches the server exactly as written.
HttpAnswer SendRaw(std::uint16_t port, const std::string& raw) {
  HttpAnswer answer;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return answer;
  }
  std::size_t sent = 0;
  while (sent < raw.size()) {
    const ssize_t n = ::send(fd, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string in;
  char buffer[16384];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) in.append(buffer, n);
  ::close(fd);
  const std::size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos || in.size() < 12) return answer;
  answer.status = std::stoi(in.substr(9, 3));
  std::size_t line = in.find("\r\n") + 2;
  while (line < head_end) {
    const std::size_t end = in.find("\r\n", line);
    const std::string header = in.substr(line, end - line);
    const std::size_t colon = header.find(':');
    std::string name = header.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = header.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    answer.headers.emplace(name, value);
    line = end + 2;
  }
  answer.body = in.substr(head_end + 4);
  return answer;
}

std::string Base64Url(std::string_view bytes) {
  std::string out = core::Base64Encode(bytes);
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

// An Ed25519 key pair that signs JWTs (EdDSA) and its JWK Set.
class TokenIssuer {
 public:
  TokenIssuer() : key_(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), EVP_PKEY_free) {}
  std::string Jwks() const {
    unsigned char pub[32];
    std::size_t len = sizeof pub;
    EVP_PKEY_get_raw_public_key(key_.get(), pub, &len);
    return json::serialize(json::object{
        {"keys", json::array{json::object{
                     {"kty", "OKP"},
                     {"crv", "Ed25519"},
                     {"kid", "k1"},
                     {"x", Base64Url(std::string_view(reinterpret_cast<char*>(pub), len))}}}}});
  }
  std::string Sign(const json::object& claims) const {
    const std::string input =
        Base64Url(json::serialize(json::object{{"alg", "EdDSA"}, {"kid", "k1"}, {"typ", "JWT"}})) +
        "." + Base64Url(json::serialize(claims));
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key_.get());
    unsigned char sig[64];
    std::size_t len = sizeof sig;
    EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    EVP_MD_CTX_free(ctx);
    return input + "." + Base64Url(std::string_view(reinterpret_cast<char*>(sig), len));
  }

 private:
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_;
};

// ---------------------------------------------------------------------------------------------
// The fixture: app "shop", stage "dev", and app "other" with only a $default route.

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moatless-gateway-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = store::OpenSqlite(dir_ + "/moatless.db",
                                {.clock = &clock_, .migrations = store::PlatformMigrations()});
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    keys_ = std::make_unique<ApiKeyStore>(*db_, random_, clock_);
    usage_ = std::make_unique<UsageMeter>(*db_, clock_);
    functions_.Set("shop_dev_items", Echo());
    functions_.Set("other_dev_all", Echo());
    StartGateway();
    pool_.Start();
  }

  void TearDown() override {
    server_.reset();
    pool_.Stop();
    pool_.Join();
    blocking_.join();
    gateway_.reset();
    usage_.reset();
    keys_.reset();
    if (db_) db_->Close().IgnoreError();
    std::system(("rm -rf " + dir_).c_str());
  }

  void StartGateway(bool access_log = true, observe::MetricsRegistry* metrics = nullptr) {
    gateway_ = std::make_unique<Gateway>(
        Gateway::Deps{.functions = functions_,
                      .keys = *keys_,
                      .usage = *usage_,
                      .clock = clock_,
                      .blocking = blocking_,
                      .log = observe::Logger(log_sink_, clock_),
                      .metrics = metrics},
        GatewayOptions{.region = "us-east-1",
                       .account_id = "123456789012",
                       .hosts = {{"api.example.com", "shop/dev"}},
                       .max_response_bytes = 4096,
                       .integration_timeout = std::chrono::milliseconds(300),
                       .access_log = access_log});
    ASSERT_TRUE(gateway_->Apply(ShopApi()).ok());
    ApiConfig other{.app = "other", .stage = "dev", .version = 1};
    other.routes.push_back(
        RouteConfig{.path = "$default", .function = "other_dev_all", .function_version = 1});
    ASSERT_TRUE(gateway_->Apply(other).ok());
    http::ServerOptions options;
    options.random = &random_;
    options.clock = &real_clock_;
    server_ = std::make_unique<http::Server>(pool_, options, gateway_->AsHandler());
    auto endpoint = server_->ListenTcp("127.0.0.1", 0, std::nullopt, "gateway");
    ASSERT_TRUE(endpoint.ok()) << endpoint.status();
    port_ = endpoint->port();
  }

  ApiConfig ShopApi() const {
    ApiConfig api{.app = "shop", .stage = "dev", .version = 4};
    auto route = [&](std::string method, std::string path, AuthKind auth,
                     std::string authorizer = "", std::string function = "shop_dev_items") {
      api.routes.push_back(RouteConfig{.method = std::move(method),
                                       .path = std::move(path),
                                       .function = std::move(function),
                                       .function_version = 3,
                                       .auth = auth,
                                       .authorizer = std::move(authorizer)});
    };
    route("GET", "/items/{id}", AuthKind::kNone);
    route("GET", "/files/{path+}", AuthKind::kNone);
    route("GET", "/raw/{id}", AuthKind::kNone);  // no WAF: what the router alone does
    api.routes.back().waf.mode = "off";
    route("POST", "/upload", AuthKind::kNone);  // binary bodies: no WAF
    api.routes.back().waf.mode = "off";
    route("GET", "/watched", AuthKind::kNone);
    api.routes.back().waf.mode = "detect";
    route("POST", "/notes", AuthKind::kNone);
    api.routes.back().waf.exclude_tags = {"attack-sqli"};
    route("GET", "/search", AuthKind::kNone);
    api.routes.back().parameters = {
        {.in = ParameterConfig::In::kQuery,
         .name = "limit",
         .required = true,
         .schema = R"({"type": "string", "pattern": "^[0-9]{1,3}$"})"},
        {.in = ParameterConfig::In::kQuery,
         .name = "sort",
         .schema = R"({"enum": ["asc", "desc"]})"},
        {.in = ParameterConfig::In::kHeader, .name = "x-client", .required = true}};
    route("POST", "/items", AuthKind::kApiKey);
    api.routes.back().usage_plan = "basic";
    route("GET", "/gold", AuthKind::kApiKey);
    api.routes.back().usage_plan = "gold";
    route("GET", "/me", AuthKind::kJwt, "users");
    api.routes.back().scopes = {"read"};
    route("GET", "/private", AuthKind::kAuthorizer, "gate");
    route("GET", "/policy", AuthKind::kAuthorizer, "policy-gate");
    route("GET", "/other", AuthKind::kAuthorizer, "policy-gate");
    route("GET", "/iam", AuthKind::kIam);
    route("GET", "/boom", AuthKind::kNone, "", "shop_dev_boom");
    route("POST", "/validated", AuthKind::kNone);
    api.routes.back().waf.mode = "off";  // what validation alone does
    api.routes.back().body_schema = R"({"$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object", "required": ["name"], "additionalProperties": false,
        "properties": {"name": {"type": "string", "maxLength": 5},
                       "code": {"type": "string", "pattern": "^(a+)+$"}}})";
    route("GET", "/limited", AuthKind::kNone);
    api.routes.back().throttle = Throttle{.rate = 1, .burst = 1};
    route("GET", "/gold-limited", AuthKind::kApiKey);
    api.routes.back().usage_plan = "gold";
    api.routes.back().throttle = Throttle{.rate = 1, .burst = 1};
    route("GET", "/slow", AuthKind::kNone, "", "shop_dev_slow");
    AuthorizerConfig users{.name = "users", .type = AuthKind::kJwt};
    users.jwt = {.issuer = "https://id.example.com", .audience = {"shop"}, .jwks = issuer_.Jwks()};
    api.authorizers.emplace("users", users);
    AuthorizerConfig gate{.name = "gate", .type = AuthKind::kAuthorizer};
    gate.function = {.function = "shop_dev_gate",
                     .function_version = 2,
                     .identity_sources = {*ParseIdentitySource("$request.header.x-token")},
                     .ttl_s = 300};
    api.authorizers.emplace("gate", gate);
    AuthorizerConfig policy_gate = gate;
    policy_gate.name = "policy-gate";
    policy_gate.function.function = "shop_dev_policy";
    policy_gate.function.simple_responses = false;
    api.authorizers.emplace("policy-gate", policy_gate);
    api.usage_plans.emplace(
        "basic",
        UsagePlanConfig{
            .name = "basic", .rate = 1, .burst = 2, .quota_limit = 5, .quota_period = "day"});
    api.usage_plans.emplace("gold", UsagePlanConfig{.name = "gold", .rate = 100, .burst = 100});
    api.cors = CorsConfig{.allow_origins = {"https://app.example.com"},
                          .allow_headers = {"x-token"},
                          .max_age_s = 600};
    return api;
  }

  HttpAnswer Get(const std::string& target, const std::string& headers = "",
                 const std::string& method = "GET", const std::string& body = "") {
    std::string raw = method + " " + target + " HTTP/1.1\r\nHost: gw.test\r\n" + headers;
    if (!body.empty()) raw += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    raw += "Connection: close\r\n\r\n" + body;
    return SendRaw(port_, raw);
  }

  // The event the echo function received last, parsed.
  json::object LastEvent(const std::string& function = "shop_dev_items") {
    const std::string event = functions_.Last(function).event;
    boost::system::error_code ec;
    json::value v = json::parse(event, ec);
    EXPECT_FALSE(ec) << event;
    return v.is_object() ? v.as_object() : json::object{};
  }

  std::string MustCreateKey(const std::string& plan, const std::string& app = "shop") {
    auto key = keys_->Create(app, "dev", plan, "test");
    EXPECT_TRUE(key.ok()) << key.status();
    return key.ok() ? std::string(key->value.Reveal()) : "";
  }

  std::string dir_;
  core::FakeClock clock_;  // 2026-01-01T00:00:00Z
  core::RealClock real_clock_;
  core::SecureRandom random_;
  observe::MemorySink log_sink_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<ApiKeyStore> keys_;
  std::unique_ptr<UsageMeter> usage_;
  FakeFunctions functions_;
  TokenIssuer issuer_;
  boost::asio::thread_pool blocking_{4};
  http::IoPool pool_{2};
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<http::Server> server_;
  std::uint16_t port_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Routing and the payload 2.0 event

TEST_F(GatewayTest, RoutesToTheDeployedVersionWithThePayload2Event) {
  const HttpAnswer a = Get("/shop/dev/items/42?q=a&q=b&plus=x+y&flag",
                           "X-Multi: one\r\nX-Multi: two\r\nCookie: c1=v1; c2=v2\r\n"
                           "User-Agent: tester/1\r\n");
  ASSERT_EQ(a.status, 200) << a.body;
  const FakeFunctions::Call call = functions_.Last("shop_dev_items");
  EXPECT_EQ(call.version, 3);
  const json::object e = LastEvent();
  EXPECT_EQ(e.at("version"), "2.0");
  EXPECT_EQ(e.at("routeKey"), "GET /items/{id}");
  EXPECT_EQ(e.at("rawPath"), "/items/42");
  EXPECT_EQ(e.at("rawQueryString"), "q=a&q=b&plus=x+y&flag");
  EXPECT_EQ(e.at("queryStringParameters").at("q"), "a,b");
  EXPECT_EQ(e.at("queryStringParameters").at("plus"), "x y");
  EXPECT_EQ(e.at("queryStringParameters").at("flag"), "");
  EXPECT_EQ(e.at("pathParameters").at("id"), "42");
  EXPECT_EQ(e.at("headers").at("x-multi"), "one,two");
  EXPECT_FALSE(e.at("headers").as_object().contains("cookie"));
  EXPECT_EQ(e.at("cookies"), (json::array{"c1=v1", "c2=v2"}));
  const json::object& rc = e.at("requestContext").as_object();
  EXPECT_EQ(rc.at("stage"), "dev");
  EXPECT_EQ(rc.at("apiId"), "shop-dev");
  EXPECT_EQ(rc.at("accountId"), "123456789012");
  EXPECT_EQ(rc.at("http").at("method"), "GET");
  EXPECT_EQ(rc.at("http").at("path"), "/items/42");
  EXPECT_EQ(rc.at("http").at("sourceIp"), "127.0.0.1");
  EXPECT_EQ(rc.at("http").at("userAgent"), "tester/1");
  EXPECT_EQ(rc.at("timeEpoch"), 1767225600000);  // the gateway's clock
  EXPECT_FALSE(rc.contains("authorizer"));
  // The function's structured response, cookies as Set-Cookie headers.
  EXPECT_EQ(a.Header("content-type"), "application/json");
  EXPECT_EQ(a.headers.count("set-cookie"), 2u);
  EXPECT_EQ(a.Header("server"), "");
}

TEST_F(GatewayTest, GreedyDefaultAndHostMappedRoutes) {
  ASSERT_EQ(Get("/shop/dev/files/a/b%20c/d.txt").status, 200);
  EXPECT_EQ(LastEvent().at("pathParameters").at("path"), "a/b c/d.txt");
  // $default takes whatever the app has no route for.
  ASSERT_EQ(Get("/other/dev/anything/at/all", "", "PATCH").status, 200);
  EXPECT_EQ(LastEvent("other_dev_all").at("routeKey"), "$default");
  EXPECT_EQ(LastEvent("other_dev_all").at("rawPath"), "/anything/at/all");
  // A mapped host serves its app stage at the root.
  const HttpAnswer mapped = SendRaw(
      port_, "GET /items/7 HTTP/1.1\r\nHost: API.example.com:8443\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(mapped.status, 200) << mapped.body;
  EXPECT_EQ(LastEvent().at("rawPath"), "/items/7");
  EXPECT_EQ(LastEvent().at("requestContext").at("domainName"), "api.example.com");
}

TEST_F(GatewayTest, UnknownAppsRoutesAndMethodsReachNothing) {
  const HttpAnswer no_app = Get("/nope/dev/items/1");
  EXPECT_EQ(no_app.status, 404);
  EXPECT_EQ(no_app.body, R"({"message":"Not Found"})");
  EXPECT_EQ(no_app.Header("x-content-type-options"), "nosniff");
  EXPECT_EQ(no_app.Header("cache-control"), "no-store");
  EXPECT_EQ(Get("/shop/dev/nothing").status, 404);
  EXPECT_EQ(Get("/shop").status, 404);
  const HttpAnswer wrong_method = Get("/shop/dev/items/1", "", "DELETE");
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.Header("allow"), "GET, HEAD");
  // No "invoke by name": the Lambda API's path means nothing here.
  EXPECT_EQ(Get("/2015-03-31/functions/shop_dev_items/invocations", "", "POST", "{}").status, 404);
  EXPECT_EQ(functions_.Total(), 0);
}

TEST_F(GatewayTest, PathTricksNeverReachARouteTheyShouldNot) {
  for (const std::string target :
       {"/shop/dev/items/..%2fadmin", "/shop/dev/items/..%2F..%2Fboom", "//shop/dev/items/1",
        "/shop/dev//items/1", "/shop/dev/items/%2e%2e", "/shop/dev/items/%2E%2e/boom",
        "/shop/dev/items/%c0%ae%c0%ae", "/shop/dev/files/%c0%af..%c0%afboom",
        "/shop/dev/files/a/../../boom", "/shop/%2e%2e/dev/items/1", "/shop/dev/items/%00",
        "/shop/dev/items/a%5c..%5cboom"}) {
    const HttpAnswer a = Get(target);
    EXPECT_TRUE(a.status == 400 || a.status == 404) << target << " -> " << a.status;
  }
  // Double encoding is refused by the WAF (multiple URL encoding)...
  EXPECT_EQ(Get("/shop/dev/items/%252e%252e").status, 403);
  EXPECT_EQ(functions_.Total(), 0);
  // ...and, without it, decoded once: the route sees the literal text, never "..".
  ASSERT_EQ(Get("/shop/dev/raw/%252e%252e").status, 200);
  EXPECT_EQ(LastEvent().at("pathParameters").at("id"), "%2e%2e");
}

TEST_F(GatewayTest, BinaryBodiesTravelAsBase64BothWays) {
  const std::string bytes("\x89PNG\r\n\x1a\n\0\xff\xfe", 11);
  functions_.Set("shop_dev_items", [](const std::string& event) {
    json::value v = json::parse(event);
    return Answer(
        json::serialize(json::object{{"statusCode", 200},
                                     {"headers", {{"content-type", "application/octet-stream"}}},
                                     {"isBase64Encoded", true},
                                     {"body", v.at("body")}}));  // what arrived, still base64
  });
  // The WAF refuses bytes it cannot read as form or JSON data; a binary route turns it off.
  EXPECT_EQ(
      Get("/shop/dev/items/1", "Content-Type: application/octet-stream\r\n", "GET", bytes).status,
      403);
  const HttpAnswer a =
      Get("/shop/dev/upload", "Content-Type: application/octet-stream\r\n", "POST", bytes);
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(LastEvent().at("isBase64Encoded"), true);
  EXPECT_EQ(a.body, bytes);
}

TEST_F(GatewayTest, FunctionFailuresAreGenericToClientsAndDetailedInTheLog) {
  functions_.Set("shop_dev_boom", [](const std::string&) {
    runtime::InvokeResult r = Answer(
        R"({"errorType":"Error","errorMessage":"db password is hunter2","stackTrace":["at x"]})");
    r.function_error = "Unhandled";
    return r;
  });
  const HttpAnswer a = Get("/shop/dev/boom");
  EXPECT_EQ(a.status, 502);
  EXPECT_EQ(a.body, R"({"message":"Bad Gateway"})");
  bool logged = false;
  for (const std::string& line : log_sink_.Lines()) {
    if (line.find("gateway integration failed") != std::string::npos &&
        line.find("stackTrace") != std::string::npos) {
      logged = true;
    }
  }
  EXPECT_TRUE(logged);
  // An answer that is not a 2.0 response, and one over the size limit.
  functions_.Set("shop_dev_boom",
                 [](const std::string&) { return Answer(R"({"statusCode":"two hundred"})"); });
  EXPECT_EQ(Get("/shop/dev/boom").status, 502);
  functions_.Set("shop_dev_boom", [](const std::string&) {
    return Answer(
        json::serialize(json::object{{"statusCode", 200}, {"body", std::string(5000, 'x')}}));
  });
  EXPECT_EQ(Get("/shop/dev/boom").status, 502);
  // The platform throttling the function, and functions unavailable on this host.
  functions_.Set("shop_dev_boom", [](const std::string&) -> core::Result<runtime::InvokeResult> {
    return core::ResourceExhaustedError("Rate exceeded");
  });
  const HttpAnswer throttled = Get("/shop/dev/boom");
  EXPECT_EQ(throttled.status, 429);
  EXPECT_EQ(throttled.Header("retry-after"), "1");
  functions_.Set("shop_dev_boom", [](const std::string&) -> core::Result<runtime::InvokeResult> {
    return core::UnavailableError("no sandbox");
  });
  EXPECT_EQ(Get("/shop/dev/boom").status, 503);
}

TEST_F(GatewayTest, AnIntegrationPastItsTimeoutIs504) {
  functions_.Set("shop_dev_slow", [](const std::string&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    return Answer("{}");
  });
  EXPECT_EQ(Get("/shop/dev/slow").status, 504);
}

// ---------------------------------------------------------------------------------------------
// JWT

TEST_F(GatewayTest, JwtRoutesNeedAValidTokenWithTheRouteScopes) {
  const std::int64_t now = 1767225600;
  json::object claims{{"iss", "https://id.example.com"}, {"aud", "shop"},    {"sub", "user-1"},
                      {"scope", "read write"},           {"exp", now + 600}, {"iat", now - 10}};
  const HttpAnswer none = Get("/shop/dev/me");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.Header("www-authenticate"), "Bearer");
  const HttpAnswer garbage = Get("/shop/dev/me", "Authorization: Bearer not.a.token\r\n");
  EXPECT_EQ(garbage.status, 401);
  EXPECT_NE(garbage.Header("www-authenticate").find("error=\"invalid_token\""), std::string::npos);
  json::object expired = claims;
  expired["exp"] = now - 3600;
  EXPECT_EQ(Get("/shop/dev/me", "Authorization: Bearer " + issuer_.Sign(expired) + "\r\n").status,
            401);
  json::object wrong_audience = claims;
  wrong_audience["aud"] = "other";
  EXPECT_EQ(
      Get("/shop/dev/me", "Authorization: Bearer " + issuer_.Sign(wrong_audience) + "\r\n").status,
      401);
  json::object no_scope = claims;
  no_scope["scope"] = "write";
  const HttpAnswer forbidden =
      Get("/shop/dev/me", "Authorization: Bearer " + issuer_.Sign(no_scope) + "\r\n");
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_NE(forbidden.Header("www-authenticate").find("insufficient_scope"), std::string::npos);
  EXPECT_EQ(functions_.Total(), 0);

  const HttpAnswer ok =
      Get("/shop/dev/me", "Authorization: Bearer " + issuer_.Sign(claims) + "\r\n");
  ASSERT_EQ(ok.status, 200) << ok.body;
  const json::object event = LastEvent();
  const json::value& jwt = event.at("requestContext").at("authorizer").at("jwt");
  EXPECT_EQ(jwt.at("claims").at("sub"), "user-1");
  EXPECT_EQ(jwt.at("scopes"), (json::array{"read", "write"}));
  // The token itself never reaches the access log.
  for (const std::string& line : log_sink_.Lines()) {
    EXPECT_EQ(line.find(issuer_.Sign(claims).substr(0, 40)), std::string::npos) << line;
  }
}

// ---------------------------------------------------------------------------------------------
// API keys and usage plans

TEST_F(GatewayTest, ApiKeysMustBeValidEnabledAndOnTheRoutePlan) {
  EXPECT_EQ(Get("/shop/dev/items", "", "POST", "{}").status, 401);
  EXPECT_EQ(
      Get("/shop/dev/items", "x-api-key: " + std::string(40, 'A') + "\r\n", "POST", "{}").status,
      403);
  const std::string other_app = MustCreateKey("basic", "other");
  EXPECT_EQ(Get("/shop/dev/items", "x-api-key: " + other_app + "\r\n", "POST", "{}").status, 403);
  const std::string gold = MustCreateKey("gold");
  EXPECT_EQ(Get("/shop/dev/items", "x-api-key: " + gold + "\r\n", "POST", "{}").status, 403);
  const std::string key = MustCreateKey("basic");
  auto id = keys_->Lookup(key);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(keys_->SetEnabled(id->id, false).ok());
  EXPECT_EQ(Get("/shop/dev/items", "x-api-key: " + key + "\r\n", "POST", "{}").status, 403);
  EXPECT_EQ(functions_.Total(), 0);
  ASSERT_TRUE(keys_->SetEnabled(id->id, true).ok());
  const HttpAnswer ok = Get("/shop/dev/items", "x-api-key: " + key + "\r\n", "POST", "{}");
  ASSERT_EQ(ok.status, 200);
  EXPECT_EQ(ok.Header("x-ratelimit-limit"), "5");
  EXPECT_EQ(ok.Header("x-ratelimit-remaining"), "4");
  // The access log names the key by its id, never by its value.
  bool named = false;
  for (const std::string& line : log_sink_.Lines()) {
    EXPECT_EQ(line.find(key), std::string::npos);
    if (line.find(id->id) != std::string::npos) named = true;
  }
  EXPECT_TRUE(named);
}

TEST_F(GatewayTest, OverTheRateIs429UntilTheBucketRefills) {
  const std::string key = MustCreateKey("basic");
  const std::string header = "x-api-key: " + key + "\r\n";
  EXPECT_EQ(Get("/shop/dev/items", header, "POST", "{}").status, 200);
  EXPECT_EQ(Get("/shop/dev/items", header, "POST", "{}").status, 200);  // burst 2
  const HttpAnswer limited = Get("/shop/dev/items", header, "POST", "{}");
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.Header("retry-after"), "1");
  EXPECT_EQ(functions_.Count("shop_dev_items"), 2);
  clock_.Advance(seconds(1));  // rate 1/s
  EXPECT_EQ(Get("/shop/dev/items", header, "POST", "{}").status, 200);
}

TEST_F(GatewayTest, OverTheQuotaIs429UntilThePeriodRollsAndARestartKeepsTheCount) {
  const std::string key = MustCreateKey("basic");
  const std::string header = "x-api-key: " + key + "\r\n";
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Get("/shop/dev/items", header, "POST", "{}").status, 200);
    clock_.Advance(seconds(2));
  }
  // A restart: counts flushed, a new meter and gateway on the same store.
  server_->Shutdown(std::chrono::milliseconds(0));
  server_->Wait();
  ASSERT_TRUE(usage_->Flush().ok());
  usage_ = std::make_unique<UsageMeter>(*db_, clock_);
  StartGateway();
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(Get("/shop/dev/items", header, "POST", "{}").status, 200);
    clock_.Advance(seconds(2));
  }
  const HttpAnswer over = Get("/shop/dev/items", header, "POST", "{}");
  EXPECT_EQ(over.status, 429);
  EXPECT_EQ(over.Header("x-ratelimit-remaining"), "0");
  // 00:00:10 on the first day: the next period starts at midnight.
  EXPECT_EQ(over.Header("retry-after"), std::to_string(86400 - 10));
  clock_.Advance(seconds(86400));
  EXPECT_EQ(Get("/shop/dev/items", header, "POST", "{}").status, 200);
  EXPECT_EQ(functions_.Count("shop_dev_items"), 6);
}

TEST_F(GatewayTest, RouteThrottlesArePerKeyOnKeyRoutesAndSharedOtherwise) {
  EXPECT_EQ(Get("/shop/dev/limited").status, 200);
  const HttpAnswer limited = Get("/shop/dev/limited");
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.Header("retry-after"), "1");
  EXPECT_EQ(Get("/shop/dev/items/1").status, 200);  // other routes are not affected
  // On an API-key route, each key has its own bucket for the route.
  const std::string a = MustCreateKey("gold");
  const std::string b = MustCreateKey("gold");
  EXPECT_EQ(Get("/shop/dev/gold-limited", "x-api-key: " + a + "\r\n").status, 200);
  EXPECT_EQ(Get("/shop/dev/gold-limited", "x-api-key: " + a + "\r\n").status, 429);
  EXPECT_EQ(Get("/shop/dev/gold-limited", "x-api-key: " + b + "\r\n").status, 200);
  EXPECT_EQ(Get("/shop/dev/gold", "x-api-key: " + a + "\r\n").status, 200);  // its plan allows
  clock_.Advance(seconds(1));
  EXPECT_EQ(Get("/shop/dev/limited").status, 200);
  EXPECT_EQ(Get("/shop/dev/gold-limited", "x-api-key: " + a + "\r\n").status, 200);
  EXPECT_EQ(functions_.Count("shop_dev_items"), 7);  // the three 429s reached nothing
}

TEST_F(GatewayTest, BodiesAreValidatedAgainstTheRouteSchemaBeforeTheFunction) {
  const std::string json = "Content-Type: application/json\r\n";
  ASSERT_EQ(Get("/shop/dev/validated", json, "POST", R"({"name":"ok"})").status, 200);
  const HttpAnswer invalid =
      Get("/shop/dev/validated", json, "POST", R"({"name":"far too long","extra":1})");
  EXPECT_EQ(invalid.status, 400);
  json::value body = json::parse(invalid.body);
  EXPECT_EQ(body.at("message"), "Invalid request body");
  EXPECT_GE(body.at("violations").as_array().size(), 2u) << invalid.body;
  EXPECT_EQ(Get("/shop/dev/validated", json, "POST", "{not json").status, 400);
  EXPECT_EQ(
      Get("/shop/dev/validated", "Content-Type: text/plain\r\n", "POST", R"({"name":"ok"})").status,
      415);
  EXPECT_EQ(Get("/shop/dev/validated", "", "POST", R"({"name":"ok"})").status, 415);
  // A pattern that backtracks exponentially elsewhere runs in linear time here.
  const std::string evil = R"({"name":"x","code":")" + std::string(50000, 'a') + R"(!"})";
  EXPECT_EQ(Get("/shop/dev/validated", json, "POST", evil).status, 400);
  EXPECT_EQ(functions_.Count("shop_dev_items"), 1);
}

TEST_F(GatewayTest, QueryAndHeaderParametersAreCheckedBeforeTheFunction) {
  const std::string client = "x-client: web\r\n";
  EXPECT_EQ(Get("/shop/dev/search?limit=10", client).status, 200);
  EXPECT_EQ(Get("/shop/dev/search?limit=10&sort=desc", client).status, 200);
  EXPECT_EQ(functions_.Count("shop_dev_items"), 2);
  const HttpAnswer missing = Get("/shop/dev/search");
  EXPECT_EQ(missing.status, 400);
  json::value body = json::parse(missing.body);
  EXPECT_EQ(body.at("message"), "Invalid request parameters");
  const json::array& violations = body.at("violations").as_array();
  ASSERT_EQ(violations.size(), 2u) << missing.body;
  EXPECT_EQ(violations[0].at("in"), "query");
  EXPECT_EQ(violations[0].at("name"), "limit");
  EXPECT_EQ(violations[0].at("message"), "is required");
  EXPECT_EQ(violations[1].at("in"), "header");
  EXPECT_EQ(violations[1].at("name"), "x-client");
  const HttpAnswer bad = Get("/shop/dev/search?limit=1000&sort=up", client);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(json::parse(bad.body).at("violations").as_array().size(), 2u) << bad.body;
  // Header names are case-insensitive; an empty query value is present (and then checked).
  EXPECT_EQ(Get("/shop/dev/search?limit=", "X-Client: web\r\n").status, 400);
  EXPECT_EQ(Get("/shop/dev/search?limit=7", "X-CLIENT: web\r\n").status, 200);
  EXPECT_EQ(functions_.Count("shop_dev_items"), 3);
}

TEST_F(GatewayTest, ParameterSchemasThatDoNotCompileRefuseTheApi) {
  ApiConfig api = ShopApi();
  api.routes.back().parameters = {
      {.in = ParameterConfig::In::kQuery, .name = "q", .schema = R"j({"pattern": "(?=x)"})j"}};
  const core::Status s = gateway_->Apply(api);
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("parameter q"), std::string::npos) << s;
  EXPECT_EQ(Get("/shop/dev/items/1").status, 200);  // the API served before is still served
}

// ---------------------------------------------------------------------------------------------
// WAF

TEST_F(GatewayTest, TheWafBlocksAttacksBeforeAuthenticationAndTheFunction) {
  const std::string json = "Content-Type: application/json\r\n";
  const HttpAnswer sqli = Get("/shop/dev/items/1?q=1%27%20OR%20%271%27%3D%271");
  EXPECT_EQ(sqli.status, 403);
  const json::value body = json::parse(sqli.body);
  EXPECT_EQ(body.at("message"), "Forbidden");
  EXPECT_EQ(body.at("requestId").as_string(), sqli.Header("x-amzn-requestid"));
  EXPECT_EQ(sqli.body.find("942"), std::string::npos) << "rule ids stay out of the answer";
  // Before authentication: an attack on an API-key route is 403 without a key, not 401.
  EXPECT_EQ(Get("/shop/dev/items", json, "POST", R"({"t":"<script>alert(1)</script>"})").status,
            403);
  EXPECT_EQ(Get("/shop/dev/items/1", "Cookie: s=;cat /etc/passwd\r\n").status, 403);
  EXPECT_EQ(functions_.Total(), 0);
  bool logged = false;
  for (const std::string& line : log_sink_.Lines()) {
    if (line.find("gateway waf blocked") != std::string::npos &&
        line.find(sqli.Header("x-amzn-requestid")) != std::string::npos) {
      logged = line.find("942") != std::string::npos;
    }
  }
  EXPECT_TRUE(logged) << "the log names the rules";
  // Benign requests that merely talk about SQL pass (the key route then asks for its key).
  EXPECT_EQ(
      Get("/shop/dev/items", json, "POST", R"({"text":"SELECT a topic for the talk"})").status,
      401);
  EXPECT_EQ(Get("/shop/dev/items/1?q=select%20a%20topic").status, 200);
}

TEST_F(GatewayTest, AccessLinesFollowTheAccessLogOption) {
  const auto access_lines = [this] {
    int n = 0;
    for (const std::string& line : log_sink_.Lines()) {
      n += line.find("\"gateway request\"") != std::string::npos ? 1 : 0;
    }
    return n;
  };
  ASSERT_EQ(Get("/shop/dev/items/1").status, 200);
  EXPECT_EQ(access_lines(), 1) << "one access line per request by default";

  // Restarted with the access log off (the operator's log.access=false) and with metrics.
  server_->Shutdown(std::chrono::milliseconds(0));
  server_->Wait();
  observe::MetricsRegistry metrics;
  StartGateway(/*access_log=*/false, &metrics);
  log_sink_.Clear();
  ASSERT_EQ(Get("/shop/dev/items/1").status, 200);
  EXPECT_EQ(Get("/shop/dev/nowhere").status, 404);
  EXPECT_EQ(access_lines(), 0);
  // Still counted, and failures are still logged.
  const std::string exposed = metrics.Expose();
  EXPECT_NE(
      exposed.find(
          R"(moatless_gateway_requests_total{api="shop/dev",route="GET /items/{id}",status="2xx"} 1)"),
      std::string::npos)
      << exposed;
  functions_.Set("shop_dev_items", [](const std::string&) -> core::Result<runtime::InvokeResult> {
    runtime::InvokeResult r = Answer(R"({"errorType":"Error","errorMessage":"x"})");
    r.function_error = "Unhandled";
    return r;
  });
  EXPECT_EQ(Get("/shop/dev/items/1").status, 502);
  EXPECT_EQ(access_lines(), 0);
  bool failure_logged = false;
  for (const std::string& line : log_sink_.Lines()) {
    failure_logged |= line.find("gateway integration failed") != std::string::npos;
  }
  EXPECT_TRUE(failure_logged);
}

TEST_F(GatewayTest, DetectModeLogsWhatItWouldBlockAndExclusionsApply) {
  EXPECT_EQ(Get("/shop/dev/watched?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E").status, 200);
  EXPECT_EQ(functions_.Count("shop_dev_items"), 1);
  bool detected = false;
  for (const std::string& line : log_sink_.Lines()) {
    detected |= line.find("gateway waf detected") != std::string::npos &&
                line.find("941") != std::string::npos;
  }
  EXPECT_TRUE(detected);
  // /notes excludes the SQL injection rules: SQL passes, XSS is still refused.
  const std::string json = "Content-Type: application/json\r\n";
  EXPECT_EQ(Get("/shop/dev/notes", json, "POST", R"({"q":"1' OR '1'='1"})").status, 200);
  EXPECT_EQ(Get("/shop/dev/notes", json, "POST", R"({"q":"<script>alert(1)</script>"})").status,
            403);
  EXPECT_EQ(functions_.Count("shop_dev_items"), 2);
}

TEST_F(GatewayTest, WafSettingsThatCannotLoadRefuseTheApi) {
  ApiConfig api = ShopApi();
  api.routes.front().waf.exclude_rules = {949110};  // would switch blocking off
  EXPECT_EQ(gateway_->Apply(api).code(), core::StatusCode::kInvalidArgument);
  api = ShopApi();
  api.routes.front().waf.paranoia = 5;
  EXPECT_EQ(gateway_->Apply(api).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(Get("/shop/dev/items/1?q=%3Cscript%3E").status, 403);  // still the old API
}

// ---------------------------------------------------------------------------------------------
// Authorizer functions

TEST_F(GatewayTest, AuthorizerFunctionsDecideAreCachedAndPassTheirContext) {
  functions_.Set("shop_dev_gate", [](const std::string& event) {
    json::value v = json::parse(event);
    const bool allowed = v.at("identitySource").at(0) == "let-me-in";
    EXPECT_EQ(v.at("type"), "REQUEST");
    EXPECT_EQ(v.at("routeArn"),
              "arn:aws:execute-api:us-east-1:123456789012:shop-dev/dev/GET/private");
    return Answer(json::serialize(
        json::object{{"isAuthorized", allowed}, {"context", {{"user", "u1"}, {"n", 7}}}}));
  });
  // No identity source: 401 without asking the authorizer.
  EXPECT_EQ(Get("/shop/dev/private").status, 401);
  EXPECT_EQ(functions_.Count("shop_dev_gate"), 0);
  ASSERT_EQ(Get("/shop/dev/private", "x-token: let-me-in\r\n").status, 200);
  EXPECT_EQ(functions_.Last("shop_dev_gate").version, 2);
  EXPECT_EQ(LastEvent().at("requestContext").at("authorizer").at("lambda"),
            (json::object{{"user", "u1"}, {"n", 7}}));
  // Cached for the same identity; another identity asks again.
  ASSERT_EQ(Get("/shop/dev/private", "x-token: let-me-in\r\n").status, 200);
  EXPECT_EQ(functions_.Count("shop_dev_gate"), 1);
  EXPECT_EQ(Get("/shop/dev/private", "x-token: intruder\r\n").status, 403);
  EXPECT_EQ(functions_.Count("shop_dev_gate"), 2);
  EXPECT_EQ(functions_.Count("shop_dev_items"), 2);
  // The TTL ends.
  clock_.Advance(seconds(301));
  ASSERT_EQ(Get("/shop/dev/private", "x-token: let-me-in\r\n").status, 200);
  EXPECT_EQ(functions_.Count("shop_dev_gate"), 3);
}

TEST_F(GatewayTest, AFailingOrMalformedAuthorizerIs500AndReachesNothing) {
  functions_.Set("shop_dev_gate", [](const std::string&) {
    runtime::InvokeResult r = Answer(R"({"errorMessage":"boom"})");
    r.function_error = "Unhandled";
    return r;
  });
  EXPECT_EQ(Get("/shop/dev/private", "x-token: t\r\n").status, 500);
  for (const std::string bad : {R"({"isAuthorized":"yes"})", R"([true])", "not json",
                                R"({"isAuthorized":true,"context":{"nested":{"a":1}}})"}) {
    functions_.Set("shop_dev_gate", [bad](const std::string&) { return Answer(bad); });
    EXPECT_EQ(Get("/shop/dev/private", "x-token: t2\r\n").status, 500) << bad;
  }
  EXPECT_EQ(functions_.Count("shop_dev_items"), 0);
}

TEST_F(GatewayTest, IamPolicyAuthorizersAllowOnlyWhatTheirPolicyNames) {
  functions_.Set("shop_dev_policy", [](const std::string&) {
    return Answer(R"({"principalId":"p-1","policyDocument":{"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Action":"execute-api:Invoke",
       "Resource":"arn:aws:execute-api:us-east-1:123456789012:shop-dev/dev/GET/policy"}]}})");
  });
  ASSERT_EQ(Get("/shop/dev/policy", "x-token: t\r\n").status, 200);
  // The cached policy is evaluated for each route: it names /policy, not /other.
  EXPECT_EQ(Get("/shop/dev/other", "x-token: t\r\n").status, 403);
  EXPECT_EQ(functions_.Count("shop_dev_policy"), 1);
  EXPECT_EQ(functions_.Count("shop_dev_items"), 1);
}

TEST_F(GatewayTest, AnAuthorizersUsageIdentifierKeyMetersTheCallerOnItsPlan) {
  const std::string key = MustCreateKey("basic");
  functions_.Set("shop_dev_policy", [key](const std::string& event) {
    json::value v = json::parse(event);
    const std::string who(v.at("identitySource").at(0).as_string());
    return Answer(json::serialize(json::object{
        {"principalId", who},
        {"usageIdentifierKey", who == "metered" ? key : std::string(40, 'Z')},
        {"policyDocument",
         {{"Version", "2012-10-17"},
          {"Statement",
           json::array{json::object{
               {"Effect", "Allow"}, {"Action", "execute-api:Invoke"}, {"Resource", "*"}}}}}}}));
  });
  const HttpAnswer metered = Get("/shop/dev/policy", "x-token: metered\r\n");
  ASSERT_EQ(metered.status, 200);
  EXPECT_EQ(metered.Header("x-ratelimit-limit"), "5");
  EXPECT_EQ(metered.Header("x-ratelimit-remaining"), "4");
  // A usageIdentifierKey that is no key of this app stage is refused.
  EXPECT_EQ(Get("/shop/dev/policy", "x-token: unknown\r\n").status, 403);
  EXPECT_EQ(functions_.Count("shop_dev_items"), 1);
}

TEST_F(GatewayTest, IamRoutesWithoutAnAuthenticatorRefuseEverything) {
  EXPECT_EQ(Get("/shop/dev/iam").status, 403);
  EXPECT_EQ(functions_.Total(), 0);
}

// ---------------------------------------------------------------------------------------------
// CORS

TEST_F(GatewayTest, CorsPreflightIsAnsweredByTheGatewayForAllowedOriginsOnly) {
  const HttpAnswer preflight =
      Get("/shop/dev/private",
          "Origin: https://app.example.com\r\nAccess-Control-Request-Method: GET\r\n"
          "Access-Control-Request-Headers: x-token\r\n",
          "OPTIONS");
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.Header("access-control-allow-origin"), "https://app.example.com");
  EXPECT_NE(preflight.Header("access-control-allow-methods").find("GET"), std::string::npos);
  EXPECT_EQ(preflight.Header("access-control-allow-headers"), "x-token");
  EXPECT_EQ(preflight.Header("access-control-max-age"), "600");
  const HttpAnswer stranger =
      Get("/shop/dev/private",
          "Origin: https://evil.example\r\nAccess-Control-Request-Method: GET\r\n", "OPTIONS");
  EXPECT_EQ(stranger.status, 204);
  EXPECT_EQ(stranger.Header("access-control-allow-origin"), "");
  EXPECT_EQ(functions_.Total(), 0);
  const HttpAnswer actual = Get("/shop/dev/items/1", "Origin: https://app.example.com\r\n");
  EXPECT_EQ(actual.status, 200);
  EXPECT_EQ(actual.Header("access-control-allow-origin"), "https://app.example.com");
  EXPECT_EQ(actual.Header("vary"), "Origin");
}

}  // namespace
}  // namespace moatless::gateway
