// ApiKeyStore: the API keys clients present in the x-api-key header of gateway routes. A key
// belongs to one app, one stage and one usage plan (usage_meter.h enforces the plan), has a
// display name, and can be disabled without being deleted. Keys live in the store (table
// `gateway_api_keys`, migration 7 of store/schema.cc); their quota use in `gateway_quota_usage`.
//
// The value of a key is 40 random characters of [A-Za-z0-9] (over 230 bits) drawn from the
// Random passed in (the CSPRNG in production). It is handed to the caller once, in NewApiKey, as
// SecretBytes; the store keeps only its SHA-256, so a copy of the database does not give working
// keys. Values never appear in error messages or logs.
//
// Lookup runs on every gateway request, so its results (found, disabled, or not found) are kept
// in a bounded in-memory cache for `cache_ttl`. A change made through this ApiKeyStore
// (SetEnabled, SetPlan, Delete) drops the affected entry before the call returns, so the next
// Lookup sees it; a change made elsewhere (another node on a shared store, another process) is
// seen within cache_ttl. Every write is one durable store transaction.
//
// Errors: kInvalidArgument for a malformed app, stage, plan or name (the message says which rule
// failed); kNotFound for an unknown id or a value that is no key; the store's errors otherwise
// (kUnavailable: retry).
//
// Thread-safe: any number of threads may call any method at once. The Database, Random and
// Clock must outlive the store.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/random.h"
#include "core/secret_bytes.h"
#include "core/status.h"
#include "store/database.h"

namespace moatless::gateway {

struct ApiKey {
  std::string id;     // "key-" + 12 characters of a-z2-7
  std::string app;    // 1-32 of a-z, 0-9, '-', starting with a letter (as manifest app names)
  std::string stage;  // 1-16 of the same (as manifest stage names)
  std::string plan;   // 1-64 of A-Za-z0-9 '_' '-'
  std::string name;   // 0-128 printable ASCII characters
  bool enabled = true;
  core::WallTime created;  // millisecond precision, as stored
  core::WallTime updated;
  friend bool operator==(const ApiKey&, const ApiKey&) = default;
};

// A key as created: the only place its value ever exists outside the client.
struct NewApiKey {
  ApiKey key;
  core::SecretBytes value;
};

struct ApiKeyStoreOptions {
  // How long a Lookup result is trusted; bounds how late a change made elsewhere is seen.
  // 0 turns the cache off.
  std::chrono::milliseconds cache_ttl{5000};
  // Cached Lookup results; 0 turns the cache off. Results for values that are no key take at
  // most a quarter of it, so a flood of wrong values cannot push out the keys in use.
  std::size_t max_cached = 10000;
};

class ApiKeyStore {
 public:
  ApiKeyStore(store::Database& db, core::Random& random, const core::Clock& clock,
              ApiKeyStoreOptions options = {});
  ApiKeyStore(const ApiKeyStore&) = delete;
  ApiKeyStore& operator=(const ApiKeyStore&) = delete;

  // A new enabled key with a fresh id and value.
  core::Result<NewApiKey> Create(std::string_view app, std::string_view stage,
                                 std::string_view plan, std::string_view name);
  // Keys of one app and/or stage ("" = any), ordered by app, stage, creation time, id.
  core::Result<std::vector<ApiKey>> List(std::string_view app = "", std::string_view stage = "");
  core::Result<ApiKey> Get(std::string_view id);
  core::Status SetEnabled(std::string_view id, bool enabled);
  // Moves the key to another usage plan. Its quota use under the old plan stays behind (quota is
  // counted per key and plan); the caller tells its UsageMeter to Forget the key.
  core::Status SetPlan(std::string_view id, std::string_view plan);
  // Removes the key and its quota use rows in one transaction.
  core::Status Delete(std::string_view id);
  // The key a presented value belongs to, enabled or not (the caller decides); kNotFound when
  // none. A value that cannot be a key (not 20-128 of [A-Za-z0-9], as AWS API keys) is kNotFound
  // without a store read.
  core::Result<ApiKey> Lookup(std::string_view value);

 private:
  struct CacheEntry {
    std::optional<ApiKey> key;  // nullopt: the value is no key
    core::MonoTime expires;
    std::list<std::string>::iterator lru;  // in positive_lru_ or negative_lru_
  };

  // Runs a write that changes the key `id` and returns its value hash, then drops that hash from
  // the cache.
  core::Status UpdateKey(std::string_view id, std::string_view what,
                         const std::function<core::Status(store::Transaction&)>& change);
  void Invalidate(const std::string& value_hash);
  void EraseLocked(std::unordered_map<std::string, CacheEntry>::iterator it);
  void InsertLocked(const std::string& value_hash, std::optional<ApiKey> key, core::MonoTime now);

  store::Database& db_;
  core::Random& random_;
  const core::Clock& clock_;
  const ApiKeyStoreOptions options_;

  std::mutex mu_;
  // By the lower-case hex SHA-256 of the value. Guarded by mu_, as are the rest.
  std::unordered_map<std::string, CacheEntry> cache_;
  std::list<std::string> positive_lru_;  // most recently used first
  std::list<std::string> negative_lru_;
  // Moves on every invalidation: a Lookup whose store read began before one does not cache what
  // it read, which may predate the change.
  std::uint64_t generation_ = 0;
};

}  // namespace moatless::gateway
