// Building blocks shared by the parser (validation) and the compiler (pre-parsing): condition
// operator names, typed condition values (numbers, dates, CIDRs, booleans, base64), policy
// variable templates and the glob matcher for `*` / `?`.
//
// Everything here is pure and stateless; the value types are immutable once built and safe to
// share across threads.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace moatless::policy {

enum class OperatorFamily { kString, kNumeric, kDate, kBool, kBinary, kIp, kArn, kNull };

enum class OperatorTest {
  kEquals,
  kEqualsIgnoreCase,
  kLike,
  kLessThan,
  kLessThanEquals,
  kGreaterThan,
  kGreaterThanEquals,
};

enum class SetQualifier { kNone, kForAllValues, kForAnyValue };

struct ConditionOperator {
  OperatorFamily family = OperatorFamily::kString;
  OperatorTest test = OperatorTest::kEquals;
  bool negated = false;    // StringNotEquals, NotIpAddress, ArnNotLike, ...
  bool if_exists = false;  // ...IfExists
  SetQualifier set = SetQualifier::kNone;
};

// Parses an operator name such as "ForAnyValue:StringNotLikeIfExists" (names compare
// case-insensitively). Unknown names are an InvalidArgument error.
core::Result<ConditionOperator> ParseConditionOperator(std::string_view name);

// Whether policy variables may appear in values of this family (String and Arn only).
bool FamilyAllowsVariables(OperatorFamily family);

// Typed values. Numbers are compared as doubles; dates as milliseconds since the epoch.
core::Result<double> ParseNumber(std::string_view text);
// ISO 8601 (YYYY-MM-DD, optionally THH:MM[:SS[.fff]] and Z or +HH:MM) or epoch seconds.
core::Result<std::int64_t> ParseDateMillis(std::string_view text);
core::Result<bool> ParseBool(std::string_view text);  // "true"/"false", any case
core::Status ValidateBase64(std::string_view text);

struct Cidr {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};
  int prefix = 0;
};
// "203.0.113.0/24", "10.0.0.1" (= /32), "2001:db8::/64" (= /128 when bare).
core::Result<Cidr> ParseCidr(std::string_view text);
// An address (no prefix) as it appears in aws:SourceIp.
std::optional<Cidr> ParseIpAddress(std::string_view text);
bool CidrContains(const Cidr& net, const Cidr& address);

// A string with policy variables: literal text and ${key} / ${key, 'default'} references. Escapes
// ${*} ${?} ${$} become literal characters that never act as wildcards.
struct TemplatePart {
  bool is_variable = false;
  bool literal_escape = false;  // from ${*} / ${?} / ${$}: never a wildcard
  std::string text;             // literal text, or the variable key (lowercased)
  std::optional<std::string> default_value;
};
struct Template {
  std::vector<TemplatePart> parts;
  bool has_variables() const;
};
// Splits text into parts. With variables=false (Version 2008 / absent) the whole text is one
// literal. A malformed ${ (no closing brace, empty key) is an InvalidArgument error.
core::Result<Template> ParseTemplate(std::string_view text, bool variables);

// Glob matching: `*` any sequence, `?` one character (one UTF-8 sequence, not one byte), `\x` the
// literal x (how substituted text and escapes are protected). Iterative, O(n*m) worst case, no
// recursion.
bool GlobMatch(std::string_view pattern, std::string_view text, bool ignore_case);
// Escapes `*`, `?` and `\` so that GlobMatch treats them literally.
std::string GlobEscape(std::string_view text);
bool HasWildcard(std::string_view text);

std::string AsciiLower(std::string_view text);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Splits an ARN-like text at its first five colons into six segments; fewer than six colons
// gives nullopt.
std::optional<std::array<std::string_view, 6>> SplitArn(std::string_view text);

}  // namespace moatless::policy
