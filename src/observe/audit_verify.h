// Chain checking shared by VerifyAuditLog and AuditLog::Open. Internal to observe. A ChainChecker
// is a single-threaded value; LineReader reads a file descriptor with pread and leaves the file
// offset alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "observe/audit_log.h"

namespace moatless::observe::internal {

// Lines longer than this are reported as malformed without being held in memory.
inline constexpr std::size_t kMaxVerifiedLineBytes = 4 * kMaxAuditLineBytes;

class ChainChecker {
 public:
  // from_genesis: the first line fed must be seq 1 with the genesis prev (a whole file). Otherwise
  // the first line fed is checked only on its own and later lines against it (a file's tail).
  ChainChecker(bool from_genesis, std::optional<AuditHead> anchor);
  // The first line fed must be seq `next_seq` with prev `prev` (it continues an earlier segment).
  ChainChecker(std::uint64_t next_seq, std::string prev, std::optional<AuditHead> anchor);

  // From genesis, a first line with seq > 1 is also accepted as the start if an
  // audit:PruneSegments record fed later names its seq and prev (else Finish reports a seq_gap).
  void AllowPrunedStart() { allow_pruned_start_ = true; }
  // The file the next lines come from; a problem is reported with it.
  void SetFile(std::string file) { file_ = std::move(file); }

  // Feeds the next complete line (without its newline). After the first problem further lines are
  // only used to tell a deletion from a reordering.
  void Feed(std::string_view line, std::uint64_t line_no);
  // A line that could not be held (longer than kMaxVerifiedLineBytes).
  void FeedOversized(std::uint64_t line_no);
  // The end of the input; `incomplete_tail` if bytes followed the last newline.
  void Finish(bool incomplete_tail, std::uint64_t tail_line_no);

  bool failed() const { return report_.problem != AuditProblem::kNone; }
  const AuditVerifyReport& report() const { return report_; }
  // SHA-256 of the last valid line: the next record's prev.
  const std::string& last_line_hash() const { return last_line_hash_; }

 private:
  void Fail(AuditProblem problem, std::uint64_t line_no, std::optional<std::uint64_t> seq,
            std::string detail);

  bool have_prev_;
  bool fed_ = false;  // a line was fed
  bool allow_pruned_start_ = false;
  struct PrunedStart {
    std::uint64_t seq = 0;
    std::string prev;
    std::string file;
    std::uint64_t line = 0;
    bool accounted = false;
  };
  std::optional<PrunedStart> pruned_start_;
  std::string file_;
  std::uint64_t expected_seq_ = 1;
  std::string last_line_hash_;
  std::optional<AuditHead> anchor_;
  std::optional<std::string> anchor_hash_seen_;
  std::optional<std::uint64_t> missing_seq_;  // after a gap: the seq to look for further on
  std::uint64_t gap_line_ = 0;
  AuditVerifyReport report_;
};

// Reads lines from a file descriptor from offset 0 to the size it had at construction.
class LineReader {
 public:
  LineReader(int fd, std::uint64_t size) : fd_(fd), size_(size) {}
  struct Line {
    std::string text;        // without the newline; empty if oversized
    bool terminated = true;  // false: the last bytes of the file, with no newline after them
    bool oversized = false;
  };
  // The next line, or nullopt at the end.
  core::Result<std::optional<Line>> Next();

 private:
  core::Status Fill();

  const int fd_;
  const std::uint64_t size_;
  std::uint64_t file_offset_ = 0;  // next byte to read into buf_
  std::string buf_;
  std::size_t pos_ = 0;  // next unconsumed byte of buf_
};

}  // namespace moatless::observe::internal
