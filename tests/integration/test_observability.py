"""Metrics end to end (docs/observability.md): the real daemon with the gateway and functions on,
the test app tests/integration/apps/observe deployed with `moatless deploy`, a load of known shape
sent through the gateway, then /metrics read as Prometheus would and parsed with the official
Python client's text parser (Debian's python3-prometheus-client):

- N successful requests, M function errors, K WAF refusals and T throttles produce exactly those
  counter values on the gateway's and the function's families;
- every histogram's buckets are cumulative and end in its _count; counters end in _total; no
  label value is a request id or a raw path; a secret stored for the run appears nowhere;
- service API decisions are counted by action, and unsigned traffic under one label;
- /metrics needs the bearer token of metrics.token_file on a metrics listener of its own (401
  without or with a wrong one), and a token file others can read stops start-up;
- an error-rate alert fires once after its `for`, notifies a local webhook with a valid
  HMAC-SHA256 signature, shows in `moatless alerts list`, is still firing (and not re-notified)
  after a restart of the daemon, and resolves once when the errors stop.

Functions run in sandboxes; on a host that cannot isolate them the daemon says "functions cannot
run on this host" and the tests that need them are skipped with that message."""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness
from harness import Server, run_cli

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "apps", "observe")
ALERTS_APP = os.path.join(HERE, "apps", "observe-alerts")
HOOK_KEY = "hook-signing-key-7d2b0c"
SECRET_VALUE = "obs-secret-value-4f1c9a7e"


