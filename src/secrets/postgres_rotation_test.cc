#include "secrets/postgres_rotation.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <memory>
#include <optional>
#include <string>

#include "secrets/postgres_test_server.h"
#include "secrets/test_fixture.h"

namespace moatless::secrets {
namespace {

namespace json = boost::json;

constexpr std::string_view kSteps[] = {kCreateSecret, kSetSecret, kTestSecret, kFinishSecret};

// One PostgreSQL cluster for the suite (started by the first test, stopped after the last), with
// the role app_user (and its database app) and a role whose name needs quoting.
class PostgresRotationTest : public SecretStoreTest {
 protected:
  static void TearDownTestSuite() {
    server_.reset();
    start_error_.reset();
  }

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SecretStoreTest::SetUp());
    if (server_ == nullptr && !start_error_) {
      auto server = PostgresTestServer::Start();
      if (server.ok()) {
        server_ = std::move(*server);
        start_error_ = Prepare();
        if (!start_error_->ok()) server_.reset();
      } else {
        start_error_ = server.status();
      }
    }
    ASSERT_TRUE(start_error_->ok()) << "could not start PostgreSQL: " << *start_error_;
    // Every test starts from a password of its own.
    password_ = PostgresTestServer::RandomText(24);
    ASSERT_TRUE(server_->Query("ALTER ROLE app_user PASSWORD '" + password_ + "'").ok());
    rotation_ = std::make_unique<PostgresRotation>(*store_, env_->random());
  }

  static core::Status Prepare() {
    RETURN_IF_ERROR(server_->Query("CREATE ROLE app_user LOGIN PASSWORD 'unused'"));
    RETURN_IF_ERROR(server_->Query("CREATE DATABASE app OWNER app_user"));
    return server_->Query("CREATE ROLE " + std::string(kOddRoleSql) + " LOGIN PASSWORD 'unused'")
        .status();
  }

  // The RDS shape, for app_user on the test server unless told otherwise.
  json::object Value(std::string_view password) const {
    return json::object{{"engine", "postgres"},          {"host", server_->host()},
                        {"port", server_->port()},       {"username", "app_user"},
                        {"password", password},          {"dbname", "app"},
                        {"dbInstanceIdentifier", "db-1"}};
  }
  std::string CreateSecret(const json::object& value) {
    auto created =
        store_->Create({.name = "db/app", .value = Text(json::serialize(value)), .token = "v-old"});
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->arn : "";
  }
  // What the rotator does before the first step: a version without a value, labelled AWSPENDING.
  std::string BeginRotation(const std::string& arn) {
    const std::string token = "v-" + PostgresTestServer::RandomText(12);
    const core::Status begun = store_->BeginRotation(arn, token);
    EXPECT_TRUE(begun.ok()) << begun;
    return token;
  }
  core::Status Step(const std::string& arn, const std::string& token, std::string_view step) {
    return rotation_->RunStep({.secret_arn = arn, .token = token, .step = std::string(step)});
  }
  void RunAll(const std::string& arn, const std::string& token) {
    for (std::string_view step : kSteps) {
      const core::Status done = Step(arn, token, step);
      ASSERT_TRUE(done.ok()) << step << ": " << done;
    }
  }
  json::object ValueOf(const std::string& arn, std::string_view version_id = "",
                       std::string_view stage = "") {
    boost::system::error_code ec;
    json::value parsed = json::parse(Read(arn, version_id, stage), ec);
    return !ec && parsed.is_object() ? parsed.as_object() : json::object();
  }
  std::string PasswordOf(const std::string& arn, std::string_view version_id = "",
                         std::string_view stage = "") {
    const json::object value = ValueOf(arn, version_id, stage);
    const json::value* password = value.if_contains("password");
    return password != nullptr && password->is_string() ? std::string(password->as_string()) : "";
  }
  std::string Label(const std::string& arn, std::string_view label) {
    auto info = store_->Describe(arn);
    if (!info.ok()) return "<" + info.status().ToString() + ">";
    const std::string* version = info->VersionWith(label);
    return version != nullptr ? *version : "";
  }

  // CREATE ROLE's spelling of a role named  odd "role's .
  static constexpr std::string_view kOddRoleSql = R"("odd ""role's")";
  static constexpr std::string_view kOddRole = R"(odd "role's)";

  static inline std::unique_ptr<PostgresTestServer> server_;
  static inline std::optional<core::Status> start_error_;
  std::string password_;  // app_user's password when the test starts
  std::unique_ptr<PostgresRotation> rotation_;
};

