#include "app/settings.h"

#include <algorithm>
#include <cctype>
#include <thread>

#include "identity/directory.h"

namespace moatless::app {

using core::ConfigType;

core::ConfigSchema ServeSchema() {
  core::ConfigSchema s;
  s.Add({.name = "data_dir",
         .type = ConfigType::kPath,
         .default_value = ".moatless",
         .help = "folder for the embedded store, keys and the audit log (created 0700)"})
      .Add({.name = "listen",
            .type = ConfigType::kHostPort,
            .default_value = "127.0.0.1:8420",
            .help = "control and service endpoint; loopback unless you mean it"})
      .Add({.name = "gateway_listen",
            .type = ConfigType::kHostPort,
            .help = "public gateway endpoint (off unless set)"})
      .Add({.name = "threads",
            .type = ConfigType::kInt,
            .default_value = "0",
            .help = "I/O threads; 0 means one per core",
            .min = 0,
            .max = 256})
      .Add({.name = "http.max_header_bytes",
            .type = ConfigType::kBytes,
            .default_value = "16KiB",
            .help = "largest request line plus headers (431 beyond)",
            .min = 1024,
            .max = 1 << 20})
      .Add({.name = "http.max_body_bytes",
            .type = ConfigType::kBytes,
            .default_value = "6MiB",
            .help = "largest request body (413 beyond)",
            .min = 0,
            .max = 1LL << 30})
      .Add({.name = "http.header_timeout",
            .type = ConfigType::kDuration,
            .default_value = "10s",
            .help = "deadline for a whole request header, from its first byte (408 beyond)",
            .min = 1,
            .max = 3'600'000})
      .Add({.name = "http.body_timeout",
            .type = ConfigType::kDuration,
            .default_value = "30s",
            .help = "deadline for a whole request body (408 beyond)",
            .min = 1,
            .max = 3'600'000})
      .Add({.name = "http.write_timeout",
            .type = ConfigType::kDuration,
            .default_value = "30s",
            .help = "deadline for writing a response",
            .min = 1,
            .max = 3'600'000})
      .Add({.name = "http.idle_timeout",
            .type = ConfigType::kDuration,
            .default_value = "60s",
            .help = "how long a keep-alive connection may wait for its next request",
            .min = 1,
            .max = 3'600'000})
      .Add({.name = "http.max_connections",
            .type = ConfigType::kInt,
            .default_value = "10000",
            .help = "open connections per listener (503 beyond)",
            .min = 1,
            .max = 1'000'000})
      .Add({.name = "http.max_requests_per_connection",
            .type = ConfigType::kInt,
            .default_value = "10000",
            .help = "requests before a keep-alive connection is closed; 0: no limit",
            .min = 0,
            .max = INT32_MAX})
      .Add({.name = "tls.cert_file",
            .type = ConfigType::kString,
            .help = "PEM certificate chain: serve the control endpoint over TLS 1.2+"})
      .Add({.name = "tls.key_file",
            .type = ConfigType::kString,
            .help = "PEM private key (must not be readable by group or others)"})
      .Add({.name = "services.threads",
            .type = ConfigType::kInt,
            .default_value = "4",
            .help = "threads that run the service APIs' handlers (they may block on the store; "
                    "waiting for the durable audit log holds none)",
            .min = 1,
            .max = 1024})
      .Add({.name = "identity.account_id",
            .type = ConfigType::kString,
            .default_value = "000000000000",
            .help = "12-digit account id in every ARN this node issues"})
      .Add({.name = "identity.region",
            .type = ConfigType::kString,
            .default_value = "local",
            .help = "region name SigV4 requests must be signed for"})
      .Add({.name = "log.level",
            .type = ConfigType::kString,
            .default_value = "info",
            .help = "debug, info, warn or error"})
      .Add({.name = "metrics.listen",
            .type = ConfigType::kHostPort,
            .help = "serve /metrics on this address instead of the control listener (off unless "
                    "set)"})
      .Add({.name = "metrics.enabled",
            .type = ConfigType::kBool,
            .default_value = "true",
            .help = "record metrics; false: the gateway, functions, service APIs, store and audit "
                    "log record none (/metrics then shows only what the listeners themselves "
                    "count, and the manifests' alerts have no data)"})
      .Add({.name = "metrics.token_file",
            .type = ConfigType::kPath,
            .help = "file holding a bearer token /metrics requires (mode 0600 or 0400); without "
                    "one, /metrics answers loopback clients only"})
      .Add({.name = "alerts.interval",
            .type = ConfigType::kDuration,
            .default_value = "15s",
            .help = "how often the manifests' alerts are evaluated",
            .min = 100,
            .max = 3'600'000})
      .Add({.name = "alerts.webhook_hosts",
            .type = ConfigType::kString,
            .help = "hosts (host or host:port, comma-separated) alert webhooks may be posted to; "
                    "none unless set"})
      .Add({.name = "log.access",
            .type = ConfigType::kBool,
            .default_value = "true",
            .help = "log one line per request (the gateway's \"gateway request\" line too)"})
      .Add({.name = "log.function_files",
            .type = ConfigType::kBool,
            .default_value = "true",
            .help = "write each function's output with START, END and REPORT to "
                    "DATA_DIR/logs/functions/NAME.log (what `moatless logs` reads)"})
      .Add({.name = "log.max_file_bytes",
            .type = ConfigType::kBytes,
            .default_value = "16MiB",
            .help = "size at which a log file under DATA_DIR/logs is rotated",
            .min = 4096,
            .max = 1LL << 30})
      .Add({.name = "log.max_files",
            .type = ConfigType::kInt,
            .default_value = "5",
            .help = "files kept per log, the current one included (older ones are deleted)",
            .min = 1,
            .max = 1000})
      .Add({.name = "log.retention_days",
            .type = ConfigType::kInt,
            .default_value = "0",
            .help = "delete log files not written for this many days; 0 keeps them (by size only)",
            .min = 0,
            .max = 36500})
      .Add({.name = "functions.concurrency",
            .type = ConfigType::kInt,
            .default_value = "64",
            .help = "function invocations running at once, all functions together",
            .min = 1,
            .max = 4096})
      .Add({.name = "functions.queue",
            .type = ConfigType::kInt,
            .default_value = "64",
            .help = "invocations that may wait for a free slot; beyond, TooManyRequestsException",
            .min = 0,
            .max = 4096})
      .Add({.name = "functions.queue_wait",
            .type = ConfigType::kDuration,
            .default_value = "3s",
            .help = "how long an invocation waits for a slot before it is throttled",
            .min = 0,
            .max = 600'000})
      .Add({.name = "functions.idle_timeout",
            .type = ConfigType::kDuration,
            .default_value = "10m",
            .help = "an idle warm environment is discarded after this (frozen after 1 s)",
            .min = 1'000,
            .max = 86'400'000})
      .Add({.name = "apps.code_dir",
            .type = ConfigType::kPath,
            .default_value = "/var/lib/moatless/code",
            .help = "where deployed apps' code is kept (content-addressed, written once); every "
                    "directory above it must be traversable by function sandboxes"})
      .Add({.name = "secrets.check_interval",
            .type = ConfigType::kDuration,
            .default_value = "1m",
            .help = "how often due secret rotations and ended recovery windows are looked for "
                    "(a RotateSecret call starts its rotation at once)",
            .min = 100,
            .max = 3'600'000})
      .Add({.name = "secrets.rotation_retry_delay",
            .type = ConfigType::kDuration,
            .default_value = "1m",
            .help = "the wait before a failed rotation is retried (doubling each time, at most "
                    "1 h; 5 attempts, then until the next scheduled rotation)",
            .min = 100,
            .max = 3'600'000})
      .Add({.name = "functions.runtimes_dir",
            .type = ConfigType::kString,
            .default_value = "",
            .help = "directory of the built-in runtimes' bootstraps (default: the installed one)"})
      .Add({.name = "gateway.hosts",
            .type = ConfigType::kString,
            .default_value = "",
            .help = "host names that serve one app stage at the root, as "
                    "HOST=APP/STAGE[,HOST=APP/STAGE...]; other hosts use the path prefix "
                    "/APP/STAGE"})
      .Add({.name = "gateway.max_body_bytes",
            .type = ConfigType::kBytes,
            .default_value = "4MiB",
            .help = "largest request body the gateway accepts (413 beyond); binary bodies grow "
                    "by a third in the event, which must stay under 6 MiB",
            .min = 0,
            .max = 6 << 20})
      .Add({.name = "gateway.max_response_bytes",
            .type = ConfigType::kBytes,
            .default_value = "6MiB",
            .help = "largest response body a function may return through the gateway (502 beyond)",
            .min = 1024,
            .max = 64 << 20})
      .Add({.name = "gateway.integration_timeout",
            .type = ConfigType::kDuration,
            .default_value = "30s",
            .help = "how long the gateway waits for a function's answer (504 beyond)",
            .min = 50,
            .max = 900'000})
      .Add({.name = "gateway.threads",
            .type = ConfigType::kInt,
            .default_value = "32",
            .help = "threads that authenticate gateway requests and wait for their functions "
                    "(an invocation holds one for as long as it runs)",
            .min = 1,
            .max = 4096})
      .Add({.name = "gateway.tls_cert_file",
            .type = ConfigType::kString,
            .help = "PEM certificate chain: serve the gateway over TLS 1.2+"})
      .Add({.name = "gateway.tls_key_file",
            .type = ConfigType::kString,
            .help = "PEM private key of the gateway (not readable by group or others)"})
      .Add({.name = "gateway.waf_rules_dir",
            .type = ConfigType::kString,
            .help = "the OWASP Core Rule Set's rules directory (default: Debian's "
                    "modsecurity-crs, /usr/share/modsecurity-crs/rules); missing or broken rules "
                    "stop start-up"})
      .Add({.name = "gateway.tls_request_client_cert",
            .type = ConfigType::kBool,
            .default_value = "false",
            .help = "ask gateway clients for a TLS client certificate (optional for them; routes "
                    "that require mutual TLS check it against their app's truststore); needs "
                    "gateway TLS"})
      .Add({.name = "tls_self_signed",
            .type = ConfigType::kBool,
            .default_value = "false",
            .help = "development only: when the gateway has no certificate configured, serve it "
                    "over TLS with a self-signed certificate for localhost kept in DATA_DIR/tls "
                    "(the control endpoint is unaffected)"})
      .Add({.name = "insecure_allow_weak_isolation",
            .type = ConfigType::kBool,
            .default_value = "false",
            .help = "INSECURE: run functions even where the host cannot give them full isolation "
                    "(missing cgroup limits or seccomp are skipped); see `moatless doctor`"})
      .Add({.name = "audit.segment_bytes",
            .type = ConfigType::kBytes,
            .default_value = "64MiB",
            .help = "archive the active audit log file (DATA_DIR/audit/audit.log) into "
                    "DATA_DIR/audit/archive once it holds this much; the chain continues in a new "
                    "file",
            .min = 4096,
            .max = 1LL << 40})
      .Add({.name = "audit.retention_segments",
            .type = ConfigType::kInt,
            .default_value = "0",
            .help = "keep at most this many archived audit segments, removing the oldest (each "
                    "removal is itself audited, and what remains still verifies); 0: keep all",
            .min = 0,
            .max = INT32_MAX})
      .Add({.name = "audit.retention_days",
            .type = ConfigType::kInt,
            .default_value = "0",
            .help = "remove archived audit segments whose last record is older than this many "
                    "days; 0: keep them whatever their age",
            .min = 0,
            .max = 36500})
      .Add({.name = "shutdown.drain_timeout",
            .type = ConfigType::kDuration,
            .default_value = "30s",
            .help = "on SIGTERM/SIGINT, how long in-flight requests may take to finish",
            .min = 0,
            .max = 3'600'000});
  return s;
}

std::string FlagName(std::string_view key_name) {
  std::string flag = "--";
  for (char c : key_name) flag.push_back(c == '_' ? '-' : c);
  return flag;
}

namespace {
core::Result<HostPort> ReadHostPort(const core::Config& config, std::string_view key) {
  HostPort hp;
  RETURN_IF_ERROR(core::SplitHostPort(config.GetString(key), &hp.host, &hp.port));
  return hp;
}
}  // namespace

core::Result<std::map<std::string, std::string>> ParseGatewayHosts(std::string_view text) {
  std::map<std::string, std::string> hosts;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    std::string_view entry = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
    while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
    if (entry.empty()) continue;
    const std::size_t eq = entry.find('=');
    const std::size_t slash = eq == std::string_view::npos ? eq : entry.find('/', eq);
    if (eq == std::string_view::npos || eq == 0 || slash == std::string_view::npos) {
      return core::InvalidArgumentError("gateway.hosts: '" + std::string(entry) +
                                        "' is not HOST=APP/STAGE");
    }
    std::string host(entry.substr(0, eq));
    for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string app(entry.substr(eq + 1, slash - eq - 1));
    const std::string stage(entry.substr(slash + 1));
    if (!std::all_of(host.begin(), host.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
        })) {
      return core::InvalidArgumentError("gateway.hosts: '" + host + "' is not a host name");
    }
    if (app.empty() || stage.empty() || stage.find('/') != std::string::npos) {
      return core::InvalidArgumentError("gateway.hosts: '" + std::string(entry) +
                                        "' is not HOST=APP/STAGE");
    }
    if (!hosts.emplace(host, app + "/" + stage).second) {
      return core::InvalidArgumentError("gateway.hosts: " + host + " is mapped twice");
    }
  }
  return hosts;
}

core::Result<ServeSettings> ReadServeSettings(const core::Config& config) {
  ServeSettings s;
  s.data_dir = config.GetString("data_dir");
  ASSIGN_OR_RETURN(s.listen, ReadHostPort(config, "listen"));
  if (!config.GetString("gateway_listen").empty()) {
    s.gateway_enabled = true;
    ASSIGN_OR_RETURN(s.gateway_listen, ReadHostPort(config, "gateway_listen"));
  }
  if (!config.GetString("metrics.listen").empty()) {
    s.metrics_listen_enabled = true;
    ASSIGN_OR_RETURN(s.metrics_listen, ReadHostPort(config, "metrics.listen"));
  }
  s.metrics_enabled = config.GetBool("metrics.enabled");
  s.metrics_token_file = config.GetString("metrics.token_file");
  s.alerts_interval = config.GetDuration("alerts.interval");
  for (std::string_view rest = config.GetString("alerts.webhook_hosts"); !rest.empty();) {
    const std::size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    if (item.find_first_of("/@ ") != std::string_view::npos) {
      return core::InvalidArgumentError("alerts.webhook_hosts: '" + std::string(item) +
                                        "' is not a host or host:port");
    }
    s.alerts_webhook_hosts.emplace_back(item);
  }
  ASSIGN_OR_RETURN(s.gateway_hosts, ParseGatewayHosts(config.GetString("gateway.hosts")));
  s.gateway_max_body_bytes = static_cast<std::size_t>(config.GetInt("gateway.max_body_bytes"));
  s.gateway_max_response_bytes =
      static_cast<std::size_t>(config.GetInt("gateway.max_response_bytes"));
  s.gateway_integration_timeout = config.GetDuration("gateway.integration_timeout");
  s.gateway_threads = static_cast<int>(config.GetInt("gateway.threads"));
  s.gateway_tls_cert_file = config.GetString("gateway.tls_cert_file");
  s.gateway_tls_key_file = config.GetString("gateway.tls_key_file");
  s.gateway_waf_rules_dir = config.GetString("gateway.waf_rules_dir");
  if (s.gateway_tls_cert_file.empty() != s.gateway_tls_key_file.empty()) {
    return core::InvalidArgumentError(
        "gateway.tls_cert_file and gateway.tls_key_file go together: give both or neither");
  }
  s.gateway_tls_request_client_cert = config.GetBool("gateway.tls_request_client_cert");
  s.tls_self_signed = config.GetBool("tls_self_signed");
  if (s.tls_self_signed && !s.gateway_enabled) {
    return core::InvalidArgumentError(
        "tls_self_signed serves the gateway over TLS: it needs gateway_listen");
  }
  if (s.gateway_tls_request_client_cert &&
      (!s.gateway_enabled || (s.gateway_tls_cert_file.empty() && !s.tls_self_signed))) {
    return core::InvalidArgumentError(
        "gateway.tls_request_client_cert needs the gateway served over TLS: set gateway_listen "
        "and gateway.tls_cert_file with gateway.tls_key_file (or tls_self_signed)");
  }
  s.threads = static_cast<int>(config.GetInt("threads"));
  if (s.threads == 0)
    s.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  s.max_header_bytes = static_cast<std::size_t>(config.GetInt("http.max_header_bytes"));
  s.max_body_bytes = static_cast<std::size_t>(config.GetInt("http.max_body_bytes"));
  s.header_timeout = config.GetDuration("http.header_timeout");
  s.body_timeout = config.GetDuration("http.body_timeout");
  s.write_timeout = config.GetDuration("http.write_timeout");
  s.idle_timeout = config.GetDuration("http.idle_timeout");
  s.max_connections = static_cast<std::size_t>(config.GetInt("http.max_connections"));
  s.max_requests_per_connection =
      static_cast<std::size_t>(config.GetInt("http.max_requests_per_connection"));
  s.tls_cert_file = config.GetString("tls.cert_file");
  s.tls_key_file = config.GetString("tls.key_file");
  if (s.tls_cert_file.empty() != s.tls_key_file.empty()) {
    return core::InvalidArgumentError(
        "config keys 'tls.cert_file' and 'tls.key_file' must be set together");
  }
  s.log_level = config.GetString("log.level");
  if (s.log_level != "debug" && s.log_level != "info" && s.log_level != "warn" &&
      s.log_level != "error") {
    return core::InvalidArgumentError("config key 'log.level' (from " + config.Origin("log.level") +
                                      "): expected debug, info, warn or error, got \"" +
                                      s.log_level + "\"");
  }
  s.access_log = config.GetBool("log.access");
  s.log_function_files = config.GetBool("log.function_files");
  s.log_max_file_bytes = static_cast<std::uint64_t>(config.GetInt("log.max_file_bytes"));
  s.log_max_files = static_cast<std::uint32_t>(config.GetInt("log.max_files"));
  s.log_retention = std::chrono::hours(24 * config.GetInt("log.retention_days"));
  s.insecure_allow_weak_isolation = config.GetBool("insecure_allow_weak_isolation");
  s.service_threads = static_cast<int>(config.GetInt("services.threads"));
  s.account_id = config.GetString("identity.account_id");
  if (core::Status valid = identity::ValidateAccountId(s.account_id); !valid.ok()) {
    return core::InvalidArgumentError("config key 'identity.account_id' (from " +
                                      config.Origin("identity.account_id") +
                                      "): " + valid.message());
  }
  s.region = config.GetString("identity.region");
  if (s.region.empty() ||
      s.region.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
    return core::InvalidArgumentError(
        "config key 'identity.region' (from " + config.Origin("identity.region") +
        "): expected lower-case letters, digits and '-', got \"" + s.region + "\"");
  }
  s.drain_timeout = config.GetDuration("shutdown.drain_timeout");
  s.audit_segment_bytes = static_cast<std::uint64_t>(config.GetInt("audit.segment_bytes"));
  s.audit_retention_segments =
      static_cast<std::uint64_t>(config.GetInt("audit.retention_segments"));
  s.audit_retention_days = static_cast<int>(config.GetInt("audit.retention_days"));
  s.function_concurrency = static_cast<std::size_t>(config.GetInt("functions.concurrency"));
  s.function_queue = static_cast<std::size_t>(config.GetInt("functions.queue"));
  s.function_queue_wait = config.GetDuration("functions.queue_wait");
  s.function_idle_timeout = config.GetDuration("functions.idle_timeout");
  s.runtimes_dir = config.GetString("functions.runtimes_dir");
  s.apps_code_dir = config.GetString("apps.code_dir");
  s.secrets_check_interval = config.GetDuration("secrets.check_interval");
  s.secrets_rotation_retry_delay = config.GetDuration("secrets.rotation_retry_delay");
  return s;
}

}  // namespace moatless::app
