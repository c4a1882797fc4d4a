#include "store/schema.h"

#include <array>

namespace moatless::store {

std::span<const Migration> PlatformMigrations() {
  static const std::array<Migration, 1> kMigrations = {{
      {1, "create_meta",
       "CREATE TABLE meta (\n"
       "  key TEXT PRIMARY KEY,\n"
       "  value TEXT NOT NULL,\n"
       "  updated_at TEXT NOT NULL\n"
       ")"},
  }};
  return kMigrations;
}

}  // namespace moatless::store
