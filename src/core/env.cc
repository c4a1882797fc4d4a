#include "core/env.h"

namespace moatless::core {

std::unique_ptr<Env> Env::Real() {
  return std::make_unique<Env>(std::make_unique<RealClock>(), std::make_unique<SecureRandom>(),
                               std::make_unique<RealFileSystem>(),
                               std::make_unique<RealProcessLauncher>());
}

}  // namespace moatless::core
