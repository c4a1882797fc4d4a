// How a schema becomes something valijson 1.0 can run safely:
//
//  1. Boost.JSON parses the document (size and nesting bounded by SchemaLimits).
//  2. SchemaCompiler walks every schema location of the document: it checks each keyword's type,
//     translates and compiles each regex with RE2, records `$id`/`id` resources and anchors, and
//     resolves every `$ref` to a JSON pointer inside the document (RFC 3986 resolution against the
//     base URI in effect). References that leave the document are refused; so are cycles of
//     references that never consume input, and chains of them longer than max_depth.
//  3. It then writes a normalised copy for valijson: only the keywords of the draft, each `$ref`
//     rewritten to "#/moatless_ref_targets/N" (every referenced schema copied once into that
//     array, so valijson never resolves a URI or a pointer with empty tokens, and never mixes up
//     two schemas in its path-keyed cache), `pattern`s and `patternProperties` keys replaced by
//     the index of their compiled RE2, enum and const replaced by the index of their value (a
//     custom constraint compares them: valijson's comparison stops at NUL characters), no `$id`,
//     no `format`, integral numbers where valijson wants integers.
//  4. valijson's SchemaParser builds its Schema from that copy (with VALIJSON_USE_EXCEPTIONS, so a
//     surprise is an exception we catch, never abort()). The parser recurses once per level of
//     every reference it follows, so it runs on a thread whose stack is sized for the copy.
//
// valijson 1.0 has no pluggable regex engine: `pattern` and patternProperties call std::regex
// inside ValidationVisitor. So validation runs valijson's ValidationVisitor over our own adapter
// type (InstanceAdapter), for which the visits that matter are explicitly specialised below:
// every regex goes to RE2, the walk is bounded (a step budget, a nesting limit, a cap on collected
// errors), uniqueItems sorts instead of comparing all pairs, messages are ours. std::regex is
// never constructed. valijson threads exactly one mutable object through all nested visitors —
// the std::regex cache it passes by reference; we pass a Run that derives from that map type (and
// is never used as a map) and get it back with a static_cast. Because InstanceAdapter lives in
// this file's anonymous namespace, the specialisations cannot collide with any other use of
// valijson in the program. (Another file that includes valijson must define
// VALIJSON_USE_EXCEPTIONS=1 too: its error functions are inline and must be the same everywhere.)
#define VALIJSON_USE_EXCEPTIONS 1  // before any valijson header: errors throw instead of abort()

#include "gateway/schema_validator.h"

#include <pthread.h>
#include <re2/re2.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <valijson/adapters/boost_json_adapter.hpp>
#include <valijson/internal/basic_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validation_visitor.hpp>
#include <vector>

#include "core/check.h"

namespace moatless::gateway {
namespace {

namespace json = boost::json;

constexpr std::string_view kTargetsKey = "moatless_ref_targets";
// The base URI of a document without `$id`: relative references resolve against it, and
// whatever they resolve to that is not this document is refused as remote.
constexpr std::string_view kDefaultBase = "https://schema.invalid/root.json";
constexpr std::size_t kMaxNameInMessage = 64;      // bytes of a document-supplied name shown
constexpr std::size_t kMaxPatternInMessage = 128;  // bytes of a pattern shown
constexpr std::int64_t kPatternMemory = 4 << 20;   // RE2 budget per pattern (program + DFA)
// Nested subschema evaluations during validation (about 0.4 KiB of stack each, measured): beyond
// this the document is refused as too complex rather than risking the caller's stack.
constexpr std::size_t kMaxValidationDepth = 1000;
// Ceiling of SchemaLimits::max_depth and max_instance_depth.
constexpr std::size_t kMaxNesting = 256;
// valijson's SchemaParser recurses once per schema level, following references; it runs on a
// thread of its own with this much stack per level of the deepest path it could take, plus a
// base. Measured per level: 1.3 KiB optimised, 6 KiB at -O0, 12 to 16 KiB with AddressSanitizer.
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kParserStackPerLevel = 4 << 10;
#else
constexpr std::size_t kParserStackPerLevel = 32 << 10;
#endif
constexpr std::size_t kParserStackBase = 4 << 20;
constexpr std::size_t kParserStackMax = std::size_t{1} << 30;

// ---- Small string helpers -------------------------------------------------------------------

// Cuts s to at most max bytes without splitting a UTF-8 sequence; marks the cut with "...".
std::string Shorten(std::string_view s, std::size_t max) {
  if (s.size() <= max) return std::string(s);
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut)) + "...";
}

std::string Quote(std::string_view name) { return "'" + Shorten(name, kMaxNameInMessage) + "'"; }

std::string EscapeToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Child(std::string_view pointer, std::string_view token) {
  return std::string(pointer) + "/" + EscapeToken(token);
}

std::string Child(std::string_view pointer, std::size_t index) {
  return std::string(pointer) + "/" + std::to_string(index);
}

// Splits an RFC 6901 pointer ("" or "/a/b~1c") into unescaped tokens; nullopt if malformed.
std::optional<std::vector<std::string>> SplitPointer(std::string_view pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) return tokens;
  if (pointer[0] != '/') return std::nullopt;
  std::size_t start = 1;
  while (true) {
    const std::size_t end = std::min(pointer.find('/', start), pointer.size());
    std::string token;
    for (std::size_t i = start; i < end; ++i) {
      if (pointer[i] != '~') {
        token += pointer[i];
        continue;
      }
      if (i + 1 >= end || (pointer[i + 1] != '0' && pointer[i + 1] != '1')) return std::nullopt;
      token += pointer[i + 1] == '0' ? '~' : '/';
      ++i;
    }
    tokens.push_back(std::move(token));
    if (end == pointer.size()) break;
    start = end + 1;
  }
  return tokens;
}

std::string JoinPointer(const std::vector<std::string>& tokens) {
  std::string out;
  for (const std::string& token : tokens) out += "/" + EscapeToken(token);
  return out;
}

// The value at `pointer` in `root`, or nullptr. Array indices must be canonical ("0", "17").
const json::value* Find(const json::value& root, std::string_view pointer) {
  const std::optional<std::vector<std::string>> tokens = SplitPointer(pointer);
  if (!tokens) return nullptr;
  const json::value* at = &root;
  for (const std::string& token : *tokens) {
    if (const json::object* object = at->if_object()) {
      at = object->if_contains(token);
    } else if (const json::array* array = at->if_array()) {
      std::size_t index = 0;
      const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), index);
      if (ec != std::errc() || end != token.data() + token.size() || token.empty() ||
          (token.size() > 1 && token[0] == '0') || index >= array->size()) {
        return nullptr;
      }
      at = &(*array)[index];
    } else {
      return nullptr;
    }
    if (at == nullptr) return nullptr;
  }
  return at;
}

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    unsigned value = 0;
    if (i + 2 >= s.size()) return std::nullopt;
    const auto [end, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, value, 16);
    if (ec != std::errc() || end != s.data() + i + 3) return std::nullopt;
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

// Shortest decimal form of a number for messages ("5", "0.1", "1e+300").
std::string FormatNumber(double d) {
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, d);
  return ec == std::errc() ? std::string(buffer, end) : std::to_string(d);
}

double ToDouble(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return v.get_double();
}

std::string_view KindName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "integer";
    case json::kind::double_:
      return "number";
    case json::kind::string:
      return "string";
    case json::kind::array:
      return "array";
    case json::kind::object:
      return "object";
  }
  return "value";
}

// Code points of a UTF-8 string (JSON Schema lengths count code points).
std::size_t CodePoints(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// ---- RFC 3986 URI references ----------------------------------------------------------------

struct UriParts {
  std::optional<std::string> scheme;
  std::optional<std::string> authority;
  std::string path;
  std::optional<std::string> query;
  std::optional<std::string> fragment;
};

// Splits and resolves URI references with RFC 3986's own algorithms: the decomposition regex of
// appendix B (run on RE2) and the reference resolution of section 5.2.
class UriResolver {
 public:
  UriResolver() : splitter_(R"((?s)^(([^:/?#]+):)?(//([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))?$)") {}

  std::optional<UriParts> Split(std::string_view uri) const {
    re2::StringPiece groups[10];
    if (!splitter_.ok() || !splitter_.Match(re2::StringPiece(uri.data(), uri.size()), 0, uri.size(),
                                            RE2::ANCHOR_BOTH, groups, 10)) {
      return std::nullopt;
    }
    auto group = [&](int i) -> std::optional<std::string> {
      if (groups[i].data() == nullptr) return std::nullopt;
      return std::string(groups[i].data(), groups[i].size());
    };
    UriParts parts;
    parts.scheme = group(2);
    parts.authority = group(4);
    parts.path = group(5).value_or("");
    parts.query = group(7);
    parts.fragment = group(9);
    return parts;
  }

  // `reference` resolved against the absolute `base`.
  std::optional<UriParts> Resolve(std::string_view base, std::string_view reference) const {
    const std::optional<UriParts> b = Split(base);
    const std::optional<UriParts> r = Split(reference);
    if (!b || !r) return std::nullopt;
    UriParts t;
    if (r->scheme) {
      t.scheme = r->scheme;
      t.authority = r->authority;
      t.path = RemoveDotSegments(r->path);
      t.query = r->query;
    } else {
      if (r->authority) {
        t.authority = r->authority;
        t.path = RemoveDotSegments(r->path);
        t.query = r->query;
      } else {
        if (r->path.empty()) {
          t.path = b->path;
          t.query = r->query ? r->query : b->query;
        } else {
          t.path = RemoveDotSegments(r->path[0] == '/' ? r->path : Merge(*b, r->path));
          t.query = r->query;
        }
        t.authority = b->authority;
      }
      t.scheme = b->scheme;
    }
    t.fragment = r->fragment;
    return t;
  }

  // Section 5.3, without the fragment.
  static std::string Document(const UriParts& parts) {
    std::string out;
    if (parts.scheme) out += *parts.scheme + ":";
    if (parts.authority) out += "//" + *parts.authority;
    out += parts.path;
    if (parts.query) out += "?" + *parts.query;
    return out;
  }

 private:
  static std::string Merge(const UriParts& base, const std::string& path) {
    if (base.authority && base.path.empty()) return "/" + path;
    const std::size_t slash = base.path.rfind('/');
    return slash == std::string::npos ? path : base.path.substr(0, slash + 1) + path;
  }

  static std::string RemoveDotSegments(std::string input) {
    std::string output;
    while (!input.empty()) {
      if (input.starts_with("../")) {
        input.erase(0, 3);
      } else if (input.starts_with("./")) {
        input.erase(0, 2);
      } else if (input.starts_with("/./")) {
        input.erase(0, 2);
      } else if (input == "/.") {
        input = "/";
      } else if (input.starts_with("/../") || input == "/..") {
        input = input == "/.." ? "/" : input.substr(3);
        const std::size_t slash = output.rfind('/');
        output.erase(slash == std::string::npos ? 0 : slash);
      } else if (input == "." || input == "..") {
        input.clear();
      } else {
        const std::size_t next = input.find('/', 1);
        output += input.substr(0, next);
        input.erase(0, next == std::string::npos ? input.size() : next);
      }
    }
    return output;
  }

  RE2 splitter_;
};

// ---- ECMA-262 patterns on RE2 ---------------------------------------------------------------

// ECMA-262's WhiteSpace and LineTerminator code points, as members of an RE2 character class.
constexpr std::string_view kEcmaSpace =
    R"(\t\n\v\f\r \x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{feff})";

std::string CodePointEscape(std::uint32_t cp) {
  char buffer[16];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, cp, 16);
  return "\\x{" + std::string(buffer, ec == std::errc() ? end : buffer) + "}";
}

