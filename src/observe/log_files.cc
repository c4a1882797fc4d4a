#include "observe/log_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <charconv>
#include <filesystem>

#include "core/filesystem.h"

namespace moatless::observe {
namespace {

namespace json = boost::json;

bool WriteAll(int fd, std::string_view data) {
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

std::string Numbered(const std::string& path, std::uint64_t n) {
  return path + "." + std::to_string(n);
}

core::WallTime MTime(const struct stat& st) {
  return core::WallTime(std::chrono::duration_cast<core::WallTime::duration>(
      std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
}

// The numbers N of the PATH.N that exist, in increasing order.
std::vector<std::uint64_t> RotatedNumbers(const std::string& path) {
  const std::filesystem::path p(path);
  const std::string prefix = p.filename().string() + ".";
  std::vector<std::uint64_t> numbers;
  std::error_code ec;
  std::filesystem::directory_iterator it(p.parent_path().empty() ? "." : p.parent_path(), ec);
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(prefix) || name.size() == prefix.size() ||
        name.size() > prefix.size() + 9)
      continue;
    const std::string_view digits = std::string_view(name).substr(prefix.size());
    if (digits[0] == '0') continue;
    std::uint64_t n = 0;
    auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (err == std::errc() && end == digits.data() + digits.size()) numbers.push_back(n);
  }
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

// A file descriptor closed on destruction.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

struct OpenFile {
  Fd fd;
  dev_t dev;
  ino_t ino;
};

struct Cursor {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::uint64_t offset = 0;
  std::uint64_t fingerprint = 0;
};

constexpr std::uint64_t kFingerprintBytes = 256;

// FNV-1a of the file's first min(offset, 256) bytes — bytes an append-only file never changes, and
// a rename keeps — or nullopt when the file is shorter or the byte before `offset` is not a
// newline. Tells the file a cursor was made on from a new file that reuses its inode.
std::optional<std::uint64_t> Fingerprint(int fd, std::uint64_t offset) {
  std::uint64_t hash = 14695981039346656037ULL;
  if (offset == 0) return hash;
  char bytes[kFingerprintBytes];
  const std::size_t n = static_cast<std::size_t>(std::min(offset, kFingerprintBytes));
  if (::pread(fd, bytes, n, 0) != static_cast<ssize_t>(n)) return std::nullopt;
  for (std::size_t i = 0; i < n; ++i) {
    hash = (hash ^ static_cast<unsigned char>(bytes[i])) * 1099511628211ULL;
  }
  char before = 0;
  if (::pread(fd, &before, 1, static_cast<off_t>(offset - 1)) != 1 || before != '\n') {
    return std::nullopt;
  }
  return hash;
}

std::string FormatCursor(const OpenFile& file, std::uint64_t offset) {
  return std::to_string(static_cast<std::uint64_t>(file.dev)) + "-" +
         std::to_string(static_cast<std::uint64_t>(file.ino)) + "-" + std::to_string(offset) + "-" +
         std::to_string(Fingerprint(file.fd.get(), offset).value_or(0));
}

core::Result<Cursor> ParseCursor(std::string_view text) {
  Cursor c;
  std::uint64_t* parts[] = {&c.dev, &c.ino, &c.offset, &c.fingerprint};
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (std::size_t i = 0; i < 4; ++i) {
    auto [next, ec] = std::from_chars(p, end, *parts[i]);
    if (ec != std::errc() || next == p) return core::InvalidArgumentError("not a log cursor");
    p = next;
    if (i < 3) {
      if (p == end || *p != '-') return core::InvalidArgumentError("not a log cursor");
      ++p;
    }
  }
  if (p != end) return core::InvalidArgumentError("not a log cursor");
  return c;
}

const json::string* StringMember(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr ? v->if_string() : nullptr;
}

// Whether the filter can be looked for in the raw line: JSON writes it unchanged.
bool SurvivesEscaping(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) {
    return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
  });
}

// The line matches the query (its JSON object in `out`).
bool Matches(std::string_view line, const LogQuery& q, bool prefilter, json::object& out,
             bool& malformed) {
  malformed = false;
  if (!q.request_id.empty() && line.find(q.request_id) == std::string_view::npos) return false;
  if (prefilter && !q.filter.empty() && line.find(q.filter) == std::string_view::npos) return false;
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(line.data(), line.size()), ec);
  const json::string* time = nullptr;
  if (!ec && v.is_object()) time = StringMember(v.get_object(), "time");
  auto when = time != nullptr ? ParseRfc3339(*time) : core::InvalidArgumentError("no time");
  if (!when.ok()) {
    malformed = true;
    return false;
  }
  if (q.since && *when < *q.since) return false;
  if (q.until && *when >= *q.until) return false;
  json::object& o = v.get_object();
  if (!q.request_id.empty()) {
    const json::string* id = StringMember(o, "request_id");
    if (id == nullptr || *id != q.request_id) return false;
  }
  if (!q.filter.empty()) {
    const json::string* m = StringMember(o, "message");
    if (m == nullptr) m = StringMember(o, "msg");
    if (m == nullptr || std::string_view(*m).find(q.filter) == std::string_view::npos) return false;
  }
  out = std::move(o);
  return true;
}

int TwoDigits(std::string_view s, std::size_t at, bool& ok) {
  if (at + 2 > s.size() || s[at] < '0' || s[at] > '9' || s[at + 1] < '0' || s[at + 1] > '9') {
    ok = false;
    return 0;
  }
  return (s[at] - '0') * 10 + (s[at + 1] - '0');
}

}  // namespace

