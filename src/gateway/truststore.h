// Truststore: the CA certificates an app's mutual TLS trusts (manifest `mtls: {truststore: FILE}`),
// and the check that a client certificate chains to one of them.
//
// The TLS listener asks for a client certificate but does not judge its chain (one listener
// serves every app, each with its own truststore): TLS proves only that the client holds the
// certificate's key. The gateway then verifies, per request of an mTLS app, the leaf with the
// intermediates the client sent against this truststore with OpenSSL's X509_verify_cert: a chain
// to one of the CAs, every certificate within its validity at `now`, CA constraints on the
// issuers, and the leaf's purpose allowing TLS client authentication (extended key usage
// clientAuth when it has one). Revocation (CRLs, OCSP) is not checked.
//
// Immutable once built; Verify is const and safe from many threads (the X509_STORE is only read).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"

namespace moatless::gateway {

class Truststore {
 public:
  // Every PEM certificate in `pem` (at least one; each must be a CA: basicConstraints CA:TRUE).
  // InvalidArgument naming what is wrong otherwise.
  static core::Result<Truststore> FromPem(std::string_view pem);

  // OK when `leaf_pem` (with the untrusted intermediates in `chain_pem`, PEM, may be empty)
  // chains to one of the CAs at `now`; PermissionDenied with OpenSSL's reason otherwise
  // ("certificate has expired", "unable to get local issuer certificate", ...), InvalidArgument
  // when the PEM does not parse.
  core::Status Verify(std::string_view leaf_pem, std::string_view chain_pem,
                      core::WallTime now) const;

  int size() const;  // how many CA certificates

 private:
  struct Impl;
  explicit Truststore(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace moatless::gateway