std::optional<std::uint32_t> ParseHex(std::string_view s) {
  std::uint32_t value = 0;
  if (s.empty()) return std::nullopt;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, 16);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

// ECMA-262 Unicode property names (General_Category long names and aliases) to RE2's names.
std::string_view RE2PropertyName(std::string_view name) {
  static constexpr std::pair<std::string_view, std::string_view> kAliases[] = {
      {"Letter", "L"},
      {"Uppercase_Letter", "Lu"},
      {"Lowercase_Letter", "Ll"},
      {"Titlecase_Letter", "Lt"},
      {"Modifier_Letter", "Lm"},
      {"Other_Letter", "Lo"},
      {"Mark", "M"},
      {"Combining_Mark", "M"},
      {"Nonspacing_Mark", "Mn"},
      {"Spacing_Mark", "Mc"},
      {"Enclosing_Mark", "Me"},
      {"Number", "N"},
      {"Decimal_Number", "Nd"},
      {"digit", "Nd"},
      {"Letter_Number", "Nl"},
      {"Other_Number", "No"},
      {"Punctuation", "P"},
      {"punct", "P"},
      {"Connector_Punctuation", "Pc"},
      {"Dash_Punctuation", "Pd"},
      {"Open_Punctuation", "Ps"},
      {"Close_Punctuation", "Pe"},
      {"Initial_Punctuation", "Pi"},
      {"Final_Punctuation", "Pf"},
      {"Other_Punctuation", "Po"},
      {"Symbol", "S"},
      {"Math_Symbol", "Sm"},
      {"Currency_Symbol", "Sc"},
      {"Modifier_Symbol", "Sk"},
      {"Other_Symbol", "So"},
      {"Separator", "Z"},
      {"Space_Separator", "Zs"},
      {"Line_Separator", "Zl"},
      {"Paragraph_Separator", "Zp"},
      {"Other", "C"},
      {"Control", "Cc"},
      {"cntrl", "Cc"},
      {"Format", "Cf"},
      {"Surrogate", "Cs"},
      {"Private_Use", "Co"},
  };
  for (const auto& [from, to] : kAliases) {
    if (name == from) return to;
  }
  return name;
}

// Rewrites an ECMA-262 regular expression into RE2 syntax with the same meaning, or says why it
// cannot: RE2 has no backreferences and no lookaround (that is what makes it linear-time).
core::Result<std::string> TranslateEcmaRegex(std::string_view p) {
  auto refuse = [](std::string why) { return core::InvalidArgumentError(std::move(why)); };
  std::string out;
  bool in_class = false;
  std::size_t i = 0;
  while (i < p.size()) {
    const char c = p[i];
    if (c == '\\') {
      if (i + 1 >= p.size()) return refuse("a pattern cannot end with a backslash");
      const char e = p[i + 1];
      switch (e) {
        case 'd':
        case 'D':
        case 'w':
        case 'W':
        case 't':
        case 'n':
        case 'r':
        case 'f':
        case 'v':
          out += '\\';
          out += e;
          i += 2;
          break;
        case 'b':
        case 'B':
          if (in_class && e == 'B') return refuse("\\B is not allowed in a character class");
          out += in_class ? std::string("\\x08") : std::string("\\") + e;
          i += 2;
          break;
        case 's':
          out += in_class ? std::string(kEcmaSpace) : "[" + std::string(kEcmaSpace) + "]";
          i += 2;
          break;
        case 'S':
          out += in_class ? std::string("\\S") : "[^" + std::string(kEcmaSpace) + "]";
          i += 2;
          break;
        case 'c': {
          const char letter = i + 2 < p.size() ? p[i + 2] : '\0';
          if (!((letter >= 'a' && letter <= 'z') || (letter >= 'A' && letter <= 'Z'))) {
            return refuse("\\c must be followed by a letter");
          }
          out += CodePointEscape(static_cast<std::uint32_t>(letter) % 32);
          i += 3;
          break;
        }
        case 'x': {
          const std::optional<std::uint32_t> cp =
              i + 4 <= p.size() ? ParseHex(p.substr(i + 2, 2)) : std::nullopt;
          if (!cp) return refuse("\\x must be followed by two hexadecimal digits");
          out += CodePointEscape(*cp);
          i += 4;
          break;
        }
        case 'u': {
          std::optional<std::uint32_t> cp;
          if (i + 2 < p.size() && p[i + 2] == '{') {
            const std::size_t close = p.find('}', i + 3);
            if (close != std::string_view::npos && close - (i + 3) <= 6) {
              cp = ParseHex(p.substr(i + 3, close - (i + 3)));
            }
            if (!cp || *cp > 0x10FFFF) return refuse("invalid \\u{...} escape");
            i = close + 1;
          } else {
            cp = i + 6 <= p.size() ? ParseHex(p.substr(i + 2, 4)) : std::nullopt;
            if (!cp) return refuse("\\u must be followed by four hexadecimal digits");
            i += 6;
            if (*cp >= 0xD800 && *cp <= 0xDBFF && i + 6 <= p.size() && p[i] == '\\' &&
                p[i + 1] == 'u') {
              const std::optional<std::uint32_t> low = ParseHex(p.substr(i + 2, 4));
              if (low && *low >= 0xDC00 && *low <= 0xDFFF) {
                cp = 0x10000 + ((*cp - 0xD800) << 10) + (*low - 0xDC00);
                i += 6;
              }
            }
          }
          if (*cp >= 0xD800 && *cp <= 0xDFFF) {
            return refuse("lone surrogate escapes cannot match UTF-8 text");
          }
          out += CodePointEscape(*cp);
          break;
        }
        case '0':
          if (i + 2 < p.size() && p[i + 2] >= '0' && p[i + 2] <= '9') {
            return refuse("octal escapes are not supported");
          }
          out += "\\x{0}";
          i += 2;
          break;
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7':
        case '8':
        case '9':
          return refuse(std::string("backreferences (\\") + e +
                        ") are not supported: patterns run on RE2, in linear time");
        case 'k':
          return refuse(
              "named backreferences (\\k<name>) are not supported: patterns run on RE2, in "
              "linear time");
        case 'p':
        case 'P': {
          const std::size_t close = p.find('}', i + 2);
          if (i + 2 >= p.size() || p[i + 2] != '{' || close == std::string_view::npos) {
            return refuse(std::string("\\") + e + " must be followed by {name}");
          }
          std::string_view name = p.substr(i + 3, close - (i + 3));
          if (const std::size_t eq = name.find('='); eq != std::string_view::npos) {
            const std::string_view key = name.substr(0, eq);
            if (key != "General_Category" && key != "gc" && key != "Script" && key != "sc") {
              return refuse("unsupported Unicode property \\" + std::string(1, e) + "{" +
                            std::string(name) + "}");
            }
            name = name.substr(eq + 1);
          }
          out += std::string("\\") + e + "{" + std::string(RE2PropertyName(name)) + "}";
          i = close + 1;
          break;
        }
        default:
          if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) {
            return refuse(std::string("unknown escape \\") + e);
          }
          if (static_cast<unsigned char>(e) >= 0x80) {
            ++i;  // "\é" is "é": copy the character itself
          } else {
            out += '\\';
            out += e;
            i += 2;
          }
          break;
      }
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c == '[' ? std::string("\\[") : std::string(1, c);
      ++i;
      continue;
    }
    const std::string_view rest = p.substr(i);
    switch (c) {
      case '[':
        if (rest.starts_with("[^]")) {  // ECMA: any character
          out += "[\\x{0}-\\x{10ffff}]";
          i += 3;
        } else if (rest.starts_with("[]")) {  // ECMA: no character
          out += "[^\\x{0}-\\x{10ffff}]";
          i += 2;
        } else {
          in_class = true;
          out += '[';
          ++i;
          if (i < p.size() && p[i] == '^') {
            out += '^';
            ++i;
          }
        }
        break;
      case '.':  // ECMA's dot excludes every line terminator, RE2's only \n
        out += "[^\\n\\r\\x{2028}\\x{2029}]";
        ++i;
        break;
      case '(':
        if (rest.starts_with("(?=") || rest.starts_with("(?!")) {
          return refuse("lookahead " + std::string(rest.substr(0, 3)) +
                        " is not supported: patterns run on RE2, in linear time");
        }
        if (rest.starts_with("(?<=") || rest.starts_with("(?<!")) {
          return refuse("lookbehind " + std::string(rest.substr(0, 4)) +
                        " is not supported: patterns run on RE2, in linear time");
        }
        if (rest.starts_with("(?<")) {
          out += "(?P<";
          i += 3;
        } else if (rest.starts_with("(?:")) {
          out += "(?:";
          i += 3;
        } else if (rest.starts_with("(?")) {
          return refuse("inline modifiers such as (?i) are not ECMA-262");
        } else {
          out += '(';
          ++i;
        }
        break;
      default:
        out += c;
        ++i;
        break;
    }
  }
  return out;
}

// ---- The instance adapter: valijson's view of a Boost.JSON document -------------------------

class InstanceAdapter;
class InstanceArrayIterator;
class InstanceObjectIterator;
using InstanceObjectMember = std::pair<std::string, InstanceAdapter>;

class InstanceArray {
 public:
  using const_iterator = InstanceArrayIterator;
  using iterator = InstanceArrayIterator;

  InstanceArray() = default;
  explicit InstanceArray(const json::array& array) : array_(&array) {}

  InstanceArrayIterator begin() const;
  InstanceArrayIterator end() const;
  std::size_t size() const { return array_ == nullptr ? 0 : array_->size(); }

 private:
  const json::array* array_ = nullptr;
};

class InstanceObject {
 public:
  using const_iterator = InstanceObjectIterator;
  using iterator = InstanceObjectIterator;

  InstanceObject() = default;
  explicit InstanceObject(const json::object& object) : object_(&object) {}

  InstanceObjectIterator begin() const;
  InstanceObjectIterator end() const;
  InstanceObjectIterator find(const std::string& name) const;
  std::size_t size() const { return object_ == nullptr ? 0 : object_->size(); }

 private:
  const json::object* object_ = nullptr;
};

// The ValueType of valijson's BasicAdapter. Unlike valijson's Boost.JSON adapter it counts uint64
// values (above INT64_MAX) as numbers.
class InstanceValue {
 public:
  InstanceValue() = default;
  explicit InstanceValue(const json::value& value) : value_(&value) {}

