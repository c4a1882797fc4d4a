#include "store/schema.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "core/clock.h"
#include "store/sqlite/sqlite_database.h"

namespace moatless::store {
namespace {

TEST(SchemaTest, PlatformMigrationsAreValid) {
  EXPECT_TRUE(ValidateMigrations(PlatformMigrations()).ok());
}

TEST(SchemaTest, PlatformMigrationsApplyAndReopen) {
  char tmpl[] = "/tmp/moatless-schema-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/moatless.db";
  core::FakeClock clock;
  for (int open = 0; open < 2; ++open) {
    auto db = OpenSqlite(path, {.clock = &clock, .migrations = PlatformMigrations()});
    ASSERT_TRUE(db.ok()) << db.status();
    auto version = SchemaVersion(**db);
    ASSERT_TRUE(version.ok());
    EXPECT_EQ(*version, static_cast<std::int64_t>(PlatformMigrations().size()));
    ASSERT_TRUE((*db)->Close().ok());
  }
  std::system((std::string("rm -rf ") + tmpl).c_str());
}

}  // namespace
}  // namespace moatless::store
