#include "policy/matching.h"

#include <arpa/inet.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <utility>

namespace moatless::policy {
namespace {

using core::InvalidArgumentError;
using core::Result;
using core::Status;

bool ConsumePrefixIgnoreCase(std::string_view& text, std::string_view prefix) {
  if (text.size() < prefix.size() || !EqualsIgnoreCase(text.substr(0, prefix.size()), prefix)) {
    return false;
  }
  text.remove_prefix(prefix.size());
  return true;
}

bool ConsumeSuffixIgnoreCase(std::string_view& text, std::string_view suffix) {
  if (text.size() < suffix.size() ||
      !EqualsIgnoreCase(text.substr(text.size() - suffix.size()), suffix)) {
    return false;
  }
  text.remove_suffix(suffix.size());
  return true;
}

struct BaseOperator {
  std::string_view name;
  OperatorFamily family;
  OperatorTest test;
  bool negated;
};

constexpr BaseOperator kBaseOperators[] = {
    {"StringEquals", OperatorFamily::kString, OperatorTest::kEquals, false},
    {"StringNotEquals", OperatorFamily::kString, OperatorTest::kEquals, true},
    {"StringEqualsIgnoreCase", OperatorFamily::kString, OperatorTest::kEqualsIgnoreCase, false},
    {"StringNotEqualsIgnoreCase", OperatorFamily::kString, OperatorTest::kEqualsIgnoreCase, true},
    {"StringLike", OperatorFamily::kString, OperatorTest::kLike, false},
    {"StringNotLike", OperatorFamily::kString, OperatorTest::kLike, true},
    {"NumericEquals", OperatorFamily::kNumeric, OperatorTest::kEquals, false},
    {"NumericNotEquals", OperatorFamily::kNumeric, OperatorTest::kEquals, true},
    {"NumericLessThan", OperatorFamily::kNumeric, OperatorTest::kLessThan, false},
    {"NumericLessThanEquals", OperatorFamily::kNumeric, OperatorTest::kLessThanEquals, false},
    {"NumericGreaterThan", OperatorFamily::kNumeric, OperatorTest::kGreaterThan, false},
    {"NumericGreaterThanEquals", OperatorFamily::kNumeric, OperatorTest::kGreaterThanEquals, false},
    {"DateEquals", OperatorFamily::kDate, OperatorTest::kEquals, false},
    {"DateNotEquals", OperatorFamily::kDate, OperatorTest::kEquals, true},
    {"DateLessThan", OperatorFamily::kDate, OperatorTest::kLessThan, false},
    {"DateLessThanEquals", OperatorFamily::kDate, OperatorTest::kLessThanEquals, false},
    {"DateGreaterThan", OperatorFamily::kDate, OperatorTest::kGreaterThan, false},
    {"DateGreaterThanEquals", OperatorFamily::kDate, OperatorTest::kGreaterThanEquals, false},
    {"Bool", OperatorFamily::kBool, OperatorTest::kEquals, false},
    {"BinaryEquals", OperatorFamily::kBinary, OperatorTest::kEquals, false},
    {"IpAddress", OperatorFamily::kIp, OperatorTest::kEquals, false},
    {"NotIpAddress", OperatorFamily::kIp, OperatorTest::kEquals, true},
    {"ArnEquals", OperatorFamily::kArn, OperatorTest::kLike, false},
    {"ArnLike", OperatorFamily::kArn, OperatorTest::kLike, false},
    {"ArnNotEquals", OperatorFamily::kArn, OperatorTest::kLike, true},
    {"ArnNotLike", OperatorFamily::kArn, OperatorTest::kLike, true},
    {"Null", OperatorFamily::kNull, OperatorTest::kEquals, false},
};

bool AllDigits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool ParseFixed(std::string_view text, std::size_t pos, std::size_t len, int& out) {
  if (pos + len > text.size()) return false;
  std::string_view part = text.substr(pos, len);
  if (!AllDigits(part)) return false;
  out = 0;
  for (char c : part) out = out * 10 + (c - '0');
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

}  // namespace

Result<ConditionOperator> ParseConditionOperator(std::string_view name) {
  ConditionOperator op;
  std::string_view rest = name;
  if (ConsumePrefixIgnoreCase(rest, "ForAllValues:")) {
    op.set = SetQualifier::kForAllValues;
  } else if (ConsumePrefixIgnoreCase(rest, "ForAnyValue:")) {
    op.set = SetQualifier::kForAnyValue;
  }
  op.if_exists = ConsumeSuffixIgnoreCase(rest, "IfExists");
  for (const BaseOperator& base : kBaseOperators) {
    if (EqualsIgnoreCase(base.name, rest)) {
      op.family = base.family;
      op.test = base.test;
      op.negated = base.negated;
      if (op.family == OperatorFamily::kNull && (op.if_exists || op.set != SetQualifier::kNone)) {
        return InvalidArgumentError("condition operator \"" + std::string(name) +
                                    "\": Null takes neither IfExists nor a set qualifier");
      }
      return op;
    }
  }
  return InvalidArgumentError("unknown condition operator \"" + std::string(name) + "\"");
}

bool FamilyAllowsVariables(OperatorFamily family) {
  return family == OperatorFamily::kString || family == OperatorFamily::kArn;
}

Result<double> ParseNumber(std::string_view text) {
  // Strict decimal syntax: [-]digits[.digits]. No exponents, hex, inf or nan.
  std::string_view body = text;
  if (!body.empty() && (body.front() == '-' || body.front() == '+')) body.remove_prefix(1);
  const std::size_t dot = body.find('.');
  const std::string_view integral = body.substr(0, dot);
  const bool ok =
      AllDigits(integral) && (dot == std::string_view::npos || AllDigits(body.substr(dot + 1)));
  if (!ok || text.size() > 64) {
    return InvalidArgumentError("\"" + std::string(text.substr(0, 64)) + "\" is not a number");
  }
  std::string_view parse = text;
  if (parse.front() == '+') parse.remove_prefix(1);
  double value = 0;
  auto [ptr, ec] = std::from_chars(parse.data(), parse.data() + parse.size(), value);
  if (ec != std::errc() || ptr != parse.data() + parse.size() || !std::isfinite(value)) {
    return InvalidArgumentError("\"" + std::string(text) + "\" is not a number");
  }
  return value;
}

Result<std::int64_t> ParseDateMillis(std::string_view text) {
  auto bad = [&] {
    return InvalidArgumentError("\"" + std::string(text.substr(0, 64)) +
                                "\" is not an ISO 8601 date or epoch time");
  };
  if (AllDigits(text)) {
    if (text.size() > 12) return bad();  // seconds; beyond year 33658 is a typo
    std::int64_t seconds = 0;
    std::from_chars(text.data(), text.data() + text.size(), seconds);
    return seconds * 1000;
  }
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!ParseFixed(text, 0, 4, year) || text.size() < 10 || text[4] != '-' ||
      !ParseFixed(text, 5, 2, month) || text[7] != '-' || !ParseFixed(text, 8, 2, day)) {
    return bad();
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month)) return bad();
  std::size_t pos = 10;
  std::int64_t millis = 0;
  std::int64_t offset_minutes = 0;
  if (pos < text.size()) {
    if (text[pos] != 'T' && text[pos] != 't') return bad();
    if (!ParseFixed(text, pos + 1, 2, hour) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !ParseFixed(text, pos + 4, 2, minute)) {
      return bad();
    }
    pos += 6;
    if (pos < text.size() && text[pos] == ':') {
      if (!ParseFixed(text, pos + 1, 2, second)) return bad();
      pos += 3;
      if (pos < text.size() && text[pos] == '.') {
        ++pos;
        int digits = 0;
        std::int64_t fraction = 0;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
          if (digits < 3) fraction = fraction * 10 + (text[pos] - '0');
          ++digits;
          ++pos;
        }
        if (digits == 0 || digits > 9) return bad();
        for (int i = digits; i < 3; ++i) fraction *= 10;
        millis = fraction;
      }
    }
    if (hour > 23 || minute > 59 || second > 60) return bad();
    if (pos < text.size()) {
      const char zone = text[pos];
      if ((zone == 'Z' || zone == 'z') && pos + 1 == text.size()) {
        pos += 1;
      } else if (zone == '+' || zone == '-') {
        int oh = 0, om = 0;
        if (!ParseFixed(text, pos + 1, 2, oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
            !ParseFixed(text, pos + 4, 2, om) || pos + 6 != text.size() || oh > 23 || om > 59) {
          return bad();
        }
        offset_minutes = (oh * 60 + om) * (zone == '+' ? 1 : -1);
        pos += 6;
      } else {
        return bad();
      }
    }
  }
  if (pos != text.size()) return bad();
  const std::int64_t days =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const std::int64_t seconds =
      days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
  return seconds * 1000 + millis;
}

