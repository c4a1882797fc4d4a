// Helpers for the http module's tests (linked into http_test only): a scratch folder, a
// self-signed certificate made with the OpenSSL API, a raw-socket client that sends exactly the
// bytes a test gives it and parses responses with Beast, and a thread-safe AccessRecord sink.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "http/server_options.h"
#include "http/types.h"

namespace moatless::http::testing {

using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CertFiles {
  std::string cert;
  std::string key;
};
// An EC P-256 self-signed certificate for CN=localhost with the given subjectAltName (usable as
// its own CA file); the key file is written with mode 0600. Files are named after `prefix`.
CertFiles MakeSelfSignedCert(const TempDir& dir,
                             const std::string& san = "DNS:localhost,IP:127.0.0.1",
                             const std::string& prefix = "server");

// A certificate with chosen fields, for tests of what the server reports about client
// certificates. Signed by `issuer` (the first certificate of its file and its key), or by its own
// key when null; the certificate file holds the new certificate followed by the issuer's file.
struct CertSpec {
  std::string common_name = "localhost";
  std::string organization;                // O=, when not empty
  std::string san;                         // subjectAltName; empty: none
  std::vector<std::uint8_t> serial{0x01};  // big-endian bytes
  std::string not_before;                  // "YYYYMMDDHHMMSSZ"; empty: an hour ago
  std::string not_after;                   // "YYYYMMDDHHMMSSZ"; empty: in two days
  bool ca = false;
};
CertFiles MakeCert(const TempDir& dir, const std::string& prefix, const CertSpec& spec,
                   const CertFiles* issuer = nullptr);

// The contents of a file ("" if it cannot be read).
std::string ReadFile(const std::string& path);
// Replaces a file's contents (created with `mode` if missing; the mode is then set to `mode`).
void WriteFile(const std::string& path, const std::string& contents, unsigned mode = 0600);

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

// A blocking client socket. Every wait is bounded (10 s unless told) so a broken server fails a
// test instead of hanging it.
class RawConnection {
 public:
  static RawConnection Tcp(std::uint16_t port);
  static RawConnection Unix(const std::string& path);
  explicit RawConnection(int fd) : fd_(fd) {}
  RawConnection(RawConnection&& other) noexcept;
  RawConnection& operator=(RawConnection&& other) noexcept;
  ~RawConnection();

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // False if the peer closed or reset the connection.
  bool Send(const std::string& bytes);
  // The next response, or nullopt if the connection closed (or the wait ran out) before a whole
  // response arrived. `head`: the response to a HEAD request (no body follows its headers).
  std::optional<RawResponse> ReadResponse(std::chrono::milliseconds timeout = 10s,
                                          bool head = false);
  // True if the peer closes (FIN or RST) within `timeout`; data that arrives meanwhile is dropped.
  bool PeerClosed(std::chrono::milliseconds timeout = 10s);
  // True if bytes are ready to read within `timeout`.
  bool Readable(std::chrono::milliseconds timeout);
  void Close();

 private:
  int fd_ = -1;
  std::string pending_;
};

// `GET <target> HTTP/1.1` with Host and any extra header lines ("Name: value\r\n" each).
std::string Get(const std::string& target, const std::string& extra_headers = "");

// Collects AccessRecords from a server's on_access hook.
class RecordSink {
 public:
  std::function<void(const AccessRecord&)> Hook();
  // Waits until a record satisfies `match`; returns it.
  std::optional<AccessRecord> WaitFor(const std::function<bool(const AccessRecord&)>& match,
                                      std::chrono::milliseconds timeout = 10s);
  std::vector<AccessRecord> All();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<AccessRecord> records_;
};

// Polls `condition` until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s);

// Runs a coroutine to completion on a private io_context.
template <typename T>
T RunSync(asio::awaitable<T> awaitable) {
  asio::io_context io;
  std::optional<T> result;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { result.emplace(co_await std::move(awaitable)); },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  return std::move(*result);
}

// Raises RLIMIT_NOFILE's soft limit to at least `n` (up to the hard limit); returns the new limit.
std::uint64_t RaiseFileLimit(std::uint64_t n);

}  // namespace moatless::http::testing
