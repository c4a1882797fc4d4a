#include "secrets/postgres_rotation.h"

#include <libpq-fe.h>
#include <sodium.h>

#include <array>
#include <boost/json.hpp>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moatless::secrets {
namespace {

namespace json = boost::json;

// Boost.JSON storage that is wiped when released: the trees parsed from secret values hold the
// passwords.
class WipingResource final : public json::memory_resource {
 private:
  // malloc, not aligned operator new: Boost.JSON does not always pass the alignment it allocated
  // with to deallocate (ASan's new-delete-type-mismatch), and never needs more than malloc's.
  void* do_allocate(std::size_t bytes, std::size_t align) override {
    if (align > alignof(std::max_align_t)) throw std::bad_alloc();
    void* p = std::malloc(bytes == 0 ? 1 : bytes);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t) override {
    sodium_memzero(p, bytes);
    std::free(p);
  }
  bool do_is_equal(const json::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

json::storage_ptr WipingStorage() { return json::make_shared_resource<WipingResource>(); }

// Parses a secret value into `storage`, with the parser's scratch space on the stack (wiped) and
// in `storage`. The error never quotes the text.
core::Result<json::value> ParseSecretJson(const core::SecretBytes& text,
                                          const json::storage_ptr& storage) {
  unsigned char scratch[4096];
  core::Result<json::value> out = core::InternalError("unreachable");
  try {
    json::parser parser(storage, json::parse_options(), scratch, sizeof scratch);
    parser.reset(storage);
    boost::system::error_code ec;
    parser.write(text.Reveal().data(), text.size(), ec);
    if (ec) {
      out = core::InvalidArgumentError("is not JSON (" + ec.message() + ")");
    } else {
      out = parser.release();
    }
  } catch (const std::exception& e) {
    out = core::InternalError(std::string("parsing it failed: ") + e.what());
  }
  sodium_memzero(scratch, sizeof scratch);
  return out;
}

// Serialises straight into wiped memory.
core::Result<core::SecretBytes> SerializeSecretJson(const json::value& value) {
  core::SecretBytes out;
  try {
    json::serializer serializer;
    serializer.reset(&value);
    std::size_t used = 0;
    out.Resize(1024);
    while (!serializer.done()) {
      if (used == out.size()) out.Resize(out.size() * 2);
      auto free = out.MutableBytes().subspan(used);
      used += serializer.read(reinterpret_cast<char*>(free.data()), free.size()).size();
    }
    out.Resize(used);
  } catch (const std::exception& e) {
    return core::InternalError(std::string("serialising the new value failed: ") + e.what());
  }
  return out;
}

// `bytes` and a NUL, for libpq's C strings.
core::SecretBytes CString(std::string_view bytes) {
  core::SecretBytes out;
  out.Resize(bytes.size() + 1);
  auto storage = out.MutableBytes();
  std::memcpy(storage.data(), bytes.data(), bytes.size());
  storage[bytes.size()] = 0;
  return out;
}
const char* CStr(const core::SecretBytes& c_string) {
  return reinterpret_cast<const char*>(c_string.RevealBytes().data());
}

// Where and as whom to log in, from a secret value in the RDS shape.
struct Credentials {
  std::string host;
  std::string port;
  std::string username;
  std::string dbname;
  core::SecretBytes password;

  // Whether a password of `other` may be sent where these credentials log in.
  bool SameTarget(const Credentials& other) const {
    return host == other.host && port == other.port && username == other.username;
  }
};

// Errors about a value are fragments that follow "the AWSCURRENT value of ARN " (Of).
core::Status Missing(std::string_view field, std::string_view what) {
  return core::InvalidArgumentError("has no field \"" + std::string(field) + "\" (" +
                                    std::string(what) + ")");
}
core::Status Invalid(std::string_view field, std::string_view what) {
  return core::InvalidArgumentError("has a field \"" + std::string(field) + "\" that is not " +
                                    std::string(what));
}
core::Status Of(const std::string& which, const core::Status& error) {
  return core::Status(error.code(), which + " " + error.message());
}

// A string member, or nullptr if it is absent. Not a string (or holding a NUL, which a C string
// cannot carry): an error naming the field.
core::Result<const json::string*> StringField(const json::object& object, std::string_view field,
                                              std::string_view what) {
  const json::value* member = object.if_contains(field);
  if (member == nullptr) return static_cast<const json::string*>(nullptr);
  const json::string* text = member->if_string();
  if (text == nullptr || std::string_view(*text).find('\0') != std::string_view::npos) {
    return Invalid(field, what);
  }
  return text;
}

core::Result<Credentials> ReadCredentials(const json::value& value) {
  const json::object* object = value.if_object();
  if (object == nullptr) return core::InvalidArgumentError("is not a JSON object");
  Credentials out;
  ASSIGN_OR_RETURN(const json::string* engine, StringField(*object, "engine", "\"postgres\""));
  if (engine != nullptr && *engine != "postgres") {
    return Invalid("engine", "\"postgres\"");
  }
  ASSIGN_OR_RETURN(const json::string* host,
                   StringField(*object, "host", "a host name or address"));
  if (host == nullptr || host->empty()) return Missing("host", "a host name or address");
  out.host = std::string(*host);
  ASSIGN_OR_RETURN(const json::string* username, StringField(*object, "username", "a role name"));
  if (username == nullptr || username->empty()) return Missing("username", "a role name");
  out.username = std::string(*username);
  ASSIGN_OR_RETURN(const json::string* password, StringField(*object, "password", "a string"));
  if (password == nullptr) return Missing("password", "a string");
  out.password = core::SecretBytes(std::string_view(*password));
  ASSIGN_OR_RETURN(const json::string* dbname, StringField(*object, "dbname", "a database name"));
  out.dbname = dbname != nullptr && !dbname->empty() ? std::string(*dbname) : "postgres";

  std::int64_t port = 5432;
  if (const json::value* member = object->if_contains("port"); member != nullptr) {
    constexpr std::string_view kPortWhat = "a port number (1 to 65535) or a string of one";
    if (const auto* number = member->if_int64()) {
      port = *number;
    } else if (const auto* unsigned_number = member->if_uint64()) {
      port = *unsigned_number > 65535 ? 0 : static_cast<std::int64_t>(*unsigned_number);
    } else if (const json::string* text = member->if_string();
               text != nullptr && !text->empty() && text->size() <= 5) {
      port = 0;
      for (char c : *text) {
        if (c < '0' || c > '9') return Invalid("port", kPortWhat);
        port = port * 10 + (c - '0');
      }
    } else {
      return Invalid("port", kPortWhat);
    }
    if (port < 1 || port > 65535) return Invalid("port", kPortWhat);
  }
  out.port = std::to_string(port);
  return out;
}

// Reads and checks one version's value. Errors say which version ("the AWSCURRENT value of ARN").
core::Result<Credentials> LoadCredentials(SecretStore& store, const std::string& arn,
                                          std::string_view version_id, std::string_view stage) {
  const std::string which = "the " + std::string(stage) + " value of " + arn;
  auto value = store.GetValue(arn, version_id, stage);
  if (!value.ok()) return value.status().Annotate("reading " + which);
  if (value->kind != ValueKind::kString) {
    return core::InvalidArgumentError(which + " is binary, not a JSON object");
  }
  const json::storage_ptr storage = WipingStorage();
  auto parsed = ParseSecretJson(value->value, storage);
  if (!parsed.ok()) return Of(which, parsed.status());
  auto credentials = ReadCredentials(*parsed);
  if (!credentials.ok()) return Of(which, credentials.status());
  return credentials;
}

// libpq's message on one line, with any of `secrets` taken out (libpq does not echo passwords;
// this makes sure no future version or odd server does it through us).
std::string LibpqMessage(std::string_view message,
                         std::initializer_list<std::string_view> secrets) {
  std::string out(message);
  for (std::string_view secret : secrets) {
    if (secret.empty()) continue;
    constexpr std::string_view kRedacted = "[redacted]";
    for (std::size_t at = out.find(secret); at != std::string::npos;
         at = out.find(secret, at + kRedacted.size())) {
      out.replace(at, secret.size(), kRedacted);
    }
  }
  std::string line;
  for (char c : out) {
    const bool space = c == '\n' || c == '\t' || c == ' ';
    if (!space) {
      line += c;
    } else if (!line.empty() && line.back() != ' ') {
      line += ' ';
    }
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

struct ConnectionCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using Connection = std::unique_ptr<PGconn, ConnectionCloser>;

struct ResultClearer {
  void operator()(PGresult* result) const { PQclear(result); }
};
using QueryResult = std::unique_ptr<PGresult, ResultClearer>;

// Frees memory libpq allocated after wiping it.
struct WipingFree {
  void operator()(char* p) const {
    if (p == nullptr) return;
    sodium_memzero(p, std::strlen(p));
    PQfreemem(p);
  }
};
using LibpqString = std::unique_ptr<char, WipingFree>;

void IgnoreNotice(void*, const char*) {}

// Logs in to the server and database `target` names, as its user, with `password`.
core::Result<Connection> Connect(const Credentials& target, const core::SecretBytes& password,
                                 const PostgresRotationOptions& options) {
  const core::SecretBytes password_c = CString(password.Reveal());
  const std::string timeout = std::to_string(options.connect_timeout.count());
  const std::pair<const char*, const char*> params[] = {
      {"host", target.host.c_str()},
      {"port", target.port.c_str()},
      {"user", target.username.c_str()},
      {"password", CStr(password_c)},
      {"dbname", target.dbname.c_str()},
      {"sslmode", options.sslmode.c_str()},
      // No Kerberos: password roles only, and no wait on a ticket cache.
      {"gssencmode", "disable"},
      {"connect_timeout", timeout.c_str()},
      {"application_name", "moatless-rotation"},
  };
  constexpr std::size_t kParams = sizeof params / sizeof params[0];
  std::array<const char*, kParams + 1> keywords{};
  std::array<const char*, kParams + 1> values{};
  for (std::size_t i = 0; i < kParams; ++i) {
    keywords[i] = params[i].first;
    values[i] = params[i].second;
  }
  // expand_dbname = 0: a dbname is only ever a database name, never a connection string.
  Connection conn(PQconnectdbParams(keywords.data(), values.data(), /*expand_dbname=*/0));
  if (conn == nullptr) return core::InternalError("libpq could not allocate a connection");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return core::UnavailableError(LibpqMessage(PQerrorMessage(conn.get()), {password.Reveal()}));
  }
  // Notices go nowhere (libpq prints them on stderr by default), and server errors come back
  // without the statement text (which may hold a password verifier).
  PQsetNoticeProcessor(conn.get(), IgnoreNotice, nullptr);
  PQsetErrorVerbosity(conn.get(), PQERRORS_TERSE);
  return conn;
}

std::string Where(const Credentials& target) {
  return target.host + ":" + target.port + " as " + target.username;
}

// Copies `parts` into one NUL-terminated string in wiped memory.
core::SecretBytes Concat(std::initializer_list<std::string_view> parts) {
  std::size_t size = 1;
  for (std::string_view part : parts) size += part.size();
  core::SecretBytes out;
  out.Resize(size);
  auto storage = out.MutableBytes();
  std::size_t at = 0;
  for (std::string_view part : parts) {
    std::memcpy(storage.data() + at, part.data(), part.size());
    at += part.size();
  }
  storage[at] = 0;
  return out;
}

// ALTER ROLE <user> PASSWORD '<SCRAM-SHA-256 verifier of password>', on a logged-in connection.
core::Status SetPassword(PGconn* conn, const std::string& username,
                         const core::SecretBytes& password) {
  const core::SecretBytes password_c = CString(password.Reveal());
  LibpqString verifier(
      PQencryptPasswordConn(conn, CStr(password_c), username.c_str(), "scram-sha-256"));
  if (verifier == nullptr) {
    return core::InternalError("computing the password verifier failed: " +
                               LibpqMessage(PQerrorMessage(conn), {password.Reveal()}));
  }
  LibpqString literal(PQescapeLiteral(conn, verifier.get(), std::strlen(verifier.get())));
  LibpqString identifier(PQescapeIdentifier(conn, username.data(), username.size()));
  if (literal == nullptr || identifier == nullptr) {
    return core::InternalError("quoting the role or its password verifier failed: " +
                               LibpqMessage(PQerrorMessage(conn), {password.Reveal()}));
  }
  const core::SecretBytes statement =
      Concat({"ALTER ROLE ", identifier.get(), " PASSWORD ", literal.get()});
  QueryResult result(PQexec(conn, CStr(statement)));
  if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    return core::FailedPreconditionError(
        "the server refused ALTER ROLE " + std::string(identifier.get()) + " PASSWORD: " +
        LibpqMessage(result != nullptr ? PQresultErrorMessage(result.get()) : PQerrorMessage(conn),
                     {password.Reveal(), verifier.get()}));
  }
  return core::Status::Ok();
}

bool HasLabel(const std::vector<std::string>& labels, std::string_view label) {
  for (const std::string& l : labels) {
    if (l == label) return true;
  }
  return false;
}

}  // namespace

PostgresRotation::PostgresRotation(SecretStore& store, core::Random& random, Options options)
    : store_(store), random_(random), options_(std::move(options)) {}

core::Status PostgresRotation::RunStep(const RotationEvent& event) {
  const std::string& step = event.step;
  if (step != kCreateSecret && step != kSetSecret && step != kTestSecret && step != kFinishSecret) {
    return core::InvalidArgumentError("unknown rotation step \"" + step + "\"");
  }
  auto secret = store_.Describe(event.secret_arn);
  if (!secret.ok()) return secret.status().Annotate(step);
  const std::string& token = event.token;
  auto labels = secret->version_stages.find(token);
  if (token.empty() || labels == secret->version_stages.end()) {
    return core::FailedPreconditionError(step + ": version \"" + token + "\" of " + secret->arn +
                                         " has no staging label; a rotation needs it AWSPENDING");
  }
  if (HasLabel(labels->second, kCurrent)) {
    // The rotation to this version is done. A crash between finishSecret's two label moves leaves
    // AWSPENDING on it too.
    if (step == kFinishSecret && HasLabel(labels->second, kPending)) {
      core::Status dropped = store_.MoveLabel(secret->arn, std::string(kPending), token, "");
      if (!dropped.ok()) return dropped.Annotate(step);
    }
    return core::Status::Ok();
  }
  if (!HasLabel(labels->second, kPending)) {
    return core::FailedPreconditionError(step + ": version \"" + token + "\" of " + secret->arn +
                                         " is not AWSPENDING, so it is not being rotated to");
  }
  core::Status done;
  if (step == kCreateSecret) {
    done = CreateSecret(*secret, token);
  } else if (step == kSetSecret) {
    done = SetSecret(*secret, token);
  } else if (step == kTestSecret) {
    done = TestSecret(*secret, token);
  } else {
    done = FinishSecret(*secret, token);
  }
  return done.ok() ? done : done.Annotate(step);
}

core::Status PostgresRotation::CreateSecret(const SecretInfo& secret, const std::string& token) {
  const std::string& arn = secret.arn;
  const std::string which = "the AWSCURRENT value of " + arn;
  auto current = store_.GetValue(arn, "", kCurrent);
  if (!current.ok()) return current.status().Annotate("reading " + which);
  if (current->kind != ValueKind::kString) {
    return core::InvalidArgumentError(which + " is binary, not a JSON object");
  }
  const json::storage_ptr storage = WipingStorage();
  auto parsed = ParseSecretJson(current->value, storage);
  if (!parsed.ok()) return Of(which, parsed.status());
  if (auto checked = ReadCredentials(*parsed); !checked.ok()) {
    return Of(which, checked.status());
  }

  auto pending = store_.GetValue(arn, token, kPending);
  if (pending.ok()) return core::Status::Ok();  // made by an earlier run of this step
  if (pending.status().code() != core::StatusCode::kNotFound) {
    return pending.status().Annotate("reading the AWSPENDING value of " + arn);
  }

  auto password = RandomPassword(options_.password, random_);
  if (!password.ok()) return password.status().Annotate("generating the new password");
  core::Result<core::SecretBytes> text = core::InternalError("unreachable");
  try {
    parsed->as_object().insert_or_assign("password", json::string(password->Reveal(), storage));
    text = SerializeSecretJson(*parsed);
  } catch (const std::exception& e) {
    return core::InternalError(std::string("making the new value failed: ") + e.what());
  }
  if (!text.ok()) return text.status();
  auto written =
      store_.PutValue(arn, NewValue{.kind = ValueKind::kString, .bytes = std::move(*text)}, token,
                      {std::string(kPending)});
  if (!written.ok()) return written.status().Annotate("storing the AWSPENDING value of " + arn);
  return core::Status::Ok();
}

core::Status PostgresRotation::SetSecret(const SecretInfo& secret, const std::string& token) {
  const std::string& arn = secret.arn;
  ASSIGN_OR_RETURN(Credentials pending, LoadCredentials(store_, arn, token, kPending));
  // Set already (an earlier run of this step got this far)?
  if (Connect(pending, pending.password, options_).ok()) return core::Status::Ok();

  ASSIGN_OR_RETURN(Credentials current, LoadCredentials(store_, arn, "", kCurrent));
  if (!current.SameTarget(pending)) {
    // Never send the current password to a server or role the current value does not name.
    return core::FailedPreconditionError(
        "the AWSPENDING value of " + arn +
        " names another host, port or username than the AWSCURRENT value");
  }
  auto conn = Connect(pending, current.password, options_);
  const core::Status current_error = conn.status();
  if (!conn.ok() && secret.VersionWith(kPrevious) != nullptr) {
    // The server may still have the previous password, e.g. after an AWSCURRENT put by hand.
    auto previous = LoadCredentials(store_, arn, "", kPrevious);
    if (previous.ok() && previous->SameTarget(pending)) {
      conn = Connect(pending, previous->password, options_);
    }
  }
  if (!conn.ok()) {
    // A rotation that failed after its setSecret left its value, unlabelled, as the one the
    // server has: try the newest such versions too.
    auto versions = store_.ListVersions(arn, /*include_deprecated=*/true);
    int tried = 0;
    for (std::size_t i = 0; versions.ok() && i < versions->size() && !conn.ok() && tried < 3; ++i) {
      const VersionInfo& version = (*versions)[i];
      if (!version.stages.empty() || version.version_id == token) continue;
      ++tried;
      auto abandoned = LoadCredentials(store_, arn, version.version_id, "");
      if (abandoned.ok() && abandoned->SameTarget(pending)) {
        conn = Connect(pending, abandoned->password, options_);
      }
    }
  }
  if (!conn.ok()) {
    return core::UnavailableError("could not log in to " + Where(pending) +
                                  " with the pending, current, previous or a recently abandoned "
                                  "password (with the current one: " +
                                  current_error.message() + ")");
  }
  core::Status set = SetPassword(conn->get(), pending.username, pending.password);
  if (!set.ok()) return set.Annotate("on " + Where(pending));
  return core::Status::Ok();
}

core::Status PostgresRotation::TestSecret(const SecretInfo& secret, const std::string& token) {
  ASSIGN_OR_RETURN(Credentials pending, LoadCredentials(store_, secret.arn, token, kPending));
  auto conn = Connect(pending, pending.password, options_);
  if (!conn.ok()) {
    return core::UnavailableError("could not log in to " + Where(pending) +
                                  " with the pending password: " + conn.status().message());
  }
  QueryResult result(PQexec(conn->get(), "SELECT 1"));
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK || PQntuples(result.get()) != 1) {
    return core::FailedPreconditionError("SELECT 1 failed on " + Where(pending) + ": " +
                                         LibpqMessage(result != nullptr
                                                          ? PQresultErrorMessage(result.get())
                                                          : PQerrorMessage(conn->get()),
                                                      {pending.password.Reveal()}));
  }
  return core::Status::Ok();
}

core::Status PostgresRotation::FinishSecret(const SecretInfo& secret, const std::string& token) {
  const std::string* current = secret.VersionWith(kCurrent);
  // AWSCURRENT first: a crash between the two moves leaves AWSCURRENT (and AWSPENDING) on the new
  // version, which RunStep finishes; the other order could lose the password the server has.
  core::Status moved = store_.MoveLabel(secret.arn, std::string(kCurrent),
                                        current != nullptr ? *current : "", token);
  if (!moved.ok()) return moved.Annotate("moving AWSCURRENT");
  moved = store_.MoveLabel(secret.arn, std::string(kPending), token, "");
  if (!moved.ok()) return moved.Annotate("removing AWSPENDING");
  return core::Status::Ok();
}

}  // namespace moatless::secrets
