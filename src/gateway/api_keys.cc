#include "gateway/api_keys.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <utility>

#include "core/check.h"
#include "core/ids.h"

namespace moatless::gateway {
namespace {

constexpr std::size_t kValueLength = 40;
// What Lookup accepts as a value: the bounds of AWS API Gateway's imported keys, so keys made
// elsewhere can be brought in later without changing the check.
constexpr std::size_t kMinValueLength = 20;
constexpr std::size_t kMaxValueLength = 128;
constexpr std::size_t kIdRandomLength = 12;
constexpr std::size_t kMaxAppLength = 32;
constexpr std::size_t kMaxStageLength = 16;
constexpr std::size_t kMaxPlanLength = 64;
constexpr std::size_t kMaxNameLength = 128;
// Two random 60-bit ids (or 238-bit values) colliding is not going to happen; the retry only
// turns the impossible into a non-event instead of an error.
constexpr int kCreateAttempts = 3;

constexpr std::string_view kColumns = "id, app, stage, plan, name, enabled, created_ms, updated_ms";

// Names come from callers: keep what an error message repeats of them short.
std::string Shown(std::string_view s) {
  return s.size() <= 64 ? std::string(s) : std::string(s.substr(0, 64)) + "...";
}

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsPrintableAscii(char c) { return c >= 0x20 && c <= 0x7e; }

// The rule of manifest app and stage names (manifest/manifest.cc), which this module cannot
// include: keys are made for the app stages the deployer creates.
bool IsLowerName(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max || s[0] < 'a' || s[0] > 'z') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

core::Status ValidateApp(std::string_view app) {
  if (IsLowerName(app, kMaxAppLength)) return core::Status::Ok();
  return core::InvalidArgumentError("'" + Shown(app) +
                                    "' is not an app name: 1-32 of a-z, 0-9 and '-', starting "
                                    "with a letter");
}

core::Status ValidateStage(std::string_view stage) {
  if (IsLowerName(stage, kMaxStageLength)) return core::Status::Ok();
  return core::InvalidArgumentError("'" + Shown(stage) +
                                    "' is not a stage name: 1-16 of a-z, 0-9 and '-', starting "
                                    "with a letter");
}

core::Status ValidatePlan(std::string_view plan) {
  const bool ok = !plan.empty() && plan.size() <= kMaxPlanLength &&
                  std::all_of(plan.begin(), plan.end(),
                              [](char c) { return IsAlnum(c) || c == '_' || c == '-'; });
  if (ok) return core::Status::Ok();
  return core::InvalidArgumentError("'" + Shown(plan) +
                                    "' is not a usage plan name: 1-64 of A-Z, a-z, 0-9, '_' and "
                                    "'-'");
}

core::Status ValidateName(std::string_view name) {
  // The name is not repeated: it may be anything, including bytes a log should not carry.
  if (name.size() > kMaxNameLength) {
    return core::InvalidArgumentError("an API key name is at most 128 characters");
  }
  if (!std::all_of(name.begin(), name.end(), IsPrintableAscii)) {
    return core::InvalidArgumentError("an API key name holds only printable ASCII characters");
  }
  return core::Status::Ok();
}

bool IsValueShape(std::string_view value) {
  return value.size() >= kMinValueLength && value.size() <= kMaxValueLength &&
         std::all_of(value.begin(), value.end(), IsAlnum);
}

// Ids are ours ("key-..."); anything that could not be one is answered without the store, which
// would refuse text that is not UTF-8 with another code.
bool IsIdShape(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), IsPrintableAscii);
}

core::Status KeyNotFound(std::string_view id) {
  return core::NotFoundError("API key not found: " + Shown(id));
}

core::Status ValueNotFound() { return core::NotFoundError("API key not found"); }

