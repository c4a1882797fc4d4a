#include "http/tls.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

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

// Client certificates are requested for a later layer to judge against a per-app truststore:
// the TLS layer takes any chain (the handshake's CertificateVerify still proves possession of
// the leaf's key).
int AcceptAnyClientChain(int, X509_STORE_CTX*) { return 1; }

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

core::Status OpenSslError(std::string_view what) {
  return core::InternalError("formatting the client certificate: " + std::string(what));
}

core::Result<std::string> CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return OpenSslError("PEM");
  return BioText(bio.get());
}

core::Result<std::string> NameRfc2253(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    return OpenSslError("distinguished name");
  }
  return BioText(bio.get());
}

core::Result<std::string> TimeText(const ASN1_TIME* time) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || ASN1_TIME_print(bio.get(), time) != 1) return OpenSslError("validity");
  return BioText(bio.get());
}

core::Result<std::string> SerialHex(const ASN1_INTEGER* serial) {
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(ASN1_INTEGER_to_BN(serial, nullptr), BN_free);
  if (!bn) return OpenSslError("serial number");
  std::vector<unsigned char> bytes(static_cast<std::size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), bytes.data());
  if (bytes.empty()) bytes.push_back(0);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    if (!out.empty()) out.push_back(':');
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
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
  if (options.request_client_cert) {
    // Asked for, not required (no SSL_VERIFY_FAIL_IF_NO_PEER_CERT): routes decide.
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, AcceptAnyClientChain);
    // A resumed session would carry no certificate chain; every connection does a full
    // handshake instead. The context id is what OpenSSL requires of a verifying server anyway.
    static constexpr unsigned char kSessionContext[] = "moatless";
    SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(native, 0);
  }

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

core::Result<std::shared_ptr<const ClientCertificate>> PeerClientCertificate(SSL* ssl) {
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (leaf == nullptr) return std::shared_ptr<const ClientCertificate>();
  auto cert = std::make_shared<ClientCertificate>();
  ASSIGN_OR_RETURN(cert->leaf_pem, CertPem(leaf));
  // On the server side the chain OpenSSL keeps is what the client sent after its leaf.
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl); chain != nullptr) {
    for (int i = 0; i < sk_X509_num(chain); ++i) {
      X509* other = sk_X509_value(chain, i);
      if (X509_cmp(other, leaf) == 0) continue;
      ASSIGN_OR_RETURN(std::string pem, CertPem(other));
      cert->chain_pem += pem;
    }
  }
  ASSIGN_OR_RETURN(cert->subject_dn, NameRfc2253(X509_get_subject_name(leaf)));
  ASSIGN_OR_RETURN(cert->issuer_dn, NameRfc2253(X509_get_issuer_name(leaf)));
  ASSIGN_OR_RETURN(cert->serial_number, SerialHex(X509_get0_serialNumber(leaf)));
  ASSIGN_OR_RETURN(cert->not_before, TimeText(X509_get0_notBefore(leaf)));
  ASSIGN_OR_RETURN(cert->not_after, TimeText(X509_get0_notAfter(leaf)));
  return std::shared_ptr<const ClientCertificate>(std::move(cert));
}

core::Result<std::string> CertificateSha256Fingerprint(const std::string& cert_pem) {
  BioPtr bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  if (!bio) return core::InternalError("fingerprint: out of memory");
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) return core::InvalidArgumentError("fingerprint: not a PEM certificate");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert.get(), EVP_sha256(), digest, &len) != 1) {
    return core::InternalError("fingerprint: X509_digest failed");
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    if (i > 0) out.push_back(':');
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
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
