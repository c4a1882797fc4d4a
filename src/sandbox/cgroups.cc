#include "sandbox/cgroups.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/filesystem.h"

namespace moatless::sandbox::internal {
namespace {

constexpr std::string_view kV1Controllers[] = {"memory", "pids", "cpu", "cpuacct", "freezer"};

// One write(2): the kernel answers a cgroup file's write with the error of the setting.
core::Status WriteFile(const std::string& path, const std::string& value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return core::ErrnoStatus("open " + path, errno);
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return core::ErrnoStatus("write '" + value + "' to " + path, err);
  }
  return core::Status::Ok();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

core::Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return core::ErrnoStatus("mkdir " + path, errno);
  }
  return core::Status::Ok();
}

// The value of `key` in a flat "key value" file (memory.events, memory.oom_control, cpu.stat).
std::uint64_t KeyedValue(const std::string& path, std::string_view key) {
  std::istringstream in(ReadFile(path));
  std::string k;
  std::uint64_t v = 0;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

std::uint64_t NumberIn(const std::string& path) {
  std::istringstream in(ReadFile(path));
  std::uint64_t v = 0;
  in >> v;
  return v;
}

}  // namespace

EnvironmentCgroups::EnvironmentCgroups(CgroupVersion version, std::vector<std::string> dirs)
    : version_(version), dirs_(std::move(dirs)) {}

EnvironmentCgroups::~EnvironmentCgroups() {
  if (!removed_) {
    KillAll();
    Remove().IgnoreError();
  }
}

core::Result<std::unique_ptr<EnvironmentCgroups>> EnvironmentCgroups::Create(
    const HostSupport& host, const std::string& parent, const std::string& id,
    const CgroupLimits& limits) {
  if (host.cgroup == CgroupVersion::kV2) {
    const std::string parent_dir = host.cgroup_root + "/" + parent;
    RETURN_IF_ERROR(MakeDir(parent_dir));
    // Controllers flow down: enable them for the parent's children, then for ours.
    for (const std::string& dir : {host.cgroup_root, parent_dir}) {
      RETURN_IF_ERROR(WriteFile(dir + "/cgroup.subtree_control", "+memory +pids +cpu"));
    }
    const std::string dir = parent_dir + "/" + id;
    if (::mkdir(dir.c_str(), 0755) != 0) return core::ErrnoStatus("mkdir " + dir, errno);
    std::unique_ptr<EnvironmentCgroups> cg(new EnvironmentCgroups(CgroupVersion::kV2, {dir}));
    RETURN_IF_ERROR(WriteFile(dir + "/memory.max", std::to_string(limits.memory_bytes)));
    if (Exists(dir + "/memory.swap.max")) RETURN_IF_ERROR(WriteFile(dir + "/memory.swap.max", "0"));
    RETURN_IF_ERROR(WriteFile(dir + "/pids.max", std::to_string(limits.max_pids)));
    if (limits.cpus > 0) {
      const auto quota = static_cast<std::uint64_t>(std::llround(limits.cpus * 100000));
      RETURN_IF_ERROR(WriteFile(dir + "/cpu.max", std::to_string(quota) + " 100000"));
    }
    return cg;
  }
  if (host.cgroup != CgroupVersion::kV1) {
    return core::FailedPreconditionError("the host has no usable cgroup hierarchy");
  }
  std::vector<std::string> dirs;
  for (const std::string_view controller : kV1Controllers) {
    const std::string name(controller);
    if (std::find(host.cgroup_controllers.begin(), host.cgroup_controllers.end(), name) ==
        host.cgroup_controllers.end()) {
      dirs.emplace_back();
      continue;
    }
    const std::string parent_dir = host.cgroup_root + "/" + name + "/" + parent;
    RETURN_IF_ERROR(MakeDir(parent_dir));
    const std::string dir = parent_dir + "/" + id;
    // cpu and cpuacct may be one hierarchy mounted twice: the second mkdir finds the first.
    RETURN_IF_ERROR(MakeDir(dir));
    dirs.push_back(dir);
  }
  std::unique_ptr<EnvironmentCgroups> cg(new EnvironmentCgroups(CgroupVersion::kV1, dirs));
  if (const std::string memory = cg->Dir("memory"); !memory.empty()) {
    const std::string bytes = std::to_string(limits.memory_bytes);
    RETURN_IF_ERROR(WriteFile(memory + "/memory.limit_in_bytes", bytes));
    if (Exists(memory + "/memory.memsw.limit_in_bytes")) {
      RETURN_IF_ERROR(WriteFile(memory + "/memory.memsw.limit_in_bytes", bytes));
    }
    if (Exists(memory + "/memory.swappiness")) {
      WriteFile(memory + "/memory.swappiness", "0").IgnoreError();
    }
  }
  if (const std::string pids = cg->Dir("pids"); !pids.empty()) {
    RETURN_IF_ERROR(WriteFile(pids + "/pids.max", std::to_string(limits.max_pids)));
  }
  if (const std::string cpu = cg->Dir("cpu"); !cpu.empty() && limits.cpus > 0) {
    const auto quota = static_cast<std::uint64_t>(std::llround(limits.cpus * 100000));
    RETURN_IF_ERROR(WriteFile(cpu + "/cpu.cfs_period_us", "100000"));
    RETURN_IF_ERROR(WriteFile(cpu + "/cpu.cfs_quota_us", std::to_string(quota)));
  }
  return cg;
}