// ---- RotatingFileSink ----

RotatingFileSink::RotatingFileSink(std::string path, RotationPolicy policy,
                                   const core::Clock& clock)
    : path_(std::move(path)), policy_(policy), clock_(clock) {}

core::Result<std::unique_ptr<RotatingFileSink>> RotatingFileSink::Open(std::string path,
                                                                       RotationPolicy policy,
                                                                       const core::Clock& clock) {
  if (policy.max_files == 0) policy.max_files = 1;
  if (policy.max_bytes == 0) return core::InvalidArgumentError("max_bytes must be positive");
  std::unique_ptr<RotatingFileSink> sink(new RotatingFileSink(std::move(path), policy, clock));
  std::lock_guard lock(sink->mu_);
  if (!sink->OpenLocked()) {
    return core::ErrnoStatus("open log file " + sink->path_, errno);
  }
  sink->PruneLocked();
  return sink;
}

RotatingFileSink::~RotatingFileSink() {
  if (fd_ >= 0) ::close(fd_);
}

bool RotatingFileSink::OpenLocked() {
  last_open_attempt_ = clock_.MonotonicNow();
  const int fd =
      ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return false;
  struct stat st {};
  int err = 0;
  if (::fstat(fd, &st) != 0) {
    err = errno;
  } else if (!S_ISREG(st.st_mode)) {
    err = EINVAL;
  }
  if (err != 0) {
    ::close(fd);
    errno = err;
    return false;
  }
  if ((st.st_mode & 07777) != 0600) ::fchmod(fd, 0600);
  fd_ = fd;
  size_ = static_cast<std::uint64_t>(st.st_size);
  return true;
}

bool RotatingFileSink::RotateLocked() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  // PATH.(max_files-1) is overwritten by the rename below (or PATH is removed when only one file
  // is kept); the newest file becomes PATH.1.
  bool ok = true;
  if (policy_.max_files <= 1) {
    ok = ::unlink(path_.c_str()) == 0 || errno == ENOENT;
  } else {
    for (std::uint32_t i = policy_.max_files - 1; i >= 2; --i) {
      if (::rename(Numbered(path_, i - 1).c_str(), Numbered(path_, i).c_str()) != 0 &&
          errno != ENOENT) {
        ok = false;
      }
    }
    if (::rename(path_.c_str(), Numbered(path_, 1).c_str()) != 0 && errno != ENOENT) ok = false;
  }
  rotations_.fetch_add(1);
  PruneLocked();
  // Even after a failed rename, appending to PATH again keeps logging (the file just grows).
  return OpenLocked() && ok;
}

void RotatingFileSink::PruneLocked() {
  const core::WallTime cutoff = clock_.Now() - policy_.max_age;
  for (const std::uint64_t n : RotatedNumbers(path_)) {
    const std::string p = Numbered(path_, n);
    struct stat st {};
    if (n >= policy_.max_files) {
      ::unlink(p.c_str());
    } else if (policy_.max_age.count() > 0 && ::lstat(p.c_str(), &st) == 0 && MTime(st) < cutoff) {
      ::unlink(p.c_str());
    }
  }
}

void RotatingFileSink::Failed() {
  failed_writes_.fetch_add(1);
  if (Counter* counter = failure_counter_.load(); counter != nullptr) counter->Inc();
}

void RotatingFileSink::Write(std::string_view lines) {
  std::lock_guard lock(mu_);
  if (fd_ < 0) {
    // Reopen at most once a second, so a broken disk does not cost an open per line.
    if (last_open_attempt_ &&
        clock_.MonotonicNow() - *last_open_attempt_ < std::chrono::seconds(1)) {
      Failed();
      return;
    }
    if (!OpenLocked()) {
      Failed();
      return;
    }
  }
  if (size_ > 0 && size_ + lines.size() > policy_.max_bytes) {
    if (!RotateLocked() && fd_ < 0) {
      Failed();
      return;
    }
  }
  if (!WriteAll(fd_, lines)) {
    Failed();
    // Start from the file's real size next time (part of the lines may be in it).
    struct stat st {};
    if (::fstat(fd_, &st) == 0) size_ = static_cast<std::uint64_t>(st.st_size);
    return;
  }
  size_ += lines.size();
}

