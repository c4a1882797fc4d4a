#include "app/function_host.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "identity/sigv4.h"
#include "sandbox/test_support.h"
#include "services/test_fixture.h"

namespace moatless::app {
namespace {

namespace json = boost::json;

constexpr char kTrustLambda[] = R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
  "Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]})";

// A function that calls STS with Debian's aws CLI, once with the credentials in its environment
// variables and once with only the container-credentials endpoint, and hands its credentials out.
constexpr char kWhoAmI[] = R"(
import json, os, subprocess

def who(env):
    r = subprocess.run(["/usr/bin/aws", "sts", "get-caller-identity", "--output", "json",
                        "--endpoint-url", os.environ["AWS_ENDPOINT_URL"]],
                       capture_output=True, text=True, env=env, timeout=60)
    return json.loads(r.stdout)["Arn"] if r.returncode == 0 else "error: " + r.stderr[-400:]

def handler(event, context):
    env = dict(os.environ)
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    endpoint_only = {k: v for k, v in env.items() if k not in keys}
    return {"with_variables": who(env), "with_endpoint": who(endpoint_only),
            "copied": [env[k] for k in keys]}
)";

class FunctionHostTest : public services::AwsEndpointStoreTest {
 protected:
  void SetUp() override {
    host_ = sandbox::ProbeHost();
    if (const std::string missing = sandbox::testing::MissingIsolation(host_); !missing.empty()) {
      GTEST_SKIP() << "functions cannot run on this host: " << missing;
    }
    ASSERT_NO_FATAL_FAILURE(AwsEndpointStoreTest::SetUp());
    ::chmod(dir_.c_str(), 0755);
    // Real clients sign with the real time.
    clock_->SetWallTime(core::RealClock().Now());
    io_ = std::make_unique<http::IoPool>(2);
    io_->Start();
    auto sandboxer = sandbox::Sandboxer::Create(
        host_, env_->random(), {.state_dir = dir_ + "/sandboxes", .cgroup_parent = CgroupParent()});
    ASSERT_TRUE(sandboxer.ok()) << sandboxer.status();
    sandboxer_ = std::move(*sandboxer);
    functions_ =
        std::make_unique<FunctionHost>(FunctionHost::Deps{.sandboxer = *sandboxer_,
                                                          .io = *io_,
                                                          .env = *env_,
                                                          .sts = *sts_,
                                                          .aws = *endpoint_,
                                                          .audit = *audit_,
                                                          .db = *db_,
                                                          .log = observe::Logger(log_, *clock_),
                                                          .metrics = &metrics_,
                                                          .runtimes_dir = MOATLESS_RUNTIMES_DIR});
    ASSERT_TRUE(directory_->CreateRole("fn-orders", kTrustLambda).ok());
    ASSERT_TRUE(directory_
                    ->CreateRole("not-for-lambda", R"({"Version":"2012-10-17",
      "Statement":[{"Effect":"Allow","Principal":{"AWS":"000000000000"},
      "Action":"sts:AssumeRole"}]})")
                    .ok());
  }
  void TearDown() override {
    functions_.reset();
    sandboxer_.reset();
    if (io_) {
      io_->Stop();
      io_->Join();
    }
    sandbox::testing::RemoveCgroupParent(CgroupParent());
    if (env_) AwsEndpointStoreTest::TearDown();
  }
  static std::string CgroupParent() {
    return "moatless-functionhost-test-" + std::to_string(::getpid());
  }

  // A Python function `name` whose app.py is `code`.
  runtime::FunctionConfig PythonFunction(const std::string& name, const std::string& code) {
    const std::string dir = dir_ + "/" + name;
    std::filesystem::create_directories(dir);
    ::chmod(dir.c_str(), 0755);
    std::ofstream(dir + "/app.py") << code;
    runtime::FunctionConfig f;
    f.name = name;
    f.runtime = runtime::RuntimeKind::kPython3;
    f.handler = "app.handler";
    f.code_dir = dir;
    f.timeout = std::chrono::seconds(60);
    return f;
  }

