#include "sandbox/seccomp_policy.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <memory>

#include "core/filesystem.h"

namespace moatless::sandbox {
namespace {

constexpr std::array<ForbiddenSyscall, 47> kForbidden{{
    {"mount", "changes the filesystem view; the sandbox's is fixed before the program starts"},
    {"umount2", "could uncover what the sandbox's mounts hide"},
    {"pivot_root", "changes the root"},
    {"chroot", "changes the root; a classic step in escapes"},
    {"fsopen", "new mount API"},
    {"fsconfig", "new mount API"},
    {"fsmount", "new mount API"},
    {"fspick", "new mount API"},
    {"move_mount", "new mount API"},
    {"open_tree", "new mount API"},
    {"mount_setattr", "new mount API"},
    {"ptrace", "inspects and controls other processes"},
    {"process_vm_readv", "reads another process's memory"},
    {"process_vm_writev", "writes another process's memory"},
    {"kcmp", "compares kernel objects of other processes (an information leak)"},
    {"kexec_load", "replaces the running kernel"},
    {"kexec_file_load", "replaces the running kernel"},
    {"init_module", "loads kernel code"},
    {"finit_module", "loads kernel code"},
    {"delete_module", "unloads kernel code"},
    {"bpf", "loads programs into the kernel; a frequent source of kernel exploits"},
    {"perf_event_open", "kernel performance counters; side channels and kernel exploits"},
    {"userfaultfd", "lets a process stall kernel code on its page faults (exploit primitive)"},
    {"keyctl", "the kernel keyring is not namespaced"},
    {"add_key", "the kernel keyring is not namespaced"},
    {"request_key", "the kernel keyring is not namespaced"},
    {"unshare", "new namespaces (and with them new privileges) inside the sandbox"},
    {"setns", "joins other namespaces"},
    {"personality", "changes the execution domain (e.g. disables address randomisation)"},
    {"iopl", "raw port I/O"},
    {"ioperm", "raw port I/O"},
    {"settimeofday", "sets the host's clock"},
    {"clock_settime", "sets the host's clock"},
    {"clock_adjtime", "adjusts the host's clock"},
    {"adjtimex", "adjusts the host's clock"},
    {"swapon", "host swap configuration"},
    {"swapoff", "host swap configuration"},
    {"reboot", "reboots the host (or the PID namespace)"},
    {"acct", "process accounting to a file"},
    {"quotactl", "disk quota administration"},
    {"syslog", "reads the kernel log (addresses, other tenants' messages)"},
    {"open_by_handle_at", "opens files by handle, bypassing the mount namespace (known escape)"},
    {"name_to_handle_at", "produces handles for open_by_handle_at"},
    {"lookup_dcookie", "kernel profiling internals"},
    {"vhangup", "hangs up the controlling terminal"},
    {"io_uring_setup", "io_uring: a large kernel surface with a history of exploits"},
    {"nfsservctl", "kernel NFS server control"},
}};

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(static_cast<scmp_filter_ctx>(ctx)); }
};

}  // namespace

std::span<const ForbiddenSyscall> ForbiddenSyscalls() { return kForbidden; }

core::Result<std::vector<sock_filter>> CompileSeccompFilter(SeccompAction action) {
  std::unique_ptr<void, CtxDeleter> ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return core::InternalError("seccomp_init failed");
  const std::uint32_t deny =
      action == SeccompAction::kKill ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_ERRNO(EPERM);
  // The filter is installed after no_new_privs; libseccomp need not set it again.
  if (seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0) != 0) {
    return core::InternalError("seccomp_attr_set(NNP) failed");
  }
  for (const ForbiddenSyscall& forbidden : kForbidden) {
    const std::string name(forbidden.name);
    const int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (const int rc = seccomp_rule_add(ctx.get(), deny, nr, 0); rc != 0) {
      return core::InternalError("seccomp rule for " + name + ": " + std::strerror(-rc));
    }
  }
  // clone with any namespace flag is refused (one rule per flag); plain clone (threads, fork) is
  // not. clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc use clone.
  for (const unsigned long flag : {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                                   CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWTIME}) {
    if (const int rc = seccomp_rule_add(ctx.get(), deny, SCMP_SYS(clone), 1,
                                        SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
        rc != 0) {
      return core::InternalError(std::string("seccomp rule for clone: ") + std::strerror(-rc));
    }
  }
  const std::uint32_t clone3 =
      action == SeccompAction::kKill ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_ERRNO(ENOSYS);
  if (const int rc = seccomp_rule_add(ctx.get(), clone3, SCMP_SYS(clone3), 0); rc != 0) {
    return core::InternalError(std::string("seccomp rule for clone3: ") + std::strerror(-rc));
  }

  // libseccomp 2.5 exports to a file descriptor only.
  const int fd = ::memfd_create("moatless-seccomp", MFD_CLOEXEC);
  if (fd < 0) return core::ErrnoStatus("memfd_create", errno);
  std::vector<sock_filter> program;
  const int exported = seccomp_export_bpf(ctx.get(), fd);
  const off_t size = exported == 0 ? ::lseek(fd, 0, SEEK_END) : -1;
  if (size > 0 && size % sizeof(sock_filter) == 0) {
    program.resize(static_cast<std::size_t>(size) / sizeof(sock_filter));
    if (::pread(fd, program.data(), static_cast<std::size_t>(size), 0) != size) program.clear();
  }
  ::close(fd);
  if (program.empty()) return core::InternalError("exporting the seccomp filter failed");
  return program;
}

}  // namespace moatless::sandbox
