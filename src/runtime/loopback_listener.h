// Opening a listening TCP socket on 127.0.0.1 in the calling thread's network namespace: what the
// Runtime API and the egress proxy do from a sandbox's in_network_namespace hook, so that the
// socket lives in the sandbox's namespace while the process serves it from the host's.
// Stateless free functions; thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace moatless::runtime {

// A bound, listening, close-on-exec TCP socket on 127.0.0.1:`port` (0: a free port) in the
// calling thread's network namespace; the caller owns the descriptor. `what` names the listener
// in the error ("listen on 127.0.0.1:9001 for the Runtime API: Address already in use").
core::Result<int> ListenOnLoopback(std::uint16_t port, std::string_view what);

// The port a bound socket listens on (to learn the one a port-0 bind picked).
core::Result<std::uint16_t> LocalPort(int fd);

}  // namespace moatless::runtime
