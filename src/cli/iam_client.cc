#include "cli/iam_client.h"

#include <boost/property_tree/xml_parser.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/clock.h"
#include "http/client.h"
#include "identity/sigv4.h"

namespace moatless::cli {
namespace {

std::string Get(const std::map<std::string, std::string>& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() ? std::string() : it->second;
}

std::string Trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

// One profile's keys from an AWS shared credentials file.
core::Result<AwsCredentials> FromProfile(const std::string& file, const std::string& profile) {
  std::ifstream in(file);
  if (!in) return core::NotFoundError("cannot read the credentials file " + file);
  std::map<std::string, std::string> values;
  bool in_profile = false;
  bool found = false;
  std::string line;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      in_profile = line == "[" + profile + "]";
      found = found || in_profile;
      continue;
    }
    const auto eq = line.find('=');
    if (in_profile && eq != std::string::npos) {
      values[Trim(line.substr(0, eq))] = Trim(line.substr(eq + 1));
    }
  }
  if (!found) return core::NotFoundError("no profile '" + profile + "' in " + file);
  if (values["aws_access_key_id"].empty() || values["aws_secret_access_key"].empty()) {
    return core::InvalidArgumentError("profile '" + profile + "' in " + file +
                                      " has no aws_access_key_id / aws_secret_access_key");
  }
  AwsCredentials out{
      .access_key_id = values["aws_access_key_id"],
      .secret_access_key = core::SecretBytes::TakeFrom(values["aws_secret_access_key"]),
      .session_token = std::nullopt,
      .source = "profile '" + profile + "' of " + file};
  if (!values["aws_session_token"].empty()) out.session_token = values["aws_session_token"];
  return out;
}

std::string FormEncode(std::string_view text) {
  return boost::urls::encode(text, boost::urls::unreserved_chars);
}

}  // namespace

core::Result<ClientSettings> ResolveClientSettings(
    const std::string& endpoint_flag, const std::string& profile_flag,
    const std::string& region_flag, const std::map<std::string, std::string>& environment) {
  ClientSettings s;
  s.endpoint = endpoint_flag;
  for (const char* key : {"MOATLESS_ENDPOINT", "AWS_ENDPOINT_URL"}) {
    if (s.endpoint.empty()) s.endpoint = Get(environment, key);
  }
  if (s.endpoint.empty()) s.endpoint = "http://127.0.0.1:8420";
  while (s.endpoint.ends_with('/')) s.endpoint.pop_back();
  s.region = region_flag;
  for (const char* key : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (s.region.empty()) s.region = Get(environment, key);
  }
  if (s.region.empty()) s.region = "local";

  std::string file = Get(environment, "AWS_SHARED_CREDENTIALS_FILE");
  if (file.empty() && !Get(environment, "HOME").empty()) {
    file = Get(environment, "HOME") + "/.aws/credentials";
  }
  std::string profile = profile_flag.empty() ? Get(environment, "AWS_PROFILE") : profile_flag;
  if (!profile.empty()) {
    ASSIGN_OR_RETURN(s.credentials, FromProfile(file, profile));
    return s;
  }
  std::string key_id = Get(environment, "AWS_ACCESS_KEY_ID");
  std::string secret = Get(environment, "AWS_SECRET_ACCESS_KEY");
  if (!key_id.empty() && !secret.empty()) {
    s.credentials = AwsCredentials{.access_key_id = key_id,
                                   .secret_access_key = core::SecretBytes::TakeFrom(secret),
                                   .session_token = std::nullopt,
                                   .source = "environment"};
    if (std::string token = Get(environment, "AWS_SESSION_TOKEN"); !token.empty()) {
      s.credentials.session_token = token;
    }
    return s;
  }
  auto fallback = FromProfile(file, "default");
  if (!fallback.ok()) {
    return core::UnauthenticatedError(
        "no credentials: pass --profile, set AWS_PROFILE or AWS_ACCESS_KEY_ID / "
        "AWS_SECRET_ACCESS_KEY, or add a [default] profile (" +
        fallback.status().message() + ")");
  }
  s.credentials = std::move(*fallback);
  return s;
}

