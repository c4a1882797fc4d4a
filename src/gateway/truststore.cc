#include "gateway/truststore.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <vector>

namespace moatless::gateway {
namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};

// Every certificate of a PEM text, in order; an error for text that holds none or is damaged.
core::Result<std::vector<X509Ptr>> ReadCertificates(std::string_view pem, std::string_view what) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (!bio) return core::InternalError("out of memory reading " + std::string(what));
  std::vector<X509Ptr> out;
  while (true) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert == nullptr) break;
    out.emplace_back(cert);
  }
  // The loop ends on "no start line" at the end of the input; anything else is damage.
  const unsigned long error = ERR_peek_last_error();
  if (error != 0 &&
      !(ERR_GET_LIB(error) == ERR_LIB_PEM && ERR_GET_REASON(error) == PEM_R_NO_START_LINE)) {
    ERR_clear_error();
    return core::InvalidArgumentError(std::string(what) + ": a certificate does not parse");
  }
  ERR_clear_error();
  return out;
}

}  // namespace

struct Truststore::Impl {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store{nullptr, &X509_STORE_free};
  int count = 0;
};

core::Result<Truststore> Truststore::FromPem(std::string_view pem) {
  ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ReadCertificates(pem, "mTLS truststore"));
  if (certs.empty()) {
    return core::InvalidArgumentError("mTLS truststore: no PEM certificate in it");
  }
  auto impl = std::make_shared<Impl>();
  impl->store.reset(X509_STORE_new());
  if (!impl->store) return core::InternalError("out of memory building the mTLS truststore");
  for (const X509Ptr& cert : certs) {
    if (X509_check_ca(cert.get()) == 0) {
      char name[256];
      X509_NAME_oneline(X509_get_subject_name(cert.get()), name, sizeof name);
      return core::InvalidArgumentError(std::string("mTLS truststore: ") + name +
                                        " is not a CA certificate");
    }
    if (X509_STORE_add_cert(impl->store.get(), cert.get()) != 1) {
      ERR_clear_error();  // a duplicate: harmless
    }
    ++impl->count;
  }
  return Truststore(std::move(impl));
}

core::Status Truststore::Verify(std::string_view leaf_pem, std::string_view chain_pem,
                                core::WallTime now) const {
  ASSIGN_OR_RETURN(std::vector<X509Ptr> leaf, ReadCertificates(leaf_pem, "client certificate"));
  if (leaf.size() != 1) {
    return core::InvalidArgumentError("client certificate: expected exactly one certificate");
  }
  ASSIGN_OR_RETURN(std::vector<X509Ptr> chain, ReadCertificates(chain_pem, "client chain"));
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  if (!untrusted) return core::InternalError("out of memory verifying a client certificate");
  for (X509Ptr& cert : chain) {
    if (sk_X509_push(untrusted.get(), cert.get()) == 0) {
      return core::InternalError("out of memory verifying a client certificate");
    }
    cert.release();  // owned by the stack now
  }
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      &X509_STORE_CTX_free);
  if (!ctx ||
      X509_STORE_CTX_init(ctx.get(), impl_->store.get(), leaf[0].get(), untrusted.get()) != 1) {
    ERR_clear_error();
    return core::InternalError("could not set up client certificate verification");
  }
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  X509_STORE_CTX_set_time(
      ctx.get(), 0,
      static_cast<time_t>(
          std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count()));
  const int verified = X509_verify_cert(ctx.get());
  if (verified == 1) return core::Status::Ok();
  const int error = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  return core::PermissionDeniedError(std::string("client certificate refused: ") +
                                     X509_verify_cert_error_string(error));
}

int Truststore::size() const { return impl_->count; }

}  // namespace moatless::gateway
