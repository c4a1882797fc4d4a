// IoPool: one asio::io_context and the worker threads that run it, shared by every server and
// client coroutine of a process (the composition root builds one and passes it down).
//
// Start() launches the workers; Stop() makes them return as soon as their current handler does;
// Join() waits for them. Work posted while the pool is stopped runs after the next Start(). The
// destructor stops and joins. Everything that runs on the pool must be bound to a strand if it
// has state shared between handlers (the server and client do this themselves). An exception that
// escapes a handler is caught in the worker, reported to `on_error` if given, and the worker goes
// on running: a bug in one handler must not take the process's I/O down.
// Start/Stop/Join and the accessors are thread-safe.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

namespace moatless::http {

class IoPool {
 public:
  // `threads` >= 1 workers.
  explicit IoPool(int threads, std::function<void(std::string_view)> on_error = {});
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  boost::asio::io_context& context() { return context_; }
  boost::asio::io_context::executor_type executor() { return context_.get_executor(); }
  int thread_count() const { return threads_; }

  void Start();
  void Stop();
  void Join();
  // True between Start() and Stop().
  bool running() const;
  // True when called from one of this pool's worker threads (blocking there could deadlock).
  bool InWorkerThread() const;

 private:
  void Work();
  void Report(std::string_view message) noexcept;

  const int threads_;
  std::function<void(std::string_view)> on_error_;
  mutable boost::asio::io_context context_;
  mutable std::mutex mu_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  std::vector<std::thread> workers_;
  bool running_ = false;
};

}  // namespace moatless::http
