// LambdaApi: the Lambda Invoke operation (REST-JSON, API version 2015-03-31) on the platform's
// service endpoint, so the aws CLI, the AWS SDKs and other functions invoke functions as they do
// on AWS:
//
//   POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=Q]
//     X-Amz-Invocation-Type: RequestResponse (default) | Event | DryRun
//     X-Amz-Log-Type: None | Tail
//     X-Amz-Client-Context: base64 JSON (≤ 3583 bytes), the runtime's context.clientContext
//   RequestResponse → 200 with the function's response (or its error body and
//     X-Amz-Function-Error), X-Amz-Executed-Version, and with Tail X-Amz-Log-Result (the last
//     4 KiB of the invocation's log, base64). Event → 202 once the event is stored durably.
//     DryRun → 204 (the caller may invoke it; nothing runs).
//
// FunctionName is a name, a function ARN of this account and region, or NAME:QUALIFIER. The
// AwsEndpoint authenticates the request and authorises lambda:InvokeFunction on the function's ARN
// (qualified: arn:…:function:NAME:QUALIFIER) before Run is called; errors are REST-JSON
// (x-amzn-ErrorType header, {"Type", "message"} body). The functions themselves come from a
// FunctionBackend (the platform's registry, invoker and event queue; fakes in tests).
//
// Thread-safe. Run blocks for the whole of a RequestResponse invocation: call it on a pool meant
// for that (AwsEndpoint::AttachLambda).
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"
#include "http/types.h"
#include "runtime/function.h"
#include "runtime/invoker.h"
#include "services/rest_service.h"

namespace moatless::services {

inline constexpr std::string_view kLambdaPathPrefix = "/2015-03-31/functions/";
inline constexpr std::size_t kMaxSyncPayloadBytes = 6 * 1024 * 1024;

// Where the functions are: resolution, synchronous runs, durable events.
class FunctionBackend {
 public:
  virtual ~FunctionBackend() = default;
  // NotFound (ResourceNotFoundException) for an unknown function or version.
  virtual core::Result<runtime::FunctionConfig> Resolve(std::string_view name,
                                                        std::string_view qualifier) = 0;
  // `client_context`: the decoded X-Amz-Client-Context JSON ("" when none).
  virtual core::Result<runtime::InvokeResult> Invoke(const runtime::FunctionConfig& function,
                                                     std::string payload, std::string request_id,
                                                     std::string client_context) = 0;
  // Stores the event durably, to run as `request_id`; only then may it be acknowledged.
  virtual core::Status Enqueue(std::string_view name, std::string_view qualifier,
                               std::string payload, std::string request_id) = 0;
};

class LambdaApi {
 public:
  struct Deps {
    FunctionBackend& functions;
    std::string region;
    std::string account_id;
  };
  explicit LambdaApi(Deps deps);

  // Whether a request is addressed to this API (by its path).
  static bool Handles(const http::Request& request);

  // What a request asks for, decoded before anything is trusted.
  struct Target {
    std::string action;     // "lambda:InvokeFunction"
    std::string resource;   // the function ARN, qualified if a qualifier was given
    std::string function;   // the name
    std::string qualifier;  // "" when none
  };
  // InvalidArgument (InvalidParameterValueException, or UnknownOperationException for another
  // path or method) for a request it cannot decode.
  core::Result<Target> Decode(const http::Request& request) const;

  // Runs an authorised request.
  http::Response Run(const http::Request& request, const http::RequestContext& context,
                     const Target& target);

  // A REST-JSON error response.
  static http::Response Error(const http::Request& request, const http::RequestContext& context,
                              const core::Status& status);

 private:
  Deps deps_;
};

}  // namespace moatless::services
