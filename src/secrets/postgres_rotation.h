// PostgresRotation: the built-in rotation function kPostgresRotationArn names — single-user
// rotation of a PostgreSQL role's password, step for step what AWS's
// SecretsManagerRDSPostgreSQLRotationSingleUser does, against a server reached with libpq.
//
// The secret's value is the AWS RDS JSON shape
//   {"engine": "postgres", "host": "...", "port": 5432, "username": "...", "password": "...",
//    "dbname": "..."}
// ("engine" optional but "postgres" if given; "port" a number or a numeric string, 5432 when
// absent; "dbname" "postgres" when absent; other fields are carried over untouched). The role
// changes its own password (it must be allowed to log in; PostgreSQL lets a role ALTER its own
// password without further privileges).
//
// The steps (rotation.h gives the protocol; each is idempotent, so it may run again after a crash):
//   every step    the token must be a version of the secret; if it already holds AWSCURRENT the
//                 rotation is done (finishSecret also drops a leftover AWSPENDING from it); it
//                 must hold AWSPENDING;
//   createSecret  unless version TOKEN has a value already: AWSCURRENT's value with a new random
//                 password (32 characters, none of / @ " ' \ or space), stored into version TOKEN;
//   setSecret     logs in with the pending password (if that works it is set already), else with
//                 AWSCURRENT's, else with AWSPREVIOUS's, else with those of the three newest
//                 unlabelled versions (a rotation abandoned after its setSecret left the server
//                 with its password), and runs ALTER ROLE ... PASSWORD with a
//                 SCRAM-SHA-256 verifier computed here (PQencryptPasswordConn), so the plaintext
//                 never reaches the server, its logs or pg_stat_statements. The current and
//                 older passwords are only ever sent to the host, port and role of the pending
//                 value, and only when the version they come from names the same ones;
//   testSecret    logs in with the pending value and runs SELECT 1;
//   finishSecret  moves AWSCURRENT to TOKEN (AWSPREVIOUS follows), then removes AWSPENDING.
//
// Errors are Status values saying which step failed and why: a secret value that is not the RDS
// shape (kInvalidArgument, naming the field, never its value), a version that is not pending
// (kFailedPrecondition), a server that cannot be reached or logged into (kUnavailable, with
// libpq's message, which never contains a password), a statement the server refused
// (kFailedPrecondition). Passwords and the JSON values that hold them live in wiped memory
// (core::SecretBytes, and a wiping allocator for Boost.JSON's trees).
//
// Thread safety: keeps no state between calls; the SecretStore and the Random are thread-safe.
// Calls for different secrets may run at once; the steps of one rotation must not overlap (the
// Rotator runs them one after another from one worker). A step blocks while it talks to the
// server (each login attempt gives up after Options::connect_timeout).
#pragma once

#include <chrono>
#include <string>

#include "core/random.h"
#include "core/status.h"
#include "secrets/password.h"
#include "secrets/rotation.h"
#include "secrets/secret_store.h"

namespace moatless::secrets {

// Characters a generated password never holds: those that break connection URIs and strings
// (/ @ space) or SQL and shell quoting (" ' \), as AWS's rotation functions exclude by default.
inline constexpr std::string_view kPostgresPasswordExclusions = "/@\"'\\";

struct PostgresRotationOptions {
  // How long one login attempt may take (libpq's connect_timeout; whole seconds, at least 2).
  std::chrono::seconds connect_timeout{5};
  // libpq's sslmode for every connection: "prefer" uses TLS when the server offers it.
  std::string sslmode = "prefer";
  // The new passwords (include_space stays false: a space is excluded too).
  PasswordOptions password{.length = 32,
                           .exclude_characters = std::string(kPostgresPasswordExclusions)};
};

class PostgresRotation {
 public:
  using Options = PostgresRotationOptions;
  // `store` and `random` must outlive the rotation function.
  PostgresRotation(SecretStore& store, core::Random& random, Options options = {});

  // Runs one step of the rotation of event.secret_arn to version event.token (event.step is one
  // of kCreateSecret, kSetSecret, kTestSecret, kFinishSecret).
  core::Status RunStep(const RotationEvent& event);

 private:
  core::Status CreateSecret(const SecretInfo& secret, const std::string& token);
  core::Status SetSecret(const SecretInfo& secret, const std::string& token);
  core::Status TestSecret(const SecretInfo& secret, const std::string& token);
  core::Status FinishSecret(const SecretInfo& secret, const std::string& token);

  SecretStore& store_;
  core::Random& random_;
  const Options options_;
};

}  // namespace moatless::secrets
