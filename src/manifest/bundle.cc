#include "manifest/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <system_error>

namespace moatless::manifest {
namespace {

namespace fs = std::filesystem;

struct ArchiveReadCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteCloser {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

// A file to pack: where it is, the name it gets, whether it is executable.
struct Member {
  fs::path source;
  bool executable = false;
  bool directory = false;
};

core::Status ReadFile(const fs::path& path, std::string& out, std::uint64_t max) {
  std::error_code ec;
  const std::uint64_t size = fs::file_size(path, ec);
  if (ec) return core::InvalidArgumentError("cannot read " + path.string() + ": " + ec.message());
  if (size > max) {
    return core::PayloadTooLargeError(path.string() + " is " + std::to_string(size) +
                                      " bytes; files are limited to " + std::to_string(max));
  }
  std::ifstream in(path, std::ios::binary);
  out.assign(size, '\0');
  if (!in.read(out.data(), static_cast<std::streamsize>(size))) {
    return core::InvalidArgumentError("cannot read " + path.string());
  }
  return core::Status::Ok();
}

// Adds `relative` (a file or a directory tree) under its own name to `members`.
core::Status Collect(const fs::path& root, const std::string& relative,
                     std::map<std::string, Member>& members, std::vector<std::string>& skipped) {
  std::error_code ec;
  const fs::path start = root / relative;
  const fs::file_status status = fs::symlink_status(start, ec);
  if (ec) return core::InvalidArgumentError("cannot read " + start.string() + ": " + ec.message());
  if (fs::is_symlink(status)) {
    skipped.push_back(relative);
    return core::Status::Ok();
  }
  // Parents of what is packed are directories in the archive too.
  for (fs::path parent = fs::path(relative).parent_path(); !parent.empty();
       parent = parent.parent_path()) {
    members[parent.generic_string()] = Member{root / parent, false, true};
  }
  if (fs::is_regular_file(status)) {
    members[relative] =
        Member{start, (status.permissions() & fs::perms::owner_exec) != fs::perms::none, false};
    return core::Status::Ok();
  }
  if (!fs::is_directory(status)) {
    return core::InvalidArgumentError(start.string() + " is not a file or directory");
  }
  members[relative] = Member{start, false, true};
  for (auto it = fs::recursive_directory_iterator(start, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::file_status s = it->symlink_status(ec);
    if (ec) break;
    // Lexically: fs::relative would resolve symbolic links.
    const std::string name =
        (fs::path(relative) / it->path().lexically_relative(start)).generic_string();
    if (fs::is_symlink(s)) {
      skipped.push_back(name);
      it.disable_recursion_pending();
    } else if (fs::is_directory(s)) {
      members[name] = Member{it->path(), false, true};
    } else if (fs::is_regular_file(s)) {
      members[name] =
          Member{it->path(), (s.permissions() & fs::perms::owner_exec) != fs::perms::none, false};
    }  // sockets, FIFOs, devices: nothing a function can use
  }
  if (ec) return core::InvalidArgumentError("cannot read " + start.string() + ": " + ec.message());
  return core::Status::Ok();
}

la_ssize_t AppendToString(archive*, void* client, const void* buffer, size_t length) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

// Refuses what cannot be a path inside the destination; the normalised path otherwise.
core::Result<std::string> SafeRelative(const char* raw) {
  if (raw == nullptr || *raw == '\0') return core::InvalidArgumentError("an entry has no name");
  std::string name(raw);
  while (name.starts_with("./")) name.erase(0, 2);
  while (!name.empty() && name.back() == '/') name.pop_back();
  if (name.empty()) return std::string();  // the archive's root directory
  if (name.front() == '/') {
    return core::InvalidArgumentError("entry '" + name + "' has an absolute path");
  }
  for (std::size_t start = 0; start <= name.size();) {
    std::size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    const std::string_view part(name.data() + start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return core::InvalidArgumentError("entry '" + name + "' leaves the bundle or is not normal");
    }
    start = end + 1;
  }
  return name;
}

core::Status MakeDirectories(const fs::path& destination, const std::string& relative) {
  fs::path current = destination;
  for (const fs::path& part : fs::path(relative)) {
    current /= part;
    if (::mkdir(current.c_str(), 0755) != 0 && errno != EEXIST) {
      return core::InternalError("cannot create " + current.string() + ": " +
                                 std::generic_category().message(errno));
    }
    struct stat st {};
    if (::lstat(current.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return core::InvalidArgumentError("entry '" + relative + "' collides with a file");
    }
  }
  return core::Status::Ok();
}

core::Status ExtractInto(archive* reader, const fs::path& destination, const BundleLimits& limits) {
  std::uint64_t entries = 0;
  std::uint64_t expanded = 0;
  bool has_manifest = false;
  archive_entry* entry = nullptr;
  while (true) {
    const int r = archive_read_next_header(reader, &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) {
      return core::InvalidArgumentError(std::string("not a bundle (.tar.gz): ") +
                                        archive_error_string(reader));
    }
    if (++entries > limits.max_entries) {
      return core::PayloadTooLargeError("the bundle holds more than " +
                                        std::to_string(limits.max_entries) + " entries");
    }
    ASSIGN_OR_RETURN(const std::string name, SafeRelative(archive_entry_pathname(entry)));
    const mode_t type = archive_entry_filetype(entry);
    if (archive_entry_hardlink(entry) != nullptr || archive_entry_symlink(entry) != nullptr) {
      return core::InvalidArgumentError("entry '" + name + "' is a link; bundles hold files only");
    }
    if (type == AE_IFDIR) {
      if (!name.empty()) RETURN_IF_ERROR(MakeDirectories(destination, name));
      continue;
    }
    if (type != AE_IFREG || name.empty()) {
      return core::InvalidArgumentError("entry '" + name + "' is not a regular file or directory");
    }
    if (!archive_entry_size_is_set(entry) || archive_entry_size(entry) < 0 ||
        static_cast<std::uint64_t>(archive_entry_size(entry)) > limits.max_file_bytes) {
      return core::PayloadTooLargeError("entry '" + name + "' is over the " +
                                        std::to_string(limits.max_file_bytes) + "-byte file limit");
    }
    if (name == kManifestFileName) has_manifest = true;
    const std::string parent = fs::path(name).parent_path().generic_string();
    if (!parent.empty()) RETURN_IF_ERROR(MakeDirectories(destination, parent));
    const bool executable = (archive_entry_perm(entry) & 0100) != 0;
    const fs::path target = destination / name;
    const int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                          executable ? 0755 : 0644);
    if (fd < 0) {
      return core::InvalidArgumentError(
          "entry '" + name + "' cannot be created: " + std::generic_category().message(errno));
    }
    char buffer[64 * 1024];
    core::Status status = core::Status::Ok();
    std::uint64_t written = 0;
    while (status.ok()) {
      const la_ssize_t n = archive_read_data(reader, buffer, sizeof buffer);
      if (n == 0) break;
      if (n < 0) {
        status = core::InvalidArgumentError("entry '" + name +
                                            "' is damaged: " + archive_error_string(reader));
        break;
      }
      written += static_cast<std::uint64_t>(n);
      expanded += static_cast<std::uint64_t>(n);
      if (written > limits.max_file_bytes || expanded > limits.max_expanded_bytes) {
        status = core::PayloadTooLargeError("the bundle expands past " +
                                            std::to_string(limits.max_expanded_bytes) + " bytes");
        break;
      }
      for (la_ssize_t off = 0; off < n && status.ok();) {
        const ssize_t w = ::write(fd, buffer + off, static_cast<std::size_t>(n - off));
        if (w < 0) {
          if (errno == EINTR) continue;
          status = core::InternalError("cannot write " + target.string() + ": " +
                                       std::generic_category().message(errno));
        } else {
          off += w;
        }
      }
    }
    ::close(fd);
    RETURN_IF_ERROR(status);
  }
  if (!has_manifest) {
    return core::InvalidArgumentError("the bundle has no " + std::string(kManifestFileName));
  }
  // Durable before anyone can depend on it: one filesystem sync rather than one per file.
  const int dir = ::open(destination.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool synced = dir >= 0 && ::syncfs(dir) == 0;
  if (dir >= 0) ::close(dir);
  if (!synced) return core::InternalError("cannot sync " + destination.string());
  return core::Status::Ok();
}

}  // namespace

core::Result<PackedBundle> PackBundle(const std::string& dir, const Manifest& manifest,
                                      const BundleLimits& limits) {
  PackedBundle packed;
  std::map<std::string, Member> members;
  RETURN_IF_ERROR(Collect(dir, std::string(kManifestFileName), members, packed.skipped));
  for (const auto& [name, f] : manifest.functions) {
    RETURN_IF_ERROR(Collect(dir, f.code, members, packed.skipped));
  }
  for (const RouteSpec& r : manifest.routes) {
    if (!r.schema.empty()) RETURN_IF_ERROR(Collect(dir, r.schema, members, packed.skipped));
  }
  for (const auto& [name, a] : manifest.authorizers) {
    if (!a.jwks.empty() && !a.jwks.starts_with("https://")) {
      RETURN_IF_ERROR(Collect(dir, a.jwks, members, packed.skipped));
    }
  }
  if (!manifest.mtls_truststore.empty()) {
    RETURN_IF_ERROR(Collect(dir, manifest.mtls_truststore, members, packed.skipped));
  }
  if (members.size() > limits.max_entries) {
    return core::PayloadTooLargeError("the app has more than " +
                                      std::to_string(limits.max_entries) + " files");
  }

  std::unique_ptr<archive, ArchiveWriteCloser> writer(archive_write_new());
  if (!writer) return core::InternalError("libarchive: out of memory");
  archive_write_set_format_pax_restricted(writer.get());
  archive_write_add_filter_gzip(writer.get());
  archive_write_set_filter_option(writer.get(), "gzip", "timestamp", nullptr);  // reproducible
  archive_write_set_bytes_in_last_block(writer.get(), 1);  // no padding after the gzip stream
  if (archive_write_open(writer.get(), &packed.bytes, nullptr, AppendToString, nullptr) !=
      ARCHIVE_OK) {
    return core::InternalError(std::string("libarchive: ") + archive_error_string(writer.get()));
  }
  std::string content;
  for (const auto& [name, member] : members) {
    std::unique_ptr<archive_entry, EntryFree> entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), name.c_str());
    archive_entry_set_mtime(entry.get(), 0, 0);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    if (member.directory) {
      archive_entry_set_filetype(entry.get(), AE_IFDIR);
      archive_entry_set_perm(entry.get(), 0755);
      content.clear();
    } else {
      RETURN_IF_ERROR(ReadFile(member.source, content, limits.max_file_bytes));
      archive_entry_set_filetype(entry.get(), AE_IFREG);
      archive_entry_set_perm(entry.get(), member.executable ? 0755 : 0644);
      archive_entry_set_size(entry.get(), static_cast<la_int64_t>(content.size()));
      ++packed.files;
      packed.expanded_bytes += content.size();
      if (packed.expanded_bytes > limits.max_expanded_bytes) {
        return core::PayloadTooLargeError("the app's files are over " +
                                          std::to_string(limits.max_expanded_bytes) + " bytes");
      }
    }
    if (archive_write_header(writer.get(), entry.get()) != ARCHIVE_OK ||
        (!content.empty() && archive_write_data(writer.get(), content.data(), content.size()) !=
                                 static_cast<la_ssize_t>(content.size()))) {
      return core::InternalError(std::string("libarchive: ") + archive_error_string(writer.get()));
    }
  }
  if (archive_write_close(writer.get()) != ARCHIVE_OK) {
    return core::InternalError(std::string("libarchive: ") + archive_error_string(writer.get()));
  }
  if (packed.bytes.size() > limits.max_compressed_bytes) {
    return core::PayloadTooLargeError(
        "the bundle is " + std::to_string(packed.bytes.size()) + " bytes compressed; at most " +
        std::to_string(limits.max_compressed_bytes) + " are accepted");
  }
  std::sort(packed.skipped.begin(), packed.skipped.end());
  return packed;
}

core::Status ExtractBundle(std::string_view bytes, const std::string& destination,
                           const BundleLimits& limits) {
  if (bytes.size() > limits.max_compressed_bytes) {
    return core::PayloadTooLargeError("the bundle is over " +
                                      std::to_string(limits.max_compressed_bytes) + " bytes");
  }
  if (::mkdir(destination.c_str(), 0755) != 0) {
    return core::InternalError("cannot create " + destination + ": " +
                               std::generic_category().message(errno));
  }
  std::unique_ptr<archive, ArchiveReadCloser> reader(archive_read_new());
  core::Status status = core::Status::Ok();
  if (!reader) {
    status = core::InternalError("libarchive: out of memory");
  } else {
    archive_read_support_filter_gzip(reader.get());
    archive_read_support_format_tar(reader.get());
    if (archive_read_open_memory(reader.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) {
      status = core::InvalidArgumentError(std::string("not a bundle (.tar.gz): ") +
                                          archive_error_string(reader.get()));
    } else {
      status = ExtractInto(reader.get(), destination, limits);
    }
  }
  if (!status.ok()) {
    std::error_code ec;
    fs::remove_all(destination, ec);
  }
  return status;
}

namespace {
std::string Hex(const unsigned char* digest, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (std::size_t i = 0; i < n; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}
}  // namespace

std::string BytesHash(std::string_view bytes) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return Hex(digest, sizeof digest);
}

core::Result<std::string> TreeHash(const std::string& dir) {
  std::error_code ec;
  std::set<std::string> names;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::file_status s = it->symlink_status(ec);
    if (ec) break;
    const std::string name = it->path().lexically_relative(dir).generic_string();
    if (fs::is_symlink(s)) {
      return core::InvalidArgumentError(name + " is a symbolic link");
    }
    if (fs::is_regular_file(s)) names.insert(name);
  }
  if (ec) return core::InternalError("cannot read " + dir + ": " + ec.message());
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  auto feed = [&](std::string_view text) {
    crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(text.data()),
                              text.size());
  };
  std::string content;
  for (const std::string& name : names) {
    const fs::path path = fs::path(dir) / name;
    const bool executable =
        (fs::status(path, ec).permissions() & fs::perms::owner_exec) != fs::perms::none;
    RETURN_IF_ERROR(ReadFile(path, content, UINT64_MAX));
    feed(name);
    feed(std::string_view("\0", 1));
    feed(executable ? "x" : "-");
    feed(std::to_string(content.size()));
    feed(std::string_view("\0", 1));
    feed(content);
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&state, digest);
  return Hex(digest, sizeof digest);
}

}  // namespace moatless::manifest
