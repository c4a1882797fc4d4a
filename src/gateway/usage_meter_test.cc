#include "gateway/usage_meter.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "store/database.h"
#include "store/schema.h"
#include "store/sqlite/sqlite_database.h"

namespace moatless::gateway {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using Refusal = Admission::Refusal;

// A UTC time from its calendar parts.
core::WallTime At(int y, unsigned m, unsigned d, int h = 0, int min = 0, int s = 0) {
  using namespace std::chrono;
  return sys_days(year(y) / month(m) / day(d)) + hours(h) + minutes(min) + seconds(s);
}

PlanLimits Rate(double rate, std::uint32_t burst) {
  return PlanLimits{.rate = rate, .burst = burst};
}

PlanLimits Quota(std::uint64_t limit, QuotaPeriod period = QuotaPeriod::kDay,
                 std::uint64_t offset = 0) {
  return PlanLimits{.quota_limit = limit, .period = period, .quota_offset = offset};
}

class UsageMeterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moatless-gateway-usage-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = store::OpenSqlite(dir_ + "/moatless.db",
                                {.clock = &clock_, .migrations = store::PlatformMigrations()});
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    meter_ = std::make_unique<UsageMeter>(*db_, clock_);
  }
  void TearDown() override {
    meter_.reset();
    if (db_) db_->Close().IgnoreError();
    std::system(("rm -rf " + dir_).c_str());
  }

  Admission MustAdmit(const PlanLimits& limits, std::string_view scope = "",
                      std::string_view key = "key-a", std::string_view plan = "basic") {
    auto admission = meter_->Admit(key, plan, limits, scope);
    EXPECT_TRUE(admission.ok()) << admission.status();
    return admission.ok() ? *admission : Admission{.admitted = false};
  }

  // How many of n requests pass.
  int Passes(int n, const PlanLimits& limits, std::string_view scope = "",
             std::string_view key = "key-a", std::string_view plan = "basic") {
    int passed = 0;
    for (int i = 0; i < n; ++i) passed += MustAdmit(limits, scope, key, plan).admitted ? 1 : 0;
    return passed;
  }

  void Exec(std::string_view sql, store::Params params = {}) {
    ASSERT_TRUE(
        db_->Write([&](store::Transaction& tx) { return tx.Exec(sql, params).status(); }).ok());
  }

  std::optional<std::pair<std::int64_t, std::int64_t>> StoredRow(std::string_view key,
                                                                 std::string_view plan) {
    std::optional<std::pair<std::int64_t, std::int64_t>> out;
    EXPECT_TRUE(db_->Read([&](store::Transaction& tx) -> core::Status {
                     ASSIGN_OR_RETURN(auto row,
                                      tx.QueryOptional("SELECT period_start_ms, used FROM "
                                                       "gateway_quota_usage WHERE key_id = ? AND "
                                                       "plan = ?",
                                                       {key, plan}));
                     if (row) out.emplace(*row->GetInt("period_start_ms"), *row->GetInt("used"));
                     return core::Status::Ok();
                   })
                    .ok());
    return out;
  }

  std::string dir_;
  core::FakeClock clock_;  // 2026-01-01T00:00:00Z, a Thursday
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<UsageMeter> meter_;
};

TEST(PeriodTest, UtcCalendarPeriods) {
  ASSERT_EQ(At(2026, 3, 16), core::WallTime(seconds(1773619200)));  // anchors At()
  const core::WallTime tue = At(2026, 3, 10, 22, 15, 7);
  EXPECT_EQ(PeriodStart(QuotaPeriod::kDay, tue), At(2026, 3, 10));
  EXPECT_EQ(NextPeriodStart(QuotaPeriod::kDay, tue), At(2026, 3, 11));
  EXPECT_EQ(PeriodStart(QuotaPeriod::kWeek, tue), At(2026, 3, 9));  // Monday
  EXPECT_EQ(NextPeriodStart(QuotaPeriod::kWeek, tue), At(2026, 3, 16));
  EXPECT_EQ(PeriodStart(QuotaPeriod::kMonth, tue), At(2026, 3, 1));
  EXPECT_EQ(NextPeriodStart(QuotaPeriod::kMonth, tue), At(2026, 4, 1));
  // Sunday is the last day of a week; Monday 00:00 the first instant of the next.
  EXPECT_EQ(PeriodStart(QuotaPeriod::kWeek, At(2026, 3, 15, 23, 59, 59)), At(2026, 3, 9));
  EXPECT_EQ(PeriodStart(QuotaPeriod::kWeek, At(2026, 3, 16)), At(2026, 3, 16));
  // A week across a month and a year end.
  EXPECT_EQ(PeriodStart(QuotaPeriod::kWeek, At(2027, 1, 1)), At(2026, 12, 28));
  EXPECT_EQ(NextPeriodStart(QuotaPeriod::kMonth, At(2026, 12, 31, 23, 59, 59)), At(2027, 1, 1));
  EXPECT_EQ(NextPeriodStart(QuotaPeriod::kMonth, At(2028, 1, 31)), At(2028, 2, 1));
  EXPECT_EQ(NextPeriodStart(QuotaPeriod::kMonth, At(2028, 2, 29, 12)), At(2028, 3, 1));
  EXPECT_EQ(PeriodStart(QuotaPeriod::kDay, At(2026, 3, 10) - milliseconds(1)), At(2026, 3, 9));
}

