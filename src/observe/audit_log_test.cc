#include "observe/audit_log.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "core/clock.h"
#include "core/secret_bytes.h"
#include "observe/audit_format.h"
#include "observe/metrics.h"

namespace moatless::observe {
namespace {

namespace json = boost::json;

core::SecretBytes TestKey(char fill = 'k') { return core::SecretBytes(std::string(32, fill)); }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::istringstream in(ReadAll(path));
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::string contents;
  for (const auto& line : lines) contents += line + "\n";
  WriteAll(path, contents);
}

json::object ParseObject(const std::string& line) { return json::parse(line).as_object(); }

std::string Replace(std::string s, std::string_view from, std::string_view to) {
  const auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from << " not in " << s;
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

AuditRecord MakeRecord(int i) {
  AuditRecord r;
  r.actor = "arn:moatless:iam::default:user/alice";
  r.action = "secretsmanager:GetSecretValue";
  r.resource = "arn:moatless:secretsmanager::default:secret/db-" + std::to_string(i);
  r.outcome = i % 3 == 0 ? AuditOutcome::kDenied : AuditOutcome::kAllowed;
  r.request_id = "req-" + std::to_string(i);
  r.reason = "policy statement s" + std::to_string(i);
  r.fields = {{"stage", "prod"}, {"n", std::to_string(i)}};
  return r;
}

// Lets this process write files only up to `bytes` (RLIMIT_FSIZE, with SIGXFSZ ignored so that
// a write past it fails with EFBIG) until destroyed.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(std::uint64_t bytes) : old_handler_(std::signal(SIGXFSZ, SIG_IGN)) {
    ok_ = ::getrlimit(RLIMIT_FSIZE, &old_) == 0;
    rlimit limit = old_;
    limit.rlim_cur = static_cast<rlim_t>(bytes);
    ok_ = ok_ && ::setrlimit(RLIMIT_FSIZE, &limit) == 0;
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
  bool ok() const { return ok_; }

 private:
  rlimit old_{};
  void (*old_handler_)(int);
  bool ok_ = false;
};

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/observe_audit_XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    path_ = dir_ + "/audit.log";
  }
  void TearDown() override {
    const std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  std::unique_ptr<AuditLog> OpenLog(AuditLog::Options options = {}) {
    auto log = AuditLog::Open(path_, TestKey(), clock_, std::move(options));
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? std::move(*log) : nullptr;
  }

  // Writes n records and closes the log; returns its head.
  AuditHead WriteRecords(int n) {
    auto log = OpenLog();
    for (int i = 1; i <= n; ++i) {
      clock_.Advance(std::chrono::seconds(1));
      EXPECT_TRUE(log->Append(MakeRecord(i)).ok());
    }
    return log->Head();
  }

  AuditVerifyReport Verify(AuditVerifyOptions options = {}) {
    auto report = VerifyAuditLog(path_, options);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : AuditVerifyReport{};
  }

  core::FakeClock clock_;
  std::string dir_;
  std::string path_;
};

TEST_F(AuditLogTest, AppendThenVerify) {
  const AuditHead head = WriteRecords(5);
  EXPECT_EQ(head.seq, 5u);
  const AuditVerifyReport report = Verify();
  EXPECT_TRUE(report.ok()) << report.ToString();
  EXPECT_EQ(report.records, 5u);
  EXPECT_EQ(report.head, head);
  EXPECT_EQ(report.ToString(), "ok: 5 records, head seq 5 hash " + head.hash);

  const auto lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 5u);
  const json::object first = ParseObject(lines[0]);
  EXPECT_EQ(first.at("seq").as_int64(), 1);
  EXPECT_EQ(first.at("time").as_string(), "2026-01-01T00:00:01.000Z");
  EXPECT_EQ(first.at("actor").as_string(), "arn:moatless:iam::default:user/alice");
  EXPECT_EQ(first.at("outcome").as_string(), "allowed");
  EXPECT_EQ(first.at("request_id").as_string(), "req-1");
  EXPECT_EQ(first.at("fields").at("stage").as_string(), "prod");
  EXPECT_EQ(first.at("prev").as_string(), std::string(64, '0'));
  // Every prev is the SHA-256 of the line before; every hash covers the line without it.
  for (std::size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(ParseObject(lines[i]).at("prev").as_string(), internal::Sha256Hex(lines[i - 1]));
  }
  const std::string last = lines.back();
  const std::string without_hash = last.substr(0, last.find(",\"hash\":")) + "}";
  EXPECT_EQ(internal::Sha256Hex(without_hash), head.hash);
  EXPECT_EQ(ParseObject(last).at("outcome").as_string(), "allowed");
  EXPECT_EQ(ParseObject(lines[2]).at("outcome").as_string(), "denied");
}

TEST_F(AuditLogTest, FileIsPrivate) {
  WriteRecords(1);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // A wider mode found on open is narrowed.
  ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);
  OpenLog();
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(AuditLogTest, EmptyLogVerifies) {
  OpenLog();
  const AuditVerifyReport report = Verify();
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.records, 0u);
  EXPECT_EQ(report.head.seq, 0u);
}

TEST_F(AuditLogTest, ReopenContinuesTheChain) {
  WriteRecords(3);
  {
    auto log = OpenLog();
    EXPECT_EQ(log->open_info().existing_records, 3u);
    EXPECT_EQ(log->Head().seq, 3u);
    EXPECT_TRUE(log->Append(MakeRecord(4)).ok());
  }
  const AuditVerifyReport report = Verify();
  EXPECT_TRUE(report.ok()) << report.ToString();
  EXPECT_EQ(report.records, 4u);
}