TEST_F(PostgresRotationTest, RotatesThePasswordOfTheRole) {
  const std::string arn = CreateSecret(Value(password_));
  const std::string token = BeginRotation(arn);
  ASSERT_NO_FATAL_FAILURE(RunAll(arn, token));

  EXPECT_EQ(Label(arn, kCurrent), token);
  EXPECT_EQ(Label(arn, kPrevious), "v-old");
  EXPECT_EQ(Label(arn, kPending), "");
  // The same value with a new password (32 characters, none that breaks quoting).
  json::object rotated = ValueOf(arn);
  const std::string password = PasswordOf(arn);
  EXPECT_EQ(password.size(), 32u);
  EXPECT_EQ(password.find_first_of("/@\"'\\ "), std::string::npos) << "excluded characters";
  EXPECT_NE(password, password_);
  rotated["password"] = password_;
  EXPECT_EQ(rotated, Value(password_));

  EXPECT_TRUE(server_->LogIn("app_user", password, "app").ok());
  EXPECT_FALSE(server_->LogIn("app_user", password_, "app").ok());
  // The server got a SCRAM verifier: the new password is nowhere in its statement log.
  auto stored = server_->Query("SELECT rolpassword FROM pg_authid WHERE rolname = 'app_user'");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->rfind("SCRAM-SHA-256$", 0), 0u);
  const std::string log = server_->ServerLog();
  EXPECT_NE(log.find("ALTER ROLE \"app_user\" PASSWORD 'SCRAM-SHA-256$"), std::string::npos);
  EXPECT_EQ(log.find(password), std::string::npos);
}

TEST_F(PostgresRotationTest, EveryStepCanRunTwice) {
  const std::string arn = CreateSecret(Value(password_));
  const std::string token = BeginRotation(arn);
  std::string pending;
  for (std::string_view step : kSteps) {
    for (int run = 1; run <= 2; ++run) {
      const core::Status done = Step(arn, token, step);
      ASSERT_TRUE(done.ok()) << step << " run " << run << ": " << done;
      if (step == kCreateSecret) {
        // The second run keeps the password the first one made.
        if (run == 1) pending = PasswordOf(arn, token);
        EXPECT_EQ(PasswordOf(arn, token), pending);
      }
    }
  }
  EXPECT_EQ(Label(arn, kCurrent), token);
  EXPECT_EQ(Label(arn, kPrevious), "v-old");
  EXPECT_EQ(PasswordOf(arn), pending);
  EXPECT_TRUE(server_->LogIn("app_user", pending, "app").ok());
  EXPECT_FALSE(server_->LogIn("app_user", password_, "app").ok());
}

TEST_F(PostgresRotationTest, StartingOverAfterACrashFinishesTheRotation) {
  const std::string arn = CreateSecret(Value(password_));
  const std::string token = BeginRotation(arn);
  ASSERT_TRUE(Step(arn, token, kCreateSecret).ok());
  ASSERT_TRUE(Step(arn, token, kSetSecret).ok());
  const std::string pending = PasswordOf(arn, token);
  // The server has the new password, AWSCURRENT still the old one: the rotator restarts.
  ASSERT_TRUE(server_->LogIn("app_user", pending, "app").ok());
  EXPECT_EQ(Label(arn, kCurrent), "v-old");
  ASSERT_NO_FATAL_FAILURE(RunAll(arn, token));
  EXPECT_EQ(Label(arn, kCurrent), token);
  EXPECT_TRUE(server_->LogIn("app_user", PasswordOf(arn), "app").ok());
  EXPECT_EQ(PasswordOf(arn), pending);
}

TEST_F(PostgresRotationTest, FinishSecretCompletesAfterACrashBetweenItsLabelMoves) {
  const std::string arn = CreateSecret(Value(password_));
  const std::string token = BeginRotation(arn);
  for (std::string_view step : {kCreateSecret, kSetSecret, kTestSecret}) {
    ASSERT_TRUE(Step(arn, token, step).ok()) << step;
  }
  // finishSecret's first move happened, its second did not.
  ASSERT_TRUE(store_->MoveLabel(arn, "AWSCURRENT", "v-old", token).ok());
  ASSERT_EQ(Label(arn, kPending), token);
  ASSERT_TRUE(Step(arn, token, kFinishSecret).ok());
  EXPECT_EQ(Label(arn, kCurrent), token);
  EXPECT_EQ(Label(arn, kPrevious), "v-old");
  EXPECT_EQ(Label(arn, kPending), "");
}

