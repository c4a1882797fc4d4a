#include "services/aws_endpoint.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <list>

#include "core/base64.h"
#include "services/test_fixture.h"

namespace moatless::services {
namespace {

using std::chrono::seconds;

constexpr char kAllowAssume[] = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::000000000000:role/deployer"}]})";
constexpr char kTrustAccount[] = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Principal":{"AWS":"000000000000"},"Action":"sts:AssumeRole"}]})";

// The text between <tag> and </tag>, or "".
std::string Element(const std::string& xml, const std::string& tag) {
  const std::size_t start = xml.find("<" + tag + ">");
  if (start == std::string::npos) return "";
  const std::size_t from = start + tag.size() + 2;
  return xml.substr(from, xml.find("</" + tag + ">", from) - from);
}

class AwsEndpointTest : public AwsEndpointStoreTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(AwsEndpointStoreTest::SetUp());
    ASSERT_TRUE(directory_->CreateUser("alice").ok());
    ASSERT_TRUE(
        directory_->PutPolicy(identity::PrincipalType::kUser, "alice", "assume", kAllowAssume)
            .ok());
    ASSERT_TRUE(directory_->CreateUser("bob").ok());
    ASSERT_TRUE(directory_->CreateRole("deployer", kTrustAccount).ok());
    auto alice = directory_->CreateAccessKey("alice");
    auto bob = directory_->CreateAccessKey("bob");
    ASSERT_TRUE(alice.ok() && bob.ok());
    alice_ = {alice->info.id, std::move(alice->secret), ""};
    bob_ = {bob->info.id, std::move(bob->secret), ""};
    ASSERT_TRUE(directory_->EnsureRoot().ok());
    auto root = directory_->CreateRootAccessKey();
    ASSERT_TRUE(root.ok());
    root_ = {root->info.id, std::move(root->secret), ""};
  }

  struct Credentials {
    std::string id;
    core::SecretBytes secret;
    std::string token;
  };

  // Signs `req` (complete, payload prepared) with `creds` for `service`.
  void Sign(http::Request& req, const Credentials& creds, std::string_view service) {
    identity::HttpRequestView view{
        .method = req.method_string(), .target = req.target(), .body = req.body()};
    for (const auto& f : req) view.headers.emplace_back(f.name_string(), f.value());
    auto headers = identity::SignRequest(
        view,
        {.access_key_id = creds.id,
         .region = "local",
         .service = service,
         .time = clock_->Now(),
         .security_token =
             creds.token.empty() ? std::nullopt : std::optional<std::string_view>(creds.token)},
        creds.secret);
    EXPECT_TRUE(headers.ok()) << headers.status();
    for (const auto& [k, v] : *headers) req.set(k, v);
  }

  http::Request Signed(const std::string& form, const Credentials* creds,
                       std::string_view service = "sts") {
    http::Request req(http::Verb::post, "/", 11);
    req.set(http::Field::host, "127.0.0.1:9000");
    req.set(http::Field::content_type, "application/x-www-form-urlencoded; charset=utf-8");
    req.body() = form;
    req.prepare_payload();
    if (creds != nullptr) Sign(req, *creds, service);
    return req;
  }
  http::RequestContext NextContext() {
    return http::RequestContext{.request_id = "req-" + std::to_string(++calls_),
                                .remote = "203.0.113.7:51234"};
  }
  http::Response Call(const std::string& form, const Credentials* creds,
                      std::string_view service = "sts") {
    const http::Request req = Signed(form, creds, service);
    return endpoint_->Handle(req, NextContext());
  }