TEST_F(AuditLogTest, EditedFieldIsReportedAtItsRecord) {
  WriteRecords(5);
  auto lines = ReadLines(path_);
  lines[2] = Replace(lines[2], "\"outcome\":\"denied\"", "\"outcome\":\"allowed\"");
  WriteLines(path_, lines);
  const AuditVerifyReport report = Verify();
  EXPECT_EQ(report.problem, AuditProblem::kHashMismatch) << report.ToString();
  EXPECT_EQ(report.line, 3u);
  EXPECT_EQ(report.seq, 3u);
  EXPECT_EQ(report.records, 2u);
  EXPECT_EQ(report.head.seq, 2u);
}

TEST_F(AuditLogTest, EditWithRecomputedHashBreaksTheNextLink) {
  WriteRecords(5);
  auto lines = ReadLines(path_);
  // An attacker who edits record 3 and recomputes its hash.
  auto parsed = internal::ParseAuditLine(lines[2]);
  ASSERT_TRUE(parsed.ok());
  parsed->entry.reason = "nothing to see here";
  const std::string body = internal::CanonicalBody(parsed->entry);
  lines[2] = internal::LineWithHash(body, internal::Sha256Hex(body));
  WriteLines(path_, lines);
  const AuditVerifyReport report = Verify();
  EXPECT_EQ(report.problem, AuditProblem::kPrevMismatch) << report.ToString();
  EXPECT_EQ(report.line, 4u);
  EXPECT_EQ(report.seq, 4u);
}

TEST_F(AuditLogTest, NonCanonicalEditIsReported) {
  WriteRecords(3);
  auto lines = ReadLines(path_);
  lines[1] = Replace(lines[1], "\"actor\":", "\"actor\": ");
  WriteLines(path_, lines);
  const AuditVerifyReport report = Verify();
  EXPECT_EQ(report.problem, AuditProblem::kNonCanonical) << report.ToString();
  EXPECT_EQ(report.line, 2u);
}

TEST_F(AuditLogTest, DeletedMiddleRecordIsDetected) {
  WriteRecords(5);
  auto lines = ReadLines(path_);
  lines.erase(lines.begin() + 2);
  WriteLines(path_, lines);
  const AuditVerifyReport report = Verify();
  EXPECT_EQ(report.problem, AuditProblem::kSeqGap) << report.ToString();
  EXPECT_EQ(report.line, 3u);
  EXPECT_EQ(report.seq, 4u);
  EXPECT_NE(report.detail.find("records 3 are missing"), std::string::npos) << report.detail;
}

TEST_F(AuditLogTest, DeletedFirstRecordIsDetected) {
  WriteRecords(3);
  auto lines = ReadLines(path_);
  lines.erase(lines.begin());
  WriteLines(path_, lines);
  const AuditVerifyReport report = Verify();
  EXPECT_EQ(report.problem, AuditProblem::kSeqGap) << report.ToString();
  EXPECT_EQ(report.line, 1u);
}

TEST_F(AuditLogTest, SwappedRecordsAreDetectedAsReordered) {
  WriteRecords(5);
  auto lines = ReadLines(path_);
  std::swap(lines[1], lines[2]);
  WriteLines(path_, lines);
  const AuditVerifyReport report = Verify();
  EXPECT_EQ(report.problem, AuditProblem::kReordered) << report.ToString();
  EXPECT_EQ(report.line, 2u);
  EXPECT_EQ(report.seq, 3u);
  EXPECT_NE(report.detail.find("seq 2 is at line 3"), std::string::npos) << report.detail;
}

TEST_F(AuditLogTest, DuplicatedRecordIsDetected) {
  WriteRecords(3);
  auto lines = ReadLines(path_);
  lines.push_back(lines[1]);
  WriteLines(path_, lines);
  const AuditVerifyReport report = Verify();
  EXPECT_EQ(report.problem, AuditProblem::kReordered) << report.ToString();
  EXPECT_EQ(report.line, 4u);
}

TEST_F(AuditLogTest, MalformedLineIsDetected) {
  WriteRecords(3);
  auto lines = ReadLines(path_);
  lines.insert(lines.begin() + 1, "{\"seq\": \"not a record\"");
  WriteLines(path_, lines);
  const AuditVerifyReport report = Verify();
  EXPECT_EQ(report.problem, AuditProblem::kMalformedLine) << report.ToString();
  EXPECT_EQ(report.line, 2u);
  EXPECT_FALSE(report.seq.has_value());
}

TEST_F(AuditLogTest, TruncatedTailIsDetectedOnlyAgainstAnAnchoredHead) {
  const AuditHead anchored = WriteRecords(5);
  auto lines = ReadLines(path_);
  lines.resize(3);
  WriteLines(path_, lines);

  // Without an anchor, a log cut short is a valid shorter chain: this is the documented limit.
  const AuditVerifyReport unanchored = Verify();
  EXPECT_TRUE(unanchored.ok()) << unanchored.ToString();
  EXPECT_EQ(unanchored.head.seq, 3u);

  AuditVerifyOptions options;
  options.expected_head = anchored;
  const AuditVerifyReport report = Verify(options);
  EXPECT_EQ(report.problem, AuditProblem::kTruncated) << report.ToString();
  EXPECT_EQ(report.line, 0u);
  EXPECT_EQ(report.head.seq, 3u);
}

TEST_F(AuditLogTest, AnchoredHeadDetectsARewrite) {
  const AuditHead anchored = WriteRecords(4);
  AuditVerifyOptions options;
  options.expected_head = anchored;
  EXPECT_TRUE(Verify(options).ok());
  // An older anchor of the same log still verifies: the log only grew.
  auto log = OpenLog();
  ASSERT_TRUE(log->Append(MakeRecord(5)).ok());
  EXPECT_TRUE(Verify(options).ok());
  log.reset();

  // Rewriting the whole file from scratch (every hash recomputed) yields a valid chain that
  // does not contain the anchored record.
  ASSERT_EQ(std::remove(path_.c_str()), 0);
  clock_.Advance(std::chrono::hours(1));
  WriteRecords(6);
  EXPECT_TRUE(Verify().ok());
  const AuditVerifyReport report = Verify(options);
  EXPECT_EQ(report.problem, AuditProblem::kHeadMismatch) << report.ToString();
}

