"""The public gateway end to end (src/gateway/gateway.h) with real clients against the real daemon:
examples/notes and the test app tests/integration/apps/gateway deployed with `moatless deploy`,
then called through `moatless serve --gateway-listen` with curl, raw sockets, Node's fetch with
JWTs minted by the `jose` library, and requests signed by the AWS SDK's SigV4 signer
(tests/aws_clients/gateway.mjs):

- JWT routes: a valid RS256 token reaches the function; an expired, not yet valid, wrongly issued,
  wrongly addressed, unsigned, HS256-with-the-public-key, unknown-key, re-signed or tampered token,
  or none, is refused with 401 (403 for a missing scope) and never reaches it; the leeway setting;
- API keys made by `moatless apikeys`: 401 without, 403 wrong / disabled / another app's / on
  another plan / deleted; usage plans: 429 over the rate (then recovery) and over the daily quota,
  whose count survives a restart of the daemon;
- authorizer functions: identity sources, their context in the event, the decision cache, deny,
  a crashing authorizer (500, audited), IAM-policy responses evaluated per route;
- IAM (SigV4) routes: unsigned, allowed and not-allowed callers;
- payload 2.0 both ways, binary bodies, function errors (502), the integration timeout (504);
- path tricks (encoded dot segments, overlong UTF-8, double encoding), 404 / 405, CORS preflight;
- the WAF: SQL injection, XSS, path traversal, command and CRLF injection in the query, form and
  JSON bodies, User-Agent and cookies refused with 403 (audited with their rule ids), benign JSON
  API requests passing, detect mode, exclusions, missing or broken rules stopping start-up;
- request validation: required query and header parameters, their schemas, the JSON body schema
  (with a pattern that would backtrack exponentially elsewhere);
- the access log: one line per request, with API key ids but never a key or a token.

"Never reached the function" is proven with moatless_function_invocations_total.

Functions run in sandboxes; on a host that cannot isolate them the daemon says "functions cannot
run on this host" and every test here is skipped with that message."""
import configparser
import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import Server, run_cli

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLIENTS = os.path.join(os.path.dirname(HERE), "aws_clients")
NOTES = os.path.join(ROOT, "examples", "notes")
GW_APP = os.path.join(HERE, "apps", "gateway")
ACCOUNT = "000000000000"
REGION = "local"
INTEGRATION_TIMEOUT_S = 4  # the slow function answers after 8 s
NOTES_ISSUER, NOTES_AUDIENCE = "https://id.example.com", "notes-api"
GW_ISSUER, GW_AUDIENCE = "https://issuer.gw.test", "gw-api"
ORIGIN = "https://app.gw.test"
CTX = {}


def npm_clients_ready():
    wanted = [("jose",), ("@smithy", "signature-v4"), ("@aws-sdk", "client-lambda")]
    if all(os.path.isdir(os.path.join(CLIENTS, "node_modules", *p)) for p in wanted):
        return
    result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                            cwd=CLIENTS, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise AssertionError("npm ci in %s failed:\n%s" % (CLIENTS, result.stderr[-4000:]))


