"""docs/moatless.schema.json: the JSON Schema editors use to check moatless.yaml as it is typed.

The schema must accept what the manifest parser (src/manifest/manifest.cc) accepts and refuse what
it refuses, as far as a JSON Schema can say it. This test needs no daemon: it validates manifests
written in YAML against the schema with python3-jsonschema and python3-yaml.
"""
import json
import os
import re
import sys
import unittest

try:
    import yaml
    from jsonschema import Draft202012Validator

    IMPORT_ERROR = None
except ImportError as e:  # reported as a failure by setUpClass, never skipped
    IMPORT_ERROR = e

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SCHEMA = os.path.join(ROOT, "docs", "moatless.schema.json")
EXAMPLE = os.path.normpath(os.path.join(HERE, "..", "..", "examples", "notes", "moatless.yaml"))
PARSER_TEST = os.path.join(ROOT, "src", "manifest", "manifest_test.cc")



def parser_example():
    """kNotes of src/manifest/manifest_test.cc: the example manifest the parser accepts whole (read
    from there, so that the schema is held to what the parser's own test accepts)."""
    with open(PARSER_TEST, encoding="utf-8") as f:
        match = re.search(r'kNotes = R"\((.*?)\)";', f.read(), re.S)
    if match is None:
        raise AssertionError("kNotes not found in " + PARSER_TEST)
    return match.group(1)


NOTES = parser_example()


def edit(old, new, text=NOTES):
    """The example with one piece of text replaced (it must occur)."""
    assert old in text, old
    return text.replace(old, new, 1)