TEST_F(PostgresRotationTest, AnUnreachableServerFailsSetSecretAndKeepsTheCurrentValue) {
  auto closed_port = PostgresTestServer::FreePort();
  ASSERT_TRUE(closed_port.ok());
  json::object value = Value(password_);
  value["port"] = *closed_port;
  const std::string arn = CreateSecret(value);
  const std::string before = Read(arn);
  const std::string token = BeginRotation(arn);
  ASSERT_TRUE(Step(arn, token, kCreateSecret).ok());
  const std::string pending = PasswordOf(arn, token);

  const core::Status set = Step(arn, token, kSetSecret);
  EXPECT_EQ(set.code(), core::StatusCode::kUnavailable) << set;
  EXPECT_NE(set.message().find("setSecret: could not log in to 127.0.0.1:" +
                               std::to_string(*closed_port) + " as app_user"),
            std::string::npos)
      << set;
  EXPECT_NE(set.message().find("Connection refused"), std::string::npos) << set;
  EXPECT_EQ(set.message().find(password_), std::string::npos);
  EXPECT_EQ(set.message().find(pending), std::string::npos);

  EXPECT_EQ(Label(arn, kCurrent), "v-old");
  EXPECT_EQ(Read(arn), before);
  EXPECT_TRUE(server_->LogIn("app_user", password_, "app").ok());
}

TEST_F(PostgresRotationTest, AValueWithoutUsernameFailsCreateSecret) {
  json::object value = Value(password_);
  value.erase("username");
  const std::string arn = CreateSecret(value);
  const std::string token = BeginRotation(arn);

  const core::Status created = Step(arn, token, kCreateSecret);
  EXPECT_EQ(created.code(), core::StatusCode::kInvalidArgument) << created;
  EXPECT_NE(created.message().find("\"username\""), std::string::npos) << created;
  EXPECT_NE(created.message().find("createSecret"), std::string::npos) << created;
  EXPECT_EQ(created.message().find(password_), std::string::npos);
  // No pending value was made.
  EXPECT_EQ(Read(arn, token, kPending), "<ResourceNotFoundException>");
}

TEST_F(PostgresRotationTest, MalformedValuesNameTheFieldNeverTheValue) {
  struct Case {
    std::string field;
    json::value bad;
  };
  for (const Case& c : {Case{"port", "54x2"}, Case{"port", 70000}, Case{"host", 5},
                        Case{"engine", "mysql"}, Case{"password", nullptr}}) {
    SCOPED_TRACE(c.field);
    json::object value = Value(password_);
    value[c.field] = c.bad;
    auto created = store_->Create({.name = "db/" + c.field + PostgresTestServer::RandomText(4),
                                   .value = Text(json::serialize(value))});
    ASSERT_TRUE(created.ok()) << created.status();
    const std::string token = BeginRotation(created->arn);
    const core::Status step = Step(created->arn, token, kCreateSecret);
    EXPECT_EQ(step.code(), core::StatusCode::kInvalidArgument) << step;
    EXPECT_NE(step.message().find("\"" + c.field + "\""), std::string::npos) << step;
    EXPECT_EQ(step.message().find(password_), std::string::npos) << step;
  }
  auto not_json = store_->Create(
      {.name = "db/not-json", .value = Text("{\"password\": \"" + password_ + "\"")});
  ASSERT_TRUE(not_json.ok());
  const core::Status step = Step(not_json->arn, BeginRotation(not_json->arn), kCreateSecret);
  EXPECT_EQ(step.code(), core::StatusCode::kInvalidArgument) << step;
  EXPECT_EQ(step.message().find(password_), std::string::npos) << step;
  EXPECT_NE(step.message().find("is not JSON"), std::string::npos) << step;
}

TEST_F(PostgresRotationTest, RotatesARoleWhoseNameNeedsQuotingWithDefaultsForPortAndDatabase) {
  ASSERT_TRUE(
      server_->Query("ALTER ROLE " + std::string(kOddRoleSql) + " PASSWORD '" + password_ + "'")
          .ok());
  // Port as a string, no dbname ("postgres"), no engine.
  const json::object value{{"host", server_->host()},
                           {"port", std::to_string(server_->port())},
                           {"username", kOddRole},
                           {"password", password_}};
  const std::string arn = CreateSecret(value);
  const std::string token = BeginRotation(arn);
  ASSERT_NO_FATAL_FAILURE(RunAll(arn, token));
  EXPECT_TRUE(server_->LogIn(std::string(kOddRole), PasswordOf(arn), "postgres").ok());
  EXPECT_FALSE(server_->LogIn(std::string(kOddRole), password_, "postgres").ok());
}

