// The API Gateway HTTP API payload format 2.0, both ways: BuildEvent turns a routed request into
// the event a function receives, BuildAuthorizerEvent into the event a REQUEST authorizer function
// receives, and MapResponse turns a function's response payload into the HTTP response the client
// gets. Existing Lambda code reads these shapes unchanged, so every field follows AWS's documented
// behaviour (see shared/reference/lambda-gateway.md §4.3, §4.4):
//
// - header names are lower-cased and repeated headers are joined with ","; every `cookie` header
//   is split on ";" into `cookies` (parts trimmed, empty parts dropped) and left out of `headers`;
// - `queryStringParameters` decodes names and values ('+' is a space, as in form encoding, then
//   %XX escapes); repeated names are joined with ","; a name without '=' gets ""; a part whose
//   name is empty is dropped; a name or value with a malformed escape is passed undecoded;
// - `cookies`, `queryStringParameters`, `pathParameters` and `body` appear only when non-empty,
//   `requestContext.authorizer` only when the caller passes a non-empty object;
// - the body travels as text (`isBase64Encoded` false) only when it is valid UTF-8 AND its
//   content-type is textual: none (or an empty one), text/*, application/json,
//   application/*+json, application/xml, application/*+xml, application/javascript or
//   application/x-www-form-urlencoded (parameters such as "; charset=" are ignored). Anything else
//   is base64 with `isBase64Encoded` true, so a function always gets the exact bytes back.
// - JSON strings must be UTF-8, and Boost.JSON would copy invalid bytes through as they are: every
//   string taken from the request (method, path, query, header names and values, cookies,
//   parameters, ids, and the strings of the authorizer object) has each invalid UTF-8 sequence
//   replaced by U+FFFD, so the event is always valid JSON whatever the client sent.
//
// Not produced: `stageVariables` (moatless has no stage variables) and
// `requestContext.authentication` (no mutual TLS client certificates).
//
// Stateless free functions over plain values; thread-safe.
#pragma once

#include <boost/json/object.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace moatless::gateway {

// What the gateway knows of one request once routed.
// requestContext.authentication.clientCert: the client certificate of a mutual TLS request.
struct ClientCertInfo {
  std::string pem;  // clientCertPem: the leaf
  std::string subject_dn;
  std::string issuer_dn;
  std::string serial_number;
  std::string not_before;  // validity.notBefore, e.g. "May 28 12:30:02 2019 GMT"
  std::string not_after;
};

struct GatewayRequest {
  std::string method;  // "GET"
  // As received, still percent-encoded, without the app/stage mapping prefix: "/notes/a%20b".
  std::string raw_path;
  std::string raw_query;  // after '?', without it, as received ("" when none)
  // As received, in order, any case, repeats allowed.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // raw bytes
  std::string protocol = "HTTP/1.1";
  std::string source_ip;
  std::string route_key;                               // "GET /notes/{id}" or "$default"
  std::map<std::string, std::string> path_parameters;  // decoded values
  std::string request_id;
  core::WallTime time;
  std::string account_id;
  std::string api_id;       // e.g. "notes-dev"
  std::string stage;        // e.g. "dev"
  std::string domain_name;  // the Host header's host ("" when none)
  // Set for requests of an mTLS app, once the certificate was verified against its truststore.
  std::optional<ClientCertInfo> client_cert;
};

// The payload 2.0 event as JSON text. `authorizer` becomes requestContext.authorizer
// ({"jwt":{"claims":…,"scopes":…}}, {"lambda":{…}} or {"iam":{…}}); omitted when empty.
std::string BuildEvent(const GatewayRequest& request, const boost::json::object& authorizer);

// The 2.0 REQUEST authorizer event: the event's shape plus "type":"REQUEST", "routeArn" and
// "identitySource" (the values of the authorizer's identity sources, in order). As in AWS's
// documented authorizer event, it carries neither the body (an authorizer decides on identity,
// and need not be handed a payload of up to the body limit) nor isBase64Encoded nor
// requestContext.authorizer.
std::string BuildAuthorizerEvent(const GatewayRequest& request, std::string_view route_arn,
                                 const std::vector<std::string>& identity_source);

// "12/Mar/2020:19:03:58 +0000": requestContext.time (UTC, English month names whatever the
// locale).
std::string FormatRequestTime(core::WallTime time);

struct GatewayResponse {
  unsigned status = 200;
  // In order; names as the function wrote them; several set-cookie allowed.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // raw bytes (already decoded when the function set isBase64Encoded)
};

// Maps a function's successful response payload (the bytes Lambda would return) to an HTTP
// response:
// - a JSON object with a "statusCode" key is a structured response: statusCode an integer in
//   100–599 (an integral number such as 200.0 counts); "headers" an object of string, number or
//   boolean values (numbers and booleans are written as JavaScript would), or null; "cookies" an
//   array of strings, each becoming a set-cookie header after the headers; "body" a string or
//   null; "isBase64Encoded" a boolean or null, and when true the body is base64-decoded.
//   "multiValueHeaders" (a 1.0 field) is ignored, as AWS does for 2.0.
// - any other valid JSON (an object without statusCode, an array, a string, a number, a boolean,
//   null) is the inference rule: 200, content-type: application/json, and the body is the payload
//   exactly as received.
// Headers a function must not set (connection, keep-alive, transfer-encoding, content-length,
// upgrade, te, trailer, proxy-*) are dropped: the server frames the response itself.
// InvalidArgument, with a message meant for the logs and never for the client, when the payload
// is not JSON (or nests deeper than 1000 levels), breaks a rule above, or names a header that is
// not an RFC 7230 token or gives a header or cookie value holding CR, LF or NUL.
core::Result<GatewayResponse> MapResponse(std::string_view function_payload);

}  // namespace moatless::gateway
