"""Functions end to end (docs/functions.md) with a real daemon and real clients: `moatless functions
publish`, then invocations through Lambda's Invoke API with `moatless invoke`, Debian's aws CLI and
the AWS SDK for JavaScript v3 (tests/aws_clients, from npm) — Node.js and Python handlers, errors,
timeouts, versions, per-function authorisation, a function's credentials bound to its environment,
functions invoking functions, egress allowlists, event invocations, throttling and metrics.

Functions run in sandboxes; on a host that cannot isolate them the daemon says "functions cannot
run on this host" and every test here is skipped with that message."""
import base64
import datetime
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import socketserver
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import Server, read_response, request, run_cli

AWS = "/usr/bin/aws"  # Debian's awscli (scripts/install-deps); not whatever else is on PATH
HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(os.path.dirname(HERE), "aws_clients")
ACCOUNT = "000000000000"
REGION = "local"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}

# One daemon and one data directory for most of the file (setUpModule); each test uses functions
# of its own, so they do not see each other's invocations. The functions are published before the
# daemon starts; LiveRegistryTest, with a daemon of its own, publishes and deletes while it runs.
CTX = {}
PLANNED = []  # (name, code_dir, flags, runtime, handler), published in order by setUpModule


def function_arn(name, qualifier=None):
    arn = "arn:aws:lambda:%s:%s:function:%s" % (REGION, ACCOUNT, name)
    return arn + ":" + qualifier if qualifier else arn


def npm_clients_ready():
    if not os.path.isdir(os.path.join(CLIENTS, "node_modules", "@aws-sdk", "client-lambda")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CLIENTS,
                       check=True, capture_output=True, timeout=300)


def write_code(name, files, node_modules=False):
    """A code directory readable by the sandbox's unprivileged user."""
    path = os.path.join(CTX["code_root"], name)
    os.makedirs(path, exist_ok=False)
    for rel, text in files.items():
        with open(os.path.join(path, rel), "w") as f:
            f.write(text)
    if node_modules:
        # A copy: a symbolic link out of the code directory does not resolve in the sandbox.
        shutil.copytree(os.path.join(CLIENTS, "node_modules"),
                        os.path.join(path, "node_modules"), symlinks=True)
    for root, dirs, names in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
        for n in names:
            f = os.path.join(root, n)
            if not os.path.islink(f):
                os.chmod(f, 0o644)
    os.chmod(path, 0o755)
    return path


def plan(name, code_dir, *flags, runtime="nodejs20", handler="index.handler"):
    PLANNED.append((name, code_dir, flags, runtime, handler))


def publish_cli(data_dir, name, code_dir, *flags, runtime="nodejs20", handler="index.handler"):
    return run_cli("functions", "publish", name, "--data-dir", data_dir, "--runtime", runtime,
                   "--handler", handler, "--code", code_dir, *flags, "--json")


class Deployment:
    """A data directory with its root credentials, and the daemon serving it."""

    def __init__(self, prefix):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.data_dir = os.path.join(self.tmp, "data")
        self.creds = os.path.join(self.tmp, "home", ".aws", "credentials")
        self.server = None
        init = run_cli("init", "--data-dir", self.data_dir, "--credentials-file", self.creds)
        if init.returncode != 0:
            raise AssertionError("moatless init failed: " + init.stderr)

    def start(self):
        # A short queue wait keeps the throttling test quick; nothing else here waits for a slot.
        self.server = Server("--functions.queue-wait", "500ms", data_dir=self.data_dir)
        refused = self.server.functions_refused()
        if refused is not None:
            self.cleanup()
            raise unittest.SkipTest("functions cannot run on this host: %s" % refused)

    def cleanup(self):
        if self.server is not None:
            self.server.cleanup()
        subprocess.run(["rm", "-rf", self.tmp], check=False)


def setUpModule():
    if not os.access(AWS, os.X_OK):
        raise AssertionError("%s is missing: scripts/install-deps installs Debian's awscli" % AWS)
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise AssertionError("node and npm are required: scripts/install-deps installs them")
    npm_clients_ready()
    # Function code is mounted into sandboxes that run as an unprivileged user: a directory of
    # its own that everyone may read (the data directories and credentials stay private).
    code_root = tempfile.mkdtemp(prefix="moatless-functions-code-")
    os.chmod(code_root, 0o755)
    CTX["code_root"] = code_root
    main = Deployment("moatless-functions-")
    CTX["main"] = main
    for cls in (InvokeTest, AuthorizationTest, FunctionCredentialsTest, EgressTest, ThrottleTest):
        cls.prepare()
    for name, code_dir, flags, runtime, handler in PLANNED:
        published = publish_cli(main.data_dir, name, code_dir, *flags, runtime=runtime,
                                handler=handler)
        if published.returncode != 0:
            raise AssertionError("publishing %s failed: %s" % (name, published.stderr))
        CTX.setdefault("published", []).append(json.loads(published.stdout))
    CTX["list"] = run_cli("functions", "list", "--data-dir", main.data_dir, "--json")
    CTX["versions"] = run_cli("functions", "versions", "versioned", "--data-dir", main.data_dir,
                              "--json")
    main.start()


def tearDownModule():
    for cls in (EgressTest,):
        cls.stop_host_servers()
    if "main" in CTX:
        CTX["main"].cleanup()
    if "code_root" in CTX:
        subprocess.run(["rm", "-rf", CTX["code_root"]], check=False)


