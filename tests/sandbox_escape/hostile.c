/* hostile: one escape attempt per invocation, run inside a moatless sandbox by escape_test.
 *
 *   hostile ATTEMPT [ARGS...]
 *
 * Prints "tried: <what>" and "result: <outcome>" and exits 0 when the attempt was refused, 3 when
 * it succeeded (an escape), 2 on a usage error. <outcome> is the errno name of the refusal (e.g.
 * EPERM), or "SUCCEEDED". Attempts that the platform must stop from outside (fork bomb, memory,
 * runaway) print what they did and leave judgement to the test. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int refused(const char* what, int err) {
  printf("tried: %s\nresult: %s (%s)\n", what, strerrorname_np(err), strerror(err));
  return 0;
}

static int escaped(const char* what) {
  printf("tried: %s\nresult: SUCCEEDED\n", what);
  return 3;
}

/* Returns 0 if `rc` shows the call failed, 3 if it succeeded. */
static int judge(const char* what, long rc) { return rc < 0 ? refused(what, errno) : escaped(what); }

static int do_connect(int type, const char* ip, int port) {
  char what[128];
  snprintf(what, sizeof what, "%s connect to %s:%d", type == SOCK_STREAM ? "TCP" : "UDP", ip, port);
  int fd = socket(AF_INET, type, 0);
  if (fd < 0) return refused(what, errno);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, ip, &addr.sin_addr);
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) < 0) return refused(what, errno);
  /* UDP "connects" without traffic: a datagram must actually leave. */
  if (type == SOCK_DGRAM && send(fd, "x", 1, 0) < 0) return refused(what, errno);
  return escaped(what);
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc < 2) return 2;
  const char* a = argv[1];
  char what[512];

  if (!strcmp(a, "read") && argc == 3) {
    snprintf(what, sizeof what, "read %s", argv[2]);
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) return refused(what, errno);
    char buf[64];
    return read(fd, buf, sizeof buf) < 0 ? refused(what, errno) : escaped(what);
  }
  if (!strcmp(a, "write") && argc == 3) {
    snprintf(what, sizeof what, "write %s", argv[2]);
    return judge(what, open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644));
  }
  if (!strcmp(a, "tcp") && argc == 4) return do_connect(SOCK_STREAM, argv[2], atoi(argv[3]));
  if (!strcmp(a, "udp") && argc == 4) return do_connect(SOCK_DGRAM, argv[2], atoi(argv[3]));
  if (!strcmp(a, "ptrace-sibling")) {
    pid_t child = fork();
    if (child == 0) {
      pause();
      _exit(0);
    }
    long rc = ptrace(PTRACE_ATTACH, child, NULL, NULL);
    int err = errno;
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    errno = err;
    return judge("ptrace(PTRACE_ATTACH) a sibling process", rc);
  }
  if (!strcmp(a, "ptrace-parent")) {
    return judge("ptrace(PTRACE_ATTACH) PID 1 (the sandbox's init)",
                 ptrace(PTRACE_ATTACH, 1, NULL, NULL));
  }
  if (!strcmp(a, "mount")) {
    return judge("mount a tmpfs on /tmp", mount("none", "/tmp", "tmpfs", 0, NULL));
  }
  if (!strcmp(a, "remount-rw")) {
    return judge("remount / read-write", mount(NULL, "/", NULL, MS_REMOUNT, NULL));
  }
  if (!strcmp(a, "umount")) return judge("umount /proc", umount2("/proc", MNT_DETACH));
  if (!strcmp(a, "chroot")) return judge("chroot /tmp", chroot("/tmp"));
  if (!strcmp(a, "unshare")) {
    return judge("unshare(CLONE_NEWUSER | CLONE_NEWNS)", unshare(CLONE_NEWUSER | CLONE_NEWNS));
  }
  if (!strcmp(a, "clone-newuser")) {
    long rc = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
    if (rc == 0) _exit(0);
    if (rc > 0) waitpid((pid_t)rc, NULL, 0);
    return judge("clone(CLONE_NEWUSER): a new user namespace", rc);
  }
  if (!strcmp(a, "setns")) {
    int fd = open("/proc/self/ns/net", O_RDONLY);
    if (fd < 0) return refused("open /proc/self/ns/net", errno);
    return judge("setns (into a network namespace)", setns(fd, 0));
  }
  if (!strcmp(a, "init-module")) {
    return judge("init_module (load a kernel module)", syscall(SYS_init_module, "", 0, ""));
  }
  if (!strcmp(a, "finit-module")) {
    int fd = open("/dev/null", O_RDONLY);
    return judge("finit_module (load a kernel module)", syscall(SYS_finit_module, fd, "", 0));
  }
  if (!strcmp(a, "keyctl")) {
    return judge("keyctl(KEYCTL_GET_KEYRING_ID)", syscall(SYS_keyctl, 0, -3, 0));
  }
  if (!strcmp(a, "add-key")) {
    return judge("add_key to the session keyring",
                 syscall(SYS_add_key, "user", "moatless", "x", 1, -3));
  }
  if (!strcmp(a, "bpf")) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    return judge("bpf(BPF_MAP_CREATE)", syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
  }
  if (!strcmp(a, "perf")) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    return judge("perf_event_open", syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
  }
  if (!strcmp(a, "userfaultfd")) return judge("userfaultfd", syscall(SYS_userfaultfd, 0));
  if (!strcmp(a, "io-uring")) {
    char params[120] = {0};
    return judge("io_uring_setup", syscall(SYS_io_uring_setup, 1, params));
  }
  if (!strcmp(a, "settime")) {
    struct timespec ts = {0, 0};
    return judge("clock_settime(CLOCK_REALTIME)", clock_settime(CLOCK_REALTIME, &ts));
  }
  if (!strcmp(a, "reboot")) return judge("reboot", syscall(SYS_reboot, 0xfee1dead, 672274793, 0, 0));
  if (!strcmp(a, "sethostname")) return judge("sethostname", sethostname("owned", 5));
  if (!strcmp(a, "setuid-root")) return judge("setuid(0)", setuid(0));
  if (!strcmp(a, "euid")) {
    /* Run as a setuid-root binary: report the effective uid it got. */
    printf("tried: execute a setuid-root binary\neuid: %d\n", (int)geteuid());
    return geteuid() == 0 ? 3 : 0;
  }
  if (!strcmp(a, "kill-init")) {
    /* Were init killed, the kernel would kill this process with it: being alive afterwards
     * shows the signal was ignored. */
    if (kill(1, SIGKILL) < 0) return refused("kill -KILL 1 (the sandbox's init)", errno);
    usleep(200 * 1000);
    printf("tried: kill -KILL 1 (the sandbox's init)\nresult: ignored (init survives)\n");
    return 0;
  }
  if (!strcmp(a, "fork-bomb")) {
    printf("tried: fork until refused\n");
    int forks = 0;
    for (;;) {
      pid_t pid = fork();
      if (pid == 0) {
        pause();
        _exit(0);
      }
      if (pid < 0) {
        printf("result: %s after %d processes\n", strerrorname_np(errno), forks);
        return 0;
      }
      ++forks;
    }
  }
  if (!strcmp(a, "memory-bomb")) {
    printf("tried: allocate and touch memory without end\n");
    for (size_t mb = 0;; ++mb) {
      char* p = malloc(1 << 20);
      if (p == NULL) {
        printf("result: malloc failed at %zu MiB\n", mb);
        return 0;
      }
      memset(p, 1, 1 << 20);
    }
  }
  if (!strcmp(a, "fill-tmp")) {
    printf("tried: fill /tmp\n");
    int fd = open("/tmp/fill", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return refused("open /tmp/fill", errno);
    static char block[1 << 16];
    size_t written = 0;
    for (;;) {
      ssize_t n = write(fd, block, sizeof block);
      if (n < 0) {
        printf("result: %s after %zu KiB\n", strerrorname_np(errno), written >> 10);
        return 0;
      }
      written += (size_t)n;
    }
  }
  if (!strcmp(a, "spin")) {
    printf("tried: run forever\n");
    for (;;) {
    }
  }
  if (!strcmp(a, "linger")) {
    /* Leaves a daemonised grandchild behind, then exits. */
    printf("tried: leave a background process behind\n");
    if (fork() == 0) {
      setsid();
      if (fork() == 0) {
        for (;;) pause();
      }
      _exit(0);
    }
    return 0;
  }
  if (!strcmp(a, "list-proc")) {
    printf("tried: list processes\n");
    return execl("/bin/sh", "sh", "-c", "ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' '", NULL);
  }
  fprintf(stderr, "hostile: unknown attempt %s\n", a);
  return 2;
}
