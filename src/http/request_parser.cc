#include "http/request_parser.h"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <cstdint>
#include <limits>

#include "http/path.h"

namespace moatless::http {
namespace {

std::size_t CountFields(const Request& req, Field field) {
  const auto range = req.equal_range(field);
  return static_cast<std::size_t>(std::distance(range.first, range.second));
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

void ConfigureParser(RequestParser& parser, const ServerOptions& options) {
  parser.header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(options.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
  parser.body_limit(static_cast<std::uint64_t>(options.max_body_bytes));
}

core::Status ValidateRequest(const Request& req) {
  const unsigned version = req.version();
  if (version != 10 && version != 11) {
    return core::InvalidArgumentError("unsupported HTTP version");
  }

  const std::size_t hosts = CountFields(req, Field::host);
  if (version == 11 && hosts == 0) {
    return core::InvalidArgumentError("HTTP/1.1 request without a Host header");
  }
  if (hosts > 1) return core::InvalidArgumentError("more than one Host header");

  // Beast accepts repeated or comma-listed equal Content-Lengths and a Transfer-Encoding whose
  // last coding is not "chunked" (then treating the body as absent). Each is a way for two
  // parsers to disagree on where a request ends, so all of them are refused here.
  const std::size_t lengths = CountFields(req, Field::content_length);
  const std::size_t encodings = CountFields(req, Field::transfer_encoding);
  if (lengths > 1) return core::InvalidArgumentError("more than one Content-Length header");
  if (lengths == 1 && !AllDigits(req[Field::content_length])) {
    return core::InvalidArgumentError("malformed Content-Length");
  }
  if (encodings > 1) return core::InvalidArgumentError("more than one Transfer-Encoding header");
  if (encodings == 1) {
    if (lengths == 1) {
      return core::InvalidArgumentError("both Content-Length and Transfer-Encoding");
    }
    if (version == 10)
      return core::InvalidArgumentError("Transfer-Encoding in an HTTP/1.0 request");
    if (!beast::iequals(req[Field::transfer_encoding], "chunked")) {
      return core::InvalidArgumentError("unsupported Transfer-Encoding (only chunked is accepted)");
    }
  }

  const std::string_view target = req.target();
  if (target == "*" && req.method() == Verb::options) return core::Status::Ok();
  if (target.empty() || target.front() != '/') {
    return core::InvalidArgumentError("request target must be a path (origin-form)");
  }
  const TargetParts parts = SplitTarget(target);
  RETURN_IF_ERROR(ValidatePath(parts.path));
  for (unsigned char c : parts.query) {
    if (c <= 0x20 || c >= 0x7f || c == '#') {
      return core::InvalidArgumentError(
          "request query contains a byte that must be percent-encoded");
    }
  }
  return core::Status::Ok();
}

RejectReason ClassifyReadError(const beast::error_code& ec) {
  using e = beast::http::error;
  if (!ec) return RejectReason::kNone;
  if (ec == e::header_limit || ec == e::buffer_overflow) return RejectReason::kHeaderTooLarge;
  if (ec == e::body_limit) return RejectReason::kBodyTooLarge;
  // end_of_stream: the client closed cleanly between requests; nothing to answer.
  if (ec == e::end_of_stream) return RejectReason::kNone;
  if (ec.category() == beast::http::make_error_code(e::bad_method).category()) {
    return RejectReason::kMalformed;
  }
  return RejectReason::kNone;
}

}  // namespace moatless::http
