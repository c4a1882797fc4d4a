"""Secrets that survive what happens to a daemon and its files, and the `moatless secrets`
commands, against a running `moatless serve` (no function sandboxes needed):

- kill -9 during a burst of PutSecretValue (the AWS SDK for JavaScript v3,
  tests/aws_clients/secrets_burst.mjs, 8 writes in flight spread over 100 secrets so that none
  reaches the 100 unlabelled versions AWS keeps): after a restart on the same data directory every
  acknowledged write reads back by its version id with its own value, every version that
  ListSecretVersionIds (IncludeDeprecated) lists reads (nothing half-written), and AWSCURRENT reads;
- tampering with the database while the daemon is stopped (one byte of a sealed value flipped, one
  version's sealed value and wrapped data key copied from another secret): GetSecretValue fails with
  DecryptionFailure without any value in the message, the untouched secrets still read, and each
  failed read is audited as an error naming the integrity check;
- `moatless secrets rotate-master-key` while a reader loops GetSecretValue over 200 secrets: the
  new master key version is current, every data key is re-wrapped, the old version is retired, the
  new key file is private, no read fails, the rotation is audited, and everything reads after a
  restart; twice;
- the `moatless secrets` commands (put, get, describe, history, list, delete / restore, rotate) and
  a caller without Secrets Manager permissions refused with AccessDeniedException.

Secret values are never printed: they are compared without being shown, and assertion messages
carry lengths, counts, version ids and error names only.
"""
import json
import os
import secrets
import shutil
import signal
import sqlite3
import stat
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

import harness
from harness import Server, run_cli

AWS = "/usr/bin/aws"  # Debian's awscli (scripts/install-deps); not whatever else is on PATH
HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(os.path.dirname(HERE), "aws_clients")
BURST = os.path.join(CLIENTS, "secrets_burst.mjs")
ACCOUNT = "000000000000"
REGION = "local"
SECRET_ARN = "arn:aws:secretsmanager:%s:%s:secret:" % (REGION, ACCOUNT)


def setUpModule():
    if not os.access(AWS, os.X_OK):
        raise AssertionError("%s is missing: scripts/install-deps installs Debian's awscli" % AWS)
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise AssertionError("node and npm are required: scripts/install-deps installs them")
    if not os.path.isdir(os.path.join(CLIENTS, "node_modules", "@aws-sdk",
                                      "client-secrets-manager")):
        result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                                cwd=CLIENTS, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise AssertionError("npm ci in %s failed:\n%s" % (CLIENTS, result.stderr[-4000:]))


def json_lines(text):
    out = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


