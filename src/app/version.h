// Version and build information, fixed at build time from CMake's project version.
#pragma once

namespace moatless::app {

inline constexpr const char* kVersion = MOATLESS_VERSION;
inline constexpr const char* kBuildInfo = MOATLESS_BUILD_INFO;

}  // namespace moatless::app
