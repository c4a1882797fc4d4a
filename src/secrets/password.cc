#include "secrets/password.h"

#include <algorithm>
#include <vector>

namespace moatless::secrets {
namespace {

core::Status InvalidParameter(std::string message) {
  return core::InvalidArgumentError(std::move(message)).WithAwsType("InvalidParameterException");
}

}  // namespace

core::Result<core::SecretBytes> RandomPassword(const PasswordOptions& options,
                                               core::Random& random) {
  if (options.length < 1 || options.length > 4096) {
    return InvalidParameter("PasswordLength must be between 1 and 4096.");
  }
  std::vector<std::string> classes;
  auto add = [&](bool excluded, std::string_view members) {
    if (excluded) return;
    std::string kept;
    for (char c : members) {
      if (options.exclude_characters.find(c) == std::string::npos) kept += c;
    }
    if (!kept.empty()) classes.push_back(std::move(kept));
  };
  add(options.exclude_lowercase, "abcdefghijklmnopqrstuvwxyz");
  add(options.exclude_uppercase, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
  add(options.exclude_numbers, "0123456789");
  add(options.exclude_punctuation, kPunctuation);
  add(!options.include_space, " ");
  std::string alphabet;
  for (const std::string& members : classes) alphabet += members;
  if (alphabet.empty()) {
    return InvalidParameter("The options leave no characters to make a password of.");
  }
  const auto length = static_cast<std::size_t>(options.length);
  if (options.require_each_included_type && length < classes.size()) {
    return InvalidParameter("PasswordLength is too short to include a character of each type (" +
                            std::to_string(classes.size()) + " types).");
  }
  core::SecretBytes out;
  out.Resize(length);
  auto bytes = out.MutableBytes();
  for (std::size_t i = 0; i < length; ++i) {
    bytes[i] = static_cast<std::uint8_t>(alphabet[random.Uniform(alphabet.size())]);
  }
  if (options.require_each_included_type) {
    // Every class gets one position of its own, chosen at random, holding one of its characters.
    std::vector<std::size_t> positions(length);
    for (std::size_t i = 0; i < length; ++i) positions[i] = i;
    for (std::size_t i = 0; i < classes.size(); ++i) {
      const std::size_t j = i + random.Uniform(length - i);
      std::swap(positions[i], positions[j]);
      const std::string& members = classes[i];
      bytes[positions[i]] = static_cast<std::uint8_t>(members[random.Uniform(members.size())]);
    }
  }
  return out;
}

}  // namespace moatless::secrets
