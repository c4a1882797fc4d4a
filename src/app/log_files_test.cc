#include "app/log_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "app/logs_api.h"

namespace moatless::app {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

std::vector<json::object> ParseLines(const std::string& text) {
  std::vector<json::object> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line).as_object());
  return out;
}

std::string S(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

runtime::FunctionConfig Function(std::string name = "notes_dev_api") {
  runtime::FunctionConfig f;
  f.name = std::move(name);
  f.version = "3";
  f.memory_mb = 256;
  return f;
}

runtime::InvokeResult Result(const std::string& id, const std::string& output, bool cold = false) {
  runtime::InvokeResult r;
  r.request_id = id;
  r.version = "3";
  r.cold_start = cold;
  r.duration = std::chrono::microseconds(12'345);
  r.init_duration = std::chrono::microseconds(80'100);
  r.peak_memory_bytes = 41u << 20;
  r.report = "REPORT RequestId: " + id +
             "\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 256 MB\tMax Memory "
             "Used: 41 MB";
  if (cold) r.report += "\tInit Duration: 80.10 ms";
  r.report += "\tStatus: error\tError Type: Runtime.Oops";
  r.log = std::string(cold ? "init says hi\n" : "") + "START RequestId: " + id + " Version: 3\n" +
          output + "END RequestId: " + id + "\n" + r.report + "\n";
  return r;
}

TEST(FunctionLogLinesTest, SplitsAnInvocationIntoTypedLines) {
  core::FakeClock clock;
  const std::string id = "8f5b2c1e-0000-4000-8000-000000000001";
  const std::string text =
      FunctionLogLines(Function(),
                       Result(id, "hello\n\"quoted\"\tand \xff bytes\nEND RequestId: x\n",
                              /*cold=*/true),
                       clock.Now());
  const auto lines = ParseLines(text);
  ASSERT_EQ(lines.size(), 7u) << text;
  std::vector<std::string> types;
  for (const auto& l : lines) {
    types.emplace_back(l.at("type").as_string());
    EXPECT_EQ(S(l.at("time")), "2026-01-01T00:00:00.000Z");
    EXPECT_EQ(S(l.at("request_id")), id);
    EXPECT_EQ(S(l.at("function")), "notes_dev_api");
    EXPECT_EQ(S(l.at("version")), "3");
  }
  EXPECT_EQ(types, (std::vector<std::string>{"output", "start", "output", "output", "output", "end",
                                             "report"}));
  EXPECT_EQ(S(lines[0].at("message")), "init says hi");
  EXPECT_EQ(S(lines[1].at("message")), "START RequestId: " + id + " Version: 3");
  EXPECT_EQ(S(lines[1].at("stream")), "platform");
  EXPECT_EQ(S(lines[2].at("stream")), "output");
  EXPECT_EQ(S(lines[3].at("message")), "\"quoted\"\tand \xEF\xBF\xBD bytes");
  EXPECT_EQ(S(lines[4].at("message")), "END RequestId: x");  // printed by the function
  const json::object& report = lines[6];
  EXPECT_TRUE(report.at("message").as_string().starts_with("REPORT RequestId: " + id));
  EXPECT_EQ(report.at("duration_ms").as_double(), 12.345);
  EXPECT_EQ(report.at("billed_duration_ms").as_int64(), 13);
  EXPECT_EQ(report.at("memory_size_mb").as_int64(), 256);
  EXPECT_EQ(report.at("max_memory_used_mb").as_int64(), 41);
  EXPECT_EQ(report.at("init_duration_ms").as_double(), 80.1);
  EXPECT_EQ(S(report.at("status")), "error");
  EXPECT_EQ(S(report.at("error_type")), "Runtime.Oops");
  // A warm invocation has no init duration.
  const auto warm = ParseLines(FunctionLogLines(Function(), Result(id, ""), clock.Now()));
  ASSERT_EQ(warm.size(), 3u);
  EXPECT_FALSE(warm[2].contains("init_duration_ms"));
}

TEST(ValidateLogNameTest, OnlyRegistryNames) {
  EXPECT_TRUE(ValidateLogName("notes_dev-api_1").ok());
  EXPECT_TRUE(ValidateLogName(std::string(64, 'a')).ok());
  for (const std::string& bad :
       std::vector<std::string>{"", "..", "a/b", "../x", "a.log", "a b", "é", std::string(65, 'a'),
                                std::string("a\0b", 3)}) {
    EXPECT_FALSE(ValidateLogName(bad).ok()) << bad;
  }
}

class FunctionLogsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/moatless-fnlogs-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    auto logs =
        FunctionLogs::Open(dir_ + "/logs/functions", {.max_bytes = 4096, .max_files = 3}, clock_);
    ASSERT_TRUE(logs.ok()) << logs.status();
    logs_ = std::move(logs).value();
  }
  void TearDown() override { fs::remove_all(dir_); }

  core::FakeClock clock_;
  std::string dir_;
  std::unique_ptr<FunctionLogs> logs_;
};

TEST_F(FunctionLogsTest, WritesPrivateFilesPerFunctionAndReadsThemBack) {
  logs_->Record(Function("a"), Result("r1", "one\n"));
  logs_->Record(Function("b"), Result("r2", "two\n"));
  logs_->Record(Function("../evil"), Result("r3", "three\n"));  // never a path
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/logs/functions").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat(logs_->PathOf("a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(fs::exists(dir_ + "/logs/evil.log"));
  auto page = logs_->Read("a", {.request_id = "r1"});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries.size(), 4u);
  EXPECT_EQ(S(page->entries[1].at("message")), "one");
  EXPECT_TRUE(logs_->Read("b", {.request_id = "r1"})->entries.empty());
  EXPECT_TRUE(logs_->HasLog("a"));
  EXPECT_FALSE(logs_->HasLog("c"));
  EXPECT_FALSE(logs_->Read("../a", {}).ok());
  EXPECT_EQ(logs_->failed_writes(), 0u);
}