TEST_F(AuditLogTest, PartialLastLineIsCutOnReopenAndTheChainContinues) {
  WriteRecords(3);
  const std::string intact = ReadAll(path_);
  const std::string partial = "{\"seq\":4,\"time\":\"2026-01-01T00:0";
  WriteAll(path_, intact + partial);

  const AuditVerifyReport before = Verify();
  EXPECT_EQ(before.problem, AuditProblem::kIncompleteLastLine) << before.ToString();
  EXPECT_EQ(before.line, 4u);
  EXPECT_EQ(before.records, 3u);

  {
    auto log = OpenLog();
    EXPECT_EQ(log->open_info().truncated_bytes, partial.size());
    EXPECT_EQ(log->open_info().existing_records, 3u);
    EXPECT_EQ(log->Head().seq, 4u);  // the recovery record
    ASSERT_TRUE(log->Append(MakeRecord(5)).ok());
    EXPECT_EQ(log->Head().seq, 5u);
  }
  const AuditVerifyReport after = Verify();
  EXPECT_TRUE(after.ok()) << after.ToString();
  EXPECT_EQ(after.records, 5u);
  const auto lines = ReadLines(path_);
  EXPECT_EQ(ReadAll(path_).substr(0, intact.size()), intact);
  const json::object recovery = ParseObject(lines[3]);
  EXPECT_EQ(recovery.at("action").as_string(), "audit:TruncatePartialRecord");
  EXPECT_EQ(recovery.at("fields").at("truncated_bytes").as_string(),
            std::to_string(partial.size()));
  EXPECT_EQ(recovery.at("fields").at("truncated_offset").as_string(),
            std::to_string(intact.size()));
  EXPECT_EQ(recovery.at("fields").at("truncated_sha256").as_string(), internal::Sha256Hex(partial));
}

TEST_F(AuditLogTest, PartialOnlyLineIsCut) {
  WriteAll(path_, "{\"seq\":1,\"ti");
  auto log = OpenLog();
  EXPECT_EQ(log->open_info().truncated_bytes, 12u);
  log.reset();
  const AuditVerifyReport report = Verify();
  EXPECT_TRUE(report.ok()) << report.ToString();
  EXPECT_EQ(report.records, 1u);
}

TEST_F(AuditLogTest, SensitiveValuesAreStoredOnlyAsHmac) {
  const std::string secret_value = "AKIAEXAMPLE-SECRET-VALUE-9f8e7d";
  {
    auto log = OpenLog();
    AuditRecord r = MakeRecord(1);
    r.sensitive_fields.emplace("access_key_id", core::SecretBytes(secret_value));
    ASSERT_TRUE(log->Append(r).ok());
  }
  const std::string bytes = ReadAll(path_);
  EXPECT_EQ(bytes.find(secret_value), std::string::npos);
  EXPECT_EQ(bytes.find("AKIAEXAMPLE"), std::string::npos);

  const json::object record = ParseObject(ReadLines(path_).at(0));
  const std::string stored(record.at("fields").at("access_key_id").as_string());
  EXPECT_EQ(stored.rfind("hmac-sha256:", 0), 0u) << stored;
  EXPECT_EQ(stored.size(), 12u + 64u);
  EXPECT_TRUE(AuditHmacMatches(TestKey(), stored, core::SecretBytes(secret_value)));
  EXPECT_FALSE(AuditHmacMatches(TestKey(), stored, core::SecretBytes(secret_value + "x")));
  EXPECT_FALSE(AuditHmacMatches(TestKey(), stored, core::SecretBytes(std::string_view(""))));
  EXPECT_FALSE(AuditHmacMatches(TestKey('z'), stored, core::SecretBytes(secret_value)));
  EXPECT_FALSE(AuditHmacMatches(TestKey(), "hmac-sha256:00", core::SecretBytes(secret_value)));
  EXPECT_EQ(AuditHmac(TestKey(), core::SecretBytes(secret_value)), stored);
  EXPECT_TRUE(Verify().ok());
}

