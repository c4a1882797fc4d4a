#include "secrets/rotation.h"

#include <algorithm>
#include <array>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "core/ids.h"

namespace moatless::secrets {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;

constexpr std::int64_t kHourMs = 60 * 60 * 1000;
constexpr std::int64_t kDayMs = 24 * kHourMs;
constexpr std::array<std::string_view, 4> kSteps = {kCreateSecret, kSetSecret, kTestSecret,
                                                    kFinishSecret};

core::Status InvalidSchedule(std::string message) {
  return core::InvalidArgumentError(std::move(message)).WithAwsType("InvalidParameterException");
}

std::int64_t NowMs(const core::Clock& clock) {
  return std::chrono::duration_cast<milliseconds>(clock.Now().time_since_epoch()).count();
}

// One field of a cron expression: the values it allows.
struct CronField {
  std::set<int> values;
  bool any = false;  // `*` or `?`
};

std::string Upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

// A number or (for months and weekdays) a name; -1 if neither.
int CronValue(std::string_view token, const std::vector<std::string_view>& names, int first) {
  if (!token.empty() && std::all_of(token.begin(), token.end(), ::isdigit) && token.size() <= 4) {
    return std::stoi(std::string(token));
  }
  const std::string upper = Upper(token);
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (upper == names[i]) return first + static_cast<int>(i);
  }
  return -1;
}

core::Result<CronField> ParseCronField(std::string_view text, int min, int max,
                                       std::string_view what,
                                       const std::vector<std::string_view>& names = {}) {
  CronField field;
  if (text == "*" || text == "?") {
    field.any = true;
    for (int v = min; v <= max; ++v) field.values.insert(v);
    return field;
  }
  std::stringstream parts{std::string(text)};
  std::string part;
  while (std::getline(parts, part, ',')) {
    int step = 1;
    const std::size_t slash = part.find('/');
    std::string range = part.substr(0, slash);
    if (slash != std::string::npos) {
      const std::string step_text = part.substr(slash + 1);
      if (step_text.empty() || step_text.size() > 4 ||
          !std::all_of(step_text.begin(), step_text.end(), ::isdigit) ||
          (step = std::stoi(step_text)) < 1) {
        return InvalidSchedule("cron " + std::string(what) + ": '" + part + "' has a bad step");
      }
    }
    int low = min;
    int high = max;
    if (range != "*") {
      const std::size_t dash = range.find('-');
      low = CronValue(range.substr(0, dash), names, min);
      high = dash == std::string::npos ? (slash == std::string::npos ? low : max)
                                       : CronValue(range.substr(dash + 1), names, min);
    }
    if (low < min || high > max || low > high) {
      return InvalidSchedule("cron " + std::string(what) + ": '" + part +
                             "' is not a value, list, range or step between " +
                             std::to_string(min) + " and " + std::to_string(max) +
                             " (L, W and # are not supported)");
    }
    for (int v = low; v <= high; v += step) field.values.insert(v);
  }
  if (field.values.empty()) return InvalidSchedule("cron " + std::string(what) + " is empty");
  return field;
}

struct Cron {
  CronField minutes, hours, day_of_month, month, day_of_week, year;
};

core::Result<Cron> ParseCron(std::string_view body) {
  std::vector<std::string> fields;
  std::stringstream in{std::string(body)};
  std::string field;
  while (in >> field) fields.push_back(field);
  if (fields.size() != 6) {
    return InvalidSchedule(
        "a cron() schedule has six fields: minutes hours day-of-month month day-of-week year");
  }
  Cron cron;
  ASSIGN_OR_RETURN(cron.minutes, ParseCronField(fields[0], 0, 59, "minutes"));
  ASSIGN_OR_RETURN(cron.hours, ParseCronField(fields[1], 0, 23, "hours"));
  ASSIGN_OR_RETURN(cron.day_of_month, ParseCronField(fields[2], 1, 31, "day-of-month"));
  ASSIGN_OR_RETURN(cron.month, ParseCronField(fields[3], 1, 12, "month",
                                              {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                               "AUG", "SEP", "OCT", "NOV", "DEC"}));
  ASSIGN_OR_RETURN(cron.day_of_week,
                   ParseCronField(fields[4], 1, 7, "day-of-week",
                                  {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}));
  ASSIGN_OR_RETURN(cron.year, ParseCronField(fields[5], 1970, 2199, "year"));
  if (!cron.day_of_month.any && !cron.day_of_week.any) {
    return InvalidSchedule(
        "a cron() schedule cannot give both day-of-month and day-of-week: "
        "use ? for one of them");
  }
  return cron;
}

