#include "secrets/secret_store.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "core/ids.h"
#include "secrets/test_fixture.h"

namespace moatless::secrets {
namespace {

using std::chrono::hours;

constexpr std::string_view kToken1 = "00000000-0000-4000-8000-000000000001";
constexpr std::string_view kToken2 = "00000000-0000-4000-8000-000000000002";
constexpr std::string_view kToken3 = "00000000-0000-4000-8000-000000000003";

class StoreTest : public SecretStoreTest {
 protected:
  std::string CreateWith(std::string name, std::string_view value,
                         std::string_view token = kToken1) {
    auto created = store_->Create(
        CreateRequest{.name = std::move(name), .value = Text(value), .token = std::string(token)});
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->arn : "";
  }
  std::map<std::string, std::vector<std::string>> Stages(const std::string& arn) {
    auto info = store_->Describe(arn);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->version_stages : std::map<std::string, std::vector<std::string>>();
  }
  void Exec(std::string_view sql, store::Params params = {}) {
    ASSERT_TRUE(
        db_->Write([&](store::Transaction& tx) { return tx.Exec(sql, params).status(); }).ok());
  }
};

TEST_F(StoreTest, CreateGivesAnArnWithASixCharacterSuffixAndACurrentVersion) {
  auto created = store_->Create(CreateRequest{.name = "dev/notes/db",
                                              .description = "the database",
                                              .tags = {{"team", "notes"}},
                                              .value = Text("pw-1"),
                                              .token = std::string(kToken1)});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(std::regex_match(
      created->arn,
      std::regex("arn:aws:secretsmanager:local:000000000000:secret:dev/notes/db-[A-Za-z0-9]{6}")))
      << created->arn;
  EXPECT_EQ(created->version_id, kToken1);
  EXPECT_EQ(created->stages, (std::vector<std::string>{"AWSCURRENT"}));
  EXPECT_EQ(Read(created->arn), "pw-1");
  EXPECT_EQ(Read("dev/notes/db"), "pw-1");
  // Describe finds it by name, by ARN, and by ARN without its suffix.
  for (const std::string& id :
       {std::string("dev/notes/db"), created->arn,
        std::string("arn:aws:secretsmanager:local:000000000000:secret:dev/notes/db")}) {
    auto info = store_->Describe(id);
    ASSERT_TRUE(info.ok()) << id << ": " << info.status();
    EXPECT_EQ(info->arn, created->arn);
    EXPECT_EQ(info->description, "the database");
    EXPECT_EQ(info->tags, (std::vector<Tag>{{"team", "notes"}}));
  }
  EXPECT_EQ(store_->Describe("dev/notes/other").status().aws_type(), "ResourceNotFoundException");
}

TEST_F(StoreTest, CreateIsIdempotentOnlyForTheSameTokenAndValue) {
  const std::string arn = CreateWith("a", "v");
  auto again =
      store_->Create(CreateRequest{.name = "a", .value = Text("v"), .token = std::string(kToken1)});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->arn, arn);
  EXPECT_EQ(again->version_id, kToken1);
  EXPECT_EQ(
      store_->Create(CreateRequest{.name = "a", .value = Text("w"), .token = std::string(kToken1)})
          .status()
          .aws_type(),
      "ResourceExistsException");
  EXPECT_EQ(
      store_->Create(CreateRequest{.name = "a", .value = Text("v"), .token = std::string(kToken2)})
          .status()
          .aws_type(),
      "ResourceExistsException");
  EXPECT_EQ(store_->Create(CreateRequest{.name = "bad name!"}).status().aws_type(),
            "InvalidParameterException");
  EXPECT_EQ(store_->Create(CreateRequest{.name = std::string(513, 'a')}).status().aws_type(),
            "InvalidParameterException");
}

TEST_F(StoreTest, ASecretWithoutAValueHasNoVersion) {
  auto created = store_->Create(CreateRequest{.name = "empty"});
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(created->version_id.empty());
  EXPECT_EQ(store_->GetValue(created->arn, "", "").status().aws_type(),
            "ResourceNotFoundException");
  EXPECT_TRUE(Stages(created->arn).empty());
}

TEST_F(StoreTest, PutValueMovesCurrentAndPrevious) {
  const std::string arn = CreateWith("a", "one");
  ASSERT_TRUE(store_->PutValue(arn, Text("two"), std::string(kToken2), {}).ok());
  EXPECT_EQ(Stages(arn),
            (std::map<std::string, std::vector<std::string>>{
                {std::string(kToken1), {"AWSPREVIOUS"}}, {std::string(kToken2), {"AWSCURRENT"}}}));
  ASSERT_TRUE(store_->PutValue(arn, Text("three"), std::string(kToken3), {}).ok());
  EXPECT_EQ(Stages(arn),
            (std::map<std::string, std::vector<std::string>>{
                {std::string(kToken2), {"AWSPREVIOUS"}}, {std::string(kToken3), {"AWSCURRENT"}}}));
  EXPECT_EQ(Read(arn), "three");
  EXPECT_EQ(Read(arn, "", "AWSPREVIOUS"), "two");
  EXPECT_EQ(Read(arn, kToken1), "one") << "a deprecated version stays readable by id";
  EXPECT_EQ(Read(arn, kToken1, "AWSCURRENT"), "<ResourceNotFoundException>");
  auto versions = store_->ListVersions(arn, false);
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(versions->size(), 2u);
  versions = store_->ListVersions(arn, true);
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(versions->size(), 3u);
}

TEST_F(StoreTest, PutValueIsIdempotentAndVersionsAreImmutable) {
  const std::string arn = CreateWith("a", "one");
  auto first = store_->PutValue(arn, Text("two"), std::string(kToken2), {});
  ASSERT_TRUE(first.ok());
  auto again = store_->PutValue(arn, Text("two"), std::string(kToken2), {});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->version_id, kToken2);
  EXPECT_EQ(store_->ListVersions(arn, true)->size(), 2u);
  EXPECT_EQ(store_->PutValue(arn, Text("other"), std::string(kToken2), {}).status().aws_type(),
            "ResourceExistsException");
  // The same bytes as binary are another value.
  EXPECT_EQ(
      store_
          ->PutValue(arn, NewValue{.kind = ValueKind::kBinary, .bytes = core::SecretBytes("two")},
                     std::string(kToken2), {})
          .status()
          .aws_type(),
      "ResourceExistsException");
  EXPECT_EQ(store_->PutValue(arn, NewValue{}, "", {}).status().aws_type(),
            "InvalidParameterException");
}

