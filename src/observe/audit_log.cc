#include "observe/audit_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <vector>

#include "core/filesystem.h"
#include "observe/audit_format.h"
#include "observe/audit_verify.h"
#include "observe/utf8.h"

namespace moatless::observe {
namespace {

using core::Status;

// Closes a descriptor unless released.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

std::string Dirname(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status SyncDir(const std::string& path) {
  const std::string dir = Dirname(path);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return core::ErrnoStatus("open " + dir, errno);
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0) return core::ErrnoStatus("fsync " + dir, err);
  return Status::Ok();
}

Status PreadFully(int fd, char* out, std::size_t n, std::uint64_t offset, const std::string& path) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, out + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return core::ErrnoStatus("read " + path, errno);
    }
    if (r == 0) return core::InternalError("read " + path + ": file shrank while being read");
    got += static_cast<std::size_t>(r);
  }
  return Status::Ok();
}

std::string Basename(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Archived segments of `<dir>/<stem>.log` are `<dir>/archive/<stem>-<first>-<last>.log`.
std::string ArchiveDir(const std::string& active_path) { return Dirname(active_path) + "/archive"; }
std::string ArchiveStem(const std::string& active_path) {
  std::string base = Basename(active_path);
  if (base.size() > 4 && base.ends_with(".log")) base.resize(base.size() - 4);
  return base;
}

// Parses "<stem>-<first>-<last>.log".
bool ParseSegmentName(std::string_view name, std::string_view stem, std::uint64_t& first,
                      std::uint64_t& last) {
  if (!name.starts_with(stem) || !name.ends_with(".log")) return false;
  name = name.substr(stem.size(), name.size() - stem.size() - 4);
  if (!name.starts_with('-')) return false;
  name.remove_prefix(1);
  const auto dash = name.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 >= name.size()) return false;
  auto parse = [](std::string_view digits, std::uint64_t& out) {
    if (digits.find_first_not_of("0123456789") != std::string_view::npos) return false;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    return ec == std::errc() && ptr == digits.data() + digits.size();
  };
  return parse(name.substr(0, dash), first) && parse(name.substr(dash + 1), last) && first > 0 &&
         first <= last;
}

// Takes the log's lock: `<path>.lock`, flocked for as long as the log is open. The active file
// itself is locked too, but a rotation replaces it; the lock file stays.
core::Result<int> LockLog(const std::string& path) {
  const std::string lock_path = path + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return core::ErrnoStatus("open audit log lock " + lock_path, errno);
  FdGuard guard(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return core::FailedPreconditionError("audit log " + path +
                                           " is locked by another writer (process or AuditLog)");
    }
    return core::ErrnoStatus("lock audit log " + lock_path, errno);
  }
  return guard.release();
}

// The last complete line of the file at `path` (without its newline); empty if it has none.
core::Result<std::string> ReadLastLine(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return core::ErrnoStatus("open audit log " + path, errno);
  FdGuard guard(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return core::ErrnoStatus("stat audit log " + path, errno);
  const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  const std::uint64_t window = std::min<std::uint64_t>(size, kMaxAuditLineBytes + 1);
  std::string tail(window, '\0');
  RETURN_IF_ERROR(PreadFully(fd, tail.data(), window, size - window, path));
  const std::size_t end = tail.rfind('\n');
  if (end == std::string::npos) return std::string();
  const std::size_t start = end == 0 ? std::string::npos : tail.rfind('\n', end - 1);
  if (start == std::string::npos && window < size) {
    return core::FailedPreconditionError("audit log " + path +
                                         ": last line longer than a record can be");
  }
  const std::size_t from = start == std::string::npos ? 0 : start + 1;
  return tail.substr(from, end - from);
}

// What the newest archived segment ends with: the chain the active file continues.
struct Predecessor {
  AuditHead head;
  std::string line_hash;  // SHA-256 of its last line: the next record's prev
  std::string time;       // its last record's time
};
core::Result<std::optional<Predecessor>> ReadSegmentEnd(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string line, ReadLastLine(path));
  if (line.empty()) return std::optional<Predecessor>();
  auto parsed = internal::ParseAuditLine(line);
  if (!parsed.ok()) {
    return core::FailedPreconditionError("the last line of archived audit segment " + path +
                                         " is not a record: " + parsed.status().message());
  }
  Predecessor p;
  p.head = AuditHead{parsed->entry.seq, parsed->hash};
  p.line_hash = internal::Sha256Hex(line);
  p.time = parsed->entry.time;
  return std::optional<Predecessor>(std::move(p));
}

