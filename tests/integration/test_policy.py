"""`moatless policy check` and `moatless policy simulate` on real policy files: findings, decisions,
explanations, --json, and the exit codes scripts rely on (0 ok/allowed, 1 findings/denied, 2 usage).
"""
import json
import os
import shutil
import tempfile
import unittest

import harness
from harness import run_cli

ACCOUNT = "111122223333"
USER = "arn:aws:iam::%s:user/alice" % ACCOUNT
SESSION = "arn:aws:sts::%s:assumed-role/orders-fn/session-1" % ACCOUNT
SECRET = "arn:aws:secretsmanager:us-east-1:%s:secret:orders/db-AbCdEf" % ACCOUNT
OBJECT = "arn:aws:s3:::orders-bucket/reports/2026.csv"


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


ROLE = doc(
    {"Sid": "ReadReports", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
     "Resource": ["arn:aws:s3:::orders-bucket", "arn:aws:s3:::orders-bucket/*"]},
    {"Sid": "ReadDbSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
     "Resource": "arn:aws:secretsmanager:us-east-1:%s:secret:orders/*" % ACCOUNT},
    {"Sid": "OfficeOnly", "Effect": "Allow", "Action": "s3:PutObject",
     "Resource": "arn:aws:s3:::orders-bucket/*",
     "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}},
)
DENY_SECRETS = doc(
    {"Sid": "NoSecrets", "Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*"})
BOUNDARY_S3_ONLY = doc(
    {"Sid": "S3Only", "Effect": "Allow", "Action": "s3:*", "Resource": "*"})
WILDCARD_SERVICE = doc(
    {"Sid": "Ok", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
    {"Sid": "AnyService", "Effect": "Allow", "Action": "s3:GetObject",
     "Resource": "arn:aws:*:::orders-bucket/*"},
)
UNKNOWN_OPERATOR = doc(
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
    {"Sid": "Typo", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
     "Condition": {"StringEqualz": {"aws:username": "alice"}}},
)
RESOURCE_POLICY_WITHOUT_PRINCIPAL = doc(
    {"Sid": "NoPrincipal", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})


class PolicyTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="moatless-policy-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, name, content):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content, indent=2))
        return path

    def simulate(self, *args):
        return run_cli("policy", "simulate", *args)

    # --- check ---------------------------------------------------------------------------------

    def test_check_valid_files_ok_exit_0(self):
        role = self.write("role.json", ROLE)
        boundary = self.write("boundary.json", BOUNDARY_S3_ONLY)
        result = run_cli("policy", "check", role, boundary)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("%s: OK" % role, result.stdout)
        self.assertIn("%s: OK" % boundary, result.stdout)
        self.assertIn("3 statements", result.stdout)

    def test_check_wildcard_service_segment_names_statement(self):
        path = self.write("wild.json", WILDCARD_SERVICE)
        result = run_cli("policy", "check", path)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(path, result.stdout)
        self.assertIn('statement 1 (Sid "AnyService")', result.stdout)
        self.assertIn("Resource", result.stdout)
        self.assertIn("wildcard service segment", result.stdout)
        self.assertNotIn(": OK", result.stdout)

    def test_check_unknown_operator_names_statement(self):
        path = self.write("typo.json", UNKNOWN_OPERATOR)
        result = run_cli("policy", "check", path)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn('statement 1 (Sid "Typo")', result.stdout)
        self.assertIn('unknown condition operator "StringEqualz"', result.stdout)

    def test_check_json_findings(self):
        good = self.write("role.json", ROLE)
        wild = self.write("wild.json", WILDCARD_SERVICE)
        typo = self.write("typo.json", UNKNOWN_OPERATOR)
        result = run_cli("policy", "check", "--json", good, wild, typo)
        self.assertEqual(result.returncode, 1, result.stderr)
        report = json.loads(result.stdout)
        self.assertFalse(report["ok"])
        files = {f["file"]: f for f in report["files"]}
        self.assertTrue(files[good]["ok"])
        self.assertEqual(files[good]["statements"], 3)
        finding = files[wild]["findings"][0]
        self.assertFalse(files[wild]["ok"])
        self.assertEqual((finding["statement"], finding["sid"], finding["element"]),
                         (1, "AnyService", "Resource"))
        finding = files[typo]["findings"][0]
        self.assertEqual((finding["statement"], finding["sid"], finding["element"]),
                         (1, "Typo", "Condition"))
        self.assertEqual(finding["location"], "Condition.StringEqualz.aws:username")
        self.assertIn("StringEqualz", finding["message"])

    def test_check_mixed_files_reports_each(self):
        good = self.write("role.json", ROLE)
        bad = self.write("bad.json", '{"Version": "2012-10-17", "Statement": [')
        result = run_cli("policy", "check", good, bad)
        self.assertEqual(result.returncode, 1)
        self.assertIn("%s: OK" % good, result.stdout)
        self.assertIn("%s: error" % bad, result.stdout)

    def test_check_type_decides_principal_rules(self):
        path = self.write("res.json", RESOURCE_POLICY_WITHOUT_PRINCIPAL)
        self.assertEqual(run_cli("policy", "check", path).returncode, 0)
        result = run_cli("policy", "check", "--type", "resource", path)
        self.assertEqual(result.returncode, 1)
        self.assertIn('statement 0 (Sid "NoPrincipal")', result.stdout)
        self.assertIn("Principal", result.stdout)

    def test_check_unreadable_file_exit_1_naming_it(self):
        missing = os.path.join(self.dir, "missing.json")
        result = run_cli("policy", "check", missing)
        self.assertEqual(result.returncode, 1)
        self.assertIn(missing, result.stdout)
        self.assertIn("cannot read", result.stdout)

    def test_check_directory_and_endless_input_exit_1(self):
        result = run_cli("policy", "check", self.dir)
        self.assertEqual(result.returncode, 1)
        self.assertIn("cannot read %s" % self.dir, result.stdout)
        big = self.write("big.json", " " * (2 << 20))
        result = run_cli("policy", "check", big, "/dev/zero", timeout=20)
        self.assertEqual(result.returncode, 1)
        self.assertIn("%s: larger than" % big, result.stdout)
        self.assertIn("/dev/zero: larger than", result.stdout)

    def test_check_usage_errors_exit_2(self):
        path = self.write("role.json", ROLE)
        self.assertEqual(run_cli("policy", "check").returncode, 2)
        self.assertEqual(run_cli("policy", "check", "--type", "bogus", path).returncode, 2)
        self.assertEqual(run_cli("policy").returncode, 2)
        self.assertEqual(run_cli("policy", "nope").returncode, 2)

    # --- simulate ------------------------------------------------------------------------------

    def test_simulate_allowed_exit_0_names_statement(self):
        role = self.write("role.json", ROLE)
        result = self.simulate("--identity", role, "--principal", USER,
                               "--action", "s3:GetObject", "--resource", OBJECT)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0], "Allowed")
        self.assertIn("is authorized to perform: s3:GetObject", result.stdout)
        self.assertIn('%s: statement 0 (Sid "ReadReports")' % role, result.stdout)

    def test_simulate_explicit_deny_exit_1(self):
        role = self.write("role.json", ROLE)
        deny = self.write("deny.json", DENY_SECRETS)
        result = self.simulate("--identity", role, "--identity", deny, "--principal", USER,
                               "--action", "secretsmanager:GetSecretValue", "--resource", SECRET)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertEqual(result.stdout.splitlines()[0], "ExplicitlyDenied")
        self.assertIn("with an explicit deny in an identity-based policy", result.stdout)
        self.assertIn('%s: statement 0 (Sid "NoSecrets")' % deny, result.stdout)

    def test_simulate_boundary_without_allow_is_implicit_deny(self):
        role = self.write("role.json", ROLE)
        boundary = self.write("boundary.json", BOUNDARY_S3_ONLY)
        args = ["--identity", role, "--boundary", boundary, "--principal", SESSION]
        result = self.simulate(*args, "--action", "secretsmanager:GetSecretValue",
                               "--resource", SECRET)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertEqual(result.stdout.splitlines()[0], "ImplicitlyDenied")
        self.assertIn("because no permissions boundary allows the secretsmanager:GetSecretValue "
                      "action", result.stdout)
        # Without the boundary the role alone allows it.
        result = self.simulate("--identity", role, "--principal", SESSION,
                               "--action", "secretsmanager:GetSecretValue", "--resource", SECRET)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        # And what both allow is allowed, naming both statements.
        result = self.simulate(*args, "--action", "s3:GetObject", "--resource", OBJECT, "--json")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        decision = json.loads(result.stdout)
        layers = {(s["layer"], s["policy"], s["sid"]) for s in decision["statements"]}
        self.assertIn(("identity-based policy", role, "ReadReports"), layers)
        self.assertIn(("permissions boundary", boundary, "S3Only"), layers)
        self.assertEqual(decision["request"]["principal_type"], "role-session")
        self.assertEqual(decision["request"]["issuer"],
                         "arn:aws:iam::%s:role/orders-fn" % ACCOUNT)

    def test_simulate_no_policy_is_implicit_deny(self):
        result = self.simulate("--principal", USER, "--action", "s3:GetObject",
                               "--resource", OBJECT)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("because no identity-based policy allows the s3:GetObject action",
                      result.stdout)

    def test_simulate_source_ip_condition(self):
        role = self.write("role.json", ROLE)
        base = ["--identity", role, "--principal", USER, "--action", "s3:PutObject",
                "--resource", OBJECT]
        inside = self.simulate(*base, "--context", "aws:SourceIp=203.0.113.7")
        self.assertEqual(inside.returncode, 0, inside.stdout + inside.stderr)
        self.assertIn('Sid "OfficeOnly"', inside.stdout)
        outside = self.simulate(*base, "--context", "aws:SourceIp=198.51.100.7")
        self.assertEqual(outside.returncode, 1, outside.stdout + outside.stderr)
        self.assertEqual(outside.stdout.splitlines()[0], "ImplicitlyDenied")
        absent = self.simulate(*base)
        self.assertEqual(absent.returncode, 1, absent.stdout + absent.stderr)
        # A value the operator cannot read fails closed and says why.
        broken = self.simulate(*base, "--context", "aws:SourceIp=not-an-ip", "--json")
        self.assertEqual(broken.returncode, 1, broken.stdout + broken.stderr)
        self.assertFalse(json.loads(broken.stdout)["allowed"])

    def test_simulate_multivalued_context(self):
        tagging = self.write("tagging.json", doc(
            {"Sid": "OnlyTeamTags", "Effect": "Allow", "Action": "s3:PutObjectTagging",
             "Resource": "*",
             "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "cost"]},
                           "Null": {"aws:TagKeys": "false"}}}))
        base = ["--identity", tagging, "--principal", USER, "--action", "s3:PutObjectTagging",
                "--resource", OBJECT]
        ok = self.simulate(*base, "--context", "aws:TagKeys=team", "--context", "aws:TagKeys=cost")
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        bad = self.simulate(*base, "--context", "aws:TagKeys=team", "--context",
                            "aws:TagKeys=owner")
        self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)
        one = self.simulate(*base, "--context", "aws:TagKeys=team", "--multi", "aws:TagKeys")
        self.assertEqual(one.returncode, 0, one.stdout + one.stderr)

    def test_simulate_policy_variable_from_context(self):
        home = self.write("home.json", doc(
            {"Sid": "Home", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::home/${aws:username}/*"}))
        base = ["--identity", home, "--principal", USER, "--action", "s3:GetObject", "--resource"]
        alice = ["--context", "aws:username=alice"]
        own = self.simulate(*base, "arn:aws:s3:::home/alice/a.txt", *alice)
        self.assertEqual(own.returncode, 0, own.stdout + own.stderr)
        other = self.simulate(*base, "arn:aws:s3:::home/bob/a.txt", *alice)
        self.assertEqual(other.returncode, 1, other.stdout + other.stderr)
        unset = self.simulate(*base, "arn:aws:s3:::home/alice/a.txt")
        self.assertEqual(unset.returncode, 1, unset.stdout + unset.stderr)

    def test_simulate_json_has_decision(self):
        role = self.write("role.json", ROLE)
        deny = self.write("deny.json", DENY_SECRETS)
        result = self.simulate("--identity", role, "--identity", deny, "--principal", USER,
                               "--action", "secretsmanager:GetSecretValue", "--resource", SECRET,
                               "--json")
        self.assertEqual(result.returncode, 1)
        decision = json.loads(result.stdout)
        self.assertEqual(decision["decision"], "ExplicitlyDenied")
        self.assertFalse(decision["allowed"])
        self.assertIn("explicit deny", decision["message"])
        self.assertEqual(decision["statements"],
                         [{"layer": "identity-based policy", "policy": deny, "statement": 0,
                           "sid": "NoSecrets"}])
        self.assertIsNone(decision["missing_allow"])
        self.assertEqual(decision["request"]["principal_type"], "user")
        self.assertEqual(decision["request"]["principal_account"], ACCOUNT)

        result = self.simulate("--identity", role, "--principal", USER, "--action",
                               "s3:DeleteObject", "--resource", OBJECT, "--json")
        self.assertEqual(result.returncode, 1)
        decision = json.loads(result.stdout)
        self.assertEqual(decision["decision"], "ImplicitlyDenied")
        self.assertEqual(decision["missing_allow"], "identity-based policy")

    def test_simulate_guardrail_and_resource_policy(self):
        role = self.write("role.json", ROLE)
        guard = self.write("guard.json", doc(
            {"Sid": "NoS3", "Effect": "Deny", "Action": "s3:*", "Resource": "*"},
            {"Sid": "Rest", "Effect": "Allow", "Action": "*", "Resource": "*"}))
        result = self.simulate("--identity", role, "--guardrail", guard, "--principal", USER,
                               "--action", "s3:GetObject", "--resource", OBJECT)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("explicit deny in a guardrail policy", result.stdout)
        # A same-account resource policy naming the user grants on its own.
        bucket = self.write("bucket.json", doc(
            {"Sid": "Alice", "Effect": "Allow", "Principal": {"AWS": USER},
             "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::orders-bucket/*"}))
        result = self.simulate("--resource-policy", bucket, "--principal", USER,
                               "--action", "s3:DeleteObject", "--resource", OBJECT)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn('resource-based policy %s: statement 0 (Sid "Alice")' % bucket,
                      result.stdout)

    def test_simulate_cross_account_and_anonymous(self):
        everything = self.write("all.json", doc({"Effect": "Allow", "Action": "*",
                                                  "Resource": "*"}))
        other = "arn:aws:secretsmanager:us-east-1:444455556666:secret:shared-AbCdEf"
        result = self.simulate("--identity", everything, "--principal", USER,
                               "--action", "secretsmanager:GetSecretValue", "--resource", other,
                               "--json")
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        decision = json.loads(result.stdout)
        self.assertEqual(decision["missing_allow"], "resource-based policy")
        self.assertEqual(decision["request"]["resource_account"], "444455556666")
        # The same resource said to be in the caller's account is allowed by the identity policy.
        result = self.simulate("--identity", everything, "--principal", USER,
                               "--action", "secretsmanager:GetSecretValue", "--resource", other,
                               "--resource-account", ACCOUNT)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        public = self.write("public.json", doc(
            {"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::site/*"}))
        args = ["--principal-type", "anonymous", "--action", "s3:GetObject", "--resource"]
        result = self.simulate("--resource-policy", public, *args, "arn:aws:s3:::site/index.html")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("User: anonymous is authorized", result.stdout)
        result = self.simulate("--resource-policy", public, *args, "arn:aws:s3:::other/x")
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)

    def test_simulate_bad_policy_file_exit_1_with_parser_message(self):
        typo = self.write("typo.json", UNKNOWN_OPERATOR)
        result = self.simulate("--identity", typo, "--principal", USER,
                               "--action", "s3:GetObject", "--resource", OBJECT)
        self.assertEqual(result.returncode, 1)
        self.assertIn(typo, result.stderr)
        self.assertIn('statement 1 (Sid "Typo")', result.stderr)
        self.assertIn("unknown condition operator", result.stderr)
        self.assertEqual(result.stdout, "")
        missing = os.path.join(self.dir, "missing.json")
        result = self.simulate("--identity", missing, "--principal", USER,
                               "--action", "s3:GetObject", "--resource", OBJECT)
        self.assertEqual(result.returncode, 1)
        self.assertIn(missing, result.stderr)

    def test_simulate_usage_errors_exit_2(self):
        role = self.write("role.json", ROLE)
        base = ["--identity", role, "--principal", USER, "--action", "s3:GetObject",
                "--resource", OBJECT]
        self.assertEqual(self.simulate(*base, "--context", "no-equals-sign").returncode, 2)
        self.assertEqual(self.simulate(*base, "--principal-type", "wizard").returncode, 2)
        self.assertEqual(self.simulate("--identity", role, "--principal", USER,
                                       "--resource", OBJECT).returncode, 2)
        self.assertEqual(self.simulate("--identity", role, "--action", "s3:GetObject",
                                       "--resource", OBJECT).returncode, 2)
        self.assertEqual(self.simulate("--identity", role, "--principal", "alice",
                                       "--action", "s3:GetObject",
                                       "--resource", OBJECT).returncode, 2)


if __name__ == "__main__":
    harness.main()
