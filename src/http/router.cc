#include "http/router.h"

#include <algorithm>
#include <map>
#include <set>

#include "http/path.h"
#include "http/status_response.h"

namespace moatless::http {

struct Router::Endpoint {
  std::string pattern;
  std::vector<std::string> param_names;  // in path order; a greedy one last
  std::vector<std::pair<std::string, Handler>> methods;

  const Handler* Lookup(std::string_view method) const {
    auto find = [&](std::string_view m) -> const Handler* {
      for (const auto& [name, handler] : methods) {
        if (name == m) return &handler;
      }
      return nullptr;
    };
    if (const Handler* h = find(method)) return h;
    if (method == "HEAD") {
      if (const Handler* h = find("GET")) return h;
    }
    return find("ANY");
  }
};

struct Router::Node {
  std::map<std::string, std::unique_ptr<Node>, std::less<>> literals;
  std::unique_ptr<Node> param;
  std::unique_ptr<Endpoint> exact;   // routes that end at this node
  std::unique_ptr<Endpoint> greedy;  // routes whose `{name+}` starts at this node
};

namespace {

bool IsTokenChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool IsParamName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

struct Candidate {
  const void* endpoint;
  std::vector<std::string> values;
};

}  // namespace

Router::Router() : root_(std::make_unique<Node>()) {}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

core::Status Router::Add(std::string_view method, std::string_view pattern, Handler handler) {
  if (method.empty() ||
      !std::all_of(method.begin(), method.end(), [](unsigned char c) { return IsTokenChar(c); })) {
    return core::InvalidArgumentError("route method must be an HTTP token or ANY");
  }
  if (pattern.empty() || pattern.front() != '/') {
    return core::InvalidArgumentError("route pattern must start with '/': " + std::string(pattern));
  }
  if (!handler) return core::InvalidArgumentError("route without a handler");

  Node* node = root_.get();
  std::vector<std::string> names;
  bool greedy = false;
  std::size_t start = 1;
  for (std::size_t i = 1; i <= pattern.size(); ++i) {
    if (i != pattern.size() && pattern[i] != '/') continue;
    const std::string_view segment = pattern.substr(start, i - start);
    start = i + 1;
    const auto bad = [&](std::string_view why) {
      return core::InvalidArgumentError("route pattern " + std::string(pattern) + ": " +
                                        std::string(why));
    };
    if (greedy) return bad("a {name+} segment must be the last");
    if (!segment.empty() && segment.front() == '{') {
      if (segment.size() < 3 || segment.back() != '}') return bad("unterminated parameter");
      std::string_view name = segment.substr(1, segment.size() - 2);
      if (name.back() == '+') {
        greedy = true;
        name.remove_suffix(1);
      }
      if (!IsParamName(name)) return bad("parameter names are [A-Za-z0-9_-]+");
      if (std::find(names.begin(), names.end(), name) != names.end()) {
        return bad("parameter name used twice");
      }
      names.emplace_back(name);
      if (!greedy) {
        if (!node->param) node->param = std::make_unique<Node>();
        node = node->param.get();
      }
      continue;
    }
    if (segment.find_first_of("{}") != std::string_view::npos) {
      return bad("a parameter must be a whole segment");
    }
    if (segment == "." || segment == "..") return bad("dot segments never match");
    auto it = node->literals.find(segment);
    if (it == node->literals.end()) {
      it = node->literals.emplace(std::string(segment), std::make_unique<Node>()).first;
    }
    node = it->second.get();
  }

  std::unique_ptr<Endpoint>& slot = greedy ? node->greedy : node->exact;
  if (!slot) {
    slot = std::make_unique<Endpoint>();
    slot->pattern = std::string(pattern);
    slot->param_names = names;
  } else if (slot->param_names != names) {
    return core::InvalidArgumentError("route pattern " + std::string(pattern) +
                                      " has the same shape as " + slot->pattern +
                                      " but other parameter names");
  }
  for (const auto& [existing, unused] : slot->methods) {
    if (existing == method) {
      return core::AlreadyExistsError("route " + std::string(method) + " " + std::string(pattern) +
                                      " is already defined");
    }
  }
  slot->methods.emplace_back(std::string(method), std::move(handler));
  return core::Status::Ok();
}

namespace {

// Depth-first, literal before parameter before greedy: candidates come out most specific first.
template <typename NodeT>
void Collect(const NodeT& node, const std::vector<std::string>& segments, std::size_t i,
             std::vector<std::string>& values, std::vector<Candidate>& out) {
  if (i == segments.size()) {
    if (node.exact) out.push_back({node.exact.get(), values});
  } else {
    if (auto it = node.literals.find(segments[i]); it != node.literals.end()) {
      Collect(*it->second, segments, i + 1, values, out);
    }
    if (node.param && !segments[i].empty()) {
      values.push_back(segments[i]);
      Collect(*node.param, segments, i + 1, values, out);
      values.pop_back();
    }
  }
  if (node.greedy && i < segments.size()) {
    std::string rest;
    for (std::size_t j = i; j < segments.size(); ++j) {
      if (j > i) rest.push_back('/');
      rest += segments[j];
    }
    if (!rest.empty()) {
      values.push_back(std::move(rest));
      out.push_back({node.greedy.get(), values});
      values.pop_back();
    }
  }
}

}  // namespace

Router::Match Router::Find(std::string_view method, std::string_view target) const {
  Match match;
  auto segments = DecodePathSegments(SplitTarget(target).path);
  if (!segments.ok()) {
    match.error = segments.status();
    return match;
  }
  std::vector<std::string> values;
  std::vector<Candidate> candidates;
  Collect(*root_, *segments, 0, values, candidates);
  if (candidates.empty()) {
    match.error = core::NotFoundError("no resource at this path");
    return match;
  }
  std::set<std::string> allowed;
  for (auto& candidate : candidates) {
    const auto* endpoint = static_cast<const Endpoint*>(candidate.endpoint);
    if (const Handler* handler = endpoint->Lookup(method)) {
      match.handler = handler;
      match.pattern = endpoint->pattern;
      for (std::size_t k = 0; k < endpoint->param_names.size(); ++k) {
        match.params.emplace(endpoint->param_names[k], std::move(candidate.values[k]));
      }
      return match;
    }
    for (const auto& [name, unused] : endpoint->methods) {
      allowed.insert(name);
      if (name == "GET") allowed.insert("HEAD");
    }
  }
  match.method_not_allowed = true;
  match.error = core::InvalidArgumentError("the method is not allowed for this resource");
  for (const auto& name : allowed) {
    if (!match.allow.empty()) match.allow += ", ";
    match.allow += name;
  }
  return match;
}

asio::awaitable<Response> Router::Dispatch(Request& req, RequestContext& ctx,
                                           std::string* route) const {
  Match match = Find(req.method_string(), req.target());
  if (route != nullptr) *route = match.handler != nullptr ? match.pattern : "unmatched";
  if (match.handler != nullptr) {
    ctx.path_params = std::move(match.params);
    co_return co_await (*match.handler)(req, ctx);
  }
  if (match.method_not_allowed) co_return MethodNotAllowedResponse(match.allow, ctx.request_id);
  co_return StatusResponse(match.error, ctx.request_id);
}

Handler Router::AsHandler() const {
  return [this](Request& req, RequestContext& ctx) { return Dispatch(req, ctx); };
}

}  // namespace moatless::http
