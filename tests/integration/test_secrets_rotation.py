"""Secrets that functions read and rotate, end to end: a running `moatless serve`, functions in
sandboxes using the AWS SDK for JavaScript v3 (tests/aws_clients' node_modules), Debian's aws CLI.

- A rotation function written like AWS's rotation template (DescribeSecret guard, createSecret,
  setSecret, testSecret, finishSecret through the Secrets Manager API with its own role) rotates a
  secret started by RotateSecret: AWSCURRENT moves to the new version, AWSPREVIOUS follows,
  DescribeSecret shows RotationEnabled, LastRotatedDate and NextRotationDate, and every step is
  audited.
- A rotation function that fails at testSecret leaves AWSCURRENT untouched, is retried with a new
  token (a new pending value, never the failed one), and raises the alert event.
- kill -9 of the daemon during each of the four steps: after a restart the rotation resumes at the
  step that did not finish and completes.
- Least privilege inside a function: a role allowed one secret reads it and is refused (and
  audited) its neighbour, the other stage's copy and PutSecretValue.

On a host that cannot isolate functions the test says so and is skipped."""
import datetime
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from harness import Server, run_cli

AWS = "/usr/bin/aws"
HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(os.path.dirname(HERE), "aws_clients")
ACCOUNT = "000000000000"
REGION = "local"
SECRET_PREFIX = "arn:aws:secretsmanager:%s:%s:secret:" % (REGION, ACCOUNT)
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}
STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]

# AWS's rotation template (SecretsManagerRotationTemplate), in JavaScript. SLOW_STEP makes a step
# sleep after its DescribeSecret (so a test can kill the daemon in the middle of it); FAIL_STEP
# makes setSecret or testSecret fail as a database refusing the new password would.
ROTATOR = r"""
import { DescribeSecretCommand, GetRandomPasswordCommand, GetSecretValueCommand,
         PutSecretValueCommand, SecretsManagerClient, UpdateSecretVersionStageCommand }
  from "@aws-sdk/client-secrets-manager";
const sm = new SecretsManagerClient({ maxAttempts: 1 });
export const handler = async (event) => {
  const { SecretId: arn, ClientRequestToken: token, Step: step } = event;
  const meta = await sm.send(new DescribeSecretCommand({ SecretId: arn }));
  if (process.env.SLOW_STEP === step) await new Promise((r) => setTimeout(r, 6000));
  if (!meta.RotationEnabled) throw new Error("rotation is not enabled");
  const stages = meta.VersionIdsToStages[token];
  if (!stages) throw new Error("the token has no stage");
  if (stages.includes("AWSCURRENT")) return;
  if (!stages.includes("AWSPENDING")) throw new Error("the token is not AWSPENDING");
  if (step === "createSecret") {
    await sm.send(new GetSecretValueCommand({ SecretId: arn, VersionStage: "AWSCURRENT" }));
    try {
      await sm.send(new GetSecretValueCommand({ SecretId: arn, VersionId: token,
                                                VersionStage: "AWSPENDING" }));
    } catch (e) {
      if (e.name !== "ResourceNotFoundException") throw e;
      const pw = await sm.send(new GetRandomPasswordCommand({ ExcludeCharacters: "/@\"'\\" }));
      await sm.send(new PutSecretValueCommand({
        SecretId: arn, ClientRequestToken: token, VersionStages: ["AWSPENDING"],
        SecretString: JSON.stringify({ username: "app", password: pw.RandomPassword }) }));
    }
  } else if (step === "setSecret" || step === "testSecret") {
    await sm.send(new GetSecretValueCommand({ SecretId: arn, VersionId: token,
                                              VersionStage: "AWSPENDING" }));
    if (process.env.FAIL_STEP === step) throw new Error("the database refused the new password");
  } else if (step === "finishSecret") {
    const current = Object.keys(meta.VersionIdsToStages)
      .find((v) => meta.VersionIdsToStages[v].includes("AWSCURRENT"));
    await sm.send(new UpdateSecretVersionStageCommand({
      SecretId: arn, VersionStage: "AWSCURRENT", MoveToVersionId: token,
      RemoveFromVersionId: current }));
    await sm.send(new UpdateSecretVersionStageCommand({
      SecretId: arn, VersionStage: "AWSPENDING", RemoveFromVersionId: token }));
  } else {
    throw new Error("unknown step " + step);
  }
};
"""

