// Tests only: a fixture with a temporary directory holding a migrated SQLite store, a FakeClock
// (at unix time 1,800,000,000) and a FunctionRegistry on them, plus a valid function to publish.
// Subclasses that hold anything on the store release it before TearDown.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <memory>
#include <string>

#include "core/clock.h"
#include "runtime/function.h"
#include "runtime/function_registry.h"
#include "store/database.h"
#include "store/schema.h"
#include "store/sqlite/sqlite_database.h"

namespace moatless::runtime::testing {

class RegistryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moatless-runtime-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_NO_FATAL_FAILURE(OpenStore());
  }
  void TearDown() override {
    registry_.reset();
    if (db_) db_->Close().IgnoreError();
    std::system(("rm -rf " + dir_).c_str());
  }

  // (Re)opens the store in dir_ and a registry on it.
  void OpenStore() {
    registry_.reset();
    if (db_) {
      ASSERT_TRUE(db_->Close().ok());
    }
    auto db = store::OpenSqlite(dir_ + "/moatless.db",
                                {.clock = &clock_, .migrations = store::PlatformMigrations()});
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    registry_ = std::make_unique<FunctionRegistry>(*db_, clock_);
  }

  static FunctionConfig Sample(std::string name = "hello") {
    FunctionConfig f;
    f.name = std::move(name);
    f.runtime = RuntimeKind::kNodejs20;
    f.handler = "index.handler";
    f.code_dir = "/srv/code/hello";
    return f;
  }

  std::string dir_;
  core::FakeClock clock_{core::WallTime(std::chrono::seconds(1'800'000'000))};
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<FunctionRegistry> registry_;
};

}  // namespace moatless::runtime::testing
