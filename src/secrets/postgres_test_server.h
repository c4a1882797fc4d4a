// Tests only: a throwaway PostgreSQL 15 cluster — Debian's postgresql package, which
// scripts/install-deps installs — in a temporary directory, listening on 127.0.0.1 and a free port
// (and a Unix socket in that directory only), with SCRAM-SHA-256 authentication for everyone and a
// superuser `postgres` whose password is drawn at random. Durability is off (fsync, full page
// writes) to keep it fast, and every statement is logged (log_statement = all) so that tests can
// check what reached the server's log.
//
// PostgreSQL refuses to run as root: as root, the cluster's directory belongs to `nobody` and
// initdb / pg_ctl run as `nobody` through runuser(1); as anyone else they run as that user.
//
// Start fails (never skips) with a message naming scripts/install-deps when the binaries are
// missing. The destructor stops the server (pg_ctl stop -m immediate) and removes the directory;
// if the test binary dies first, a watchdog process does.
// Not synchronised: one test thread uses it.
#pragma once

#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/process.h"
#include "core/random.h"
#include "core/status.h"

namespace moatless::secrets {

inline constexpr std::string_view kPostgresBinDir = "/usr/lib/postgresql/15/bin";

class PostgresTestServer {
 public:
  static core::Result<std::unique_ptr<PostgresTestServer>> Start() {
    for (std::string_view tool : {"initdb", "pg_ctl", "postgres"}) {
      const std::string path = std::string(kPostgresBinDir) + "/" + std::string(tool);
      if (::access(path.c_str(), X_OK) != 0) {
        return core::FailedPreconditionError("PostgreSQL 15 is not installed (" + path +
                                             " is missing): run scripts/install-deps");
      }
    }
    std::unique_ptr<PostgresTestServer> server(new PostgresTestServer());
    RETURN_IF_ERROR(server->Init());
    return server;
  }

  ~PostgresTestServer() {
    if (started_) {
      Run({Bin("pg_ctl"), "-D", data_dir(), "-m", "immediate", "-w", "stop"}, "stop").IgnoreError();
    }
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
    if (watchdog_ != nullptr) {
      watchdog_->Signal(SIGKILL).IgnoreError();
      watchdog_->Wait().status().IgnoreError();
    }
  }

  std::string host() const { return "127.0.0.1"; }
  int port() const { return port_; }

  // Runs `sql` as the superuser; returns the first column of the first row ("" if none).
  core::Result<std::string> Query(const std::string& sql,
                                  const std::string& dbname = "postgres") const {
    PGconn* conn = Connect("postgres", superuser_password_, dbname);
    if (PQstatus(conn) != CONNECTION_OK) {
      const std::string message = PQerrorMessage(conn);
      PQfinish(conn);
      return core::UnavailableError("superuser login: " + message);
    }
    PGresult* result = PQexec(conn, sql.c_str());
    const ExecStatusType status = PQresultStatus(result);
    std::string out;
    core::Status error;
    if (status == PGRES_TUPLES_OK) {
      if (PQntuples(result) > 0) out = PQgetvalue(result, 0, 0);
    } else if (status != PGRES_COMMAND_OK) {
      error = core::InternalError(sql + ": " + PQresultErrorMessage(result));
    }
    PQclear(result);
    PQfinish(conn);
    if (!error.ok()) return error;
    return out;
  }

  // Whether `user` can log in with `password` (OK, or the server's refusal).
  core::Status LogIn(const std::string& user, const std::string& password,
                     const std::string& dbname) const {
    PGconn* conn = Connect(user, password, dbname);
    core::Status out;
    if (PQstatus(conn) != CONNECTION_OK) out = core::UnavailableError(PQerrorMessage(conn));
    PQfinish(conn);
    return out;
  }

  // Everything the server logged so far.
  std::string ServerLog() const { return ReadFile(dir_ + "/server.log"); }

  // A TCP port on 127.0.0.1 that nothing listened on a moment ago.
  static core::Result<int> FreePort() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return core::InternalError("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    ::close(fd);
    if (!ok) return core::InternalError("could not find a free port");
    return static_cast<int>(ntohs(addr.sin_port));
  }

  // Random letters and digits, e.g. for test passwords.
  static std::string RandomText(std::size_t length) {
    static constexpr std::string_view kAlphabet =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    core::SecureRandom random;
    std::string out;
    for (std::size_t i = 0; i < length; ++i) out += kAlphabet[random.Uniform(kAlphabet.size())];
    return out;
  }

 private:
  PostgresTestServer() = default;

