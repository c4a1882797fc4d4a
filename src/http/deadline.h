// Deadline: a per-connection watchdog for coroutines that run on one strand. Internal to the
// http module (the server and the client use it); not part of its interface.
//
// The connection arms a deadline for each phase (ExpiresAfter) and clears it between phases; the
// Watch coroutine, spawned once on the same strand, calls `on_expire` (typically: cancel the
// socket's operations) when an armed deadline passes, and sets expired() so that the failing
// operation can tell a timeout from any other error. The deadline is a point in time, not an
// inactivity timer: progress on the socket never pushes it back. This is what makes a header
// that arrives one byte at a time still time out on schedule.
// Not thread-safe: every member, and Watch, must run on the owner's strand.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>

namespace moatless::http::internal {

class Deadline {
 public:
  using SteadyClock = std::chrono::steady_clock;

  explicit Deadline(const boost::asio::any_io_executor& strand) : timer_(strand) {}

  void ExpiresAfter(SteadyClock::duration d) {
    expired_ = false;
    deadline_ = SteadyClock::now() + d;
    // The watch sleeps until the timer's expiry; wake it if the new deadline is earlier.
    if (deadline_ < timer_.expiry()) timer_.cancel();
  }
  void Clear() {
    expired_ = false;
    deadline_ = SteadyClock::time_point::max();
  }
  bool expired() const { return expired_; }
  void Stop() {
    stopped_ = true;
    timer_.cancel();
  }

  // Runs until Stop(). `owner` keeps the object holding this Deadline alive meanwhile.
  static boost::asio::awaitable<void> Watch(std::shared_ptr<void> owner, Deadline* self,
                                            std::function<void()> on_expire) {
    while (!self->stopped_) {
      if (self->deadline_ <= SteadyClock::now()) {
        self->deadline_ = SteadyClock::time_point::max();
        self->expired_ = true;
        on_expire();
        continue;
      }
      self->timer_.expires_at(self->deadline_);
      co_await self->timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    (void)owner;
  }

 private:
  boost::asio::steady_timer timer_;
  SteadyClock::time_point deadline_ = SteadyClock::time_point::max();
  bool expired_ = false;
  bool stopped_ = false;
};

}  // namespace moatless::http::internal
