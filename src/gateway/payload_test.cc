#include "gateway/payload.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <string>

#include "core/base64.h"

namespace moatless::gateway {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// Parses strictly (Boost.JSON's default refuses invalid UTF-8), so every event a test parses is
// also shown to be valid JSON.
json::value Parse(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << ec.message() << " in: " << text;
  return v;
}

json::object EventOf(const GatewayRequest& request, const json::object& authorizer = {}) {
  json::value v = Parse(BuildEvent(request, authorizer));
  EXPECT_TRUE(v.is_object());
  return v.is_object() ? v.get_object() : json::object();
}

// The string a JSON value holds (Boost.JSON compares values with std::string only through this).
std::string Str(const json::value& v) {
  return v.is_string() ? std::string(v.get_string()) : "<not a string: " + json::serialize(v) + ">";
}

core::WallTime FromEpochMs(std::int64_t ms) {
  return core::WallTime(std::chrono::milliseconds(ms));
}

GatewayRequest SimpleRequest() {
  GatewayRequest r;
  r.method = "GET";
  r.raw_path = "/notes";
  r.headers = {{"Host", "notes.example.com"}};
  r.source_ip = "203.0.113.7";
  r.route_key = "GET /notes";
  r.request_id = "req-1";
  r.time = FromEpochMs(1700000000000);
  r.account_id = "000000000000";
  r.api_id = "notes-dev";
  r.stage = "dev";
  r.domain_name = "notes.example.com";
  return r;
}

// ---- Golden: AWS's documented examples --------------------------------------------------------

// Verbatim from "Working with AWS Lambda proxy integrations for HTTP APIs"
// (awsdocs/amazon-api-gateway-developer-guide, doc_source/http-api-develop-integrations-lambda.md).
constexpr std::string_view kAwsEvent = R"({
  "version": "2.0",
  "routeKey": "$default",
  "rawPath": "/my/path",
  "rawQueryString": "parameter1=value1&parameter1=value2&parameter2=value",
  "cookies": [
    "cookie1",
    "cookie2"
  ],
  "headers": {
    "Header1": "value1",
    "Header2": "value1,value2"
  },
  "queryStringParameters": {
    "parameter1": "value1,value2",
    "parameter2": "value"
  },
  "requestContext": {
    "accountId": "123456789012",
    "apiId": "api-id",
    "authentication": {
      "clientCert": {
        "clientCertPem": "CERT_CONTENT",
        "subjectDN": "www.example.com",
        "issuerDN": "Example issuer",
        "serialNumber": "a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1",
        "validity": {
          "notBefore": "May 28 12:30:02 2019 GMT",
          "notAfter": "Aug  5 09:36:04 2021 GMT"
        }
      }
    },
    "authorizer": {
      "jwt": {
        "claims": {
          "claim1": "value1",
          "claim2": "value2"
        },
        "scopes": [
          "scope1",
          "scope2"
        ]
      },
      "lambda": {
        "exampleKey1": "exampleValue1",
        "exampleKey2": "exampleValue2"
      }
    },
    "domainName": "id.execute-api.us-east-1.amazonaws.com",
    "domainPrefix": "id",
    "http": {
      "method": "POST",
      "path": "/my/path",
      "protocol": "HTTP/1.1",
      "sourceIp": "IP",
      "userAgent": "agent"
    },
    "requestId": "id",
    "routeKey": "$default",
    "stage": "$default",
    "time": "12/Mar/2020:19:03:58 +0000",
    "timeEpoch": 1583348638390
  },
  "body": "Hello from Lambda",
  "pathParameters": {
    "parameter1": "value1"
  },
  "isBase64Encoded": false,
  "stageVariables": {
    "stageVariable1": "value1",
    "stageVariable2": "value2"
  }
})";

