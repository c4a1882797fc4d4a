#include "observe/audit_log.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
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
  std::string problem;    // when broken
  AuditHead head;         // last record (when not broken)
  std::string next_prev;  // SHA-256 of the last line, or the genesis value
};

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

core::Result<Inspection> Inspect(int fd, const std::string& path, AuditLog::OpenCheck check) {
  Inspection out;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return core::ErrnoStatus("stat audit log " + path, errno);
  std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  RETURN_IF_ERROR(TruncatePartialTail(fd, path, size, out));

  internal::ChainChecker genesis_checker(/*from_genesis=*/true, std::nullopt);
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
  out.next_prev =
      out.head.seq == 0 ? std::string(internal::kAuditGenesisPrev) : checker.last_line_hash();
  return out;
}

}  // namespace

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
                                         {}, ExponentialBuckets(1, 2, 9))) {}
  CounterFamily& records;
  CounterFamily& failures;
  HistogramFamily& sync_seconds;
  HistogramFamily& batch_records;
};

AuditLog::AuditLog(std::string path, int fd, core::SecretBytes key, const core::Clock& clock,
                   Options options)
    : path_(std::move(path)),
      fd_(fd),
      key_(std::move(key)),
      clock_(clock),
      options_(std::move(options)) {
  if (options_.metrics != nullptr) metrics_ = std::make_unique<Metrics>(*options_.metrics);
  if (options_.max_wait.count() > 0) watchdog_ = std::thread([this] { WatchdogLoop(); });
  writer_ = std::thread([this] { WriterLoop(); });
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  watchdog_cv_.notify_all();
  pending_cv_.notify_one();
  if (watchdog_.joinable()) watchdog_.join();
  writer_.join();
  ::close(fd_);
}

core::Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path,
                                                       core::SecretBytes key,
                                                       const core::Clock& clock, Options options) {
  if (key.size() < kMinAuditKeyBytes) {
    return core::InvalidArgumentError("the audit key must be at least " +
                                      std::to_string(kMinAuditKeyBytes) + " bytes");
  }
  ASSIGN_OR_RETURN(const int first_fd, OpenAndLock(path));
  FdGuard fd(first_fd);
  ASSIGN_OR_RETURN(Inspection found, Inspect(fd.get(), path, options.check));

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
    found.next_prev = std::string(internal::kAuditGenesisPrev);
  }
  info.existing_records = found.head.seq;

  std::unique_ptr<AuditLog> log(
      new AuditLog(path, fd.release(), std::move(key), clock, std::move(options)));
  log->open_info_ = info;
  {
    std::lock_guard lock(log->mu_);
    log->next_seq_ = found.head.seq + 1;
    log->prev_ = found.next_prev;
    log->durable_head_ = found.head;
    log->pending_head_ = found.head;
  }

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
    lock.lock();
  }
}

}  // namespace moatless::observe