def node_client(*args, env=None):
    result = subprocess.run(["node", os.path.join(CLIENTS, "gateway.mjs"), *args],
                            capture_output=True, text=True, timeout=120, cwd=CLIENTS,
                            env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise AssertionError("gateway.mjs %s failed:\n%s" % (args[0], result.stderr))
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # [(lower-case name, value)] in order
        self.body = body

    def header(self, name):
        values = self.all(name)
        return values[0] if values else None

    def all(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %r %r>" % (self.status, self.headers, self.body[:300])


def parse_response(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    length = [int(v) for k, v in headers if k == "content-length"]
    if length:
        body = body[:length[0]]
    return Response(status, headers, body)


class Deployment:
    """A data directory with its root credentials; a daemon serving it with the gateway on; copies
    of examples/notes and of the test app, with a key pair generated for this run."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="moatless-gateway-")
        os.chmod(self.tmp, 0o711)  # the sandboxes' users traverse it to apps.code_dir
        self.data_dir = os.path.join(self.tmp, "data")
        self.code_dir = os.path.join(self.tmp, "code")
        self.creds = os.path.join(self.tmp, "home", ".aws", "credentials")
        self.server = None
        self.servers = []  # every daemon started, for the logs
        init = run_cli("init", "--data-dir", self.data_dir, "--credentials-file", self.creds)
        if init.returncode != 0:
            raise AssertionError("moatless init failed: " + init.stderr)
        self.keys = os.path.join(self.tmp, "keys")
        os.makedirs(self.keys, mode=0o700)
        jwks = node_client("keygen", self.keys)[0]
        self.notes = os.path.join(self.tmp, "notes")
        shutil.copytree(NOTES, self.notes, ignore=shutil.ignore_patterns("node_modules", "keys"))
        os.makedirs(os.path.join(self.notes, "keys"))
        shutil.copy(os.path.join(self.keys, "jwks.json"),
                    os.path.join(self.notes, "keys", "jwks.json"))
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=os.path.join(self.notes, "functions", "api"), check=True,
                       capture_output=True, timeout=300)
        # The test app takes its JWK Set inline.
        self.gw = os.path.join(self.tmp, "gw")
        shutil.copytree(GW_APP, self.gw)
        manifest = os.path.join(self.gw, "moatless.yaml")
        with open(manifest) as f:
            text = f.read()
        assert "jwks: keys/jwks.json" in text
        with open(manifest, "w") as f:
            f.write(text.replace("jwks: keys/jwks.json", "jwks: " + json.dumps(jwks)))

    def start(self):
        self.server = Server("--apps.code-dir", self.code_dir, "--gateway-listen", "127.0.0.1:0",
                             "--gateway.integration-timeout", "%ds" % INTEGRATION_TIMEOUT_S,
                             data_dir=self.data_dir)
        self.servers.append(self.server)
        refused = self.server.functions_refused()
        if refused is not None:
            self.cleanup()
            raise unittest.SkipTest("functions cannot run on this host: %s" % refused)
        record = self.server.wait_for_log(lambda r: r.get("msg") == "listening"
                                          and r.get("listener") == "gateway")
        host, _, port = record["address"].rpartition(":")
        self.gateway = (host.strip("[]"), int(port))

    def restart(self):
        self.assert_stopped(self.server.stop())
        self.start()

    @staticmethod
    def assert_stopped(code):
        if code != 0:
            raise AssertionError("moatless exited with %s" % code)

    def log_records(self):
        out = []
        for server in self.servers:
            out.extend(server.records())
        return out

    def log_text(self):
        return "\n".join("\n".join(server.lines) for server in self.servers)

    def cleanup(self):
        for server in self.servers:
            server.cleanup()
        subprocess.run(["rm", "-rf", self.tmp], check=False)


def setUpModule():
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise AssertionError("node and npm are required: scripts/install-deps installs them")
    if shutil.which("curl") is None:
        raise AssertionError("curl is required: scripts/install-deps installs it")
    npm_clients_ready()
    dep = Deployment()
    CTX["dep"] = dep
    unittest.addModuleCleanup(dep.cleanup)  # also when what follows fails
    CTX["never_logged"] = set()  # API key values and tokens: never in the daemon's output
    # (request id, API key id or None, status, what): each has one access-log line.
    CTX["logged"] = []
    dep.start()
    for app in (dep.notes, dep.gw):
        out = json.loads(moatless("deploy", "--dir", app, "--yes", "--json").stdout)
        if out["Version"] != 1:
            raise AssertionError("unexpected deployment: %s" % out)
    # get-note reads it (test_deploy.py shows it without).
    moatless("secrets", "put", "dev/notes/db", "--from-stdin",
             stdin=json.dumps({"host": "db.internal", "password": "pw"}))


def cli_env():
    dep = CTX["dep"]
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": dep.tmp,
            "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": dep.creds,
            "AWS_REGION": REGION, "AWS_PROFILE": "moatless",
            "MOATLESS_ENDPOINT": dep.server.url("")}


def moatless(*args, expect=0, stdin=None):
    result = subprocess.run([harness.MOATLESS, *args], capture_output=True, text=True,
                            input=stdin, timeout=180, env=cli_env())
    if expect is not None and result.returncode != expect:
        raise AssertionError("moatless %s exited %d:\n%s\n%s" % (
            " ".join(args), result.returncode, result.stdout, result.stderr))
    return result


class GatewayCase(unittest.TestCase):
    @property
    def dep(self):
        return CTX["dep"]

    def moatless(self, *args, expect=0):
        return moatless(*args, expect=expect)

    # ---- the gateway ----

    def url(self, path):
        return "http://%s:%d%s" % (self.dep.gateway[0], self.dep.gateway[1], path)

    def request(self, method, target, headers=(), body=b"", key_id=None):
        """One request over a raw socket, sent exactly as given (no normalisation of the target,
        repeated headers kept). Records the request id for the access-log test."""
        host, port = self.dep.gateway
        head = "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n" % (method, target, host,
                                                                           port)
        for name, value in (headers.items() if isinstance(headers, dict) else headers):
            head += "%s: %s\r\n" % (name, value)
        if body:
            head += "Content-Length: %d\r\n" % len(body)
        with socket.create_connection((host, port), timeout=30) as sock:
            sock.sendall(head.encode("latin-1") + b"\r\n" + body)
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        response = parse_response(data)
        if response.header("x-amzn-requestid"):
            CTX["logged"].append((response.header("x-amzn-requestid"), key_id, response.status,
                                  "%s %s -> %d" % (method, target, response.status)))
        return response

    def curl(self, *args):
        """curl -i: the parsed response (the last one, after any 100 Continue)."""
        result = subprocess.run(["curl", "-s", "-i", "--max-time", "30", *args],
                                capture_output=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        data = result.stdout
        while re.match(rb"HTTP/1\.1 1\d\d ", data):  # interim answers (100 Continue)
            data = data.partition(b"\r\n\r\n")[2]
        response = parse_response(data)
        if response.header("x-amzn-requestid"):
            CTX["logged"].append((response.header("x-amzn-requestid"), None, response.status,
                                  "curl %s -> %d" % (args[-1], response.status)))
        return response

    def assertGatewayError(self, response, status, message=None):
        """An answer the gateway wrote itself: {"message": ...} (any message when None)."""
        self.assertEqual(response.status, status, response)
        body = response.json()
        self.assertEqual(list(body), ["message"])
        if message is not None:
            self.assertEqual(body["message"], message)
        self.assertEqual(response.header("content-type"), "application/json")
        self.assertEqual(response.header("x-content-type-options"), "nosniff")
        self.assertIsNone(response.header("server"))

    def assertWafBlocked(self, response):
        """A 403 from the WAF: the request id in the body, no rule ids."""
        self.assertEqual(response.status, 403, response)
        body = response.json()
        self.assertEqual(body, {"message": "Forbidden",
                                "requestId": response.header("x-amzn-requestid")})
        self.assertEqual(response.header("content-type"), "application/json")

    # ---- metrics, audit ----

    def invocations(self):
        """moatless_function_invocations_total summed per function."""
        status, _, body = harness.request(self.dep.server, "GET", "/metrics")
        self.assertEqual(status, 200)
        out = {}
        for m in re.finditer(r'^moatless_function_invocations_total\{([^}]*)\} (\S+)$',
                             body.decode(), re.M):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            out[labels["function"]] = out.get(labels["function"], 0) + float(m.group(2))
        return out

    def sample(self, metric, **labels):
        status, _, body = harness.request(self.dep.server, "GET", "/metrics")
        self.assertEqual(status, 200)
        total = 0.0
        for m in re.finditer(r"^%s\{([^}]*)\} (\S+)$" % re.escape(metric), body.decode(), re.M):
            found = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(m.group(2))
        return total

    def assertInvoked(self, before, **expected):
        """Since `before`, the invocation counters moved by exactly `expected` (function ->
        count), and no other function ran."""
        after = self.invocations()
        changed = {f: after.get(f, 0) - before.get(f, 0) for f in set(after) | set(before)
                   if after.get(f, 0) != before.get(f, 0)}
        self.assertEqual(changed, expected, "function invocations")

    def audit(self):
        with open(os.path.join(self.dep.data_dir, "audit", "audit.log")) as f:
            return [json.loads(line) for line in f if line.strip()]

    # ---- API keys ----

    def create_key(self, app, stage, plan, name):
        out = self.moatless("apikeys", "create", "--app", app, "--stage", stage, "--plan", plan,
                            "--name", name)
        lines = out.stdout.strip().splitlines()
        key_id, value = lines[0].split()[0], lines[-1].strip()
        self.assertTrue(key_id.startswith("key-"), out.stdout)
        self.assertNotIn(value, out.stderr)
        CTX["never_logged"].add(value)
        return key_id, value


class A_NotesTest(GatewayCase):
    """examples/notes as deployed by test_deploy.py, through the gateway."""

    def test_health_is_public(self):
        before = self.invocations()
        response = self.curl(self.url("/notes/dev/health"))
        self.assertEqual(response.status, 200, response)
        self.assertEqual(response.json(), {"ok": True})
        self.assertIsNone(response.header("server"))
        self.assertInvoked(before, notes_dev_health=1)

    def test_jwt_route(self):
        before = self.invocations()
        results = node_client("jwt", json.dumps({
            "url": self.url("/notes/dev/notes"), "method": "POST",
            "body": json.dumps({"title": "t", "body": "hello from jose"}),
            "keys": self.dep.keys, "issuer": NOTES_ISSUER, "audience": NOTES_AUDIENCE,
            "scope": "notes.write", "header": "authorization", "scheme": "Bearer "}))
        by_case = {r["case"]: r for r in results}
        for r in results:
            if r["token"]:
                CTX["never_logged"].add(r["token"])
        self.assertEqual(by_case["valid"]["status"], 201, by_case["valid"])
        created = json.loads(by_case["valid"]["body"])
        self.assertEqual(created["summary"]["words"], 3)
        # The example keeps the default leeway of 30 s.
        self.assertEqual(by_case["expired_10s_ago"]["status"], 201, by_case["expired_10s_ago"])
        expected = {
            "expired": "the token has expired",
            "not_yet_valid": "the token is not valid yet",
            "wrong_issuer": "the token's issuer is not accepted",
            "wrong_audience": "the token's audience is not accepted",
            "bad_signature": "the token's signature is not valid",
            "alg_none": "unsigned tokens are not accepted",
            "hs256_with_public_key": "the token's algorithm is not accepted",
            "unknown_kid": "the token's key is not known",
            "tampered_payload": "the token's signature is not valid",
        }
        for case, description in expected.items():
            with self.subTest(case):
                r = by_case[case]
                self.assertEqual(r["status"], 401, r)
                self.assertEqual(json.loads(r["body"]), {"message": "Unauthorized"})
                self.assertEqual(r["wwwAuthenticate"],
                                 'Bearer error="invalid_token", error_description="%s"'
                                 % description)
        self.assertEqual(by_case["missing_scope"]["status"], 403)
        self.assertEqual(json.loads(by_case["missing_scope"]["body"]), {"message": "Forbidden"})
        self.assertEqual(by_case["missing_scope"]["wwwAuthenticate"],
                         'Bearer error="insufficient_scope", scope="notes.write"')
        self.assertEqual(by_case["no_token"]["status"], 401)
        self.assertEqual(by_case["no_token"]["wwwAuthenticate"], "Bearer")
        self.assertEqual(len(by_case), 2 + len(expected) + 2)
        # Only the two accepted tokens reached create-note (which asked summarize each time).
        self.assertInvoked(before, **{"notes_dev_create-note": 2, "notes_dev_summarize": 2})
        denials = self.sample("moatless_gateway_auth_denials_total", api="notes/dev",
                              route="POST /notes", auth="jwt")
        self.assertGreaterEqual(denials, len(expected) + 2)

    def test_api_key_route(self):
        key_id, key = self.create_key("notes", "dev", "basic", "notes-client")
        listed = json.loads(self.moatless("apikeys", "list", "--app", "notes", "--stage", "dev",
                                          "--json").stdout)
        self.assertIn(key_id, [k["Id"] for k in listed["ApiKeys"]])
        self.assertNotIn(key, json.dumps(listed), "a key's value is shown once, at creation")
        path = "/notes/dev/notes/1"
        before = self.invocations()
        ok = self.request("GET", path, {"x-api-key": key}, key_id=key_id)
        self.assertEqual(ok.status, 200, ok)
        self.assertEqual(ok.json(), {"id": "1", "database": "db.internal"})
        self.assertEqual(ok.header("x-ratelimit-limit"), "10000")
        self.assertEqual(ok.header("x-ratelimit-remaining"), "9999")
        self.assertInvoked(before, **{"notes_dev_get-note": 1})

        before = self.invocations()
        self.assertGatewayError(self.request("GET", path), 401, "Unauthorized")
        wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
        self.assertGatewayError(self.request("GET", path, {"x-api-key": wrong}), 403, "Forbidden")
        self.moatless("apikeys", "disable", "--app", "notes", "--stage", "dev", key_id)
        shown = json.loads(self.moatless("apikeys", "show", "--app", "notes", "--stage", "dev",
                                         key_id, "--json").stdout)
        self.assertFalse(shown["Enabled"])
        self.assertGatewayError(self.request("GET", path, {"x-api-key": key}, key_id=key_id), 403,
                                "Forbidden")
        self.assertInvoked(before)
        self.moatless("apikeys", "enable", "--app", "notes", "--stage", "dev", key_id)
        again = self.request("GET", path, {"x-api-key": key}, key_id=key_id)
        self.assertEqual(again.status, 200, again)
        self.assertInvoked(before, **{"notes_dev_get-note": 1})

        # Another app's key, and a deleted key.
        _, gw_key = self.create_key("gw", "dev", "open", "not-for-notes")
        before = self.invocations()
        self.assertGatewayError(self.request("GET", path, {"x-api-key": gw_key}), 403,
                                "Forbidden")
        self.moatless("apikeys", "delete", "--app", "notes", "--stage", "dev", key_id)
        self.assertGatewayError(self.request("GET", path, {"x-api-key": key}), 403, "Forbidden")
        self.assertInvoked(before)

    def test_unknown_routes_apps_and_methods(self):
        before = self.invocations()
        for target in ("/notes/dev/nope", "/notes/dev/notes/1/more", "/notes/prod/health",
                       "/nope/dev/health", "/notes", "/", "/notes/dev"):
            with self.subTest(target):
                self.assertGatewayError(self.request("GET", target), 404, "Not Found")
        wrong = self.request("GET", "/notes/dev/notes")
        self.assertGatewayError(wrong, 405, "Method Not Allowed")
        self.assertEqual(wrong.header("allow"), "POST")
        wrong = self.request("DELETE", "/notes/dev/health")
        self.assertGatewayError(wrong, 405, "Method Not Allowed")
        self.assertIn("GET", wrong.header("allow"))
        self.assertInvoked(before)
        # The control endpoint's own API is not reachable through the gateway.
        self.assertGatewayError(self.request("GET", "/moatless/v1/apps"), 404, "Not Found")


class B_PayloadTest(GatewayCase):
    """Payload format 2.0 against the echo, binary, fails and slow functions."""

    def test_event_fields_and_structured_response(self):
        before = self.invocations()
        response = self.request(
            "GET", "/gw/dev/echo/abc-1?status=201&a=1&a=2&b=x%20y&c=d+e&flag",
            [("User-Agent", "moatless-it/1.0"), ("X-Multi", "one"), ("X-Multi", "two"),
             ("Cookie", "c1=v1; c2=v2"), ("Cookie", "c3=v3")])
        self.assertEqual(response.status, 201, response)
        self.assertEqual(response.header("x-echo"), "yes")
        self.assertEqual(response.header("content-type"), "application/json")
        self.assertEqual(response.all("set-cookie"),
                         ["session=abc123; Path=/; HttpOnly", "theme=dark; Path=/"])
        self.assertIsNone(response.header("server"))
        event = response.json()
        self.assertEqual(event["version"], "2.0")
        self.assertEqual(event["routeKey"], "GET /echo/{id}")
        self.assertEqual(event["rawPath"], "/echo/abc-1")
        self.assertEqual(event["rawQueryString"], "status=201&a=1&a=2&b=x%20y&c=d+e&flag")
        self.assertEqual(event["queryStringParameters"],
                         {"status": "201", "a": "1,2", "b": "x y", "c": "d e", "flag": ""})
        self.assertEqual(event["pathParameters"], {"id": "abc-1"})
        self.assertEqual(event["cookies"], ["c1=v1", "c2=v2", "c3=v3"])
        headers = event["headers"]
        self.assertEqual(headers["x-multi"], "one,two")
        self.assertEqual(headers["user-agent"], "moatless-it/1.0")
        self.assertNotIn("cookie", headers)
        self.assertTrue(all(k == k.lower() for k in headers), headers)
        self.assertFalse(event["isBase64Encoded"])
        self.assertNotIn("body", event)
        context = event["requestContext"]
        self.assertEqual(context["http"], {"method": "GET", "path": "/echo/abc-1",
                                           "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                                           "userAgent": "moatless-it/1.0"})
        self.assertEqual(context["stage"], "dev")
        self.assertEqual(context["apiId"], "gw-dev")
        self.assertEqual(context["accountId"], ACCOUNT)
        self.assertEqual(context["routeKey"], "GET /echo/{id}")
        self.assertEqual(context["domainName"], "127.0.0.1")
        self.assertEqual(context["requestId"], response.header("x-amzn-requestid"))
        self.assertNotIn("authorizer", context)
        self.assertLess(abs(context["timeEpoch"] / 1000 - time.time()), 60)
        self.assertInvoked(before, gw_dev_echo=1)

    def test_default_route_greedy_route_and_json_body(self):
        body = json.dumps({"a": [1, 2], "s": "caf\u00e9"}).encode()
        response = self.request("POST", "/gw/dev/some/where?x=1",
                                {"Content-Type": "application/json"}, body)
        self.assertEqual(response.status, 200, response)
        event = response.json()
        self.assertEqual(event["routeKey"], "$default")
        self.assertEqual(event["rawPath"], "/some/where")
        self.assertEqual(event["requestContext"]["http"]["method"], "POST")
        self.assertEqual(event["body"], body.decode())
        self.assertFalse(event["isBase64Encoded"])
        self.assertNotIn("pathParameters", event)

        greedy = self.request("DELETE", "/gw/dev/files/a/b%20c/d.txt").json()
        self.assertEqual(greedy["routeKey"], "ANY /files/{path+}")
        self.assertEqual(greedy["pathParameters"], {"path": "a/b c/d.txt"})
        self.assertEqual(greedy["rawPath"], "/files/a/b%20c/d.txt")
        # Exactly the prefix /APP/STAGE selects the API; the root of the stage is $default.
        root = self.request("GET", "/gw/dev").json()
        self.assertEqual((root["routeKey"], root["rawPath"]), ("$default", "/"))

    def test_binary_bodies_both_ways(self):
        payload = os.urandom(2048) + b"\x00\x00\xff\xfe" + bytes(range(256))
        before = self.invocations()
        response = self.request("POST", "/gw/dev/binary",
                                {"Content-Type": "application/octet-stream"}, payload)
        self.assertEqual(response.status, 200, response)
        self.assertEqual(response.header("content-type"), "application/octet-stream")
        self.assertEqual(response.header("x-request-was-base64"), "true")
        self.assertEqual(response.body, payload)
        blob = self.request("GET", "/gw/dev/binary")
        self.assertEqual(blob.body, bytes([0, 1, 2, 0xFF, 0xFE, 0, 0x80, 0x7F]))
        # The same with curl, from a file.
        path = os.path.join(self.dep.tmp, "payload.bin")
        with open(path, "wb") as f:
            f.write(payload)
        curled = self.curl("-H", "Content-Type: application/octet-stream", "--data-binary",
                           "@" + path, self.url("/gw/dev/binary"))
        self.assertEqual(curled.body, payload)
        self.assertInvoked(before, gw_dev_binary=3)

    def test_a_function_error_is_a_generic_502(self):
        before = self.invocations()
        response = self.request("GET", "/gw/dev/fails")
        self.assertGatewayError(response, 502, "Bad Gateway")
        for leak in (b"hunter2", b"internal detail", b"Error", b"stack", b".mjs"):
            self.assertNotIn(leak, response.body)
        self.assertInvoked(before, gw_dev_fails=1)
        self.assertEqual(self.sample("moatless_function_invocations_total",
                                     function="gw_dev_fails", outcome="error"), 1)

    def test_no_answer_within_the_integration_timeout_is_a_504(self):
        before = self.invocations()
        started = time.monotonic()
        response = self.request("GET", "/gw/dev/slow")
        elapsed = time.monotonic() - started
        self.assertGatewayError(response, 504, "Gateway Timeout")
        # Never before the timeout, and before the function finished (it had not been counted).
        self.assertGreaterEqual(elapsed, INTEGRATION_TIMEOUT_S - 0.5)
        self.assertEqual(self.invocations().get("gw_dev_slow", 0), before.get("gw_dev_slow", 0),
                         "the 504 came only once the function had finished")
        # The invocation goes on to its end (8 s): wait for it, so that the other tests' counts
        # are not disturbed.
        deadline = time.monotonic() + 20
        while self.invocations().get("gw_dev_slow", 0) == before.get("gw_dev_slow", 0):
            self.assertLess(time.monotonic(), deadline, "the slow function never finished")
            time.sleep(0.2)
        self.assertInvoked(before, gw_dev_slow=1)


class C_PathTest(GatewayCase):
    """Paths that try to reach another route, another app or a file."""

    REFUSED = [
        "/gw/dev/echo/..%2fadmin",
        "/gw/dev/echo/..%2F..%2Fnotes%2Fdev%2Fhealth",
        "//gw/dev/echo/1",
        "/gw/dev/%2e%2e/x",
        "/gw/dev/%2E%2E/notes/dev/health",
        "/gw/dev/echo/%c0%ae%c0%ae",
        "/gw/dev/files/%c0%ae%c0%ae/%c0%afetc",
        "/gw/dev/files/..%2f..%2fetc%2fpasswd",
        "/gw/dev/files/..%5c..%5cetc%5cpasswd",
        "/gw/dev/files/a/../../../notes/dev/health",
        "/gw/dev/files/.%2e/x",
        "/gw/dev/files/%2e/x",
        "/gw/dev/echo/%00",
        "/gw/dev/echo/%zz",
        "/gw/dev/echo/%ff%fe",
    ]

    def test_tricks_reach_nothing(self):
        before = self.invocations()
        for target in self.REFUSED:
            with self.subTest(target):
                response = self.request("GET", target)
                self.assertGreaterEqual(response.status, 400, response)
                self.assertLess(response.status, 500, response)
                self.assertIsNone(response.header("server"))
        # curl, told not to squash the dot segments itself.
        for path in ("/gw/dev/files/../../notes/dev/health", "/gw/dev/echo/..%2fadmin"):
            with self.subTest(path):
                response = self.curl("--path-as-is", self.url(path))
                self.assertGreaterEqual(response.status, 400, response)
                self.assertLess(response.status, 500, response)
        self.assertInvoked(before)

    def test_double_encoding_is_refused_by_the_waf_or_reaches_the_route_as_literal_text(self):
        before = self.invocations()
        tricky = "/%252e%252e/%252e%252e/etc%252fpasswd"
        self.assertWafBlocked(self.request("GET", "/gw/dev/files" + tricky))
        # Without the WAF, routing decodes once: the route sees the literal text, never "..".
        response = self.request("GET", "/gw/dev/raw" + tricky)
        self.assertEqual(response.status, 200, response)
        event = response.json()
        self.assertEqual(event["routeKey"], "GET /raw/{path+}")
        self.assertEqual(event["rawPath"], "/raw" + tricky)
        self.assertEqual(event["pathParameters"], {"path": "%2e%2e/%2e%2e/etc%2fpasswd"})
        self.assertNotIn("..", json.dumps(event["pathParameters"]))
        self.assertInvoked(before, gw_dev_echo=1)


class D_CorsTest(GatewayCase):
    def preflight(self, origin):
        return self.request("OPTIONS", "/gw/dev/echo/1",
                            {"Origin": origin, "Access-Control-Request-Method": "GET",
                             "Access-Control-Request-Headers": "x-token"})

    def test_preflight_is_answered_without_the_function(self):
        before = self.invocations()
        allowed = self.preflight(ORIGIN)
        self.assertEqual(allowed.status, 204, allowed)
        self.assertEqual(allowed.header("access-control-allow-origin"), ORIGIN)
        self.assertEqual(allowed.header("access-control-allow-methods"), "GET,POST")
        self.assertEqual(allowed.header("access-control-allow-headers"), "content-type,x-token")
        self.assertEqual(allowed.header("access-control-max-age"), "600")
        self.assertEqual(allowed.header("vary"), "Origin")
        self.assertEqual(allowed.body, b"")
        self.assertIsNone(allowed.header("server"))
        other = self.preflight("https://evil.example.com")
        self.assertEqual(other.status, 204, other)
        for name in ("access-control-allow-origin", "access-control-allow-methods",
                     "access-control-allow-credentials"):
            self.assertIsNone(other.header(name), other)
        # A browser's preflight, from curl.
        curled = self.curl("-X", "OPTIONS", "-H", "Origin: " + ORIGIN, "-H",
                           "Access-Control-Request-Method: POST", self.url("/gw/dev/jwt"))
        self.assertEqual(curled.status, 204, curled)
        self.assertEqual(curled.header("access-control-allow-origin"), ORIGIN)
        self.assertInvoked(before)

    def test_actual_requests_carry_the_allowed_origin(self):
        response = self.request("GET", "/gw/dev/echo/1", {"Origin": ORIGIN})
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("access-control-allow-origin"), ORIGIN)
        self.assertEqual(response.header("access-control-expose-headers"), "x-echo")
        other = self.request("GET", "/gw/dev/echo/1", {"Origin": "https://evil.example.com"})
        self.assertEqual(other.status, 200)
        self.assertIsNone(other.header("access-control-allow-origin"))
        # Errors too: a browser can read why it was refused.
        refused = self.request("GET", "/gw/dev/keyed", {"Origin": ORIGIN})
        self.assertGatewayError(refused, 401, "Unauthorized")
        self.assertEqual(refused.header("access-control-allow-origin"), ORIGIN)


class E_GatewayJwtTest(GatewayCase):
    """The test app's JWT authorizer: an inline JWKS, the token in X-Token, no leeway."""

    def test_claims_reach_the_function_and_the_leeway_is_the_manifests(self):
        before = self.invocations()
        results = node_client("jwt", json.dumps({
            "url": self.url("/gw/dev/jwt"), "keys": self.dep.keys, "issuer": GW_ISSUER,
            "audience": GW_AUDIENCE, "scope": "echo.read other", "header": "x-token"}))
        by_case = {r["case"]: r for r in results}
        for r in results:
            if r["token"]:
                CTX["never_logged"].add(r["token"])
        valid = by_case["valid"]
        self.assertEqual(valid["status"], 200, valid)
        event = json.loads(valid["body"])
        jwt = event["requestContext"]["authorizer"]["jwt"]
        self.assertEqual(jwt["claims"]["sub"], "it-user")
        self.assertEqual(jwt["claims"]["iss"], GW_ISSUER)
        self.assertEqual(jwt["scopes"], ["echo.read", "other"])
        # leeway: 0s here (the notes example accepts the same token: its leeway is 30 s).
        self.assertEqual(by_case["expired_10s_ago"]["status"], 401)
        for case, r in by_case.items():
            if case != "valid":
                with self.subTest(case):
                    self.assertIn(r["status"], (401, 403), r)
        self.assertEqual(by_case["missing_scope"]["wwwAuthenticate"],
                         'Bearer error="insufficient_scope", scope="echo.read"')
        # The Authorization header is not where this authorizer looks.
        moved = self.request("GET", "/gw/dev/jwt", {"Authorization": "Bearer " + valid["token"]})
        self.assertGatewayError(moved, 401, "Unauthorized")
        self.assertEqual(moved.header("www-authenticate"), "Bearer")
        self.assertInvoked(before, gw_dev_echo=1)


class F_AuthorizerTest(GatewayCase):
    def test_simple_authorizer_identity_context_and_cache(self):
        before = self.invocations()
        missing = self.request("GET", "/gw/dev/lambda")
        self.assertGatewayError(missing, 401, "Unauthorized")
        empty = self.request("GET", "/gw/dev/lambda", {"X-Gate": ""})
        self.assertGatewayError(empty, 401, "Unauthorized")
        self.assertInvoked(before)

        allowed = self.request("GET", "/gw/dev/lambda", {"X-Gate": "let-me-in"})
        self.assertEqual(allowed.status, 200, allowed)
        self.assertEqual(allowed.json()["requestContext"]["authorizer"],
                         {"lambda": {"user": "u1", "n": 7}})
        self.assertInvoked(before, gw_dev_authorizer=1, gw_dev_echo=1)

        # Within the TTL (300 s by default) the decision is cached: no second authorizer run.
        before = self.invocations()
        again = self.request("GET", "/gw/dev/lambda", {"X-Gate": "let-me-in"})
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.json()["requestContext"]["authorizer"]["lambda"],
                         {"user": "u1", "n": 7})
        self.assertInvoked(before, gw_dev_echo=1)

        # Another identity is another decision: the authorizer runs, and denies.
        before = self.invocations()
        denied = self.request("GET", "/gw/dev/lambda", {"X-Gate": "let-me-in-please"})
        self.assertGatewayError(denied, 403, "Forbidden")
        self.assertInvoked(before, gw_dev_authorizer=1)
        before = self.invocations()
        self.assertGatewayError(self.request("GET", "/gw/dev/lambda",
                                             {"X-Gate": "let-me-in-please"}), 403, "Forbidden")
        self.assertInvoked(before)

    def test_a_crashing_authorizer_is_a_500_and_audited(self):
        before = self.invocations()
        responses = [self.request("GET", "/gw/dev/crash", {"X-Gate": "let-me-in"})
                     for _ in range(2)]
        # Errors are never cached (and this authorizer has ttl: 0s): it runs every time.
        for response in responses:
            self.assertGatewayError(response, 500, "Internal Server Error")
            self.assertNotIn(b"crashed", response.body)
        self.assertInvoked(before, **{"gw_dev_crash-authorizer": 2})
        arn = "arn:aws:execute-api:%s:%s:gw-dev/dev/GET/crash" % (REGION, ACCOUNT)
        records = [r for r in self.audit() if r.get("resource") == arn]
        self.assertEqual(len(records), 2, records)
        record = records[-1]
        self.assertEqual(record["actor"], "authorizer:crash")
        self.assertEqual(record["action"], "execute-api:Invoke")
        self.assertEqual(record["outcome"], "error")
        self.assertEqual([r["request_id"] for r in records],
                         [r.header("x-amzn-requestid") for r in responses])

    def test_iam_policy_authorizer_is_evaluated_per_route(self):
        before = self.invocations()
        allowed = self.request("GET", "/gw/dev/policy/allowed", {"Authorization": "token-a"})
        self.assertEqual(allowed.status, 200, allowed)
        self.assertEqual(allowed.json()["requestContext"]["authorizer"],
                         {"lambda": {"via": "policy", "token": 7}})
        self.assertInvoked(before, **{"gw_dev_iam-authorizer": 1, "gw_dev_echo": 1})
        # The cached policy, evaluated for another route: it does not name it.
        before = self.invocations()
        other = self.request("GET", "/gw/dev/policy/other", {"Authorization": "token-a"})
        self.assertGatewayError(other, 403, "Forbidden")
        self.assertInvoked(before)
        # A fresh decision for the other route says the same.
        other = self.request("GET", "/gw/dev/policy/other", {"Authorization": "token-b"})
        self.assertGatewayError(other, 403, "Forbidden")
        self.assertInvoked(before, **{"gw_dev_iam-authorizer": 1})
        self.assertGatewayError(self.request("GET", "/gw/dev/policy/allowed"), 401,
                                "Unauthorized")


class G_IamTest(GatewayCase):
    ROUTE = "arn:aws:execute-api:%s:%s:gw-dev/dev/GET/iam/*" % (REGION, ACCOUNT)

    def user(self, name, resource):
        policy = os.path.join(self.dep.tmp, name + "-policy.json")
        with open(policy, "w") as f:
            json.dump({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "execute-api:Invoke", "Resource": resource}]}, f)
        self.moatless("users", "create", name)
        self.moatless("users", "attach-policy", name, "--policy-file", policy)
        self.moatless("keys", "create", "--user", name, "--write-profile", name)
        credentials = configparser.ConfigParser(interpolation=None)
        credentials.read(self.dep.creds)
        return {"AWS_ACCESS_KEY_ID": credentials.get(name, "aws_access_key_id"),
                "AWS_SECRET_ACCESS_KEY": credentials.get(name, "aws_secret_access_key"),
                "AWS_SESSION_TOKEN": ""}

    def signed(self, path, credentials):
        result = node_client("sigv4", json.dumps({"url": self.url(path), "region": REGION}),
                             env=credentials)[0]
        return result["status"], result["body"]

    def test_sigv4_callers_are_authorised_by_their_policies(self):
        caller = self.user("gw-caller", self.ROUTE)
        stranger = self.user("gw-stranger", "arn:aws:execute-api:%s:%s:gw-dev/dev/GET/echo/*"
                             % (REGION, ACCOUNT))
        before = self.invocations()
        self.assertGatewayError(self.request("GET", "/gw/dev/iam/1"), 403)
        self.assertGatewayError(self.request("GET", "/gw/dev/iam/1", {
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20200101/local/"
                             "execute-api/aws4_request, SignedHeaders=host, Signature=00"}), 403)
        self.assertInvoked(before)

        status, body = self.signed("/gw/dev/iam/42?x=1", caller)
        self.assertEqual(status, 200, body)
        event = json.loads(body)
        iam = event["requestContext"]["authorizer"]["iam"]
        self.assertEqual(iam["userArn"], "arn:aws:iam::%s:user/gw-caller" % ACCOUNT)
        self.assertEqual(iam["accountId"], ACCOUNT)
        self.assertEqual(iam["accessKey"], caller["AWS_ACCESS_KEY_ID"])
        self.assertEqual(event["pathParameters"], {"id": "42"})
        self.assertInvoked(before, gw_dev_echo=1)

        before = self.invocations()
        status, body = self.signed("/gw/dev/iam/42", stranger)
        self.assertEqual(status, 403, body)
        self.assertInvoked(before)
        arn = "arn:aws:execute-api:%s:%s:gw-dev/dev/GET/iam/42" % (REGION, ACCOUNT)
        decisions = [(r["actor"], r["outcome"]) for r in self.audit() if r.get("resource") == arn]
        self.assertIn(("arn:aws:iam::%s:user/gw-caller" % ACCOUNT, "allowed"), decisions)
        self.assertIn(("arn:aws:iam::%s:user/gw-stranger" % ACCOUNT, "denied"), decisions)
        for secret in (caller["AWS_SECRET_ACCESS_KEY"], stranger["AWS_SECRET_ACCESS_KEY"]):
            CTX["never_logged"].add(secret)


