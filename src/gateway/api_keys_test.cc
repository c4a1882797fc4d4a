#include "gateway/api_keys.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/random.h"
#include "store/database.h"
#include "store/schema.h"
#include "store/sqlite/sqlite_database.h"

namespace moatless::gateway {
namespace {

using std::chrono::milliseconds;

// A value that is no key made here, and its SHA-256 (computed with sha256sum): a row holding the
// hash stands for a key created elsewhere, and Lookup must find it by the value.
constexpr std::string_view kKnownValue = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd";
constexpr std::string_view kKnownValueSha256 =
    "1a1ebf401800ed3cc89ad191dd9a55aacc2c44fc2016f4ead05f8269b0ae7a85";

class ApiKeyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moatless-gateway-keys-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = store::OpenSqlite(dir_ + "/moatless.db",
                                {.clock = &clock_, .migrations = store::PlatformMigrations()});
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    keys_ = std::make_unique<ApiKeyStore>(*db_, random_, clock_);
  }
  void TearDown() override {
    keys_.reset();
    if (db_) db_->Close().IgnoreError();
    std::system(("rm -rf " + dir_).c_str());
  }

  NewApiKey MustCreate(std::string_view app = "shop", std::string_view stage = "dev",
                       std::string_view plan = "basic", std::string_view name = "ci") {
    auto created = keys_->Create(app, stage, plan, name);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? std::move(created).value() : NewApiKey{};
  }

  // Changes the table behind the store's back, as another node sharing it would.
  void Exec(std::string_view sql, store::Params params = {}) {
    ASSERT_TRUE(
        db_->Write([&](store::Transaction& tx) { return tx.Exec(sql, params).status(); }).ok());
  }

  std::vector<store::Row> Rows(std::string_view sql) {
    std::vector<store::Row> rows;
    EXPECT_TRUE(db_->Read([&](store::Transaction& tx) -> core::Status {
                     ASSIGN_OR_RETURN(rows, tx.Query(sql));
                     return core::Status::Ok();
                   })
                    .ok());
    return rows;
  }

  static std::vector<std::string> Ids(const std::vector<ApiKey>& keys) {
    std::vector<std::string> ids;
    for (const ApiKey& k : keys) ids.push_back(k.id);
    return ids;
  }

  std::string dir_;
  core::FakeClock clock_;
  core::SecureRandom random_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<ApiKeyStore> keys_;
};

TEST_F(ApiKeyStoreTest, CreateReturnsAFortyCharacterValueAndStoresOnlyItsHash) {
  NewApiKey created = MustCreate("shop", "dev", "basic", "ci pipeline");
  const std::string value(created.value.Reveal());
  EXPECT_TRUE(std::regex_match(value, std::regex("[A-Za-z0-9]{40}")));
  EXPECT_TRUE(std::regex_match(created.key.id, std::regex("key-[a-z2-7]{12}"))) << created.key.id;
  EXPECT_EQ(created.key.app, "shop");
  EXPECT_EQ(created.key.stage, "dev");
  EXPECT_EQ(created.key.plan, "basic");
  EXPECT_EQ(created.key.name, "ci pipeline");
  EXPECT_TRUE(created.key.enabled);
  EXPECT_EQ(created.key.created, clock_.Now());
  EXPECT_EQ(created.key.updated, clock_.Now());

  const std::vector<store::Row> rows = Rows("SELECT * FROM gateway_api_keys");
  ASSERT_EQ(rows.size(), 1u);
  for (const store::Value& v : rows[0].values()) {
    // Neither the value nor any long piece of it is stored, as text or as bytes.
    const std::string cell = v.if_text() ? *v.if_text() : v.DebugString();
    EXPECT_EQ(cell.find(value.substr(0, 12)), std::string::npos);
    EXPECT_EQ(cell.find(value.substr(28)), std::string::npos);
  }
  auto hash = rows[0].GetText("value_sha256");
  ASSERT_TRUE(hash.ok());
  EXPECT_TRUE(std::regex_match(*hash, std::regex("[0-9a-f]{64}")));

  // The value prints redacted, and the stored key equals what Create returned.
  std::ostringstream printed;
  printed << created.value;
  EXPECT_EQ(printed.str(), "[redacted]");
  auto got = keys_->Get(created.key.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, created.key);
}

TEST_F(ApiKeyStoreTest, ValuesAndIdsAreDistinct) {
  std::set<std::string> values, ids;
  for (int i = 0; i < 20; ++i) {
    NewApiKey k = MustCreate();
    values.insert(std::string(k.value.Reveal()));
    ids.insert(k.key.id);
  }
  EXPECT_EQ(values.size(), 20u);
  EXPECT_EQ(ids.size(), 20u);
}

