#include "core/aead.h"

#include <gtest/gtest.h>

#include <sstream>

namespace moatless::core {
namespace {

AeadKey TestKey(std::uint64_t seed = 1) {
  DeterministicRandom random(seed);
  return AeadKey::Generate(random);
}

TEST(AeadKey, SealThenOpenRoundTrips) {
  SecureRandom random;
  const AeadKey key = TestKey();
  const std::string sealed = key.Seal("secret value", "access_keys/AKIA1", random);
  EXPECT_EQ(sealed.find("secret value"), std::string::npos);
  auto opened = key.Open(sealed, "access_keys/AKIA1");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->Reveal(), "secret value");
  // Random nonces: sealing twice gives different ciphertexts.
  EXPECT_NE(sealed, key.Seal("secret value", "access_keys/AKIA1", random));
}

TEST(AeadKey, EveryBitFlipWrongKeyAndWrongContextAreRefused) {
  SecureRandom random;
  const AeadKey key = TestKey();
  const std::string sealed = key.Seal("payload", "ctx", random);
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string tampered = sealed;
      tampered[i] = static_cast<char>(tampered[i] ^ (1 << bit));
      EXPECT_EQ(key.Open(tampered, "ctx").status().code(), StatusCode::kPermissionDenied);
    }
  }
  EXPECT_EQ(TestKey(2).Open(sealed, "ctx").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(key.Open(sealed, "other").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(key.Open(sealed.substr(0, 20), "ctx").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(key.Open("", "ctx").status().code(), StatusCode::kPermissionDenied);
}

TEST(AeadKey, DerivedKeysAreStableAndIndependent) {
  SecureRandom random;
  const AeadKey master = TestKey();
  const AeadKey a = master.Derive("purpose-a");
  const std::string sealed = a.Seal("x", "", random);
  EXPECT_TRUE(master.Derive("purpose-a").Open(sealed, "").ok());
  EXPECT_FALSE(master.Derive("purpose-b").Open(sealed, "").ok());
  EXPECT_FALSE(master.Open(sealed, "").ok());
  EXPECT_FALSE(TestKey(3).Derive("purpose-a").Open(sealed, "").ok());
}

TEST(AeadKey, RejectsWrongKeyLengthAndNeverPrintsTheKey) {
  EXPECT_EQ(AeadKey::FromBytes(SecretBytes(std::string(31, 'k'))).status().code(),
            StatusCode::kInvalidArgument);
  auto key = AeadKey::FromBytes(SecretBytes(std::string(32, 'k')));
  ASSERT_TRUE(key.ok());
  std::ostringstream out;
  out << key->bytes();
  EXPECT_EQ(out.str(), "[redacted]");
}

}  // namespace
}  // namespace moatless::core
