// TLS configuration for the server and the client, on OpenSSL 3 through asio::ssl.
//
// Server contexts accept TLS 1.2 and 1.3 only (1.3 preferred by OpenSSL's negotiation). For 1.2
// the cipher list is ECDHE key exchange with AEAD ciphers only (AES-GCM, ChaCha20-Poly1305:
// forward secrecy, no CBC, no RSA key transport, no finite-field DHE); TLS 1.3 uses OpenSSL's
// default suites, all AEAD. No compression, no renegotiation, no session tickets, and ALPN
// "http/1.1". The private key file must not be accessible by group or others: a key others could
// read is refused, not loaded. The key is read through the same descriptor that was checked,
// held in core::SecretBytes and wiped once OpenSSL has parsed it.
//
// With TlsOptions::request_client_cert the server asks every client for a certificate but does
// not require one, and accepts whatever chain it is given at the TLS layer: the handshake still
// proves that the client holds the certificate's key, but whether the certificate is trusted is
// for a later layer to decide (per app, against that app's truststore), from the
// ClientCertificate the server attaches to each request (types.h). Session resumption is off on
// such contexts so that every connection presents its certificate afresh.
//
// Client contexts verify the server's chain (a CA file, or the system store) and, per
// connection, its host name (see client.h). Contexts are immutable once built and shared by
// connections through shared_ptr; asio::ssl::context is safe to use from many connections.
// A server's certificate is replaced by building a new context (Server::ReloadTls): connections
// keep the context they were accepted with.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "core/status.h"
#include "http/types.h"

namespace moatless::http {

struct TlsOptions {
  std::string cert_file;  // PEM certificate chain, leaf first
  std::string key_file;   // PEM private key, mode 0600 or stricter
  bool tls13_only = false;
  // Ask clients for a certificate (optional for them; any chain is accepted, see above).
  bool request_client_cert = false;
};

// InvalidArgument / FailedPrecondition with a message naming the file and what is wrong with it.
core::Result<std::shared_ptr<boost::asio::ssl::context>> MakeServerTlsContext(
    const TlsOptions& options);

// The certificate the client of a server-side connection presented, once its handshake is done:
// null without one. An error only if OpenSSL cannot format it (out of memory).
core::Result<std::shared_ptr<const ClientCertificate>> PeerClientCertificate(SSL* ssl);

// The SHA-256 fingerprint of a PEM certificate's DER form, as `openssl x509 -fingerprint
// -sha256` prints it: upper-case hex bytes separated by ':'.
core::Result<std::string> CertificateSha256Fingerprint(const std::string& cert_pem);

// `ca_file` empty: the system's default trust store. `verify` false disables chain and
// host-name verification (for tests against self-signed servers only).
core::Result<std::shared_ptr<boost::asio::ssl::context>> MakeClientTlsContext(
    const std::string& ca_file, bool verify);

}  // namespace moatless::http