TEST_F(FunctionLogsTest, AnInvocationIsNeverSplitByRotation) {
  for (int i = 0; i < 40; ++i) {
    logs_->Record(Function("a"), Result("r" + std::to_string(i), std::string(300, 'x') + "\n"));
  }
  EXPECT_EQ(observe::LogFilePaths(logs_->PathOf("a")).size(), 3u);
  for (const std::string& path : observe::LogFilePaths(logs_->PathOf("a"))) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    const auto lines = ParseLines(s.str());
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(S(lines.front().at("type")), "start") << path;
    EXPECT_EQ(S(lines.back().at("type")), "report") << path;
  }
}

TEST_F(FunctionLogsTest, RetentionRemovesLogsNobodyWritesToWhileTheDaemonRuns) {
  clock_.SetWallTime(std::chrono::system_clock::now());
  auto opened = FunctionLogs::Open(dir_ + "/retained", {.max_age = std::chrono::hours(48)}, clock_);
  ASSERT_TRUE(opened.ok());
  FunctionLogs& logs = **opened;
  logs.Record(Function("idle"), Result("r1", "old\n"));
  logs.Record(Function("busy"), Result("r2", "new\n"));
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() -
                                                      std::chrono::hours(72));
  const timespec times[2] = {{t, 0}, {t, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, logs.PathOf("idle").c_str(), times, 0), 0);
  // Within the hour nothing is swept; after it, the next write sweeps.
  logs.Record(Function("busy"), Result("r3", "\n"));
  EXPECT_TRUE(logs.HasLog("idle"));
  clock_.Advance(std::chrono::minutes(61));
  logs.Record(Function("busy"), Result("r4", "\n"));
  EXPECT_FALSE(logs.HasLog("idle"));
  EXPECT_TRUE(logs.HasLog("busy"));
  // The function writes again: a new file, nothing lost.
  logs.Record(Function("idle"), Result("r5", "back\n"));
  auto page = logs.Read("idle", {});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries.size(), 4u);
  EXPECT_EQ(S(page->entries[0].at("request_id")), "r5");
}

http::Request Get(const std::string& target) {
  http::Request request(http::Verb::get, target, 11);
  return request;
}

