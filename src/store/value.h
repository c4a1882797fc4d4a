// Value and Row: the data that crosses the storage interface.
//
// A Value is one SQL value of the portable type set: NULL, 64-bit integer, double, text (UTF-8,
// no NUL bytes) or blob (any bytes, possibly empty). A Row is one result row: the column names
// (shared by every row of one query) and one Value per column, read through typed getters that
// return a Result instead of crashing when the data is not what the caller expects (missing
// column, NULL, wrong type: all kInternal, because they mean the code and the schema disagree).
//
// Values never appear in error messages produced by this module (they may hold ciphertext or
// personal data); DebugString exists for test output only. Both types are plain values: copy and
// move them freely; they are not synchronised.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "core/status.h"

namespace moatless::store {

// Binary data. A distinct type from text so that a blob is never bound as TEXT by accident.
using Blob = std::vector<std::uint8_t>;

enum class ValueType { kNull, kInt, kReal, kText, kBlob };

// "NULL", "INTEGER", "REAL", "TEXT", "BLOB".
std::string_view ValueTypeName(ValueType type);

namespace internal {
// Integers a Value accepts implicitly: every signed type, bool, and unsigned types narrower than
// 64 bits. uint64_t / size_t are excluded at compile time because values above INT64_MAX have no
// portable representation: convert explicitly (and check the range) at the call site.
template <typename T>
concept PortableInteger =
    std::integral<T> && !std::is_same_v<T, char> && !std::is_same_v<T, char8_t> &&
    !std::is_same_v<T, char16_t> && !std::is_same_v<T, char32_t> && !std::is_same_v<T, wchar_t> &&
    (std::is_signed_v<T> || std::is_same_v<T, bool> || sizeof(T) < sizeof(std::int64_t));
}  // namespace internal

class Value {
 public:
  Value() = default;        // NULL
  Value(std::nullptr_t) {}  // NOLINT: implicit by design, as are the others
  template <internal::PortableInteger T>
  Value(T v) : data_(static_cast<std::int64_t>(v)) {}   // NOLINT
  Value(double v) : data_(v) {}                         // NOLINT
  Value(float v) : data_(static_cast<double>(v)) {}     // NOLINT
  Value(std::string v) : data_(std::move(v)) {}         // NOLINT
  Value(std::string_view v) : data_(std::string(v)) {}  // NOLINT
  Value(const char* v) {                                // NOLINT: nullptr is NULL
    if (v != nullptr) data_ = std::string(v);
  }
  Value(Blob v) : data_(std::move(v)) {}  // NOLINT
  // An empty optional is NULL.
  template <typename T>
  Value(const std::optional<T>& v) {  // NOLINT
    if (v.has_value()) *this = Value(*v);
  }

  // A blob holding these bytes (a string_view converts to TEXT otherwise).
  static Value FromBytes(std::string_view bytes) { return Value(Blob(bytes.begin(), bytes.end())); }

  ValueType type() const { return static_cast<ValueType>(data_.index()); }
  bool is_null() const { return type() == ValueType::kNull; }

  // Checked reads. Errors are kInternal and name the actual and expected types.
  core::Result<std::int64_t> AsInt() const;
  // REAL, or an INTEGER widened to double (backends may return integral reals as integers).
  core::Result<double> AsReal() const;
  core::Result<std::string> AsText() const;
  core::Result<Blob> AsBlob() const;
  // An INTEGER that is 0 or 1 (the portable boolean).
  core::Result<bool> AsBool() const;
  // T is one of std::int64_t, double, bool, std::string, Blob, Value, or std::optional of one of
  // them (NULL -> nullopt; for the others NULL is an error).
  template <typename T>
  core::Result<T> As() const;

  // Unchecked views for code that has already switched on type(); nullptr if another type.
  const std::int64_t* if_int() const { return std::get_if<std::int64_t>(&data_); }
  const double* if_real() const { return std::get_if<double>(&data_); }
  const std::string* if_text() const { return std::get_if<std::string>(&data_); }
  const Blob* if_blob() const { return std::get_if<Blob>(&data_); }

