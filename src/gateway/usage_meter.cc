#include "gateway/usage_meter.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace moatless::gateway {
namespace {

// Token counts are doubles: a bucket that refilled to 0.9999999999 through rounding holds one.
constexpr double kTokenEpsilon = 1e-9;

std::int64_t ToMs(core::WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::int64_t ToStored(std::uint64_t n) {
  return static_cast<std::int64_t>(std::min<std::uint64_t>(
      n, static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())));
}

// Map keys made of length-prefixed parts, so no choice of ids, plans or scopes can make two
// different tuples meet.
void AppendPart(std::string& out, std::string_view part) {
  out += std::to_string(part.size());
  out += ':';
  out += part;
}

std::string QuotaKey(std::string_view key_id, std::string_view plan) {
  std::string out;
  AppendPart(out, key_id);
  AppendPart(out, plan);
  return out;
}

std::string BucketKey(std::string_view key_id, std::string_view plan, std::string_view scope) {
  std::string out = QuotaKey(key_id, plan);
  AppendPart(out, scope);
  return out;
}

std::chrono::seconds AtLeastOneSecond(std::chrono::seconds s) {
  return std::max(s, std::chrono::seconds(1));
}

// The stored count is this process's plus any other node's; the offset goes in only with the row
// that marks the (key, plan)'s first period. A row of a later period than ours (a node whose
// clock is ahead) is kept as it is.
constexpr std::string_view kUpsert =
    "INSERT INTO gateway_quota_usage (key_id, plan, period_start_ms, used) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key_id, plan) DO UPDATE SET "
    "used = CASE "
    "WHEN gateway_quota_usage.period_start_ms = excluded.period_start_ms "
    "THEN gateway_quota_usage.used + ? "
    "WHEN gateway_quota_usage.period_start_ms < excluded.period_start_ms THEN ? "
    "ELSE gateway_quota_usage.used END, "
    "period_start_ms = CASE "
    "WHEN gateway_quota_usage.period_start_ms < excluded.period_start_ms "
    "THEN excluded.period_start_ms "
    "ELSE gateway_quota_usage.period_start_ms END "
    "RETURNING used, period_start_ms";

}  // namespace

core::WallTime PeriodStart(QuotaPeriod period, core::WallTime t) {
  using namespace std::chrono;
  const sys_days day = floor<days>(t);
  switch (period) {
    case QuotaPeriod::kDay:
      return day;
    case QuotaPeriod::kWeek:
      return day - (weekday(day) - Monday);
    case QuotaPeriod::kMonth: {
      const year_month_day ymd(day);
      return sys_days(ymd.year() / ymd.month() / 1);
    }
  }
  return day;
}

core::WallTime NextPeriodStart(QuotaPeriod period, core::WallTime t) {
  using namespace std::chrono;
  const sys_days start = floor<days>(PeriodStart(period, t));
  switch (period) {
    case QuotaPeriod::kDay:
      return start + days(1);
    case QuotaPeriod::kWeek:
      return start + days(7);
    case QuotaPeriod::kMonth: {
      const year_month_day ymd(start);
      return sys_days((year_month(ymd.year(), ymd.month()) + months(1)) / 1);
    }
  }
  return start + days(1);
}

UsageMeter::UsageMeter(store::Database& db, const core::Clock& clock) : db_(db), clock_(clock) {}

core::Result<UsageMeter::Quota> UsageMeter::LoadQuota(std::string_view key_id,
                                                      std::string_view plan,
                                                      const PlanLimits& limits,
                                                      std::int64_t period_start_ms) {
  std::optional<store::Row> row;
  core::Status status = db_.Read([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(row, tx.QueryOptional("SELECT period_start_ms, used FROM gateway_quota_usage "
                                           "WHERE key_id = ? AND plan = ?",
                                           {key_id, plan}));
    return core::Status::Ok();
  });
  if (!status.ok()) return status.Annotate("loading quota use");
  Quota quota{.key_id = std::string(key_id),
              .plan = std::string(plan),
              .period_start_ms = period_start_ms,
              .last_used = clock_.MonotonicNow()};
  if (!row) {
    // The first period this (key, plan) is ever counted in: the offset is used up already, and
    // the row the next Flush creates remembers that this period was the first.
    quota.used = limits.quota_offset;
    quota.offset = limits.quota_offset;
    quota.dirty = true;
    return quota;
  }
  ASSIGN_OR_RETURN(const std::int64_t stored_period, row->GetInt("period_start_ms"));
  ASSIGN_OR_RETURN(const std::int64_t stored_used, row->GetInt("used"));
  if (stored_period >= period_start_ms) {
    quota.period_start_ms = stored_period;
    quota.used = static_cast<std::uint64_t>(std::max<std::int64_t>(stored_used, 0));
  }  // else: a past period; this one starts at 0
  return quota;
}