class H_UsagePlanTest(GatewayCase):
    """The plan `limited`: rate 1, burst 2, 6 requests a UTC day; `open`: no quota."""

    def keyed(self, key, key_id):
        return self.request("GET", "/gw/dev/keyed", {"x-api-key": key}, key_id=key_id)

    def test_rate_quota_and_a_restart(self):
        # A quota period must not end in the middle of the test.
        now = datetime.datetime.now(datetime.timezone.utc)
        midnight = (now + datetime.timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                             microsecond=0)
        if (midnight - now).total_seconds() < 90:
            time.sleep((midnight - now).total_seconds() + 2)
        key_id, key = self.create_key("gw", "dev", "limited", "rate-and-quota")
        self.request("GET", "/gw/dev/echo/warm")  # a warm echo: the burst arrives together

        # Burst 2: of four requests at once, two pass and two are refused for the rate.
        before = self.invocations()
        results = [None] * 4
        barrier = threading.Barrier(4)

        def send(i):
            barrier.wait()
            results[i] = self.keyed(key, key_id)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(r.status for r in results)
        passed = [r for r in results if r.status == 200]
        if time.monotonic() - started < 1:
            self.assertEqual(statuses, [200, 200, 429, 429], results)
        else:  # a very slow host: a token may have been refilled meanwhile (rate 1/s)
            self.assertIn(statuses, ([200, 200, 429, 429], [200, 200, 200, 429]), results)
        for refused in (r for r in results if r.status == 429):
            self.assertGatewayError(refused, 429, "Too Many Requests")
            self.assertGreaterEqual(int(refused.header("retry-after")), 1)
            self.assertLessEqual(int(refused.header("retry-after")), 2)
            self.assertEqual(refused.header("x-ratelimit-limit"), "6")
        remaining = 6 - len(passed)
        self.assertEqual(sorted(r.header("x-ratelimit-remaining") for r in passed),
                         [str(n) for n in range(remaining, 6)])
        self.assertInvoked(before, gw_dev_echo=len(passed))
        self.assertEqual(self.sample("moatless_gateway_throttles_total", api="gw/dev",
                                     route="GET /keyed", reason="rate"), 4 - len(passed))

        # Retry-After later, requests pass again...
        time.sleep(max(int(r.header("retry-after")) for r in results if r.status == 429))
        recovered = self.keyed(key, key_id)
        self.assertEqual(recovered.status, 200, recovered)
        remaining -= 1
        self.assertEqual(recovered.header("x-ratelimit-remaining"), str(remaining))
        # ... until the quota (6 a day) is spent.
        for _ in range(20):
            response = self.keyed(key, key_id)
            if response.status == 429 and int(response.header("retry-after")) > 60:
                break  # the quota's refusal (the rate's says 1 or 2 s)
            if response.status == 429:
                time.sleep(int(response.header("retry-after")))
                continue
            self.assertEqual(response.status, 200, response)
            remaining -= 1
            self.assertEqual(response.header("x-ratelimit-remaining"), str(remaining))
        self.assertEqual(remaining, 0)
        self.assertEqual(response.header("x-ratelimit-remaining"), "0")
        self.assertGatewayError(response, 429, "Too Many Requests")
        seconds_to_midnight = (midnight - datetime.datetime.now(datetime.timezone.utc)) \
            .total_seconds()
        self.assertGreater(int(response.header("retry-after")), 60)
        self.assertLessEqual(int(response.header("retry-after")), seconds_to_midnight + 86400)
        self.assertEqual(response.header("x-ratelimit-limit"), "6")
        # It persists, the rate bucket full or not, and the function is not invoked.
        time.sleep(2)
        before = self.invocations()
        for _ in range(2):
            self.assertGatewayError(self.keyed(key, key_id), 429, "Too Many Requests")
        self.assertInvoked(before)
        self.assertGreaterEqual(self.sample("moatless_gateway_throttles_total", api="gw/dev",
                                            route="GET /keyed", reason="quota"), 3)

        # A second key, on `open` (not the route's plan) until attached to `limited`.
        other_id, other = self.create_key("gw", "dev", "open", "moved")
        self.assertGatewayError(self.keyed(other, other_id), 403, "Forbidden")
        self.moatless("apikeys", "attach", "--app", "gw", "--stage", "dev", other_id, "--plan",
                      "limited")
        first = self.keyed(other, other_id)
        self.assertEqual(first.status, 200, first)
        self.assertEqual(first.header("x-ratelimit-remaining"), "5")

        # A restart (same data directory) keeps both counts.
        self.dep.restart()
        after = self.keyed(key, key_id)
        self.assertGatewayError(after, 429, "Too Many Requests")
        self.assertEqual(after.header("x-ratelimit-remaining"), "0")
        self.assertEqual(self.sample("moatless_gateway_throttles_total", api="gw/dev",
                                     route="GET /keyed", reason="quota"), 1)
        again = self.keyed(other, other_id)
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.header("x-ratelimit-remaining"), "4")


