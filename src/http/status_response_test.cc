#include "http/status_response.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace moatless::http {
namespace {

boost::json::value Body(const Response& res) { return boost::json::parse(res.body()); }

TEST(StatusResponseTest, MapsCodeTypeAndHeaders) {
  const Response res = StatusResponse(core::NotFoundError("function fn-1 not found"), "rid-42");
  EXPECT_EQ(res.result_int(), 404u);
  EXPECT_EQ(res[Field::content_type], "application/x-amz-json-1.1");
  EXPECT_EQ(res["x-amzn-ErrorType"], "ResourceNotFoundException");
  EXPECT_EQ(res["x-amzn-RequestId"], "rid-42");
  EXPECT_EQ(res[Field::content_length], std::to_string(res.body().size()));
  const auto body = Body(res).as_object();
  EXPECT_EQ(body.at("__type").as_string(), "ResourceNotFoundException");
  EXPECT_EQ(body.at("message").as_string(), "function fn-1 not found");
}

TEST(StatusResponseTest, EveryCodeMapsThroughCore) {
  using core::StatusCode;
  for (StatusCode code :
       {StatusCode::kInvalidArgument, StatusCode::kUnauthenticated, StatusCode::kPermissionDenied,
        StatusCode::kAlreadyExists, StatusCode::kAborted, StatusCode::kFailedPrecondition,
        StatusCode::kPayloadTooLarge, StatusCode::kResourceExhausted, StatusCode::kDeadlineExceeded,
        StatusCode::kUnimplemented, StatusCode::kUnavailable, StatusCode::kInternal}) {
    const Response res = StatusResponse(core::Status(code, "m"), "r");
    EXPECT_EQ(static_cast<int>(res.result_int()), core::HttpStatusFor(code));
    EXPECT_EQ(res["x-amzn-ErrorType"], core::AwsErrorTypeFor(code));
  }
}

TEST(StatusResponseTest, ServiceSpecificTypeAndEscaping) {
  const Response res = StatusResponse(core::InvalidArgumentError("bad \"name\"\n\t<x>\\")
                                          .WithAwsType("InvalidParameterValueException"),
                                      "r");
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(res["x-amzn-ErrorType"], "InvalidParameterValueException");
  const auto body = Body(res).as_object();  // parses: quotes and control characters are escaped
  EXPECT_EQ(body.at("message").as_string(), "bad \"name\"\n\t<x>\\");
  EXPECT_EQ(body.at("__type").as_string(), "InvalidParameterValueException");
}

TEST(StatusResponseTest, OkStatusIsAnsweredAsInternalError) {
  const Response res = StatusResponse(core::Status::Ok(), "r");
  EXPECT_EQ(res.result_int(), 500u);
  EXPECT_EQ(res["x-amzn-ErrorType"], "InternalFailure");
}

TEST(StatusResponseTest, MethodNotAllowedCarriesAllow) {
  const Response res = MethodNotAllowedResponse("GET, HEAD", "r");
  EXPECT_EQ(res.result_int(), 405u);
  EXPECT_EQ(res[Field::allow], "GET, HEAD");
}

TEST(StatusResponseTest, SuccessHelpers) {
  boost::json::object doc;
  doc["ok"] = true;
  Response json = JsonResponse(HttpStatus::ok, boost::json::value(doc));
  EXPECT_EQ(json.body(), R"({"ok":true})");
  EXPECT_EQ(json[Field::content_type], "application/json");
  EXPECT_EQ(json[Field::content_length], "11");

  Response text = TextResponse(HttpStatus::created, "hi");
  EXPECT_EQ(text[Field::content_type], "text/plain; charset=utf-8");
  EXPECT_EQ(text.result_int(), 201u);

  Response empty = TextResponse(HttpStatus::no_content, "dropped");  // 204 cannot have a body
  EXPECT_TRUE(empty.body().empty());
}

}  // namespace
}  // namespace moatless::http
