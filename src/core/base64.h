// Standard base64 (RFC 4648 §4, with padding), for wire formats that carry bytes as text: session
// tokens, X-Amz-Log-Result, the Client-Context header. libsodium does the work.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace moatless::core {

std::string Base64Encode(std::string_view bytes);
// nullopt unless `text` is well-formed padded base64 (no whitespace).
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace moatless::core
