// The platform's schema: the numbered migrations of the moatless store, in order. Every later
// repository (principals, policies, secrets, deployments, queues, usage counters) appends its
// migrations here; a migration, once released, is never edited (ApplyMigrations refuses a
// renamed one), only followed by a new one. The list is constant data; safe from any thread.
#pragma once

#include <span>

#include "store/migrations.h"

namespace moatless::store {

std::span<const Migration> PlatformMigrations();

}  // namespace moatless::store
