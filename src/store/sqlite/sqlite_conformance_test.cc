// The store conformance suite against the SQLite backend: one database file in a fresh temp
// folder per test.
#include <filesystem>

#include "core/clock.h"
#include "store/conformance/conformance.h"
#include "store/sqlite/sqlite_database.h"

namespace moatless::store {
namespace {

class SqliteBackend final : public conformance::Backend {
 public:
  SqliteBackend() : dir_(conformance::MakeTestDir()) {}
  ~SqliteBackend() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  core::Result<std::unique_ptr<Database>> Open(std::span<const Migration> migrations) override {
    return OpenSqlite(dir_ + "/store.db", {.clock = &clock_, .migrations = migrations});
  }

 private:
  core::RealClock clock_;
  std::string dir_;
};

MOATLESS_INSTANTIATE_STORE_CONFORMANCE(
    Sqlite,
    conformance::BackendFactory{
        .name = "Sqlite", .make = []() -> core::Result<std::unique_ptr<conformance::Backend>> {
          return std::unique_ptr<conformance::Backend>(std::make_unique<SqliteBackend>());
        }});

}  // namespace
}  // namespace moatless::store
