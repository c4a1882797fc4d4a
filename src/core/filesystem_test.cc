#include "core/filesystem.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

namespace moatless::core {
namespace {

class FileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moatless-fs-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_;
  RealFileSystem fs_;
};

TEST_F(FileSystemTest, AtomicWriteReplacesAndSetsMode) {
  const std::string path = dir_ + "/key";
  ASSERT_TRUE(fs_.WriteFileAtomic(path, "one", 0600).ok());
  ASSERT_TRUE(fs_.WriteFileAtomic(path, "two", 0600).ok());
  EXPECT_EQ(*fs_.ReadFile(path), "two");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto names = fs_.ListDir(dir_);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"key"});  // no temporary left behind
}

TEST_F(FileSystemTest, MakeDirsNestedAndIdempotent) {
  const std::string nested = dir_ + "/a/b/c";
  ASSERT_TRUE(fs_.MakeDirs(nested, 0700).ok());
  ASSERT_TRUE(fs_.MakeDirs(nested, 0700).ok());
  EXPECT_TRUE(fs_.Exists(nested));
  ASSERT_TRUE(fs_.WriteFileAtomic(dir_ + "/file", "x").ok());
  EXPECT_EQ(fs_.MakeDirs(dir_ + "/file").code(), StatusCode::kFailedPrecondition);
}

TEST_F(FileSystemTest, MissingFileIsNotFound) {
  auto r = fs_.ReadFile(dir_ + "/missing");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(fs_.Remove(dir_ + "/missing").code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace moatless::core
