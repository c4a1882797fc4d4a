// Sandbox: starts a program inside fresh Linux isolation and hands back a handle to observe,
// freeze and kill it. It knows nothing about functions; docs/isolation.md describes the layers.
//
// Every environment gets, before the program's first instruction:
//  - new user, mount, PID, network, IPC, UTS and cgroup namespaces. The program runs as uid/gid
//    1000 ("sandbox") inside, which is a host uid/gid of its own (Spec::host_uid) outside; no
//    supplementary groups.
//  - a fresh root (tmpfs, read-only once assembled): read-only binds of the host's /usr and
//    /bin, /sbin, /lib* (or their /usr symlinks), a generated /etc (passwd, group, hosts,
//    nsswitch.conf, and the loader cache — no host secrets), the Spec's mounts (read-only unless
//    marked writable), a private size-limited tmpfs /tmp, a /proc of its own PID namespace, and a
//    /dev of null, zero, full, random, urandom (no tty). pivot_root, then the old root is
//    detached: nothing else of the host is reachable.
//  - a PID 1 of its own (a small init in the sandbox) that reaps orphans; when the program exits,
//    init exits and the kernel kills whatever the program left behind.
//  - a network namespace with only loopback, up.
//  - all capabilities dropped (bounding, ambient, permitted, effective), no_new_privs, and a
//    seccomp filter (seccomp_policy.h) that refuses what a function never needs.
//  - limits: a cgroup (v2, or v1 controllers) with memory (hard, no swap), pids and CPU quota;
//    rlimits on open files, file size and core dumps; a wall-clock timeout enforced by Wait.
//
// Threading: a Sandboxer may start environments from several threads. A watchdog thread of the
// Sandboxer kills environments whose timeout has passed, whether or not anyone waits for them;
// destroy the Sandboxer after its environments. One thread at a time waits for an Environment or
// reads its output; Kill, Freeze, Thaw and ResourceUsage may be called from other threads
// meanwhile. Destroying it kills what is left and removes its cgroups and directory.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/status.h"
#include "sandbox/host.h"
#include "sandbox/seccomp_policy.h"

namespace moatless::sandbox {
namespace internal {
class EnvironmentCgroups;
struct InitProcess;
class Watchdog;
}  // namespace internal

inline constexpr uid_t kSandboxUid = 1000;
inline constexpr gid_t kSandboxGid = 1000;

struct BindMount {
  std::string source;  // host path (file or directory)
  std::string target;  // absolute path inside the sandbox, e.g. /var/task
  bool writable = false;
};

struct Limits {
  std::uint64_t memory_bytes = 256ull << 20;  // hard; exceeding it OOM-kills the environment
  std::uint32_t max_pids = 64;                // processes and threads
  double cpus = 1.0;                          // CPU quota in cores; 0: no quota
  std::chrono::milliseconds timeout{0};       // wall clock from start; 0: none
  std::uint64_t tmp_bytes = 64ull << 20;      // size of /tmp
  std::uint32_t open_files = 1024;            // RLIMIT_NOFILE
  std::uint64_t file_bytes = 64ull << 20;     // RLIMIT_FSIZE: largest file it can write
  // stdout and stderr together, as Environment::CollectOutput reads them.
  std::uint64_t output_bytes = 6ull << 20;
};

struct Spec {
  std::string program;            // absolute path inside the sandbox
  std::vector<std::string> args;  // argv[1...]; argv[0] is `program`
  std::vector<std::string> env;   // "NAME=value"; nothing else is inherited
  std::string working_dir = "/";  // inside the sandbox
  std::vector<BindMount> mounts;  // e.g. the function's code read-only at /var/task
  std::string hostname = "sandbox";
  Limits limits;
  SeccompAction on_forbidden_syscall = SeccompAction::kErrno;
  // The host uid and gid the sandbox's uid/gid 1000 maps to: unprivileged and, when the platform
  // runs as root, distinct per environment. 0: the Sandboxer picks one from its range.
  uid_t host_uid = 0;
  gid_t host_gid = 0;
  // Runs in the platform's process, on a thread that has entered the environment's network
  // namespace, before the program starts (e.g. to open a listening socket on its loopback). An
  // error aborts the start.
  std::function<core::Status()> in_network_namespace;
};

enum class ExitReason {
  kExited,       // returned or called exit: see exit_code
  kSignalled,    // killed by a signal it did not handle: see signal
  kOutOfMemory,  // the memory limit was hit and the kernel's OOM killer ended it
  kTimeout,      // Limits::timeout passed; the platform killed it
  kKilled,       // Environment::Kill
  kOutputLimit,  // it wrote more than Limits::output_bytes to stdout and stderr (CollectOutput)
};
std::string_view ExitReasonName(ExitReason reason);

struct ExitStatus {
  ExitReason reason = ExitReason::kExited;
  int exit_code = 0;  // kExited
  int signal = 0;     // kSignalled
  std::string ToString() const;
};

struct Output {
  std::string stdout_data;
  std::string stderr_data;
  bool truncated = false;  // the limit was reached: the environment was killed
};

struct Usage {
  std::uint64_t peak_memory_bytes = 0;
  std::chrono::nanoseconds cpu_time{0};
};

class Environment {
 public:
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
  ~Environment();

