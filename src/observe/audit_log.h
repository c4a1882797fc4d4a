// The audit log: an append-only, hash-chained, durable record of security-relevant actions (who
// did what to which resource, and whether it was allowed), and its verifier.
//
// Each record is one JSON line (README.md has the exact format):
//
//   {"seq":7,"time":"…","actor":"arn:…","action":"secretsmanager:GetSecretValue",
//    "resource":"arn:…","outcome":"allowed","request_id":"…","reason":"…",
//    "fields":{"key_id":"hmac-sha256:3f…","stage":"prod"},"prev":"<hex>","hash":"<hex>"}
//
// `seq` counts 1, 2, 3, … with no gap; `prev` is the SHA-256 of the previous line (64 zeros for
// the first); `hash` is the SHA-256 of the record's canonical serialisation without `hash`.
// Editing, deleting, inserting or reordering records therefore breaks the chain where it happened.
// Cutting records off the end leaves a valid shorter chain: that is detectable only against a head
// (seq, hash) recorded elsewhere — publish AuditLog::Head() or VerifyAuditLog's head to a place the
// host's operator cannot rewrite (another system, a ticket, a transparency log) and pass it back as
// `expected_head`. Likewise, someone able to rewrite the whole file can recompute every hash; only
// an external anchor detects that.
//
// Sensitive field values are never stored: only `hmac-sha256:<hex>` of the value under the audit
// key, so an operator holding the key can check whether a given value was used (AuditHmacMatches)
// without the log revealing it to anyone who can read the file.
//
// Durability: a record is durable once its line is written and fdatasync'ed; an action may be
// acknowledged only after its record is. Append returns once it is. Sequence returns as soon as the
// record has its place in the chain and leaves the disk to the log's writer thread, so a caller
// that must not block (an I/O thread) can do other work and learn of durability through
// WhenDurable. An error means the action must not proceed (the record may or may not have reached
// the file). After a failed write or sync the log fails every later and every pending record (the
// kernel may have dropped the unsynced pages, and a retry could silently succeed on top of them):
// reopen it, which verifies and repairs the tail.
//
// Opening: the existing file is checked before the chain is extended. A final line without its
// newline is a write that a crash interrupted, so it was never acknowledged: Open cuts it off and
// appends a record saying so (action "audit:TruncatePartialRecord"). A chain that does not verify
// (an edited, deleted, reordered or malformed record) is an error by default: the log refuses to
// extend evidence of tampering. With `on_broken_chain = kStartNewSegment`, the broken file is
// renamed to `<path>.broken-<unix seconds>` (kept for investigation, untouched) and a new file is
// started whose first record (action "audit:StartSegment") names it and the problem found.
//
// Segments: with `segment_bytes` set, the active file is archived as
// `<dir>/archive/<stem>-<first seq>-<last seq>.log` once it is that large, and the chain goes on
// in a new active file (seq and prev continue: the segments are slices of one chain). Open
// continues from the newest archived segment, so a crash between the archiving rename and the new
// file's first record needs no repair. Retention removes the oldest archived segments, each after
// recording an audit:PruneSegments record that names the chain's new start, which is what lets
// VerifyAuditSegments accept a log that no longer starts at seq 1 (README.md, "Segments").
//
// Ownership and threading: the composition root opens one AuditLog per file and passes it by
// reference; it owns the key. The file is locked (flock) against a second writer process. One
// writer thread, owned by the log, writes and syncs: whatever was sequenced while it synced the
// previous batch goes out in one write and one fdatasync (group commit), and seq order is the
// order of the lines in the file. Every member function is thread-safe. Destroying the log
// writes and syncs what is pending and runs the remaining WhenDurable callbacks; destroy it only
// when no other thread is still calling it. The verifier functions are stateless and
// thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/secret_bytes.h"
#include "core/status.h"
#include "observe/metrics.h"

