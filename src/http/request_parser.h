// How the server parses requests, factored out so that the server and the fuzz target
// (tests/fuzz/http_request_fuzzer.cc) run exactly the same code: the Beast parser with the
// server's limits, then the checks Beast does not make.
//
// The server reads a request in two steps: the header (ConfigureParser's header limit and the
// header deadline apply), then ValidateRequest on it, and only if that passes, the body. So a
// request that is rejected is rejected before any of its body is read, and a request the server
// could disagree about with a proxy in front of it (request smuggling) never reaches a handler.
// Stateless free functions; thread-safe.
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>

#include "core/status.h"
#include "http/server_options.h"
#include "http/types.h"

namespace moatless::http {

using RequestParser = beast::http::request_parser<beast::http::string_body>;

// Header and body limits from the options. A Content-Length above max_body_bytes fails the
// header read itself (beast::http::error::body_limit), before any body byte is read.
void ConfigureParser(RequestParser& parser, const ServerOptions& options);

// Checks a parsed request header; InvalidArgument (400) when:
//  - the version is not HTTP/1.0 or HTTP/1.1, or an HTTP/1.1 request has no Host, or two;
//  - Content-Length appears twice (even with equal values), is a list, or is not a number;
//  - Transfer-Encoding appears twice, is anything but exactly "chunked", comes with a
//    Content-Length, or comes in an HTTP/1.0 request;
//  - the target is not origin-form ("*" only for OPTIONS), its path fails ValidatePath, or its
//    query has bytes outside visible ASCII.
core::Status ValidateRequest(const Request& header);

// The reject a failed header or body read maps onto: kMalformed (400), kHeaderTooLarge (431),
// kBodyTooLarge (413); kNone for errors that are not the client's request being wrong (a closed
// connection, a cancelled read), where there is nobody or nothing to answer.
RejectReason ClassifyReadError(const beast::error_code& ec);

}  // namespace moatless::http