core::Result<http::Response> SendSigned(const ClientSettings& settings, std::string_view service,
                                        http::Request request,
                                        std::chrono::milliseconds read_timeout) {
  ASSIGN_OR_RETURN(const http::ParsedUrl url, http::ParseUrl(settings.endpoint + "/"));
  request.set(http::Field::host, url.host_header);
  request.prepare_payload();
  identity::HttpRequestView view{
      .method = request.method_string(), .target = request.target(), .body = request.body()};
  for (const auto& field : request) view.headers.emplace_back(field.name_string(), field.value());
  ASSIGN_OR_RETURN(
      const auto headers,
      identity::SignRequest(view,
                            {.access_key_id = settings.credentials.access_key_id,
                             .region = settings.region,
                             .service = service,
                             .time = core::RealClock().Now(),
                             .security_token = settings.credentials.session_token
                                                   ? std::optional<std::string_view>(
                                                         *settings.credentials.session_token)
                                                   : std::nullopt},
                            settings.credentials.secret_access_key));
  for (const auto& [k, v] : headers) request.set(k, v);
  ASSIGN_OR_RETURN(const http::Client client,
                   http::Client::Create(http::ClientOptions{.read_timeout = read_timeout}));
  const std::string target_url = settings.endpoint + std::string(request.target());
  return client.FetchBlocking(target_url, std::move(request));
}

std::string RestJsonErrorOf(const http::Response& response) {
  if (response.result_int() < 300) return "";
  std::string message = response.body();
  boost::system::error_code ec;
  const boost::json::value body = boost::json::parse(response.body(), ec);
  if (!ec && body.is_object()) {
    if (const auto* m = body.as_object().if_contains("message"); m && m->is_string()) {
      message = m->as_string().c_str();
    }
  }
  return std::string(response["x-amzn-ErrorType"]) + " (HTTP " +
         std::to_string(response.result_int()) + "): " + message;
}

std::optional<boost::json::object> CallRestJson(const ClientSettings& settings, http::Verb verb,
                                                const std::string& target, std::string body,
                                                std::string_view content_type,
                                                std::string_view command,
                                                std::chrono::milliseconds read_timeout) {
  http::Request request(verb, target, 11);
  if (!content_type.empty()) request.set(http::Field::content_type, content_type);
  request.body() = std::move(body);
  auto response = SendSigned(settings, "moatless", std::move(request), read_timeout);
  if (!response.ok()) {
    std::cerr << "moatless " << command << ": " << response.status().message() << "\n";
    return std::nullopt;
  }
  if (std::string error = RestJsonErrorOf(*response); !error.empty()) {
    std::cerr << "moatless " << command << ": " << error << "\n";
    return std::nullopt;
  }
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(response->body(), ec);
  if (ec || !value.is_object()) {
    std::cerr << "moatless " << command << ": the server answered something that is not JSON\n";
    return std::nullopt;
  }
  return std::move(value.as_object());
}

core::Result<boost::property_tree::ptree> IamClient::Call(
    const std::string& action, const std::vector<std::pair<std::string, std::string>>& params) {
  std::string body = "Action=" + FormEncode(action) + "&Version=2010-05-08";
  for (const auto& [k, v] : params) body += "&" + FormEncode(k) + "=" + FormEncode(v);
  http::Request request = http::MakeRequest(http::Verb::post, "/", body,
                                            "application/x-www-form-urlencoded; charset=utf-8");
  ASSIGN_OR_RETURN(const http::Response response, SendSigned(settings_, "iam", std::move(request)));
  boost::property_tree::ptree tree;
  try {
    std::istringstream in(response.body());
    boost::property_tree::read_xml(in, tree);
  } catch (const std::exception&) {
    return core::UnavailableError("the server at " + settings_.endpoint +
                                  " did not answer with AWS XML (HTTP " +
                                  std::to_string(response.result_int()) + ")");
  }
  if (response.result_int() != 200) {
    const std::string code = tree.get("ErrorResponse.Error.Code", "");
    const std::string message = tree.get("ErrorResponse.Error.Message", "");
    return core::Status(core::StatusCode::kPermissionDenied, message.empty() ? code : message)
        .WithAwsType(code.empty() ? "Unknown" : code);
  }
  return tree.get_child(action + "Response." + action + "Result", boost::property_tree::ptree());
}

}  // namespace moatless::cli
