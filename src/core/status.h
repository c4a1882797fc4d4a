// Status and Result<T>: how every expected failure in moatless travels.
//
// A Status is a canonical code plus a human message. The code decides the HTTP status and the
// AWS error type name a client sees (see HttpStatusFor / AwsErrorTypeFor); the message is shown
// to the caller, so it must never contain secret values. Functions on a request path return
// Status or Result<T> instead of throwing; exceptions from third-party libraries are caught at
// the adapter that calls them. Status and Result are values: copy and move them freely; they are
// not synchronised (like any value type).
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "core/check.h"

namespace moatless::core {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the request is malformed or fails validation (400)
  kUnauthenticated,     // no or bad credentials (401)
  kPermissionDenied,    // authenticated, but not allowed (403)
  kNotFound,            // (404)
  kAlreadyExists,       // (409)
  kAborted,             // a conflicting concurrent change; retry may succeed (409)
  kFailedPrecondition,  // the system is not in the state the operation needs (400)
  kPayloadTooLarge,     // a body or document over its size limit (413)
  kResourceExhausted,   // rate or quota limit; retry later (429)
  kDeadlineExceeded,    // the operation did not finish in time (504)
  kUnimplemented,       // (501)
  kUnavailable,         // temporarily unable to serve; retry may succeed (503)
  kInternal,            // a bug or an unexpected failure of a dependency (500)
};

std::string_view StatusCodeName(StatusCode code);
// HTTP status a code maps onto.
int HttpStatusFor(StatusCode code);
// The AWS error type name ("__type" / x-amzn-ErrorType) a code maps onto by default. Service
// handlers that must speak a service-specific name (e.g. ResourceNotFoundException) set it with
// Status::WithAwsType.
std::string_view AwsErrorTypeFor(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The AWS error type name to report: the override if one was set, else the code's default.
  std::string_view aws_type() const;
  Status WithAwsType(std::string aws_type) &&;
  // Prefixes the message with context: "opening store: <message>".
  Status Annotate(std::string_view context) const;

  std::string ToString() const;
  // Marks a status as deliberately ignored.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string aws_type_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

// Shorthands that read like the failure they describe.
Status InvalidArgumentError(std::string message);
Status UnauthenticatedError(std::string message);
Status PermissionDeniedError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status AbortedError(std::string message);
Status FailedPreconditionError(std::string message);
Status PayloadTooLargeError(std::string message);
Status ResourceExhaustedError(std::string message);
Status DeadlineExceededError(std::string message);
Status UnimplementedError(std::string message);
Status UnavailableError(std::string message);
Status InternalError(std::string message);

// Result<T>: either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : state_(std::move(status)) {  // NOLINT: implicit by design
    MOATLESS_CHECK(!std::get<Status>(state_).ok(), "Result constructed from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(state_); }
  // The error; OK if the result holds a value.
  Status status() const { return ok() ? Status() : std::get<Status>(state_); }

  // Accessing the value of a failed Result is a bug (fatal).
  T& value() & { return CheckedValue(); }
  const T& value() const& { return const_cast<Result*>(this)->CheckedValue(); }
  T&& value() && { return std::move(CheckedValue()); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(CheckedValue()); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T value_or(T fallback) const& { return ok() ? std::get<T>(state_) : std::move(fallback); }

 private:
  T& CheckedValue() {
    MOATLESS_CHECK(ok(), "value() of a failed Result: " + std::get<Status>(state_).ToString());
    return std::get<T>(state_);
  }
  std::variant<T, Status> state_;
};

namespace internal {
inline Status AsStatus(const Status& s) { return s; }
template <typename T>
Status AsStatus(const Result<T>& r) {
  return r.status();
}
}  // namespace internal

}  // namespace moatless::core

#define MOATLESS_CONCAT_INNER(a, b) a##b
#define MOATLESS_CONCAT(a, b) MOATLESS_CONCAT_INNER(a, b)

// RETURN_IF_ERROR(expr): returns the Status of expr (a Status or Result) from the enclosing
// function if it is not OK.
#define RETURN_IF_ERROR(expr)                                                               \
  do {                                                                                      \
    ::moatless::core::Status moatless_status_ = ::moatless::core::internal::AsStatus(expr); \
    if (!moatless_status_.ok()) return moatless_status_;                                    \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): evaluates expr (a Result<T>); on error returns its Status, else
// assigns (or declares: `ASSIGN_OR_RETURN(auto x, F())`) lhs from the value.
#define ASSIGN_OR_RETURN(lhs, expr) \
  MOATLESS_ASSIGN_OR_RETURN_IMPL(MOATLESS_CONCAT(moatless_result_, __LINE__), lhs, expr)
#define MOATLESS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()
