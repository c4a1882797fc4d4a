#include "secrets/keyring.h"

#include <mutex>
#include <utility>

#include "core/ids.h"

namespace moatless::secrets {
namespace {

constexpr std::string_view kWrappingPurpose = "moatless.secrets.data-key-wrapping.v1";
constexpr std::string_view kCheckPurpose = "moatless.secrets.key-check.v1";

std::string AssociatedData(std::string_view what, std::string_view arn, std::string_view version_id,
                           ValueKind kind) {
  std::string out(what);
  out += '\0';
  out += arn;
  out += '\0';
  out += version_id;
  out += '\0';
  out += std::to_string(static_cast<std::int64_t>(kind));
  return out;
}

std::string DataKeyAd(std::string_view arn, std::string_view version_id, ValueKind kind) {
  return AssociatedData("moatless.secrets.data-key.v1", arn, version_id, kind);
}
std::string ValueAd(std::string_view arn, std::string_view version_id, ValueKind kind) {
  return AssociatedData("moatless.secrets.value.v1", arn, version_id, kind);
}

core::Status IntegrityError(std::string_view arn, std::string_view version_id,
                            std::string_view what) {
  return core::InternalError("the stored " + std::string(what) + " of version " +
                             std::string(version_id) + " of secret " + std::string(arn) +
                             " failed its integrity check (it was changed, or copied from "
                             "another record); nothing was returned")
      .WithAwsType("DecryptionFailure");
}

}  // namespace

core::Result<std::map<std::int64_t, core::SecretBytes>> MemoryKeyringStorage::LoadAll() {
  std::map<std::int64_t, core::SecretBytes> out;
  for (const auto& [version, key] : keys_) out.emplace(version, key.Copy());
  return out;
}

core::Status MemoryKeyringStorage::Store(std::int64_t version, const core::SecretBytes& key) {
  if (!keys_.emplace(version, key.Copy()).second) {
    return core::AlreadyExistsError("master key version " + std::to_string(version) +
                                    " exists already");
  }
  return core::Status::Ok();
}

core::Result<std::unique_ptr<MasterKeyring>> MasterKeyring::Open(KeyringStorage& storage,
                                                                 core::Random& random,
                                                                 bool create_first) {
  std::unique_ptr<MasterKeyring> ring(new MasterKeyring(storage, random));
  ASSIGN_OR_RETURN(auto stored, storage.LoadAll());
  for (auto& [version, bytes] : stored) {
    if (version < 1) {
      return core::FailedPreconditionError("secrets master key version " + std::to_string(version) +
                                           " is not a valid version");
    }
    ASSIGN_OR_RETURN(core::AeadKey key, core::AeadKey::FromBytes(std::move(bytes)));
    ring->Load(version, key);
  }
  if (ring->versions_.empty()) {
    if (!create_first) {
      return core::FailedPreconditionError(
          "no secrets master key version is stored, but secrets were sealed under some: restore "
          "the key files");
    }
    RETURN_IF_ERROR(ring->AddVersion().status());
  }
  return ring;
}

void MasterKeyring::Load(std::int64_t version, const core::AeadKey& key) {
  const core::AeadKey check = key.Derive(kCheckPurpose);
  versions_[version] =
      Version{.wrapping = std::make_shared<const core::AeadKey>(key.Derive(kWrappingPurpose)),
              .check_value = core::HexEncode(check.bytes().Reveal().substr(0, 16))};
}

std::string MasterKeyring::CheckValue(std::int64_t version) const {
  std::shared_lock lock(mu_);
  auto it = versions_.find(version);
  return it == versions_.end() ? std::string() : it->second.check_value;
}

std::int64_t MasterKeyring::current_version() const {
  std::shared_lock lock(mu_);
  return versions_.rbegin()->first;
}

std::vector<std::int64_t> MasterKeyring::versions() const {
  std::shared_lock lock(mu_);
  std::vector<std::int64_t> out;
  for (const auto& entry : versions_) out.push_back(entry.first);
  return out;
}

bool MasterKeyring::Has(std::int64_t version) const {
  std::shared_lock lock(mu_);
  return versions_.contains(version);
}

core::Result<std::int64_t> MasterKeyring::AddVersion() {
  std::unique_lock lock(mu_);
  const std::int64_t version = versions_.empty() ? 1 : versions_.rbegin()->first + 1;
  core::AeadKey key = core::AeadKey::Generate(random_);
  RETURN_IF_ERROR(storage_.Store(version, key.bytes()));
  Load(version, key);
  return version;
}

core::Result<std::shared_ptr<const core::AeadKey>> MasterKeyring::Wrapping(
    std::int64_t version) const {
  std::shared_lock lock(mu_);
  auto it = versions_.find(version);
  if (it == versions_.end()) {
    return core::FailedPreconditionError("secrets master key version " + std::to_string(version) +
                                         " is not loaded (its key file is missing)")
        .WithAwsType("DecryptionFailure");
  }
  return it->second.wrapping;
}

SealedValue MasterKeyring::Seal(std::string_view arn, std::string_view version_id, ValueKind kind,
                                const core::SecretBytes& value) const {
  std::shared_ptr<const core::AeadKey> wrapping;
  SealedValue out;
  {
    std::shared_lock lock(mu_);
    out.key_version = versions_.rbegin()->first;
    wrapping = versions_.rbegin()->second.wrapping;
  }
  const core::AeadKey data_key = core::AeadKey::Generate(random_);
  out.sealed_value = data_key.Seal(value.Reveal(), ValueAd(arn, version_id, kind), random_);
  out.wrapped_key =
      wrapping->Seal(data_key.bytes().Reveal(), DataKeyAd(arn, version_id, kind), random_);
  return out;
}

core::Result<core::SecretBytes> MasterKeyring::Open(std::string_view arn,
                                                    std::string_view version_id, ValueKind kind,
                                                    const SealedValue& sealed) const {
  ASSIGN_OR_RETURN(auto wrapping, Wrapping(sealed.key_version));
  auto data_key_bytes = wrapping->Open(sealed.wrapped_key, DataKeyAd(arn, version_id, kind));
  if (!data_key_bytes.ok()) return IntegrityError(arn, version_id, "data key");
  auto data_key = core::AeadKey::FromBytes(std::move(*data_key_bytes));
  if (!data_key.ok()) return IntegrityError(arn, version_id, "data key");
  auto value = data_key->Open(sealed.sealed_value, ValueAd(arn, version_id, kind));
  if (!value.ok()) return IntegrityError(arn, version_id, "value");
  return std::move(*value);
}

core::Result<SealedValue> MasterKeyring::Rewrap(std::string_view arn, std::string_view version_id,
                                                ValueKind kind, const SealedValue& sealed,
                                                std::int64_t to_version) const {
  ASSIGN_OR_RETURN(auto from, Wrapping(sealed.key_version));
  ASSIGN_OR_RETURN(auto to, Wrapping(to_version));
  const std::string ad = DataKeyAd(arn, version_id, kind);
  auto data_key = from->Open(sealed.wrapped_key, ad);
  if (!data_key.ok()) return IntegrityError(arn, version_id, "data key");
  SealedValue out;
  out.key_version = to_version;
  out.wrapped_key = to->Seal(data_key->Reveal(), ad, random_);
  out.sealed_value = sealed.sealed_value;
  return out;
}

}  // namespace moatless::secrets