  valijson::adapters::FrozenValue* freeze() const {
    return new valijson::adapters::BoostJsonFrozenValue(value_ ? *value_ : json::value());
  }
  std::optional<InstanceArray> getArrayOptional() const {
    if (isArray()) return InstanceArray(value_->get_array());
    return std::nullopt;
  }
  bool getArraySize(std::size_t& result) const {
    if (!isArray()) return false;
    result = value_->get_array().size();
    return true;
  }
  bool getBool(bool& result) const {
    if (!isBool()) return false;
    result = value_->get_bool();
    return true;
  }
  bool getDouble(double& result) const {
    if (!isDouble()) return false;
    result = ToDouble(*value_);
    return true;
  }
  bool getInteger(std::int64_t& result) const {
    if (!isInteger()) return false;
    result = value_->get_int64();
    return true;
  }
  std::optional<InstanceObject> getObjectOptional() const {
    if (isObject()) return InstanceObject(value_->get_object());
    return std::nullopt;
  }
  bool getObjectSize(std::size_t& result) const {
    if (!isObject()) return false;
    result = value_->get_object().size();
    return true;
  }
  bool getString(std::string& result) const {
    if (!isString()) return false;
    result.assign(value_->get_string().data(), value_->get_string().size());
    return true;
  }
  static bool hasStrictTypes() { return true; }
  bool isArray() const { return value_ && value_->is_array(); }
  bool isBool() const { return value_ && value_->is_bool(); }
  bool isDouble() const { return value_ && (value_->is_double() || value_->is_uint64()); }
  bool isInteger() const { return value_ && value_->is_int64(); }
  bool isNull() const { return !value_ || value_->is_null(); }
  bool isNumber() const { return value_ && value_->is_number(); }
  bool isObject() const { return value_ && value_->is_object(); }
  bool isString() const { return value_ && value_->is_string(); }

 private:
  const json::value* value_ = nullptr;
};

class InstanceAdapter
    : public valijson::adapters::BasicAdapter<InstanceAdapter, InstanceArray, InstanceObjectMember,
                                              InstanceObject, InstanceValue> {
 public:
  InstanceAdapter() = default;
  explicit InstanceAdapter(const json::value& value)
      : BasicAdapter(InstanceValue(value)), raw_(&value) {}

  const json::value& raw() const {
    MOATLESS_CHECK(raw_ != nullptr, "InstanceAdapter without a value");
    return *raw_;
  }

 private:
  const json::value* raw_ = nullptr;
};

class InstanceArrayIterator {
 public:
  using iterator_category = std::bidirectional_iterator_tag;
  using value_type = InstanceAdapter;
  using difference_type = std::ptrdiff_t;
  using pointer = InstanceAdapter*;
  using reference = InstanceAdapter&;

  explicit InstanceArrayIterator(json::array::const_iterator it) : it_(it) {}

  InstanceAdapter operator*() const { return InstanceAdapter(*it_); }
  valijson::adapters::DerefProxy<InstanceAdapter> operator->() const {
    return valijson::adapters::DerefProxy<InstanceAdapter>(**this);
  }
  bool operator==(const InstanceArrayIterator& other) const { return it_ == other.it_; }
  const InstanceArrayIterator& operator++() {
    ++it_;
    return *this;
  }
  InstanceArrayIterator operator++(int) {
    InstanceArrayIterator before = *this;
    ++it_;
    return before;
  }
  const InstanceArrayIterator& operator--() {
    --it_;
    return *this;
  }
  void advance(std::ptrdiff_t n) { it_ += n; }

 private:
  json::array::const_iterator it_;
};

class InstanceObjectIterator {
 public:
  using iterator_category = std::bidirectional_iterator_tag;
  using value_type = InstanceObjectMember;
  using difference_type = std::ptrdiff_t;
  using pointer = InstanceObjectMember*;
  using reference = InstanceObjectMember&;

  explicit InstanceObjectIterator(json::object::const_iterator it) : it_(it) {}

  InstanceObjectMember operator*() const {
    return InstanceObjectMember(std::string(it_->key()), InstanceAdapter(it_->value()));
  }
  valijson::adapters::DerefProxy<InstanceObjectMember> operator->() const {
    return valijson::adapters::DerefProxy<InstanceObjectMember>(**this);
  }
  bool operator==(const InstanceObjectIterator& other) const { return it_ == other.it_; }
  const InstanceObjectIterator& operator++() {
    ++it_;
    return *this;
  }
  InstanceObjectIterator operator++(int) {
    InstanceObjectIterator before = *this;
    ++it_;
    return before;
  }
  const InstanceObjectIterator& operator--() {
    --it_;
    return *this;
  }

 private:
  json::object::const_iterator it_;
};

InstanceArrayIterator InstanceArray::begin() const {
  return InstanceArrayIterator(array_ ? array_->begin() : nullptr);
}
InstanceArrayIterator InstanceArray::end() const {
  return InstanceArrayIterator(array_ ? array_->end() : nullptr);
}
InstanceObjectIterator InstanceObject::begin() const {
  return InstanceObjectIterator(object_ ? object_->begin() : nullptr);
}
InstanceObjectIterator InstanceObject::end() const {
  return InstanceObjectIterator(object_ ? object_->end() : nullptr);
}
InstanceObjectIterator InstanceObject::find(const std::string& name) const {
  return InstanceObjectIterator(object_ ? object_->find(name) : nullptr);
}

// A total order on JSON values that agrees with JSON Schema equality (numbers by value whatever
// their representation, objects whatever their member order): uniqueItems sorts with it.
int CompareNumbers(const json::value& a, const json::value& b) {
  // Exact comparison of an int64 or uint64 with a double.
  auto compare_integer_double = [](auto i, double d) -> int {
    using I = decltype(i);
    const double lowest = static_cast<double>(std::numeric_limits<I>::min());
    const double past_max = std::ldexp(1.0, std::numeric_limits<I>::digits);  // 2^63 or 2^64
    if (d < lowest) return 1;
    if (d >= past_max) return -1;
    const I truncated = static_cast<I>(d);
    if (i != truncated) return i < truncated ? -1 : 1;
    const double fraction = d - static_cast<double>(truncated);
    return fraction > 0 ? -1 : (fraction < 0 ? 1 : 0);
  };
  auto sign = [](auto x, auto y) { return x < y ? -1 : (y < x ? 1 : 0); };
  if (a.is_double() && b.is_double()) return sign(a.get_double(), b.get_double());
  if (a.is_double()) return -CompareNumbers(b, a);
  if (b.is_double()) {
    return a.is_int64() ? compare_integer_double(a.get_int64(), b.get_double())
                        : compare_integer_double(a.get_uint64(), b.get_double());
  }
  if (a.is_int64() && b.is_int64()) return sign(a.get_int64(), b.get_int64());
  if (a.is_uint64() && b.is_uint64()) return sign(a.get_uint64(), b.get_uint64());
  if (a.is_int64()) {  // b is uint64 > INT64_MAX
    return a.get_int64() < 0 ? -1 : sign(static_cast<std::uint64_t>(a.get_int64()), b.get_uint64());
  }
  return -CompareNumbers(b, a);
}

int Rank(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return 0;
    case json::kind::bool_:
      return 1;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return 2;
    case json::kind::string:
      return 3;
    case json::kind::array:
      return 4;
    case json::kind::object:
      return 5;
  }
  return 6;
}

int CompareJson(const json::value& a, const json::value& b) {
  const int ra = Rank(a);
  const int rb = Rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 0:
      return 0;
    case 1:
      return static_cast<int>(a.get_bool()) - static_cast<int>(b.get_bool());
    case 2:
      return CompareNumbers(a, b);
    case 3: {
      const int c = a.get_string().subview().compare(b.get_string().subview());
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case 4: {
      const json::array& x = a.get_array();
      const json::array& y = b.get_array();
      for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
        if (const int c = CompareJson(x[i], y[i]); c != 0) return c;
      }
      return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
    }
    default: {
      const json::object& x = a.get_object();
      const json::object& y = b.get_object();
      if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
      auto sorted = [](const json::object& o) {
        std::vector<const json::key_value_pair*> members;
        for (const json::key_value_pair& member : o) members.push_back(&member);
        std::sort(members.begin(), members.end(),
                  [](const auto* l, const auto* r) { return l->key() < r->key(); });
        return members;
      };
      const auto xs = sorted(x);
      const auto ys = sorted(y);
      for (std::size_t i = 0; i < xs.size(); ++i) {
        if (const int c = xs[i]->key().compare(ys[i]->key()); c != 0) return c < 0 ? -1 : 1;
      }
      for (std::size_t i = 0; i < xs.size(); ++i) {
        if (const int c = CompareJson(xs[i]->value(), ys[i]->value()); c != 0) return c;
      }
      return 0;
    }
  }
}

}  // namespace

// ---- The compiled form ----------------------------------------------------------------------

struct CompiledPattern {
  std::string source;  // as written in the schema (ECMA-262)
  std::unique_ptr<RE2> re;
};

struct CompiledSchema::Impl {
  SchemaDraft draft = SchemaDraft::kDraft7;
  SchemaLimits limits;
  std::vector<CompiledPattern> patterns;  // `pattern` / patternProperties keys hold an index here
  std::deque<json::value> constants;      // enum (an array) and const values, by index
  valijson::Schema schema;

  // The pattern behind a token the compiler wrote into valijson's copy of the schema.
  const CompiledPattern* PatternFor(std::string_view token) const {
    std::size_t index = 0;
    const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), index);
    if (ec != std::errc() || end != token.data() + token.size() || index >= patterns.size()) {
      return nullptr;
    }
    return &patterns[index];
  }
};

namespace {

// The state of one Validate pass, reached from every nested visitor (see the top of the file).
struct Run : std::unordered_map<std::string, std::regex> {
  Run(const CompiledSchema::Impl& schema, std::size_t cap) : impl(&schema), collect_cap(cap) {}

  static Run& Of(std::unordered_map<std::string, std::regex>& cache) {
    return static_cast<Run&>(cache);
  }

  // While collecting errors: enough are in, stop descending.
  bool Full(const valijson::ValidationResults* results) const {
    return results != nullptr && results->numErrors() >= collect_cap;
  }

  const CompiledSchema::Impl* impl;
  std::size_t collect_cap;
  std::size_t steps = 0;
  std::size_t depth = 0;   // nested subschema evaluations right now (each is a few stack frames)
  bool exhausted = false;  // out of steps or depth: the outcome is "invalid", whatever was returned
};

std::string Bracket(std::string_view name) { return "[" + std::string(name) + "]"; }

constexpr std::string_view kEnumKey = "moatless_enum";
constexpr std::string_view kConstKey = "moatless_const";

// enum and const, compared with CompareJson: valijson's own comparison reads strings up to their
// first NUL and numbers as doubles.
class ValueConstraint : public valijson::constraints::PolyConstraint {
 public:
  ValueConstraint(const json::value& expected, bool is_enum)
      : expected_(&expected), is_enum_(is_enum) {}