class NodeProcess:
    """secrets_burst.mjs running in the background; its JSON lines are collected as they come."""

    def __init__(self, args, env, stdin=False):
        self.proc = subprocess.Popen(["node", BURST, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL)
        self.records = []
        self.stderr = ""
        self._cond = threading.Condition()
        self._out = threading.Thread(target=self._read, daemon=True)
        self._out.start()
        self._err = threading.Thread(target=self._read_stderr, daemon=True)
        self._err.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                self.records.append(record)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_stderr(self):
        self.stderr = self.proc.stderr.read()

    def wait_for(self, predicate, timeout):
        """Waits until predicate(records) is true; returns whether it became true."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.records):
                left = deadline - time.monotonic()
                if left <= 0 or (not self._out.is_alive()):
                    return predicate(self.records)
                self._cond.wait(min(left, 0.2))
            return True

    def close_stdin(self):
        self.proc.stdin.close()

    def finish(self, timeout=120):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._out.join(timeout=10)
        self._err.join(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()
        with self._cond:
            return list(self.records)


class SecretsCase(unittest.TestCase):
    """One data directory and one running server per class."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="moatless-durability-")
        cls.data_dir = os.path.join(cls.tmp, "data")
        cls.creds = os.path.join(cls.tmp, "home", ".aws", "credentials")
        init = run_cli("init", "--data-dir", cls.data_dir, "--credentials-file", cls.creds)
        assert init.returncode == 0, init.stderr
        cls.server = Server(data_dir=cls.data_dir)
        cls.values = set()  # every secret value this class stored, for the leak checks

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        subprocess.run(["rm", "-rf", cls.tmp], check=False)

    @classmethod
    def restart(cls):
        """Stops the server cleanly (SIGTERM) if it still runs, and starts a new one on the same
        data directory."""
        code = cls.server.stop()
        cls.server = Server(data_dir=cls.data_dir)
        return code

    # --- helpers ------------------------------------------------------------------------------

    def env(self, keys=None):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.tmp,
               "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": self.creds,
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "", "AWS_REGION": REGION,
               "AWS_DEFAULT_REGION": REGION, "MOATLESS_ENDPOINT": self.server.url("")}
        if keys:
            env.update({"AWS_ACCESS_KEY_ID": keys[0], "AWS_SECRET_ACCESS_KEY": keys[1]})
        else:
            env["AWS_PROFILE"] = "moatless"
        return env

    def hide(self, text):
        text = str(text)
        for v in sorted(self.values, key=len, reverse=True):
            text = text.replace(v, "[redacted]")
        return text

    def value(self, label):
        v = "%s-%s" % (label, secrets.token_hex(16))
        self.values.add(v)
        return v

    def assertSecret(self, actual, expected, what):
        """Compares secret values without ever printing them."""
        if actual != expected:
            self.fail("%s: the value differs from what was stored (got %s, expected length %d)"
                      % (what, "length %d" % len(actual) if isinstance(actual, str)
                         else type(actual).__name__, len(expected)))

    def assertNoValue(self, text, what):
        self.assertFalse(any(v in text for v in self.values), "a secret value is in " + what)

    def run_aws(self, args, keys=None):
        return subprocess.run([AWS, "--endpoint-url", self.server.url(""), "--output", "json",
                               *args], capture_output=True, text=True, timeout=90,
                              env=self.env(keys))

    def aws(self, *args, keys=None):
        result = self.run_aws(args, keys)
        self.assertEqual(result.returncode, 0, "aws %s failed: %s"
                         % (" ".join(args[:2]), self.hide(result.stderr)))
        return json.loads(result.stdout) if result.stdout.strip() else {}

    def aws_error(self, code, *args, keys=None):
        """Runs the aws CLI, which must fail with the AWS error `code`; returns stderr."""
        result = self.run_aws(args, keys)
        self.assertNotEqual(result.returncode, 0, "aws %s succeeded, expected %s"
                            % (" ".join(args[:2]), code))
        self.assertTrue("An error occurred (%s)" % code in result.stderr,
                        "expected %s: %s" % (code, self.hide(result.stderr)))
        self.assertNoValue(result.stderr, "the CLI's error message")
        self.assertNoValue(result.stdout, "the CLI's output")
        return result.stderr

    def moatless(self, *args, input=None, keys=None, timeout=120):
        return subprocess.run([harness.MOATLESS, *args], capture_output=True, text=True,
                              input=input, timeout=timeout, env=self.env(keys))

    def node(self, *args, input=None, timeout=300):
        result = subprocess.run(["node", BURST, *args], capture_output=True, text=True,
                                input=input, timeout=timeout, env=self.env())
        self.assertEqual(result.returncode, 0, "node secrets_burst.mjs %s: %s"
                         % (args[0], result.stderr[-2000:]))
        return json_lines(result.stdout)

    def audit(self):
        with open(os.path.join(self.data_dir, "audit", "audit.log")) as f:
            return [json.loads(line) for line in f if line.strip()]

    def wait_audit(self, predicate, what, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.audit() if predicate(r)]
            if found:
                return found
            if time.monotonic() > deadline:
                self.fail("no audit record for " + what)
            time.sleep(0.1)

    def check_versions(self, prefix, n):
        """Every version of PREFIX/0..n-1 that ListSecretVersionIds lists (IncludeDeprecated)
        reads with its own value, and AWSCURRENT reads. Returns {secret: [listed version ids]}."""
        report = self.node("versions", self.server.url(""), prefix, str(n))
        self.assertEqual(len(report), n, "one report per secret")
        problems = []
        for r in report:
            if r.get("listError"):
                problems.append("%s: ListSecretVersionIds failed with %s"
                                % (r["secret"], r["listError"]))
            for u in r["unreadable"]:
                problems.append("%s: listed version %s does not read (%s)"
                                % (r["secret"], u["versionId"], u["error"]))
            for m in r["mismatched"]:
                problems.append("%s: version %s reads a value that is not its own"
                                % (r["secret"], m))
            current = r["current"]
            if not current.get("ok"):
                problems.append("%s: AWSCURRENT does not read (%s)"
                                % (r["secret"], current.get("error")))
            elif not current.get("match") or current.get("versionId") != current.get(
                    "listedCurrent"):
                problems.append("%s: AWSCURRENT reads version %s with %s value; the listing "
                                "puts AWSCURRENT on %s"
                                % (r["secret"], current.get("versionId"),
                                   "its own" if current.get("match") else "another",
                                   current.get("listedCurrent")))
        self.assertEqual(problems[:20], [], "%d problems" % len(problems))
        return {r["secret"]: r["listed"] for r in report}


