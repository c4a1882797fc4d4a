#include "http/io_pool.h"

#include <algorithm>
#include <exception>
#include <string>

#include "core/check.h"

namespace moatless::http {

IoPool::IoPool(int threads, std::function<void(std::string_view)> on_error)
    : threads_(threads), on_error_(std::move(on_error)), context_(threads) {
  MOATLESS_CHECK(threads >= 1, "IoPool needs at least one thread");
}

IoPool::~IoPool() {
  Stop();
  Join();
}

void IoPool::Start() {
  std::lock_guard lock(mu_);
  if (running_) return;
  MOATLESS_CHECK(workers_.empty(), "IoPool::Start after Stop without Join");
  if (context_.stopped()) context_.restart();
  guard_.emplace(context_.get_executor());
  running_ = true;
  workers_.reserve(static_cast<std::size_t>(threads_));
  for (int i = 0; i < threads_; ++i) workers_.emplace_back([this] { Work(); });
}

void IoPool::Stop() {
  std::lock_guard lock(mu_);
  if (!running_) return;
  running_ = false;
  guard_.reset();
  context_.stop();
}

void IoPool::Join() {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    MOATLESS_CHECK(!InWorkerThread(), "IoPool::Join from one of its own workers");
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

bool IoPool::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

bool IoPool::InWorkerThread() const {
  // running_in_this_thread() is true inside any run() of this context, which is exactly the set of
  // our workers (nobody else runs it).
  return context_.get_executor().running_in_this_thread();
}

void IoPool::Report(std::string_view message) noexcept {
  if (!on_error_) return;
  try {
    on_error_(message);
  } catch (...) {  // the reporter failing must not kill the worker either
  }
}

void IoPool::Work() {
  for (;;) {
    try {
      context_.run();
      return;
    } catch (const std::exception& e) {
      Report(std::string("uncaught exception in an I/O handler: ") + e.what());
    } catch (...) {
      Report("uncaught non-standard exception in an I/O handler");
    }
  }
}

}  // namespace moatless::http
