#include "secrets/password.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

namespace moatless::secrets {
namespace {

bool Has(const core::SecretBytes& password, int (*is_class)(int)) {
  const std::string_view text = password.Reveal();
  return std::any_of(text.begin(), text.end(),
                     [&](char c) { return is_class(static_cast<unsigned char>(c)) != 0; });
}

TEST(RandomPasswordTest, DefaultsToThirtyTwoCharactersOfEveryClass) {
  core::SecureRandom random;
  for (int i = 0; i < 200; ++i) {
    auto password = RandomPassword({}, random);
    ASSERT_TRUE(password.ok());
    ASSERT_EQ(password->size(), 32u);
    EXPECT_TRUE(Has(*password, ::islower));
    EXPECT_TRUE(Has(*password, ::isupper));
    EXPECT_TRUE(Has(*password, ::isdigit));
    EXPECT_TRUE(Has(*password, ::ispunct));
    EXPECT_FALSE(Has(*password, ::isspace));
  }
}

TEST(RandomPasswordTest, EveryRequiredClassEvenInTheShortestPassword) {
  core::SecureRandom random;
  PasswordOptions options{.length = 5, .include_space = true};
  for (int i = 0; i < 500; ++i) {
    auto password = RandomPassword(options, random);
    ASSERT_TRUE(password.ok());
    EXPECT_TRUE(Has(*password, ::islower) && Has(*password, ::isupper) &&
                Has(*password, ::isdigit) && Has(*password, ::ispunct) &&
                Has(*password, ::isspace));
  }
  options.length = 4;
  EXPECT_EQ(RandomPassword(options, random).status().aws_type(), "InvalidParameterException");
}

TEST(RandomPasswordTest, ExclusionsAreHonoured) {
  core::SecureRandom random;
  PasswordOptions options{.length = 4096,
                          .exclude_characters = "aeiou0",
                          .exclude_punctuation = true,
                          .exclude_uppercase = true};
  auto password = RandomPassword(options, random);
  ASSERT_TRUE(password.ok());
  EXPECT_EQ(password->Reveal().find_first_of("aeiou0ABCXYZ!#%~ "), std::string_view::npos);
  EXPECT_TRUE(Has(*password, ::isdigit));
  EXPECT_TRUE(Has(*password, ::islower));
}

TEST(RandomPasswordTest, RefusesImpossibleRequests) {
  core::SecureRandom random;
  EXPECT_EQ(RandomPassword({.length = 0}, random).status().aws_type(), "InvalidParameterException");
  EXPECT_EQ(RandomPassword({.length = 4097}, random).status().aws_type(),
            "InvalidParameterException");
  EXPECT_FALSE(RandomPassword({.exclude_numbers = true,
                               .exclude_punctuation = true,
                               .exclude_uppercase = true,
                               .exclude_lowercase = true},
                              random)
                   .ok());
  EXPECT_FALSE(RandomPassword({.exclude_characters = "0123456789",
                               .exclude_punctuation = true,
                               .exclude_uppercase = true,
                               .exclude_lowercase = true},
                              random)
                   .ok());
}

}  // namespace
}  // namespace moatless::secrets
