"""Identity end to end with real AWS clients: `moatless init`, then Debian's aws CLI and the AWS SDK
for JavaScript v3 (tests/aws_clients, from npm) against a running `moatless serve` — IAM
administration, STS, and every way a request must be refused (wrong secret, deactivated key, edited
session token, replay outside the clock-skew window, a client with a skewed clock, an expired
session, unsigned), each checked in the audit log."""
import datetime
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

import harness
from harness import Server, run_cli

AWS = "/usr/bin/aws"  # Debian's awscli (scripts/install-deps); not whatever else is on PATH
# Debian's libfaketime (scripts/install-deps): runs a process with its clock moved.
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(os.path.dirname(HERE), "aws_clients")
ACCOUNT = "000000000000"

DEPLOYER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole",
         "Resource": "arn:aws:iam::%s:role/fn-orders" % ACCOUNT},
        {"Effect": "Allow", "Action": ["iam:GetUser", "iam:ListAccessKeys"],
         "Resource": "arn:aws:iam::%s:user/${aws:username}" % ACCOUNT},
    ],
}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % ACCOUNT},
                   "Action": "sts:AssumeRole"}],
}


def npm_clients_ready():
    if not os.path.isdir(os.path.join(CLIENTS, "node_modules", "@aws-sdk", "client-sts")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CLIENTS,
                       check=True, capture_output=True, timeout=300)


class IdentityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(AWS, os.X_OK):
            raise AssertionError("%s is missing: scripts/install-deps installs Debian's awscli" % AWS)
        if not os.path.exists(FAKETIME_LIB):
            raise AssertionError("%s is missing: scripts/install-deps installs Debian's faketime"
                                 % FAKETIME_LIB)
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise AssertionError("node and npm are required: scripts/install-deps installs them")
        npm_clients_ready()
        cls.tmp = tempfile.mkdtemp(prefix="moatless-identity-")
        cls.data_dir = os.path.join(cls.tmp, "data")
        cls.creds = os.path.join(cls.tmp, "home", ".aws", "credentials")
        init = run_cli("init", "--data-dir", cls.data_dir, "--credentials-file", cls.creds)
        assert init.returncode == 0, init.stderr
        cls.init_output = init.stdout + init.stderr
        cls.server = Server(data_dir=cls.data_dir)

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        subprocess.run(["rm", "-rf", cls.tmp], check=False)

    # --- helpers ------------------------------------------------------------------------------

    def env(self, profile=None, keys=None):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.tmp,
               "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": self.creds,
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "", "AWS_REGION": "local",
               "AWS_DEFAULT_REGION": "local"}
        if profile:
            env["AWS_PROFILE"] = profile
        if keys:
            env.update({"AWS_ACCESS_KEY_ID": keys[0], "AWS_SECRET_ACCESS_KEY": keys[1]})
            if len(keys) > 2:
                env["AWS_SESSION_TOKEN"] = keys[2]
        return env

    def aws(self, *args, profile="moatless", keys=None, expect_ok=True, server=None,
            clock=None):
        """Runs the aws CLI; `clock` ("-20m", "+1h") moves the client's clock (libfaketime)."""
        env = self.env(None if keys else profile, keys)
        if clock:
            env.update({"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": clock})
        result = subprocess.run([AWS, "--endpoint-url", (server or self.server).url(""),
                                 "--output", "json", *args], capture_output=True, text=True,
                                timeout=60, env=env)
        if expect_ok:
            self.assertEqual(result.returncode, 0, result.stderr)
            return json.loads(result.stdout) if result.stdout.strip() else {}
        self.assertNotEqual(result.returncode, 0, result.stdout)
        return result.stderr

    def sdk(self, *args, keys, server=None, clock=None):
        env = self.env(keys=keys)
        if clock:
            env.update({"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": clock})
        result = subprocess.run(["node", os.path.join(CLIENTS, "sts.mjs"),
                                 (server or self.server).url(""), *args], capture_output=True,
                                text=True, timeout=60, env=env)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout.strip().splitlines()[-1])

    def audit(self, data_dir=None):
        with open(os.path.join(data_dir or self.data_dir, "audit", "audit.log")) as f:
            return [json.loads(line) for line in f if line.strip()]

    def profile_keys(self, profile, path=None):
        """(access key id, secret) of a profile of an AWS credentials file."""
        section, found = None, {}
        with open(path or self.creds) as f:
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    section = line[1:-1]
                elif section == profile and "=" in line:
                    key, value = (x.strip() for x in line.split("=", 1))
                    found[key] = value
        if "aws_secret_access_key" not in found:
            raise AssertionError("no profile " + profile)
        return found["aws_access_key_id"], found["aws_secret_access_key"]

    def secret_of(self, profile):
        return self.profile_keys(profile)[1]

    def add_profile(self, name, key_id, secret):
        with open(self.creds, "a") as f:
            f.write("\n[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                    % (name, key_id, secret))

    def deployer(self):
        """Creates (once) the least-privileged deployer user of docs/identity.md and its key."""
        if getattr(type(self), "_deployer", None):
            return type(self)._deployer
        self.aws("iam", "create-user", "--user-name", "deployer")
        self.aws("iam", "put-user-policy", "--user-name", "deployer", "--policy-name", "deploy",
                 "--policy-document", json.dumps(DEPLOYER_POLICY))
        self.aws("iam", "create-role", "--role-name", "fn-orders",
                 "--assume-role-policy-document", json.dumps(TRUST))
        key = self.aws("iam", "create-access-key", "--user-name", "deployer")["AccessKey"]
        self.add_profile("deployer", key["AccessKeyId"], key["SecretAccessKey"])
        type(self)._deployer = (key["AccessKeyId"], key["SecretAccessKey"])
        return type(self)._deployer

    # --- tests ------------------------------------------------------------------------------

    def test_init_writes_root_credentials_once_and_never_prints_the_secret(self):
        root_secret = self.secret_of("moatless")
        self.assertNotIn(root_secret, self.init_output)
        self.assertEqual(os.stat(self.creds).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(os.path.join(self.data_dir, "keys", "master.key")).st_mode & 0o777,
                         0o600)
        with open(self.creds) as f:
            before = f.read()
        # Not while a daemon owns the data directory...
        busy = run_cli("init", "--data-dir", self.data_dir, "--credentials-file", self.creds)
        self.assertEqual(busy.returncode, 1)
        self.assertIn("in use by another moatless process", busy.stderr)
        # ...and never twice: root credentials are not replaced.
        other = os.path.join(self.tmp, "second")
        other_creds = os.path.join(self.tmp, "second-credentials")
        self.assertEqual(run_cli("init", "--data-dir", other, "--credentials-file",
                                 other_creds).returncode, 0)
        with open(other_creds) as f:
            first = f.read()
        again = run_cli("init", "--data-dir", other, "--credentials-file", other_creds)
        self.assertEqual(again.returncode, 1)
        self.assertIn("already initialised", again.stderr)
        with open(other_creds) as f:
            self.assertEqual(f.read(), first)
        with open(self.creds) as f:
            self.assertEqual(f.read(), before)
        for record in self.audit():
            self.assertNotIn(root_secret, json.dumps(record))

    def test_root_and_a_least_privileged_deployer_with_the_aws_cli(self):
        who = self.aws("sts", "get-caller-identity")
        self.assertEqual(who["Arn"], "arn:aws:iam::%s:root" % ACCOUNT)
        self.assertEqual(who["Account"], ACCOUNT)
        key_id, _ = self.deployer()
        me = self.aws("sts", "get-caller-identity", profile="deployer")
        self.assertEqual(me["Arn"], "arn:aws:iam::%s:user/deployer" % ACCOUNT)
        # Its own keys, by ${aws:username}; nobody else's; no administration.
        keys = self.aws("iam", "list-access-keys", profile="deployer")["AccessKeyMetadata"]
        self.assertEqual([k["AccessKeyId"] for k in keys], [key_id])
        err = self.aws("iam", "create-user", "--user-name", "mallory", profile="deployer",
                       expect_ok=False)
        self.assertIn("AccessDenied", err)
        self.assertIn("user/deployer is not authorized to perform: iam:CreateUser", err)
        denied = [r for r in self.audit() if r["action"] == "iam:CreateUser"
                  and r["outcome"] == "denied"]
        self.assertTrue(denied, "the denial is audited")
        self.assertEqual(denied[-1]["actor"], "arn:aws:iam::%s:user/deployer" % ACCOUNT)
        self.assertEqual(denied[-1]["fields"]["source_ip"], "127.0.0.1")

    def test_assume_role_with_the_aws_cli_and_the_javascript_sdk(self):
        key_id, secret = self.deployer()
        role = "arn:aws:iam::%s:role/fn-orders" % ACCOUNT
        assumed = self.aws("sts", "assume-role", "--role-arn", role, "--role-session-name", "ci-1",
                           "--duration-seconds", "900", profile="deployer")
        creds = assumed["Credentials"]
        self.assertTrue(creds["AccessKeyId"].startswith("ASIA"))
        session = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
        who = self.aws("sts", "get-caller-identity", keys=session)
        self.assertEqual(who["Arn"], "arn:aws:sts::%s:assumed-role/fn-orders/ci-1" % ACCOUNT)

        sdk_who = self.sdk("get-caller-identity", keys=(key_id, secret))
        self.assertTrue(sdk_who["ok"], sdk_who)
        self.assertEqual(sdk_who["Arn"], "arn:aws:iam::%s:user/deployer" % ACCOUNT)
        sdk_assumed = self.sdk("assume-role", role, "sdk-1", "900", keys=(key_id, secret))
        self.assertTrue(sdk_assumed["ok"], sdk_assumed)
        self.assertEqual(sdk_assumed["Arn"], "arn:aws:sts::%s:assumed-role/fn-orders/sdk-1" % ACCOUNT)
        sdk_session = self.sdk("get-caller-identity", keys=(sdk_assumed["AccessKeyId"],
                                                             sdk_assumed["SecretAccessKey"],
                                                             sdk_assumed["SessionToken"]))
        self.assertEqual(sdk_session["Arn"], sdk_assumed["Arn"])

        # A user without sts:AssumeRole is denied, with both clients, and it is audited.
        self.aws("iam", "create-user", "--user-name", "intern")
        intern = self.aws("iam", "create-access-key", "--user-name", "intern")["AccessKey"]
        intern_keys = (intern["AccessKeyId"], intern["SecretAccessKey"])
        err = self.aws("sts", "assume-role", "--role-arn", role, "--role-session-name", "x1",
                       keys=intern_keys, expect_ok=False)
        self.assertIn("AccessDenied", err)
        refused = self.sdk("assume-role", role, "x2", keys=intern_keys)
        self.assertFalse(refused["ok"])
        self.assertEqual(refused["code"], "AccessDenied")
        self.assertTrue([r for r in self.audit() if r["action"] == "sts:AssumeRole"
                         and r["outcome"] == "denied"
                         and r["actor"] == "arn:aws:iam::%s:user/intern" % ACCOUNT])

    def test_forged_deactivated_and_tampered_credentials_are_refused(self):
        key_id, secret = self.deployer()
        wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
        err = self.aws("sts", "get-caller-identity", keys=(key_id, wrong), expect_ok=False)
        self.assertIn("SignatureDoesNotMatch", err)
        self.assertEqual(self.sdk("get-caller-identity", keys=(key_id, wrong))["code"],
                         "SignatureDoesNotMatch")
        err = self.aws("sts", "get-caller-identity", keys=("AKIAAAAAAAAAAAAAAAAA", secret),
                       expect_ok=False)
        self.assertIn("InvalidClientTokenId", err)

        assumed = self.aws("sts", "assume-role", "--role-arn",
                           "arn:aws:iam::%s:role/fn-orders" % ACCOUNT, "--role-session-name", "t1",
                           profile="deployer")["Credentials"]
        token = assumed["SessionToken"]
        i = len(token) // 2
        edited = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
        err = self.aws("sts", "get-caller-identity", expect_ok=False,
                       keys=(assumed["AccessKeyId"], assumed["SecretAccessKey"], edited))
        self.assertIn("InvalidClientTokenId", err)

        # A second key, deactivated: refused at once.
        self.aws("iam", "create-user", "--user-name", "temp")
        temp = self.aws("iam", "create-access-key", "--user-name", "temp")["AccessKey"]
        temp_keys = (temp["AccessKeyId"], temp["SecretAccessKey"])
        self.aws("sts", "get-caller-identity", keys=temp_keys)
        self.aws("iam", "update-access-key", "--user-name", "temp", "--access-key-id",
                 temp["AccessKeyId"], "--status", "Inactive")
        err = self.aws("sts", "get-caller-identity", keys=temp_keys, expect_ok=False)
        self.assertIn("InvalidClientTokenId", err)
        self.assertEqual(self.sdk("get-caller-identity", keys=temp_keys)["code"],
                         "InvalidClientTokenId")

    def moatless(self, *args, profile="moatless", expect=0):
        env = self.env(profile)
        env["MOATLESS_ENDPOINT"] = self.server.url("")
        result = run_cli(*args, env=env)
        self.assertEqual(result.returncode, expect, result.stderr)
        return result

    def test_the_moatless_cli_administers_with_the_same_credentials_file(self):
        policy = os.path.join(self.tmp, "self.json")
        with open(policy, "w") as f:
            json.dump({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["iam:ListAccessKeys", "iam:CreateAccessKey"],
                 "Resource": "arn:aws:iam::%s:user/${aws:username}" % ACCOUNT}]}, f)
        self.assertIn("user/ops", self.moatless("users", "create", "ops", "--tag", "team=ops").stdout)
        self.moatless("users", "attach-policy", "ops", "--policy-file", policy)
        self.assertIn("ops\tarn:aws:iam::%s:user/ops" % ACCOUNT,
                      self.moatless("users", "list").stdout)
        made = self.moatless("keys", "create", "--user", "ops", "--write-profile", "ops")
        key_id = made.stdout.split()[0]
        self.assertTrue(key_id.startswith("AKIA"))
        self.assertNotIn("aws_secret_access_key", made.stdout)
        self.assertEqual(os.stat(self.creds).st_mode & 0o777, 0o600)
        # The new profile works for the CLI and for the aws CLI alike.
        self.assertIn(key_id, self.moatless("keys", "list", profile="ops").stdout)
        self.assertEqual(self.aws("sts", "get-caller-identity", profile="ops")["Arn"],
                         "arn:aws:iam::%s:user/ops" % ACCOUNT)
        denied = self.moatless("users", "create", "mallory", profile="ops", expect=1)
        self.assertIn("AccessDenied", denied.stderr)
        self.moatless("keys", "deactivate", key_id, "--user", "ops")
        self.assertIn("InvalidClientTokenId",
                      self.moatless("keys", "list", profile="ops", expect=1).stderr)
        self.moatless("users", "detach-policy", "ops", "--policy-name", "self")
        self.moatless("users", "delete", "ops")
        self.assertNotIn("user/ops", self.moatless("users", "list").stdout)

    def sign(self, key_id, secret, body, when):
        """A SigV4 header-form request signed at `when` (test-side signer from the stdlib)."""
        amz_date = when.strftime("%Y%m%dT%H%M%SZ")
        date = amz_date[:8]
        host = "%s:%d" % (self.server.host, self.server.port)
        headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8",
                   "host": host, "x-amz-date": amz_date}
        signed = ";".join(sorted(headers))
        canonical = "\n".join(["POST", "/", "",
                               "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers)),
                               signed, hashlib.sha256(body).hexdigest()])
        scope = "%s/local/sts/aws4_request" % date
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        k = ("AWS4" + secret).encode()
        for part in (date, "local", "sts", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                                    "Signature=%s" % (key_id, scope, signed, signature))
        return headers

    def post(self, headers, body):
        request = urllib.request.Request(self.server.url("/"), data=body, method="POST",
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def test_replay_outside_the_skew_window_and_unsigned_requests_are_refused(self):
        key_id, secret = self.deployer()
        body = b"Action=GetCallerIdentity&Version=2011-06-15"
        now = datetime.datetime.now(datetime.timezone.utc)
        status, text = self.post(self.sign(key_id, secret, body, now), body)
        self.assertEqual(status, 200, text)
        self.assertIn("user/deployer", text)
        captured = self.sign(key_id, secret, body, now - datetime.timedelta(minutes=20))
        status, text = self.post(captured, body)
        self.assertEqual(status, 403)
        self.assertIn("<Code>RequestTimeTooSkewed</Code>", text)
        status, text = self.post({"content-type": "application/x-www-form-urlencoded"}, body)
        self.assertEqual(status, 403)
        self.assertIn("<Code>MissingAuthenticationToken</Code>", text)
        self.assertTrue([r for r in self.audit() if r["actor"] == "anonymous"
                         and r["outcome"] == "denied"])

    def test_a_skewed_client_clock_is_refused_with_the_aws_cli(self):
        self.deployer()
        for clock in ("-20m", "+20m"):
            err = self.aws("sts", "get-caller-identity", profile="deployer", clock=clock,
                           expect_ok=False)
            self.assertIn("RequestTimeTooSkewed", err)
        # Within the window, the same client is served.
        self.aws("sts", "get-caller-identity", profile="deployer", clock="-10m")
        skewed = [r for r in self.audit() if r["reason"].startswith("RequestTimeTooSkewed")]
        self.assertGreaterEqual(len(skewed), 2)
        self.assertEqual(skewed[-1]["outcome"], "denied")

    def test_an_expired_session_is_refused_with_the_aws_cli_and_the_javascript_sdk(self):
        # A server of its own whose clock the test moves: libfaketime rereads the offset file on
        # every clock read.
        data_dir = os.path.join(self.tmp, "expiry")
        creds = os.path.join(self.tmp, "expiry-credentials")
        self.assertEqual(run_cli("init", "--data-dir", data_dir, "--credentials-file",
                                 creds).returncode, 0)
        offset = os.path.join(self.tmp, "expiry-offset")
        with open(offset, "w") as f:
            f.write("+0\n")
        server = Server(data_dir=data_dir, env={"LD_PRELOAD": FAKETIME_LIB,
                                                "FAKETIME_TIMESTAMP_FILE": offset,
                                                "FAKETIME_NO_CACHE": "1"})
        try:
            root_keys = self.profile_keys("moatless", creds)
            issued = self.aws("sts", "get-session-token", "--duration-seconds", "900",
                              keys=root_keys, server=server)["Credentials"]
            session = (issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"])
            self.aws("sts", "get-caller-identity", keys=session, server=server)
            # An hour later, for the server and the clients alike: no skew, only expiry.
            with open(offset, "w") as f:
                f.write("+1h\n")
            err = self.aws("sts", "get-caller-identity", keys=session, server=server,
                           clock="+1h", expect_ok=False)
            self.assertIn("ExpiredToken", err)
            self.assertEqual(self.sdk("get-caller-identity", keys=session, server=server,
                                      clock="+1h")["code"], "ExpiredToken")
            # Long-term credentials still work at that time.
            self.aws("sts", "get-caller-identity", keys=root_keys, server=server, clock="+1h")
        finally:
            server.stop()
        expired = [r for r in self.audit(data_dir)
                   if r["actor"] == "access-key:" + issued["AccessKeyId"]
                   and r["reason"].startswith("ExpiredToken")]
        self.assertEqual(len(expired), 2, expired)
        self.assertEqual({r["outcome"] for r in expired}, {"denied"})


if __name__ == "__main__":
    harness.main()
