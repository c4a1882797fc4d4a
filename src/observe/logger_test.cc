#include "observe/logger.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>
#include <type_traits>

#include "core/clock.h"
#include "core/secret_bytes.h"

namespace moatless::observe {
namespace {

namespace json = boost::json;

// No implicit path turns a pointer into a boolean field or a SecretBytes into text.
static_assert(!std::is_constructible_v<LogField, std::string_view, int*>);
static_assert(!std::is_constructible_v<LogField, std::string_view, const void*>);
static_assert(std::is_constructible_v<LogField, std::string_view, const core::SecretBytes&>);
static_assert(!std::is_convertible_v<const core::SecretBytes&, std::string_view>);
static_assert(!std::is_convertible_v<const core::SecretBytes&, std::string>);

json::object ParseLine(const std::string& line) {
  boost::system::error_code ec;
  json::value v = json::parse(line, ec);
  EXPECT_FALSE(ec) << ec.message() << " in: " << line;
  EXPECT_TRUE(v.is_object()) << line;
  return v.is_object() ? v.get_object() : json::object();
}

class LoggerTest : public ::testing::Test {
 protected:
  core::FakeClock clock_;
  MemorySink sink_;
  Logger logger_{sink_, clock_, LogLevel::kDebug};
};

TEST_F(LoggerTest, WritesOneJsonObjectPerLine) {
  logger_.Info("function invoked", {{"function", "resize"},
                                    {"duration_ms", 12},
                                    {"bytes", std::uint64_t{18446744073709551615ULL}},
                                    {"ratio", 0.25},
                                    {"cold", false},
                                    {"negative", -7}});
  const auto lines = sink_.Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0],
            "{\"time\":\"2026-01-01T00:00:00.000Z\",\"level\":\"info\",\"msg\":\"function "
            "invoked\",\"function\":\"resize\",\"duration_ms\":12,\"bytes\":"
            "18446744073709551615,\"ratio\":2.5E-1,\"cold\":false,\"negative\":-7}");
  const json::object obj = ParseLine(lines[0]);
  EXPECT_EQ(obj.at("ratio").as_double(), 0.25);
  EXPECT_EQ(obj.at("cold").as_bool(), false);
  EXPECT_EQ(obj.at("bytes").as_uint64(), 18446744073709551615ULL);
}

TEST_F(LoggerTest, TimeComesFromTheClock) {
  clock_.Advance(std::chrono::milliseconds(1500));
  logger_.Warn("later");
  const json::object obj = ParseLine(sink_.Lines().at(0));
  EXPECT_EQ(obj.at("time").as_string(), "2026-01-01T00:00:01.500Z");
  EXPECT_EQ(obj.at("level").as_string(), "warn");
}

TEST_F(LoggerTest, EscapesQuotesNewlinesAndControlCharacters) {
  const std::string nasty =
      "quote\" backslash\\ newline\n{\"level\":\"error\",\"msg\":\"forged\"}\r\t\x01\x1b[31m";
  logger_.Error(nasty, {{"value", nasty}});
  const auto lines = sink_.Lines();
  ASSERT_EQ(lines.size(), 1u);  // the newline did not start a second line
  const std::string& line = lines[0];
  for (const char c : line) {
    EXPECT_GE(static_cast<unsigned char>(c), 0x20) << "raw control character in " << line;
  }
  EXPECT_NE(line.find("\\u001b"), std::string::npos);
  EXPECT_NE(line.find("\\u0001"), std::string::npos);
  const json::object obj = ParseLine(line);
  EXPECT_EQ(obj.at("msg").as_string(), nasty);
  EXPECT_EQ(obj.at("value").as_string(), nasty);
  EXPECT_EQ(obj.at("level").as_string(), "error");
  EXPECT_EQ(obj.size(), 4u);
}

TEST_F(LoggerTest, InvalidUtf8StillParses) {
  logger_.Info(std::string_view("bad \xC3(", 6), {{"k", std::string_view("\xFF\xFE")}});
  const json::object obj = ParseLine(sink_.Lines().at(0));
  EXPECT_EQ(obj.at("msg").as_string(), "bad \xEF\xBF\xBD(");
}

TEST_F(LoggerTest, SecretBytesAreRedacted) {
  core::SecretBytes secret(std::string_view("hunter2-super-secret"));
  logger_.Info("got credentials", {{"password", secret}});
  const Logger child = logger_.With({{"api_key", secret}});
  child.Info("again");
  const auto lines = sink_.Lines();
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& line : lines) {
    EXPECT_EQ(line.find("hunter2"), std::string::npos) << line;
  }
  EXPECT_EQ(ParseLine(lines[0]).at("password").as_string(), "[redacted]");
  EXPECT_EQ(ParseLine(lines[1]).at("api_key").as_string(), "[redacted]");
}

TEST_F(LoggerTest, LevelFiltering) {
  logger_.SetMinLevel(LogLevel::kWarn);
  logger_.Debug("d");
  logger_.Info("i");
  logger_.Warn("w");
  logger_.Error("e");
  EXPECT_FALSE(logger_.Enabled(LogLevel::kInfo));
  EXPECT_TRUE(logger_.Enabled(LogLevel::kError));
  const auto lines = sink_.Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(ParseLine(lines[0]).at("msg").as_string(), "w");
  EXPECT_EQ(ParseLine(lines[1]).at("msg").as_string(), "e");

  // Children share the level with their parent.
  const Logger child = logger_.WithRequestId("r-1");
  logger_.SetMinLevel(LogLevel::kError);
  child.Warn("dropped");
  EXPECT_EQ(sink_.Lines().size(), 2u);
  EXPECT_EQ(child.min_level(), LogLevel::kError);
}

