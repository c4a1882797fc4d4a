#include "observe/log_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/clock.h"

namespace moatless::observe {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

class LogFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/moatless-logfiles-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    path_ = dir_ + "/f.log";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<RotatingFileSink> Open(RotationPolicy policy) {
    auto sink = RotatingFileSink::Open(path_, policy, clock_);
    EXPECT_TRUE(sink.ok()) << sink.status().ToString();
    return sink.ok() ? std::move(sink).value() : nullptr;
  }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // One entry line of `size` bytes (with its newline) at the clock's time.
  std::string Entry(const std::string& request_id, const std::string& message,
                    std::size_t size = 0) {
    json::object o{{"time", core::FormatRfc3339(clock_.Now())},
                   {"request_id", request_id},
                   {"message", message}};
    std::string line = json::serialize(o);
    if (size > line.size() + 1) {
      o["pad"] = std::string(size - line.size() - 1 - 9, 'x');  // ,"pad":"" is 9 bytes
      line = json::serialize(o);
    }
    return line + "\n";
  }

  static std::vector<std::string> Messages(const LogPage& page) {
    std::vector<std::string> out;
    for (const json::object& e : page.entries) out.emplace_back(e.at("message").as_string());
    return out;
  }

  core::FakeClock clock_;
  std::string dir_;
  std::string path_;
};

TEST_F(LogFilesTest, CreatesPrivateFileAndAppends) {
  auto sink = Open({});
  sink->Write(Entry("r1", "one"));
  sink->Write(Entry("r1", "two"));
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(Read(path_), Entry("r1", "one") + Entry("r1", "two"));
}

TEST_F(LogFilesTest, NarrowsAWiderModeAndRefusesSymlinks) {
  { std::ofstream(path_) << ""; }
  ::chmod(path_.c_str(), 0644);
  auto sink = Open({});
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  sink.reset();
  fs::remove(path_);
  fs::create_symlink(dir_ + "/elsewhere", path_);
  EXPECT_FALSE(RotatingFileSink::Open(path_, {}, clock_).ok());
  EXPECT_FALSE(fs::exists(dir_ + "/elsewhere"));
}

TEST_F(LogFilesTest, RotatesAtTheSizeBoundary) {
  auto sink = Open({.max_bytes = 300, .max_files = 3});
  const std::string a = Entry("r", "a", 100);
  ASSERT_EQ(a.size(), 100u);
  sink->Write(a);
  sink->Write(Entry("r", "b", 100));
  sink->Write(Entry("r", "c", 100));  // exactly 300: still one file
  EXPECT_EQ(sink->rotations(), 0u);
  EXPECT_FALSE(fs::exists(path_ + ".1"));
  sink->Write(Entry("r", "d", 100));  // 400 > 300: rotate first
  EXPECT_EQ(sink->rotations(), 1u);
  EXPECT_EQ(fs::file_size(path_ + ".1"), 300u);
  EXPECT_EQ(Read(path_), Entry("r", "d", 100));
  for (const char* m : {"e", "f", "g", "h", "i", "j"}) sink->Write(Entry("r", m, 100));
  // 10 entries, 3 per file, 3 files kept: g h i in .1, j in the current file.
  EXPECT_EQ(sink->rotations(), 3u);
  EXPECT_EQ(LogFilePaths(path_), (std::vector<std::string>{path_ + ".2", path_ + ".1", path_}));
  EXPECT_FALSE(fs::exists(path_ + ".3"));
  EXPECT_EQ(Read(path_ + ".2"), Entry("r", "d", 100) + Entry("r", "e", 100) + Entry("r", "f", 100));
  EXPECT_EQ(Read(path_), Entry("r", "j", 100));
  EXPECT_EQ(sink->failed_writes(), 0u);
}

TEST_F(LogFilesTest, AWriteLargerThanAFileGetsAFileOfItsOwn) {
  auto sink = Open({.max_bytes = 100, .max_files = 2});
  sink->Write(Entry("r", "small", 50));
  sink->Write(Entry("r", "big", 250));
  EXPECT_EQ(Read(path_), Entry("r", "big", 250));
  sink->Write(Entry("r", "next", 50));
  EXPECT_EQ(Read(path_ + ".1"), Entry("r", "big", 250));
  EXPECT_EQ(Read(path_), Entry("r", "next", 50));
}