TEST_F(ApiKeyStoreTest, LookupFindsTheKeyAndRefusesWrongValues) {
  NewApiKey created = MustCreate();
  auto found = keys_->Lookup(created.value.Reveal());
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, created.key);

  // One character changed.
  std::string wrong(created.value.Reveal());
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  auto missing = keys_->Lookup(wrong);
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message().find(wrong), std::string::npos);
  // Still a miss the second time (from the cache).
  EXPECT_EQ(keys_->Lookup(wrong).status().code(), core::StatusCode::kNotFound);
}

TEST_F(ApiKeyStoreTest, MalformedValuesAreNotFound) {
  NewApiKey created = MustCreate();
  const std::string value(created.value.Reveal());
  for (const std::string& bad :
       {std::string(), std::string("short"), std::string(19, 'a'), std::string(129, 'a'),
        value + " ", " " + value, value.substr(0, 39) + "-", value.substr(0, 39) + "\xc3",
        std::string(value).append(1, '\0'), value.substr(0, 20) + "'; DROP TABLE x; --"}) {
    auto r = keys_->Lookup(bad);
    EXPECT_EQ(r.status().code(), core::StatusCode::kNotFound) << r.status();
  }
  // 20 and 128 alphanumerics are the shape of a key, just not one that exists.
  EXPECT_EQ(keys_->Lookup(std::string(20, 'a')).status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(keys_->Lookup(std::string(128, 'a')).status().code(), core::StatusCode::kNotFound);
}

TEST_F(ApiKeyStoreTest, StoredHashIsTheSha256OfTheValue) {
  Exec(
      "INSERT INTO gateway_api_keys (id, app, stage, plan, name, value_sha256, enabled, "
      "created_ms, updated_ms) VALUES ('key-imported0000', 'shop', 'prod', 'gold', 'imported', ?, "
      "1, 1, 2)",
      {kKnownValueSha256});
  auto found = keys_->Lookup(kKnownValue);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->id, "key-imported0000");
  EXPECT_EQ(found->plan, "gold");
  EXPECT_EQ(found->created, core::WallTime(milliseconds(1)));
  EXPECT_EQ(found->updated, core::WallTime(milliseconds(2)));
}

TEST_F(ApiKeyStoreTest, DisabledKeyIsReturnedDisabledOnTheNextLookup) {
  NewApiKey created = MustCreate();
  ASSERT_TRUE(keys_->Lookup(created.value.Reveal()).ok());  // now cached
  clock_.Advance(milliseconds(10));
  ASSERT_TRUE(keys_->SetEnabled(created.key.id, false).ok());
  auto found = keys_->Lookup(created.value.Reveal());
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->enabled);
  EXPECT_EQ(found->updated, created.key.created + milliseconds(10));
  EXPECT_FALSE(keys_->Get(created.key.id)->enabled);

  ASSERT_TRUE(keys_->SetEnabled(created.key.id, true).ok());
  EXPECT_TRUE(keys_->Lookup(created.value.Reveal())->enabled);
}

