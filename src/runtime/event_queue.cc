#include "runtime/event_queue.h"

#include <algorithm>
#include <charconv>
#include <exception>
#include <utility>

#include "core/ids.h"

namespace moatless::runtime {

struct EventQueue::Claimed {
  std::string id;
  std::string function_name;
  std::string qualifier;
  std::string payload;
  std::int64_t attempts = 0;  // attempts made before this one
};

namespace {

std::string Describe(const core::Status& status) {
  return std::string(status.aws_type()) + ": " + status.message();
}

// Marks every row left running (by a process that died mid-attempt) as pending again.
core::Status ResetRunning(store::Database& db) {
  return db.Write([](store::Transaction& tx) -> core::Status {
    return tx.Exec("UPDATE async_invocations SET running = 0 WHERE running = 1").status();
  });
}

}  // namespace

EventQueue::EventQueue(store::Database& db, FunctionRegistry& registry, const core::Clock& clock,
                       core::Random& random, RunEvent run, EventQueueOptions options)
    : db_(db),
      registry_(registry),
      clock_(clock),
      random_(random),
      run_(std::move(run)),
      options_(std::move(options)) {}

EventQueue::~EventQueue() { Stop(); }

std::int64_t EventQueue::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
      .count();
}

core::Result<std::string> EventQueue::Enqueue(std::string_view function_name,
                                              std::string_view qualifier, std::string payload,
                                              std::string request_id) {
  ASSIGN_OR_RETURN(const FunctionConfig function, registry_.Get(function_name, qualifier));
  if (payload.size() > kMaxEventPayloadBytes) {
    return core::PayloadTooLargeError("the payload of an asynchronous invocation is " +
                                      std::to_string(payload.size()) + " bytes, over the " +
                                      std::to_string(kMaxEventPayloadBytes) + "-byte limit")
        .WithAwsType("RequestEntityTooLargeException");
  }
  const std::string stored_qualifier = qualifier.empty() ? "$LATEST" : std::string(qualifier);
  std::int64_t version = 0;  // Get returns numbered versions only
  std::from_chars(function.version.data(), function.version.data() + function.version.size(),
                  version);
  std::string id = request_id.empty() ? core::NewUuid(random_) : std::move(request_id);
  const std::int64_t now = NowMs();
  const store::Value payload_value = store::Value::FromBytes(payload);
  const core::Status stored = db_.Write([&](store::Transaction& tx) -> core::Status {
    // The function may have been deleted since Get: store nothing for it then.
    ASSIGN_OR_RETURN(
        const store::Row exists,
        tx.QueryOne("SELECT COUNT(*) AS n FROM functions WHERE name = ? AND version = ?",
                    {function.name, version}));
    ASSIGN_OR_RETURN(const std::int64_t found, exists.GetInt("n"));
    if (found == 0) {
      return core::NotFoundError("Function not found: " + function.name)
          .WithAwsType("ResourceNotFoundException");
    }
    ASSIGN_OR_RETURN(const store::Row count,
                     tx.QueryOne("SELECT COUNT(*) AS n FROM async_invocations"));
    ASSIGN_OR_RETURN(const std::int64_t pending, count.GetInt("n"));
    if (pending >= 0 && static_cast<std::uint64_t>(pending) >= options_.max_pending) {
      return core::ResourceExhaustedError("too many asynchronous invocations are waiting (" +
                                          std::to_string(pending) + "); retry later")
          .WithAwsType("TooManyRequestsException");
    }
    return tx
        .Exec(
            "INSERT INTO async_invocations (id, function_name, qualifier, payload, attempts, "
            "running, next_attempt_ms, accepted_at_ms) VALUES (?, ?, ?, ?, 0, 0, ?, ?)",
            {id, function.name, stored_qualifier, payload_value, now, now})
        .status();
  });
  if (!stored.ok()) return stored;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++enqueued_;
  }
  wake_.notify_one();
  return id;
}

void EventQueue::Start() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  if (!workers_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
  }
  // Normally done here, before any worker runs; if the store is unavailable just now, the
  // workers retry it before they claim anything.
  recovered_.store(ResetRunning(db_).ok(), std::memory_order_release);
  const std::size_t n = std::max<std::size_t>(1, options_.workers);
  for (std::size_t i = 0; i < n; ++i) workers_.emplace_back([this] { Work(); });
}

void EventQueue::Stop() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
}

std::size_t EventQueue::Pending() const {
  auto count = store::TransactValue(
      db_, {.access = store::Access::kReadOnly},
      [](store::Transaction& tx) -> core::Result<std::int64_t> {
        ASSIGN_OR_RETURN(const store::Row row,
                         tx.QueryOne("SELECT COUNT(*) AS n FROM async_invocations"));
        return row.GetInt("n");
      });
  if (!count.ok() || *count < 0) return 0;
  return static_cast<std::size_t>(*count);
}

void EventQueue::Work() {
  while (true) {
    std::uint64_t seen = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      seen = enqueued_;
    }
    std::optional<std::int64_t> next_due_ms;
    core::Result<std::optional<Claimed>> claimed = Claim(&next_due_ms);
    if (claimed.ok() && claimed->has_value()) {
      Attempt(std::move(**claimed));
      continue;
    }
    std::chrono::milliseconds wait = options_.max_idle_wait;
    if (claimed.ok() && next_due_ms) {
      wait = std::clamp(std::chrono::milliseconds(*next_due_ms - NowMs()),
                        std::chrono::milliseconds(0), options_.max_idle_wait);
    }
    std::unique_lock<std::mutex> lock(mu_);
    wake_.wait_for(lock, wait, [&] { return stopping_ || enqueued_ != seen; });
  }
}

