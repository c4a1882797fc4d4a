// sandbox_startup: how long a sandbox takes to start and end, against the physical floor of a
// plain fork + execve of the same program, in the same run; and the memory an idle environment
// costs. Prints a markdown report (bench/run section "sandbox" writes it to
// bench/results/sandbox.md).
//
//   sandbox_startup [ITERATIONS=300] [IDLE_ENVIRONMENTS=50]
//
// start→exec: from the call until the program's execve has succeeded (a close-on-exec pipe
// reaches EOF: for the sandbox, when Sandboxer::Start returns). start→exit: until the program
// has exited and been reaped — for the sandbox, until Environment::Wait returns with the cgroups
// removed. Rounds alternate between the two so that machine noise hits both alike.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "core/random.h"
#include "sandbox/sandbox.h"

namespace {

using Clock = std::chrono::steady_clock;
using moatless::sandbox::Environment;
using moatless::sandbox::Sandboxer;
using moatless::sandbox::Spec;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

// fork + execve(/bin/true): start→exec and start→exit.
std::pair<double, double> ForkExec() {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) std::abort();
  const auto start = Clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
    char* const envp[] = {nullptr};
    ::execve("/bin/true", argv, envp);
    ::_exit(127);
  }
  ::close(pipefd[1]);
  char c;
  while (::read(pipefd[0], &c, 1) > 0) {
  }
  const auto execd = Clock::now();
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const auto exited = Clock::now();
  return {Ms(execd - start), Ms(exited - start)};
}

std::uint64_t MemAvailableKiB() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t value = 0;
  std::string unit;
  while (in >> key >> value >> unit) {
    if (key == "MemAvailable:") return value;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 300;
  const int idle = argc > 2 ? std::atoi(argv[2]) : 50;
  moatless::sandbox::HostSupport host = moatless::sandbox::ProbeHost();
  moatless::core::SecureRandom random;
  auto sandboxer = Sandboxer::Create(host, random, {.cgroup_parent = "moatless-bench"});
  if (!sandboxer.ok()) {
    std::fprintf(stderr, "sandbox_startup: %s\n", sandboxer.status().ToString().c_str());
    return 1;
  }
  Spec spec;
  spec.program = "/bin/true";

  std::vector<double> fork_exec, fork_exit, sb_exec, sb_exit;
  for (int i = 0; i < iterations + 10; ++i) {
    const auto [fe, fx] = ForkExec();
    const auto start = Clock::now();
    auto env = (*sandboxer)->Start(spec);
    if (!env.ok()) {
      std::fprintf(stderr, "sandbox_startup: %s\n", env.status().ToString().c_str());
      return 1;
    }
    const auto execd = Clock::now();
    auto status = (*env)->Wait();
    env->reset();  // removes the cgroups and the root directory
    const auto exited = Clock::now();
    if (!status.ok() || status->reason != moatless::sandbox::ExitReason::kExited ||
        status->exit_code != 0) {
      std::fprintf(stderr, "sandbox_startup: /bin/true did not exit 0\n");
      return 1;
    }
    if (i < 10) continue;  // warm-up
    fork_exec.push_back(fe);
    fork_exit.push_back(fx);
    sb_exec.push_back(Ms(execd - start));
    sb_exit.push_back(Ms(exited - start));
  }

  // Idle environments: `sleep` waiting, as a warm environment would.
  Spec sleeper;
  sleeper.program = "/bin/sleep";
  sleeper.args = {"1000"};
  const std::uint64_t before = MemAvailableKiB();
  std::vector<std::unique_ptr<Environment>> idle_envs;
  std::uint64_t charged = 0;
  for (int i = 0; i < idle; ++i) {
    auto env = (*sandboxer)->Start(sleeper);
    if (!env.ok()) {
      std::fprintf(stderr, "sandbox_startup: %s\n", env.status().ToString().c_str());
      return 1;
    }
    idle_envs.push_back(std::move(*env));
  }
  ::usleep(200 * 1000);
  const std::uint64_t after = MemAvailableKiB();
  for (const auto& env : idle_envs) {
    auto usage = env->ResourceUsage();
    if (usage.ok()) charged += usage->peak_memory_bytes;
  }
  idle_envs.clear();
  sandboxer->reset();
  for (const char* controller : {"memory", "pids", "cpu", "cpuacct", "freezer", ""}) {
    ::rmdir((std::string("/sys/fs/cgroup/") + controller + "/moatless-bench").c_str());
  }

  const double ratio_exec = Percentile(sb_exec, 0.5) / Percentile(fork_exec, 0.5);
  const double ratio_exit = Percentile(sb_exit, 0.5) / Percentile(fork_exit, 0.5);
  std::printf("| /bin/true | median ms | p90 ms | p99 ms |\n|---|---|---|---|\n");
  const auto row = [](const char* name, const std::vector<double>& v) {
    std::printf("| %s | %.3f | %.3f | %.3f |\n", name, Percentile(v, 0.5), Percentile(v, 0.9),
                Percentile(v, 0.99));
  };
  row("fork + execve: start→exec", fork_exec);
  row("sandbox: start→exec (Sandboxer::Start)", sb_exec);
  row("fork + execve: start→exit", fork_exit);
  row("sandbox: start→exit (Wait, cleanup done)", sb_exit);
  std::printf(
      "\n%d rounds (after 10 warm-up), alternating. Sandbox / fork+execve, medians: start→exec "
      "**%.1f×**, start→exit **%.1f×**. Target: sandbox start ≤ 5 ms median (%s: %.2f ms) and "
      "within 10× of fork+execve (%s).\n",
      iterations, ratio_exec, ratio_exit, Percentile(sb_exec, 0.5) <= 5.0 ? "met" : "NOT met",
      Percentile(sb_exec, 0.5), ratio_exec <= 10.0 ? "met" : "NOT met");
  std::printf(
      "\nIdle environments (`/bin/sleep`): %d started; host MemAvailable fell by %.0f KiB, "
      "%.0f KiB per environment; the cgroups charged %.0f KiB per environment (peak).\n",
      idle, static_cast<double>(before > after ? before - after : 0),
      static_cast<double>(before > after ? before - after : 0) / idle,
      static_cast<double>(charged) / 1024.0 / idle);
  return 0;
}