// ---- TeeSink ----

void TeeSink::Add(LogSink* sink) {
  std::lock_guard lock(mu_);
  sinks_.push_back(sink);
}

void TeeSink::Write(std::string_view line) {
  std::lock_guard lock(mu_);
  for (LogSink* sink : sinks_) sink->Write(line);
}

// ---- files, retention ----

std::vector<std::string> LogFilePaths(const std::string& path) {
  std::vector<std::string> paths;
  const std::vector<std::uint64_t> numbers = RotatedNumbers(path);
  for (auto it = numbers.rbegin(); it != numbers.rend(); ++it) paths.push_back(Numbered(path, *it));
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) paths.push_back(path);
  return paths;
}

std::size_t ApplyRetention(const std::string& path, const RotationPolicy& policy,
                           core::WallTime now) {
  if (policy.max_age.count() <= 0) return 0;
  const core::WallTime cutoff = now - policy.max_age;
  struct stat st {};
  const bool current_expired = ::lstat(path.c_str(), &st) == 0 && MTime(st) < cutoff;
  std::size_t deleted = 0;
  for (const std::string& p : LogFilePaths(path)) {
    if (p == path && !current_expired) continue;
    if (!current_expired && (::lstat(p.c_str(), &st) != 0 || MTime(st) >= cutoff)) continue;
    if (::unlink(p.c_str()) == 0) ++deleted;
  }
  return deleted;
}

// ---- reading ----