# Manifests the parser refuses: (what is wrong, the manifest, where the schema must say so).
INVALID = [
    ("an unknown key", edit("    memory: 256", "    memroy: 256"),
     ["functions", "create-note"]),
    ("memory below 128 MB", edit("memory: 256", "memory: 64"),
     ["functions", "create-note", "memory"]),
    ("memory that is not an integer", edit("memory: 256", "memory: lots"),
     ["functions", "create-note", "memory"]),
    ("memory written as a string", edit("memory: 256", 'memory: "256"'),
     ["functions", "create-note", "memory"]),
    ("a timeout over 900 s", edit("timeout: 10", "timeout: 901"),
     ["functions", "create-note", "timeout"]),
    ("reserved concurrency over 1000", edit("concurrency: 20", "concurrency: 5000"),
     ["functions", "create-note", "concurrency"]),
    ("a route without auth", edit("    auth: none\n", ""), ["routes", 2]),
    ("auth naming two kinds", edit("auth: { api_key: true, usage_plan: basic }",
                                   "auth: { api_key: true, jwt: users }"),
     ["routes", 1, "auth"]),
    ("auth naming no kind", edit("auth: { api_key: true, usage_plan: basic }",
                                 "auth: { usage_plan: basic }"),
     ["routes", 1, "auth"]),
    ("a string auth other than none or iam", edit("auth: none", "auth: public"),
     ["routes", 2, "auth"]),
    ("scopes without jwt", edit("auth: { api_key: true, usage_plan: basic }",
                                "auth: { api_key: true, scopes: [a] }"),
     ["routes", 1, "auth"]),
    ("an unknown runtime", edit("runtime: python3", "runtime: ruby"),
     ["functions", "get-note", "runtime"]),
    ("an app name with a capital", edit("app: notes", "app: Notes"), ["app"]),
    ("an app name with '_'", edit("app: notes", "app: my_notes"), ["app"]),
    ("an app name over 32 characters", edit("app: notes", "app: " + "a" * 33), ["app"]),
    ("a stage name with '/'", edit("stage: dev", "stage: dev/x"), ["stage"]),
    ("a duration with an unknown unit", edit("every: 30d", "every: 30y"),
     ["secrets", "db", "rotation", "every"]),
    ("a rotation more often than every 4 hours", edit("every: 30d", "every: 3h"),
     ["secrets", "db", "rotation", "every"]),
    ("an alert held for more than a day", edit("for: 5m", "for: 2d"), ["alerts", 0, "for"]),
    ("an alert window under 10 s", edit("for: 5m", "for: 5m, window: 5s"),
     ["alerts", 0, "window"]),
    ("a duration written as a number", edit("for: 5m", "for: 300"), ["alerts", 0, "for"]),
    ("no handler for nodejs20", edit("    handler: index.handler\n    code: functions/health",
                                     "    code: functions/health"),
     ["functions", "health"]),
    ("a handler without a '.'", edit("handler: app.handler", "handler: handler"),
     ["functions", "get-note"]),
    ("no code directory", edit("    code: functions/get-note\n", ""), ["functions", "get-note"]),
    ("a code directory outside the app", edit("code: functions/health", "code: ../health"),
     ["functions", "health", "code"]),
    ("an absolute code directory", edit("code: functions/health", "code: /etc"),
     ["functions", "health", "code"]),
    ("a route without a method", edit("route: GET /health", "route: /health"),
     ["routes", 2, "route"]),
    ("a route with a lower-case method", edit("route: GET /health", "route: get /health"),
     ["routes", 2, "route"]),
    ("a route path ending in '/'", edit("route: GET /health", "route: GET /health/"),
     ["routes", 2, "route"]),
    ("a greedy parameter before the end", edit("route: GET /health", "route: GET /{p+}/x"),
     ["routes", 2, "route"]),
    ("a policy Effect other than Allow or Deny", edit("- Effect: Allow\n        Action: secrets",
                                                      "- Effect: Maybe\n        Action: secrets"),
     ["functions", "create-note", "policy", 0, "Effect"]),
    ("a statement without Action", edit("Action: secretsmanager:GetSecretValue",
                                        "Actions: secretsmanager:GetSecretValue"),
     ["functions", "create-note", "policy", 0]),
    ("a resource that is not an ARN or short form", edit("Resource: secret:db", "Resource: db"),
     ["functions", "create-note", "policy", 0, "Resource"]),
    ("a Principal in a function's policy",
     edit("Resource: secret:db", "Resource: secret:db\n        Principal: '*'"),
     ["functions", "create-note", "policy", 0]),
    ("an unknown condition operator",
     edit("Resource: secret:db",
          "Resource: secret:db\n        Condition: { StringEqualz: { aws:SourceIp: x } }"),
     ["functions", "create-note", "policy", 0, "Condition"]),
    ("a reserved environment variable", edit("LOG_LEVEL: info", "AWS_REGION: eu"),
     ["functions", "create-note", "environment"]),
    ("an egress entry with a path", edit("egress: []", "egress: [https://example.com/x]"),
     ["functions", "create-note", "egress", 0]),
    ("an egress entry with scheme * and no port", edit("egress: []", "egress: ['*://example.com']"),
     ["functions", "create-note", "egress", 0]),
    ("a jwt authorizer with an http issuer", edit('"https://id.example.com"',
                                                  '"http://id.example.com"'),
     ["authorizers", "users", "issuer"]),
    ("a jwt authorizer without audience", edit(" audience: [notes-api],", ""),
     ["authorizers", "users"]),
    ("a jwt authorizer with a function's key", edit("jwks: keys/jwks.json", "ttl: 5m"),
     ["authorizers", "users"]),
    ("an unknown authorizer type", edit("type: jwt", "type: oauth"),
     ["authorizers", "users", "type"]),
    ("an unknown quota period", edit("period: day", "period: year"),
     ["usage_plans", "basic", "quota", "period"]),
    ("a burst of 0", edit("burst: 20", "burst: 0"), ["usage_plans", "basic", "burst"]),
    ("an unknown metric", edit("metric: errors", "metric: latency"),
     ["alerts", 0, "metric"]),
    ("a secret name with a space", edit("  db: {", "  my db: {"), ["secrets"]),
    ("a function name with a '.'", edit("  health:\n", "  health.v2:\n"), ["functions"]),
    ("an unknown top-level key", NOTES + "queues: {}\n", []),
    ("no app", edit("app: notes\n", ""), []),
]

