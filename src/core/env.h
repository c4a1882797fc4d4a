// Env: the process-wide services every module may need, built once by the composition root and
// passed down by reference. There are no singletons in moatless; anything that would be one is
// reached through an Env. Env owns its parts; it is immovable, and its parts are thread-safe.
#pragma once

#include <memory>

#include "core/clock.h"
#include "core/filesystem.h"
#include "core/process.h"
#include "core/random.h"

namespace moatless::core {

class Env {
 public:
  Env(std::unique_ptr<Clock> clock, std::unique_ptr<Random> random, std::unique_ptr<FileSystem> fs,
      std::unique_ptr<ProcessLauncher> launcher)
      : clock_(std::move(clock)),
        random_(std::move(random)),
        fs_(std::move(fs)),
        launcher_(std::move(launcher)) {}
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  // The real thing: system clocks, libsodium's CSPRNG, POSIX files and processes.
  static std::unique_ptr<Env> Real();

  Clock& clock() const { return *clock_; }
  Random& random() const { return *random_; }
  FileSystem& fs() const { return *fs_; }
  ProcessLauncher& launcher() const { return *launcher_; }

 private:
  std::unique_ptr<Clock> clock_;
  std::unique_ptr<Random> random_;
  std::unique_ptr<FileSystem> fs_;
  std::unique_ptr<ProcessLauncher> launcher_;
};

}  // namespace moatless::core