TEST_F(PostgresRotationTest, SetSecretLogsInWithThePreviousPasswordWhenTheCurrentOneFails) {
  const std::string arn = CreateSecret(Value(password_));
  // AWSCURRENT put by hand with a password the server never got; AWSPREVIOUS has the real one.
  ASSERT_TRUE(store_->PutValue(arn, Text(json::serialize(Value("never-set"))), "v-2", {}).ok());
  ASSERT_EQ(Label(arn, kPrevious), "v-old");
  const std::string token = BeginRotation(arn);
  ASSERT_NO_FATAL_FAILURE(RunAll(arn, token));
  EXPECT_EQ(Label(arn, kPrevious), "v-2");
  EXPECT_TRUE(server_->LogIn("app_user", PasswordOf(arn), "app").ok());
}

TEST_F(PostgresRotationTest, ARotationAbandonedAfterSetSecretIsRecoveredByTheNextOne) {
  const std::string arn = CreateSecret(Value(password_));
  const std::string first = BeginRotation(arn);
  ASSERT_TRUE(Step(arn, first, kCreateSecret).ok());
  ASSERT_TRUE(Step(arn, first, kSetSecret).ok());
  // testSecret failed (say): the rotator abandons the rotation; the server keeps the password
  // the abandoned version holds, AWSCURRENT's no longer works.
  ASSERT_TRUE(store_->EndRotation(arn, false, RotationState{.attempts = 1}, 0, 0).ok());
  EXPECT_EQ(Label(arn, kPending), "");
  EXPECT_FALSE(server_->LogIn("app_user", password_, "app").ok());
  const std::string second = BeginRotation(arn);
  ASSERT_NO_FATAL_FAILURE(RunAll(arn, second));
  EXPECT_EQ(Label(arn, kCurrent), second);
  EXPECT_TRUE(server_->LogIn("app_user", PasswordOf(arn), "app").ok());
}

TEST_F(PostgresRotationTest, APendingValueForAnotherServerNeverGetsTheCurrentPassword) {
  const std::string arn = CreateSecret(Value(password_));
  const std::string token = BeginRotation(arn);
  // Someone filled the pending version with a value naming another host.
  json::object elsewhere = Value("pending-password");
  elsewhere["host"] = "127.0.0.2";
  ASSERT_TRUE(
      store_->PutValue(arn, Text(json::serialize(elsewhere)), token, {std::string(kPending)}).ok());
  ASSERT_TRUE(Step(arn, token, kCreateSecret).ok());  // a value is there already
  const core::Status set = Step(arn, token, kSetSecret);
  EXPECT_EQ(set.code(), core::StatusCode::kFailedPrecondition) << set;
  EXPECT_NE(set.message().find("names another host, port or username"), std::string::npos) << set;
  EXPECT_TRUE(server_->LogIn("app_user", password_, "app").ok());
}

TEST_F(PostgresRotationTest, StepsCheckTheTokenAndTheStep) {
  const std::string arn = CreateSecret(Value(password_));
  // Not a version of the secret.
  core::Status step = Step(arn, "no-such-version", kCreateSecret);
  EXPECT_EQ(step.code(), core::StatusCode::kFailedPrecondition) << step;
  EXPECT_NE(step.message().find("no-such-version"), std::string::npos) << step;
  // A version that is not AWSPENDING.
  ASSERT_TRUE(
      store_->PutValue(arn, Text(json::serialize(Value(password_))), "v-custom", {"CUSTOM"}).ok());
  step = Step(arn, "v-custom", kSetSecret);
  EXPECT_EQ(step.code(), core::StatusCode::kFailedPrecondition) << step;
  EXPECT_NE(step.message().find("is not AWSPENDING"), std::string::npos) << step;
  // The version already AWSCURRENT: nothing to do, for every step.
  for (std::string_view name : kSteps) {
    EXPECT_TRUE(Step(arn, "v-old", name).ok()) << name;
  }
  EXPECT_EQ(Label(arn, kCurrent), "v-old");
  EXPECT_EQ(Step(arn, "v-old", "dropTable").code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(Step(arn + "-nope", "v-old", kCreateSecret).code(), core::StatusCode::kNotFound);
}

}  // namespace
}  // namespace moatless::secrets