namespace moatless::observe {

inline constexpr std::size_t kMinAuditKeyBytes = 32;
// A record's line may not exceed this (Append fails with InvalidArgument).
inline constexpr std::size_t kMaxAuditLineBytes = 1 << 20;

enum class AuditOutcome { kAllowed, kDenied, kError };
// "allowed", "denied", "error".
std::string_view AuditOutcomeName(AuditOutcome outcome);

struct AuditRecord {
  std::string actor;     // principal ARN or id; required
  std::string action;    // e.g. "secretsmanager:GetSecretValue"; required
  std::string resource;  // ARN or id of what was acted on
  AuditOutcome outcome = AuditOutcome::kError;
  std::string request_id;
  std::string reason;  // why: the matching policy statement, the error
  // Stored in clear. Keys are unique across both maps.
  std::map<std::string, std::string> fields;
  // Stored only as "hmac-sha256:<hex>" under the audit key.
  std::map<std::string, core::SecretBytes> sensitive_fields;
};

// The last record of a log: what to anchor externally. seq 0 (and an empty hash) is an empty log.
struct AuditHead {
  std::uint64_t seq = 0;
  std::string hash;  // the record's `hash`
  friend bool operator==(const AuditHead&, const AuditHead&) = default;
};

enum class AuditOnBrokenChain {
  kFail,             // Open fails with FailedPrecondition
  kStartNewSegment,  // set the broken file aside and start a new one
};
enum class AuditOpenCheck {
  kTail,  // verify the last records (at least two) and their links: constant time
  kFull,  // verify the whole file: time linear in its size
};
struct AuditLogOptions {
  AuditOpenCheck check = AuditOpenCheck::kTail;
  AuditOnBrokenChain on_broken_chain = AuditOnBrokenChain::kFail;
  // Actor of the records the log writes about itself.
  std::string self_actor = "moatless";
  // If set, the log registers and records moatless_audit_* metrics there.
  MetricsRegistry* metrics = nullptr;
  // Group commit under load: the writer starts a sync no sooner than this after the previous one
  // started (or sooner once kFullBatch records wait), so that a busy log makes fewer, larger
  // syncs. A record that arrives when the last sync is older than this goes out at once. Zero:
  // sync as soon as anything is pending.
  std::chrono::microseconds min_sync_interval{1000};
  // The longest WaitDurable blocks and WhenDurable waits: past it the waiter is told Unavailable
  // (the action must fail) although the record may still reach the disk later, so that a hung or
  // very slow disk fails requests instead of hanging them. Zero: wait as long as it takes.
  std::chrono::milliseconds max_wait{10000};
  // Tests only: called by the writer thread before every write and sync (a slow or hung disk).
  std::function<void()> before_sync;

  // Segments: once the active file holds at least this many bytes, the writer thread archives it
  // as `<dir>/archive/<stem>-<first seq>-<last seq>.log` and continues the same chain (seq and
  // prev carry on) in a new active file. Zero: never rotate.
  std::uint64_t segment_bytes = 0;
  // Retention of archived segments (never the active file), oldest first: keep at most this many
  // archived segments (zero: no limit) ...
  std::uint64_t retention_segments = 0;
  // ... and none whose last record is older than this (zero: no age limit). Each removal is
  // recorded in the chain first (audit:PruneSegments), so that what remains still verifies.
  std::chrono::hours retention_age{0};
  // With a retention limit, a maintenance thread of the log prunes once when the log opens,
  // after every rotation, and at this interval. Zero: no thread (call Prune yourself).
  std::chrono::milliseconds maintain_interval{std::chrono::hours(1)};
};

// The action of the record that accounts for a pruned segment, and the fields the verifier reads
// from it: the first seq kept and the `prev` that record carries (the SHA-256 of the last removed
// line).
inline constexpr std::string_view kAuditPruneAction = "audit:PruneSegments";
inline constexpr std::string_view kAuditPruneFirstKeptSeq = "first_kept_seq";
inline constexpr std::string_view kAuditPruneFirstKeptPrev = "first_kept_prev";

// One file of a log: an archived segment or the active file.
struct AuditSegment {
  std::string path;
  bool active = false;
  std::uint64_t first_seq = 0;  // from an archived segment's name; 0 for the active file
  std::uint64_t last_seq = 0;
};
// The archived segments of the log whose active file is `active_path` (oldest first), then the
// active file itself if it exists. No archive directory: only the active file.
core::Result<std::vector<AuditSegment>> ListAuditSegments(const std::string& active_path);

class AuditLog {
 public:
  using OnBrokenChain = AuditOnBrokenChain;
  using OpenCheck = AuditOpenCheck;
  using Options = AuditLogOptions;
  // What Open found and did.
  struct OpenInfo {
    std::uint64_t existing_records = 0;  // seq of the last record found (0: new or empty file)
    std::uint64_t truncated_bytes = 0;   // length of the partial final line cut off (0: none)
    std::string set_aside_file;          // where a broken file was moved (kStartNewSegment)
    std::string broken_chain_problem;    // what was wrong with it
  };