core::Result<std::optional<EventQueue::Claimed>> EventQueue::Claim(
    std::optional<std::int64_t>* next_due_ms) {
  if (!recovered_.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lock(recovery_mu_);
    if (!recovered_.load(std::memory_order_acquire)) {
      const core::Status reset = ResetRunning(db_);
      if (!reset.ok()) return reset;
      recovered_.store(true, std::memory_order_release);
    }
  }
  const std::int64_t now = NowMs();
  // kNormal: a claim lost to a power cut leaves the row pending, which is what recovery would
  // make of it anyway.
  return store::TransactValue(
      db_, {.access = store::Access::kReadWrite, .durability = store::Durability::kNormal},
      [&](store::Transaction& tx) -> core::Result<std::optional<Claimed>> {
        ASSIGN_OR_RETURN(
            const std::optional<store::Row> row,
            tx.QueryOptional("SELECT id, function_name, qualifier, payload, attempts FROM "
                             "async_invocations WHERE running = 0 AND next_attempt_ms <= ? "
                             "ORDER BY next_attempt_ms, id LIMIT 1",
                             {now}));
        if (!row) {
          ASSIGN_OR_RETURN(const store::Row next,
                           tx.QueryOne("SELECT MIN(next_attempt_ms) AS next FROM "
                                       "async_invocations WHERE running = 0"));
          ASSIGN_OR_RETURN(*next_due_ms, next.Get<std::optional<std::int64_t>>("next"));
          return std::optional<Claimed>();
        }
        Claimed event;
        ASSIGN_OR_RETURN(event.id, row->GetText("id"));
        ASSIGN_OR_RETURN(event.function_name, row->GetText("function_name"));
        ASSIGN_OR_RETURN(event.qualifier, row->GetText("qualifier"));
        ASSIGN_OR_RETURN(const store::Blob payload, row->GetBlob("payload"));
        event.payload.assign(payload.begin(), payload.end());
        ASSIGN_OR_RETURN(event.attempts, row->GetInt("attempts"));
        ASSIGN_OR_RETURN(
            const std::int64_t marked,
            tx.Exec("UPDATE async_invocations SET running = 1 WHERE id = ? AND running = 0",
                    {event.id}));
        if (marked != 1) return core::InternalError("an event changed while it was claimed");
        return std::optional<Claimed>(std::move(event));
      });
}

void EventQueue::Attempt(Claimed event) {
  EventOutcome outcome;
  outcome.request_id = event.id;
  outcome.function_name = event.function_name;
  outcome.qualifier = event.qualifier;
  outcome.attempt = static_cast<int>(event.attempts + 1);

  core::Result<FunctionConfig> function = registry_.Get(event.function_name, event.qualifier);
  if (!function.ok() && function.status().code() == core::StatusCode::kNotFound) {
    // Deleted since it was accepted: nothing left to run.
    outcome.final = true;
    outcome.error = Describe(function.status());
  } else if (!function.ok()) {
    outcome.error = Describe(function.status());
  } else {
    core::Result<InvokeResult> result = core::InternalError("the event was not run");
    try {
      result = run_(*function, std::move(event.payload), event.id);
    } catch (const std::exception& e) {
      result = core::InternalError(std::string("running the event threw: ") + e.what());
    }
    if (!result.ok()) {
      outcome.error = Describe(result.status());
    } else if (result->function_error) {
      outcome.error = "function error: " + *result->function_error;
    } else {
      outcome.succeeded = true;
    }
  }

  const std::size_t retries = options_.retry_delays.size();
  std::optional<std::int64_t> next_attempt_ms;
  if (outcome.succeeded || outcome.final || static_cast<std::size_t>(outcome.attempt) > retries) {
    outcome.final = true;
  } else {
    next_attempt_ms = NowMs() + options_.retry_delays[outcome.attempt - 1].count();
  }
  Finish(event, next_attempt_ms);
  Report(outcome);
}

void EventQueue::Finish(const Claimed& event, std::optional<std::int64_t> next_attempt_ms) {
  // The row may be gone (the function was deleted meanwhile): then nothing changes, which is
  // what we want.
  const std::int64_t attempts = event.attempts + 1;
  for (int tries = 0; tries < 5; ++tries) {
    const core::Status status = db_.Write([&](store::Transaction& tx) -> core::Status {
      if (next_attempt_ms) {
        return tx
            .Exec(
                "UPDATE async_invocations SET attempts = ?, running = 0, next_attempt_ms = ? "
                "WHERE id = ?",
                {attempts, *next_attempt_ms, event.id})
            .status();
      }
      return tx.Exec("DELETE FROM async_invocations WHERE id = ?", {event.id}).status();
    });
    if (status.ok() || status.code() != core::StatusCode::kUnavailable) return;
    // Left as it is, the row would stay running until the next Start: worth a short wait.
    std::this_thread::sleep_for(std::chrono::milliseconds(50) * (tries + 1));
  }
}

void EventQueue::Report(const EventOutcome& outcome) const {
  if (options_.on_outcome) options_.on_outcome(outcome);
}

}  // namespace moatless::runtime
