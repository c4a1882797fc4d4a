#include "runtime/function_registry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/store_test_fixture.h"

namespace moatless::runtime {
namespace {

using core::StatusCode;

class FunctionRegistryTest : public testing::RegistryStoreTest {};

FunctionConfig Everything() {
  FunctionConfig f;
  f.name = "every-field_1";
  f.runtime = RuntimeKind::kPython3;
  f.handler = "app.main";
  f.code_dir = "/srv/code/every";
  f.memory_mb = 1769;
  f.timeout = std::chrono::milliseconds(12'345);
  f.environment = {{"STAGE", "prod"}, {"QUOTE", "say \"hi\"\n\u00e9"}, {"EMPTY_VALUE", ""}};
  f.role_arn = "arn:aws:iam::000000000000:role/every";
  f.reserved_concurrency = 7;
  f.egress = {"https://api.example.com:443", "http://*.internal:8080"};
  return f;
}

void ExpectSameConfig(const FunctionConfig& a, const FunctionConfig& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.runtime, b.runtime);
  EXPECT_EQ(a.handler, b.handler);
  EXPECT_EQ(a.code_dir, b.code_dir);
  EXPECT_EQ(a.memory_mb, b.memory_mb);
  EXPECT_EQ(a.timeout, b.timeout);
  EXPECT_EQ(a.environment, b.environment);
  EXPECT_EQ(a.role_arn, b.role_arn);
  EXPECT_EQ(a.reserved_concurrency, b.reserved_concurrency);
  EXPECT_EQ(a.egress, b.egress);
}

TEST_F(FunctionRegistryTest, PublishNumbersVersionsFromOne) {
  FunctionConfig f = Sample();
  f.version = "whatever the caller says";
  auto v1 = registry_->Publish(f);
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(v1->version, "1");
  f.memory_mb = 256;
  auto v2 = registry_->Publish(f);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->version, "2");
  EXPECT_EQ(v2->memory_mb, 256u);
  // Another function counts on its own.
  auto other = registry_->Publish(Sample("other"));
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->version, "1");
  auto v3 = registry_->Publish(f);
  ASSERT_TRUE(v3.ok());
  EXPECT_EQ(v3->version, "3");
}

TEST_F(FunctionRegistryTest, OldVersionsStayRetrievableAndUnchanged) {
  FunctionConfig f = Sample();
  f.environment = {{"GENERATION", "one"}};
  ASSERT_TRUE(registry_->Publish(f).ok());
  f.environment = {{"GENERATION", "two"}};
  f.handler = "other.handler";
  ASSERT_TRUE(registry_->Publish(f).ok());

  auto one = registry_->Get("hello", "1");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->version, "1");
  EXPECT_EQ(one->environment.at("GENERATION"), "one");
  EXPECT_EQ(one->handler, "index.handler");
  auto two = registry_->Get("hello", "2");
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->environment.at("GENERATION"), "two");
  EXPECT_EQ(two->handler, "other.handler");

  // Durable across a reopen of the store.
  ASSERT_NO_FATAL_FAILURE(OpenStore());
  auto again = registry_->Get("hello", "1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->environment.at("GENERATION"), "one");
}

TEST_F(FunctionRegistryTest, LatestAndEmptyQualifierResolveToTheHighestVersion) {
  ASSERT_TRUE(registry_->Publish(Sample()).ok());
  ASSERT_TRUE(registry_->Publish(Sample()).ok());
  auto latest = registry_->Get("hello", "$LATEST");
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->version, "2");
  auto unqualified = registry_->Get("hello");
  ASSERT_TRUE(unqualified.ok()) << unqualified.status();
  EXPECT_EQ(unqualified->version, "2");
  ASSERT_TRUE(registry_->Publish(Sample()).ok());
  EXPECT_EQ(registry_->Get("hello", "")->version, "3");
}