// Verbatim from "Working with AWS Lambda authorizers for HTTP APIs"
// (doc_source/http-api-lambda-authorizer.md), payload format 2.0.
constexpr std::string_view kAwsAuthorizerEvent = R"({
  "version": "2.0",
  "type": "REQUEST",
  "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request",
  "identitySource": ["user1", "123"],
  "routeKey": "$default",
  "rawPath": "/my/path",
  "rawQueryString": "parameter1=value1&parameter1=value2&parameter2=value",
  "cookies": ["cookie1", "cookie2"],
  "headers": {
    "Header1": "value1",
    "Header2": "value2"
  },
  "queryStringParameters": {
    "parameter1": "value1,value2",
    "parameter2": "value"
  },
  "requestContext": {
    "accountId": "123456789012",
    "apiId": "api-id",
    "authentication": {
      "clientCert": {
        "clientCertPem": "CERT_CONTENT",
        "subjectDN": "www.example.com",
        "issuerDN": "Example issuer",
        "serialNumber": "a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1",
        "validity": {
          "notBefore": "May 28 12:30:02 2019 GMT",
          "notAfter": "Aug  5 09:36:04 2021 GMT"
        }
      }
    },
    "domainName": "id.execute-api.us-east-1.amazonaws.com",
    "domainPrefix": "id",
    "http": {
      "method": "POST",
      "path": "/my/path",
      "protocol": "HTTP/1.1",
      "sourceIp": "IP",
      "userAgent": "agent"
    },
    "requestId": "id",
    "routeKey": "$default",
    "stage": "$default",
    "time": "12/Mar/2020:19:03:58 +0000",
    "timeEpoch": 1583348638390
  },
  "pathParameters": { "parameter1": "value1" },
  "stageVariables": { "stageVariable1": "value1", "stageVariable2": "value2" }
})";

// The request behind both AWS examples.
GatewayRequest AwsExampleRequest(std::string_view header2) {
  GatewayRequest r;
  r.method = "POST";
  r.raw_path = "/my/path";
  r.raw_query = "parameter1=value1&parameter1=value2&parameter2=value";
  r.headers = {{"Header1", "value1"}};
  if (header2 == "value1,value2") {
    r.headers.emplace_back("Header2", "value1");
    r.headers.emplace_back("Header2", "value2");
  } else {
    r.headers.emplace_back("Header2", std::string(header2));
  }
  r.headers.emplace_back("Cookie", "cookie1; cookie2");
  r.headers.emplace_back("User-Agent", "agent");
  r.body = "Hello from Lambda";
  r.source_ip = "IP";
  r.route_key = "$default";
  r.path_parameters = {{"parameter1", "value1"}};
  r.request_id = "id";
  r.time = FromEpochMs(1583348638390);
  r.account_id = "123456789012";
  r.api_id = "api-id";
  r.stage = "$default";
  r.domain_name = "id.execute-api.us-east-1.amazonaws.com";
  return r;
}

// Brings AWS's example to what the service really sends, each step for a documented reason:
// - stageVariables and requestContext.authentication are fields moatless does not produce (no
//   stage variables, no mutual TLS);
// - header names are lower-cased: the example capitalises them, but the same page's rule and the
//   live service lower-case them;
// - headers gain "user-agent": the example's requestContext.http.userAgent comes from that header,
//   which the example leaves out of headers;
// - time becomes "04/Mar/2020:19:03:58 +0000": the example's time (12 March) and timeEpoch
//   (1583348638390 = 2020-03-04T19:03:58.390Z) disagree; both come from one instant here.
// Everything else must match exactly, and nothing may be added.
json::object AdjustAwsExample(std::string_view text) {
  json::object expected = Parse(text).as_object();
  expected.erase("stageVariables");
  json::object& context = expected["requestContext"].as_object();
  context.erase("authentication");
  context["time"] = "04/Mar/2020:19:03:58 +0000";
  json::object headers;
  for (const auto& [name, value] : expected["headers"].as_object()) {
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    headers[lower] = value;
  }
  headers["user-agent"] = "agent";
  expected["headers"] = std::move(headers);
  return expected;
}

// Compares field by field so that a failure names the field.
void ExpectSameJson(const json::value& expected, const json::value& actual,
                    const std::string& path) {
  if (expected.is_object() && actual.is_object()) {
    for (const auto& [key, value] : expected.get_object()) {
      const json::value* got = actual.get_object().if_contains(key);
      if (got == nullptr) {
        ADD_FAILURE() << "missing " << path << "." << key;
        continue;
      }
      ExpectSameJson(value, *got, path + "." + std::string(key));
    }
    for (const auto& [key, value] : actual.get_object()) {
      EXPECT_TRUE(expected.get_object().contains(key))
          << "unexpected " << path << "." << key << " = " << json::serialize(value);
    }
    return;
  }
  EXPECT_EQ(expected, actual) << "at " << path << ": expected " << json::serialize(expected)
                              << ", got " << json::serialize(actual);
}

