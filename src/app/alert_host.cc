#include "app/alert_host.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "core/ids.h"
#include "manifest/manifest.h"

namespace moatless::app {
namespace {

std::int64_t UnixMs(core::WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

core::WallTime FromUnixMs(std::int64_t ms) {
  return core::WallTime(
      std::chrono::duration_cast<core::WallTime::duration>(std::chrono::milliseconds(ms)));
}

std::string Hex(const unsigned char* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 0xf];
  }
  return out;
}

}  // namespace

AlertHost::AlertHost(Deps deps, AlertHostOptions options)
    : deps_(std::move(deps)),
      options_(std::move(options)),
      evaluator_(deps_.metrics),
      notifications_(deps_.metrics.Counter(
          "moatless_alert_notifications_total",
          "Alert notifications to webhooks by result: delivered, retried (a failed attempt that "
          "will be retried), dropped (attempts exhausted) or refused (host not allowed).",
          {"result"})) {
  http::ClientOptions client = options_.client;
  client.connect_timeout = std::min(client.connect_timeout, options_.webhook_timeout);
  client.read_timeout = options_.webhook_timeout;
  client.max_response_body_bytes = 64 * 1024;
  auto created = http::Client::Create(client);
  if (created.ok()) {
    client_.emplace(std::move(created).value());
  } else {
    deps_.log.Error("alert webhooks disabled: no HTTP client", {{"error", created.status()}});
  }
}

AlertHost::~AlertHost() { Stop(); }

core::Status AlertHost::Start() {
  // The states saved before a restart go back in when the rules are first loaded, before any
  // state is written.
  ASSIGN_OR_RETURN(const std::vector<store::Row> rows,
                   store::TransactValue(
                       deps_.db, {.access = store::Access::kReadOnly}, [](store::Transaction& tx) {
                         return tx.Query("SELECT rule_id, state, since_ms FROM alert_states");
                       }));
  for (const store::Row& row : rows) {
    ASSIGN_OR_RETURN(std::string id, row.GetText("rule_id"));
    ASSIGN_OR_RETURN(const std::string state, row.GetText("state"));
    ASSIGN_OR_RETURN(const std::int64_t since, row.GetInt("since_ms"));
    const auto parsed = observe::ParseAlertState(state);
    if (!parsed) continue;
    if (*parsed == observe::AlertState::kFiring) {
      deps_.log.Info("alert firing before the restart", {{"alert", id}});
    }
    persisted_[id] = {*parsed, since};
    saved_.push_back({.rule_id = std::move(id), .state = *parsed, .since = FromUnixMs(since)});
  }
  RETURN_IF_ERROR(ReloadRules());
  thread_ = std::thread([this] { Loop(); });
  return core::Status::Ok();
}

