#include "runtime/event_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/random.h"
#include "runtime/store_test_fixture.h"

namespace moatless::runtime {
namespace {

using core::StatusCode;
using std::chrono::milliseconds;

constexpr auto kPatience = std::chrono::seconds(60);

std::int64_t UnixMs(core::WallTime t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

// What the fake RunEvent saw, and the outcomes the queue reported.
class Recorder {
 public:
  struct Run {
    std::string request_id;
    std::string function_version;
    std::string payload;
    std::int64_t at_ms = 0;
  };

  // The behaviour of the next runs: given the run's number for this request id (1, 2, ...).
  using Behaviour = std::function<core::Result<InvokeResult>(const Run& run, int nth)>;

  explicit Recorder(const core::Clock& clock) : clock_(clock) {}

  void set_behaviour(Behaviour behaviour) {
    std::lock_guard<std::mutex> lock(mu_);
    behaviour_ = std::move(behaviour);
  }

  RunEvent AsRunEvent() {
    return [this](const FunctionConfig& f, std::string payload, const std::string& id) {
      Run run{id, f.version, std::move(payload), UnixMs(clock_.Now())};
      Behaviour behaviour;
      int nth = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        runs_.push_back(run);
        nth = ++count_[id];
        behaviour = behaviour_;
      }
      changed_.notify_all();
      if (behaviour) return behaviour(run, nth);
      return core::Result<InvokeResult>(InvokeResult{.request_id = id, .payload = "null"});
    };
  }

  std::function<void(const EventOutcome&)> AsOnOutcome() {
    return [this](const EventOutcome& outcome) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        outcomes_.push_back(outcome);
        if (outcome.final) ++finals_;
      }
      changed_.notify_all();
    };
  }

  // Waits (at most kPatience) until pred holds; pred runs under the lock.
  bool WaitUntil(const std::function<bool()>& pred) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, kPatience, pred);
  }
  bool WaitForFinals(std::size_t n) {
    return WaitUntil([&] { return finals_ >= n; });
  }
  bool WaitForRuns(std::size_t n) {
    return WaitUntil([&] { return runs_.size() >= n; });
  }
  bool WaitForOutcomes(std::size_t n) {
    return WaitUntil([&] { return outcomes_.size() >= n; });
  }

  std::vector<Run> runs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return runs_;
  }
  std::vector<EventOutcome> outcomes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return outcomes_;
  }
  std::map<std::string, int> counts() const {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }

 private:
  const core::Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  Behaviour behaviour_;
  std::vector<Run> runs_;
  std::map<std::string, int> count_;
  std::vector<EventOutcome> outcomes_;
  std::size_t finals_ = 0;
};

core::Result<InvokeResult> FunctionError() {
  return InvokeResult{.payload = R"({"errorMessage":"boom","errorType":"Error"})",
                      .function_error = "Unhandled"};
}

class EventQueueTest : public testing::RegistryStoreTest {
 protected:
  void TearDown() override {
    queue_.reset();
    RegistryStoreTest::TearDown();
  }

  // A queue on the fixture's store; clock: the FakeClock unless told otherwise.
  void MakeQueue(EventQueueOptions options = {}, const core::Clock* clock = nullptr) {
    queue_.reset();
    if (clock == nullptr) clock = &clock_;
    recorder_ = std::make_unique<Recorder>(*clock);
    options.on_outcome = recorder_->AsOnOutcome();
    // A FakeClock moves only when a test advances it: notice that quickly.
    options.max_idle_wait = milliseconds(10);
    queue_ = std::make_unique<EventQueue>(*db_, *registry_, *clock, random_,
                                          recorder_->AsRunEvent(), std::move(options));
  }

  void Publish(const std::string& name = "hello") {
    auto published = registry_->Publish(Sample(name));
    ASSERT_TRUE(published.ok()) << published.status();
  }

  // The stored rows: id -> (attempts, running, next_attempt_ms).
  struct StoredEvent {
    std::int64_t attempts = 0;
    std::int64_t running = 0;
    std::int64_t next_attempt_ms = 0;
  };
  std::map<std::string, StoredEvent> Stored() {
    std::map<std::string, StoredEvent> out;
    auto rows = store::TransactValue(
        *db_, {.access = store::Access::kReadOnly}, [](store::Transaction& tx) {
          return tx.Query("SELECT id, attempts, running, next_attempt_ms FROM async_invocations");
        });
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (!rows.ok()) return out;
    for (const store::Row& row : *rows) {
      out[*row.GetText("id")] = {*row.GetInt("attempts"), *row.GetInt("running"),
                                 *row.GetInt("next_attempt_ms")};
    }
    return out;
  }

