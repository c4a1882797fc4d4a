#include "manifest/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace moatless::manifest {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kManifest = R"(app: demo
stage: dev
functions:
  hello:
    runtime: nodejs20
    handler: index.handler
    code: hello
routes:
  - { route: POST /hello, function: hello, auth: none, schema: schemas/hello.json }
)";

// One entry of a hand-made archive.
struct RawEntry {
  std::string path;
  mode_t type = AE_IFREG;
  std::string content;
  std::string link;  // symlink target or hardlink source
};

// A .tar.gz built entry by entry, to say exactly what a hostile client could send.
std::string RawArchive(const std::vector<RawEntry>& entries) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_gzip(a);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* client, const void* buffer, size_t n) -> la_ssize_t {
        static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const RawEntry& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.path.c_str());
    archive_entry_set_filetype(entry, e.type);
    archive_entry_set_perm(entry, 0644);
    if (e.type == AE_IFLNK) archive_entry_set_symlink(entry, e.link.c_str());
    if (e.type == AE_IFREG && !e.link.empty()) archive_entry_set_hardlink(entry, e.link.c_str());
    archive_entry_set_size(entry,
                           e.type == AE_IFREG ? static_cast<la_int64_t>(e.content.size()) : 0);
    archive_write_header(a, entry);
    if (!e.content.empty()) archive_write_data(a, e.content.data(), e.content.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moatless-bundle-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    app_ = dir_ + "/app";
    Write("moatless.yaml", kManifest);
    Write("hello/index.js", "exports.handler = async () => 'hi';\n");
    Write("hello/lib/util.js", "module.exports = 1;\n");
    Write("hello/bin/tool", "#!/bin/sh\n");
    fs::permissions(app_ + "/hello/bin/tool", fs::perms::owner_exec, fs::perm_options::add);
    Write("schemas/hello.json", "{}");
    Write("secret-notes.txt", "not referenced: must not travel");
    fs::create_symlink("/etc/passwd", app_ + "/hello/passwd");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& relative, std::string_view text) {
    const fs::path path = fs::path(app_) / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  Manifest Parsed() {
    ParseOptions options;
    options.base_dir = app_;
    ParseOutcome outcome = ParseManifest(kManifest, options);
    EXPECT_TRUE(outcome.manifest.has_value()) << outcome.ToStatus("moatless.yaml");
    return outcome.manifest.value_or(Manifest{});
  }
  static std::string Read(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string dir_;
  std::string app_;
};

TEST_F(BundleTest, PacksWhatTheManifestNamesDeterministically) {
  auto packed = PackBundle(app_, Parsed());
  ASSERT_TRUE(packed.ok()) << packed.status();
  EXPECT_EQ(packed->files, 5u);  // manifest, 3 code files, schema
  EXPECT_EQ(packed->skipped, std::vector<std::string>{"hello/passwd"});
  auto again = PackBundle(app_, Parsed());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(packed->bytes, again->bytes);

  const std::string out = dir_ + "/out";
  ASSERT_TRUE(ExtractBundle(packed->bytes, out).ok());
  EXPECT_EQ(Read(out + "/hello/lib/util.js"), "module.exports = 1;\n");
  EXPECT_EQ(Read(out + "/schemas/hello.json"), "{}");
  EXPECT_FALSE(fs::exists(out + "/secret-notes.txt"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(out + "/hello/passwd")));
  EXPECT_NE(fs::status(out + "/hello/bin/tool").permissions() & fs::perms::owner_exec,
            fs::perms::none);
  // The code tree hashes the same on both sides.
  fs::remove(app_ + "/hello/passwd");
  auto source = TreeHash(app_ + "/hello");
  auto copy = TreeHash(out + "/hello");
  ASSERT_TRUE(source.ok() && copy.ok());
  EXPECT_EQ(*source, *copy);
  EXPECT_EQ(source->size(), 64u);
  Write("hello/index.js", "exports.handler = async () => 'changed';\n");
  EXPECT_NE(*TreeHash(app_ + "/hello"), *copy);
}

TEST_F(BundleTest, HostileBundlesAreRefusedAndLeaveNothing) {
  const RawEntry manifest{"moatless.yaml", AE_IFREG, std::string(kManifest), ""};
  struct Case {
    std::string name;
    std::vector<RawEntry> entries;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"absolute path", {manifest, {"/tmp/evil", AE_IFREG, "x", ""}}, "absolute path"},
      {"dot-dot", {manifest, {"hello/../../evil", AE_IFREG, "x", ""}}, "leaves the bundle"},
      {"symlink", {manifest, {"hello/link", AE_IFLNK, "", "/etc/shadow"}}, "is a link"},
      {"hardlink", {manifest, {"hello/hard", AE_IFREG, "", "/etc/shadow"}}, "is a link"},
      {"device", {manifest, {"hello/null", AE_IFCHR, "", ""}}, "not a regular file"},
      {"fifo", {manifest, {"hello/fifo", AE_IFIFO, "", ""}}, "not a regular file"},
      {"duplicate", {manifest, manifest}, "cannot be created"},
      {"file then directory",
       {manifest, {"a", AE_IFREG, "x", ""}, {"a/b", AE_IFREG, "y", ""}},
       "collides with a file"},
      {"no manifest", {{"hello/index.js", AE_IFREG, "x", ""}}, "has no moatless.yaml"},
  };
  for (const Case& c : cases) {
    const std::string out = dir_ + "/out-" + std::to_string(&c - cases.data());
    const core::Status status = ExtractBundle(RawArchive(c.entries), out);
    EXPECT_EQ(status.code(), core::StatusCode::kInvalidArgument) << c.name << ": " << status;
    EXPECT_NE(status.message().find(c.expected), std::string::npos) << c.name << ": " << status;
    EXPECT_FALSE(fs::exists(out)) << c.name;
  }
  EXPECT_FALSE(fs::exists("/tmp/evil"));
  EXPECT_EQ(ExtractBundle("not a tarball at all", dir_ + "/garbage").code(),
            core::StatusCode::kInvalidArgument);
}

