#include "http/io_pool.h"

#include <algorithm>
#include <exception>
#include <string>

#include "core/check.h"

namespace moatless::http {

IoPool::IoPool(int threads, std::function<void(std::string_view)> on_error)
    : threads_(threads), on_error_(std::move(on_error)) {
  MOATLESS_CHECK(threads >= 1, "IoPool needs at least one thread");
  for (int i = 0; i < threads; ++i) {
    // Concurrency hint 1: exactly one thread runs each context.
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
  }
}

boost::asio::io_context& IoPool::NextContext() {
  return *contexts_[next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

IoPool::~IoPool() {
  Stop();
  Join();
}

void IoPool::Start() {
  std::lock_guard lock(mu_);
  if (running_) return;
  MOATLESS_CHECK(workers_.empty(), "IoPool::Start after Stop without Join");
  running_ = true;
  workers_.reserve(contexts_.size());
  for (auto& context : contexts_) {
    if (context->stopped()) context->restart();
    guards_.emplace_back(context->get_executor());
    workers_.emplace_back([this, ctx = context.get()] { Work(*ctx); });
  }
}

void IoPool::Stop() {
  std::lock_guard lock(mu_);
  if (!running_) return;
  running_ = false;
  guards_.clear();
  for (auto& context : contexts_) context->stop();
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
  // running_in_this_thread() is true inside any run() of a context, and only our workers run them.
  return std::any_of(contexts_.begin(), contexts_.end(), [](const auto& context) {
    return context->get_executor().running_in_this_thread();
  });
}

void IoPool::Report(std::string_view message) noexcept {
  if (!on_error_) return;
  try {
    on_error_(message);
  } catch (...) {  // the reporter failing must not kill the worker either
  }
}

void IoPool::Work(boost::asio::io_context& context) {
  for (;;) {
    try {
      context.run();
      return;
    } catch (const std::exception& e) {
      Report(std::string("uncaught exception in an I/O handler: ") + e.what());
    } catch (...) {
      Report("uncaught non-standard exception in an I/O handler");
    }
  }
}

}  // namespace moatless::http