  core::Status Sql(const std::string& sql) {
    return db_->Write([&](store::Transaction& tx) { return tx.Exec(sql).status(); });
  }

  core::DeterministicRandom random_{42};
  core::RealClock real_clock_;
  std::unique_ptr<Recorder> recorder_;
  std::unique_ptr<EventQueue> queue_;
};

TEST_F(EventQueueTest, ASuccessfulEventRunsExactlyOnce) {
  ASSERT_NO_FATAL_FAILURE(Publish());
  ASSERT_NO_FATAL_FAILURE(MakeQueue());
  queue_->Start();
  auto id = queue_->Enqueue("hello", "", R"({"key":"value"})");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->size(), 36u);  // a UUID
  ASSERT_TRUE(recorder_->WaitForFinals(1));
  queue_->Stop();

  const auto runs = recorder_->runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].request_id, *id);
  EXPECT_EQ(runs[0].payload, R"({"key":"value"})");
  EXPECT_EQ(runs[0].function_version, "1");
  const auto outcomes = recorder_->outcomes();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].request_id, *id);
  EXPECT_EQ(outcomes[0].function_name, "hello");
  EXPECT_EQ(outcomes[0].qualifier, "$LATEST");
  EXPECT_EQ(outcomes[0].attempt, 1);
  EXPECT_TRUE(outcomes[0].succeeded);
  EXPECT_TRUE(outcomes[0].final);
  EXPECT_EQ(outcomes[0].error, "");
  EXPECT_EQ(queue_->Pending(), 0u);
}

TEST_F(EventQueueTest, AFailingEventIsRetriedTwiceAfterTheDelaysThenDropped) {
  ASSERT_NO_FATAL_FAILURE(Publish());
  ASSERT_NO_FATAL_FAILURE(MakeQueue());  // default delays: one minute, then two
  recorder_->set_behaviour([](const Recorder::Run&, int) { return FunctionError(); });
  queue_->Start();
  const std::int64_t t0 = UnixMs(clock_.Now());
  auto id = queue_->Enqueue("hello", "1", "{}");
  ASSERT_TRUE(id.ok()) << id.status();

  ASSERT_TRUE(recorder_->WaitForOutcomes(1));
  // The outcome is reported after the retry is scheduled.
  auto stored = Stored();
  ASSERT_EQ(stored.count(*id), 1u);
  EXPECT_EQ(stored[*id].attempts, 1);
  EXPECT_EQ(stored[*id].running, 0);
  EXPECT_EQ(stored[*id].next_attempt_ms, t0 + 60'000);

  // Not due yet: nothing runs however long the workers look.
  clock_.Advance(std::chrono::seconds(59));
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(recorder_->runs().size(), 1u);

  clock_.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(recorder_->WaitForOutcomes(2));
  stored = Stored();
  EXPECT_EQ(stored[*id].attempts, 2);
  EXPECT_EQ(stored[*id].next_attempt_ms, t0 + 60'000 + 120'000);

  clock_.Advance(std::chrono::seconds(119));
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(recorder_->runs().size(), 2u);
  clock_.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(recorder_->WaitForFinals(1));

  // Nothing after the last retry, however much time passes.
  clock_.Advance(std::chrono::hours(1));
  std::this_thread::sleep_for(milliseconds(100));
  queue_->Stop();

  const auto runs = recorder_->runs();
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].at_ms, t0);
  EXPECT_EQ(runs[1].at_ms, t0 + 60'000);
  EXPECT_EQ(runs[2].at_ms, t0 + 180'000);
  for (const auto& run : runs) EXPECT_EQ(run.request_id, *id);
  const auto outcomes = recorder_->outcomes();
  ASSERT_EQ(outcomes.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(outcomes[i].attempt, i + 1);
    EXPECT_FALSE(outcomes[i].succeeded);
    EXPECT_EQ(outcomes[i].final, i == 2);
    EXPECT_EQ(outcomes[i].error, "function error: Unhandled");
    // The payload and the function's error body stay out of outcomes.
    EXPECT_EQ(outcomes[i].error.find("boom"), std::string::npos);
  }
  EXPECT_TRUE(Stored().empty());
}

TEST_F(EventQueueTest, PlatformErrorsAndThrottlesAreFailedAttemptsToo) {
  ASSERT_NO_FATAL_FAILURE(Publish());
  EventQueueOptions options;
  options.retry_delays = {milliseconds(10), milliseconds(10)};
  ASSERT_NO_FATAL_FAILURE(MakeQueue(options, &real_clock_));
  recorder_->set_behaviour([](const Recorder::Run& run, int nth) -> core::Result<InvokeResult> {
    if (nth == 1) {
      return core::ResourceExhaustedError("Rate Exceeded.").WithAwsType("TooManyRequestsException");
    }
    if (nth == 2) return core::UnavailableError("the sandbox could not start");
    return InvokeResult{.request_id = run.request_id, .payload = "\"ok\""};
  });
  queue_->Start();
  auto id = queue_->Enqueue("hello", "$LATEST", "{}");
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(recorder_->WaitForFinals(1));
  queue_->Stop();

  const auto outcomes = recorder_->outcomes();
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[0].error, "TooManyRequestsException: Rate Exceeded.");
  EXPECT_FALSE(outcomes[0].final);
  EXPECT_NE(outcomes[1].error.find("the sandbox could not start"), std::string::npos);
  EXPECT_FALSE(outcomes[1].final);
  EXPECT_TRUE(outcomes[2].succeeded);
  EXPECT_TRUE(outcomes[2].final);
  EXPECT_EQ(outcomes[2].attempt, 3);
  EXPECT_EQ(recorder_->runs().size(), 3u);
  EXPECT_TRUE(Stored().empty());
}

