// EventQueue: asynchronous ("Event") invocations, persisted before they are acknowledged and run
// by worker threads with Lambda's retry policy.
//
// Enqueue checks the invocation (the function and version exist, the payload is at most 256 KiB,
// fewer than max_pending are waiting) and stores it in the `async_invocations` table (migration 4
// of store/schema.cc) with a durable transaction; only then does it return the request id, so an
// acknowledged (202) event survives a crash of the process or the machine. The qualifier is kept
// as given ("" becomes "$LATEST") and resolved when each attempt starts: an event for $LATEST
// runs the highest version at that time, an event for a number runs exactly that version.
//
// Workers take due rows (next_attempt_ms <= now, running = 0) and mark them running in one write
// transaction, so no two workers ever take the same row. An attempt fails if RunEvent returns an
// error (a throttle, kResourceExhausted, included) or a result with function_error set. A failed
// attempt is retried after retry_delays[0], then retry_delays[1], ... (Lambda's default: two
// retries, after one and two minutes); after the last one, or after a success, the row is
// deleted. If the function no longer exists when an attempt starts the event is dropped (a final
// failure). Every attempt's outcome goes to on_outcome.
//
// Delivery is at least once, as in Lambda: Start resets rows left running by a crash to pending,
// so an attempt that was under way when the process died runs again. That reset assumes this
// queue is the only one working on the table (one node per store, which the data directory's lock
// guarantees for the embedded store); several nodes on one PostgreSQL will need leases.
//
// Time comes from the Clock (wall time, unix milliseconds in the table). Workers sleep until the
// earliest scheduled attempt, at most max_idle_wait of real time, so a FakeClock advanced by a
// test is noticed within max_idle_wait; Enqueue wakes a sleeping worker at once.
//
// If the store fails to record the end of an attempt (after a few retries when it is busy), the
// row stays marked running until the next Start, which runs it again.
//
// Threading: Enqueue, Pending, Start and Stop may be called from any thread, but Start and Stop
// not from RunEvent or on_outcome (Stop joins the worker calling them). RunEvent and on_outcome
// are called on worker threads, up to `workers` at once, with no lock held. The Database,
// FunctionRegistry, Clock and Random must outlive the queue; the destructor stops it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/random.h"
#include "core/status.h"
#include "runtime/function.h"
#include "runtime/function_registry.h"
#include "runtime/invoker.h"
#include "store/database.h"

namespace moatless::runtime {

// Lambda's limit on an asynchronous invocation's payload.
inline constexpr std::size_t kMaxEventPayloadBytes = 256 * 1024;

// One attempt's outcome. Never carries the event's payload or the function's response.
struct EventOutcome {
  std::string request_id;
  std::string function_name;
  std::string qualifier;
  int attempt = 0;         // 1 for the first attempt
  bool succeeded = false;  // the function ran and returned without a function error
  bool final = false;      // no attempt follows (success, last retry, or the function is gone)
  std::string error;       // why the attempt failed: a status ("TooManyRequestsException: ...")
                           // or the function's error type ("function error: Unhandled")
};

struct EventQueueOptions {
  std::size_t workers = 2;
  // The delay before each retry; its size is the number of retries after the first attempt.
  std::vector<std::chrono::milliseconds> retry_delays{std::chrono::minutes(1),
                                                      std::chrono::minutes(2)};
  // Events accepted but not finished (running ones included); Enqueue refuses more.
  std::size_t max_pending = 10000;
  // The longest a worker sleeps (real time) before looking at the table again.
  std::chrono::milliseconds max_idle_wait{1000};
  // Called after every attempt (on the worker thread): for logs and metrics.
  std::function<void(const EventOutcome&)> on_outcome;
};

// Runs one attempt of an event (the platform passes its Invoker). request_id is the event's id,
// the same for every attempt.
using RunEvent = std::function<core::Result<InvokeResult>(
    const FunctionConfig& function, std::string payload, const std::string& request_id)>;

class EventQueue {
 public:
  EventQueue(store::Database& db, FunctionRegistry& registry, const core::Clock& clock,
             core::Random& random, RunEvent run, EventQueueOptions options = {});
  ~EventQueue();  // Stop()
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;

  // Stores an event for `function_name` at `qualifier` ("", "$LATEST" or a version number) and
  // returns its request id (`request_id`, or a new UUID when empty) once it is durable. Errors,
  // with nothing stored:
  // kNotFound / ResourceNotFoundException (no such function or version), kInvalidArgument (bad
  // qualifier), kPayloadTooLarge / RequestEntityTooLargeException (over kMaxEventPayloadBytes),
  // kResourceExhausted / TooManyRequestsException (max_pending events waiting), the store's.
  // Works whether or not the workers run; a stopped queue runs the event when started.
  core::Result<std::string> Enqueue(std::string_view function_name, std::string_view qualifier,
                                    std::string payload, std::string request_id = "");

  // Resets rows left running by an earlier process to pending, then starts the workers. Does
  // nothing if they already run; starts them again after Stop.
  void Start();
  // Stops taking events, waits for the attempts under way to finish and be recorded, and joins
  // the workers. Idempotent.
  void Stop();

  // Events stored and not finished, running ones included (0 if the store cannot be read).
  std::size_t Pending() const;

 private:
  struct Claimed;
  void Work();
  // The next due event, marked running; or nullopt and, in *next_due_ms, the time of the
  // earliest scheduled one (nullopt: none).
  core::Result<std::optional<Claimed>> Claim(std::optional<std::int64_t>* next_due_ms);
  void Attempt(Claimed event);
  // Records the end of an attempt: deletes the row, or schedules the next attempt at
  // next_attempt_ms. Retries a busy store a few times.
  void Finish(const Claimed& event, std::optional<std::int64_t> next_attempt_ms);
  void Report(const EventOutcome& outcome) const;
  std::int64_t NowMs() const;

  store::Database& db_;
  FunctionRegistry& registry_;
  const core::Clock& clock_;
  core::Random& random_;
  RunEvent run_;
  EventQueueOptions options_;

  std::mutex lifecycle_mu_;  // Start/Stop; held while joining, never by workers
  std::vector<std::thread> workers_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;       // guarded by mu_
  std::uint64_t enqueued_ = 0;  // guarded by mu_; moves on every Enqueue (no lost wake-ups)

  // Crash recovery (the reset of running rows) must finish before any worker claims a row; it
  // runs on the first worker that gets there and is retried if the store is unavailable.
  std::mutex recovery_mu_;
  std::atomic<bool> recovered_{false};
};

}  // namespace moatless::runtime
