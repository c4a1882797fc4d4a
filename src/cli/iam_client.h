// IamClient: the CLI's way to call moatless's IAM API — the same signed Query-protocol requests
// the aws CLI sends — and SendSigned, the signing and sending it shares with `moatless invoke`.
//
// Credentials come from the standard AWS places, in the AWS CLI's order: an explicit profile
// (--profile, else AWS_PROFILE) from the shared credentials file ($AWS_SHARED_CREDENTIALS_FILE,
// else ~/.aws/credentials); otherwise AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
// (/ AWS_SESSION_TOKEN); otherwise the file's `default` profile. The server is --endpoint, else
// MOATLESS_ENDPOINT, else AWS_ENDPOINT_URL, else http://127.0.0.1:8420 (serve's default). The
// region is --region, else AWS_REGION / AWS_DEFAULT_REGION, else `local`.
//
// Call() returns the parsed XML response (Boost.PropertyTree) or the service's error as a Status
// carrying the AWS error code. Single-threaded; secrets stay in SecretBytes.
#pragma once

#include <boost/json.hpp>
#include <boost/property_tree/ptree.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/secret_bytes.h"
#include "core/status.h"
#include "http/types.h"

namespace moatless::cli {

struct AwsCredentials {
  std::string access_key_id;
  core::SecretBytes secret_access_key;
  std::optional<std::string> session_token;
  std::string source;  // "profile 'x' of FILE" or "environment", for messages
};

struct ClientSettings {
  std::string endpoint;
  std::string region;
  AwsCredentials credentials;
};

// Resolves the settings from flags (empty: not given) and the process environment.
core::Result<ClientSettings> ResolveClientSettings(
    const std::string& endpoint_flag, const std::string& profile_flag,
    const std::string& region_flag, const std::map<std::string, std::string>& environment);

// Signs `request` for `service` with the settings' credentials (SigV4, the real time) and sends it
// to the settings' endpoint; the response whatever its status, or a transport error (also when
// no response has come within `read_timeout`).
core::Result<http::Response> SendSigned(
    const ClientSettings& settings, std::string_view service, http::Request request,
    std::chrono::milliseconds read_timeout = std::chrono::seconds(60));

// A REST-JSON error answer as one line ("AccessDeniedException (HTTP 403): ..."), or "" for a
// success.
std::string RestJsonErrorOf(const http::Response& response);

// Sends one signed request to a moatless REST-JSON API (signing name "moatless"; the app, audit,
// alerts and metrics APIs) and returns the JSON object it answered. On failure prints
// "moatless COMMAND: <why>" to stderr and returns nullopt. `content_type` is set when not empty.
std::optional<boost::json::object> CallRestJson(
    const ClientSettings& settings, http::Verb verb, const std::string& target, std::string body,
    std::string_view content_type, std::string_view command,
    std::chrono::milliseconds read_timeout = std::chrono::minutes(10));

class IamClient {
 public:
  explicit IamClient(ClientSettings settings) : settings_(std::move(settings)) {}
  // Calls Action with the parameters; the result element (<ActionResult>) or an empty tree.
  core::Result<boost::property_tree::ptree> Call(
      const std::string& action, const std::vector<std::pair<std::string, std::string>>& params);

 private:
  ClientSettings settings_;
};

}  // namespace moatless::cli
