#include "secrets/resource_policy.h"

#include <gtest/gtest.h>

namespace moatless::secrets {
namespace {

PolicyReview Review(std::string_view document) {
  auto review = ReviewResourcePolicy(document);
  EXPECT_TRUE(review.ok()) << review.status();
  return review.ok() ? *review : PolicyReview{};
}

TEST(ResourcePolicyTest, APolicyNamingItsPrincipalsPasses) {
  const PolicyReview review = Review(R"({"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:role/reader"},
       "Action":"secretsmanager:GetSecretValue","Resource":"*"},
      {"Effect":"Deny","Principal":"*","Action":"secretsmanager:*","Resource":"*",
       "Condition":{"Bool":{"aws:SecureTransport":"false"}}}]})");
  EXPECT_TRUE(review.failures.empty());
  EXPECT_FALSE(review.is_public);
}

TEST(ResourcePolicyTest, EveryoneAllowedIsPublicUnlessTheCallerIsPinned) {
  for (const char* principal : {R"("*")", R"({"AWS":"*"})"}) {
    const PolicyReview review =
        Review(std::string(R"({"Statement":[{"Effect":"Allow","Principal":)") + principal +
               R"(,"Action":"secretsmanager:GetSecretValue","Resource":"*"}]})");
    EXPECT_TRUE(review.is_public) << principal;
    ASSERT_EQ(review.failures.size(), 1u);
    EXPECT_EQ(review.failures[0].check, "PUBLIC_ACCESS_CHECK");
  }
  EXPECT_FALSE(Review(R"({"Statement":[{"Effect":"Allow","Principal":"*",
      "Action":"secretsmanager:GetSecretValue","Resource":"*",
      "Condition":{"StringEquals":{"aws:PrincipalAccount":"000000000000"}}}]})")
                   .is_public);
  EXPECT_TRUE(Review(R"({"Statement":[{"Effect":"Allow","Principal":"*",
      "Action":"secretsmanager:GetSecretValue","Resource":"*",
      "Condition":{"StringLike":{"aws:PrincipalAccount":"*"}}}]})")
                  .is_public);
}

TEST(ResourcePolicyTest, GrammarErrorsAreReportedNotThrown) {
  const PolicyReview review = Review(R"({"Statement":[{"Effect":"Allow","Principal":"*",
      "Action":"secretsmanager:GetSecretValue","Resource":"*",
      "Condition":{"StringEqualz":{"aws:PrincipalAccount":"1"}}}]})");
  ASSERT_EQ(review.failures.size(), 1u);
  EXPECT_EQ(review.failures[0].check, "SYNTAX_CHECK");
  EXPECT_EQ(
      Review(R"({"Statement":[{"Effect":"Allow","Action":"s:x","Resource":"*"}]})").failures.size(),
      1u)
      << "a resource policy needs a Principal";
  EXPECT_EQ(ReviewResourcePolicy("not json").status().aws_type(),
            "MalformedPolicyDocumentException");
  EXPECT_EQ(ReviewResourcePolicy("[1]").status().aws_type(), "MalformedPolicyDocumentException");
}

}  // namespace
}  // namespace moatless::secrets
