// The daemon's log files under DATA_DIR/logs (all JSON lines, 0600, rotated by size, pruned by
// age; see observe/log_files.h):
//
//   logs/moatless.log             the platform's log (what it also writes on standard error),
//                                 except what the gateway logs
//   logs/gateway.log              the gateway's log: one "gateway request" line per request
//                                 (the access log, unless log.access is off), WAF matches, APIs
//                                 loaded
//   logs/functions/NAME.log       each function's own log: its output and START, END and REPORT
//                                 (unless log.function_files is off: the daemon then gives the
//                                 function host no FunctionLogs; LogsApi still reads old files)
//
// A function log line (keys in this order; REPORT lines add the report's fields):
//
//   {"time":"2026-01-01T00:00:00.000Z","function":"notes_dev_api","version":"3",
//    "request_id":"…","type":"output","stream":"output","message":"hello"}
//   {"time":…,"type":"report","stream":"platform","message":"REPORT RequestId: …",
//    "duration_ms":12.5,"billed_duration_ms":13,"memory_size_mb":128,"max_memory_used_mb":41,
//    "init_duration_ms":80.1,"status":"timeout","error_type":"…"}
//
// `type` is start, output, end or report; `stream` is "output" for what the function wrote
// (standard output and standard error reach the platform through one pipe, so they are not told
// apart) and "platform" for START, END and REPORT. The runtime hands the platform an invocation's
// output when it ends, so every line of an invocation carries the time it ended, and its lines
// are written together (one write, never split by a rotation).
//
// FunctionLogs writes and reads the per-function logs; a function name is checked ([A-Za-z0-9_-],
// 1-64 characters) before it becomes a file name. DaemonLogs is the composition root's set of
// sinks. Both are thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "observe/log_files.h"
#include "observe/logger.h"
#include "runtime/function.h"
#include "runtime/invoker.h"

namespace moatless::app {

// Function names as the registry accepts them: 1-64 of [A-Za-z0-9_-].
core::Status ValidateLogName(std::string_view name);

// The log lines of one invocation (each ending in '\n'), all stamped `now`.
std::string FunctionLogLines(const runtime::FunctionConfig& function,
                             const runtime::InvokeResult& result, core::WallTime now);

class FunctionLogs {
 public:
  // `dir` is created (0700) if missing; logs past their retention are deleted now.
  static core::Result<std::unique_ptr<FunctionLogs>> Open(std::string dir,
                                                          observe::RotationPolicy policy,
                                                          const core::Clock& clock);

  // Appends an invocation's lines to its function's log. Never fails the caller: lost writes are
  // counted in failed_writes().
  void Record(const runtime::FunctionConfig& function, const runtime::InvokeResult& result);
  // Appends lines (each ending in '\n') to the log of `name` (which must be valid).
  void Append(const std::string& name, std::string_view lines);
  // The function's log, filtered (observe::ReadLogFiles).
  core::Result<observe::LogPage> Read(const std::string& name,
                                      const observe::LogQuery& query) const;
  // Whether the function has any log file.
  bool HasLog(const std::string& name) const;
  // Deletes what the retention policy says has expired: every function's rotated files older than
  // max_age, and whole logs nobody wrote to for that long. Runs when the logs are opened and then
  // at most once an hour, from the first Append after that hour (nothing without max_age).
  // Returns how many files it deleted.
  std::size_t ApplyRetention();

  std::string PathOf(const std::string& name) const { return dir_ + "/" + name + ".log"; }
  std::uint64_t failed_writes() const;
  // Also counts lost writes in `counter` (which must outlive the logs).
  void CountFailuresIn(observe::Counter* counter);

 private:
  FunctionLogs(std::string dir, observe::RotationPolicy policy, const core::Clock& clock)
      : dir_(std::move(dir)), policy_(policy), clock_(clock) {}

  const std::string dir_;
  const observe::RotationPolicy policy_;
  const core::Clock& clock_;
  mutable std::mutex mu_;
  // Open logs; closed all at once past kMaxOpen (a writer keeps its sink alive while it writes).
  std::map<std::string, std::shared_ptr<observe::RotatingFileSink>> open_;
  std::uint64_t failed_ = 0;  // by sinks already closed, and opens that failed
  core::MonoTime last_sweep_{};
  observe::Counter* failure_counter_ = nullptr;
};

// The daemon's sinks: platform() writes to standard error and logs/moatless.log, gateway() to
// standard error and logs/gateway.log. Until OpenFiles succeeds both write to standard error only
// (the data directory is not open yet when the daemon starts logging).
class DaemonLogs {
 public:
  DaemonLogs();
  ~DaemonLogs();
  core::Status OpenFiles(const std::string& logs_dir, observe::RotationPolicy policy,
                         const core::Clock& clock);

  observe::LogSink& platform() { return platform_; }
  observe::LogSink& gateway() { return gateway_; }
  FunctionLogs* functions() { return functions_.get(); }
  // Counts lost log writes in moatless_log_write_failures_total{log="platform"|"gateway"|
  // "functions"}. After OpenFiles.
  void CountFailures(observe::MetricsRegistry& metrics);

 private:
  observe::StderrSink stderr_;
  observe::TeeSink platform_;
  observe::TeeSink gateway_;
  std::unique_ptr<observe::RotatingFileSink> platform_file_;
  std::unique_ptr<observe::RotatingFileSink> gateway_file_;
  std::unique_ptr<FunctionLogs> functions_;
};

}  // namespace moatless::app
