// TLS configuration for the server and the client, on OpenSSL 3 through asio::ssl.
//
// Server contexts accept TLS 1.2 and 1.3 only (1.3 preferred by OpenSSL's negotiation), with
// forward-secret AEAD cipher suites for 1.2, no compression, no renegotiation, no session
// tickets, and ALPN "http/1.1". The private key file must not be accessible by group or others:
// a key others could read is refused, not loaded. The key is read through the same descriptor
// that was checked, held in core::SecretBytes and wiped once OpenSSL has parsed it.
// Client contexts verify the server's chain (a CA file, or the system store) and, per
// connection, its host name (see client.h). Contexts are immutable once built and shared by
// connections through shared_ptr; asio::ssl::context is safe to use from many connections.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "core/status.h"

namespace moatless::http {

struct TlsOptions {
  std::string cert_file;  // PEM certificate chain, leaf first
  std::string key_file;   // PEM private key, mode 0600 or stricter
  bool tls13_only = false;
};

// InvalidArgument / FailedPrecondition with a message naming the file and what is wrong with it.
core::Result<std::shared_ptr<boost::asio::ssl::context>> MakeServerTlsContext(
    const TlsOptions& options);

// `ca_file` empty: the system's default trust store. `verify` false disables chain and
// host-name verification (for tests against self-signed servers only).
core::Result<std::shared_ptr<boost::asio::ssl::context>> MakeClientTlsContext(
    const std::string& ca_file, bool verify);

}  // namespace moatless::http
