"""Secrets Manager end to end with real AWS clients against a running `moatless serve`:

- the AWS SDK for JavaScript v3 (tests/aws_clients/secrets.mjs, one JSON line per step) runs the
  whole API: versions and staging labels, idempotent tokens, list filters and pagination,
  delete / restore, resource policies, batch reads, random passwords, and the error of each case;
- Debian's aws CLI drives every operation it knows (2.9 predates BatchGetSecretValue and SortBy)
  and the error cases (the error code on stderr);
- every read is audited (action, the secret's ARN, outcome, version id and stage) and a refusal is
  audited as denied with AccessDeniedException;
- least privilege: an identity policy scoped to `dev/notes/db-??????` reads that secret and nothing
  else, cannot write it, and an explicit Deny in the secret's resource policy overrides the Allow;
- no secret value ever reaches the audit log, the daemon's log or this test's own output (values
  are compared without being printed).
"""
import base64
import datetime
import json
import os
import re
import secrets
import shutil
import string
import subprocess
import tempfile
import time
import unittest
import uuid

import harness
from harness import Server, run_cli

AWS = "/usr/bin/aws"  # Debian's awscli (scripts/install-deps); not whatever else is on PATH
HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(os.path.dirname(HERE), "aws_clients")
ACCOUNT = "000000000000"
REGION = "local"
ROOT_ARN = "arn:aws:iam::%s:root" % ACCOUNT
SECRET_ARN = "arn:aws:secretsmanager:%s:%s:secret:" % (REGION, ACCOUNT)


def arn_pattern(name):
    return "^%s%s-[A-Za-z0-9]{6}$" % (re.escape(SECRET_ARN), re.escape(name))


def npm_clients_ready():
    if os.path.isdir(os.path.join(CLIENTS, "node_modules", "@aws-sdk",
                                  "client-secrets-manager")):
        return
    result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                            cwd=CLIENTS, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise AssertionError("npm ci in %s failed:\n%s" % (CLIENTS, result.stderr[-4000:]))


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


class SecretsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(AWS, os.X_OK):
            raise AssertionError("%s is missing: scripts/install-deps installs Debian's awscli"
                                 % AWS)
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise AssertionError("node and npm are required: scripts/install-deps installs them")
        npm_clients_ready()
        cls.tmp = tempfile.mkdtemp(prefix="moatless-secrets-")
        cls.data_dir = os.path.join(cls.tmp, "data")
        cls.creds = os.path.join(cls.tmp, "home", ".aws", "credentials")
        init = run_cli("init", "--data-dir", cls.data_dir, "--credentials-file", cls.creds)
        assert init.returncode == 0, init.stderr
        cls.server = Server(data_dir=cls.data_dir)
        # Every secret value this class stores or receives, to prove none of them leaks; the SDK
        # scenario puts the marker into each of its values.
        cls.values = set()
        cls.marker = "mk" + secrets.token_hex(8)

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        subprocess.run(["rm", "-rf", cls.tmp], check=False)

    # --- helpers ------------------------------------------------------------------------------

    def env(self, keys=None):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.tmp,
               "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": self.creds,
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "", "AWS_REGION": REGION,
               "AWS_DEFAULT_REGION": REGION}
        if keys:
            env.update({"AWS_ACCESS_KEY_ID": keys[0], "AWS_SECRET_ACCESS_KEY": keys[1]})
        else:
            env["AWS_PROFILE"] = "moatless"
        return env

    def hide(self, text):
        """`text` with every known secret value (and the SDK scenario's marker) redacted."""
        text = str(text)
        for v in sorted(self.values, key=len, reverse=True):
            text = text.replace(v, "[redacted]")
        return text.replace(self.marker, "[redacted]")

    def run_aws(self, args, keys):
        return subprocess.run([AWS, "--endpoint-url", self.server.url(""), "--output", "json",
                               *args], capture_output=True, text=True, timeout=60,
                              env=self.env(keys))

    def aws(self, *args, keys=None):
        """Runs the aws CLI (root unless `keys`) and returns its parsed JSON output."""
        result = self.run_aws(args, keys)
        self.assertEqual(result.returncode, 0, "aws %s failed: %s"
                         % (" ".join(args[:2]), self.hide(result.stderr)))
        return json.loads(result.stdout) if result.stdout.strip() else {}

    def aws_error(self, code, *args, keys=None):
        """Runs the aws CLI, which must fail with the AWS error `code`; returns stderr."""
        result = self.run_aws(args, keys)
        if result.returncode == 0:
            try:
                fields = sorted(json.loads(result.stdout))
            except ValueError:
                fields = []
            self.fail("aws %s succeeded (fields %s), expected %s" % (" ".join(args[:2]), fields,
                                                                     code))
        # assertTrue/assertFalse, not assertIn: their default messages would print the text.
        self.assertTrue("An error occurred (%s)" % code in result.stderr,
                        "expected %s: %s" % (code, self.hide(result.stderr)))
        self.assertFalse(any(v in result.stderr for v in self.values | {self.marker}),
                         "a secret value is in the CLI's error message")
        return result.stderr

    def value(self, label):
        """A fresh, distinctive secret value, remembered for the leak checks."""
        v = "%s-%s" % (label, secrets.token_hex(16))
        self.values.add(v)
        return v

    def assertSecret(self, actual, expected, what):
        """Compares secret values without ever printing them."""
        if actual != expected:
            self.fail("%s: the value differs from what was stored (got %s, expected length %d)"
                      % (what, "length %d" % len(actual) if isinstance(actual, str)
                         else type(actual).__name__, len(expected)))

    def assertDate(self, value, what):
        """A timestamp as the CLI prints it: the wire's epoch seconds (aws-cli v1's default), or
        ISO 8601 if the CLI is configured so. Returns it as an aware datetime."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
        self.assertIsInstance(value, str, "%s is a timestamp" % what)
        parsed = datetime.datetime.fromisoformat(value)
        self.assertIsNotNone(parsed.tzinfo, what)
        return parsed

    def stages(self, secret_id):
        described = self.aws("secretsmanager", "describe-secret", "--secret-id", secret_id)
        return {k: sorted(v) for k, v in described.get("VersionIdsToStages", {}).items()}

    def create(self, name, value=None, *extra):
        args = ["secretsmanager", "create-secret", "--name", name, *extra]
        if value is not None:
            args += ["--secret-string", value]
        out = self.aws(*args)
        self.assertRegex(out["ARN"], arn_pattern(name))
        return out

    def audit_text(self):
        with open(os.path.join(self.data_dir, "audit", "audit.log")) as f:
            return f.read()

    def audit(self):
        return [json.loads(line) for line in self.audit_text().splitlines() if line.strip()]

    def wait_audit(self, predicate, what, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.audit() if predicate(r)]
            if found:
                return found
            if time.monotonic() > deadline:
                self.fail("no audit record for " + what)
            time.sleep(0.1)

    def user(self, name, user_policy=None):
        """An IAM user with an access key and, if given, one inline policy: (key id, secret)."""
        self.aws("iam", "create-user", "--user-name", name)
        if user_policy:
            self.aws("iam", "put-user-policy", "--user-name", name, "--policy-name", "secrets",
                     "--policy-document", user_policy)
        key = self.aws("iam", "create-access-key", "--user-name", name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def root_keys(self):
        section, found = None, {}
        with open(self.creds) as f:
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    section = line[1:-1]
                elif section == "moatless" and "=" in line:
                    key, v = (x.strip() for x in line.split("=", 1))
                    found[key] = v
        return found["aws_access_key_id"], found["aws_secret_access_key"]

    # --- (a) the AWS SDK for JavaScript v3 --------------------------------------------------------

    def test_sdk_scenario_every_step_passes(self):
        env = self.env(self.root_keys())
        env["SECRETS_TEST_MARKER"] = self.marker
        result = subprocess.run(["node", os.path.join(CLIENTS, "secrets.mjs"), self.server.url("")],
                                capture_output=True, text=True, timeout=300, env=env)
        self.assertFalse(self.marker in result.stdout or self.marker in result.stderr,
                         "the SDK scenario printed a secret value")
        steps = []
        for line in result.stdout.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "step" in record:
                steps.append(record)
        with open(os.path.join(CLIENTS, "secrets.mjs")) as f:
            expected = f.read().count("\nawait step(")
        self.assertEqual(len(steps), expected, "the scenario ran to its end:\n%s"
                         % self.hide(result.stdout[-2000:] + result.stderr[-2000:]))
        failed = [s for s in steps if not s.get("ok")]
        if failed:
            self.fail("%d of %d SDK steps failed:\n%s" % (
                len(failed), len(steps),
                "\n".join("- %s: %s" % (s["step"], self.hide(s.get("error", ""))) for s in failed)))
        self.assertEqual(result.returncode, 0, self.hide(result.stderr[-2000:]))

    # --- (b) the aws CLI, operation by operation ----------------------------------------------

    def test_cli_values_versions_and_staging_labels(self):
        name = "cli/app/db"
        t1, t2, t3 = (str(uuid.uuid4()) for _ in range(3))
        v1, v2, v3 = self.value("v1"), self.value("v2"), self.value("v3")
        created = self.create(name, v1, "--description", "CLI secret", "--client-request-token", t1,
                              "--tags", "Key=team,Value=core")
        self.assertEqual(created["Name"], name)
        self.assertEqual(created["VersionId"], t1)
        arn = created["ARN"]

        got = self.aws("secretsmanager", "get-secret-value", "--secret-id", name)
        self.assertEqual(got["ARN"], arn)
        self.assertEqual(got["Name"], name)
        self.assertEqual(got["VersionId"], t1)
        self.assertEqual(got["VersionStages"], ["AWSCURRENT"])
        self.assertSecret(got.get("SecretString"), v1, "get-secret-value")
        self.assertFalse("SecretBinary" in got, "no SecretBinary for a string secret")
        self.assertDate(got["CreatedDate"], "CreatedDate")
        self.assertSecret(self.aws("secretsmanager", "get-secret-value", "--secret-id",
                                   arn).get("SecretString"), v1, "get-secret-value by ARN")

        put = self.aws("secretsmanager", "put-secret-value", "--secret-id", name, "--secret-string",
                       v2, "--client-request-token", t2)
        self.assertEqual((put["ARN"], put["VersionId"], put["VersionStages"]),
                         (arn, t2, ["AWSCURRENT"]))
        # The same token and value again: the same version, no new one.
        again = self.aws("secretsmanager", "put-secret-value", "--secret-id", name,
                         "--secret-string", v2, "--client-request-token", t2)
        self.assertEqual(again["VersionId"], t2)
        self.assertSecret(self.aws("secretsmanager", "get-secret-value", "--secret-id",
                                   name).get("SecretString"), v2, "AWSCURRENT after put")
        previous = self.aws("secretsmanager", "get-secret-value", "--secret-id", name,
                            "--version-stage", "AWSPREVIOUS")
        self.assertEqual((previous["VersionId"], previous["VersionStages"]), (t1, ["AWSPREVIOUS"]))
        self.assertSecret(previous.get("SecretString"), v1, "AWSPREVIOUS")
        self.assertEqual(self.stages(name), {t2: ["AWSCURRENT"], t1: ["AWSPREVIOUS"]})

        self.aws("secretsmanager", "put-secret-value", "--secret-id", name, "--secret-string", v3,
                 "--client-request-token", t3)
        self.assertEqual(self.stages(name), {t3: ["AWSCURRENT"], t2: ["AWSPREVIOUS"]})
        labelled = self.aws("secretsmanager", "list-secret-version-ids", "--secret-id", name)
        self.assertEqual((labelled["ARN"], labelled["Name"]), (arn, name))
        self.assertEqual({v["VersionId"]: sorted(v["VersionStages"]) for v in labelled["Versions"]},
                         {t3: ["AWSCURRENT"], t2: ["AWSPREVIOUS"]})
        everything = self.aws("secretsmanager", "list-secret-version-ids", "--secret-id", name,
                              "--include-deprecated")
        self.assertEqual(sorted(v["VersionId"] for v in everything["Versions"]),
                         sorted([t1, t2, t3]))
        by_id = self.aws("secretsmanager", "get-secret-value", "--secret-id", name,
                         "--version-id", t1)
        self.assertSecret(by_id.get("SecretString"), v1, "an unlabelled version by id")

        # AWSCURRENT back to the first version: AWSPREVIOUS follows to the one it left.
        moved = self.aws("secretsmanager", "update-secret-version-stage", "--secret-id", name,
                         "--version-stage", "AWSCURRENT", "--move-to-version-id", t1,
                         "--remove-from-version-id", t3)
        self.assertEqual((moved["ARN"], moved["Name"]), (arn, name))
        self.assertEqual(self.stages(name), {t1: ["AWSCURRENT"], t3: ["AWSPREVIOUS"]})
        self.assertSecret(self.aws("secretsmanager", "get-secret-value", "--secret-id",
                                   name).get("SecretString"), v1, "AWSCURRENT after the move")
        # A custom label, attached then moved.
        self.aws("secretsmanager", "update-secret-version-stage", "--secret-id", name,
                 "--version-stage", "blue", "--move-to-version-id", t2)
        self.aws("secretsmanager", "update-secret-version-stage", "--secret-id", name,
                 "--version-stage", "blue", "--move-to-version-id", t3,
                 "--remove-from-version-id", t2)
        self.assertEqual(self.stages(name), {t1: ["AWSCURRENT"], t3: ["AWSPREVIOUS", "blue"]})
        self.assertEqual(self.aws("secretsmanager", "get-secret-value", "--secret-id", name,
                                  "--version-stage", "blue")["VersionId"], t3)

        # A binary secret: bytes in with fileb://, base64 out.
        raw = bytes([0, 255, 10, 13]) + os.urandom(40)
        self.values.add(base64.b64encode(raw).decode())
        path = os.path.join(self.tmp, "binary-secret")
        with open(path, "wb") as f:
            f.write(raw)
        binary = self.aws("secretsmanager", "create-secret", "--name", "cli/app/bin",
                          "--secret-binary", "fileb://" + path)
        os.unlink(path)
        got = self.aws("secretsmanager", "get-secret-value", "--secret-id", "cli/app/bin")
        self.assertEqual(got["VersionId"], binary["VersionId"])
        self.assertFalse("SecretString" in got, "no SecretString for a binary secret")
        self.assertTrue(base64.b64decode(got.get("SecretBinary", "")) == raw,
                        "the binary secret round-trips (length %d expected)" % len(raw))

        # UpdateSecret: a description alone makes no version; a value does.
        updated = self.aws("secretsmanager", "update-secret", "--secret-id", name, "--description",
                           "Changed by the CLI")
        self.assertNotIn("VersionId", updated)
        self.assertEqual(self.stages(name), {t1: ["AWSCURRENT"], t3: ["AWSPREVIOUS", "blue"]})
        v4 = self.value("v4")
        updated = self.aws("secretsmanager", "update-secret", "--secret-id", name,
                           "--secret-string", v4)
        self.assertEqual(self.stages(name), {updated["VersionId"]: ["AWSCURRENT"],
                                             t1: ["AWSPREVIOUS"], t3: ["blue"]})

    def test_cli_describe_tags_and_list_with_filters(self):
        for n, (desc, tag) in {"cli/list/a": ("Alpha", "gold"), "cli/list/b": ("beta", "silver"),
                               "cli/list/c": ("Gamma", "gold")}.items():
            self.create(n, self.value("list"), "--description", desc, "--tags",
                        "Key=tier,Value=" + tag)
        a_value = self.value("list-a2")
        put = self.aws("secretsmanager", "put-secret-value", "--secret-id", "cli/list/a",
                       "--secret-string", a_value)
        self.aws("secretsmanager", "get-secret-value", "--secret-id", "cli/list/a")

        described = self.aws("secretsmanager", "describe-secret", "--secret-id", "cli/list/a")
        self.assertRegex(described["ARN"], arn_pattern("cli/list/a"))
        self.assertEqual(described["Name"], "cli/list/a")
        self.assertEqual(described["Description"], "Alpha")
        self.assertEqual(described["Tags"], [{"Key": "tier", "Value": "gold"}])
        self.assertEqual(sorted(described["VersionIdsToStages"].values()),
                         [["AWSCURRENT"], ["AWSPREVIOUS"]])
        self.assertEqual(described["VersionIdsToStages"][put["VersionId"]], ["AWSCURRENT"])
        for field in ("CreatedDate", "LastChangedDate", "LastAccessedDate"):
            self.assertDate(described.get(field), field)
        self.assertNotIn("DeletedDate", described)
        self.assertFalse(described.get("RotationEnabled", False))
        self.assertFalse("SecretString" in described, "describe-secret returns no value")

        self.aws("secretsmanager", "tag-resource", "--secret-id", "cli/list/a", "--tags",
                 "Key=env,Value=dev", "Key=tier,Value=platinum")
        tags = self.aws("secretsmanager", "describe-secret", "--secret-id", "cli/list/a")["Tags"]
        self.assertEqual(sorted((t["Key"], t["Value"]) for t in tags),
                         [("env", "dev"), ("tier", "platinum")])
        self.aws("secretsmanager", "untag-resource", "--secret-id", described["ARN"], "--tag-keys",
                 "tier")
        self.assertEqual(self.aws("secretsmanager", "describe-secret", "--secret-id",
                                  "cli/list/a")["Tags"], [{"Key": "env", "Value": "dev"}])

        def names(*args):
            out = self.aws("secretsmanager", "list-secrets", *args)
            listed = [e["Name"] for e in out["SecretList"]]
            self.assertEqual(len(listed), len(set(listed)), "no secret twice")
            return sorted(listed)

        everything = ["cli/list/a", "cli/list/b", "cli/list/c"]
        self.assertEqual(names("--filters", "Key=name,Values=cli/list/"), everything)
        # The CLI pages with MaxResults 1 and follows NextToken to the end.
        self.assertEqual(names("--filters", "Key=name,Values=cli/list/", "--page-size", "1"),
                         everything)
        self.assertEqual(names("--filters", "Key=name,Values=CLI/LIST/"), [])
        self.assertEqual(names("--filters", "Key=name,Values=cli/list/",
                               "Key=description,Values=BETA"), ["cli/list/b"])
        self.assertEqual(names("--filters", "Key=name,Values=cli/list/",
                               "Key=tag-value,Values=gold"), ["cli/list/c"])
        self.assertEqual(names("--filters", "Key=name,Values=cli/list/", "Key=tag-key,Values=env"),
                         ["cli/list/a"])
        self.assertEqual(names("--filters", "Key=name,Values=cli/list/", "Key=tag-key,Values=!env"),
                         ["cli/list/b", "cli/list/c"])
        self.assertEqual(names("--filters", "Key=name,Values=cli/list/", "Key=all,Values=silver"),
                         ["cli/list/b"])
        # (Debian's aws CLI 2.9 predates --sort-by; the SDK scenario sorts by name.)
        ordered = self.aws("secretsmanager", "list-secrets", "--filters",
                           "Key=name,Values=cli/list/")["SecretList"]
        self.assertEqual(sorted(e["Name"] for e in ordered), everything)
        entry = [e for e in ordered if e["Name"] == "cli/list/a"][0]
        self.assertEqual(entry["SecretVersionsToStages"][put["VersionId"]], ["AWSCURRENT"])
        self.assertEqual(entry["ARN"], described["ARN"])

    def test_cli_resource_policy(self):
        arn = self.create("cli/policy/db", self.value("policy"))["ARN"]
        document = json.loads(policy({
            "Sid": "AccountReads", "Effect": "Allow", "Principal": {"AWS": ROOT_ARN},
            "Action": "secretsmanager:GetSecretValue", "Resource": "*"}))
        checked = self.aws("secretsmanager", "validate-resource-policy", "--secret-id",
                           "cli/policy/db", "--resource-policy", json.dumps(document))
        self.assertIs(checked["PolicyValidationPassed"], True)
        self.assertEqual(checked.get("ValidationErrors", []), [])
        bad = dict(document, Statement=[dict(document["Statement"][0],
                                             Condition={"StringLikeish": {"aws:username": "x"}})])
        checked = self.aws("secretsmanager", "validate-resource-policy", "--resource-policy",
                           json.dumps(bad))
        self.assertIs(checked["PolicyValidationPassed"], False)
        self.assertGreaterEqual(len(checked["ValidationErrors"]), 1)

        put = self.aws("secretsmanager", "put-resource-policy", "--secret-id", "cli/policy/db",
                       "--resource-policy", json.dumps(document), "--block-public-policy")
        self.assertEqual((put["ARN"], put["Name"]), (arn, "cli/policy/db"))
        got = self.aws("secretsmanager", "get-resource-policy", "--secret-id", "cli/policy/db")
        self.assertEqual((got["ARN"], got["Name"]), (arn, "cli/policy/db"))
        self.assertEqual(json.loads(got["ResourcePolicy"]), document)
        deleted = self.aws("secretsmanager", "delete-resource-policy", "--secret-id",
                           "cli/policy/db")
        self.assertEqual(deleted["ARN"], arn)
        self.assertNotIn("ResourcePolicy", self.aws("secretsmanager", "get-resource-policy",
                                                    "--secret-id", "cli/policy/db"))

    def test_cli_delete_restore_and_random_password(self):
        names = ["cli/batch/one", "cli/batch/two"]
        values = {n: self.value("batch") for n in names}
        arns = {n: self.create(n, values[n])["ARN"] for n in names}

        # Debian's aws CLI 2.9 predates batch-get-secret-value: the SDK scenario covers it.
        # A recovery window: the value is out of reach, the metadata is not; then restored.
        one = names[0]
        deleted = self.aws("secretsmanager", "delete-secret", "--secret-id", one,
                           "--recovery-window-in-days", "7")
        self.assertEqual((deleted["ARN"], deleted["Name"]), (arns[one], one))
        when = self.assertDate(deleted["DeletionDate"], "DeletionDate")
        in_seven_days = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=7)
        self.assertLess(abs((when - in_seven_days).total_seconds()), 3600)
        self.aws_error("InvalidRequestException", "secretsmanager", "get-secret-value",
                       "--secret-id", one)
        # DeletedDate: the time of the delete request or the deletion date (AWS documents both).
        deleted_date = self.assertDate(self.aws("secretsmanager", "describe-secret", "--secret-id",
                                                one).get("DeletedDate"), "DeletedDate")
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(now - datetime.timedelta(minutes=10), deleted_date)
        self.assertLess(deleted_date, in_seven_days + datetime.timedelta(hours=1))
        batch_filter = ["--filters", "Key=name,Values=cli/batch/"]
        listed = self.aws("secretsmanager", "list-secrets", *batch_filter)
        self.assertEqual([e["Name"] for e in listed["SecretList"]], [names[1]])
        listed = self.aws("secretsmanager", "list-secrets", *batch_filter,
                          "--include-planned-deletion")
        self.assertEqual(sorted(e["Name"] for e in listed["SecretList"]), names)
        restored = self.aws("secretsmanager", "restore-secret", "--secret-id", one)
        self.assertEqual((restored["ARN"], restored["Name"]), (arns[one], one))
        self.assertSecret(self.aws("secretsmanager", "get-secret-value", "--secret-id",
                                   one).get("SecretString"), values[one], "after restore-secret")
        self.assertNotIn("DeletedDate", self.aws("secretsmanager", "describe-secret", "--secret-id",
                                                 one))

        # Force delete: gone at once, and the name is free again.
        two = names[1]
        self.aws("secretsmanager", "delete-secret", "--secret-id", two,
                 "--force-delete-without-recovery")
        self.aws_error("ResourceNotFoundException", "secretsmanager", "describe-secret",
                       "--secret-id", two)
        self.create(two, self.value("again"))

        generated = self.aws("secretsmanager", "get-random-password", "--password-length", "20",
                             "--exclude-punctuation")["RandomPassword"]
        self.values.add(generated)
        self.assertEqual(len(generated), 20)
        self.assertTrue(set(generated) <= set(string.ascii_letters + string.digits),
                        "only letters and digits")
        self.assertTrue(any(c.isdigit() for c in generated) and any(c.isupper() for c in generated)
                        and any(c.islower() for c in generated), "each included type is present")
        default = self.aws("secretsmanager", "get-random-password")["RandomPassword"]
        self.values.add(default)
        self.assertEqual(len(default), 32)

    # --- (c) errors through the CLI -------------------------------------------------------------

    def test_cli_error_codes(self):
        sm = "secretsmanager"
        name = "cli/errors/db"
        t1, t2, t3 = (str(uuid.uuid4()) for _ in range(3))
        self.create(name, self.value("err"), "--client-request-token", t1)
        self.aws(sm, "put-secret-value", "--secret-id", name, "--secret-string", self.value("err2"),
                 "--client-request-token", t2)
        self.aws_error("InvalidRequestException", sm, "rotate-secret", "--secret-id", name)
        self.assertEqual(self.stages(name), {t2: ["AWSCURRENT"], t1: ["AWSPREVIOUS"]},
                         "rotate-secret left no version behind")
        self.aws(sm, "put-secret-value", "--secret-id", name, "--secret-string", self.value("err3"),
                 "--client-request-token", t3, "--version-stages", "AWSPENDING")

        self.aws_error("ResourceNotFoundException", sm, "get-secret-value", "--secret-id",
                       "cli/errors/missing")
        self.aws_error("ResourceNotFoundException", sm, "get-secret-value", "--secret-id", name,
                       "--version-id", t1, "--version-stage", "AWSCURRENT")
        self.aws_error("ResourceExistsException", sm, "create-secret", "--name", name,
                       "--secret-string", self.value("dup"))
        self.aws_error("ResourceExistsException", sm, "put-secret-value", "--secret-id", name,
                       "--secret-string", self.value("other"), "--client-request-token", t2)
        self.aws_error("InvalidParameterException", sm, "create-secret", "--name",
                       "cli/errors/bad name!", "--secret-string", self.value("bad"))
        self.aws_error("InvalidParameterException", sm, "create-secret", "--name",
                       "cli/errors/both", "--secret-string", self.value("both"),
                       "--secret-binary", "AQID")
        self.aws_error("InvalidParameterException", sm, "put-secret-value", "--secret-id", name)
        # AWSCURRENT is on t2: moving it needs RemoveFromVersionId t2, and t1 does not have it.
        self.aws_error("InvalidParameterException", sm, "update-secret-version-stage",
                       "--secret-id", name, "--version-stage", "AWSCURRENT",
                       "--move-to-version-id", t3)
        self.aws_error("InvalidParameterException", sm, "update-secret-version-stage",
                       "--secret-id", name, "--version-stage", "AWSCURRENT",
                       "--move-to-version-id", t3, "--remove-from-version-id", t1)
        self.assertEqual(self.stages(name), {t2: ["AWSCURRENT"], t1: ["AWSPREVIOUS"],
                                             t3: ["AWSPENDING"]}, "no label moved")
        self.aws_error("InvalidParameterException", sm, "delete-secret", "--secret-id", name,
                       "--recovery-window-in-days", "3")
        self.aws_error("InvalidParameterException", sm, "delete-secret", "--secret-id", name,
                       "--recovery-window-in-days", "7", "--force-delete-without-recovery")
        # The CLI checks only minimums; maximums reach the server.
        self.aws_error("ValidationException", sm, "create-secret", "--name", "n" * 513,
                       "--secret-string", self.value("long"))
        self.aws_error("ValidationException", sm, "list-secrets", "--max-results", "101")
        self.aws_error("ValidationException", sm, "get-random-password", "--password-length",
                       "5000")
        self.aws_error("InvalidNextTokenException", sm, "list-secrets", "--next-token",
                       "never-issued-token")
        self.aws_error("MalformedPolicyDocumentException", sm, "put-resource-policy", "--secret-id",
                       name, "--resource-policy", "{not json")
        self.aws_error("MalformedPolicyDocumentException", sm, "validate-resource-policy",
                       "--resource-policy", "not a policy")
        public = policy({"Effect": "Allow", "Principal": "*",
                         "Action": "secretsmanager:GetSecretValue", "Resource": "*"})
        self.aws_error("PublicPolicyException", sm, "put-resource-policy", "--secret-id", name,
                       "--resource-policy", public)
        self.assertNotIn("ResourcePolicy", self.aws(sm, "get-resource-policy", "--secret-id", name))
        self.aws_error("ResourceNotFoundException", sm, "tag-resource", "--secret-id",
                       "cli/errors/missing", "--tags", "Key=a,Value=b")

        self.aws(sm, "delete-secret", "--secret-id", name, "--recovery-window-in-days", "7")
        self.aws_error("InvalidRequestException", sm, "get-secret-value", "--secret-id", name)
        self.aws_error("InvalidRequestException", sm, "put-secret-value", "--secret-id", name,
                       "--secret-string", self.value("late"))
        self.aws_error("InvalidRequestException", sm, "create-secret", "--name", name,
                       "--secret-string", self.value("again"))

    # --- (d) the audit log --------------------------------------------------------------------

    def test_reads_and_refusals_are_audited_without_values(self):
        name = "audit/app/db"
        secret = self.value("audited")
        arn = self.create(name, secret)["ARN"]
        got = self.aws("secretsmanager", "get-secret-value", "--secret-id", name)
        self.assertSecret(got.get("SecretString"), secret, "get-secret-value")

        def read_of(outcome):
            return lambda r: (r.get("action") == "secretsmanager:GetSecretValue"
                              and r.get("resource") == arn and r.get("outcome") == outcome)

        allowed = self.wait_audit(read_of("allowed"), "the allowed GetSecretValue")
        record = [r for r in allowed
                  if (r.get("fields") or {}).get("version_id") == got["VersionId"]]
        self.assertTrue(record, "a record names the version read: %s" % self.hide(allowed[-1]))
        self.assertEqual(record[-1]["actor"], ROOT_ARN)
        self.assertEqual(record[-1]["fields"]["version_stage"], "AWSCURRENT")

        keys = self.user("nobody")
        err = self.aws_error("AccessDeniedException", "secretsmanager", "get-secret-value",
                             "--secret-id", name, keys=keys)
        self.assertTrue("secretsmanager:GetSecretValue" in err, "the message names the action")
        actor = "arn:aws:iam::%s:user/nobody" % ACCOUNT
        denied = self.wait_audit(lambda r: r.get("action") == "secretsmanager:GetSecretValue"
                                 and r.get("actor") == actor, "the refused GetSecretValue")
        self.assertEqual(denied[-1]["outcome"], "denied")
        self.assertNotEqual(denied[-1].get("reason", ""), "")

        text = self.audit_text()
        self.assertFalse(secret in text, "the secret value is not in the audit log")
        self.assertFalse(any(secret in line for line in list(self.server.lines)),
                         "the secret value is not in the daemon's log")

    # --- (e) least privilege: identity policies and resource policies ---------------------------

    def test_least_privilege_with_an_identity_policy_and_a_resource_policy_deny(self):
        values = {n: self.value("lp") for n in ("dev/notes/db", "dev/notes/other", "prod/notes/db")}
        arns = {n: self.create(n, v)["ARN"] for n, v in values.items()}
        reader_arn = "arn:aws:iam::%s:user/notes-reader" % ACCOUNT
        keys = self.user("notes-reader", policy({
            "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
            "Resource": "%sdev/notes/db-??????" % SECRET_ARN}))

        got = self.aws("secretsmanager", "get-secret-value", "--secret-id", "dev/notes/db",
                       keys=keys)
        self.assertEqual(got["ARN"], arns["dev/notes/db"])
        self.assertSecret(got.get("SecretString"), values["dev/notes/db"], "the reader's read")
        self.assertSecret(self.aws("secretsmanager", "get-secret-value", "--secret-id",
                                   arns["dev/notes/db"], keys=keys).get("SecretString"),
                          values["dev/notes/db"], "the reader's read by ARN")
        for other in ("dev/notes/other", "prod/notes/db"):
            err = self.aws_error("AccessDeniedException", "secretsmanager", "get-secret-value",
                                 "--secret-id", other, keys=keys)
            self.assertTrue("user/notes-reader" in err, "the message names the caller")
        self.aws_error("AccessDeniedException", "secretsmanager", "put-secret-value", "--secret-id",
                       "dev/notes/db", "--secret-string", self.value("overwrite"), keys=keys)
        self.assertSecret(self.aws("secretsmanager", "get-secret-value", "--secret-id",
                                   "dev/notes/db").get("SecretString"), values["dev/notes/db"],
                          "the value after the refused put")

        # An explicit Deny in the secret's resource policy beats the identity policy's Allow.
        self.aws("secretsmanager", "put-resource-policy", "--secret-id", "dev/notes/db",
                 "--resource-policy", policy({
                     "Sid": "NoReader", "Effect": "Deny", "Principal": {"AWS": reader_arn},
                     "Action": "secretsmanager:GetSecretValue", "Resource": "*"}))
        self.aws_error("AccessDeniedException", "secretsmanager", "get-secret-value", "--secret-id",
                       "dev/notes/db", keys=keys)
        refused = self.wait_audit(lambda r: r.get("action") == "secretsmanager:GetSecretValue"
                                  and r.get("actor") == reader_arn
                                  and r.get("resource") == arns["dev/notes/db"]
                                  and r.get("outcome") == "denied",
                                  "the read refused by the resource policy")
        self.assertTrue(refused)
        # Root is not affected, and without the policy the reader reads again.
        self.aws("secretsmanager", "get-secret-value", "--secret-id", "dev/notes/db")
        self.aws("secretsmanager", "delete-resource-policy", "--secret-id", "dev/notes/db")
        self.assertSecret(self.aws("secretsmanager", "get-secret-value", "--secret-id",
                                   "dev/notes/db", keys=keys).get("SecretString"),
                          values["dev/notes/db"], "the reader's read after the policy is gone")

    # --- last (names sort last): nothing this class stored or received leaked --------------------

    def test_z_no_secret_value_in_the_audit_log_or_the_daemon_log(self):
        own = self.value("leak-check")
        self.create("leak/check", own)
        self.aws("secretsmanager", "get-secret-value", "--secret-id", "leak/check")
        text = self.audit_text()
        lines = list(self.server.lines)
        needles = sorted(self.values | {self.marker})
        in_audit = sum(1 for v in needles if v in text)
        in_log = sum(1 for v in needles if any(v in line for line in lines))
        self.assertEqual(in_audit, 0, "%d of %d secret values are in the audit log"
                         % (in_audit, len(needles)))
        self.assertEqual(in_log, 0, "%d of %d secret values are in the daemon's log"
                         % (in_log, len(needles)))


if __name__ == "__main__":
    harness.main()
