#include "app/function_host.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

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

  runtime::FunctionConfig WhoAmI(std::string role) {
    const std::string code = dir_ + "/code";
    std::filesystem::create_directories(code);
    ::chmod(code.c_str(), 0755);
    std::ofstream(code + "/app.py") << kWhoAmI;
    runtime::FunctionConfig f;
    f.name = "orders";
    f.runtime = runtime::RuntimeKind::kPython3;
    f.handler = "app.handler";
    f.code_dir = code;
    f.memory_mb = 512;
    f.timeout = std::chrono::seconds(60);
    f.role_arn = "arn:aws:iam::000000000000:role/" + role;
    return f;
  }

  std::vector<json::object> AuditRecords() {
    std::ifstream in(AuditPath());
    std::vector<json::object> out;
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line).as_object());
    return out;
  }

  sandbox::HostSupport host_;
  std::unique_ptr<http::IoPool> io_;
  std::unique_ptr<sandbox::Sandboxer> sandboxer_;
  std::unique_ptr<FunctionHost> functions_;
};

TEST_F(FunctionHostTest, AFunctionActsAsItsRoleAndItsCredentialsWorkNowhereElse) {
  auto result = functions_->invoker().Invoke(WhoAmI("fn-orders"), "{}");
  ASSERT_TRUE(result.ok()) << result.status();
  // The payload holds the credentials: never printed.
  ASSERT_FALSE(result->function_error) << result->log_tail;
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

}  // namespace
}  // namespace moatless::app
