#include "http/test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace moatless::http::testing {
namespace {

void Fail(const std::string& what) { throw std::runtime_error(what); }

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "moatless-http-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) Fail("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

CertFiles MakeSelfSignedCert(const TempDir& dir, const std::string& san,
                             const std::string& prefix) {
  CertFiles files{dir.File(prefix + "-cert.pem"), dir.File(prefix + "-key.pem")};
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) Fail("EVP_EC_gen failed");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 2 * 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  const std::pair<int, const char*> extensions[] = {
      {NID_subject_alt_name, san.c_str()},
      {NID_basic_constraints, "critical,CA:TRUE"},
      {NID_key_usage, "critical,digitalSignature,keyCertSign"},
  };
  for (const auto& [nid, value] : extensions) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) Fail("X509V3_EXT_conf_nid failed");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert, key, EVP_sha256()) == 0) Fail("X509_sign failed");

  FILE* cert_out = std::fopen(files.cert.c_str(), "w");
  if (cert_out == nullptr) Fail("cannot write " + files.cert);
  PEM_write_X509(cert_out, cert);
  std::fclose(cert_out);
  const int key_fd = ::open(files.key.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (key_fd < 0) Fail("cannot write " + files.key);
  FILE* key_out = ::fdopen(key_fd, "w");
  PEM_write_PrivateKey(key_out, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(key_out);
  X509_free(cert);
  EVP_PKEY_free(key);
  return files;
}

CertFiles MakeCert(const TempDir& dir, const std::string& prefix, const CertSpec& spec,
                   const CertFiles* issuer) {
  CertFiles files{dir.File(prefix + "-cert.pem"), dir.File(prefix + "-key.pem")};
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) Fail("EVP_EC_gen failed");
  EVP_PKEY* signing_key = key;
  X509* issuer_cert = nullptr;
  if (issuer != nullptr) {
    FILE* in = std::fopen(issuer->cert.c_str(), "r");
    if (in == nullptr) Fail("cannot read " + issuer->cert);
    issuer_cert = PEM_read_X509(in, nullptr, nullptr, nullptr);
    std::fclose(in);
    in = std::fopen(issuer->key.c_str(), "r");
    if (in == nullptr) Fail("cannot read " + issuer->key);
    signing_key = PEM_read_PrivateKey(in, nullptr, nullptr, nullptr);
    std::fclose(in);
    if (issuer_cert == nullptr || signing_key == nullptr) Fail("cannot parse the issuer");
  }
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  BIGNUM* serial = BN_bin2bn(spec.serial.data(), static_cast<int>(spec.serial.size()), nullptr);
  BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert));
  BN_free(serial);
  if (spec.not_before.empty()) {
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  } else if (ASN1_TIME_set_string_X509(X509_getm_notBefore(cert), spec.not_before.c_str()) != 1) {
    Fail("bad not_before " + spec.not_before);
  }
  if (spec.not_after.empty()) {
    X509_gmtime_adj(X509_getm_notAfter(cert), 2 * 86400);
  } else if (ASN1_TIME_set_string_X509(X509_getm_notAfter(cert), spec.not_after.c_str()) != 1) {
    Fail("bad not_after " + spec.not_after);
  }
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  if (!spec.organization.empty()) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(spec.organization.c_str()),
                               -1, -1, 0);
  }
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert, issuer_cert ? X509_get_subject_name(issuer_cert) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer_cert ? issuer_cert : cert, cert, nullptr, nullptr, 0);
  std::vector<std::pair<int, std::string>> extensions = {
      {NID_basic_constraints, spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE"},
      {NID_key_usage,
       spec.ca ? "critical,digitalSignature,keyCertSign" : "critical,digitalSignature"},
  };
  if (!spec.san.empty()) extensions.emplace_back(NID_subject_alt_name, spec.san);
  for (const auto& [nid, value] : extensions) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (ext == nullptr) Fail("X509V3_EXT_conf_nid failed");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert, signing_key, EVP_sha256()) == 0) Fail("X509_sign failed");

  FILE* cert_out = std::fopen(files.cert.c_str(), "w");
  if (cert_out == nullptr) Fail("cannot write " + files.cert);
  PEM_write_X509(cert_out, cert);
  std::fclose(cert_out);
  if (issuer != nullptr) {
    std::string chain = ReadFile(files.cert) + ReadFile(issuer->cert);
    WriteFile(files.cert, chain, 0644);
  }
  const int key_fd = ::open(files.key.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (key_fd < 0) Fail("cannot write " + files.key);
  FILE* key_out = ::fdopen(key_fd, "w");
  PEM_write_PrivateKey(key_out, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(key_out);
  X509_free(cert);
  X509_free(issuer_cert);
  if (signing_key != key) EVP_PKEY_free(signing_key);
  EVP_PKEY_free(key);
  return files;
}

std::string ReadFile(const std::string& path) {
  FILE* in = std::fopen(path.c_str(), "rb");
  if (in == nullptr) return "";
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, in)) > 0) out.append(buf, n);
  std::fclose(in);
  return out;
}