TEST_F(EventQueueTest, NoRetriesConfiguredMeansOneAttempt) {
  ASSERT_NO_FATAL_FAILURE(Publish());
  EventQueueOptions options;
  options.retry_delays = {};
  ASSERT_NO_FATAL_FAILURE(MakeQueue(options));
  recorder_->set_behaviour([](const Recorder::Run&, int) { return FunctionError(); });
  queue_->Start();
  ASSERT_TRUE(queue_->Enqueue("hello", "", "{}").ok());
  ASSERT_TRUE(recorder_->WaitForFinals(1));
  queue_->Stop();
  EXPECT_EQ(recorder_->runs().size(), 1u);
  EXPECT_TRUE(Stored().empty());
}

TEST_F(EventQueueTest, AnEventOfADeletedFunctionIsDropped) {
  ASSERT_NO_FATAL_FAILURE(Publish());
  ASSERT_NO_FATAL_FAILURE(MakeQueue());
  auto id = queue_->Enqueue("hello", "1", "{}");
  ASSERT_TRUE(id.ok()) << id.status();
  // Gone behind the registry's back (Delete would also remove the event).
  ASSERT_TRUE(Sql("DELETE FROM functions WHERE name = 'hello'").ok());
  queue_->Start();
  ASSERT_TRUE(recorder_->WaitForFinals(1));
  queue_->Stop();

  EXPECT_TRUE(recorder_->runs().empty());
  const auto outcomes = recorder_->outcomes();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].request_id, *id);
  EXPECT_FALSE(outcomes[0].succeeded);
  EXPECT_TRUE(outcomes[0].final);
  EXPECT_NE(outcomes[0].error.find("ResourceNotFoundException"), std::string::npos)
      << outcomes[0].error;
  EXPECT_TRUE(Stored().empty());
}

TEST_F(EventQueueTest, DeletingAFunctionRemovesItsPendingEvents) {
  ASSERT_NO_FATAL_FAILURE(Publish("gone"));
  ASSERT_NO_FATAL_FAILURE(Publish("kept"));
  ASSERT_NO_FATAL_FAILURE(MakeQueue());
  ASSERT_TRUE(queue_->Enqueue("gone", "", "{}").ok());
  ASSERT_TRUE(queue_->Enqueue("gone", "1", "{}").ok());
  auto kept = queue_->Enqueue("kept", "", "{}");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(queue_->Pending(), 3u);
  ASSERT_TRUE(registry_->Delete("gone").ok());
  EXPECT_EQ(queue_->Pending(), 1u);
  queue_->Start();
  ASSERT_TRUE(recorder_->WaitForFinals(1));
  queue_->Stop();
  const auto runs = recorder_->runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].request_id, *kept);
  EXPECT_EQ(recorder_->outcomes().size(), 1u);
}

