#include "app/secret_key_files.h"

#include <algorithm>

#include "app/data_dir.h"

namespace moatless::app {

std::string SecretKeyFiles::PathOf(std::int64_t version) const {
  return dir_ + "/master-" + std::to_string(version) + ".key";
}

core::Result<std::map<std::int64_t, core::SecretBytes>> SecretKeyFiles::LoadAll() {
  RETURN_IF_ERROR(env_.fs().MakeDirs(dir_, 0700).Annotate("secrets key folder"));
  ASSIGN_OR_RETURN(std::vector<std::string> names, env_.fs().ListDir(dir_));
  std::map<std::int64_t, core::SecretBytes> out;
  for (const std::string& name : names) {
    if (name.find(".tmp") != std::string::npos) continue;  // an interrupted write of a new key
    constexpr std::string_view kPrefix = "master-";
    constexpr std::string_view kSuffix = ".key";
    const bool shaped = name.starts_with(kPrefix) && name.ends_with(kSuffix) &&
                        name.size() > kPrefix.size() + kSuffix.size() &&
                        name.size() < kPrefix.size() + kSuffix.size() + 10;
    const std::string digits =
        shaped ? name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size()) : "";
    if (!shaped || digits[0] == '0' ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return core::FailedPreconditionError("unexpected file " + dir_ + "/" + name +
                                           " among the secrets master keys (master-<N>.key)");
    }
    const std::string path = dir_ + "/" + name;
    RETURN_IF_ERROR(CheckPrivateFile(path, "secrets master key"));
    ASSIGN_OR_RETURN(std::string bytes, env_.fs().ReadFile(path));
    core::SecretBytes key = core::SecretBytes::TakeFrom(bytes);
    if (key.size() != core::AeadKey::kKeyBytes) {
      return core::FailedPreconditionError("secrets master key " + path +
                                           " must be exactly 32 bytes");
    }
    out.emplace(std::stoll(digits), std::move(key));
  }
  return out;
}

core::Status SecretKeyFiles::Store(std::int64_t version, const core::SecretBytes& key) {
  RETURN_IF_ERROR(env_.fs().MakeDirs(dir_, 0700).Annotate("secrets key folder"));
  const std::string path = PathOf(version);
  if (env_.fs().Exists(path)) {
    return core::AlreadyExistsError("secrets master key " + path + " exists already");
  }
  return env_.fs().WriteFileAtomic(path, key.Reveal(), 0600);
}

}  // namespace moatless::app
