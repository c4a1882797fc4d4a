#include "app/log_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <filesystem>
#include <set>

#include "core/filesystem.h"
#include "observe/utf8.h"

namespace moatless::app {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxOpen = 256;
// How often retention looks for logs nobody writes to any more (rotation prunes the others).
constexpr std::chrono::hours kSweepInterval(1);

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

json::string_view Js(std::string_view s) { return json::string_view(s.data(), s.size()); }

std::string Line(const json::object& o) { return json::serialize(o) + "\n"; }

// The value after "\t<key>: " in a REPORT line, up to the next tab ("" if absent).
std::string ReportField(std::string_view report, std::string_view key) {
  const std::string needle = "\t" + std::string(key) + ": ";
  const std::size_t at = report.find(needle);
  if (at == std::string_view::npos) return "";
  const std::size_t start = at + needle.size();
  return std::string(report.substr(start, report.find('\t', start) - start));
}

core::Status MakePrivateDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return core::InternalError("create " + dir + ": " + ec.message());
  if (::chmod(dir.c_str(), 0700) != 0) return core::ErrnoStatus("chmod " + dir, errno);
  return core::Status::Ok();
}

}  // namespace

core::Status ValidateLogName(std::string_view name) {
  if (name.empty() || name.size() > 64 || !std::all_of(name.begin(), name.end(), IsNameChar)) {
    return core::InvalidArgumentError("function name must be 1-64 of [A-Za-z0-9-_]");
  }
  return core::Status::Ok();
}

std::string FunctionLogLines(const runtime::FunctionConfig& function,
                             const runtime::InvokeResult& result, core::WallTime now) {
  const std::string time = core::FormatRfc3339(now);
  // Split the collected log: [init output] START, output, END, REPORT.
  const std::string start = "START RequestId: " + result.request_id;
  const std::string end = "END RequestId: " + result.request_id;
  std::vector<std::string_view> lines;
  std::string_view text = result.log;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    lines.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  if (!lines.empty() && lines.back().starts_with("REPORT RequestId: ")) lines.pop_back();
  bool has_end = !lines.empty() && lines.back() == end;
  if (has_end) lines.pop_back();
  std::string out;
  bool started = false;
  const auto add = [&](std::string_view type, std::string_view stream, std::string_view message,
                       json::object extra = {}) {
    json::object o;
    o.reserve(7 + extra.size());
    o.emplace("time", Js(time));
    o.emplace("function", Js(function.name));
    o.emplace("version", Js(result.version));
    o.emplace("request_id", Js(result.request_id));
    o.emplace("type", Js(type));
    o.emplace("stream", Js(stream));
    o.emplace("message", Js(observe::SanitizeUtf8(message)));
    for (auto& [k, v] : extra) o.emplace(k, std::move(v));
    out += Line(o);
  };
  for (std::string_view line : lines) {
    if (!started && line.starts_with(start + " ")) {
      started = true;
      add("start", "platform", line);
    } else {
      add("output", "output", line);
    }
  }
  if (has_end) add("end", "platform", end);
  if (!result.report.empty()) {
    json::object fields;
    fields.emplace("duration_ms", static_cast<double>(result.duration.count()) / 1000.0);
    const auto billed = (result.duration.count() + 999) / 1000;
    fields.emplace("billed_duration_ms", static_cast<std::int64_t>(std::max<long>(billed, 1)));
    fields.emplace("memory_size_mb", static_cast<std::int64_t>(function.memory_mb));
    fields.emplace("max_memory_used_mb", static_cast<std::int64_t>(result.peak_memory_bytes >> 20));
    if (result.cold_start) {
      fields.emplace("init_duration_ms",
                     static_cast<double>(result.init_duration.count()) / 1000.0);
    }
    if (std::string s = ReportField(result.report, "Status"); !s.empty())
      fields.emplace("status", s);
    if (std::string e = ReportField(result.report, "Error Type"); !e.empty()) {
      fields.emplace("error_type", e);
    }
    add("report", "platform", result.report, std::move(fields));
  }
  return out;
}

// ---- FunctionLogs ----

core::Result<std::unique_ptr<FunctionLogs>> FunctionLogs::Open(std::string dir,
                                                               observe::RotationPolicy policy,
                                                               const core::Clock& clock) {
  RETURN_IF_ERROR(MakePrivateDir(dir));
  std::unique_ptr<FunctionLogs> logs(new FunctionLogs(std::move(dir), policy, clock));
  logs->ApplyRetention();  // logs nobody wrote to while the daemon was down
  return logs;
}

