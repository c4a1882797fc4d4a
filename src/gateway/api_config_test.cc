#include "gateway/api_config.h"

#include <gtest/gtest.h>

namespace moatless::gateway {
namespace {

TEST(ApiConfigTest, RoundTripsThroughJsonAndRefusesWhatTheGatewayCannotServe) {
  ApiConfig api{.app = "shop", .stage = "dev", .version = 2};
  api.routes.push_back(RouteConfig{.method = "GET",
                                   .path = "/a/{id}",
                                   .function = "shop_dev_a",
                                   .function_version = 1,
                                   .auth = AuthKind::kApiKey,
                                   .usage_plan = "basic"});
  api.usage_plans.emplace("basic", UsagePlanConfig{.name = "basic",
                                                   .rate = 5,
                                                   .burst = 10,
                                                   .quota_limit = 100,
                                                   .quota_period = "week",
                                                   .quota_offset = 3});
  auto back = ApiConfigFromJson(ToJson(api));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, api);

  ApiConfig missing_plan = api;
  missing_plan.routes[0].usage_plan = "gold";
  EXPECT_FALSE(ValidateApiConfig(missing_plan).ok());
  ApiConfig duplicate = api;
  duplicate.routes.push_back(duplicate.routes[0]);
  duplicate.routes.back().path = "/a/{other}";
  EXPECT_FALSE(ValidateApiConfig(duplicate).ok());
  ApiConfig jwt_without_authorizer = api;
  jwt_without_authorizer.routes[0].auth = AuthKind::kJwt;
  jwt_without_authorizer.routes[0].authorizer = "users";
  EXPECT_FALSE(ValidateApiConfig(jwt_without_authorizer).ok());
  ApiConfig star_with_credentials = api;
  star_with_credentials.cors = CorsConfig{.allow_origins = {"*"}, .allow_credentials = true};
  EXPECT_FALSE(ValidateApiConfig(star_with_credentials).ok());
  EXPECT_FALSE(ApiConfigFromJson(R"({"app":"shop","stage":"dev","routes":[{"method":"GET",
      "path":"/x","function":"f","function_version":1,"auth":"trust-me"}]})")
                   .ok());
  EXPECT_FALSE(ParseIdentitySource("$request.body.token").ok());
  EXPECT_FALSE(ParseIdentitySource("$context.authorizer").ok());
  EXPECT_EQ(ParseIdentitySource("$request.header.X-Token")->name, "x-token");
}

}  // namespace
}  // namespace moatless::gateway