// Opens the log file for appending, creating it (0600) if needed, and takes an exclusive lock so
// that no second process extends the same chain.
core::Result<int> OpenAndLock(const std::string& path) {
  constexpr int kFlags = O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW;
  bool created = true;
  int fd = ::open(path.c_str(), kFlags | O_CREAT | O_EXCL, 0600);
  if (fd < 0 && errno == EEXIST) {
    created = false;
    fd = ::open(path.c_str(), kFlags);
  }
  if (fd < 0) return core::ErrnoStatus("open audit log " + path, errno);
  FdGuard guard(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return core::FailedPreconditionError("audit log " + path +
                                           " is locked by another writer (process or AuditLog)");
    }
    return core::ErrnoStatus("lock audit log " + path, errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return core::ErrnoStatus("stat audit log " + path, errno);
  if (!S_ISREG(st.st_mode)) {
    return core::FailedPreconditionError("audit log " + path + " is not a regular file");
  }
  if ((st.st_mode & 07777) != 0600 && ::fchmod(fd, 0600) != 0) {
    return core::ErrnoStatus("chmod 0600 audit log " + path, errno);
  }
  if (created) {
    if (::fsync(fd) != 0) return core::ErrnoStatus("fsync audit log " + path, errno);
    RETURN_IF_ERROR(SyncDir(path));
  }
  return guard.release();
}

struct Inspection {
  std::uint64_t truncated_bytes = 0;
  std::uint64_t truncated_offset = 0;
  std::string truncated_sha256;
  bool broken = false;
  std::string problem;          // when broken
  AuditHead head;               // last record (when not broken)
  std::string next_prev;        // SHA-256 of the last line, or the genesis value
  std::uint64_t first_seq = 0;  // of the file's first record; 0: empty
  std::uint64_t size = 0;       // bytes after any repair
};

// The seq of the first line, if it is a record.
core::Result<std::uint64_t> FirstSeq(int fd, std::uint64_t size) {
  internal::LineReader reader(fd, size);
  ASSIGN_OR_RETURN(auto first, reader.Next());
  if (!first.has_value() || !first->terminated || first->oversized) return std::uint64_t{0};
  auto parsed = internal::ParseAuditLine(first->text);
  return parsed.ok() ? parsed->entry.seq : std::uint64_t{0};
}

// Cuts off a final line without newline (a write a crash interrupted). A "line" longer than any
// record could be is not such a crash artefact: it is left for the chain check to reject.
Status TruncatePartialTail(int fd, const std::string& path, std::uint64_t& size, Inspection& out) {
  if (size == 0) return Status::Ok();
  char last = 0;
  RETURN_IF_ERROR(PreadFully(fd, &last, 1, size - 1, path));
  if (last == '\n') return Status::Ok();
  // Find the last newline within one maximal line of the end.
  const std::uint64_t window = std::min<std::uint64_t>(size, kMaxAuditLineBytes + 1);
  std::string tail(window, '\0');
  RETURN_IF_ERROR(PreadFully(fd, tail.data(), window, size - window, path));
  const std::size_t nl = tail.rfind('\n');
  std::uint64_t cut_at = 0;
  if (nl != std::string::npos) {
    cut_at = size - window + nl + 1;
  } else if (window < size) {
    return Status::Ok();  // too long to be a partial record: corruption, reported by the check
  }
  const std::string removed = tail.substr(static_cast<std::size_t>(cut_at - (size - window)));
  if (::ftruncate(fd, static_cast<off_t>(cut_at)) != 0) {
    return core::ErrnoStatus("truncate audit log " + path, errno);
  }
  if (::fsync(fd) != 0) return core::ErrnoStatus("fsync audit log " + path, errno);
  out.truncated_bytes = size - cut_at;
  out.truncated_offset = cut_at;
  out.truncated_sha256 = internal::Sha256Hex(removed);
  size = cut_at;
  return Status::Ok();
}

// Feeds every line of [0, size) to `checker`.
Status CheckWholeFile(int fd, std::uint64_t size, internal::ChainChecker& checker) {
  internal::LineReader reader(fd, size);
  std::uint64_t line_no = 0;
  for (;;) {
    ASSIGN_OR_RETURN(auto next, reader.Next());
    if (!next.has_value()) break;
    ++line_no;
    if (!next->terminated) {
      checker.Finish(/*incomplete_tail=*/true, line_no);
      return Status::Ok();
    }
    if (next->oversized) {
      checker.FeedOversized(line_no);
    } else {
      checker.Feed(next->text, line_no);
    }
  }
  checker.Finish(false, line_no);
  return Status::Ok();
}

// Checks the complete lines among the last two maximal lines' worth of bytes. If that window is
// the whole file, the check starts from genesis.
Status CheckTail(int fd, std::uint64_t size, const std::string& path,
                 internal::ChainChecker& genesis_checker, internal::ChainChecker& tail_checker,
                 bool& used_genesis) {
  const std::uint64_t window = std::min<std::uint64_t>(size, 2 * (kMaxAuditLineBytes + 1));
  if (window == size) {
    used_genesis = true;
    return CheckWholeFile(fd, size, genesis_checker);
  }
  used_genesis = false;
  std::string tail(window, '\0');
  RETURN_IF_ERROR(PreadFully(fd, tail.data(), window, size - window, path));
  // The window starts inside some line: skip to the first line boundary.
  std::size_t pos = tail.find('\n');
  if (pos == std::string::npos || pos + 1 >= tail.size()) {
    tail_checker.FeedOversized(1);
    return Status::Ok();
  }
  ++pos;
  std::uint64_t line_no = 0;
  while (pos < tail.size()) {
    const std::size_t nl = tail.find('\n', pos);
    if (nl == std::string::npos) break;  // cannot happen: the file ends with a newline
    tail_checker.Feed(std::string_view(tail).substr(pos, nl - pos), ++line_no);
    pos = nl + 1;
  }
  tail_checker.Finish(false, line_no);
  return Status::Ok();
}

// The chain a new (or empty) active file starts: where the newest archived segment ends, else
// genesis.
void StartAfter(const std::optional<Predecessor>& pred, Inspection& out) {
  out.head = pred.has_value() ? pred->head : AuditHead{};
  out.next_prev = pred.has_value() ? pred->line_hash : std::string(internal::kAuditGenesisPrev);
}

core::Result<Inspection> Inspect(int fd, const std::string& path, AuditLog::OpenCheck check,
                                 const std::optional<Predecessor>& pred) {
  Inspection out;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return core::ErrnoStatus("stat audit log " + path, errno);
  std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  RETURN_IF_ERROR(TruncatePartialTail(fd, path, size, out));
  out.size = size;
  if (size == 0) {
    StartAfter(pred, out);
    return out;
  }
  ASSIGN_OR_RETURN(out.first_seq, FirstSeq(fd, size));

  // From the start of the file: it continues the newest archived segment; without one it starts
  // at genesis, or where a prune record in it says the records before were pruned.
  internal::ChainChecker genesis_checker =
      pred.has_value() ? internal::ChainChecker(pred->head.seq + 1, pred->line_hash, std::nullopt)
                       : internal::ChainChecker(/*from_genesis=*/true, std::nullopt);
  if (!pred.has_value()) genesis_checker.AllowPrunedStart();
  internal::ChainChecker tail_checker(/*from_genesis=*/false, std::nullopt);
  bool used_genesis = true;
  if (check == AuditLog::OpenCheck::kFull) {
    RETURN_IF_ERROR(CheckWholeFile(fd, size, genesis_checker));
  } else {
    RETURN_IF_ERROR(CheckTail(fd, size, path, genesis_checker, tail_checker, used_genesis));
  }
  const internal::ChainChecker& checker = used_genesis ? genesis_checker : tail_checker;
  if (checker.failed()) {
    out.broken = true;
    out.problem = used_genesis ? checker.report().ToString()
                               : "in the last records of the file: " + checker.report().ToString();
    return out;
  }
  out.head = checker.report().head;
  if (out.head.seq == 0) {
    StartAfter(pred, out);
  } else {
    out.next_prev = checker.last_line_hash();
  }
  return out;
}

}  // namespace