TEST_F(StoreTest, PendingValuesLeaveCurrentAlone) {
  const std::string arn = CreateWith("a", "one");
  ASSERT_TRUE(store_->PutValue(arn, Text("next"), std::string(kToken2), {"AWSPENDING"}).ok());
  EXPECT_EQ(Read(arn), "one");
  EXPECT_EQ(Read(arn, "", "AWSPENDING"), "next");
  EXPECT_EQ(Read(arn, kToken2, "AWSPENDING"), "next");
}

TEST_F(StoreTest, LabelsMoveOnlyWhenTheCallerNamesWhereTheyAre) {
  const std::string arn = CreateWith("a", "one");
  ASSERT_TRUE(store_->PutValue(arn, Text("two"), std::string(kToken2), {"AWSPENDING"}).ok());
  // AWSCURRENT is on version 1: moving it needs RemoveFromVersionId = version 1.
  EXPECT_EQ(store_->MoveLabel(arn, "AWSCURRENT", "", std::string(kToken2)).aws_type(),
            "InvalidParameterException");
  EXPECT_EQ(
      store_->MoveLabel(arn, "AWSCURRENT", std::string(kToken2), std::string(kToken2)).aws_type(),
      "InvalidParameterException");
  ASSERT_TRUE(
      store_->MoveLabel(arn, "AWSCURRENT", std::string(kToken1), std::string(kToken2)).ok());
  ASSERT_TRUE(store_->MoveLabel(arn, "AWSPENDING", std::string(kToken2), "").ok());
  EXPECT_EQ(Stages(arn),
            (std::map<std::string, std::vector<std::string>>{
                {std::string(kToken1), {"AWSPREVIOUS"}}, {std::string(kToken2), {"AWSCURRENT"}}}));
  // Custom labels; AWSCURRENT can't be just removed; unknown versions are refused.
  ASSERT_TRUE(store_->MoveLabel(arn, "blue", "", std::string(kToken1)).ok());
  EXPECT_EQ(Read(arn, "", "blue"), "one");
  EXPECT_EQ(store_->MoveLabel(arn, "AWSCURRENT", std::string(kToken2), "").aws_type(),
            "InvalidParameterException");
  EXPECT_EQ(store_->MoveLabel(arn, "green", "", std::string(kToken3)).aws_type(),
            "InvalidParameterException");
  EXPECT_EQ(store_->MoveLabel(arn, "green", "", "").aws_type(), "InvalidParameterException");
}

