#include "runtime/concurrency.h"

namespace moatless::runtime {
namespace {

core::Status Throttled(const std::string& function, std::string_view why) {
  return core::ResourceExhaustedError("Rate Exceeded: " + std::string(why) + " (function " +
                                      function + ")")
      .WithAwsType("TooManyRequestsException");
}

}  // namespace

ConcurrencyGate::ConcurrencyGate(ConcurrencyLimits limits) : limits_(limits) {}

ConcurrencyGate::Slot::Slot(Slot&& other) noexcept
    : gate_(std::exchange(other.gate_, nullptr)), function_(std::move(other.function_)) {}

ConcurrencyGate::Slot::~Slot() {
  if (gate_ != nullptr) gate_->Release(function_);
}

bool ConcurrencyGate::CanRun(const std::string& function,
                             std::optional<std::uint32_t> reserved) const {
  if (running_ >= limits_.platform_limit) return false;
  if (!reserved) return true;
  const auto it = running_by_function_.find(function);
  return (it == running_by_function_.end() ? 0 : it->second) < *reserved;
}

// Whether no waiter ahead of `me` could take the slot that is free now (arrival order among those
// that can run; a function at its own cap does not hold up the others).
bool ConcurrencyGate::FirstEligible(const std::list<Waiter>::iterator& me) const {
  for (auto it = queue_.begin(); it != me; ++it) {
    if (CanRun(it->function, it->reserved)) return false;
  }
  return true;
}

core::Result<ConcurrencyGate::Slot> ConcurrencyGate::Acquire(
    const std::string& function, std::optional<std::uint32_t> reserved) {
  if (reserved && *reserved == 0) {
    return Throttled(function, "the function's reserved concurrency is 0");
  }
  std::unique_lock lock(mu_);
  if (queue_.empty() && CanRun(function, reserved)) {
    ++running_;
    ++running_by_function_[function];
    return Slot(this, function);
  }
  if (queue_.size() >= limits_.max_queued) {
    return Throttled(function, "too many invocations are running and waiting");
  }
  const auto me = queue_.insert(queue_.end(), Waiter{function, reserved});
  const bool got = changed_.wait_for(
      lock, limits_.max_wait, [&] { return CanRun(function, reserved) && FirstEligible(me); });
  queue_.erase(me);
  if (!got) {
    changed_.notify_all();  // those behind may be eligible now
    return Throttled(function, "no invocation slot became free in time");
  }
  ++running_;
  ++running_by_function_[function];
  lock.unlock();
  changed_.notify_all();  // with more than one slot free, the next waiter may go too
  return Slot(this, function);
}

void ConcurrencyGate::Release(const std::string& function) {
  {
    std::lock_guard lock(mu_);
    --running_;
    if (auto it = running_by_function_.find(function); it != running_by_function_.end()) {
      if (--it->second == 0) running_by_function_.erase(it);
    }
  }
  changed_.notify_all();
}

std::size_t ConcurrencyGate::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

std::map<std::string, std::size_t> ConcurrencyGate::RunningByFunction() const {
  std::lock_guard lock(mu_);
  return running_by_function_;
}

std::size_t ConcurrencyGate::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

std::size_t ConcurrencyGate::running(const std::string& function) const {
  std::lock_guard lock(mu_);
  const auto it = running_by_function_.find(function);
  return it == running_by_function_.end() ? 0 : it->second;
}

}  // namespace moatless::runtime
