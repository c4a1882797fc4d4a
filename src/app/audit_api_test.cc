#include "app/audit_api.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>

#include "core/clock.h"
#include "core/secret_bytes.h"
#include "observe/audit_log.h"

namespace moatless::app {
namespace {

namespace json = boost::json;

class AuditApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/app_audit_api_XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    auto log = observe::AuditLog::Open(dir_ + "/audit.log", key_.Copy(), clock_);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
    for (int i = 1; i <= 12; ++i) {
      clock_.Advance(std::chrono::minutes(1));
      observe::AuditRecord r;
      r.actor = i % 2 == 0 ? "arn:aws:iam::000000000000:user/bob" : "anonymous";
      r.action = i % 2 == 0 ? "iam:CreateUser" : "sts:GetCallerIdentity";
      r.resource = "arn:aws:iam::000000000000:user/u" + std::to_string(i);
      r.outcome = i % 3 == 0 ? observe::AuditOutcome::kDenied : observe::AuditOutcome::kAllowed;
      r.request_id = "req-" + std::to_string(i);
      ASSERT_TRUE(log_->Append(r).ok());
    }
    api_ = std::make_unique<AuditApi>(AuditApi::Deps{
        .audit = *log_, .clock = clock_, .region = "local", .account_id = "000000000000"});
  }
  void TearDown() override {
    api_.reset();
    log_.reset();
    const std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  http::Response Call(http::Verb verb, const std::string& target, std::string body = "") {
    http::Request request(verb, target, 11);
    request.body() = std::move(body);
    request.prepare_payload();
    auto decoded = api_->Decode(request);
    EXPECT_TRUE(decoded.ok()) << decoded.status();
    http::RequestContext context;
    context.request_id = "rid";
    return api_->Run(request, context, *decoded, "arn:aws:iam::000000000000:root");
  }
  std::vector<std::string> StoredLines() {
    std::ifstream in(dir_ + "/audit.log");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  core::FakeClock clock_;
  core::SecretBytes key_{std::string(32, 'k')};
  std::string dir_;
  std::unique_ptr<observe::AuditLog> log_;
  std::unique_ptr<AuditApi> api_;
};

TEST_F(AuditApiTest, HandlesItsPathsAndAuthorisesOnTheAuditArn) {
  auto request = [](http::Verb verb, const char* target) {
    return http::Request(verb, target, 11);
  };
  EXPECT_TRUE(api_->Handles(request(http::Verb::get, "/moatless/v1/audit/records?limit=1")));
  EXPECT_TRUE(api_->Handles(request(http::Verb::post, "/moatless/v1/audit/hash")));
  EXPECT_FALSE(api_->Handles(request(http::Verb::get, "/moatless/v1/apps")));
  EXPECT_FALSE(api_->Handles(request(http::Verb::get, "/moatless/v1/auditx")));
  auto query = api_->Decode(request(http::Verb::get, "/moatless/v1/audit/records"));
  ASSERT_TRUE(query.ok());
  EXPECT_EQ(query->action, "moatless:QueryAuditLog");
  EXPECT_EQ(query->resource, "arn:aws:moatless:local:000000000000:audit");
  auto hash = api_->Decode(request(http::Verb::post, "/moatless/v1/audit/hash"));
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(hash->action, "moatless:HashAuditValue");
  EXPECT_EQ(hash->resource, query->resource);
  EXPECT_EQ(
      api_->Decode(request(http::Verb::delete_, "/moatless/v1/audit/records")).status().code(),
      core::StatusCode::kNotFound);
}

TEST_F(AuditApiTest, RecordsComeBackAsStoredPageByPage) {
  std::vector<std::string> got;
  std::string after;
  int pages = 0;
  for (;;) {
    const http::Response response =
        Call(http::Verb::get,
             "/moatless/v1/audit/records?limit=5" + (after.empty() ? "" : "&after=" + after));
    ASSERT_EQ(response.result_int(), 200) << response.body();
    const json::object body = json::parse(response.body()).as_object();
    for (const json::value& r : body.at("Records").as_array()) got.push_back(json::serialize(r));
    ++pages;
    if (!body.contains("NextToken")) break;
    after = std::string(body.at("NextToken").as_string());
  }
  EXPECT_EQ(got, StoredLines());
  EXPECT_EQ(pages, 3);
}

TEST_F(AuditApiTest, FiltersAndTheirErrors) {
  http::Response response =
      Call(http::Verb::get,
           "/moatless/v1/audit/records?decision=deny&principal=arn%3Aaws%3Aiam%3A%3A000000000000"
           "%3Auser%2F*&action=iam:*&since=2026-01-01T00:05:00Z&until=10m");
  ASSERT_EQ(response.result_int(), 200) << response.body();
  std::vector<std::int64_t> seqs;
  const json::value first = json::parse(response.body());
  for (const json::value& r : first.at("Records").as_array()) {
    seqs.push_back(r.at("seq").to_number<std::int64_t>());
  }
  // Record i was written at 00:0i; now is 00:12, so "until 10m" (ago) is 00:02, before since.
  EXPECT_TRUE(seqs.empty());
  response = Call(http::Verb::get,
                  "/moatless/v1/audit/records?decision=denied&principal=*bob&action=IAM:*&since="
                  "2026-01-01T00:05:00Z");
  seqs.clear();
  const json::value second = json::parse(response.body());
  for (const json::value& r : second.at("Records").as_array()) {
    seqs.push_back(r.at("seq").to_number<std::int64_t>());
  }
  EXPECT_EQ(seqs, (std::vector<std::int64_t>{6, 12}));

  for (const char* bad : {"decision=maybe", "limit=0", "limit=1001", "after=x", "since=yesterday",
                          "field=novalue", "colour=red"}) {
    response = Call(http::Verb::get, std::string("/moatless/v1/audit/records?") + bad);
    EXPECT_EQ(response.result_int(), 400) << bad << ": " << response.body();
    EXPECT_EQ(response["x-amzn-ErrorType"], "ValidationException") << bad;
  }
}

TEST_F(AuditApiTest, HashGivesTheStoredFormAndNeverEchoesTheValue) {
  const std::string value = "AKIAEXAMPLEKEY";
  http::Response response = Call(http::Verb::post, "/moatless/v1/audit/hash",
                                 json::serialize(json::object{{"Value", value}}));
  ASSERT_EQ(response.result_int(), 200) << response.body();
  EXPECT_EQ(json::parse(response.body()).at("Hmac").as_string(),
            observe::AuditHmac(key_, core::SecretBytes(value)));
  EXPECT_EQ(response.body().find(value), std::string::npos);
  response = Call(http::Verb::post, "/moatless/v1/audit/hash", "{\"Valu\":\"s3cret-value\"}");
  EXPECT_EQ(response.result_int(), 400);
  EXPECT_EQ(response.body().find("s3cret-value"), std::string::npos);
}

}  // namespace
}  // namespace moatless::app
