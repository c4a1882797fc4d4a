#include "observe/audit_verify.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/filesystem.h"
#include "observe/audit_format.h"

namespace moatless::observe {
namespace internal {
namespace {
constexpr std::size_t kReadChunk = 1 << 20;
}  // namespace

ChainChecker::ChainChecker(bool from_genesis, std::optional<AuditHead> anchor)
    : have_prev_(from_genesis), anchor_(std::move(anchor)) {
  if (from_genesis) last_line_hash_ = std::string(kAuditGenesisPrev);
}

ChainChecker::ChainChecker(std::uint64_t next_seq, std::string prev,
                           std::optional<AuditHead> anchor)
    : have_prev_(true),
      expected_seq_(next_seq),
      last_line_hash_(std::move(prev)),
      anchor_(std::move(anchor)) {}

void ChainChecker::Fail(AuditProblem problem, std::uint64_t line_no,
                        std::optional<std::uint64_t> seq, std::string detail) {
  report_.file = line_no > 0 ? file_ : std::string();
  report_.problem = problem;
  report_.line = line_no;
  report_.seq = seq;
  report_.detail = std::move(detail);
}

void ChainChecker::FeedOversized(std::uint64_t line_no) {
  if (failed()) return;
  Fail(AuditProblem::kMalformedLine, line_no, std::nullopt,
       "line longer than " + std::to_string(kMaxVerifiedLineBytes) + " bytes");
}

void ChainChecker::Feed(std::string_view line, std::uint64_t line_no) {
  if (failed()) {
    // A gap is a deletion unless the missing record turns up later: then it was moved.
    if (missing_seq_.has_value()) {
      const auto parsed = ParseAuditLine(line);
      if (parsed.ok() && parsed->entry.seq == *missing_seq_) {
        report_.problem = AuditProblem::kReordered;
        report_.detail = "expected seq " + std::to_string(*missing_seq_) + " at line " +
                         std::to_string(gap_line_) + " but found seq " +
                         std::to_string(report_.seq.value_or(0)) + "; seq " +
                         std::to_string(*missing_seq_) + " is at line " + std::to_string(line_no) +
                         ": records were reordered";
        missing_seq_.reset();
      }
    }
    return;
  }

  auto parsed = ParseAuditLine(line);
  if (!parsed.ok()) {
    Fail(AuditProblem::kMalformedLine, line_no, std::nullopt,
         line.empty() ? "empty line" : parsed.status().message());
    return;
  }
  const AuditEntry& e = parsed->entry;
  const std::string body = CanonicalBody(e);
  if (Sha256Hex(body) != parsed->hash) {
    Fail(AuditProblem::kHashMismatch, line_no, e.seq,
         "the record's content does not match its hash: the record was edited");
    return;
  }
  if (LineWithHash(body, parsed->hash) != line) {
    Fail(AuditProblem::kNonCanonical, line_no, e.seq,
         "the line is not in canonical form (a key added, reordered, or re-escaped, or "
         "whitespace changed): the line was edited");
    return;
  }
  const bool first = !fed_;
  fed_ = true;
  if (first && have_prev_ && allow_pruned_start_ && expected_seq_ == 1 && e.seq > 1) {
    // Perhaps the records before were pruned: accepted if a prune record says so further on.
    pruned_start_ = PrunedStart{.seq = e.seq, .prev = e.prev, .file = file_, .line = line_no};
  } else if (have_prev_) {
    if (e.seq > expected_seq_) {
      Fail(AuditProblem::kSeqGap, line_no, e.seq,
           "seq jumps from " + std::to_string(expected_seq_ - 1) + " to " + std::to_string(e.seq) +
               ": records " + std::to_string(expected_seq_) +
               (e.seq - 1 > expected_seq_ ? ".." + std::to_string(e.seq - 1) : "") +
               " are missing (deleted)");
      missing_seq_ = expected_seq_;
      gap_line_ = line_no;
      return;
    }
    if (e.seq < expected_seq_) {
      Fail(AuditProblem::kReordered, line_no, e.seq,
           "seq " + std::to_string(e.seq) + " follows seq " + std::to_string(expected_seq_ - 1) +
               ": a record was moved or duplicated");
      return;
    }
    if (e.prev != last_line_hash_) {
      Fail(AuditProblem::kPrevMismatch, line_no, e.seq,
           expected_seq_ == 1
               ? std::string("the first record's prev is not the genesis value: records before "
                             "it were removed or it was taken from another log")
               : "prev is not the hash of the preceding line: the preceding record was "
                 "rewritten (its own hash recomputed) or replaced");
      return;
    }
  }
  have_prev_ = true;
  expected_seq_ = e.seq + 1;
  last_line_hash_ = Sha256Hex(line);
  ++report_.records;
  report_.head = AuditHead{e.seq, parsed->hash};
  if (anchor_.has_value() && anchor_->seq == e.seq) anchor_hash_seen_ = parsed->hash;
  if (pruned_start_.has_value() && !pruned_start_->accounted && e.action == kAuditPruneAction) {
    const auto seq = e.fields.find(std::string(kAuditPruneFirstKeptSeq));
    const auto prev = e.fields.find(std::string(kAuditPruneFirstKeptPrev));
    if (seq != e.fields.end() && prev != e.fields.end() &&
        seq->second == std::to_string(pruned_start_->seq) && prev->second == pruned_start_->prev) {
      pruned_start_->accounted = true;
    }
  }
}

void ChainChecker::Finish(bool incomplete_tail, std::uint64_t tail_line_no) {
  missing_seq_.reset();
  if (failed()) return;
  if (incomplete_tail) {
    Fail(AuditProblem::kIncompleteLastLine, tail_line_no, std::nullopt,
         "the final line has no newline: a write interrupted by a crash (never acknowledged); "
         "AuditLog::Open cuts it off");
    return;
  }
  if (pruned_start_.has_value() && !pruned_start_->accounted) {
    const std::uint64_t seq = pruned_start_->seq;
    file_ = pruned_start_->file;
    Fail(AuditProblem::kSeqGap, pruned_start_->line, seq,
         "the log starts at seq " + std::to_string(seq) + ": records 1" +
             (seq > 2 ? ".." + std::to_string(seq - 1) : "") + " are missing (deleted), and no " +
             std::string(kAuditPruneAction) + " record says they were pruned");
    return;
  }
  if (!anchor_.has_value() || anchor_->seq == 0) return;
  if (report_.head.seq < anchor_->seq) {
    Fail(AuditProblem::kTruncated, 0, std::nullopt,
         "the log ends at seq " + std::to_string(report_.head.seq) +
             " but the anchored head is seq " + std::to_string(anchor_->seq) + ": records " +
             std::to_string(report_.head.seq + 1) + ".." + std::to_string(anchor_->seq) +
             " were removed from the end");
    return;
  }
  if (anchor_hash_seen_ != anchor_->hash) {
    Fail(AuditProblem::kHeadMismatch, 0, anchor_->seq,
         "the record with the anchored seq " + std::to_string(anchor_->seq) + " has hash " +
             anchor_hash_seen_.value_or("(none)") + ", not the anchored " + anchor_->hash +
             ": the log was rewritten");
  }
}

core::Status LineReader::Fill() {
  if (pos_ > 0) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  const std::size_t want =
      static_cast<std::size_t>(std::min<std::uint64_t>(kReadChunk, size_ - file_offset_));
  const std::size_t old = buf_.size();
  buf_.resize(old + want);
  std::size_t got = 0;
  while (got < want) {
    const ssize_t n =
        ::pread(fd_, buf_.data() + old + got, want - got, static_cast<off_t>(file_offset_ + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      buf_.resize(old + got);
      return core::ErrnoStatus("read audit log", errno);
    }
    if (n == 0) break;  // the file shrank under us: stop at what is there
    got += static_cast<std::size_t>(n);
  }
  buf_.resize(old + got);
  file_offset_ += got;
  if (got < want) file_offset_ = size_;
  return core::Status::Ok();
}

core::Result<std::optional<LineReader::Line>> LineReader::Next() {
  Line line;
  std::size_t discarded = 0;  // bytes of an oversized line already dropped
  for (;;) {
    const std::size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos) {
      const std::size_t len = nl - pos_;
      if (discarded + len > kMaxVerifiedLineBytes) {
        line.oversized = true;
      } else {
        line.text.assign(buf_, pos_, len);
      }
      pos_ = nl + 1;
      return std::optional<Line>(std::move(line));
    }
    if (file_offset_ >= size_) {
      if (pos_ >= buf_.size() && discarded == 0) return std::optional<Line>();
      const std::size_t len = buf_.size() - pos_;
      if (discarded + len > kMaxVerifiedLineBytes) {
        line.oversized = true;
      } else {
        line.text.assign(buf_, pos_, len);
      }
      line.terminated = false;
      pos_ = buf_.size();
      return std::optional<Line>(std::move(line));
    }
    if (buf_.size() - pos_ > kMaxVerifiedLineBytes) {  // drop what cannot be a valid line
      discarded += buf_.size() - pos_;
      pos_ = buf_.size();
    }
    RETURN_IF_ERROR(Fill());
  }
}

}  // namespace internal

std::string_view AuditProblemName(AuditProblem problem) {
  switch (problem) {
    case AuditProblem::kNone:
      return "none";
    case AuditProblem::kMalformedLine:
      return "malformed_line";
    case AuditProblem::kHashMismatch:
      return "hash_mismatch";
    case AuditProblem::kNonCanonical:
      return "non_canonical";
    case AuditProblem::kSeqGap:
      return "seq_gap";
    case AuditProblem::kReordered:
      return "reordered";
    case AuditProblem::kPrevMismatch:
      return "prev_mismatch";
    case AuditProblem::kIncompleteLastLine:
      return "incomplete_last_line";
    case AuditProblem::kTruncated:
      return "truncated";
    case AuditProblem::kHeadMismatch:
      return "head_mismatch";
  }
  return "unknown";
}

std::string AuditVerifyReport::ToString() const {
  const std::string head_text = head.seq == 0
                                    ? std::string("empty")
                                    : "head seq " + std::to_string(head.seq) + " hash " + head.hash;
  if (ok()) return "ok: " + std::to_string(records) + " records, " + head_text;
  std::string out;
  if (line > 0) {
    out = file.empty() ? std::string() : file + ": ";
    out += "line " + std::to_string(line);
    if (seq.has_value()) out += " (seq " + std::to_string(*seq) + ")";
  } else {
    out = "log";
  }
  out += ": ";
  out += AuditProblemName(problem);
  out += ": " + detail + " [" + std::to_string(records) + " valid records before it, " + head_text +
         "]";
  return out;
}

namespace {

// Feeds every line of the file at `path` to `checker`. Returns whether the file ended without a
// newline (the rest of it was not fed).
core::Result<bool> FeedFile(const std::string& path, internal::ChainChecker& checker,
                            std::uint64_t& line_no) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return core::ErrnoStatus("open audit log " + path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return core::ErrnoStatus("stat audit log " + path, err);
  }
  checker.SetFile(path);
  internal::LineReader reader(fd, static_cast<std::uint64_t>(st.st_size));
  line_no = 0;
  for (;;) {
    auto next = reader.Next();
    if (!next.ok()) {
      ::close(fd);
      return next.status();
    }
    if (!next->has_value()) break;
    internal::LineReader::Line& line = **next;
    ++line_no;
    if (!line.terminated) {
      ::close(fd);
      return true;
    }
    if (line.oversized) {
      checker.FeedOversized(line_no);
    } else {
      checker.Feed(line.text, line_no);
    }
  }
  ::close(fd);
  return false;
}

}  // namespace