  runtime::FunctionConfig WhoAmI(std::string role) {
    runtime::FunctionConfig f = PythonFunction("orders", kWhoAmI);
    f.memory_mb = 512;
    f.role_arn = "arn:aws:iam::000000000000:role/" + role;
    return f;
  }

  std::vector<json::object> AuditRecords() {
    std::ifstream in(AuditPath());
    std::vector<json::object> out;
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line).as_object());
    return out;
  }

  // The text of every log record with `msg`.
  std::vector<std::string> Logged(std::string_view msg) {
    std::vector<std::string> out;
    for (const std::string& line : log_.Lines()) {
      if (line.find("\"msg\":\"" + std::string(msg) + "\"") != std::string::npos) {
        out.push_back(line);
      }
    }
    return out;
  }

  sandbox::HostSupport host_;
  observe::MemorySink log_;
  observe::MetricsRegistry metrics_;
  std::unique_ptr<http::IoPool> io_;
  std::unique_ptr<sandbox::Sandboxer> sandboxer_;
  std::unique_ptr<FunctionHost> functions_;
};

TEST_F(FunctionHostTest, AFunctionActsAsItsRoleAndItsCredentialsWorkNowhereElse) {
  auto result = functions_->invoker().Invoke(WhoAmI("fn-orders"), "{}");
  ASSERT_TRUE(result.ok()) << result.status();
  // The payload holds the credentials: never printed.
  ASSERT_FALSE(result->function_error) << result->log;
  const json::object out = json::parse(result->payload).as_object();
  const std::string session_prefix = "arn:aws:sts::000000000000:assumed-role/fn-orders/orders-";
  EXPECT_TRUE(std::string(out.at("with_variables").as_string()).starts_with(session_prefix))
      << out.at("with_variables").as_string();
  EXPECT_TRUE(std::string(out.at("with_endpoint").as_string()).starts_with(session_prefix))
      << out.at("with_endpoint").as_string();

  // The same credentials, copied out and used from the host (or from another environment).
  const json::array& copied = out.at("copied").as_array();
  const std::string key_id(copied[0].as_string());
  const core::SecretBytes secret{std::string(copied[1].as_string())};
  const std::string token(copied[2].as_string());
  http::Request req(http::Verb::post, "/", 11);
  req.set(http::Field::host, "127.0.0.1:8420");
  req.set(http::Field::content_type, "application/x-www-form-urlencoded; charset=utf-8");
  req.body() = "Action=GetCallerIdentity&Version=2011-06-15";
  req.prepare_payload();
  identity::HttpRequestView view{
      .method = req.method_string(), .target = req.target(), .body = req.body()};
  for (const auto& f : req) view.headers.emplace_back(f.name_string(), f.value());
  auto headers = identity::SignRequest(view,
                                       {.access_key_id = key_id,
                                        .region = "local",
                                        .service = "sts",
                                        .time = clock_->Now(),
                                        .security_token = std::string_view(token)},
                                       secret);
  ASSERT_TRUE(headers.ok());
  for (const auto& [k, v] : *headers) req.set(k, v);
  for (const std::string& from : {std::string(), std::string("another-environment")}) {
    http::RequestContext ctx{.request_id = "stolen-" + from, .remote = "127.0.0.1:40000"};
    ctx.environment = from;
    const http::Response refused = endpoint_->Handle(req, ctx);
    EXPECT_EQ(refused.result_int(), 403);
    EXPECT_NE(refused.body().find("<Code>InvalidClientTokenId</Code>"), std::string::npos);
  }

  // The audit log: the issuance, the function's own calls (with its environment), the refusals.
  bool issued = false, called_from_inside = false;
  int refused = 0;
  for (const json::object& r : AuditRecords()) {
    if (r.at("actor") == "lambda.amazonaws.com" && r.at("outcome") == "allowed") issued = true;
    if (r.at("action") == "sts:GetCallerIdentity" && r.at("outcome") == "allowed" &&
        r.at("fields").as_object().contains("environment")) {
      called_from_inside = true;
    }
    if (r.at("actor").as_string() == "access-key:" + key_id && r.at("outcome") == "denied") {
      ++refused;
    }
  }
  EXPECT_TRUE(issued);
  EXPECT_TRUE(called_from_inside);
  EXPECT_EQ(refused, 2);
}

