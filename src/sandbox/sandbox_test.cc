#include "sandbox/sandbox.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "core/random.h"
#include "sandbox/cgroups.h"
#include "sandbox/test_support.h"

namespace moatless::sandbox {
namespace {

using testing::Drain;

class SandboxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { host_ = new HostSupport(ProbeHost()); }
  static void TearDownTestSuite() { delete host_; }

  void SetUp() override {
    if (const std::string missing = testing::MissingIsolation(*host_); !missing.empty()) {
      GTEST_SKIP() << "this host cannot give full isolation: " << missing;
    }
    char dir[] = "/tmp/sandbox_test_XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    ::chmod(dir_.c_str(), 0755);
    auto sandboxer =
        Sandboxer::Create(*host_, random_,
                          {.state_dir = dir_ + "/state",
                           .cgroup_parent = "moatless-test-" + std::to_string(::getpid())});
    ASSERT_TRUE(sandboxer.ok()) << sandboxer.status();
    sandboxer_ = std::move(*sandboxer);
  }
  void TearDown() override {
    sandboxer_.reset();
    if (!dir_.empty()) {
      ASSERT_EQ(std::system(("rm -rf '" + dir_ + "'").c_str()), 0);
      testing::RemoveCgroupParent("moatless-test-" + std::to_string(::getpid()));
    }
  }

  Spec Shell(const std::string& script) {
    Spec spec;
    spec.program = "/bin/sh";
    spec.args = {"-c", script};
    spec.env = {"PATH=/usr/bin:/bin"};
    return spec;
  }

  struct Run {
    ExitStatus status;
    std::string out, err;
  };
  Run RunToEnd(const Spec& spec) {
    auto env = sandboxer_->Start(spec);
    EXPECT_TRUE(env.ok()) << env.status();
    if (!env.ok()) return {};
    Run run;
    std::thread err_reader([&] { run.err = Drain((*env)->stderr_fd()); });
    run.out = Drain((*env)->stdout_fd());
    err_reader.join();
    auto status = (*env)->Wait();
    EXPECT_TRUE(status.ok()) << status.status();
    if (status.ok()) run.status = *status;
    return run;
  }