  bool validate(const valijson::adapters::Adapter& target, const std::vector<std::string>& context,
                valijson::ValidationResults* results) const override {
    const auto* instance = dynamic_cast<const InstanceAdapter*>(&target);
    if (instance == nullptr) return false;  // validation always runs on InstanceAdapter
    const json::value& value = instance->raw();
    bool valid = false;
    if (is_enum_) {
      const json::array& values = expected_->get_array();
      valid = std::any_of(values.begin(), values.end(),
                          [&](const json::value& v) { return CompareJson(v, value) == 0; });
    } else {
      valid = CompareJson(*expected_, value) == 0;
    }
    if (!valid && results != nullptr) {
      results->pushError(context, is_enum_ ? "must be one of the values listed in enum"
                                           : "must equal the value of const");
    }
    return valid;
  }

 private:
  valijson::constraints::Constraint* cloneInto(void* memory) const override {
    return new (memory) ValueConstraint(*this);
  }
  std::size_t sizeOf() const override { return sizeof(ValueConstraint); }

  const json::value* expected_;  // in CompiledSchema::Impl::constants
  bool is_enum_;
};

// Builds a ValueConstraint from the index the compiler wrote under kEnumKey / kConstKey.
class ValueConstraintBuilder : public valijson::ConstraintBuilder {
 public:
  ValueConstraintBuilder(const CompiledSchema::Impl& impl, bool is_enum)
      : impl_(impl), is_enum_(is_enum) {}

  valijson::constraints::Constraint* make(const valijson::adapters::Adapter& node) const override {
    const std::int64_t index = node.getInteger();
    if (index < 0 || static_cast<std::size_t>(index) >= impl_.constants.size()) {
      valijson::throwRuntimeError("unknown enum/const index");
    }
    return new ValueConstraint(impl_.constants[static_cast<std::size_t>(index)], is_enum_);
  }

 private:
  const CompiledSchema::Impl& impl_;
  bool is_enum_;
};

}  // namespace
}  // namespace moatless::gateway

// ---- valijson's visitor, specialised for InstanceAdapter ------------------------------------

namespace valijson {

using MoatlessVisitor = ValidationVisitor<moatless::gateway::InstanceAdapter>;

template <>
bool MoatlessVisitor::validateSchema(const Subschema& subschema);
template <>
bool MoatlessVisitor::visit(const constraints::FormatConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::LinearItemsConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::MaximumConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::MaxItemsConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::MaxLengthConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::MaxPropertiesConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::MinimumConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::MinItemsConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::MinLengthConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::MinPropertiesConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::MultipleOfDoubleConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::MultipleOfIntConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::PatternConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::PropertiesConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::PropertyNamesConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::RequiredConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::SingularItemsConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::TypeConstraint& constraint);
template <>
bool MoatlessVisitor::visit(const constraints::UniqueItemsConstraint& constraint);

// Bounded: every subschema evaluation is a step of the run's budget, and once enough errors are
// collected nothing more is evaluated (the document is already known to be invalid).
template <>
bool MoatlessVisitor::validateSchema(const Subschema& subschema) {
  moatless::gateway::Run& run = moatless::gateway::Run::Of(m_regexesCache);
  if (run.exhausted) return false;
  if (++run.steps > run.impl->limits.max_steps ||
      run.depth >= moatless::gateway::kMaxValidationDepth) {
    run.exhausted = true;
    return false;
  }
  if (run.Full(m_results)) return false;
  struct Nesting {
    explicit Nesting(std::size_t& d) : depth(d) { ++depth; }
    ~Nesting() { --depth; }
    std::size_t& depth;
  } nesting(run.depth);
  if (subschema.getAlwaysInvalid()) {
    if (m_results) m_results->pushError(m_context, "no value is allowed here");
    return false;
  }
  Subschema::ApplyFunction fn = [this](const constraints::Constraint& constraint) {
    return constraint.accept(*this);
  };
  return m_results == nullptr ? subschema.applyStrict(fn) : subschema.apply(fn);
}

// `format` is an annotation (see the header); the compiler drops it anyway.
template <>
bool MoatlessVisitor::visit(const constraints::FormatConstraint&) {
  return true;
}

template <>
bool MoatlessVisitor::visit(const constraints::LinearItemsConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_array()) return true;
  moatless::gateway::Run& run = moatless::gateway::Run::Of(m_regexesCache);
  std::vector<const Subschema*> items;
  constraint.applyToItemSubschemas([&](unsigned, const Subschema* subschema) {
    items.push_back(subschema);
    return true;
  });
  const Subschema* additional = constraint.getAdditionalItemsSubschema();
  const boost::json::array& array = target.get_array();
  bool valid = true;
  for (std::size_t i = 0; i < array.size() && !run.Full(m_results); ++i) {
    std::vector<std::string> context = m_context;
    context.push_back("[" + std::to_string(i) + "]");
    const Subschema* subschema = i < items.size() ? items[i] : additional;
    if (subschema == nullptr) {
      if (m_results) {
        m_results->pushError(context, "item " + std::to_string(i) +
                                          " is not allowed: the array may have at most " +
                                          std::to_string(items.size()) + " items");
      }
      return false;
    }
    MoatlessVisitor child(moatless::gateway::InstanceAdapter(array[i]), std::move(context),
                          m_strictTypes, m_results, m_regexesCache);
    if (!child.validateSchema(*subschema)) {
      valid = false;
      if (!m_results) return false;
    }
  }
  return valid;
}

template <>
bool MoatlessVisitor::visit(const constraints::MaximumConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_number()) return true;
  const double value = moatless::gateway::ToDouble(target);
  const double maximum = constraint.getMaximum();
  const bool exclusive = constraint.getExclusiveMaximum();
  if (exclusive ? value < maximum : value <= maximum) return true;
  if (m_results) {
    m_results->pushError(m_context, std::string("must be ") + (exclusive ? "< " : "<= ") +
                                        moatless::gateway::FormatNumber(maximum));
  }
  return false;
}

template <>
bool MoatlessVisitor::visit(const constraints::MinimumConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_number()) return true;
  const double value = moatless::gateway::ToDouble(target);
  const double minimum = constraint.getMinimum();
  const bool exclusive = constraint.getExclusiveMinimum();
  if (exclusive ? value > minimum : value >= minimum) return true;
  if (m_results) {
    m_results->pushError(m_context, std::string("must be ") + (exclusive ? "> " : ">= ") +
                                        moatless::gateway::FormatNumber(minimum));
  }
  return false;
}

template <>
bool MoatlessVisitor::visit(const constraints::MaxItemsConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_array() || target.get_array().size() <= constraint.getMaxItems()) return true;
  if (m_results) {
    m_results->pushError(
        m_context, "must have at most " + std::to_string(constraint.getMaxItems()) + " items");
  }
  return false;
}

template <>
bool MoatlessVisitor::visit(const constraints::MinItemsConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_array() || target.get_array().size() >= constraint.getMinItems()) return true;
  if (m_results) {
    m_results->pushError(
        m_context, "must have at least " + std::to_string(constraint.getMinItems()) + " items");
  }
  return false;
}

template <>
bool MoatlessVisitor::visit(const constraints::MaxLengthConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_string() ||
      moatless::gateway::CodePoints(target.get_string()) <= constraint.getMaxLength()) {
    return true;
  }
  if (m_results) {
    m_results->pushError(m_context, "must be at most " + std::to_string(constraint.getMaxLength()) +
                                        " characters long");
  }
  return false;
}

template <>
bool MoatlessVisitor::visit(const constraints::MinLengthConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_string() ||
      moatless::gateway::CodePoints(target.get_string()) >= constraint.getMinLength()) {
    return true;
  }
  if (m_results) {
    m_results->pushError(
        m_context,
        "must be at least " + std::to_string(constraint.getMinLength()) + " characters long");
  }
  return false;
}

template <>
bool MoatlessVisitor::visit(const constraints::MaxPropertiesConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_object() || target.get_object().size() <= constraint.getMaxProperties()) {
    return true;
  }
  if (m_results) {
    m_results->pushError(
        m_context,
        "must have at most " + std::to_string(constraint.getMaxProperties()) + " properties");
  }
  return false;
}

template <>
bool MoatlessVisitor::visit(const constraints::MinPropertiesConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_object() || target.get_object().size() >= constraint.getMinProperties()) {
    return true;
  }
  if (m_results) {
    m_results->pushError(
        m_context,
        "must have at least " + std::to_string(constraint.getMinProperties()) + " properties");
  }
  return false;
}

namespace {
// x / divisor is an integer, allowing for the rounding of decimal fractions (0.0075 / 0.0001).
bool IsMultipleOf(double x, double divisor) {
  if (x == 0) return true;
  const double quotient = x / divisor;
  if (!std::isfinite(quotient)) return std::fmod(x, divisor) == 0;  // fmod is exact
  const double tolerance =
      std::max(1e-9, 8 * std::numeric_limits<double>::epsilon() * std::fabs(quotient));
  return std::fabs(quotient - std::nearbyint(quotient)) <= tolerance;
}
}  // namespace

template <>
bool MoatlessVisitor::visit(const constraints::MultipleOfDoubleConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_number()) return true;
  if (IsMultipleOf(moatless::gateway::ToDouble(target), constraint.getDivisor())) return true;
  if (m_results) {
    m_results->pushError(m_context, "must be a multiple of " +
                                        moatless::gateway::FormatNumber(constraint.getDivisor()));
  }
  return false;
}

template <>
bool MoatlessVisitor::visit(const constraints::MultipleOfIntConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_number()) return true;
  const std::int64_t divisor = constraint.getDivisor();  // > 0: the compiler checked
  bool multiple = false;
  if (target.is_int64()) {
    multiple = target.get_int64() % divisor == 0;
  } else if (target.is_uint64()) {
    multiple = target.get_uint64() % static_cast<std::uint64_t>(divisor) == 0;
  } else {
    multiple = IsMultipleOf(target.get_double(), static_cast<double>(divisor));
  }
  if (multiple) return true;
  if (m_results) {
    m_results->pushError(m_context, "must be a multiple of " + std::to_string(divisor));
  }
  return false;
}

template <>
bool MoatlessVisitor::visit(const constraints::PatternConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_string()) return true;
  const moatless::gateway::Run& run = moatless::gateway::Run::Of(m_regexesCache);
  const moatless::gateway::CompiledPattern* pattern =
      run.impl->PatternFor(constraint.getPattern<std::allocator<char>>());
  const boost::json::string& text = target.get_string();
  if (pattern != nullptr &&
      RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), *pattern->re)) {
    return true;
  }
  if (m_results) {
    m_results->pushError(m_context,
                         pattern == nullptr
                             ? std::string("cannot be checked against an unknown pattern")
                             : "does not match the pattern " +
                                   moatless::gateway::Quote(moatless::gateway::Shorten(
                                       pattern->source, moatless::gateway::kMaxPatternInMessage)));
  }
  return false;
}