  friend bool operator==(const Value& a, const Value& b) = default;

  // For test failure output only: type and a truncated rendering of the contents.
  std::string DebugString() const;

 private:
  // The index order matches ValueType.
  std::variant<std::monostate, std::int64_t, double, std::string, Blob> data_;
};

// gtest printer.
void PrintTo(const Value& value, std::ostream* os);

// Text the portable subset accepts: valid UTF-8 (no overlong forms, surrogates or code points
// above U+10FFFF) without NUL bytes, which is what PostgreSQL's TEXT accepts. Backends check every
// TEXT parameter with it, so SQLite refuses what PostgreSQL would refuse. Binary data belongs in
// a BLOB. Returns kInvalidArgument (the message names the byte offset, never the contents).
core::Status ValidatePortableText(std::string_view text);

// One result row. Column lookup by name is ASCII case-insensitive (PostgreSQL folds unquoted
// names to lower case; write lower-case names and aliases).
class Row {
 public:
  Row(std::shared_ptr<const std::vector<std::string>> columns, std::vector<Value> values);

  std::size_t size() const { return values_.size(); }
  const std::vector<std::string>& columns() const { return *columns_; }
  const std::vector<Value>& values() const { return values_; }

  // The value of a column, or nullptr if the row has no such column.
  const Value* Find(std::string_view column) const;
  // kInternal if the row has no such column.
  core::Result<Value> Get(std::string_view column) const;
  // Typed reads; see Value::As for the accepted T. Errors are kInternal and name the column.
  template <typename T>
  core::Result<T> Get(std::string_view column) const;

  core::Result<std::int64_t> GetInt(std::string_view column) const {
    return Get<std::int64_t>(column);
  }
  core::Result<double> GetReal(std::string_view column) const { return Get<double>(column); }
  core::Result<std::string> GetText(std::string_view column) const {
    return Get<std::string>(column);
  }
  core::Result<Blob> GetBlob(std::string_view column) const { return Get<Blob>(column); }
  core::Result<bool> GetBool(std::string_view column) const { return Get<bool>(column); }
  core::Result<bool> IsNull(std::string_view column) const;

  friend bool operator==(const Row& a, const Row& b) {
    return *a.columns_ == *b.columns_ && a.values_ == b.values_;
  }

 private:
  core::Status MissingColumn(std::string_view column) const;

  std::shared_ptr<const std::vector<std::string>> columns_;
  std::vector<Value> values_;
};

void PrintTo(const Row& row, std::ostream* os);

// --- implementation details of the templates ---

namespace internal {
template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {
  using Inner = T;
};
}  // namespace internal

template <typename T>
core::Result<T> Value::As() const {
  if constexpr (internal::IsOptional<T>::value) {
    using Inner = typename internal::IsOptional<T>::Inner;
    if (is_null()) return T(std::nullopt);
    core::Result<Inner> inner = As<Inner>();
    if (!inner.ok()) return inner.status();
    return T(std::move(inner).value());
  } else if constexpr (std::is_same_v<T, Value>) {
    return *this;
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    return AsInt();
  } else if constexpr (std::is_same_v<T, double>) {
    return AsReal();
  } else if constexpr (std::is_same_v<T, bool>) {
    return AsBool();
  } else if constexpr (std::is_same_v<T, std::string>) {
    return AsText();
  } else if constexpr (std::is_same_v<T, Blob>) {
    return AsBlob();
  } else {
    static_assert(sizeof(T) == 0,
                  "Value::As<T>: T must be int64_t, double, bool, std::string, Blob, Value or an "
                  "optional of one of them");
  }
}

template <typename T>
core::Result<T> Row::Get(std::string_view column) const {
  const Value* value = Find(column);
  if (value == nullptr) return MissingColumn(column);
  core::Result<T> result = value->As<T>();
  if (!result.ok()) return result.status().Annotate("column '" + std::string(column) + "'");
  return result;
}

}  // namespace moatless::store