std::size_t FunctionLogs::ApplyRetention() {
  if (policy_.max_age.count() <= 0) return 0;
  std::lock_guard lock(mu_);
  last_sweep_ = clock_.MonotonicNow();
  std::set<std::string> names;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir_, ec), done; !ec && it != done;
       it.increment(ec)) {
    const std::string file = it->path().filename().string();
    const std::size_t dot = file.find(".log");
    if (dot != std::string::npos && ValidateLogName(file.substr(0, dot)).ok()) {
      names.insert(file.substr(0, dot));
    }
  }
  const core::WallTime now = clock_.Now();
  std::size_t deleted = 0;
  for (const std::string& name : names) {
    const std::size_t n = observe::ApplyRetention(PathOf(name), policy_, now);
    deleted += n;
    // An open sink of a log that was deleted would write to the removed file: close it (the next
    // write opens a new file).
    auto it = open_.find(name);
    if (n > 0 && it != open_.end() && observe::LogFilePaths(PathOf(name)).empty()) {
      failed_ += it->second->failed_writes();
      open_.erase(it);
    }
  }
  return deleted;
}

void FunctionLogs::Record(const runtime::FunctionConfig& function,
                          const runtime::InvokeResult& result) {
  if (!ValidateLogName(function.name).ok()) return;
  Append(function.name, FunctionLogLines(function, result, clock_.Now()));
}

void FunctionLogs::Append(const std::string& name, std::string_view lines) {
  if (!ValidateLogName(name).ok()) return;
  if (policy_.max_age.count() > 0) {
    bool due = false;
    {
      std::lock_guard lock(mu_);
      due = clock_.MonotonicNow() - last_sweep_ >= kSweepInterval;
    }
    if (due) ApplyRetention();
  }
  std::shared_ptr<observe::RotatingFileSink> sink;
  {
    std::lock_guard lock(mu_);
    auto it = open_.find(name);
    if (it != open_.end()) {
      sink = it->second;
    } else {
      auto opened = observe::RotatingFileSink::Open(PathOf(name), policy_, clock_);
      if (!opened.ok()) {
        ++failed_;
        if (failure_counter_ != nullptr) failure_counter_->Inc();
        return;
      }
      if (open_.size() >= kMaxOpen) {
        for (const auto& [_, s] : open_) failed_ += s->failed_writes();
        open_.clear();
      }
      sink = std::shared_ptr<observe::RotatingFileSink>(std::move(opened).value());
      sink->CountFailuresIn(failure_counter_);
      open_.emplace(name, sink);
    }
  }
  sink->Write(lines);
}

core::Result<observe::LogPage> FunctionLogs::Read(const std::string& name,
                                                  const observe::LogQuery& query) const {
  RETURN_IF_ERROR(ValidateLogName(name));
  std::shared_ptr<observe::RotatingFileSink> sink;
  {
    std::lock_guard lock(mu_);
    if (auto it = open_.find(name); it != open_.end()) sink = it->second;
  }
  // The writer's sink holds off rotation while the files are opened.
  return sink != nullptr ? sink->Read(query) : observe::ReadLogFiles(PathOf(name), query);
}

bool FunctionLogs::HasLog(const std::string& name) const {
  return ValidateLogName(name).ok() && !observe::LogFilePaths(PathOf(name)).empty();
}

std::uint64_t FunctionLogs::failed_writes() const {
  std::lock_guard lock(mu_);
  std::uint64_t n = failed_;
  for (const auto& [_, s] : open_) n += s->failed_writes();
  return n;
}

void FunctionLogs::CountFailuresIn(observe::Counter* counter) {
  std::lock_guard lock(mu_);
  failure_counter_ = counter;
  for (const auto& [_, sink] : open_) sink->CountFailuresIn(counter);
}

// ---- DaemonLogs ----

DaemonLogs::DaemonLogs() {
  platform_.Add(&stderr_);
  gateway_.Add(&stderr_);
}

DaemonLogs::~DaemonLogs() = default;

core::Status DaemonLogs::OpenFiles(const std::string& logs_dir, observe::RotationPolicy policy,
                                   const core::Clock& clock) {
  RETURN_IF_ERROR(MakePrivateDir(logs_dir));
  const std::string platform_path = logs_dir + "/moatless.log";
  const std::string gateway_path = logs_dir + "/gateway.log";
  observe::ApplyRetention(platform_path, policy, clock.Now());
  observe::ApplyRetention(gateway_path, policy, clock.Now());
  ASSIGN_OR_RETURN(platform_file_, observe::RotatingFileSink::Open(platform_path, policy, clock));
  ASSIGN_OR_RETURN(gateway_file_, observe::RotatingFileSink::Open(gateway_path, policy, clock));
  ASSIGN_OR_RETURN(functions_, FunctionLogs::Open(logs_dir + "/functions", policy, clock));
  platform_.Add(platform_file_.get());
  gateway_.Add(gateway_file_.get());
  return core::Status::Ok();
}

void DaemonLogs::CountFailures(observe::MetricsRegistry& metrics) {
  observe::CounterFamily& family = metrics.Counter(
      "moatless_log_write_failures_total",
      "Log lines lost: a log file under DATA_DIR/logs could not be written.", {"log"});
  if (platform_file_) platform_file_->CountFailuresIn(&family.WithLabels({"platform"}));
  if (gateway_file_) gateway_file_->CountFailuresIn(&family.WithLabels({"gateway"}));
  if (functions_) functions_->CountFailuresIn(&family.WithLabels({"functions"}));
}

}  // namespace moatless::app
