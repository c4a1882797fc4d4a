// The seccomp filter every sandboxed program runs under: the system calls a function never needs
// and that widen the kernel's attack surface or reach outside the sandbox. docs/isolation.md
// lists them with the reasons (ForbiddenSyscalls() is that list).
//
// Everything else is allowed: the filter is a deny list on top of namespaces, dropped
// capabilities and no_new_privs, which already make most of these fail; the filter makes them
// fail before the kernel code behind them runs.
#pragma once

#include <linux/filter.h>

#include <span>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace moatless::sandbox {

enum class SeccompAction {
  kErrno,  // the call fails with EPERM (clone3: ENOSYS, so that libc falls back to clone)
  kKill,   // the whole process is killed (SIGSYS)
};

struct ForbiddenSyscall {
  std::string_view name;
  std::string_view why;
};
// Refused outright.
std::span<const ForbiddenSyscall> ForbiddenSyscalls();
// Besides: clone/unshare with any namespace flag, and clone3 (its flags cannot be inspected).

// The filter as a classic BPF program for this architecture (libseccomp), ready for
// prctl(PR_SET_SECCOMP) in the child.
core::Result<std::vector<sock_filter>> CompileSeccompFilter(SeccompAction action);

}  // namespace moatless::sandbox