TEST_F(BundleTest, LimitsAreEnforcedWhileExtracting) {
  const RawEntry manifest{"moatless.yaml", AE_IFREG, std::string(kManifest), ""};
  BundleLimits limits;
  limits.max_file_bytes = 1024;
  std::string bytes = RawArchive({manifest, {"big", AE_IFREG, std::string(4096, 'z'), ""}});
  EXPECT_EQ(ExtractBundle(bytes, dir_ + "/big", limits).code(), core::StatusCode::kPayloadTooLarge);
  limits = {};
  limits.max_expanded_bytes = 2048;
  bytes = RawArchive({manifest,
                      {"a", AE_IFREG, std::string(1000, 'a'), ""},
                      {"b", AE_IFREG, std::string(1000, 'b'), ""}});
  EXPECT_EQ(ExtractBundle(bytes, dir_ + "/many-bytes", limits).code(),
            core::StatusCode::kPayloadTooLarge);
  limits = {};
  limits.max_entries = 3;
  bytes = RawArchive(
      {manifest, {"a", AE_IFREG, "1", ""}, {"b", AE_IFREG, "2", ""}, {"c", AE_IFREG, "3", ""}});
  EXPECT_EQ(ExtractBundle(bytes, dir_ + "/many", limits).code(),
            core::StatusCode::kPayloadTooLarge);
  // A gzip bomb: a megabyte of zeros compresses to a kilobyte; expansion is what is counted.
  limits = {};
  limits.max_expanded_bytes = 64 * 1024;
  bytes = RawArchive({manifest, {"zeros", AE_IFREG, std::string(1 << 20, '\0'), ""}});
  EXPECT_LT(bytes.size(), 16u * 1024);
  EXPECT_EQ(ExtractBundle(bytes, dir_ + "/bomb", limits).code(),
            core::StatusCode::kPayloadTooLarge);
  EXPECT_FALSE(fs::exists(dir_ + "/bomb"));
}

}  // namespace
}  // namespace moatless::manifest