TEST_F(FunctionHostTest, ARoleThatDoesNotTrustLambdaIsNotHandedOut) {
  auto result = functions_->invoker().Invoke(WhoAmI("not-for-lambda"), "{}");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), core::StatusCode::kPermissionDenied) << result.status();
  bool denied = false;
  for (const json::object& r : AuditRecords()) {
    denied = denied || (r.at("actor") == "lambda.amazonaws.com" && r.at("outcome") == "denied");
  }
  EXPECT_TRUE(denied);
}

// A host HTTP server on 127.0.0.1 that answers every request with `body`, and counts them.
class OriginServer {
 public:
  explicit OriginServer(std::string body) : body_(std::move(body)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        const int conn = ::accept(fd_, nullptr, nullptr);
        if (conn < 0) return;
        char buffer[4096];
        [[maybe_unused]] const ssize_t n = ::read(conn, buffer, sizeof buffer);
        ++requests_;
        const std::string response =
            "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body_.size()) +
            "\r\nConnection: close\r\n\r\n" + body_;
        [[maybe_unused]] const ssize_t w = ::write(conn, response.data(), response.size());
        ::close(conn);
      }
    });
  }
  ~OriginServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  int requests() const { return requests_; }

 private:
  std::string body_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

constexpr char kFetch[] = R"(
import urllib.request

def handler(event, context):
    out = {}
    for url in event["urls"]:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                out[url] = "ok: " + r.read().decode()
        except Exception as e:
            out[url] = "refused: " + type(e).__name__ + " " + str(e)[:200]
    return out
)";

TEST_F(FunctionHostTest, EgressReachesExactlyTheAllowlistThroughTheProxy) {
  OriginServer allowed("hello from the host"), other("should not be reached");
  runtime::FunctionConfig f = PythonFunction("fetcher", kFetch);
  const std::string allowed_url = "http://127.0.0.1:" + std::to_string(allowed.port()) + "/x";
  const std::string other_url = "http://127.0.0.1:" + std::to_string(other.port()) + "/x";
  const std::string metadata_url = "http://169.254.169.254/latest/meta-data/";
  const std::string event = json::serialize(
      json::object{{"urls", json::array{json::string(allowed_url), json::string(other_url),
                                        json::string(metadata_url)}}});

  // No egress: nothing outside the sandbox is reachable.
  auto none = functions_->invoker().Invoke(f, event);
  ASSERT_TRUE(none.ok()) << none.status();
  ASSERT_FALSE(none->function_error) << none->payload << none->log;
  const json::value none_out = json::parse(none->payload);
  for (const auto& [url, outcome] : none_out.as_object()) {
    EXPECT_TRUE(outcome.as_string().starts_with("refused")) << url << ": " << outcome;
  }
  EXPECT_EQ(allowed.requests(), 0);

  // With an allowlist naming one port of 127.0.0.1: that, and nothing else.
  f.name = "fetcher-egress";
  f.egress = {"http://127.0.0.1:" + std::to_string(allowed.port())};
  auto some = functions_->invoker().Invoke(f, event);
  ASSERT_TRUE(some.ok()) << some.status();
  ASSERT_FALSE(some->function_error) << some->payload << some->log;
  const json::object out = json::parse(some->payload).as_object();
  EXPECT_EQ(out.at(allowed_url).as_string(), "ok: hello from the host");
  EXPECT_TRUE(out.at(other_url).as_string().starts_with("refused")) << out.at(other_url);
  EXPECT_TRUE(out.at(metadata_url).as_string().starts_with("refused")) << out.at(metadata_url);
  EXPECT_EQ(other.requests(), 0);
  EXPECT_EQ(allowed.requests(), 1);
  // Each refusal is logged with its destination.
  const std::vector<std::string> refusals = Logged("egress refused");
  ASSERT_EQ(refusals.size(), 2u);
  EXPECT_NE(refusals[0].find(std::to_string(other.port())), std::string::npos) << refusals[0];
  EXPECT_NE(refusals[0].find(R"("function":"fetcher-egress")"), std::string::npos) << refusals[0];
  EXPECT_NE(refusals[1].find("169.254.169.254"), std::string::npos) << refusals[1];
}

