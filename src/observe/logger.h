// Logger: structured logs as JSON lines.
//
// Every line is one JSON object, serialised by Boost.JSON so that quotes, backslashes and control
// characters in messages or values are escaped (a message cannot forge a second line or a field),
// and bytes that are not UTF-8 are replaced with U+FFFD (the line always parses):
//
//   {"time":"2026-01-01T00:00:00.000Z","level":"info","msg":"invoked","request_id":"…",
//    "function":"resize","duration_ms":12,"cold":false}
//
// `time` comes from the core::Clock the logger was built with (RFC 3339, UTC, milliseconds).
// `request_id` appears when the logger knows one (see WithRequestId). Then come the logger's fixed
// fields (see With) and the call's fields, in order; a later field replaces an earlier one of the
// same key, and a field may not take a reserved key (time, level, msg, request_id): it is written
// as "field_<key>" instead.
//
// Field values are typed: strings, integers, doubles (non-finite ones as the strings "NaN",
// "+Inf", "-Inf"), booleans, a core::Status (its ToString()), and core::SecretBytes, which is
// always written as "[redacted]". There is no other conversion into a field: pointers do not turn
// into booleans, and nothing turns a SecretBytes into text.
//
// Ownership and threading: the composition root owns the LogSink and the Clock and keeps them
// alive as long as any Logger built on them. A Logger is a cheap value (copy it, hand it to a
// request); all copies and children share the sink, the clock and the minimum level. Logging is
// thread-safe: each line is formatted on the calling thread and handed to the sink in one Write,
// and every sink writes a line whole, so lines never interleave.
#pragma once

#include <atomic>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/clock.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace moatless::observe {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// "debug", "info", "warn", "error".
std::string_view LogLevelName(LogLevel level);
// Accepts the names above (any case) and "warning".
core::Result<LogLevel> ParseLogLevel(std::string_view name);

// One typed key/value of a log line.
class LogField {
 public:
  using Value = std::variant<std::string, std::int64_t, std::uint64_t, double, bool>;

  LogField(std::string_view key, std::string_view value) : key_(key), value_(std::string(value)) {}
  LogField(std::string_view key, const std::string& value) : key_(key), value_(value) {}
  // A null pointer is written as "(null)".
  LogField(std::string_view key, const char* value);
  template <std::signed_integral T>
  requires(!std::same_as<T, bool> && !std::same_as<T, char>) LogField(std::string_view key, T value)
      : key_(key), value_(static_cast<std::int64_t>(value)) {}
  template <std::unsigned_integral T>
  requires(!std::same_as<T, bool> && !std::same_as<T, char>) LogField(std::string_view key, T value)
      : key_(key), value_(static_cast<std::uint64_t>(value)) {}
  template <std::floating_point T>
  LogField(std::string_view key, T value) : key_(key), value_(static_cast<double>(value)) {}
  // Exactly bool: a pointer or anything else that converts to bool is not accepted.
  template <std::same_as<bool> B>
  LogField(std::string_view key, B value) : key_(key), value_(static_cast<bool>(value)) {}
  // Always written as "[redacted]"; the secret's bytes are never read.
  LogField(std::string_view key, const core::SecretBytes& secret);
  // The status' ToString() (status messages never hold secrets, by convention).
  LogField(std::string_view key, const core::Status& status);

  const std::string& key() const { return key_; }
  const Value& value() const { return value_; }

 private:
  std::string key_;
  Value value_;
};

// Where lines go. Write receives one complete line, ending in '\n'; an implementation must write
// it whole with respect to concurrent Writes (lines never interleave) and must not fail loudly:
// logging never fails the caller.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Write(std::string_view line) = 0;
};

// Standard error (file descriptor 2).
class StderrSink final : public LogSink {
 public:
  void Write(std::string_view line) override;

 private:
  std::mutex mu_;
};

// Appends to a file (created with mode 0600 if absent; O_APPEND, so several writers of one file
// each keep their lines whole). Not synced: logs are for operating, the audit log is the record.
class FileSink final : public LogSink {
 public:
  static core::Result<std::unique_ptr<FileSink>> Open(const std::string& path);
  ~FileSink() override;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  void Write(std::string_view line) override;
  // Closes and reopens the path, for log rotation (the old file was renamed away).
  core::Status Reopen();
  // Lines that could not be written (disk full, I/O error) since the sink was opened.
  std::uint64_t failed_writes() const { return failed_writes_.load(); }

 private:
  FileSink(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  const std::string path_;
  std::mutex mu_;
  int fd_;
  std::atomic<std::uint64_t> failed_writes_{0};
};

// Keeps lines in memory: for tests.
class MemorySink final : public LogSink {
 public:
  void Write(std::string_view line) override;
  // The lines written so far, each without its trailing '\n'.
  std::vector<std::string> Lines() const;
  void Clear();

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

class Logger {
 public:
  // `sink` and `clock` must outlive the logger and all its copies and children.
  Logger(LogSink& sink, const core::Clock& clock, LogLevel min_level = LogLevel::kInfo);

  void Debug(std::string_view msg, std::initializer_list<LogField> fields = {}) const {
    Log(LogLevel::kDebug, msg, fields);
  }
  void Info(std::string_view msg, std::initializer_list<LogField> fields = {}) const {
    Log(LogLevel::kInfo, msg, fields);
  }
  void Warn(std::string_view msg, std::initializer_list<LogField> fields = {}) const {
    Log(LogLevel::kWarn, msg, fields);
  }
  void Error(std::string_view msg, std::initializer_list<LogField> fields = {}) const {
    Log(LogLevel::kError, msg, fields);
  }
  void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) const;
  void Log(LogLevel level, std::string_view msg, const std::vector<LogField>& fields) const;

  // Whether a line of this level would be written (to skip computing expensive fields).
  bool Enabled(LogLevel level) const;
  // Changes the minimum level for this logger, its copies and its children.
  void SetMinLevel(LogLevel level);
  LogLevel min_level() const;

  // A child that adds these fields to every line.
  Logger With(std::initializer_list<LogField> fields) const;
  Logger With(const std::vector<LogField>& fields) const;
  // A child that writes this request id on every line.
  Logger WithRequestId(std::string_view request_id) const;

  // The line Log would write (with its trailing '\n'), regardless of the minimum level.
  std::string FormatLine(LogLevel level, std::string_view msg,
                         std::span<const LogField> fields) const;

 private:
  struct Shared {
    LogSink* sink;
    const core::Clock* clock;
    std::atomic<LogLevel> min_level;
  };

  std::shared_ptr<Shared> shared_;
  std::string request_id_;
  std::vector<LogField> fixed_;
};

}  // namespace moatless::observe
