#include "http/self_signed.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

#include "http/tls.h"

namespace moatless::http {
namespace {

constexpr long kValiditySeconds = 30L * 86400;
constexpr long kBackdateSeconds = 3600;
constexpr long kMinRemainingSeconds = 86400;
constexpr const char* kSubjectAltName = "DNS:localhost,IP:127.0.0.1,IP:::1";

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
void FreeBio(BIO* bio) { BIO_free(bio); }
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, FreeBio>>;

std::string Errno(int err) { return std::strerror(err); }

core::Status Failed(const std::string& what) {
  return core::InternalError("self-signed certificate: " + what);
}

// Everything a BIO holds, as one string.
std::string BioBytes(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

core::Status EnsurePrivateDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return core::FailedPreconditionError("creating TLS folder '" + dir + "': " + Errno(errno));
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    return core::FailedPreconditionError("TLS folder '" + dir + "': " + Errno(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return core::FailedPreconditionError("TLS folder '" + dir + "' is not a directory");
  }
  if ((st.st_mode & 07777) != 0700 && ::chmod(dir.c_str(), 0700) != 0) {
    return core::FailedPreconditionError("TLS folder '" + dir + "': chmod 0700: " + Errno(errno));
  }
  return core::Status::Ok();
}

// Writes `bytes` to `path` with mode 0600 through a temporary file that is synced and renamed
// over it, so that a crash leaves the old file or the new one, never half of one.
core::Status WritePrivateFile(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // left over from an interrupted write
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return core::FailedPreconditionError("writing '" + tmp + "': " + Errno(errno));
  std::size_t done = 0;
  int err = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (err == 0 && ::fchmod(fd, 0600) != 0) err = errno;  // whatever the umask did
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    return core::FailedPreconditionError("writing '" + path + "': " + Errno(err));
  }
  return core::Status::Ok();
}

core::Result<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::FailedPreconditionError("reading '" + path + "'");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Whether the files in place can be served as they are for at least another day.
bool Reusable(const std::string& cert_file, const std::string& key_file, std::time_t now,
              std::string* cert_pem) {
  // The server's own loader checks what matters: key mode, formats, key matching the cert.
  if (!MakeServerTlsContext({.cert_file = cert_file, .key_file = key_file}).ok()) return false;
  auto pem = ReadSmallFile(cert_file);
  if (!pem.ok()) return false;
  BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  if (!bio) return false;
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return false;
  std::time_t soon = now + kMinRemainingSeconds;
  if (X509_cmp_time(X509_get0_notBefore(cert.get()), &now) >= 0) return false;
  if (X509_cmp_time(X509_get0_notAfter(cert.get()), &soon) <= 0) return false;
  *cert_pem = std::move(pem).value();
  return true;
}

core::Status AddExtension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return Failed(std::string("extension ") + OBJ_nid2sn(nid));
  }
  return core::Status::Ok();
}

core::Status Generate(std::time_t now, core::Random& random, const std::string& cert_file,
                      const std::string& key_file, std::string* cert_pem) {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Failed("EC P-256 key generation");
  X509Ptr cert(X509_new());
  if (!cert) return Failed("X509_new");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) return Failed("version");

  // 127 random bits: positive and non-zero, under RFC 5280's 20 octets.
  std::array<std::uint8_t, 16> serial{};
  random.Fill(serial);
  serial[0] = static_cast<std::uint8_t>((serial[0] & 0x7f) | 0x01);
  BnPtr bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return Failed("serial number");
  }
  if (X509_time_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds, &now) == nullptr ||
      X509_time_adj(X509_getm_notAfter(cert.get()), kValiditySeconds, &now) == nullptr) {
    return Failed("validity");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("localhost"), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1) {
    return Failed("subject");
  }
  if (X509_set_pubkey(cert.get(), key.get()) != 1) return Failed("public key");
  // A leaf, not a CA: browsers refuse a CA certificate as a server's own.
  RETURN_IF_ERROR(AddExtension(cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExtension(cert.get(), NID_key_usage, "critical,digitalSignature"));
  RETURN_IF_ERROR(AddExtension(cert.get(), NID_ext_key_usage, "serverAuth"));
  RETURN_IF_ERROR(AddExtension(cert.get(), NID_subject_alt_name, kSubjectAltName));
  RETURN_IF_ERROR(AddExtension(cert.get(), NID_subject_key_identifier, "hash"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) return Failed("signing");

  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  if (!cert_bio || PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1) {
    return Failed("PEM certificate");
  }
  // A secure-memory BIO: the key's PEM is wiped when it is freed.
  BioPtr key_bio(BIO_new(BIO_s_secmem()));
  if (!key_bio || PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                           nullptr) != 1) {
    return Failed("PEM key");
  }
  char* key_data = nullptr;
  const long key_len = BIO_get_mem_data(key_bio.get(), &key_data);
  if (key_len <= 0) return Failed("PEM key");
  // The key first: a certificate without its key would be refused, the reverse is just replaced.
  RETURN_IF_ERROR(
      WritePrivateFile(key_file, std::string_view(key_data, static_cast<std::size_t>(key_len))));
  *cert_pem = BioBytes(cert_bio.get());
  return WritePrivateFile(cert_file, *cert_pem);
}

}  // namespace

core::Result<SelfSignedCertificate> EnsureSelfSignedCertificate(const std::string& dir,
                                                                const core::Clock& clock,
                                                                core::Random& random) {
  RETURN_IF_ERROR(EnsurePrivateDir(dir));
  SelfSignedCertificate out;
  out.cert_file = dir + "/self-signed-cert.pem";
  out.key_file = dir + "/self-signed-key.pem";
  const std::time_t now = std::chrono::system_clock::to_time_t(clock.Now());
  std::string cert_pem;
  if (!Reusable(out.cert_file, out.key_file, now, &cert_pem)) {
    RETURN_IF_ERROR(Generate(now, random, out.cert_file, out.key_file, &cert_pem));
    out.generated = true;
  }
  ASSIGN_OR_RETURN(out.sha256_fingerprint, CertificateSha256Fingerprint(cert_pem));
  return out;
}

}  // namespace moatless::http
