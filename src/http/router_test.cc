#include "http/router.h"

#include <gtest/gtest.h>

#include "http/status_response.h"
#include "http/test_support.h"

namespace moatless::http {
namespace {

using testing::RunSync;

// A handler that answers with its own name, so tests can see which route ran.
Handler Named(std::string name) {
  return [name](Request&, RequestContext&) -> asio::awaitable<Response> {
    co_return TextResponse(HttpStatus::ok, name);
  };
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(router_.Add("GET", "/", Named("root")).ok());
    ASSERT_TRUE(router_.Add("GET", "/functions/{name}", Named("get-fn")).ok());
    ASSERT_TRUE(router_.Add("DELETE", "/functions/{name}", Named("delete-fn")).ok());
    ASSERT_TRUE(router_.Add("POST", "/functions/{name}/invocations", Named("invoke")).ok());
    ASSERT_TRUE(router_.Add("GET", "/functions/latest", Named("latest")).ok());
    ASSERT_TRUE(router_.Add("GET", "/static/{path+}", Named("static")).ok());
    ASSERT_TRUE(router_.Add("GET", "/static/index.html", Named("index")).ok());
    ASSERT_TRUE(router_.Add("ANY", "/proxy/{rest+}", Named("proxy")).ok());
    ASSERT_TRUE(router_.Add("PUT", "/a/{x}/b", Named("a-x-b")).ok());
    ASSERT_TRUE(router_.Add("GET", "/a/c/{y}", Named("a-c-y")).ok());
  }

  std::string Route(std::string_view method, std::string_view target) {
    Router::Match m = router_.Find(method, target);
    return m.handler == nullptr ? "" : std::string(m.pattern);
  }