  std::string AuditText() {
    std::ifstream in(AuditPath());
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  Credentials alice_, bob_, root_;
  int calls_ = 0;
};

TEST_F(AwsEndpointTest, GetCallerIdentityAnswersInStsXmlAndIsAudited) {
  http::Response r = Call("Action=GetCallerIdentity&Version=2011-06-15", &alice_);
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(r[http::Field::content_type], "text/xml");
  EXPECT_EQ(Element(r.body(), "Arn"), "arn:aws:iam::000000000000:user/alice");
  EXPECT_EQ(Element(r.body(), "Account"), "000000000000");
  EXPECT_EQ(Element(r.body(), "RequestId"), "req-1");
  const std::string audit = AuditText();
  EXPECT_NE(audit.find("sts:GetCallerIdentity"), std::string::npos);
  EXPECT_NE(audit.find("\"allowed\""), std::string::npos);
  EXPECT_NE(audit.find("203.0.113.7"), std::string::npos);
}

TEST_F(AwsEndpointTest, ServeReleasesEachResponseOnlyOnceItsRecordIsDurable) {
  boost::asio::io_context io;
  boost::asio::thread_pool work(2);
  constexpr int kRequests = 40;
  std::list<std::pair<http::Request, http::RequestContext>> exchanges;
  int answered = 0;
  for (int i = 0; i < kRequests; ++i) {
    auto& [req, ctx] = exchanges.emplace_back(
        Signed("Action=GetCallerIdentity&Version=2011-06-15", &alice_), NextContext());
    const std::uint64_t before = audit_->Head().seq;
    http::asio::co_spawn(io, endpoint_->Serve(req, ctx, &work),
                         [&, before](std::exception_ptr e, http::Response r) {
                           ASSERT_FALSE(e);
                           EXPECT_EQ(r.result_int(), 200) << r.body();
                           // This request's record, at least, is on disk.
                           EXPECT_GT(audit_->Head().seq, before);
                           ++answered;
                         });
  }
  io.run();
  work.join();
  EXPECT_EQ(answered, kRequests);
  auto report = observe::VerifyAuditLog(AuditPath());
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->ToString();
  EXPECT_EQ(report->records, audit_->Head().seq);
  EXPECT_GE(report->records, static_cast<std::uint64_t>(kRequests));
}

TEST_F(AwsEndpointTest, ARequestThatCannotBeRecordedIsRefusedWithoutItsAnswer) {
  struct stat st {};
  ASSERT_EQ(::stat((AuditPath()).c_str(), &st), 0);
  struct rlimit old_limit {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limit = old_limit;
  limit.rlim_cur = static_cast<rlim_t>(st.st_size);  // the next write fails (EFBIG)
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  boost::asio::io_context io;
  http::Request req = Signed(
      "Action=AssumeRole&RoleArn=arn:aws:iam::000000000000:role/deployer"
      "&RoleSessionName=s1&Version=2011-06-15",
      &alice_);
  http::RequestContext ctx = NextContext();
  http::Response refused;
  http::asio::co_spawn(io, endpoint_->Serve(req, ctx, nullptr),
                       [&](std::exception_ptr, http::Response r) { refused = std::move(r); });
  io.run();
  http::Response later = Call("Action=GetCallerIdentity&Version=2011-06-15", &alice_);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_EQ(refused.result_int(), 503) << refused.body();
  EXPECT_EQ(Element(refused.body(), "Code"), "ServiceUnavailable");
  // The credentials were never released, and the log's path is not disclosed.
  EXPECT_EQ(refused.body().find("SessionToken"), std::string::npos);
  EXPECT_EQ(refused.body().find(dir_), std::string::npos);
  EXPECT_EQ(later.result_int(), 503);
  EXPECT_EQ(Element(later.body(), "Arn"), "");
}

TEST_F(AwsEndpointTest, UnsignedForgedAndMisdirectedRequestsGetAwsErrors) {
  http::Response unsigned_r = Call("Action=GetCallerIdentity&Version=2011-06-15", nullptr);
  EXPECT_EQ(unsigned_r.result_int(), 403);
  EXPECT_EQ(Element(unsigned_r.body(), "Code"), "MissingAuthenticationToken");
  Credentials forged{alice_.id, core::SecretBytes(std::string(40, 'x')), ""};
  http::Response forged_r = Call("Action=GetCallerIdentity&Version=2011-06-15", &forged);
  EXPECT_EQ(forged_r.result_int(), 403);
  EXPECT_EQ(Element(forged_r.body(), "Code"), "SignatureDoesNotMatch");
  // The secret never appears in an answer.
  EXPECT_EQ(forged_r.body().find(alice_.secret.Reveal()), std::string::npos);
  http::Response other = Call("Action=GetCallerIdentity&Version=2011-06-15", &alice_, "sqs");
  EXPECT_EQ(Element(other.body(), "Code"), "InvalidAction");
  http::Response unknown = Call("Action=DecodeAuthorizationMessage&Version=2011-06-15", &alice_);
  EXPECT_EQ(unknown.result_int(), 400);
  EXPECT_EQ(Element(unknown.body(), "Code"), "InvalidAction");
  http::Response malformed = Call("Action=GetCallerIdentity&x=%zz", &alice_);
  EXPECT_EQ(Element(malformed.body(), "Code"), "MalformedQueryString");
  const std::string audit = AuditText();
  EXPECT_NE(audit.find("\"anonymous\""), std::string::npos);
  EXPECT_NE(audit.find("access-key:" + alice_.id), std::string::npos);
  EXPECT_EQ(audit.find(alice_.secret.Reveal()), std::string::npos);
}

TEST_F(AwsEndpointTest, AssumeRoleIsAuthorisedAuditedAndItsCredentialsWork) {
  const std::string form =
      "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A000000000000%3Arole%2F"
      "deployer&RoleSessionName=ci-7&DurationSeconds=900&Tags.member.1.Key=run"
      "&Tags.member.1.Value=7";
  http::Response denied = Call(form, &bob_);
  EXPECT_EQ(denied.result_int(), 403);
  EXPECT_EQ(Element(denied.body(), "Code"), "AccessDenied");
  EXPECT_NE(Element(denied.body(), "Message")
                .find("user/bob is not authorized to perform: "
                      "sts:AssumeRole"),
            std::string::npos);
  std::string audit = AuditText();
  EXPECT_NE(audit.find("arn:aws:iam::000000000000:user/bob"), std::string::npos);
  EXPECT_NE(audit.find("\"denied\""), std::string::npos);

  http::Response assumed = Call(form, &alice_);
  ASSERT_EQ(assumed.result_int(), 200) << assumed.body();
  EXPECT_EQ(Element(assumed.body(), "Arn"), "arn:aws:sts::000000000000:assumed-role/deployer/ci-7");
  Credentials session{Element(assumed.body(), "AccessKeyId"),
                      core::SecretBytes(Element(assumed.body(), "SecretAccessKey")),
                      Element(assumed.body(), "SessionToken")};
  EXPECT_TRUE(session.id.starts_with("ASIA"));
  EXPECT_FALSE(Element(assumed.body(), "Expiration").empty());
  audit = AuditText();
  EXPECT_EQ(audit.find(session.secret.Reveal()), std::string::npos);
  EXPECT_EQ(audit.find(session.token), std::string::npos);

  http::Response who = Call("Action=GetCallerIdentity&Version=2011-06-15", &session);
  ASSERT_EQ(who.result_int(), 200) << who.body();
  EXPECT_EQ(Element(who.body(), "Arn"), "arn:aws:sts::000000000000:assumed-role/deployer/ci-7");
  EXPECT_TRUE(Element(who.body(), "UserId").ends_with(":ci-7"));
  clock_->Advance(seconds(901));
  http::Response expired = Call("Action=GetCallerIdentity&Version=2011-06-15", &session);
  EXPECT_EQ(expired.result_int(), 403);
  EXPECT_EQ(Element(expired.body(), "Code"), "ExpiredToken");
}

TEST_F(AwsEndpointTest, GetSessionTokenAndParameterErrors) {
  http::Response creds =
      Call("Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900", &alice_);
  ASSERT_EQ(creds.result_int(), 200) << creds.body();
  EXPECT_TRUE(Element(creds.body(), "AccessKeyId").starts_with("ASIA"));
  EXPECT_EQ(Element(Call("Action=AssumeRole&Version=2011-06-15", &alice_).body(), "Code"),
            "MissingParameter");
  EXPECT_EQ(Element(Call("Action=GetSessionToken&DurationSeconds=ten", &alice_).body(), "Code"),
            "ValidationError");
}

// Percent-encodes a form value.
std::string Form(std::string_view text) {
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

TEST_F(AwsEndpointTest, IamAdministrationIsAuthorisedByThePolicyEngineAndAudited) {
  const std::string deployer_policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":["iam:GetUser","iam:ListAccessKeys","iam:CreateAccessKey"],
     "Resource":"arn:aws:iam::000000000000:user/${aws:username}"}]})";
  // The root creates a user, gives it a policy, and a key.
  http::Response created = Call(
      "Action=CreateUser&Version=2010-05-08&UserName=deployer"
      "&Tags.member.1.Key=team&Tags.member.1.Value=platform",
      &root_, "iam");
  ASSERT_EQ(created.result_int(), 200) << created.body();
  EXPECT_EQ(Element(created.body(), "Arn"), "arn:aws:iam::000000000000:user/deployer");
  http::Response put = Call(
      "Action=PutUserPolicy&Version=2010-05-08&UserName=deployer"
      "&PolicyName=self&PolicyDocument=" +
          Form(deployer_policy),
      &root_, "iam");
  ASSERT_EQ(put.result_int(), 200) << put.body();
  http::Response key = Call("Action=CreateAccessKey&UserName=deployer", &root_, "iam");
  ASSERT_EQ(key.result_int(), 200) << key.body();
  Credentials deployer{Element(key.body(), "AccessKeyId"),
                       core::SecretBytes(Element(key.body(), "SecretAccessKey")), ""};
  EXPECT_EQ(AuditText().find(deployer.secret.Reveal()), std::string::npos);

  // The deployer may act on itself only; ${aws:username} resolves to its own name.
  http::Response own = Call("Action=ListAccessKeys", &deployer, "iam");
  ASSERT_EQ(own.result_int(), 200) << own.body();
  EXPECT_EQ(Element(own.body(), "AccessKeyId"), deployer.id);
  http::Response other = Call("Action=ListAccessKeys&UserName=alice", &deployer, "iam");
  EXPECT_EQ(other.result_int(), 403);
  EXPECT_EQ(Element(other.body(), "Code"), "AccessDenied");
  EXPECT_NE(Element(other.body(), "Message")
                .find("user/deployer is not authorized to perform: iam:ListAccessKeys on "
                      "resource: arn:aws:iam::000000000000:user/alice"),
            std::string::npos);
  http::Response escalate = Call(
      "Action=PutUserPolicy&UserName=deployer&PolicyName=all"
      "&PolicyDocument=" +
          Form(R"({"Version":"2012-10-17","Statement":
                                   [{"Effect":"Allow","Action":"*","Resource":"*"}]})"),
      &deployer, "iam");
  EXPECT_EQ(escalate.result_int(), 403);
  const std::string audit = AuditText();
  EXPECT_NE(audit.find("\"iam:PutUserPolicy\""), std::string::npos);
  EXPECT_NE(audit.find("\"denied\""), std::string::npos);

  // IAM errors in IAM's shapes.
  EXPECT_EQ(Element(Call("Action=CreateUser&UserName=deployer", &root_, "iam").body(), "Code"),
            "EntityAlreadyExists");
  EXPECT_EQ(Element(Call("Action=GetUser&UserName=ghost", &root_, "iam").body(), "Code"),
            "NoSuchEntity");
  EXPECT_EQ(Element(Call("Action=PutUserPolicy&UserName=deployer&PolicyName=x&PolicyDocument=" +
                             Form(R"({"Statement":[{"Effect":"allow"}]})"),
                         &root_, "iam")
                        .body(),
                    "Code"),
            "MalformedPolicyDocument");
  EXPECT_EQ(Element(Call("Action=FlyToTheMoon", &root_, "iam").body(), "Code"), "InvalidAction");
  // Deactivating the key makes it useless at once.
  ASSERT_EQ(Call("Action=UpdateAccessKey&UserName=deployer&AccessKeyId=" + deployer.id +
                     "&Status=Inactive",
                 &root_, "iam")
                .result_int(),
            200);
  EXPECT_EQ(Element(Call("Action=GetUser", &deployer, "iam").body(), "Code"),
            "InvalidClientTokenId");
}

