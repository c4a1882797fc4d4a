// Identifiers: request ids, resource ids and random tokens, all drawn from a Random (the
// CSPRNG in production). Stateless free functions; thread-safe as the Random is.
#pragma once

#include <cstddef>
#include <string>

#include "core/random.h"

namespace moatless::core {

// A random UUID (version 4), lower-case: the format AWS uses for request ids.
std::string NewUuid(Random& random);
// `n_bytes` random bytes as lower-case hex.
std::string RandomHex(Random& random, std::size_t n_bytes);
// `length` characters of RFC 4648 base32 (A-Z2-7): the alphabet of AWS access key ids.
std::string RandomBase32(Random& random, std::size_t length);
// prefix + "-" + 16 hex characters (64 bits), e.g. "dep-3f2a9c0d1e4b5a67".
std::string NewId(Random& random, std::string_view prefix);

// Lower-case hex encoding of arbitrary bytes.
std::string HexEncode(std::string_view bytes);

}  // namespace moatless::core
