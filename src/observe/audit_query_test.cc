#include "observe/audit_query.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/clock.h"
#include "core/secret_bytes.h"
#include "observe/audit_log.h"

namespace moatless::observe {
namespace {

namespace json = boost::json;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::uint64_t SeqOf(const std::string& line) {
  return json::parse(line).as_object().at("seq").to_number<std::uint64_t>();
}

core::WallTime At(std::string_view text) {
  auto t = ParseAuditTime(text, core::WallTime{});
  EXPECT_TRUE(t.ok()) << text;
  return t.ok() ? *t : core::WallTime{};
}

class AuditQueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/observe_audit_query_XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    path_ = dir_ + "/audit.log";
    AuditLog::Options options;
    options.segment_bytes = 2000;  // several segments
    auto log = AuditLog::Open(path_, key_.Copy(), clock_, options);
    ASSERT_TRUE(log.ok()) << log.status();
    // 60 records, one a minute from 00:01: alice reads secrets, bob is denied IAM calls, every
    // fifth is an error of the system actor.
    for (int i = 1; i <= 60; ++i) {
      clock_.Advance(minutes(1));
      AuditRecord r;
      if (i % 5 == 0) {
        r.actor = "moatless";
        r.action = "moatless:ServeStart";
        r.resource = "moatless:node/" + std::to_string(i);
        r.outcome = AuditOutcome::kError;
      } else if (i % 2 == 0) {
        r.actor = "arn:aws:iam::000000000000:user/bob";
        r.action = "iam:CreateUser";
        r.resource = "arn:aws:iam::000000000000:user/u" + std::to_string(i);
        r.outcome = AuditOutcome::kDenied;
        r.reason = "no statement allows it";
        r.sensitive_fields.emplace("access_key_id", core::SecretBytes(std::string("AKIABOB")));
      } else {
        r.actor = "arn:aws:iam::000000000000:user/alice";
        r.action = "secretsmanager:GetSecretValue";
        r.resource = "arn:aws:secretsmanager:local:000000000000:secret:db-" + std::to_string(i);
        r.outcome = AuditOutcome::kAllowed;
        r.fields = {{"stage", i < 30 ? "dev" : "prod"}};
      }
      r.request_id = "req-" + std::to_string(i);
      ASSERT_TRUE((*log)->Append(r).ok());
    }
    hmac_bob_ = (*log)->Hmac(core::SecretBytes(std::string("AKIABOB")));
  }
  void TearDown() override {
    const std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  std::vector<std::uint64_t> Seqs(const AuditQuery& q) {
    auto page = QueryAuditLog(path_, q);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<std::uint64_t> out;
    if (page.ok()) {
      for (const auto& line : page->lines) out.push_back(SeqOf(line));
    }
    return out;
  }
  static std::vector<std::uint64_t> Where(const std::function<bool(int)>& pred) {
    std::vector<std::uint64_t> out;
    for (int i = 1; i <= 60; ++i) {
      if (pred(i)) out.push_back(static_cast<std::uint64_t>(i));
    }
    return out;
  }
  static bool Bob(int i) { return i % 5 != 0 && i % 2 == 0; }
  static bool Alice(int i) { return i % 5 != 0 && i % 2 != 0; }

  core::FakeClock clock_;
  core::SecretBytes key_{std::string(32, 'k')};
  std::string dir_, path_, hmac_bob_;
};

TEST_F(AuditQueryTest, AllRecordsComeBackAsStoredAcrossSegments) {
  auto segments = ListAuditSegments(path_);
  ASSERT_TRUE(segments.ok());
  ASSERT_GE(segments->size(), 4u);
  std::vector<std::string> stored;
  for (const AuditSegment& s : *segments) {
    for (auto& line : ReadLines(s.path)) stored.push_back(line);
  }
  auto page = QueryAuditLog(path_, {.limit = 1000});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->lines, stored);
  EXPECT_FALSE(page->next_after.has_value());
}

TEST_F(AuditQueryTest, Filters) {
  EXPECT_EQ(Seqs({.principal = "arn:aws:iam::000000000000:user/bob", .limit = 1000}), Where(Bob));
  EXPECT_EQ(Seqs({.principal = "arn:aws:iam::000000000000:user/*", .limit = 1000}),
            Where([](int i) { return i % 5 != 0; }));
  EXPECT_TRUE(Seqs({.principal = "arn:aws:iam::000000000000:user/b", .limit = 1000}).empty());
  EXPECT_EQ(Seqs({.action = "iam:*", .limit = 1000}), Where(Bob));
  EXPECT_EQ(Seqs({.action = "IAM:createuser", .limit = 1000}), Where(Bob));  // actions: any case
  EXPECT_EQ(Seqs({.resource = "arn:aws:secretsmanager:*:secret:db-1*", .limit = 1000}),
            Where([](int i) { return Alice(i) && std::to_string(i).starts_with("1"); }));
  EXPECT_EQ(Seqs({.outcome = "denied", .limit = 1000}), Where(Bob));
  EXPECT_EQ(Seqs({.outcome = "error", .limit = 1000}), Where([](int i) { return i % 5 == 0; }));
  EXPECT_EQ(Seqs({.fields = {{"stage", "prod"}}, .limit = 1000}),
            Where([](int i) { return Alice(i) && i >= 30; }));
  // A sensitive value is found through its HMAC, never stored in clear.
  EXPECT_EQ(Seqs({.fields = {{"access_key_id", hmac_bob_}}, .limit = 1000}), Where(Bob));
  EXPECT_TRUE(Seqs({.fields = {{"access_key_id", "AKIABOB"}}, .limit = 1000}).empty());
  // Several filters at once.
  EXPECT_EQ(Seqs({.principal = "*alice",
                  .outcome = "allowed",
                  .fields = {{"stage", "dev"}},
                  .limit = 1000}),
            Where([](int i) { return Alice(i) && i < 30; }));
}

