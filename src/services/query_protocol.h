// The AWS Query protocol (STS, IAM, SQS's classic form): requests are form-encoded parameters
// (`Action=AssumeRole&Version=2011-06-15&RoleArn=...`) in a POST body or a GET query string;
// responses are XML documents in the service's namespace, errors an <ErrorResponse>.
//
// ParseQueryRequest decodes the parameters (Boost.URL), rejecting malformed encodings, repeated
// parameters and oversized input. XmlWriter builds responses with every text escaped. Stateless;
// thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace moatless::services {

struct QueryRequest {
  std::string action;
  std::string version;
  std::map<std::string, std::string, std::less<>> params;  // everything but Action and Version

  // The parameter, or nullopt.
  std::optional<std::string> Get(std::string_view name) const;
  // The parameter, or a MissingParameter error naming it.
  core::Result<std::string> Require(std::string_view name) const;
  // An integer parameter: nullopt when absent, ValidationError when not an integer.
  core::Result<std::optional<std::int64_t>> GetInt(std::string_view name) const;
  // Tags as IAM and STS send them: Tags.member.N.Key / Tags.member.N.Value, N from 1.
  std::map<std::string, std::string> Tags() const;
};

// form: the body of a POST with Content-Type application/x-www-form-urlencoded, or the query
// string of a GET (without '?'). InvalidArgument (AWS type MalformedQueryString) on bad input.
core::Result<QueryRequest> ParseQueryRequest(std::string_view form);

// Minimal XML output with escaping; elements are closed in order by End().
class XmlWriter {
 public:
  XmlWriter();
  // <name xmlns="ns"> (ns omitted when empty)
  XmlWriter& Begin(std::string_view name, std::string_view ns = {});
  XmlWriter& End();
  // <name>escaped text</name>
  XmlWriter& Leaf(std::string_view name, std::string_view text);
  // The document; every Begin must have been ended.
  std::string Finish();

 private:
  std::string out_;
  std::vector<std::string> open_;
};

std::string XmlEscape(std::string_view text);

// <ErrorResponse><Error><Type>Sender|Receiver</Type><Code>..</Code><Message>..</Message></Error>
// <RequestId>..</RequestId></ErrorResponse>
// ns: the service's XML namespace, e.g. "https://sts.amazonaws.com/doc/2011-06-15/".
std::string QueryErrorXml(const core::Status& status, std::string_view request_id,
                          std::string_view ns);

}  // namespace moatless::services