# --- 1. kill -9 during a burst of writes ---------------------------------------------------------

class A_KillDuringWritesTest(SecretsCase):
    SECRETS = 100   # writes spread round-robin: at most COUNT / SECRETS + 1 versions each, < 100
    COUNT = 5000
    CONCURRENCY = 8
    ACKS_BEFORE_KILL = 100

    def test_every_acknowledged_write_survives_kill_9(self):
        prefix = "burst"
        created = self.node("create", self.server.url(""), prefix, str(self.SECRETS), "8")
        self.assertEqual(created[-1], {"created": self.SECRETS, "failed": 0, "errors": {}})

        burst = NodeProcess([self.server.url(""), prefix, str(self.COUNT), str(self.CONCURRENCY),
                             str(self.SECRETS)], self.env())
        acked = lambda records: [r for r in records if "token" in r and "error" not in r]
        reached = burst.wait_for(
            lambda records: len(acked(records)) >= self.ACKS_BEFORE_KILL
            or any("error" in r for r in records), timeout=120)
        errors_before = [r["error"] for r in burst.records if "error" in r]
        if not reached or errors_before:
            self.server.proc.send_signal(signal.SIGKILL)
            burst.finish(timeout=30)
            self.fail("the burst did not reach %d acknowledged writes (%d; errors %s; %s)"
                      % (self.ACKS_BEFORE_KILL, len(acked(burst.records)), errors_before[:5],
                         burst.stderr[-1000:]))
        self.server.proc.send_signal(signal.SIGKILL)
        self.assertEqual(self.server.wait(timeout=30), -signal.SIGKILL)
        records = burst.finish(timeout=120)
        self.assertEqual(burst.proc.returncode, 0, burst.stderr[-2000:])
        writes = acked(records)
        self.assertGreaterEqual(len(writes), self.ACKS_BEFORE_KILL)
        self.assertLess(len(writes), self.COUNT, "the kill interrupted the burst")
        self.assertTrue(any("error" in r for r in records),
                        "the writes in flight when the daemon died failed")
        self.assertEqual(len({w["token"] for w in writes}), len(writes), "tokens are unique")

        # Same data directory, new daemon.
        self.restart()
        verified = self.node("verify", self.server.url(""),
                             input="".join(json.dumps({"secret": w["secret"], "token": w["token"]})
                                           + "\n" for w in writes))
        self.assertEqual(len(verified), len(writes), "one outcome per acknowledged write")
        lost = [(v["secret"], v["token"], v.get("error")) for v in verified if not v["ok"]]
        self.assertEqual(lost[:10], [], "%d of %d acknowledged writes do not read after kill -9"
                         % (len(lost), len(writes)))
        wrong = [(v["secret"], v["token"]) for v in verified if v["ok"] and not v["match"]]
        self.assertEqual(wrong[:10], [], "%d acknowledged writes read another value" % len(wrong))

        # Nothing half-written: every listed version reads (with its own value), AWSCURRENT reads.
        listed = self.check_versions(prefix, self.SECRETS)
        missing = [w["token"] for w in writes if w["token"] not in listed[w["secret"]]]
        self.assertEqual(missing[:10], [], "%d acknowledged versions are not listed"
                         % len(missing))
        total = sum(len(v) for v in listed.values())
        self.assertGreaterEqual(total, self.SECRETS + len(writes))
        # At most the writes in flight at the kill are there without an acknowledgement.
        self.assertLessEqual(total, self.SECRETS + len(writes) + self.CONCURRENCY)

        # The aws CLI sees the same versions, and the restarted daemon takes writes.
        busiest = max(listed, key=lambda s: len(listed[s]))
        out = self.aws("secretsmanager", "list-secret-version-ids", "--secret-id", busiest,
                       "--include-deprecated")
        self.assertEqual(sorted(v["VersionId"] for v in out["Versions"]), sorted(listed[busiest]))
        token = str(uuid.uuid4())
        put = self.aws("secretsmanager", "put-secret-value", "--secret-id", busiest,
                       "--secret-string", "value-" + token, "--client-request-token", token)
        self.assertEqual(put["VersionId"], token)
        got = self.aws("secretsmanager", "get-secret-value", "--secret-id", busiest)
        self.assertEqual(got["VersionId"], token)
        self.assertSecret(got.get("SecretString"), "value-" + token, "a write after the restart")