class FunctionsCase(unittest.TestCase):
    """Helpers shared by the test classes: the three clients, logs, audit and metrics."""

    own = None  # a Deployment of the class's own, or the module's

    @classmethod
    def dep(cls):
        return cls.own or CTX["main"]

    @property
    def server(self):
        return self.dep().server

    @classmethod
    def prepare(cls):
        """Writes the class's code directories and plans its functions (before the daemon)."""

    def functions(self, *args):
        return run_cli("functions", *args, "--data-dir", self.dep().data_dir)

    # --- clients ---------------------------------------------------------------------------------

    def env(self, profile="moatless", keys=None):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.dep().tmp,
               "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": self.dep().creds,
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "", "AWS_REGION": REGION,
               "AWS_DEFAULT_REGION": REGION}
        if keys:
            env.update({"AWS_ACCESS_KEY_ID": keys[0], "AWS_SECRET_ACCESS_KEY": keys[1]})
            if len(keys) > 2:
                env["AWS_SESSION_TOKEN"] = keys[2]
        elif profile:
            env["AWS_PROFILE"] = profile
        return env

    def root_keys(self):
        section, found = None, {}
        with open(self.dep().creds) as f:
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    section = line[1:-1]
                elif section == "moatless" and "=" in line:
                    key, value = (x.strip() for x in line.split("=", 1))
                    found[key] = value
        return found["aws_access_key_id"], found["aws_secret_access_key"]

    def invoke(self, name, *args, keys=None, profile="moatless", timeout=60):
        """`moatless invoke NAME ARGS...`: the CompletedProcess (stdout: the response body)."""
        env = self.env(profile, keys)
        env["MOATLESS_ENDPOINT"] = self.server.url("")
        return subprocess.run([harness.MOATLESS, "invoke", name, *args], capture_output=True,
                              text=True, timeout=timeout, env=env)

    def invoke_json(self, name, payload=None, *args, keys=None):
        """An invocation that must succeed; its response body parsed."""
        extra = ["--payload", json.dumps(payload)] if payload is not None else []
        result = self.invoke(name, *extra, *args, keys=keys)
        self.assertEqual(result.returncode, 0, "moatless invoke %s: %s" % (name, result.stderr))
        return json.loads(result.stdout)

    def aws(self, *args, keys=None, expect_ok=True):
        result = subprocess.run([AWS, "--endpoint-url", self.server.url(""), "--output", "json",
                                 *args], capture_output=True, text=True, timeout=90,
                                env=self.env(keys=keys))
        if expect_ok:
            self.assertEqual(result.returncode, 0, result.stderr)
            return json.loads(result.stdout) if result.stdout.strip() else {}
        self.assertNotEqual(result.returncode, 0, result.stdout)
        return result.stderr

    def aws_invoke(self, name, payload, *args, keys=None):
        """`aws lambda invoke`: (the CLI's JSON output, the response file's text)."""
        out = os.path.join(self.dep().tmp, "aws-invoke-out.json")
        if os.path.exists(out):
            os.unlink(out)
        meta = self.aws("lambda", "invoke", "--function-name", name, "--cli-binary-format",
                        "raw-in-base64-out", "--payload", json.dumps(payload), *args, out,
                        keys=keys)
        with open(out) as f:
            return meta, f.read()

    def sdk_invoke(self, name, *args, keys=None):
        """tests/aws_clients/lambda.mjs: the JavaScript SDK's InvokeCommand, as one JSON line."""
        result = subprocess.run(["node", os.path.join(CLIENTS, "lambda.mjs"), self.server.url(""),
                                 name, *args], capture_output=True, text=True, timeout=90,
                                env=self.env(keys=keys or self.root_keys()))
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout.strip().splitlines()[-1])

    # --- logs, audit, metrics ------------------------------------------------------------------

    def log_records(self, msg, function=None, request_id=None):
        return [r for r in self.server.records() if r.get("msg") == msg
                and (function is None or r.get("function") == function)
                and (request_id is None or r.get("request_id") == request_id)]

    def wait_records(self, msg, function=None, request_id=None, count=1, timeout=30):
        """The daemon's log records of a kind, once at least `count` have been read from its
        stderr (records are written before the response, but read by another thread)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.log_records(msg, function, request_id)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def audit(self):
        with open(os.path.join(self.dep().data_dir, "audit", "audit.log")) as f:
            return [json.loads(line) for line in f if line.strip()]

    def audit_text(self):
        with open(os.path.join(self.dep().data_dir, "audit", "audit.log")) as f:
            return f.read()

    def metrics(self):
        status, _, body = request(self.server, "GET", "/metrics")
        self.assertEqual(status, 200)
        return body.decode()

    def sample(self, text, metric, **labels):
        """The value of one series of a metric, or None."""
        for m in re.finditer(r"^%s\{([^}]*)\} (\S+)$" % re.escape(metric), text, re.M):
            found = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(m.group(2))
        return None

    def create_role(self, name, policy):
        self.aws("iam", "create-role", "--role-name", name, "--assume-role-policy-document",
                 json.dumps(LAMBDA_TRUST))
        self.aws("iam", "put-role-policy", "--role-name", name, "--policy-name", name + "-policy",
                 "--policy-document", json.dumps({"Version": "2012-10-17", "Statement": policy}))
        return "arn:aws:iam::%s:role/%s" % (ACCOUNT, name)


HELLO_NODE = """\
let count = 0;  // module state: survives between invocations of one warm environment
export const handler = async (event, context) => {
  count += 1;
  console.log("greeting", event.name);
  return { greeting: `hello ${event.name ?? "world"}`, requestId: context.awsRequestId,
           function: context.functionName, version: process.env.AWS_LAMBDA_FUNCTION_VERSION,
           taskRoot: process.env.LAMBDA_TASK_ROOT, count,
           msLeft: context.getRemainingTimeInMillis() };
};
"""

HELLO_PYTHON = """\
import os


def handler(event, context):
    print("remaining", context.get_remaining_time_in_millis())
    return {"sum": event["a"] + event["b"], "function": context.function_name,
            "region": os.environ["AWS_REGION"], "request_id": context.aws_request_id}
