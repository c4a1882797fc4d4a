// FunctionRegistry: the functions the platform runs, every published version of each, kept in the
// store (table `functions`, migration 4 of store/schema.cc).
//
// Every Publish makes a new immutable version, numbered 1, 2, 3... per function name; an older
// version is never changed or removed by a later publish, so invocations of it (in flight, or
// asked for by qualifier) keep running exactly what was published. A version's configuration is
// stored as JSON (FunctionConfigToJson) without the version, which is the row's number; a stored
// row is validated again when read, and a row that does not decode or validate is reported as
// kInternal ("stored configuration of function NAME version N is corrupt: ...") rather than run.
//
// Qualifiers as in Lambda: "" or "$LATEST" is the highest version, a decimal number is that
// version; aliases do not exist yet (anything else is kInvalidArgument).
//
// Errors: kInvalidArgument (AWS type InvalidParameterValueException) for a configuration that
// fails ValidateFunction or a malformed qualifier; kNotFound (ResourceNotFoundException) for a
// function or version that does not exist; the store's errors otherwise (kUnavailable: retry).
//
// Thread-safe: all state is in the store, which is; the Database and Clock must outlive the
// registry.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "runtime/function.h"
#include "store/database.h"

namespace moatless::runtime {

// Every field of the configuration except the version, as one JSON object: name, runtime
// (RuntimeName), handler, code_dir, memory_mb, timeout_ms, environment (object of strings),
// role_arn, reserved_concurrency (omitted when unset), egress (array of strings).
std::string FunctionConfigToJson(const FunctionConfig& function);
// The inverse: kInvalidArgument naming the problem if the text is not such an object (wrong
// types, missing fields, out-of-range numbers, unknown runtime). Unknown members are ignored. The
// result's version is "$LATEST"; it is not validated (ValidateFunction is the caller's call).
core::Result<FunctionConfig> FunctionConfigFromJson(std::string_view json);

class FunctionRegistry {
 public:
  FunctionRegistry(store::Database& db, const core::Clock& clock);
  FunctionRegistry(const FunctionRegistry&) = delete;
  FunctionRegistry& operator=(const FunctionRegistry&) = delete;

  // Validates `function` (its incoming version is ignored) and stores it, durably, as the next
  // version of its name (the first is 1). Returns it as stored, `version` set to that number.
  core::Result<FunctionConfig> Publish(FunctionConfig function);
  // The same inside a caller's write transaction, so that versions of several functions become
  // visible together, or not at all (an app deployment).
  core::Result<FunctionConfig> PublishIn(store::Transaction& tx, FunctionConfig function);
  // One version, by qualifier (see above).
  core::Result<FunctionConfig> Get(std::string_view name, std::string_view qualifier = "");
  // The highest version of every function, ordered by name.
  core::Result<std::vector<FunctionConfig>> List();
  // Every version of one function, oldest first; kNotFound if it has none.
  core::Result<std::vector<FunctionConfig>> Versions(std::string_view name);
  // Removes every version of the function and its pending asynchronous invocations (an attempt
  // already running finishes; it is not retried). kNotFound if the function has no version.
  core::Status Delete(std::string_view name);
  core::Status DeleteIn(store::Transaction& tx, std::string_view name);

 private:
  store::Database& db_;
  const core::Clock& clock_;
};

}  // namespace moatless::runtime
