// AlertsApi: the alerts of an app stage and their states, on the service endpoint (SigV4 signing
// name "moatless"), for `moatless alerts list`:
//
//   GET /moatless/v1/alerts/APP/STAGE     moatless:ListAlerts on
//   arn:aws:moatless:REGION:ACCOUNT:app/APP/STAGE
//
// The answer: {"Alerts": [{"Id", "Name", "Description", "Metric", "Function"?, "Route"?,
// "Comparison", "Threshold", "WindowSeconds", "ForSeconds", "Notify", "State", "Since",
// "Value"?, "Evaluated"?}]}, in manifest order. Thread-safe (AlertHost::List is).
#pragma once

#include <string>

#include "app/alert_host.h"
#include "services/rest_service.h"

namespace moatless::app {

class AlertsApi : public services::RestJsonService {
 public:
  struct Deps {
    const AlertHost& alerts;
    std::string region;
    std::string account_id;
  };
  explicit AlertsApi(Deps deps) : deps_(std::move(deps)) {}

  std::string_view signing_name() const override { return "moatless"; }
  bool Handles(const http::Request& request) const override;
  core::Result<Target> Decode(const http::Request& request) const override;
  http::Response Run(const http::Request& request, const http::RequestContext& context,
                     const Target& target, const std::string& caller_arn) override;

 private:
  Deps deps_;
};

}  // namespace moatless::app
