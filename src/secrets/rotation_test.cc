#include "secrets/rotation.h"

#include <gtest/gtest.h>

#include <vector>

#include "secrets/test_fixture.h"

namespace moatless::secrets {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

constexpr std::int64_t kHourMs = 3600 * 1000;
constexpr std::int64_t kDayMs = 24 * kHourMs;
constexpr std::string_view kFunction = "arn:aws:lambda:local:000000000000:function:rotate";

// A rotation function that does what AWS's rotation template does, against the store, with a
// "target system" that holds the password it was last set to; it can be told to fail a step.
class RotationTest : public SecretStoreTest {
 protected:
  void SetUp() override {
    SecretStoreTest::SetUp();
    auto created = store_->Create(CreateRequest{.name = "prod/app/db", .value = Text("pw-0")});
    ASSERT_TRUE(created.ok());
    arn_ = created->arn;
    MakeRotator();
  }

  void MakeRotator() {
    rotator_ = std::make_unique<Rotator>(
        *store_, env_->clock(), env_->random(),
        [this](const std::string& function, const RotationEvent& event) {
          return Step(function, event);
        },
        Rotator::Options{
            .retry_delay = minutes(1),
            .on_failure = [this](const std::string& arn, const std::string& step,
                                 const core::Status&) { failures_.push_back(arn + " " + step); },
            .on_step = [this](const RotationEvent& event,
                              const core::Status&) { steps_.push_back(event.step); }});
  }

  core::Status Step(const std::string& function, const RotationEvent& event) {
    EXPECT_EQ(function, kFunction);
    tokens_.insert(event.token);
    if (event.step == fail_step_) return core::UnavailableError("the database is down");
    auto info = store_->Describe(event.secret_arn);
    if (!info.ok()) return info.status();
    auto labels = info->version_stages.find(event.token);
    if (labels == info->version_stages.end()) return core::FailedPreconditionError("no version");
    if (std::find(labels->second.begin(), labels->second.end(), "AWSCURRENT") !=
        labels->second.end()) {
      return core::Status::Ok();
    }
    if (event.step == "createSecret") {
      if (store_->GetValue(event.secret_arn, event.token, "AWSPENDING").ok()) {
        return core::Status::Ok();
      }
      return store_
          ->PutValue(event.secret_arn, Text("pw-" + event.token.substr(0, 8)), event.token,
                     {"AWSPENDING"})
          .status();
    }
    if (event.step == "setSecret") {
      auto pending = store_->GetValue(event.secret_arn, event.token, "AWSPENDING");
      if (!pending.ok()) return pending.status();
      system_password_ = std::string(pending->value.Reveal());
      return core::Status::Ok();
    }
    if (event.step == "testSecret") {
      auto pending = store_->GetValue(event.secret_arn, event.token, "AWSPENDING");
      if (!pending.ok()) return pending.status();
      return pending->value.Reveal() == system_password_
                 ? core::Status::Ok()
                 : core::PermissionDeniedError("login failed");
    }
    const std::string current = *info->VersionWith("AWSCURRENT");
    if (!finish_moves_) return core::Status::Ok();
    RETURN_IF_ERROR(store_->MoveLabel(event.secret_arn, "AWSCURRENT", current, event.token));
    return store_->MoveLabel(event.secret_arn, "AWSPENDING", event.token, "");
  }

  SecretInfo Info() { return *store_->Describe(arn_); }