TEST(PayloadGoldenTest, EventMatchesAwsExample) {
  json::object authorizer = Parse(R"({
    "jwt": {"claims": {"claim1": "value1", "claim2": "value2"}, "scopes": ["scope1", "scope2"]},
    "lambda": {"exampleKey1": "exampleValue1", "exampleKey2": "exampleValue2"}
  })")
                                .as_object();
  const json::object actual = EventOf(AwsExampleRequest("value1,value2"), authorizer);
  const json::object expected = AdjustAwsExample(kAwsEvent);
  ExpectSameJson(expected, actual, "event");
  // Spot checks, so that the comparison above cannot pass vacuously.
  EXPECT_EQ(actual.at("version"), "2.0");
  EXPECT_EQ(actual.at("headers").at("header2"), "value1,value2");
  EXPECT_EQ(actual.at("cookies"), Parse(R"(["cookie1","cookie2"])"));
  EXPECT_EQ(actual.at("queryStringParameters").at("parameter1"), "value1,value2");
  EXPECT_EQ(actual.at("requestContext").at("timeEpoch"), 1583348638390);
  EXPECT_EQ(actual.at("requestContext").at("authorizer").at("jwt").at("scopes").at(1), "scope2");
  EXPECT_EQ(actual.at("body"), "Hello from Lambda");
  EXPECT_EQ(actual.at("isBase64Encoded"), false);
}

TEST(PayloadGoldenTest, AuthorizerEventMatchesAwsExample) {
  const std::string text = BuildAuthorizerEvent(
      AwsExampleRequest("value2"),
      "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request", {"user1", "123"});
  const json::value actual = Parse(text);
  ExpectSameJson(AdjustAwsExample(kAwsAuthorizerEvent), actual, "event");
  EXPECT_EQ(actual.at("type"), "REQUEST");
  EXPECT_EQ(actual.at("routeArn"),
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request");
  EXPECT_EQ(actual.at("identitySource"), Parse(R"(["user1","123"])"));
  // AWS's authorizer event carries no body, even though this request has one.
  EXPECT_FALSE(actual.get_object().contains("body"));
  EXPECT_FALSE(actual.get_object().contains("isBase64Encoded"));
  EXPECT_FALSE(actual.at("requestContext").get_object().contains("authorizer"));
}

// ---- Event fields -----------------------------------------------------------------------------

TEST(PayloadEventTest, HeaderNamesLowerCasedAndRepeatsJoinedInOrder) {
  GatewayRequest r = SimpleRequest();
  r.headers = {{"X-Forwarded-For", "198.51.100.1"},
               {"Accept", "text/html"},
               {"x-forwarded-for", "198.51.100.2"},
               {"ACCEPT", "application/json"},
               {"X-Forwarded-FOR", "198.51.100.3"}};
  const json::object event = EventOf(r);
  const json::object& headers = event.at("headers").as_object();
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_EQ(headers.at("x-forwarded-for"), "198.51.100.1,198.51.100.2,198.51.100.3");
  EXPECT_EQ(headers.at("accept"), "text/html,application/json");
  EXPECT_EQ(headers.begin()->key(), "x-forwarded-for");  // order of first appearance
}

TEST(PayloadEventTest, CookiesCollectedAndRemovedFromHeaders) {
  GatewayRequest r = SimpleRequest();
  r.headers = {
      {"Cookie", " a=1;b=2 ; ;c=x y"}, {"Accept", "*/*"}, {"cookie", "d=4"}, {"COOKIE", "  ;  "}};
  const json::object event = EventOf(r);
  EXPECT_EQ(event.at("cookies"), Parse(R"(["a=1","b=2","c=x y","d=4"])"));
  const json::object& headers = event.at("headers").as_object();
  EXPECT_FALSE(headers.contains("cookie"));
  EXPECT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers.at("accept"), "*/*");
}

TEST(PayloadEventTest, CookieHeaderWithoutCookiesLeavesNoCookiesKey) {
  GatewayRequest r = SimpleRequest();
  r.headers = {{"Cookie", " ; "}};
  const json::object event = EventOf(r);
  EXPECT_FALSE(event.contains("cookies"));
  EXPECT_TRUE(event.at("headers").as_object().empty());
}

TEST(PayloadEventTest, QueryStringDecoded) {
  GatewayRequest r = SimpleRequest();
  r.raw_query = "a=1&a=2&b=x+y%20z&flag&d=%2B%26&e%3Dq=v=w&&=nameless&f=%zz+1&g=&h=caf%C3%A9";
  const json::object event = EventOf(r);
  EXPECT_EQ(Str(event.at("rawQueryString")), r.raw_query);  // raw, untouched
  const json::object& q = event.at("queryStringParameters").as_object();
  EXPECT_EQ(q.at("a"), "1,2");
  EXPECT_EQ(q.at("b"), "x y z");  // '+' and %20 are both spaces
  EXPECT_EQ(q.at("flag"), "");    // a name without '='
  EXPECT_EQ(q.at("d"), "+&");     // escaped '+' and '&' stay literal
  EXPECT_EQ(q.at("e=q"), "v=w");  // split at the first '=' after decoding the name alone
  EXPECT_EQ(q.at("f"), "%zz 1");  // a malformed escape passes undecoded
  EXPECT_EQ(q.at("g"), "");
  EXPECT_EQ(q.at("h"), "caf\xC3\xA9");
  EXPECT_FALSE(q.contains(""));  // the empty name is dropped
  EXPECT_EQ(q.size(), 8u);
}