TEST_F(AuditLogTest, ConcurrentAppendsFormOneContiguousChain) {
  MetricsRegistry registry;
  AuditLog::Options options;
  options.metrics = &registry;
  auto log = OpenLog(options);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        AuditRecord r = MakeRecord(i);
        r.actor = "thread-" + std::to_string(t);
        if (!log->Append(r).ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(log->Head().seq, static_cast<std::uint64_t>(kThreads * kPerThread));
  const AuditVerifyReport report = Verify();
  EXPECT_TRUE(report.ok()) << report.ToString();
  EXPECT_EQ(report.records, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(report.head, log->Head());
  // Each thread's records are all there, in its own order.
  std::vector<int> per_thread(kThreads, 0);
  for (const auto& line : ReadLines(path_)) {
    const json::object r = ParseObject(line);
    const std::string actor(r.at("actor").as_string());
    const int t = std::stoi(actor.substr(7));
    EXPECT_EQ(r.at("fields").at("n").as_string(), std::to_string(per_thread[t]++));
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(per_thread[t], kPerThread);
  EXPECT_NE(registry.Expose().find("moatless_audit_records_total 400\n"), std::string::npos);
}

TEST_F(AuditLogTest, BrokenChainRefusesToOpenByDefault) {
  WriteRecords(4);
  auto lines = ReadLines(path_);
  lines[3] = Replace(lines[3], "req-4", "req-X");  // the last record: the tail check sees it
  WriteLines(path_, lines);
  auto log = AuditLog::Open(path_, TestKey(), clock_);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(log.status().message().find("hash_mismatch"), std::string::npos)
      << log.status().message();
}

TEST_F(AuditLogTest, BrokenChainCanStartANewSegment) {
  WriteRecords(4);
  auto lines = ReadLines(path_);
  lines.erase(lines.begin() + 2);  // records 3 and 4 are in the tail window (the whole file)
  WriteLines(path_, lines);
  const std::string tampered = ReadAll(path_);

  AuditLog::Options options;
  options.on_broken_chain = AuditLog::OnBrokenChain::kStartNewSegment;
  auto log = OpenLog(options);
  const std::string aside = log->open_info().set_aside_file;
  EXPECT_EQ(aside, path_ + ".broken-1767225604");
  EXPECT_NE(log->open_info().broken_chain_problem.find("seq_gap"), std::string::npos);
  EXPECT_EQ(log->Head().seq, 1u);
  ASSERT_TRUE(log->Append(MakeRecord(9)).ok());
  log.reset();

  EXPECT_EQ(ReadAll(aside), tampered);  // kept untouched for investigation
  const AuditVerifyReport report = Verify();
  EXPECT_TRUE(report.ok()) << report.ToString();
  EXPECT_EQ(report.records, 2u);
  const json::object first = ParseObject(ReadLines(path_).at(0));
  EXPECT_EQ(first.at("action").as_string(), "audit:StartSegment");
  EXPECT_EQ(first.at("fields").at("set_aside_file").as_string(), aside);
}

TEST_F(AuditLogTest, FullCheckOnOpenFindsWhatTheTailCheckCannot) {
  // Enough records that the first ones lie outside the tail window.
  {
    auto log = OpenLog();
    AuditRecord big = MakeRecord(0);
    big.reason = std::string(600 * 1024, 'r');
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(log->Append(big).ok());
  }
  auto lines = ReadLines(path_);
  lines[0] = Replace(lines[0], "\"stage\":\"prod\"", "\"stage\":\"dev!\"");
  WriteLines(path_, lines);
  EXPECT_EQ(Verify().problem, AuditProblem::kHashMismatch);

  OpenLog();  // the default tail check does not read record 1 (documented)
  AuditLog::Options full;
  full.check = AuditLog::OpenCheck::kFull;
  auto log = AuditLog::Open(path_, TestKey(), clock_, full);
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("line 1 (seq 1): hash_mismatch"), std::string::npos)
      << log.status().message();
}

TEST_F(AuditLogTest, SecondWriterIsRefused) {
  auto first = OpenLog();
  auto second = AuditLog::Open(path_, TestKey(), clock_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), core::StatusCode::kFailedPrecondition);
}

TEST_F(AuditLogTest, ShortKeyIsRejected) {
  auto log = AuditLog::Open(path_, core::SecretBytes(std::string(31, 'k')), clock_);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), core::StatusCode::kInvalidArgument);
}

TEST_F(AuditLogTest, InvalidRecordsAreRejectedWithoutConsumingASeq) {
  auto log = OpenLog();
  ASSERT_TRUE(log->Append(MakeRecord(1)).ok());
  AuditRecord no_action = MakeRecord(2);
  no_action.action.clear();
  EXPECT_EQ(log->Append(no_action).code(), core::StatusCode::kInvalidArgument);
  AuditRecord no_actor = MakeRecord(2);
  no_actor.actor.clear();
  EXPECT_EQ(log->Append(no_actor).code(), core::StatusCode::kInvalidArgument);
  AuditRecord twice = MakeRecord(2);
  twice.sensitive_fields.emplace("stage", core::SecretBytes(std::string_view("x")));
  EXPECT_EQ(log->Append(twice).code(), core::StatusCode::kInvalidArgument);
  AuditRecord huge = MakeRecord(2);
  huge.reason = std::string(kMaxAuditLineBytes, 'x');
  EXPECT_EQ(log->Append(huge).code(), core::StatusCode::kInvalidArgument);
  ASSERT_TRUE(log->Append(MakeRecord(2)).ok());
  EXPECT_EQ(log->Head().seq, 2u);
  log.reset();
  EXPECT_TRUE(Verify().ok());
}

TEST_F(AuditLogTest, HostileContentStaysOnOneLine) {
  auto log = OpenLog();
  AuditRecord r = MakeRecord(1);
  r.actor = "evil\n{\"seq\":99}\"\\";
  r.reason = std::string("ctl \x01\x1b[2J and bad utf8 \xff", 25);
  r.fields["multi\nline key"] = "v\r\n";
  ASSERT_TRUE(log->Append(r).ok());
  log.reset();
  const auto lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 1u);
  const json::object parsed = ParseObject(lines[0]);
  EXPECT_EQ(parsed.at("actor").as_string(), r.actor);
  EXPECT_EQ(parsed.at("fields").at("multi\nline key").as_string(), "v\r\n");
  EXPECT_TRUE(Verify().ok());
}

TEST_F(AuditLogTest, FailedWriteIsStickyAndReopenRepairs) {
  WriteRecords(2);
  auto log = OpenLog();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  core::Status failed;
  {
    // Let the next write store only 10 bytes, then fail (EFBIG).
    const FileSizeLimit limit(static_cast<std::uint64_t>(st.st_size) + 10);
    ASSERT_TRUE(limit.ok());
    failed = log->Append(MakeRecord(3));
  }

  EXPECT_FALSE(failed.ok());
  EXPECT_FALSE(log->Health().ok());
  const core::Status later = log->Append(MakeRecord(4));
  EXPECT_EQ(later.code(), core::StatusCode::kUnavailable) << later;
  EXPECT_EQ(log->Head().seq, 2u);
  log.reset();

  log = OpenLog();
  EXPECT_EQ(log->open_info().truncated_bytes, 10u);
  EXPECT_TRUE(log->Health().ok());
  ASSERT_TRUE(log->Append(MakeRecord(3)).ok());
  log.reset();
  const AuditVerifyReport report = Verify();
  EXPECT_TRUE(report.ok()) << report.ToString();
  EXPECT_EQ(report.records, 4u);  // 2, the recovery record, and the retry
}

