#include "app/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace moatless::app {
namespace {
constexpr std::size_t kAuditKeyBytes = 32;

std::string OctalMode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}
}  // namespace

core::Status CheckPrivateFile(const std::string& path, std::string_view what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return core::ErrnoStatus(std::string(what) + " " + path, errno);
  if (!S_ISREG(st.st_mode)) {
    return core::FailedPreconditionError(std::string(what) + " " + path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    return core::FailedPreconditionError(std::string(what) + " " + path +
                                         " is accessible to other users (mode " +
                                         OctalMode(st.st_mode) + "); chmod 600 it");
  }
  return core::Status::Ok();
}

core::Result<std::unique_ptr<DataDir>> DataDir::Open(const std::string& path, core::Env& env) {
  const bool existed = env.fs().Exists(path);
  RETURN_IF_ERROR(env.fs().MakeDirs(path, 0700).Annotate("data dir"));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return core::ErrnoStatus("data dir " + path, errno);
  if (!existed)
    ::chmod(path.c_str(), 0700);  // MakeDirs is subject to the umask
  else if ((st.st_mode & 077) != 0) {
    return core::FailedPreconditionError("data dir " + path +
                                         " is accessible to other users (mode " +
                                         OctalMode(st.st_mode) + "); chmod 700 it");
  }
  for (const char* sub : {"/audit", "/keys"}) {
    RETURN_IF_ERROR(env.fs().MakeDirs(path + sub, 0700).Annotate("data dir"));
  }

  const std::string lock_path = path + "/lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return core::ErrnoStatus("open " + lock_path, errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char owner[32] = {0};
    const ssize_t n = ::pread(fd, owner, sizeof owner - 1, 0);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return core::FailedPreconditionError(
          "data dir " + path + " is in use by another moatless process" +
          (n > 0 ? " (pid " + std::string(owner, static_cast<std::size_t>(n)) + ")" : ""));
    }
    return core::ErrnoStatus("lock " + lock_path, err);
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    const int err = errno;
    ::close(fd);
    return core::ErrnoStatus("write " + lock_path, err);
  }
  return std::unique_ptr<DataDir>(new DataDir(path, fd));
}

DataDir::~DataDir() { ::close(lock_fd_); }  // releases the flock

core::Result<core::SecretBytes> DataDir::LoadOrCreateAuditKey(core::Env& env) const {
  return LoadOrCreateKey(env, AuditKeyPath(), "audit key");
}

core::Result<core::SecretBytes> DataDir::LoadOrCreateMasterKey(core::Env& env) const {
  return LoadOrCreateKey(env, MasterKeyPath(), "master key");
}

core::Result<core::SecretBytes> DataDir::LoadOrCreateKey(core::Env& env, const std::string& path,
                                                         std::string_view what) const {
  if (!env.fs().Exists(path)) {
    core::SecretBytes key;
    key.Resize(kAuditKeyBytes);
    env.random().Fill(key.MutableBytes());
    RETURN_IF_ERROR(env.fs().WriteFileAtomic(path, key.Reveal(), 0600));
  }
  RETURN_IF_ERROR(CheckPrivateFile(path, what));
  ASSIGN_OR_RETURN(std::string bytes, env.fs().ReadFile(path));
  core::SecretBytes key = core::SecretBytes::TakeFrom(bytes);
  if (key.size() != kAuditKeyBytes) {
    return core::FailedPreconditionError(std::string(what) + " " + path +
                                         " must be exactly 32 bytes");
  }
  return key;
}

}  // namespace moatless::app