TEST(PayloadEventTest, RepeatedQueryNameWithoutValueJoinsEmptyParts) {
  GatewayRequest r = SimpleRequest();
  r.raw_query = "t&t=x&t";
  const json::object event = EventOf(r);
  EXPECT_EQ(event.at("queryStringParameters").at("t"), ",x,");
}

TEST(PayloadEventTest, AbsentPartsLeaveNoKeys) {
  GatewayRequest r = SimpleRequest();
  r.raw_query = "&&";  // a query with no parameters
  const json::object event = EventOf(r);
  EXPECT_FALSE(event.contains("queryStringParameters"));
  EXPECT_FALSE(event.contains("pathParameters"));
  EXPECT_FALSE(event.contains("body"));
  EXPECT_FALSE(event.contains("cookies"));
  EXPECT_FALSE(event.contains("stageVariables"));
  EXPECT_FALSE(event.at("requestContext").as_object().contains("authorizer"));
  EXPECT_EQ(event.at("isBase64Encoded"), false);
  EXPECT_EQ(event.at("rawQueryString"), "&&");
  EXPECT_EQ(event.at("headers").at("host"), "notes.example.com");
}

TEST(PayloadEventTest, RequestContextFields) {
  GatewayRequest r = SimpleRequest();
  r.method = "DELETE";
  r.raw_path = "/notes/a%20b";
  r.route_key = "DELETE /notes/{id}";
  r.path_parameters = {{"id", "a b"}};
  r.headers.emplace_back("User-Agent", "curl/8.0");
  json::object authorizer;
  authorizer["lambda"] = Parse(R"({"user":"alice","n":1})");
  const json::object event = EventOf(r, authorizer);
  EXPECT_EQ(event.at("routeKey"), "DELETE /notes/{id}");
  EXPECT_EQ(event.at("rawPath"), "/notes/a%20b");
  EXPECT_EQ(event.at("pathParameters"), Parse(R"({"id":"a b"})"));
  const json::object& context = event.at("requestContext").as_object();
  EXPECT_EQ(context.at("accountId"), "000000000000");
  EXPECT_EQ(context.at("apiId"), "notes-dev");
  EXPECT_EQ(context.at("authorizer"), Parse(R"({"lambda":{"user":"alice","n":1}})"));
  EXPECT_EQ(context.at("domainName"), "notes.example.com");
  EXPECT_EQ(context.at("domainPrefix"), "notes");
  EXPECT_EQ(context.at("http"), Parse(R"({"method":"DELETE","path":"/notes/a%20b",
      "protocol":"HTTP/1.1","sourceIp":"203.0.113.7","userAgent":"curl/8.0"})"));
  EXPECT_EQ(context.at("requestId"), "req-1");
  EXPECT_EQ(context.at("routeKey"), "DELETE /notes/{id}");
  EXPECT_EQ(context.at("stage"), "dev");
  EXPECT_EQ(context.at("timeEpoch"), 1700000000000);
  EXPECT_EQ(context.at("time"), "14/Nov/2023:22:13:20 +0000");
  EXPECT_EQ(context.size(), 11u);
}

TEST(PayloadEventTest, UserAgentEmptyWhenAbsentAndDomainPrefixWithoutDots) {
  GatewayRequest r = SimpleRequest();
  r.headers.clear();
  r.domain_name = "localhost";
  const json::object event = EventOf(r);
  EXPECT_EQ(event.at("requestContext").at("http").at("userAgent"), "");
  EXPECT_EQ(event.at("requestContext").at("domainPrefix"), "localhost");
  r.domain_name = "";
  const json::object no_host = EventOf(r);
  EXPECT_EQ(no_host.at("requestContext").at("domainName"), "");
  EXPECT_EQ(no_host.at("requestContext").at("domainPrefix"), "");
}

