// The audit record line format, shared by the writer (audit_log.cc) and the verifier
// (audit_verify.cc). Internal to observe: other modules use audit_log.h. README.md describes the
// format for people and for independent verifiers. Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"

namespace moatless::observe::internal {

// `prev` of the first record of a file.
inline constexpr std::string_view kAuditGenesisPrev =
    "0000000000000000000000000000000000000000000000000000000000000000";
// Prefix of a sensitive field's stored value.
inline constexpr std::string_view kAuditHmacPrefix = "hmac-sha256:";

// Lower-case hex SHA-256 / HMAC-SHA-256 (OpenSSL).
std::string Sha256Hex(std::string_view data);
std::string HmacSha256Hex(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data);

struct AuditEntry {
  std::uint64_t seq = 0;
  std::string time;
  std::string actor;
  std::string action;
  std::string resource;
  std::string outcome;  // "allowed", "denied" or "error"
  std::string request_id;
  std::string reason;
  std::map<std::string, std::string> fields;  // sensitive values already "hmac-sha256:<hex>"
  std::string prev;
};

// What `hash` covers: a JSON object with the keys seq, time, actor, action, resource, outcome,
// request_id, reason, fields (its keys sorted bytewise), prev — in this order, no whitespace,
// strings escaped by Boost.JSON (", \ and control characters only; \b \t \n \f \r, else \u00xx).
std::string CanonicalBody(const AuditEntry& entry);
// The stored line (without its newline): the body with `,"hash":"<hash>"` before its last brace.
std::string LineWithHash(std::string_view body, std::string_view hash);

struct ParsedAuditLine {
  AuditEntry entry;
  std::string hash;
};
// Reads a line into its parts; any deviation from the record schema (not JSON, a key missing or
// of the wrong type, a bad outcome, hash or prev not 64 hex digits) is an InvalidArgument whose
// message says what. Extra keys are ignored here: the verifier's canonical-form check catches them.
core::Result<ParsedAuditLine> ParseAuditLine(std::string_view line);

bool IsLowerHex64(std::string_view s);

}  // namespace moatless::observe::internal