TEST_F(AwsEndpointTest, ABoundaryConditionKeepsADelegatedAdministratorFromEscalating) {
  const std::string boundary = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]})";
  http::Response created =
      Call("Action=CreatePolicy&PolicyName=app-boundary&PolicyDocument=" + Form(boundary) +
               "&Description=the+ceiling",
           &root_, "iam");
  ASSERT_EQ(created.result_int(), 200) << created.body();
  const std::string boundary_arn = Element(created.body(), "Arn");
  EXPECT_EQ(boundary_arn, "arn:aws:iam::000000000000:policy/app-boundary");
  // Alice may create users, but only under that boundary.
  const std::string delegate = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":["iam:CreateUser","iam:PutUserPermissionsBoundary"],
     "Resource":"*","Condition":{"StringEquals":{"iam:PermissionsBoundary":")" +
                               boundary_arn + R"("}}}]})";
  ASSERT_EQ(Call("Action=PutUserPolicy&UserName=alice&PolicyName=delegate&PolicyDocument=" +
                     Form(delegate),
                 &root_, "iam")
                .result_int(),
            200);
  http::Response unbounded = Call("Action=CreateUser&UserName=free", &alice_, "iam");
  EXPECT_EQ(unbounded.result_int(), 403);
  EXPECT_EQ(Element(unbounded.body(), "Code"), "AccessDenied");
  http::Response other = Call("Action=CreateUser&UserName=free&PermissionsBoundary=" +
                                  Form("arn:aws:iam::000000000000:policy/other"),
                              &alice_, "iam");
  EXPECT_EQ(other.result_int(), 403);
  http::Response bounded =
      Call("Action=CreateUser&UserName=bounded&PermissionsBoundary=" + Form(boundary_arn), &alice_,
           "iam");
  ASSERT_EQ(bounded.result_int(), 200) << bounded.body();
  EXPECT_EQ(Element(bounded.body(), "PermissionsBoundaryArn"), boundary_arn);
  auto user = directory_->Get(identity::PrincipalType::kUser, "bounded");
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->boundary_arn, boundary_arn);

  // Managed policies attach, list, and cannot be deleted while in use.
  ASSERT_EQ(
      Call("Action=AttachUserPolicy&UserName=bob&PolicyArn=" + Form(boundary_arn), &root_, "iam")
          .result_int(),
      200);
  http::Response attached = Call("Action=ListAttachedUserPolicies&UserName=bob", &root_, "iam");
  EXPECT_EQ(Element(attached.body(), "PolicyArn"), boundary_arn);
  EXPECT_EQ(
      Element(Call("Action=DeletePolicy&PolicyArn=" + Form(boundary_arn), &root_, "iam").body(),
              "Code"),
      "DeleteConflict");
  http::Response version =
      Call("Action=GetPolicyVersion&VersionId=v1&PolicyArn=" + Form(boundary_arn), &root_, "iam");
  EXPECT_EQ(Element(version.body(), "Document"), Form(boundary));
  // The attached policy is part of Bob's permissions now.
  http::Response who = Call("Action=GetCallerIdentity", &bob_);
  EXPECT_EQ(who.result_int(), 200);
}

