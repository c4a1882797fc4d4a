// Log files: JSON-lines files with size-based rotation and age-based retention, sinks that write
// to several places, and a bounded reader that filters a log's files and continues from a cursor.
//
// A log lives at PATH, its rotated predecessors at PATH.1 (the newest) … PATH.N (the oldest).
// RotatingFileSink appends to PATH; a write that would take PATH past `max_bytes` first renames
// PATH.i to PATH.i+1 (dropping what falls past `max_files` files in all) and PATH to PATH.1, then
// starts a new PATH. One write is never split, so an invocation's lines written together stay in
// one file; a single write larger than max_bytes fills a file of its own. Files are created 0600
// (a wider mode is narrowed), opened O_APPEND | O_CLOEXEC | O_NOFOLLOW, and never synced (the
// audit log is the durable record). A failed open, rename or write is counted, never reported to
// the caller and never retried in a loop: the next write tries again (opening at most once a
// second), so a full disk costs a log line, not a request.
//
// Retention: with `max_age`, rotated files last modified longer ago than that are deleted when a
// sink opens and at every rotation, and ApplyRetention deletes whole logs (the file and its
// rotated siblings) that nobody wrote to for that long.
//
// ReadLogFiles reads a log's files oldest to newest, line by line with a bounded buffer, and
// returns the JSON objects that match a LogQuery (time range, request id, text) — at most `limit`
// of them, reading at most `max_scan_bytes` — and a cursor just after the last line it examined.
// The cursor names a file by its device, inode and a fingerprint of its first bytes (up to the
// cursor's offset), which a rotation (a rename) keeps, so a follower continues exactly after the
// last entry it got even when the log rotated between two reads. Only when the file it names is
// gone altogether (rotated past max_files, or deleted by retention; a new file that reuses the
// inode has other first bytes) does reading resume at the oldest file left, and the page says
// `gap`. Renames that race the reader's opens could hide a file for a moment:
// RotatingFileSink::Read holds rotation off while it opens the files (so a reader in the writer's
// process never sees that), and ReadLogFiles looks again a few times before it concludes a file is
// gone. Lines that are not JSON objects with a string "time", or longer than kMaxLogLineBytes, are
// skipped. A line being written (no newline yet) is left for the next read.
//
// Threading: RotatingFileSink and TeeSink are thread-safe (writes are serialised per sink; lines
// never interleave). ReadLogFiles may run beside a writer of the same log.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "observe/logger.h"
#include "observe/metrics.h"

namespace moatless::observe {

struct LogQuery;
struct LogPage;

struct RotationPolicy {
  std::uint64_t max_bytes = 16 << 20;  // per file
  std::uint32_t max_files = 5;         // PATH and its rotated siblings together; at least 1
  std::chrono::seconds max_age{0};     // 0: no age-based retention
};

class RotatingFileSink final : public LogSink {
 public:
  // Creates PATH if needed (the folder must exist). `clock` must outlive the sink.
  static core::Result<std::unique_ptr<RotatingFileSink>> Open(std::string path,
                                                              RotationPolicy policy,
                                                              const core::Clock& clock);
  ~RotatingFileSink() override;
  RotatingFileSink(const RotatingFileSink&) = delete;
  RotatingFileSink& operator=(const RotatingFileSink&) = delete;

  // One or more whole lines, each ending in '\n', written at once.
  void Write(std::string_view lines) override;

  // ReadLogFiles(path(), query), with rotations held off while the files are opened (a few opens;
  // the reading runs unlocked), so the cursor's file cannot slip past the reader.
  core::Result<LogPage> Read(const LogQuery& query);

  const std::string& path() const { return path_; }
  // Writes that were lost (open, rotation or write errors) since the sink was opened.
  std::uint64_t failed_writes() const { return failed_writes_.load(); }
  std::uint64_t rotations() const { return rotations_.load(); }
  // Also counts lost writes in `counter` (null: not), which must outlive the sink.
  void CountFailuresIn(Counter* counter) { failure_counter_.store(counter); }

 private:
  RotatingFileSink(std::string path, RotationPolicy policy, const core::Clock& clock);
  // With mu_ held.
  void Failed();
  bool OpenLocked();
  bool RotateLocked();
  void PruneLocked();

  const std::string path_;
  const RotationPolicy policy_;
  const core::Clock& clock_;
  std::mutex mu_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::optional<core::MonoTime> last_open_attempt_;
  std::atomic<std::uint64_t> failed_writes_{0};
  std::atomic<std::uint64_t> rotations_{0};
  std::atomic<Counter*> failure_counter_{nullptr};
};

// Writes every line to each of its sinks, in order. Sinks can be added (before or while it is
// used); they must outlive the TeeSink.
class TeeSink final : public LogSink {
 public:
  TeeSink() = default;
  explicit TeeSink(std::vector<LogSink*> sinks) : sinks_(std::move(sinks)) {}
  void Add(LogSink* sink);
  void Write(std::string_view line) override;

 private:
  std::mutex mu_;
  std::vector<LogSink*> sinks_;
};

// PATH's files that exist, oldest first: PATH.N … PATH.1, PATH.
std::vector<std::string> LogFilePaths(const std::string& path);

// Deletes what `policy.max_age` says is expired: rotated files of PATH older than that, and
// PATH itself with its rotated files when PATH was not written for that long. Returns how many
// files it deleted. Nothing to do when max_age is 0.
std::size_t ApplyRetention(const std::string& path, const RotationPolicy& policy,
                           core::WallTime now);

inline constexpr std::size_t kMaxLogLineBytes = 1 << 20;

struct LogQuery {
  std::optional<core::WallTime> since;  // entries at or after
  std::optional<core::WallTime> until;  // entries before
  std::string request_id;               // "": any
  std::string filter;                   // "": any; else a substring of "message" or "msg"
  std::size_t limit = 1000;
  std::string cursor;  // "": from the oldest file
  // A page ends (more = true) after this much was read or returned, so one read stays bounded
  // however rare the matches are.
  std::uint64_t max_scan_bytes = 64 << 20;
  std::uint64_t max_result_bytes = 4 << 20;
};

struct LogPage {
  std::vector<boost::json::object> entries;
  std::string next_cursor;          // where the next read continues ("" while the log has no files)
  bool more = false;                // stopped at a limit: read again right away for the rest
  bool gap = false;                 // the cursor's file is gone: lines may have been missed
  std::uint64_t skipped_lines = 0;  // malformed or oversized
};

// kInvalidArgument for a cursor that is not one; kNotFound never (a log without files is empty).
core::Result<LogPage> ReadLogFiles(const std::string& path, const LogQuery& query);

// "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.123Z", "2026-01-01T02:00:00+02:00" (seconds
// fraction of any length, 'T' or 't' or ' ', 'Z' or 'z' or an offset).
core::Result<core::WallTime> ParseRfc3339(std::string_view text);

}  // namespace moatless::observe