TEST_F(FunctionHostTest, PublishedFunctionsRunThroughTheInvokeApiWithLogsAndMetrics) {
  const runtime::FunctionConfig f = PythonFunction("orders",
                                                   "def handler(event, context):\n"
                                                   "    print('working on', event['n'])\n"
                                                   "    return {'n': event['n'], 'v': 1}\n");
  auto published = functions_->registry().Publish(f);
  ASSERT_TRUE(published.ok()) << published.status();
  ASSERT_TRUE(directory_
                  ->PutPolicy(identity::PrincipalType::kRole, "fn-orders", "invoke",
                              R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":"lambda:InvokeFunction","Resource":"*"}]})")
                  .ok());
  auto result = functions_->Invoke(*published, R"({"n":4})", "req-four");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->payload, R"({"n": 4, "v": 1})");
  EXPECT_EQ(result->version, "1");
  // The function's output and its REPORT are in the platform's log with the request id.
  const std::vector<std::string> output = Logged("function output");
  bool line_logged = false;
  for (const std::string& line : output) {
    line_logged = line_logged || (line.find("working on 4") != std::string::npos &&
                                  line.find("req-four") != std::string::npos);
  }
  EXPECT_TRUE(line_logged);
  const std::vector<std::string> invocations = Logged("invocation");
  ASSERT_EQ(invocations.size(), 1u);
  EXPECT_NE(invocations[0].find("\"outcome\":\"ok\""), std::string::npos) << invocations[0];
  const std::string exposed = metrics_.Expose();
  EXPECT_NE(
      exposed.find(
          R"(moatless_function_invocations_total{function="orders",version="1",outcome="ok"} 1)"),
      std::string::npos)
      << exposed;

  // An event: stored, then run by the queue's workers.
  const core::Status queued = functions_->Enqueue("orders", "", R"({"n":5})", "event-five");
  ASSERT_TRUE(queued.ok()) << queued;
  bool ran = false;
  for (int i = 0; i < 3000 && !ran; ++i) {
    for (const std::string& line : Logged("event invocation done")) {
      ran = ran || line.find("event-five") != std::string::npos;
    }
    if (!ran) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(ran);
}

// The value of one series of a family; -1 if there is no such series.
double SeriesValue(const observe::MetricsRegistry& registry, std::string_view family,
                   const std::vector<std::string>& labels) {
  const auto reading = registry.Read(family);
  if (!reading) return -1;
  for (const observe::SeriesReading& series : reading->series) {
    if (series.label_values == labels) return series.value;
  }
  return -1;
}