TEST_F(AuditLogTest, SequencedRecordsBecomeDurableAndEachWaiterHearsOnce) {
  auto log = OpenLog();
  constexpr int kRecords = 20;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::uint64_t, core::Status>> heard;
  std::uint64_t last = 0;
  for (int i = 1; i <= kRecords; ++i) {
    auto seq = log->Sequence(MakeRecord(i));
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, static_cast<std::uint64_t>(i));
    last = *seq;
    log->WhenDurable(*seq, [&, s = *seq](core::Status status) {
      // Once this runs, the record is on disk: the verifier sees it.
      std::lock_guard lock(mu);
      heard.emplace_back(s, std::move(status));
      cv.notify_all();
    });
  }
  ASSERT_TRUE(log->WaitDurable(last).ok());
  EXPECT_EQ(log->Head().seq, last);
  {
    // The writer thread runs the callbacks after it has published durability.
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return heard.size() >= static_cast<std::size_t>(kRecords); });
    ASSERT_EQ(heard.size(), static_cast<std::size_t>(kRecords));
    std::set<std::uint64_t> seqs;
    for (const auto& [seq, status] : heard) {
      EXPECT_TRUE(status.ok()) << status;
      seqs.insert(seq);
    }
    EXPECT_EQ(seqs.size(), static_cast<std::size_t>(kRecords));
  }
  // Asking about a durable record answers at once, on the asking thread.
  std::thread::id answered_on;
  log->WhenDurable(3, [&](const core::Status& status) {
    EXPECT_TRUE(status.ok());
    answered_on = std::this_thread::get_id();
  });
  EXPECT_EQ(answered_on, std::this_thread::get_id());
  EXPECT_EQ(Verify().records, static_cast<std::uint64_t>(kRecords));
}

TEST_F(AuditLogTest, DestroyingTheLogWritesWhatIsPending) {
  auto log = OpenLog();
  std::atomic<int> ok{0};
  for (int i = 1; i <= 5; ++i) {
    auto seq = log->Sequence(MakeRecord(i));
    ASSERT_TRUE(seq.ok());
    log->WhenDurable(*seq, [&](const core::Status& status) {
      if (status.ok()) ok.fetch_add(1);
    });
  }
  log.reset();
  EXPECT_EQ(ok.load(), 5);
  const AuditVerifyReport report = Verify();
  EXPECT_TRUE(report.ok()) << report.ToString();
  EXPECT_EQ(report.records, 5u);
}

TEST_F(AuditLogTest, FailedWriteFailsEveryPendingWaiter) {
  WriteRecords(2);
  auto log = OpenLog();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  std::atomic<int> failed{0};
  std::uint64_t last = 0;
  core::Status waited;
  {
    const FileSizeLimit limit(static_cast<std::uint64_t>(st.st_size) + 10);
    ASSERT_TRUE(limit.ok());
    for (int i = 3; i <= 6; ++i) {
      auto seq = log->Sequence(MakeRecord(i));
      if (!seq.ok()) break;  // the first batch may already have failed
      last = *seq;
      log->WhenDurable(*seq, [&](const core::Status& status) {
        if (status.code() == core::StatusCode::kUnavailable) failed.fetch_add(1);
      });
    }
    waited = log->WaitDurable(last);
  }

  EXPECT_EQ(waited.code(), core::StatusCode::kUnavailable) << waited;
  EXPECT_EQ(log->Head().seq, 2u);
  bool told = false;
  log->WhenDurable(last, [&](const core::Status& status) { told = !status.ok(); });
  EXPECT_TRUE(told);
  EXPECT_FALSE(log->Sequence(MakeRecord(7)).ok());
  log.reset();  // joins the writer thread: every callback has run
  EXPECT_EQ(failed.load(), static_cast<int>(last - 2));  // every record sequenced was lost
}

TEST_F(AuditLogTest, MissingFileIsAnError) {
  auto report = VerifyAuditLog(dir_ + "/nope.log");
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), core::StatusCode::kNotFound);
}

TEST_F(AuditLogTest, AHungDiskFailsWaitersInsteadOfHangingThem) {
  // The writer blocks before its sync until the test lets it go: a disk that does not answer.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto log = OpenLog(
      {.max_wait = std::chrono::milliseconds(50), .before_sync = [released] { released.wait(); }});
  auto seq = log->Sequence(MakeRecord(1));
  ASSERT_TRUE(seq.ok());
  const core::Status waited = log->WaitDurable(*seq);
  EXPECT_EQ(waited.code(), core::StatusCode::kUnavailable) << waited;
  EXPECT_NE(waited.message().find("not durable within 50 ms"), std::string::npos) << waited;
  std::promise<core::Status> told;
  log->WhenDurable(*seq, [&](const core::Status& status) { told.set_value(status); });
  EXPECT_EQ(told.get_future().get().code(), core::StatusCode::kUnavailable);
  // The disk answers again: the record was written after all, and the log goes on.
  release.set_value();
  auto next = log->Sequence(MakeRecord(2));
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(log->WaitDurable(*next).ok());
  log.reset();
  EXPECT_EQ(Verify().records, 2u);
}

// Segments: the log rotates into DIR/archive/audit-FIRST-LAST.log and continues the chain.
class AuditSegmentTest : public AuditLogTest {
 protected:
  static AuditLog::Options Segmented(std::uint64_t retention_segments = 0) {
    AuditLog::Options options;
    options.segment_bytes = 1500;  // about four records
    options.retention_segments = retention_segments;
    options.maintain_interval = std::chrono::milliseconds(0);  // the test calls Prune
    return options;
  }
  void Append(AuditLog& log, int from, int to) {
    for (int i = from; i <= to; ++i) {
      clock_.Advance(std::chrono::seconds(1));
      ASSERT_TRUE(log.Append(MakeRecord(i)).ok());
    }
  }
  std::vector<AuditSegment> Archived() {
    auto segments = ListAuditSegments(path_);
    EXPECT_TRUE(segments.ok()) << segments.status();
    std::vector<AuditSegment> out;
    for (const AuditSegment& s : *segments) {
      if (!s.active) out.push_back(s);
    }
    return out;
  }
  AuditVerifyReport VerifyAll(AuditVerifyOptions options = {}) {
    auto report = VerifyAuditSegments(path_, options);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : AuditVerifyReport{};
  }
};