# Reads the secrets it is asked to, and tries to write one; reports outcomes, never values.
READER = r"""
import { GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient }
  from "@aws-sdk/client-secrets-manager";
const sm = new SecretsManagerClient({ maxAttempts: 1 });
const outcome = async (call) => {
  try { const r = await call(); return { ok: true, length: (r.SecretString ?? "").length }; }
  catch (e) { return { ok: false, name: e.name }; }
};
export const handler = async (event) => {
  const reads = {};
  for (const id of event.read) {
    reads[id] = await outcome(() => sm.send(new GetSecretValueCommand({ SecretId: id })));
  }
  const put = await outcome(() => sm.send(new PutSecretValueCommand({
    SecretId: event.put, SecretString: "overwritten by the reader" })));
  return { reads, put };
};
"""

ROTATION_POLICY = [
    {"Effect": "Allow",
     "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"],
     "Resource": SECRET_PREFIX + "rot/*"},
    {"Effect": "Allow", "Action": "secretsmanager:GetRandomPassword", "Resource": "*"},
]
READER_POLICY = [
    {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
     "Resource": SECRET_PREFIX + "dev/notes/db-??????"},
]

CTX = {}


def seconds(timestamp):
    """A timestamp as the aws CLI prints it (ISO 8601, or epoch seconds) -> epoch seconds."""
    if isinstance(timestamp, (int, float)):
        return float(timestamp)
    return datetime.datetime.fromisoformat(timestamp).timestamp()


def function_arn(name):
    return "arn:aws:lambda:%s:%s:function:%s" % (REGION, ACCOUNT, name)


def write_code(files):
    """One code directory for every function here, readable by the sandboxes' user."""
    root = tempfile.mkdtemp(prefix="moatless-rotation-code-")
    os.chmod(root, 0o755)
    path = os.path.join(root, "code")
    os.makedirs(path)
    for rel, text in files.items():
        with open(os.path.join(path, rel), "w") as f:
            f.write(text)
    shutil.copytree(os.path.join(CLIENTS, "node_modules"), os.path.join(path, "node_modules"),
                    symlinks=True)
    for top, dirs, names in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(top, d), 0o755)
        for n in names:
            if not os.path.islink(os.path.join(top, n)):
                os.chmod(os.path.join(top, n), 0o644)
    os.chmod(path, 0o755)
    return root, path


def setUpModule():
    if not os.access(AWS, os.X_OK):
        raise AssertionError("%s is missing: scripts/install-deps installs Debian's awscli" % AWS)
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise AssertionError("node and npm are required: scripts/install-deps installs them")
    if not os.path.isdir(os.path.join(CLIENTS, "node_modules", "@aws-sdk",
                                      "client-secrets-manager")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CLIENTS,
                       check=True, capture_output=True, timeout=300)
    tmp = tempfile.mkdtemp(prefix="moatless-rotation-")
    CTX["tmp"] = tmp
    CTX["data_dir"] = os.path.join(tmp, "data")
    CTX["creds"] = os.path.join(tmp, "home", ".aws", "credentials")
    init = run_cli("init", "--data-dir", CTX["data_dir"], "--credentials-file", CTX["creds"])
    if init.returncode != 0:
        raise AssertionError("moatless init failed: " + init.stderr)
    code_root, code = write_code({"rotator.mjs": ROTATOR, "reader.mjs": READER})
    CTX["code_root"] = code_root
    functions = [("rotator", "rotator-role", [])]
    functions += [("rotator-fails", "rotator-role", ["--env", "FAIL_STEP=testSecret"])]
    functions += [("rotator-slow-" + s, "rotator-role", ["--env", "SLOW_STEP=" + s])
                  for s in STEPS]
    functions += [("reader", "reader-role", [])]
    for name, role, flags in functions:
        handler = "reader.handler" if name == "reader" else "rotator.handler"
        published = run_cli("functions", "publish", name, "--data-dir", CTX["data_dir"],
                            "--runtime", "nodejs20", "--handler", handler, "--code", code,
                            "--role", "arn:aws:iam::%s:role/%s" % (ACCOUNT, role), "--timeout",
                            "30", "--memory", "256", *flags)
        if published.returncode != 0:
            raise AssertionError("publishing %s failed: %s" % (name, published.stderr))
    start_server()
    refused = CTX["server"].functions_refused()
    if refused is not None:
        tearDownModule()
        raise unittest.SkipTest("functions cannot run on this host: %s" % refused)
    case = RotationCase()
    case.create_role("rotator-role", ROTATION_POLICY)
    case.create_role("reader-role", READER_POLICY)


