#include "store/value.h"

#include <gtest/gtest.h>

#include <limits>

#include "store/database.h"

namespace moatless::store {
namespace {

using core::StatusCode;

TEST(ValueTest, ConstructorsPickTheType) {
  EXPECT_EQ(Value().type(), ValueType::kNull);
  EXPECT_EQ(Value(nullptr).type(), ValueType::kNull);
  EXPECT_EQ(Value(static_cast<const char*>(nullptr)).type(), ValueType::kNull);
  EXPECT_EQ(Value(1).type(), ValueType::kInt);
  EXPECT_EQ(Value(std::int64_t{1}).type(), ValueType::kInt);
  EXPECT_EQ(Value(std::uint32_t{7}).type(), ValueType::kInt);
  EXPECT_EQ(Value(true), Value(1));
  EXPECT_EQ(Value(1.5).type(), ValueType::kReal);
  EXPECT_EQ(Value("x").type(), ValueType::kText);
  EXPECT_EQ(Value(std::string("x")).type(), ValueType::kText);
  EXPECT_EQ(Value(std::string_view("x")).type(), ValueType::kText);
  EXPECT_EQ(Value(Blob{}).type(), ValueType::kBlob);
  EXPECT_EQ(Value::FromBytes("x").type(), ValueType::kBlob);
  EXPECT_EQ(Value(std::optional<std::string>()).type(), ValueType::kNull);
  EXPECT_EQ(Value(std::optional<std::string>("a")), Value("a"));
  // Text and blob with the same bytes are different values.
  EXPECT_NE(Value("x"), Value::FromBytes("x"));
  EXPECT_NE(Value(1), Value(1.0));
}

TEST(ValueTest, CheckedReads) {
  EXPECT_EQ(Value(5).AsInt().value(), 5);
  EXPECT_EQ(Value(5).AsReal().value(), 5.0);
  EXPECT_EQ(Value(0).AsBool().value(), false);
  EXPECT_EQ(Value(1).AsBool().value(), true);
  EXPECT_EQ(Value(2).AsBool().status().code(), StatusCode::kInternal);
  EXPECT_EQ(Value(1.5).AsInt().status().code(), StatusCode::kInternal);
  EXPECT_EQ(Value("5").AsInt().status().code(), StatusCode::kInternal);
  EXPECT_EQ(Value::FromBytes("5").AsText().status().code(), StatusCode::kInternal);
  EXPECT_EQ(Value("5").AsBlob().status().code(), StatusCode::kInternal);
  const auto null_int = Value().AsInt();
  EXPECT_EQ(null_int.status().code(), StatusCode::kInternal);
  EXPECT_NE(null_int.status().message().find("NULL"), std::string::npos);
  EXPECT_EQ(Value().As<std::optional<std::int64_t>>().value(), std::nullopt);
  EXPECT_EQ(Value(3).As<std::optional<std::int64_t>>().value(), 3);
  EXPECT_EQ(Value("a").As<std::optional<std::int64_t>>().status().code(), StatusCode::kInternal);
  EXPECT_EQ(Value("a").As<Value>().value(), Value("a"));
}

TEST(ValueTest, DebugStringTruncates) {
  EXPECT_EQ(Value().DebugString(), "NULL");
  EXPECT_EQ(Value(-3).DebugString(), "-3");
  EXPECT_EQ(Value("ab").DebugString(), "'ab'");
  EXPECT_EQ(Value(Blob{0, 255}).DebugString(), "x'00ff' (2 bytes)");
  EXPECT_LT(Value(std::string(10000, 'a')).DebugString().size(), 100u);
}

TEST(ValueTest, PortableText) {
  EXPECT_TRUE(ValidatePortableText("").ok());
  EXPECT_TRUE(ValidatePortableText("plain ascii").ok());
  EXPECT_TRUE(ValidatePortableText("héllo ✓ 𝄞 \xf4\x8f\xbf\xbf").ok());  // up to U+10FFFF
  for (std::string_view bad :
       {std::string_view("a\0b", 3), std::string_view("\xe9"), std::string_view("\xc0\xaf"),
        std::string_view("\xe0\x80\xaf"), std::string_view("\xed\xa0\x80"),
        std::string_view("\xf4\x90\x80\x80"), std::string_view("\xe2\x9c"),
        std::string_view("\x80"), std::string_view("\xff")}) {
    const core::Status s = ValidatePortableText(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << testing::PrintToString(bad);
  }
}

TEST(RowTest, GettersNameTheColumn) {
  auto columns = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"id", "Name", "data", "missing_value"});
  Row row(columns, {7, "n", Blob{1}, Value()});
  EXPECT_EQ(row.size(), 4u);
  EXPECT_EQ(row.GetInt("id").value(), 7);
  EXPECT_EQ(row.GetText("name").value(), "n");  // case-insensitive
  EXPECT_EQ(row.GetBlob("DATA").value(), Blob{1});
  EXPECT_TRUE(row.IsNull("missing_value").value());
  EXPECT_EQ(row.Get<std::optional<std::string>>("missing_value").value(), std::nullopt);
  const auto wrong = row.GetInt("name");
  EXPECT_EQ(wrong.status().code(), StatusCode::kInternal);
  EXPECT_NE(wrong.status().message().find("column 'name'"), std::string::npos) << wrong.status();
  EXPECT_NE(wrong.status().message().find("TEXT"), std::string::npos) << wrong.status();
  const auto missing = row.GetInt("nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kInternal);
  EXPECT_NE(missing.status().message().find("columns: id, Name, data, missing_value"),
            std::string::npos)
      << missing.status();
  EXPECT_EQ(row.Find("nope"), nullptr);
  EXPECT_EQ(row.IsNull("nope").status().code(), StatusCode::kInternal);
}

TEST(ParamsTest, ViewsTheValues) {
  const auto count = [](Params p) { return p.size(); };
  EXPECT_EQ(count({}), 0u);
  EXPECT_EQ(count({1, "a", nullptr}), 3u);
  const std::vector<Value> values = {1, 2};
  EXPECT_EQ(count(values), 2u);
}

}  // namespace
}  // namespace moatless::store
