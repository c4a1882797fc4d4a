// HTTP micro-benchmarks: the server's per-request CPU work outside the socket — parsing and
// validating a typical request with the server's parser configuration, and routing it.
#include <benchmark/benchmark.h>

#include <boost/asio/buffer.hpp>

#include "http/request_parser.h"
#include "http/router.h"

namespace moatless::http {
namespace {

constexpr std::string_view kRequest =
    "POST /2015-03-31/functions/hello-world/invocations HTTP/1.1\r\n"
    "Host: 127.0.0.1:8420\r\n"
    "User-Agent: aws-sdk-js/3.0.0 ua/2.0 os/linux lang/js md/nodejs#20.0.0\r\n"
    "Content-Type: application/json\r\n"
    "X-Amz-Date: 20260101T000000Z\r\n"
    "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/local/lambda/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date, "
    "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n"
    "Content-Length: 27\r\n"
    "\r\n"
    "{\"name\":\"moatless\",\"n\":42}\n";

void BM_ParseAndValidate(benchmark::State& state) {
  ServerOptions options;
  for (auto _ : state) {
    RequestParser parser;
    ConfigureParser(parser, options);
    beast::error_code ec;
    std::string_view rest = kRequest;
    while (!rest.empty() && !ec && !parser.is_done()) {
      rest.remove_prefix(parser.put(boost::asio::buffer(rest.data(), rest.size()), ec));
    }
    if (ec || !parser.is_done()) {
      state.SkipWithError("parse failed");
      break;
    }
    benchmark::DoNotOptimize(ValidateRequest(parser.get()));
  }
}
BENCHMARK(BM_ParseAndValidate);

Handler Noop() {
  return [](Request&, RequestContext&) -> asio::awaitable<Response> { co_return Response{}; };
}

void BM_RouterFind(benchmark::State& state) {
  Router router;
  for (const char* pattern :
       {"/healthz", "/readyz", "/metrics", "/2015-03-31/functions/{name}",
        "/2015-03-31/functions/{name}/invocations", "/2018-06-01/runtime/invocation/next",
        "/2018-06-01/runtime/invocation/{id}/response", "/static/{path+}"}) {
    (void)router.Add("POST", pattern, Noop());
    (void)router.Add("GET", pattern, Noop());
  }
  for (auto _ : state) {
    auto match = router.Find("POST", "/2015-03-31/functions/hello-world/invocations?Qualifier=1");
    benchmark::DoNotOptimize(match.handler);
  }
}
BENCHMARK(BM_RouterFind);

}  // namespace
}  // namespace moatless::http

BENCHMARK_MAIN();
