// Searching the audit log: the records of a segmented log (archived segments, then the active
// file) that match a filter, one bounded page at a time, streamed from the files (a page never
// holds more than its records and one read buffer in memory). Shared by the audit API and the
// `moatless audit` command (which uses ParseAuditTime for --since and --until).
//
// Matching: `principal`, `action` and `resource` are patterns in which `*` stands for any run of
// characters (none: the value must be equal); `action` ignores case, as IAM actions do.
// `outcome` is allowed, denied or error; `since` <= time < `until`; every `fields` entry must be
// present with exactly that value (a sensitive field's stored value is its HMAC: look it up with
// AuditLog::Hmac). Lines that are not records are skipped: finding them is the verifier's job.
//
// Pages: at most `limit` records, and the scan stops early after `max_scan` lines or once the
// page holds `max_bytes`; `next_after` then says where to continue (pass it back as `after_seq`).
// A log that rotates or prunes during a query is re-listed: a page never repeats or skips a
// record that still exists. Stateless; thread-safe; reads the files with their writer running.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace moatless::observe {

inline constexpr std::size_t kMaxAuditQueryLimit = 1000;

struct AuditQuery {
  std::string principal;  // the actor; "" matches any
  std::string action;
  std::string resource;
  std::string outcome;  // "", "allowed", "denied" or "error"
  std::optional<core::WallTime> since, until;
  std::map<std::string, std::string> fields;
  std::uint64_t after_seq = 0;  // only records with a greater seq
  std::size_t limit = 100;      // 1..kMaxAuditQueryLimit
  std::size_t max_scan = 200'000;
  std::size_t max_bytes = 4 << 20;
};

struct AuditQueryPage {
  std::vector<std::string> lines;           // the matching records, exactly as stored, in seq order
  std::optional<std::uint64_t> next_after;  // more may follow after this seq
  std::uint64_t scanned = 0;                // lines read
};

// InvalidArgument for a bad outcome or limit; an error if a file cannot be read.
core::Result<AuditQueryPage> QueryAuditLog(const std::string& active_path, const AuditQuery& query);

// Whether `value` matches `pattern` (`*`: any run of characters).
bool AuditPatternMatches(std::string_view pattern, std::string_view value, bool ignore_case);

// An instant for since/until: RFC 3339 ("2026-12-01T10:00:00Z", fractional seconds and a
// numeric offset allowed, or a date "2026-12-01" for its midnight UTC), or a time before `now`:
// a number with s, m, h or d ("10m", "7d").
core::Result<core::WallTime> ParseAuditTime(std::string_view text, core::WallTime now);

}  // namespace moatless::observe