TEST_F(LogFilesTest, OneFileKeptMeansRotationDiscards) {
  auto sink = Open({.max_bytes = 100, .max_files = 1});
  sink->Write(Entry("r", "a", 80));
  sink->Write(Entry("r", "b", 80));
  EXPECT_EQ(LogFilePaths(path_), std::vector<std::string>{path_});
  EXPECT_EQ(Read(path_), Entry("r", "b", 80));
}

TEST_F(LogFilesTest, ExcessRotatedFilesFromALargerSettingAreRemoved) {
  for (int i = 1; i <= 6; ++i) std::ofstream(path_ + "." + std::to_string(i)) << "x\n";
  auto sink = Open({.max_bytes = 100, .max_files = 3});
  EXPECT_EQ(LogFilePaths(path_), (std::vector<std::string>{path_ + ".2", path_ + ".1", path_}));
}

TEST_F(LogFilesTest, RetentionDeletesOldRotatedFilesAndIdleLogs) {
  const auto now = std::chrono::system_clock::now();
  clock_.SetWallTime(now);
  auto set_age = [](const std::string& p, std::chrono::hours age) {
    const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() - age);
    const timespec times[2] = {{t, 0}, {t, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, 0), 0);
  };
  std::ofstream(path_) << "{}\n";
  std::ofstream(path_ + ".1") << "{}\n";
  std::ofstream(path_ + ".2") << "{}\n";
  set_age(path_ + ".1", std::chrono::hours(30));
  set_age(path_ + ".2", std::chrono::hours(50));
  const RotationPolicy policy{.max_bytes = 100, .max_files = 5, .max_age = std::chrono::hours(48)};
  EXPECT_EQ(ApplyRetention(path_, policy, now), 1u);
  EXPECT_EQ(LogFilePaths(path_), (std::vector<std::string>{path_ + ".1", path_}));
  EXPECT_EQ(ApplyRetention(path_, {.max_age = std::chrono::seconds(0)}, now), 0u);
  // A log nobody wrote to for longer than max_age goes altogether.
  set_age(path_, std::chrono::hours(49));
  set_age(path_ + ".1", std::chrono::hours(49));
  EXPECT_EQ(ApplyRetention(path_, policy, now), 2u);
  EXPECT_TRUE(LogFilePaths(path_).empty());
  // And the sink prunes at every rotation.
  auto sink = Open(policy);
  sink->Write(Entry("r", "a", 80));
  sink->Write(Entry("r", "b", 80));
  set_age(path_ + ".1", std::chrono::hours(72));
  sink->Write(Entry("r", "c", 80));
  EXPECT_EQ(LogFilePaths(path_), (std::vector<std::string>{path_ + ".1", path_}));
  EXPECT_EQ(Read(path_ + ".1"), Entry("r", "b", 80));
}

TEST_F(LogFilesTest, ConcurrentWritersKeepLinesWhole) {
  auto sink = Open({.max_bytes = 4096, .max_files = 100});
  constexpr int kThreads = 8;
  constexpr int kLines = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kLines; ++i) {
        sink->Write(Entry("t" + std::to_string(t), std::to_string(i), 64));
      }
    });
  }
  for (auto& t : threads) t.join();
  std::map<std::string, int> next;
  std::size_t total = 0;
  for (const std::string& p : LogFilePaths(path_)) {
    EXPECT_LE(fs::file_size(p), 4096u);
    std::istringstream in(Read(p));
    for (std::string line; std::getline(in, line);) {
      const json::object o = json::parse(line).as_object();
      const std::string thread(o.at("request_id").as_string());
      EXPECT_EQ(std::to_string(next[thread]++), o.at("message").as_string());
      ++total;
    }
  }
  EXPECT_EQ(total, static_cast<std::size_t>(kThreads * kLines));
  EXPECT_EQ(sink->failed_writes(), 0u);
}

TEST_F(LogFilesTest, AWriteThatCannotOpenIsCountedNotThrown) {
  auto sink = Open({.max_bytes = 100, .max_files = 2});
  MetricsRegistry metrics;
  CounterFamily& lost = metrics.Counter("lost_total", "Lost.", {});
  sink->CountFailuresIn(&lost.WithLabels({}));
  fs::remove_all(dir_);  // rotation cannot create the new file
  sink->Write(Entry("r", "a", 80));
  sink->Write(Entry("r", "b", 80));
  sink->Write(Entry("r", "c", 80));
  EXPECT_GE(sink->failed_writes(), 1u);
  EXPECT_EQ(lost.Value(), static_cast<double>(sink->failed_writes()));
  fs::create_directories(dir_);
  clock_.Advance(std::chrono::seconds(2));
  sink->Write(Entry("r", "d", 80));
  EXPECT_EQ(Read(path_), Entry("r", "d", 80));
}