TEST(PayloadEventTest, BinaryBodyIsBase64AndRoundTrips) {
  GatewayRequest r = SimpleRequest();
  r.method = "PUT";
  const std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\x01\0\xff\xfe\0", 24);
  ASSERT_EQ(png.size(), 24u);
  r.body = png;
  r.headers.emplace_back("Content-Type", "image/png");
  const json::object event = EventOf(r);
  EXPECT_EQ(event.at("isBase64Encoded"), true);
  const std::optional<std::string> decoded =
      core::Base64Decode(std::string(event.at("body").as_string()));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, png);
}

TEST(PayloadEventTest, Utf8JsonBodyTravelsAsText) {
  GatewayRequest r = SimpleRequest();
  r.body = "{\"title\":\"caf\xC3\xA9 \xE2\x98\x95 \xF0\x9F\x98\x80\",\"tab\":\"\\t\"}";
  r.headers.emplace_back("content-type", "Application/JSON; charset=utf-8");
  const json::object event = EventOf(r);
  EXPECT_EQ(event.at("isBase64Encoded"), false);
  EXPECT_EQ(Str(event.at("body")), r.body);
}

TEST(PayloadEventTest, InvalidUtf8TextBodyIsBase64) {
  GatewayRequest r = SimpleRequest();
  r.body = "caf\xE9";  // Latin-1, not UTF-8
  r.headers.emplace_back("Content-Type", "text/plain");
  const json::object event = EventOf(r);
  EXPECT_EQ(event.at("isBase64Encoded"), true);
  EXPECT_EQ(core::Base64Decode(std::string(event.at("body").as_string())), r.body);
}

TEST(PayloadEventTest, ContentTypeDecidesTextOrBase64) {
  const std::pair<const char*, bool> cases[] = {
      {"text/plain", false},
      {"text/html; charset=utf-8", false},
      {"application/json", false},
      {"application/problem+json", false},
      {"application/vnd.api+json", false},
      {"application/xml", false},
      {"application/atom+xml", false},
      {"application/javascript", false},
      {"application/x-www-form-urlencoded", false},
      {"  APPLICATION/JSON  ", false},
      {"application/octet-stream", true},
      {"image/png", true},
      {"multipart/form-data; boundary=x", true},
      {"application/jsonl", true},
      {"application/pdf", true},
      {"image/svg+xml", true},  // +xml counts under application/ only
  };
  for (const auto& [type, base64] : cases) {
    GatewayRequest r = SimpleRequest();
    r.body = "hello";
    r.headers.emplace_back("Content-Type", type);
    const json::object event = EventOf(r);
    EXPECT_EQ(event.at("isBase64Encoded"), base64) << type;
    EXPECT_EQ(Str(event.at("body")), base64 ? core::Base64Encode("hello") : std::string("hello"))
        << type;
  }
  GatewayRequest none = SimpleRequest();  // no content-type at all: text
  none.body = "hello";
  EXPECT_EQ(EventOf(none).at("isBase64Encoded"), false);
}

TEST(PayloadEventTest, TimeFormatting) {
  using std::chrono::sys_days;
  EXPECT_EQ(FormatRequestTime(sys_days{std::chrono::year{2020} / 3 / 12} + 19h + 3min + 58s),
            "12/Mar/2020:19:03:58 +0000");
  EXPECT_EQ(FormatRequestTime(core::WallTime{}), "01/Jan/1970:00:00:00 +0000");
  // Milliseconds are dropped, not rounded; leap day; the last second of a day.
  EXPECT_EQ(FormatRequestTime(FromEpochMs(1709251199999)), "29/Feb/2024:23:59:59 +0000");
  const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (unsigned m = 1; m <= 12; ++m) {
    const std::string text =
        FormatRequestTime(sys_days{std::chrono::year{2021} / m / 5} + 7h + 8min + 9s);
    EXPECT_EQ(text, std::string("05/") + months[m - 1] + "/2021:07:08:09 +0000");
  }

  GatewayRequest r = SimpleRequest();
  r.time = sys_days{std::chrono::year{2020} / 3 / 12} + 19h + 3min + 58s + 123ms;
  const json::object event = EventOf(r);
  EXPECT_EQ(event.at("requestContext").at("time"), "12/Mar/2020:19:03:58 +0000");
  EXPECT_EQ(event.at("requestContext").at("timeEpoch"), 1584039838123);
}