Result<bool> ParseBool(std::string_view text) {
  if (EqualsIgnoreCase(text, "true")) return true;
  if (EqualsIgnoreCase(text, "false")) return false;
  return InvalidArgumentError("\"" + std::string(text.substr(0, 64)) +
                              "\" is not a boolean (true or false)");
}

Status ValidateBase64(std::string_view text) {
  std::size_t padding = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (c == '=') {
      ++padding;
    } else if ((!alnum && c != '+' && c != '/') || padding > 0) {
      return InvalidArgumentError("binary condition value is not base64");
    }
  }
  if (text.empty() || text.size() % 4 != 0 || padding > 2) {
    return InvalidArgumentError("binary condition value is not base64");
  }
  return Status::Ok();
}

std::optional<Cidr> ParseIpAddress(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  const std::string copy(text);
  Cidr out;
  if (copy.find(':') != std::string::npos) {
    if (inet_pton(AF_INET6, copy.c_str(), out.bytes.data()) != 1) return std::nullopt;
    out.v6 = true;
    out.prefix = 128;
  } else {
    if (inet_pton(AF_INET, copy.c_str(), out.bytes.data()) != 1) return std::nullopt;
    out.prefix = 32;
  }
  return out;
}

Result<Cidr> ParseCidr(std::string_view text) {
  auto bad = [&] {
    return InvalidArgumentError("\"" + std::string(text.substr(0, 64)) + "\" is not a CIDR block");
  };
  const std::size_t slash = text.find('/');
  std::optional<Cidr> net = ParseIpAddress(text.substr(0, slash));
  if (!net) return bad();
  if (slash != std::string_view::npos) {
    const std::string_view prefix = text.substr(slash + 1);
    int bits = 0;
    if (!AllDigits(prefix) || prefix.size() > 3) return bad();
    std::from_chars(prefix.data(), prefix.data() + prefix.size(), bits);
    if (bits > (net->v6 ? 128 : 32)) return bad();
    net->prefix = bits;
  }
  return *net;
}

