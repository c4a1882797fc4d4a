// Random passwords with AWS Secrets Manager's GetRandomPassword options: a length, the character
// classes to leave out, characters to exclude, an optional space, and (by default) at least one
// character of every class included. Drawn from a core::Random (the CSPRNG in production), each
// character uniformly from the allowed set. Stateless; thread-safe as the Random is.
#pragma once

#include <cstdint>
#include <string>

#include "core/random.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace moatless::secrets {

// What ExcludePunctuation leaves out: the printable ASCII punctuation characters.
inline constexpr std::string_view kPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

struct PasswordOptions {
  std::int64_t length = 32;  // 1..4096
  std::string exclude_characters;
  bool exclude_numbers = false;
  bool exclude_punctuation = false;
  bool exclude_uppercase = false;
  bool exclude_lowercase = false;
  bool include_space = false;
  bool require_each_included_type = true;
};

// InvalidParameterException if the length is out of range, if nothing is left to draw from, or if
// the password is too short to hold one character of every required class.
core::Result<core::SecretBytes> RandomPassword(const PasswordOptions& options,
                                               core::Random& random);

}  // namespace moatless::secrets
