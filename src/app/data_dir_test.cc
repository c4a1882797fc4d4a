#include "app/data_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

namespace moatless::app {
namespace {

class DataDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moatless-datadir-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + root_).c_str()); }
  std::string root_;
  std::unique_ptr<core::Env> env_ = core::Env::Real();
};

TEST_F(DataDirTest, CreatesPrivateFolderAndLocksIt) {
  const std::string path = root_ + "/data";
  auto dir = DataDir::Open(path, *env_);
  ASSERT_TRUE(dir.ok()) << dir.status();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  auto second = DataDir::Open(path, *env_);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("in use by another moatless process"),
            std::string::npos);

  dir->reset();  // releases the lock
  EXPECT_TRUE(DataDir::Open(path, *env_).ok());
}

TEST_F(DataDirTest, RefusesFolderOthersCanAccess) {
  const std::string path = root_ + "/open";
  ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
  auto dir = DataDir::Open(path, *env_);
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find("accessible to other users (mode 0755)"),
            std::string::npos);
}

TEST_F(DataDirTest, AuditKeyIsCreatedOnceAndPrivate) {
  auto dir = DataDir::Open(root_ + "/data", *env_);
  ASSERT_TRUE(dir.ok());
  auto key1 = (*dir)->LoadOrCreateAuditKey(*env_);
  auto key2 = (*dir)->LoadOrCreateAuditKey(*env_);
  ASSERT_TRUE(key1.ok() && key2.ok());
  EXPECT_EQ(key1->size(), 32u);
  EXPECT_TRUE(key1->ConstantTimeEquals(*key2));
  struct stat st {};
  ASSERT_EQ(::stat((*dir)->AuditKeyPath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  ASSERT_EQ(::chmod((*dir)->AuditKeyPath().c_str(), 0644), 0);
  auto exposed = (*dir)->LoadOrCreateAuditKey(*env_);
  ASSERT_FALSE(exposed.ok());
  EXPECT_NE(exposed.status().message().find("chmod 600"), std::string::npos);
}

TEST_F(DataDirTest, TruncatedAuditKeyIsRefused) {
  auto dir = DataDir::Open(root_ + "/data", *env_);
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(env_->fs().WriteFileAtomic((*dir)->AuditKeyPath(), "short", 0600).ok());
  EXPECT_EQ((*dir)->LoadOrCreateAuditKey(*env_).status().code(),
            core::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace moatless::app