TEST_F(UsageMeterTest, BurstThenThrottleThenRecovery) {
  const PlanLimits limits = Rate(2, 3);
  for (int i = 0; i < 3; ++i) {
    Admission a = MustAdmit(limits);
    EXPECT_TRUE(a.admitted) << i;
    EXPECT_FALSE(a.quota_remaining.has_value());
  }
  Admission refused = MustAdmit(limits);
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.refusal, Refusal::kRate);
  EXPECT_EQ(refused.retry_after, seconds(1));

  clock_.Advance(milliseconds(500));  // one token at 2/s
  EXPECT_EQ(Passes(3, limits), 1);
  clock_.Advance(milliseconds(250));  // half a token
  Admission half = MustAdmit(limits);
  EXPECT_FALSE(half.admitted);
  EXPECT_EQ(half.retry_after, seconds(1));
  clock_.Advance(milliseconds(750));  // 2 tokens
  EXPECT_EQ(Passes(3, limits), 2);
  // Refilling stops at the burst.
  clock_.Advance(seconds(60));
  EXPECT_EQ(Passes(5, limits), 3);
}

TEST_F(UsageMeterTest, DefaultBurstAndSlowRates) {
  EXPECT_EQ(Passes(10, Rate(2.5, 0), "", "key-a"), 3);  // ceil(2.5)
  EXPECT_EQ(Passes(10, Rate(4, 0), "", "key-b"), 4);
  EXPECT_EQ(Passes(10, Rate(0.2, 0), "", "key-c"), 1);  // at least 1
  Admission slow = MustAdmit(Rate(0.2, 0), "", "key-c");
  EXPECT_FALSE(slow.admitted);
  EXPECT_EQ(slow.retry_after, seconds(5));
  clock_.Advance(milliseconds(4500));
  EXPECT_EQ(MustAdmit(Rate(0.2, 0), "", "key-c").retry_after, seconds(1));  // 0.5 s, rounded up
  clock_.Advance(milliseconds(500));
  EXPECT_TRUE(MustAdmit(Rate(0.2, 0), "", "key-c").admitted);
  // No rate: no limit.
  EXPECT_EQ(Passes(1000, PlanLimits{}, "", "key-d"), 1000);
}

TEST_F(UsageMeterTest, ScopesPlansAndKeysHaveSeparateBuckets) {
  const PlanLimits limits = Rate(1, 1);
  EXPECT_EQ(Passes(2, limits, "GET /a"), 1);
  EXPECT_EQ(Passes(2, limits, "GET /b"), 1);
  EXPECT_EQ(Passes(2, limits, ""), 1);
  EXPECT_EQ(Passes(2, limits, "GET /a", "key-b"), 1);
  EXPECT_EQ(Passes(2, limits, "GET /a", "key-a", "other-plan"), 1);
  // Parts that would run together if joined naively stay apart.
  EXPECT_EQ(Passes(1, limits, "", "key-a1", "x"), 1);
  EXPECT_EQ(Passes(1, limits, "", "key-a", "1x"), 1);
}

