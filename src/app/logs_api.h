// LogsApi: function logs over the signed service endpoint (REST-JSON, SigV4 signing name
// "moatless"), read and filtered on the server:
//
//   GET /moatless/v1/functions/NAME/logs?since=&until=&requestId=&filter=&limit=&cursor=
//     -> {"Events":[{…one log line…}], "NextCursor":"…", "More":false, "Gap":false}
//
// authorised as moatless:GetFunctionLogs on the function's ARN,
// arn:aws:lambda:REGION:ACCOUNT:function:NAME, so an operator grants log access function by
// function. since/until: RFC 3339 times (since inclusive, until exclusive); requestId: one
// invocation; filter: text the message contains; limit: 1-10000 events (1000); cursor: the
// NextCursor of an earlier answer — the next read continues exactly after its last event, also
// across a rotation (see observe/log_files.h for when it cannot: then "Gap" is true). "More" says
// the answer stopped at a limit and the rest can be read right away. A function that neither the
// registry nor the log directory knows is ResourceNotFoundException — answered only to callers
// allowed to read its logs, so nobody else learns which functions exist.
//
// Thread-safe.
#pragma once

#include <functional>
#include <string>

#include "app/log_files.h"
#include "services/rest_service.h"

namespace moatless::app {

class LogsApi : public services::RestJsonService {
 public:
  struct Deps {
    FunctionLogs& logs;
    // Whether a function of that name is registered (an error: the registry cannot tell).
    std::function<core::Result<bool>(const std::string& name)> function_exists;
    std::string region;
    std::string account_id;
  };
  explicit LogsApi(Deps deps) : deps_(std::move(deps)) {}

  std::string_view signing_name() const override { return "moatless"; }
  bool Handles(const http::Request& request) const override;
  core::Result<Target> Decode(const http::Request& request) const override;
  http::Response Run(const http::Request& request, const http::RequestContext& context,
                     const Target& target, const std::string& caller_arn) override;

 private:
  Deps deps_;
};

}  // namespace moatless::app
