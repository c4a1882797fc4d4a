// One environment's cgroup(s): limits, membership, freezer, OOM and usage accounting, removal.
// cgroup v2: a single directory <root>/<parent>/<id>. cgroup v1: one directory per controller
// hierarchy (<root>/<controller>/<parent>/<id>). Internal to the sandbox module.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "sandbox/host.h"

namespace moatless::sandbox::internal {

struct CgroupLimits {
  std::uint64_t memory_bytes = 0;
  std::uint32_t max_pids = 0;
  double cpus = 0;  // 0: no quota
};

class EnvironmentCgroups {
 public:
  // Creates the directories and writes the limits. Fails if the controllers cannot be used.
  static core::Result<std::unique_ptr<EnvironmentCgroups>> Create(const HostSupport& host,
                                                                  const std::string& parent,
                                                                  const std::string& id,
                                                                  const CgroupLimits& limits);
  ~EnvironmentCgroups();  // Remove(), best effort
  EnvironmentCgroups(const EnvironmentCgroups&) = delete;
  EnvironmentCgroups& operator=(const EnvironmentCgroups&) = delete;

  core::Status AddProcess(pid_t pid);
  core::Status Freeze(bool frozen);
  // How many times the kernel's OOM killer killed a process of this cgroup.
  std::uint64_t OomKills() const;
  std::uint64_t PeakMemoryBytes() const;
  std::chrono::nanoseconds CpuTime() const;
  // Processes still in the cgroup.
  std::vector<pid_t> Processes() const;
  // SIGKILLs every process still there (cgroup.kill on v2; one by one on v1, frozen first).
  void KillAll();
  // Waits (up to `patience`) for the cgroup to empty, then removes the directories.
  core::Status Remove(std::chrono::milliseconds patience = std::chrono::milliseconds(5000));

  // Ends what is left of environments whose owner died (a daemon killed with SIGKILL leaves its
  // environments behind, frozen or running): every process running as `uid` is killed, and the
  // environment cgroups they were in (leaves <parent>/<id>, whatever the dead owner's parent) are
  // thawed, emptied and removed. Only for a uid of the sandbox range whose host-wide lease the
  // caller has just taken, which proves its owner gone. Returns how many processes of `uid` are
  // still alive afterwards, after up to 2 s (0: the uid is free to use).
  static std::size_t ReapOrphans(const HostSupport& host, uid_t uid);
  // The uids in [first, first + count) that some process runs as.
  static std::vector<uid_t> UidsInUse(uid_t first, std::size_t count);

 private:
  EnvironmentCgroups(CgroupVersion version, std::vector<std::string> dirs);
  // The directory of `controller` (v1), or the only one (v2); empty if not in use.
  std::string Dir(std::string_view controller) const;

  CgroupVersion version_;
  std::vector<std::string> dirs_;  // v1: one per controller, in kV1Controllers order
  bool removed_ = false;
};

}  // namespace moatless::sandbox::internal
