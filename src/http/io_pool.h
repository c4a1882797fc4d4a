// IoPool: the worker threads of a process and their asio::io_contexts, shared by every server and
// client coroutine (the composition root builds one and passes it down).
//
// Each worker runs an io_context of its own (one epoll instance, no scheduler lock shared between
// threads), as nginx runs one event loop per worker process: a shared io_context run by several
// threads spends its time in lock hand-offs and wake-ups. context() is the first one, for
// listeners, timers and signals; NextContext() deals contexts out round-robin, and the server
// places each accepted connection on the next one, so connections spread over the workers and a
// connection's handlers all run on one thread.
//
// Start() launches the workers; Stop() makes them return as soon as their current handler does;
// Join() waits for them. Work posted while the pool is stopped runs after the next Start(). The
// destructor stops and joins. Everything that runs on the pool must be bound to a strand if it
// has state shared between handlers (the server and client do this themselves). An exception that
// escapes a handler is caught in the worker, reported to `on_error` if given, and the worker goes
// on running: a bug in one handler must not take the process's I/O down.
// Start/Stop/Join and the accessors are thread-safe.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
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

  boost::asio::io_context& context() { return *contexts_.front(); }
  boost::asio::io_context::executor_type executor() { return context().get_executor(); }
  // The contexts in turn (thread-safe): where to place the next connection.
  boost::asio::io_context& NextContext();
  int thread_count() const { return threads_; }

  void Start();
  void Stop();
  void Join();
  // True between Start() and Stop().
  bool running() const;
  // True when called from one of this pool's worker threads (blocking there could deadlock).
  bool InWorkerThread() const;

 private:
  void Work(boost::asio::io_context& context);
  void Report(std::string_view message) noexcept;

  const int threads_;
  std::function<void(std::string_view)> on_error_;
  using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::atomic<std::size_t> next_{0};
  mutable std::mutex mu_;
  std::vector<WorkGuard> guards_;
  std::vector<std::thread> workers_;
  bool running_ = false;
};

}  // namespace moatless::http