core::Result<Admission> UsageMeter::Admit(std::string_view key_id, std::string_view plan,
                                          const PlanLimits& limits, std::string_view scope) {
  if (!std::isfinite(limits.rate) || limits.rate < 0) {
    return core::InvalidArgumentError(
        "a usage plan's rate is a finite number of requests per second, at least 0");
  }
  const core::MonoTime mono = clock_.MonotonicNow();
  const core::WallTime wall = clock_.Now();
  const bool has_rate = limits.rate > 0;
  const double burst =
      limits.burst > 0 ? limits.burst : std::max(1.0, std::ceil(limits.rate - kTokenEpsilon));
  const bool has_quota = limits.quota_limit.has_value();
  const std::int64_t period_start_ms = ToMs(PeriodStart(limits.period, wall));

  Admission admission;
  std::unique_lock lock(mu_);
  MaybeSweepLocked(mono);

  Quota* quota = nullptr;
  if (has_quota) {
    const std::string quota_key = QuotaKey(key_id, plan);
    auto it = quotas_.find(quota_key);
    if (it == quotas_.end()) {
      // Only the first request of a (key, plan) in this process reads the store, and not under
      // the lock, so other keys' requests go on meanwhile.
      lock.unlock();
      core::Result<Quota> loaded = LoadQuota(key_id, plan, limits, period_start_ms);
      if (!loaded.ok()) return loaded.status();
      lock.lock();
      // Another request of the same key may have loaded it meanwhile: its entry counts.
      it = quotas_.try_emplace(quota_key, std::move(loaded).value()).first;
    }
    quota = &it->second;
    quota->last_used = mono;
    if (period_start_ms > quota->period_start_ms) {
      quota->period_start_ms = period_start_ms;
      quota->used = 0;
      quota->unflushed = 0;
      quota->offset = 0;  // the row, if still to be written, is written without it
    }
    admission.quota_resets_at = NextPeriodStart(limits.period, wall);
  }

  Bucket* bucket = nullptr;
  if (has_rate) {
    bucket = &buckets_
                  .try_emplace(
                      BucketKey(key_id, plan, scope),
                      Bucket{.tokens = burst, .last = mono, .rate = limits.rate, .burst = burst})
                  .first->second;
    const double elapsed =
        std::max(0.0, std::chrono::duration<double>(mono - bucket->last).count());
    // min() also trims a bucket whose plan was given a smaller burst.
    bucket->tokens = std::min(burst, bucket->tokens + elapsed * limits.rate);
    bucket->last = mono;
    bucket->rate = limits.rate;
    bucket->burst = burst;
  }

  const std::uint64_t limit = has_quota ? *limits.quota_limit : 0;
  const auto remaining = [&] { return quota->used >= limit ? 0 : limit - quota->used; };
  if (quota != nullptr && quota->used >= limit) {
    // Reported before the rate: it is the longer wait, and the one the client can act on.
    admission.admitted = false;
    admission.refusal = Admission::Refusal::kQuota;
    admission.retry_after =
        AtLeastOneSecond(std::chrono::ceil<std::chrono::seconds>(admission.quota_resets_at - wall));
  } else if (bucket != nullptr && bucket->tokens < 1 - kTokenEpsilon) {
    admission.admitted = false;
    admission.refusal = Admission::Refusal::kRate;
    const double wait = (1 - bucket->tokens) / limits.rate;
    admission.retry_after = AtLeastOneSecond(
        std::chrono::seconds(static_cast<std::int64_t>(std::ceil(wait - kTokenEpsilon))));
  } else {
    if (bucket != nullptr) bucket->tokens = std::max(0.0, bucket->tokens - 1);
    if (quota != nullptr) {
      ++quota->used;
      ++quota->unflushed;
      quota->dirty = true;
    }
  }
  if (quota != nullptr) admission.quota_remaining = remaining();
  return admission;
}