void WriteFile(const std::string& path, const std::string& contents, unsigned mode) {
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) Fail("cannot write " + path);
  std::size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n <= 0) {
      ::close(fd);
      Fail("cannot write " + path);
    }
    done += static_cast<std::size_t>(n);
  }
  ::fchmod(fd, static_cast<mode_t>(mode));
  ::close(fd);
}

RawConnection RawConnection::Tcp(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return RawConnection(-1);
  }
  return RawConnection(fd);
}

RawConnection RawConnection::Unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return RawConnection(-1);
  }
  return RawConnection(fd);
}

RawConnection::RawConnection(RawConnection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), pending_(std::move(other.pending_)) {}

RawConnection& RawConnection::operator=(RawConnection&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    pending_ = std::move(other.pending_);
  }
  return *this;
}

RawConnection::~RawConnection() { Close(); }

void RawConnection::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawConnection::Send(const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool RawConnection::Readable(std::chrono::milliseconds timeout) {
  if (!pending_.empty()) return true;
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

std::optional<RawResponse> RawConnection::ReadResponse(std::chrono::milliseconds timeout,
                                                       bool head) {
  namespace bhttp = boost::beast::http;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.eager(true);
  parser.body_limit(64 * 1024 * 1024);
  if (head) parser.skip(true);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    while (!pending_.empty() && !parser.is_done()) {
      boost::beast::error_code ec;
      const std::size_t used = parser.put(boost::asio::buffer(pending_), ec);
      pending_.erase(0, used);
      if (ec == bhttp::error::need_more) break;
      if (ec) return std::nullopt;
      if (used == 0) break;
    }
    if (parser.is_done()) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!parser.got_some()) return std::nullopt;
      boost::beast::error_code ec;
      parser.put_eof(ec);
      if (ec || !parser.is_done()) return std::nullopt;
      break;
    }
    pending_.append(buf, static_cast<std::size_t>(n));
  }
  RawResponse out;
  auto message = parser.release();
  out.status = static_cast<int>(message.result_int());
  for (const auto& field : message) {
    out.headers[Lower(std::string(field.name_string()))] = std::string(field.value());
  }
  out.body = std::move(message.body());
  return out;
}

bool RawConnection::PeerClosed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  pending_.clear();
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == ECONNRESET || errno == EPIPE;
  }
}

std::string Get(const std::string& target, const std::string& extra_headers) {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra_headers + "\r\n";
}

std::function<void(const AccessRecord&)> RecordSink::Hook() {
  return [this](const AccessRecord& record) {
    std::lock_guard lock(mu_);
    records_.push_back(record);
    cv_.notify_all();
  };
}

std::optional<AccessRecord> RecordSink::WaitFor(
    const std::function<bool(const AccessRecord&)>& match, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  std::optional<AccessRecord> found;
  cv_.wait_for(lock, timeout, [&] {
    for (const auto& r : records_) {
      if (match(r)) {
        found = r;
        return true;
      }
    }
    return false;
  });
  return found;
}

std::vector<AccessRecord> RecordSink::All() {
  std::lock_guard lock(mu_);
  return records_;
}

bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

std::uint64_t RaiseFileLimit(std::uint64_t n) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < n) {
    limit.rlim_cur = std::min<rlim_t>(n, limit.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

}  // namespace moatless::http::testing