TEST_F(ApiKeyStoreTest, DeleteRemovesTheKeyAndItsQuotaUseAtOnce) {
  NewApiKey a = MustCreate();
  NewApiKey b = MustCreate();
  ASSERT_TRUE(keys_->Lookup(a.value.Reveal()).ok());  // cached
  Exec("INSERT INTO gateway_quota_usage (key_id, plan, period_start_ms, used) VALUES (?, ?, 0, 3)",
       {a.key.id, "basic"});
  Exec("INSERT INTO gateway_quota_usage (key_id, plan, period_start_ms, used) VALUES (?, ?, 0, 3)",
       {a.key.id, "older-plan"});
  Exec("INSERT INTO gateway_quota_usage (key_id, plan, period_start_ms, used) VALUES (?, ?, 0, 4)",
       {b.key.id, "basic"});

  ASSERT_TRUE(keys_->Delete(a.key.id).ok());
  EXPECT_EQ(keys_->Lookup(a.value.Reveal()).status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(keys_->Get(a.key.id).status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(keys_->Delete(a.key.id).code(), core::StatusCode::kNotFound);
  const std::vector<store::Row> usage = Rows("SELECT key_id FROM gateway_quota_usage");
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(*usage[0].GetText("key_id"), b.key.id);
  EXPECT_TRUE(keys_->Lookup(b.value.Reveal()).ok());
}

TEST_F(ApiKeyStoreTest, SetPlanIsVisibleAtOnce) {
  NewApiKey created = MustCreate();
  ASSERT_EQ(keys_->Lookup(created.value.Reveal())->plan, "basic");
  ASSERT_TRUE(keys_->SetPlan(created.key.id, "Premium_2-x").ok());
  EXPECT_EQ(keys_->Lookup(created.value.Reveal())->plan, "Premium_2-x");
  EXPECT_EQ(keys_->Get(created.key.id)->plan, "Premium_2-x");
  EXPECT_EQ(keys_->SetPlan(created.key.id, "no spaces").code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(keys_->Get(created.key.id)->plan, "Premium_2-x");
}

TEST_F(ApiKeyStoreTest, ListFiltersAndOrdersByAppStageAndCreation) {
  const std::string shop_prod_1 = MustCreate("shop", "prod").key.id;
  clock_.Advance(milliseconds(1));
  const std::string blog_dev = MustCreate("blog", "dev").key.id;
  clock_.Advance(milliseconds(1));
  const std::string shop_dev = MustCreate("shop", "dev").key.id;
  clock_.Advance(milliseconds(1));
  const std::string shop_prod_2 = MustCreate("shop", "prod").key.id;

  auto all = keys_->List();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(Ids(*all), (std::vector<std::string>{blog_dev, shop_dev, shop_prod_1, shop_prod_2}));
  EXPECT_EQ(Ids(*keys_->List("shop")),
            (std::vector<std::string>{shop_dev, shop_prod_1, shop_prod_2}));
  EXPECT_EQ(Ids(*keys_->List("shop", "prod")),
            (std::vector<std::string>{shop_prod_1, shop_prod_2}));
  EXPECT_EQ(Ids(*keys_->List("", "dev")), (std::vector<std::string>{blog_dev, shop_dev}));
  EXPECT_TRUE(keys_->List("none")->empty());
  EXPECT_EQ(keys_->List("Bad App").status().code(), core::StatusCode::kInvalidArgument);
}

TEST_F(ApiKeyStoreTest, InvalidAppStagePlanOrNameIsRefused) {
  struct Case {
    std::string app, stage, plan, name, expect;
  };
  const std::vector<Case> cases = {
      {"", "dev", "basic", "", "app name"},
      {"Shop", "dev", "basic", "", "app name"},
      {"1shop", "dev", "basic", "", "app name"},
      {"shop_x", "dev", "basic", "", "app name"},
      {std::string(33, 'a'), "dev", "basic", "", "app name"},
      {"shop", "", "basic", "", "stage name"},
      {"shop", "Dev", "basic", "", "stage name"},
      {"shop", std::string(17, 'd'), "basic", "", "stage name"},
      {"shop", "dev", "", "", "usage plan"},
      {"shop", "dev", "a b", "", "usage plan"},
      {"shop", "dev", "gold!", "", "usage plan"},
      {"shop", "dev", std::string(65, 'p'), "", "usage plan"},
      {"shop", "dev", "basic", std::string(129, 'n'), "at most 128"},
      {"shop", "dev", "basic", "tab\there", "printable"},
      {"shop", "dev", "basic", "caf\xc3\xa9", "printable"},
  };
  for (const Case& c : cases) {
    auto r = keys_->Create(c.app, c.stage, c.plan, c.name);
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument) << c.app << "/" << c.stage;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status();
  }
  EXPECT_TRUE(keys_->List()->empty());
  // The limits themselves are accepted.
  EXPECT_TRUE(keys_
                  ->Create(std::string(32, 'a'), std::string(16, 'b'), std::string(64, 'C'),
                           std::string(128, '~'))
                  .ok());
  EXPECT_TRUE(keys_->Create("a", "b", "c", "").ok());
}

TEST_F(ApiKeyStoreTest, UnknownIdsAreNotFound) {
  MustCreate();
  for (const std::string& id : {std::string("key-aaaaaaaaaaaa"), std::string(""),
                                std::string("key-\xff"), std::string(200, 'k')}) {
    EXPECT_EQ(keys_->Get(id).status().code(), core::StatusCode::kNotFound);
    EXPECT_EQ(keys_->SetEnabled(id, false).code(), core::StatusCode::kNotFound);
    EXPECT_EQ(keys_->SetPlan(id, "basic").code(), core::StatusCode::kNotFound);
    EXPECT_EQ(keys_->Delete(id).code(), core::StatusCode::kNotFound);
  }
  EXPECT_EQ(keys_->List()->size(), 1u);
}

TEST_F(ApiKeyStoreTest, ChangesMadeElsewhereAreSeenAfterTheCacheTtl) {
  NewApiKey created = MustCreate();
  ASSERT_TRUE(keys_->Lookup(created.value.Reveal())->enabled);
  // Another node disables the key, and imports one whose value was looked up already.
  ASSERT_EQ(keys_->Lookup(kKnownValue).status().code(), core::StatusCode::kNotFound);
  Exec("UPDATE gateway_api_keys SET enabled = 0 WHERE id = ?", {created.key.id});
  Exec(
      "INSERT INTO gateway_api_keys (id, app, stage, plan, name, value_sha256, enabled, "
      "created_ms, updated_ms) VALUES ('key-imported0000', 'shop', 'prod', 'gold', '', ?, 1, 1, 1)",
      {kKnownValueSha256});

  clock_.Advance(milliseconds(4999));
  EXPECT_TRUE(keys_->Lookup(created.value.Reveal())->enabled);
  EXPECT_EQ(keys_->Lookup(kKnownValue).status().code(), core::StatusCode::kNotFound);

  clock_.Advance(milliseconds(1));
  EXPECT_FALSE(keys_->Lookup(created.value.Reveal())->enabled);
  auto imported = keys_->Lookup(kKnownValue);
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->id, "key-imported0000");
}

TEST_F(ApiKeyStoreTest, CacheHoldsAtMostMaxCachedKeys) {
  keys_ = std::make_unique<ApiKeyStore>(
      *db_, random_, clock_, ApiKeyStoreOptions{.cache_ttl = milliseconds(5000), .max_cached = 1});
  NewApiKey a = MustCreate();
  NewApiKey b = MustCreate();
  ASSERT_TRUE(keys_->Lookup(a.value.Reveal()).ok());
  ASSERT_TRUE(keys_->Lookup(b.value.Reveal()).ok());  // pushes a out
  Exec("UPDATE gateway_api_keys SET enabled = 0", {});
  EXPECT_FALSE(keys_->Lookup(a.value.Reveal())->enabled);  // read again: it was not cached
  // Now a is the one cached entry, and b was read again too.
  EXPECT_FALSE(keys_->Lookup(b.value.Reveal())->enabled);
}

TEST_F(ApiKeyStoreTest, WrongValuesDoNotPushKeysOutOfTheCache) {
  keys_ = std::make_unique<ApiKeyStore>(
      *db_, random_, clock_, ApiKeyStoreOptions{.cache_ttl = milliseconds(5000), .max_cached = 4});
  NewApiKey a = MustCreate();
  ASSERT_TRUE(keys_->Lookup(a.value.Reveal())->enabled);
  for (char c = 'a'; c < 'k'; ++c) {
    ASSERT_EQ(keys_->Lookup(std::string(40, c)).status().code(), core::StatusCode::kNotFound);
  }
  Exec("UPDATE gateway_api_keys SET enabled = 0", {});
  EXPECT_TRUE(keys_->Lookup(a.value.Reveal())->enabled);  // still the cached entry
}

TEST_F(ApiKeyStoreTest, ZeroTtlMeansNoCache) {
  keys_ = std::make_unique<ApiKeyStore>(
      *db_, random_, clock_, ApiKeyStoreOptions{.cache_ttl = milliseconds(0), .max_cached = 100});
  NewApiKey a = MustCreate();
  ASSERT_TRUE(keys_->Lookup(a.value.Reveal())->enabled);
  Exec("UPDATE gateway_api_keys SET enabled = 0", {});
  EXPECT_FALSE(keys_->Lookup(a.value.Reveal())->enabled);
}

TEST_F(ApiKeyStoreTest, ConcurrentLookupsAgree) {
  std::vector<NewApiKey> created;
  for (int i = 0; i < 8; ++i) created.push_back(MustCreate("shop", "dev", "p" + std::to_string(i)));
  std::vector<std::string> values;
  for (const NewApiKey& k : created) values.emplace_back(k.value.Reveal());

  std::atomic<int> failures{0};
  std::atomic<bool> stop{false};
  // A writer toggles one key's plan meanwhile: readers must see one of its two plans.
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      if (!keys_->SetPlan(created[0].key.id, i % 2 == 0 ? "p0" : "other").ok()) ++failures;
    }
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 6; ++t) {
    readers.emplace_back([&, t] {
      for (int i = 0; i < 400; ++i) {
        const std::size_t k = static_cast<std::size_t>(t + i) % values.size();
        auto found = keys_->Lookup(values[k]);
        if (!found.ok() || found->id != created[k].key.id) {
          ++failures;
          continue;
        }
        const std::string expected = "p" + std::to_string(k);
        if (found->plan != expected && !(k == 0 && found->plan == "other")) ++failures;
        if (keys_->Lookup(std::string(40, static_cast<char>('a' + t))).status().code() !=
            core::StatusCode::kNotFound) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& r : readers) r.join();
  stop = true;
  writer.join();
  EXPECT_EQ(failures.load(), 0);
  // After the writer stopped, the store and the cache agree on its last plan.
  EXPECT_EQ(keys_->Lookup(values[0])->plan, keys_->Get(created[0].key.id)->plan);
}

}  // namespace
}  // namespace moatless::gateway