def quote(text):
    return "".join(c if c.isalnum() or c in "-._~" else "%%%02X" % b
                   for c, b in ((chr(b), b) for b in text.encode()))


ATTACKS = [  # (name, payload, where CRS 3.3 at paranoia level 1 refuses it)
    ("sql-injection", "1' OR '1'='1", ("query", "form", "json", "user-agent", "cookie")),
    ("sql-union", "1 UNION SELECT username, password FROM users--",
     ("query", "form", "json", "user-agent", "cookie")),
    ("xss", "<script>alert(1)</script>", ("query", "form", "json", "user-agent", "cookie")),
    ("path-traversal", "/../../etc/passwd", ("query", "form", "json", "user-agent", "cookie")),
    ("command-injection", ";cat /etc/passwd", ("query", "form", "json", "cookie")),
    ("crlf-injection", "en\r\nSet-Cookie: session=attacker", ("query", "form", "json", "cookie")),
]

BENIGN_NOTES = [  # ordinary content that CRS at paranoia level 1 lets through
    {"title": "Weekly", "text": "Please SELECT a topic from the list and update the table."},
    {"contact": "jane.doe+notes@example.com", "name": "Jane O'Brien"},
    {"link": "https://example.com/search?q=serverless&lang=en#results"},
    {"text": "It's John's book -- don't you think? He said \"yes\"; she said 'no'."},
    {"file": "reports/2024/q1.pdf", "dir": "/home/user/docs"},
    {"text": "Grüße aus Zürich — naïve café ✓ 日本語 🎉", "tags": ["a", "b"], "n": 42},
]


