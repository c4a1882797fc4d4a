#include "store/value.h"

#include <algorithm>
#include <cstdio>

namespace moatless::store {
namespace {

using core::InternalError;
using core::Result;
using core::Status;

Status WrongType(ValueType actual, ValueType expected) {
  if (actual == ValueType::kNull) {
    return InternalError("is NULL, expected " + std::string(ValueTypeName(expected)) +
                         " (read it as an optional to accept NULL)");
  }
  return InternalError("is " + std::string(ValueTypeName(actual)) + ", expected " +
                       std::string(ValueTypeName(expected)));
}

bool EqualsIgnoreAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string Hex(const std::uint8_t* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

}  // namespace

std::string_view ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kNull:
      return "NULL";
    case ValueType::kInt:
      return "INTEGER";
    case ValueType::kReal:
      return "REAL";
    case ValueType::kText:
      return "TEXT";
    case ValueType::kBlob:
      return "BLOB";
  }
  return "UNKNOWN";
}

Result<std::int64_t> Value::AsInt() const {
  if (const auto* v = if_int()) return *v;
  return WrongType(type(), ValueType::kInt);
}

Result<double> Value::AsReal() const {
  if (const auto* v = if_real()) return *v;
  if (const auto* v = if_int()) return static_cast<double>(*v);
  return WrongType(type(), ValueType::kReal);
}

Result<std::string> Value::AsText() const {
  if (const auto* v = if_text()) return *v;
  return WrongType(type(), ValueType::kText);
}

Result<Blob> Value::AsBlob() const {
  if (const auto* v = if_blob()) return *v;
  return WrongType(type(), ValueType::kBlob);
}

Result<bool> Value::AsBool() const {
  const auto* v = if_int();
  if (v == nullptr) return WrongType(type(), ValueType::kInt);
  if (*v != 0 && *v != 1)
    return InternalError("is INTEGER but neither 0 nor 1, expected a boolean");
  return *v == 1;
}

std::string Value::DebugString() const {
  constexpr std::size_t kMax = 32;
  switch (type()) {
    case ValueType::kNull:
      return "NULL";
    case ValueType::kInt:
      return std::to_string(*if_int());
    case ValueType::kReal: {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.17g", *if_real());
      return buf;
    }
    case ValueType::kText: {
      const std::string& t = *if_text();
      std::string out = "'" + t.substr(0, kMax) + (t.size() > kMax ? "...'" : "'");
      if (t.size() > kMax) out += " (" + std::to_string(t.size()) + " bytes)";
      return out;
    }
    case ValueType::kBlob: {
      const Blob& b = *if_blob();
      std::string out =
          "x'" + Hex(b.data(), std::min(b.size(), kMax)) + (b.size() > kMax ? "...'" : "'");
      out += " (" + std::to_string(b.size()) + " bytes)";
      return out;
    }
  }
  return "?";
}

void PrintTo(const Value& value, std::ostream* os) { *os << value.DebugString(); }

Status ValidatePortableText(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  const auto bad = [&](const char* what) {
    return core::InvalidArgumentError(std::string("text ") + what + " at byte " +
                                      std::to_string(i) + " (binary data belongs in a BLOB)");
  };
  while (i < n) {
    const unsigned char c = s[i];
    if (c == 0) return bad("contains a NUL byte");
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return bad("is not valid UTF-8");
    }
    if (n - i < len) return bad("is not valid UTF-8 (truncated sequence)");
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xc0) != 0x80) return bad("is not valid UTF-8");
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
      return bad("is not valid UTF-8 (overlong or out of range)");
    }
    if (cp >= 0xd800 && cp <= 0xdfff) return bad("is not valid UTF-8 (surrogate)");
    i += len;
  }
  return Status::Ok();
}

Row::Row(std::shared_ptr<const std::vector<std::string>> columns, std::vector<Value> values)
    : columns_(std::move(columns)), values_(std::move(values)) {
  MOATLESS_CHECK(columns_ != nullptr && columns_->size() == values_.size(),
                 "Row: one value per column");
}

const Value* Row::Find(std::string_view column) const {
  for (std::size_t i = 0; i < columns_->size(); ++i) {
    if (EqualsIgnoreAsciiCase((*columns_)[i], column)) return &values_[i];
  }
  return nullptr;
}

Result<Value> Row::Get(std::string_view column) const {
  const Value* value = Find(column);
  if (value == nullptr) return MissingColumn(column);
  return *value;
}

Result<bool> Row::IsNull(std::string_view column) const {
  const Value* value = Find(column);
  if (value == nullptr) return MissingColumn(column);
  return value->is_null();
}

Status Row::MissingColumn(std::string_view column) const {
  std::string names;
  for (const auto& c : *columns_) names += (names.empty() ? "" : ", ") + c;
  return InternalError("no column '" + std::string(column) + "' in the row (columns: " + names +
                       ")");
}

void PrintTo(const Row& row, std::ostream* os) {
  *os << "{";
  for (std::size_t i = 0; i < row.size(); ++i) {
    *os << (i ? ", " : "") << row.columns()[i] << ": " << row.values()[i].DebugString();
  }
  *os << "}";
}

}  // namespace moatless::store
