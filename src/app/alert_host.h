// AlertHost: evaluates the alerts of every deployed app stage against the metrics registry and
// notifies the transitions (firing, resolved) to the log and to the app's webhooks.
//
//  - Rules come from the manifests of the live versions (store: apps, app_versions); they are
//    re-read when a deployment or rollback changes a live version. Rule ids are APP/STAGE/NAME.
//  - Every `interval` the observe::AlertEvaluator samples the registry. State changes and the
//    notifications they cause are written in one durable transaction (alert_states and the
//    alert_notifications outbox) before anything is sent: a crash loses no notification, and a
//    restart neither repeats a "firing" nor resolves an alert on counters that restarted at zero.
//  - Delivery: an HTTP POST of a JSON body to the webhook's URL, signed with HMAC-SHA256 under the
//    value (AWSCURRENT) of the app secret the webhook names:
//      X-Moatless-Signature: sha256=HEX(HMAC(key, TIMESTAMP + "." + BODY))
//      X-Moatless-Timestamp: unix seconds     X-Moatless-Delivery: the notification id
//    Each read of the key is audited (actor moatless:alerts). A 2xx answer delivers it; anything
//    else is retried with exponential backoff (1 s doubling to at most 10 min) up to
//    `max_attempts`, then dropped with an error log line. The daemon only posts to hosts the
//    operator lists in alerts.webhook_hosts (server configuration, never the API or a manifest): a
//    deployer cannot make the platform call its internal network. At-least-once: a receiver
//    deduplicates by X-Moatless-Delivery.
//
// Start() after the store and registry exist; destroy (or Stop()) before them. List() is
// thread-safe; everything else runs on the host's own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/env.h"
#include "http/client.h"
#include "observe/alerts.h"
#include "observe/audit_log.h"
#include "observe/logger.h"
#include "observe/metrics.h"
#include "secrets/secret_store.h"
#include "store/database.h"

namespace moatless::app {

struct AlertHostOptions {
  std::chrono::milliseconds interval{15'000};
  // "host" or "host:port" entries webhooks may be posted to; empty: none (log only).
  std::vector<std::string> webhook_hosts;
  std::chrono::milliseconds webhook_timeout{10'000};
  int max_attempts = 10;
  http::ClientOptions client;  // TLS trust for https webhooks
  std::string region = "local";
  std::string account_id = "000000000000";
};

// One alert as `moatless alerts list` shows it.
struct AlertView {
  observe::AlertRule rule;
  std::string name;
  observe::AlertStatus status;
};

class AlertHost {
 public:
  struct Deps {
    store::Database& db;
    core::Env& env;
    observe::MetricsRegistry& metrics;
    secrets::SecretStore* secrets = nullptr;  // null: webhooks cannot be signed, so not sent
    observe::AuditLog* audit = nullptr;       // records each read of a webhook's signing key
    observe::Logger log;
  };
  AlertHost(Deps deps, AlertHostOptions options);
  ~AlertHost();
  AlertHost(const AlertHost&) = delete;
  AlertHost& operator=(const AlertHost&) = delete;

  // Loads the rules and the saved states, then evaluates on a thread of its own.
  core::Status Start();
  void Stop();
  // Evaluates soon rather than at the next interval (a deployment changed a live version).
  void Wake();
  // Evaluates once and delivers what is due, on the calling thread (tests; Start not called).
  void RunOnce();

  // The alerts of one app stage with their states (empty if it has none).
  std::vector<AlertView> List(const std::string& app, const std::string& stage) const;

 private:
  struct Webhook {
    std::string url;
    std::string secret;  // the secret's full name, STAGE/APP/NAME
  };
  struct Loaded {
    std::string app, stage, name;
    std::map<std::string, Webhook> webhooks;  // by webhook name
  };
  void Loop();
  core::Status ReloadRules();
  // Writes the changed states and the transitions' notifications in one transaction, then logs
  // the transitions.
  core::Status Record(const std::vector<observe::AlertTransition>& transitions);
  void Log(const observe::AlertTransition& t) const;
  void Deliver();
  // Publishes the evaluator's states for List().
  void RefreshViews();
  core::Status DeliverOne(const std::string& id, const std::string& url, const std::string& secret,
                          const std::string& body);
  std::string Body(const observe::AlertTransition& t, const std::string& id) const;
  bool HostAllowed(const std::string& url) const;

  Deps deps_;
  AlertHostOptions options_;
  std::optional<http::Client> client_;
  observe::AlertEvaluator evaluator_;
  std::vector<observe::AlertStatus> saved_;           // read by Start, restored by the first load
  std::vector<observe::AlertTransition> unrecorded_;  // a failed Record's, tried again
  std::string live_fingerprint_;  // app/stage/version of every live version, as loaded
  bool rules_loaded_ = false;
  // Each alert's state and since (unix ms) as alert_states holds them.
  std::map<std::string, std::pair<observe::AlertState, std::int64_t>> persisted_;
  std::map<std::string, Loaded> loaded_;                 // by rule id
  mutable std::mutex mu_;                                // guards views_
  std::map<std::string, std::vector<AlertView>> views_;  // by "APP/STAGE"
  observe::CounterFamily& notifications_;
  std::mutex loop_mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace moatless::app
