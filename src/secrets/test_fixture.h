// Tests only: a temporary migrated SQLite store, an Env whose clock is a FakeClock, an in-memory
// master keyring and a SecretStore on them (region "local", account "000000000000").
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/env.h"
#include "core/filesystem.h"
#include "core/process.h"
#include "secrets/keyring.h"
#include "secrets/secret_store.h"
#include "store/schema.h"
#include "store/sqlite/sqlite_database.h"

namespace moatless::secrets {

class SecretStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moatless-secrets-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto clock =
        std::make_unique<core::FakeClock>(core::WallTime(std::chrono::seconds(1'800'000'000)));
    clock_ = clock.get();
    env_ = std::make_unique<core::Env>(std::move(clock), std::make_unique<core::SecureRandom>(),
                                       std::make_unique<core::RealFileSystem>(),
                                       std::make_unique<core::RealProcessLauncher>());
    auto keyring = MasterKeyring::Open(keys_, env_->random());
    ASSERT_TRUE(keyring.ok()) << keyring.status();
    keyring_ = std::move(*keyring);
    ASSERT_NO_FATAL_FAILURE(OpenStore());
  }
  void TearDown() override {
    store_.reset();
    if (db_) db_->Close().IgnoreError();
    std::system(("rm -rf " + dir_).c_str());
  }

  void OpenStore() {
    store_.reset();
    if (db_) {
      ASSERT_TRUE(db_->Close().ok());
    }
    auto db = store::OpenSqlite(dir_ + "/moatless.db",
                                {.clock = clock_, .migrations = store::PlatformMigrations()});
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    store_ = std::make_unique<SecretStore>(
        *db_, *env_, *keyring_, SecretStore::Options{.region = "local", .account = "000000000000"});
    ASSERT_TRUE(store_->AdoptKeyring().ok());
  }

  static NewValue Text(std::string_view text) {
    return NewValue{.kind = ValueKind::kString, .bytes = core::SecretBytes(text)};
  }
  // The value of a version as text ("" on error, which the caller's EXPECT reports).
  std::string Read(const std::string& arn, std::string_view version_id = "",
                   std::string_view stage = "") {
    auto value = store_->GetValue(arn, version_id, stage);
    return value.ok() ? std::string(value->value.Reveal())
                      : "<" + std::string(value.status().aws_type()) + ">";
  }

  std::string dir_;
  core::FakeClock* clock_ = nullptr;
  std::unique_ptr<core::Env> env_;
  MemoryKeyringStorage keys_;
  std::unique_ptr<MasterKeyring> keyring_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<SecretStore> store_;
};

}  // namespace moatless::secrets