TEST_F(StoreTest, DeletionIsScheduledRestorableAndFinal) {
  const std::string arn = CreateWith("a", "one");
  EXPECT_EQ(store_->ScheduleDeletion(arn, 6).status().aws_type(), "InvalidParameterException");
  EXPECT_EQ(store_->ScheduleDeletion(arn, 31).status().aws_type(), "InvalidParameterException");
  auto scheduled = store_->ScheduleDeletion(arn, 7);
  ASSERT_TRUE(scheduled.ok());
  EXPECT_EQ(scheduled->purge_ms - scheduled->deleted_ms, 7 * 24 * 3600 * 1000LL);
  EXPECT_EQ(Read(arn), "<InvalidRequestException>");
  EXPECT_EQ(store_->PutValue(arn, Text("x"), "", {}).status().aws_type(),
            "InvalidRequestException");
  EXPECT_EQ(store_->ScheduleDeletion(arn, 7).status().aws_type(), "InvalidRequestException");
  EXPECT_EQ(store_->Create(CreateRequest{.name = "a"}).status().aws_type(),
            "InvalidRequestException");
  EXPECT_TRUE(store_->Describe(arn)->deleted());
  EXPECT_TRUE(store_->List({})->secrets.empty());
  EXPECT_EQ(store_->List({.include_planned_deletion = true})->secrets.size(), 1u);
  ASSERT_TRUE(store_->Restore(arn).ok());
  EXPECT_EQ(Read(arn), "one");

  ASSERT_TRUE(store_->ScheduleDeletion(arn, 7).ok());
  clock_->Advance(hours(24 * 7 - 1));
  EXPECT_TRUE(store_->PurgeDue()->empty());
  clock_->Advance(hours(1));
  EXPECT_EQ(*store_->PurgeDue(), std::vector<std::string>{arn});
  EXPECT_EQ(store_->Describe(arn).status().aws_type(), "ResourceNotFoundException");

  const std::string again = CreateWith("a", "new");
  ASSERT_TRUE(store_->DeleteNow(again).ok());
  EXPECT_EQ(store_->Describe("a").status().aws_type(), "ResourceNotFoundException");
  std::int64_t left = -1;
  ASSERT_TRUE(db_->Read([&](store::Transaction& tx) -> core::Status {
                   ASSIGN_OR_RETURN(auto row,
                                    tx.QueryOne("SELECT COUNT(*) AS n FROM secret_versions"));
                   ASSIGN_OR_RETURN(left, row.GetInt("n"));
                   return core::Status::Ok();
                 })
                  .ok());
  EXPECT_EQ(left, 0) << "versions go with their secret";
}

