#include "store/migrations.h"

#include <gtest/gtest.h>

namespace moatless::store {
namespace {

using core::StatusCode;

TEST(MigrationsTest, ValidListsPass) {
  EXPECT_TRUE(ValidateMigrations({}).ok());
  const std::vector<Migration> ok = {{1, "a", "CREATE TABLE a (x BIGINT)"},
                                     {2, "b", "CREATE TABLE b (x BIGINT)"}};
  EXPECT_TRUE(ValidateMigrations(ok).ok());
}

TEST(MigrationsTest, GapsDuplicatesOrderAndEmptyPartsAreRefused) {
  const std::vector<std::vector<Migration>> bad = {
      {{2, "b", "x"}},
      {{0, "z", "x"}},
      {{1, "a", "x"}, {3, "c", "x"}},
      {{1, "a", "x"}, {1, "a2", "x"}},
      {{2, "b", "x"}, {1, "a", "x"}},
      {{1, "", "x"}},
      {{1, "a", " \n\t"}},
  };
  for (const auto& list : bad) {
    const core::Status s = ValidateMigrations(list);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  }
  const core::Status gap = ValidateMigrations(std::vector<Migration>{{1, "a", "x"}, {3, "c", "x"}});
  EXPECT_NE(gap.message().find("version 3, expected 2"), std::string::npos) << gap;
}

}  // namespace
}  // namespace moatless::store
