// Tests only: what the sandbox, escape and runtime tests share — whether this host can run them,
// reading an environment's output, and removing the per-test cgroup parents they create.
#pragma once

#include <unistd.h>

#include <string>

#include "sandbox/host.h"

namespace moatless::sandbox::testing {

// Empty when `host` gives full isolation; otherwise why not, for GTEST_SKIP().
inline std::string MissingIsolation(const HostSupport& host) {
  std::string missing;
  for (const std::string& m : host.Missing()) missing += (missing.empty() ? "" : "; ") + m;
  return missing;
}

// Reads `fd` to EOF.
inline std::string Drain(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

// Removes the (empty) cgroup parent a test's Sandboxer created, in every hierarchy.
inline void RemoveCgroupParent(const std::string& parent) {
  for (const char* controller : {"memory", "pids", "cpu", "cpuacct", "freezer", ""}) {
    ::rmdir((std::string("/sys/fs/cgroup/") + controller + "/" + parent).c_str());
  }
}

}  // namespace moatless::sandbox::testing