TEST_F(FunctionHostTest, AKnownLoadProducesExactlyThoseMetricValues) {
  const runtime::FunctionConfig f = PythonFunction("counted",
                                                   "import time\n"
                                                   "def handler(event, context):\n"
                                                   "    if event.get('fail'):\n"
                                                   "        raise ValueError('asked to fail')\n"
                                                   "    time.sleep(event.get('sleep', 0))\n"
                                                   "    return 'ok'\n");
  auto published = functions_->registry().Publish(f);
  ASSERT_TRUE(published.ok()) << published.status();
  // 3 that succeed, 2 that raise, 1 that times out, 2 throttled (reserved concurrency 0).
  for (int i = 0; i < 3; ++i) {
    auto r = functions_->Invoke(*published, "{}", "");
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_FALSE(r->function_error) << r->payload;
  }
  for (int i = 0; i < 2; ++i) {
    auto r = functions_->Invoke(*published, R"({"fail":true})", "");
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->function_error);
  }
  runtime::FunctionConfig slow = *published;
  slow.timeout = std::chrono::milliseconds(300);
  auto timed_out = functions_->Invoke(slow, R"({"sleep":5})", "");
  ASSERT_TRUE(timed_out.ok()) << timed_out.status();
  ASSERT_TRUE(timed_out->function_error);
  runtime::FunctionConfig capped = *published;
  capped.reserved_concurrency = 0;
  for (int i = 0; i < 2; ++i) {
    auto r = functions_->Invoke(capped, "{}", "");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().aws_type(), "TooManyRequestsException");
  }

  const std::string exposed = metrics_.Expose();  // runs the collectors too
  const auto value = [&](std::string_view family, const std::vector<std::string>& labels) {
    return SeriesValue(metrics_, family, labels);
  };
  EXPECT_EQ(value("moatless_function_invocations_total", {"counted", "1", "ok"}), 3) << exposed;
  EXPECT_EQ(value("moatless_function_invocations_total", {"counted", "1", "error"}), 2);
  EXPECT_EQ(value("moatless_function_invocations_total", {"counted", "1", "timeout"}), 1);
  EXPECT_EQ(value("moatless_function_errors_total", {"counted", "1", "Function"}), 2) << exposed;
  EXPECT_EQ(value("moatless_function_errors_total", {"counted", "1", "Sandbox.Timedout"}), 1);
  EXPECT_EQ(value("moatless_function_throttles_total", {"counted", "1"}), 2);
  // One environment served the first five; the timeout killed it.
  EXPECT_EQ(value("moatless_function_cold_starts_total", {"counted", "1"}), 1);
  EXPECT_EQ(value("moatless_sandbox_starts_total", {"ok"}), 1);
  EXPECT_EQ(value("moatless_function_concurrent_executions", {"counted"}), 0);
  EXPECT_EQ(value("moatless_function_environments", {"busy"}), 0);
  EXPECT_EQ(value("moatless_function_queued_invocations", {}), 0);
  // Histograms: one observation per invocation that ran, buckets cumulative and consistent.
  for (const std::string_view family :
       {"moatless_function_duration_seconds", "moatless_function_peak_memory_bytes"}) {
    const auto reading = metrics_.Read(family);
    ASSERT_TRUE(reading.has_value()) << family;
    ASSERT_EQ(reading->series.size(), 1u) << family;
    const observe::Histogram::Snapshot& h = *reading->series[0].histogram;
    EXPECT_EQ(h.count, 6u) << family;
    EXPECT_EQ(h.cumulative.back(), h.count);
    EXPECT_TRUE(std::is_sorted(h.cumulative.begin(), h.cumulative.end())) << family;
  }
  const auto init = metrics_.Read("moatless_function_init_duration_seconds");
  ASSERT_TRUE(init.has_value());
  EXPECT_EQ(init->series.at(0).histogram->count, 1u);
  // The timed-out invocation took at least its timeout: its observation is above 0.25 s.
  const auto durations = metrics_.Read("moatless_function_duration_seconds");
  const observe::Histogram::Snapshot& d = *durations->series[0].histogram;
  const std::size_t le_025 = static_cast<std::size_t>(
      std::find(d.bounds.begin(), d.bounds.end(), 0.25) - d.bounds.begin());
  ASSERT_LT(le_025, d.bounds.size());
  EXPECT_LE(d.cumulative[le_025], 5u);
}

}  // namespace
}  // namespace moatless::app