TEST_F(AuditQueryTest, SinceAndUntil) {
  // Record i was written at 00:0i (minutes) on 2026-01-01.
  EXPECT_EQ(Seqs({.since = At("2026-01-01T00:55:00Z"), .limit = 1000}),
            Where([](int i) { return i >= 55; }));
  EXPECT_EQ(Seqs({.since = At("2026-01-01T00:10:00Z"),
                  .until = At("2026-01-01T00:13:00Z"),
                  .limit = 1000}),
            (std::vector<std::uint64_t>{10, 11, 12}));
  // Relative to now (01:00): the last 5 minutes.
  auto five_ago = ParseAuditTime("5m", clock_.Now());
  ASSERT_TRUE(five_ago.ok());
  EXPECT_EQ(Seqs({.since = *five_ago, .limit = 1000}), Where([](int i) { return i >= 55; }));
}

TEST_F(AuditQueryTest, PagesFollowOnWithoutGapsOrRepeats) {
  std::vector<std::uint64_t> all;
  AuditQuery q{.outcome = "denied", .limit = 7};
  int pages = 0;
  for (;;) {
    auto page = QueryAuditLog(path_, q);
    ASSERT_TRUE(page.ok());
    ASSERT_LE(page->lines.size(), 7u);
    for (const auto& line : page->lines) all.push_back(SeqOf(line));
    ++pages;
    if (!page->next_after) break;
    q.after_seq = *page->next_after;
  }
  EXPECT_EQ(all, Where(Bob));
  EXPECT_GE(pages, 3);
  // A scan budget ends a page early, with a token to go on from.
  auto page = QueryAuditLog(path_, {.outcome = "error", .limit = 100, .max_scan = 12});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->scanned, 12u);
  EXPECT_EQ(page->lines.size(), 2u);  // 5 and 10
  ASSERT_TRUE(page->next_after.has_value());
  EXPECT_EQ(*page->next_after, 12u);
}

TEST_F(AuditQueryTest, BadQueriesAreRefused) {
  EXPECT_EQ(QueryAuditLog(path_, {.outcome = "maybe"}).status().code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(QueryAuditLog(path_, {.limit = 0}).status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(QueryAuditLog(path_, {.limit = 1001}).status().code(),
            core::StatusCode::kInvalidArgument);
}

TEST(AuditPatternTest, Matches) {
  EXPECT_TRUE(AuditPatternMatches("abc", "abc", false));
  EXPECT_FALSE(AuditPatternMatches("abc", "abcd", false));
  EXPECT_TRUE(AuditPatternMatches("ab*", "abcd", false));
  EXPECT_TRUE(AuditPatternMatches("*", "", false));
  EXPECT_TRUE(AuditPatternMatches("a*c*e", "abcde", false));
  EXPECT_FALSE(AuditPatternMatches("a*c*f", "abcde", false));
  EXPECT_TRUE(AuditPatternMatches("*:user/*", "arn:aws:iam::1:user/x", false));
  EXPECT_FALSE(AuditPatternMatches("ABC", "abc", false));
  EXPECT_TRUE(AuditPatternMatches("ABC", "abc", true));
}

TEST(AuditTimeTest, ParsesRfc3339AndTimesAgo) {
  const core::WallTime now = At("2026-12-03T12:00:00Z");
  EXPECT_EQ(core::FormatRfc3339(*ParseAuditTime("2026-12-01T10:20:30Z", now)),
            "2026-12-01T10:20:30.000Z");
  EXPECT_EQ(core::FormatRfc3339(*ParseAuditTime("2026-12-01T10:20:30.25Z", now)),
            "2026-12-01T10:20:30.250Z");
  EXPECT_EQ(core::FormatRfc3339(*ParseAuditTime("2026-12-01T12:20:30+02:00", now)),
            "2026-12-01T10:20:30.000Z");
  EXPECT_EQ(core::FormatRfc3339(*ParseAuditTime("2026-12-01", now)), "2026-12-01T00:00:00.000Z");
  EXPECT_EQ(*ParseAuditTime("10m", now), now - minutes(10));
  EXPECT_EQ(*ParseAuditTime("2h", now), now - hours(2));
  EXPECT_EQ(*ParseAuditTime("7d", now), now - hours(24 * 7));
  EXPECT_EQ(*ParseAuditTime("30s", now), now - seconds(30));
  for (const char* bad : {"", "m", "10", "10x", "-5m", "2026-13-01", "2026-12-01T10:20Z",
                          "2026-12-01T10:20:30", "2026-12-01T10:20:30Zjunk", "yesterday"}) {
    EXPECT_FALSE(ParseAuditTime(bad, now).ok()) << bad;
  }
}

}  // namespace
}  // namespace moatless::observe