// Unsalted SHA-256 is the right hash here, unlike for passwords: a value is 238 random bits, so
// there is nothing to guess, and a fast hash keeps Lookup cheap on every request.
std::string Sha256Hex(std::string_view value) {
  std::array<unsigned char, 32> digest{};
  unsigned int length = 0;
  const int ok =
      EVP_Digest(value.data(), value.size(), digest.data(), &length, EVP_sha256(), nullptr);
  MOATLESS_CHECK(ok == 1 && length == digest.size(), "EVP_Digest(SHA-256) failed");
  return core::HexEncode(
      std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

core::SecretBytes NewValue(core::Random& random) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  // Bytes at or above 248 (= 4 * 62) are rejected, so every character is equally likely. The
  // random bytes are as secret as the value they become, hence SecretBytes for both.
  constexpr unsigned kLimit = 256 - 256 % kAlphabet.size();
  core::SecretBytes value;
  value.Resize(kValueLength);
  core::SecretBytes pool;
  pool.Resize(kValueLength + 8);
  std::size_t filled = 0;
  while (filled < kValueLength) {
    random.Fill(pool.MutableBytes());
    for (std::uint8_t b : pool.RevealBytes()) {
      if (b >= kLimit) continue;
      value.MutableBytes()[filled++] = static_cast<std::uint8_t>(kAlphabet[b % kAlphabet.size()]);
      if (filled == kValueLength) break;
    }
  }
  return value;
}

std::string NewKeyId(core::Random& random) {
  std::string suffix = core::RandomBase32(random, kIdRandomLength);
  std::transform(suffix.begin(), suffix.end(), suffix.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return "key-" + suffix;
}

std::int64_t ToMs(core::WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

core::WallTime FromMs(std::int64_t ms) {
  return core::WallTime(
      std::chrono::duration_cast<core::WallTime::duration>(std::chrono::milliseconds(ms)));
}

core::Result<ApiKey> DecodeKey(const store::Row& row) {
  ApiKey key;
  ASSIGN_OR_RETURN(key.id, row.GetText("id"));
  ASSIGN_OR_RETURN(key.app, row.GetText("app"));
  ASSIGN_OR_RETURN(key.stage, row.GetText("stage"));
  ASSIGN_OR_RETURN(key.plan, row.GetText("plan"));
  ASSIGN_OR_RETURN(key.name, row.GetText("name"));
  ASSIGN_OR_RETURN(key.enabled, row.GetBool("enabled"));
  ASSIGN_OR_RETURN(const std::int64_t created_ms, row.GetInt("created_ms"));
  ASSIGN_OR_RETURN(const std::int64_t updated_ms, row.GetInt("updated_ms"));
  key.created = FromMs(created_ms);
  key.updated = FromMs(updated_ms);
  return key;
}

std::string Select(std::string_view where) {
  return "SELECT " + std::string(kColumns) + " FROM gateway_api_keys " + std::string(where);
}

}  // namespace

ApiKeyStore::ApiKeyStore(store::Database& db, core::Random& random, const core::Clock& clock,
                         ApiKeyStoreOptions options)
    : db_(db), random_(random), clock_(clock), options_(options) {}

core::Result<NewApiKey> ApiKeyStore::Create(std::string_view app, std::string_view stage,
                                            std::string_view plan, std::string_view name) {
  RETURN_IF_ERROR(ValidateApp(app));
  RETURN_IF_ERROR(ValidateStage(stage));
  RETURN_IF_ERROR(ValidatePlan(plan));
  RETURN_IF_ERROR(ValidateName(name));
  const std::string insert = "INSERT INTO gateway_api_keys (" + std::string(kColumns) +
                             ", value_sha256) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)";
  for (int attempt = 1;; ++attempt) {
    const core::WallTime now = FromMs(ToMs(clock_.Now()));
    NewApiKey created{.key = ApiKey{.id = NewKeyId(random_),
                                    .app = std::string(app),
                                    .stage = std::string(stage),
                                    .plan = std::string(plan),
                                    .name = std::string(name),
                                    .enabled = true,
                                    .created = now,
                                    .updated = now},
                      .value = NewValue(random_)};
    const std::string hash = Sha256Hex(created.value.Reveal());
    const ApiKey& k = created.key;
    core::Status status = db_.Write([&](store::Transaction& tx) {
      return tx.Exec(insert, {k.id, k.app, k.stage, k.plan, k.name, ToMs(now), ToMs(now), hash})
          .status();
    });
    if (status.code() == core::StatusCode::kAlreadyExists && attempt < kCreateAttempts) continue;
    if (!status.ok()) return status.Annotate("creating API key");
    // A Lookup of this value before it existed may have been cached as "no key".
    Invalidate(hash);
    return created;
  }
}

core::Result<std::vector<ApiKey>> ApiKeyStore::List(std::string_view app, std::string_view stage) {
  if (!app.empty()) RETURN_IF_ERROR(ValidateApp(app));
  if (!stage.empty()) RETURN_IF_ERROR(ValidateStage(stage));
  std::string where;
  std::vector<store::Value> params;
  if (!app.empty() && !stage.empty()) {
    where = "WHERE app = ? AND stage = ? ";
    params = {app, stage};
  } else if (!app.empty()) {
    where = "WHERE app = ? ";
    params = {app};
  } else if (!stage.empty()) {
    where = "WHERE stage = ? ";
    params = {stage};
  }
  const std::string sql = Select(where + "ORDER BY app, stage, created_ms, id");
  return store::TransactValue(db_, {.access = store::Access::kReadOnly},
                              [&](store::Transaction& tx) -> core::Result<std::vector<ApiKey>> {
                                ASSIGN_OR_RETURN(const std::vector<store::Row> rows,
                                                 tx.Query(sql, params));
                                std::vector<ApiKey> keys;
                                keys.reserve(rows.size());
                                for (const store::Row& row : rows) {
                                  ASSIGN_OR_RETURN(ApiKey key, DecodeKey(row));
                                  keys.push_back(std::move(key));
                                }
                                return keys;
                              });
}

core::Result<ApiKey> ApiKeyStore::Get(std::string_view id) {
  if (!IsIdShape(id)) return KeyNotFound(id);
  return store::TransactValue(db_, {.access = store::Access::kReadOnly},
                              [&](store::Transaction& tx) -> core::Result<ApiKey> {
                                ASSIGN_OR_RETURN(const std::optional<store::Row> row,
                                                 tx.QueryOptional(Select("WHERE id = ?"), {id}));
                                if (!row) return KeyNotFound(id);
                                return DecodeKey(*row);
                              });
}

core::Status ApiKeyStore::SetEnabled(std::string_view id, bool enabled) {
  return UpdateKey(id, "updating API key", [&](store::Transaction& tx) {
    return tx
        .Exec("UPDATE gateway_api_keys SET enabled = ?, updated_ms = ? WHERE id = ?",
              {enabled, ToMs(clock_.Now()), id})
        .status();
  });
}

core::Status ApiKeyStore::SetPlan(std::string_view id, std::string_view plan) {
  RETURN_IF_ERROR(ValidatePlan(plan));
  return UpdateKey(id, "updating API key", [&](store::Transaction& tx) {
    return tx
        .Exec("UPDATE gateway_api_keys SET plan = ?, updated_ms = ? WHERE id = ?",
              {plan, ToMs(clock_.Now()), id})
        .status();
  });
}

core::Status ApiKeyStore::Delete(std::string_view id) {
  return UpdateKey(id, "deleting API key", [&](store::Transaction& tx) {
    RETURN_IF_ERROR(tx.Exec("DELETE FROM gateway_quota_usage WHERE key_id = ?", {id}));
    return tx.Exec("DELETE FROM gateway_api_keys WHERE id = ?", {id}).status();
  });
}

core::Status ApiKeyStore::UpdateKey(
    std::string_view id, std::string_view what,
    const std::function<core::Status(store::Transaction&)>& change) {
  if (!IsIdShape(id)) return KeyNotFound(id);
  std::string hash;
  core::Status status = db_.Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(
        const std::optional<store::Row> row,
        tx.QueryOptional("SELECT value_sha256 FROM gateway_api_keys WHERE id = ?", {id}));
    if (!row) return KeyNotFound(id);
    ASSIGN_OR_RETURN(hash, row->GetText("value_sha256"));
    return change(tx);
  });
  if (status.code() == core::StatusCode::kNotFound) return status;
  if (!status.ok()) return status.Annotate(what);
  // After the commit: a Lookup that starts from here reads the new row.
  Invalidate(hash);
  return core::Status::Ok();
}