bool CidrContains(const Cidr& net, const Cidr& address) {
  if (net.v6 != address.v6) return false;
  const int full = net.prefix / 8;
  if (std::memcmp(net.bytes.data(), address.bytes.data(), static_cast<std::size_t>(full)) != 0) {
    return false;
  }
  const int rest = net.prefix % 8;
  if (rest == 0) return true;
  const std::uint8_t mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
  return (net.bytes[full] & mask) == (address.bytes[full] & mask);
}

bool Template::has_variables() const {
  for (const TemplatePart& part : parts) {
    if (part.is_variable) return true;
  }
  return false;
}

Result<Template> ParseTemplate(std::string_view text, bool variables) {
  Template out;
  auto add_literal = [&](std::string_view literal) {
    if (literal.empty()) return;
    if (!out.parts.empty() && !out.parts.back().is_variable && !out.parts.back().literal_escape) {
      out.parts.back().text += literal;
    } else {
      out.parts.push_back({.text = std::string(literal)});
    }
  };
  if (!variables) {
    add_literal(text);
    return out;
  }
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t start = text.find("${", pos);
    if (start == std::string_view::npos) {
      add_literal(text.substr(pos));
      break;
    }
    add_literal(text.substr(pos, start - pos));
    const std::size_t end = text.find('}', start + 2);
    if (end == std::string_view::npos) {
      return InvalidArgumentError("unterminated policy variable in \"" +
                                  std::string(text.substr(0, 128)) + "\"");
    }
    std::string_view body = text.substr(start + 2, end - start - 2);
    if (body == "*" || body == "?" || body == "$") {
      out.parts.push_back({.literal_escape = true, .text = std::string(body)});
    } else {
      TemplatePart part{.is_variable = true};
      const std::size_t comma = body.find(',');
      std::string_view key = body.substr(0, comma);
      while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
      if (comma != std::string_view::npos) {
        std::string_view def = body.substr(comma + 1);
        while (!def.empty() && def.front() == ' ') def.remove_prefix(1);
        while (!def.empty() && def.back() == ' ') def.remove_suffix(1);
        if (def.size() < 2 || def.front() != '\'' || def.back() != '\'') {
          return InvalidArgumentError("policy variable \"${" + std::string(body) +
                                      "}\": the default must be in single quotes");
        }
        part.default_value = std::string(def.substr(1, def.size() - 2));
      }
      if (key.empty() || key.find_first_of(" ${") != std::string_view::npos) {
        return InvalidArgumentError("malformed policy variable \"${" + std::string(body) + "}\"");
      }
      part.text = AsciiLower(key);
      out.parts.push_back(std::move(part));
    }
    pos = end + 1;
  }
  return out;
}