TEST_F(AwsEndpointTest, RolesCanBeCreatedAndThenAssumed) {
  const std::string trust = R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"sts:AssumeRole"}]})";
  http::Response role = Call(
      "Action=CreateRole&RoleName=reader&MaxSessionDuration=7200"
      "&AssumeRolePolicyDocument=" +
          Form(trust),
      &root_, "iam");
  ASSERT_EQ(role.result_int(), 200) << role.body();
  EXPECT_EQ(Element(role.body(), "MaxSessionDuration"), "7200");
  EXPECT_EQ(Element(role.body(), "AssumeRolePolicyDocument"), Form(trust));
  EXPECT_EQ(
      Element(Call("Action=CreateRole&RoleName=bad&AssumeRolePolicyDocument=" +
                       Form(R"({"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]})"),
                   &root_, "iam")
                  .body(),
              "Code"),
      "MalformedPolicyDocument");
  http::Response assumed = Call(
      "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A000000000000%3A"
      "role%2Freader&RoleSessionName=bob-1",
      &bob_);
  EXPECT_EQ(assumed.result_int(), 200) << assumed.body();
  http::Response listed = Call("Action=ListRoles", &root_, "iam");
  EXPECT_NE(listed.body().find("<RoleName>reader</RoleName>"), std::string::npos);
}

