#include "core/status.h"

#include <gtest/gtest.h>

namespace moatless::core {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int half, Half(x));
  ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

Status CheckEven(int x) {
  RETURN_IF_ERROR(Half(x));
  return Status::Ok();
}

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, CodesMapToHttpAndAws) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(StatusCode::kPayloadTooLarge), 413);
  EXPECT_EQ(HttpStatusFor(StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInternal), 500);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(PermissionDeniedError("x").aws_type(), "AccessDeniedException");
  EXPECT_EQ(NotFoundError("x").aws_type(), "ResourceNotFoundException");
  EXPECT_EQ(ResourceExhaustedError("x").aws_type(), "ThrottlingException");
}

TEST(StatusTest, AwsTypeOverrideSurvivesAnnotate) {
  Status s = InvalidArgumentError("bad").WithAwsType("InvalidParameterException");
  Status annotated = s.Annotate("creating secret");
  EXPECT_EQ(annotated.aws_type(), "InvalidParameterException");
  EXPECT_EQ(annotated.message(), "creating secret: bad");
  EXPECT_EQ(annotated.code(), StatusCode::kInvalidArgument);
}

TEST(ResultTest, ValueAndErrorPropagate) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd: 3");
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(5).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Quarter(6).value_or(-1), -1);
}

TEST(ResultDeathTest, ValueOfErrorIsFatal) {
  Result<int> r = NotFoundError("nope");
  EXPECT_DEATH((void)r.value(), "value\\(\\) of a failed Result");
}

TEST(ResultDeathTest, OkStatusIsNotAnError) {
  EXPECT_DEATH(Result<int>{Status::Ok()}, "OK Status");
}

}  // namespace
}  // namespace moatless::core
