#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "core/filesystem.h"
#include "core/ids.h"
#include "core/random.h"
#include "sandbox/cgroups.h"

namespace moatless::sandbox {
namespace {

// ---- The plan the child follows ----------------------------------------------------------------
//
// The child is a fork of a multi-threaded process: until execve it may only make system calls
// (no allocation, no locks, no glibc wrappers that talk to other threads, such as setresuid).
// Everything it needs is therefore prepared here, in the parent, as plain data.

enum class Step : int {
  kSync = 1,
  kCredentials,
  kCgroupNamespace,
  kPrivateMounts,
  kRootTmpfs,
  kMountPlan,
  kReadOnlyRoot,
  kPivotRoot,
  kHostname,
  kForkProgram,
  kStdio,
  kLimits,
  kWorkingDir,
  kDropCapabilities,
  kNoNewPrivs,
  kSeccomp,
  kExec,
};

const char* StepName(Step step) {
  switch (step) {
    case Step::kSync:
      return "waiting for the platform";
    case Step::kCredentials:
      return "switching to the sandbox uid/gid";
    case Step::kCgroupNamespace:
      return "entering a cgroup namespace";
    case Step::kPrivateMounts:
      return "making mounts private";
    case Step::kRootTmpfs:
      return "mounting the new root";
    case Step::kMountPlan:
      return "assembling the filesystem";
    case Step::kReadOnlyRoot:
      return "making the root read-only";
    case Step::kPivotRoot:
      return "pivot_root";
    case Step::kHostname:
      return "setting the hostname";
    case Step::kForkProgram:
      return "forking the program";
    case Step::kStdio:
      return "setting up stdin/stdout/stderr";
    case Step::kLimits:
      return "setting rlimits";
    case Step::kWorkingDir:
      return "changing to the working directory";
    case Step::kDropCapabilities:
      return "dropping capabilities";
    case Step::kNoNewPrivs:
      return "setting no_new_privs";
    case Step::kSeccomp:
      return "installing the seccomp filter";
    case Step::kExec:
      return "execve";
  }
  return "?";
}

struct Failure {
  int step = 0;
  int error = 0;
  int detail = -1;  // index of the mount operation that failed, if any
};

enum class OpKind { kMkdir, kBind, kTmpfs, kProc, kFile, kSymlink };

struct MountOp {
  OpKind kind;
  const char* source = nullptr;  // kBind: host path; kSymlink: link target; kFile: content
  const char* target = nullptr;  // path under the new root, as the host names it
  bool read_only = true;         // kBind
  bool is_file = false;          // kBind: the mount point is a file
  const char* data = nullptr;    // kTmpfs: mount options
  std::size_t length = 0;        // kFile: content length
  std::string Describe() const {
    return std::string(source != nullptr && kind != OpKind::kFile ? source : "") + " -> " +
           (target != nullptr ? target : "");
  }
};

struct ChildPlan {
  int sync_read = -1;     // one byte from the parent: maps and cgroups are in place
  int error_write = -1;   // a Failure on error; EOF once the program's execve succeeded
  int status_write = -1;  // init writes the program's wait status here
  int stdout_write = -1;
  int stderr_write = -1;
  std::array<int, 6> parent_ends{};  // descriptors the child must close
  uid_t uid = kSandboxUid;
  gid_t gid = kSandboxGid;
  const char* root = nullptr;
  const char* root_tmpfs_options = nullptr;
  const MountOp* ops = nullptr;
  std::size_t op_count = 0;
  const char* hostname = nullptr;
  std::size_t hostname_length = 0;
  const char* program = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* working_dir = nullptr;
  rlimit nofile{}, fsize{}, core{};
  const sock_fprog* seccomp = nullptr;  // null: no filter (insecure mode only)
};

[[noreturn]] void Fail(const ChildPlan& plan, Step step, int detail = -1) {
  const Failure failure{static_cast<int>(step), errno, detail};
  [[maybe_unused]] const ssize_t n = ::write(plan.error_write, &failure, sizeof failure);
  ::_exit(126);
}

long RawClone(unsigned long flags) {
  return ::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr);
}

// Makes every permitted capability effective (they are kept across setresuid by KEEPCAPS, but
// the effective set is cleared).
int RaiseEffectiveCapabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) != 0) return -1;
  data[0].effective = data[0].permitted;
  data[1].effective = data[1].permitted;
  return static_cast<int>(::syscall(SYS_capset, &header, data));
}

int ClearCapabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  return static_cast<int>(::syscall(SYS_capset, &header, data));
}