// A backend with two functions, "orders" (versions 1 and 2) and "reports", that answers with what
// it was asked, and counts what ran.
class FakeFunctions final : public FunctionBackend {
 public:
  core::Result<runtime::FunctionConfig> Resolve(std::string_view name,
                                                std::string_view qualifier) override {
    const bool known = name == "orders" || name == "reports";
    const bool version_ok = qualifier.empty() || qualifier == "$LATEST" || qualifier == "1" ||
                            (qualifier == "2" && name == "orders");
    if (!known || !version_ok) {
      return core::NotFoundError("Function not found: " + std::string(name))
          .WithAwsType("ResourceNotFoundException");
    }
    runtime::FunctionConfig f;
    f.name = name;
    f.version = qualifier.empty() || qualifier == "$LATEST" ? (name == "orders" ? "2" : "1")
                                                            : std::string(qualifier);
    return f;
  }
  core::Result<runtime::InvokeResult> Invoke(const runtime::FunctionConfig& function,
                                             std::string payload, std::string request_id,
                                             std::string client_context) override {
    ++runs;
    last_client_context = std::move(client_context);
    if (function.name == "reports" && payload.find("busy") != std::string::npos) {
      return core::ResourceExhaustedError("Rate Exceeded").WithAwsType("TooManyRequestsException");
    }
    runtime::InvokeResult r;
    r.request_id = std::move(request_id);
    r.version = function.version;
    r.payload =
        R"({"ran":")" + function.name + ":" + function.version + R"(","event":)" + payload + "}";
    if (payload.find("fail") != std::string::npos) r.function_error = "Unhandled";
    r.log = "START RequestId: " + r.request_id + "\nhello\nEND RequestId: " + r.request_id + "\n";
    return r;
  }
  core::Status Enqueue(std::string_view name, std::string_view qualifier, std::string payload,
                       std::string request_id) override {
    ASSIGN_OR_RETURN(const runtime::FunctionConfig f, Resolve(name, qualifier));
    queued.push_back(f.name + ":" + payload + " as " + request_id);
    return core::Status::Ok();
  }
  int runs = 0;
  std::string last_client_context;
  std::vector<std::string> queued;
};