// properties, patternProperties (on RE2) and additionalProperties, member by member in document
// order; an additional property that is not allowed is reported at its own pointer.
template <>
bool MoatlessVisitor::visit(const constraints::PropertiesConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_object()) return true;
  moatless::gateway::Run& run = moatless::gateway::Run::Of(m_regexesCache);
  std::vector<std::pair<std::string_view, const Subschema*>> properties;  // sorted by name
  constraint.applyToProperties([&](const auto& name, const Subschema* subschema) {
    properties.emplace_back(std::string_view(name.data(), name.size()), subschema);
    return true;
  });
  std::vector<std::pair<const moatless::gateway::CompiledPattern*, const Subschema*>> patterns;
  constraint.applyToPatternProperties([&](const auto& token, const Subschema* subschema) {
    patterns.emplace_back(run.impl->PatternFor(std::string_view(token.data(), token.size())),
                          subschema);
    return true;
  });
  const Subschema* additional = constraint.getAdditionalPropertiesSubschema();

  bool valid = true;
  for (const boost::json::key_value_pair& member : target.get_object()) {
    if (run.Full(m_results)) break;
    const std::string_view name = member.key();
    auto check = [&](const Subschema* subschema) {
      std::vector<std::string> context = m_context;
      context.push_back(moatless::gateway::Bracket(name));
      MoatlessVisitor child(moatless::gateway::InstanceAdapter(member.value()), std::move(context),
                            m_strictTypes, m_results, m_regexesCache);
      if (!child.validateSchema(*subschema)) valid = false;
    };
    bool matched = false;
    const auto it =
        std::lower_bound(properties.begin(), properties.end(), name,
                         [](const auto& entry, std::string_view n) { return entry.first < n; });
    if (it != properties.end() && it->first == name) {
      matched = true;
      check(it->second);
    }
    for (const auto& [pattern, subschema] : patterns) {
      if (!valid && !m_results) return false;
      if (pattern == nullptr) return false;
      if (RE2::PartialMatch(re2::StringPiece(name.data(), name.size()), *pattern->re)) {
        matched = true;
        check(subschema);
      }
    }
    if (!matched) {
      if (additional != nullptr) {
        check(additional);
      } else {
        valid = false;
        if (m_results) {
          std::vector<std::string> context = m_context;
          context.push_back(moatless::gateway::Bracket(name));
          m_results->pushError(context,
                               "property " + moatless::gateway::Quote(name) + " is not allowed");
        }
      }
    }
    if (!valid && !m_results) return false;
  }
  return valid;
}

template <>
bool MoatlessVisitor::visit(const constraints::PropertyNamesConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_object()) return true;
  moatless::gateway::Run& run = moatless::gateway::Run::Of(m_regexesCache);
  bool valid = true;
  for (const boost::json::key_value_pair& member : target.get_object()) {
    if (run.Full(m_results)) break;
    const boost::json::value name(member.key());
    MoatlessVisitor check(moatless::gateway::InstanceAdapter(name), m_context, m_strictTypes,
                          nullptr, m_regexesCache);
    if (check.validateSchema(*constraint.getSubschema())) continue;
    valid = false;
    if (!m_results) return false;
    std::vector<std::string> context = m_context;
    context.push_back(moatless::gateway::Bracket(member.key()));
    m_results->pushError(context, "property name " + moatless::gateway::Quote(member.key()) +
                                      " does not match propertyNames");
  }
  return valid;
}

template <>
bool MoatlessVisitor::visit(const constraints::RequiredConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_object()) return true;
  const boost::json::object& object = target.get_object();
  bool valid = true;
  constraint.applyToRequiredProperties([&](const auto& name) {
    const std::string_view key(name.data(), name.size());
    if (object.contains(key)) return true;
    valid = false;
    if (m_results) {
      m_results->pushError(m_context, "missing required property " + moatless::gateway::Quote(key));
    }
    return m_results != nullptr;
  });
  return valid;
}

template <>
bool MoatlessVisitor::visit(const constraints::SingularItemsConstraint& constraint) {
  const boost::json::value& target = m_target.raw();
  const Subschema* subschema = constraint.getItemsSubschema();
  if (!target.is_array() || subschema == nullptr) return true;
  moatless::gateway::Run& run = moatless::gateway::Run::Of(m_regexesCache);
  const boost::json::array& array = target.get_array();
  bool valid = true;
  for (std::size_t i = 0; i < array.size() && !run.Full(m_results); ++i) {
    std::vector<std::string> context = m_context;
    context.push_back("[" + std::to_string(i) + "]");
    MoatlessVisitor child(moatless::gateway::InstanceAdapter(array[i]), std::move(context),
                          m_strictTypes, m_results, m_regexesCache);
    if (!child.validateSchema(*subschema)) {
      valid = false;
      if (!m_results) return false;
    }
  }
  return valid;
}

template <>
bool MoatlessVisitor::visit(const constraints::TypeConstraint& constraint) {
  using Type = constraints::TypeConstraint;
  const boost::json::value& target = m_target.raw();
  const moatless::gateway::Run& run = moatless::gateway::Run::Of(m_regexesCache);
  auto matches = [&](Type::JsonType type) {
    switch (type) {
      case Type::kAny:
        return true;
      case Type::kArray:
        return target.is_array();
      case Type::kBoolean:
        return target.is_bool();
      case Type::kInteger:
        if (target.is_int64() || target.is_uint64()) return true;
        // draft-07 counts 1.0 as an integer; draft-04 does not
        return run.impl->draft == moatless::gateway::SchemaDraft::kDraft7 && target.is_double() &&
               std::isfinite(target.get_double()) &&
               std::trunc(target.get_double()) == target.get_double();
      case Type::kNull:
        return target.is_null();
      case Type::kNumber:
        return target.is_number();
      case Type::kObject:
        return target.is_object();
      case Type::kString:
        return target.is_string();
    }
    return false;
  };
  static constexpr std::string_view kNames[] = {"any",  "array",  "boolean", "integer",
                                                "null", "number", "object",  "string"};
  bool valid = false;
  std::string expected;
  constraint.applyToNamedTypes([&](Type::JsonType type) {
    valid = matches(type);
    expected += (expected.empty() ? "" : ", ") + std::string(kNames[type]);
    return !valid;
  });
  if (valid) return true;
  if (m_results) {
    const bool several = expected.find(',') != std::string::npos;
    m_results->pushError(m_context, "expected " + (several ? "one of " + expected : expected) +
                                        ", got " +
                                        std::string(moatless::gateway::KindName(target)));
  }
  return false;
}

// Sorting, not valijson's comparison of every pair (quadratic in the array's length).
template <>
bool MoatlessVisitor::visit(const constraints::UniqueItemsConstraint&) {
  const boost::json::value& target = m_target.raw();
  if (!target.is_array() || target.get_array().size() < 2) return true;
  const boost::json::array& array = target.get_array();
  std::vector<std::size_t> order(array.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return moatless::gateway::CompareJson(array[a], array[b]) < 0;
  });
  std::optional<std::pair<std::size_t, std::size_t>> duplicate;
  for (std::size_t i = 1; i < order.size(); ++i) {
    if (moatless::gateway::CompareJson(array[order[i - 1]], array[order[i]]) != 0) continue;
    const std::pair<std::size_t, std::size_t> pair(std::min(order[i - 1], order[i]),
                                                   std::max(order[i - 1], order[i]));
    if (!duplicate || pair < *duplicate) duplicate = pair;
  }
  if (!duplicate) return true;
  if (m_results) {
    m_results->pushError(m_context, "items " + std::to_string(duplicate->first) + " and " +
                                        std::to_string(duplicate->second) +
                                        " are equal; items must be unique");
  }
  return false;
}

}  // namespace valijson

namespace moatless::gateway {
namespace {

// ---- The compiler: checks the schema document and writes valijson's copy --------------------

core::Status SchemaError(std::string_view pointer, std::string_view what) {
  return core::InvalidArgumentError("at #" + std::string(pointer) + ": " + std::string(what));
}

bool IsNonNegativeInteger(const json::value& v) {
  if (v.is_int64()) return v.get_int64() >= 0;
  if (v.is_uint64()) return true;
  if (v.is_double()) {
    const double d = v.get_double();
    return std::isfinite(d) && d >= 0 && std::trunc(d) == d;
  }
  return false;
}

// A non-negative integer keyword as the int64 valijson wants (2.0 → 2; huge → INT64_MAX).
json::value ClampedInteger(const json::value& v) {
  if (v.is_int64()) return v;
  const double d = ToDouble(v);
  if (d >= 9.2e18) return json::value(std::numeric_limits<std::int64_t>::max());
  return json::value(static_cast<std::int64_t>(d));
}

// A copy in which uint64 numbers are doubles (valijson's own adapter ignores uint64).
json::value WithoutUint64(const json::value& v) {
  if (v.is_uint64()) return json::value(static_cast<double>(v.get_uint64()));
  if (const json::array* array = v.if_array()) {
    json::array out;
    out.reserve(array->size());
    for (const json::value& item : *array) out.push_back(WithoutUint64(item));
    return out;
  }
  if (const json::object* object = v.if_object()) {
    json::object out;
    out.reserve(object->size());
    for (const json::key_value_pair& member : *object) {
      out.emplace(member.key(), WithoutUint64(member.value()));
    }
    return out;
  }
  return v;
}

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

class SchemaCompiler {
 public:
  SchemaCompiler(const json::value& document, SchemaDraft draft, CompiledSchema::Impl& impl)
      : document_(document), draft_(draft), impl_(impl) {}

  // Checks the document and resolves its references.
  core::Status Check() {
    resources_[std::string(kDefaultBase)] = "";
    RETURN_IF_ERROR(Walk("", document_, std::string(kDefaultBase)));
    // References found while resolving (in referenced locations not walked yet) join the queue.
    for (std::size_t i = 0; i < refs_.size(); ++i) {
      const std::string pointer = refs_[i];  // Resolve may add to refs_
      RETURN_IF_ERROR(Resolve(pointer));
    }
    return CheckCycles();
  }

  // How deep valijson's parser may recurse over Transform()'s result, in schema levels: it enters
  // each referenced schema at most once on a path, so at most the sum of their depths.
  std::size_t parser_depth() const { return parser_depth_; }

  // valijson's copy of the schema (see the top of this file).
  json::value Transform() {
    json::value root = Copy("");
    parser_depth_ = deepest_;
    json::array targets;
    for (std::size_t i = 0; i < target_queue_.size(); ++i) {
      const std::string pointer = target_queue_[i];  // Copy may add to target_queue_
      deepest_ = 0;
      targets.push_back(Copy(pointer));
      parser_depth_ += deepest_;
    }
    if (!targets.empty()) root.as_object()[kTargetsKey] = std::move(targets);
    return root;
  }

 private:
  struct Node {
    const json::value* value = nullptr;
    std::string base;  // base URI inside this schema
    bool is_ref = false;
    std::string ref;                    // the $ref as written
    std::string target;                 // where it resolves (a pointer), once resolved
    std::vector<std::string> in_place;  // subschemas applied to the same instance location
  };