core::Result<std::vector<AuditSegment>> ListAuditSegments(const std::string& active_path) {
  std::vector<AuditSegment> out;
  const std::string dir = ArchiveDir(active_path);
  const std::string stem = ArchiveStem(active_path);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr && errno != ENOENT) return core::ErrnoStatus("open " + dir, errno);
  if (d != nullptr) {
    while (const dirent* e = ::readdir(d)) {
      AuditSegment seg;
      if (!ParseSegmentName(e->d_name, stem, seg.first_seq, seg.last_seq)) continue;
      seg.path = dir + "/" + e->d_name;
      out.push_back(std::move(seg));
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end(), [](const AuditSegment& a, const AuditSegment& b) {
    return a.first_seq != b.first_seq ? a.first_seq < b.first_seq : a.last_seq < b.last_seq;
  });
  if (::access(active_path.c_str(), F_OK) == 0) {
    out.push_back(AuditSegment{.path = active_path, .active = true});
  }
  return out;
}

std::string_view AuditOutcomeName(AuditOutcome outcome) {
  switch (outcome) {
    case AuditOutcome::kAllowed:
      return "allowed";
    case AuditOutcome::kDenied:
      return "denied";
    case AuditOutcome::kError:
      return "error";
  }
  return "error";
}

std::string AuditHmac(const core::SecretBytes& key, const core::SecretBytes& value) {
  return std::string(internal::kAuditHmacPrefix) +
         internal::HmacSha256Hex(key.RevealBytes(), value.RevealBytes());
}