TEST_F(FunctionRegistryTest, BadQualifiersAreInvalidArguments) {
  ASSERT_TRUE(registry_->Publish(Sample()).ok());
  for (const std::string q :
       {"prod", "0", "-1", "+1", "1.0", " 1", "1 ", "$latest", "99999999999999999999999"}) {
    auto got = registry_->Get("hello", q);
    ASSERT_FALSE(got.ok()) << q;
    EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument) << q << ": " << got.status();
  }
}

TEST_F(FunctionRegistryTest, MissingFunctionsAndVersionsAreNotFound) {
  auto missing = registry_->Get("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().aws_type(), "ResourceNotFoundException");
  EXPECT_EQ(missing.status().message(), "Function not found: nope");

  ASSERT_TRUE(registry_->Publish(Sample()).ok());
  auto version = registry_->Get("hello", "2");
  ASSERT_FALSE(version.ok());
  EXPECT_EQ(version.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(version.status().aws_type(), "ResourceNotFoundException");
  EXPECT_EQ(version.status().message(), "Function not found: hello version 2");

  auto versions = registry_->Versions("nope");
  ASSERT_FALSE(versions.ok());
  EXPECT_EQ(versions.status().code(), StatusCode::kNotFound);
  const core::Status deleted = registry_->Delete("nope");
  EXPECT_EQ(deleted.code(), StatusCode::kNotFound);
  EXPECT_EQ(deleted.aws_type(), "ResourceNotFoundException");
}

TEST_F(FunctionRegistryTest, InvalidConfigurationsAreRefusedAndNothingIsStored) {
  std::vector<FunctionConfig> bad;
  bad.push_back(Sample("has space"));
  bad.push_back(Sample(std::string(65, 'a')));
  {
    FunctionConfig f = Sample();
    f.memory_mb = 64;
    bad.push_back(f);
  }
  {
    FunctionConfig f = Sample();
    f.timeout = std::chrono::seconds(901);
    bad.push_back(f);
  }
  {
    FunctionConfig f = Sample();
    f.code_dir = "relative/dir";
    bad.push_back(f);
  }
  {
    FunctionConfig f = Sample();
    f.handler = "nodot";
    bad.push_back(f);
  }
  {
    FunctionConfig f = Sample();
    f.environment = {{"AWS_REGION", "x"}};
    bad.push_back(f);
  }
  {
    FunctionConfig f = Sample();
    f.reserved_concurrency = 5000;
    bad.push_back(f);
  }
  for (const FunctionConfig& f : bad) {
    auto published = registry_->Publish(f);
    ASSERT_FALSE(published.ok()) << f.name;
    EXPECT_EQ(published.status().code(), StatusCode::kInvalidArgument) << published.status();
    EXPECT_EQ(published.status().aws_type(), "InvalidParameterValueException");
  }
  auto all = registry_->List();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(all->empty());
}

TEST_F(FunctionRegistryTest, EveryFieldRoundTripsThroughTheStore) {
  const FunctionConfig f = Everything();
  auto published = registry_->Publish(f);
  ASSERT_TRUE(published.ok()) << published.status();
  ASSERT_NO_FATAL_FAILURE(OpenStore());
  auto got = registry_->Get(f.name, "1");
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameConfig(*got, f);
  EXPECT_EQ(got->version, "1");

  // An unset reserved concurrency stays unset (it is not 0, which would turn the function off).
  FunctionConfig plain = Sample();
  ASSERT_TRUE(registry_->Publish(plain).ok());
  auto plain_got = registry_->Get("hello");
  ASSERT_TRUE(plain_got.ok());
  EXPECT_FALSE(plain_got->reserved_concurrency.has_value());
  ExpectSameConfig(*plain_got, plain);
  FunctionConfig off = Sample();
  off.reserved_concurrency = 0;
  ASSERT_TRUE(registry_->Publish(off).ok());
  EXPECT_EQ(registry_->Get("hello")->reserved_concurrency, std::optional<std::uint32_t>(0));
}

TEST_F(FunctionRegistryTest, JsonRoundTripAndItsErrors) {
  const FunctionConfig f = Everything();
  const std::string text = FunctionConfigToJson(f);
  EXPECT_EQ(text.find("\"version\""), std::string::npos) << text;
  auto back = FunctionConfigFromJson(text);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameConfig(*back, f);

  // Every runtime by its name.
  for (const RuntimeKind kind :
       {RuntimeKind::kNodejs20, RuntimeKind::kPython3, RuntimeKind::kProvided}) {
    FunctionConfig g = Sample();
    g.runtime = kind;
    auto decoded = FunctionConfigFromJson(FunctionConfigToJson(g));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->runtime, kind);
  }

  // Unknown members are ignored; missing or mistyped ones are errors.
  boost::json::object o = boost::json::parse(text).as_object();
  o["future_field"] = 1;
  EXPECT_TRUE(FunctionConfigFromJson(boost::json::serialize(o)).ok());
  for (const char* field : {"name", "runtime", "handler", "code_dir", "memory_mb", "timeout_ms",
                            "environment", "role_arn", "egress"}) {
    boost::json::object missing = o;
    missing.erase(field);
    auto decoded = FunctionConfigFromJson(boost::json::serialize(missing));
    ASSERT_FALSE(decoded.ok()) << field;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(decoded.status().message().find(field), std::string::npos)
        << decoded.status().message();
  }
  for (const auto& [field, value] : std::vector<std::pair<std::string, boost::json::value>>{
           {"memory_mb", -1},
           {"memory_mb", "128"},
           {"memory_mb", 1.5},
           {"memory_mb", 5'000'000'000},
           {"timeout_ms", nullptr},
           {"runtime", "cobol"},
           {"environment", boost::json::array{"A"}},
           {"egress", "https://x:443"},
           {"reserved_concurrency", "3"}}) {
    boost::json::object wrong = o;
    wrong[field] = value;
    auto decoded = FunctionConfigFromJson(boost::json::serialize(wrong));
    EXPECT_FALSE(decoded.ok()) << field << " = " << boost::json::serialize(value);
  }
  EXPECT_FALSE(FunctionConfigFromJson("[]").ok());
  EXPECT_FALSE(FunctionConfigFromJson("{").ok());
  EXPECT_FALSE(FunctionConfigFromJson("").ok());
}

TEST_F(FunctionRegistryTest, ListGivesTheLatestOfEachByName) {
  ASSERT_TRUE(registry_->Publish(Sample("zeta")).ok());
  FunctionConfig alpha = Sample("alpha");
  ASSERT_TRUE(registry_->Publish(alpha).ok());
  alpha.memory_mb = 512;
  ASSERT_TRUE(registry_->Publish(alpha).ok());
  ASSERT_TRUE(registry_->Publish(Sample("mid")).ok());

  auto all = registry_->List();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].name, "alpha");
  EXPECT_EQ((*all)[0].version, "2");
  EXPECT_EQ((*all)[0].memory_mb, 512u);
  EXPECT_EQ((*all)[1].name, "mid");
  EXPECT_EQ((*all)[2].name, "zeta");
  EXPECT_EQ((*all)[2].version, "1");
}