class LambdaEndpointTest : public AwsEndpointTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(AwsEndpointTest::SetUp());
    lambda_ = std::make_unique<LambdaApi>(
        LambdaApi::Deps{.functions = functions_, .region = "local", .account_id = "000000000000"});
    endpoint_->AttachLambda(lambda_.get(), nullptr);
    // bob may invoke orders (any version) and nothing else.
    ASSERT_TRUE(directory_
                    ->PutPolicy(identity::PrincipalType::kUser, "bob", "invoke-orders",
                                R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":"lambda:InvokeFunction",
        "Resource":"arn:aws:lambda:local:000000000000:function:orders*"}]})")
                    .ok());
  }
  void TearDown() override {
    if (endpoint_) endpoint_->DetachLambda();
    AwsEndpointTest::TearDown();
  }

  http::Response Invoke(const std::string& function, const std::string& payload,
                        const Credentials* creds, std::map<std::string, std::string> headers = {},
                        std::string_view service = "lambda") {
    http::Request req(http::Verb::post, "/2015-03-31/functions/" + function + "/invocations", 11);
    req.set(http::Field::host, "127.0.0.1:9000");
    req.set(http::Field::content_type, "application/json");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = payload;
    req.prepare_payload();
    if (creds != nullptr) Sign(req, *creds, service);
    return endpoint_->Handle(req, NextContext());
  }

  FakeFunctions functions_;
  std::unique_ptr<LambdaApi> lambda_;
};

TEST_F(LambdaEndpointTest, AnAllowedInvocationRunsAndAnswersInLambdaShape) {
  http::Response r = Invoke("orders", R"({"id":7})", &bob_, {{"X-Amz-Log-Type", "Tail"}});
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(r.body(), R"({"ran":"orders:2","event":{"id":7}})");
  EXPECT_EQ(r["X-Amz-Executed-Version"], "2");
  EXPECT_EQ(r["X-Amz-Function-Error"], "");
  const auto log = core::Base64Decode(r["X-Amz-Log-Result"]);
  ASSERT_TRUE(log.has_value());
  EXPECT_NE(log->find("START RequestId: " + std::string(r["x-amzn-RequestId"])), std::string::npos);
  const std::string audit = AuditText();
  EXPECT_NE(audit.find("lambda:InvokeFunction"), std::string::npos);
  EXPECT_NE(audit.find("arn:aws:lambda:local:000000000000:function:orders"), std::string::npos);

  // A qualifier in the name, in the query or as an ARN; the function error is passed on.
  r = Invoke("orders:1", R"({"fail":1})", &bob_);
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(r["X-Amz-Executed-Version"], "1");
  EXPECT_EQ(r["X-Amz-Function-Error"], "Unhandled");
  EXPECT_EQ(functions_.last_client_context, "");
  r = Invoke("arn%3Aaws%3Alambda%3Alocal%3A000000000000%3Afunction%3Aorders", "", &bob_,
             {{"X-Amz-Client-Context", core::Base64Encode(R"({"custom":{"app":"x"}})")}});
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(r.body(), R"({"ran":"orders:2","event":{}})");
  EXPECT_EQ(functions_.last_client_context, R"({"custom":{"app":"x"}})");
  EXPECT_EQ(functions_.runs, 3);
}