namespace {

// Bytes in the UTF-8 sequence that starts at text[i] (1 for ASCII and for malformed bytes), so
// that `?` and `*` step over whole characters.
std::size_t CharWidth(std::string_view text, std::size_t i) {
  const auto lead = static_cast<unsigned char>(text[i]);
  std::size_t width = 1;
  if (lead >= 0xF0 && lead <= 0xF7) {
    width = 4;
  } else if (lead >= 0xE0) {
    width = lead <= 0xEF ? 3 : 1;
  } else if (lead >= 0xC0) {
    width = 2;
  }
  for (std::size_t k = 1; k < width; ++k) {
    if (i + k >= text.size() || (static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 1;
  }
  return width;
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text, bool ignore_case) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  std::size_t p = 0, t = 0;
  std::size_t star_p = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size()) {
      const char pc = pattern[p];
      if (pc == '*') {
        star_p = ++p;
        star_t = t;
        continue;
      }
      if (pc == '?') {
        ++p;
        t += CharWidth(text, t);
        continue;
      }
      std::size_t width = 1;
      char literal = pc;
      if (pc == '\\' && p + 1 < pattern.size()) {
        literal = pattern[p + 1];
        width = 2;
      }
      const char tc = text[t];
      if (literal == tc || (ignore_case && lower(literal) == lower(tc))) {
        p += width;
        ++t;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    star_t += CharWidth(text, star_t);
    t = star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string GlobEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '*' || c == '?' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

bool HasWildcard(std::string_view text) {
  return text.find_first_of("*?") != std::string_view::npos;
}

std::string AsciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::optional<std::array<std::string_view, 6>> SplitArn(std::string_view text) {
  std::array<std::string_view, 6> out;
  std::size_t pos = 0;
  for (int i = 0; i < 5; ++i) {
    const std::size_t colon = text.find(':', pos);
    if (colon == std::string_view::npos) return std::nullopt;
    out[static_cast<std::size_t>(i)] = text.substr(pos, colon - pos);
    pos = colon + 1;
  }
  out[5] = text.substr(pos);
  return out;
}

}  // namespace moatless::policy
