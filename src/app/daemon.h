// The composition root of `moatless serve`: builds every module from the settings, wires them,
// serves until SIGTERM/SIGINT, drains, and tears everything down in reverse order.
//
// Order of start-up (each step fails the start with a Status that names what failed):
// data dir lock -> audit log (verified in full) -> store (migrations) -> listeners -> the
// "moatless:ServeStart" audit record -> serving. Shutdown: "draining" (listeners closed,
// /readyz 503) -> in-flight requests finish or the drain deadline cuts them -> the
// "moatless:ServeStop" audit record -> store closed -> "stopped".
#pragma once

#include "app/settings.h"
#include "core/env.h"
#include "core/status.h"

namespace moatless::app {

// Blocks until a shutdown signal has been handled; OK after a clean drain.
core::Status RunDaemon(const ServeSettings& settings, core::Env& env);

}  // namespace moatless::app