TEST_F(LambdaEndpointTest, EachFunctionIsAuthorisedOnItsOwnArnAndDenialsAreAudited) {
  http::Response r = Invoke("reports", "{}", &bob_);
  EXPECT_EQ(r.result_int(), 403) << r.body();
  EXPECT_EQ(r["x-amzn-ErrorType"], "AccessDeniedException");
  EXPECT_EQ(r[http::Field::content_type], "application/json");
  EXPECT_NE(r.body().find("lambda:InvokeFunction"), std::string::npos) << r.body();
  // alice has no lambda permission at all; a missing function is not revealed to her.
  r = Invoke("no-such-function", "{}", &alice_);
  EXPECT_EQ(r["x-amzn-ErrorType"], "AccessDeniedException");
  EXPECT_EQ(functions_.runs, 0);
  const std::string audit = AuditText();
  EXPECT_NE(audit.find("function:reports"), std::string::npos);
  EXPECT_NE(audit.find("\"denied\""), std::string::npos);
  // Unsigned, and signed for another service: refused before anything runs, in JSON.
  r = Invoke("orders", "{}", nullptr);
  EXPECT_EQ(r.result_int(), 403);
  EXPECT_FALSE(r["x-amzn-ErrorType"].empty());
  r = Invoke("orders", "{}", &bob_, {}, "sts");
  EXPECT_EQ(r.result_int(), 400) << r.body();
  EXPECT_EQ(functions_.runs, 0);
}

TEST_F(LambdaEndpointTest, InvocationTypesAndBadRequests) {
  http::Response r = Invoke("orders", R"({"e":1})", &bob_, {{"X-Amz-Invocation-Type", "Event"}});
  EXPECT_EQ(r.result_int(), 202) << r.body();
  ASSERT_EQ(functions_.queued.size(), 1u);
  // The event runs under the id the caller was given.
  EXPECT_EQ(functions_.queued[0], R"(orders:{"e":1} as )" + std::string(r["x-amzn-RequestId"]));
  r = Invoke("orders", "{}", &bob_, {{"X-Amz-Invocation-Type", "DryRun"}});
  EXPECT_EQ(r.result_int(), 204);
  EXPECT_EQ(functions_.runs, 0);

  struct Case {
    std::string function, payload;
    std::map<std::string, std::string> headers;
    int status;
    std::string type;
  };
  const std::vector<Case> cases = {
      {"orders", "{not json", {}, 400, "InvalidRequestContentException"},
      {"orders",
       "{}",
       {{"X-Amz-Invocation-Type", "Sometimes"}},
       400,
       "InvalidParameterValueException"},
      {"orders", "{}", {{"X-Amz-Log-Type", "Everything"}}, 400, "InvalidParameterValueException"},
      {"orders",
       "{}",
       {{"X-Amz-Client-Context", "bm90IGpzb24="}},
       400,
       "InvalidParameterValueException"},
      {"orders:3", "{}", {}, 404, "ResourceNotFoundException"},
      {"orders:1:2", "{}", {}, 400, "InvalidParameterValueException"},
      {"bad%20name", "{}", {}, 400, "InvalidParameterValueException"},
      {"orders",
       "\"" + std::string(7 * 1024 * 1024, 'x') + "\"",
       {},
       413,
       "RequestTooLargeException"},
      {"orders",
       "\"" + std::string(300 * 1024, 'x') + "\"",
       {{"X-Amz-Invocation-Type", "Event"}},
       413,
       "RequestTooLargeException"},
  };
  for (const Case& c : cases) {
    r = Invoke(c.function, c.payload, &bob_, c.headers);
    EXPECT_EQ(r.result_int(), c.status) << c.function << " " << r.body();
    EXPECT_EQ(r["x-amzn-ErrorType"], c.type) << c.function << " " << r.body();
  }
  EXPECT_EQ(functions_.runs, 0);
  EXPECT_EQ(functions_.queued.size(), 1u);
}

TEST_F(LambdaEndpointTest, AThrottleIsA429TheSdksRetry) {
  ASSERT_TRUE(directory_
                  ->PutPolicy(identity::PrincipalType::kUser, "bob", "invoke-reports",
                              R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":"lambda:InvokeFunction",
        "Resource":"arn:aws:lambda:local:000000000000:function:reports"}]})")
                  .ok());
  http::Response r = Invoke("reports", R"("busy")", &bob_);
  EXPECT_EQ(r.result_int(), 429) << r.body();
  EXPECT_EQ(r["x-amzn-ErrorType"], "TooManyRequestsException");
  EXPECT_EQ(r[http::Field::retry_after], "1");
}

TEST_F(LambdaEndpointTest, WithoutFunctionsTheApiAnswers503) {
  endpoint_->DetachLambda();
  http::Response r = Invoke("orders", "{}", &bob_);
  EXPECT_EQ(r.result_int(), 503) << r.body();
  EXPECT_EQ(r["x-amzn-ErrorType"], "ServiceException");
}