bool AuditHmacMatches(const core::SecretBytes& key, std::string_view stored,
                      const core::SecretBytes& candidate) {
  const std::string expected = AuditHmac(key, candidate);
  if (stored.size() != expected.size()) return false;
  return CRYPTO_memcmp(stored.data(), expected.data(), expected.size()) == 0;
}

struct AuditLog::Metrics {
  explicit Metrics(MetricsRegistry& registry)
      : records(
            registry.Counter("moatless_audit_records_total", "Audit records written and synced.")),
        failures(registry.Counter("moatless_audit_write_failures_total",
                                  "Failed audit log writes or syncs (the log then refuses "
                                  "appends until reopened).")),
        sync_seconds(registry.Histogram("moatless_audit_sync_seconds",
                                        "Time to write and fdatasync one batch of audit records.")),
        batch_records(registry.Histogram("moatless_audit_batch_records",
                                         "Audit records per write and fdatasync (group commit).",
                                         {}, ExponentialBuckets(1, 2, 9))),
        archived(registry.Counter("moatless_audit_segments_archived_total",
                                  "Audit log files archived as segments (rotations).")),
        pruned(registry.Counter("moatless_audit_segments_pruned_total",
                                "Archived audit segments removed by retention.")) {}
  CounterFamily& records;
  CounterFamily& failures;
  HistogramFamily& sync_seconds;
  HistogramFamily& batch_records;
  CounterFamily& archived;
  CounterFamily& pruned;
};

AuditLog::AuditLog(std::string path, int fd, core::SecretBytes key, const core::Clock& clock,
                   Options options)
    : path_(std::move(path)),
      fd_(fd),
      key_(std::move(key)),
      clock_(clock),
      options_(std::move(options)) {
  if (options_.metrics != nullptr) metrics_ = std::make_unique<Metrics>(*options_.metrics);
}

