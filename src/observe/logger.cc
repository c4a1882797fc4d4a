#include "observe/logger.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <cmath>

#include "core/filesystem.h"
#include "observe/utf8.h"

namespace moatless::observe {
namespace {

namespace json = boost::json;

bool IsReservedKey(std::string_view key) {
  return key == "time" || key == "level" || key == "msg" || key == "request_id";
}

// Writes all of `data`, retrying on EINTR and short writes. False on error.
bool WriteFully(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

json::string_view AsJson(std::string_view s) { return json::string_view(s.data(), s.size()); }

void SetField(json::object& obj, std::string_view raw_key, const LogField::Value& value) {
  std::string key = SanitizeUtf8(raw_key);
  if (IsReservedKey(key)) key = "field_" + key;
  json::value& slot = obj[AsJson(key)];
  std::visit(
      [&slot](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          slot = AsJson(SanitizeUtf8(v));
        } else if constexpr (std::is_same_v<T, double>) {
          if (std::isnan(v)) {
            slot = "NaN";
          } else if (std::isinf(v)) {
            slot = v > 0 ? "+Inf" : "-Inf";
          } else {
            slot = v;
          }
        } else {
          slot = v;
        }
      },
      value);
}

}  // namespace

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

core::Result<LogLevel> ParseLogLevel(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warn" || lower == "warning") return LogLevel::kWarn;
  if (lower == "error") return LogLevel::kError;
  return core::InvalidArgumentError("unknown log level '" + SanitizeUtf8(name) +
                                    "' (expected debug, info, warn or error)");
}

LogField::LogField(std::string_view key, const char* value)
    : key_(key), value_(std::string(value == nullptr ? "(null)" : value)) {}

LogField::LogField(std::string_view key, const core::SecretBytes& secret)
    : key_(key), value_(core::ToString(secret)) {}

LogField::LogField(std::string_view key, const core::Status& status)
    : key_(key), value_(status.ToString()) {}

// ---- sinks ----

void StderrSink::Write(std::string_view line) {
  std::lock_guard lock(mu_);
  WriteFully(STDERR_FILENO, line);
}

core::Result<std::unique_ptr<FileSink>> FileSink::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return core::ErrnoStatus("open log file " + path, errno);
  return std::unique_ptr<FileSink>(new FileSink(path, fd));
}

FileSink::~FileSink() {
  if (fd_ >= 0) ::close(fd_);
}

void FileSink::Write(std::string_view line) {
  std::lock_guard lock(mu_);
  if (fd_ < 0 || !WriteFully(fd_, line)) failed_writes_.fetch_add(1);
}

core::Status FileSink::Reopen() {
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return core::ErrnoStatus("reopen log file " + path_, errno);
  std::lock_guard lock(mu_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  return core::Status::Ok();
}

void MemorySink::Write(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  std::lock_guard lock(mu_);
  lines_.emplace_back(line);
}

std::vector<std::string> MemorySink::Lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

void MemorySink::Clear() {
  std::lock_guard lock(mu_);
  lines_.clear();
}

// ---- logger ----

Logger::Logger(LogSink& sink, const core::Clock& clock, LogLevel min_level)
    : shared_(std::make_shared<Shared>(&sink, &clock, min_level)) {}

bool Logger::Enabled(LogLevel level) const {
  return level >= shared_->min_level.load(std::memory_order_relaxed);
}

void Logger::SetMinLevel(LogLevel level) {
  shared_->min_level.store(level, std::memory_order_relaxed);
}

LogLevel Logger::min_level() const { return shared_->min_level.load(std::memory_order_relaxed); }

void Logger::Log(LogLevel level, std::string_view msg,
                 std::initializer_list<LogField> fields) const {
  if (!Enabled(level)) return;
  shared_->sink->Write(FormatLine(level, msg, std::span(fields.begin(), fields.size())));
}

void Logger::Log(LogLevel level, std::string_view msg, const std::vector<LogField>& fields) const {
  if (!Enabled(level)) return;
  shared_->sink->Write(FormatLine(level, msg, fields));
}

std::string Logger::FormatLine(LogLevel level, std::string_view msg,
                               std::span<const LogField> fields) const {
  // Most lines fit in this buffer, so building the object allocates nothing.
  unsigned char buffer[4096];
  json::monotonic_resource resource(buffer, sizeof buffer);
  json::object obj(&resource);
  obj.reserve(4 + fixed_.size() + fields.size());
  const std::string time = core::FormatRfc3339(shared_->clock->Now());
  obj.emplace("time", AsJson(time));
  obj.emplace("level", AsJson(LogLevelName(level)));
  const std::string clean_msg = SanitizeUtf8(msg);
  obj.emplace("msg", AsJson(clean_msg));
  if (!request_id_.empty()) obj.emplace("request_id", AsJson(request_id_));
  for (const LogField& f : fixed_) SetField(obj, f.key(), f.value());
  for (const LogField& f : fields) SetField(obj, f.key(), f.value());
  std::string line = json::serialize(obj);
  line += '\n';
  return line;
}

Logger Logger::With(std::initializer_list<LogField> fields) const {
  Logger child = *this;
  child.fixed_.insert(child.fixed_.end(), fields.begin(), fields.end());
  return child;
}

Logger Logger::With(const std::vector<LogField>& fields) const {
  Logger child = *this;
  child.fixed_.insert(child.fixed_.end(), fields.begin(), fields.end());
  return child;
}

Logger Logger::WithRequestId(std::string_view request_id) const {
  Logger child = *this;
  child.request_id_ = SanitizeUtf8(request_id);
  return child;
}

}  // namespace moatless::observe
