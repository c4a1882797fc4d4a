// Router: maps method + path to a Handler. Patterns are paths whose segments are literals,
// `{name}` (exactly one non-empty segment) or, as the last segment only, `{name+}` (one or more
// segments, greedy): "/2015-03-31/functions/{name}/invocations", "/static/{path+}".
//
// Matching runs on the percent-decoded segments of the path without its query string, after
// ValidatePath (400 for traversal, NUL, malformed escapes). When several patterns match a path,
// the most specific wins, segment by segment: literal before `{name}` before `{name+}`. If paths
// match but none of them has the method, the answer is 405 with an Allow header listing the
// methods the matching paths accept; if no path matches, 404. HEAD falls back to GET (the server
// sends the GET handler's headers without its body). A route may use the method "ANY".
//
// Build the router completely (Add) before serving; after that it is read-only and Find/Dispatch
// are thread-safe. The router must outlive every server whose handler dispatches through it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "http/types.h"

namespace moatless::http {

class Router {
 public:
  Router();
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  // InvalidArgument for a malformed pattern ("{" without "}", a greedy segment that is not last,
  // a parameter name used twice, a method that is not a token) or a route that is already there;
  // AlreadyExists for the same method and path shape added twice.
  core::Status Add(std::string_view method, std::string_view pattern, Handler handler);

  struct Match {
    const Handler* handler = nullptr;  // set when a route matched
    std::string_view pattern;          // the matching route's pattern (a low-cardinality label)
    PathParams params;
    core::Status error;  // when handler is null: NotFound, InvalidArgument (bad path)...
    std::string allow;   // ...or, for 405, the methods the path accepts ("GET, HEAD, POST")
    bool method_not_allowed = false;
  };
  // `target` may include a query string; it is ignored.
  Match Find(std::string_view method, std::string_view target) const;

  // Routes the request: runs the matching handler with ctx.path_params filled in, or answers
  // 400 / 404 / 405 itself (status_response.h shapes). If `route` is given, it receives the
  // matched pattern, or "unmatched": a low-cardinality label for metrics.
  asio::awaitable<Response> Dispatch(Request& req, RequestContext& ctx,
                                     std::string* route = nullptr) const;

  // A Handler for a Server that dispatches through this router (which must outlive it).
  Handler AsHandler() const;

 private:
  struct Node;
  struct Endpoint;
  std::unique_ptr<Node> root_;
};

}  // namespace moatless::http