def start_server():
    CTX["server"] = Server("--secrets.check-interval", "200ms",
                           "--secrets.rotation-retry-delay", "1s", data_dir=CTX["data_dir"])


def tearDownModule():
    if "server" in CTX:
        CTX["server"].cleanup()
    for key in ("tmp", "code_root"):
        if key in CTX:
            subprocess.run(["rm", "-rf", CTX[key]], check=False)


class RotationCase(unittest.TestCase):
    def env(self):
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": CTX["tmp"],
                "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": CTX["creds"],
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "", "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION, "AWS_PROFILE": "moatless"}

    def aws(self, *args, expect_ok=True):
        result = subprocess.run([AWS, "--endpoint-url", CTX["server"].url(""), "--output", "json",
                                 *args], capture_output=True, text=True, timeout=90,
                                env=self.env())
        if expect_ok:
            if result.returncode != 0:
                raise AssertionError("aws %s: %s" % (" ".join(args[:2]), result.stderr))
            return json.loads(result.stdout) if result.stdout.strip() else {}
        self.assertNotEqual(result.returncode, 0)
        return result.stderr

    def create_role(self, name, policy):
        self.aws("iam", "create-role", "--role-name", name, "--assume-role-policy-document",
                 json.dumps(LAMBDA_TRUST))
        self.aws("iam", "put-role-policy", "--role-name", name, "--policy-name", name,
                 "--policy-document", json.dumps({"Version": "2012-10-17", "Statement": policy}))

    def audit(self):
        with open(os.path.join(CTX["data_dir"], "audit", "audit.log")) as f:
            return [json.loads(line) for line in f if line.strip()]

    def steps(self, arn):
        """The rotation steps the platform ran on a secret: (step, version id, outcome)."""
        return [(r["fields"]["step"], r["fields"]["version_id"], r["outcome"])
                for r in self.audit()
                if r["action"] == "secretsmanager:RotationStep" and r["resource"] == arn]

    def current(self, name):
        described = self.aws("secretsmanager", "describe-secret", "--secret-id", name)
        return [v for v, s in described["VersionIdsToStages"].items() if "AWSCURRENT" in s][0]

    def wait_for(self, predicate, what, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate()
            if found:
                return found
            time.sleep(0.3)
        raise AssertionError("timed out waiting for " + what)

    def create(self, name, value):
        return self.aws("secretsmanager", "create-secret", "--name", name, "--secret-string",
                        value)


class RotationTest(RotationCase):
    def test_a_rotation_function_rotates_a_secret(self):
        created = self.create("rot/app/db", json.dumps({"username": "app", "password": "first"}))
        arn = created["ARN"]
        started = self.aws("secretsmanager", "rotate-secret", "--secret-id", "rot/app/db",
                           "--rotation-lambda-arn", function_arn("rotator"), "--rotation-rules",
                           "AutomaticallyAfterDays=30")
        token = started["VersionId"]
        self.wait_for(lambda: self.current("rot/app/db") == token, "the rotation to finish")
        described = self.aws("secretsmanager", "describe-secret", "--secret-id", "rot/app/db")
        self.assertTrue(described["RotationEnabled"])
        self.assertEqual(described["RotationLambdaARN"], function_arn("rotator"))
        self.assertEqual(described["RotationRules"]["AutomaticallyAfterDays"], 30)
        self.assertEqual(described["VersionIdsToStages"][created["VersionId"]], ["AWSPREVIOUS"])
        rotated = seconds(described["LastRotatedDate"])
        self.assertAlmostEqual(seconds(described["NextRotationDate"]) - rotated, 30 * 86400,
                               delta=1)
        value = json.loads(self.aws("secretsmanager", "get-secret-value", "--secret-id",
                                    "rot/app/db")["SecretString"])
        self.assertEqual(value["username"], "app")
        self.assertTrue(value["password"] != "first" and len(value["password"]) == 32,
                        "the rotation function's new password is the current value")
        self.assertEqual(self.steps(arn), [(s, token, "allowed") for s in STEPS])
        # The function acted with its own role, each call audited.
        calls = [r for r in self.audit() if r["resource"] == arn
                 and r["actor"].startswith("arn:aws:sts::%s:assumed-role/rotator-role/" % ACCOUNT)]
        self.assertIn("secretsmanager:PutSecretValue", {r["action"] for r in calls})
        self.assertIn("secretsmanager:UpdateSecretVersionStage", {r["action"] for r in calls})

    def test_a_failing_rotation_leaves_current_alone_and_retries_with_a_new_value(self):
        created = self.create("rot/failing/db", json.dumps({"password": "kept"}))
        arn = created["ARN"]
        self.aws("secretsmanager", "rotate-secret", "--secret-id", "rot/failing/db",
                 "--rotation-lambda-arn", function_arn("rotator-fails"))
        # Two failed attempts (the retry comes after the 1 s back-off) with two different tokens.
        failed = self.wait_for(
            lambda: (lambda f: f if len(f) >= 2 else None)(
                [s for s in self.steps(arn) if s[0] == "testSecret" and s[2] == "error"]),
            "two failed attempts")
        self.assertNotEqual(failed[0][1], failed[1][1], "a retry makes a new pending value")
        self.aws("secretsmanager", "cancel-rotate-secret", "--secret-id", "rot/failing/db")
        self.assertEqual(self.current("rot/failing/db"), created["VersionId"])
        value = self.aws("secretsmanager", "get-secret-value", "--secret-id", "rot/failing/db")
        self.assertEqual(json.loads(value["SecretString"]), {"password": "kept"})
        described = self.aws("secretsmanager", "describe-secret", "--secret-id",
                             "rot/failing/db")
        self.assertFalse(described["RotationEnabled"])
        self.assertNotIn("AWSPENDING", sum(described["VersionIdsToStages"].values(), []))
        alerts = [r for r in CTX["server"].records() if r.get("msg") == "secret rotation failed"
                  and r.get("secret") == arn]
        self.assertTrue(alerts)
        self.assertEqual(alerts[0]["alert"], "secret_rotation_failed")
        self.assertEqual(alerts[0]["step"], "testSecret")
        self.assertIn("the database refused the new password", alerts[0]["error"])
        reasons = [r["reason"] for r in self.audit()
                   if r["action"] == "secretsmanager:RotationStep" and r["outcome"] == "error"
                   and r["resource"] == arn]
        self.assertIn("the database refused the new password", reasons[0])

    def test_rotate_secret_needs_invoke_permission_on_the_function(self):
        # The reader's role may not invoke the rotator: a user with only secretsmanager rights
        # cannot make the platform run a function it may not run itself.
        self.create("rot/perm/db", "x")
        self.aws("iam", "create-user", "--user-name", "rotation-starter")
        self.aws("iam", "put-user-policy", "--user-name", "rotation-starter", "--policy-name", "p",
                 "--policy-document", json.dumps({"Version": "2012-10-17", "Statement": [
                     {"Effect": "Allow", "Action": "secretsmanager:RotateSecret",
                      "Resource": "*"}]}))
        key = self.aws("iam", "create-access-key", "--user-name", "rotation-starter")["AccessKey"]
        env = self.env()
        env.pop("AWS_PROFILE")
        env.update({"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                    "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]})
        result = subprocess.run([AWS, "--endpoint-url", CTX["server"].url(""), "secretsmanager",
                                 "rotate-secret", "--secret-id", "rot/perm/db",
                                 "--rotation-lambda-arn", function_arn("rotator")],
                                capture_output=True, text=True, timeout=60, env=env)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("AccessDeniedException", result.stderr)
        self.assertIn("lambda:InvokeFunction", result.stderr)
        described = self.aws("secretsmanager", "describe-secret", "--secret-id", "rot/perm/db")
        self.assertFalse(described.get("RotationEnabled", False))