core::Result<ApiKey> ApiKeyStore::Lookup(std::string_view value) {
  if (!IsValueShape(value)) return ValueNotFound();
  const std::string hash = Sha256Hex(value);
  const bool caching = options_.max_cached > 0 && options_.cache_ttl.count() > 0;
  const core::MonoTime now = clock_.MonotonicNow();
  std::uint64_t generation = 0;
  if (caching) {
    std::lock_guard lock(mu_);
    auto it = cache_.find(hash);
    if (it != cache_.end()) {
      if (it->second.expires > now) {
        std::list<std::string>& lru = it->second.key ? positive_lru_ : negative_lru_;
        lru.splice(lru.begin(), lru, it->second.lru);
        if (!it->second.key) return ValueNotFound();
        return *it->second.key;
      }
      EraseLocked(it);
    }
    generation = generation_;
  }
  std::optional<ApiKey> found;
  RETURN_IF_ERROR(db_.Read([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(const std::optional<store::Row> row,
                     tx.QueryOptional(Select("WHERE value_sha256 = ?"), {hash}));
    found.reset();
    if (row) {
      ASSIGN_OR_RETURN(found, DecodeKey(*row));
    }
    return core::Status::Ok();
  }));
  if (caching) {
    std::lock_guard lock(mu_);
    // The TTL counts from before the read, so an entry is never trusted longer than cache_ttl
    // after the data it holds was current.
    if (generation == generation_) InsertLocked(hash, found, now);
  }
  if (!found) return ValueNotFound();
  return *std::move(found);
}

void ApiKeyStore::Invalidate(const std::string& value_hash) {
  std::lock_guard lock(mu_);
  ++generation_;
  auto it = cache_.find(value_hash);
  if (it != cache_.end()) EraseLocked(it);
}

void ApiKeyStore::EraseLocked(std::unordered_map<std::string, CacheEntry>::iterator it) {
  (it->second.key ? positive_lru_ : negative_lru_).erase(it->second.lru);
  cache_.erase(it);
}

void ApiKeyStore::InsertLocked(const std::string& value_hash, std::optional<ApiKey> key,
                               core::MonoTime now) {
  if (auto it = cache_.find(value_hash); it != cache_.end()) EraseLocked(it);
  const std::size_t max_negative = std::max<std::size_t>(1, options_.max_cached / 4);
  if (!key && negative_lru_.size() >= max_negative) {
    EraseLocked(cache_.find(negative_lru_.back()));
  }
  if (cache_.size() >= options_.max_cached) {
    EraseLocked(cache_.find(!positive_lru_.empty() ? positive_lru_.back() : negative_lru_.back()));
  }
  std::list<std::string>& lru = key ? positive_lru_ : negative_lru_;
  lru.push_front(value_hash);
  cache_.emplace(
      value_hash,
      CacheEntry{.key = std::move(key), .expires = now + options_.cache_ttl, .lru = lru.begin()});
}

}  // namespace moatless::gateway