  Router router_;
};

TEST_F(RouterTest, MatchesLiteralsAndParams) {
  auto m = router_.Find("GET", "/functions/my-fn");
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(m.pattern, "/functions/{name}");
  EXPECT_EQ(m.params.at("name"), "my-fn");

  m = router_.Find("POST", "/functions/arn%3Aaws%3Alambda%3Ax/invocations?Qualifier=1");
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(m.params.at("name"), "arn:aws:lambda:x");
  EXPECT_EQ(Route("GET", "/"), "/");
}

TEST_F(RouterTest, MostSpecificRouteWins) {
  EXPECT_EQ(Route("GET", "/functions/latest"), "/functions/latest");
  EXPECT_EQ(Route("GET", "/static/index.html"), "/static/index.html");
  EXPECT_EQ(Route("GET", "/static/css/site.css"), "/static/{path+}");
  // A literal that lacks the method does not hide a parameter route that has it.
  EXPECT_EQ(Route("DELETE", "/functions/latest"), "/functions/{name}");
  EXPECT_EQ(Route("PUT", "/a/c/b"), "/a/{x}/b");
  EXPECT_EQ(Route("GET", "/a/c/b"), "/a/c/{y}");
}

TEST_F(RouterTest, GreedyParameterTakesTheRest) {
  auto m = router_.Find("GET", "/static/css/deep/site%20x.css");
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(m.params.at("path"), "css/deep/site x.css");
  // Greedy needs at least one non-empty segment.
  EXPECT_EQ(Route("GET", "/static/"), "");
  EXPECT_EQ(Route("GET", "/static"), "");
  EXPECT_EQ(Route("PATCH", "/proxy/x/y"), "/proxy/{rest+}");
}

TEST_F(RouterTest, ParamsNeedANonEmptySegment) {
  EXPECT_EQ(Route("GET", "/functions/"), "");
  EXPECT_EQ(Route("GET", "/functions"), "");
  EXPECT_EQ(Route("GET", "/functions/x/extra"), "");
}

TEST_F(RouterTest, NotFoundAndMethodNotAllowed) {
  auto m = router_.Find("GET", "/nothing/here");
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_FALSE(m.method_not_allowed);
  EXPECT_EQ(m.error.code(), core::StatusCode::kNotFound);

  m = router_.Find("PUT", "/functions/my-fn");
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_TRUE(m.method_not_allowed);
  EXPECT_EQ(m.allow, "DELETE, GET, HEAD");

  m = router_.Find("GET", "/functions/my-fn/invocations");
  EXPECT_TRUE(m.method_not_allowed);
  EXPECT_EQ(m.allow, "POST");
}

TEST_F(RouterTest, HeadFallsBackToGet) {
  EXPECT_EQ(Route("HEAD", "/functions/x"), "/functions/{name}");
  EXPECT_EQ(Route("HEAD", "/functions/x/invocations"), "");
}

TEST_F(RouterTest, RejectsUnsafePathsWith400) {
  for (const char* target : {"/static/../etc/passwd", "/static/%2e%2e/x", "/functions/a%00b",
                             "/functions/%zz", "/static/a%2F..%2Fb", "/functions/.."}) {
    auto m = router_.Find("GET", target);
    EXPECT_EQ(m.handler, nullptr) << target;
    EXPECT_EQ(m.error.code(), core::StatusCode::kInvalidArgument) << target;
  }
}

TEST_F(RouterTest, DispatchRunsHandlerOrAnswersErrors) {
  RequestContext ctx{.request_id = "rid-1"};
  Request req(Verb::get, "/functions/fn-1", 11);
  std::string route;
  Response res = RunSync(router_.Dispatch(req, ctx, &route));
  EXPECT_EQ(res.result(), HttpStatus::ok);
  EXPECT_EQ(res.body(), "get-fn");
  EXPECT_EQ(ctx.path_params.at("name"), "fn-1");
  EXPECT_EQ(route, "/functions/{name}");  // the pattern, not the path: a bounded metric label

  Request missing(Verb::get, "/missing", 11);
  res = RunSync(router_.Dispatch(missing, ctx, &route));
  EXPECT_EQ(res.result(), HttpStatus::not_found);
  EXPECT_EQ(route, "unmatched");
  EXPECT_EQ(res[kRequestIdHeader], "rid-1");

  Request wrong(Verb::post, "/functions/fn-1", 11);
  res = RunSync(router_.Dispatch(wrong, ctx));
  EXPECT_EQ(res.result(), HttpStatus::method_not_allowed);
  EXPECT_EQ(res[Field::allow], "DELETE, GET, HEAD");

  Request traversal(Verb::get, "/static/../x", 11);
  res = RunSync(router_.Dispatch(traversal, ctx));
  EXPECT_EQ(res.result(), HttpStatus::bad_request);

  Request custom(Verb::unknown, "/functions/fn-1", 11);
  custom.method_string("BREW");
  res = RunSync(router_.Dispatch(custom, ctx));
  EXPECT_EQ(res.result(), HttpStatus::method_not_allowed);
}

TEST(RouterAddTest, RejectsBadPatternsAndDuplicates) {
  Router router;
  const Handler h = Named("x");
  EXPECT_EQ(router.Add("GET", "no-slash", h).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(router.Add("GET", "/a/{unterminated", h).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(router.Add("GET", "/a/{}", h).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(router.Add("GET", "/a/pre{x}", h).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(router.Add("GET", "/a/{x+}/b", h).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(router.Add("GET", "/a/{x}/{x}", h).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(router.Add("GET", "/a/../b", h).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(router.Add("G T", "/a", h).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(router.Add("GET", "/a", Handler()).code(), core::StatusCode::kInvalidArgument);
  ASSERT_TRUE(router.Add("GET", "/a/{x}", h).ok());
  EXPECT_EQ(router.Add("GET", "/a/{x}", h).code(), core::StatusCode::kAlreadyExists);
  EXPECT_EQ(router.Add("POST", "/a/{y}", h).code(), core::StatusCode::kInvalidArgument);
  EXPECT_TRUE(router.Add("POST", "/a/{x}", h).ok());
}

}  // namespace
}  // namespace moatless::http