TEST_F(FunctionRegistryTest, VersionsAscend) {
  for (std::uint32_t memory : {128u, 256u, 512u}) {
    FunctionConfig f = Sample();
    f.memory_mb = memory;
    ASSERT_TRUE(registry_->Publish(f).ok());
  }
  auto versions = registry_->Versions("hello");
  ASSERT_TRUE(versions.ok()) << versions.status();
  ASSERT_EQ(versions->size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*versions)[i].version, std::to_string(i + 1));
    EXPECT_EQ((*versions)[i].memory_mb, 128u << i);
  }
}

TEST_F(FunctionRegistryTest, DeleteRemovesEveryVersionAndPendingEvents) {
  ASSERT_TRUE(registry_->Publish(Sample()).ok());
  ASSERT_TRUE(registry_->Publish(Sample()).ok());
  ASSERT_TRUE(registry_->Publish(Sample("keep")).ok());
  ASSERT_TRUE(db_->Write([](store::Transaction& tx) -> core::Status {
                   int n = 0;
                   for (const char* name : {"hello", "hello", "keep"}) {
                     auto inserted = tx.Exec(
                         "INSERT INTO async_invocations (id, function_name, qualifier, payload, "
                         "attempts, running, next_attempt_ms, accepted_at_ms) VALUES (?, ?, "
                         "'$LATEST', ?, 0, 0, 0, 0)",
                         {"event-" + std::to_string(++n), name, store::Value::FromBytes("{}")});
                     if (!inserted.ok()) return inserted.status();
                   }
                   return core::Status::Ok();
                 })
                  .ok());

  ASSERT_TRUE(registry_->Delete("hello").ok());
  EXPECT_EQ(registry_->Get("hello").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(registry_->Get("hello", "1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(registry_->Versions("hello").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(registry_->Get("keep").ok());
  auto remaining =
      store::TransactValue(*db_, {.access = store::Access::kReadOnly}, [](store::Transaction& tx) {
        return tx.Query("SELECT function_name FROM async_invocations ORDER BY id");
      });
  ASSERT_TRUE(remaining.ok()) << remaining.status();
  ASSERT_EQ(remaining->size(), 1u);
  EXPECT_EQ(*(*remaining)[0].GetText("function_name"), "keep");
  EXPECT_EQ(registry_->Delete("hello").code(), StatusCode::kNotFound);

  // Publishing again after a delete starts a new history.
  auto again = registry_->Publish(Sample());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->version, "1");
}

TEST_F(FunctionRegistryTest, CorruptRowsAreInternalErrors) {
  ASSERT_TRUE(registry_->Publish(Sample()).ok());
  const std::vector<std::string> corrupt = {
      "not json",
      "{\"name\":\"hello\"}",
      // Decodes, but fails validation (memory below 128 MB).
      [] {
        FunctionConfig f = Sample();
        f.memory_mb = 1;
        return FunctionConfigToJson(f);
      }(),
      // Valid, but names another function.
      FunctionConfigToJson(Sample("someone-else")),
  };
  for (const std::string& config : corrupt) {
    ASSERT_TRUE(db_->Write([&](store::Transaction& tx) -> core::Status {
                     return tx
                         .Exec("UPDATE functions SET config = ? WHERE name = 'hello'", {config})
                         .status();
                   })
                    .ok());
    auto got = registry_->Get("hello");
    ASSERT_FALSE(got.ok()) << config;
    EXPECT_EQ(got.status().code(), StatusCode::kInternal) << got.status();
    EXPECT_NE(got.status().message().find("stored configuration of function hello version 1"),
              std::string::npos)
        << got.status();
    EXPECT_EQ(registry_->List().status().code(), StatusCode::kInternal);
    EXPECT_EQ(registry_->Versions("hello").status().code(), StatusCode::kInternal);
  }
}

TEST_F(FunctionRegistryTest, ConcurrentPublishesGetDistinctVersions) {
  constexpr int kThreads = 4;
  constexpr int kEach = 10;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::vector<std::string> versions;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        auto published = registry_->Publish(Sample());
        ASSERT_TRUE(published.ok()) << published.status();
        std::lock_guard<std::mutex> lock(mu);
        versions.push_back(published->version);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::sort(versions.begin(), versions.end(),
            [](const std::string& a, const std::string& b) { return std::stoi(a) < std::stoi(b); });
  ASSERT_EQ(versions.size(), static_cast<std::size_t>(kThreads * kEach));
  for (int i = 0; i < kThreads * kEach; ++i) EXPECT_EQ(versions[i], std::to_string(i + 1));
}

}  // namespace
}  // namespace moatless::runtime
