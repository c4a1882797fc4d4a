#include "core/process.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace moatless::core {
namespace {

using namespace std::chrono_literals;

TEST(ProcessTest, ExitCodeAndEnvironmentAreExplicit) {
  RealProcessLauncher launcher;
  auto child = launcher.Launch({.argv = {"sh", "-c", "test -z \"$HOME\" && exit \"$CODE\""},
                                .env = {"CODE=7", "PATH=/usr/bin:/bin"}});
  ASSERT_TRUE(child.ok()) << child.status();
  auto code = (*child)->Wait();
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 7);  // HOME was not inherited
}

TEST(ProcessTest, WaitForTimesOutAndSignalKills) {
  RealProcessLauncher launcher;
  auto child = launcher.Launch({.argv = {"sleep", "30"}, .env = {"PATH=/usr/bin:/bin"}});
  ASSERT_TRUE(child.ok());
  EXPECT_EQ((*child)->WaitFor(50ms).status().code(), StatusCode::kDeadlineExceeded);
  ASSERT_TRUE((*child)->Signal(SIGKILL).ok());
  EXPECT_EQ(*(*child)->Wait(), 128 + SIGKILL);
}

TEST(ProcessTest, MissingProgramIsAnError) {
  RealProcessLauncher launcher;
  auto child = launcher.Launch({.argv = {"/nonexistent/program"}});
  EXPECT_FALSE(child.ok());
}

}  // namespace
}  // namespace moatless::core