class CrashTest(RotationCase):
    def test_kill_9_during_each_step_resumes_the_rotation(self):
        for step in STEPS:
            with self.subTest(step=step):
                name = "rot/crash/" + step
                arn = self.create(name, json.dumps({"password": "before"}))["ARN"]
                slow = "rotator-slow-" + step
                token = self.aws("secretsmanager", "rotate-secret", "--secret-id", name,
                                 "--rotation-lambda-arn", function_arn(slow))["VersionId"]
                before = STEPS.index(step)
                # The function is in `step` once its DescribeSecret for that step is on record
                # (it then sleeps 6 s): the earlier steps' records come first.
                def in_step():
                    done = [s for s in self.steps(arn) if s[2] == "allowed"]
                    if len(done) < before:
                        return False
                    described = [r for r in self.audit()
                                 if r["action"] == "secretsmanager:DescribeSecret"
                                 and r["resource"] == arn and r["actor"].startswith("arn:aws:sts")]
                    return len(described) > before
                self.wait_for(in_step, "the function to be in " + step)
                CTX["server"].proc.send_signal(signal.SIGKILL)
                CTX["server"].wait(timeout=30)
                CTX["server"].cleanup()
                start_server()
                self.wait_for(lambda: self.current(name) == token,
                              "the rotation to resume and finish after the crash in " + step)
                ran = self.steps(arn)
                self.assertEqual([s for s, _, o in ran if o == "allowed"], STEPS,
                                 "each step completed once, the interrupted one after the restart")
                self.assertTrue(all(v == token for _, v, _ in ran))
                value = json.loads(self.aws("secretsmanager", "get-secret-value", "--secret-id",
                                            name)["SecretString"])
                self.assertNotEqual(value["password"], "before")