# --- 2. a tampered database ----------------------------------------------------------------------

class B_TamperedDatabaseTest(SecretsCase):
    def current_row(self, db, arn):
        return db.execute(
            "SELECT v.version_id, v.key_version, v.wrapped_key, v.sealed_value "
            "FROM secret_versions v JOIN secret_stages s "
            "ON s.secret_arn = v.secret_arn AND s.version_id = v.version_id "
            "WHERE s.label = 'AWSCURRENT' AND v.secret_arn = ?", (arn,)).fetchone()

    def test_tampered_values_fail_their_integrity_check(self):
        values = {n: self.value(n) for n in ("a-old", "a", "b", "c")}
        arn_a = self.aws("secretsmanager", "create-secret", "--name", "tamper/a",
                         "--secret-string", values["a-old"])["ARN"]
        self.aws("secretsmanager", "put-secret-value", "--secret-id", "tamper/a",
                 "--secret-string", values["a"])
        arn_b = self.aws("secretsmanager", "create-secret", "--name", "tamper/b",
                         "--secret-string", values["b"])["ARN"]
        arn_c = self.aws("secretsmanager", "create-secret", "--name", "tamper/c",
                         "--secret-string", values["c"])["ARN"]

        self.assertEqual(self.server.stop(), 0, "a clean stop")
        db = sqlite3.connect(os.path.join(self.data_dir, "moatless.db"))
        try:
            version_a, _, _, sealed_a = self.current_row(db, arn_a)
            flipped = bytearray(sealed_a)
            flipped[len(flipped) // 2] ^= 0x01
            db.execute("UPDATE secret_versions SET sealed_value = ? WHERE secret_arn = ? AND "
                       "version_id = ?", (bytes(flipped), arn_a, version_a))
            _, key_version_b, wrapped_b, sealed_b = self.current_row(db, arn_b)
            version_c, key_version_c, _, _ = self.current_row(db, arn_c)
            self.assertEqual(key_version_b, key_version_c, "both under the same master key")
            db.execute("UPDATE secret_versions SET wrapped_key = ?, sealed_value = ? WHERE "
                       "secret_arn = ? AND version_id = ?", (wrapped_b, sealed_b, arn_c,
                                                             version_c))
            db.commit()
        finally:
            db.close()
        self.restart()

        for name, arn in (("tamper/a", arn_a), ("tamper/c", arn_c)):
            err = self.aws_error("DecryptionFailure", "secretsmanager", "get-secret-value",
                                 "--secret-id", name)
            self.assertTrue("integrity" in err, "the message names the integrity check: %s"
                            % self.hide(err))
            records = self.wait_audit(
                lambda r, arn=arn: r.get("action") == "secretsmanager:GetSecretValue"
                and r.get("resource") == arn and r.get("outcome") == "error",
                "the failed read of " + name)
            self.assertTrue("integrity" in records[-1].get("reason", ""),
                            "the audit reason names the integrity check: %s"
                            % self.hide(records[-1]))
            self.assertEqual(records[-1]["actor"], "arn:aws:iam::%s:root" % ACCOUNT)
        # The untouched secret, and the untouched older version of A, still read.
        got = self.aws("secretsmanager", "get-secret-value", "--secret-id", "tamper/b")
        self.assertSecret(got.get("SecretString"), values["b"], "the untouched secret")
        previous = self.aws("secretsmanager", "get-secret-value", "--secret-id", "tamper/a",
                            "--version-stage", "AWSPREVIOUS")
        self.assertSecret(previous.get("SecretString"), values["a-old"],
                          "the untouched older version")
        # Metadata is not sealed: DescribeSecret still works on the tampered secret.
        described = self.aws("secretsmanager", "describe-secret", "--secret-id", "tamper/c")
        self.assertEqual(described["ARN"], arn_c)

        with open(os.path.join(self.data_dir, "audit", "audit.log")) as f:
            self.assertNoValue(f.read(), "the audit log")
        self.assertNoValue("\n".join(self.server.lines), "the daemon's log")


# --- 3. master-key rotation under concurrent reads -----------------------------------------------

class C_MasterKeyRotationTest(SecretsCase):
    SECRETS = 200

    def rotate_while_reading(self, expect_version):
        reader = NodeProcess(["read", self.server.url(""), "rot", str(self.SECRETS), "60", "8"],
                             self.env(), stdin=True)
        self.assertTrue(reader.wait_for(lambda rs: any(r.get("reading") for r in rs), 30),
                        "the reader started: %s" % reader.stderr[-1000:])
        time.sleep(0.3)
        rotated = self.moatless("secrets", "rotate-master-key")
        time.sleep(0.3)
        reader.close_stdin()
        records = reader.finish(timeout=60)
        self.assertEqual(rotated.returncode, 0, rotated.stderr)
        out = rotated.stdout
        self.assertIn("secrets master key version %d is current; %d data keys re-wrapped under it"
                      % (expect_version, self.SECRETS), out)
        self.assertIn("version %d is retired" % (expect_version - 1), out)
        self.assertEqual(reader.proc.returncode, 0, reader.stderr[-2000:])
        final = [r for r in records if "ok" in r and "failed" in r]
        self.assertEqual(len(final), 1, "the reader's summary: %s" % reader.stderr[-1000:])
        final = final[0]
        self.assertGreater(final["ok"], 0)
        self.assertEqual((final["failed"], final["errors"], final["mismatched"]), (0, {}, 0),
                         "no read failed during the rotation (%d reads ok)" % final["ok"])

        key = os.path.join(self.data_dir, "keys", "secrets", "master-%d.key" % expect_version)
        self.assertTrue(os.path.isfile(key), key)
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.wait_audit(lambda r: r.get("action") == "moatless:RotateSecretsMasterKey"
                        and r.get("outcome") == "allowed"
                        and (r.get("fields") or {}).get("master_key_version")
                        == str(expect_version), "the master key rotation to version %d"
                        % expect_version)
        record = [r for r in self.audit() if r.get("action") == "moatless:RotateSecretsMasterKey"
                  and (r.get("fields") or {}).get("master_key_version") == str(expect_version)]
        self.assertEqual(record[-1]["fields"].get("rewrapped"), str(self.SECRETS))
        self.assertEqual(record[-1]["actor"], "arn:aws:iam::%s:root" % ACCOUNT)

    def test_rotation_under_concurrent_reads(self):
        created = self.node("create", self.server.url(""), "rot", str(self.SECRETS), "8")
        self.assertEqual(created[-1], {"created": self.SECRETS, "failed": 0, "errors": {}})
        self.rotate_while_reading(2)
        self.restart()
        self.check_versions("rot", self.SECRETS)
        self.rotate_while_reading(3)
        self.restart()
        self.check_versions("rot", self.SECRETS)


# --- 4. the moatless secrets commands ------------------------------------------------------------

class D_CommandsTest(SecretsCase):
    def ok(self, *args, input=None):
        result = self.moatless(*args, input=input)
        self.assertEqual(result.returncode, 0, "moatless %s: %s"
                         % (" ".join(args[:2]), self.hide(result.stderr)))
        self.assertNoValue(result.stderr, "moatless %s's stderr" % " ".join(args[:2]))
        return result

    def fails(self, code, error, *args, input=None, keys=None):
        result = self.moatless(*args, input=input, keys=keys)
        self.assertEqual(result.returncode, code, "moatless %s: exit %d: %s"
                         % (" ".join(args[:2]), result.returncode, self.hide(result.stderr)))
        if error:
            self.assertTrue(error in result.stderr, "expected %s: %s"
                            % (error, self.hide(result.stderr)))
        self.assertNoValue(result.stderr + result.stdout, "moatless %s's output"
                           % " ".join(args[:2]))
        return result

    def get(self, name, *flags):
        return self.ok("secrets", "get", name, *flags).stdout

    def user(self, name):
        self.aws("iam", "create-user", "--user-name", name)
        key = self.aws("iam", "create-access-key", "--user-name", name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def test_put_get_describe_history(self):
        name = "cmd/app/db"
        v1, v2, v3 = self.value("v1"), self.value("v2"), self.value("v3")
        first = self.ok("secrets", "put", name, "--from-stdin", "--description", "app db",
                        input=v1)
        self.assertTrue("created " + SECRET_ARN + name + "-" in first.stderr,
                        "put says it created the secret: %s" % first.stderr)
        self.assertRegex(first.stdout, r"^version [0-9a-f-]{36}\n$")
        id1 = first.stdout.split()[1]
        second = self.ok("secrets", "put", name, "--from-stdin", input=v2)
        self.assertFalse("created" in second.stderr, "the second put creates nothing")
        id2 = second.stdout.split()[1]
        self.assertNotEqual(id1, id2)

        self.assertSecret(self.get(name), v2, "get (exactly the value, no newline)")
        self.assertSecret(self.get(name, "--stage", "AWSPREVIOUS"), v1, "get --stage AWSPREVIOUS")
        self.assertSecret(self.get(name, "--version-id", id1), v1, "get --version-id")

        refused = self.fails(2, "--from-file", "secrets", "put", name)
        self.assertEqual(refused.stdout, "")
        self.assertSecret(self.get(name), v2, "the value after the refused put")

        path = os.path.join(self.tmp, "v3.txt")
        with open(path, "w") as f:
            f.write(v3)
        id3 = self.ok("secrets", "put", name, "--from-file", path).stdout.split()[1]
        os.unlink(path)
        self.assertSecret(self.get(name), v3, "after put --from-file")

        described = self.ok("secrets", "describe", name).stdout
        self.assertIn("name         %s\n" % name, described)
        self.assertIn("description  app db\n", described)
        self.assertIn("  %s  [\"AWSCURRENT\"]" % id3, described)
        self.assertIn("  %s  [\"AWSPREVIOUS\"]" % id2, described)
        self.assertNoValue(described, "describe's output")
        as_json = json.loads(self.ok("secrets", "describe", name, "--json").stdout)
        self.assertEqual(as_json["Name"], name)
        self.assertTrue(as_json["ARN"].startswith(SECRET_ARN + name + "-"))
        self.assertEqual(as_json["Description"], "app db")
        self.assertEqual(as_json["VersionIdsToStages"],
                         {id3: ["AWSCURRENT"], id2: ["AWSPREVIOUS"]})
        self.assertFalse("SecretString" in as_json, "no value in describe --json")

        history = self.ok("secrets", "history", name).stdout.splitlines()
        self.assertEqual([line.split()[1] for line in history], [id3, id2, id1], "newest first")
        self.assertTrue(history[0].endswith('["AWSCURRENT"]'), history[0])
        self.assertTrue(history[1].endswith('["AWSPREVIOUS"]'), history[1])
        self.assertTrue(history[2].endswith("(no label)"), history[2])
        self.assertRegex(history[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  ")
        history_json = json.loads(self.ok("secrets", "history", name, "--json").stdout)
        self.assertEqual([v["VersionId"] for v in history_json], [id3, id2, id1])

    def test_list_delete_restore_rotate(self):
        for name in ("cmd/list/one", "cmd/list/two", "cmd/other/three"):
            self.ok("secrets", "put", name, "--from-stdin", input=self.value("list"))
        listed = self.ok("secrets", "list", "--prefix", "cmd/list/").stdout.splitlines()
        self.assertEqual([line.split()[0] for line in listed], ["cmd/list/one", "cmd/list/two"])
        self.assertTrue(all("  changed " in line for line in listed), listed)
        listed_json = json.loads(self.ok("secrets", "list", "--prefix", "cmd/list/",
                                         "--json").stdout)
        self.assertEqual([e["Name"] for e in listed_json], ["cmd/list/one", "cmd/list/two"])
        everything = [line.split()[0]
                      for line in self.ok("secrets", "list").stdout.splitlines()]
        self.assertIn("cmd/other/three", everything)

        name = "cmd/list/one"
        value = self.value("kept")
        self.ok("secrets", "put", name, "--from-stdin", input=value)
        deleted = self.ok("secrets", "delete", name, "--recovery-days", "7").stdout
        self.assertIn("deletion scheduled: %s will be deleted on " % name, deleted)
        self.fails(1, "InvalidRequestException", "secrets", "get", name)
        self.assertIn("deletion     requested on ", self.ok("secrets", "describe", name).stdout)
        listed = [line.split()[0] for line in
                  self.ok("secrets", "list", "--prefix", "cmd/list/").stdout.splitlines()]
        self.assertEqual(listed, ["cmd/list/two"], "a secret scheduled for deletion is not listed")
        self.assertEqual(self.ok("secrets", "restore", name).stdout, "restored %s\n" % name)
        self.assertSecret(self.get(name), value, "get after restore")

        self.assertEqual(self.ok("secrets", "delete", "cmd/list/two", "--force").stdout,
                         "deleted cmd/list/two\n")
        self.fails(1, "ResourceNotFoundException", "secrets", "get", "cmd/list/two")
        self.fails(1, "ResourceNotFoundException", "secrets", "describe", "cmd/list/two")

        self.fails(1, "InvalidRequestException", "secrets", "rotate", name)
        self.assertSecret(self.get(name), value, "the value after the refused rotation")
        self.assertNotIn("AWSPENDING", self.ok("secrets", "describe", name).stdout)

    def test_a_caller_without_permissions_is_refused(self):
        name = "cmd/private/db"
        self.ok("secrets", "put", name, "--from-stdin", input=self.value("private"))
        keys = self.user("no-secrets")
        refused = self.fails(1, "AccessDeniedException", "secrets", "get", name, keys=keys)
        self.assertEqual(refused.stdout, "")
        self.fails(1, "AccessDeniedException", "secrets", "put", name, "--from-stdin",
                   input=self.value("overwrite"), keys=keys)
        self.fails(1, "AccessDeniedException", "secrets", "rotate-master-key", keys=keys)
        actor = "arn:aws:iam::%s:user/no-secrets" % ACCOUNT
        denied = self.wait_audit(lambda r: r.get("actor") == actor
                                 and r.get("action") == "secretsmanager:GetSecretValue",
                                 "the refused read")
        self.assertEqual(denied[-1]["outcome"], "denied")


if __name__ == "__main__":
    harness.main()
