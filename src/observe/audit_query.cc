#include "observe/audit_query.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>

#include "core/filesystem.h"
#include "observe/audit_format.h"
#include "observe/audit_log.h"
#include "observe/audit_verify.h"

namespace moatless::observe {
namespace {

bool SameChar(char a, char b, bool ignore_case) {
  if (!ignore_case) return a == b;
  return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
}

bool Matches(const AuditQuery& q, const internal::AuditEntry& e, const std::string& since,
             const std::string& until) {
  if (!q.outcome.empty() && e.outcome != q.outcome) return false;
  if (!since.empty() && e.time < since) return false;
  if (!until.empty() && e.time >= until) return false;
  if (!q.principal.empty() && !AuditPatternMatches(q.principal, e.actor, false)) return false;
  if (!q.action.empty() && !AuditPatternMatches(q.action, e.action, true)) return false;
  if (!q.resource.empty() && !AuditPatternMatches(q.resource, e.resource, false)) return false;
  for (const auto& [key, value] : q.fields) {
    const auto it = e.fields.find(key);
    if (it == e.fields.end() || it->second != value) return false;
  }
  return true;
}

// Parses exactly `n` digits at `pos`.
bool Digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  std::from_chars(s.data() + pos, s.data() + pos + n, out);
  pos += n;
  return true;
}

bool Expect(std::string_view s, std::size_t& pos, char c) {
  if (pos >= s.size() || std::toupper(static_cast<unsigned char>(s[pos])) != c) return false;
  ++pos;
  return true;
}

std::optional<core::WallTime> ParseRfc3339(std::string_view s) {
  using namespace std::chrono;
  std::size_t pos = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!Digits(s, pos, 4, y) || !Expect(s, pos, '-') || !Digits(s, pos, 2, mo) ||
      !Expect(s, pos, '-') || !Digits(s, pos, 2, d)) {
    return std::nullopt;
  }
  const year_month_day ymd{year(y), month(static_cast<unsigned>(mo)),
                           day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return std::nullopt;
  core::WallTime t{sys_days(ymd)};
  if (pos == s.size()) return t;  // a date: its midnight UTC
  if (!Expect(s, pos, 'T') || !Digits(s, pos, 2, h) || !Expect(s, pos, ':') ||
      !Digits(s, pos, 2, mi) || !Expect(s, pos, ':') || !Digits(s, pos, 2, sec) || h > 23 ||
      mi > 59 || sec > 60) {
    return std::nullopt;
  }
  t += hours(h) + minutes(mi) + seconds(sec);
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::int64_t nanos = 0;
    int digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 9) {
        nanos = nanos * 10 + (s[pos] - '0');
        ++digits;
      }
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (int i = digits; i < 9; ++i) nanos *= 10;
    t += duration_cast<core::WallTime::duration>(nanoseconds(nanos));
  }
  if (pos < s.size() && std::toupper(static_cast<unsigned char>(s[pos])) == 'Z') {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const int sign = s[pos] == '+' ? 1 : -1;
    ++pos;
    int oh = 0, om = 0;
    if (!Digits(s, pos, 2, oh) || !Expect(s, pos, ':') || !Digits(s, pos, 2, om) || oh > 23 ||
        om > 59) {
      return std::nullopt;
    }
    t -= sign * (hours(oh) + minutes(om));
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  return t;
}

}  // namespace