TEST_F(UsageMeterTest, RefusedRequestsConsumeNothing) {
  // Rate refusals take no token...
  const PlanLimits rate = Rate(1, 1);
  EXPECT_TRUE(MustAdmit(rate).admitted);
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(milliseconds(300));
    EXPECT_FALSE(MustAdmit(rate).admitted);
  }
  clock_.Advance(milliseconds(100));  // 1 s after the first request
  EXPECT_TRUE(MustAdmit(rate).admitted);

  // ...and no quota.
  PlanLimits both = Rate(1, 1);
  both.quota_limit = 2;
  EXPECT_EQ(MustAdmit(both, "", "key-b").quota_remaining, 1u);
  for (int i = 0; i < 3; ++i) {
    Admission a = MustAdmit(both, "", "key-b");
    EXPECT_EQ(a.refusal, Refusal::kRate);
    EXPECT_EQ(a.quota_remaining, 1u);
  }
  clock_.Advance(seconds(1));
  EXPECT_EQ(MustAdmit(both, "", "key-b").quota_remaining, 0u);

  // Quota refusals take no token: of a burst of 2, one is left after the quota refusals, and
  // the next day (wall time only: the bucket does not refill) it passes.
  PlanLimits burst2 = Rate(1, 2);
  burst2.quota_limit = 1;
  EXPECT_TRUE(MustAdmit(burst2, "", "key-c").admitted);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(MustAdmit(burst2, "", "key-c").refusal, Refusal::kQuota);
  clock_.SetWallTime(At(2026, 1, 2));
  EXPECT_TRUE(MustAdmit(burst2, "", "key-c").admitted);
  clock_.SetWallTime(At(2026, 1, 3));
  EXPECT_EQ(MustAdmit(burst2, "", "key-c").refusal, Refusal::kRate);
}

TEST_F(UsageMeterTest, DailyQuotaRefusesUntilUtcMidnight) {
  clock_.SetWallTime(At(2026, 3, 10, 22));
  const PlanLimits limits = Quota(5);
  for (std::uint64_t i = 0; i < 5; ++i) {
    Admission a = MustAdmit(limits);
    EXPECT_TRUE(a.admitted);
    EXPECT_EQ(a.quota_remaining, 4 - i);
    EXPECT_EQ(a.quota_resets_at, At(2026, 3, 11));
  }
  Admission refused = MustAdmit(limits);
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.refusal, Refusal::kQuota);
  EXPECT_EQ(refused.retry_after, hours(2));
  EXPECT_EQ(refused.quota_remaining, 0u);
  EXPECT_EQ(refused.quota_resets_at, At(2026, 3, 11));

  clock_.SetWallTime(At(2026, 3, 10, 23, 59, 59) + milliseconds(500));
  EXPECT_EQ(MustAdmit(limits).retry_after, seconds(1));
  clock_.SetWallTime(At(2026, 3, 11));
  Admission next_day = MustAdmit(limits);
  EXPECT_TRUE(next_day.admitted);
  EXPECT_EQ(next_day.quota_remaining, 4u);
  EXPECT_EQ(next_day.quota_resets_at, At(2026, 3, 12));
  // The quota is per key and plan, whatever the scope.
  EXPECT_EQ(Passes(10, limits, "GET /x"), 4);
  EXPECT_EQ(Passes(10, limits, "", "key-a", "other"), 5);
}

TEST_F(UsageMeterTest, WeeklyQuotaRollsOnMonday) {
  clock_.SetWallTime(At(2026, 3, 11, 9));  // Wednesday
  const PlanLimits limits = Quota(3, QuotaPeriod::kWeek);
  EXPECT_EQ(Passes(5, limits), 3);
  clock_.SetWallTime(At(2026, 3, 15, 12));  // Sunday, same week
  Admission sunday = MustAdmit(limits);
  EXPECT_FALSE(sunday.admitted);
  EXPECT_EQ(sunday.retry_after, hours(12));
  EXPECT_EQ(sunday.quota_resets_at, At(2026, 3, 16));
  clock_.SetWallTime(At(2026, 3, 16));  // Monday
  Admission monday = MustAdmit(limits);
  EXPECT_TRUE(monday.admitted);
  EXPECT_EQ(monday.quota_resets_at, At(2026, 3, 23));
}

TEST_F(UsageMeterTest, MonthlyQuotaRollsOnTheFirst) {
  clock_.SetWallTime(At(2026, 1, 31, 23));
  const PlanLimits limits = Quota(2, QuotaPeriod::kMonth);
  EXPECT_EQ(Passes(2, limits), 2);
  Admission refused = MustAdmit(limits);
  EXPECT_EQ(refused.refusal, Refusal::kQuota);
  EXPECT_EQ(refused.retry_after, hours(1));
  EXPECT_EQ(refused.quota_resets_at, At(2026, 2, 1));
  clock_.SetWallTime(At(2026, 2, 1));
  EXPECT_EQ(Passes(3, limits), 2);
  clock_.SetWallTime(At(2026, 2, 28, 23, 30));  // still February (28 days in 2026)
  EXPECT_EQ(MustAdmit(limits).retry_after, minutes(30));
  clock_.SetWallTime(At(2026, 3, 1));
  EXPECT_EQ(Passes(3, limits), 2);

  // December to January.
  clock_.SetWallTime(At(2026, 12, 31, 23, 59));
  EXPECT_EQ(Passes(3, limits), 2);
  Admission december = MustAdmit(limits);
  EXPECT_EQ(december.retry_after, minutes(1));
  EXPECT_EQ(december.quota_resets_at, At(2027, 1, 1));
  clock_.SetWallTime(At(2027, 1, 1));
  Admission january = MustAdmit(limits);
  EXPECT_TRUE(january.admitted);
  EXPECT_EQ(january.quota_remaining, 1u);
  EXPECT_EQ(january.quota_resets_at, At(2027, 2, 1));
}

