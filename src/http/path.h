// Request-target and path handling shared by the server's request validation and the Router:
// splitting off the query string, rejecting paths that are unsafe to route or to log, and
// percent-decoding path segments.
//
// A path is accepted only if it is origin-form ("/..."), holds nothing but RFC 3986 path
// characters (unreserved, sub-delims, ':', '@', '/') and well-formed %XX escapes, no escape
// decodes to NUL, and no segment is a dot segment ("." or ".."), neither raw, nor percent-encoded,
// nor hidden inside one decoded segment behind an encoded '/' or '\' ("a%2F..%2Fb"). Handlers can
// therefore use decoded segments and path parameters as names without re-checking for traversal.
// Stateless free functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace moatless::http {

struct TargetParts {
  std::string_view path;   // everything before the first '?'
  std::string_view query;  // after the '?', without it; empty if none
};

// Splits an origin-form request target ("/a/b?x=1") at its first '?'.
TargetParts SplitTarget(std::string_view target);

// InvalidArgument if the path (without query) breaks any rule above.
core::Status ValidatePath(std::string_view path);

// The percent-decoded segments of a path ("/a/b%20c/" -> {"a", "b c", ""}; "/" -> {""}), after
// ValidatePath.
core::Result<std::vector<std::string>> DecodePathSegments(std::string_view path);

// Decodes %XX escapes ('+' is left alone: it means a space only in form bodies). InvalidArgument
// on a malformed escape.
core::Result<std::string> PercentDecode(std::string_view encoded);

}  // namespace moatless::http
