#include <signal.h>
#include <time.h>

#include <boost/json.hpp>
#include <charconv>
#include <iostream>

#include "cli/commands.h"
#include "cli/iam_client.h"
#include "core/clock.h"
#include "core/config.h"
#include "identity/sigv4.h"
#include "observe/log_files.h"

namespace moatless::cli {
namespace {

namespace json = boost::json;

volatile sig_atomic_t g_interrupted = 0;

void OnInterrupt(int) { g_interrupted = 1; }

// "10m", "2h", "3d", "90s" before now, or an RFC 3339 time; as RFC 3339.
core::Result<std::string> AbsoluteTime(const std::string& text, core::WallTime now) {
  if (text.empty()) return std::string();
  if (text.size() > 1 && text.back() == 'd') {
    std::int64_t days = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size() - 1, days);
    if (ec == std::errc() && end == text.data() + text.size() - 1 && days >= 0) {
      return core::FormatRfc3339(now - std::chrono::hours(24 * days));
    }
  }
  if (auto ms = core::ParseDurationMs(text); ms.ok()) {
    return core::FormatRfc3339(now - std::chrono::milliseconds(*ms));
  }
  auto when = observe::ParseRfc3339(text);
  if (!when.ok()) {
    return core::InvalidArgumentError(
        "expected a duration before now (30s, 10m, 2h, 7d) or an "
        "RFC 3339 time, got \"" +
        text + "\"");
  }
  return core::FormatRfc3339(*when);
}

std::string Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

// TIME REQUEST_ID MESSAGE; START, END and REPORT lines (which name the request) as Lambda
// prints them, after the time.
void PrintHuman(const json::object& e) {
  const std::string type = Str(e, "type");
  std::string message = Str(e, "message");
  if (message.empty()) message = Str(e, "msg");
  if (type == "start" || type == "end" || type == "report") {
    std::cout << Str(e, "time") << " " << message << "\n";
  } else {
    const std::string id = Str(e, "request_id");
    std::cout << Str(e, "time") << " " << (id.empty() ? "-" : id) << " " << message << "\n";
  }
}

void Sleep(std::chrono::milliseconds total) {
  // In short steps, so that an interrupt ends the wait.
  for (auto left = total; left.count() > 0 && !g_interrupted;
       left -= std::chrono::milliseconds(100)) {
    const auto step = std::min(left, std::chrono::milliseconds(100));
    timespec ts{0, static_cast<long>(step.count()) * 1'000'000};
    ::nanosleep(&ts, nullptr);
  }
}

}  // namespace

LogsCommand::LogsCommand(CLI::App& parent) {
  command_ = parent.add_subcommand(
      "logs",
      "Print a function's logs (its output, START, END and REPORT lines), filtered by the server; "
      "needs moatless:GetFunctionLogs on arn:aws:lambda:REGION:ACCOUNT:function:NAME");
  command_->add_option("function", name_, "function name")->required();
  command_->add_flag("--follow,-f", follow_, "keep printing new lines until interrupted");
  command_->add_option("--since", since_,
                       "only lines from this time on: a duration before now (30s, 10m, 2h, 7d) "
                       "or an RFC 3339 time");
  command_->add_option("--until", until_, "only lines before this time (same forms as --since)");
  command_->add_option("--request-id", request_id_, "only the lines of this invocation");
  command_->add_option("--filter", filter_, "only lines whose message contains this text");
  command_->add_flag("--json", json_, "print each line as the JSON object the server keeps");
  command_->add_option("--interval", interval_seconds_, "seconds between polls with --follow")
      ->check(CLI::Range(0.1, 3600.0));
  AddConnectionFlags(command_, connection_);
}

int LogsCommand::Run(const std::map<std::string, std::string>& environment) {
  auto settings = ResolveClientSettings(connection_.endpoint, connection_.profile,
                                        connection_.region, environment);
  if (!settings.ok()) {
    std::cerr << "moatless logs: " << settings.status().message() << "\n";
    return kExitUsage;
  }
  const core::WallTime now = core::RealClock().Now();
  auto since = AbsoluteTime(since_, now);
  auto until = AbsoluteTime(until_, now);
  for (const auto* t : {&since, &until}) {
    if (!t->ok()) {
      std::cerr << "moatless logs: " << t->status().message() << "\n";
      return kExitUsage;
    }
  }
  std::string base = "/moatless/v1/functions/" + identity::UriEncode(name_, false) + "/logs";
  std::vector<std::pair<std::string, std::string>> params;
  if (!since->empty()) params.emplace_back("since", *since);
  if (!until->empty()) params.emplace_back("until", *until);
  if (!request_id_.empty()) params.emplace_back("requestId", request_id_);
  if (!filter_.empty()) params.emplace_back("filter", filter_);

  if (follow_) {
    struct sigaction action {};
    action.sa_handler = OnInterrupt;
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
  }
  std::string cursor;
  bool gap_reported = false;
  while (!g_interrupted) {
    std::string target = base;
    char separator = '?';
    auto add = [&](const std::string& key, const std::string& value) {
      target += separator + key + "=" + identity::UriEncode(value, false);
      separator = '&';
    };
    for (const auto& [k, v] : params) add(k, v);
    if (!cursor.empty()) add("cursor", cursor);
    const std::optional<json::object> page =
        CallRestJson(*settings, http::Verb::get, target, "", "", "logs", std::chrono::minutes(1));
    if (!page) return kExitRuntime;
    const json::object* o = &*page;
    const json::value* events = o != nullptr ? o->if_contains("Events") : nullptr;
    if (events == nullptr || !events->is_array()) {
      std::cerr << "moatless logs: the server answered something that is not a log page\n";
      return kExitRuntime;
    }
    for (const json::value& e : events->as_array()) {
      if (!e.is_object()) continue;
      if (json_) {
        std::cout << json::serialize(e) << "\n";
      } else {
        PrintHuman(e.as_object());
      }
    }
    std::cout << std::flush;
    const json::value* gap = o->if_contains("Gap");
    if (gap != nullptr && gap->is_bool() && gap->as_bool() && !gap_reported) {
      std::cerr << "moatless logs: some lines were rotated away before they could be read\n";
      gap_reported = true;
    }
    cursor = Str(*o, "NextCursor");
    const json::value* more = o->if_contains("More");
    if (more != nullptr && more->is_bool() && more->as_bool()) continue;
    if (!follow_) break;
    Sleep(std::chrono::milliseconds(static_cast<std::int64_t>(interval_seconds_ * 1000)));
  }
  return kExitOk;
}

}  // namespace moatless::cli