TEST_F(UsageMeterTest, OffsetReducesOnlyTheFirstPeriod) {
  clock_.SetWallTime(At(2026, 3, 10, 8));
  const PlanLimits limits = Quota(5, QuotaPeriod::kDay, 2);
  Admission first = MustAdmit(limits);
  EXPECT_EQ(first.quota_remaining, 2u);
  EXPECT_EQ(Passes(5, limits), 2);
  // The first period survives a restart: the row that marks it holds the offset.
  ASSERT_TRUE(meter_->Flush().ok());
  EXPECT_EQ(StoredRow("key-a", "basic"),
            std::make_pair(At(2026, 3, 10).time_since_epoch() / milliseconds(1), std::int64_t{5}));
  meter_ = std::make_unique<UsageMeter>(*db_, clock_);
  EXPECT_EQ(Passes(1, limits), 0);

  clock_.SetWallTime(At(2026, 3, 11, 8));
  EXPECT_EQ(Passes(10, limits), 5);
  // Nor does a restart in a later period bring the offset back.
  ASSERT_TRUE(meter_->Flush().ok());
  meter_ = std::make_unique<UsageMeter>(*db_, clock_);
  clock_.SetWallTime(At(2026, 3, 12, 8));
  EXPECT_EQ(Passes(10, limits), 5);

  // An offset at or above the limit leaves nothing in the first period.
  EXPECT_EQ(Passes(3, Quota(5, QuotaPeriod::kDay, 9), "", "key-b"), 0);
  EXPECT_EQ(MustAdmit(Quota(5, QuotaPeriod::kDay, 9), "", "key-b").quota_remaining, 0u);
}

TEST_F(UsageMeterTest, OffsetIsRememberedEvenIfTheFirstPeriodEndsBeforeAFlush) {
  clock_.SetWallTime(At(2026, 3, 10, 8));
  const PlanLimits limits = Quota(5, QuotaPeriod::kDay, 2);
  EXPECT_EQ(Passes(1, limits), 1);
  clock_.SetWallTime(At(2026, 3, 11, 8));
  EXPECT_EQ(Passes(1, limits), 1);
  ASSERT_TRUE(meter_->Flush().ok());
  meter_ = std::make_unique<UsageMeter>(*db_, clock_);
  EXPECT_EQ(Passes(10, limits), 4);
}

TEST_F(UsageMeterTest, FlushedCountsSurviveARestart) {
  clock_.SetWallTime(At(2026, 3, 10, 8));
  const PlanLimits limits = Quota(5);
  EXPECT_EQ(Passes(3, limits), 3);
  ASSERT_TRUE(meter_->Flush().ok());
  ASSERT_TRUE(meter_->Flush().ok());  // nothing new: changes nothing
  meter_ = std::make_unique<UsageMeter>(*db_, clock_);
  Admission a = MustAdmit(limits);
  EXPECT_TRUE(a.admitted);
  EXPECT_EQ(a.quota_remaining, 1u);  // 2 were left
  EXPECT_EQ(Passes(5, limits), 1);

  // A row of an earlier period counts nothing in the current one.
  ASSERT_TRUE(meter_->Flush().ok());
  clock_.SetWallTime(At(2026, 3, 11, 8));
  meter_ = std::make_unique<UsageMeter>(*db_, clock_);
  EXPECT_EQ(MustAdmit(limits).quota_remaining, 4u);
}

TEST_F(UsageMeterTest, CountsSinceTheLastFlushAreLostWithoutOne) {
  // The accepted trade-off: a crash loses at most one flush interval of counting.
  clock_.SetWallTime(At(2026, 3, 10, 8));
  const PlanLimits limits = Quota(5);
  EXPECT_EQ(Passes(3, limits), 3);
  meter_ = std::make_unique<UsageMeter>(*db_, clock_);
  EXPECT_EQ(MustAdmit(limits).quota_remaining, 4u);
  EXPECT_FALSE(StoredRow("key-a", "basic").has_value());
}