// Drops every capability for good: bounding set, ambient set, then permitted and effective.
bool DropAllCapabilities() {
  for (int cap = 0; cap <= 63; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return false;
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return false;
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return false;
  return ClearCapabilities() == 0;
}

// The mount flags that a bind mount must keep when remounted (the kernel refuses to clear flags
// that a less privileged namespace inherited locked).
unsigned long LockedFlags(const char* path) {
  struct statvfs st {};
  if (::statvfs(path, &st) != 0) return 0;
  unsigned long flags = 0;
  if (st.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

bool RunOp(const MountOp& op) {
  switch (op.kind) {
    case OpKind::kMkdir:
      return ::mkdir(op.target, 0755) == 0 || errno == EEXIST;
    case OpKind::kSymlink:
      return ::symlink(op.source, op.target) == 0;
    case OpKind::kFile: {
      const int fd = ::open(op.target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0) return false;
      std::size_t done = 0;
      while (done < op.length) {
        const ssize_t n = ::write(fd, op.source + done, op.length - done);
        if (n <= 0) {
          ::close(fd);
          return false;
        }
        done += static_cast<std::size_t>(n);
      }
      return ::close(fd) == 0;
    }
    case OpKind::kTmpfs:
      return ::mount("tmpfs", op.target, "tmpfs", MS_NOSUID | MS_NODEV, op.data) == 0;
    case OpKind::kProc:
      return ::mount("proc", op.target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == 0;
    case OpKind::kBind: {
      if (op.is_file) {
        const int fd = ::open(op.target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return false;
        ::close(fd);
      } else if (::mkdir(op.target, 0755) != 0 && errno != EEXIST) {
        return false;
      }
      // Not recursive: what is mounted below the source on the host stays out of view. (A
      // source with locked submounts refuses that; then it comes with them.)
      if (::mount(op.source, op.target, nullptr, MS_BIND, nullptr) != 0 &&
          (errno != EINVAL ||
           ::mount(op.source, op.target, nullptr, MS_BIND | MS_REC, nullptr) != 0)) {
        return false;
      }
      unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | LockedFlags(op.target);
      if (op.read_only) flags |= MS_RDONLY;
      return ::mount(nullptr, op.target, nullptr, flags, nullptr) == 0;
    }
  }
  return false;
}

// PID 1 of the sandbox: reaps every child; when the program exits, reports its status and exits,
// whereupon the kernel kills whatever is left in the PID namespace.
[[noreturn]] void RunInit(const ChildPlan& plan, pid_t program) {
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid == program) {
      [[maybe_unused]] const ssize_t n = ::write(plan.status_write, &status, sizeof status);
      ::_exit(0);
    }
    if (pid < 0 && errno == ECHILD) ::_exit(0);
  }
}

[[noreturn]] void RunProgram(const ChildPlan& plan) {
  // stdin is /dev/null; stdout/stderr are the platform's pipes; nothing else stays open but the
  // error pipe, which closes on execve.
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(plan.stdout_write, 1) < 0 ||
      ::dup2(plan.stderr_write, 2) < 0) {
    Fail(plan, Step::kStdio);
  }
  if (plan.error_write > 3) ::syscall(SYS_close_range, 3u, plan.error_write - 1, 0u);
  ::syscall(SYS_close_range, plan.error_write + 1, ~0u, 0u);

  if (::setrlimit(RLIMIT_NOFILE, &plan.nofile) != 0 ||
      ::setrlimit(RLIMIT_FSIZE, &plan.fsize) != 0 || ::setrlimit(RLIMIT_CORE, &plan.core) != 0) {
    Fail(plan, Step::kLimits);
  }
  if (::chdir(plan.working_dir) != 0) Fail(plan, Step::kWorkingDir);
  if (!DropAllCapabilities()) Fail(plan, Step::kDropCapabilities);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) Fail(plan, Step::kNoNewPrivs);
  if (plan.seccomp != nullptr &&
      ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, plan.seccomp, 0, 0) != 0) {
    Fail(plan, Step::kSeccomp);
  }
  ::execve(plan.program, plan.argv, plan.envp);
  Fail(plan, Step::kExec);
}