void AuditLog::Start() {
  if (options_.max_wait.count() > 0) watchdog_ = std::thread([this] { WatchdogLoop(); });
  writer_ = std::thread([this] { WriterLoop(); });
  const bool retention =
      options_.retention_segments > 0 || options_.retention_age > std::chrono::hours(0);
  if (retention && options_.maintain_interval.count() > 0) {
    maintain_due_ = true;  // prune once at start
    maintainer_ = std::thread([this] { MaintainLoop(); });
  }
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  maintain_cv_.notify_all();
  if (maintainer_.joinable()) maintainer_.join();
  watchdog_cv_.notify_all();
  pending_cv_.notify_one();
  if (watchdog_.joinable()) watchdog_.join();
  if (writer_.joinable()) writer_.join();
  ::close(fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

core::Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path,
                                                       core::SecretBytes key,
                                                       const core::Clock& clock, Options options) {
  if (key.size() < kMinAuditKeyBytes) {
    return core::InvalidArgumentError("the audit key must be at least " +
                                      std::to_string(kMinAuditKeyBytes) + " bytes");
  }
  ASSIGN_OR_RETURN(const int lock_fd, LockLog(path));
  FdGuard lock_holder(lock_fd);
  // The newest archived segment, whose chain the active file continues.
  ASSIGN_OR_RETURN(const std::vector<AuditSegment> segments, ListAuditSegments(path));
  std::optional<Predecessor> pred;
  for (auto it = segments.rbegin(); it != segments.rend() && !pred.has_value(); ++it) {
    if (!it->active) {
      ASSIGN_OR_RETURN(pred, ReadSegmentEnd(it->path));
    }
  }
  ASSIGN_OR_RETURN(const int first_fd, OpenAndLock(path));
  FdGuard fd(first_fd);
  ASSIGN_OR_RETURN(Inspection found, Inspect(fd.get(), path, options.check, pred));

  OpenInfo info;
  info.truncated_bytes = found.truncated_bytes;
  if (found.broken) {
    if (options.on_broken_chain == OnBrokenChain::kFail) {
      return core::FailedPreconditionError(
          "audit log " + path + " does not verify (" + found.problem +
          "); refusing to extend a broken chain: investigate it with VerifyAuditLog, or open "
          "it with on_broken_chain = kStartNewSegment to set it aside and start a new file");
    }
    // Set the broken file aside under a name no other file has, then start afresh. The old
    // descriptor (and its lock) is held until the new file is locked.
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count();
    std::string aside = path + ".broken-" + std::to_string(now);
    for (int n = 1; ::access(aside.c_str(), F_OK) == 0; ++n) {
      aside = path + ".broken-" + std::to_string(now) + "-" + std::to_string(n);
    }
    if (::rename(path.c_str(), aside.c_str()) != 0) {
      return core::ErrnoStatus("set aside broken audit log " + path, errno);
    }
    RETURN_IF_ERROR(SyncDir(path));
    ASSIGN_OR_RETURN(const int new_fd, OpenAndLock(path));
    fd.reset(new_fd);
    info.set_aside_file = aside;
    info.broken_chain_problem = found.problem;
    found = Inspection{};
    StartAfter(pred, found);  // the new file continues the archived segments, if any
  }
  info.existing_records = found.head.seq;

  std::unique_ptr<AuditLog> log(
      new AuditLog(path, fd.release(), std::move(key), clock, std::move(options)));
  log->open_info_ = info;
  log->lock_fd_ = lock_holder.release();
  log->active_bytes_ = found.size;
  log->active_first_seq_ = found.first_seq;
  {
    std::lock_guard lock(log->mu_);
    log->next_seq_ = found.head.seq + 1;
    log->prev_ = found.next_prev;
    log->durable_head_ = found.head;
    log->pending_head_ = found.head;
  }
  log->Start();

  if (!info.set_aside_file.empty()) {
    AuditRecord record;
    record.actor = log->options_.self_actor;
    record.action = "audit:StartSegment";
    record.resource = path;
    record.outcome = AuditOutcome::kError;
    record.reason =
        "the previous audit log did not verify; it was set aside and this file starts a new "
        "chain";
    record.fields = {{"set_aside_file", info.set_aside_file},
                     {"problem", info.broken_chain_problem}};
    RETURN_IF_ERROR(log->Append(record));
  }
  if (found.truncated_bytes > 0) {
    AuditRecord record;
    record.actor = log->options_.self_actor;
    record.action = "audit:TruncatePartialRecord";
    // The partial line was cut from the file that was found at `path`, which may since have been
    // set aside.
    record.resource = info.set_aside_file.empty() ? path : info.set_aside_file;
    record.outcome = AuditOutcome::kError;
    record.reason =
        "the final line had no newline: a write interrupted by a crash, never acknowledged; it "
        "was cut off";
    record.fields = {{"truncated_bytes", std::to_string(found.truncated_bytes)},
                     {"truncated_offset", std::to_string(found.truncated_offset)},
                     {"truncated_sha256", found.truncated_sha256}};
    RETURN_IF_ERROR(log->Append(record));
  }
  return log;
}

std::string AuditLog::Hmac(const core::SecretBytes& value) const { return AuditHmac(key_, value); }

Status AuditLog::Rotate() {
  const std::string dir = ArchiveDir(path_);
  if (::mkdir(dir.c_str(), 0700) == 0) {
    RETURN_IF_ERROR(SyncDir(dir));  // the new directory's entry in its parent
  } else if (errno != EEXIST) {
    return core::ErrnoStatus("create " + dir, errno);
  }
  std::uint64_t last = 0;
  {
    std::lock_guard lock(mu_);
    last = durable_head_.seq;
  }
  const std::string archived = dir + "/" + ArchiveStem(path_) + "-" +
                               std::to_string(active_first_seq_) + "-" + std::to_string(last) +
                               ".log";
  if (::access(archived.c_str(), F_OK) == 0) {
    return core::FailedPreconditionError("cannot archive audit log " + path_ + ": " + archived +
                                         " exists");
  }
  // Crash-safe order: once the rename is durable the active path is free; a crash before the new
  // file exists (or holds a record) leaves nothing to repair, since Open continues the chain from
  // the newest archived segment.
  if (::rename(path_.c_str(), archived.c_str()) != 0) {
    return core::ErrnoStatus("archive audit log " + path_ + " as " + archived, errno);
  }
  RETURN_IF_ERROR(SyncDir(archived));
  RETURN_IF_ERROR(SyncDir(path_));
  ASSIGN_OR_RETURN(const int new_fd, OpenAndLock(path_));
  ::close(std::exchange(fd_, new_fd));
  active_bytes_ = 0;
  active_first_seq_ = 0;
  if (metrics_ != nullptr) metrics_->archived.Inc();
  {
    std::lock_guard lock(mu_);
    maintain_due_ = true;
  }
  maintain_cv_.notify_all();
  return Status::Ok();
}

core::Result<std::size_t> AuditLog::Prune() {
  std::lock_guard prune_lock(prune_mu_);
  const bool by_age = options_.retention_age > std::chrono::hours(0);
  const std::string cutoff =
      by_age ? core::FormatRfc3339(clock_.Now() - options_.retention_age) : std::string();
  std::size_t removed = 0;
  // Oldest first, listing again after each removal: the prune records themselves may fill the
  // active file and rotate it.
  for (;;) {
    ASSIGN_OR_RETURN(std::vector<AuditSegment> segments, ListAuditSegments(path_));
    std::erase_if(segments, [](const AuditSegment& s) { return s.active; });
    if (segments.empty()) break;
    const AuditSegment& seg = segments.front();
    const bool too_many =
        options_.retention_segments > 0 && segments.size() > options_.retention_segments;
    ASSIGN_OR_RETURN(const std::optional<Predecessor> end, ReadSegmentEnd(seg.path));
    const bool too_old = by_age && end.has_value() && end->time < cutoff;
    if (!too_many && !too_old) break;
    if (!end.has_value()) {
      return core::FailedPreconditionError("archived audit segment " + seg.path +
                                           " holds no record; not pruning past it");
    }
    // Record the removal first: the record carries the removed segment's head (an anchor for a
    // copy kept elsewhere) and the seq and prev the remaining chain starts with, which is what
    // lets the verifier accept a chain that no longer starts at seq 1. A crash before the file
    // is gone leaves a longer chain that verifies too; the next Prune records it again.
    AuditRecord record;
    record.actor = options_.self_actor;
    record.action = std::string(kAuditPruneAction);
    record.resource = seg.path;
    record.outcome = AuditOutcome::kAllowed;
    record.reason = too_many
                        ? "retention: more than " + std::to_string(options_.retention_segments) +
                              " archived segments"
                        : "retention: the segment's last record is older than " +
                              std::to_string(options_.retention_age.count()) + " h";
    record.fields = {{"removed_file", Basename(seg.path)},
                     {"removed_first_seq", std::to_string(seg.first_seq)},
                     {"removed_last_seq", std::to_string(end->head.seq)},
                     {"removed_last_hash", end->head.hash},
                     {std::string(kAuditPruneFirstKeptSeq), std::to_string(end->head.seq + 1)},
                     {std::string(kAuditPruneFirstKeptPrev), end->line_hash}};
    RETURN_IF_ERROR(Append(record));
    if (::unlink(seg.path.c_str()) != 0 && errno != ENOENT) {
      return core::ErrnoStatus("remove archived audit segment " + seg.path, errno);
    }
    RETURN_IF_ERROR(SyncDir(seg.path));
    if (metrics_ != nullptr) metrics_->pruned.Inc();
    ++removed;
  }
  return removed;
}

void AuditLog::MaintainLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    maintain_cv_.wait_for(lock, options_.maintain_interval,
                          [&] { return stopping_ || maintain_due_; });
    if (stopping_) return;
    maintain_due_ = false;
    lock.unlock();
    // A failure (the log itself failing, an unreadable segment) leaves the segments in place;
    // the next round tries again. Nothing is lost by pruning later.
    Prune().status().IgnoreError();
    lock.lock();
  }
}