  bool draft4() const { return draft_ == SchemaDraft::kDraft4; }

  // ---- Walking ----

  core::Status Walk(const std::string& pointer, const json::value& value,
                    const std::string& parent_base) {
    if (nodes_.contains(pointer)) return core::Status::Ok();
    if (value.is_bool()) {
      if (draft4()) return SchemaError(pointer, "a schema must be an object (draft-04)");
      nodes_[pointer] = Node{.value = &value, .base = parent_base};
      return core::Status::Ok();
    }
    if (!value.is_object()) {
      return SchemaError(pointer, draft4() ? "a schema must be an object"
                                           : "a schema must be an object or a boolean");
    }
    const json::object& object = value.get_object();
    if (const json::value* ref = object.if_contains("$ref")) {
      // A $ref overrides its siblings, $id included: they are not even looked at.
      if (!ref->is_string()) return SchemaError(Child(pointer, "$ref"), "$ref must be a string");
      nodes_[pointer] = Node{.value = &value,
                             .base = parent_base,
                             .is_ref = true,
                             .ref = std::string(ref->get_string())};
      refs_.push_back(pointer);
      return core::Status::Ok();
    }
    std::string base = parent_base;
    const std::string_view id_key = draft4() ? "id" : "$id";
    if (const json::value* id = object.if_contains(id_key)) {
      if (!id->is_string()) return SchemaError(Child(pointer, id_key), "must be a string");
      RETURN_IF_ERROR(RegisterId(pointer, Child(pointer, id_key), id->get_string(), &base));
    }
    nodes_[pointer] = Node{.value = &value, .base = base};
    for (const json::key_value_pair& member : object) {
      RETURN_IF_ERROR(CheckKeyword(pointer, member.key(), member.value(), base, object));
    }
    return core::Status::Ok();
  }

  core::Status RegisterId(const std::string& pointer, const std::string& at, std::string_view id,
                          std::string* base) {
    const std::optional<UriParts> resolved = uris_.Resolve(*base, id);
    if (!resolved) return SchemaError(at, "is not a URI reference");
    const std::string document = UriResolver::Document(*resolved);
    if (id.substr(0, id.find('#')).size() > 0) {
      *base = document;
      const auto [it, inserted] = resources_.emplace(document, pointer);
      if (!inserted && it->second != pointer) {
        return SchemaError(at, "the id \"" + Shorten(id, 200) + "\" is declared twice");
      }
    }
    if (resolved->fragment && !resolved->fragment->empty() && (*resolved->fragment)[0] != '/') {
      const auto [it, inserted] = anchors_.emplace(document + "#" + *resolved->fragment, pointer);
      if (!inserted && it->second != pointer) {
        return SchemaError(at, "the anchor \"" + Shorten(id, 200) + "\" is declared twice");
      }
    }
    return core::Status::Ok();
  }

  core::Status Subschema(const std::string& pointer, const std::string& child,
                         const json::value& value, const std::string& base, bool in_place) {
    if (in_place) nodes_[pointer].in_place.push_back(child);
    return Walk(child, value, base);
  }

  core::Status SchemaArray(const std::string& pointer, const std::string& at,
                           const json::value& value, const std::string& base, bool in_place) {
    if (!value.is_array() || value.get_array().empty()) {
      return SchemaError(at, "must be a non-empty array of schemas");
    }
    for (std::size_t i = 0; i < value.get_array().size(); ++i) {
      RETURN_IF_ERROR(Subschema(pointer, Child(at, i), value.get_array()[i], base, in_place));
    }
    return core::Status::Ok();
  }

  core::Status SchemaMap(const std::string& at, const json::value& value, const std::string& base) {
    if (!value.is_object()) return SchemaError(at, "must be an object");
    for (const json::key_value_pair& member : value.get_object()) {
      if (HasNul(member.key())) {
        return SchemaError(Child(at, member.key()), "names containing NUL are not supported");
      }
      RETURN_IF_ERROR(Walk(Child(at, member.key()), member.value(), base));
    }
    return core::Status::Ok();
  }

  core::Status UniqueNames(const std::string& at, const json::value& value) {
    if (!value.is_array()) return SchemaError(at, "must be an array of strings");
    std::set<std::string_view> seen;
    for (std::size_t i = 0; i < value.get_array().size(); ++i) {
      const json::value& name = value.get_array()[i];
      if (!name.is_string()) return SchemaError(Child(at, i), "must be a string");
      if (HasNul(name.get_string())) {
        return SchemaError(Child(at, i), "names containing NUL are not supported");
      }
      if (!seen.insert(name.get_string()).second) {
        return SchemaError(Child(at, i), "is listed twice");
      }
    }
    return core::Status::Ok();
  }

  core::Status CompilePattern(const std::string& at, std::string_view source) {
    core::Result<std::string> translated = TranslateEcmaRegex(source);
    if (!translated.ok()) return SchemaError(at, translated.status().message());
    const auto known = pattern_by_source_.find(std::string(source));
    if (known != pattern_by_source_.end()) {
      pattern_at_[at] = known->second;
      return core::Status::Ok();
    }
    RE2::Options options;
    options.set_log_errors(false);
    options.set_encoding(RE2::Options::EncodingUTF8);
    options.set_max_mem(kPatternMemory);
    auto re = std::make_unique<RE2>(*translated, options);
    if (!re->ok()) return SchemaError(at, "invalid regular expression: " + re->error());
    const std::size_t index = impl_.patterns.size();
    impl_.patterns.push_back(CompiledPattern{.source = std::string(source), .re = std::move(re)});
    pattern_by_source_.emplace(std::string(source), index);
    pattern_at_[at] = index;
    return core::Status::Ok();
  }

  core::Status CheckKeyword(const std::string& pointer, std::string_view key,
                            const json::value& value, const std::string& base,
                            const json::object& object) {
    const std::string at = Child(pointer, key);
    if (key == "$schema" || key == "title" || key == "description" || key == "format" ||
        (!draft4() && key == "$comment")) {
      return value.is_string() ? core::Status::Ok() : SchemaError(at, "must be a string");
    }
    if (key == "multipleOf") {
      if (!value.is_number() || ToDouble(value) <= 0) {
        return SchemaError(at, "must be a number greater than 0");
      }
      return core::Status::Ok();
    }
    if (key == "maximum" || key == "minimum") {
      return value.is_number() ? core::Status::Ok() : SchemaError(at, "must be a number");
    }
    if (key == "exclusiveMaximum" || key == "exclusiveMinimum") {
      if (!draft4()) {
        return value.is_number() ? core::Status::Ok() : SchemaError(at, "must be a number");
      }
      if (!value.is_bool()) return SchemaError(at, "must be a boolean (draft-04)");
      const std::string_view bound = key == "exclusiveMaximum" ? "maximum" : "minimum";
      if (!object.contains(bound)) {
        return SchemaError(at, "needs " + std::string(bound) + " beside it (draft-04)");
      }
      return core::Status::Ok();
    }
    if (key == "maxLength" || key == "minLength" || key == "maxItems" || key == "minItems" ||
        key == "maxProperties" || key == "minProperties") {
      return IsNonNegativeInteger(value) ? core::Status::Ok()
                                         : SchemaError(at, "must be a non-negative integer");
    }
    if (key == "uniqueItems") {
      return value.is_bool() ? core::Status::Ok() : SchemaError(at, "must be a boolean");
    }
    if (key == "pattern") {
      if (!value.is_string()) return SchemaError(at, "must be a string");
      return CompilePattern(at, value.get_string());
    }
    if (key == "additionalItems" || key == "additionalProperties") {
      if (value.is_bool()) return core::Status::Ok();
      if (!value.is_object()) return SchemaError(at, "must be a boolean or a schema");
      return Walk(at, value, base);
    }
    if (key == "items") {
      if (value.is_array()) {
        for (std::size_t i = 0; i < value.get_array().size(); ++i) {
          RETURN_IF_ERROR(Walk(Child(at, i), value.get_array()[i], base));
        }
        return core::Status::Ok();
      }
      return Walk(at, value, base);
    }
    if (key == "required") return UniqueNames(at, value);
    if (key == "properties" || key == "definitions") return SchemaMap(at, value, base);
    if (key == "patternProperties") {
      if (!value.is_object()) return SchemaError(at, "must be an object");
      for (const json::key_value_pair& member : value.get_object()) {
        const std::string child = Child(at, member.key());
        RETURN_IF_ERROR(CompilePattern(child, member.key()));
        RETURN_IF_ERROR(Walk(child, member.value(), base));
      }
      return core::Status::Ok();
    }
    if (key == "dependencies") {
      if (!value.is_object()) return SchemaError(at, "must be an object");
      for (const json::key_value_pair& member : value.get_object()) {
        const std::string child = Child(at, member.key());
        if (HasNul(member.key())) {
          return SchemaError(child, "names containing NUL are not supported");
        }
        if (member.value().is_array()) {
          RETURN_IF_ERROR(UniqueNames(child, member.value()));
        } else {
          RETURN_IF_ERROR(Subschema(pointer, child, member.value(), base, /*in_place=*/true));
        }
      }
      return core::Status::Ok();
    }
    if (key == "enum") {
      return value.is_array() ? core::Status::Ok() : SchemaError(at, "must be an array");
    }
    if (key == "type") return CheckType(at, value);
    if (key == "allOf" || key == "anyOf" || key == "oneOf") {
      return SchemaArray(pointer, at, value, base, /*in_place=*/true);
    }
    if (key == "not") return Subschema(pointer, at, value, base, /*in_place=*/true);
    if (draft4()) return core::Status::Ok();  // the rest are draft-06/07 keywords
    if (key == "if" || key == "then" || key == "else") {
      return Subschema(pointer, at, value, base, /*in_place=*/true);
    }
    if (key == "contains" || key == "propertyNames") return Walk(at, value, base);
    return core::Status::Ok();  // const (any value) and unknown keywords
  }

  core::Status CheckType(const std::string& at, const json::value& value) {
    static constexpr std::string_view kTypes[] = {"array",  "boolean", "integer", "null",
                                                  "number", "object",  "string"};
    auto known = [](const json::value& name) {
      return name.is_string() &&
             std::find(std::begin(kTypes), std::end(kTypes), name.get_string()) != std::end(kTypes);
    };
    constexpr std::string_view kWhat =
        "must be one of array, boolean, integer, null, number, object, string, or a non-empty "
        "array of them";
    if (value.is_string()) return known(value) ? core::Status::Ok() : SchemaError(at, kWhat);
    if (!value.is_array() || value.get_array().empty()) return SchemaError(at, kWhat);
    std::set<std::string_view> seen;
    for (std::size_t i = 0; i < value.get_array().size(); ++i) {
      const json::value& name = value.get_array()[i];
      if (!known(name)) return SchemaError(Child(at, i), kWhat);
      if (!seen.insert(name.get_string()).second) {
        return SchemaError(Child(at, i), "is listed twice");
      }
    }
    return core::Status::Ok();
  }