  static HostSupport* host_;
  core::SecureRandom random_;
  std::string dir_;
  std::unique_ptr<Sandboxer> sandboxer_;
};

HostSupport* SandboxTest::host_ = nullptr;

TEST_F(SandboxTest, RunsAProgramAndReportsItsExitCodeAndOutput) {
  Run run = RunToEnd(Shell("echo hello; echo oops >&2; exit 7"));
  EXPECT_EQ(run.status.reason, ExitReason::kExited);
  EXPECT_EQ(run.status.exit_code, 7);
  EXPECT_EQ(run.out, "hello\n");
  EXPECT_EQ(run.err, "oops\n");
}

TEST_F(SandboxTest, RunsAsAnUnprivilegedUidMappedToItsOwnHostUid) {
  Run run =
      RunToEnd(Shell("id -u; id -g; id -G; cat /proc/self/uid_map; grep Cap /proc/self/status;"
                     " grep NoNewPrivs /proc/self/status; grep Seccomp: /proc/self/status"));
  std::istringstream lines(run.out);
  std::string uid, gid, groups;
  std::getline(lines, uid);
  std::getline(lines, gid);
  std::getline(lines, groups);
  EXPECT_EQ(uid, "1000");
  EXPECT_EQ(gid, "1000");
  EXPECT_EQ(groups, "1000") << "no supplementary groups";
  // uid 1000 maps to one host uid of the sandbox range (leased host-wide: which one depends on
  // what else runs), and only that one.
  std::smatch map;
  ASSERT_TRUE(std::regex_search(run.out, map, std::regex(R"(\n\s*1000\s+(\d+)\s+1\n)"))) << run.out;
  const long host_uid = std::stol(map[1].str());
  EXPECT_GE(host_uid, 200000) << run.out;
  EXPECT_LT(host_uid, 200000 + 65536) << run.out;
  for (const char* cap : {"CapInh:\t0000000000000000", "CapPrm:\t0000000000000000",
                          "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000",
                          "CapAmb:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2"}) {
    EXPECT_NE(run.out.find(cap), std::string::npos) << cap << " in\n" << run.out;
  }
}

TEST_F(SandboxTest, SeesOnlyItsOwnProcessesAndFilesystem) {
  Run run = RunToEnd(
      Shell("echo PIDS: $(ls /proc | grep -E '^[0-9]+$' | sort -n); echo ROOT: $(ls /);"
            " echo ETC: $(ls /etc); hostname; ls /root /home /var 2>&1; cat /etc/shadow 2>&1;"
            " touch /newfile 2>&1; touch /usr/newfile 2>&1; echo ok > /tmp/f && cat /tmp/f"));
  EXPECT_EQ(run.status.reason, ExitReason::kExited) << run.status.ToString();
  std::map<std::string, std::string> listed;
  std::istringstream lines(run.out);
  for (std::string line; std::getline(lines, line);) {
    const auto colon = line.find(": ");
    if (colon != std::string::npos) listed[line.substr(0, colon)] = line.substr(colon + 2);
  }
  // init (1), the shell (2), and the command substitution's processes: nothing of the host.
  EXPECT_TRUE(listed["PIDS"].starts_with("1 2 ")) << run.out;
  EXPECT_LT(listed["PIDS"].size(), 20u) << run.out;
  for (const char* host_dir : {"root", "home", "var", "opt", "srv", "mnt", "media", "boot"}) {
    EXPECT_EQ((" " + listed["ROOT"] + " ").find(std::string(" ") + host_dir + " "),
              std::string::npos)
        << host_dir << " in " << listed["ROOT"];
  }
  EXPECT_EQ(listed["ETC"], "group hostname hosts ld.so.cache nsswitch.conf passwd");
  EXPECT_NE(run.out.find("ls: cannot access '/root': No such file or directory"), std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("ls: cannot access '/home'"), std::string::npos);
  EXPECT_NE(run.out.find("cat: /etc/shadow: No such file or directory"), std::string::npos);
  EXPECT_NE(run.out.find("touch: cannot touch '/newfile': Read-only file system"),
            std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("touch: cannot touch '/usr/newfile': Read-only file system"),
            std::string::npos);
  EXPECT_NE(run.out.find("\nsandbox\n"), std::string::npos);
  EXPECT_TRUE(run.out.ends_with("ok\n")) << run.out;
}

TEST_F(SandboxTest, CodeIsReadOnlyAtItsMountPoint) {
  const std::string code = dir_ + "/code";
  ASSERT_EQ(::mkdir(code.c_str(), 0755), 0);
  std::ofstream(code + "/handler.sh") << "echo from the handler\n";
  Spec spec = Shell(
      "sh /var/task/handler.sh; echo x > /var/task/handler.sh 2>&1; "
      "rm /var/task/handler.sh 2>&1; true");
  spec.mounts = {{.source = code, .target = "/var/task"}};
  Run run = RunToEnd(spec);
  EXPECT_NE(run.out.find("from the handler"), std::string::npos) << run.out << run.err;
  EXPECT_NE(run.err.find("Read-only file system"), std::string::npos) << run.err;
  std::ifstream in(code + "/handler.sh");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "echo from the handler\n");
}

TEST_F(SandboxTest, ForbiddenSystemCallsFail) {
  Run run =
      RunToEnd(Shell("mount -t tmpfs none /tmp 2>&1; unshare -U true 2>&1; "
                     "unshare -n true 2>&1; true"));
  EXPECT_NE(run.out.find("mount: "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("unshare failed: Operation not permitted"), std::string::npos) << run.out;
}

TEST_F(SandboxTest, OnlyLoopbackIsReachable) {
  Run run =
      RunToEnd(Shell("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; "
                     "(echo > /dev/tcp/1.1.1.1/80) 2>&1; true"));
  EXPECT_EQ(run.out.substr(0, 3), "lo\n") << run.out;
}

TEST_F(SandboxTest, TmpIsLimitedToItsSize) {
  Spec spec = Shell("dd if=/dev/zero of=/tmp/fill bs=1M count=8 2>&1; echo rc=$?");
  spec.limits.tmp_bytes = 4 << 20;
  Run run = RunToEnd(spec);
  EXPECT_NE(run.out.find("No space left on device"), std::string::npos) << run.out;
}

TEST_F(SandboxTest, CollectOutputStopsAtTheOutputLimit) {
  Spec spec = Shell("head -c 4000000 /dev/zero; echo done >&2");
  spec.limits.output_bytes = 1 << 20;
  auto env = sandboxer_->Start(spec);
  ASSERT_TRUE(env.ok()) << env.status();
  auto output = (*env)->CollectOutput();
  ASSERT_TRUE(output.ok()) << output.status();
  EXPECT_TRUE(output->truncated);
  EXPECT_EQ(output->stdout_data.size() + output->stderr_data.size(), 1u << 20);
  auto status = (*env)->Wait();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->reason, ExitReason::kOutputLimit);

  // Within the limit: everything, and the program's own exit status.
  auto small = sandboxer_->Start(Shell("echo out; echo err >&2; exit 3"));
  ASSERT_TRUE(small.ok());
  output = (*small)->CollectOutput();
  ASSERT_TRUE(output.ok());
  EXPECT_FALSE(output->truncated);
  EXPECT_EQ(output->stdout_data, "out\n");
  EXPECT_EQ(output->stderr_data, "err\n");
  status = (*small)->Wait();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->reason, ExitReason::kExited);
  EXPECT_EQ(status->exit_code, 3);
}

