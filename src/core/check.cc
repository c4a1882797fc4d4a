#include "core/check.h"

#include <cstdio>
#include <cstdlib>

namespace moatless::core::internal {

void CheckFailed(const char* condition, const char* file, int line, std::string_view message) {
  std::fprintf(stderr, "FATAL %s:%d: check failed: %s: %.*s\n", file, line, condition,
               static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
  std::abort();
}

}  // namespace moatless::core::internal