// The first minute strictly after `after_ms` that `cron` matches (UTC); 0 if none within 5 years.
std::int64_t NextCron(const Cron& cron, std::int64_t after_ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> after{milliseconds(after_ms)};
  const sys_days first_day = floor<days>(after);
  for (sys_days day = first_day; day < first_day + days(5 * 366); day += days(1)) {
    const year_month_day ymd(day);
    const int dow = static_cast<int>(weekday(day).c_encoding()) + 1;  // SUN = 1
    if (!cron.year.values.contains(static_cast<int>(ymd.year())) ||
        !cron.month.values.contains(static_cast<int>(static_cast<unsigned>(ymd.month()))) ||
        !cron.day_of_month.values.contains(static_cast<int>(static_cast<unsigned>(ymd.day()))) ||
        !cron.day_of_week.values.contains(dow)) {
      continue;
    }
    for (int hour : cron.hours.values) {
      for (int minute : cron.minutes.values) {
        const auto at = day + std::chrono::hours(hour) + std::chrono::minutes(minute);
        const std::int64_t ms = duration_cast<milliseconds>(at.time_since_epoch()).count();
        if (ms > after_ms) return ms;
      }
    }
  }
  return 0;
}

// "rate(N days)" / "rate(N hours)" -> milliseconds; 0 if `body` is not a rate.
core::Result<std::int64_t> ParseRate(std::string_view body) {
  std::stringstream in{std::string(body)};
  std::int64_t n = 0;
  std::string unit;
  std::string rest;
  if (!(in >> n) || !(in >> unit) || (in >> rest) || n < 1 || n > 1000) {
    return InvalidSchedule("a rate() schedule is rate(N days) or rate(N hours), N from 1 to 1000");
  }
  if (unit == "day" || unit == "days") return n * kDayMs;
  if (unit == "hour" || unit == "hours") return n * kHourMs;
  return InvalidSchedule("a rate() schedule counts days or hours, not '" + unit + "'");
}

}  // namespace

core::Result<std::int64_t> NextRotation(const RotationRules& rules, std::int64_t after_ms) {
  if (rules.automatically_after_days != 0 && !rules.schedule_expression.empty()) {
    return InvalidSchedule("Give AutomaticallyAfterDays or ScheduleExpression, not both.");
  }
  if (!rules.duration.empty()) {
    const std::string& d = rules.duration;
    if (d.size() < 2 || d.back() != 'h' || !std::all_of(d.begin(), d.end() - 1, ::isdigit) ||
        std::stoi(d.substr(0, d.size() - 1)) < 1 || std::stoi(d.substr(0, d.size() - 1)) > 24) {
      return InvalidSchedule("Duration is a rotation window of 1h to 24h, like \"3h\".");
    }
  }
  if (rules.automatically_after_days != 0) {
    if (rules.automatically_after_days < 1 || rules.automatically_after_days > 1000) {
      return InvalidSchedule("AutomaticallyAfterDays must be between 1 and 1000.");
    }
    return after_ms + rules.automatically_after_days * kDayMs;
  }
  const std::string& expression = rules.schedule_expression;
  if (expression.empty()) return std::int64_t{0};
  if (expression.starts_with("rate(") && expression.ends_with(")")) {
    ASSIGN_OR_RETURN(std::int64_t every,
                     ParseRate(std::string_view(expression).substr(5, expression.size() - 6)));
    if (every < 4 * kHourMs) {
      return InvalidSchedule("A rotation schedule may not fire more often than every 4 hours.");
    }
    return after_ms + every;
  }
  if (expression.starts_with("cron(") && expression.ends_with(")")) {
    ASSIGN_OR_RETURN(Cron cron,
                     ParseCron(std::string_view(expression).substr(5, expression.size() - 6)));
    const std::int64_t first = NextCron(cron, after_ms);
    if (first == 0) return InvalidSchedule("This cron() schedule never fires in the next 5 years.");
    // Fires more often than every 4 hours anywhere in the next two days?
    std::int64_t previous = first;
    for (int i = 0; i < 24; ++i) {
      const std::int64_t next = NextCron(cron, previous);
      if (next == 0 || next - first > 2 * kDayMs) break;
      if (next - previous < 4 * kHourMs) {
        return InvalidSchedule("A rotation schedule may not fire more often than every 4 hours.");
      }
      previous = next;
    }
    return first;
  }
  return InvalidSchedule("ScheduleExpression must be rate(...) or cron(...).");
}

core::Status ValidateRotationRules(const RotationRules& rules) {
  return NextRotation(rules, 0).status();
}

Rotator::Rotator(SecretStore& store, const core::Clock& clock, core::Random& random,
                 RunRotationStep run_step, Options options)
    : store_(store),
      clock_(clock),
      random_(random),
      run_step_(std::move(run_step)),
      options_(std::move(options)) {}