  std::string arn_;
  std::unique_ptr<Rotator> rotator_;
  std::string fail_step_;
  bool finish_moves_ = true;
  std::string system_password_ = "pw-0";
  std::set<std::string> tokens_;
  std::vector<std::string> steps_;
  std::vector<std::string> failures_;
};

TEST_F(RotationTest, AFullRotationMovesTheLabelsAndSchedulesTheNext) {
  auto token = rotator_->Rotate(arn_, std::string(kFunction),
                                RotationRules{.automatically_after_days = 30}, true, "");
  ASSERT_TRUE(token.ok()) << token.status();
  // Until the rotator runs, the new version exists without a value, labelled AWSPENDING.
  EXPECT_EQ(Info().version_stages.at(*token), std::vector<std::string>{"AWSPENDING"});
  EXPECT_EQ(store_->GetValue(arn_, *token, "").status().aws_type(), "ResourceNotFoundException");
  EXPECT_TRUE(Info().rotation_enabled);
  EXPECT_TRUE(store_->AdoptKeyring().ok()) << "a version without a value is sealed under nothing";

  ASSERT_EQ(*rotator_->RunDue(), 1u);
  EXPECT_EQ(steps_,
            (std::vector<std::string>{"createSecret", "setSecret", "testSecret", "finishSecret"}));
  const SecretInfo info = Info();
  EXPECT_EQ(*info.VersionWith("AWSCURRENT"), *token);
  EXPECT_NE(info.VersionWith("AWSPREVIOUS"), nullptr);
  EXPECT_EQ(info.VersionWith("AWSPENDING"), nullptr);
  EXPECT_EQ(Read(arn_), system_password_);
  EXPECT_EQ(info.last_rotated_ms, info.next_rotation_ms - 30 * kDayMs);
  EXPECT_TRUE(info.rotation.token.empty());
  EXPECT_EQ(*rotator_->RunDue(), 0u) << "nothing is due until the schedule fires";

  clock_->Advance(hours(24 * 30));
  steps_.clear();
  ASSERT_EQ(*rotator_->RunDue(), 1u) << "the schedule fired";
  EXPECT_EQ(steps_.size(), 4u);
  EXPECT_NE(*Info().VersionWith("AWSCURRENT"), *token);
}

TEST_F(RotationTest, AFailingStepLeavesCurrentAloneAndRetriesWithANewValue) {
  fail_step_ = "testSecret";
  auto token = rotator_->Rotate(arn_, std::string(kFunction), std::nullopt, true, "");
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(*rotator_->RunDue(), 0u);
  SecretInfo info = Info();
  EXPECT_EQ(Read(arn_), "pw-0") << "AWSCURRENT untouched";
  EXPECT_EQ(info.VersionWith("AWSPENDING"), nullptr) << "the failed pending value is dropped";
  EXPECT_FALSE(info.version_stages.contains(*token));
  EXPECT_EQ(info.rotation.attempts, 1);
  EXPECT_EQ(info.rotation.last_error_step, "testSecret");
  EXPECT_EQ(info.rotation.last_error, "the database is down");
  EXPECT_EQ(failures_, std::vector<std::string>{arn_ + " testSecret"});
  // Not before the back-off; then with a new token (a new value), and it succeeds.
  EXPECT_EQ(*rotator_->RunDue(), 0u);
  EXPECT_EQ(tokens_.size(), 1u);
  fail_step_.clear();
  clock_->Advance(minutes(1));
  EXPECT_EQ(*rotator_->RunDue(), 1u);
  EXPECT_EQ(tokens_.size(), 2u) << "the retry used a new token";
  EXPECT_NE(*Info().VersionWith("AWSCURRENT"), *token);
  EXPECT_EQ(Info().rotation.attempts, 0);
}

TEST_F(RotationTest, AttemptsBackOffAndStopAtTheLimit) {
  fail_step_ = "setSecret";
  ASSERT_TRUE(rotator_->Rotate(arn_, std::string(kFunction), std::nullopt, true, "").ok());
  for (int i = 0; i < 10; ++i) {
    rotator_->RunDue().status().IgnoreError();
    clock_->Advance(hours(2));
  }
  EXPECT_EQ(Info().rotation.attempts, kMaxRotationAttempts);
  EXPECT_EQ(failures_.size(), static_cast<std::size_t>(kMaxRotationAttempts));
  EXPECT_EQ(Info().rotation_due_ms, 0) << "no schedule: nothing more until someone rotates";
  EXPECT_EQ(Read(arn_), "pw-0");
}

TEST_F(RotationTest, ACrashBetweenStepsResumesAtTheStepThatDidNotFinish) {
  auto token = rotator_->Rotate(arn_, std::string(kFunction), std::nullopt, true, "");
  ASSERT_TRUE(token.ok());
  // The first two steps ran and were recorded; then the process died.
  RotationState state{.token = *token, .next_step = "createSecret"};
  ASSERT_TRUE(Step(std::string(kFunction), {arn_, *token, "createSecret"}).ok());
  state.next_step = "setSecret";
  ASSERT_TRUE(store_->SaveRotationState(arn_, state).ok());
  ASSERT_NO_FATAL_FAILURE(OpenStore());  // the store reopened from disk
  MakeRotator();
  steps_.clear();
  EXPECT_EQ(*rotator_->RunDue(), 1u);
  EXPECT_EQ(steps_, (std::vector<std::string>{"setSecret", "testSecret", "finishSecret"}));
  EXPECT_EQ(*Info().VersionWith("AWSCURRENT"), *token);
  EXPECT_EQ(Read(arn_), system_password_);
}

TEST_F(RotationTest, AFinishThatDoesNotMoveCurrentIsAFailure) {
  finish_moves_ = false;
  ASSERT_TRUE(rotator_->Rotate(arn_, std::string(kFunction), std::nullopt, true, "").ok());
  EXPECT_EQ(*rotator_->RunDue(), 0u);
  EXPECT_EQ(Info().rotation.last_error_step, "finishSecret");
  EXPECT_EQ(Read(arn_), "pw-0");
}

TEST_F(RotationTest, RotateRefusesWhatItCannotDo) {
  EXPECT_EQ(rotator_->Rotate(arn_, std::nullopt, std::nullopt, true, "").status().aws_type(),
            "InvalidRequestException")
      << "no rotation function";
  auto token = rotator_->Rotate(arn_, std::string(kFunction), std::nullopt, true, "");
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(rotator_->Rotate(arn_, std::nullopt, std::nullopt, true, "").status().aws_type(),
            "InvalidRequestException")
      << "a rotation is in progress";
  EXPECT_EQ(*rotator_->Rotate(arn_, std::nullopt, std::nullopt, true, *token), *token)
      << "the same request again";
  EXPECT_EQ(rotator_
                ->Rotate(arn_, std::nullopt, RotationRules{.schedule_expression = "rate(1 hours)"},
                         false, "")
                .status()
                .aws_type(),
            "InvalidParameterException");
  // Cancelling abandons the rotation in progress and disables rotation.
  EXPECT_EQ(*rotator_->Cancel(arn_), *token);
  EXPECT_FALSE(Info().rotation_enabled);
  EXPECT_EQ(Info().VersionWith("AWSPENDING"), nullptr);
  EXPECT_EQ(*rotator_->RunDue(), 0u);
  // Later rotations keep the function.
  EXPECT_TRUE(rotator_->Rotate(arn_, std::nullopt, std::nullopt, true, "").ok());
  EXPECT_EQ(*rotator_->RunDue(), 1u);
}

TEST(RotationScheduleTest, DaysRatesAndCron) {
  const std::int64_t t0 = 1'800'000'000'000;  // 2027-01-15T08:00:00Z, a Friday
  EXPECT_EQ(*NextRotation({.automatically_after_days = 7}, t0), t0 + 7 * kDayMs);
  EXPECT_EQ(*NextRotation({.schedule_expression = "rate(10 days)"}, t0), t0 + 10 * kDayMs);
  EXPECT_EQ(*NextRotation({.schedule_expression = "rate(4 hours)"}, t0), t0 + 4 * kHourMs);
  EXPECT_EQ(*NextRotation({}, t0), 0);
  // 2027-01-15 is a Friday: the next Sunday 03:00 UTC is 2027-01-17T03:00:00Z.
  EXPECT_EQ(*NextRotation({.schedule_expression = "cron(0 3 ? * SUN *)"}, t0),
            1'800'000'000'000 + (2 * 24 - 5) * kHourMs);
  // The first day of every month at 00:30.
  EXPECT_EQ(*NextRotation({.schedule_expression = "cron(30 0 1 * ? *)"}, t0),
            1'801'441'800'000);  // 2027-02-01T00:30:00Z
  for (const char* bad :
       {"rate(3 hours)", "rate(0 days)", "rate(2 weeks)", "cron(0 * * * ? *)",
        "cron(0 3 1 * MON *)", "cron(0 3 L * ? *)", "cron(0 3 * *)", "every day"}) {
    EXPECT_EQ(ValidateRotationRules({.schedule_expression = bad}).aws_type(),
              "InvalidParameterException")
        << bad;
  }
  EXPECT_FALSE(ValidateRotationRules({.automatically_after_days = 1001}).ok());
  EXPECT_FALSE(
      ValidateRotationRules({.automatically_after_days = 2, .schedule_expression = "rate(2 days)"})
          .ok());
  EXPECT_FALSE(ValidateRotationRules({.automatically_after_days = 2, .duration = "2d"}).ok());
}

TEST_F(RotationTest, SettingAScheduleDuringARotationLeavesItDue) {
  ASSERT_TRUE(rotator_->Rotate(arn_, std::string(kFunction), std::nullopt, true, "").ok());
  ASSERT_TRUE(rotator_
                  ->Rotate(arn_, std::nullopt, RotationRules{.automatically_after_days = 30},
                           /*rotate_immediately=*/false, "")
                  .ok());
  EXPECT_EQ(*rotator_->RunDue(), 1u) << "the rotation in progress still runs now";
  EXPECT_EQ(Info().rotation_rules.automatically_after_days, 30);
}

}  // namespace
}  // namespace moatless::secrets