AuditHead AuditLog::Head() const {
  std::lock_guard lock(mu_);
  return durable_head_;
}

Status AuditLog::Health() const {
  std::lock_guard lock(mu_);
  return failed_;
}

Status AuditLog::WriteAndSync(std::string_view batch) {
  while (!batch.empty()) {
    const ssize_t n = ::write(fd_, batch.data(), batch.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return core::ErrnoStatus("write audit log " + path_, errno);
    }
    batch.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::fdatasync(fd_) != 0) return core::ErrnoStatus("fdatasync audit log " + path_, errno);
  return Status::Ok();
}

Status AuditLog::Append(const AuditRecord& record) {
  ASSIGN_OR_RETURN(const std::uint64_t seq, Sequence(record));
  return WaitDurable(seq);
}

core::Result<std::uint64_t> AuditLog::Sequence(const AuditRecord& record) {
  if (record.actor.empty()) return core::InvalidArgumentError("audit record without actor");
  if (record.action.empty()) return core::InvalidArgumentError("audit record without action");

  // Everything that does not depend on the position in the chain is built outside the lock.
  internal::AuditEntry entry;
  entry.actor = SanitizeUtf8(record.actor);
  entry.action = SanitizeUtf8(record.action);
  entry.resource = SanitizeUtf8(record.resource);
  entry.outcome = std::string(AuditOutcomeName(record.outcome));
  entry.request_id = SanitizeUtf8(record.request_id);
  entry.reason = SanitizeUtf8(record.reason);
  for (const auto& [key, value] : record.fields) {
    if (key.empty()) return core::InvalidArgumentError("audit record field with an empty key");
    if (!entry.fields.emplace(SanitizeUtf8(key), SanitizeUtf8(value)).second) {
      return core::InvalidArgumentError("audit record field '" + SanitizeUtf8(key) +
                                        "' given twice");
    }
  }
  for (const auto& [key, value] : record.sensitive_fields) {
    if (key.empty()) return core::InvalidArgumentError("audit record field with an empty key");
    if (!entry.fields.emplace(SanitizeUtf8(key), AuditHmac(key_, value)).second) {
      return core::InvalidArgumentError("audit record field '" + SanitizeUtf8(key) +
                                        "' given twice");
    }
  }

  std::unique_lock lock(mu_);
  if (!failed_.ok()) return failed_;
  if (stopping_) return core::UnavailableError("the audit log is closing");
  entry.seq = next_seq_;
  entry.time = core::FormatRfc3339(clock_.Now());
  entry.prev = prev_;
  const std::string body = internal::CanonicalBody(entry);
  const std::string hash = internal::Sha256Hex(body);
  std::string line = internal::LineWithHash(body, hash);
  if (line.size() + 1 > kMaxAuditLineBytes) {
    return core::InvalidArgumentError("audit record of " + std::to_string(line.size()) +
                                      " bytes exceeds the limit of " +
                                      std::to_string(kMaxAuditLineBytes));
  }
  ++next_seq_;
  prev_ = internal::Sha256Hex(line);
  line += '\n';
  const bool was_idle = pending_.empty();
  pending_ += line;
  ++pending_records_;
  pending_head_ = AuditHead{entry.seq, hash};
  lock.unlock();
  if (was_idle) pending_cv_.notify_one();
  return entry.seq;
}

