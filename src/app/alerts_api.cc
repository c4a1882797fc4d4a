#include "app/alerts_api.h"

#include <boost/json.hpp>

#include "core/clock.h"
#include "manifest/manifest.h"

namespace moatless::app {
namespace {

constexpr std::string_view kPrefix = "/moatless/v1/alerts";

// APP and STAGE of /moatless/v1/alerts/APP/STAGE.
core::Result<std::pair<std::string, std::string>> AppStage(std::string_view target) {
  ASSIGN_OR_RETURN(const services::RestTarget parsed, services::ParseRestTarget(target));
  const std::vector<std::string>& segments = parsed.segments;  // alerts, APP, STAGE
  if (segments.size() != 3) {
    return core::NotFoundError("expected /moatless/v1/alerts/APP/STAGE")
        .WithAwsType("ResourceNotFoundException");
  }
  RETURN_IF_ERROR(manifest::ValidateAppName(segments[1]));
  RETURN_IF_ERROR(manifest::ValidateStageName(segments[2]));
  return std::make_pair(segments[1], segments[2]);
}

}  // namespace

bool AlertsApi::Handles(const http::Request& request) const {
  const std::string_view target = request.target();
  return target.starts_with(kPrefix) &&
         (target.size() == kPrefix.size() || target[kPrefix.size()] == '/' ||
          target[kPrefix.size()] == '?');
}

core::Result<services::RestJsonService::Target> AlertsApi::Decode(
    const http::Request& request) const {
  if (request.method() != http::Verb::get) {
    return core::InvalidArgumentError("only GET is served here").WithAwsType("InvalidRequest");
  }
  ASSIGN_OR_RETURN(const auto app_stage, AppStage(request.target()));
  return Target{.action = "moatless:ListAlerts",
                .resource = manifest::AppArn(deps_.region, deps_.account_id, app_stage.first,
                                             app_stage.second)};
}

http::Response AlertsApi::Run(const http::Request& request, const http::RequestContext& context,
                              const Target&, const std::string&) {
  const auto app_stage = AppStage(request.target());
  if (!app_stage.ok()) return services::RestJsonError(request, context, app_stage.status());
  boost::json::array alerts;
  for (const AlertView& view : deps_.alerts.List(app_stage->first, app_stage->second)) {
    const observe::AlertRule& r = view.rule;
    boost::json::array notify;
    for (const std::string& hook : r.notify) notify.push_back(boost::json::string(hook));
    boost::json::object a{{"Id", r.id},
                          {"Name", view.name},
                          {"Description", r.Describe()},
                          {"Metric", observe::AlertMetricName(r.metric)},
                          {"Comparison", r.below ? "below" : "above"},
                          {"Threshold", r.threshold},
                          {"WindowSeconds", r.window.count()},
                          {"ForSeconds", r.for_duration.count()},
                          {"Notify", std::move(notify)},
                          {"State", observe::AlertStateName(view.status.state)}};
    if (!r.function.empty()) a["Function"] = r.function;
    if (!r.route.empty()) a["Route"] = r.route;
    if (view.status.state != observe::AlertState::kInactive ||
        view.status.since != core::WallTime{}) {
      a["Since"] = core::FormatRfc3339(view.status.since);
    }
    if (view.status.value) a["Value"] = *view.status.value;
    if (view.status.evaluated != core::WallTime{}) {
      a["Evaluated"] = core::FormatRfc3339(view.status.evaluated);
    }
    alerts.push_back(std::move(a));
  }
  http::Response response(http::HttpStatus::ok, request.version());
  response.set(http::Field::content_type, "application/json");
  response.set("x-amzn-RequestId", context.request_id);
  response.body() = boost::json::serialize(boost::json::object{{"Alerts", std::move(alerts)}});
  response.prepare_payload();
  return response;
}

}  // namespace moatless::app