"""

THROWING_NODE = """\
export const handler = async (event) => {
  if (event.fail) throw new TypeError("boom: " + event.fail);
  return { fine: true };
};
"""

SLEEPY_NODE = """\
export const handler = async (event) => {
  await new Promise((resolve) => setTimeout(resolve, event.sleepMs ?? 0));
  return { slept: event.sleepMs ?? 0 };
};
"""


EVENT_NODE = """\
export const handler = async (event) => { console.log("event-marker", event.marker); return {}; };
"""


def versioned_node(label):
    return ("let count = 0;\n"
            "export const handler = async () => ({ code: %s, count: ++count,\n"
            "  version: process.env.AWS_LAMBDA_FUNCTION_VERSION });\n" % json.dumps(label))


class InvokeTest(FunctionsCase):
    """Publishing and invoking: the three clients, logs, errors, timeouts, versions, events."""

    @classmethod
    def prepare(cls):
        plan("hello-node", write_code("hello-node", {"index.mjs": HELLO_NODE}),
             "--env", "GREETING=hi")
        plan("hello-py", write_code("hello-py", {"app.py": HELLO_PYTHON}), runtime="python3",
             handler="app.handler")
        plan("throws", write_code("throws", {"index.mjs": THROWING_NODE}))
        plan("sleepy", write_code("sleepy", {"index.mjs": SLEEPY_NODE}), "--timeout", "1")
        plan("versioned", write_code("versioned-1", {"index.mjs": versioned_node("one")}))
        plan("versioned", write_code("versioned-2", {"index.mjs": versioned_node("two")}))
        plan("eventful", write_code("eventful", {"index.mjs": EVENT_NODE}))
        plan("dry", write_code("dry", {"index.mjs": HELLO_NODE}))
        plan("metered", write_code("metered", {"index.mjs": THROWING_NODE}))

    def test_node_function_with_moatless_invoke(self):
        out = self.invoke_json("hello-node", {"name": "moatless"})
        self.assertEqual(out["greeting"], "hello moatless")
        self.assertEqual(out["function"], "hello-node")
        self.assertEqual(out["version"], "1")
        self.assertEqual(out["taskRoot"], "/var/task")
        self.assertGreater(out["msLeft"], 0)
        self.assertLessEqual(out["msLeft"], 3000)  # the default timeout, 3 s

        # The payload from a file, and the log tail on stderr.
        event = os.path.join(self.dep().tmp, "event.json")
        with open(event, "w") as f:
            json.dump({"name": "file"}, f)
        result = self.invoke("hello-node", "--payload", "@" + event, "--log")
        self.assertEqual(result.returncode, 0, result.stderr)
        out = json.loads(result.stdout)
        self.assertEqual(out["greeting"], "hello file")
        rid = out["requestId"]
        self.assertRegex(result.stderr, r"START RequestId: %s Version: 1" % re.escape(rid))
        self.assertIn("greeting file", result.stderr)
        self.assertIn("END RequestId: " + rid, result.stderr)
        self.assertRegex(result.stderr, r"REPORT RequestId: %s\tDuration: [\d.]+ ms\t"
                         r"Billed Duration: \d+ ms\tMemory Size: 128 MB" % re.escape(rid))
        # The daemon logs the output and the invocation with the request id.
        self.server.wait_for_log(lambda r: r.get("msg") == "function output"
                                 and r.get("request_id") == rid
                                 and "greeting file" in r.get("line", ""))
        [record] = self.wait_records("invocation", "hello-node", rid)
        self.assertEqual(record["outcome"], "ok")
        self.assertEqual(str(record["version"]), "1")

    def test_a_warm_environment_keeps_module_state(self):
        first = self.invoke_json("hello-node", {"name": "a"})
        second = self.invoke_json("hello-node", {"name": "b"})
        self.assertEqual(second["count"], first["count"] + 1)
        self.assertNotEqual(first["requestId"], second["requestId"])

    def test_node_function_with_the_aws_cli(self):
        meta, body = self.aws_invoke("hello-node", {"name": "cli"}, "--log-type", "Tail")
        self.assertEqual(meta["StatusCode"], 200)
        self.assertEqual(meta["ExecutedVersion"], "1")
        self.assertNotIn("FunctionError", meta)
        out = json.loads(body)
        self.assertEqual(out["greeting"], "hello cli")
        log = base64.b64decode(meta["LogResult"]).decode()
        self.assertIn("START RequestId: %s Version: 1" % out["requestId"], log)
        self.assertIn("greeting cli", log)
        self.assertIn("REPORT RequestId: " + out["requestId"], log)

    def test_node_function_with_the_javascript_sdk(self):
        out = self.sdk_invoke("hello-node", "--payload", json.dumps({"name": "sdk"}), "--log")
        self.assertTrue(out["ok"], out)
        self.assertEqual(out["StatusCode"], 200)
        self.assertEqual(out["ExecutedVersion"], "1")
        self.assertIsNone(out.get("FunctionError"))
        payload = json.loads(out["Payload"])
        self.assertEqual(payload["greeting"], "hello sdk")
        rid = payload["requestId"]
        log = out["LogResult"]
        self.assertIn("START RequestId: %s Version: 1" % rid, log)
        self.assertIn("greeting sdk", log)
        self.assertIn("END RequestId: " + rid, log)
        self.assertIn("REPORT RequestId: " + rid, log)
        # The ARN form of the name works too.
        out = self.sdk_invoke(function_arn("hello-node"), "--payload", '{"name":"arn"}')
        self.assertTrue(out["ok"], out)
        self.assertEqual(json.loads(out["Payload"])["greeting"], "hello arn")

    def test_python_function_with_all_three_clients(self):
        out = self.invoke_json("hello-py", {"a": 2, "b": 3})
        self.assertEqual(out["sum"], 5)
        self.assertEqual(out["function"], "hello-py")
        self.assertEqual(out["region"], REGION)
        meta, body = self.aws_invoke("hello-py", {"a": 40, "b": 2})
        self.assertEqual(meta["StatusCode"], 200)
        self.assertEqual(json.loads(body)["sum"], 42)
        sdk = self.sdk_invoke("hello-py", "--payload", '{"a": 1, "b": 1}', "--log")
        self.assertTrue(sdk["ok"], sdk)
        payload = json.loads(sdk["Payload"])
        self.assertEqual(payload["sum"], 2)
        self.assertIn("START RequestId: " + payload["request_id"], sdk["LogResult"])
        self.assertIn("remaining", sdk["LogResult"])
        self.assertIn("END RequestId: " + payload["request_id"], sdk["LogResult"])
        # A Python exception is the Lambda error shape.
        failed = self.sdk_invoke("hello-py", "--payload", '{"a": 1}')
        self.assertTrue(failed["ok"], failed)
        self.assertEqual(failed["FunctionError"], "Unhandled")
        error = json.loads(failed["Payload"])
        self.assertEqual(error["errorType"], "KeyError")
        self.assertIn("b", error["errorMessage"])

    def test_a_throwing_handler_is_an_unhandled_function_error(self):
        result = self.invoke("throws", "--payload", '{"fail": "marker-1"}')
        self.assertEqual(result.returncode, 1)
        error = json.loads(result.stdout)
        self.assertEqual(error["errorType"], "TypeError")
        self.assertEqual(error["errorMessage"], "boom: marker-1")
        self.assertIsInstance(error["stackTrace"], list)

        meta, body = self.aws_invoke("throws", {"fail": "marker-2"})
        self.assertEqual(meta["StatusCode"], 200)
        self.assertEqual(meta["FunctionError"], "Unhandled")
        self.assertEqual(json.loads(body)["errorMessage"], "boom: marker-2")

        sdk = self.sdk_invoke("throws", "--payload", '{"fail": "marker-3"}', "--log")
        self.assertTrue(sdk["ok"], sdk)
        self.assertEqual(sdk["FunctionError"], "Unhandled")
        self.assertEqual(json.loads(sdk["Payload"])["errorType"], "TypeError")
        self.assertIn("marker-3", sdk["LogResult"])
        # A handled error leaves the runtime ready: the next invocation answers.
        self.assertEqual(self.invoke_json("throws", {})["fine"], True)

    def test_a_timeout_kills_the_environment(self):
        sdk = self.sdk_invoke("sleepy", "--payload", '{"sleepMs": 5000}', "--log")
        self.assertTrue(sdk["ok"], sdk)
        self.assertEqual(sdk["FunctionError"], "Unhandled")
        error = json.loads(sdk["Payload"])
        self.assertIn("Task timed out after 1.00 seconds", error["errorMessage"])
        self.assertIn("Status: timeout", sdk["LogResult"])
        result = self.invoke("sleepy", "--payload", '{"sleepMs": 5000}')
        self.assertEqual(result.returncode, 1)
        self.assertIn("Task timed out after 1.00 seconds", result.stdout)
        # The environment was discarded: the next invocation is a cold start, and it answers.
        again = self.sdk_invoke("sleepy", "--payload", '{"sleepMs": 10}', "--log")
        self.assertTrue(again["ok"], again)
        self.assertIsNone(again.get("FunctionError"), again["Payload"])
        self.assertEqual(json.loads(again["Payload"]), {"slept": 10})
        self.assertIn("Init Duration:", again["LogResult"])
        outcomes = [r["outcome"] for r in self.wait_records("invocation", "sleepy", count=3)]
        self.assertEqual(outcomes, ["timeout", "timeout", "ok"])

    def test_versions_and_qualifiers(self):
        # Published twice before the daemon started: versions 1 and 2, with different code.
        published = [(p["name"], str(p["version"])) for p in CTX["published"]]
        self.assertEqual([v for n, v in published if n == "versioned"], ["1", "2"])
        self.assertEqual(CTX["versions"].returncode, 0, CTX["versions"].stderr)
        versions = json.loads(CTX["versions"].stdout)
        self.assertEqual(sorted(str(v["version"]) for v in versions), ["1", "2"])
        self.assertEqual({str(v["version"]): v["code"] for v in versions},
                         {"1": os.path.join(CTX["code_root"], "versioned-1"),
                          "2": os.path.join(CTX["code_root"], "versioned-2")})
        self.assertEqual(CTX["list"].returncode, 0, CTX["list"].stderr)
        self.assertEqual([str(f["version"]) for f in json.loads(CTX["list"].stdout)
                          if f["name"] == "versioned"], ["2"])

        # No qualifier: the newest version.
        latest = self.sdk_invoke("versioned")
        self.assertTrue(latest["ok"], latest)
        self.assertEqual(latest["ExecutedVersion"], "2")
        self.assertEqual(json.loads(latest["Payload"])["code"], "two")
        self.assertEqual(json.loads(latest["Payload"])["count"], 1)
        self.assertEqual(self.invoke_json("versioned", None, "--qualifier", "$LATEST")["code"],
                         "two")
        # --qualifier 1: the old code, in an environment of its own (its module state starts
        # afresh, then survives between its invocations).
        old = self.invoke_json("versioned", None, "--qualifier", "1")
        self.assertEqual((old["code"], old["version"], old["count"]), ("one", "1", 1))
        meta, body = self.aws_invoke("versioned", {}, "--qualifier", "1")
        self.assertEqual(meta["ExecutedVersion"], "1")
        self.assertEqual(json.loads(body)["code"], "one")
        self.assertEqual(json.loads(body)["count"], 2)
        sdk_old = self.sdk_invoke("versioned", "--qualifier", "1")
        self.assertEqual(sdk_old["ExecutedVersion"], "1")
        sdk_arn = self.sdk_invoke(function_arn("versioned", "1"))
        self.assertEqual(sdk_arn["ExecutedVersion"], "1")
        self.assertEqual(self.invoke_json("versioned")["count"], 3)  # version 2's own, warm
        missing = self.invoke("versioned", "--qualifier", "7")
        self.assertEqual(missing.returncode, 1)
        self.assertIn("ResourceNotFoundException", missing.stderr)
        self.assertIn("HTTP 404", missing.stderr)
        err = self.aws("lambda", "invoke", "--function-name", "no-such-function",
                       os.path.join(self.dep().tmp, "gone.json"), expect_ok=False)
        self.assertIn("ResourceNotFoundException", err)

    def test_event_invocation_runs_in_the_background(self):
        # Through the SDK: 202 and no payload; the event runs afterwards.
        sdk = self.sdk_invoke("eventful", "--invocation-type", "Event", "--payload",
                              '{"marker": "evt-sdk"}')
        self.assertTrue(sdk["ok"], sdk)
        self.assertEqual(sdk["StatusCode"], 202)
        self.server.wait_for_log(lambda r: r.get("msg") == "function output"
                                 and "evt-sdk" in r.get("line", ""), timeout=60)

        result = self.invoke("eventful", "--invocation-type", "Event", "--payload",
                             '{"marker": "evt-7f3a"}')
        self.assertEqual(result.returncode, 0, result.stderr)
        m = re.match(r"Accepted: request (\S+)$", result.stdout.strip())
        self.assertTrue(m, result.stdout)
        rid = m.group(1)
        # It runs in the background: its output reaches the daemon's log...
        output = self.server.wait_for_log(lambda r: r.get("msg") == "function output"
                                          and "evt-7f3a" in r.get("line", ""), timeout=60)
        event_id = output.get("request_id")
        done = self.server.wait_for_log(lambda r: r.get("msg") == "event invocation done"
                                        and r.get("request_id") == event_id, timeout=60)
        self.assertEqual(done["function"], "eventful")
        [record] = self.wait_records("invocation", "eventful", event_id)
        self.assertEqual(record["outcome"], "ok")
        # ...under the request id the caller was given (Lambda's awsRequestId of the event).
        self.assertEqual(event_id, rid, "the event ran as request %s; the caller was told %s"
                         % (event_id, rid))

    def test_dry_run_and_refused_requests_run_nothing(self):
        result = self.invoke("dry", "--invocation-type", "DryRun", "--payload", '{"name": "x"}')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "")
        sdk = self.sdk_invoke("dry", "--invocation-type", "DryRun")
        self.assertTrue(sdk["ok"], sdk)
        self.assertEqual(sdk["StatusCode"], 204)
        not_json = self.invoke("dry", "--payload", "{not json")
        self.assertEqual(not_json.returncode, 1)
        self.assertIn("InvalidRequestContentException", not_json.stderr)
        self.assertIn("HTTP 400", not_json.stderr)
        missing = self.invoke("no-such-function", "--invocation-type", "DryRun")
        self.assertEqual(missing.returncode, 1)
        self.assertIn("ResourceNotFoundException", missing.stderr)
        self.assertEqual(self.log_records("invocation", "dry"), [])
        self.assertEqual(self.log_records("function output", "dry"), [])
        # The same function does run when asked to.
        self.assertEqual(self.invoke_json("dry", {"name": "x"})["greeting"], "hello x")
        self.assertEqual(len(self.wait_records("invocation", "dry")), 1)

    def test_metrics_count_invocations_by_function_and_outcome(self):
        for _ in range(3):
            self.invoke_json("metered", {})
        self.assertEqual(self.invoke("metered", "--payload", '{"fail": "x"}').returncode, 1)
        text = self.metrics()
        self.assertIn("# TYPE moatless_function_invocations_total counter", text)
        self.assertEqual(self.sample(text, "moatless_function_invocations_total",
                                     function="metered", outcome="ok"), 3, text)
        self.assertEqual(self.sample(text, "moatless_function_invocations_total",
                                     function="metered", outcome="error"), 1, text)
        self.assertEqual(self.sample(text, "moatless_function_duration_seconds_count",
                                     function="metered"), 4, text)
        self.assertGreaterEqual(self.sample(text, "moatless_function_init_duration_seconds_count",
                                            function="metered") or 0, 1, text)


def sigv4_headers(host, key_id, secret, path, body, when, service="lambda"):
    """A SigV4 header-form request (a test-side signer from the standard library)."""
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    headers = {"content-type": "application/json", "host": host, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(["POST", path, "",
                           "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers)),
                           signed, hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/%s/aws4_request" % (date, REGION, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (date, REGION, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                                "Signature=%s" % (key_id, scope, signed, signature))
    return headers


class AuthorizationTest(FunctionsCase):
    """lambda:InvokeFunction per function ARN, audited; unsigned and forged requests refused."""

    @classmethod
    def prepare(cls):
        for name in ("auth-a", "auth-b"):
            plan(name, write_code(name, {"index.mjs": HELLO_NODE}))

    @classmethod
    def setUpClass(cls):
        helper = cls()
        helper.aws("iam", "create-user", "--user-name", "invoker-a")
        helper.aws("iam", "put-user-policy", "--user-name", "invoker-a", "--policy-name",
                   "invoke-a", "--policy-document", json.dumps({
                       "Version": "2012-10-17",
                       "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                      "Resource": function_arn("auth-a")}]}))
        key = helper.aws("iam", "create-access-key", "--user-name", "invoker-a")["AccessKey"]
        cls.keys = (key["AccessKeyId"], key["SecretAccessKey"])

    def test_a_user_may_invoke_only_the_function_its_policy_names(self):
        user = "arn:aws:iam::%s:user/invoker-a" % ACCOUNT
        ran_a = len(self.wait_records("invocation", "auth-a", count=0))
        audited = len(self.audit())
        meta, body = self.aws_invoke("auth-a", {"name": "user"}, keys=self.keys)
        self.assertEqual(meta["StatusCode"], 200)
        self.assertEqual(json.loads(body)["greeting"], "hello user")
        sdk = self.sdk_invoke("auth-a", "--payload", '{"name": "sdk-user"}', keys=self.keys)
        self.assertTrue(sdk["ok"], sdk)
        self.assertEqual(json.loads(sdk["Payload"])["greeting"], "hello sdk-user")
        self.assertEqual(json.loads(self.invoke("auth-a", keys=self.keys).stdout)["greeting"],
                         "hello world")

        err = self.aws("lambda", "invoke", "--function-name", "auth-b",
                       os.path.join(self.dep().tmp, "denied.json"), keys=self.keys, expect_ok=False)
        self.assertIn("AccessDeniedException", err)
        sdk = self.sdk_invoke("auth-b", keys=self.keys)
        self.assertFalse(sdk["ok"])
        self.assertEqual(sdk["code"], "AccessDeniedException")
        self.assertEqual(sdk["status"], 403)
        cli = self.invoke("auth-b", keys=self.keys)
        self.assertEqual(cli.returncode, 1)
        self.assertIn("AccessDeniedException (HTTP 403)", cli.stderr)
        self.assertIn(user, cli.stderr)
        # A qualified ARN is another resource: the policy names the unqualified one only.
        qualified = self.invoke("auth-a", "--qualifier", "1", keys=self.keys)
        self.assertEqual(qualified.returncode, 1)
        self.assertIn("AccessDeniedException", qualified.stderr)

        # Nothing ran for the refused requests; each is audited with the function's ARN.
        self.assertEqual(len(self.wait_records("invocation", "auth-a", count=ran_a + 3)),
                         ran_a + 3)
        self.assertEqual(self.log_records("invocation", "auth-b"), [])
        records = [r for r in self.audit()[audited:] if r["actor"] == user
                   and r["action"] == "lambda:InvokeFunction"]
        denied = [r for r in records if r["outcome"] == "denied"]
        self.assertEqual(sorted(r["resource"] for r in denied),
                         sorted([function_arn("auth-b")] * 3 + [function_arn("auth-a", "1")]))
        allowed = [r for r in records if r["outcome"] == "allowed"]
        self.assertEqual([r["resource"] for r in allowed], [function_arn("auth-a")] * 3)

        # Root may invoke both.
        self.assertEqual(self.invoke_json("auth-b", {"name": "root"})["greeting"], "hello root")

    def post(self, path, headers, body):
        with self.server.connect() as sock:
            head = "POST %s HTTP/1.1\r\n" % path
            if not any(k.lower() == "host" for k in headers):
                head += "Host: 127.0.0.1\r\n"
            head += "Connection: close\r\nContent-Length: %d\r\n" % len(body)
            head += "".join("%s: %s\r\n" % (k, v) for k, v in headers.items())
            sock.sendall(head.encode() + b"\r\n" + body)
            return read_response(sock)

    def test_unsigned_and_badly_signed_invocations_are_refused(self):
        path = "/2015-03-31/functions/auth-a/invocations"
        host = "%s:%d" % (self.server.host, self.server.port)
        body = b'{"name": "raw"}'
        before = len(self.wait_records("invocation", "auth-a", count=0))
        audited = len(self.audit())
        key_id, secret = self.keys
        now = datetime.datetime.now(datetime.timezone.utc)

        # The test's signer is right: a good signature is served.
        status, headers, text = self.post(path, sigv4_headers(host, key_id, secret, path, body,
                                                              now), body)
        self.assertEqual(status, 200, text)
        self.assertEqual(json.loads(text)["greeting"], "hello raw")
        self.assertEqual(len(self.wait_records("invocation", "auth-a", count=before + 1)),
                         before + 1)

        status, headers, text = self.post(path, {"content-type": "application/json"}, body)
        self.assertEqual(status, 403, text)
        self.assertTrue(headers.get("x-amzn-errortype"), headers)
        self.assertIn("message", json.loads(text))

        wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
        status, headers, text = self.post(path, sigv4_headers(host, key_id, wrong, path, body,
                                                              now), body)
        self.assertEqual(status, 403, text)
        self.assertIn("Signature", headers.get("x-amzn-errortype", ""))

        # Signed for one body, sent with another.
        signed = sigv4_headers(host, key_id, secret, path, b'{"name": "other"}', now)
        status, headers, text = self.post(path, signed, body)
        self.assertEqual(status, 403, text)

        # Signed for one function, sent to another.
        other = "/2015-03-31/functions/auth-b/invocations"
        status, _, text = self.post(other, sigv4_headers(host, key_id, secret, path, body, now),
                                    body)
        self.assertEqual(status, 403, text)

        self.assertEqual(len(self.log_records("invocation", "auth-a")), before + 1)
        anonymous = [r for r in self.audit()[audited:] if r["actor"] == "anonymous"
                     and r["action"] == "lambda:InvokeFunction"]
        self.assertTrue(anonymous)
        self.assertEqual({r["outcome"] for r in anonymous}, {"denied"})
        forged = [r for r in self.audit()[audited:] if r["actor"] == "access-key:" + key_id
                  and r["action"] == "lambda:InvokeFunction" and r["outcome"] == "denied"]
        self.assertEqual(len(forged), 3, [r["reason"] for r in forged])


CREDS_NODE = """\
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
const sts = new STSClient({ maxAttempts: 1 });
export const handler = async () => {
  const who = await sts.send(new GetCallerIdentityCommand({}));
  return { arn: who.Arn, account: who.Account, endpoint: process.env.AWS_ENDPOINT_URL,
           keyId: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY,
           token: process.env.AWS_SESSION_TOKEN };
};
"""

CALLER_NODE = """\
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
const lambda = new LambdaClient({ maxAttempts: 1 });
export const handler = async (event) => {
  try {
    const out = await lambda.send(new InvokeCommand({
      FunctionName: event.target, Payload: JSON.stringify({ from: "caller" }) }));
    return { ok: true, status: out.StatusCode, version: out.ExecutedVersion,
             functionError: out.FunctionError ?? null,
             payload: JSON.parse(new TextDecoder().decode(out.Payload)) };
  } catch (e) {
    return { ok: false, name: e.name, status: e.$metadata?.httpStatusCode ?? null,
             message: e.message };
  }
};
"""

CALLEE_NODE = """\
export const handler = async (event, context) =>
  ({ callee: context.functionName, from: event.from ?? null });