// An attached REST-JSON service: "widgets", actions widgets:Read on arn:…:widget/NAME.
class FakeWidgets : public RestJsonService {
 public:
  std::string_view signing_name() const override { return "widgets"; }
  bool Handles(const http::Request& request) const override {
    return request.target().starts_with("/widgets/");
  }
  core::Result<Target> Decode(const http::Request& request) const override {
    const std::string name(request.target().substr(9));
    if (name.empty()) return core::InvalidArgumentError("a widget name is required");
    return Target{"widgets:Read", "arn:aws:widgets:local:000000000000:widget/" + name};
  }
  http::Response Run(const http::Request& request, const http::RequestContext&,
                     const Target& target, const std::string& caller_arn) override {
    ++runs;
    http::Response response(http::HttpStatus::ok, request.version());
    response.body() = target.resource + " for " + caller_arn;
    response.prepare_payload();
    return response;
  }
  int runs = 0;
};

class AttachedServiceTest : public AwsEndpointTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(AwsEndpointTest::SetUp());
    endpoint_->AttachService(&widgets_);
    ASSERT_TRUE(directory_
                    ->PutPolicy(identity::PrincipalType::kUser, "bob", "widgets",
                                R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":"widgets:Read","Resource":"arn:aws:widgets:local:000000000000:widget/blue"}]})")
                    .ok());
  }
  void TearDown() override {
    if (endpoint_) endpoint_->DetachService(&widgets_);
    AwsEndpointTest::TearDown();
  }
  http::Response Get(const std::string& target, const Credentials* creds,
                     std::string_view service = "widgets") {
    http::Request req(http::Verb::get, target, 11);
    req.set(http::Field::host, "127.0.0.1:9000");
    req.prepare_payload();
    if (creds != nullptr) Sign(req, *creds, service);
    return endpoint_->Handle(req, NextContext());
  }
  FakeWidgets widgets_;
};

TEST_F(AwsEndpointTest, AGetWithoutParametersIsRefusedNotFatal) {
  // GET / with no query string: the view once reached Boost.URL as a C string (read past its end).
  for (const Credentials* creds : std::vector<const Credentials*>{nullptr, &bob_}) {
    http::Request req(http::Verb::get, "/", 11);
    req.set(http::Field::host, "127.0.0.1:9000");
    req.prepare_payload();
    if (creds != nullptr) Sign(req, *creds, "sts");
    const http::Response r = endpoint_->Handle(req, NextContext());
    EXPECT_GE(r.result_int(), 400);
    EXPECT_LT(r.result_int(), 500) << r.body();
  }
  EXPECT_EQ(ParseQueryRequest(std::string_view()).status().code(),
            core::StatusCode::kInvalidArgument);
}

TEST_F(AttachedServiceTest, RequestsAreAuthenticatedAuthorisedOnTheirResourceAndAudited) {
  http::Response r = Get("/widgets/blue", &bob_);
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(r.body(),
            "arn:aws:widgets:local:000000000000:widget/blue for "
            "arn:aws:iam::000000000000:user/bob");
  r = Get("/widgets/red", &bob_);
  EXPECT_EQ(r.result_int(), 403) << r.body();
  EXPECT_EQ(r["x-amzn-ErrorType"], "AccessDeniedException");
  EXPECT_EQ(r[http::Field::content_type], "application/json");
  // Unsigned, signed for another service, undecodable: refused before it runs.
  EXPECT_EQ(Get("/widgets/blue", nullptr).result_int(), 403);
  EXPECT_EQ(Get("/widgets/blue", &bob_, "sts").result_int(), 400);
  EXPECT_EQ(Get("/widgets/", &bob_).result_int(), 400);
  EXPECT_EQ(widgets_.runs, 1);
  const std::string audit = AuditText();
  EXPECT_NE(audit.find("widget/red"), std::string::npos);
  EXPECT_NE(audit.find("\"denied\""), std::string::npos);
  EXPECT_NE(audit.find("widget/blue"), std::string::npos);
  // Detached: its paths are no longer its own.
  endpoint_->DetachService(&widgets_);
  EXPECT_NE(Get("/widgets/blue", &bob_).result_int(), 200);
  EXPECT_EQ(widgets_.runs, 1);
}

}  // namespace
}  // namespace moatless::services
