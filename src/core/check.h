// MOATLESS_CHECK: broken invariants (bugs), as opposed to expected failures (Status).
//
// A failed check prints the condition, the location and the message to stderr and aborts the
// process. Never use it for anything a caller, a request or the environment can cause.
#pragma once

#include <string_view>

namespace moatless::core::internal {
[[noreturn]] void CheckFailed(const char* condition, const char* file, int line,
                              std::string_view message);
}  // namespace moatless::core::internal

#define MOATLESS_CHECK(condition, message)                                                \
  do {                                                                                    \
    if (!(condition)) [[unlikely]]                                                        \
      ::moatless::core::internal::CheckFailed(#condition, __FILE__, __LINE__, (message)); \
  } while (0)
