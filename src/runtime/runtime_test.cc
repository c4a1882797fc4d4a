#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "core/clock.h"
#include "core/random.h"
#include "http/io_pool.h"
#include "runtime/invoker.h"
#include "sandbox/test_support.h"

namespace moatless::runtime {
namespace {

namespace json = boost::json;

class RuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { host_ = new sandbox::HostSupport(sandbox::ProbeHost()); }
  static void TearDownTestSuite() { delete host_; }

  void SetUp() override {
    if (const std::string missing = sandbox::testing::MissingIsolation(*host_); !missing.empty()) {
      GTEST_SKIP() << "functions cannot run on this host: " << missing;
    }
    char dir[] = "/tmp/runtime_test_XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    ::chmod(dir, 0755);
    auto sandboxer = sandbox::Sandboxer::Create(
        *host_, random_,
        {.state_dir = dir_ + "/state",
         .cgroup_parent = "moatless-runtime-test-" + std::to_string(::getpid())});
    ASSERT_TRUE(sandboxer.ok()) << sandboxer.status();
    sandboxer_ = std::move(*sandboxer);
    pool_ = std::make_unique<http::IoPool>(2);
    pool_->Start();
    api_ = std::make_unique<RuntimeApi>(*pool_, random_, clock_);
    invoker_ = std::make_unique<Invoker>(*sandboxer_, *api_, random_, clock_,
                                         InvokerOptions{.runtimes_dir = MOATLESS_RUNTIMES_DIR});
  }
  void TearDown() override {
    invoker_.reset();
    api_.reset();
    // Every environment is gone with the invoker: no cgroup, no root left behind.
    const std::string parent = "moatless-runtime-test-" + std::to_string(::getpid());
    for (const char* controller : {"pids", "memory", "freezer"}) {
      const std::string dir = std::string("/sys/fs/cgroup/") + controller + "/" + parent;
      if (!std::filesystem::exists(dir)) continue;
      for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        EXPECT_FALSE(entry.is_directory()) << "left behind: " << entry.path();
      }
    }
    if (std::filesystem::exists(dir_ + "/state")) {
      EXPECT_TRUE(std::filesystem::is_empty(dir_ + "/state")) << "an environment root is left";
    }
    if (pool_) {
      pool_->Stop();
      pool_->Join();
    }
    pool_.reset();
    sandboxer_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    sandbox::testing::RemoveCgroupParent("moatless-runtime-test-" + std::to_string(::getpid()));
  }

  // A function whose code directory holds `files`.
  FunctionConfig Function(std::string name, RuntimeKind runtime, std::string handler,
                          std::map<std::string, std::string> files) {
    const std::string code = dir_ + "/" + name;
    std::filesystem::create_directories(code);
    ::chmod(code.c_str(), 0755);
    for (const auto& [file, content] : files) {
      std::ofstream(code + "/" + file) << content;
      ::chmod((code + "/" + file).c_str(), 0755);
    }
    FunctionConfig f;
    f.name = std::move(name);
    f.runtime = runtime;
    f.handler = std::move(handler);
    f.code_dir = code;
    f.timeout = std::chrono::seconds(10);
    return f;
  }

  // A fresh invoker with other options (the runtimes directory is filled in).
  void Reopen(InvokerOptions options) {
    invoker_.reset();
    options.runtimes_dir = MOATLESS_RUNTIMES_DIR;
    invoker_ = std::make_unique<Invoker>(*sandboxer_, *api_, random_, clock_, std::move(options));
  }

  // Waits up to 30 s for `condition`.
  template <typename Condition>
  static bool Eventually(Condition condition) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!condition()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }

  InvokeResult Invoke(const FunctionConfig& f, std::string payload = "{}",
                      std::string request_id = "", std::string client_context = "") {
    auto result =
        invoker_->Invoke(f, std::move(payload), std::move(request_id), std::move(client_context));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : InvokeResult{};
  }

  static sandbox::HostSupport* host_;
  core::SecureRandom random_;
  core::RealClock clock_;
  std::string dir_;
  std::unique_ptr<sandbox::Sandboxer> sandboxer_;
  std::unique_ptr<http::IoPool> pool_;
  std::unique_ptr<RuntimeApi> api_;
  std::unique_ptr<Invoker> invoker_;
};

sandbox::HostSupport* RuntimeTest::host_ = nullptr;