TEST_F(LoggerTest, ChildLoggersCarryRequestIdAndFields) {
  const Logger request = logger_.WithRequestId("req-123").With({{"function", "f1"}});
  request.Info("start", {{"attempt", 1}});
  request.With({{"function", "f2"}}).Info("override");
  logger_.Info("root");
  const auto lines = sink_.Lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0],
            "{\"time\":\"2026-01-01T00:00:00.000Z\",\"level\":\"info\",\"msg\":\"start\","
            "\"request_id\":\"req-123\",\"function\":\"f1\",\"attempt\":1}");
  EXPECT_EQ(ParseLine(lines[1]).at("function").as_string(), "f2");
  EXPECT_FALSE(ParseLine(lines[2]).contains("request_id"));
  EXPECT_FALSE(ParseLine(lines[2]).contains("function"));
}

TEST_F(LoggerTest, FieldsCannotOverrideReservedKeys) {
  logger_.Info("real", {{"level", "debug"}, {"msg", "forged"}, {"time", "never"}});
  const json::object obj = ParseLine(sink_.Lines().at(0));
  EXPECT_EQ(obj.at("level").as_string(), "info");
  EXPECT_EQ(obj.at("msg").as_string(), "real");
  EXPECT_EQ(obj.at("field_level").as_string(), "debug");
  EXPECT_EQ(obj.at("field_msg").as_string(), "forged");
  EXPECT_EQ(obj.at("field_time").as_string(), "never");
}

TEST_F(LoggerTest, TypedValueEdgeCases) {
  const char* null_text = nullptr;
  logger_.Info("edge", {{"nan", std::nan("")},
                        {"inf", std::numeric_limits<double>::infinity()},
                        {"null", null_text},
                        {"status", core::NotFoundError("no such function")},
                        {"ok", core::Status::Ok()},
                        {"flag", true}});
  const json::object obj = ParseLine(sink_.Lines().at(0));
  EXPECT_EQ(obj.at("nan").as_string(), "NaN");
  EXPECT_EQ(obj.at("inf").as_string(), "+Inf");
  EXPECT_EQ(obj.at("null").as_string(), "(null)");
  EXPECT_EQ(obj.at("status").as_string(), "NOT_FOUND: no such function");
  EXPECT_EQ(obj.at("ok").as_string(), "OK");
  EXPECT_EQ(obj.at("flag").as_bool(), true);
}

TEST_F(LoggerTest, NoInterleavingUnderThreads) {
  constexpr int kThreads = 8;
  constexpr int kLines = 500;
  const std::string payload(3000, 'x');  // long lines make interleaving likely if it can happen
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const Logger mine = logger_.With({{"thread", t}});
      for (int i = 0; i < kLines; ++i) mine.Info("line", {{"i", i}, {"payload", payload}});
    });
  }
  for (auto& th : threads) th.join();
  const auto lines = sink_.Lines();
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kLines));
  std::vector<int> next(kThreads, 0);
  for (const auto& line : lines) {
    const json::object obj = ParseLine(line);
    const auto t = obj.at("thread").as_int64();
    EXPECT_EQ(obj.at("i").as_int64(), next[static_cast<std::size_t>(t)]++);
    EXPECT_EQ(obj.at("payload").as_string(), payload);
  }
}

TEST(FileSinkTest, AppendsWholeLinesWithMode0600) {
  char dir_template[] = "/tmp/observe_log_XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/app.log";
  core::FakeClock clock;
  {
    auto sink = FileSink::Open(path);
    ASSERT_TRUE(sink.ok()) << sink.status();
    Logger logger(**sink, clock);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 200; ++i) logger.Info("file", {{"t", t}, {"i", i}});
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ((*sink)->failed_writes(), 0u);
    // Rotation: rename the file away, reopen, keep logging.
    ASSERT_EQ(::rename(path.c_str(), (path + ".1").c_str()), 0);
    ASSERT_TRUE((*sink)->Reopen().ok());
    logger.Info("after rotation");
  }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream rotated(path + ".1");
  std::string line;
  int count = 0;
  while (std::getline(rotated, line)) {
    ParseLine(line);
    ++count;
  }
  EXPECT_EQ(count, 800);
  std::ifstream current(path);
  ASSERT_TRUE(std::getline(current, line));
  EXPECT_EQ(ParseLine(line).at("msg").as_string(), "after rotation");
  std::remove((path + ".1").c_str());
  std::remove(path.c_str());
  ::rmdir(dir_template);
}

TEST(LogLevelTest, ParseAndName) {
  EXPECT_EQ(*ParseLogLevel("DEBUG"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("info"), LogLevel::kInfo);
  EXPECT_EQ(*ParseLogLevel("warning"), LogLevel::kWarn);
  EXPECT_EQ(*ParseLogLevel("Error"), LogLevel::kError);
  EXPECT_FALSE(ParseLogLevel("verbose").ok());
  EXPECT_EQ(LogLevelName(LogLevel::kWarn), "warn");
}

}  // namespace
}  // namespace moatless::observe