class FunctionLeastPrivilegeTest(RotationCase):
    def test_a_function_reads_its_secret_and_nothing_else(self):
        for name in ("dev/notes/db", "dev/notes/other", "prod/notes/db"):
            self.create(name, "value of " + name)
        result = subprocess.run([harness.MOATLESS, "invoke", "reader", "--payload", json.dumps({
            "read": ["dev/notes/db", "dev/notes/other", "prod/notes/db"],
            "put": "dev/notes/db"})], capture_output=True, text=True, timeout=120,
            env=dict(self.env(), MOATLESS_ENDPOINT=CTX["server"].url("")))
        self.assertEqual(result.returncode, 0, result.stderr)
        out = json.loads(result.stdout)
        self.assertEqual(out["reads"]["dev/notes/db"],
                         {"ok": True, "length": len("value of dev/notes/db")})
        self.assertEqual(out["reads"]["dev/notes/other"],
                         {"ok": False, "name": "AccessDeniedException"})
        self.assertEqual(out["reads"]["prod/notes/db"],
                         {"ok": False, "name": "AccessDeniedException"})
        self.assertEqual(out["put"], {"ok": False, "name": "AccessDeniedException"})
        value = self.aws("secretsmanager", "get-secret-value", "--secret-id", "dev/notes/db")
        self.assertEqual(value["SecretString"], "value of dev/notes/db")
        denied = [(r["action"], r["resource"].rsplit(":", 1)[-1][:-7]) for r in self.audit()
                  if r["outcome"] == "denied"
                  and r["actor"].startswith("arn:aws:sts::%s:assumed-role/reader-role/" % ACCOUNT)]
        self.assertIn(("secretsmanager:GetSecretValue", "dev/notes/other"), denied)
        self.assertIn(("secretsmanager:GetSecretValue", "prod/notes/db"), denied)
        self.assertIn(("secretsmanager:PutSecretValue", "dev/notes/db"), denied)


if __name__ == "__main__":
    harness.main()