  // Opens (creating with mode 0600) the log at `path`. `key` (>= 32 bytes) keys the HMAC of
  // sensitive fields. `clock` must outlive the log.
  static core::Result<std::unique_ptr<AuditLog>> Open(const std::string& path,
                                                      core::SecretBytes key,
                                                      const core::Clock& clock,
                                                      Options options = {});
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends a record and returns once it is durable (see above): Sequence, then WaitDurable.
  core::Status Append(const AuditRecord& record);
  // Gives the record its seq, time and place in the chain, queues it for the writer thread and
  // returns its seq without waiting for the disk. InvalidArgument: a required field is empty, a
  // field key is empty or given twice, the line would exceed kMaxAuditLineBytes (nothing is
  // sequenced). Unavailable: the log failed earlier.
  core::Result<std::uint64_t> Sequence(const AuditRecord& record);
  // Blocks until record `seq` (from Sequence) is durable: OK; or the write/sync failure that lost
  // it, or max_wait passing first (Unavailable).
  core::Status WaitDurable(std::uint64_t seq);
  // Calls `done` exactly once with what WaitDurable(seq) would return: on this thread before
  // returning if that is already known, otherwise on the writer thread (or, when max_wait passes,
  // the log's watchdog thread). `done` must be quick and must not call back into the log (hand
  // the result to another thread or executor).
  void WhenDurable(std::uint64_t seq, std::function<void(core::Status)> done);

  // Applies the retention limits now: removes the oldest archived segments past them, each after
  // its audit:PruneSegments record is durable. Returns how many were removed. Thread-safe; the
  // maintenance thread calls it too.
  core::Result<std::size_t> Prune();
  // The stored form of a sensitive value under this log's key ("hmac-sha256:<hex>"): what to look
  // for in `fields` to find records about a known value.
  std::string Hmac(const core::SecretBytes& value) const;

  // The last durable record.
  AuditHead Head() const;
  // OK while Append can still succeed; the sticky write/sync failure once one happened (the
  // log then refuses appends until it is reopened). What /readyz reports.
  core::Status Health() const;
  const OpenInfo& open_info() const { return open_info_; }
  const std::string& path() const { return path_; }

 private:
  struct Metrics;
  AuditLog(std::string path, int fd, core::SecretBytes key, const core::Clock& clock,
           Options options);
  // Starts the log's threads once Open has set it up.
  void Start();
  core::Status WriteAndSync(std::string_view batch);
  // Writer thread: archives the active file and opens a new one.
  core::Status Rotate();
  void WriterLoop();
  void MaintainLoop();
  // Tells the waiters whose max_wait has passed (the watchdog thread, when max_wait is set).
  void WatchdogLoop();
  core::Status TimedOut() const;

  const std::string path_;
  int fd_;            // the active file; replaced by Rotate on the writer thread only
  int lock_fd_ = -1;  // `<path>.lock`, flocked for the log's lifetime (across rotations)
  std::uint64_t active_bytes_ = 0;      // writer thread only (set before it starts)
  std::uint64_t active_first_seq_ = 0;  // writer thread only; 0: the active file is empty
  const core::SecretBytes key_;
  const core::Clock& clock_;
  const Options options_;
  OpenInfo open_info_;
  std::unique_ptr<Metrics> metrics_;

