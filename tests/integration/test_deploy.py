"""Apps end to end (docs/manifest.md): `moatless deploy` of examples/notes to a real daemon, every
function invoked (one invoking another through the AWS SDK), a redeploy while a load loop runs (no
failed request; the new code is served once the deploy returns), rollback, manifests with each kind
of error (each reported with line and column; nothing changes), a deployer without permission
(denied and audited), and a policy outside the app's boundary (reported dead; it cannot take
effect).

Functions run in sandboxes; on a host that cannot isolate them the daemon says "functions cannot
run on this host" and every test here is skipped with that message."""
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import Server, run_cli

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXAMPLE = os.path.join(ROOT, "examples", "notes")
ACCOUNT = "000000000000"
REGION = "local"
CTX = {}


class Deployment:
    """A data directory with its root credentials, the daemon serving it, and a copy of the
    notes example (its npm dependencies installed, a demo key pair generated)."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="moatless-deploy-")
        # Deployed code is kept outside the private data directory, below directories the
        # sandboxes' unprivileged users can traverse (apps.code_dir).
        os.chmod(self.tmp, 0o711)
        self.data_dir = os.path.join(self.tmp, "data")
        self.code_dir = os.path.join(self.tmp, "code")
        self.creds = os.path.join(self.tmp, "home", ".aws", "credentials")
        self.server = None
        init = run_cli("init", "--data-dir", self.data_dir, "--credentials-file", self.creds)
        if init.returncode != 0:
            raise AssertionError("moatless init failed: " + init.stderr)
        self.app = os.path.join(self.tmp, "notes")
        shutil.copytree(EXAMPLE, self.app, ignore=shutil.ignore_patterns("node_modules", "keys"))
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=os.path.join(self.app, "functions", "api"), check=True,
                       capture_output=True, timeout=300)
        subprocess.run([os.path.join(ROOT, "scripts", "demo-token"),
                        os.path.join(self.app, "keys")], check=True, capture_output=True)

    def start(self):
        self.server = Server("--apps.code-dir", self.code_dir, data_dir=self.data_dir)
        refused = self.server.functions_refused()
        if refused is not None:
            self.cleanup()
            raise unittest.SkipTest("functions cannot run on this host: %s" % refused)

    def cleanup(self):
        if self.server is not None:
            self.server.cleanup()
        subprocess.run(["rm", "-rf", self.tmp], check=False)


def setUpModule():
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise AssertionError("node and npm are required: scripts/install-deps installs them")
    dep = Deployment()
    CTX["dep"] = dep
    dep.start()


def tearDownModule():
    if "dep" in CTX:
        CTX["dep"].cleanup()


class DeployCase(unittest.TestCase):
    @property
    def dep(self):
        return CTX["dep"]

    def env(self, profile="moatless"):
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.dep.tmp,
                "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": self.dep.creds,
                "AWS_REGION": REGION, "AWS_PROFILE": profile,
                "MOATLESS_ENDPOINT": self.dep.server.url("")}

    def moatless(self, *args, profile="moatless", expect=0, timeout=180):
        result = subprocess.run([harness.MOATLESS, *args], capture_output=True, text=True,
                                timeout=timeout, env=self.env(profile))
        if expect is not None:
            self.assertEqual(result.returncode, expect,
                             "moatless %s:\n%s\n%s" % (" ".join(args), result.stdout,
                                                       result.stderr))
        return result

    def deploy(self, app_dir, *args, expect=0, profile="moatless"):
        return self.moatless("deploy", "--dir", app_dir, "--yes", *args, expect=expect,
                             profile=profile)

    def deploy_json(self, app_dir, *args):
        return json.loads(self.deploy(app_dir, "--json", *args).stdout)

    def invoke(self, name, payload=None):
        args = ["invoke", name] + (["--payload", json.dumps(payload)] if payload is not None else [])
        result = self.moatless(*args, expect=None, timeout=60)
        return result

    def invoke_json(self, name, payload=None):
        result = self.invoke(name, payload)
        self.assertEqual(result.returncode, 0, "invoke %s: %s" % (name, result.stderr))
        return json.loads(result.stdout)

    def live_version(self, app="notes", stage="dev"):
        shown = json.loads(self.moatless("apps", "show", app, "--stage", stage, "--json").stdout)
        return shown["LiveVersion"]

    def audit(self):
        with open(os.path.join(self.dep.data_dir, "audit", "audit.log")) as f:
            return [json.loads(line) for line in f if line.strip()]


class A_DeployTest(DeployCase):
    """Runs first (unittest orders classes by name): the other tests start from version 1."""

    def test_deploy_the_example_and_invoke_every_function(self):
        dry = json.loads(self.moatless("deploy", "--dir", self.dep.app, "--dry-run",
                                       "--json").stdout)
        self.assertTrue(dry["DryRun"])
        self.assertEqual(dry["PreviousVersion"], 0)
        self.assertEqual(self.moatless("apps", "list", "--json").stdout.strip(), '{"Apps":[]}')

        out = self.deploy_json(self.dep.app)
        self.assertEqual(out["Version"], 1)
        names = sorted(f["FunctionName"] for f in out["Functions"])
        self.assertEqual(names, ["notes_dev_create-note", "notes_dev_get-note",
                                 "notes_dev_health", "notes_dev_summarize"])
        roles = {f["RoleArn"] for f in out["Functions"]}
        self.assertEqual(len(roles), 4, "one role per function, never shared")
        self.assertEqual(out["DeadStatements"], [])
        # Routes, authorizers and usage plans are served by the gateway, alerts evaluated.
        self.assertEqual(out["Pending"], [])

        self.assertEqual(json.loads(self.invoke_json("notes_dev_health")["body"]), {"ok": True})
        self.assertEqual(self.invoke_json("notes_dev_summarize", {"text": "one two three"}),
                         {"words": 3, "summary": "one two three"})
        # create-note invokes summarize through the AWS SDK with its own role's credentials.
        created = self.invoke_json("notes_dev_create-note",
                                   {"body": json.dumps({"title": "t", "body": "hello there"})})
        self.assertEqual(created["statusCode"], 201, created)
        self.assertEqual(json.loads(created["body"])["summary"]["words"], 2)
        invoked = [r for r in self.audit() if r.get("action") == "lambda:InvokeFunction"
                   and "notes_dev_create-note" in r.get("actor", "")
                   and r.get("resource", "").endswith(":function:notes_dev_summarize")]
        self.assertTrue(invoked and invoked[-1]["outcome"] == "allowed", invoked)
        # The deployment declared the app's secret (without a value: values never live in the
        # manifest). get-note reads it through the AWS SDK: with no value yet it says the database
        # is unavailable (naming the error, never a secret)...
        described = json.loads(self.moatless("secrets", "describe", "dev/notes/db",
                                             "--json").stdout)
        self.assertEqual(described["Description"], "database credentials")
        self.assertIn({"Key": "moatless:app", "Value": "notes"}, described["Tags"])
        got = self.invoke_json("notes_dev_get-note", {"pathParameters": {"id": "abc-1"}})
        self.assertEqual(got["statusCode"], 503, got)
        self.assertEqual(json.loads(got["body"])["cause"], "ResourceNotFoundException")
        # ... and once an operator has put one, reads it.
        put = subprocess.run([harness.MOATLESS, "secrets", "put", "dev/notes/db", "--from-stdin"],
                             input=json.dumps({"host": "db.internal", "password": "pw"}),
                             capture_output=True, text=True, timeout=60, env=self.env("moatless"))
        self.assertEqual(put.returncode, 0, put.stderr)
        got = self.invoke_json("notes_dev_get-note", {"pathParameters": {"id": "abc-1"}})
        self.assertEqual(got["statusCode"], 200, got)
        self.assertEqual(json.loads(got["body"]), {"id": "abc-1", "database": "db.internal"})

        shown = json.loads(self.moatless("apps", "show", "notes", "--stage", "dev",
                                         "--json").stdout)
        self.assertEqual(shown["LiveVersion"], 1)
        self.assertEqual(shown["BoundarySource"], "default")
        self.assertIn({"Route": "GET /health", "Function": "health", "Auth": "none",
                       "Authorizer": "", "UsagePlan": ""}, shown["Routes"])
        self.assertIn("notes/dev  version 1", self.moatless("apps", "list").stdout)
        # The same files again: nothing to do, no new version.
        self.assertIn("Nothing to deploy", self.deploy(self.dep.app).stdout)
        self.assertEqual(self.live_version(), 1)


class B_RedeployTest(DeployCase):
    def write_summarize(self, marker):
        path = os.path.join(self.dep.app, "functions", "summarize", "app.py")
        with open(path, "w") as f:
            f.write("def handler(event, context):\n    return {'marker': %r}\n" % marker)

    def test_redeploy_under_load_then_roll_back(self):
        before = self.live_version()
        self.write_summarize("v2")
        results = []  # (finished at, marker or error)
        stop = threading.Event()

        def load():
            while not stop.is_set():
                r = self.invoke("notes_dev_summarize", {"text": "x"})
                marker = json.loads(r.stdout).get("marker", "v1") if r.returncode == 0 else \
                    "error: " + r.stderr
                results.append((time.monotonic(), marker))

        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        out = self.deploy_json(self.dep.app)
        deployed_at = time.monotonic()
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join()
        self.assertEqual(out["Version"], before + 1)
        changed = [c for c in out["Changes"] if c["Section"] == "function"]
        self.assertEqual([c["Name"] for c in changed], ["summarize"], "only summarize changed")
        errors = [m for _, m in results if m.startswith("error")]
        self.assertEqual(errors, [], "no request failed during the switch")
        self.assertIn("v1", [m for t, m in results if t < deployed_at])
        after = [m for t, m in results if t > deployed_at + 0.2]
        self.assertTrue(after and set(after) == {"v2"}, after)
        # Untouched functions keep their version.
        versions = {f["Name"]: f["Version"] for f in out["Functions"]}
        self.assertEqual(versions["health"], 1)
        self.assertEqual(versions["summarize"], 2)

        rolled = json.loads(self.moatless("rollback", "--dir", self.dep.app, "--yes",
                                          "--json").stdout)
        self.assertEqual(rolled["Version"], before + 2)
        self.assertNotIn("marker", self.invoke_json("notes_dev_summarize", {"text": "x"}))
        shown = json.loads(self.moatless("apps", "show", "notes", "--stage", "dev",
                                         "--json").stdout)
        self.assertEqual(shown["Versions"][-1]["Description"], "rollback to %d" % before)
        os.remove(os.path.join(self.dep.app, "functions", "summarize", "app.py"))
        shutil.copy(os.path.join(EXAMPLE, "functions", "summarize", "app.py"),
                    os.path.join(self.dep.app, "functions", "summarize", "app.py"))


class C_ManifestErrorTest(DeployCase):
    CASES = [
        # (what, replace this, with this, expected "line:column: message" part)
        ("unknown key", "    memory: 256\n", "    memroy: 256\n",
         "moatless.yaml:12:5: functions.create-note: unknown key 'memroy'"),
        ("wrong type", "    memory: 256\n", "    memory: lots\n",
         "moatless.yaml:12:13: functions.create-note.memory: expected an integer"),
        ("limit", "    timeout: 10\n", "    timeout: 9000\n",
         "moatless.yaml:13:14: functions.create-note.timeout: 9000 is out of range"),
        ("undefined function", "    function: health\n", "    function: healthz\n",
         "routes[2].function: 'healthz' is not a function"),
        ("missing auth", "    auth: none                      # explicit: the analyser reports "
         "public routes\n", "", "routes[2]: 'auth' is required"),
        ("duplicate route", "  - route: GET /health\n", "  - route: GET /notes/{noteId}\n",
         "duplicates the route at line"),
        ("missing handler file", "    handler: health.handler\n", "    handler: healthy.handler\n",
         "functions.health.handler: handler 'healthy.handler' needs"),
        ("invalid policy", "        Action: lambda:InvokeFunction\n",
         "        Action: lambda:InvokeFunction\n        Principal: '*'\n",
         "functions.create-note.policy[0]: "),
        ("undefined secret", "        Resource: secret:db\n", "        Resource: secret:dbx\n",
         "'secret:dbx' names a secret that `secrets` does not define"),
    ]

    def test_each_kind_of_error_is_reported_where_it_is_and_changes_nothing(self):
        before = self.live_version()
        with open(os.path.join(self.dep.app, "moatless.yaml")) as f:
            original = f.read()
        try:
            for what, old, new, expected in self.CASES:
                with self.subTest(what):
                    self.assertIn(old, original)
                    with open(os.path.join(self.dep.app, "moatless.yaml"), "w") as f:
                        f.write(original.replace(old, new, 1))
                    result = self.deploy(self.dep.app, expect=1)
                    self.assertIn(expected, result.stderr)
                    self.assertRegex(result.stderr, r"moatless\.yaml:\d+:\d+: ")
        finally:
            with open(os.path.join(self.dep.app, "moatless.yaml"), "w") as f:
                f.write(original)
        self.assertEqual(self.live_version(), before)


class D_PermissionTest(DeployCase):
    def test_a_deployer_without_permission_is_denied_and_audited(self):
        policy = os.path.join(self.dep.tmp, "ci-policy.json")
        with open(policy, "w") as f:
            json.dump({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": ["moatless:Deploy", "moatless:GetApp"],
                "Resource": "arn:aws:moatless:%s:%s:app/notes/staging" % (REGION, ACCOUNT)}]}, f)
        self.moatless("users", "create", "ci")
        self.moatless("users", "attach-policy", "ci", "--policy-file", policy)
        self.moatless("keys", "create", "--user", "ci", "--write-profile", "ci")
        before = self.live_version()
        denied = self.deploy(self.dep.app, expect=1, profile="ci")
        self.assertIn("AccessDeniedException", denied.stderr)
        records = [r for r in self.audit() if r.get("action") == "moatless:Deploy"
                   and r.get("actor", "").endswith(":user/ci")]
        self.assertTrue(records, "the refusal is in the audit log")
        self.assertEqual(records[-1]["outcome"], "denied")
        self.assertEqual(records[-1]["resource"],
                         "arn:aws:moatless:%s:%s:app/notes/dev" % (REGION, ACCOUNT))
        self.assertEqual(self.live_version(), before)
        # The stage it was granted works: a deployer is confined to its apps and stages.
        out = json.loads(self.deploy(self.dep.app, "--stage", "staging", "--json",
                                     profile="ci").stdout)
        self.assertEqual(out["Stage"], "staging")
        self.assertEqual(self.invoke_json("notes_staging_summarize", {"text": "a"})["words"], 1)
        # Boundaries are the operator's.
        boundary = os.path.join(self.dep.tmp, "wide.json")
        with open(boundary, "w") as f:
            json.dump({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"}]}, f)
        refused = self.moatless("boundaries", "set", "--app", "notes", "--stage", "staging",
                                boundary, profile="ci", expect=1)
        self.assertIn("AccessDeniedException", refused.stderr)


class E_BoundaryTest(DeployCase):
    def test_a_policy_outside_the_boundary_is_reported_dead_and_cannot_take_effect(self):
        probe = os.path.join(self.dep.tmp, "probe")
        os.makedirs(os.path.join(probe, "fn"))
        shutil.copytree(os.path.join(self.dep.app, "functions", "api", "node_modules"),
                        os.path.join(probe, "fn", "node_modules"))
        with open(os.path.join(probe, "fn", "index.mjs"), "w") as f:
            f.write(
                'import { LambdaClient, InvokeCommand } from "@aws-sdk/client-lambda";\n'
                "const lambda = new LambdaClient({});\n"
                "export const handler = async () => {\n"
                "  try {\n"
                '    await lambda.send(new InvokeCommand({ FunctionName: "notes_dev_health" }));\n'
                '    return { outcome: "invoked" };\n'
                "  } catch (e) { return { outcome: e.name }; }\n"
                "};\n")
        with open(os.path.join(probe, "moatless.yaml"), "w") as f:
            f.write("app: probe\nstage: dev\nfunctions:\n  reach:\n    runtime: nodejs20\n"
                    "    handler: index.handler\n    code: fn\n    policy:\n"
                    "      - Effect: Allow\n        Action: lambda:InvokeFunction\n"
                    "        Resource: arn:aws:lambda:%s:%s:function:notes_dev_health\n"
                    % (REGION, ACCOUNT))
        strict = self.deploy(probe, "--strict", expect=1)
        self.assertIn("boundary makes these statements dead", strict.stderr)
        self.assertIn("notes_dev_health", strict.stderr)
        out = self.deploy_json(probe)
        self.assertEqual([(d["Function"], d["Index"]) for d in out["DeadStatements"]],
                         [("reach", 0)])
        # The role holds the statement, and the boundary takes it away.
        self.assertEqual(self.invoke_json("probe_dev_reach"), {"outcome": "AccessDeniedException"})
        denied = [r for r in self.audit() if r.get("action") == "lambda:InvokeFunction"
                  and "probe_dev_reach" in r.get("actor", "")]
        self.assertTrue(denied and denied[-1]["outcome"] == "denied", denied)
        # The operator widens the boundary: now the same role may.
        boundary = os.path.join(self.dep.tmp, "probe-boundary.json")
        with open(boundary, "w") as f:
            json.dump({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "lambda:InvokeFunction",
                "Resource": "arn:aws:lambda:*:%s:function:notes_dev_health" % ACCOUNT}]}, f)
        self.moatless("boundaries", "set", "--app", "probe", "--stage", "dev", boundary)
        self.assertEqual(self.invoke_json("probe_dev_reach"), {"outcome": "invoked"})


if __name__ == "__main__":
    harness.main()