TEST_F(StoreTest, ListFiltersSortsAndPages) {
  for (const char* name : {"prod/b", "prod/a", "dev/a", "Dev/c"}) {
    ASSERT_TRUE(store_
                    ->Create(CreateRequest{.name = name,
                                           .description = std::string("Secret ") + name,
                                           .tags = {{"stage", std::string(name).substr(0, 3)}}})
                    .ok());
    clock_->Advance(std::chrono::seconds(1));
  }
  auto names = [&](const ListRequest& request) {
    std::vector<std::string> out;
    auto page = store_->List(request);
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (const SecretInfo& s : page->secrets) out.push_back(s.name);
    }
    return out;
  };
  EXPECT_EQ(names({}), (std::vector<std::string>{"Dev/c", "dev/a", "prod/a", "prod/b"}))
      << "newest first";
  EXPECT_EQ(names({.sort_by = "name", .ascending = true}),
            (std::vector<std::string>{"Dev/c", "dev/a", "prod/a", "prod/b"}));
  EXPECT_EQ(names({.filters = {{"name", {"dev/"}}}, .sort_by = "name", .ascending = true}),
            (std::vector<std::string>{"dev/a"}));
  EXPECT_EQ(
      names({.filters = {{"description", {"secret dev"}}}, .sort_by = "name", .ascending = true}),
      (std::vector<std::string>{"Dev/c", "dev/a"}));
  EXPECT_EQ(names({.filters = {{"name", {"!prod"}}}, .sort_by = "name", .ascending = true}),
            (std::vector<std::string>{"Dev/c", "dev/a"}));
  EXPECT_EQ(names({.filters = {{"tag-value", {"pro"}}, {"name", {"prod/a", "prod/c"}}},
                   .sort_by = "name",
                   .ascending = true}),
            (std::vector<std::string>{"prod/a"}));
  EXPECT_EQ(names({.filters = {{"all", {"DEV"}}}, .sort_by = "name", .ascending = true}),
            (std::vector<std::string>{"Dev/c", "dev/a"}));

  std::vector<std::string> paged;
  ListRequest request{.sort_by = "name", .ascending = true, .max_results = 3};
  for (int pages = 0;; ++pages) {
    ASSERT_LT(pages, 5);
    auto page = store_->List(request);
    ASSERT_TRUE(page.ok());
    for (const SecretInfo& s : page->secrets) paged.push_back(s.name);
    if (page->next_token.empty()) break;
    request.next_token = page->next_token;
  }
  EXPECT_EQ(paged, (std::vector<std::string>{"Dev/c", "dev/a", "prod/a", "prod/b"}));
  EXPECT_EQ(store_->List({.next_token = "garbage"}).status().aws_type(),
            "InvalidNextTokenException");
}

TEST_F(StoreTest, OldVersionsWithoutLabelsAreDroppedBeyondAHundred) {
  const std::string arn = CreateWith("a", "v0");
  for (int i = 1; i <= 105; ++i) {
    ASSERT_TRUE(store_->PutValue(arn, Text("v" + std::to_string(i)), "", {}).ok());
    clock_->Advance(std::chrono::seconds(1));
  }
  auto versions = store_->ListVersions(arn, true);
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(versions->size(), kMaxDeprecatedVersions + 2);  // + AWSCURRENT and AWSPREVIOUS
  EXPECT_EQ(Read(arn), "v105");
  EXPECT_EQ(Read(arn, kToken1), "<ResourceNotFoundException>") << "the oldest went first";
}