  core::Status Init() {
    char tmpl[] = "/tmp/moatless-pg-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return core::InternalError("mkdtemp failed");
    dir_ = tmpl;
    if (::geteuid() == 0) {
      const passwd* nobody = ::getpwnam("nobody");
      if (nobody == nullptr) return core::FailedPreconditionError("there is no user nobody");
      if (::chown(dir_.c_str(), nobody->pw_uid, nobody->pw_gid) != 0) {
        return core::InternalError("chown " + dir_ + " failed");
      }
      run_as_ = "nobody";
      owner_uid_ = nobody->pw_uid;
      owner_gid_ = nobody->pw_gid;
    }
    RETURN_IF_ERROR(StartWatchdog());
    superuser_password_ = RandomText(32);
    const std::string pwfile = dir_ + "/pwfile";
    {
      std::ofstream out(pwfile);
      out << superuser_password_ << "\n";
    }
    ::chmod(pwfile.c_str(), 0600);
    if (!run_as_.empty() && ::chown(pwfile.c_str(), owner_uid_, owner_gid_) != 0) {
      return core::InternalError("chown " + pwfile + " failed");
    }
    core::Status initdb =
        Run({Bin("initdb"), "-D", data_dir(), "-U", "postgres", "-A", "scram-sha-256",
             "--pwfile=" + pwfile, "-E", "UTF8", "--locale=C", "--no-sync"},
            "initdb");
    std::filesystem::remove(pwfile);
    RETURN_IF_ERROR(initdb);
    ASSIGN_OR_RETURN(port_, FreePort());
    const std::string server_options =
        "-k " + dir_ + " -c listen_addresses=127.0.0.1 -p " + std::to_string(port_) +
        " -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=20"
        " -c log_statement=all";
    started_ = true;  // from here on, stop it whatever happens
    core::Status start = Run({Bin("pg_ctl"), "-D", data_dir(), "-l", dir_ + "/server.log", "-o",
                              server_options, "-w", "-t", "120", "start"},
                             "pg_ctl");
    if (!start.ok()) {
      return core::InternalError(start.message() + "\nserver log:\n" + Tail(ServerLog()));
    }
    return core::Status::Ok();
  }

  // A test binary that dies without running the destructor (a crash, an ASan abort, a kill)
  // would leave the server running: a watchdog in a session of its own waits for this process to
  // go, then stops the server (SIGQUIT, immediate shutdown) and removes the directory.
  core::Status StartWatchdog() {
    static constexpr std::string_view kScript = R"(
while kill -0 "$1" 2>/dev/null; do sleep 1; done
pid=$(head -n 1 "$2/data/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2/data"; then
  kill -QUIT "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
fi
rm -rf "$2"
)";
    core::RealProcessLauncher launcher;
    auto watchdog =
        launcher.Launch({.argv = {"/usr/bin/setsid", "/bin/sh", "-c", std::string(kScript),
                                  "postgres-watchdog", std::to_string(::getpid()), dir_},
                         .env = {"PATH=/usr/bin:/bin"}});
    if (!watchdog.ok()) return watchdog.status();
    watchdog_ = std::move(*watchdog);
    return core::Status::Ok();
  }

  std::string data_dir() const { return dir_ + "/data"; }
  static std::string Bin(std::string_view tool) {
    return std::string(kPostgresBinDir) + "/" + std::string(tool);
  }

  // Runs a PostgreSQL tool (as run_as_ when set) in dir_, its output in dir_/<name>.log.
  core::Status Run(std::vector<std::string> argv, const std::string& name) const {
    std::vector<std::string> full;
    if (!run_as_.empty()) full = {"/usr/sbin/runuser", "-u", run_as_, "--"};
    full.insert(full.end(), {"/usr/bin/env", "--chdir=" + dir_});
    full.insert(full.end(), argv.begin(), argv.end());
    const std::string log = dir_ + "/" + name + ".log";
    core::RealProcessLauncher launcher;
    auto child = launcher.Launch({.argv = full,
                                  .env = {"PATH=/usr/bin:/bin", "LC_ALL=C"},
                                  .stdout_path = log,
                                  .stderr_path = log});
    if (!child.ok()) return child.status();
    // A safety net against a hung tool, not a timing assertion.
    auto exit_code = (*child)->WaitFor(std::chrono::minutes(3));
    if (!exit_code.ok()) {
      (*child)->Signal(SIGKILL).IgnoreError();
      (*child)->Wait().status().IgnoreError();
      return exit_code.status();
    }
    if (*exit_code != 0) {
      return core::InternalError(argv[0] + " exited with " + std::to_string(*exit_code) + ":\n" +
                                 Tail(ReadFile(log)));
    }
    return core::Status::Ok();
  }

  PGconn* Connect(const std::string& user, const std::string& password,
                  const std::string& dbname) const {
    const std::string port = std::to_string(port_);
    const char* const keywords[] = {
        "host", "port", "user", "password", "dbname", "gssencmode", "connect_timeout", nullptr};
    const char* const values[] = {"127.0.0.1",    port.c_str(), user.c_str(), password.c_str(),
                                  dbname.c_str(), "disable",    "10",         nullptr};
    return PQconnectdbParams(keywords, values, 0);
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
  }
  static std::string Tail(const std::string& text) {
    return text.size() <= 4000 ? text : text.substr(text.size() - 4000);
  }

  std::string dir_;
  std::string run_as_;  // empty: as this process's user
  uid_t owner_uid_ = 0;
  gid_t owner_gid_ = 0;
  std::string superuser_password_;
  int port_ = 0;
  bool started_ = false;
  std::unique_ptr<core::ChildProcess> watchdog_;
};

}  // namespace moatless::secrets