TEST_F(SandboxTest, ATimeoutKillsTheEnvironment) {
  Spec spec = Shell("sleep 30");
  spec.limits.timeout = std::chrono::milliseconds(200);
  auto env = sandboxer_->Start(spec);
  ASSERT_TRUE(env.ok()) << env.status();
  auto status = (*env)->Wait();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->reason, ExitReason::kTimeout);
}

TEST_F(SandboxTest, KillEndsEveryProcessAndWaitForGivesUp) {
  auto env = sandboxer_->Start(Shell("sleep 30 & sleep 30 & sleep 30"));
  ASSERT_TRUE(env.ok()) << env.status();
  auto early = (*env)->WaitFor(std::chrono::milliseconds(50));
  EXPECT_EQ(early.status().code(), core::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE((*env)->Kill().ok());
  auto status = (*env)->Wait();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->reason, ExitReason::kKilled);
}

TEST_F(SandboxTest, BackgroundProcessesDieWithTheProgram) {
  Run run = RunToEnd(Shell("sleep 1000 & echo started"));
  EXPECT_EQ(run.status.reason, ExitReason::kExited);
  EXPECT_EQ(run.out, "started\n");  // stdout reached EOF: nobody holds it any more
}

TEST_F(SandboxTest, AForkBombStopsAtThePidLimit) {
  Spec spec = Shell("i=0; while [ $i -lt 100 ]; do sleep 5 & i=$((i+1)); done 2>&1; echo done");
  spec.limits.max_pids = 16;
  spec.limits.timeout = std::chrono::seconds(20);
  Run run = RunToEnd(spec);
  // dash reports the refused fork as "Cannot fork" (EAGAIN from the pids limit).
  EXPECT_NE(run.out.find("Cannot fork"), std::string::npos) << run.out;
}

TEST_F(SandboxTest, AMemoryBombIsReportedAsOutOfMemory) {
  Spec spec;
  spec.program = "/usr/bin/python3";
  spec.args = {"-c", "b = bytearray(256 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"};
  spec.limits.memory_bytes = 64 << 20;
  Run run = RunToEnd(spec);
  EXPECT_EQ(run.status.reason, ExitReason::kOutOfMemory) << run.status.ToString() << run.err;
}

TEST_F(SandboxTest, FreezeStopsAndThawResumes) {
  auto env = sandboxer_->Start(Shell("while true; do echo tick; sleep 0.05; done"));
  ASSERT_TRUE(env.ok()) << env.status();
  ASSERT_TRUE((*env)->Freeze().ok());
  auto usage = (*env)->ResourceUsage();
  ASSERT_TRUE(usage.ok()) << usage.status();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto again = (*env)->ResourceUsage();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(usage->cpu_time, again->cpu_time) << "a frozen environment uses no CPU";
  ASSERT_TRUE((*env)->Thaw().ok());
  ASSERT_TRUE((*env)->Kill().ok());
  EXPECT_GT(again->peak_memory_bytes, 0u);
}

TEST_F(SandboxTest, TheNetworkNamespaceCallbackListensOnTheSandboxLoopback) {
  int listener = -1;
  Spec spec = Shell("echo ping > /dev/tcp/127.0.0.1/9001 && echo sent");
  spec.program = "/bin/bash";
  spec.in_network_namespace = [&]() -> core::Status {
    listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(9001);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, 1) != 0) {
      return core::InternalError("bind/listen failed");
    }
    return core::Status::Ok();
  };
  auto env = sandboxer_->Start(spec);
  ASSERT_TRUE(env.ok()) << env.status();
  const int conn = ::accept(listener, nullptr, nullptr);
  ASSERT_GE(conn, 0);
  EXPECT_EQ(Drain(conn), "ping\n");
  ::close(conn);
  ::close(listener);
  EXPECT_EQ(Drain((*env)->stdout_fd()), "sent\n");
  // The host's own 127.0.0.1:9001 is another namespace: nothing of the host listens there.
}