TEST_F(StoreTest, ATamperedOrMovedCiphertextIsAnIntegrityErrorNeverAnotherValue) {
  const std::string a = CreateWith("a", "value of a", kToken1);
  const std::string b = CreateWith("b", "value of b", kToken2);
  // Copy b's sealed value and wrapped key into a's row.
  Exec(
      "UPDATE secret_versions SET sealed_value = (SELECT sealed_value FROM secret_versions WHERE "
      "secret_arn = ?), wrapped_key = (SELECT wrapped_key FROM secret_versions WHERE secret_arn "
      "= ?) WHERE secret_arn = ?",
      {b, b, a});
  auto read = store_->GetValue(a, "", "");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().aws_type(), "DecryptionFailure");
  EXPECT_EQ(read.status().message().find("value of"), std::string::npos);
  // Flip one byte of b's ciphertext.
  std::string sealed;
  ASSERT_TRUE(db_->Read([&](store::Transaction& tx) -> core::Status {
                   ASSIGN_OR_RETURN(auto row, tx.QueryOne("SELECT sealed_value FROM "
                                                          "secret_versions WHERE secret_arn = ?",
                                                          {b}));
                   ASSIGN_OR_RETURN(auto blob, row.GetBlob("sealed_value"));
                   sealed.assign(blob.begin(), blob.end());
                   return core::Status::Ok();
                 })
                  .ok());
  sealed[sealed.size() - 20] ^= 0x01;
  Exec("UPDATE secret_versions SET sealed_value = ? WHERE secret_arn = ?",
       {store::Value::FromBytes(sealed), b});
  EXPECT_EQ(store_->GetValue(b, "", "").status().aws_type(), "DecryptionFailure");
  // Changing the kind (string <-> binary) is caught too.
  const std::string c = CreateWith("c", "value of c", kToken3);
  Exec("UPDATE secret_versions SET kind = 2 WHERE secret_arn = ?", {c});
  EXPECT_EQ(store_->GetValue(c, "", "").status().aws_type(), "DecryptionFailure");
}

TEST_F(StoreTest, MasterKeyRotationRewrapsEveryVersionWhileReadsGoOn) {
  std::vector<std::string> arns;
  for (int i = 0; i < 25; ++i) {
    arns.push_back(CreateWith("s" + std::to_string(i), "value " + std::to_string(i),
                              core::NewUuid(env_->random())));
  }
  ASSERT_EQ(store_->CountByKeyVersion()->at(1), 25);
  ASSERT_TRUE(keyring_->AddVersion().ok());
  ASSERT_TRUE(store_->AdoptKeyring().ok());
  const std::string written_during =
      CreateWith("new", "sealed under 2", core::NewUuid(env_->random()));
  std::size_t total = 0;
  for (;;) {
    auto n = store_->RewrapBatch(10);
    ASSERT_TRUE(n.ok()) << n.status();
    if (*n == 0) break;
    total += *n;
    for (std::size_t i = 0; i < arns.size(); ++i) {
      EXPECT_EQ(Read(arns[i]), "value " + std::to_string(i));
    }
  }
  EXPECT_EQ(total, 25u);
  EXPECT_EQ(*store_->CountByKeyVersion(), (std::map<std::int64_t, std::int64_t>{{2, 26}}));
  EXPECT_EQ(*store_->RetireUnusedKeys(), std::vector<std::int64_t>{1});
  EXPECT_TRUE(store_->RetireUnusedKeys()->empty());
  EXPECT_EQ(Read(written_during), "sealed under 2");
}

TEST_F(StoreTest, AReplacedOrMissingKeyFileStopsTheStoreBeforeItServes) {
  CreateWith("a", "v");
  // Another key in place of version 1: its check value differs from the recorded one.
  MemoryKeyringStorage other;
  auto impostor = MasterKeyring::Open(other, env_->random());
  ASSERT_TRUE(impostor.ok());
  SecretStore wrong(*db_, *env_, **impostor, {.region = "local", .account = "000000000000"});
  const core::Status adopted = wrong.AdoptKeyring();
  EXPECT_EQ(adopted.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(adopted.message().find("version 1"), std::string::npos) << adopted;
  // A keyring that lacks a version values are sealed under.
  ASSERT_TRUE(keyring_->AddVersion().ok());
  ASSERT_TRUE(store_->AdoptKeyring().ok());
  CreateWith("b", "v", kToken2);
  auto stored = keys_.LoadAll();
  MemoryKeyringStorage only_one;
  ASSERT_TRUE(only_one.Store(1, stored->at(1)).ok());
  auto partial = MasterKeyring::Open(only_one, env_->random());
  ASSERT_TRUE(partial.ok());
  SecretStore missing(*db_, *env_, **partial, {.region = "local", .account = "000000000000"});
  EXPECT_NE(missing.AdoptKeyring().message().find("version 2"), std::string::npos);
}

}  // namespace
}  // namespace moatless::secrets
