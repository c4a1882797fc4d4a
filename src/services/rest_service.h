// RestJsonService: a service API spoken in AWS's REST-JSON style (resources in the path, JSON
// bodies, errors as an x-amzn-ErrorType header and a {"Type", "message"} body) that the
// AwsEndpoint authenticates and authorises before handing it a request.
//
// The endpoint asks Handles() (by path) which service a request is for, Decode() what it asks —
// the IAM action and the resource ARN it is authorised on — before trusting anything, then
// authenticates the SigV4 signature (whose credential scope must name signing_name()), evaluates
// the caller's policies, records the decision durably in the audit log, and only then calls Run.
// Implementations are written by higher layers (the app API of manifest/) and attached to the
// endpoint at run time.
//
// Implementations must be thread-safe: Run is called from many threads at once.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "http/types.h"

namespace moatless::services {

class RestJsonService {
 public:
  struct Target {
    std::string action;    // "moatless:Deploy"
    std::string resource;  // the ARN it is authorised on
  };
  virtual ~RestJsonService() = default;
  // The service name of the SigV4 credential scope ("moatless").
  virtual std::string_view signing_name() const = 0;
  virtual bool Handles(const http::Request& request) const = 0;
  // kInvalidArgument / kNotFound for a request it cannot decode.
  virtual core::Result<Target> Decode(const http::Request& request) const = 0;
  // Runs an authorised request on behalf of `caller_arn`.
  virtual http::Response Run(const http::Request& request, const http::RequestContext& context,
                             const Target& target, const std::string& caller_arn) = 0;
};

// A request target split for a REST-JSON service: the decoded path segments after /moatless/v1/
// (the first two, "moatless" and "v1", are dropped) and the decoded query parameters (a repeated
// one keeps its last value). InvalidArgument for a target that is not a valid path.
struct RestTarget {
  std::vector<std::string> segments;
  std::map<std::string, std::string> query;
};
core::Result<RestTarget> ParseRestTarget(std::string_view target);

// The REST-JSON error response for `status`: its HTTP code (403 for authentication failures, 429
// with Retry-After), x-amzn-ErrorType, x-amzn-RequestId, {"Type": "User"|"Service", "message"}.
http::Response RestJsonError(const http::Request& request, const http::RequestContext& context,
                             const core::Status& status);

}  // namespace moatless::services
