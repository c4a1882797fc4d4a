#include "http/request_parser.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

namespace moatless::http {
namespace {

struct Parsed {
  beast::error_code ec;     // from the parser
  core::Status validation;  // from ValidateRequest, when the header parsed
  bool header_done = false;
};

// Feeds `raw` to a server-configured parser the way the server reads: the header first, then
// validation, then the body.
Parsed Parse(const std::string& raw, const ServerOptions& options = {}) {
  RequestParser parser;
  ConfigureParser(parser, options);
  Parsed out;
  std::string_view rest = raw;
  while (!rest.empty() && !parser.is_done()) {
    const std::size_t used = parser.put(asio::buffer(rest.data(), rest.size()), out.ec);
    rest.remove_prefix(used);
    if (out.ec == beast::http::error::need_more) {
      out.ec = {};
      break;
    }
    if (out.ec) return out;
    if (parser.is_header_done() && !out.header_done) {
      out.header_done = true;
      out.validation = ValidateRequest(parser.get());
      if (!out.validation.ok()) return out;
    }
    if (used == 0) break;
  }
  return out;
}

bool Rejected(const std::string& raw) {
  const Parsed p = Parse(raw);
  return p.ec || !p.validation.ok();
}

TEST(RequestParserTest, AcceptsOrdinaryRequests) {
  EXPECT_FALSE(Rejected("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_FALSE(Rejected("GET /a?b=c&d HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_FALSE(Rejected("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_FALSE(Rejected("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
  EXPECT_FALSE(Rejected(
      "POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"));
  EXPECT_FALSE(
      Rejected("POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"));
  EXPECT_FALSE(Rejected("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"));
}

TEST(RequestParserTest, RejectsSmugglingShapes) {
  for (const char* raw : {
           "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
           "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
           "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nab",
           "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\nab",
           "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
           "chunked\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
           "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       }) {
    EXPECT_TRUE(Rejected(raw)) << raw;
  }
}

TEST(RequestParserTest, RejectsMalformedRequests) {
  for (const char* raw : {
           "GARBAGE\r\n\r\n",
           "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
           "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
           "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
           "GET /healthz HTTP/1.1\r\n\r\n",
           "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
           "GET /a/../healthz HTTP/1.1\r\nHost: x\r\n\r\n",
           "GET /a/%2e%2e/b HTTP/1.1\r\nHost: x\r\n\r\n",
           "GET /a%00 HTTP/1.1\r\nHost: x\r\n\r\n",
           "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n",
           "GET http://evil/ HTTP/1.1\r\nHost: x\r\n\r\n",
           "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
           "GET /a?x=\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
       }) {
    EXPECT_TRUE(Rejected(raw)) << raw;
  }
}

TEST(RequestParserTest, LimitsAndTheirClassification) {
  ServerOptions options;
  options.max_header_bytes = 1024;
  options.max_body_bytes = 10;
  Parsed p =
      Parse("GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(2000, 'a') + "\r\n\r\n", options);
  EXPECT_EQ(ClassifyReadError(p.ec), RejectReason::kHeaderTooLarge);
  // The Content-Length is refused with the header, before any body byte.
  p = Parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", options);
  EXPECT_EQ(ClassifyReadError(p.ec), RejectReason::kBodyTooLarge);
  p = Parse(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "b\r\nhello world\r\n0\r\n\r\n",
      options);
  EXPECT_EQ(ClassifyReadError(p.ec), RejectReason::kBodyTooLarge);
  p = Parse("NOT A REQUEST\r\n\r\n", options);
  EXPECT_EQ(ClassifyReadError(p.ec), RejectReason::kMalformed);
  EXPECT_EQ(ClassifyReadError(beast::http::error::end_of_stream), RejectReason::kNone);
  EXPECT_EQ(ClassifyReadError(asio::error::connection_reset), RejectReason::kNone);
}

}  // namespace
}  // namespace moatless::http
