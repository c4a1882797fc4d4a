// ConcurrencyGate: how many invocations run at once — at most `platform_limit` in all, and at most
// a function's reserved concurrency for that function — with a bounded queue of invocations
// waiting for a slot. An invocation that finds the queue full, or waits longer than `max_wait`,
// is throttled: ResourceExhausted with AWS type TooManyRequestsException (HTTP 429), which clients
// retry. A function whose reserved concurrency is 0 is always throttled.
//
// Slots are handed out in arrival order among the invocations that can use them. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "core/status.h"

namespace moatless::runtime {

struct ConcurrencyLimits {
  std::size_t platform_limit = 64;  // invocations running at once, all functions together
  std::size_t max_queued = 64;      // invocations waiting for a slot, all functions together
  std::chrono::milliseconds max_wait{3000};
};

class ConcurrencyGate {
 public:
  explicit ConcurrencyGate(ConcurrencyLimits limits);
  ConcurrencyGate(const ConcurrencyGate&) = delete;
  ConcurrencyGate& operator=(const ConcurrencyGate&) = delete;

  // A slot held for one invocation; released when destroyed.
  class Slot {
   public:
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&&) = delete;
    ~Slot();

   private:
    friend class ConcurrencyGate;
    Slot(ConcurrencyGate* gate, std::string function)
        : gate_(gate), function_(std::move(function)) {}
    ConcurrencyGate* gate_;
    std::string function_;
  };

  // Waits for a slot for one invocation of `function` (whose reserved concurrency is `reserved`,
  // nullopt: none), or throttles.
  core::Result<Slot> Acquire(const std::string& function, std::optional<std::uint32_t> reserved);

  std::size_t running() const;
  std::size_t queued() const;
  std::size_t running(const std::string& function) const;
  // Invocations running now, by function (functions with none are absent).
  std::map<std::string, std::size_t> RunningByFunction() const;

 private:
  struct Waiter {
    std::string function;
    std::optional<std::uint32_t> reserved;
  };
  bool CanRun(const std::string& function, std::optional<std::uint32_t> reserved) const;
  bool FirstEligible(const std::list<Waiter>::iterator& me) const;
  void Release(const std::string& function);

  const ConcurrencyLimits limits_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::size_t running_ = 0;
  std::map<std::string, std::size_t> running_by_function_;
  std::list<Waiter> queue_;
};

}  // namespace moatless::runtime
