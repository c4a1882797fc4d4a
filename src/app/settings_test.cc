#include "app/settings.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace moatless::app {
namespace {

core::Result<ServeSettings> Load(std::map<std::string, std::string> flags) {
  ASSIGN_OR_RETURN(core::Config config, core::Config::Load(ServeSchema(), {.flags = flags}));
  return ReadServeSettings(config);
}

TEST(SettingsTest, DefaultsAreSafe) {
  auto s = Load({});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->listen.host, "127.0.0.1");  // loopback unless asked
  EXPECT_EQ(s->listen.port, 8420);
  EXPECT_FALSE(s->gateway_enabled);
  EXPECT_EQ(s->data_dir, ".moatless");
  EXPECT_EQ(s->max_body_bytes, 6u * 1024 * 1024);
  EXPECT_GE(s->threads, 1);
  EXPECT_TRUE(s->tls_cert_file.empty());
}

TEST(SettingsTest, TlsNeedsBothFiles) {
  auto s = Load({{"tls.cert_file", "/x/cert.pem"}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("tls.key_file"), std::string::npos);
}

TEST(SettingsTest, GatewayClientCertificatesNeedGatewayTls) {
  auto off = Load({});
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->gateway_tls_request_client_cert);
  EXPECT_FALSE(off->tls_self_signed);

  const std::map<std::string, std::string> gateway_tls = {
      {"gateway_listen", "127.0.0.1:0"},
      {"gateway.tls_cert_file", "/x/cert.pem"},
      {"gateway.tls_key_file", "/x/key.pem"},
      {"gateway.tls_request_client_cert", "true"}};
  auto on = Load(gateway_tls);
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_TRUE(on->gateway_tls_request_client_cert);

  auto self_signed = Load({{"gateway_listen", "127.0.0.1:0"},
                           {"tls_self_signed", "true"},
                           {"gateway.tls_request_client_cert", "true"}});
  ASSERT_TRUE(self_signed.ok()) << self_signed.status();
  EXPECT_TRUE(self_signed->tls_self_signed);

  for (const auto& flags : std::vector<std::map<std::string, std::string>>{
           {{"gateway_listen", "127.0.0.1:0"}, {"gateway.tls_request_client_cert", "true"}},
           {{"gateway.tls_request_client_cert", "true"}},
           {{"gateway.tls_cert_file", "/x/cert.pem"},
            {"gateway.tls_key_file", "/x/key.pem"},
            {"gateway.tls_request_client_cert", "true"}},
       }) {
    auto refused = Load(flags);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("gateway.tls_request_client_cert"),
              std::string::npos);
  }
}

TEST(SettingsTest, SelfSignedTlsNeedsTheGateway) {
  auto refused = Load({{"tls_self_signed", "true"}});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("gateway_listen"), std::string::npos);
}

TEST(SettingsTest, LogFilesRotateBySizeAndOptionallyByAge) {
  auto defaults = Load({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->log_max_file_bytes, 16u << 20);
  EXPECT_EQ(defaults->log_max_files, 5u);
  EXPECT_EQ(defaults->log_retention.count(), 0);
  auto set =
      Load({{"log.max_file_bytes", "1MiB"}, {"log.max_files", "2"}, {"log.retention_days", "7"}});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->log_max_file_bytes, 1u << 20);
  EXPECT_EQ(set->log_max_files, 2u);
  EXPECT_EQ(set->log_retention, std::chrono::hours(7 * 24));
  EXPECT_FALSE(Load({{"log.max_files", "0"}}).ok());
  EXPECT_FALSE(Load({{"log.max_file_bytes", "100"}}).ok());
  EXPECT_FALSE(Load({{"log.retention_days", "-1"}}).ok());
}

TEST(SettingsTest, ObservabilitySwitchesDefaultOn) {
  auto defaults = Load({});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_TRUE(defaults->metrics_enabled);
  EXPECT_TRUE(defaults->access_log);
  EXPECT_TRUE(defaults->log_function_files);

  auto off = Load(
      {{"metrics.enabled", "false"}, {"log.access", "false"}, {"log.function_files", "false"}});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->metrics_enabled);
  EXPECT_FALSE(off->access_log);
  EXPECT_FALSE(off->log_function_files);

  // The environment spells them MOATLESS_METRICS_ENABLED and MOATLESS_LOG_FUNCTION_FILES.
  auto config =
      core::Config::Load(ServeSchema(), {.environment = {{"MOATLESS_METRICS_ENABLED", "false"},
                                                         {"MOATLESS_LOG_FUNCTION_FILES", "0"}}});
  ASSERT_TRUE(config.ok()) << config.status();
  auto from_env = ReadServeSettings(*config);
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_FALSE(from_env->metrics_enabled);
  EXPECT_FALSE(from_env->log_function_files);
  EXPECT_TRUE(from_env->access_log);

  EXPECT_FALSE(Load({{"metrics.enabled", "sometimes"}}).ok());
  EXPECT_EQ(FlagName("log.function_files"), "--log.function-files");
  EXPECT_EQ(FlagName("metrics.enabled"), "--metrics.enabled");
}

TEST(SettingsTest, LogLevelIsValidated) {
  auto s = Load({{"log.level", "verbose"}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("'log.level' (from flag --log.level)"), std::string::npos);
}

TEST(SettingsTest, IdentityAndServiceSettingsAreValidated) {
  auto s = Load({});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->account_id, "000000000000");
  EXPECT_EQ(s->region, "local");
  EXPECT_EQ(s->service_threads, 4);
  auto account = Load({{"identity.account_id", "12345"}});
  ASSERT_FALSE(account.ok());
  EXPECT_NE(account.status().message().find("'identity.account_id'"), std::string::npos);
  EXPECT_FALSE(Load({{"identity.region", "US East"}}).ok());
  EXPECT_FALSE(Load({{"services.threads", "0"}}).ok());
  EXPECT_FALSE(Load({{"services.threads", "5000"}}).ok());
  EXPECT_EQ(Load({{"services.threads", "64"}})->service_threads, 64);
}

TEST(SettingsTest, GatewayListenEnablesGateway) {
  auto s = Load({{"gateway_listen", "[::1]:0"}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->gateway_enabled);
  EXPECT_EQ(s->gateway_listen.host, "::1");
}

TEST(SettingsTest, FlagNamesUseDashes) {
  EXPECT_EQ(FlagName("http.max_body_bytes"), "--http.max-body-bytes");
  EXPECT_EQ(FlagName("data_dir"), "--data-dir");
}

}  // namespace
}  // namespace moatless::app
