#include "core/clock.h"

#include <cstdio>
#include <ctime>

namespace moatless::core {
namespace {
constexpr std::int64_t kDefaultFakeEpochSeconds = 1767225600;  // 2026-01-01T00:00:00Z
}  // namespace

FakeClock::FakeClock() : FakeClock(WallTime(std::chrono::seconds(kDefaultFakeEpochSeconds))) {}

FakeClock::FakeClock(WallTime start)
    : wall_ns_(
          std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count()) {}

WallTime FakeClock::Now() const {
  return WallTime(
      std::chrono::duration_cast<WallTime::duration>(std::chrono::nanoseconds(wall_ns_.load())));
}

MonoTime FakeClock::MonotonicNow() const {
  return MonoTime(
      std::chrono::duration_cast<MonoTime::duration>(std::chrono::nanoseconds(mono_ns_.load())));
}

void FakeClock::Advance(std::chrono::nanoseconds by) {
  wall_ns_ += by.count();
  mono_ns_ += by.count();
}

void FakeClock::SetWallTime(WallTime t) {
  wall_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::string FormatRfc3339(WallTime t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  int millis = static_cast<int>(ms.count() % 1000);
  std::time_t whole = secs;
  if (millis < 0) {  // before 1970
    millis += 1000;
    whole -= 1;
  }
  std::tm tm{};
  gmtime_r(&whole, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

}  // namespace moatless::core
