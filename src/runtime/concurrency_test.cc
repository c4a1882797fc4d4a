#include "runtime/concurrency.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

namespace moatless::runtime {
namespace {

using namespace std::chrono_literals;

bool IsThrottle(const core::Status& status) {
  return status.code() == core::StatusCode::kResourceExhausted &&
         status.aws_type() == "TooManyRequestsException";
}

TEST(ConcurrencyGateTest, PlatformLimitThrottlesOnceTheQueueIsFull) {
  ConcurrencyGate gate({.platform_limit = 2, .max_queued = 0, .max_wait = 10s});
  auto a = gate.Acquire("f", std::nullopt);
  auto b = gate.Acquire("g", std::nullopt);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(gate.running(), 2u);
  auto c = gate.Acquire("h", std::nullopt);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(IsThrottle(c.status())) << c.status().ToString();
}

TEST(ConcurrencyGateTest, SlotsAreReleasedWhenDropped) {
  ConcurrencyGate gate({.platform_limit = 1, .max_queued = 0});
  for (int i = 0; i < 3; ++i) {
    auto slot = gate.Acquire("f", std::nullopt);
    ASSERT_TRUE(slot.ok()) << i;
  }
  EXPECT_EQ(gate.running(), 0u);
  EXPECT_EQ(gate.running("f"), 0u);
}

TEST(ConcurrencyGateTest, ReservedConcurrencyCapsOneFunctionOnly) {
  ConcurrencyGate gate({.platform_limit = 10, .max_queued = 0});
  auto first = gate.Acquire("capped", 1);
  ASSERT_TRUE(first.ok());
  auto second = gate.Acquire("capped", 1);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(IsThrottle(second.status()));
  EXPECT_TRUE(gate.Acquire("other", std::nullopt).ok());
}

TEST(ConcurrencyGateTest, ZeroReservedConcurrencyTurnsTheFunctionOff) {
  ConcurrencyGate gate({});
  auto slot = gate.Acquire("off", 0);
  ASSERT_FALSE(slot.ok());
  EXPECT_TRUE(IsThrottle(slot.status()));
  EXPECT_EQ(gate.running(), 0u);
}

TEST(ConcurrencyGateTest, AWaiterGetsTheSlotWhenItIsReleased) {
  ConcurrencyGate gate({.platform_limit = 1, .max_queued = 1, .max_wait = 60s});
  std::optional<ConcurrencyGate::Slot> held;
  {
    auto slot = gate.Acquire("f", std::nullopt);
    ASSERT_TRUE(slot.ok());
    held.emplace(std::move(*slot));
  }
  auto waiter =
      std::async(std::launch::async, [&] { return gate.Acquire("g", std::nullopt).ok(); });
  while (gate.queued() == 0) std::this_thread::yield();
  // The queue (one place) is taken: a third caller is throttled at once.
  auto third = gate.Acquire("h", std::nullopt);
  EXPECT_TRUE(!third.ok() && IsThrottle(third.status()));
  held.reset();
  EXPECT_TRUE(waiter.get());
}

TEST(ConcurrencyGateTest, AWaiterIsThrottledAfterMaxWait) {
  ConcurrencyGate gate({.platform_limit = 1, .max_queued = 4, .max_wait = 20ms});
  auto held = gate.Acquire("f", std::nullopt);
  ASSERT_TRUE(held.ok());
  auto late = gate.Acquire("g", std::nullopt);
  ASSERT_FALSE(late.ok());
  EXPECT_TRUE(IsThrottle(late.status()));
  EXPECT_EQ(gate.queued(), 0u);
}

TEST(ConcurrencyGateTest, AFunctionAtItsCapDoesNotHoldUpOthersBehindIt) {
  ConcurrencyGate gate({.platform_limit = 2, .max_queued = 4, .max_wait = 60s});
  auto capped = gate.Acquire("capped", 1);
  auto busy = gate.Acquire("other", std::nullopt);
  ASSERT_TRUE(capped.ok() && busy.ok());
  // Waits for its own cap, not for the platform.
  auto capped_waiter =
      std::async(std::launch::async, [&] { return gate.Acquire("capped", 1).ok(); });
  while (gate.queued() < 1) std::this_thread::yield();
  auto other_waiter =
      std::async(std::launch::async, [&] { return gate.Acquire("third", std::nullopt).ok(); });
  while (gate.queued() < 2) std::this_thread::yield();
  { auto released = std::move(*busy); }  // a platform slot frees; "capped" still may not run
  EXPECT_TRUE(other_waiter.get());
  { auto released = std::move(*capped); }
  EXPECT_TRUE(capped_waiter.get());
}

TEST(ConcurrencyGateTest, NeverMoreThanTheLimitRunAtOnce) {
  ConcurrencyGate gate({.platform_limit = 3, .max_queued = 64, .max_wait = 60s});
  std::atomic<int> now{0}, most{0}, done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 50; ++j) {
        auto slot = gate.Acquire(i % 2 ? "odd" : "even", std::nullopt);
        if (!slot.ok()) continue;
        const int running = ++now;
        int seen = most.load();
        while (running > seen && !most.compare_exchange_weak(seen, running)) {
        }
        std::this_thread::yield();
        --now;
        ++done;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), 3);
  EXPECT_EQ(done.load(), 16 * 50);
  EXPECT_EQ(gate.running(), 0u);
}

}  // namespace
}  // namespace moatless::runtime
