// Bundles: how an app travels from the developer's directory to the platform. A bundle is a
// gzip-compressed tar (libarchive) holding `moatless.yaml` and every file it references — each
// function's code directory, request schemas, JWKS files — and nothing else.
//
// PackBundle is deterministic: entries sorted by path, times zero, owner 0, modes 0644 (0755 for
// executables and directories), so the same files give the same bytes and the same hash.
// Symbolic links are not followed and not packed (they are listed in `skipped`).
//
// ExtractBundle treats the bundle as hostile: only regular files and directories are accepted;
// paths must be relative and stay inside the destination (no absolute paths, no `..`, no NUL);
// links, devices, FIFOs and sockets are refused; the compressed size, the expanded size, the
// number of entries and each file's size are capped; files are created with O_EXCL|O_NOFOLLOW
// in a destination directory that it creates itself, so nothing outside it can be written. The
// files are on disk (syncfs) when it returns.
//
// TreeHash is the SHA-256 over a directory's sorted (path, executable bit, content) entries:
// what identifies a function's code in plans ("code changed") and a bundle on disk.
//
// Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "manifest/manifest.h"

namespace moatless::manifest {

struct BundleLimits {
  std::uint64_t max_compressed_bytes = 64ull << 20;
  std::uint64_t max_expanded_bytes = 256ull << 20;
  std::uint64_t max_file_bytes = 64ull << 20;
  std::uint64_t max_entries = 20000;
};

struct PackedBundle {
  std::string bytes;  // .tar.gz
  std::uint64_t files = 0;
  std::uint64_t expanded_bytes = 0;
  std::vector<std::string> skipped;  // symbolic links left out, relative to the manifest
};

// `dir` holds moatless.yaml (read afresh here) and the files `manifest` references.
core::Result<PackedBundle> PackBundle(const std::string& dir, const Manifest& manifest,
                                      const BundleLimits& limits = {});

// Extracts into `destination`, which must not exist (it is created, mode 0755). On failure the
// partial destination is removed. kInvalidArgument naming the entry for anything refused,
// kPayloadTooLarge past a limit.
core::Status ExtractBundle(std::string_view bytes, const std::string& destination,
                           const BundleLimits& limits = {});

// Lower-case hex SHA-256 of the tree under `dir` (symbolic links are an error).
core::Result<std::string> TreeHash(const std::string& dir);
// Lower-case hex SHA-256 of bytes (a bundle as uploaded).
std::string BytesHash(std::string_view bytes);

}  // namespace moatless::manifest