Status AuditLog::TimedOut() const {
  return core::UnavailableError("the audit record was not durable within " +
                                std::to_string(options_.max_wait.count()) +
                                " ms (a hung or very slow disk?)");
}

Status AuditLog::WaitDurable(std::uint64_t seq) {
  std::unique_lock lock(mu_);
  auto done = [&] { return durable_head_.seq >= seq || !failed_.ok(); };
  if (options_.max_wait.count() > 0) {
    if (!durable_cv_.wait_for(lock, options_.max_wait, done)) return TimedOut();
  } else {
    durable_cv_.wait(lock, done);
  }
  return durable_head_.seq >= seq ? Status::Ok() : failed_;
}

void AuditLog::WatchdogLoop() {
  const auto period = std::max(options_.max_wait / 4, std::chrono::milliseconds(5));
  std::unique_lock lock(mu_);
  while (!stopping_) {
    watchdog_cv_.wait_for(lock, period, [&] { return stopping_; });
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::function<void(Status)>> expired;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->second.deadline <= now) {
        expired.push_back(std::move(it->second.done));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
    if (expired.empty()) continue;
    const Status timed_out = TimedOut();
    lock.unlock();
    for (auto& done : expired) done(timed_out);
    lock.lock();
  }
}

void AuditLog::WhenDurable(std::uint64_t seq, std::function<void(Status)> done) {
  std::unique_lock lock(mu_);
  if (durable_head_.seq >= seq || !failed_.ok()) {
    const Status result = durable_head_.seq >= seq ? Status::Ok() : failed_;
    lock.unlock();
    done(result);
    return;
  }
  waiters_.emplace(seq, Waiter{.done = std::move(done),
                               .deadline = std::chrono::steady_clock::now() + options_.max_wait});
}

