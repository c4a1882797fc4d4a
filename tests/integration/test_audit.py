"""The audit log written by the real daemon: `moatless audit verify` detecting tampering in the
active file and in archived segments, retention that keeps the rest verifiable, and the audit trail
through the signed API — `moatless audit query`, `export` and `hash` — with every denial of a
scenario on record and no secret anywhere in the audit files, the logs or the metrics."""
import datetime
import glob
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import harness
from harness import Server, run_cli

ACCOUNT = "000000000000"


def audit_path(data_dir):
    return os.path.join(data_dir, "audit", "audit.log")


class AuditTest(unittest.TestCase):
    def make_log(self):
        """Starts and stops the daemon three times: six records (start + stop each)."""
        data_dir = None
        for _ in range(3):
            server = Server(data_dir=data_dir)
            data_dir = server.data_dir
            self.assertEqual(server.stop(), 0)
        self.addCleanup(lambda: os.system("rm -rf '%s'" % data_dir))
        return data_dir

    def verify(self, data_dir, *extra):
        return run_cli("audit", "verify", "--data-dir", data_dir, "--json", *extra)

    def test_daemon_lifecycle_is_audited_and_chain_verifies(self):
        data_dir = self.make_log()
        with open(audit_path(data_dir)) as f:
            records = [json.loads(line) for line in f]
        self.assertEqual([r["seq"] for r in records], list(range(1, 7)))
        self.assertEqual([r["action"] for r in records[:2]], ["moatless:ServeStart", "moatless:ServeStop"])
        result = self.verify(data_dir)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        report = json.loads(result.stdout)
        self.assertTrue(report["ok"])
        self.assertEqual(report["head"]["seq"], 6)

    def test_edited_record_is_detected(self):
        data_dir = self.make_log()
        path = audit_path(data_dir)
        with open(path) as f:
            lines = f.readlines()
        record = json.loads(lines[2])
        record["outcome"] = "denied"  # an attacker rewrites history but keeps the stored hash
        lines[2] = json.dumps(record, separators=(",", ":")) + "\n"
        with open(path, "w") as f:
            f.writelines(lines)
        result = self.verify(data_dir)
        self.assertEqual(result.returncode, 1)
        report = json.loads(result.stdout)
        self.assertFalse(report["ok"])
        self.assertEqual(report["first_bad"]["seq"], 3)

    def test_deleted_record_is_detected(self):
        data_dir = self.make_log()
        path = audit_path(data_dir)
        with open(path) as f:
            lines = f.readlines()
        del lines[3]
        with open(path, "w") as f:
            f.writelines(lines)
        result = self.verify(data_dir)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(json.loads(result.stdout)["first_bad"]["line"], 4)

    def test_truncated_tail_is_detected_against_an_anchored_head(self):
        data_dir = self.make_log()
        head = json.loads(self.verify(data_dir).stdout)["head"]
        path = audit_path(data_dir)
        with open(path) as f:
            lines = f.readlines()
        with open(path, "w") as f:
            f.writelines(lines[:-2])
        self.assertEqual(self.verify(data_dir).returncode, 0)  # a shorter chain is self-consistent
        anchored = self.verify(data_dir, "--expect-head", "%d:%s" % (head["seq"], head["hash"]))
        self.assertEqual(anchored.returncode, 1)

    def test_daemon_refuses_to_extend_a_broken_chain(self):
        data_dir = self.make_log()
        path = audit_path(data_dir)
        with open(path) as f:
            lines = f.readlines()
        del lines[1]
        with open(path, "w") as f:
            f.writelines(lines)
        result = run_cli("serve", "--data-dir", data_dir, "--listen", "127.0.0.1:0", timeout=30)
        self.assertEqual(result.returncode, 1)
        self.assertIn("audit", result.stderr)