TEST_F(AuditSegmentTest, RotationArchivesSegmentsAndTheChainContinues) {
  AuditHead head;
  {
    auto log = OpenLog(Segmented());
    Append(*log, 1, 21);
    head = log->Head();
  }
  const std::vector<AuditSegment> archived = Archived();
  ASSERT_GE(archived.size(), 3u);
  std::uint64_t next = 1;
  for (const AuditSegment& seg : archived) {
    EXPECT_EQ(seg.first_seq, next) << seg.path;
    EXPECT_EQ(seg.path, dir_ + "/archive/audit-" + std::to_string(seg.first_seq) + "-" +
                            std::to_string(seg.last_seq) + ".log");
    const auto lines = ReadLines(seg.path);
    ASSERT_EQ(lines.size(), seg.last_seq - seg.first_seq + 1);
    EXPECT_EQ(ParseObject(lines.front()).at("seq").as_int64(), static_cast<int>(seg.first_seq));
    next = seg.last_seq + 1;
  }
  const auto active = ReadLines(path_);
  ASSERT_FALSE(active.empty());
  EXPECT_EQ(ParseObject(active.front()).at("seq").as_int64(), static_cast<int>(next));
  // The new file's first record links to the last line of the previous segment.
  EXPECT_EQ(ParseObject(active.front()).at("prev").as_string(),
            internal::Sha256Hex(ReadLines(archived.back().path).back()));

  const AuditVerifyReport report = VerifyAll({.expected_head = head});
  EXPECT_TRUE(report.ok()) << report.ToString();
  EXPECT_EQ(report.records, 21u);
  EXPECT_EQ(report.files, archived.size() + 1);
  // One segment alone does not start at genesis: only as a segment.
  EXPECT_EQ(Verify().problem, AuditProblem::kSeqGap);
  EXPECT_TRUE(Verify({.segment = true}).ok());

  // Reopening continues from the active file.
  {
    auto log = OpenLog(Segmented());
    EXPECT_EQ(log->Head(), head);
    Append(*log, 22, 23);
  }
  EXPECT_TRUE(VerifyAll().ok()) << VerifyAll().ToString();
  EXPECT_EQ(VerifyAll().records, 23u);
}

TEST_F(AuditSegmentTest, CrashBetweenRenameAndTheNewFileIsRecovered) {
  AuditHead head;
  {
    auto log = OpenLog();
    Append(*log, 1, 5);
    head = log->Head();
  }
  // The state a crash right after the rotation's rename leaves: no active file at all.
  ASSERT_EQ(::mkdir((dir_ + "/archive").c_str(), 0700), 0);
  ASSERT_EQ(::rename(path_.c_str(), (dir_ + "/archive/audit-1-5.log").c_str()), 0);
  {
    auto log = OpenLog();
    EXPECT_EQ(log->Head(), head);
    Append(*log, 6, 6);
  }
  EXPECT_EQ(ParseObject(ReadLines(path_).front()).at("seq").as_int64(), 6);
  // ... or a new active file that is still empty.
  ASSERT_EQ(::rename(path_.c_str(), (dir_ + "/archive/audit-6-6.log").c_str()), 0);
  WriteAll(path_, "");
  {
    auto log = OpenLog();
    EXPECT_EQ(log->Head().seq, 6u);
    Append(*log, 7, 7);
  }
  const AuditVerifyReport report = VerifyAll();
  EXPECT_TRUE(report.ok()) << report.ToString();
  EXPECT_EQ(report.records, 7u);
  EXPECT_EQ(report.files, 3u);
}

TEST_F(AuditSegmentTest, ActiveFileThatDoesNotContinueTheArchiveIsRefused) {
  {
    auto log = OpenLog(Segmented());
    Append(*log, 1, 14);
  }
  auto lines = ReadLines(path_);
  ASSERT_GE(lines.size(), 2u);
  lines.erase(lines.begin());  // the active file's first record
  WriteLines(path_, lines);
  AuditLog::Options full = Segmented();
  full.check = AuditLog::OpenCheck::kFull;
  auto refused = AuditLog::Open(path_, TestKey(), clock_, full);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("seq_gap"), std::string::npos) << refused.status();

  // Setting it aside continues the chain from the newest archived segment.
  full.on_broken_chain = AuditLog::OnBrokenChain::kStartNewSegment;
  const std::uint64_t archived_last = Archived().back().last_seq;
  {
    auto log = OpenLog(full);
    EXPECT_FALSE(log->open_info().set_aside_file.empty());
    EXPECT_EQ(log->Head().seq, archived_last + 1);  // the audit:StartSegment record
  }
  EXPECT_TRUE(VerifyAll().ok()) << VerifyAll().ToString();
}