TEST(PayloadEventTest, InvalidUtf8IsReplacedSoTheEventStaysValidJson) {
  GatewayRequest r = SimpleRequest();
  r.raw_path = "/a\xFF";
  r.raw_query = "q=%FF&r=\xC3";
  r.headers = {
      {"X-Bad",
       "a\xFF"
       "b"},
      {"X-Truncated", "\xE2\x82"},        // a cut-off 3-byte sequence: one U+FFFD
      {"X-Surrogate", "\xED\xA0\x80"},    // an encoded surrogate: one U+FFFD per byte
      {"X-Overlong", "\xC0\xAF"},         // an overlong '/'
      {"X-Good", "caf\xC3\xA9"},          // valid UTF-8 untouched
      {"X-Controls", "q\"b\\s\x01\x7F"},  // escaped by Boost.JSON
      {"Cookie", "id=\xFE"},
  };
  r.path_parameters = {{"id", "\x80"}};
  const std::string text = BuildEvent(r, {});
  const json::object event = EventOf(r);  // parses strictly: the event is valid UTF-8 JSON
  const std::string fffd = "\xEF\xBF\xBD";
  const json::object& headers = event.at("headers").as_object();
  EXPECT_EQ(Str(headers.at("x-bad")), "a" + fffd + "b");
  EXPECT_EQ(Str(headers.at("x-truncated")), fffd);
  EXPECT_EQ(Str(headers.at("x-surrogate")), fffd + fffd + fffd);
  EXPECT_EQ(Str(headers.at("x-overlong")), fffd + fffd);
  EXPECT_EQ(headers.at("x-good"), "caf\xC3\xA9");
  EXPECT_EQ(headers.at("x-controls"), "q\"b\\s\x01\x7F");
  EXPECT_EQ(Str(event.at("rawPath")), "/a" + fffd);
  EXPECT_EQ(Str(event.at("requestContext").at("http").at("path")), "/a" + fffd);
  EXPECT_EQ(Str(event.at("rawQueryString")), "q=%FF&r=" + fffd);
  EXPECT_EQ(Str(event.at("queryStringParameters").at("q")), fffd);  // decoded, then replaced
  EXPECT_EQ(Str(event.at("cookies").at(0)), "id=" + fffd);
  EXPECT_EQ(Str(event.at("pathParameters").at("id")), fffd);
}

TEST(PayloadEventTest, InvalidUtf8InAuthorizerContextIsReplaced) {
  GatewayRequest r = SimpleRequest();
  json::object authorizer;
  authorizer["lambda"] = json::object{{"k\xFF", json::array{"v\xFF", 1}}};
  const json::object event = EventOf(r, authorizer);
  EXPECT_EQ(event.at("requestContext").at("authorizer"),
            Parse("{\"lambda\":{\"k\xEF\xBF\xBD\":[\"v\xEF\xBF\xBD\",1]}}"));
}

TEST(PayloadAuthorizerEventTest, TypeRouteArnAndIdentitySources) {
  GatewayRequest r = SimpleRequest();
  r.body = "secret payload";
  r.raw_query = "token=abc";
  const std::string arn = "arn:aws:execute-api:local:000000000000:notes-dev/dev/GET/notes";
  const json::value event =
      Parse(BuildAuthorizerEvent(r, arn, {"Bearer abc", "abc", "GET /notes"}));
  EXPECT_EQ(event.at("version"), "2.0");
  EXPECT_EQ(event.at("type"), "REQUEST");
  EXPECT_EQ(Str(event.at("routeArn")), arn);
  EXPECT_EQ(event.at("identitySource"), Parse(R"(["Bearer abc","abc","GET /notes"])"));
  EXPECT_EQ(event.at("routeKey"), "GET /notes");
  EXPECT_EQ(event.at("queryStringParameters").at("token"), "abc");
  EXPECT_EQ(event.at("requestContext").at("requestId"), "req-1");
  EXPECT_FALSE(event.get_object().contains("body"));

  const json::value empty = Parse(BuildAuthorizerEvent(r, arn, {}));
  EXPECT_EQ(empty.at("identitySource"), json::array());
}

// ---- MapResponse ------------------------------------------------------------------------------

using Headers = std::vector<std::pair<std::string, std::string>>;

GatewayResponse MapOk(std::string_view payload) {
  core::Result<GatewayResponse> result = MapResponse(payload);
  EXPECT_TRUE(result.ok()) << result.status() << " for " << payload;
  return result.ok() ? std::move(result).value() : GatewayResponse{};
}

void ExpectInvalid(std::string_view payload) {
  const core::Result<GatewayResponse> result = MapResponse(payload);
  ASSERT_FALSE(result.ok()) << "accepted: " << payload;
  EXPECT_EQ(result.status().code(), core::StatusCode::kInvalidArgument)
      << result.status() << " for " << payload;
}

