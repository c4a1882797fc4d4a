// The daemon's configuration: the schema of every key `moatless serve` accepts (flags, MOATLESS_*
// variables, the YAML config file) and the typed settings read from a loaded Config.
// ServeSchema() is the single list the CLI turns into flags and `--help`; adding a key here is
// all it takes to make it configurable everywhere. Plain values; no synchronisation needed.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"

namespace moatless::app {

core::ConfigSchema ServeSchema();
// "--http.max-body-bytes" for "http.max_body_bytes".
std::string FlagName(std::string_view key_name);

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};

struct ServeSettings {
  std::string data_dir;
  HostPort listen;
  bool gateway_enabled = false;
  HostPort gateway_listen;
  std::map<std::string, std::string> gateway_hosts;  // gateway.hosts: host -> "APP/STAGE"
  std::size_t gateway_max_body_bytes = 0;
  std::size_t gateway_max_response_bytes = 0;
  std::chrono::milliseconds gateway_integration_timeout{};
  int gateway_threads = 32;
  std::string gateway_tls_cert_file, gateway_tls_key_file;  // both or neither
  std::string gateway_waf_rules_dir;                        // "": Debian's CRS
  // gateway.tls_request_client_cert: ask gateway clients for a certificate (mTLS); needs TLS.
  bool gateway_tls_request_client_cert = false;
  // tls_self_signed: without gateway.tls_cert_file, serve the gateway with a development
  // certificate kept in the data directory (http/self_signed.h); needs gateway_listen.
  bool tls_self_signed = false;
  // metrics.listen: /metrics on a listener of its own instead of the control listener.
  bool metrics_listen_enabled = false;
  HostPort metrics_listen;
  // metrics.enabled: false hands the modules no registry; /metrics keeps what the listeners count.
  bool metrics_enabled = true;
  std::string metrics_token_file;                 // metrics.token_file; "": loopback clients only
  std::chrono::milliseconds alerts_interval{};    // alerts.interval
  std::vector<std::string> alerts_webhook_hosts;  // alerts.webhook_hosts
  int threads = 1;
  std::size_t max_header_bytes = 0;
  std::size_t max_body_bytes = 0;
  std::chrono::milliseconds header_timeout{}, body_timeout{}, write_timeout{}, idle_timeout{};
  std::size_t max_connections = 0;
  std::size_t max_requests_per_connection = 0;  // 0: unlimited
  std::string tls_cert_file, tls_key_file;      // both or neither
  std::string log_level;
  bool access_log = true;          // log.access: the listeners' and the gateway's request lines
  bool log_function_files = true;  // log.function_files: logs/functions/NAME.log
  std::uint64_t log_max_file_bytes = 16 << 20;  // log.max_file_bytes
  std::uint32_t log_max_files = 5;              // log.max_files
  std::chrono::hours log_retention{0};          // log.retention_days; 0: none
  std::chrono::milliseconds drain_timeout{};
  int service_threads = 4;  // services.threads
  std::string account_id;   // identity.account_id
  std::string region;       // identity.region
  bool insecure_allow_weak_isolation = false;
  std::size_t function_concurrency = 64;              // functions.concurrency
  std::size_t function_queue = 64;                    // functions.queue
  std::chrono::milliseconds function_queue_wait{};    // functions.queue_wait
  std::chrono::milliseconds function_idle_timeout{};  // functions.idle_timeout
  std::string runtimes_dir;   // functions.runtimes_dir; empty: the compiled-in default
  std::string apps_code_dir;  // apps.code_dir
  std::chrono::milliseconds secrets_check_interval{};        // secrets.check_interval
  std::chrono::milliseconds secrets_rotation_retry_delay{};  // secrets.rotation_retry_delay
  // The audit log's segments and their retention (server configuration only, never the API).
  std::uint64_t audit_segment_bytes = 64 << 20;  // audit.segment_bytes
  std::uint64_t audit_retention_segments = 0;    // audit.retention_segments; 0: all
  int audit_retention_days = 0;                  // audit.retention_days; 0: any age
};

// Reads and cross-checks the settings (e.g. TLS needs both files). Errors name the key.
core::Result<ServeSettings> ReadServeSettings(const core::Config& config);
// "api.example.com=notes/dev, x.example.com=shop/prod" -> {host: "APP/STAGE"}.
core::Result<std::map<std::string, std::string>> ParseGatewayHosts(std::string_view text);

}  // namespace moatless::app