[[noreturn]] void RunChild(const ChildPlan& plan) {
  for (const int fd : plan.parent_ends) {
    if (fd >= 0) ::close(fd);
  }
  char go = 0;
  if (::read(plan.sync_read, &go, 1) != 1) Fail(plan, Step::kSync);
  ::close(plan.sync_read);

  // Become uid/gid 1000 (mapped to the host ids the platform chose) with no supplementary
  // groups, keeping this namespace's capabilities until the filesystem is assembled.
  if (::syscall(SYS_setgroups, 0, nullptr) != 0 ||
      ::syscall(SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0 ||
      ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 ||
      ::syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0 ||
      RaiseEffectiveCapabilities() != 0) {
    Fail(plan, Step::kCredentials);
  }
  // The platform has moved this process into its cgroup: make that the namespace's root.
  if (::unshare(CLONE_NEWCGROUP) != 0) Fail(plan, Step::kCgroupNamespace);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    Fail(plan, Step::kPrivateMounts);
  }
  if (::mount("tmpfs", plan.root, "tmpfs", MS_NOSUID | MS_NODEV, plan.root_tmpfs_options) != 0) {
    Fail(plan, Step::kRootTmpfs);
  }
  for (std::size_t i = 0; i < plan.op_count; ++i) {
    if (!RunOp(plan.ops[i])) Fail(plan, Step::kMountPlan, static_cast<int>(i));
  }
  if (::mount(nullptr, plan.root, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
              nullptr) != 0) {
    Fail(plan, Step::kReadOnlyRoot);
  }
  // pivot_root(".", ".") stacks the old root under the new one; detaching it leaves nothing of
  // the host in this mount namespace.
  if (::chdir(plan.root) != 0 || ::syscall(SYS_pivot_root, ".", ".") != 0 ||
      ::umount2(".", MNT_DETACH) != 0 || ::chdir("/") != 0) {
    Fail(plan, Step::kPivotRoot);
  }
  if (::sethostname(plan.hostname, plan.hostname_length) != 0) Fail(plan, Step::kHostname);

  const long program = RawClone(SIGCHLD);
  if (program < 0) Fail(plan, Step::kForkProgram);
  if (program == 0) RunProgram(plan);

  // init was cloned with every descriptor the platform had open (listeners, the store, other
  // environments' pipes): it keeps its status pipe and nothing else.
  if (plan.status_write > 0) ::syscall(SYS_close_range, 0u, plan.status_write - 1, 0u);
  ::syscall(SYS_close_range, plan.status_write + 1, ~0u, 0u);
  // init needs no privilege to reap.
  DropAllCapabilities();
  ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  RunInit(plan, static_cast<pid_t>(program));
}

// ---- Parent side ---------------------------------------------------------------------------

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

core::Status MakePipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return core::ErrnoStatus("pipe2", errno);
  read_end = Fd(fds[0]);
  write_end = Fd(fds[1]);
  return core::Status::Ok();
}

core::Status WriteProcFile(const std::string& path, const std::string& value) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) return core::ErrnoStatus("open " + path, errno);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return core::ErrnoStatus("write " + path, errno);
  }
  return core::Status::Ok();
}

bool IsAbsoluteClean(const std::string& path) {
  if (path.empty() || path[0] != '/') return false;
  const std::filesystem::path p(path);
  return std::all_of(p.begin(), p.end(),
                     [](const std::filesystem::path& part) { return part != ".." && part != "."; });
}

// Brings the loopback interface of the calling thread's network namespace up.
core::Status LoopbackUp() {
  Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) return core::ErrnoStatus("socket", errno);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) return core::ErrnoStatus("SIOCGIFFLAGS", errno);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) return core::ErrnoStatus("SIOCSIFFLAGS", errno);
  return core::Status::Ok();
}

// Runs `fn` on a thread of its own that has joined the network namespace of `pid`.
core::Status InNetworkNamespace(pid_t pid, const std::function<core::Status()>& fn) {
  core::Status result;
  std::thread worker([&] {
    Fd ns(::open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
    if (ns.get() < 0) {
      result = core::ErrnoStatus("open the sandbox's network namespace", errno);
      return;
    }
    // The thread's namespace changes, not the process's; the thread ends afterwards.
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      result = core::ErrnoStatus("join the sandbox's network namespace", errno);
      return;
    }
    result = LoopbackUp();
    if (result.ok() && fn) result = fn();
  });
  worker.join();
  return result;
}

std::string GeneratedPasswd() {
  return "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
         "sandbox:x:" +
         std::to_string(kSandboxUid) + ":" + std::to_string(kSandboxGid) +
         ":sandbox:/tmp:/usr/sbin/nologin\n"
         "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
}

std::string GeneratedGroup() {
  return "root:x:0:\nsandbox:x:" + std::to_string(kSandboxGid) + ":\nnogroup:x:65534:\n";
}

}  // namespace

std::string_view ExitReasonName(ExitReason reason) {
  switch (reason) {
    case ExitReason::kExited:
      return "exited";
    case ExitReason::kSignalled:
      return "signalled";
    case ExitReason::kOutOfMemory:
      return "out_of_memory";
    case ExitReason::kTimeout:
      return "timeout";
    case ExitReason::kKilled:
      return "killed";
    case ExitReason::kOutputLimit:
      return "output_limit";
  }
  return "?";
}

std::string ExitStatus::ToString() const {
  std::string out(ExitReasonName(reason));
  if (reason == ExitReason::kExited) out.append(" ").append(std::to_string(exit_code));
  if (reason == ExitReason::kSignalled) out.append(" by signal ").append(std::to_string(signal));
  return out;
}

// ---- The init process and the watchdog ------------------------------------------------------

