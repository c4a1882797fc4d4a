"""Function logs end to end (app/log_files.h, app/logs_api.h): a real daemon runs functions that
print, their lines land in DATA_DIR/logs/functions/NAME.log, and `moatless logs` reads them back
through the signed API — filtered by request id, time and text, followed with --follow, authorised
per function with moatless:GetFunctionLogs — while no secret the function holds and no credential
of the caller ever reaches a log file.

Functions run in sandboxes; on a host that cannot isolate them the daemon says "functions cannot
run on this host" and every test here is skipped with that message."""
import datetime
import json
import os
import queue
import secrets
import shutil
import stat
import subprocess
import tempfile
import threading
import unittest

import harness
from harness import Server, request, run_cli

AWS = "/usr/bin/aws"  # Debian's awscli (scripts/install-deps)
ACCOUNT = "000000000000"
REGION = "local"
SECRET_VALUE = "never-printed-" + secrets.token_hex(12)

PRINTER = """\
export const handler = async (event, context) => {
  const marker = event.marker ?? "none";
  console.log("line one " + marker);
  console.error("line two " + marker);
  if (event.big) console.log("x".repeat(6000));
  if (process.env.SECRET_VALUE === undefined) throw new Error("no secret given");
  return { requestId: context.awsRequestId };
};
"""

CTX = {}


def function_arn(name):
    return "arn:aws:lambda:%s:%s:function:%s" % (REGION, ACCOUNT, name)


def setUpModule():
    if not os.access(AWS, os.X_OK):
        raise AssertionError("%s is missing: scripts/install-deps installs Debian's awscli" % AWS)
    tmp = tempfile.mkdtemp(prefix="moatless-logs-")
    CTX["tmp"] = tmp
    CTX["data_dir"] = os.path.join(tmp, "data")
    CTX["creds"] = os.path.join(tmp, "home", ".aws", "credentials")
    init = run_cli("init", "--data-dir", CTX["data_dir"], "--credentials-file", CTX["creds"])
    if init.returncode != 0:
        raise AssertionError("moatless init failed: " + init.stderr)
    # Code readable by the sandbox's unprivileged user.
    code = os.path.join(tmp, "code")
    os.makedirs(code)
    with open(os.path.join(code, "index.mjs"), "w") as f:
        f.write(PRINTER)
    os.chmod(tmp, 0o755)
    os.chmod(code, 0o755)
    os.chmod(os.path.join(code, "index.mjs"), 0o644)
    for name in ("logs-a", "logs-b", "logs-big"):
        published = run_cli("functions", "publish", name, "--data-dir", CTX["data_dir"],
                            "--runtime", "nodejs20", "--handler", "index.handler", "--code", code,
                            "--env", "SECRET_VALUE=" + SECRET_VALUE, "--json")
        if published.returncode != 0:
            raise AssertionError("publishing %s failed: %s" % (name, published.stderr))
    # Small files, so that logs-big rotates within a few invocations.
    server = Server("--log.max-file-bytes", "16KiB", data_dir=CTX["data_dir"])
    CTX["server"] = server
    refused = server.functions_refused()
    if refused is not None:
        tearDownModule()
        raise unittest.SkipTest("functions cannot run on this host: %s" % refused)


def tearDownModule():
    if "server" in CTX:
        CTX.pop("server").cleanup()
    if "tmp" in CTX:
        shutil.rmtree(CTX.pop("tmp"), ignore_errors=True)


