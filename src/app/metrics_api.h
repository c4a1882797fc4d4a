// MetricsApi: the metrics registry's current values as JSON on the service endpoint (SigV4
// signing name "moatless"), for `moatless top` and other tools that want numbers rather than the
// Prometheus text of /metrics:
//
//   GET /moatless/v1/metrics[?family=NAME&family=...]
//       moatless:GetMetrics on arn:aws:moatless:REGION:ACCOUNT:metrics
//
// The answer: {"Families": [{"Name", "Type" (counter|gauge|histogram), "Help", "LabelNames",
// "Series": [{"Labels": [values in LabelNames' order], "Value"} — histograms add "Bounds",
// "Buckets" (cumulative, the last for +Inf) and "Sum"]}]}, every family (or the ones asked for),
// sorted by name. The registry's collectors run first, so gauges are current. Thread-safe.
#pragma once

#include <string>

#include "observe/metrics.h"
#include "services/rest_service.h"

namespace moatless::app {

class MetricsApi : public services::RestJsonService {
 public:
  struct Deps {
    const observe::MetricsRegistry& metrics;
    std::string region;
    std::string account_id;
  };
  explicit MetricsApi(Deps deps) : deps_(std::move(deps)) {}

  std::string_view signing_name() const override { return "moatless"; }
  bool Handles(const http::Request& request) const override;
  core::Result<Target> Decode(const http::Request& request) const override;
  http::Response Run(const http::Request& request, const http::RequestContext& context,
                     const Target& target, const std::string& caller_arn) override;

 private:
  Deps deps_;
};

}  // namespace moatless::app
