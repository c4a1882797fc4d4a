// libFuzzer target for the HTTP request path: arbitrary bytes, delivered in chunks the way a socket
// delivers them, go through exactly what the server runs on them (request_parser.h: the Beast
// parser as ConfigureParser sets it up, ValidateRequest on each header, the body read after it),
// then through a Router with patterns of every kind. Requests follow each other on the "connection"
// as long as keep-alive says so, which exercises pipelining and the parser's framing.
//
// Besides the sanitizers, it checks the promises the request path makes: a request that passes
// validation has no traversal, NUL or malformed escape in its path, no body beyond the limit, and
// its route parameters decode to the same guarantees.
//
// Input layout: byte 0 picks the chunk size (0: everything at once), byte 1 scales the limits,
// the rest is the byte stream.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/path.h"
#include "http/request_parser.h"
#include "http/router.h"
#include "http/status_response.h"

namespace {

using moatless::http::Handler;
using moatless::http::Request;
using moatless::http::RequestContext;
using moatless::http::Response;
using moatless::http::Router;

const Router& SampleRouter() {
  // Built once per process: a harness may keep state that the code under test may not.
  static const Router* router = [] {
    auto* r = new Router();
    const Handler none = [](Request&, RequestContext&) -> boost::asio::awaitable<Response> {
      co_return Response();
    };
    for (const char* method : {"GET", "POST"}) {
      (void)r->Add(method, "/", none);
      (void)r->Add(method, "/2015-03-31/functions/{name}/invocations", none);
      (void)r->Add(method, "/2015-03-31/functions/{name}", none);
      (void)r->Add(method, "/static/{path+}", none);
      (void)r->Add(method, "/static/index.html", none);
      (void)r->Add(method, "/a/{x}/b/{y}", none);
    }
    (void)r->Add("ANY", "/proxy/{rest+}", none);
    (void)r->Add("DELETE", "/a/{x}/c", none);
    return r;
  }();
  return *router;
}

void Require(bool condition) {
  if (!condition) __builtin_trap();
}

bool IsDotSegment(std::string_view s) { return s == "." || s == ".."; }

// What a validated request promises to everything after it.
void CheckValidRequest(const Request& req) {
  const std::string_view target = req.target();
  if (target == "*") return;
  const auto segments =
      moatless::http::DecodePathSegments(moatless::http::SplitTarget(target).path);
  Require(segments.ok());
  for (const auto& segment : *segments) {
    Require(!IsDotSegment(segment));
    Require(segment.find('\0') == std::string::npos);
  }
  const Router::Match match = SampleRouter().Find(req.method_string(), target);
  for (const auto& [name, value] : match.params) {
    Require(!value.empty());
    Require(value.find('\0') == std::string::npos);
  }
  if (match.handler == nullptr) {
    // The router answers for itself; building that response must work for any message.
    const Response res = match.method_not_allowed
                             ? moatless::http::MethodNotAllowedResponse(match.allow, "fuzz")
                             : moatless::http::StatusResponse(match.error, "fuzz");
    Require(res.result_int() >= 400);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t chunk = data[0] == 0 ? size : data[0];
  moatless::http::ServerOptions options;
  options.max_header_bytes = 256 + std::size_t{data[1]} * 64;  // 256 B .. 16 KiB
  options.max_body_bytes = std::size_t{data[1]} * 32;          // 0 .. 8 KiB
  std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);

  std::string buffered;  // what the server's read buffer would hold
  for (int requests = 0; requests < 64; ++requests) {
    moatless::http::RequestParser parser;
    moatless::http::ConfigureParser(parser, options);
    bool validated = false;
    for (;;) {
      if (!buffered.empty()) {
        boost::beast::error_code ec;
        const std::size_t used =
            parser.put(boost::asio::buffer(buffered.data(), buffered.size()), ec);
        Require(used <= buffered.size());
        buffered.erase(0, used);
        if (ec && ec != boost::beast::http::error::need_more) {
          (void)moatless::http::ClassifyReadError(ec);  // the server answers 4xx and closes
          return 0;
        }
        if (parser.is_header_done() && !validated) {
          validated = true;
          if (!moatless::http::ValidateRequest(parser.get()).ok()) return 0;  // 400 and close
          CheckValidRequest(parser.get());
        }
        if (parser.is_done()) break;
        if (!ec && used > 0) continue;
      }
      if (input.empty()) {
        if (parser.got_some()) {
          boost::beast::error_code ec;
          parser.put_eof(ec);
        }
        return 0;
      }
      const std::size_t n = std::min(chunk, input.size());
      buffered.append(input.substr(0, n));
      input.remove_prefix(n);
    }
    Request request = parser.release();
    Require(request.body().size() <= options.max_body_bytes);
    if (!request.keep_alive()) return 0;
  }
  return 0;
}
