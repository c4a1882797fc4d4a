#include "app/init.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "app/data_dir.h"

namespace moatless::app {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

unsigned Mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

class InitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moatless-init-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + root_).c_str()); }
  std::string root_;
  std::unique_ptr<core::Env> env_ = core::Env::Real();
};

TEST_F(InitTest, CreatesKeysRootAndAPrivateCredentialsProfileOnce) {
  const InitOptions options{.data_dir = root_ + "/data",
                            .credentials_file = root_ + "/home/.aws/credentials"};
  auto result = InitializeDataDir(options, *env_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->root_arn, "arn:aws:iam::000000000000:root");
  EXPECT_TRUE(result->access_key_id.starts_with("AKIA"));
  EXPECT_EQ(Mode(root_ + "/data"), 0700u);
  EXPECT_EQ(Mode(root_ + "/data/keys/master.key"), 0600u);
  EXPECT_EQ(Mode(options.credentials_file), 0600u);
  EXPECT_EQ(Mode(root_ + "/home/.aws"), 0700u);
  const std::string creds = Read(options.credentials_file);
  EXPECT_NE(creds.find("[moatless]\naws_access_key_id = " + result->access_key_id +
                       "\naws_secret_access_key = "),
            std::string::npos);
  EXPECT_NE(Read(root_ + "/data/audit/audit.log").find("moatless:Init"), std::string::npos);
  // The secret is not in the audit log.
  const std::string secret_line = creds.substr(creds.find("aws_secret_access_key = ") + 24, 40);
  EXPECT_EQ(Read(root_ + "/data/audit/audit.log").find(secret_line), std::string::npos);

  auto again = InitializeDataDir(options, *env_);
  EXPECT_EQ(again.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Read(options.credentials_file), creds);  // untouched
}

TEST_F(InitTest, RefusesAMasterKeyOthersCanRead) {
  const InitOptions options{.data_dir = root_ + "/data",
                            .credentials_file = root_ + "/credentials"};
  {
    auto dir = DataDir::Open(options.data_dir, *env_);
    ASSERT_TRUE(dir.ok());
    ASSERT_TRUE((*dir)->LoadOrCreateMasterKey(*env_).ok());
  }
  ASSERT_EQ(::chmod((root_ + "/data/keys/master.key").c_str(), 0644), 0);
  auto result = InitializeDataDir(options, *env_);
  EXPECT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("master key"), std::string::npos);
  EXPECT_FALSE(env_->fs().Exists(options.credentials_file));
}

TEST(CredentialsFile, ReplacesOnlyItsOwnProfile) {
  const std::string existing =
      "# mine\n[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n"
      "[moatless]\naws_access_key_id = OLD\naws_secret_access_key = OLDSECRET\n"
      "[other]\naws_access_key_id = C\n";
  const std::string updated = WithCredentialsProfile(existing, "moatless", "NEW", "NEWSECRET");
  EXPECT_EQ(updated,
            "# mine\n[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n"
            "[moatless]\naws_access_key_id = NEW\naws_secret_access_key = NEWSECRET\n"
            "[other]\naws_access_key_id = C\n");
  EXPECT_EQ(WithCredentialsProfile("", "p", "K", "S"),
            "[p]\naws_access_key_id = K\naws_secret_access_key = S\n");
  EXPECT_EQ(WithCredentialsProfile("[default]\nx = 1\n", "p", "K", "S"),
            "[default]\nx = 1\n\n[p]\naws_access_key_id = K\naws_secret_access_key = S\n");
}

}  // namespace
}  // namespace moatless::app