void AlertHost::Stop() {
  {
    std::lock_guard lock(loop_mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AlertHost::Wake() {
  {
    std::lock_guard lock(loop_mu_);
    woken_ = true;
  }
  wake_.notify_all();
}

void AlertHost::Loop() {
  std::unique_lock lock(loop_mu_);
  while (!stopping_) {
    woken_ = false;
    lock.unlock();
    RunOnce();
    lock.lock();
    wake_.wait_for(lock, options_.interval, [this] { return stopping_ || woken_; });
  }
}

void AlertHost::RunOnce() {
  if (core::Status s = ReloadRules(); !s.ok()) {
    deps_.log.Error("alert rules could not be loaded", {{"error", s}});
  }
  // Transitions a failed write could not record are tried again first: none is ever dropped.
  std::vector<observe::AlertTransition> transitions = std::move(unrecorded_);
  unrecorded_.clear();
  for (observe::AlertTransition& t :
       evaluator_.Evaluate(deps_.env.clock().Now(), deps_.env.clock().MonotonicNow())) {
    transitions.push_back(std::move(t));
  }
  if (core::Status s = Record(transitions); !s.ok()) {
    deps_.log.Error("alert states could not be saved; will try again", {{"error", s}});
    unrecorded_ = std::move(transitions);
  }
  Deliver();
}

core::Status AlertHost::ReloadRules() {
  // Which versions are live is cheap to ask; the manifests are read only when that changed.
  ASSIGN_OR_RETURN(
      const std::vector<store::Row> live_versions,
      store::TransactValue(
          deps_.db, {.access = store::Access::kReadOnly}, [](store::Transaction& tx) {
            return tx.Query("SELECT app, stage, live_version FROM apps ORDER BY app, stage");
          }));
  std::string fingerprint;
  for (const store::Row& row : live_versions) {
    fingerprint += row.GetText("app").value_or("") + "/" + row.GetText("stage").value_or("") + "/" +
                   std::to_string(row.GetInt("live_version").value_or(0)) + "\n";
  }
  if (rules_loaded_ && fingerprint == live_fingerprint_) return core::Status::Ok();
  ASSIGN_OR_RETURN(const std::vector<store::Row> rows,
                   store::TransactValue(
                       deps_.db, {.access = store::Access::kReadOnly}, [](store::Transaction& tx) {
                         return tx.Query(
                             "SELECT a.app AS app, a.stage AS stage, v.manifest AS manifest "
                             "FROM apps a JOIN app_versions v ON v.app = a.app AND "
                             "v.stage = a.stage AND v.version = a.live_version "
                             "ORDER BY a.app, a.stage");
                       }));

  std::vector<observe::AlertRule> rules;
  std::map<std::string, Loaded> loaded;
  for (const store::Row& row : rows) {
    ASSIGN_OR_RETURN(const std::string app, row.GetText("app"));
    ASSIGN_OR_RETURN(const std::string stage, row.GetText("stage"));
    ASSIGN_OR_RETURN(const std::string text, row.GetText("manifest"));
    const manifest::ParseOutcome parsed = manifest::ParseManifest(
        text, {.stage = stage, .region = options_.region, .account_id = options_.account_id});
    if (!parsed.manifest) {
      deps_.log.Warn("the live manifest of an app no longer parses; its alerts are not evaluated",
                     {{"app", app}, {"stage", stage}, {"error", parsed.ToStatus("moatless.yaml")}});
      continue;
    }
    const manifest::Manifest& m = *parsed.manifest;
    for (const manifest::AlertSpec& a : m.alerts) {
      const auto metric = observe::ParseAlertMetric(a.metric);
      if (!metric) continue;
      observe::AlertRule rule{
          .id = app + "/" + stage + "/" + a.name,
          .metric = *metric,
          .function =
              a.function.empty() ? "" : manifest::QualifiedFunctionName(app, stage, a.function),
          .api = a.function.empty() && *metric != observe::AlertMetric::kRotationFailures
                     ? app + "/" + stage
                     : "",
          .route = a.route,
          .below = a.below,
          .threshold = a.threshold,
          .window = std::chrono::seconds(a.window_s),
          .for_duration = std::chrono::seconds(a.for_s),
          .notify = a.notify};
      Loaded l{.app = app, .stage = stage, .name = a.name};
      for (const std::string& hook : a.notify) {
        const auto it = m.webhooks.find(hook);
        if (it == m.webhooks.end()) continue;
        l.webhooks[hook] =
            Webhook{.url = it->second.url,
                    .secret = manifest::QualifiedSecretName(app, stage, it->second.secret)};
      }
      loaded.emplace(rule.id, std::move(l));
      rules.push_back(std::move(rule));
    }
  }
  // Resolutions of alerts a deployment removed or changed are notified with their old webhooks.
  std::map<std::string, Loaded> previous = std::move(loaded_);
  loaded_ = std::move(loaded);
  for (const auto& [id, l] : previous) loaded_.try_emplace(id, l);
  const std::vector<observe::AlertTransition> changed =
      evaluator_.SetRules(std::move(rules), deps_.env.clock().Now());
  evaluator_.Restore(saved_);
  saved_.clear();
  if (core::Status s = Record(changed); !s.ok()) {
    unrecorded_.insert(unrecorded_.end(), changed.begin(), changed.end());
    return s;
  }
  for (auto it = loaded_.begin(); it != loaded_.end();) {
    const bool live = std::any_of(evaluator_.rules().begin(), evaluator_.rules().end(),
                                  [&](const observe::AlertRule& r) { return r.id == it->first; });
    it = live ? std::next(it) : loaded_.erase(it);
  }
  // States of alerts that no longer exist are forgotten.
  std::vector<std::string> gone;
  for (const auto& [id, saved] : persisted_) {
    if (!loaded_.contains(id)) gone.push_back(id);
  }
  if (!gone.empty()) {
    const core::Status forgotten = deps_.db.Write([&](store::Transaction& tx) -> core::Status {
      for (const std::string& id : gone) {
        RETURN_IF_ERROR(tx.Exec("DELETE FROM alert_states WHERE rule_id = ?", {id}).status());
      }
      return core::Status::Ok();
    });
    RETURN_IF_ERROR(forgotten);
    for (const std::string& id : gone) persisted_.erase(id);
  }
  live_fingerprint_ = fingerprint;
  rules_loaded_ = true;
  deps_.log.Info("alert rules loaded",
                 {{"alerts", static_cast<std::int64_t>(evaluator_.rules().size())}});
  return core::Status::Ok();
}

std::string AlertHost::Body(const observe::AlertTransition& t, const std::string& id) const {
  const auto it = loaded_.find(t.rule.id);
  boost::json::object alert{{"id", t.rule.id},
                            {"description", t.rule.Describe()},
                            {"metric", observe::AlertMetricName(t.rule.metric)},
                            {"comparison", t.rule.below ? "below" : "above"},
                            {"threshold", t.rule.threshold},
                            {"windowSeconds", t.rule.window.count()},
                            {"forSeconds", t.rule.for_duration.count()}};
  if (it != loaded_.end()) {
    alert["app"] = it->second.app;
    alert["stage"] = it->second.stage;
    alert["name"] = it->second.name;
  }
  if (!t.rule.function.empty()) alert["function"] = t.rule.function;
  if (!t.rule.route.empty()) alert["route"] = t.rule.route;
  boost::json::object body{
      {"id", id},
      {"status", t.kind == observe::AlertTransition::kFiring ? "firing" : "resolved"},
      {"alert", std::move(alert)},
      {"startsAt", core::FormatRfc3339(t.firing_since)}};
  body["value"] = t.value ? boost::json::value(*t.value) : boost::json::value(nullptr);
  if (t.kind == observe::AlertTransition::kResolved) body["endsAt"] = core::FormatRfc3339(t.at);
  return boost::json::serialize(body);
}

core::Status AlertHost::Record(const std::vector<observe::AlertTransition>& transitions) {
  const std::vector<observe::AlertStatus> statuses = evaluator_.Statuses();
  struct Notification {
    std::string id, rule_id, webhook, url, secret, body;
  };
  std::vector<Notification> outbox;
  for (const observe::AlertTransition& t : transitions) {
    const auto it = loaded_.find(t.rule.id);
    if (it == loaded_.end()) continue;
    for (const auto& [name, hook] : it->second.webhooks) {
      Notification n{.id = core::NewUuid(deps_.env.random()),
                     .rule_id = t.rule.id,
                     .webhook = name,
                     .url = hook.url,
                     .secret = hook.secret};
      n.body = Body(t, n.id);
      outbox.push_back(std::move(n));
    }
  }
  // Only what changed is written: most evaluations change nothing.
  std::vector<const observe::AlertStatus*> changed;
  for (const observe::AlertStatus& s : statuses) {
    const auto it = persisted_.find(s.rule_id);
    const std::pair<observe::AlertState, std::int64_t> now_state{s.state, UnixMs(s.since)};
    if (it == persisted_.end() || it->second != now_state) changed.push_back(&s);
  }
  if (changed.empty() && outbox.empty()) {
    RefreshViews();
    return core::Status::Ok();
  }
  const std::int64_t now = UnixMs(deps_.env.clock().Now());
  core::Status status = deps_.db.Write([&](store::Transaction& tx) -> core::Status {
    for (const observe::AlertStatus* state : changed) {
      const observe::AlertStatus& s = *state;
      RETURN_IF_ERROR(
          tx.Exec("INSERT INTO alert_states (rule_id, state, since_ms, updated_ms) "
                  "VALUES (?, ?, ?, ?) ON CONFLICT (rule_id) DO UPDATE SET state = excluded.state, "
                  "since_ms = excluded.since_ms, updated_ms = excluded.updated_ms "
                  "WHERE alert_states.state <> excluded.state OR "
                  "alert_states.since_ms <> excluded.since_ms",
                  {s.rule_id, std::string(observe::AlertStateName(s.state)), UnixMs(s.since), now})
              .status());
    }
    for (const Notification& n : outbox) {
      RETURN_IF_ERROR(tx.Exec("INSERT INTO alert_notifications (id, rule_id, webhook, url, secret, "
                              "body, created_ms, attempts, next_attempt_ms, last_error) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, '')",
                              {n.id, n.rule_id, n.webhook, n.url, n.secret, n.body, now, now})
                          .status());
    }
    return core::Status::Ok();
  });
  if (status.ok()) {
    for (const observe::AlertStatus* s : changed) {
      persisted_[s->rule_id] = {s->state, UnixMs(s->since)};
    }
    for (const observe::AlertTransition& t : transitions) Log(t);
  }
  RefreshViews();
  return status;
}

void AlertHost::Log(const observe::AlertTransition& t) const {
  std::vector<observe::LogField> fields = {{"alert", t.rule.id},
                                           {"description", t.rule.Describe()},
                                           {"since", core::FormatRfc3339(t.firing_since)}};
  if (t.value) fields.push_back({"value", *t.value});
  const observe::Logger log = deps_.log.With(fields);
  if (t.kind == observe::AlertTransition::kFiring) {
    log.Warn("alert firing");
  } else {
    log.Info("alert resolved");
  }
}

void AlertHost::RefreshViews() {
  const std::vector<observe::AlertStatus> statuses = evaluator_.Statuses();
  std::map<std::string, std::vector<AlertView>> views;
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    const observe::AlertRule& rule = evaluator_.rules()[i];
    const auto it = loaded_.find(rule.id);
    if (it == loaded_.end()) continue;
    views[it->second.app + "/" + it->second.stage].push_back(
        AlertView{.rule = rule, .name = it->second.name, .status = statuses[i]});
  }
  std::lock_guard lock(mu_);
  views_ = std::move(views);
}

std::vector<AlertView> AlertHost::List(const std::string& app, const std::string& stage) const {
  std::lock_guard lock(mu_);
  const auto it = views_.find(app + "/" + stage);
  return it == views_.end() ? std::vector<AlertView>{} : it->second;
}

bool AlertHost::HostAllowed(const std::string& url) const {
  const auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) return false;
  const std::string host(parsed->host());
  const std::string port = parsed->has_port()            ? std::string(parsed->port())
                           : parsed->scheme() == "https" ? "443"
                                                         : "80";
  return std::any_of(
      options_.webhook_hosts.begin(), options_.webhook_hosts.end(),
      [&](const std::string& allowed) { return allowed == host || allowed == host + ":" + port; });
}

void AlertHost::Deliver() {
  const std::int64_t now = UnixMs(deps_.env.clock().Now());
  auto due = store::TransactValue(
      deps_.db, {.access = store::Access::kReadOnly}, [now](store::Transaction& tx) {
        return tx.Query(
            "SELECT id, rule_id, webhook, url, secret, body, attempts FROM alert_notifications "
            "WHERE next_attempt_ms <= ? ORDER BY created_ms LIMIT 16",
            {now});
      });
  if (!due.ok()) {
    deps_.log.Error("alert notifications could not be read", {{"error", due.status()}});
    return;
  }
  for (const store::Row& row : *due) {
    const std::string id = row.GetText("id").value_or("");
    const std::string rule_id = row.GetText("rule_id").value_or("");
    const std::string webhook = row.GetText("webhook").value_or("");
    const std::string url = row.GetText("url").value_or("");
    const std::int64_t attempts = row.GetInt("attempts").value_or(0) + 1;
    const observe::Logger log =
        deps_.log.With({{"alert", rule_id}, {"webhook", webhook}, {"delivery", id}});
    core::Status outcome;
    bool final = false;
    if (!HostAllowed(url)) {
      outcome = core::PermissionDeniedError("the webhook's host is not in alerts.webhook_hosts");
      final = true;
      notifications_.WithLabels({"refused"}).Inc();
      log.Error("alert notification refused", {{"error", outcome}});
    } else {
      outcome =
          DeliverOne(id, url, row.GetText("secret").value_or(""), row.GetText("body").value_or(""));
      if (outcome.ok()) {
        notifications_.WithLabels({"delivered"}).Inc();
        log.Info("alert notification delivered", {{"attempt", attempts}});
        final = true;
      } else if (attempts >= options_.max_attempts) {
        notifications_.WithLabels({"dropped"}).Inc();
        log.Error("alert notification dropped after its last attempt",
                  {{"attempt", attempts}, {"error", outcome}});
        final = true;
      } else {
        notifications_.WithLabels({"retried"}).Inc();
        log.Warn("alert notification failed; will retry",
                 {{"attempt", attempts}, {"error", outcome}});
      }
    }
    const std::int64_t backoff_ms =
        std::min<std::int64_t>(600'000, 1000LL << std::min<std::int64_t>(attempts - 1, 20));
    core::Status saved = deps_.db.Write([&](store::Transaction& tx) -> core::Status {
      if (final) {
        return tx.Exec("DELETE FROM alert_notifications WHERE id = ?", {id}).status();
      }
      return tx
          .Exec(
              "UPDATE alert_notifications SET attempts = ?, next_attempt_ms = ?, "
              "last_error = ? WHERE id = ?",
              {attempts, now + backoff_ms, outcome.message(), id})
          .status();
    });
    if (!saved.ok()) log.Error("alert notification state could not be saved", {{"error", saved}});
  }
}

core::Status AlertHost::DeliverOne(const std::string& id, const std::string& url,
                                   const std::string& secret, const std::string& body) {
  if (!client_) return core::UnavailableError("no HTTP client");
  if (deps_.secrets == nullptr) return core::UnavailableError("no secrets manager to sign with");
  ASSIGN_OR_RETURN(secrets::PreparedRead read, deps_.secrets->PrepareRead(secret, "", ""));
  auto value = deps_.secrets->FinishRead(std::move(read));
  if (deps_.audit != nullptr) {
    observe::AuditRecord record;
    record.actor = "moatless:alerts";
    record.action = "secretsmanager:GetSecretValue";
    record.resource = value.ok() ? value->arn : secret;
    record.outcome = value.ok() ? observe::AuditOutcome::kAllowed : observe::AuditOutcome::kError;
    record.reason = value.ok() ? "the signing key of an alert notification"
                               : std::string(value.status().message());
    record.fields = {{"delivery", id}};
    // Nothing is signed with a key whose reading is not on record.
    RETURN_IF_ERROR(deps_.audit->Append(record));
  }
  if (!value.ok()) {
    return core::FailedPreconditionError("the webhook's signing secret " + secret +
                                         " has no usable value: " + value.status().message());
  }
  const std::string timestamp = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(deps_.env.clock().Now().time_since_epoch())
          .count());
  const std::string signed_text = timestamp + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  const std::span<const std::uint8_t> key = value->value.RevealBytes();
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), mac,
           &mac_size) == nullptr) {
    return core::InternalError("HMAC-SHA256 failed");
  }
  http::Request request = http::MakeRequest(http::Verb::post, "/", body, "application/json");
  request.set("X-Moatless-Signature", "sha256=" + Hex(mac, mac_size));
  request.set("X-Moatless-Timestamp", timestamp);
  request.set("X-Moatless-Delivery", id);
  request.set(http::Field::user_agent, "moatless-alerts");
  ASSIGN_OR_RETURN(const http::Response response, client_->FetchBlocking(url, std::move(request)));
  if (response.result_int() < 200 || response.result_int() >= 300) {
    return core::UnavailableError("the webhook answered " + std::to_string(response.result_int()));
  }
  return core::Status::Ok();
}

}  // namespace moatless::app