TEST(PayloadResponseTest, InferenceRuleForJsonWithoutStatusCode) {
  const Headers json_type = {{"content-type", "application/json"}};
  for (std::string_view payload :
       {std::string_view(R"("Hello from Lambda!")"),
        std::string_view(R"({ "message": "Hello from Lambda!" })"),
        std::string_view(R"([1, {"statusCode": 404}])"), std::string_view(" 42 \n"),
        std::string_view("true"), std::string_view("null"),
        std::string_view(R"({"body":"x","headers":{}})")}) {
    const GatewayResponse response = MapOk(payload);
    EXPECT_EQ(response.status, 200u) << payload;
    EXPECT_EQ(response.headers, json_type) << payload;
    EXPECT_EQ(response.body, payload);  // exactly as received, whitespace and all
  }
  EXPECT_EQ(MapOk(R"("Hello from Lambda!")").body, "\"Hello from Lambda!\"");
}

TEST(PayloadResponseTest, StructuredResponse) {
  const GatewayResponse response = MapOk(R"({
    "statusCode": 201,
    "headers": {"Content-Type": "text/plain", "X-Count": 42, "X-Ratio": 1.5, "X-Big": 3.0,
                "X-Flag": true, "X-Off": false},
    "multiValueHeaders": {"X-Ignored": ["a", "b"]},
    "cookies": ["session=abc; Path=/; HttpOnly", "theme=dark"],
    "body": "created",
    "isBase64Encoded": false
  })");
  EXPECT_EQ(response.status, 201u);
  const Headers expected = {{"Content-Type", "text/plain"},
                            {"X-Count", "42"},
                            {"X-Ratio", "1.5"},
                            {"X-Big", "3"},
                            {"X-Flag", "true"},
                            {"X-Off", "false"},
                            {"set-cookie", "session=abc; Path=/; HttpOnly"},
                            {"set-cookie", "theme=dark"}};
  EXPECT_EQ(response.headers, expected);
  EXPECT_EQ(response.body, "created");
}

TEST(PayloadResponseTest, StructuredMinimalAndNulls) {
  GatewayResponse response = MapOk(R"({"statusCode": 204})");
  EXPECT_EQ(response.status, 204u);
  EXPECT_TRUE(response.headers.empty());
  EXPECT_EQ(response.body, "");
  response = MapOk(
      R"({"statusCode":404,"headers":null,"cookies":null,"body":null,"isBase64Encoded":null})");
  EXPECT_EQ(response.status, 404u);
  EXPECT_TRUE(response.headers.empty());
  EXPECT_EQ(response.body, "");
  EXPECT_EQ(MapOk(R"({"statusCode":200.0})").status, 200u);  // Python's json.dumps(200.0)
  EXPECT_EQ(MapOk(R"({"statusCode":100})").status, 100u);
  EXPECT_EQ(MapOk(R"({"statusCode":599})").status, 599u);
}

TEST(PayloadResponseTest, MultipleCookiesBecomeMultipleSetCookieHeaders) {
  const GatewayResponse response =
      MapOk(R"({"statusCode":200,"headers":{"set-cookie":"a=0"},"cookies":["a=1","b=2","c=3"]})");
  const Headers expected = {
      {"set-cookie", "a=0"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}, {"set-cookie", "c=3"}};
  EXPECT_EQ(response.headers, expected);
}

TEST(PayloadResponseTest, Base64BodyDecoded) {
  const std::string bytes("\x89PNG\0\x01\xff\xfe\0end", 12);
  ASSERT_EQ(bytes.size(), 12u);
  const std::string payload = R"({"statusCode":200,"headers":{"content-type":"image/png"},)"
                              R"("isBase64Encoded":true,"body":")" +
                              core::Base64Encode(bytes) + "\"}";
  const GatewayResponse response = MapOk(payload);
  EXPECT_EQ(response.body, bytes);
  EXPECT_EQ(response.headers, (Headers{{"content-type", "image/png"}}));
  EXPECT_EQ(MapOk(R"({"statusCode":200,"isBase64Encoded":true,"body":""})").body, "");
  EXPECT_EQ(MapOk(R"({"statusCode":200,"isBase64Encoded":true})").body, "");
}

TEST(PayloadResponseTest, HopByHopAndFramingHeadersDropped) {
  const GatewayResponse response = MapOk(R"({"statusCode":200,"headers":{
    "Connection":"close","keep-alive":"timeout=5","Transfer-Encoding":"chunked",
    "Content-Length":"999","Upgrade":"websocket","TE":"trailers","Trailer":"x",
    "Proxy-Authenticate":"Basic","proxy-connection":"keep-alive",
    "X-Kept":"yes","Content-Type":"text/plain","Tea":"earl grey"},"body":"ok"})");
  const Headers expected = {
      {"X-Kept", "yes"}, {"Content-Type", "text/plain"}, {"Tea", "earl grey"}};
  EXPECT_EQ(response.headers, expected);
  EXPECT_EQ(response.body, "ok");
}

