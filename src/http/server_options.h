// ServerOptions: the limits, timeouts and hooks of an http::Server, and AccessRecord, what the
// server reports about every request and every connection it rejects.
//
// The defaults are production values (Lambda's 6 MiB payload limit, deadlines that defeat slow
// clients). Every timeout is a total deadline for its phase, never reset by progress: a client
// that dribbles one header byte at a time still gets 408 when the header deadline passes.
//
// The http module does not depend on observe: the composition root turns AccessRecords into
// metrics and log lines through `on_access`. The hook runs on I/O threads, concurrently; it must
// be thread-safe, fast and non-blocking; an exception it throws is swallowed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/random.h"

namespace moatless::http {

// Why the server answered (or closed) without the handler seeing the request.
enum class RejectReason {
  kNone = 0,        // the handler produced the response
  kMalformed,       // 400: unparsable request, smuggling shape, bad path, missing Host...
  kHeaderTooLarge,  // 431
  kBodyTooLarge,    // 413
  kHeaderTimeout,   // 408: the whole header did not arrive within header_timeout
  kBodyTimeout,     // 408: the whole body did not arrive within body_timeout
  kOverCapacity,    // 503: max_connections reached
  kTlsHandshake,    // no response: the TLS handshake failed or timed out
};
inline constexpr int kRejectReasonCount = 8;
// "malformed", "header_too_large", ... ("" for kNone): stable names for metric labels.
std::string_view RejectReasonName(RejectReason reason);

// One per response the server writes (from the handler or from the server itself), plus one per
// connection rejected before any response could be written (status 0, e.g. a failed TLS
// handshake). Nothing here is request content except method and path, so a consumer may log it
// all; the query string, which can carry keys, is never included.
struct AccessRecord {
  std::string method;  // empty when the request line was never read
  // Request path without its query, truncated to 1024 bytes; may be empty. For a rejected
  // request it is whatever the client sent (any byte but space and control characters, not
  // necessarily UTF-8): escape it when logging.
  std::string path;
  int status = 0;                        // 0: no response was written
  std::uint64_t request_bytes = 0;       // header plus body bytes as received (framing included)
  std::uint64_t response_bytes = 0;      // bytes written
  std::chrono::nanoseconds duration{0};  // from the request's start to its response written
  std::string remote;
  std::string request_id;  // empty only when no request was started
  std::string listener_name;
  bool tls = false;
  RejectReason reject = RejectReason::kNone;
  // Why the handler failed (the text of an exception it threw) or why the response was
  // replaced (e.g. an invalid header); empty otherwise.
  std::string error;
};

struct ServerOptions {
  // Required. Request ids come from `random` (the CSPRNG in production), durations from `clock`.
  // Both must outlive the server.
  core::Random* random = nullptr;
  const core::Clock* clock = nullptr;

  std::size_t max_header_bytes = 16 * 1024;      // request line plus headers (431 beyond)
  std::size_t max_body_bytes = 6 * 1024 * 1024;  // checked against Content-Length up front (413)
  std::chrono::milliseconds header_timeout{10'000};  // a whole header, from its first byte (408)
  std::chrono::milliseconds body_timeout{30'000};    // a whole body (408)
  std::chrono::milliseconds write_timeout{30'000};   // a whole response
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive wait for the next request
  std::chrono::milliseconds tls_handshake_timeout{10'000};
  // Open connections across all listeners of the server; one more gets 503 and is closed.
  std::size_t max_connections = 10'000;
  // Requests on one keep-alive connection before the server closes it; 0: no limit.
  std::size_t max_requests_per_connection = 10'000;
  // Value of the Server header; empty (the default): no Server header is sent.
  std::string server_header;
  // Responses on TLS connections carry `Strict-Transport-Security: max-age=N; includeSubDomains`
  // (unless the handler set its own); 0 turns it off. One year by default, the value HSTS
  // preload lists ask for.
  std::chrono::seconds hsts_max_age{31'536'000};

  std::function<void(const AccessRecord&)> on_access;
};

}  // namespace moatless::http