TEST_F(AuditSegmentTest, TamperingInAnySegmentIsReportedWithItsFileAndLine) {
  {
    auto log = OpenLog(Segmented());
    Append(*log, 1, 22);
  }
  const std::vector<AuditSegment> archived = Archived();
  ASSERT_GE(archived.size(), 3u);
  const std::string second = archived[1].path;
  const auto original = ReadLines(second);
  ASSERT_GE(original.size(), 3u);

  auto lines = original;  // edit
  lines[1] = Replace(lines[1], "\"stage\":\"prod\"", "\"stage\":\"dev!\"");
  WriteLines(second, lines);
  AuditVerifyReport report = VerifyAll();
  EXPECT_EQ(report.problem, AuditProblem::kHashMismatch) << report.ToString();
  EXPECT_EQ(report.file, second);
  EXPECT_EQ(report.line, 2u);
  EXPECT_EQ(report.seq, archived[1].first_seq + 1);
  EXPECT_NE(report.ToString().find(second + ": line 2"), std::string::npos) << report.ToString();

  lines = original;  // delete
  lines.erase(lines.begin() + 1);
  WriteLines(second, lines);
  report = VerifyAll();
  EXPECT_EQ(report.problem, AuditProblem::kSeqGap) << report.ToString();
  EXPECT_EQ(report.file, second);
  EXPECT_EQ(report.line, 2u);

  lines = original;  // reorder
  std::swap(lines[0], lines[1]);
  WriteLines(second, lines);
  report = VerifyAll();
  EXPECT_EQ(report.problem, AuditProblem::kReordered) << report.ToString();
  EXPECT_EQ(report.file, second);
  EXPECT_EQ(report.line, 1u);
  WriteLines(second, original);
  EXPECT_TRUE(VerifyAll().ok());

  // A whole segment deleted: the next file does not follow on.
  ASSERT_EQ(::rename(second.c_str(), (dir_ + "/moved-away").c_str()), 0);
  report = VerifyAll();
  EXPECT_EQ(report.problem, AuditProblem::kSeqGap) << report.ToString();
  EXPECT_EQ(report.file, archived[2].path);
  EXPECT_EQ(report.line, 1u);
  ASSERT_EQ(::rename((dir_ + "/moved-away").c_str(), second.c_str()), 0);

  // The active file too.
  const auto active = ReadLines(path_);
  ASSERT_GE(active.size(), 2u);
  lines = active;
  std::swap(lines[0], lines[1]);
  WriteLines(path_, lines);
  report = VerifyAll();
  EXPECT_EQ(report.problem, AuditProblem::kReordered) << report.ToString();
  EXPECT_EQ(report.file, path_);
  EXPECT_EQ(report.line, 1u);
}

TEST_F(AuditSegmentTest, RetentionPrunesTheOldestSegmentsAndWhatRemainsVerifies) {
  {
    auto writer = OpenLog(Segmented());
    Append(*writer, 1, 30);
  }
  // Pruned by a log that does not rotate, so that the segments stay as they are.
  AuditLog::Options no_rotation = Segmented(/*retention_segments=*/2);
  no_rotation.segment_bytes = 0;
  auto log = OpenLog(no_rotation);
  const std::vector<AuditSegment> before = Archived();
  ASSERT_GE(before.size(), 5u);
  const std::string first_segment_last_line = ReadLines(before[0].path).back();
  auto removed = log->Prune();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, before.size() - 2);
  const std::vector<AuditSegment> after = Archived();
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].path, before[before.size() - 2].path);
  auto again = log->Prune();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);

  // Each removal is recorded with the removed range, its head and where the chain now starts.
  const auto lines = ReadLines(path_);
  std::vector<json::object> prunes;
  for (const auto& line : lines) {
    json::object r = ParseObject(line);
    if (r.at("action").as_string() == kAuditPruneAction) prunes.push_back(r);
  }
  ASSERT_EQ(prunes.size(), before.size() - 2);
  const json::object& first = prunes.front().at("fields").as_object();
  EXPECT_EQ(first.at("removed_file").as_string(),
            "audit-1-" + std::to_string(before[0].last_seq) + ".log");
  EXPECT_EQ(first.at("removed_first_seq").as_string(), "1");
  EXPECT_EQ(first.at("first_kept_seq").as_string(), std::to_string(before[0].last_seq + 1));
  EXPECT_EQ(first.at("removed_last_hash").as_string(),
            ParseObject(first_segment_last_line).at("hash").as_string());
  EXPECT_EQ(first.at("first_kept_prev").as_string(), internal::Sha256Hex(first_segment_last_line));
  const AuditHead head = log->Head();
  log.reset();

  AuditVerifyReport report = VerifyAll({.expected_head = head});
  EXPECT_TRUE(report.ok()) << report.ToString();
  EXPECT_EQ(report.files, 3u);

  // What remains is still protected: an edit, and the oldest remaining segment deleted without
  // a prune record.
  const std::string oldest = after[0].path;
  const auto original = ReadLines(oldest);
  auto edited = original;
  edited[0] = Replace(edited[0], "\"stage\":\"prod\"", "\"stage\":\"dev!\"");
  WriteLines(oldest, edited);
  report = VerifyAll();
  EXPECT_EQ(report.problem, AuditProblem::kHashMismatch) << report.ToString();
  EXPECT_EQ(report.file, oldest);
  EXPECT_EQ(report.line, 1u);
  WriteLines(oldest, original);
  auto cut = original;
  cut.erase(cut.begin());  // the first kept record
  WriteLines(oldest, cut);
  report = VerifyAll();
  EXPECT_EQ(report.problem, AuditProblem::kSeqGap) << report.ToString();
  EXPECT_EQ(report.file, oldest);
  EXPECT_NE(report.detail.find("no audit:PruneSegments record"), std::string::npos)
      << report.detail;
  ASSERT_EQ(::unlink(oldest.c_str()), 0);
  report = VerifyAll();
  EXPECT_EQ(report.problem, AuditProblem::kSeqGap) << report.ToString();
  EXPECT_EQ(report.file, after[1].path);
  EXPECT_EQ(report.line, 1u);
}

TEST_F(AuditSegmentTest, CrashBetweenThePruneRecordAndTheRemovalStillVerifies) {
  {
    auto writer = OpenLog(Segmented());
    Append(*writer, 1, 16);
  }
  AuditLog::Options no_rotation = Segmented(/*retention_segments=*/1);
  no_rotation.segment_bytes = 0;
  auto log = OpenLog(no_rotation);
  const std::vector<AuditSegment> before = Archived();
  ASSERT_GE(before.size(), 3u);
  std::vector<std::string> kept;
  for (const AuditSegment& seg : before) kept.push_back(ReadAll(seg.path));
  ASSERT_TRUE(log->Prune().ok());
  log.reset();
  // Put the removed segments back, as if the process died after recording their removal.
  for (std::size_t i = 0; i + 1 < before.size(); ++i) WriteAll(before[i].path, kept[i]);
  EXPECT_TRUE(VerifyAll().ok()) << VerifyAll().ToString();
  // ... or only some of them (removals go oldest first).
  ASSERT_EQ(::unlink(before[0].path.c_str()), 0);
  EXPECT_TRUE(VerifyAll().ok()) << VerifyAll().ToString();
  // Reopening prunes again, with new records, and still verifies.
  {
    auto again = OpenLog(no_rotation);
    auto removed = again->Prune();
    ASSERT_TRUE(removed.ok());
    EXPECT_EQ(*removed, before.size() - 2);
  }
  EXPECT_EQ(Archived().size(), 1u);
  EXPECT_TRUE(VerifyAll().ok()) << VerifyAll().ToString();
}

