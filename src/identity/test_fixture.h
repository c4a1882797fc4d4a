// Tests only: a fixture with a temporary data directory, a migrated SQLite store, an Env whose
// clock is a FakeClock (at unix time 1,800,000,000), a master key, and the identity Directory and
// SessionTokens on top. Subclasses build what they test on these members in SetUp (calling
// IdentityStoreTest::SetUp first) and, if they hold anything in the directory, release it before
// calling IdentityStoreTest::TearDown.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <memory>
#include <string>

#include "core/aead.h"
#include "core/clock.h"
#include "core/env.h"
#include "core/filesystem.h"
#include "core/process.h"
#include "identity/directory.h"
#include "identity/session_token.h"
#include "store/schema.h"
#include "store/sqlite/sqlite_database.h"

namespace moatless::identity {

class IdentityStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moatless-identity-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto clock =
        std::make_unique<core::FakeClock>(core::WallTime(std::chrono::seconds(1'800'000'000)));
    clock_ = clock.get();
    env_ = std::make_unique<core::Env>(std::move(clock), std::make_unique<core::SecureRandom>(),
                                       std::make_unique<core::RealFileSystem>(),
                                       std::make_unique<core::RealProcessLauncher>());
    ASSERT_NO_FATAL_FAILURE(OpenStore());
    tokens_ = std::make_unique<SessionTokens>(master_);
  }
  void TearDown() override {
    directory_.reset();
    if (db_) db_->Close().IgnoreError();
    std::system(("rm -rf " + dir_).c_str());
  }

  // (Re)opens the store in dir_ and a Directory on it.
  void OpenStore() {
    directory_.reset();
    if (db_) {
      ASSERT_TRUE(db_->Close().ok());
    }
    auto db = store::OpenSqlite(dir_ + "/moatless.db",
                                {.clock = clock_, .migrations = store::PlatformMigrations()});
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    directory_ = std::make_unique<Directory>(*db_, *env_, master_);
  }

  std::string dir_;
  core::FakeClock* clock_ = nullptr;
  std::unique_ptr<core::Env> env_;
  std::unique_ptr<store::Database> db_;
  core::AeadKey master_ = [] {
    core::DeterministicRandom random(7);
    return core::AeadKey::Generate(random);
  }();
  std::unique_ptr<Directory> directory_;
  std::unique_ptr<SessionTokens> tokens_;
};

}  // namespace moatless::identity
