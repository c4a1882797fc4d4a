#include "core/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace moatless::core {
namespace {

ConfigSchema Schema() {
  ConfigSchema schema;
  schema.Add({.name = "listen", .type = ConfigType::kHostPort, .default_value = "127.0.0.1:8420"})
      .Add({.name = "http.max_body_bytes",
            .type = ConfigType::kBytes,
            .default_value = "6MiB",
            .min = 1,
            .max = 1LL << 30})
      .Add({.name = "http.idle_timeout", .type = ConfigType::kDuration, .default_value = "60s"})
      .Add(
          {.name = "threads", .type = ConfigType::kInt, .default_value = "2", .min = 1, .max = 256})
      .Add({.name = "tls", .type = ConfigType::kBool, .default_value = "false"})
      .Add({.name = "data_dir", .type = ConfigType::kPath, .default_value = ".moatless"});
  return schema;
}

std::string WriteTemp(const std::string& text) {
  char path[] = "/tmp/moatless-config-XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigTest, DefaultsApply) {
  auto config = Config::Load(Schema(), {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetString("listen"), "127.0.0.1:8420");
  EXPECT_EQ(config->GetInt("http.max_body_bytes"), 6 * 1024 * 1024);
  EXPECT_EQ(config->GetDuration("http.idle_timeout"), std::chrono::seconds(60));
  EXPECT_FALSE(config->GetBool("tls"));
  EXPECT_EQ(config->Origin("listen"), "default");
}

TEST(ConfigTest, PrecedenceIsDefaultFileEnvFlag) {
  const std::string file =
      WriteTemp("http:\n  max_body_bytes: 1KiB\n  idle_timeout: 5s\nthreads: 3\n");
  ConfigSources sources{.file_path = file,
                        .environment = {{"MOATLESS_THREADS", "4"}, {"HOME", "/root"}},
                        .flags = {{"http.idle_timeout", "250ms"}}};
  auto config = Config::Load(Schema(), sources);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetInt("http.max_body_bytes"), 1024);
  EXPECT_EQ(config->Origin("http.max_body_bytes"), "file " + file);
  EXPECT_EQ(config->GetInt("threads"), 4);
  EXPECT_EQ(config->Origin("threads"), "env MOATLESS_THREADS");
  EXPECT_EQ(config->GetDuration("http.idle_timeout"), std::chrono::milliseconds(250));
  EXPECT_EQ(config->Origin("http.idle_timeout"), "flag --http.idle_timeout");
  std::remove(file.c_str());
}

TEST(ConfigTest, ErrorsNameTheKeyAndSource) {
  auto bad_env = Config::Load(Schema(), {.environment = {{"MOATLESS_THREADS", "many"}}});
  ASSERT_FALSE(bad_env.ok());
  EXPECT_EQ(bad_env.status().message(),
            "config key 'threads' (from env MOATLESS_THREADS): expected an integer, got \"many\"");

  auto out_of_range = Config::Load(Schema(), {.flags = {{"threads", "0"}}});
  ASSERT_FALSE(out_of_range.ok());
  EXPECT_NE(out_of_range.status().message().find("'threads' (from flag --threads)"),
            std::string::npos);

  auto bad_port = Config::Load(Schema(), {.flags = {{"listen", "127.0.0.1:99999"}}});
  ASSERT_FALSE(bad_port.ok());
  EXPECT_NE(bad_port.status().message().find("'listen'"), std::string::npos);

  auto bad_duration = Config::Load(Schema(), {.flags = {{"http.idle_timeout", "10 parsecs"}}});
  EXPECT_FALSE(bad_duration.ok());
}

TEST(ConfigTest, UnknownKeysFailClosed) {
  const std::string file = WriteTemp("http:\n  max_body_byte: 1KiB\n");
  auto typo = Config::Load(Schema(), {.file_path = file});
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("unknown config key 'http.max_body_byte'"),
            std::string::npos);
  std::remove(file.c_str());

  auto env = Config::Load(Schema(), {.environment = {{"MOATLESS_THREAD", "2"}}});
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.status().message().find("MOATLESS_THREAD"), std::string::npos);
  EXPECT_TRUE(Config::Load(Schema(), {.environment = {{"MOATLESS_CONFIG", "x"}}}).ok());
}

TEST(ConfigTest, MalformedFileIsAnError) {
  const std::string file = WriteTemp("listen: [unclosed\n");
  EXPECT_EQ(Config::Load(Schema(), {.file_path = file}).status().code(),
            StatusCode::kInvalidArgument);
  std::remove(file.c_str());
  EXPECT_EQ(Config::Load(Schema(), {.file_path = "/nonexistent.yaml"}).status().code(),
            StatusCode::kNotFound);
}

TEST(ConfigTest, ParsesUnits) {
  EXPECT_EQ(*ParseBytes("64KiB"), 65536);
  EXPECT_EQ(*ParseBytes("2GiB"), 2LL << 30);
  EXPECT_FALSE(ParseBytes("1TB").ok());
  EXPECT_FALSE(ParseBytes("KiB").ok());
  EXPECT_EQ(*ParseDurationMs("2h"), 7'200'000);
  EXPECT_FALSE(ParseDurationMs("-1s").ok());
  std::string host;
  std::uint16_t port = 0;
  ASSERT_TRUE(SplitHostPort("[::1]:0", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_FALSE(SplitHostPort("::1:80", &host, &port).ok());
}

}  // namespace
}  // namespace moatless::core
