#include "secrets/keyring.h"

#include <gtest/gtest.h>

#include "core/random.h"

namespace moatless::secrets {
namespace {

constexpr std::string_view kArn = "arn:aws:secretsmanager:local:000000000000:secret:a-AbCdEf";

TEST(MasterKeyringTest, CreatesTheFirstVersionAndReopensWithTheSameKeys) {
  core::SecureRandom random;
  MemoryKeyringStorage storage;
  auto ring = MasterKeyring::Open(storage, random);
  ASSERT_TRUE(ring.ok()) << ring.status();
  EXPECT_EQ((*ring)->current_version(), 1);
  const SealedValue sealed =
      (*ring)->Seal(kArn, "v1", ValueKind::kString, core::SecretBytes("hunter2"));
  EXPECT_EQ(sealed.key_version, 1);
  EXPECT_EQ(sealed.sealed_value.find("hunter2"), std::string::npos);

  auto reopened = MasterKeyring::Open(storage, random);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->CheckValue(1), (*ring)->CheckValue(1));
  auto value = (*reopened)->Open(kArn, "v1", ValueKind::kString, sealed);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->Reveal(), "hunter2");
}

TEST(MasterKeyringTest, ACiphertextOpensOnlyWhereItWasSealed) {
  core::SecureRandom random;
  MemoryKeyringStorage storage;
  auto ring = *MasterKeyring::Open(storage, random);
  const SealedValue sealed = ring->Seal(kArn, "v1", ValueKind::kString, core::SecretBytes("x"));
  const std::string other_arn = "arn:aws:secretsmanager:local:000000000000:secret:b-AbCdEf";
  for (const auto& [arn, version, kind] :
       {std::tuple{std::string(kArn), "v2", ValueKind::kString},
        std::tuple{other_arn, "v1", ValueKind::kString},
        std::tuple{std::string(kArn), "v1", ValueKind::kBinary}}) {
    auto opened = ring->Open(arn, version, kind, sealed);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.status().aws_type(), "DecryptionFailure");
    EXPECT_NE(opened.status().message().find("integrity"), std::string::npos);
  }
  for (std::size_t i = 0; i < sealed.sealed_value.size(); i += 7) {
    SealedValue flipped = sealed;
    flipped.sealed_value[i] ^= 0x01;
    EXPECT_FALSE(ring->Open(kArn, "v1", ValueKind::kString, flipped).ok()) << i;
  }
  SealedValue flipped = sealed;
  flipped.wrapped_key[flipped.wrapped_key.size() / 2] ^= 0x40;
  EXPECT_EQ(ring->Open(kArn, "v1", ValueKind::kString, flipped).status().aws_type(),
            "DecryptionFailure");
}

TEST(MasterKeyringTest, RewrapMovesTheDataKeyToTheNewVersionAndKeepsTheCiphertext) {
  core::SecureRandom random;
  MemoryKeyringStorage storage;
  auto ring = *MasterKeyring::Open(storage, random);
  const SealedValue sealed = ring->Seal(kArn, "v1", ValueKind::kBinary, core::SecretBytes("\x01"));
  auto added = ring->AddVersion();
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(*added, 2);
  EXPECT_NE(ring->CheckValue(1), ring->CheckValue(2));
  auto rewrapped = ring->Rewrap(kArn, "v1", ValueKind::kBinary, sealed, 2);
  ASSERT_TRUE(rewrapped.ok()) << rewrapped.status();
  EXPECT_EQ(rewrapped->key_version, 2);
  EXPECT_EQ(rewrapped->sealed_value, sealed.sealed_value);
  EXPECT_NE(rewrapped->wrapped_key, sealed.wrapped_key);
  EXPECT_EQ(ring->Open(kArn, "v1", ValueKind::kBinary, *rewrapped)->Reveal(), "\x01");
  // Version 2 was stored: a keyring opened later has both.
  auto reopened = *MasterKeyring::Open(storage, random);
  EXPECT_EQ(reopened->versions(), (std::vector<std::int64_t>{1, 2}));
  EXPECT_TRUE(reopened->Open(kArn, "v1", ValueKind::kBinary, *rewrapped).ok());
  // Without version 1 the old wrapping cannot be opened, and says why.
  MemoryKeyringStorage only_two;
  auto stored = storage.LoadAll();
  ASSERT_TRUE(stored.ok());
  ASSERT_TRUE(only_two.Store(2, stored->at(2)).ok());
  auto partial = *MasterKeyring::Open(only_two, random);
  EXPECT_EQ(partial->Open(kArn, "v1", ValueKind::kBinary, sealed).status().code(),
            core::StatusCode::kFailedPrecondition);
}

TEST(MasterKeyringTest, WithoutItsKeyFilesAnInstallationThatHadThemRefusesToStart) {
  core::SecureRandom random;
  MemoryKeyringStorage empty;
  auto refused = MasterKeyring::Open(empty, random, /*create_first=*/false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(empty.LoadAll()->empty()) << "no new key was made";
}

}  // namespace
}  // namespace moatless::secrets