  // ---- References ----

  core::Status Resolve(const std::string& pointer) {
    Node& node = nodes_.at(pointer);
    const std::string at = Child(pointer, "$ref");
    const std::string shown = "\"" + Shorten(node.ref, 200) + "\"";
    const std::optional<UriParts> resolved = uris_.Resolve(node.base, node.ref);
    if (!resolved) return SchemaError(at, shown + " is not a URI reference");
    const auto resource = resources_.find(UriResolver::Document(*resolved));
    if (resource == resources_.end()) {
      std::string where = UriResolver::Document(*resolved);
      where = where.starts_with("https://schema.invalid/")
                  ? std::string("another document")
                  : Shorten(where, 200) + ", another document";
      return SchemaError(at, "remote reference " + shown + " refused (it names " + where +
                                 "): only references inside this schema are allowed");
    }
    std::string target;
    const std::string fragment = resolved->fragment.value_or("");
    if (fragment.empty() || fragment[0] == '/') {
      const std::optional<std::string> decoded = PercentDecode(fragment);
      const std::optional<std::vector<std::string>> tokens =
          decoded ? SplitPointer(*decoded) : std::nullopt;
      if (!tokens) return SchemaError(at, shown + " has a malformed JSON pointer");
      target = resource->second + JoinPointer(*tokens);
    } else {
      const auto anchor = anchors_.find(resource->first + "#" + fragment);
      if (anchor == anchors_.end()) {
        return SchemaError(at, shown + " names no anchor declared in this schema");
      }
      target = anchor->second;
    }
    const json::value* value = Find(document_, target);
    if (value == nullptr) {
      return SchemaError(at, shown + " does not resolve to a location in this schema");
    }
    if (!nodes_.contains(target)) {
      // A location not walked as a schema yet (say under an unknown keyword): walk it now, with
      // the base URI of the nearest schema around it.
      std::string around = target;
      while (!nodes_.contains(around)) around.erase(around.rfind('/'));
      const core::Status walked = Walk(target, *value, nodes_.at(around).base);
      if (!walked.ok()) return walked.Annotate("the target of $ref at #" + pointer);
    }
    nodes_.at(pointer).target = target;
    return core::Status::Ok();
  }

  // A cycle of schemas applied to the same instance location (through $ref, since the document
  // itself is a tree) would recurse forever at validation time; a long chain of them, deeply.
  core::Status CheckCycles() {
    enum Color { kWhite, kGrey, kBlack };
    std::map<std::string_view, Color> color;
    std::map<std::string_view, std::size_t> longest;  // edges of the longest chain from a node
    for (const auto& [start, unused] : nodes_) {
      if (color[start] != kWhite) continue;
      // Iterative depth-first search; `path` holds the grey nodes.
      std::vector<std::pair<std::string_view, std::size_t>> path = {{start, 0}};
      color[start] = kGrey;
      while (!path.empty()) {
        auto& [at, next] = path.back();
        const Node& node = nodes_.at(std::string(at));
        const std::size_t degree = node.is_ref ? 1 : node.in_place.size();
        if (next == degree) {
          // Finished: every successor is (no cycle), so the longest chain from here is known.
          std::size_t chain = 0;
          for (std::size_t i = 0; i < degree; ++i) {
            chain = std::max(chain, 1 + longest[node.is_ref ? node.target : node.in_place[i]]);
          }
          if (chain > impl_.limits.max_depth) {
            return SchemaError(at,
                               "schemas applied to the same value (through $ref, allOf, anyOf, "
                               "oneOf, not, if/then/else, dependencies) chain " +
                                   std::to_string(chain) + " deep, over the limit of " +
                                   std::to_string(impl_.limits.max_depth));
          }
          longest[at] = chain;
          color[at] = kBlack;
          path.pop_back();
          continue;
        }
        const std::string_view to = node.is_ref ? node.target : node.in_place[next];
        ++next;
        if (color[to] == kWhite) {
          color[to] = kGrey;
          path.emplace_back(to, 0);
        } else if (color[to] == kGrey) {
          std::string cycle;
          std::optional<std::string_view> culprit;
          bool in_cycle = false;
          for (const auto& [p, unused_next] : path) {
            in_cycle = in_cycle || p == to;
            if (!in_cycle) continue;
            cycle += "#" + std::string(p) + " -> ";
            if (!culprit && nodes_.at(std::string(p)).is_ref) culprit = p;
          }
          cycle += "#" + std::string(to);
          return SchemaError(Child(culprit.value_or(to), "$ref"),
                             "reference cycle that never consumes input: " + cycle);
        }
      }
    }
    return core::Status::Ok();
  }

  // The schema a chain of $refs ends at.
  const std::string& Final(const std::string& pointer) const {
    const Node* node = &nodes_.at(pointer);
    const std::string* at = &pointer;
    while (node->is_ref) {
      at = &node->target;
      node = &nodes_.at(*at);
    }
    return *at;
  }

  json::value Reference(const std::string& pointer) {
    const std::string& final = Final(pointer);
    auto [it, inserted] = target_index_.emplace(final, target_queue_.size());
    if (inserted) target_queue_.push_back(final);
    return json::object{
        {"$ref", "#/" + std::string(kTargetsKey) + "/" + std::to_string(it->second)}};
  }

  // ---- valijson's copy ----

  json::value Copy(const std::string& pointer, std::size_t depth = 1) {
    deepest_ = std::max(deepest_, depth);
    const Node& node = nodes_.at(pointer);
    if (node.is_ref) return Reference(pointer);
    if (node.value->is_bool()) return *node.value;
    json::object out;
    for (const json::key_value_pair& member : node.value->get_object()) {
      const std::string_view key = member.key();
      const json::value& value = member.value();
      const std::string at = Child(pointer, key);
      if (key == "type" || key == "required" || key == "uniqueItems" || key == "maximum" ||
          key == "minimum" || key == "exclusiveMaximum" || key == "exclusiveMinimum" ||
          key == "multipleOf") {
        out[key] = WithoutUint64(value);
      } else if (key == "enum" || (!draft4() && key == "const")) {
        out[key == "enum" ? kEnumKey : kConstKey] =
            static_cast<std::int64_t>(impl_.constants.size());
        impl_.constants.push_back(value);
      } else if (key == "maxLength" || key == "minLength" || key == "maxItems" ||
                 key == "minItems" || key == "maxProperties" || key == "minProperties") {
        out[key] = ClampedInteger(value);
      } else if (key == "pattern") {
        out[key] = std::to_string(pattern_at_.at(at));
      } else if (key == "items" && value.is_array()) {
        json::array items;
        for (std::size_t i = 0; i < value.get_array().size(); ++i) {
          items.push_back(Copy(Child(at, i), depth + 1));
        }
        out[key] = std::move(items);
      } else if (key == "additionalItems" || key == "additionalProperties") {
        out[key] = value.is_bool() ? value : Copy(at, depth + 1);
      } else if (key == "items" || key == "not" ||
                 (!draft4() &&
                  (key == "contains" || key == "if" || key == "then" || key == "else"))) {
        out[key] = Copy(at, depth + 1);
      } else if (!draft4() && key == "propertyNames") {
        // Always through a reference: valijson files a propertyNames subschema under its
        // parent's path, which could collide with a referenced schema in its cache.
        out[key] = Reference(at);
      } else if (key == "allOf" || key == "anyOf" || key == "oneOf") {
        json::array schemas;
        for (std::size_t i = 0; i < value.get_array().size(); ++i) {
          schemas.push_back(Copy(Child(at, i), depth + 1));
        }
        out[key] = std::move(schemas);
      } else if (key == "properties") {
        json::object properties;
        for (const json::key_value_pair& p : value.get_object()) {
          properties[p.key()] = Copy(Child(at, p.key()), depth + 1);
        }
        out[key] = std::move(properties);
      } else if (key == "patternProperties") {
        json::object patterns;
        for (const json::key_value_pair& p : value.get_object()) {
          const std::string child = Child(at, p.key());
          patterns[std::to_string(pattern_at_.at(child))] = Copy(child, depth + 1);
        }
        out[key] = std::move(patterns);
      } else if (key == "dependencies") {
        json::object dependencies;
        for (const json::key_value_pair& d : value.get_object()) {
          dependencies[d.key()] =
              d.value().is_array() ? d.value() : Copy(Child(at, d.key()), depth + 1);
        }
        out[key] = std::move(dependencies);
      }
      // Everything else is dropped: $id/id, $schema, definitions (reached through references),
      // format, annotations and unknown keywords.
    }
    return out;
  }

