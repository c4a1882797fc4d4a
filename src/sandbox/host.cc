#include "sandbox/host.h"

#include <errno.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

namespace moatless::sandbox {
namespace {

constexpr const char* kCgroupMount = "/sys/fs/cgroup";

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Creates a child in new user, mount, PID, network, IPC and UTS namespaces, which exits at once.
bool ProbeUserNamespaces(std::string& detail) {
  const long flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                     CLONE_NEWUTS | CLONE_NEWCGROUP | SIGCHLD;
  const long pid = ::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr);
  if (pid == 0) ::_exit(0);
  if (pid < 0) {
    detail = std::string("creating namespaces failed: ") + std::strerror(errno);
    return false;
  }
  int status = 0;
  while (::waitpid(static_cast<pid_t>(pid), &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    detail = "the probe child in new namespaces did not exit cleanly";
    return false;
  }
  detail = "user, mount, PID, network, IPC, UTS and cgroup namespaces";
  return true;
}

void ProbeCgroups(HostSupport& host) {
  struct statfs fs {};
  if (::statfs(kCgroupMount, &fs) != 0) return;
  if (fs.f_type == CGROUP2_SUPER_MAGIC) {
    host.cgroup = CgroupVersion::kV2;
    host.cgroup_root = kCgroupMount;
    std::ifstream in(std::string(kCgroupMount) + "/cgroup.controllers");
    std::string controller;
    while (in >> controller) {
      if (controller == "memory" || controller == "pids" || controller == "cpu") {
        host.cgroup_controllers.push_back(controller);
      }
    }
    // cgroup.freeze exists in every non-root cgroup of kernels >= 5.2.
    host.cgroup_controllers.push_back("freezer");
    std::sort(host.cgroup_controllers.begin(), host.cgroup_controllers.end());
    return;
  }
  // cgroup v1: one mount per controller (or combined, with per-controller links).
  for (const char* controller : {"cpu", "cpuacct", "freezer", "memory", "pids"}) {
    const std::string dir = std::string(kCgroupMount) + "/" + controller;
    struct statfs cfs {};
    if (IsDirectory(dir) && ::statfs(dir.c_str(), &cfs) == 0 && cfs.f_type == CGROUP_SUPER_MAGIC) {
      host.cgroup_controllers.emplace_back(controller);
    }
  }
  if (!host.cgroup_controllers.empty()) {
    host.cgroup = CgroupVersion::kV1;
    host.cgroup_root = kCgroupMount;
  }
}

bool Has(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::vector<std::string> NeededControllers(CgroupVersion version) {
  if (version == CgroupVersion::kV1) return {"cpu", "cpuacct", "freezer", "memory", "pids"};
  return {"cpu", "freezer", "memory", "pids"};
}

}  // namespace

std::vector<std::string> HostSupport::Missing() const {
  std::vector<std::string> missing;
  if (!running_as_root) {
    missing.emplace_back(
        "not running as root: distinct host uids per environment and cgroup limits need it");
  }
  if (!user_namespaces) missing.push_back("user namespaces: " + user_namespaces_detail);
  if (!seccomp) missing.emplace_back("seccomp filters are not available");
  if (cgroup == CgroupVersion::kNone) {
    missing.emplace_back("no cgroup hierarchy at /sys/fs/cgroup: no memory, pids or CPU limits");
  } else {
    for (const std::string& controller : NeededControllers(cgroup)) {
      if (!Has(cgroup_controllers, controller)) {
        missing.push_back("cgroup controller '" + controller + "' is not available");
      }
    }
  }
  return missing;
}

std::string HostSupport::Report() const {
  std::ostringstream out;
  const auto yes = [](bool b) { return b ? "yes" : "NO"; };
  out << "running as root:     " << yes(running_as_root) << "\n";
  out << "user namespaces:     " << yes(user_namespaces) << " (" << user_namespaces_detail << ")\n";
  out << "seccomp filters:     " << yes(seccomp) << "\n";
  out << "cgroups:             "
      << (cgroup == CgroupVersion::kV2   ? "v2"
          : cgroup == CgroupVersion::kV1 ? "v1"
                                         : "none")
      << (cgroup_root.empty() ? "" : " at " + cgroup_root) << "; controllers:";
  for (const std::string& c : cgroup_controllers) out << " " << c;
  out << "\n";
  const std::vector<std::string> missing = Missing();
  if (missing.empty()) {
    out << "isolation:           full (namespaces, pivot_root, no capabilities, no_new_privs, "
           "seccomp, cgroup limits)\n";
  } else {
    out << "isolation:           INCOMPLETE; missing:\n";
    for (const std::string& m : missing) out << "  - " << m << "\n";
    out << (insecure_allowed ? "moatless will run functions with the isolation above "
                               "(--insecure-allow-weak-isolation)\n"
                             : "moatless refuses to run functions here unless started with "
                               "--insecure-allow-weak-isolation\n");
  }
  return out.str();
}

HostSupport ProbeHost() {
  HostSupport host;
  host.running_as_root = ::geteuid() == 0;
  host.user_namespaces = ProbeUserNamespaces(host.user_namespaces_detail);
  host.seccomp = ::prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
  ProbeCgroups(host);
  return host;
}

}  // namespace moatless::sandbox