TEST_F(SandboxTest, InitHoldsNoneOfThePlatformsDescriptors) {
  // A descriptor of the platform's without O_CLOEXEC: init, cloned without an execve, must not
  // keep it (nor anything else of the daemon's but its status pipe).
  int leaked[2];
  ASSERT_EQ(::pipe(leaked), 0);
  auto env = sandboxer_->Start(Shell("sleep 30"));
  ASSERT_TRUE(env.ok()) << env.status();
  const std::string fd_dir = "/proc/" + std::to_string((*env)->init_pid()) + "/fd";
  std::vector<std::string> open_fds;
  for (const auto& entry : std::filesystem::directory_iterator(fd_dir)) {
    open_fds.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(open_fds.size(), 1u) << "init holds " << open_fds.size() << " descriptors";
  ASSERT_TRUE((*env)->Kill().ok());
  ::close(leaked[0]);
  ::close(leaked[1]);
}

TEST_F(SandboxTest, WhatADeadOwnerLeftBehindIsEnded) {
  // A daemon killed with SIGKILL leaves its environments as they were, frozen or running; a new
  // owner of their uid ends them and removes their cgroups before using the uid.
  auto env = sandboxer_->Start(Shell("sleep 300 & sleep 300"));
  ASSERT_TRUE(env.ok()) << env.status();
  ASSERT_TRUE((*env)->Freeze().ok());
  const uid_t uid = (*env)->host_uid();
  const auto in_use = internal::EnvironmentCgroups::UidsInUse(uid, 1);
  ASSERT_EQ(in_use, std::vector<uid_t>{uid});
  EXPECT_EQ(internal::EnvironmentCgroups::ReapOrphans(*host_, uid), 0u);
  EXPECT_TRUE(internal::EnvironmentCgroups::UidsInUse(uid, 1).empty());
  auto status = (*env)->Wait();

  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->reason, ExitReason::kSignalled);
}

TEST_F(SandboxTest, TwoSandboxersNeverHandOutTheSameHostUid) {
  // Two Sandboxers — as two daemons, or two test processes, on one host — share the uid range: the
  // host-wide leases keep a live environment's uid its own.
  auto other = Sandboxer::Create(*host_, random_,
                                 {.state_dir = dir_ + "/other-state",
                                  .cgroup_parent = "moatless-test-" + std::to_string(::getpid())});
  ASSERT_TRUE(other.ok()) << other.status();
  auto first = sandboxer_->Start(Shell("sleep 30"));
  auto second = (*other)->Start(Shell("sleep 30"));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE((*first)->host_uid(), (*second)->host_uid());
  // The lease is held while the environment lives and dropped once it has ended.
  const std::string lease = "/run/moatless/host-uids/" + std::to_string((*first)->host_uid());
  const auto try_lease = [&] {
    const int fd = ::open(lease.c_str(), O_RDWR | O_CLOEXEC);
    const bool got = fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (fd >= 0) ::close(fd);
    return got;
  };
  EXPECT_FALSE(try_lease());
  ASSERT_TRUE((*first)->Kill().ok());
  ASSERT_TRUE((*first)->Wait().ok());
  first->reset();
  EXPECT_TRUE(try_lease());
  ASSERT_TRUE((*second)->Kill().ok());
}

TEST_F(SandboxTest, AMissingProgramIsAClearError) {
  Spec spec;
  spec.program = "/usr/bin/does-not-exist";
  auto env = sandboxer_->Start(spec);
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.status().code(), core::StatusCode::kNotFound);
  EXPECT_NE(env.status().message().find("execve"), std::string::npos) << env.status();
}

TEST_F(SandboxTest, BadSpecsAreRejected) {
  Spec spec = Shell("true");
  spec.mounts = {{.source = "/etc", .target = "/var/../etc"}};
  EXPECT_EQ(sandboxer_->Start(spec).status().code(), core::StatusCode::kInvalidArgument);
  spec = Shell("true");
  spec.program = "sh";
  EXPECT_EQ(sandboxer_->Start(spec).status().code(), core::StatusCode::kInvalidArgument);
}

TEST(HostSupportTest, ReportsWhatIsMissing) {
  HostSupport host;
  host.user_namespaces_detail = "disabled by kernel.unprivileged_userns_clone";
  const std::string report = host.Report();
  EXPECT_NE(report.find("INCOMPLETE"), std::string::npos) << report;
  EXPECT_NE(report.find("refuses to run functions"), std::string::npos);
  core::SecureRandom random;
  auto refused = Sandboxer::Create(host, random);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), core::StatusCode::kFailedPrecondition);
  host.user_namespaces = true;
  auto weak = Sandboxer::Create(host, random);
  ASSERT_FALSE(weak.ok()) << "weaker isolation needs the explicit opt-in";
  EXPECT_NE(weak.status().message().find("--insecure-allow-weak-isolation"), std::string::npos);
}

}  // namespace
}  // namespace moatless::sandbox