def prometheus_parser():
    """The official client's parser: Debian installs it for /usr/bin/python3, which may not be the
    interpreter running the tests."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError as e:
            raise AssertionError("python3-prometheus-client is required: scripts/install-deps "
                                 "installs it (%s)" % e)
    return text_string_to_metric_families


def http_get(address, path, headers=None):
    host, port = address
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Metrics:
    """One scrape, parsed: {(name, frozenset(labels.items())): value} plus the families."""

    def __init__(self, text):
        self.text = text
        self.families = list(prometheus_parser()(text))
        self.samples = {}
        for family in self.families:
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def get(self, name, **labels):
        return self.samples.get((name, frozenset(labels.items())), 0)

    def sum(self, name, **labels):
        return sum(v for (n, ls), v in self.samples.items()
                   if n == name and all((k, v2) in ls for k, v2 in labels.items()))


class Deployment:
    def __init__(self, *flags):
        self.tmp = tempfile.mkdtemp(prefix="moatless-observe-")
        os.chmod(self.tmp, 0o711)  # the sandboxes' users traverse it to apps.code_dir
        self.data_dir = os.path.join(self.tmp, "data")
        self.creds = os.path.join(self.tmp, "home", ".aws", "credentials")
        init = run_cli("init", "--data-dir", self.data_dir, "--credentials-file", self.creds)
        if init.returncode != 0:
            raise AssertionError("moatless init failed: " + init.stderr)
        self.flags = ("--apps.code-dir", os.path.join(self.tmp, "code"),
                      "--gateway-listen", "127.0.0.1:0", *flags)
        self.servers = []
        self.start()

    def start(self):
        self.server = Server(*self.flags, data_dir=self.data_dir)
        self.servers.append(self.server)
        refused = self.server.functions_refused()
        if refused is not None:
            self.cleanup()
            raise unittest.SkipTest("functions cannot run on this host: %s" % refused)
        record = self.server.wait_for_log(lambda r: r.get("msg") == "listening"
                                          and r.get("listener") == "gateway")
        host, _, port = record["address"].rpartition(":")
        self.gateway = (host.strip("[]"), int(port))

    def cli(self, *args, stdin=None, expect=0, profile="moatless"):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.tmp,
               "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": self.creds,
               "AWS_REGION": "local", "AWS_PROFILE": profile,
               "MOATLESS_ENDPOINT": self.server.url("")}
        result = subprocess.run([harness.MOATLESS, *args], capture_output=True, text=True,
                                input=stdin, timeout=180, env=env)
        if expect is not None and result.returncode != expect:
            raise AssertionError("moatless %s exited %d:\n%s\n%s" % (
                " ".join(args), result.returncode, result.stdout, result.stderr))
        return result

    def scrape(self):
        status, body = http_get((self.server.host, self.server.port), "/metrics")
        if status != 200:
            raise AssertionError("/metrics answered %d: %r" % (status, body[:300]))
        return Metrics(body.decode())

    def cleanup(self):
        for server in self.servers:
            server.cleanup()
        subprocess.run(["rm", "-rf", self.tmp], check=False)


class MetricsUnderKnownLoadTest(unittest.TestCase):
    N_OK, M_ERRORS, K_WAF, BURST, T_THROTTLED = 5, 3, 2, 2, 3

    @classmethod
    def setUpClass(cls):
        prometheus_parser()  # fail early and clearly without it
        cls.dep = Deployment()
        cls.addClassCleanup(cls.dep.cleanup)
        app = os.path.join(cls.dep.tmp, "app")
        shutil.copytree(APP, app)
        out = json.loads(cls.dep.cli("deploy", "--dir", app, "--yes", "--json").stdout)
        assert out["Version"] == 1, out
        cls.dep.cli("secrets", "put", "dev/obs/token", "--from-stdin", stdin=SECRET_VALUE)
        cls.before = cls.dep.scrape()
        gw = cls.dep.gateway
        statuses = []
        for _ in range(cls.N_OK):
            statuses.append(http_get(gw, "/obs/dev/work?mode=ok")[0])
        for _ in range(cls.M_ERRORS):
            statuses.append(http_get(gw, "/obs/dev/work?mode=fail")[0])
        for _ in range(cls.K_WAF):
            statuses.append(http_get(gw, "/obs/dev/work?q=%3Cscript%3Ealert(1)%3C/script%3E")[0])
        for _ in range(cls.BURST + cls.T_THROTTLED):
            statuses.append(http_get(gw, "/obs/dev/limited")[0])
        cls.statuses = statuses
        cls.after = cls.dep.scrape()

    def test_the_load_was_answered_as_designed(self):
        expected = ([200] * self.N_OK + [502] * self.M_ERRORS + [403] * self.K_WAF +
                    [200] * self.BURST + [429] * self.T_THROTTLED)
        self.assertEqual(self.statuses, expected)

    def test_gateway_counters_are_exact(self):
        m = self.after
        work = {"api": "obs/dev", "route": "GET /work"}
        limited = {"api": "obs/dev", "route": "GET /limited"}
        self.assertEqual(m.get("moatless_gateway_requests_total", status="2xx", **work),
                         self.N_OK, m.text)
        self.assertEqual(m.get("moatless_gateway_requests_total", status="5xx", **work),
                         self.M_ERRORS)
        self.assertEqual(m.get("moatless_gateway_requests_total", status="4xx", **work),
                         self.K_WAF)
        self.assertEqual(m.get("moatless_gateway_waf_matches_total", action="blocked", **work),
                         self.K_WAF)
        self.assertEqual(m.get("moatless_gateway_requests_total", status="2xx", **limited),
                         self.BURST)
        self.assertEqual(m.get("moatless_gateway_requests_total", status="4xx", **limited),
                         self.T_THROTTLED)
        self.assertEqual(m.sum("moatless_gateway_throttles_total", **limited), self.T_THROTTLED)
        self.assertEqual(m.get("moatless_gateway_request_duration_seconds_count", **work),
                         self.N_OK + self.M_ERRORS + self.K_WAF)

    def test_function_counters_are_exact(self):
        m = self.after
        fn = {"function": "obs_dev_work", "version": "1"}
        ran_ok = self.N_OK + self.BURST
        self.assertEqual(m.get("moatless_function_invocations_total", outcome="ok", **fn), ran_ok,
                         m.text)
        self.assertEqual(m.get("moatless_function_invocations_total", outcome="error", **fn),
                         self.M_ERRORS)
        self.assertEqual(m.get("moatless_function_errors_total", type="Function", **fn),
                         self.M_ERRORS)
        self.assertEqual(m.get("moatless_function_duration_seconds_count", **fn),
                         ran_ok + self.M_ERRORS)
        self.assertEqual(m.get("moatless_function_peak_memory_bytes_count", **fn),
                         ran_ok + self.M_ERRORS)
        cold = m.get("moatless_function_cold_starts_total", **fn)
        self.assertGreaterEqual(cold, 1)
        self.assertEqual(m.get("moatless_function_init_duration_seconds_count", **fn), cold)
        self.assertEqual(m.get("moatless_function_concurrent_executions", function=fn["function"]),
                         0)
        self.assertEqual(m.get("moatless_sandbox_starts_total", result="ok"), cold)
        # The WAF refused before any function ran; the throttle too.
        self.assertEqual(m.sum("moatless_function_invocations_total", **fn),
                         ran_ok + self.M_ERRORS)

    def test_histograms_are_consistent(self):
        for family in self.after.families:
            if family.type != "histogram":
                continue
            series = {}
            for s in family.samples:
                key = frozenset((k, v) for k, v in s.labels.items() if k != "le")
                series.setdefault(key, {"buckets": [], "count": None})
                if s.name.endswith("_bucket"):
                    series[key]["buckets"].append((float(s.labels["le"]), s.value))
                elif s.name.endswith("_count"):
                    series[key]["count"] = s.value
            for key, data in series.items():
                buckets = sorted(data["buckets"])
                self.assertTrue(buckets, family.name)
                self.assertEqual(buckets[-1][0], float("inf"), family.name)
                counts = [c for _, c in buckets]
                self.assertEqual(counts, sorted(counts), "%s %s" % (family.name, dict(key)))
                self.assertEqual(counts[-1], data["count"], family.name)

    def test_names_and_labels_follow_the_conventions(self):
        uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
        for family in self.after.families:
            self.assertTrue(family.name.startswith("moatless_"), family.name)
            self.assertTrue(family.documentation, family.name)
            if family.type == "counter":
                # The parser strips _total from a counter family's name; its samples keep it.
                self.assertTrue(all(s.name.endswith("_total") for s in family.samples),
                                family.name)
            for s in family.samples:
                for name, value in s.labels.items():
                    self.assertIsNone(uuid.search(value), "%s{%s=%r}" % (s.name, name, value))
                    self.assertNotIn("?", value, "%s{%s=%r}" % (s.name, name, value))
                    self.assertNotIn("/obs/dev", value, "%s{%s=%r}" % (s.name, name, value))
        self.assertNotIn(SECRET_VALUE, self.after.text)

    def test_no_secret_value_or_credential_is_stored_in_clear_anywhere(self):
        needles = [SECRET_VALUE.encode()]
        with open(self.dep.creds) as f:
            for line in f:
                if line.strip().startswith("aws_secret_access_key"):
                    needles.append(line.split("=", 1)[1].strip().encode())
        self.assertEqual(len(needles), 2)
        checked = 0
        for root, _, files in os.walk(self.dep.data_dir):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    data = f.read()
                checked += 1
                for needle in needles:
                    self.assertNotIn(needle, data, os.path.join(root, name))
        self.assertGreater(checked, 5)
        for server in self.dep.servers:
            for needle in needles:
                self.assertNotIn(needle.decode(), "\n".join(server.lines))

    def test_platform_gauges_and_store_latency_are_exposed(self):
        m = self.after
        for state in ("busy", "idle", "frozen"):
            self.assertIn(("moatless_function_environments", frozenset({("state", state)})),
                          m.samples)
        self.assertIn(("moatless_function_queued_invocations", frozenset()), m.samples)
        self.assertIn(("moatless_function_event_queue_depth", frozenset()), m.samples)
        self.assertGreater(m.sum("moatless_store_transaction_duration_seconds_count",
                                 backend="sqlite", access="write", outcome="ok"), 0)
        self.assertGreater(m.get("moatless_audit_sync_seconds_count"), 0)

    def test_service_decisions_are_counted_by_action(self):
        m = self.after
        self.assertGreaterEqual(m.get("moatless_service_decisions_total", service="moatless",
                                      action="moatless:Deploy", decision="allowed"), 1)
        before = self.dep.scrape().get("moatless_service_decisions_total", service="sts",
                                       action="unauthenticated", decision="denied")
        # Unsigned: refused, and counted without the action it claimed.
        status, _ = http_get((self.dep.server.host, self.dep.server.port),
                             "/?Action=GetCallerIdentity&Version=2011-06-15")
        self.assertEqual(status, 403)
        after = self.dep.scrape()
        self.assertEqual(after.get("moatless_service_decisions_total", service="sts",
                                   action="unauthenticated", decision="denied"), before + 1)
        self.assertEqual(after.sum("moatless_service_decisions_total",
                                   action="sts:GetCallerIdentity"),
                         self.after.sum("moatless_service_decisions_total",
                                        action="sts:GetCallerIdentity"))


class Webhook:
    """A local HTTP receiver recording every POST (headers, body)."""

    def __init__(self):
        received = self.received = []
        cond = self.cond = threading.Condition()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with cond:
                    received.append((dict(self.headers.items()), body))
                    cond.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, count, timeout=90):
        with self.cond:
            self.cond.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Traffic:
    """Requests to the gateway every 100 ms, failing or not, until stopped."""

    def __init__(self, dep, mode, app="alerting"):
        self.dep, self.mode, self.app, self.stopped = dep, mode, app, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopped.is_set():
            try:
                http_get(self.dep.gateway, "/%s/dev/work?mode=%s" % (self.app, self.mode))
            except OSError:
                pass  # the daemon is restarting
            self.stopped.wait(0.1)

    def stop(self):
        self.stopped.set()
        self.thread.join()


class AlertTest(unittest.TestCase):
    def test_an_error_rate_alert_fires_once_survives_a_restart_and_resolves(self):
        hook = Webhook()
        self.addCleanup(hook.close)
        dep = Deployment("--alerts.interval", "200ms", "--alerts.webhook-hosts",
                         "127.0.0.1:%d" % hook.port)
        self.addCleanup(dep.cleanup)
        app = os.path.join(dep.tmp, "alerting")
        shutil.copytree(ALERTS_APP, app)
        shutil.copytree(os.path.join(APP, "functions"), os.path.join(app, "functions"))
        manifest = os.path.join(app, "moatless.yaml")
        with open(manifest) as f:
            text = f.read()
        with open(manifest, "w") as f:
            f.write(text.replace("WEBHOOK_URL", "http://127.0.0.1:%d/hooks/moatless" % hook.port))
        dep.cli("deploy", "--dir", app, "--yes", "--json")
        dep.cli("secrets", "put", "dev/alerting/hook-key", "--from-stdin", stdin=HOOK_KEY)

        def alerts():
            out = dep.cli("alerts", "list", "--app", "alerting", "--stage", "dev", "--json")
            return json.loads(out.stdout)["Alerts"]

        for _ in range(100):  # the alert host reads the new live version on its next run
            listed = alerts()
            if listed:
                break
            time.sleep(0.2)
        self.assertEqual([a["State"] for a in listed], ["inactive"])
        failing = Traffic(dep, "fail")
        try:
            received = hook.wait_for(1)
            self.assertEqual(len(received), 1, "no notification")
            headers, body = received[0]
            # The signature: HMAC-SHA256 over "TIMESTAMP.BODY" with the secret's value.
            expected = hmac.new(HOOK_KEY.encode(),
                                headers["X-Moatless-Timestamp"].encode() + b"." + body,
                                hashlib.sha256).hexdigest()
            self.assertEqual(headers["X-Moatless-Signature"], "sha256=" + expected)
            self.assertTrue(abs(int(headers["X-Moatless-Timestamp"]) - time.time()) < 300)
            note = json.loads(body)
            self.assertEqual(note["status"], "firing")
            self.assertEqual(note["id"], headers["X-Moatless-Delivery"])
            self.assertEqual(note["alert"]["id"], "alerting/dev/work-failing")
            self.assertEqual(note["alert"]["metric"], "error_rate")
            self.assertGreater(note["value"], 0.5)
            [listed] = alerts()
            self.assertEqual(listed["State"], "firing")
            self.assertEqual(listed["Function"], "alerting_dev_work")

            # A restart while it keeps failing: still firing, and no second notification once
            # the new process has evaluated a whole window of its own.
            self.assertEqual(dep.server.stop(), 0)
            restarted_at = time.time()
            dep.start()
            while True:
                [listed] = alerts()
                self.assertEqual(listed["State"], "firing")
                if "Value" in listed and time.time() - restarted_at > 11:
                    break
                time.sleep(0.5)
            self.assertEqual(len(hook.received), 1, hook.received)
        finally:
            failing.stop()

        healthy = Traffic(dep, "ok")
        try:
            received = hook.wait_for(2)
        finally:
            healthy.stop()
        self.assertEqual(len(received), 2)
        resolved = json.loads(received[1][1])
        self.assertEqual(resolved["status"], "resolved")
        self.assertEqual(resolved["startsAt"], note["startsAt"])
        self.assertIn("endsAt", resolved)
        self.assertEqual(alerts()[0]["State"], "inactive")
        logs = [r for s in dep.servers for r in s.records()]
        self.assertEqual(len([r for r in logs if r.get("msg") == "alert firing"]), 1)
        self.assertEqual(len([r for r in logs if r.get("msg") == "alert resolved"]), 1)
        # Each signing-key read is on record.
        reads = dep.cli("audit", "query", "--principal", "moatless:alerts", "--json").stdout
        reads = [json.loads(line) for line in reads.splitlines()]
        self.assertEqual([r["action"] for r in reads], ["secretsmanager:GetSecretValue"] * 2)
        self.assertEqual({r["fields"]["delivery"] for r in reads},
                         {json.loads(b)["id"] for _, b in received})
        # The webhook on a host the operator did not allow was never called: refused twice.
        refused = [r for r in logs if r.get("msg") == "alert notification refused"]
        self.assertEqual([r["webhook"] for r in refused], ["elsewhere", "elsewhere"])
        self.assertNotIn(HOOK_KEY, "\n".join("\n".join(s.lines) for s in dep.servers))


class TopTest(unittest.TestCase):
    """`moatless top` over the signed metrics API, against live traffic."""

    @classmethod
    def setUpClass(cls):
        cls.dep = Deployment()
        cls.addClassCleanup(cls.dep.cleanup)
        app = os.path.join(cls.dep.tmp, "app")
        shutil.copytree(APP, app)
        cls.dep.cli("deploy", "--dir", app, "--yes", "--json")

    def test_top_shows_the_functions_rates_and_latency(self):
        traffic = Traffic(self.dep, "ok", app="obs")
        try:
            out = self.dep.cli("top", "--iterations", "2", "--interval", "1",
                               "--function", "obs_dev").stdout
        finally:
            traffic.stop()
        tables = out.split("moatless top")
        self.assertEqual(len(tables), 3, out)  # two refreshes
        last = tables[-1].splitlines()
        header = [line for line in last if line.startswith("FUNCTION")]
        self.assertEqual(len(header), 1, out)
        rows = [line.split() for line in last if line.startswith("obs_dev_work")]
        self.assertEqual(len(rows), 1, out)
        rps, err_s, err_pct, p50, p99 = rows[0][1:6]
        self.assertGreater(float(rps), 0, out)
        self.assertEqual(float(err_s), 0, out)
        self.assertGreater(float(p99), 0, out)
        self.assertGreaterEqual(float(p99), float(p50), out)

    def registered_families(self):
        """Every family the daemon registers, from the signed JSON metrics API."""
        from test_audit import send, sign
        keys = {}
        section = None
        with open(self.dep.creds) as f:
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    section = line[1:-1]
                elif section == "moatless" and "=" in line:
                    k, v = (x.strip() for x in line.split("=", 1))
                    keys[k] = v
        server = self.dep.server
        headers = sign(server, keys["aws_access_key_id"], keys["aws_secret_access_key"], b"",
                       service="moatless", path="/moatless/v1/metrics", method="GET")
        status, _, text = send(server, headers, path="/moatless/v1/metrics", method="GET")
        self.assertEqual(status, 200, text)
        return {f["Name"]: f for f in json.loads(text)["Families"]}

    def test_every_metric_is_documented_and_the_dashboard_uses_only_real_ones(self):
        families = self.registered_families()
        self.assertIn("moatless_function_invocations_total", families)
        self.assertIn("moatless_gateway_requests_total", families)
        with open(os.path.join(HERE, "..", "..", "docs", "observability.md")) as f:
            doc = f.read()
        for name, family in families.items():
            self.assertIn("`%s`" % name, doc, "docs/observability.md does not list " + name)
            for label in family["LabelNames"]:
                self.assertIn(label, doc, "%s's label %s is not documented" % (name, label))
        with open(os.path.join(HERE, "..", "..", "docs", "grafana-dashboard.json")) as f:
            dashboard = json.load(f)
        exprs = []
        for panel in dashboard["panels"]:
            exprs.extend(t["expr"] for t in panel.get("targets", []))
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                exprs.append(variable["definition"])
        self.assertGreater(len(exprs), 20)
        used = set()
        for expr in exprs:
            for name in re.findall(r"\bmoatless_[a-z_]+", expr):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                self.assertIn(base if base in families else name, families,
                              "the dashboard queries %s, which the daemon does not have" % name)
                used.add(base if base in families else name)
        # Every function, gateway and decision family has a panel.
        for name in families:
            if name.startswith(("moatless_function_", "moatless_gateway_",
                                "moatless_service_")):
                self.assertIn(name, used, "no dashboard panel shows " + name)

    def test_top_needs_moatless_get_metrics(self):
        self.dep.cli("users", "create", "viewer")
        self.dep.cli("keys", "create", "--user", "viewer", "--write-profile", "viewer")
        denied = self.dep.cli("top", "--iterations", "1", "--interval", "0.2", profile="viewer",
                              expect=1)
        self.assertIn("AccessDenied", denied.stderr)


class MetricsAccessTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="moatless-metrics-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.token = "mt-" + os.urandom(16).hex()
        self.token_file = os.path.join(self.tmp, "token")
        with open(self.token_file, "w") as f:
            f.write(self.token + "\n")
        os.chmod(self.token_file, 0o600)

    def test_a_metrics_listener_with_a_token(self):
        with Server("--metrics.listen", "127.0.0.1:0", "--metrics.token-file",
                    self.token_file) as server:
            record = server.wait_for_log(lambda r: r.get("msg") == "listening"
                                         and r.get("listener") == "metrics")
            host, _, port = record["address"].rpartition(":")
            metrics = (host.strip("[]"), int(port))
            self.assertEqual(http_get(metrics, "/metrics")[0], 401)
            self.assertEqual(http_get(metrics, "/metrics",
                                      {"Authorization": "Bearer wrong-" + self.token})[0], 401)
            self.assertEqual(http_get(metrics, "/metrics",
                                      {"Authorization": "Basic " + self.token})[0], 401)
            status, body = http_get(metrics, "/metrics",
                                    {"Authorization": "Bearer " + self.token})
            self.assertEqual(status, 200)
            self.assertIn(b"moatless_build_info", body)
            # Only /metrics and /healthz there; and the control listener no longer serves it.
            self.assertEqual(http_get(metrics, "/healthz")[0], 200)
            self.assertEqual(http_get(metrics, "/readyz")[0], 404)
            self.assertEqual(http_get((server.host, server.port), "/metrics")[0], 404)
            self.assertNotIn(self.token, "\n".join(server.lines))

    def test_a_token_file_others_can_read_stops_start_up(self):
        os.chmod(self.token_file, 0o644)
        result = run_cli("serve", "--data-dir", os.path.join(self.tmp, "data"), "--listen",
                         "127.0.0.1:0", "--metrics.token-file", self.token_file, timeout=60)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("readable by group or others", result.stderr)
        self.assertNotIn(self.token, result.stderr)

    def test_without_a_token_only_loopback_clients_are_answered(self):
        # A non-loopback address of this host, if it has one, reaches a listener on 0.0.0.0.
        import socket
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent
            address = probe.getsockname()[0]
        except OSError:
            address = None
        finally:
            probe.close()
        with Server("--metrics.listen", "0.0.0.0:0") as server:
            record = server.wait_for_log(lambda r: r.get("msg") == "listening"
                                         and r.get("listener") == "metrics")
            port = int(record["address"].rpartition(":")[2])
            self.assertEqual(http_get(("127.0.0.1", port), "/metrics")[0], 200)
            if address is None or address.startswith("127."):
                self.skipTest("this host has no non-loopback IPv4 address to test refusal from")
            self.assertEqual(http_get((address, port), "/metrics")[0], 403)


if __name__ == "__main__":
    harness.main()
