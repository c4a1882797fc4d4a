#include "app/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>
#include <functional>
#include <future>
#include <optional>

#include "app/alert_host.h"
#include "app/alerts_api.h"
#include "app/audit_api.h"
#include "app/control_api.h"
#include "app/data_dir.h"
#include "app/function_host.h"
#include "app/gateway_host.h"
#include "app/instrumented_database.h"
#include "app/log_files.h"
#include "app/logs_api.h"
#include "app/metrics_api.h"
#include "app/secret_key_files.h"
#include "app/secrets_worker.h"
#include "app/version.h"
#include "core/aead.h"
#include "core/filesystem.h"
#include "http/io_pool.h"
#include "http/self_signed.h"
#include "http/server.h"
#include "identity/authenticator.h"
#include "identity/directory.h"
#include "identity/session_token.h"
#include "identity/sts.h"
#include "manifest/app_api.h"
#include "manifest/deployer.h"
#include "observe/audit_log.h"
#include "observe/logger.h"
#include "observe/metrics.h"
#include "runtime/function_registry.h"
#include "sandbox/sandbox.h"
#include "secrets/keyring.h"
#include "secrets/postgres_rotation.h"
#include "secrets/rotation.h"
#include "secrets/secret_store.h"
#include "services/aws_endpoint.h"
#include "store/schema.h"
#include "store/sqlite/sqlite_database.h"

namespace moatless::app {
namespace {

// Lets the daemon hold as many sockets as the hard limit allows (max_connections is per listener).
void RaiseFileLimit(const observe::Logger& log) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      log.Warn("could not raise the open-file limit", {{"limit", std::uint64_t{limit.rlim_max}}});
    }
  }
}

std::string FormatEndpoint(const boost::asio::ip::tcp::endpoint& ep) {
  const std::string addr = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + addr + "]" : addr) + ":" + std::to_string(ep.port());
}

http::ServerOptions MakeServerOptions(const ServeSettings& s, core::Env& env) {
  http::ServerOptions o;
  o.random = &env.random();
  o.clock = &env.clock();
  o.max_header_bytes = s.max_header_bytes;
  o.max_body_bytes = s.max_body_bytes;
  o.header_timeout = s.header_timeout;
  o.body_timeout = s.body_timeout;
  o.write_timeout = s.write_timeout;
  o.idle_timeout = s.idle_timeout;
  o.max_connections = s.max_connections;
  o.max_requests_per_connection = s.max_requests_per_connection;
  return o;
}

// metrics.token_file: a bearer token only its owner can read (like an SSH key), one line.
core::Result<core::SecretBytes> LoadMetricsToken(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return core::ErrnoStatus("metrics.token_file " + path, errno);
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  std::string text;
  char buffer[4096];
  ssize_t n = 0;
  while (stat_ok && text.size() <= 4096 && (n = ::read(fd, buffer, sizeof buffer)) > 0) {
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  core::SecretBytes token = core::SecretBytes::TakeFrom(text);
  if (!stat_ok || n < 0) return core::InternalError("metrics.token_file " + path + ": unreadable");
  if ((st.st_mode & 077) != 0) {
    return core::FailedPreconditionError("metrics.token_file " + path +
                                         ": readable by group or others; chmod 600 it");
  }
  std::string_view value = token.Reveal();
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.remove_suffix(1);
  if (value.size() < 16 || value.size() > 4096 ||
      value.find_first_of(" \t\r\n") != std::string_view::npos) {
    return core::InvalidArgumentError("metrics.token_file " + path +
                                      ": the token must be one line of 16 to 4096 characters "
                                      "without spaces");
  }
  return core::SecretBytes(value);
}

observe::AuditRecord LifecycleRecord(std::string action, const ServeSettings& s,
                                     std::string listen_address) {
  observe::AuditRecord r;
  r.actor = "moatless";
  r.action = std::move(action);
  r.resource = "moatless:node/" + std::to_string(::getpid());
  r.outcome = observe::AuditOutcome::kAllowed;
  r.fields = {
      {"version", kVersion}, {"listen", std::move(listen_address)}, {"data_dir", s.data_dir}};
  return r;
}

}  // namespace

