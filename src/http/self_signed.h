// A self-signed development certificate for `moatless serve --tls-self-signed`: TLS on the
// gateway without a CA, for local work only (browsers and clients trust it only when told to).
//
// EnsureSelfSignedCertificate keeps one certificate and key in a private folder of the data
// directory and reuses them across restarts, so that a client told to trust the certificate once
// keeps trusting it. The certificate is EC P-256, subject CN=localhost, subjectAltName
// DNS:localhost, IP:127.0.0.1 and IP:::1, a leaf (CA:FALSE, serverAuth), signed with SHA-256 by
// its own key and valid for 30 days (from an hour before it was made, for clock skew). It is built
// with OpenSSL's EVP and X509 APIs; the serial number comes from the injected core::Random, the key
// from OpenSSL's own generator.
//
// Not thread-safe for the same folder: one daemon owns its data directory (the data-dir lock).
#pragma once

#include <string>

#include "core/clock.h"
#include "core/random.h"
#include "core/status.h"

namespace moatless::http {

struct SelfSignedCertificate {
  std::string cert_file;           // <dir>/self-signed-cert.pem, mode 0600
  std::string key_file;            // <dir>/self-signed-key.pem, mode 0600
  std::string sha256_fingerprint;  // "AB:CD:...", as `openssl x509 -fingerprint -sha256` shows
  bool generated = false;          // false: the existing files were reused
};

// Creates `dir` (mode 0700; an existing one is set to 0700) and returns the certificate in it.
// The existing files are reused when the server could load them as they are (key a regular file
// no group or other can access, both parse, the key matches the certificate) and the certificate
// is valid now and for at least another day by `clock`; otherwise a new pair is generated and
// replaces them (each file written under a temporary name, synced and renamed into place).
// Errors (FailedPrecondition / Internal) name the file and what failed.
core::Result<SelfSignedCertificate> EnsureSelfSignedCertificate(const std::string& dir,
                                                                const core::Clock& clock,
                                                                core::Random& random);

}  // namespace moatless::http
