#include "core/clock.h"

#include <gtest/gtest.h>

namespace moatless::core {
namespace {

using namespace std::chrono_literals;

TEST(FakeClockTest, MovesOnlyWhenAdvanced) {
  FakeClock clock;
  const WallTime t0 = clock.Now();
  const MonoTime m0 = clock.MonotonicNow();
  EXPECT_EQ(clock.Now(), t0);
  clock.Advance(1500ms);
  EXPECT_EQ(clock.Now() - t0, 1500ms);
  EXPECT_EQ(clock.MonotonicNow() - m0, 1500ms);
}

TEST(FakeClockTest, SetWallTimeLeavesMonotonicAlone) {
  FakeClock clock;
  const MonoTime m0 = clock.MonotonicNow();
  clock.SetWallTime(WallTime(std::chrono::seconds(0)));
  EXPECT_EQ(FormatRfc3339(clock.Now()), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(clock.MonotonicNow(), m0);
}

TEST(ClockTest, FormatsRfc3339) {
  FakeClock clock;
  EXPECT_EQ(FormatRfc3339(clock.Now()), "2026-01-01T00:00:00.000Z");
  clock.Advance(61'250ms);
  EXPECT_EQ(FormatRfc3339(clock.Now()), "2026-01-01T00:01:01.250Z");
  EXPECT_EQ(FormatRfc3339(WallTime(-1ms)), "1969-12-31T23:59:59.999Z");
}

TEST(RealClockTest, MonotonicNeverGoesBack) {
  RealClock clock;
  const MonoTime a = clock.MonotonicNow();
  const MonoTime b = clock.MonotonicNow();
  EXPECT_LE(a, b);
}

}  // namespace
}  // namespace moatless::core
