// FileSystem: file access behind an interface so tests can inject failures and the composition
// root decides what is real. RealFileSystem is POSIX; it is thread-safe (it holds no state).
//
// WriteFileAtomic is the durable way to replace a file: write a temporary file in the same
// folder, fsync it, rename it over the target, fsync the folder. After it returns OK the new
// contents survive a crash; before, the old contents do.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace moatless::core {

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual Result<std::string> ReadFile(const std::string& path) const = 0;
  // mode is applied to a newly created file (e.g. 0600 for keys).
  virtual Status WriteFileAtomic(const std::string& path, std::string_view contents,
                                 int mode = 0644) = 0;
  // Creates the folder and its parents with `mode` (existing folders are left as they are).
  virtual Status MakeDirs(const std::string& path, int mode = 0755) = 0;
  virtual bool Exists(const std::string& path) const = 0;
  virtual Status Remove(const std::string& path) = 0;
  // Names (not paths) of the entries of a folder, sorted.
  virtual Result<std::vector<std::string>> ListDir(const std::string& path) const = 0;
};

class RealFileSystem final : public FileSystem {
 public:
  Result<std::string> ReadFile(const std::string& path) const override;
  Status WriteFileAtomic(const std::string& path, std::string_view contents,
                         int mode = 0644) override;
  Status MakeDirs(const std::string& path, int mode = 0755) override;
  bool Exists(const std::string& path) const override;
  Status Remove(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& path) const override;
};

// "open /x/y: No such file or directory" style message for the current errno.
Status ErrnoStatus(std::string_view what, int err);

}  // namespace moatless::core