TEST_F(RuntimeTest, NodeAsyncHandlerSeesItsEventAndContext) {
  const FunctionConfig f =
      Function("node-echo", RuntimeKind::kNodejs20, "index.handler", {{"index.mjs", R"(
export const handler = async (event, context) => ({
  echo: event,
  requestId: context.awsRequestId,
  fn: context.functionName,
  arn: context.invokedFunctionArn,
  remaining: context.getRemainingTimeInMillis() > 0,
  memory: context.memoryLimitInMB,
  clientContext: context.clientContext ?? null,
  uid: process.getuid(),
});)"}});
  InvokeResult first = Invoke(f, R"({"n":1})");
  ASSERT_FALSE(first.function_error) << first.payload << first.log;
  const json::object out = json::parse(first.payload).as_object();
  EXPECT_EQ(out.at("echo"), json::parse(R"({"n":1})"));
  EXPECT_EQ(out.at("requestId").as_string(), first.request_id);
  EXPECT_EQ(out.at("fn").as_string(), "node-echo");
  EXPECT_EQ(out.at("arn").as_string(), "arn:aws:lambda:local:000000000000:function:node-echo");
  EXPECT_TRUE(out.at("remaining").as_bool());
  EXPECT_EQ(out.at("memory").as_string(), "128");
  EXPECT_EQ(out.at("uid").as_int64(), 1000);
  EXPECT_TRUE(first.cold_start);
  // The second invocation reuses the warm environment.
  InvokeResult second = Invoke(f, R"({"n":2})");
  EXPECT_FALSE(second.cold_start);
  EXPECT_EQ(json::parse(second.payload).as_object().at("echo"), json::parse(R"({"n":2})"));
  EXPECT_EQ(invoker_->IdleEnvironments(f), 1u);
  EXPECT_TRUE(out.at("clientContext").is_null());
  // A client context (X-Amz-Client-Context, decoded) reaches context.clientContext.
  InvokeResult third = Invoke(f, "{}", "", R"({"custom":{"app":"shop"}})");
  EXPECT_EQ(json::parse(third.payload).as_object().at("clientContext"),
            json::parse(R"({"custom":{"app":"shop"}})"));
}

TEST_F(RuntimeTest, NodeCallbackAndCommonJsAndThrownErrors) {
  const FunctionConfig cb = Function("node-cb", RuntimeKind::kNodejs20, "app.main", {{"app.js", R"(
exports.main = (event, context, callback) => {
  if (event.fail) return callback(new TypeError("bad input"));
  setTimeout(() => callback(null, { ok: true }), 10);
};)"}});
  EXPECT_EQ(Invoke(cb).payload, R"({"ok":true})");
  InvokeResult failed = Invoke(cb, R"({"fail":true})");
  ASSERT_TRUE(failed.function_error);
  EXPECT_EQ(*failed.function_error, "Unhandled");
  const json::object error = json::parse(failed.payload).as_object();
  EXPECT_EQ(error.at("errorType").as_string(), "TypeError");
  EXPECT_EQ(error.at("errorMessage").as_string(), "bad input");
  EXPECT_TRUE(error.at("stackTrace").is_array());
  // A handled error leaves the environment warm.
  EXPECT_EQ(invoker_->IdleEnvironments(cb), 1u);
}

TEST_F(RuntimeTest, PythonHandlerAndItsErrors) {
  const FunctionConfig f = Function("py", RuntimeKind::kPython3, "app.handler", {{"app.py", R"(
import os
def handler(event, context):
    if event.get("fail"):
        raise ValueError("no good")
    print("log line from", context.aws_request_id)
    return {"sum": event["a"] + event["b"], "fn": context.function_name,
            "remaining": context.get_remaining_time_in_millis() > 0, "uid": os.getuid()}
)"}});
  InvokeResult ok = Invoke(f, R"({"a":2,"b":3})");
  ASSERT_FALSE(ok.function_error) << ok.payload << ok.log;
  EXPECT_EQ(json::parse(ok.payload),
            json::parse(R"({"sum":5,"fn":"py","remaining":true,"uid":1000})"));
  EXPECT_NE(ok.log.find("log line from " + ok.request_id), std::string::npos) << ok.log;
  InvokeResult failed = Invoke(f, R"({"fail":true})");
  ASSERT_TRUE(failed.function_error);
  const json::object error = json::parse(failed.payload).as_object();
  EXPECT_EQ(error.at("errorType").as_string(), "ValueError");
  EXPECT_EQ(error.at("errorMessage").as_string(), "no good");
}

TEST_F(RuntimeTest, AProvidedRuntimeInShell) {
  const FunctionConfig f =
      Function("custom", RuntimeKind::kProvided, "", {{"bootstrap", R"(#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  HEADERS=/tmp/headers
  EVENT=$(curl -sS -D "$HEADERS" "$API/invocation/next")
  ID=$(grep -i '^lambda-runtime-aws-request-id:' "$HEADERS" | cut -d: -f2 | tr -d '[:space:]')
  curl -sS -o /dev/null -X POST "$API/invocation/$ID/response" -d "{\"custom\":$EVENT}"
done
)"}});
  InvokeResult r = Invoke(f, R"([1,2,3])");
  ASSERT_FALSE(r.function_error) << r.payload << r.log;
  EXPECT_EQ(json::parse(r.payload), json::parse(R"({"custom":[1,2,3]})"));
}

// The Runtime API answers only the invocation in progress, and refuses oversized responses.
TEST_F(RuntimeTest, TheRuntimeApiRefusesOtherRequestIdsAndOversizedResponses) {
  const FunctionConfig f = Function("probe", RuntimeKind::kProvided, "", {{"bootstrap", R"(#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  curl -sS -D /tmp/headers -o /tmp/event "$API/invocation/next"
  ID=$(grep -i '^lambda-runtime-aws-request-id:' /tmp/headers | cut -d: -f2 | tr -d '[:space:]')
  OTHER=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$API/invocation/not-$ID/response" -d 1)
  head -c 7000000 /dev/zero | tr '\0' 'a' > /tmp/big
  BIG=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$API/invocation/$ID/response" \
        --data-binary @/tmp/big)
  PREVIOUS=$(cat /tmp/again 2>/dev/null || echo 0)
  curl -sS -o /dev/null -X POST "$API/invocation/$ID/response" \
       -d "{\"other_id\":$OTHER,\"oversized\":$BIG,\"answered_twice\":$PREVIOUS}"
  curl -sS -o /dev/null -w '%{http_code}' -X POST "$API/invocation/$ID/response" -d 2 > /tmp/again
done
)"}});
  InvokeResult r = Invoke(f);
  ASSERT_FALSE(r.function_error) << r.payload << r.log;
  EXPECT_EQ(json::parse(r.payload),
            json::parse(R"({"other_id":403,"oversized":413,"answered_twice":0})"));
  // The second invocation reports what answering the first one a second time got.
  InvokeResult next = Invoke(f);
  EXPECT_EQ(json::parse(next.payload),
            json::parse(R"({"other_id":403,"oversized":413,"answered_twice":403})"));
}

TEST_F(RuntimeTest, TheCredentialsEndpointWantsItsTokenAndRefreshesNearExpiry) {
  // Credentials that expire 100 s after issue: always within the refresh margin (300 s), and too
  // short for the environment to be reused for an invocation of up to 60 s.
  int issued = 0;
  invoker_ = std::make_unique<Invoker>(
      *sandboxer_, *api_, random_, clock_,
      InvokerOptions{.runtimes_dir = MOATLESS_RUNTIMES_DIR,
                     .credentials = [&](const FunctionConfig&, const std::string& environment) {
                       ++issued;
                       return core::Result<ContainerCredentials>(ContainerCredentials{
                           .access_key_id = "ASIATEST" + std::to_string(issued),
                           .secret_access_key = core::SecretBytes(std::string("s")),
                           .session_token = "token-for-" + environment,
                           .expires_at = std::chrono::duration_cast<std::chrono::seconds>(
                                             clock_.Now().time_since_epoch())
                                             .count() +
                                         100});
                     }});
  FunctionConfig f = Function("creds", RuntimeKind::kProvided, "", {{"bootstrap", R"(#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
get() { curl -sS -o /tmp/creds -w '%{http_code}' "$@" "$AWS_CONTAINER_CREDENTIALS_FULL_URI"; }
while true; do
  curl -sS -D /tmp/headers -o /tmp/event "$API/invocation/next"
  ID=$(grep -i '^lambda-runtime-aws-request-id:' /tmp/headers | cut -d: -f2 | tr -d '[:space:]')
  NONE=$(get)
  WRONG=$(get -H "Authorization: wrong")
  get -H "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" > /dev/null
  FIRST=$(cat /tmp/creds)
  get -H "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" > /dev/null
  SECOND=$(cat /tmp/creds)
  curl -sS -o /dev/null -X POST "$API/invocation/$ID/response" -d "{\"none\":$NONE,\
\"wrong\":$WRONG,\"first\":$FIRST,\"second\":$SECOND,\"variable\":\"$AWS_ACCESS_KEY_ID\"}"
done
)"}});
  f.role_arn = "arn:aws:iam::000000000000:role/fn";
  f.timeout = std::chrono::seconds(60);  // with the 60 s margin, longer than the credentials last
  InvokeResult r = Invoke(f);
  ASSERT_FALSE(r.function_error) << r.log;
  const json::object out = json::parse(r.payload).as_object();
  EXPECT_EQ(out.at("none").as_int64(), 403);
  EXPECT_EQ(out.at("wrong").as_int64(), 403);
  EXPECT_EQ(out.at("variable").as_string(), "ASIATEST1");
  // Each fetch found the credentials near expiry and got fresh ones.
  EXPECT_EQ(out.at("first").at("AccessKeyId").as_string(), "ASIATEST2");
  EXPECT_EQ(out.at("second").at("AccessKeyId").as_string(), "ASIATEST3");
  EXPECT_TRUE(std::string(out.at("first").at("Token").as_string()).starts_with("token-for-"));
  // The variables' credentials would expire during another invocation: a fresh environment.
  EXPECT_TRUE(Invoke(f).cold_start);
}

TEST_F(RuntimeTest, ATimeoutKillsTheEnvironmentAndReportsIt) {
  FunctionConfig f = Function("slow", RuntimeKind::kNodejs20, "index.handler", {{"index.mjs", R"(
export const handler = () => new Promise(() => {});)"}});
  f.timeout = std::chrono::milliseconds(500);
  InvokeResult r = Invoke(f);
  ASSERT_TRUE(r.function_error);
  EXPECT_NE(r.payload.find("Task timed out after 0.50 seconds"), std::string::npos) << r.payload;
  EXPECT_EQ(invoker_->IdleEnvironments(f), 0u);
  // The next invocation gets a fresh environment.
  EXPECT_TRUE(Invoke(f).cold_start);
}

TEST_F(RuntimeTest, InitErrorsCrashesAndOutOfMemoryAreReported) {
  const FunctionConfig missing =
      Function("missing", RuntimeKind::kPython3, "nothere.handler", {{"app.py", "x = 1\n"}});
  InvokeResult r = Invoke(missing);
  ASSERT_TRUE(r.function_error);
  EXPECT_EQ(json::parse(r.payload).as_object().at("errorType").as_string(),
            "Runtime.ImportModuleError")
      << r.payload;

  const FunctionConfig crash =
      Function("crash", RuntimeKind::kNodejs20, "index.handler", {{"index.mjs", R"(
export const handler = async () => { process.exit(3); };)"}});
  r = Invoke(crash);
  ASSERT_TRUE(r.function_error);
  EXPECT_NE(r.payload.find("Runtime exited with error: exit status 3"), std::string::npos)
      << r.payload;
  EXPECT_EQ(invoker_->IdleEnvironments(crash), 0u);

  const FunctionConfig hog = Function("hog", RuntimeKind::kPython3, "app.handler", {{"app.py", R"(
def handler(event, context):
    blocks = []
    while True:
        blocks.append(bytearray(16 * 1024 * 1024))
)"}});
  r = Invoke(hog);
  ASSERT_TRUE(r.function_error);
  EXPECT_EQ(json::parse(r.payload).as_object().at("errorType").as_string(), "Runtime.OutOfMemory")
      << r.payload;
}

TEST_F(RuntimeTest, FunctionsAndVersionsNeverShareAnEnvironment) {
  const char* code = R"(
import os
def handler(event, context):
    seen = os.path.exists("/tmp/marker")
    with open("/tmp/marker", "w") as f:
        f.write(event["who"])
    return {"seen": seen}
)";
  FunctionConfig a = Function("a", RuntimeKind::kPython3, "app.handler", {{"app.py", code}});
  FunctionConfig b = Function("b", RuntimeKind::kPython3, "app.handler", {{"app.py", code}});
  EXPECT_EQ(Invoke(a, R"({"who":"a"})").payload, R"({"seen": false})");
  EXPECT_EQ(Invoke(a, R"({"who":"a"})").payload, R"({"seen": true})");   // warm: same /tmp
  EXPECT_EQ(Invoke(b, R"({"who":"b"})").payload, R"({"seen": false})");  // never a's
  a.version = "2";
  EXPECT_EQ(Invoke(a, R"({"who":"a2"})").payload, R"({"seen": false})");  // never version 1's
}

TEST_F(RuntimeTest, EachInvocationLogsStartEndAndReport) {
  const FunctionConfig f =
      Function("logger", RuntimeKind::kNodejs20, "index.handler", {{"index.mjs", R"(
export const handler = async (event) => {
  console.log("to stdout", event.n);
  console.error("to stderr", event.n);
  return "ok";
};)"}});
  InvokeResult cold = Invoke(f, R"({"n":1})");
  ASSERT_FALSE(cold.function_error) << cold.payload << cold.log;
  const std::string start = "START RequestId: " + cold.request_id + " Version: $LATEST\n";
  const std::size_t at = cold.log.find(start);
  ASSERT_NE(at, std::string::npos) << cold.log;
  const std::string after = cold.log.substr(at + start.size());
  EXPECT_NE(after.find("to stdout 1"), std::string::npos) << cold.log;
  EXPECT_NE(after.find("to stderr 1"), std::string::npos) << cold.log;
  EXPECT_NE(after.find("END RequestId: " + cold.request_id + "\n"), std::string::npos) << cold.log;
  EXPECT_TRUE(cold.report.starts_with("REPORT RequestId: " + cold.request_id + "\tDuration: "))
      << cold.report;
  EXPECT_NE(cold.report.find("\tMemory Size: 128 MB\tMax Memory Used: "), std::string::npos);
  EXPECT_NE(cold.report.find("\tInit Duration: "), std::string::npos) << cold.report;
  EXPECT_TRUE(cold.log.ends_with(cold.report + "\n"));
  EXPECT_GT(cold.peak_memory_bytes, 0u);

  InvokeResult warm = Invoke(f, R"({"n":2})", "given-request-id");
  EXPECT_EQ(warm.request_id, "given-request-id");
  EXPECT_EQ(warm.report.find("Init Duration"), std::string::npos) << warm.report;
  EXPECT_EQ(warm.log.find("to stdout 1"), std::string::npos) << "another invocation's output";
  EXPECT_NE(warm.log.find("to stdout 2"), std::string::npos) << warm.log;
  EXPECT_EQ(warm.LogTail(), warm.log);  // under 4 KiB

  FunctionConfig slow =
      Function("slow-report", RuntimeKind::kNodejs20, "index.handler",
               {{"index.mjs", "export const handler = () => new Promise(() => {});"}});
  slow.timeout = std::chrono::milliseconds(300);
  EXPECT_NE(Invoke(slow).report.find("\tStatus: timeout"), std::string::npos);
}

TEST_F(RuntimeTest, LargePayloadsBothWays) {
  const FunctionConfig f = Function("big", RuntimeKind::kPython3, "app.handler", {{"app.py", R"(
def handler(event, context):
    return {"len": len(event["data"]), "back": "y" * event["want"]}
)"}});
  const std::string data(5 * 1024 * 1024, 'x');
  InvokeResult r = Invoke(f, R"({"want":5000000,"data":")" + data + "\"}");
  ASSERT_FALSE(r.function_error) << r.payload.substr(0, 300);
  const json::object out = json::parse(r.payload).as_object();
  EXPECT_EQ(out.at("len").as_int64(), static_cast<std::int64_t>(data.size()));
  EXPECT_EQ(out.at("back").as_string().size(), 5000000u);
}

TEST_F(RuntimeTest, AProvidedRuntimeInC) {
  // A custom runtime compiled from C: the Runtime API over a plain socket.
  const FunctionConfig f = Function("c-runtime", RuntimeKind::kProvided, "unused", {{"main.c", R"(
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int Connect(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(9001);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) exit(1);
  return fd;
}

static int Exchange(const char* request, char* reply, int size) {
  int fd = Connect(), got = 0, n;
  if (write(fd, request, strlen(request)) < 0) exit(2);
  while (got < size - 1 && (n = read(fd, reply + got, size - 1 - got)) > 0) got += n;
  reply[got] = 0;
  close(fd);
  return got;
}

int main(void) {
  static char reply[65536], request[66000];
  for (;;) {
    Exchange("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: r\r\n"
             "Connection: close\r\n\r\n", reply, sizeof reply);
    char* id = strstr(reply, "Lambda-Runtime-Aws-Request-Id: ");
    char* body = strstr(reply, "\r\n\r\n");
    if (!id || !body) return 3;
    id += strlen("Lambda-Runtime-Aws-Request-Id: ");
    *strchr(id, '\r') = 0;
    char response[1024];
    snprintf(response, sizeof response, "{\"from\":\"c\",\"event\":%s}", body + 4);
    snprintf(request, sizeof request,
             "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: r\r\n"
             "Connection: close\r\nContent-Length: %zu\r\n\r\n%s", id, strlen(response), response);
    Exchange(request, reply, sizeof reply);
  }
}
)"}});
  const std::string build = "cc -O1 -o " + f.code_dir + "/bootstrap " + f.code_dir + "/main.c";
  ASSERT_EQ(std::system(build.c_str()), 0) << build;
  InvokeResult r = Invoke(f, R"({"k":[1,2]})");
  ASSERT_FALSE(r.function_error) << r.payload << r.log;
  EXPECT_EQ(json::parse(r.payload), json::parse(R"({"from":"c","event":{"k":[1,2]}})"));
  EXPECT_FALSE(Invoke(f, "{}").cold_start);
}

TEST_F(RuntimeTest, IdleEnvironmentsAreFrozenThenReaped) {
  Reopen({.freeze_after = std::chrono::milliseconds(50),
          .idle_timeout = std::chrono::milliseconds(1500)});
  const FunctionConfig f =
      Function("idle", RuntimeKind::kNodejs20, "index.handler", {{"index.mjs", R"(
let calls = 0;
export const handler = async () => ++calls;)"}});
  EXPECT_EQ(Invoke(f).payload, "1");
  ASSERT_TRUE(Eventually([&] { return invoker_->FrozenEnvironments(f) == 1; }));
  // A frozen environment is thawed and reused: the module state is still there.
  InvokeResult thawed = Invoke(f);
  EXPECT_FALSE(thawed.cold_start);
  EXPECT_EQ(thawed.payload, "2");
  // Past the idle timeout it is discarded; the next invocation is a cold start.
  ASSERT_TRUE(Eventually([&] { return invoker_->IdleEnvironments(f) == 0; }));
  InvokeResult fresh = Invoke(f);
  EXPECT_TRUE(fresh.cold_start);
  EXPECT_EQ(fresh.payload, "1");
}

TEST_F(RuntimeTest, ConcurrencyLimitsThrottleWithTooManyRequests) {
  Reopen({.concurrency = {.platform_limit = 4, .max_queued = 0}});
  FunctionConfig f = Function("gate", RuntimeKind::kNodejs20, "index.handler", {{"index.mjs", R"(
export const handler = async (event) => {
  await new Promise((resolve) => setTimeout(resolve, event.ms));
  return "done";
};)"}});
  f.reserved_concurrency = 1;
  auto busy = std::async(std::launch::async, [&] { return invoker_->Invoke(f, R"({"ms":3000})"); });
  ASSERT_TRUE(Eventually([&] { return invoker_->gate().running(f.name) == 1; }));
  auto throttled = invoker_->Invoke(f, R"({"ms":0})");
  ASSERT_FALSE(throttled.ok());
  EXPECT_EQ(throttled.status().code(), core::StatusCode::kResourceExhausted);
  EXPECT_EQ(throttled.status().aws_type(), "TooManyRequestsException");
  // Another function is not held back by f's reservation.
  FunctionConfig other = f;
  other.name = "gate-other";
  other.reserved_concurrency.reset();
  EXPECT_EQ(Invoke(other, R"({"ms":0})").payload, "\"done\"");
  auto finished = busy.get();
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_EQ(finished->payload, "\"done\"");
  f.reserved_concurrency = 0;
  EXPECT_EQ(invoker_->Invoke(f, "{}").status().aws_type(), "TooManyRequestsException");
}

TEST_F(RuntimeTest, BadConfigurationsAreRejected) {
  FunctionConfig f = Function("ok", RuntimeKind::kNodejs20, "index.handler", {});
  f.environment["AWS_SECRET_ACCESS_KEY"] = "x";
  EXPECT_EQ(invoker_->Invoke(f, "{}").status().code(), core::StatusCode::kInvalidArgument);
  f.environment.clear();
  f.name = "bad name";
  EXPECT_EQ(invoker_->Invoke(f, "{}").status().code(), core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace moatless::runtime