namespace {

// The log's files, oldest first, opened newest first: a rotation between two opens then shows the
// same file twice (dropped by its inode) rather than hiding one.
std::vector<OpenFile> OpenLogFiles(const std::string& path) {
  std::vector<OpenFile> files;
  const std::vector<std::string> paths = LogFilePaths(path);
  for (auto it = paths.rbegin(); it != paths.rend(); ++it) {
    Fd fd(::open(it->c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    struct stat st {};
    if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const bool seen = std::any_of(files.begin(), files.end(), [&](const OpenFile& f) {
      return f.dev == st.st_dev && f.ino == st.st_ino;
    });
    if (!seen) files.push_back(OpenFile{std::move(fd), st.st_dev, st.st_ino});
  }
  std::reverse(files.begin(), files.end());
  return files;
}

// The index of the file the cursor was made on: same device and inode, same first bytes.
std::optional<std::size_t> FindCursorFile(const std::vector<OpenFile>& files, const Cursor& c) {
  for (std::size_t i = 0; i < files.size(); ++i) {
    const OpenFile& f = files[i];
    if (f.dev == c.dev && f.ino == c.ino && Fingerprint(f.fd.get(), c.offset) == c.fingerprint) {
      return i;
    }
  }
  return std::nullopt;
}

core::Result<LogPage> ReadLogFilesImpl(const std::string& path, const LogQuery& query,
                                       std::mutex* writer) {
  std::optional<Cursor> cursor;
  if (!query.cursor.empty()) {
    ASSIGN_OR_RETURN(Cursor c, ParseCursor(query.cursor));
    cursor = c;
  }
  std::vector<OpenFile> files;
  std::optional<std::size_t> found;
  // With the writer's lock no rotation runs while the files are opened (a few opens, no reading).
  // Without it, renames racing the opens can hide the cursor's file: look again a few times
  // before concluding it is gone.
  for (int attempt = 0; attempt < (writer != nullptr ? 1 : 4); ++attempt) {
    if (writer != nullptr) {
      std::lock_guard lock(*writer);
      files = OpenLogFiles(path);
    } else {
      files = OpenLogFiles(path);
    }
    if (!cursor) break;
    found = FindCursorFile(files, *cursor);
    if (found) break;
  }

  LogPage page;
  if (files.empty()) {
    page.gap = cursor.has_value();
    return page;
  }
  std::size_t index = 0;
  std::uint64_t offset = 0;
  if (cursor) {
    if (!found) {
      page.gap = true;
    } else {
      index = *found;
      offset = cursor->offset;
    }
  }

  const bool prefilter = SurvivesEscaping(query.filter);
  const std::size_t limit = std::max<std::size_t>(query.limit, 1);
  std::uint64_t scanned = 0;
  std::uint64_t returned = 0;
  std::string buffer(64 << 10, '\0');
  std::pair<std::size_t, std::uint64_t> position{index, offset};  // file, offset after a line
  std::string line;
  for (; index < files.size(); ++index, offset = 0) {
    const OpenFile& file = files[index];
    const bool last = index + 1 == files.size();
    std::uint64_t line_start = offset;  // file offset where `line` begins
    std::uint64_t read_at = offset;
    bool oversized = false;
    line.clear();
    position = {index, offset};
    while (true) {
      const ssize_t n =
          ::pread(file.fd.get(), buffer.data(), buffer.size(), static_cast<off_t>(read_at));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      scanned += static_cast<std::uint64_t>(n);
      std::string_view chunk(buffer.data(), static_cast<std::size_t>(n));
      std::uint64_t chunk_at = read_at;
      read_at += static_cast<std::uint64_t>(n);
      while (!chunk.empty()) {
        const std::size_t nl = chunk.find('\n');
        const std::string_view part = chunk.substr(0, nl);
        if (!oversized) {
          if (line.size() + part.size() > kMaxLogLineBytes) {
            oversized = true;
            line.clear();
          } else {
            line.append(part);
          }
        }
        if (nl == std::string_view::npos) break;
        // A complete line ends at chunk_at + nl.
        const std::uint64_t next = chunk_at + nl + 1;
        chunk.remove_prefix(nl + 1);
        chunk_at = next;
        if (oversized) {
          ++page.skipped_lines;
        } else if (!line.empty()) {
          json::object entry;
          bool malformed = false;
          if (Matches(line, query, prefilter, entry, malformed)) {
            page.entries.push_back(std::move(entry));
            returned += line.size();
          } else if (malformed) {
            ++page.skipped_lines;
          }
        }
        oversized = false;
        line.clear();
        line_start = next;
        position = {index, next};
        if (page.entries.size() >= limit || returned >= query.max_result_bytes ||
            scanned >= query.max_scan_bytes) {
          page.more = true;
          page.next_cursor = FormatCursor(files[position.first], position.second);
          return page;
        }
      }
    }
    // What follows the last newline: a line still being written (the newest file: read it next
    // time) or the remains of a failed write (an older file: skipped).
    if (!last && read_at > line_start) ++page.skipped_lines;
    if (!last) position = {index + 1, 0};
  }
  page.next_cursor = FormatCursor(files[position.first], position.second);
  return page;
}

}  // namespace

core::Result<LogPage> ReadLogFiles(const std::string& path, const LogQuery& query) {
  return ReadLogFilesImpl(path, query, nullptr);
}

core::Result<LogPage> RotatingFileSink::Read(const LogQuery& query) {
  return ReadLogFilesImpl(path_, query, &mu_);
}

core::Result<core::WallTime> ParseRfc3339(std::string_view s) {
  const auto bad = [&] {
    return core::InvalidArgumentError(
        "expected an RFC 3339 time such as 2026-01-01T00:00:00Z, got \"" +
        std::string(s.substr(0, 64)) + "\"");
  };
  if (s.size() < 20) return bad();
  int year = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + 4, year);
  if (ec != std::errc() || end != s.data() + 4) return bad();
  bool ok = true;
  const int month = TwoDigits(s, 5, ok);
  const int day = TwoDigits(s, 8, ok);
  const int hour = TwoDigits(s, 11, ok);
  const int minute = TwoDigits(s, 14, ok);
  const int second = TwoDigits(s, 17, ok);
  if (!ok || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':' || hour > 23 || minute > 59 || second > 60) {
    return bad();
  }
  const std::chrono::year_month_day ymd{std::chrono::year(year),
                                        std::chrono::month(static_cast<unsigned>(month)),
                                        std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok()) return bad();
  std::size_t at = 19;
  std::chrono::nanoseconds fraction{0};
  if (at < s.size() && s[at] == '.') {
    ++at;
    std::int64_t scale = 100'000'000;
    const std::size_t digits_start = at;
    while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
      fraction += std::chrono::nanoseconds((s[at] - '0') * scale);
      scale /= 10;
      ++at;
    }
    if (at == digits_start) return bad();
  }
  std::chrono::minutes offset{0};
  if (at < s.size() && (s[at] == 'Z' || s[at] == 'z')) {
    ++at;
  } else if (at < s.size() && (s[at] == '+' || s[at] == '-')) {
    const int sign = s[at] == '-' ? -1 : 1;
    const int oh = TwoDigits(s, at + 1, ok);
    const int om = TwoDigits(s, at + 4, ok);
    if (!ok || at + 6 > s.size() || s[at + 3] != ':' || oh > 23 || om > 59) return bad();
    offset = std::chrono::minutes(sign * (oh * 60 + om));
    at += 6;
  } else {
    return bad();
  }
  if (at != s.size()) return bad();
  const auto t = std::chrono::sys_days(ymd) + std::chrono::hours(hour) +
                 std::chrono::minutes(minute) + std::chrono::seconds(std::min(second, 59)) +
                 fraction - offset;
  return std::chrono::time_point_cast<core::WallTime::duration>(t);
}

}  // namespace moatless::observe
