// ProcessLauncher: starting child processes behind an interface, so that the sandbox and runtime
// modules can be tested with a fake and the composition root decides what is real.
// RealProcessLauncher uses posix_spawn with a closed file-descriptor set (only stdin/stdout/stderr
// are inherited, each redirectable). Launch is thread-safe; a ChildProcess is owned by one thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace moatless::core {

struct LaunchOptions {
  std::vector<std::string> argv;  // argv[0] is the program; resolved through PATH if it has no '/'
  // The complete environment of the child; nothing is inherited unless listed.
  std::vector<std::string> env;
  // Paths to open for the child's stdin/stdout/stderr; empty means /dev/null.
  std::string stdin_path, stdout_path, stderr_path;
};

class ChildProcess {
 public:
  virtual ~ChildProcess() = default;
  virtual pid_t pid() const = 0;
  // Waits for exit; returns the exit code, or 128+signal if killed by a signal.
  virtual Result<int> Wait() = 0;
  // Like Wait, but gives up after `timeout` with DEADLINE_EXCEEDED.
  virtual Result<int> WaitFor(std::chrono::milliseconds timeout) = 0;
  virtual Status Signal(int signo) = 0;
};

class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  virtual Result<std::unique_ptr<ChildProcess>> Launch(const LaunchOptions& options) = 0;
};

class RealProcessLauncher final : public ProcessLauncher {
 public:
  Result<std::unique_ptr<ChildProcess>> Launch(const LaunchOptions& options) override;
};

}  // namespace moatless::core