class LogsTest(unittest.TestCase):
    @property
    def server(self):
        return CTX["server"]

    def env(self, keys=None):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": CTX["tmp"],
               "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": CTX["creds"],
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "", "AWS_REGION": REGION,
               "AWS_DEFAULT_REGION": REGION, "MOATLESS_ENDPOINT": self.server.url("")}
        if keys:
            env.update({"AWS_ACCESS_KEY_ID": keys[0], "AWS_SECRET_ACCESS_KEY": keys[1]})
            if len(keys) > 2:
                env["AWS_SESSION_TOKEN"] = keys[2]
        else:
            env["AWS_PROFILE"] = "moatless"
        return env

    def aws(self, *args):
        result = subprocess.run([AWS, "--endpoint-url", self.server.url(""), "--output", "json",
                                 *args], capture_output=True, text=True, timeout=90,
                                env=self.env())
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout) if result.stdout.strip() else {}

    def invoke(self, name, payload):
        result = subprocess.run([harness.MOATLESS, "invoke", name, "--payload",
                                 json.dumps(payload)], capture_output=True, text=True, timeout=90,
                                env=self.env())
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)["requestId"]

    def logs(self, name, *args, keys=None, expect_ok=True):
        result = subprocess.run([harness.MOATLESS, "logs", name, *args], capture_output=True,
                                text=True, timeout=60, env=self.env(keys))
        if expect_ok:
            self.assertEqual(result.returncode, 0, result.stderr)
        return result

    def logs_json(self, name, *args, keys=None):
        out = self.logs(name, "--json", *args, keys=keys).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    @classmethod
    def setUpClass(cls):
        helper = cls()
        helper.aws("iam", "create-user", "--user-name", "reader-a")
        helper.aws("iam", "put-user-policy", "--user-name", "reader-a", "--policy-name", "logs-a",
                   "--policy-document", json.dumps({
                       "Version": "2012-10-17",
                       "Statement": [{"Effect": "Allow", "Action": "moatless:GetFunctionLogs",
                                      "Resource": function_arn("logs-a")},
                                     {"Effect": "Allow", "Action": "sts:GetSessionToken",
                                      "Resource": "*"}]}))
        key = helper.aws("iam", "create-access-key", "--user-name", "reader-a")["AccessKey"]
        cls.reader_keys = (key["AccessKeyId"], key["SecretAccessKey"])
        helper.aws("iam", "create-user", "--user-name", "nobody")
        key = helper.aws("iam", "create-access-key", "--user-name", "nobody")["AccessKey"]
        cls.nobody_keys = (key["AccessKeyId"], key["SecretAccessKey"])
        # The reader also calls with a session token: neither it nor the secret may be logged.
        result = subprocess.run([AWS, "--endpoint-url", helper.server.url(""), "--output", "json",
                                 "sts", "get-session-token"], capture_output=True, text=True,
                                timeout=90, env=helper.env(cls.reader_keys))
        if result.returncode != 0:
            raise AssertionError("get-session-token: " + result.stderr)
        creds = json.loads(result.stdout)["Credentials"]
        cls.session_keys = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
        cls.first = helper.invoke("logs-a", {"marker": "first"})
        cls.second = helper.invoke("logs-a", {"marker": "second"})

    def test_lines_come_back_with_their_request_ids_and_report(self):
        lines = self.logs_json("logs-a")
        mine = [l for l in lines if l["request_id"] == self.first]
        self.assertEqual([l["type"] for l in mine], ["start", "output", "output", "end", "report"])
        for l in mine:
            self.assertEqual(l["function"], "logs-a")
            self.assertEqual(l["version"], "1")
            self.assertRegex(l["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(mine[0]["message"], "START RequestId: %s Version: 1" % self.first)
        output = [l["message"] for l in mine if l["type"] == "output"]
        self.assertEqual(len(output), 2)
        self.assertTrue(any(m.endswith("line one first") for m in output), output)
        self.assertTrue(any(m.endswith("line two first") for m in output), output)
        self.assertEqual({l["stream"] for l in mine if l["type"] == "output"}, {"output"})
        report = mine[-1]
        self.assertTrue(report["message"].startswith("REPORT RequestId: " + self.first), report)
        for key in ("duration_ms", "billed_duration_ms", "memory_size_mb", "max_memory_used_mb"):
            self.assertIn(key, report)
        self.assertEqual(report["memory_size_mb"], 128)
        self.assertTrue(any(l["request_id"] == self.second for l in lines))
        # The human form: TIME REQUEST_ID MESSAGE, and REPORT as Lambda prints it.
        text = self.logs("logs-a", "--request-id", self.first).stdout.splitlines()
        self.assertEqual(len(text), 5, text)
        self.assertIn(" %s " % self.first, text[1])
        self.assertIn("line one first", "\n".join(text))
        self.assertRegex(text[-1], r"^\S+Z REPORT RequestId: %s\tDuration: " % self.first)

    def test_request_id_since_and_filter_select_on_the_server(self):
        only = self.logs_json("logs-a", "--request-id", self.second)
        self.assertEqual(len(only), 5)
        self.assertEqual({l["request_id"] for l in only}, {self.second})
        # --since: a time after the first invocation's lines excludes them.
        first_report = [l for l in self.logs_json("logs-a", "--request-id", self.first)
                        if l["type"] == "report"][0]
        after = datetime.datetime.strptime(first_report["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
        after += datetime.timedelta(milliseconds=1)
        since = after.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        ids = {l["request_id"] for l in self.logs_json("logs-a", "--since", since)}
        self.assertNotIn(self.first, ids)
        self.assertIn(self.second, ids)
        ids = {l["request_id"] for l in self.logs_json("logs-a", "--since", "1h")}
        self.assertTrue({self.first, self.second} <= ids)
        self.assertEqual(self.logs_json("logs-a", "--since", "2000-01-01T00:00:00Z",
                                        "--until", "2000-01-02T00:00:00Z"), [])
        filtered = self.logs_json("logs-a", "--filter", "line two second")
        self.assertEqual(len(filtered), 1)
        self.assertEqual(filtered[0]["request_id"], self.second)

    def test_access_is_granted_per_function(self):
        # The reader may read logs-a (also with a session token) ...
        self.assertTrue(self.logs_json("logs-a", "--request-id", self.first,
                                       keys=self.reader_keys))
        self.assertTrue(self.logs_json("logs-a", "--request-id", self.first,
                                       keys=self.session_keys))
        # ... not logs-b, nor a function that does not exist (which it cannot tell apart);
        # a user without the permission reads nothing.
        for name, keys in (("logs-b", self.reader_keys), ("no-such-function", self.reader_keys),
                           ("logs-a", self.nobody_keys), ("logs-b", self.session_keys)):
            result = self.logs(name, keys=keys, expect_ok=False)
            self.assertEqual(result.returncode, 1, result.stdout)
            self.assertIn("AccessDeniedException (HTTP 403)", result.stderr)
            self.assertEqual(result.stdout, "")
        # Root learns that a function does not exist.
        result = self.logs("no-such-function", expect_ok=False)
        self.assertEqual(result.returncode, 1)
        self.assertIn("ResourceNotFoundException (HTTP 404)", result.stderr)
        # The decisions are audited with the function's ARN.
        with open(os.path.join(CTX["data_dir"], "audit", "audit.log")) as f:
            records = [json.loads(line) for line in f if line.strip()]
        denied = [r for r in records if r["action"] == "moatless:GetFunctionLogs"
                  and r["outcome"] == "denied"]
        self.assertIn(function_arn("logs-b"), {r["resource"] for r in denied})

    def test_follow_prints_a_new_invocations_lines(self):
        marker = "followed-" + secrets.token_hex(4)
        proc = subprocess.Popen([harness.MOATLESS, "logs", "logs-a", "--follow", "--json",
                                 "--interval", "0.2", "--since", "10m"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env())
        lines = queue.Queue()

        def read():
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            # History first: the earlier invocations' lines.
            seen = set()
            while self.second not in seen:
                line = lines.get(timeout=60)
                self.assertIsNotNone(line, proc.stderr.read() if proc.poll() is not None else "")
                seen.add(json.loads(line)["request_id"])
            request_id = self.invoke("logs-a", {"marker": marker})
            while True:
                line = lines.get(timeout=60)
                self.assertIsNotNone(line, "the follower stopped")
                entry = json.loads(line)
                if entry["type"] == "report" and entry["request_id"] == request_id:
                    break
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            proc.stdout.close()
            proc.stderr.close()
        self.assertEqual(proc.returncode, 0)

    def test_logs_survive_rotation(self):
        ids = [self.invoke("logs-big", {"marker": "big%d" % i, "big": True}) for i in range(4)]
        paths = sorted(os.listdir(os.path.join(CTX["data_dir"], "logs", "functions")))
        self.assertIn("logs-big.log.1", paths)
        reports = [l["request_id"] for l in self.logs_json("logs-big") if l["type"] == "report"]
        self.assertEqual(reports, ids)

    def test_files_are_private_and_hold_no_secrets(self):
        # Every call above and some more with each credential, so their traces are in the files.
        self.logs_json("logs-a", keys=self.session_keys)
        self.logs("logs-b", keys=self.reader_keys, expect_ok=False)
        logs_dir = os.path.join(CTX["data_dir"], "logs")
        self.assertEqual(stat.S_IMODE(os.stat(logs_dir).st_mode), 0o700)
        names = set()
        for root, _, files in os.walk(logs_dir):
            for name in files:
                path = os.path.join(root, name)
                names.add(os.path.relpath(path, logs_dir))
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, path)
        for expected in ("moatless.log", "gateway.log", "functions/logs-a.log"):
            self.assertIn(expected, names)
        with open(CTX["creds"]) as f:
            root_secrets = [line.split("=", 1)[1].strip() for line in f
                            if line.strip().startswith("aws_secret_access_key")]
        self.assertTrue(root_secrets)
        forbidden = [SECRET_VALUE, self.reader_keys[1], self.nobody_keys[1],
                     self.session_keys[1], self.session_keys[2], *root_secrets]
        for root, _, files in os.walk(logs_dir):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    data = f.read()
                for value in forbidden:
                    self.assertNotIn(value.encode(), data, "a secret in " + name)
        # Nothing was lost, and the metric says so.
        status, _, body = request(self.server, "GET", "/metrics")
        self.assertEqual(status, 200)
        for log in ("platform", "gateway", "functions"):
            self.assertIn('moatless_log_write_failures_total{log="%s"} 0' % log, body.decode())
        # The platform log file holds what standard error shows.
        with open(os.path.join(logs_dir, "moatless.log")) as f:
            msgs = {json.loads(line).get("msg") for line in f if line.strip()}
        self.assertIn("listening", msgs)


if __name__ == "__main__":
    harness.main()
