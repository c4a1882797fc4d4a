// AppApi: the platform's own REST-JSON API for apps, served on the service endpoint (SigV4
// signing name "moatless") so that deployers authenticate like any AWS client and are authorised
// by the policy engine like any other caller:
//
//   POST   /moatless/v1/apps/APP/stages/STAGE/deployments  moatless:Deploy
//            body: a bundle (.tar.gz); ?dryRun=true ?strict=true ?expectedVersion=N
//   POST   /moatless/v1/apps/APP/stages/STAGE/rollback     moatless:Deploy  ?to=N ?dryRun=true
//   GET    /moatless/v1/apps                               moatless:ListApps
//   GET    /moatless/v1/apps/APP/stages/STAGE              moatless:GetApp
//   GET    /moatless/v1/apps/APP/stages/STAGE/boundary     moatless:GetBoundary
//   PUT    /moatless/v1/apps/APP/stages/STAGE/boundary     moatless:PutBoundary (body: policy)
//   DELETE /moatless/v1/apps/APP/stages/STAGE/boundary     moatless:DeleteBoundary
//   POST   /moatless/v1/apps/APP/stages/STAGE/apikeys      moatless:CreateApiKey
//            body {"Plan", "Name"}; the answer holds the key's value, the only time it is shown
//   GET    /moatless/v1/apps/APP/stages/STAGE/apikeys      moatless:ListApiKeys
//   GET    /moatless/v1/apps/APP/stages/STAGE/apikeys/ID   moatless:GetApiKey
//   PATCH  /moatless/v1/apps/APP/stages/STAGE/apikeys/ID   moatless:UpdateApiKey
//            body {"Enabled": bool, "Plan": "..."} (either or both)
//   DELETE /moatless/v1/apps/APP/stages/STAGE/apikeys/ID   moatless:DeleteApiKey
//
// Every action is authorised on the app's ARN, arn:aws:moatless:REGION:ACCOUNT:app/APP/STAGE
// (ListApps on arn:…:app/*), so an operator grants a deployer exactly the apps and stages it may
// change. Boundaries are the operator's: grant moatless:PutBoundary to operators only. An API key
// is reachable only under its own app and stage (another's answers ResourceNotFoundException), and
// a key can only be put on a usage plan the live version of its app stage defines.
//
// Responses are JSON objects with PascalCase members (as AWS's REST-JSON APIs); errors are
// RestJsonError. Thread-safe (the Deployer is).
#pragma once

#include <string>

#include "gateway/api_keys.h"
#include "manifest/deployer.h"
#include "services/rest_service.h"

namespace moatless::manifest {

inline constexpr std::string_view kAppApiPrefix = "/moatless/v1/";

class AppApi : public services::RestJsonService {
 public:
  struct Deps {
    Deployer& deployer;
    gateway::ApiKeyStore* keys = nullptr;  // null: the API key operations answer 503
    std::string region;
    std::string account_id;
  };
  explicit AppApi(Deps deps);

  std::string_view signing_name() const override { return "moatless"; }
  bool Handles(const http::Request& request) const override;
  core::Result<Target> Decode(const http::Request& request) const override;
  http::Response Run(const http::Request& request, const http::RequestContext& context,
                     const Target& target, const std::string& caller_arn) override;

 private:
  Deps deps_;
};

// The JSON the API answers a deployment with (also what `moatless deploy --json` prints).
std::string DeployOutcomeJson(const DeployOutcome& outcome);

}  // namespace moatless::manifest