  const json::value& document_;
  const SchemaDraft draft_;
  CompiledSchema::Impl& impl_;
  UriResolver uris_;
  std::map<std::string, Node> nodes_;              // walked schemas by pointer
  std::vector<std::string> refs_;                  // pointers of the $ref schemas
  std::map<std::string, std::string> resources_;   // absolute URI (no fragment) -> pointer
  std::map<std::string, std::string> anchors_;     // absolute URI with #name -> pointer
  std::map<std::string, std::size_t> pattern_at_;  // pattern location -> index
  std::map<std::string, std::size_t> pattern_by_source_;
  std::map<std::string, std::size_t> target_index_;  // referenced schema -> index in the array
  std::vector<std::string> target_queue_;
  std::size_t deepest_ = 0;
  std::size_t parser_depth_ = 0;
};

std::optional<SchemaDraft> DraftOf(std::string_view uri) {
  if (uri.starts_with("https://")) {
    uri.remove_prefix(8);
  } else if (uri.starts_with("http://")) {
    uri.remove_prefix(7);
  } else {
    return std::nullopt;
  }
  if (uri.ends_with("#")) uri.remove_suffix(1);
  if (uri == "json-schema.org/draft-04/schema") return SchemaDraft::kDraft4;
  if (uri == "json-schema.org/draft-07/schema") return SchemaDraft::kDraft7;
  return std::nullopt;
}

// Runs `fn` (which must not throw) on a thread of its own with a stack of `stack_bytes`, and waits
// for it: valijson's parser recurses as deep as the schema's references go.
core::Status RunOnStackOf(std::size_t stack_bytes, const std::function<void()>& fn) {
  pthread_attr_t attributes;
  if (pthread_attr_init(&attributes) != 0) return core::InternalError("pthread_attr_init failed");
  int rc = pthread_attr_setstacksize(&attributes, stack_bytes);
  pthread_t thread;
  if (rc == 0) {
    rc = pthread_create(
        &thread, &attributes,
        [](void* arg) -> void* {
          (*static_cast<const std::function<void()>*>(arg))();
          return nullptr;
        },
        const_cast<std::function<void()>*>(&fn));
  }
  pthread_attr_destroy(&attributes);
  if (rc != 0) {
    return core::UnavailableError("cannot start a thread to compile the schema: " +
                                  std::string(std::strerror(rc)));
  }
  pthread_join(thread, nullptr);
  return core::Status::Ok();
}

core::Result<CompiledSchema::Impl*> CompileInto(std::string_view text, SchemaDraft default_draft,
                                                CompiledSchema::Impl& impl) {
  const SchemaLimits& limits = impl.limits;
  if (text.size() > limits.max_schema_bytes) {
    return SchemaError("", "the schema is " + std::to_string(text.size()) +
                               " bytes, over the limit of " +
                               std::to_string(limits.max_schema_bytes));
  }
  json::parse_options options;
  options.max_depth = limits.max_depth;
  json::parser parser(json::storage_ptr(), options);
  json::error_code ec;
  const std::size_t consumed = parser.write(text.data(), text.size(), ec);
  if (ec == json::error::too_deep) {
    return SchemaError("", "the schema nests deeper than " + std::to_string(limits.max_depth) +
                               " levels (at byte " + std::to_string(consumed) + ")");
  }
  if (ec) {
    return SchemaError("", "the schema is not valid JSON (at byte " + std::to_string(consumed) +
                               ": " + ec.message() + ")");
  }
  const json::value document = parser.release();

  impl.draft = default_draft;
  if (const json::object* root = document.if_object()) {
    if (const json::value* schema = root->if_contains("$schema")) {
      const std::optional<SchemaDraft> draft =
          schema->is_string() ? DraftOf(schema->get_string()) : std::nullopt;
      if (!draft) {
        return SchemaError("/$schema", "unsupported $schema (draft-04 and draft-07 are)");
      }
      impl.draft = *draft;
    }
  }

  SchemaCompiler compiler(document, impl.draft, impl);
  RETURN_IF_ERROR(compiler.Check());
  const json::value copy = compiler.Transform();
  const std::size_t stack = kParserStackBase + compiler.parser_depth() * kParserStackPerLevel;
  if (stack > kParserStackMax) {
    return SchemaError("", "the schema's references nest too deeply to compile (" +
                               std::to_string(compiler.parser_depth()) + " levels)");
  }
  std::string failure;
  RETURN_IF_ERROR(RunOnStackOf(stack, [&] {
    try {
      valijson::SchemaParser schema_parser(impl.draft == SchemaDraft::kDraft4
                                               ? valijson::SchemaParser::kDraft4
                                               : valijson::SchemaParser::kDraft7);
      for (const bool is_enum : {true, false}) {
        auto builder = std::make_unique<ValueConstraintBuilder>(impl, is_enum);
        schema_parser.addConstraintBuilder(std::string(is_enum ? kEnumKey : kConstKey),
                                           builder.get());
        builder.release();  // owned by the parser now
      }
      schema_parser.populateSchema(valijson::adapters::BoostJsonAdapter(copy), impl.schema);
    } catch (const std::exception& e) {
      failure = e.what();
      if (failure.empty()) failure = "unknown error";
    } catch (...) {
      failure = "unknown error";
    }
  }));
  if (!failure.empty()) return SchemaError("", "valijson refused the schema: " + failure);
  return &impl;
}

// ---- Violations -----------------------------------------------------------------------------

// valijson's context ("<root>", "[name]", "[3]") as a JSON pointer.
std::string PointerOf(const std::vector<std::string>& context) {
  std::string pointer;
  for (std::size_t i = 1; i < context.size(); ++i) {
    std::string_view element = context[i];
    if (element.size() >= 2) element = element.substr(1, element.size() - 2);
    pointer += "/" + EscapeToken(element);
  }
  return pointer;
}

// Our words for the messages of the valijson visits we did not specialise; nullopt drops a
// message that only repeats what the nested errors already say.
std::optional<std::string> Reword(const std::string& message) {
  static constexpr std::pair<std::string_view, std::string_view> kExact[] = {
      {"Failed to validate against any schemas allowed by anyOf constraint.",
       "does not match any of the schemas in anyOf"},
      {"Failed to validate against any child schemas allowed by oneOf constraint.",
       "does not match any of the schemas in oneOf"},
      {"Failed to validate against exactly one child schema.",
       "matches more than one of the schemas in oneOf"},
      {"Target should not validate against schema specified in 'not' constraint.",
       "must not match the schema in not"},
      {"Failed to any values against subschema in 'contains' constraint.",
       "no item matches the schema in contains"},
  };
  for (const auto& [from, to] : kExact) {
    if (message == from) return std::string(to);
  }
  if (message.starts_with("Failed to validate against child schema #") ||
      message.starts_with("Failed to validate against a conditional schema") ||
      message == "Failed to validate against dependent schema.") {
    return std::nullopt;
  }
  constexpr std::string_view kDependency = "Missing dependency '";
  if (message.starts_with(kDependency) && message.ends_with("'.")) {
    const std::string name =
        message.substr(kDependency.size(), message.size() - kDependency.size() - 2);
    return "missing property " + Quote(name) + ", required by dependencies";
  }
  return message;
}

std::vector<Violation> Finish(const valijson::ValidationResults& results,
                              const SchemaLimits& limits) {
  std::vector<Violation> candidates;
  std::set<std::pair<std::string, std::string>> seen;
  for (const valijson::ValidationResults::Error& error : results) {
    std::optional<std::string> message = Reword(error.description);
    if (!message) continue;
    Violation violation{.pointer = PointerOf(error.context), .message = std::move(*message)};
    if (!seen.emplace(violation.pointer, violation.message).second) continue;
    candidates.push_back(std::move(violation));
  }
  if (candidates.empty()) candidates.push_back({"", "the body does not match the schema"});

  // A pointer is cut at a token boundary if it alone would take a quarter of the budget.
  const std::size_t max_pointer = limits.max_message_bytes / 4;
  for (Violation& violation : candidates) {
    if (violation.pointer.size() <= max_pointer) continue;
    std::size_t cut = violation.pointer.rfind('/', max_pointer);
    violation.pointer.erase(cut == std::string::npos ? 0 : cut);
    violation.message = "(somewhere below this location) " + violation.message;
  }

  std::vector<Violation> out;
  std::size_t bytes = 0;
  auto size = [](const Violation& v) { return v.pointer.size() + v.message.size(); };
  for (const Violation& violation : candidates) {
    if (out.size() >= limits.max_violations || bytes + size(violation) > limits.max_message_bytes) {
      break;
    }
    bytes += size(violation);
    out.push_back(violation);
  }
  if (out.empty()) {  // the first one alone is over the budget: shorten its message
    Violation first = candidates.front();
    first.message = Shorten(first.message, limits.max_message_bytes - first.pointer.size() - 3);
    return {first};
  }
  if (out.size() < candidates.size()) {
    const Violation more{"", "more violations not shown"};
    while (out.size() > 1 && (out.size() + 1 > limits.max_violations ||
                              bytes + size(more) > limits.max_message_bytes)) {
      bytes -= size(out.back());
      out.pop_back();
    }
    if (out.size() + 1 <= limits.max_violations && bytes + size(more) <= limits.max_message_bytes) {
      out.push_back(more);
    }
  }
  return out;
}

bool NestsDeeperThan(const json::value& root, std::size_t max_depth) {
  std::vector<std::pair<const json::value*, std::size_t>> stack = {{&root, 0}};
  while (!stack.empty()) {
    const auto [value, depth] = stack.back();
    stack.pop_back();
    if (const json::array* array = value->if_array()) {
      if (depth + 1 > max_depth) return true;
      for (const json::value& item : *array) stack.emplace_back(&item, depth + 1);
    } else if (const json::object* object = value->if_object()) {
      if (depth + 1 > max_depth) return true;
      for (const json::key_value_pair& member : *object) {
        stack.emplace_back(&member.value(), depth + 1);
      }
    }
  }
  return false;
}

Violation TooDeep(const SchemaLimits& limits) {
  return {"",
          "the body nests deeper than " + std::to_string(limits.max_instance_depth) + " levels"};
}

}  // namespace

// ---- CompiledSchema -------------------------------------------------------------------------

core::Result<CompiledSchema> CompiledSchema::Compile(std::string_view schema_json,
                                                     SchemaLimits limits) {
  return Compile(schema_json, SchemaDraft::kDraft7, limits);
}

core::Result<CompiledSchema> CompiledSchema::Compile(std::string_view schema_json,
                                                     SchemaDraft default_draft,
                                                     SchemaLimits limits) {
  limits.max_violations = std::max<std::size_t>(limits.max_violations, 1);
  limits.max_message_bytes = std::max<std::size_t>(limits.max_message_bytes, 256);
  // The compiler's walk and the comparison of values recurse once per level.
  limits.max_depth = std::min<std::size_t>(limits.max_depth, kMaxNesting);
  limits.max_instance_depth = std::min<std::size_t>(limits.max_instance_depth, kMaxNesting);
  try {
    auto impl = std::make_shared<Impl>();
    impl->limits = limits;
    core::Result<Impl*> compiled = CompileInto(schema_json, default_draft, *impl);
    if (!compiled.ok()) return compiled.status();
    return CompiledSchema(std::move(impl));
  } catch (const std::exception& e) {
    return core::InternalError(std::string("compiling a JSON schema: ") + e.what());
  }
}

std::vector<Violation> CompiledSchema::Validate(std::string_view instance_json) const {
  try {
    json::monotonic_resource memory;
    json::parse_options options;
    options.max_depth = impl_->limits.max_instance_depth;
    json::error_code ec;
    const json::value instance = json::parse(instance_json, ec, &memory, options);
    if (ec == json::error::too_deep) return {TooDeep(impl_->limits)};
    if (ec) return {{"", "the body is not valid JSON"}};
    return Validate(instance);
  } catch (const std::exception&) {
    return {{"", "the body could not be validated"}};
  }
}

std::vector<Violation> CompiledSchema::Validate(const json::value& instance) const {
  const Impl& impl = *impl_;
  try {
    if (NestsDeeperThan(instance, impl.limits.max_instance_depth)) return {TooDeep(impl.limits)};
    const Violation too_complex{"", "the body is too complex to validate against this schema"};
    const std::size_t collect_cap = 4 * impl.limits.max_violations + 64;
    const InstanceAdapter target(instance);
    {
      // First pass: stops at the first failure, as cheap as validation gets.
      Run run(impl, collect_cap);
      valijson::MoatlessVisitor visitor(target, {"<root>"}, true, nullptr, run);
      const bool valid = visitor.validateSchema(impl.schema);
      if (run.exhausted) return {too_complex};
      if (valid) return {};
    }
    // Second pass, for an invalid document only: collects what is wrong.
    Run run(impl, collect_cap);
    valijson::ValidationResults results;
    valijson::MoatlessVisitor visitor(target, {"<root>"}, true, &results, run);
    static_cast<void>(visitor.validateSchema(impl.schema));
    if (run.exhausted && results.numErrors() == 0) return {too_complex};
    return Finish(results, impl.limits);
  } catch (const std::exception&) {
    return {{"", "the body could not be validated"}};
  }
}

SchemaDraft CompiledSchema::draft() const { return impl_->draft; }

const SchemaLimits& CompiledSchema::limits() const { return impl_->limits; }

}  // namespace moatless::gateway
