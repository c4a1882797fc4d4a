// UTF-8 hygiene for text that leaves the process in a format that requires valid UTF-8 (JSON log
// lines, audit records, Prometheus label values). Untrusted bytes (request paths, header values)
// reach those formats through here, so a stray byte cannot make a whole line unparseable.
// Stateless free functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace moatless::observe {

// True if `text` is well-formed UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF).
bool IsValidUtf8(std::string_view text);

// `text` with every ill-formed sequence replaced by U+FFFD (one per maximal invalid subpart, as
// the Unicode standard recommends). Valid input is returned unchanged.
std::string SanitizeUtf8(std::string_view text);

}  // namespace moatless::observe