std::string EnvironmentCgroups::Dir(std::string_view controller) const {
  if (version_ == CgroupVersion::kV2) return dirs_.empty() ? std::string() : dirs_[0];
  for (std::size_t i = 0; i < std::size(kV1Controllers) && i < dirs_.size(); ++i) {
    if (kV1Controllers[i] == controller) return dirs_[i];
  }
  return {};
}

core::Status EnvironmentCgroups::AddProcess(pid_t pid) {
  std::vector<std::string> done;
  for (const std::string& dir : dirs_) {
    if (dir.empty() || std::find(done.begin(), done.end(), dir) != done.end()) continue;
    RETURN_IF_ERROR(WriteFile(dir + "/cgroup.procs", std::to_string(pid)));
    done.push_back(dir);
  }
  return core::Status::Ok();
}

core::Status EnvironmentCgroups::Freeze(bool frozen) {
  if (version_ == CgroupVersion::kV2) {
    return WriteFile(Dir("") + "/cgroup.freeze", frozen ? "1" : "0");
  }
  const std::string dir = Dir("freezer");
  if (dir.empty()) return core::FailedPreconditionError("no freezer cgroup on this host");
  RETURN_IF_ERROR(WriteFile(dir + "/freezer.state", frozen ? "FROZEN" : "THAWED"));
  // FREEZING becomes FROZEN once every task has stopped.
  for (int i = 0; frozen && i < 1000; ++i) {
    if (ReadFile(dir + "/freezer.state").starts_with("FROZEN")) return core::Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return frozen ? core::DeadlineExceededError("the environment did not freeze within 1 s")
                : core::Status::Ok();
}

std::uint64_t EnvironmentCgroups::OomKills() const {
  if (version_ == CgroupVersion::kV2) return KeyedValue(Dir("") + "/memory.events", "oom_kill");
  const std::string dir = Dir("memory");
  return dir.empty() ? 0 : KeyedValue(dir + "/memory.oom_control", "oom_kill");
}

std::uint64_t EnvironmentCgroups::PeakMemoryBytes() const {
  if (version_ == CgroupVersion::kV2) return NumberIn(Dir("") + "/memory.peak");
  const std::string dir = Dir("memory");
  return dir.empty() ? 0 : NumberIn(dir + "/memory.max_usage_in_bytes");
}

std::chrono::nanoseconds EnvironmentCgroups::CpuTime() const {
  if (version_ == CgroupVersion::kV2) {
    return std::chrono::microseconds(KeyedValue(Dir("") + "/cpu.stat", "usage_usec"));
  }
  const std::string dir = Dir("cpuacct");
  return std::chrono::nanoseconds(dir.empty() ? 0 : NumberIn(dir + "/cpuacct.usage"));
}

std::vector<pid_t> EnvironmentCgroups::Processes() const {
  std::vector<pid_t> pids;
  const std::string dir = version_ == CgroupVersion::kV2 ? Dir("") : Dir("pids");
  if (dir.empty()) return pids;
  std::istringstream in(ReadFile(dir + "/cgroup.procs"));
  pid_t pid = 0;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

void EnvironmentCgroups::KillAll() {
  if (Processes().empty()) return;
  if (version_ == CgroupVersion::kV2 && Exists(Dir("") + "/cgroup.kill")) {
    WriteFile(Dir("") + "/cgroup.kill", "1").IgnoreError();
    return;
  }
  // Frozen processes cannot fork while we kill them one by one. Thaw whatever the freeze reached,
  // even when it did not finish in time: a cgroup left FREEZING never lets its killed tasks exit.
  Freeze(true).IgnoreError();
  for (const pid_t pid : Processes()) ::kill(pid, SIGKILL);
  Freeze(false).IgnoreError();
}

core::Status EnvironmentCgroups::Remove(std::chrono::milliseconds patience) {
  const auto until = std::chrono::steady_clock::now() + patience;
  while (!Processes().empty()) {
    if (std::chrono::steady_clock::now() > until) {
      return core::DeadlineExceededError("processes are still in the environment's cgroup");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::vector<std::string> done;
  core::Status result;
  for (const std::string& dir : dirs_) {
    if (dir.empty() || std::find(done.begin(), done.end(), dir) != done.end()) continue;
    done.push_back(dir);
    // A cgroup whose last task just exited can stay busy for a moment.
    int rc = -1;
    while ((rc = ::rmdir(dir.c_str())) != 0 && errno == EBUSY &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (rc != 0 && errno != ENOENT && result.ok())
      result = core::ErrnoStatus("rmdir " + dir, errno);
  }
  removed_ = true;
  return result;
}

namespace {

// Calls fn(pid, real uid, effective uid) for every process that is not a zombie.
template <typename Fn>
void ForEachProcess(Fn&& fn) {
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream status(it->path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      // A zombie holds nothing but its exit status (its parent will reap it).
      if (line.starts_with("State:") && line.find('Z') != std::string::npos) break;
      if (!line.starts_with("Uid:")) continue;
      std::istringstream ids(line.substr(4));
      uid_t real = 0;
      uid_t effective = 0;
      if (ids >> real >> effective) fn(static_cast<pid_t>(std::stol(name)), real, effective);
      break;
    }
  }
}

// The processes whose real or effective uid is `uid`.
std::vector<pid_t> ProcessesRunningAs(uid_t uid) {
  std::vector<pid_t> out;
  ForEachProcess([&](pid_t pid, uid_t real, uid_t effective) {
    if (real == uid || effective == uid) out.push_back(pid);
  });
  return out;
}

}  // namespace

std::vector<uid_t> EnvironmentCgroups::UidsInUse(uid_t first, std::size_t count) {
  std::vector<uid_t> out;
  ForEachProcess([&](pid_t, uid_t real, uid_t effective) {
    for (const uid_t uid : {real, effective}) {
      if (uid >= first && uid - first < count &&
          std::find(out.begin(), out.end(), uid) == out.end()) {
        out.push_back(uid);
      }
    }
  });
  return out;
}

std::size_t EnvironmentCgroups::ReapOrphans(const HostSupport& host, uid_t uid) {
  std::vector<pid_t> left = ProcessesRunningAs(uid);
  if (left.empty()) return 0;
  // The environments' cgroups, from where their processes are: "/<parent>/<id>" in each
  // hierarchy (a dead owner's parent may not be ours; an environment's cgroup is always a leaf
  // two levels down).
  std::vector<std::string> paths;
  for (const pid_t pid : left) {
    ::kill(pid, SIGKILL);  // pending until a frozen process is thawed below
    std::ifstream cgroups("/proc/" + std::to_string(pid) + "/cgroup");
    std::string line;
    while (std::getline(cgroups, line)) {
      const std::size_t colon = line.find(':', line.find(':') + 1);
      if (colon == std::string::npos) continue;
      const std::string path = line.substr(colon + 1);
      const std::size_t slash = path.find('/', 1);
      const bool leaf_of_parent = path.size() > 1 && path[0] == '/' && slash != std::string::npos &&
                                  slash + 1 < path.size() &&
                                  path.find('/', slash + 1) == std::string::npos &&
                                  path.find("..") == std::string::npos;
      if (leaf_of_parent && std::find(paths.begin(), paths.end(), path) == paths.end()) {
        paths.push_back(path);
      }
    }
  }
  for (const std::string& path : paths) {
    std::vector<std::string> dirs;
    if (host.cgroup == CgroupVersion::kV2) {
      if (Exists(host.cgroup_root + path)) dirs.push_back(host.cgroup_root + path);
    } else {
      for (const std::string_view controller : kV1Controllers) {
        const std::string dir = host.cgroup_root + "/" + std::string(controller) + path;
        dirs.push_back(Exists(dir) ? dir : std::string());
      }
    }
    if (std::all_of(dirs.begin(), dirs.end(), [](const std::string& d) { return d.empty(); })) {
      continue;
    }
    EnvironmentCgroups orphan(host.cgroup, std::move(dirs));
    orphan.KillAll();
    orphan.Freeze(false).IgnoreError();
    orphan.Remove(std::chrono::milliseconds(2000)).IgnoreError();
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!(left = ProcessesRunningAs(uid)).empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return left.size();
}

}  // namespace moatless::sandbox::internal