core::Status UsageMeter::Flush() {
  struct Pending {
    std::string map_key;
    std::string key_id;
    std::string plan;
    std::int64_t period_start_ms;
    std::uint64_t unflushed;
    std::uint64_t offset;
    // What the store holds after the upsert.
    std::int64_t stored_used = 0;
    std::int64_t stored_period_ms = 0;
  };
  std::lock_guard flush_lock(flush_mu_);
  std::vector<Pending> pending;
  {
    std::lock_guard lock(mu_);
    MaybeSweepLocked(clock_.MonotonicNow());
    for (auto& [map_key, q] : quotas_) {
      if (!q.dirty) continue;
      pending.push_back(Pending{.map_key = map_key,
                                .key_id = q.key_id,
                                .plan = q.plan,
                                .period_start_ms = q.period_start_ms,
                                .unflushed = q.unflushed,
                                .offset = q.offset});
      q.dirty = false;
      q.unflushed = 0;
      q.offset = 0;
    }
  }
  if (pending.empty()) return core::Status::Ok();

  core::Status status = db_.Write([&](store::Transaction& tx) -> core::Status {
    for (Pending& p : pending) {
      const std::int64_t delta = ToStored(p.unflushed);
      ASSIGN_OR_RETURN(const store::Row row,
                       tx.QueryOne(kUpsert, {p.key_id, p.plan, p.period_start_ms,
                                             ToStored(p.unflushed + p.offset), delta, delta}));
      ASSIGN_OR_RETURN(p.stored_used, row.GetInt("used"));
      ASSIGN_OR_RETURN(p.stored_period_ms, row.GetInt("period_start_ms"));
    }
    return core::Status::Ok();
  });

  std::lock_guard lock(mu_);
  for (const Pending& p : pending) {
    auto it = quotas_.find(p.map_key);
    if (it == quotas_.end()) continue;  // forgotten meanwhile
    Quota& q = it->second;
    if (!status.ok()) {
      // Put the counts back for the next Flush, unless their period is over (then only the row
      // itself is still owed, for the first-period rule).
      if (q.period_start_ms == p.period_start_ms) {
        q.unflushed += p.unflushed;
        q.offset += p.offset;
      }
      q.dirty = true;
      continue;
    }
    // Take in what other nodes counted; requests admitted since the snapshot come on top.
    if (p.stored_period_ms >= q.period_start_ms) {
      q.period_start_ms = p.stored_period_ms;
      q.used = static_cast<std::uint64_t>(std::max<std::int64_t>(p.stored_used, 0)) + q.unflushed;
    }
  }
  if (!status.ok()) return status.Annotate("flushing quota use");
  return core::Status::Ok();
}

void UsageMeter::Forget(std::string_view key_id) {
  std::lock_guard flush_lock(flush_mu_);
  std::string prefix;
  AppendPart(prefix, key_id);
  std::lock_guard lock(mu_);
  std::erase_if(quotas_, [&](const auto& entry) { return entry.second.key_id == key_id; });
  std::erase_if(buckets_, [&](const auto& entry) { return entry.first.starts_with(prefix); });
}

void UsageMeter::MaybeSweepLocked(core::MonoTime now) {
  if (now - last_sweep_ < kSweepEvery) return;
  last_sweep_ = now;
  std::erase_if(buckets_, [&](const auto& entry) {
    const Bucket& b = entry.second;
    if (now - b.last < kIdleAfter) return false;
    // A full bucket is what a new one would be: dropping it changes nothing.
    const double idle = std::chrono::duration<double>(now - b.last).count();
    return b.tokens + idle * b.rate >= b.burst - kTokenEpsilon;
  });
  std::erase_if(quotas_, [&](const auto& entry) {
    const Quota& q = entry.second;
    return !q.dirty && now - q.last_used >= kIdleAfter;
  });
}

}  // namespace moatless::gateway