  const std::string& id() const { return id_; }
  // The sandbox's init (PID 1 inside) as the host sees it.
  pid_t init_pid() const { return init_pid_; }
  uid_t host_uid() const { return host_uid_; }
  // The program's stdout and stderr: read ends of pipes, owned by the Environment (read until
  // EOF; the program sees EPIPE if nobody reads and the pipe fills).
  int stdout_fd() const { return stdout_fd_; }
  int stderr_fd() const { return stderr_fd_; }

  // Waits until the environment has ended (program exit, signal, OOM, the timeout, Kill) and
  // everything in it is gone. Repeated calls return the same status.
  core::Result<ExitStatus> Wait();
  // Like Wait, but returns DeadlineExceeded if it has not ended within `timeout`.
  core::Result<ExitStatus> WaitFor(std::chrono::milliseconds timeout);
  // Reads stdout and stderr until both are closed (everything in the environment has ended or
  // closed them), keeping at most Limits::output_bytes of the two together. Past that the
  // environment is killed and Wait reports kOutputLimit. Call it at most once, instead of reading
  // the descriptors yourself; then Wait.
  core::Result<Output> CollectOutput();
  // Kills every process of the environment.
  core::Status Kill();
  // Freezes / thaws every process (cgroup freezer): for idle warm environments.
  core::Status Freeze();
  core::Status Thaw();
  core::Result<Usage> ResourceUsage() const;

 private:
  friend class Sandboxer;
  Environment();
  core::Result<ExitStatus> WaitUntil(std::optional<std::chrono::steady_clock::time_point> until);
  void Cleanup();

  std::string id_;
  pid_t init_pid_ = -1;
  std::shared_ptr<internal::InitProcess> init_;  // the pidfd; shared with the watchdog
  int status_fd_ = -1;                           // init reports the program's wait status here
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  uid_t host_uid_ = 0;
  std::string root_dir_;
  std::unique_ptr<internal::EnvironmentCgroups> cgroups_;  // null: no cgroup (insecure mode)
  std::chrono::steady_clock::time_point started_;
  std::chrono::milliseconds timeout_{0};
  std::atomic<bool> killed_{false};
  std::atomic<bool> output_exceeded_{false};
  std::uint64_t output_limit_ = 0;
  std::optional<ExitStatus> ended_;
  std::function<void(uid_t)> release_uid_;
};

struct SandboxerOptions {
  // Where each environment's root is assembled (a directory per environment, removed after). It
  // must be ours (not a symlink, not another user's); it is made 0711.
  std::string state_dir = "/run/moatless/sandboxes";
  // Host uids/gids handed to environments whose Spec names none: [first, first + count).
  uid_t first_host_uid = 200000;
  std::uint32_t host_uid_count = 65536;
  // Host-wide leases on those uids, shared by every Sandboxer of the host (other daemons, tests):
  // a uid is handed out only while this process holds an exclusive flock on its file here, so no
  // two live environments — of any process — ever share a host uid. The kernel drops a lease when
  // its holder dies. Made 0700 if missing; must be ours.
  std::string uid_lease_dir = "/run/moatless/host-uids";
  // The cgroup (relative to each hierarchy's root) under which environments get theirs.
  std::string cgroup_parent = "moatless";
};

class Sandboxer {
 public:
  // Fails (FailedPrecondition, with what is missing) when `host` cannot give full isolation and
  // `host.insecure_allowed` is not set.
  // `random` names environments; it must outlive the Sandboxer.
  static core::Result<std::unique_ptr<Sandboxer>> Create(HostSupport host, core::Random& random,
                                                         SandboxerOptions options = {});
  ~Sandboxer();

  // Starts the program; returns once it is running (its execve succeeded) or with the reason it
  // could not start.
  core::Result<std::unique_ptr<Environment>> Start(const Spec& spec);
  const HostSupport& host() const { return host_; }

 private:
  Sandboxer(HostSupport host, core::Random& random, SandboxerOptions options);
  core::Result<uid_t> AcquireUid();

  HostSupport host_;
  core::Random& random_;
  SandboxerOptions options_;
  std::unique_ptr<internal::Watchdog> watchdog_;  // kills environments at their timeout
  struct UidPool;
  std::shared_ptr<UidPool> uids_;
};

}  // namespace moatless::sandbox
