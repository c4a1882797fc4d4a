#include "app/metrics_api.h"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <set>

namespace moatless::app {
namespace {

constexpr std::string_view kPath = "/moatless/v1/metrics";

std::string_view TypeName(observe::MetricType type) {
  switch (type) {
    case observe::MetricType::kCounter:
      return "counter";
    case observe::MetricType::kGauge:
      return "gauge";
    case observe::MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

boost::json::array Strings(const std::vector<std::string>& values) {
  boost::json::array out;
  for (const std::string& v : values) out.push_back(boost::json::string(v));
  return out;
}

}  // namespace

bool MetricsApi::Handles(const http::Request& request) const {
  const std::string_view target = request.target();
  return target.starts_with(kPath) && (target.size() == kPath.size() ||
                                       target[kPath.size()] == '?' || target[kPath.size()] == '/');
}

core::Result<services::RestJsonService::Target> MetricsApi::Decode(
    const http::Request& request) const {
  auto url = boost::urls::parse_origin_form(request.target());
  if (!url || url->path() != kPath) {
    return core::NotFoundError("expected /moatless/v1/metrics")
        .WithAwsType("ResourceNotFoundException");
  }
  if (request.method() != http::Verb::get) {
    return core::InvalidArgumentError("only GET is served here").WithAwsType("InvalidRequest");
  }
  return Target{
      .action = "moatless:GetMetrics",
      .resource = "arn:aws:moatless:" + deps_.region + ":" + deps_.account_id + ":metrics"};
}

http::Response MetricsApi::Run(const http::Request& request, const http::RequestContext& context,
                               const Target&, const std::string&) {
  std::set<std::string> wanted;
  if (auto url = boost::urls::parse_origin_form(request.target())) {
    for (const auto& param : url->params()) {
      if (param.key == "family") wanted.insert(param.value);
    }
  }
  deps_.metrics.Collect();
  boost::json::array families;
  for (const auto& [name, help] : deps_.metrics.Families()) {
    if (!wanted.empty() && !wanted.contains(name)) continue;
    const auto reading = deps_.metrics.Read(name);
    if (!reading) continue;
    boost::json::array series;
    for (const observe::SeriesReading& s : reading->series) {
      boost::json::object item{{"Labels", Strings(s.label_values)}, {"Value", s.value}};
      if (s.histogram) {
        boost::json::array bounds(s.histogram->bounds.begin(), s.histogram->bounds.end());
        boost::json::array buckets(s.histogram->cumulative.begin(), s.histogram->cumulative.end());
        item["Bounds"] = std::move(bounds);
        item["Buckets"] = std::move(buckets);
        item["Sum"] = s.histogram->sum;
      }
      series.push_back(std::move(item));
    }
    families.push_back(boost::json::object{{"Name", name},
                                           {"Type", TypeName(reading->type)},
                                           {"Help", help},
                                           {"LabelNames", Strings(reading->label_names)},
                                           {"Series", std::move(series)}});
  }
  http::Response response(http::HttpStatus::ok, request.version());
  response.set(http::Field::content_type, "application/json");
  response.set("x-amzn-RequestId", context.request_id);
  response.body() = boost::json::serialize(boost::json::object{{"Families", std::move(families)}});
  response.prepare_payload();
  return response;
}

}  // namespace moatless::app
