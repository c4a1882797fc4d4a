#include "core/arn.h"

#include <gtest/gtest.h>

namespace moatless::core {
namespace {

TEST(ArnTest, ParsesAndFormatsRoundTrip) {
  for (const char* text :
       {"arn:aws:iam::123456789012:role/app/fn-role", "arn:aws:s3:::bucket/key:with:colons",
        "arn:aws:secretsmanager:local:000000000000:secret:prod/db-AbCdEf",
        "arn:aws:lambda:us-east-1:123456789012:function:hello:live"}) {
    auto arn = Arn::Parse(text);
    ASSERT_TRUE(arn.ok()) << text << ": " << arn.status();
    EXPECT_EQ(arn->ToString(), text);
  }
}

TEST(ArnTest, SplitsFields) {
  auto arn = Arn::Parse("arn:aws:lambda:us-east-1:123456789012:function:hello:live");
  ASSERT_TRUE(arn.ok());
  EXPECT_EQ(arn->partition, "aws");
  EXPECT_EQ(arn->service, "lambda");
  EXPECT_EQ(arn->region, "us-east-1");
  EXPECT_EQ(arn->account, "123456789012");
  EXPECT_EQ(arn->resource, "function:hello:live");
  EXPECT_EQ(arn->ResourceType(), "function");
  EXPECT_EQ(arn->ResourceId(), "hello:live");
}

TEST(ArnTest, RejectsMalformed) {
  for (const char* text : {"", "arn", "arn:aws", "arn:aws:iam::123", "arn::iam::1:role/x",
                           "arn:aws:::1:x", "arn:aws:IAM::1:role/x", "arn:aws:iam::1:",
                           "urn:aws:iam::1:role/x", "arn:aws:iam::1:role/\x01"}) {
    auto arn = Arn::Parse(text);
    EXPECT_FALSE(arn.ok()) << text;
    EXPECT_EQ(arn.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(Arn::Parse("arn:aws:s3:::" + std::string(3000, 'a')).ok());
}

TEST(ArnTest, ErrorDoesNotEchoControlCharacters) {
  auto arn = Arn::Parse("arn:aws:iam::1:role/\n\x1b[31mred");
  ASSERT_FALSE(arn.ok());
  EXPECT_EQ(arn.status().message().find('\x1b'), std::string::npos);
}

}  // namespace
}  // namespace moatless::core