core::Status RunDaemon(const ServeSettings& settings, core::Env& env) {
  // Standard error, and the data directory's log files once it is open.
  DaemonLogs logs;
  ASSIGN_OR_RETURN(const observe::LogLevel level, observe::ParseLogLevel(settings.log_level));
  const observe::Logger log(logs.platform(), env.clock(), level);
  ::signal(SIGPIPE, SIG_IGN);
  RaiseFileLimit(log);

  ASSIGN_OR_RETURN(std::unique_ptr<DataDir> data_dir, DataDir::Open(settings.data_dir, env));
  RETURN_IF_ERROR(logs.OpenFiles(data_dir->LogsPath(),
                                 {.max_bytes = settings.log_max_file_bytes,
                                  .max_files = settings.log_max_files,
                                  .max_age = settings.log_retention},
                                 env.clock())
                      .Annotate("log files"));

  // Function isolation: what this host offers. Functions run only with full isolation, or with
  // the operator's explicit insecure opt-in; the control API serves either way.
  sandbox::HostSupport host = sandbox::ProbeHost();
  host.insecure_allowed = settings.insecure_allow_weak_isolation;
  auto sandboxer = sandbox::Sandboxer::Create(host, env.random());
  if (sandboxer.ok()) {
    const std::vector<std::string> missing = host.Missing();
    std::string weak;
    for (const std::string& m : missing) weak += (weak.empty() ? "" : "; ") + m;
    if (missing.empty()) {
      log.Info("function isolation: full");
    } else {
      log.Warn("function isolation: INCOMPLETE, accepted by insecure_allow_weak_isolation",
               {{"missing", weak}});
    }
  } else {
    log.Error("functions cannot run on this host", {{"error", sandboxer.status().message()}});
  }

  observe::MetricsRegistry metrics;
  metrics.Gauge("moatless_build_info", "Build information; the value is always 1.", {"version"})
      .WithLabels({kVersion})
      .Set(1);
  // metrics.enabled=false: the modules get no registry and record nothing; the listeners'
  // own request counts (ControlApi) and build_info stay, so /metrics still answers.
  observe::MetricsRegistry* const recorded = settings.metrics_enabled ? &metrics : nullptr;
  if (recorded != nullptr) {
    logs.CountFailures(metrics);
  } else {
    log.Warn(
        "metrics.enabled is false: nothing but the listeners' requests is counted, and the "
        "manifests' alerts have no data");
  }

  ASSIGN_OR_RETURN(core::SecretBytes audit_key, data_dir->LoadOrCreateAuditKey(env));
  auto audit_or = observe::AuditLog::Open(
      data_dir->AuditLogPath(), std::move(audit_key), env.clock(),
      {.check = observe::AuditOpenCheck::kFull,
       .metrics = recorded,
       .segment_bytes = settings.audit_segment_bytes,
       .retention_segments = settings.audit_retention_segments,
       .retention_age = std::chrono::hours(24 * settings.audit_retention_days)});
  if (!audit_or.ok()) return audit_or.status().Annotate("audit log");
  std::unique_ptr<observe::AuditLog> audit = std::move(audit_or).value();
  if (audit->open_info().truncated_bytes > 0) {
    log.Warn("audit log ended in a partial record (never acknowledged); cut it off",
             {{"bytes", audit->open_info().truncated_bytes}});
  }

  auto store_or = store::OpenSqlite(
      data_dir->StorePath(), {.clock = &env.clock(), .migrations = store::PlatformMigrations()});
  if (!store_or.ok()) return store_or.status().Annotate("store " + data_dir->StorePath());
  const std::unique_ptr<store::Database> opened_db = std::move(store_or).value();
  std::optional<InstrumentedDatabase> instrumented_db;
  if (recorded != nullptr) instrumented_db.emplace(*opened_db, metrics);
  store::Database* const db =
      instrumented_db ? static_cast<store::Database*>(&*instrumented_db) : opened_db.get();

  // Identity: the master key seals access-key secrets and session tokens.
  ASSIGN_OR_RETURN(core::SecretBytes master_bytes, data_dir->LoadOrCreateMasterKey(env));
  ASSIGN_OR_RETURN(const core::AeadKey master_key,
                   core::AeadKey::FromBytes(std::move(master_bytes)));
  identity::Directory directory(*db, env, master_key, {.account_id = settings.account_id});
  const identity::SessionTokens tokens(master_key);
  identity::Authenticator authenticator(directory, tokens, env.clock(),
                                        {.region = settings.region});
  identity::Sts sts(directory, tokens, env, settings.region);
  services::IamApi iam(directory);

  // Secrets: values sealed under data keys that the secrets master keyring wraps.
  SecretKeyFiles secret_key_files(data_dir->SecretKeysPath(), env);
  ASSIGN_OR_RETURN(const std::int64_t recorded_keys, secrets::SecretStore::RecordedMasterKeys(*db));
  auto keyring_or = secrets::MasterKeyring::Open(secret_key_files, env.random(),
                                                 /*create_first=*/recorded_keys == 0);
  if (!keyring_or.ok()) {
    return keyring_or.status().Annotate("secrets master keyring " + data_dir->SecretKeysPath());
  }
  std::unique_ptr<secrets::MasterKeyring> keyring = std::move(keyring_or).value();
  secrets::SecretStore secret_store(*db, env, *keyring,
                                    {.region = settings.region, .account = settings.account_id});
  RETURN_IF_ERROR(secret_store.AdoptKeyring().Annotate("secrets master keyring"));
  // Rotations run on the secrets worker; their steps reach functions once the function host
  // exists (rotation_steps), which is before anything is served.
  std::unique_ptr<RotationSteps> rotation_steps;
  std::unique_ptr<SecretsWorker> secrets_worker;
  secrets::Rotator rotator(
      secret_store, env.clock(), env.random(),
      [&rotation_steps](const std::string& function, const secrets::RotationEvent& event) {
        return rotation_steps->Run(function, event);
      },
      {.retry_delay = settings.secrets_rotation_retry_delay,
       .on_failure = [&rotation_steps](
                         const std::string& arn, const std::string& step,
                         const core::Status& error) { rotation_steps->Alert(arn, step, error); },
       .on_step = [&rotation_steps](
                      const secrets::RotationEvent& event,
                      const core::Status& outcome) { rotation_steps->Audit(event, outcome); }});
  services::SecretsApi secrets_api({.store = secret_store,
                                    .random = env.random(),
                                    .rotator = &rotator,
                                    .rotation_started =
                                        [&secrets_worker] {
                                          if (secrets_worker) secrets_worker->Wake();
                                        },
                                    .keyring = keyring.get()});

  services::AwsEndpoint aws(services::AwsEndpoint::Deps{.authenticator = authenticator,
                                                        .sts = sts,
                                                        .iam = iam,
                                                        .audit = *audit,
                                                        .clock = env.clock(),
                                                        .region = settings.region,
                                                        .secrets = &secrets_api,
                                                        .metrics = recorded});

  // The public gateway: the APIs deployed apps declare, served once the listener starts.
  GatewayHost gateway_host(
      GatewayHost::Deps{.db = *db,
                        .env = env,
                        .authenticator = authenticator,
                        .audit = *audit,
                        .log = observe::Logger(logs.gateway(), env.clock(), level),
                        .metrics = recorded,
                        .options = {.region = settings.region,
                                    .account_id = settings.account_id,
                                    .hosts = settings.gateway_hosts,
                                    .max_response_bytes = settings.gateway_max_response_bytes,
                                    .integration_timeout = settings.gateway_integration_timeout,
                                    .waf_rules_dir = settings.gateway_waf_rules_dir,
                                    .access_log = settings.access_log},
                        .threads = settings.gateway_threads});
  if (core::Status s = gateway_host.Start(); !s.ok()) return s.Annotate("gateway WAF");

  // Apps: deployments through the app API on the same endpoint (they need no sandbox: a node
  // that cannot run functions can still hold what will run elsewhere).
  runtime::FunctionRegistry app_registry(*db, env.clock());
  std::atomic<AlertHost*> alert_host_ptr{nullptr};  // set once it exists: deployments wake it
  manifest::Deployer deployer(manifest::Deployer::Deps{
      .db = *db,
      .directory = directory,
      .registry = app_registry,
      .env = env,
      .apps_dir = settings.apps_code_dir,
      .region = settings.region,
      .account_id = settings.account_id,
      .limits = {},
      .secrets = &secret_store,
      .on_api_applied = [&gateway_host, &alert_host_ptr](const gateway::ApiConfig& api) {
        gateway_host.Apply(api);
        if (AlertHost* alerts = alert_host_ptr.load()) alerts->Wake();
      }});
  manifest::AppApi app_api(manifest::AppApi::Deps{.deployer = deployer,
                                                  .keys = &gateway_host.keys(),
                                                  .region = settings.region,
                                                  .account_id = settings.account_id});
  // The audit API (the app API answers only under /moatless/v1/apps).
  AuditApi audit_api(AuditApi::Deps{.audit = *audit,
                                    .clock = env.clock(),
                                    .region = settings.region,
                                    .account_id = settings.account_id});
  aws.AttachService(&audit_api);
  // Function logs, authorised per function.
  LogsApi logs_api(LogsApi::Deps{
      .logs = *logs.functions(),
      .function_exists = [&app_registry](const std::string& name) -> core::Result<bool> {
        auto found = app_registry.Get(name);
        if (found.ok()) return true;
        if (found.status().code() == core::StatusCode::kNotFound) return false;
        return found.status();
      },
      .region = settings.region,
      .account_id = settings.account_id});
  aws.AttachService(&logs_api);
  aws.AttachService(&app_api);

  // Alerts: the live manifests' alert rules, evaluated against the metrics.
  AlertHost alert_host(AlertHost::Deps{.db = *db,
                                       .env = env,
                                       .metrics = metrics,
                                       .secrets = &secret_store,
                                       .audit = audit.get(),
                                       .log = log},
                       AlertHostOptions{.interval = settings.alerts_interval,
                                        .webhook_hosts = settings.alerts_webhook_hosts,
                                        .region = settings.region,
                                        .account_id = settings.account_id});
  AlertsApi alerts_api(AlertsApi::Deps{
      .alerts = alert_host, .region = settings.region, .account_id = settings.account_id});
  aws.AttachService(&alerts_api);
  MetricsApi metrics_api(MetricsApi::Deps{
      .metrics = metrics, .region = settings.region, .account_id = settings.account_id});
  aws.AttachService(&metrics_api);

  boost::asio::thread_pool service_pool(static_cast<std::size_t>(settings.service_threads));

  http::IoPool pool(settings.threads, [&log](std::string_view message) {
    log.Error("uncaught error in an I/O thread", {{"error", message}});
  });

  std::optional<core::SecretBytes> metrics_token;
  if (!settings.metrics_token_file.empty()) {
    ASSIGN_OR_RETURN(metrics_token, LoadMetricsToken(settings.metrics_token_file));
  }
  ControlApi control(ControlApi::Deps{.log = log,
                                      .metrics = metrics,
                                      .audit = *audit,
                                      .db = *db,
                                      .access_log = settings.access_log,
                                      .aws = &aws,
                                      .blocking = &service_pool,
                                      .metrics_token = metrics_token ? &*metrics_token : nullptr,
                                      .metrics_on_control = !settings.metrics_listen_enabled});
  http::ServerOptions control_options = MakeServerOptions(settings, env);
  control_options.on_access = control.AccessHook("control");
  http::Server control_server(pool, control_options, control.Handler("control"));

  std::optional<http::TlsOptions> tls;
  if (!settings.tls_cert_file.empty()) {
    tls = http::TlsOptions{.cert_file = settings.tls_cert_file, .key_file = settings.tls_key_file};
  }
  auto control_ep =
      control_server.ListenTcp(settings.listen.host, settings.listen.port, tls, "control");
  if (!control_ep.ok())
    return control_ep.status().Annotate("listen " + settings.listen.host + ":" +
                                        std::to_string(settings.listen.port));
  const std::string control_address = FormatEndpoint(*control_ep);

  std::optional<http::Server> metrics_server;
  std::string metrics_address = control_address;
  if (settings.metrics_listen_enabled) {
    http::ServerOptions metrics_options = MakeServerOptions(settings, env);
    metrics_options.on_access = control.AccessHook("metrics");
    metrics_server.emplace(pool, metrics_options, control.MetricsHandler("metrics"));
    auto ep = metrics_server->ListenTcp(settings.metrics_listen.host, settings.metrics_listen.port,
                                        tls, "metrics");
    if (!ep.ok()) return ep.status().Annotate("metrics.listen");
    metrics_address = FormatEndpoint(*ep);
  }

  std::optional<http::Server> gateway_server;
  std::optional<http::TlsOptions> gateway_tls;
  std::string gateway_address;
  if (settings.gateway_enabled) {
    http::ServerOptions gateway_options = MakeServerOptions(settings, env);
    gateway_options.max_body_bytes = settings.gateway_max_body_bytes;
    // The gateway logs and counts the requests it answers; the server what it refuses itself.
    gateway_options.on_access =
        [hook = control.AccessHook("gateway")](const http::AccessRecord& record) {
          if (record.reject != http::RejectReason::kNone) hook(record);
        };
    gateway_server.emplace(pool, gateway_options, gateway_host.Handler());
    if (!settings.gateway_tls_cert_file.empty()) {
      gateway_tls = http::TlsOptions{.cert_file = settings.gateway_tls_cert_file,
                                     .key_file = settings.gateway_tls_key_file};
      if (settings.tls_self_signed) {
        log.Warn("tls_self_signed ignored: the gateway has a certificate configured");
      }
    } else if (settings.tls_self_signed) {
      auto dev = http::EnsureSelfSignedCertificate(data_dir->TlsPath(), env.clock(), env.random());
      if (!dev.ok()) return dev.status().Annotate("tls_self_signed");
      gateway_tls = http::TlsOptions{.cert_file = dev->cert_file, .key_file = dev->key_file};
      log.Warn("the gateway serves a self-signed development certificate; not for production",
               {{"cert_file", dev->cert_file},
                {"sha256_fingerprint", dev->sha256_fingerprint},
                {"generated", dev->generated}});
    }
    if (gateway_tls) gateway_tls->request_client_cert = settings.gateway_tls_request_client_cert;
    auto ep = gateway_server->ListenTcp(settings.gateway_listen.host, settings.gateway_listen.port,
                                        gateway_tls, "gateway");
    if (!ep.ok()) return ep.status().Annotate("gateway listen");
    gateway_address = FormatEndpoint(*ep);
  }

  // Functions, where this host can isolate them; elsewhere the Lambda API answers 503.
  std::unique_ptr<FunctionHost> functions;
  if (sandboxer.ok()) {
    FunctionSettings function_settings;
    function_settings.concurrency = {.platform_limit = settings.function_concurrency,
                                     .max_queued = settings.function_queue,
                                     .max_wait = settings.function_queue_wait};
    function_settings.idle_timeout = settings.function_idle_timeout;
    functions = std::make_unique<FunctionHost>(FunctionHost::Deps{
        .sandboxer = **sandboxer,
        .io = pool,
        .env = env,
        .sts = sts,
        .aws = aws,
        .audit = *audit,
        .db = *db,
        .log = log,
        .metrics = recorded,
        .blocking = &service_pool,
        .function_logs = settings.log_function_files ? logs.functions() : nullptr,
        .runtimes_dir =
            settings.runtimes_dir.empty() ? MOATLESS_RUNTIMES_DIR : settings.runtimes_dir,
        .region = settings.region,
        .account_id = settings.account_id,
        .settings = std::move(function_settings)});
  }

  gateway_host.SetFunctions(functions.get());

  secrets::PostgresRotation postgres_rotation(secret_store, env.random());
  rotation_steps = std::make_unique<RotationSteps>(
      RotationSteps::Deps{.functions = functions.get(),
                          .postgres =
                              [&postgres_rotation](const secrets::RotationEvent& event) {
                                return postgres_rotation.RunStep(event);
                              },
                          .audit = *audit,
                          .log = log,
                          .metrics = recorded,
                          .random = env.random()});
  secrets_worker = std::make_unique<SecretsWorker>(
      SecretsWorker::Deps{.rotator = rotator,
                          .store = secret_store,
                          .audit = *audit,
                          .log = log,
                          .interval = settings.secrets_check_interval});

  RETURN_IF_ERROR(audit->Append(LifecycleRecord("moatless:ServeStart", settings, control_address))
                      .Annotate("audit log"));
  RETURN_IF_ERROR(alert_host.Start().Annotate("alerts"));
  alert_host_ptr = &alert_host;

  std::promise<int> signalled;
  boost::asio::signal_set signals(pool.context(), SIGINT, SIGTERM);
  signals.async_wait([&signalled](const boost::system::error_code& ec, int signo) {
    signalled.set_value(ec ? 0 : signo);
  });
  // SIGHUP re-reads the TLS certificates and keys (renewal without a restart). Each server swaps
  // all its contexts or none; on error it keeps serving the certificate it had. The reload reads
  // a few small files, so it runs on an I/O thread, on the signal set's strand.
  auto hup_strand = boost::asio::make_strand(pool.context());
  boost::asio::signal_set hup(hup_strand, SIGHUP);
  const auto reload_tls = [&] {
    const std::pair<http::Server*, const char*> servers[] = {
        {tls ? &control_server : nullptr, "control"},
        {gateway_tls ? &*gateway_server : nullptr, "gateway"}};
    bool any = false;
    for (const auto& [server, name] : servers) {
      if (server == nullptr) continue;
      any = true;
      if (core::Status status = server->ReloadTls(); status.ok()) {
        log.Info("tls certificates reloaded", {{"listener", name}});
      } else {
        log.Error("tls certificate reload failed; still serving the previous certificate",
                  {{"listener", name}, {"error", status}});
      }
    }
    if (!any) log.Info("SIGHUP: no listener serves TLS, nothing to reload");
  };
  std::function<void()> await_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;  // cancelled at shutdown
      reload_tls();
      await_hup();
    });
  };
  await_hup();

  pool.Start();
  control.SetReady(true);
  log.Info("listening", {{"listener", "control"},
                         {"address", control_address},
                         {"tls", tls.has_value()},
                         {"version", kVersion}});
  if (metrics_server) {
    log.Info("listening", {{"listener", "metrics"},
                           {"address", metrics_address},
                           {"tls", tls.has_value()},
                           {"token", metrics_token.has_value()}});
  }
  if (gateway_server) {
    log.Info(
        "listening",
        {{"listener", "gateway"}, {"address", gateway_address}, {"tls", gateway_tls.has_value()}});
  }

  const int signo = signalled.get_future().get();
  boost::asio::post(hup_strand, [&hup] { hup.cancel(); });
  control.SetReady(false);
  log.Info("draining",
           {{"signal", signo},
            {"deadline_ms", static_cast<std::int64_t>(settings.drain_timeout.count())}});
  control_server.Shutdown(settings.drain_timeout);
  if (gateway_server) gateway_server->Shutdown(settings.drain_timeout);
  if (metrics_server) metrics_server->Shutdown(settings.drain_timeout);
  control_server.Wait();
  if (gateway_server) gateway_server->Wait();
  if (metrics_server) metrics_server->Wait();
  alert_host_ptr = nullptr;
  alert_host.Stop();
  gateway_host.Stop();     // integrations still running finish while their functions exist
  secrets_worker.reset();  // a rotation in progress finishes its step; the rest resumes later
  functions.reset();       // in-flight invocations end; environments are discarded
  aws.DetachService(&app_api);
  aws.DetachService(&alerts_api);
  aws.DetachService(&metrics_api);
  aws.DetachService(&audit_api);
  aws.DetachService(&logs_api);

  core::Status status =
      audit->Append(LifecycleRecord("moatless:ServeStop", settings, control_address))
          .Annotate("audit log");
  if (core::Status closed = db->Close(); !closed.ok() && status.ok()) status = closed;
  pool.Stop();
  pool.Join();
  if (status.ok()) {
    log.Info("stopped", {});
  } else {
    log.Error("stopped with an error", {{"error", status}});
  }
  return status;
}

}  // namespace moatless::app