"""


class FunctionCredentialsTest(FunctionsCase):
    """A function's role credentials work from its sandbox only; functions invoking functions."""

    creds_role = "arn:aws:iam::%s:role/creds-role" % ACCOUNT
    caller_role = "arn:aws:iam::%s:role/caller-role" % ACCOUNT

    @classmethod
    def prepare(cls):
        # One code directory with the AWS SDK for both Node functions that call the platform.
        sdk_code = write_code("sdk-functions", {"creds.mjs": CREDS_NODE,
                                                "caller.mjs": CALLER_NODE}, node_modules=True)
        plan("creds-fn", sdk_code, "--role", cls.creds_role, "--timeout", "30", "--memory", "256",
             handler="creds.handler")
        plan("caller-a", sdk_code, "--role", cls.caller_role, "--timeout", "30", "--memory",
             "256", handler="caller.handler")
        for name in ("callee-b", "callee-c"):
            plan(name, write_code(name, {"index.mjs": CALLEE_NODE}))

    @classmethod
    def setUpClass(cls):
        # The roles exist by the first invocation (credentials are issued at a cold start).
        helper = cls()
        helper.create_role("creds-role", [
            {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}])
        helper.create_role("caller-role", [
            {"Effect": "Allow", "Action": "lambda:InvokeFunction",
             "Resource": function_arn("callee-b")}])

    def test_credentials_work_inside_the_sandbox_and_are_refused_outside(self):
        result = self.invoke("creds-fn", timeout=90)
        # The body holds the function's secret: never shown, not even when the test fails.
        self.assertEqual(result.returncode, 0, "creds-fn failed (output withheld: it may hold "
                         "credentials); stderr has %d bytes" % len(result.stderr))
        out = json.loads(result.stdout)
        arn = out["arn"]
        self.assertTrue(arn.startswith("arn:aws:sts::%s:assumed-role/creds-role/creds-fn-"
                                       % ACCOUNT), arn)
        self.assertEqual(out["account"], ACCOUNT)
        self.assertTrue(out["endpoint"].startswith("http://127.0.0.1:"), out["endpoint"])
        key_id, secret, token = out["keyId"], out["secret"], out["token"]
        self.assertTrue(key_id and key_id.startswith("ASIA"), "a temporary access key id")
        self.assertTrue(secret and token, "secret and session token are set")

        # The call from inside was allowed and audited with the environment it came from, and
        # the credentials were issued to lambda.amazonaws.com for that environment.
        inside = [r for r in self.audit() if r["actor"] == arn
                  and r["action"] == "sts:GetCallerIdentity" and r["outcome"] == "allowed"]
        self.assertEqual(len(inside), 1)
        environment = inside[0]["fields"].get("environment")
        self.assertTrue(environment)
        self.assertTrue(arn.endswith("-" + environment), (arn, environment))
        issued = [r for r in self.audit() if r["actor"] == "lambda.amazonaws.com"
                  and r["action"] == "sts:AssumeRole" and r["resource"] == self.creds_role]
        self.assertTrue(issued)
        self.assertEqual(issued[-1]["outcome"], "allowed")
        self.assertEqual(issued[-1]["fields"]["function"], "creds-fn")
        self.assertEqual(issued[-1]["fields"]["environment"], environment)

        # Copied out to the host, the same credentials are refused: the aws CLI, the Lambda API
        # through `moatless invoke`.
        before = len(self.audit())
        ran_b = len(self.wait_records("invocation", "callee-b", count=0))
        err = self.aws("sts", "get-caller-identity", keys=(key_id, secret, token),
                       expect_ok=False)
        self.assertIn("InvalidClientTokenId", err)
        self.assertNotIn(secret, err)
        stolen = self.invoke("callee-b", keys=(key_id, secret, token))
        self.assertEqual(stolen.returncode, 1)
        self.assertIn("InvalidClientTokenId", stolen.stderr)
        self.assertNotIn(secret, stolen.stderr)
        refused = [r for r in self.audit()[before:] if r["actor"] == "access-key:" + key_id]
        self.assertEqual(len(refused), 2, [r["reason"] for r in refused])
        for r in refused:
            self.assertEqual(r["outcome"], "denied")
            self.assertTrue(r["reason"].startswith("InvalidClientTokenId"), r["reason"])
        self.assertEqual({r["action"] for r in refused},
                         {"sts:GetCallerIdentity", "lambda:InvokeFunction"})
        self.assertEqual(len(self.log_records("invocation", "callee-b")), ran_b)
        # The secret is in no log.
        self.assertFalse(secret in self.audit_text(), "the secret is not in the audit log")
        self.assertFalse(any(secret in line for line in list(self.server.lines)),
                         "the secret is not in the daemon's log")

    def test_a_function_invokes_another_only_as_its_role_allows(self):
        out = self.invoke_json("caller-a", {"target": "callee-b"})
        self.assertTrue(out["ok"], out)
        self.assertEqual(out["status"], 200)
        self.assertEqual(out["version"], "1")
        self.assertIsNone(out["functionError"])
        self.assertEqual(out["payload"], {"callee": "callee-b", "from": "caller"})

        denied = self.invoke_json("caller-a", {"target": "callee-c"})
        self.assertFalse(denied["ok"], denied)
        self.assertEqual(denied["name"], "AccessDeniedException")
        self.assertEqual(denied["status"], 403)
        self.assertIn("assumed-role/caller-role/", denied["message"])
        self.assertEqual(self.log_records("invocation", "callee-c"), [])

        role_prefix = "arn:aws:sts::%s:assumed-role/caller-role/" % ACCOUNT
        records = [r for r in self.audit() if r["actor"].startswith(role_prefix)
                   and r["action"] == "lambda:InvokeFunction"]
        self.assertEqual([(r["resource"], r["outcome"]) for r in records],
                         [(function_arn("callee-b"), "allowed"),
                          (function_arn("callee-c"), "denied")])
        for r in records:
            self.assertTrue(r["fields"].get("environment"), r)