# Manifests the parser accepts that differ from the example: the schema must accept them too.
VALID = [
    ("a provided runtime without handler",
     edit("    runtime: nodejs20\n    handler: index.handler\n    code: functions/health",
          "    runtime: provided\n    code: functions/health")),
    ("runtime aliases", edit("runtime: python3", "runtime: python3.12")),
    ("nodejs20.x", edit("runtime: nodejs20\n    handler: index.handler\n    code: functions/health",
                        "runtime: nodejs20.x\n    handler: index.handler\n    code: functions/health")),
    ("auth: iam", edit("auth: none", "auth: iam")),
    ("auth: { iam: true }", edit("auth: none", "auth: { iam: true }")),
    ("auth by a function authorizer",
     edit("authorizers:\n", "authorizers:\n  gate: { type: function, function: health, ttl: 1h }\n",
          edit("auth: none", "auth: { authorizer: gate }"))),
    ("a secret without settings", edit("secrets:\n", "secrets:\n  api-token:\n  other/key: {}\n")),
    ("a greedy route parameter", edit("route: GET /health", "route: ANY /files/{path+}")),
    ("the root path", edit("route: GET /health", "route: GET /")),
    ("environment values that YAML reads as numbers and booleans",
     edit("LOG_LEVEL: info", "LOG_LEVEL: info, PORT: 8080, DEBUG: true")),
    ("egress entries", edit("egress: []", "egress: [https://api.example.com, 'https://*.example.net:443', "
                            "'*://10.0.0.0/8:8000-8100', 'http://[2001:db8::1]:8080']")),
    ("a single egress entry", edit("egress: []", "egress: https://api.example.com")),
    ("every policy element", edit(
        "      - Effect: Allow\n        Action: lambda:InvokeFunction\n        Resource: [function:get-note]",
        "      - Sid: Invoke\n        Effect: Deny\n        NotAction: [lambda:Invoke*, 'sqs:*']\n"
        "        NotResource: ['arn:aws:s3:::bucket/*', queue:jobs, '*']\n"
        "        Condition:\n          StringEqualsIfExists: { aws:PrincipalTag/team: [a, b] }\n"
        "          ForAnyValue:StringLike: { aws:TagKeys: 'x*' }\n"
        "          bool: { aws:SecureTransport: true }\n"
        "          NumericLessThan: { s3:max-keys: 10 }")),
    ("an empty policy", edit(NOTES[NOTES.index("    policy:\n"):NOTES.index("  get-note:\n")],
                             "    policy: []\n")),
    ("durations at their limits", edit("every: 30d", "every: 1000d", edit("for: 5m", "for: 86400s"))),
    ("no optional sections", "app: notes\nstage: dev\n"),
]


def flatten(errors):
    for error in errors:
        yield error
        yield from flatten(error.context)


class ManifestSchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if IMPORT_ERROR is not None:
            raise AssertionError(
                f"cannot import jsonschema or yaml ({IMPORT_ERROR}): run scripts/install-deps "
                "(it installs python3-jsonschema and python3-yaml)")
        with open(SCHEMA, encoding="utf-8") as f:
            cls.schema = json.load(f)
        cls.validator = Draft202012Validator(cls.schema)

    def errors(self, text):
        return list(self.validator.iter_errors(yaml.safe_load(text)))

    def assertValid(self, text, what):
        errors = self.errors(text)
        self.assertEqual(errors, [], what + ":\n" + "\n".join(
            f"  {'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors))

    def test_the_schema_is_valid_draft_2020_12(self):
        self.assertEqual(self.schema["$schema"], "https://json-schema.org/draft/2020-12/schema")
        Draft202012Validator.check_schema(self.schema)

    def test_every_property_is_described(self):
        # Editors show descriptions on hover and in completions.
        missing = []

        def walk(node, path):
            if isinstance(node, dict):
                for name, sub in node.get("properties", {}).items():
                    if "description" not in sub:
                        missing.append(path + "/" + name)
                for key, sub in node.items():
                    if key not in ("if", "else"):  # constraints on properties described elsewhere
                        walk(sub, path + "/" + key)
            elif isinstance(node, list):
                for i, sub in enumerate(node):
                    walk(sub, f"{path}/{i}")

        walk(self.schema, "#")
        self.assertEqual(missing, [])
        self.assertIn("cannot check", self.schema["description"])

    def test_the_example_manifest_validates(self):
        self.assertValid(NOTES, "kNotes")

    def test_manifests_the_parser_accepts_validate(self):
        for what, text in VALID:
            with self.subTest(what):
                self.assertValid(text, what)

    def test_manifests_the_parser_refuses_fail_where_they_are_wrong(self):
        for what, text, path in INVALID:
            with self.subTest(what):
                errors = self.errors(text)
                self.assertTrue(errors, f"{what}: the schema accepts it")
                # Under anyOf/oneOf the branches' own errors say where the value is wrong.
                paths = [list(e.absolute_path) for e in flatten(errors)]
                self.assertTrue(any(p[:len(path)] == path for p in paths),
                                f"{what}: expected an error at {path}, got {paths}")

    def test_the_notes_example_app_validates(self):
        if not os.path.exists(EXAMPLE):
            self.skipTest(f"{EXAMPLE} does not exist yet: nothing to validate")
        with open(EXAMPLE, encoding="utf-8") as f:
            self.assertValid(f.read(), EXAMPLE)


def main():
    # ctest passes --moatless PATH to every integration test; this one needs no binary.
    argv = list(sys.argv)
    if "--moatless" in argv:
        i = argv.index("--moatless")
        del argv[i:i + 2]
    unittest.main(argv=argv, verbosity=2)


if __name__ == "__main__":
    main()
