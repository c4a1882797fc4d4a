// The store conformance suite: one set of tests that every store::Database backend must pass, so
// that repositories written once on the interface behave the same on SQLite and PostgreSQL.
//
// A backend joins by implementing Backend (a fresh, empty database per test) and instantiating the
// suite once in its own test binary:
//
//   MOATLESS_INSTANTIATE_STORE_CONFORMANCE(Sqlite, BackendFactory{
//       .name = "Sqlite", .make = [] { return MakeSqliteBackend(); }});
//
// The suite covers value round trips (every type, empty and binary blobs, 1 MiB values), typed
// row reads, commit and rollback, aborted transactions, constraint codes, read-only transactions,
// parameter and statement checks, injection through parameters, migrations, concurrent writers
// and readers. Test-only (links GoogleTest). Backends and test bodies may use several threads; a
// Backend object itself is used from the test's main thread only.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <span>
#include <string>

#include "core/status.h"
#include "store/database.h"
#include "store/migrations.h"

namespace moatless::store::conformance {

// One database under test, owned by one test.
class Backend {
 public:
  virtual ~Backend() = default;
  // Opens the test's database and applies `migrations`. The first call of a test sees an empty
  // database; later calls reopen the same database (the suite closes the previous Database
  // first).
  virtual core::Result<std::unique_ptr<Database>> Open(std::span<const Migration> migrations) = 0;
};

struct BackendFactory {
  std::string name;  // gtest parameter name, e.g. "Sqlite"
  std::function<core::Result<std::unique_ptr<Backend>>()> make;
};

void PrintTo(const BackendFactory& factory, std::ostream* os);

class StoreConformanceTest : public ::testing::TestWithParam<BackendFactory> {
 protected:
  void SetUp() override;

  // Opens the test database with the suite's schema (kv, counters, users, sessions, accounts).
  std::unique_ptr<Database> OpenWithSchema();
  Backend& backend() { return *backend_; }

 private:
  std::unique_ptr<Backend> backend_;
};

// The suite's schema, in the portable subset.
std::span<const Migration> SuiteSchema();

// A new empty folder under the test temp dir (for file-based backends). Fails the test (fatal
// through MOATLESS_CHECK) only if the temp dir is unusable.
std::string MakeTestDir();

// Referenced by the instantiation macro so that the suite's object file, which holds the test
// registrations, is linked from the static library.
int LinkStoreConformanceSuite();

}  // namespace moatless::store::conformance

// Instantiates the suite for one backend. Use at namespace scope of a test file (it declares the
// alias StoreConformanceTest there, which gtest needs as a plain identifier).
#define MOATLESS_INSTANTIATE_STORE_CONFORMANCE(prefix, ...)                               \
  using StoreConformanceTest = ::moatless::store::conformance::StoreConformanceTest;      \
  INSTANTIATE_TEST_SUITE_P(prefix, StoreConformanceTest, ::testing::Values(__VA_ARGS__),  \
                           [](const auto& param_info) { return param_info.param.name; }); \
  [[maybe_unused]] static const int moatless_store_conformance_link_##prefix =            \
      ::moatless::store::conformance::LinkStoreConformanceSuite()

// Status assertions for tests (defined here unless another test header already did). Inside a
// lambda returning Status, use RETURN_IF_ERROR / ASSIGN_OR_RETURN instead (gtest's ASSERT_*
// return void).
#ifndef ASSERT_OK
#define ASSERT_OK(expr) \
  MOATLESS_TEST_STATUS_IMPL(ASSERT_TRUE, MOATLESS_CONCAT(moatless_s_, __LINE__), expr)
#endif
#ifndef EXPECT_OK
#define EXPECT_OK(expr) \
  MOATLESS_TEST_STATUS_IMPL(EXPECT_TRUE, MOATLESS_CONCAT(moatless_s_, __LINE__), expr)
#endif
#define MOATLESS_TEST_STATUS_IMPL(check, var, expr)                                  \
  do {                                                                               \
    const ::moatless::core::Status var = ::moatless::core::internal::AsStatus(expr); \
    check(var.ok()) << var;                                                          \
  } while (0)
#ifndef EXPECT_STATUS_CODE
#define EXPECT_STATUS_CODE(expr, expected_code) \
  MOATLESS_EXPECT_STATUS_CODE_IMPL(MOATLESS_CONCAT(moatless_s_, __LINE__), expr, expected_code)
#define MOATLESS_EXPECT_STATUS_CODE_IMPL(var, expr, expected_code)                   \
  do {                                                                               \
    const ::moatless::core::Status var = ::moatless::core::internal::AsStatus(expr); \
    EXPECT_EQ(::moatless::core::StatusCodeName(var.code()),                          \
              ::moatless::core::StatusCodeName(expected_code))                       \
        << var;                                                                      \
  } while (0)
#endif
#ifndef ASSERT_OK_AND_ASSIGN
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  MOATLESS_ASSERT_OK_AND_ASSIGN_IMPL(MOATLESS_CONCAT(moatless_test_result_, __LINE__), lhs, expr)
#define MOATLESS_ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                       \
  ASSERT_TRUE(tmp.ok()) << tmp.status();                   \
  lhs = std::move(tmp).value()
#endif