EGRESS_PY = """\
import os
import urllib.error
import urllib.request


def handler(event, context):
    proxy = os.environ.get("HTTP_PROXY")
    try:
        with urllib.request.urlopen(event["url"], timeout=10) as r:
            return {"ok": True, "status": r.status, "body": r.read().decode(), "url": r.geturl(),
                    "proxy": proxy}
    except urllib.error.HTTPError as e:
        return {"ok": False, "status": e.code, "url": e.geturl(), "error": str(e),
                "proxy": proxy}
    except Exception as e:
        return {"ok": False, "status": None, "error": "%s: %s" % (type(e).__name__, e),
                "proxy": proxy}
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits.append(self.path)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = ("hello from %s" % self.server.label).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _HostServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def __init__(self, label):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.label = label
        self.hits = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.server_address[1]


class EgressTest(FunctionsCase):
    """No network unless declared; the egress proxy allows exactly the declared destinations."""

    allowed = other = None

    @classmethod
    def prepare(cls):
        cls.allowed = _HostServer("allowed")
        cls.other = _HostServer("other")
        code = write_code("egress", {"fetch.py": EGRESS_PY})
        plan("egress-none", code, "--timeout", "15", runtime="python3", handler="fetch.handler")
        plan("egress-allowed", code, "--timeout", "15", "--egress",
             "http://127.0.0.1:%d" % cls.allowed.port, runtime="python3",
             handler="fetch.handler")

    @classmethod
    def stop_host_servers(cls):
        for s in (cls.allowed, cls.other):
            if s is not None:
                s.shutdown()
                s.server_close()

    def fetch(self, function, url):
        return self.invoke_json(function, {"url": url})

    def test_without_egress_nothing_is_reachable(self):
        hits = len(self.allowed.hits)
        out = self.fetch("egress-none", "http://127.0.0.1:%d/hello" % self.allowed.port)
        self.assertFalse(out["ok"], out)
        self.assertIsNone(out["proxy"])
        self.assertEqual(len(self.allowed.hits), hits)
        out = self.fetch("egress-none", "http://169.254.169.254/latest/meta-data/")
        self.assertFalse(out["ok"], out)

    def test_a_declared_destination_is_reachable_through_the_proxy(self):
        out = self.fetch("egress-allowed", "http://127.0.0.1:%d/hello" % self.allowed.port)
        self.assertTrue(out["ok"], out)
        self.assertEqual(out["status"], 200)
        self.assertEqual(out["body"], "hello from allowed")
        self.assertTrue(out["proxy"], "HTTP_PROXY is set")
        self.assertIn("/hello", self.allowed.hits)

    def test_an_undeclared_port_is_refused(self):
        out = self.fetch("egress-allowed", "http://127.0.0.1:%d/secret" % self.other.port)
        self.assertFalse(out["ok"], out)
        self.assertEqual(out["status"], 403, out)
        self.assertEqual(self.other.hits, [])
        refused = self.server.wait_for_log(lambda r: r.get("msg") == "egress refused"
                                           and str(self.other.port) in json.dumps(r), timeout=10)
        self.assertIn("egress-allowed", json.dumps(refused))

    def test_a_redirect_to_the_metadata_address_is_refused(self):
        out = self.fetch("egress-allowed", "http://127.0.0.1:%d/redirect" % self.allowed.port)
        self.assertIn("/redirect", self.allowed.hits)
        self.assertFalse(out["ok"], out)
        self.assertEqual(out["status"], 403, out)
        self.assertIn("169.254.169.254", out["url"])
        self.server.wait_for_log(lambda r: r.get("msg") == "egress refused"
                                 and "169.254.169.254" in json.dumps(r), timeout=10)


class ThrottleTest(FunctionsCase):
    """Reserved concurrency: beyond it an invocation waits, then gets TooManyRequestsException."""

    @classmethod
    def prepare(cls):
        code = write_code("throttled", {"index.mjs": SLEEPY_NODE})
        plan("throttled", code, "--reserved-concurrency", "1", "--timeout", "10")
        plan("switched-off", code, "--reserved-concurrency", "0")

    def test_reserved_concurrency_throttles_the_excess(self):
        env = self.env()
        env["MOATLESS_ENDPOINT"] = self.server.url("")
        calls = [subprocess.Popen([harness.MOATLESS, "invoke", "throttled", "--payload",
                                   '{"sleepMs": 3000}'], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]
        results = []
        for p in calls:
            out, err = p.communicate(timeout=60)
            results.append((p.returncode, out, err))
        ok = [r for r in results if r[0] == 0]
        throttled = [r for r in results if r[0] == 1 and "TooManyRequestsException" in r[2]]
        self.assertGreaterEqual(len(ok), 1, results)
        self.assertGreaterEqual(len(throttled), 1, results)
        self.assertEqual(len(ok) + len(throttled), 3, results)
        for r in ok:
            self.assertEqual(json.loads(r[1]), {"slept": 3000})
        for r in throttled:
            self.assertIn("HTTP 429", r[2])
        self.assertEqual(len(self.wait_records("invocation", "throttled", count=len(ok))),
                         len(ok))
        self.assertGreaterEqual(len(self.wait_records("invocation throttled", "throttled",
                                                      count=len(throttled))), len(throttled))
        self.assertGreaterEqual(self.sample(self.metrics(), "moatless_function_throttles_total",
                                            function="throttled") or 0, len(throttled))
        # The slot is free again afterwards.
        self.assertEqual(self.invoke_json("throttled", {"sleepMs": 1}), {"slept": 1})

    def test_reserved_concurrency_zero_turns_a_function_off(self):
        result = self.invoke("switched-off", "--payload", "{}")
        self.assertEqual(result.returncode, 1)
        self.assertIn("TooManyRequestsException", result.stderr)
        sdk = self.sdk_invoke("switched-off")
        self.assertFalse(sdk["ok"])
        self.assertEqual(sdk["code"], "TooManyRequestsException")
        self.assertEqual(sdk["status"], 429)
        self.assertEqual(self.log_records("invocation", "switched-off"), [])


class LiveRegistryTest(FunctionsCase):
    """`moatless functions` on the data directory of a running daemon (a daemon of its own): a new
    version is what the next invocation runs, and a deleted function is gone at once."""

    @classmethod
    def setUpClass(cls):
        cls.own = Deployment("moatless-functions-live-")
        cls.v1 = write_code("live-1", {"index.mjs": versioned_node("one")})
        cls.v2 = write_code("live-2", {"index.mjs": versioned_node("two")})
        for name in ("live", "doomed"):
            published = publish_cli(cls.own.data_dir, name, cls.v1)
            if published.returncode != 0:
                raise AssertionError("publishing %s failed: %s" % (name, published.stderr))
        cls.own.start()

    @classmethod
    def tearDownClass(cls):
        cls.own.cleanup()

    def test_a_version_published_while_the_daemon_runs_is_invoked_next(self):
        first = self.invoke_json("live")
        self.assertEqual((first["code"], first["version"], first["count"]), ("one", "1", 1))
        published = publish_cli(self.dep().data_dir, "live", self.v2)
        self.assertEqual(published.returncode, 0, published.stderr)
        self.assertEqual(str(json.loads(published.stdout)["version"]), "2")
        # The next invocation runs version 2, in a fresh environment.
        latest = self.sdk_invoke("live")
        self.assertTrue(latest["ok"], latest)
        self.assertEqual(latest["ExecutedVersion"], "2")
        self.assertEqual(json.loads(latest["Payload"])["code"], "two")
        self.assertEqual(json.loads(latest["Payload"])["count"], 1)
        # Version 1 is still invocable, and its environment is still warm.
        old = self.invoke_json("live", None, "--qualifier", "1")
        self.assertEqual((old["code"], old["version"], old["count"]), ("one", "1", 2))
        listed = self.functions("versions", "live", "--json")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertEqual(sorted(str(v["version"]) for v in json.loads(listed.stdout)), ["1", "2"])

    def test_a_function_deleted_while_the_daemon_runs_is_gone(self):
        self.assertEqual(self.invoke_json("doomed")["code"], "one")
        deleted = self.functions("delete", "doomed")
        self.assertEqual(deleted.returncode, 0, deleted.stderr)
        for args in ([], ["--qualifier", "1"]):
            gone = self.invoke("doomed", *args)
            self.assertEqual(gone.returncode, 1, gone.stdout)
            self.assertIn("ResourceNotFoundException", gone.stderr)
            self.assertIn("HTTP 404", gone.stderr)
        err = self.aws("lambda", "invoke", "--function-name", "doomed",
                       os.path.join(self.dep().tmp, "gone.json"), expect_ok=False)
        self.assertIn("ResourceNotFoundException", err)
        listed = self.functions("list", "--json")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertNotIn("doomed", [f["name"] for f in json.loads(listed.stdout)])


if __name__ == "__main__":
    harness.main()