namespace internal {

// The sandbox's init, as the platform holds it: a pidfd (no pid reuse races) and whether the
// watchdog killed it for its timeout.
struct InitProcess {
  explicit InitProcess(int fd) : pidfd(fd) {}
  ~InitProcess() {
    if (pidfd >= 0) ::close(pidfd);
  }
  InitProcess(const InitProcess&) = delete;
  InitProcess& operator=(const InitProcess&) = delete;
  bool Kill() const { return ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0) == 0; }

  const int pidfd;
  std::atomic<bool> timed_out{false};
};

// One thread that kills environments when their deadline passes.
class Watchdog {
 public:
  Watchdog() : thread_([this] { Run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void Watch(std::weak_ptr<InitProcess> init, std::chrono::steady_clock::time_point deadline) {
    {
      std::lock_guard lock(mu_);
      deadlines_.emplace(deadline, std::move(init));
    }
    cv_.notify_one();
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      if (deadlines_.empty()) {
        cv_.wait(lock);
        continue;
      }
      const auto next = deadlines_.begin()->first;
      if (std::chrono::steady_clock::now() < next) {
        cv_.wait_until(lock, next);
        continue;
      }
      std::weak_ptr<InitProcess> due = std::move(deadlines_.begin()->second);
      deadlines_.erase(deadlines_.begin());
      // An environment already destroyed has nothing left to kill.
      if (const std::shared_ptr<InitProcess> init = due.lock()) {
        init->timed_out = true;
        init->Kill();
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<std::chrono::steady_clock::time_point, std::weak_ptr<InitProcess>> deadlines_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the rest exists
};

}  // namespace internal

// ---- Environment ---------------------------------------------------------------------------

Environment::Environment() = default;

Environment::~Environment() {
  if (!ended_ && init_) {
    Kill().IgnoreError();
    Wait().status().IgnoreError();
  }
  Cleanup();
}

void Environment::Cleanup() {
  for (int* fd : {&status_fd_, &stdout_fd_, &stderr_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  if (cgroups_) {
    cgroups_->KillAll();
    cgroups_->Remove().IgnoreError();
    cgroups_.reset();
  }
  if (!root_dir_.empty()) {
    ::rmdir(root_dir_.c_str());
    root_dir_.clear();
  }
  if (release_uid_) {
    release_uid_(host_uid_);
    release_uid_ = nullptr;
  }
}

core::Result<ExitStatus> Environment::Wait() {
  return WaitUntil(timeout_.count() > 0 ? std::optional(started_ + timeout_) : std::nullopt);
}

core::Result<ExitStatus> Environment::WaitFor(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  if (timeout_.count() > 0 && started_ + timeout_ < until) {
    return WaitUntil(started_ + timeout_);  // the environment's own timeout comes first
  }
  auto result = WaitUntil(until);
  return result;
}

core::Result<ExitStatus> Environment::WaitUntil(
    std::optional<std::chrono::steady_clock::time_point> until) {
  if (ended_) return *ended_;
  bool has_deadline = until.has_value();
  const auto deadline = until.value_or(std::chrono::steady_clock::time_point::max());
  for (;;) {
    int wait_ms = -1;
    const auto now = std::chrono::steady_clock::now();
    if (has_deadline) {
      wait_ms = static_cast<int>(std::max<std::int64_t>(
          0, std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count()));
    }
    pollfd pfd{init_->pidfd, POLLIN, 0};
    const int rc = ::poll(&pfd, 1, wait_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return core::ErrnoStatus("poll pidfd", errno);
    if (rc > 0) break;
    if (std::chrono::steady_clock::now() < deadline) continue;  // woke a little early
    // Deadline reached: the environment's own timeout kills it; a caller's WaitFor gives up.
    if (timeout_.count() > 0 && std::chrono::steady_clock::now() >= started_ + timeout_) {
      init_->timed_out = true;
      init_->Kill();
      has_deadline = false;
      continue;
    }
    return core::DeadlineExceededError("the environment is still running");
  }
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(init_->pidfd), &info, WEXITED) !=
      0) {
    return core::ErrnoStatus("waitid", errno);
  }
  int program_status = 0;
  const bool reported =
      ::read(status_fd_, &program_status, sizeof program_status) == sizeof program_status;
  const bool oom = cgroups_ && cgroups_->OomKills() > 0;

  ExitStatus status;
  if (init_->timed_out) {
    status.reason = ExitReason::kTimeout;
  } else if (output_exceeded_) {
    status.reason = ExitReason::kOutputLimit;
  } else if (killed_) {
    status.reason = ExitReason::kKilled;
  } else if (oom) {
    status.reason = ExitReason::kOutOfMemory;
  } else if (reported && WIFEXITED(program_status)) {
    status.reason = ExitReason::kExited;
    status.exit_code = WEXITSTATUS(program_status);
  } else if (reported && WIFSIGNALED(program_status)) {
    status.reason = ExitReason::kSignalled;
    status.signal = WTERMSIG(program_status);
  } else {
    // init itself ended without a report: killed from outside.
    status.reason = ExitReason::kSignalled;
    status.signal = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED ? info.si_status : 0;
  }
  // The PID namespace is gone with its init; make sure nothing lingers in the cgroup.
  if (cgroups_) cgroups_->KillAll();
  ended_ = status;
  return status;
}

core::Result<Output> Environment::CollectOutput() {
  Output output;
  std::array<pollfd, 2> fds{{{stdout_fd_, POLLIN, 0}, {stderr_fd_, POLLIN, 0}}};
  const std::array<std::string*, 2> sinks{&output.stdout_data, &output.stderr_data};
  std::uint64_t total = 0;
  std::array<char, 65536> buffer;
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return core::ErrnoStatus("poll the environment's output", errno);
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds[i].fd = -1;  // EOF (or an error: nothing more will come); the Environment closes it
        continue;
      }
      const std::uint64_t room = output_limit_ > total ? output_limit_ - total : 0;
      sinks[i]->append(buffer.data(), static_cast<std::size_t>(std::min<std::uint64_t>(
                                          room, static_cast<std::uint64_t>(n))));
      total += static_cast<std::uint64_t>(n);
      if (total > output_limit_ && !output.truncated) {
        output.truncated = true;
        output_exceeded_ = true;
        init_->Kill();
        if (cgroups_) cgroups_->KillAll();
      }
    }
  }
  return output;
}

core::Status Environment::Kill() {
  if (!init_) return core::Status::Ok();
  // Once Wait has reaped init, the pidfd answers ESRCH and Wait keeps the reason it found.
  killed_ = true;
  if (!init_->Kill() && errno != ESRCH) {
    return core::ErrnoStatus("kill the sandbox's init", errno);
  }
  if (cgroups_) cgroups_->KillAll();
  return core::Status::Ok();
}

core::Status Environment::Freeze() {
  if (!cgroups_) return core::FailedPreconditionError("the environment has no cgroup");
  return cgroups_->Freeze(true);
}

core::Status Environment::Thaw() {
  if (!cgroups_) return core::FailedPreconditionError("the environment has no cgroup");
  return cgroups_->Freeze(false);
}

core::Result<Usage> Environment::ResourceUsage() const {
  if (!cgroups_) return core::FailedPreconditionError("the environment has no cgroup");
  return Usage{.peak_memory_bytes = cgroups_->PeakMemoryBytes(), .cpu_time = cgroups_->CpuTime()};
}

// ---- Sandboxer -----------------------------------------------------------------------------

struct Sandboxer::UidPool {
  std::mutex mu;
  std::map<uid_t, int> in_use;  // uid -> the descriptor holding its host-wide lease
  uid_t next = 0;

