#include "services/query_protocol.h"

#include <gtest/gtest.h>

namespace moatless::services {
namespace {

TEST(QueryProtocol, DecodesFormParameters) {
  auto q = ParseQueryRequest(
      "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A000000000000%3Arole%2Fr"
      "&RoleSessionName=a+b&Policy=%7B%22x%22%3A1%7D&Empty=");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->action, "AssumeRole");
  EXPECT_EQ(q->version, "2011-06-15");
  EXPECT_EQ(q->Get("RoleArn"), "arn:aws:iam::000000000000:role/r");
  EXPECT_EQ(q->Get("RoleSessionName"), "a b");
  EXPECT_EQ(q->Get("Policy"), R"({"x":1})");
  EXPECT_EQ(q->Get("Empty"), "");
  EXPECT_FALSE(q->Get("Missing").has_value());
  auto missing = q->Require("DurationSeconds");
  EXPECT_EQ(missing.status().aws_type(), "MissingParameter");
}

TEST(QueryProtocol, ReadsIntegersAndTags) {
  auto q = ParseQueryRequest(
      "Action=A&N=900&Bad=9x&Tags.member.1.Key=team&Tags.member.1.Value=ops"
      "&Tags.member.2.Key=env&Tags.member.4.Key=skipped");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q->GetInt("N"), std::optional<std::int64_t>(900));
  EXPECT_EQ(*q->GetInt("Absent"), std::nullopt);
  EXPECT_EQ(q->GetInt("Bad").status().aws_type(), "ValidationError");
  // Numbering stops at the first gap; a tag without a value has an empty one.
  EXPECT_EQ(q->Tags(), (std::map<std::string, std::string>{{"team", "ops"}, {"env", ""}}));
}

TEST(QueryProtocol, RejectsMalformedRepeatedOversizedAndActionless) {
  EXPECT_EQ(ParseQueryRequest("Action=A&x=%zz").status().aws_type(), "MalformedQueryString");
  EXPECT_EQ(ParseQueryRequest("Action=A&x=1&x=2").status().aws_type(), "MalformedQueryString");
  EXPECT_EQ(ParseQueryRequest("Action=A&Action=B").status().aws_type(), "MalformedQueryString");
  EXPECT_EQ(ParseQueryRequest("Version=1").status().aws_type(), "MissingAction");
  EXPECT_EQ(ParseQueryRequest("").status().aws_type(), "MissingAction");
  EXPECT_EQ(ParseQueryRequest("Action=A&x=" + std::string(70000, 'a')).status().aws_type(),
            "MalformedQueryString");
  std::string many = "Action=A";
  for (int i = 0; i < 600; ++i) many += "&p" + std::to_string(i) + "=1";
  EXPECT_EQ(ParseQueryRequest(many).status().aws_type(), "MalformedQueryString");
}

TEST(QueryProtocol, XmlEscapesEveryTextAndNamesTheError) {
  XmlWriter xml;
  xml.Begin("R", "urn:x").Leaf("A", "<b>&\"'\x01").End();
  EXPECT_EQ(xml.Finish(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R xmlns=\"urn:x\"><A>&lt;b&gt;&amp;"
            "&quot;&apos;&#xFFFD;</A></R>\n");
  const std::string error = QueryErrorXml(
      core::PermissionDeniedError("no <way>").WithAwsType("AccessDenied"), "req-1", "urn:sts");
  EXPECT_NE(error.find("<Type>Sender</Type><Code>AccessDenied</Code><Message>no &lt;way&gt;"),
            std::string::npos);
  EXPECT_NE(error.find("<RequestId>req-1</RequestId>"), std::string::npos);
  EXPECT_NE(QueryErrorXml(core::InternalError("x"), "r", "urn:sts").find("<Type>Receiver</Type>"),
            std::string::npos);
}

}  // namespace
}  // namespace moatless::services