TEST_F(LogFilesTest, TeeWritesEverywhere) {
  MemorySink a;
  MemorySink b;
  TeeSink tee({&a});
  tee.Add(&b);
  tee.Write("x\n");
  EXPECT_EQ(a.Lines(), std::vector<std::string>{"x"});
  EXPECT_EQ(b.Lines(), std::vector<std::string>{"x"});
}

TEST_F(LogFilesTest, ReaderFiltersByTimeRequestIdAndText) {
  auto sink = Open({});
  sink->Write(Entry("r1", "hello world"));
  clock_.Advance(std::chrono::minutes(1));
  const core::WallTime t1 = clock_.Now();
  sink->Write(Entry("r2", "second \"quoted\" line") + Entry("r2", "more"));
  clock_.Advance(std::chrono::minutes(1));
  sink->Write(Entry("r3", "hello again"));
  const core::WallTime t2 = clock_.Now();

  auto all = ReadLogFiles(path_, {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Messages(*all), (std::vector<std::string>{"hello world", "second \"quoted\" line",
                                                      "more", "hello again"}));
  EXPECT_FALSE(all->more);
  EXPECT_EQ(Messages(*ReadLogFiles(path_, {.since = t1})),
            (std::vector<std::string>{"second \"quoted\" line", "more", "hello again"}));
  EXPECT_EQ(Messages(*ReadLogFiles(path_, {.since = t1, .until = t2})),
            (std::vector<std::string>{"second \"quoted\" line", "more"}));
  EXPECT_EQ(Messages(*ReadLogFiles(path_, {.request_id = "r2"})),
            (std::vector<std::string>{"second \"quoted\" line", "more"}));
  EXPECT_EQ(Messages(*ReadLogFiles(path_, {.request_id = "r"})), std::vector<std::string>{});
  EXPECT_EQ(Messages(*ReadLogFiles(path_, {.filter = "hello"})),
            (std::vector<std::string>{"hello world", "hello again"}));
  EXPECT_EQ(Messages(*ReadLogFiles(path_, {.filter = "\"quoted\""})),
            std::vector<std::string>{"second \"quoted\" line"});
  EXPECT_TRUE(ReadLogFiles(dir_ + "/none.log", {})->entries.empty());
  EXPECT_FALSE(ReadLogFiles(path_, {.cursor = "nonsense"}).ok());
}

TEST_F(LogFilesTest, ReaderSkipsMalformedAndOversizedLines) {
  std::ofstream(path_) << Entry("r", "one") << "not json\n"
                       << "[1,2]\n"
                       << "{\"time\":\"yesterday\"}\n"
                       << "\n"
                       << "{\"time\":\"2026-01-01T00:00:00Z\",\"message\":\"" +
                              std::string(kMaxLogLineBytes, 'x') + "\"}\n"
                       << Entry("r", "two") << "{\"time\":\"2026-01-01T00:00:00Z\",\"mess";
  auto page = ReadLogFiles(path_, {});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Messages(*page), (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(page->skipped_lines, 4u);
  // The unfinished last line is left for the next read.
  std::ofstream(path_, std::ios::app) << "age\":\"three\"}\n";
  auto next = ReadLogFiles(path_, {.cursor = page->next_cursor});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->entries.size(), 1u);
  EXPECT_FALSE(next->gap);
}

TEST_F(LogFilesTest, CursorPagesAndFollowsAcrossRotation) {
  auto sink = Open({.max_bytes = 250, .max_files = 4});
  sink->Write(Entry("r", "a", 100));
  sink->Write(Entry("r", "b", 100));
  auto first = ReadLogFiles(path_, {.limit = 1});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(Messages(*first), std::vector<std::string>{"a"});
  EXPECT_TRUE(first->more);
  // The log rotates twice before the follower comes back.
  sink->Write(Entry("r", "c", 100));
  sink->Write(Entry("r", "d", 100));
  sink->Write(Entry("r", "e", 100));
  ASSERT_EQ(LogFilePaths(path_).size(), 3u);
  auto rest = ReadLogFiles(path_, {.cursor = first->next_cursor});
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(Messages(*rest), (std::vector<std::string>{"b", "c", "d", "e"}));
  EXPECT_FALSE(rest->more);
  EXPECT_FALSE(rest->gap);
  // Nothing new: an empty page with the same position.
  auto none = ReadLogFiles(path_, {.cursor = rest->next_cursor});
  EXPECT_TRUE(none->entries.empty());
  EXPECT_EQ(none->next_cursor, rest->next_cursor);
  // A filter that matches nothing still moves the cursor past what it read.
  sink->Write(Entry("r", "f", 100));
  auto filtered = ReadLogFiles(path_, {.request_id = "other", .cursor = rest->next_cursor});
  EXPECT_TRUE(filtered->entries.empty());
  auto after = ReadLogFiles(path_, {.cursor = filtered->next_cursor});
  EXPECT_TRUE(after->entries.empty());
  sink->Write(Entry("r", "g", 100));
  EXPECT_EQ(Messages(*ReadLogFiles(path_, {.cursor = filtered->next_cursor})),
            std::vector<std::string>{"g"});
}

TEST_F(LogFilesTest, AFollowerBesideARotatingWriterSeesEveryLineOnceInOrder) {
  constexpr int kLines = 3000;
  auto sink = Open({.max_bytes = 2048, .max_files = 1000});
  std::jthread writer([&] {
    for (int i = 0; i < kLines; ++i) sink->Write(Entry("r", std::to_string(i), 100));
  });
  int next = 0;
  std::string cursor;
  while (next < kLines) {
    auto page = sink->Read({.limit = 50, .cursor = cursor});
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ASSERT_FALSE(page->gap) << "after " << next;
    for (const std::string& m : Messages(*page)) ASSERT_EQ(m, std::to_string(next++));
    cursor = page->next_cursor;
  }
  writer.join();
  EXPECT_GT(sink->rotations(), 100u);
  EXPECT_TRUE(ReadLogFiles(path_, {.cursor = cursor})->entries.empty());
}

TEST_F(LogFilesTest, CursorWhoseFileIsGoneResumesAtTheOldestWithAGap) {
  auto sink = Open({.max_bytes = 150, .max_files = 2});
  sink->Write(Entry("r", "a", 100));
  auto page = ReadLogFiles(path_, {});
  ASSERT_EQ(Messages(*page), std::vector<std::string>{"a"});
  for (const char* m : {"b", "c", "d"}) sink->Write(Entry("r", m, 100));
  auto next = ReadLogFiles(path_, {.cursor = page->next_cursor});
  EXPECT_TRUE(next->gap);
  EXPECT_EQ(Messages(*next), (std::vector<std::string>{"c", "d"}));
}

TEST_F(LogFilesTest, ScanBudgetEndsAPage) {
  auto sink = Open({});
  for (int i = 0; i < 100; ++i) sink->Write(Entry("r" + std::to_string(i), "m", 100));
  auto page = ReadLogFiles(path_, {.request_id = "r99", .max_scan_bytes = 1});
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->more);
  std::size_t pages = 1;
  std::size_t found = page->entries.size();
  while (page->more) {
    page = ReadLogFiles(path_, {.request_id = "r99", .cursor = page->next_cursor});
    found += page->entries.size();
    ++pages;
  }
  EXPECT_EQ(found, 1u);
  EXPECT_GE(pages, 2u);
}

TEST(ParseRfc3339Test, AcceptsTheUsualFormsAndRefusesOthers) {
  const auto base = *ParseRfc3339("2026-01-01T00:00:00Z");
  EXPECT_EQ(core::FormatRfc3339(base), "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(core::FormatRfc3339(*ParseRfc3339("2026-03-04T05:06:07.891Z")),
            "2026-03-04T05:06:07.891Z");
  EXPECT_EQ(*ParseRfc3339("2026-01-01T02:30:00+02:30"), base);
  EXPECT_EQ(*ParseRfc3339("2025-12-31 23:00:00.000000-01:00"), base);
  for (const char* bad : {"", "2026-01-01", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                          "2026-01-01T24:00:00Z", "2026-01-01T00:00:00", "2026-01-01T00:00:00.Z",
                          "2026-01-01T00:00:00Zjunk", "2026-01-01T00:00:00+0200"}) {
    EXPECT_FALSE(ParseRfc3339(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace moatless::observe