TEST_F(UsageMeterTest, MetersSharingAStoreAddUpTheirCounts) {
  clock_.SetWallTime(At(2026, 3, 10, 8));
  const PlanLimits limits = Quota(5);
  UsageMeter other(*db_, clock_);
  EXPECT_EQ(Passes(2, limits), 2);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(other.Admit("key-a", "basic", limits)->admitted);
  ASSERT_TRUE(meter_->Flush().ok());
  ASSERT_TRUE(other.Flush().ok());
  EXPECT_EQ(StoredRow("key-a", "basic")->second, 5);
  // The other meter read the sum back with its flush.
  EXPECT_EQ(other.Admit("key-a", "basic", limits)->refusal, Refusal::kQuota);
}

TEST_F(UsageMeterTest, ForgetDropsBucketsAndUnflushedCounts) {
  clock_.SetWallTime(At(2026, 3, 10, 8));
  PlanLimits limits = Rate(1, 1);
  limits.quota_limit = 5;
  EXPECT_EQ(Passes(2, limits, "GET /a"), 1);
  EXPECT_EQ(Passes(2, limits, "GET /a", "key-b"), 1);
  meter_->Forget("key-a");
  Admission a = MustAdmit(limits, "GET /a");
  EXPECT_TRUE(a.admitted);  // a full bucket again
  EXPECT_EQ(a.quota_remaining, 4u);
  EXPECT_FALSE(MustAdmit(limits, "GET /a", "key-b").admitted);  // others keep theirs

  // Flushed counts are in the store and come back.
  ASSERT_TRUE(meter_->Flush().ok());
  meter_->Forget("key-a");
  clock_.Advance(seconds(1));
  EXPECT_EQ(MustAdmit(limits, "GET /a").quota_remaining, 3u);
}

TEST_F(UsageMeterTest, IdleStateIsDroppedAndReloaded) {
  clock_.SetWallTime(At(2026, 3, 10, 8));
  const PlanLimits limits = Quota(5);
  for (std::string_view key : {"key-a", "key-b", "key-dirty"}) {
    EXPECT_EQ(Passes(1, limits, "", key), 1);
  }
  ASSERT_TRUE(meter_->Flush().ok());
  EXPECT_EQ(Passes(1, limits, "", "key-dirty"), 1);  // counted, not flushed
  // Another node used up the quotas of key-a and key-b.
  Exec("UPDATE gateway_quota_usage SET used = 5 WHERE key_id IN ('key-a', 'key-b')");
  // While it holds an entry, the meter goes by its own count...
  clock_.Advance(minutes(5));
  EXPECT_EQ(MustAdmit(limits, "", "key-b").quota_remaining, 3u);
  // ...until the entry has been idle (and flushed) for 10 minutes: then it is dropped, and the
  // next request reads the store again.
  clock_.Advance(minutes(6));
  Admission reloaded = MustAdmit(limits, "", "key-a");
  EXPECT_FALSE(reloaded.admitted);
  EXPECT_EQ(reloaded.quota_remaining, 0u);
  // An entry with counts not yet flushed is kept, however long idle (the store says 1, not 2).
  EXPECT_EQ(MustAdmit(limits, "", "key-dirty").quota_remaining, 2u);
}

TEST_F(UsageMeterTest, InvalidRatesAreRefused) {
  for (double rate : {-1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    auto r = meter_->Admit("key-a", "basic", Rate(rate, 1));
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
  }
}

TEST_F(UsageMeterTest, ConcurrentAdmitsCountEveryRequestOnce) {
  clock_.SetWallTime(At(2026, 3, 10, 8));
  const PlanLimits limits = Quota(1000);
  std::atomic<int> admitted{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        // Every thread starts on the same key no one has loaded yet.
        auto a = meter_->Admit("key-shared", "basic", limits, "scope-" + std::to_string(t % 2));
        if (!a.ok()) {
          ++errors;
        } else if (a->admitted) {
          ++admitted;
        }
        if (i % 50 == 0 && !meter_->Flush().ok()) ++errors;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(admitted.load(), 1000);
  ASSERT_TRUE(meter_->Flush().ok());
  EXPECT_EQ(StoredRow("key-shared", "basic")->second, 1000);
}

}  // namespace
}  // namespace moatless::gateway