TEST_F(EventQueueTest, AnAttemptInterruptedByACrashRunsAgainAfterRestart) {
  ASSERT_NO_FATAL_FAILURE(Publish());
  ASSERT_NO_FATAL_FAILURE(MakeQueue());
  auto id = queue_->Enqueue("hello", "", "payload");
  ASSERT_TRUE(id.ok()) << id.status();
  // The process died in its first attempt: the row says running, one attempt made.
  ASSERT_TRUE(Sql("UPDATE async_invocations SET running = 1").ok());
  queue_.reset();

  // A new process: the store reopened, a new queue on it.
  ASSERT_NO_FATAL_FAILURE(OpenStore());
  ASSERT_EQ(Stored().size(), 1u);
  EXPECT_EQ(Stored()[*id].running, 1);
  ASSERT_NO_FATAL_FAILURE(MakeQueue());
  EXPECT_EQ(queue_->Pending(), 1u);
  queue_->Start();
  ASSERT_TRUE(recorder_->WaitForFinals(1));
  queue_->Stop();
  const auto runs = recorder_->runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].request_id, *id);
  EXPECT_EQ(runs[0].payload, "payload");
  EXPECT_TRUE(recorder_->outcomes()[0].succeeded);
  EXPECT_TRUE(Stored().empty());
}

TEST_F(EventQueueTest, ACrashAfterSomeAttemptsKeepsTheirCount) {
  ASSERT_NO_FATAL_FAILURE(Publish());
  ASSERT_NO_FATAL_FAILURE(MakeQueue());
  auto id = queue_->Enqueue("hello", "", "{}");
  ASSERT_TRUE(id.ok());
  // Two attempts were recorded; the third was under way when the process died.
  ASSERT_TRUE(Sql("UPDATE async_invocations SET attempts = 2, running = 1").ok());
  queue_.reset();
  ASSERT_NO_FATAL_FAILURE(MakeQueue());
  recorder_->set_behaviour([](const Recorder::Run&, int) { return FunctionError(); });
  queue_->Start();
  ASSERT_TRUE(recorder_->WaitForFinals(1));
  queue_->Stop();
  const auto outcomes = recorder_->outcomes();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].attempt, 3);  // the last one: no retry follows
  EXPECT_TRUE(outcomes[0].final);
  EXPECT_TRUE(Stored().empty());
}

TEST_F(EventQueueTest, StopWaitsForTheAttemptUnderWay) {
  ASSERT_NO_FATAL_FAILURE(Publish());
  ASSERT_NO_FATAL_FAILURE(MakeQueue());
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  recorder_->set_behaviour([&](const Recorder::Run& run, int) -> core::Result<InvokeResult> {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return release; });
    return InvokeResult{.request_id = run.request_id};
  });
  queue_->Start();
  ASSERT_TRUE(queue_->Enqueue("hello", "", "{}").ok());
  ASSERT_TRUE(recorder_->WaitForRuns(1));
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    queue_->Stop();
    stopped = true;
  });
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_FALSE(stopped.load());  // the attempt is still running
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  stopper.join();
  EXPECT_TRUE(stopped.load());
  // Stop returned after the attempt was recorded.
  EXPECT_EQ(recorder_->outcomes().size(), 1u);
  EXPECT_TRUE(Stored().empty());
  queue_->Stop();  // idempotent
}

TEST_F(EventQueueTest, ConcurrentWorkersRunEveryEventExactlyOnce) {
  ASSERT_NO_FATAL_FAILURE(Publish());
  EventQueueOptions options;
  options.workers = 4;
  ASSERT_NO_FATAL_FAILURE(MakeQueue(options, &real_clock_));
  constexpr int kEvents = 200;
  std::set<std::string> ids;
  // Half before the workers start, half while they run.
  for (int i = 0; i < kEvents / 2; ++i) {
    auto id = queue_->Enqueue("hello", "", std::to_string(i));
    ASSERT_TRUE(id.ok()) << id.status();
    ids.insert(*id);
  }
  queue_->Start();
  for (int i = kEvents / 2; i < kEvents; ++i) {
    auto id = queue_->Enqueue("hello", "", std::to_string(i));
    ASSERT_TRUE(id.ok()) << id.status();
    ids.insert(*id);
  }
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(kEvents));
  ASSERT_TRUE(recorder_->WaitForFinals(kEvents));
  queue_->Stop();

  const auto counts = recorder_->counts();
  EXPECT_EQ(counts.size(), static_cast<std::size_t>(kEvents));
  for (const auto& [id, count] : counts) {
    EXPECT_EQ(count, 1) << id;
    EXPECT_EQ(ids.count(id), 1u) << id;
  }
  std::set<std::string> payloads;
  for (const auto& run : recorder_->runs()) payloads.insert(run.payload);
  EXPECT_EQ(payloads.size(), static_cast<std::size_t>(kEvents));
  EXPECT_EQ(recorder_->outcomes().size(), static_cast<std::size_t>(kEvents));
  EXPECT_EQ(queue_->Pending(), 0u);
}

