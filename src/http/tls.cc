#include "http/tls.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/secret_bytes.h"

namespace moatless::http {
namespace ssl = boost::asio::ssl;

namespace {

// Mozilla's "intermediate" TLS 1.2 list minus the finite-field DHE suites: ECDHE key exchange
// (forward secrecy) and AEAD ciphers only. TLS 1.3 suites are OpenSSL's defaults, all strong.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string OctalMode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

core::Result<core::SecretBytes> ReadKeyFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return core::FailedPreconditionError("TLS key file '" + path + "': " + std::strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return core::FailedPreconditionError("TLS key file '" + path + "': " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return core::FailedPreconditionError("TLS key file '" + path + "' is not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return core::FailedPreconditionError(
        "TLS key file '" + path + "' is accessible by group or others (mode " +
        OctalMode(st.st_mode) + "); restrict it with chmod 600 before serving with it");
  }
  if (st.st_size > 1024 * 1024) {
    return core::FailedPreconditionError("TLS key file '" + path + "' is too large for a key");
  }
  core::SecretBytes key;
  key.Resize(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < key.size()) {
    const ssize_t n = ::read(fd, key.MutableBytes().data() + done, key.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return core::FailedPreconditionError("TLS key file '" + path + "': " + std::strerror(errno));
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  key.Resize(done);
  return key;
}

int SelectHttp11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                 unsigned int inlen, void*) {
  static constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof kHttp11, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // the client offered no http/1.1: carry on without ALPN
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

core::Result<std::shared_ptr<ssl::context>> MakeServerTlsContext(const TlsOptions& options) {
  if (options.cert_file.empty() || options.key_file.empty()) {
    return core::InvalidArgumentError("TLS needs both a certificate file and a key file");
  }
  ASSIGN_OR_RETURN(core::SecretBytes key, ReadKeyFile(options.key_file));

  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, options.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
  // OpenSSL 3 refuses client-initiated renegotiation unless SSL_OP_ALLOW_CLIENT_RENEGOTIATION;
  // SSL_OP_NO_RENEGOTIATION also refuses the rest.
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
  // Idle keep-alive connections then hold no TLS read/write buffers.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return core::InternalError("OpenSSL refused the TLS 1.2 cipher list");
  }
  SSL_CTX_set_alpn_select_cb(native, SelectHttp11, nullptr);

  boost::system::error_code ec;
  ctx->use_certificate_chain_file(options.cert_file, ec);
  if (ec) {
    return core::InvalidArgumentError("TLS certificate file '" + options.cert_file +
                                      "': " + ec.message());
  }
  ctx->use_private_key(boost::asio::buffer(key.Reveal().data(), key.size()), ssl::context::pem, ec);
  if (ec) {
    return core::InvalidArgumentError("TLS key file '" + options.key_file +
                                      "' holds no usable PEM private key: " + ec.message());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return core::InvalidArgumentError("TLS key file '" + options.key_file +
                                      "' does not match the certificate in '" + options.cert_file +
                                      "'");
  }
  return ctx;
}

core::Result<std::shared_ptr<ssl::context>> MakeClientTlsContext(const std::string& ca_file,
                                                                 bool verify) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  boost::system::error_code ec;
  if (!verify) {
    ctx->set_verify_mode(ssl::verify_none);
    return ctx;
  }
  ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(ca_file, ec);
  }
  if (ec) {
    return core::InvalidArgumentError("TLS CA file '" + ca_file + "': " + ec.message());
  }
  return ctx;
}

}  // namespace moatless::http
