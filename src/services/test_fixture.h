// Tests only: an identity::IdentityStoreTest with the AWS service endpoint on top — an audit log
// in the temporary directory, the Authenticator, STS, IAM and the AwsEndpoint, all on the
// fixture's FakeClock. Subclasses call AwsEndpointStoreTest::SetUp first and release what they
// hold on these before calling AwsEndpointStoreTest::TearDown. (Used by services_test and by the
// app's function tests.)
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "identity/authenticator.h"
#include "identity/sts.h"
#include "identity/test_fixture.h"
#include "observe/audit_log.h"
#include "services/aws_endpoint.h"
#include "services/iam_api.h"

namespace moatless::services {

class AwsEndpointStoreTest : public identity::IdentityStoreTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(IdentityStoreTest::SetUp());
    auto audit =
        observe::AuditLog::Open(AuditPath(), core::SecretBytes(std::string(32, 'k')), *clock_);
    ASSERT_TRUE(audit.ok()) << audit.status();
    audit_ = std::move(*audit);
    auth_ = std::make_unique<identity::Authenticator>(*directory_, *tokens_, *clock_);
    sts_ = std::make_unique<identity::Sts>(*directory_, *tokens_, *env_, "local");
    iam_ = std::make_unique<IamApi>(*directory_);
    endpoint_ = std::make_unique<AwsEndpoint>(AwsEndpoint::Deps{.authenticator = *auth_,
                                                                .sts = *sts_,
                                                                .iam = *iam_,
                                                                .audit = *audit_,
                                                                .clock = *clock_,
                                                                .region = "local"});
  }
  void TearDown() override {
    endpoint_.reset();
    iam_.reset();
    sts_.reset();
    auth_.reset();
    audit_.reset();
    IdentityStoreTest::TearDown();
  }

  std::string AuditPath() const { return dir_ + "/audit.log"; }

  std::unique_ptr<observe::AuditLog> audit_;
  std::unique_ptr<identity::Authenticator> auth_;
  std::unique_ptr<identity::Sts> sts_;
  std::unique_ptr<IamApi> iam_;
  std::unique_ptr<AwsEndpoint> endpoint_;
};

}  // namespace moatless::services
