#include "core/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "core/filesystem.h"

namespace moatless::core {
namespace {

int DecodeWaitStatus(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

class RealChildProcess final : public ChildProcess {
 public:
  explicit RealChildProcess(pid_t pid) : pid_(pid) {}
  ~RealChildProcess() override {
    if (!exit_code_) {  // never leave a zombie or an orphan behind
      ::kill(pid_, SIGKILL);
      Wait().status().IgnoreError();
    }
  }
  pid_t pid() const override { return pid_; }

  Result<int> Wait() override {
    if (exit_code_) return *exit_code_;
    int wstatus = 0;
    while (::waitpid(pid_, &wstatus, 0) < 0) {
      if (errno != EINTR) return ErrnoStatus("waitpid", errno);
    }
    exit_code_ = DecodeWaitStatus(wstatus);
    return *exit_code_;
  }

  Result<int> WaitFor(std::chrono::milliseconds timeout) override {
    if (exit_code_) return *exit_code_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int wstatus = 0;
      const pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
      if (r == pid_) {
        exit_code_ = DecodeWaitStatus(wstatus);
        return *exit_code_;
      }
      if (r < 0 && errno != EINTR) return ErrnoStatus("waitpid", errno);
      if (std::chrono::steady_clock::now() >= deadline) {
        return DeadlineExceededError("process " + std::to_string(pid_) + " still running");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  Status Signal(int signo) override {
    if (exit_code_) return FailedPreconditionError("process already exited");
    if (::kill(pid_, signo) != 0) return ErrnoStatus("kill", errno);
    return Status::Ok();
  }

 private:
  pid_t pid_;
  std::optional<int> exit_code_;
};

}  // namespace

Result<std::unique_ptr<ChildProcess>> RealProcessLauncher::Launch(const LaunchOptions& options) {
  if (options.argv.empty()) return InvalidArgumentError("Launch: empty argv");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const auto path_or_null = [](const std::string& p) {
    return p.empty() ? "/dev/null" : p.c_str();
  };
  posix_spawn_file_actions_addopen(&actions, 0, path_or_null(options.stdin_path), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, path_or_null(options.stdout_path),
                                   O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, path_or_null(options.stderr_path),
                                   O_WRONLY | O_CREAT | O_APPEND, 0600);
  // Descriptors of this process are opened O_CLOEXEC throughout moatless, so only 0-2 survive.

  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : options.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return ErrnoStatus("spawn " + options.argv[0], rc);
  return std::unique_ptr<ChildProcess>(std::make_unique<RealChildProcess>(pid));
}

}  // namespace moatless::core