class I_WafAndValidationTest(GatewayCase):
    """The WAF (block, detect, exclusions) and request validation on the test app's routes."""

    def attack(self, where, payload, path="/gw/dev/waf/notes"):
        if where == "query":
            return self.request("GET", path + "?q=" + quote(payload) + "&limit=10")
        if where == "form":
            return self.request("POST", path,
                                {"Content-Type": "application/x-www-form-urlencoded"},
                                ("title=x&q=" + quote(payload)).encode())
        if where == "json":
            return self.request("POST", path, {"Content-Type": "application/json"},
                                json.dumps({"title": "x", "q": payload}).encode())
        if where == "user-agent":
            return self.request("GET", path, {"User-Agent": payload})
        return self.request("GET", path, {"Cookie": "theme=dark; q=" + quote(payload)})

    def test_attacks_are_refused_in_every_place_before_the_function(self):
        before = self.invocations()
        blocked_before = self.sample("moatless_gateway_waf_matches_total", action="blocked")
        ids = []
        for name, payload, places in ATTACKS:
            for where in places:
                with self.subTest(attack=name, where=where):
                    response = self.attack(where, payload)
                    self.assertWafBlocked(response)
                    ids.append(response.header("x-amzn-requestid"))
        self.assertInvoked(before)
        self.assertEqual(self.sample("moatless_gateway_waf_matches_total", action="blocked")
                         - blocked_before, len(ids))
        # Each refusal is in the audit trail with the rules that matched; the client saw none.
        deadline = time.monotonic() + 10
        while True:
            records = {r.get("request_id"): r for r in self.audit()}
            if all(i in records for i in ids) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for request_id in ids:
            record = records.get(request_id)
            self.assertIsNotNone(record, request_id)
            self.assertEqual(record["outcome"], "denied")
            self.assertEqual(record["action"], "execute-api:Invoke")
            self.assertRegex(record["reason"], r"^waf blocked: rules [0-9,]+ \(anomaly score \d+\)$")
        logged = [r for r in self.dep.log_records() if r.get("msg") == "gateway waf blocked"]
        self.assertTrue({r.get("request_id") for r in logged} >= set(ids))

    def test_benign_json_api_requests_pass(self):
        before = self.invocations()
        for note in BENIGN_NOTES:
            with self.subTest(note=json.dumps(note)[:40]):
                response = self.request("POST", "/gw/dev/waf/notes",
                                        {"Content-Type": "application/json"},
                                        json.dumps(note).encode())
                self.assertEqual(response.status, 200, response)
                self.assertEqual(json.loads(response.json()["body"]), note)
        for query in ("limit=20&offset=40&sort=-created_at", "q=select%20a%20topic",
                      "filter=status:open&fields=id,title"):
            with self.subTest(query=query):
                response = self.request("GET", "/gw/dev/waf/notes?" + query,
                                        {"Authorization": "Bearer abc.def.ghi"})
                self.assertEqual(response.status, 200, response)
        self.assertInvoked(before, gw_dev_echo=len(BENIGN_NOTES) + 3)

    def test_detect_mode_passes_and_logs_what_it_would_refuse(self):
        before = self.invocations()
        response = self.attack("query", "<script>alert(1)</script>", "/gw/dev/waf/watched")
        self.assertEqual(response.status, 200, response)
        self.assertInvoked(before, gw_dev_echo=1)
        request_id = response.header("x-amzn-requestid")
        record = self.dep.server.wait_for_log(
            lambda r: r.get("msg") == "gateway waf detected" and r.get("request_id") == request_id)
        self.assertIn("941", record["rules"])
        self.assertGreaterEqual(record["anomaly_score"], 5)
        self.assertFalse([r for r in self.audit() if r.get("request_id") == request_id])

    def test_exclusions_switch_off_only_what_they_name(self):
        before = self.invocations()
        sql = self.request("POST", "/gw/dev/waf/sql", {"Content-Type": "application/json"},
                           json.dumps({"query": "SELECT name FROM users WHERE id = '1' OR '1'='1'"})
                           .encode())
        self.assertEqual(sql.status, 200, sql)
        self.assertWafBlocked(self.attack("json", "<script>alert(1)</script>", "/gw/dev/waf/sql"))
        self.assertInvoked(before, gw_dev_echo=1)

    def test_parameters_and_body_are_validated_before_the_function(self):
        before = self.invocations()
        good = {"Content-Type": "application/json", "X-Client": "it"}
        ok = self.request("POST", "/gw/dev/validated?limit=5", good,
                          json.dumps({"name": "pen", "count": 2}).encode())
        self.assertEqual(ok.status, 200, ok)

        missing = self.request("POST", "/gw/dev/validated", {"Content-Type": "application/json"},
                               b'{"name":"pen"}')
        self.assertEqual(missing.status, 400, missing)
        self.assertEqual(missing.json(), {"message": "Invalid request parameters", "violations": [
            {"in": "query", "name": "limit", "message": "is required"},
            {"in": "header", "name": "x-client", "message": "is required"}]})
        self.assertEqual(self.request("POST", "/gw/dev/validated?limit=12345", good,
                                      b'{"name":"pen"}').status, 400)

        invalid = self.request("POST", "/gw/dev/validated?limit=5", good,
                               json.dumps({"name": "", "count": -1, "extra": True}).encode())
        self.assertEqual(invalid.status, 400, invalid)
        body = invalid.json()
        self.assertEqual(body["message"], "Invalid request body")
        self.assertEqual({v["path"] for v in body["violations"]}, {"/name", "/count", "/extra"},
                         body)
        # A pattern that backtracks exponentially elsewhere ("^(a+)+$" against a's and a '!')
        # runs on RE2 here, in linear time: the answer comes back, a 400.
        evil = self.request("POST", "/gw/dev/validated?limit=5", good,
                            json.dumps({"name": "x", "code": "a" * 5000 + "!"}).encode())
        self.assertEqual(evil.status, 400, evil)
        self.assertEqual(evil.json()["violations"][0]["path"], "/code")
        self.assertEqual(self.request("POST", "/gw/dev/validated?limit=5",
                                      {"Content-Type": "text/plain", "X-Client": "it"},
                                      b'{"name":"pen"}').status, 415)
        self.assertInvoked(before, gw_dev_echo=1)
        self.assertGreaterEqual(self.sample("moatless_gateway_validation_failures_total",
                                            route="POST /validated"), 5)