core::Result<AuditVerifyReport> VerifyAuditLog(const std::string& path,
                                               const AuditVerifyOptions& options) {
  internal::ChainChecker checker(/*from_genesis=*/!options.segment, options.expected_head);
  std::uint64_t line_no = 0;
  ASSIGN_OR_RETURN(const bool incomplete, FeedFile(path, checker, line_no));
  checker.Finish(incomplete, line_no);
  AuditVerifyReport report = checker.report();
  report.files = 1;
  return report;
}

core::Result<AuditVerifyReport> VerifyAuditSegments(const std::string& active_path,
                                                    const AuditVerifyOptions& options) {
  ASSIGN_OR_RETURN(const std::vector<AuditSegment> segments, ListAuditSegments(active_path));
  if (segments.empty()) return core::NotFoundError("no audit log at " + active_path);
  internal::ChainChecker checker(/*from_genesis=*/true, options.expected_head);
  checker.AllowPrunedStart();
  std::uint64_t line_no = 0;
  bool incomplete = false;
  // A file that ends without a newline ends the check there: in the active file that is a write
  // a crash interrupted, in an archived segment (complete when it was archived) an edit.
  for (std::size_t i = 0; i < segments.size() && !incomplete; ++i) {
    ASSIGN_OR_RETURN(incomplete, FeedFile(segments[i].path, checker, line_no));
  }
  checker.Finish(incomplete, line_no);
  AuditVerifyReport report = checker.report();
  report.files = segments.size();
  return report;
}

}  // namespace moatless::observe