def audit_files(data_dir):
    """The audit log's files, oldest first: archived segments, then the active file."""
    def first_seq(path):
        return int(os.path.basename(path).split("-")[1])
    archived = sorted(glob.glob(os.path.join(data_dir, "audit", "archive", "audit-*-*.log")),
                      key=first_seq)
    return archived + [audit_path(data_dir)]


def stored_lines(data_dir):
    lines = []
    for path in audit_files(data_dir):
        with open(path) as f:
            lines += [line.rstrip("\n") for line in f]
    return lines


def sign(server, key_id, secret, body, service="sts", token=None, path="/", method="POST",
         query=""):
    """SigV4 headers for a request to `server` (test-side signer from the standard library)."""
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    headers = {"host": "%s:%d" % (server.host, server.port), "x-amz-date": amz_date}
    if method == "POST" and service in ("sts", "iam"):
        headers["content-type"] = "application/x-www-form-urlencoded; charset=utf-8"
    if token:
        headers["x-amz-security-token"] = token
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, path, query,
                           "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers)),
                           signed, hashlib.sha256(body).hexdigest()])
    scope = "%s/local/%s/aws4_request" % (date, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (date, "local", service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                                "Signature=%s" % (key_id, scope, signed, signature))
    return headers


def send(server, headers, body=b"", path="/", method="POST"):
    """(status, headers, body text)."""
    request = urllib.request.Request(server.url(path), data=body if method == "POST" else None,
                                     method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


CALLER_IDENTITY = b"Action=GetCallerIdentity&Version=2011-06-15"


class Operator:
    """A data directory made by `moatless init`, its root credentials, and the CLI run with them."""

    def __init__(self, test):
        self.tmp = tempfile.mkdtemp(prefix="moatless-audit-")
        test.addCleanup(lambda: shutil.rmtree(self.tmp, ignore_errors=True))
        self.data_dir = os.path.join(self.tmp, "data")
        self.creds = os.path.join(self.tmp, "credentials")
        init = run_cli("init", "--data-dir", self.data_dir, "--credentials-file", self.creds)
        test.assertEqual(init.returncode, 0, init.stderr)
        self.server = None

    def serve(self, *flags):
        self.server = Server(*flags, data_dir=self.data_dir)
        return self.server

    def cli(self, *args, profile="moatless", stdin=None):
        env = harness.clean_env({"AWS_SHARED_CREDENTIALS_FILE": self.creds,
                                 "AWS_CONFIG_FILE": "/dev/null", "AWS_PROFILE": profile,
                                 "MOATLESS_ENDPOINT": self.server.url(""), "HOME": self.tmp})
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.pop(name, None)
        return subprocess.run([harness.MOATLESS, *args], capture_output=True, text=True,
                              timeout=60, env=env, input=stdin)

    def keys(self, profile):
        section, found = None, {}
        with open(self.creds) as f:
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    section = line[1:-1]
                elif section == profile and "=" in line:
                    key, value = (x.strip() for x in line.split("=", 1))
                    found[key] = value
        return found["aws_access_key_id"], found["aws_secret_access_key"]

    def traffic(self, n):
        """n signed GetCallerIdentity calls of root: n audit records."""
        key_id, secret = self.keys("moatless")
        for _ in range(n):
            status, _, text = send(self.server, sign(self.server, key_id, secret, CALLER_IDENTITY),
                                   CALLER_IDENTITY)
            assert status == 200, text


class AuditTrailTest(unittest.TestCase):
    """One daemon with small segments: a scenario full of denials, queried through the API."""

    @classmethod
    def setUpClass(cls):
        cls.op = Operator(unittest.TestCase())
        cls.server = cls.op.serve("--audit.segment-bytes", "4KiB")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        shutil.rmtree(cls.op.tmp, ignore_errors=True)

    def cli(self, *args, expect=0, **kw):
        result = self.op.cli(*args, **kw)
        self.assertEqual(result.returncode, expect, result.stdout + result.stderr)
        return result

    def query(self, *args, profile="moatless"):
        out = self.cli("audit", "query", "--json", "--limit", "100000", *args, profile=profile)
        return [json.loads(line) for line in out.stdout.splitlines()]

    def test_every_denial_is_on_record_and_no_secret_is_anywhere(self):
        op, server = self.op, self.server
        root_id, root_secret = op.keys("moatless")
        self.cli("users", "create", "nobody")
        self.cli("keys", "create", "--user", "nobody", "--write-profile", "nobody")
        nobody_id, nobody_secret = op.keys("nobody")

        # 1. a user without policies calls IAM
        denied = self.cli("users", "create", "mallory", profile="nobody", expect=1)
        self.assertIn("AccessDenied", denied.stderr)
        # 2. ... and the audit API
        denied = self.cli("audit", "query", profile="nobody", expect=1)
        self.assertIn("AccessDenied", denied.stderr)
        # 3. an unsigned request
        status, headers, _ = send(server, {"content-type": "application/x-www-form-urlencoded"},
                                  CALLER_IDENTITY)
        self.assertEqual(status, 403)
        unsigned_id = headers.get("x-amzn-RequestId") or headers.get("X-Amzn-RequestId")
        # 4. a signature made with the wrong secret
        status, _, text = send(server, sign(server, nobody_id, "not-the-secret", CALLER_IDENTITY),
                               CALLER_IDENTITY)
        self.assertEqual(status, 403)
        self.assertIn("SignatureDoesNotMatch", text)
        # A session token, used once.
        body = b"Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900"
        status, _, text = send(server, sign(server, root_id, root_secret, body), body)
        self.assertEqual(status, 200, text)
        session = {k: text.split("<%s>" % k)[1].split("</%s>" % k)[0]
                   for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
        status, _, text = send(server, sign(server, session["AccessKeyId"],
                                            session["SecretAccessKey"], CALLER_IDENTITY,
                                            token=session["SessionToken"]), CALLER_IDENTITY)
        self.assertEqual(status, 200, text)

        denials = self.query("--decision", "deny")
        self.assertTrue(denials)
        self.assertTrue(all(r["outcome"] == "denied" for r in denials))

        def find(**want):
            found = [r for r in denials if all(r[k] == v for k, v in want.items())]
            self.assertTrue(found, "no denial with %s in %s" % (want, json.dumps(denials)))
            self.assertTrue(found[-1]["reason"], found[-1])
            return found[-1]

        nobody = "arn:aws:iam::%s:user/nobody" % ACCOUNT
        find(actor=nobody, action="iam:CreateUser",
             resource="arn:aws:iam::%s:user/mallory" % ACCOUNT)
        find(actor=nobody, action="moatless:QueryAuditLog",
             resource="arn:aws:moatless:local:%s:audit" % ACCOUNT)
        unsigned = find(actor="anonymous", action="sts:GetCallerIdentity", resource="")
        if unsigned_id:
            self.assertIn(unsigned_id, [r["request_id"] for r in denials
                                        if r["actor"] == "anonymous"])
        self.assertEqual(unsigned["fields"]["source_ip"], "127.0.0.1")
        forged = find(actor="access-key:" + nobody_id, action="sts:GetCallerIdentity")
        self.assertIn("SignatureDoesNotMatch", forged["reason"])

        # Filters compose: nobody's denials only.
        mine = self.query("--decision", "denied", "--principal", nobody)
        self.assertEqual({r["action"] for r in mine}, {"iam:CreateUser", "moatless:QueryAuditLog"})
        self.assertEqual(self.query("--action", "iam:CreateU*", "--principal", "*/nobody",
                                    "--since", "1h")[0]["resource"],
                         "arn:aws:iam::%s:user/mallory" % ACCOUNT)
        self.assertEqual(self.query("--until", "2000-01-01T00:00:00Z"), [])
        table = self.cli("audit", "query", "--decision", "deny", "--principal", nobody).stdout
        self.assertEqual(table.splitlines()[0].split(),
                         ["TIME", "OUTCOME", "ACTOR", "ACTION", "RESOURCE", "REASON"])
        self.assertIn("iam:CreateUser", table)

        # The access key id is stored only as its HMAC; `audit hash` finds its records.
        digest = self.cli("audit", "hash", nobody_id).stdout.strip()
        self.assertTrue(digest.startswith("hmac-sha256:"), digest)
        self.assertEqual(self.cli("audit", "hash", "-", stdin=nobody_id + "\n").stdout.strip(),
                         digest)
        used = self.query("--secret-field", "access_key_id=" + nobody_id)
        self.assertTrue(used)
        self.assertTrue(all(r["fields"]["access_key_id"] == digest for r in used))
        self.assertIn("iam:CreateUser", [r["action"] for r in used])
        self.assertEqual(self.query("--field", "access_key_id=" + digest), used)

        # A secret stored and read back, and a secret hashed: the values reach no log either.
        secret_value = "s3cret-value-" + os.urandom(8).hex()
        self.cli("secrets", "put", "audit/db-password", "--from-stdin", stdin=secret_value)
        self.assertEqual(self.cli("secrets", "get", "audit/db-password").stdout.strip(),
                         secret_value)
        self.assertTrue(self.query("--action", "secretsmanager:GetSecretValue"))
        self.cli("audit", "hash", "-", stdin=nobody_secret)
        status, _, metrics = send(server, {}, path="/metrics", method="GET")
        self.assertEqual(status, 200)
        audit_text = "\n".join(stored_lines(op.data_dir))
        logs = "\n".join(server.lines)
        for name, secret in (("secret value", secret_value), ("root secret", root_secret),
                             ("user secret", nobody_secret),
                             ("session secret", session["SecretAccessKey"]),
                             ("session token", session["SessionToken"])):
            for where, text in (("audit log", audit_text), ("daemon log", logs),
                                ("metrics", metrics)):
                self.assertNotIn(secret, text, "%s found in the %s" % (name, where))

    def test_export_prints_the_stored_lines_across_segments(self):
        self.op.traffic(40)  # several 4 KiB segments
        self.assertGreaterEqual(len(audit_files(self.op.data_dir)), 3)
        before = stored_lines(self.op.data_dir)
        exported = self.cli("audit", "export").stdout.splitlines()
        after = stored_lines(self.op.data_dir)
        # The export's own calls are audited while it runs: it may see some of their records.
        self.assertGreaterEqual(len(exported), len(before))
        self.assertEqual(exported, after[:len(exported)])
        since = self.cli("audit", "export", "--since", "1h", "--action",
                         "sts:GetCallerIdentity").stdout.splitlines()
        self.assertGreaterEqual(len(since), 40)
        self.assertTrue(all(json.loads(l)["action"] == "sts:GetCallerIdentity" for l in since))
        self.assertEqual(self.cli("audit", "export", "--until", "2000-01-01").stdout, "")
        bad = self.cli("audit", "query", "--since", "yesterday", expect=2)
        self.assertIn("RFC 3339", bad.stderr)
        self.assertEqual(self.cli("audit", "query", "--decision", "maybe", expect=2).returncode, 2)


class AuditSegmentsTest(unittest.TestCase):
    """Tampering with archived segments and the active file; retention."""

    def stopped_segmented_log(self):
        """A log written by a daemon, now stopped, with at least three archived segments and
        three records in its active file."""
        op = Operator(self)
        traffic = 30
        while True:
            server = op.serve("--audit.segment-bytes", "4KiB")
            op.traffic(traffic)
            self.assertEqual(server.stop(), 0)
            archived = len(glob.glob(os.path.join(op.data_dir, "audit", "archive", "*.log")))
            with open(audit_path(op.data_dir)) as f:
                active = len(f.readlines())
            if archived >= 3 and active >= 3:
                return op
            traffic = 2

    def verify(self, data_dir, *extra):
        result = run_cli("audit", "verify", "--data-dir", data_dir, "--json", *extra)
        self.assertIn(result.returncode, (0, 1), result.stderr)
        return result.returncode, json.loads(result.stdout)

    def test_editing_deleting_or_reordering_any_segment_fails_verify_at_that_record(self):
        op = self.stopped_segmented_log()
        files = audit_files(op.data_dir)
        self.assertGreaterEqual(len(files), 3)
        code, report = self.verify(op.data_dir)
        self.assertEqual(code, 0, report)
        self.assertEqual(report["files"], len(files))

        for index in (0, len(files) - 1):  # an archived segment, the active file
            rel = os.path.relpath(files[index], op.data_dir)
            with open(files[index]) as f:
                original = f.readlines()
            self.assertGreaterEqual(len(original), 3, rel)
            first_seq = json.loads(original[0])["seq"]

            def edit(lines):
                record = json.loads(lines[1])
                record["outcome"] = "denied"
                lines[1] = json.dumps(record, separators=(",", ":")) + "\n"
                return lines, "hash_mismatch", 2, first_seq + 1

            def delete(lines):
                del lines[1]
                return lines, "seq_gap", 2, first_seq + 2

            def reorder(lines):
                lines[1], lines[2] = lines[2], lines[1]
                return lines, "reordered", 2, first_seq + 2

            for tamper in (edit, delete, reorder):
                copy = os.path.join(op.tmp, "copy")
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(os.path.join(op.data_dir, "audit"), os.path.join(copy, "audit"))
                lines, problem, line, seq = tamper(list(original))
                with open(os.path.join(copy, rel), "w") as f:
                    f.writelines(lines)
                code, report = self.verify(copy)
                self.assertEqual(code, 1, (rel, tamper.__name__))
                bad = report["first_bad"]
                self.assertEqual((bad["problem"], bad["line"], bad["seq"]), (problem, line, seq),
                                 (rel, tamper.__name__, bad))
                self.assertEqual(bad["file"], os.path.join(copy, rel))

    def test_retention_prunes_segments_and_what_remains_verifies(self):
        op = Operator(self)
        server = op.serve("--audit.segment-bytes", "4KiB", "--audit.retention-segments", "2")
        self.addCleanup(server.cleanup)
        op.traffic(60)  # six segments or so

        def pruned():
            try:
                return (len(audit_files(op.data_dir)) <= 3
                        and any('"action":"audit:PruneSegments"' in l
                                for l in stored_lines(op.data_dir)))
            except FileNotFoundError:  # a segment removed between listing and reading
                return False

        # Pruning runs on the log's own thread after each rotation: wait until it has caught up.
        deadline = time.monotonic() + 120
        while not pruned() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(server.stop(), 0)
        files = audit_files(op.data_dir)
        self.assertLessEqual(len(files) - 1, 2)
        lines = stored_lines(op.data_dir)
        self.assertGreater(json.loads(lines[0])["seq"], 1)  # the oldest records are gone
        prunes = [json.loads(l) for l in lines if '"action":"audit:PruneSegments"' in l]
        self.assertTrue(prunes)
        # The record that accounts for the records before the first one kept.
        first = json.loads(lines[0])
        self.assertIn((str(first["seq"]), first["prev"]),
                      [(p["fields"]["first_kept_seq"], p["fields"]["first_kept_prev"])
                       for p in prunes])
        code, report = self.verify(op.data_dir)
        self.assertEqual(code, 0, report)
        head = "%d:%s" % (report["head"]["seq"], report["head"]["hash"])
        self.assertEqual(self.verify(op.data_dir, "--expect-head", head)[0], 0)
        # Deleting the oldest remaining segment is not a recorded prune.
        os.remove(files[0])
        code, report = self.verify(op.data_dir)
        self.assertEqual(code, 1)
        self.assertEqual(report["first_bad"]["problem"], "seq_gap")


if __name__ == "__main__":
    harness.main()