bool AuditPatternMatches(std::string_view pattern, std::string_view value, bool ignore_case) {
  // Greedy glob with backtracking to the last '*': linear in practice, no recursion.
  std::size_t p = 0, v = 0;
  std::size_t star = std::string_view::npos, resume = 0;
  while (v < value.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = v;
    } else if (p < pattern.size() && SameChar(pattern[p], value[v], ignore_case)) {
      ++p;
      ++v;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      v = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

core::Result<core::WallTime> ParseAuditTime(std::string_view text, core::WallTime now) {
  const auto bad = [&] {
    return core::InvalidArgumentError(
        "\"" + std::string(text) +
        "\" is not a time: give RFC 3339 (2026-12-01T10:00:00Z) or a time ago such as 10m, 2h, "
        "7d");
  };
  if (text.empty()) return bad();
  const char unit = text.back();
  if (text.size() >= 2 && (unit == 's' || unit == 'm' || unit == 'h' || unit == 'd')) {
    std::uint64_t n = 0;
    const std::string_view digits = text.substr(0, text.size() - 1);
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec == std::errc() && ptr == digits.data() + digits.size()) {
      const std::uint64_t per = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 86400;
      if (n > 100ull * 365 * 86400 / per) return bad();  // a century is plenty
      return now - std::chrono::seconds(n * per);
    }
  }
  const auto t = ParseRfc3339(text);
  if (!t.has_value()) return bad();
  return *t;
}

core::Result<AuditQueryPage> QueryAuditLog(const std::string& active_path,
                                           const AuditQuery& query) {
  if (!query.outcome.empty() && query.outcome != "allowed" && query.outcome != "denied" &&
      query.outcome != "error") {
    return core::InvalidArgumentError("the decision must be allowed, denied or error, not \"" +
                                      query.outcome + "\"");
  }
  if (query.limit < 1 || query.limit > kMaxAuditQueryLimit) {
    return core::InvalidArgumentError("the limit must be 1.." +
                                      std::to_string(kMaxAuditQueryLimit));
  }
  const std::string since = query.since ? core::FormatRfc3339(*query.since) : std::string();
  const std::string until = query.until ? core::FormatRfc3339(*query.until) : std::string();

  AuditQueryPage page;
  std::uint64_t seen = query.after_seq;  // the last seq looked at
  std::size_t bytes = 0;
  bool stopped = false;  // the page is full or the scan budget spent
  // A rotation while the active file is read can archive records beyond what was read of it: a
  // second listing finds them. More rounds are needed only if rotations keep coming.
  for (int round = 0; round < 4 && !stopped; ++round) {
    ASSIGN_OR_RETURN(const std::vector<AuditSegment> segments, ListAuditSegments(active_path));
    if (round > 0 && std::none_of(segments.begin(), segments.end(), [&](const AuditSegment& s) {
          return !s.active && s.last_seq > seen;
        })) {
      break;
    }
    for (const AuditSegment& seg : segments) {
      if (!seg.active && seg.last_seq <= seen) continue;
      const int fd = ::open(seg.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        if (errno == ENOENT) continue;  // pruned, or rotated: the next listing sees it
        return core::ErrnoStatus("open audit log " + seg.path, errno);
      }
      struct stat st {};
      if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        return core::ErrnoStatus("stat audit log " + seg.path, err);
      }
      internal::LineReader reader(fd, static_cast<std::uint64_t>(st.st_size));
      core::Status read_error;
      for (;;) {
        auto next = reader.Next();
        if (!next.ok()) {
          read_error = next.status();
          break;
        }
        if (!next->has_value() || !(*next)->terminated) break;  // the end, or a write under way
        ++page.scanned;
        if (!(*next)->oversized) {
          const std::string& line = (*next)->text;
          auto parsed = internal::ParseAuditLine(line);
          if (parsed.ok() && parsed->entry.seq > seen) {
            seen = parsed->entry.seq;
            if (Matches(query, parsed->entry, since, until)) {
              bytes += line.size();
              page.lines.push_back(line);
              if (page.lines.size() >= query.limit || bytes >= query.max_bytes) stopped = true;
            }
          }
        }
        if (stopped || page.scanned >= query.max_scan) {
          stopped = true;
          break;
        }
      }
      ::close(fd);
      RETURN_IF_ERROR(read_error);
      if (stopped) break;
    }
  }
  if (stopped) page.next_after = seen;
  return page;
}

}  // namespace moatless::observe
