// Functions: how the gateway runs a function — a route's integration or an authorizer — at the
// exact version the app version deployed. The composition root implements it on the platform's
// function runtime (registry + invoker); tests use fakes.
//
// Invoke blocks the calling thread for the whole invocation: the gateway calls it on its blocking
// pool, never on an I/O thread. Implementations must be thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "runtime/invoker.h"

namespace moatless::gateway {

class Functions {
 public:
  virtual ~Functions() = default;
  // A function error is an OK result with function_error set; an error Status means the platform
  // could not run it (NotFound, a throttle: ResourceExhausted, a sandbox that did not start).
  virtual core::Result<runtime::InvokeResult> Invoke(std::string_view function,
                                                     std::int64_t version, std::string payload,
                                                     std::string request_id) = 0;
};

}  // namespace moatless::gateway