TEST(PayloadResponseTest, BadStatusCodes) {
  ExpectInvalid(R"({"statusCode":99})");
  ExpectInvalid(R"({"statusCode":600})");
  ExpectInvalid(R"({"statusCode":-200})");
  ExpectInvalid(R"({"statusCode":200.5})");
  ExpectInvalid(R"({"statusCode":1e300})");
  ExpectInvalid(R"({"statusCode":18446744073709551615})");
  ExpectInvalid(R"({"statusCode":"200"})");
  ExpectInvalid(R"({"statusCode":null})");
  ExpectInvalid(R"({"statusCode":true})");
  ExpectInvalid(R"({"statusCode":[200]})");
}

TEST(PayloadResponseTest, BadHeaders) {
  ExpectInvalid(R"({"statusCode":200,"headers":["a","b"]})");
  ExpectInvalid(R"({"statusCode":200,"headers":"x-a: b"})");
  ExpectInvalid(R"({"statusCode":200,"headers":{"x-a":{"b":1}}})");
  ExpectInvalid(R"({"statusCode":200,"headers":{"x-a":["b"]}})");
  ExpectInvalid(R"({"statusCode":200,"headers":{"x-a":null}})");
  ExpectInvalid(R"({"statusCode":200,"headers":{"x-a":"b\r\nSet-Cookie: evil=1"}})");
  ExpectInvalid(R"({"statusCode":200,"headers":{"x-a":"b\nc"}})");
  ExpectInvalid(R"({"statusCode":200,"headers":{"x-a":"b\rc"}})");
  ExpectInvalid(R"({"statusCode":200,"headers":{"x-a":"b\u0000c"}})");
  ExpectInvalid(R"({"statusCode":200,"headers":{"bad name":"v"}})");
  ExpectInvalid(R"({"statusCode":200,"headers":{"x:y":"v"}})");
  ExpectInvalid(R"({"statusCode":200,"headers":{"":"v"}})");
  ExpectInvalid(R"({"statusCode":200,"headers":{"x-\u00e9":"v"}})");
  // A dropped header is still checked: its CR/LF says the function is broken or hostile.
  ExpectInvalid(R"({"statusCode":200,"headers":{"content-length":"1\r\n\r\nHTTP/1.1 200"}})");
}

TEST(PayloadResponseTest, BadCookiesBodyAndFlags) {
  ExpectInvalid(R"({"statusCode":200,"cookies":"a=1"})");
  ExpectInvalid(R"({"statusCode":200,"cookies":["a=1",2]})");
  ExpectInvalid(R"({"statusCode":200,"cookies":["a=1\r\nX-Evil: 1"]})");
  ExpectInvalid(R"({"statusCode":200,"body":{"a":1}})");
  ExpectInvalid(R"({"statusCode":200,"body":42})");
  ExpectInvalid(R"({"statusCode":200,"isBase64Encoded":"true","body":"aGk="})");
}

TEST(PayloadResponseTest, InvalidBase64Body) {
  ExpectInvalid(R"({"statusCode":200,"isBase64Encoded":true,"body":"not base64!"})");
  ExpectInvalid(R"({"statusCode":200,"isBase64Encoded":true,"body":"aGk"})");  // no padding
  // The same text is fine as a plain body.
  EXPECT_EQ(MapOk(R"({"statusCode":200,"isBase64Encoded":false,"body":"not base64!"})").body,
            "not base64!");
}

TEST(PayloadResponseTest, NotJson) {
  ExpectInvalid("");
  ExpectInvalid("Hello from Lambda!");
  ExpectInvalid("{");
  ExpectInvalid(R"({"statusCode":200} {})");
  ExpectInvalid(R"({"statusCode":200,})");
  ExpectInvalid("\"caf\xE9\"");  // invalid UTF-8 in a string
  ExpectInvalid("// comment\n{}");
}

TEST(PayloadResponseTest, NestingDepthBounded) {
  const auto nested = [](int depth) {
    return std::string(static_cast<std::size_t>(depth), '[') +
           std::string(static_cast<std::size_t>(depth), ']');
  };
  EXPECT_EQ(MapOk(nested(900)).body, nested(900));
  ExpectInvalid(nested(100000));
}

}  // namespace
}  // namespace moatless::gateway