TEST_F(AuditSegmentTest, RetentionByAgeKeepsRecentSegments) {
  std::size_t old_segments = 0;
  {
    auto writer = OpenLog(Segmented());
    Append(*writer, 1, 10);  // old
    old_segments = Archived().size();
    clock_.Advance(std::chrono::hours(48));
    Append(*writer, 11, 20);  // recent
  }
  ASSERT_GE(old_segments, 1u);
  const std::size_t all = Archived().size();
  AuditLog::Options options = Segmented();
  options.segment_bytes = 0;
  options.retention_age = std::chrono::hours(24);
  auto log = OpenLog(options);
  auto removed = log->Prune();
  ASSERT_TRUE(removed.ok()) << removed.status();
  // A segment that holds old and recent records ends with a recent one: it stays.
  EXPECT_GE(*removed, old_segments - 1);
  EXPECT_LE(*removed, old_segments);
  EXPECT_EQ(Archived().size(), all - *removed);
  for (const AuditSegment& seg : Archived()) {
    EXPECT_GE(std::string(ParseObject(ReadLines(seg.path).back()).at("time").as_string()),
              "2026-01-02T00:00:00.000Z");
  }
  log.reset();
  EXPECT_TRUE(VerifyAll().ok()) << VerifyAll().ToString();
}

TEST_F(AuditSegmentTest, ALogWhoseArchiveWasPrunedAwayStillOpensAndVerifies) {
  {
    auto writer = OpenLog(Segmented());
    Append(*writer, 1, 14);
  }
  ASSERT_GE(Archived().size(), 2u);
  clock_.Advance(std::chrono::hours(48));
  AuditLog::Options options = Segmented();
  options.segment_bytes = 0;
  options.retention_age = std::chrono::hours(24);
  options.check = AuditLog::OpenCheck::kFull;
  {
    auto log = OpenLog(options);
    ASSERT_TRUE(log->Prune().ok());
    EXPECT_TRUE(Archived().empty());
  }
  // The active file now starts past seq 1; its prune records say why, so it opens (with the
  // full check) and verifies.
  EXPECT_GT(ParseObject(ReadLines(path_).front()).at("seq").as_int64(), 1);
  {
    auto log = OpenLog(options);
    ASSERT_NE(log, nullptr);
    Append(*log, 15, 15);
  }
  EXPECT_TRUE(VerifyAll().ok()) << VerifyAll().ToString();
  // A start that no prune record names does not.
  auto lines = ReadLines(path_);
  lines.erase(lines.begin());
  WriteLines(path_, lines);
  const AuditVerifyReport report = VerifyAll();
  EXPECT_EQ(report.problem, AuditProblem::kSeqGap) << report.ToString();
  EXPECT_EQ(report.line, 1u);
  EXPECT_NE(report.detail.find("no audit:PruneSegments record"), std::string::npos)
      << report.detail;
}

TEST_F(AuditSegmentTest, TheMaintenanceThreadPrunesAfterARotation) {
  AuditLog::Options options = Segmented(/*retention_segments=*/1);
  options.maintain_interval = std::chrono::hours(1);
  auto log = OpenLog(options);
  Append(*log, 1, 20);
  // Pruning runs on the log's own thread after each rotation; wait for it to catch up.
  for (int i = 0; i < 3000 && Archived().size() > 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(Archived().size(), 1u);
  log.reset();
  EXPECT_TRUE(VerifyAll().ok()) << VerifyAll().ToString();
}

TEST_F(AuditSegmentTest, RotationsAndPrunesAreCounted) {
  MetricsRegistry registry;
  AuditLog::Options options = Segmented(/*retention_segments=*/1);
  options.metrics = &registry;
  auto log = OpenLog(options);
  Append(*log, 1, 14);
  auto pruned = log->Prune();
  ASSERT_TRUE(pruned.ok());
  ASSERT_GE(*pruned, 1u);
  log.reset();  // the last rotation, if any, is done
  auto value = [text = registry.Expose()](const std::string& name) {
    const auto at = text.find("\n" + name + " ");
    return at == std::string::npos
               ? std::string("missing")
               : text.substr(at + name.size() + 2, text.find('\n', at + 1) - at - name.size() - 2);
  };
  EXPECT_EQ(value("moatless_audit_segments_archived_total"),
            std::to_string(Archived().size() + *pruned));
  EXPECT_EQ(value("moatless_audit_segments_pruned_total"), std::to_string(*pruned));
}

TEST_F(AuditSegmentTest, TheLockOutlivesRotations) {
  auto log = OpenLog(Segmented());
  Append(*log, 1, 10);
  ASSERT_GE(Archived().size(), 1u);
  auto second = AuditLog::Open(path_, TestKey(), clock_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), core::StatusCode::kFailedPrecondition);
}

TEST_F(AuditLogTest, HmacIsTheStoredFormOfASensitiveValue) {
  auto log = OpenLog();
  const core::SecretBytes value(std::string("AKIAEXAMPLE"));
  EXPECT_EQ(log->Hmac(value), AuditHmac(TestKey(), value));
  EXPECT_TRUE(AuditHmacMatches(TestKey(), log->Hmac(value), value));
}

}  // namespace
}  // namespace moatless::observe