TEST_F(EventQueueTest, MaxPendingRefusesMore) {
  ASSERT_NO_FATAL_FAILURE(Publish());
  EventQueueOptions options;
  options.max_pending = 3;
  ASSERT_NO_FATAL_FAILURE(MakeQueue(options));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(queue_->Enqueue("hello", "", "{}").ok());
  auto refused = queue_->Enqueue("hello", "", "{}");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.status().aws_type(), "TooManyRequestsException");
  EXPECT_EQ(queue_->Pending(), 3u);

  // Once they are done there is room again.
  queue_->Start();
  ASSERT_TRUE(recorder_->WaitForFinals(3));
  EXPECT_TRUE(queue_->Enqueue("hello", "", "{}").ok());
}

TEST_F(EventQueueTest, RefusedEnqueuesStoreNothing) {
  ASSERT_NO_FATAL_FAILURE(Publish());
  ASSERT_NO_FATAL_FAILURE(MakeQueue());

  auto missing = queue_->Enqueue("nope", "", "{}");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().aws_type(), "ResourceNotFoundException");

  auto no_version = queue_->Enqueue("hello", "2", "{}");
  ASSERT_FALSE(no_version.ok());
  EXPECT_EQ(no_version.status().code(), StatusCode::kNotFound);

  auto bad_qualifier = queue_->Enqueue("hello", "prod", "{}");
  ASSERT_FALSE(bad_qualifier.ok());
  EXPECT_EQ(bad_qualifier.status().code(), StatusCode::kInvalidArgument);

  auto too_large = queue_->Enqueue("hello", "", std::string(kMaxEventPayloadBytes + 1, 'x'));
  ASSERT_FALSE(too_large.ok());
  EXPECT_EQ(too_large.status().code(), StatusCode::kPayloadTooLarge);
  EXPECT_EQ(too_large.status().aws_type(), "RequestEntityTooLargeException");

  EXPECT_EQ(queue_->Pending(), 0u);
  EXPECT_TRUE(Stored().empty());

  // The limit itself is accepted, bytes intact (the payload is a blob: any bytes).
  std::string largest(kMaxEventPayloadBytes, 'y');
  largest[0] = '\0';
  largest[1] = '\xff';
  ASSERT_TRUE(queue_->Enqueue("hello", "", largest).ok());
  queue_->Start();
  ASSERT_TRUE(recorder_->WaitForFinals(1));
  ASSERT_EQ(recorder_->runs().size(), 1u);
  EXPECT_EQ(recorder_->runs()[0].payload, largest);
}

TEST_F(EventQueueTest, TheQualifierIsResolvedWhenTheAttemptStarts) {
  ASSERT_NO_FATAL_FAILURE(Publish());
  ASSERT_NO_FATAL_FAILURE(MakeQueue());
  auto pinned = queue_->Enqueue("hello", "1", "pinned");
  auto latest = queue_->Enqueue("hello", "", "latest");
  ASSERT_TRUE(pinned.ok() && latest.ok());
  ASSERT_NO_FATAL_FAILURE(Publish());  // version 2 before anything runs
  queue_->Start();
  ASSERT_TRUE(recorder_->WaitForFinals(2));
  queue_->Stop();
  std::map<std::string, std::string> version_of;
  for (const auto& run : recorder_->runs()) version_of[run.payload] = run.function_version;
  EXPECT_EQ(version_of["pinned"], "1");
  EXPECT_EQ(version_of["latest"], "2");
}

TEST_F(EventQueueTest, AnAcceptedEventSurvivesAReopenAndAStoppedQueueRunsItWhenStarted) {
  ASSERT_NO_FATAL_FAILURE(Publish());
  ASSERT_NO_FATAL_FAILURE(MakeQueue());
  queue_->Start();
  queue_->Stop();
  auto id = queue_->Enqueue("hello", "", "kept");
  ASSERT_TRUE(id.ok());
  queue_.reset();
  ASSERT_NO_FATAL_FAILURE(OpenStore());
  ASSERT_NO_FATAL_FAILURE(MakeQueue());
  EXPECT_EQ(queue_->Pending(), 1u);
  queue_->Start();
  queue_->Start();  // already running: nothing more
  ASSERT_TRUE(recorder_->WaitForFinals(1));
  queue_->Stop();
  ASSERT_EQ(recorder_->runs().size(), 1u);
  EXPECT_EQ(recorder_->runs()[0].request_id, *id);
}

}  // namespace
}  // namespace moatless::runtime
