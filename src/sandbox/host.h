// What isolation the host offers, probed at start-up, and what moatless will use: the input of
// Sandboxer::Create and the body of `moatless doctor`.
#pragma once

#include <string>
#include <vector>

namespace moatless::sandbox {

enum class CgroupVersion { kNone, kV1, kV2 };

struct HostSupport {
  bool running_as_root = false;
  bool user_namespaces = false;  // a process can create a user namespace with the others inside
  std::string user_namespaces_detail;
  bool seccomp = false;  // seccomp filters can be installed
  CgroupVersion cgroup = CgroupVersion::kNone;
  // v2: the cgroup2 mount; v1: the directory holding one mount per controller.
  std::string cgroup_root;
  // Controllers moatless needs that this host can give: memory, pids, cpu (+cpuacct on v1),
  // freezer (v1; cgroup.freeze on v2).
  std::vector<std::string> cgroup_controllers;
  // The operator accepted weaker isolation (--insecure-allow-weak-isolation): missing cgroup
  // limits or seccomp are then skipped instead of refused. User namespaces are never optional.
  bool insecure_allowed = false;

  // What full isolation needs and this host lacks, one line each; empty when nothing.
  std::vector<std::string> Missing() const;
  // Several lines for people: each layer, whether the host has it, what moatless will use.
  std::string Report() const;
};

// Probes the running host (creates and removes a short-lived child in new namespaces, reads
// /proc and the cgroup mounts). Never fails: what cannot be determined counts as missing.
HostSupport ProbeHost();

}  // namespace moatless::sandbox