TEST_F(FunctionLogsTest, ApiAuthorisesPerFunctionAndFiltersOnTheServer) {
  LogsApi api(LogsApi::Deps{.logs = *logs_,
                            .function_exists = [](const std::string& name) -> core::Result<bool> {
                              if (name == "broken") return core::UnavailableError("store down");
                              return name == "registered";
                            },
                            .region = "local",
                            .account_id = "123456789012"});
  EXPECT_TRUE(api.Handles(Get("/moatless/v1/functions/a/logs")));
  EXPECT_FALSE(api.Handles(Get("/moatless/v1/apps")));
  auto target = api.Decode(Get("/moatless/v1/functions/a/logs?since=x"));
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->action, "moatless:GetFunctionLogs");
  EXPECT_EQ(target->resource, "arn:aws:lambda:local:123456789012:function:a");
  EXPECT_EQ(api.Decode(Get("/moatless/v1/functions/a%2F..%2Fb/logs")).status().code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(api.Decode(Get("/moatless/v1/functions/a/other")).status().code(),
            core::StatusCode::kNotFound);
  http::Request post = Get("/moatless/v1/functions/a/logs");
  post.method(http::Verb::post);
  EXPECT_FALSE(api.Decode(post).ok());

  http::RequestContext context;
  context.request_id = "req";
  auto run = [&](const std::string& t) {
    const http::Request request = Get(t);
    auto decoded = api.Decode(request);
    EXPECT_TRUE(decoded.ok()) << t;
    return api.Run(request, context, *decoded, "arn:aws:iam::123456789012:user/u");
  };
  EXPECT_EQ(run("/moatless/v1/functions/unknown/logs").result_int(), 404);
  EXPECT_EQ(run("/moatless/v1/functions/unknown/logs")["x-amzn-ErrorType"],
            "ResourceNotFoundException");
  EXPECT_EQ(run("/moatless/v1/functions/broken/logs").result_int(), 503);
  // Registered without logs yet: an empty page.
  const auto empty = json::parse(run("/moatless/v1/functions/registered/logs").body()).as_object();
  EXPECT_TRUE(empty.at("Events").as_array().empty());

  logs_->Record(Function("a"), Result("r1", "one\n"));
  clock_.Advance(std::chrono::minutes(5));
  logs_->Record(Function("a"), Result("r2", "two\n"));
  const auto all = json::parse(run("/moatless/v1/functions/a/logs").body()).as_object();
  EXPECT_EQ(all.at("Events").as_array().size(), 8u);
  EXPECT_FALSE(all.at("More").as_bool());
  const auto since =
      json::parse(run("/moatless/v1/functions/a/logs?since=2026-01-01T00:01:00Z").body())
          .as_object();
  EXPECT_EQ(since.at("Events").as_array().size(), 4u);
  EXPECT_EQ(since.at("Events").as_array()[1].as_object().at("request_id"), "r2");
  const auto one =
      json::parse(run("/moatless/v1/functions/a/logs?requestId=r1&filter=one&limit=1").body())
          .as_object();
  ASSERT_EQ(one.at("Events").as_array().size(), 1u);
  EXPECT_EQ(one.at("Events").as_array()[0].as_object().at("message"), "one");
  // Following: the cursor continues after the last line returned.
  logs_->Record(Function("a"), Result("r3", "three\n"));
  const auto next = json::parse(run("/moatless/v1/functions/a/logs?cursor=" +
                                    std::string(all.at("NextCursor").as_string()))
                                    .body())
                        .as_object();
  ASSERT_EQ(next.at("Events").as_array().size(), 4u);
  EXPECT_EQ(next.at("Events").as_array()[0].as_object().at("request_id"), "r3");
  for (const char* bad :
       {"?limit=0", "?limit=10001", "?limit=x", "?since=yesterday", "?cursor=nonsense"}) {
    const http::Response r = run(std::string("/moatless/v1/functions/a/logs") + bad);
    EXPECT_EQ(r.result_int(), 400) << bad;
    EXPECT_EQ(r["x-amzn-ErrorType"], "ValidationException") << bad;
  }
}

}  // namespace
}  // namespace moatless::app