  void Release(uid_t uid) {
    std::lock_guard lock(mu);
    if (auto it = in_use.find(uid); it != in_use.end()) {
      ::close(it->second);  // drops the flock
      in_use.erase(it);
    }
  }
  ~UidPool() {
    for (const auto& [uid, fd] : in_use) ::close(fd);
  }
};

namespace {

// An exclusive, non-blocking flock on `dir`/`uid`: the descriptor, or -1 when another process
// holds it (or the file cannot be opened).
int LeaseUid(const std::string& dir, uid_t uid) {
  const std::string path = dir + "/" + std::to_string(uid);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return -1;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

Sandboxer::Sandboxer(HostSupport host, core::Random& random, SandboxerOptions options)
    : host_(std::move(host)),
      random_(random),
      options_(std::move(options)),
      watchdog_(std::make_unique<internal::Watchdog>()),
      uids_(std::make_shared<UidPool>()) {
  uids_->next = options_.first_host_uid;
}

Sandboxer::~Sandboxer() = default;

core::Result<std::unique_ptr<Sandboxer>> Sandboxer::Create(HostSupport host, core::Random& random,
                                                           SandboxerOptions options) {
  if (!host.user_namespaces) {
    return core::FailedPreconditionError("this host cannot create user namespaces (" +
                                         host.user_namespaces_detail +
                                         "); moatless cannot isolate functions here");
  }
  const std::vector<std::string> missing = host.Missing();
  if (!missing.empty() && !host.insecure_allowed) {
    std::string message = "this host cannot give functions full isolation:";
    for (const std::string& m : missing) message += " " + m + ";";
    message +=
        " run `moatless doctor`, fix the host, or accept weaker isolation explicitly "
        "with --insecure-allow-weak-isolation";
    return core::FailedPreconditionError(message);
  }
  if (options.host_uid_count == 0 || options.first_host_uid == 0) {
    return core::InvalidArgumentError("the sandbox host uid range must be non-empty and not 0");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.uid_lease_dir, ec);
  if (ec) return core::InternalError("create " + options.uid_lease_dir + ": " + ec.message());
  struct stat leases {};
  if (::lstat(options.uid_lease_dir.c_str(), &leases) != 0 || !S_ISDIR(leases.st_mode) ||
      leases.st_uid != ::geteuid() || ::chmod(options.uid_lease_dir.c_str(), 0700) != 0) {
    return core::FailedPreconditionError(options.uid_lease_dir +
                                         " must be a directory of this user's");
  }
  std::filesystem::create_directories(options.state_dir, ec);
  if (ec) return core::InternalError("create " + options.state_dir + ": " + ec.message());
  // Ours, a real directory: in a shared place (/tmp) someone else could have made it first.
  struct stat st {};
  if (::lstat(options.state_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
      st.st_uid != ::geteuid()) {
    return core::FailedPreconditionError(options.state_dir +
                                         " must be a directory owned by this user, not a symlink");
  }
  // Searchable, not listable: each environment's root is mounted over a directory in here from
  // inside its user namespace.
  if (::chmod(options.state_dir.c_str(), 0711) != 0) {
    return core::ErrnoStatus("chmod 0711 " + options.state_dir, errno);
  }
  // Environments of owners that died (a daemon killed with SIGKILL) hold uids whose leases are
  // free: end them now rather than when their uid comes round again.
  for (const uid_t uid :
       internal::EnvironmentCgroups::UidsInUse(options.first_host_uid, options.host_uid_count)) {
    const int lease = LeaseUid(options.uid_lease_dir, uid);
    if (lease < 0) continue;  // a live environment's
    internal::EnvironmentCgroups::ReapOrphans(host, uid);
    ::close(lease);
  }
  return std::unique_ptr<Sandboxer>(new Sandboxer(std::move(host), random, std::move(options)));
}

core::Result<uid_t> Sandboxer::AcquireUid() {
  std::lock_guard lock(uids_->mu);
  for (std::uint32_t tried = 0; tried < options_.host_uid_count; ++tried) {
    const uid_t uid = uids_->next;
    uids_->next = uid + 1 >= options_.first_host_uid + options_.host_uid_count
                      ? options_.first_host_uid
                      : uid + 1;
    if (uids_->in_use.contains(uid)) continue;
    // Another process's environment may hold it: only a uid leased host-wide is ours.
    const int lease = LeaseUid(options_.uid_lease_dir, uid);
    if (lease < 0) continue;
    // A free lease with processes still running as the uid: the environment of an owner that
    // died. Never share a uid with them: end them, or leave the uid alone.
    if (internal::EnvironmentCgroups::ReapOrphans(host_, uid) != 0) {
      ::close(lease);
      continue;
    }
    uids_->in_use.emplace(uid, lease);
    return uid;
  }
  return core::ResourceExhaustedError("every sandbox host uid is in use");
}

core::Result<std::unique_ptr<Environment>> Sandboxer::Start(const Spec& spec) {
  if (!IsAbsoluteClean(spec.program)) {
    return core::InvalidArgumentError("the program must be an absolute path without . or ..");
  }
  if (!IsAbsoluteClean(spec.working_dir)) {
    return core::InvalidArgumentError("the working directory must be an absolute path");
  }
  for (const BindMount& m : spec.mounts) {
    if (!IsAbsoluteClean(m.target) || m.target == "/" || !IsAbsoluteClean(m.source)) {
      return core::InvalidArgumentError("mount '" + m.source + "' -> '" + m.target +
                                        "': both must be absolute paths without . or ..");
    }
  }
  if (spec.limits.memory_bytes < (4u << 20) || spec.limits.max_pids < 2 ||
      spec.limits.tmp_bytes == 0 || spec.limits.open_files < 16) {
    return core::InvalidArgumentError(
        "limits too small: memory >= 4 MiB, pids >= 2, /tmp > 0, open files >= 16");
  }

  std::unique_ptr<Environment> env(new Environment());
  env->id_ = core::RandomHex(random_, 8);
  if (spec.host_uid != 0) {
    env->host_uid_ = spec.host_uid;
  } else {
    ASSIGN_OR_RETURN(env->host_uid_, AcquireUid());
    env->release_uid_ = [pool = uids_](uid_t uid) { pool->Release(uid); };
  }
  const gid_t host_gid = spec.host_gid != 0 ? spec.host_gid : env->host_uid_;
  env->timeout_ = spec.limits.timeout;
  env->output_limit_ = spec.limits.output_bytes;

  // Cgroups first: the program must never run unlimited.
  const bool want_cgroups = host_.cgroup != CgroupVersion::kNone;
  if (want_cgroups) {
    auto cgroups = internal::EnvironmentCgroups::Create(host_, options_.cgroup_parent, env->id_,
                                                        {.memory_bytes = spec.limits.memory_bytes,
                                                         .max_pids = spec.limits.max_pids,
                                                         .cpus = spec.limits.cpus});
    if (!cgroups.ok() && !host_.insecure_allowed) return cgroups.status();
    if (cgroups.ok()) env->cgroups_ = std::move(*cgroups);
  }

  // The root is assembled on a tmpfs mounted (inside the child's mount namespace) on this empty
  // directory.
  env->root_dir_ = options_.state_dir + "/" + env->id_;
  // 0755 and a 0711 state dir: the child, already in its user namespace, must be able to look
  // the path up to mount over it.
  if (::mkdir(env->root_dir_.c_str(), 0755) != 0) {
    const core::Status failed = core::ErrnoStatus("mkdir " + env->root_dir_, errno);
    env->root_dir_.clear();
    return failed;
  }
  const std::string& root = env->root_dir_;

  // The filesystem plan. Its strings live in `storage` (a deque never moves its elements).
  std::deque<std::string> storage;
  const auto keep = [&](std::string s) -> const char* {
    storage.push_back(std::move(s));
    return storage.back().c_str();
  };
  std::vector<MountOp> ops;
  const auto under_root = [&](const std::string& path) { return keep(root + path); };
  const auto mkdirs = [&](const std::string& path) {
    // Every ancestor of `path` inside the root, then `path`.
    std::string partial;
    const std::filesystem::path p(path);
    for (const auto& part : p) {
      if (part == "/") continue;
      partial.append("/").append(part.string());
      ops.push_back({.kind = OpKind::kMkdir, .target = under_root(partial)});
    }
  };
  for (const char* dir : {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    struct stat st {};
    if (::lstat(dir, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      const ssize_t n = ::readlink(dir, target, sizeof target - 1);
      if (n <= 0) continue;
      ops.push_back({.kind = OpKind::kSymlink,
                     .source = keep(std::string(target, static_cast<std::size_t>(n))),
                     .target = under_root(dir)});
    } else if (S_ISDIR(st.st_mode)) {
      ops.push_back({.kind = OpKind::kBind, .source = dir, .target = under_root(dir)});
    }
  }
  mkdirs("/etc");
  const auto file = [&](const std::string& path, std::string content) {
    const char* text = keep(std::move(content));
    ops.push_back({.kind = OpKind::kFile,
                   .source = text,
                   .target = under_root(path),
                   .length = std::strlen(text)});
  };
  file("/etc/passwd", GeneratedPasswd());
  file("/etc/group", GeneratedGroup());
  file("/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n127.0.1.1 " + spec.hostname + "\n");
  file("/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n");
  file("/etc/hostname", spec.hostname + "\n");
  if (::access("/etc/ld.so.cache", R_OK) == 0) {
    ops.push_back({.kind = OpKind::kBind,
                   .source = "/etc/ld.so.cache",
                   .target = under_root("/etc/ld.so.cache"),
                   .is_file = true});
  }
  mkdirs("/tmp");
  ops.push_back({.kind = OpKind::kTmpfs,
                 .target = under_root("/tmp"),
                 .data = keep("size=" + std::to_string(spec.limits.tmp_bytes) + ",mode=1777")});
  mkdirs("/proc");
  ops.push_back({.kind = OpKind::kProc, .target = under_root("/proc")});
  mkdirs("/dev");
  ops.push_back(
      {.kind = OpKind::kTmpfs, .target = under_root("/dev"), .data = keep("size=64k,mode=0755")});
  for (const char* dev : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}) {
    ops.push_back({.kind = OpKind::kBind,
                   .source = dev,
                   .target = under_root(dev),
                   .read_only = false,
                   .is_file = true});
  }
  for (const auto& [link, target] : std::initializer_list<std::pair<const char*, const char*>>{
           {"/dev/fd", "/proc/self/fd"},
           {"/dev/stdin", "/proc/self/fd/0"},
           {"/dev/stdout", "/proc/self/fd/1"},
           {"/dev/stderr", "/proc/self/fd/2"}}) {
    ops.push_back({.kind = OpKind::kSymlink, .source = target, .target = under_root(link)});
  }
  for (const BindMount& m : spec.mounts) {
    struct stat st {};
    if (::stat(m.source.c_str(), &st) != 0) {
      return core::ErrnoStatus("mount source " + m.source, errno);
    }
    const std::filesystem::path parent = std::filesystem::path(m.target).parent_path();
    if (parent != "/") mkdirs(parent.string());
    ops.push_back({.kind = OpKind::kBind,
                   .source = keep(m.source),
                   .target = under_root(m.target),
                   .read_only = !m.writable,
                   .is_file = !S_ISDIR(st.st_mode)});
  }

  // argv and envp.
  std::vector<char*> argv{const_cast<char*>(keep(spec.program))};
  for (const std::string& a : spec.args) argv.push_back(const_cast<char*>(keep(a)));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& e : spec.env) envp.push_back(const_cast<char*>(keep(e)));
  envp.push_back(nullptr);

  // The seccomp filter.
  std::vector<sock_filter> filter;
  sock_fprog program{};
  if (host_.seccomp) {
    ASSIGN_OR_RETURN(filter, CompileSeccompFilter(spec.on_forbidden_syscall));
    program.len = static_cast<unsigned short>(filter.size());
    program.filter = filter.data();
  } else if (!host_.insecure_allowed) {
    return core::FailedPreconditionError("seccomp is not available on this host");
  }

  Fd sync_read, sync_write, error_read, error_write, status_read, status_write;
  Fd out_read, out_write, err_read, err_write;
  RETURN_IF_ERROR(MakePipe(sync_read, sync_write));
  RETURN_IF_ERROR(MakePipe(error_read, error_write));
  RETURN_IF_ERROR(MakePipe(status_read, status_write));
  RETURN_IF_ERROR(MakePipe(out_read, out_write));
  RETURN_IF_ERROR(MakePipe(err_read, err_write));

  ChildPlan plan;
  plan.sync_read = sync_read.get();
  plan.error_write = error_write.get();
  plan.status_write = status_write.get();
  plan.stdout_write = out_write.get();
  plan.stderr_write = err_write.get();
  plan.parent_ends = {sync_write.get(), error_read.get(), status_read.get(),
                      out_read.get(),   err_read.get(),   -1};
  plan.root = root.c_str();
  plan.root_tmpfs_options = keep("size=1m,mode=0755");
  plan.ops = ops.data();
  plan.op_count = ops.size();
  plan.hostname = spec.hostname.c_str();
  plan.hostname_length = spec.hostname.size();
  plan.program = argv[0];
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.working_dir = keep(spec.working_dir);
  plan.nofile = {spec.limits.open_files, spec.limits.open_files};
  plan.fsize = {spec.limits.file_bytes, spec.limits.file_bytes};
  plan.core = {0, 0};
  plan.seccomp = host_.seccomp ? &program : nullptr;

  env->started_ = std::chrono::steady_clock::now();
  int pidfd = -1;
  const unsigned long flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
                              CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD | SIGCHLD;
  const long pid = ::syscall(SYS_clone, flags, nullptr, &pidfd, nullptr, nullptr);
  if (pid == 0) RunChild(plan);
  if (pid < 0) return core::ErrnoStatus("clone into new namespaces", errno);
  env->init_pid_ = static_cast<pid_t>(pid);
  env->init_ = std::make_shared<internal::InitProcess>(pidfd);
  if (spec.limits.timeout.count() > 0) {
    watchdog_->Watch(env->init_, env->started_ + spec.limits.timeout);
  }
  sync_read.reset();
  error_write.reset();
  status_write.reset();
  out_write.reset();
  err_write.reset();

  // From here on, a failure kills the child (the Environment's destructor does).
  const std::string proc = "/proc/" + std::to_string(pid);
  core::Status prepared =
      WriteProcFile(proc + "/uid_map",
                    std::to_string(kSandboxUid) + " " + std::to_string(env->host_uid_) + " 1\n");
  if (prepared.ok()) {
    prepared = WriteProcFile(proc + "/gid_map",
                             std::to_string(kSandboxGid) + " " + std::to_string(host_gid) + " 1\n");
  }
  if (prepared.ok() && env->cgroups_) prepared = env->cgroups_->AddProcess(env->init_pid_);
  if (prepared.ok()) prepared = InNetworkNamespace(env->init_pid_, spec.in_network_namespace);
  if (prepared.ok() && ::write(sync_write.get(), "g", 1) != 1) {
    prepared = core::ErrnoStatus("release the sandbox", errno);
  }
  sync_write.reset();
  if (!prepared.ok()) return prepared;  // ~Environment kills and cleans up

  // EOF: the program's execve succeeded. A Failure: the step that failed.
  Failure failure;
  ssize_t n = 0;
  while ((n = ::read(error_read.get(), &failure, sizeof failure)) < 0 && errno == EINTR) {
  }
  if (n == sizeof failure) {
    std::string what = std::string("starting the sandbox failed while ") +
                       StepName(static_cast<Step>(failure.step));
    if (failure.detail >= 0 && static_cast<std::size_t>(failure.detail) < ops.size()) {
      what += " (" + ops[static_cast<std::size_t>(failure.detail)].Describe() + ")";
    }
    what += ": " + std::string(std::strerror(failure.error));
    env->Wait().status().IgnoreError();
    return failure.step == static_cast<int>(Step::kExec) && failure.error == ENOENT
               ? core::NotFoundError(what)
               : core::InternalError(what);
  }
  env->status_fd_ = status_read.release();
  env->stdout_fd_ = out_read.release();
  env->stderr_fd_ = err_read.release();
  return env;
}

}  // namespace moatless::sandbox
