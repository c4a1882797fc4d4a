// Clock: the only source of time in moatless. The composition root passes a RealClock; tests
// pass a FakeClock and advance it by hand, so nothing time-dependent needs a real wait.
// Both implementations are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

namespace moatless::core {

using WallTime = std::chrono::system_clock::time_point;
using MonoTime = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time: for timestamps, expiry of credentials, signatures.
  virtual WallTime Now() const = 0;
  // Monotonic time: for measuring durations and timeouts.
  virtual MonoTime MonotonicNow() const = 0;
};

class RealClock final : public Clock {
 public:
  WallTime Now() const override { return std::chrono::system_clock::now(); }
  MonoTime MonotonicNow() const override { return std::chrono::steady_clock::now(); }
};

// Starts at a fixed wall time (2026-01-01T00:00:00Z unless given) and moves only when told.
class FakeClock final : public Clock {
 public:
  FakeClock();
  explicit FakeClock(WallTime start);
  WallTime Now() const override;
  MonoTime MonotonicNow() const override;
  // Moves both wall and monotonic time forward.
  void Advance(std::chrono::nanoseconds by);
  // Sets wall time (monotonic time is untouched, as with a real clock adjustment).
  void SetWallTime(WallTime t);

 private:
  std::atomic<std::int64_t> wall_ns_;
  std::atomic<std::int64_t> mono_ns_{0};
};

// RFC 3339 / ISO 8601 UTC with milliseconds: 2026-01-01T00:00:00.000Z
std::string FormatRfc3339(WallTime t);

}  // namespace moatless::core