  mutable std::mutex mu_;
  std::condition_variable durable_cv_;  // durable_head_ moved or failed_ was set
  std::condition_variable pending_cv_;  // wakes the writer: pending_ grew or stopping_
  std::uint64_t next_seq_ = 1;
  std::string prev_;     // SHA-256 of the last line sequenced (written or pending)
  std::string pending_;  // sequenced lines not yet handed to write()
  std::uint64_t pending_records_ = 0;
  AuditHead pending_head_;  // the last record sequenced
  AuditHead durable_head_;  // the last record written and synced
  core::Status failed_;     // sticky: set by the first failed write or sync
  // WhenDurable callbacks by the seq they wait for, each with the time it gives up.
  struct Waiter {
    std::function<void(core::Status)> done;
    std::chrono::steady_clock::time_point deadline;
  };
  std::multimap<std::uint64_t, Waiter> waiters_;
  std::condition_variable watchdog_cv_;  // wakes the watchdog: stopping_
  bool stopping_ = false;
  std::chrono::steady_clock::time_point last_sync_start_;  // writer thread only
  static constexpr std::uint64_t kFullBatch = 1024;
  std::mutex prune_mu_;                  // one Prune at a time
  std::condition_variable maintain_cv_;  // wakes the maintenance thread: a rotation or stopping_
  bool maintain_due_ = false;
  std::thread maintainer_;  // runs MaintainLoop when retention and maintain_interval are set
  std::thread watchdog_;    // runs WatchdogLoop when max_wait is set
  std::thread writer_;      // last member: started by the constructor once the rest exists
};

// The stored form of a sensitive value: "hmac-sha256:<hex>" under `key`.
std::string AuditHmac(const core::SecretBytes& key, const core::SecretBytes& value);
// Whether `stored` (a sensitive field's value from the log) is the HMAC of `candidate` under
// `key`. Constant-time in the comparison.
bool AuditHmacMatches(const core::SecretBytes& key, std::string_view stored,
                      const core::SecretBytes& candidate);

enum class AuditProblem {
  kNone,
  kMalformedLine,       // not a record: not JSON, a key missing or mistyped, an empty line
  kHashMismatch,        // the content does not match its own hash: the record was edited
  kNonCanonical,        // content matches its hash but the bytes are not the canonical line
  kSeqGap,              // seq skips ahead: records were deleted
  kReordered,           // seq goes back or repeats, or the missing seq turns up later
  kPrevMismatch,        // prev is not the hash of the preceding line: the preceding record was
                        // rewritten (with a recomputed hash) or replaced
  kIncompleteLastLine,  // the final line has no newline: a write cut short by a crash
  kTruncated,           // the log ends before the anchored head's seq
  kHeadMismatch,        // the record at the anchored head's seq has another hash: rewritten
};
std::string_view AuditProblemName(AuditProblem problem);

struct AuditVerifyOptions {
  // A head recorded earlier (AuditLog::Head or a previous report). Without it, removing records
  // from the end of the log cannot be detected.
  std::optional<AuditHead> expected_head;
  // The file is one segment of a longer log: its first record is taken as the start without
  // checking what came before it (VerifyAuditLog only).
  bool segment = false;
};

struct AuditVerifyReport {
  bool ok() const { return problem == AuditProblem::kNone; }
  std::uint64_t records = 0;  // valid records before the first problem
  AuditHead head;             // the last of them
  AuditProblem problem = AuditProblem::kNone;
  std::uint64_t line = 0;            // 1-based line of the problem; 0 for anchor problems
  std::optional<std::uint64_t> seq;  // seq of the offending record, if it could be read
  std::string detail;                // what is wrong, for people
  std::string file;                  // the file of the problem ("" for anchor problems)
  std::uint64_t files = 0;           // files read
  // One line: "ok: 12 records, head seq 12 hash …" or "line 5 (seq 5): hash_mismatch: …".
  std::string ToString() const;
};

// Recomputes the whole chain of the file at `path` and reports the first problem. A Status error
// only when the file cannot be read; a broken log is an OK Result with !report.ok().
core::Result<AuditVerifyReport> VerifyAuditLog(const std::string& path,
                                               const AuditVerifyOptions& options = {});
// The same over a whole segmented log: the archived segments of `active_path`, oldest first, then
// the active file, as one chain. The chain must start at seq 1 (genesis prev), or where an
// audit:PruneSegments record further on says the records before were pruned. The report's `file`
// and `line` locate the first problem.
core::Result<AuditVerifyReport> VerifyAuditSegments(const std::string& active_path,
                                                    const AuditVerifyOptions& options = {});

}  // namespace moatless::observe