class J_WafStartupTest(unittest.TestCase):
    """Rules that are missing or broken stop the daemon with a message naming them."""

    def serve(self, rules_dir):
        data = tempfile.mkdtemp(prefix="moatless-waf-")
        try:
            return run_cli("serve", "--data-dir", data, "--listen", "127.0.0.1:0",
                           "--gateway-listen", "127.0.0.1:0", "--gateway.waf-rules-dir", rules_dir,
                           timeout=60)
        finally:
            subprocess.run(["rm", "-rf", data], check=False)

    def test_missing_rules_directory(self):
        result = self.serve("/nonexistent/modsecurity-crs")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("/nonexistent/modsecurity-crs", result.stderr)

    def test_broken_rule_file(self):
        rules = tempfile.mkdtemp(prefix="moatless-crs-")
        self.addCleanup(subprocess.run, ["rm", "-rf", rules])
        shutil.copytree("/usr/share/modsecurity-crs/rules", rules, dirs_exist_ok=True,
                        symlinks=False)
        with open(os.path.join(rules, "REQUEST-942-APPLICATION-ATTACK-SQLI.conf"), "a") as f:
            f.write("\nSecRuleNonsense On\n")
        result = self.serve(rules)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("REQUEST-942-APPLICATION-ATTACK-SQLI.conf", result.stderr)
        os.remove(os.path.join(rules, "REQUEST-942-APPLICATION-ATTACK-SQLI.conf"))
        result = self.serve(rules)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("REQUEST-942-APPLICATION-ATTACK-SQLI.conf", result.stderr)