// The writer thread: takes everything sequenced so far, writes and syncs it in one go, then wakes
// the records' waiters; records sequenced meanwhile form the next batch.
void AuditLog::WriterLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    pending_cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
    if (pending_.empty()) return;  // stopping, and everything is written
    // Under load, let a batch gather until min_sync_interval has passed since the last sync
    // began: fewer, larger syncs. An isolated record (the last sync long ago) goes out at once.
    const auto ready_at = last_sync_start_ + options_.min_sync_interval;
    if (ready_at > std::chrono::steady_clock::now()) {
      pending_cv_.wait_until(lock, ready_at,
                             [&] { return stopping_ || pending_records_ >= kFullBatch; });
    }
    std::string batch = std::move(pending_);
    pending_.clear();
    const AuditHead batch_head = pending_head_;
    const std::uint64_t batch_records = std::exchange(pending_records_, 0);
    Status written = failed_;
    if (failed_.ok()) {
      last_sync_start_ = std::chrono::steady_clock::now();
      lock.unlock();
      const core::MonoTime start = clock_.MonotonicNow();
      if (options_.before_sync) options_.before_sync();
      written = WriteAndSync(batch);
      if (written.ok()) {
        if (active_first_seq_ == 0) active_first_seq_ = batch_head.seq - batch_records + 1;
        active_bytes_ += batch.size();
      }
      if (metrics_ != nullptr) {
        const std::chrono::duration<double> took = clock_.MonotonicNow() - start;
        metrics_->sync_seconds.Observe(took.count());
        metrics_->batch_records.Observe(static_cast<double>(batch_records));
        if (written.ok()) {
          metrics_->records.Add(static_cast<double>(batch_records));
        } else {
          metrics_->failures.Inc();
        }
      }
      lock.lock();
      if (written.ok()) {
        durable_head_ = batch_head;
      } else {
        failed_ = core::UnavailableError(written.message() +
                                         "; the audit log accepts no appends until reopened");
      }
    }
    durable_cv_.notify_all();
    // Once the log failed, every waiter learns it; otherwise those this batch covered.
    const auto end = failed_.ok() ? waiters_.upper_bound(durable_head_.seq) : waiters_.end();
    std::vector<std::function<void(Status)>> ready;
    for (auto it = waiters_.begin(); it != end; ++it) ready.push_back(std::move(it->second.done));
    waiters_.erase(waiters_.begin(), end);
    const Status result = failed_;
    lock.unlock();
    for (auto& done : ready) done(result);
    if (result.ok() && options_.segment_bytes > 0 && active_bytes_ >= options_.segment_bytes) {
      // Between batches: whatever is sequenced meanwhile goes to the new file.
      const Status rotated = Rotate();
      if (!rotated.ok()) {
        if (metrics_ != nullptr) metrics_->failures.Inc();
        lock.lock();
        if (failed_.ok()) {
          failed_ = core::UnavailableError(rotated.message() +
                                           "; the audit log accepts no appends until reopened");
        }
        durable_cv_.notify_all();
        continue;
      }
    }
    lock.lock();
  }
}

}  // namespace moatless::observe