core::Result<std::string> Rotator::Rotate(const std::string& arn,
                                          const std::optional<std::string>& rotation_arn,
                                          const std::optional<RotationRules>& rules,
                                          bool rotate_immediately, std::string token) {
  ASSIGN_OR_RETURN(SecretInfo secret, store_.Describe(arn));
  if (secret.deleted()) {
    return core::FailedPreconditionError(
               "You can't perform this operation on the secret because it was marked for "
               "deletion.")
        .WithAwsType("InvalidRequestException");
  }
  const std::string function = rotation_arn.value_or(secret.rotation_lambda_arn);
  if (function.empty()) {
    return core::FailedPreconditionError(
               "No Lambda rotation function ARN is associated with this secret: give "
               "RotationLambdaARN.")
        .WithAwsType("InvalidRequestException");
  }
  const RotationRules effective = rules.value_or(secret.rotation_rules);
  const std::int64_t now = NowMs(clock_);
  ASSIGN_OR_RETURN(std::int64_t next, NextRotation(effective, now));
  if (rotate_immediately && token.empty()) token = core::NewUuid(random_);
  if (!rotate_immediately) token.clear();
  RETURN_IF_ERROR(store_.ConfigureRotation(secret.arn, rotation_arn, rules, next, token));
  return token;
}

core::Result<std::string> Rotator::Cancel(const std::string& arn) {
  ASSIGN_OR_RETURN(SecretInfo secret, store_.Describe(arn));
  return store_.DisableRotation(secret.arn);
}

core::Result<std::size_t> Rotator::RunDue(const std::function<bool()>& stopping) {
  ASSIGN_OR_RETURN(std::vector<std::string> due, store_.DueRotations(100));
  std::size_t steps = 0;
  for (const std::string& arn : due) {
    if (stopping && stopping()) break;
    auto secret = store_.Describe(arn);
    if (!secret.ok() || secret->deleted()) continue;
    if (secret->rotation.token.empty()) {
      // A schedule fired, or a failed rotation is retried: a new rotation, with a new token.
      if (core::Status s = store_.BeginRotation(arn, core::NewUuid(random_)); !s.ok()) continue;
    }
    auto ran = Continue(arn, stopping);
    if (ran.ok()) ++steps;
  }
  return steps;
}

core::Status Rotator::Continue(const std::string& arn, const std::function<bool()>& stopping) {
  ASSIGN_OR_RETURN(SecretInfo secret, store_.Describe(arn));
  RotationState state = secret.rotation;
  if (state.token.empty()) return core::Status::Ok();
  auto first = std::find(kSteps.begin(), kSteps.end(), state.next_step);
  if (first == kSteps.end()) first = kSteps.begin();
  for (auto step = first; step != kSteps.end(); ++step) {
    if (stopping && stopping()) return core::AbortedError("stopping");
    const RotationEvent event{
        .secret_arn = secret.arn, .token = state.token, .step = std::string(*step)};
    core::Status outcome = run_step_(secret.rotation_lambda_arn, event);
    if (outcome.ok() && *step == kFinishSecret) {
      // The function says it finished: the new version must now be the current one.
      auto after = store_.Describe(arn);
      const std::string* current = after.ok() ? after->VersionWith(kCurrent) : nullptr;
      if (current == nullptr || *current != state.token) {
        outcome = core::FailedPreconditionError(
            "finishSecret returned, but AWSCURRENT is not on version " + state.token);
      }
    }
    if (options_.on_step) options_.on_step(event, outcome);
    if (!outcome.ok()) {
      state.attempts += 1;
      state.last_error = outcome.message();
      state.last_error_step = event.step;
      state.last_error_ms = NowMs(clock_);
      // Retry with a new token after a back-off, unless the attempts are used up: then wait for
      // the next scheduled rotation.
      std::int64_t retry_at = 0;
      if (state.attempts < kMaxRotationAttempts) {
        const std::int64_t delay = std::min<std::int64_t>(
            options_.retry_delay.count() << std::min<std::int64_t>(state.attempts - 1, 20),
            kHourMs);
        retry_at = state.last_error_ms + delay;
      }
      auto next = NextRotation(secret.rotation_rules, state.last_error_ms);
      RETURN_IF_ERROR(store_.EndRotation(arn, false, state, next.ok() ? *next : 0, retry_at));
      if (options_.on_failure) options_.on_failure(secret.arn, event.step, outcome);
      return outcome;
    }
    if (step + 1 != kSteps.end()) {
      state.next_step = std::string(*(step + 1));
      RETURN_IF_ERROR(store_.SaveRotationState(arn, state));
    }
  }
  auto next = NextRotation(secret.rotation_rules, NowMs(clock_));
  return store_.EndRotation(arn, true, RotationState(), next.ok() ? *next : 0, 0);
}

}  // namespace moatless::secrets