class Z_AccessLogTest(GatewayCase):
    """Runs last: every request above is in the access log, and no secret is."""

    def test_one_line_per_request_with_key_ids_and_never_a_key_or_token(self):
        time.sleep(0.2)  # the last lines reach the reader thread
        # The gateway logs the requests it answers ("gateway request"); the HTTP server those it
        # refuses before the gateway sees them ("request rejected": the path tricks).
        lines = {}
        for record in self.dep.log_records():
            if record.get("msg") in ("gateway request", "request rejected"):
                lines.setdefault(record.get("request_id"), []).append(record)
        self.assertGreater(len(CTX["logged"]), 50)
        for request_id, key_id, status, what in CTX["logged"]:
            with self.subTest(what):
                records = lines.get(request_id, [])
                self.assertEqual(len(records), 1, "one access-log line per request")
                record = records[0]
                self.assertEqual(record["status"], status)
                if record["msg"] == "request rejected":
                    self.assertEqual((status, record["listener"]), (400, "gateway"))
                    continue
                for field in ("api", "route", "method", "latency_ms", "source_ip"):
                    self.assertIn(field, record)
                if key_id is not None:
                    self.assertEqual(record.get("api_key_id"), key_id)
        admitted = [r for rs in lines.values() for r in rs
                    if r.get("auth") == "api_key" and r["status"] in (200, 429)]
        self.assertTrue(admitted and all(r.get("api_key_id", "").startswith("key-")
                                         for r in admitted), admitted[:3])
        text = self.dep.log_text()
        self.assertGreater(len(CTX["never_logged"]), 10)
        for secret in CTX["never_logged"]:
            self.assertNotIn(secret, text)
            # Not even a recognisable piece of a JWT (its signature).
            if secret.count(".") == 2 and not secret.endswith("."):
                self.assertNotIn(secret.rsplit(".", 1)[1], text)


if __name__ == "__main__":
    harness.main()
