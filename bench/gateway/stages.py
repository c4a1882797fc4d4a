#!/usr/bin/env python3
"""Gateway protection benchmark (bench/run BENCH_ONLY=gateway-protection): what the body's JSON
Schema check, the WAF and TLS each cost per request.

A fresh `moatless init` data directory and one `moatless serve --gateway-listen`, the app
bench/gateway/stages-app deployed to it: the Node.js hello handler of bench/functions behind four
`auth: none` routes that differ only in the protection the gateway applies before invoking it.
wrk POSTs the same 1 KB JSON order (stages-app/request.json, Content-Type: application/json,
from a Lua script) to each, keep-alive:

  (a) POST /plain       WAF off, no schema: the gateway and the function alone;
  (b) POST /validated   WAF off, the body validated against stages-app/schemas/order.json;
  (c) POST /waf         the default WAF (OWASP CRS 3.3 on libmodsecurity, paranoia 1, block);
  (d) POST /both        the WAF, then the schema;
  (e) POST /plain over TLS: a second phase, after (a)-(d), with the daemon restarted serving its
      gateway listener with a self-signed P-256 certificate (openssl req); wrk keeps its
      connections, so the handshakes are amortised and (e) - (a) is the cost of the record layer.
      One listener cannot serve both, so (e) is compared with (a) of the first phase.

Every round runs (a)-(d) with the same wrk -t/-c/-d (--threads, --connections: the load), then
again with -t1 -c1 (--unloaded-connections; 0 leaves it out): one request at a time, where a
latency difference is the added work on the request's path rather than queueing. Rounds are
interleaved after a discarded warm-up, and the report quotes medians over rounds; the TLS phase
has its own warm-up and the same number of rounds. Each stage's cost per request is derived
three ways: from the unloaded p50 difference with (a), from the difference in the daemon's CPU
time per request (the daemon and every process below it, the function sandboxes included), and
from the daemon's own metrics (gateway latency minus the function's REPORT Duration).

Before measuring, each stage is shown to be on (a body with an SQL injection is refused with 403
where the WAF runs and passes where it is off; an invalid order is refused with 400 and a text
body with 415 where the schema is checked), and afterwards the report checks that every answer
was a 2xx the daemon counted, that it counted no WAF match, no validation failure and no failed
invocation during the runs (a WAF false positive on the body would show as 403s).

With --gateway-bench BINARY it first runs the micro-benchmarks of src/gateway/gateway_bench.cc
(schema validation of the same body against the same schema, WafEngine::Inspect of a GET, of the
same POST and of a blocked SQL injection) and adds them to the report; --gateway-bench-output
FILE takes them from an earlier run's console output instead (bench/run's micro.txt).

Set-up, wrk runs, CPU accounting and metrics come from bench/gateway/bench.py (imported).

Usage: bench/gateway/stages.py MOATLESS_BINARY OUT_MARKDOWN [--rounds 3] [--duration 10s]
           [--connections 8] [--threads 2] [--unloaded-connections 1] [--raw FILE]
           [--gateway-bench BINARY | --gateway-bench-output FILE] [--max-other 0.35]
           [--max-rounds 3xROUNDS] [--log-level info] [--keep DIR]
Needs node, wrk and openssl, and a host that can isolate functions (otherwise it writes why it
was skipped). Test tool only: python3 standard library.
"""
import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench as gw  # noqa: E402  (bench/gateway/bench.py)

TOP = gw.TOP
APP, STAGE, FUNCTION = "gwstages", "bench", "hello"
BASE = "/%s/%s" % (APP, STAGE)
APP_DIR = os.path.join(HERE, "stages-app")
MICRO_SOURCE = os.path.join(TOP, "src", "gateway", "gateway_bench.cc")

# The targets: (id, letter, route, what it is in the report). (e) runs in the second phase.
TARGETS = [
    ("plain", "a", "POST /plain", "nothing (WAF off, no schema)"),
    ("validated", "b", "POST /validated", "JSON Schema validation of the body"),
    ("waf", "c", "POST /waf", "WAF: CRS 3.3, paranoia 1, block"),
    ("both", "d", "POST /both", "WAF + JSON Schema validation"),
    ("tls", "e", "POST /plain", "TLS (the route of (a), over https)"),
]
PHASE1 = [t for t in TARGETS if t[0] != "tls"]
LETTER = {t: letter for t, letter, _, _ in TARGETS}
WHAT = {t: what for t, _, _, what in TARGETS}

# bench.py's Runner reads these module globals to find the daemon's series for a target.
gw.APP, gw.STAGE = APP, STAGE
gw.API = APP + "/" + STAGE
gw.QUALIFIED = "%s_%s_%s" % (APP, STAGE, FUNCTION)
gw.GATEWAY_ROUTES = {t: route for t, _, route, _ in TARGETS}

# What every request carries besides the body (what a browser's fetch or an API client sends).
# A host name rather than 127.0.0.1: CRS scores a numeric Host header (920350).
HEADERS = [
    ("Host", "localhost"),
    ("Content-Type", "application/json"),
    ("Accept", "application/json"),
    ("Accept-Encoding", "gzip, deflate, br"),
    ("Accept-Language", "en-GB,en;q=0.9"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/120.0.0.0 Safari/537.36"),
]


# Not JSON, for the schema routes' 415 (a type CRS allows, and content the WAF passes).
FORM = "sku=BK-1043-PB&quantity=3"


def skip(out, why):
    with open(out, "w") as f:
        f.write("gateway protection benchmark skipped: %s\n" % why)
    print("gateway protection benchmark skipped: " + why)
    sys.exit(0)


def post_script(path, body):
    """The wrk request: a POST of `body` with HEADERS."""
    lines = ["-- generated by bench/gateway/stages.py: POST of a %d-byte JSON order" % len(body),
             'wrk.method = "POST"', "wrk.body = " + gw.lua_string(body),
             "wrk.headers = wrk.headers or {}"]
    lines += ["wrk.headers[%s] = %s" % (gw.lua_string(k), gw.lua_string(v)) for k, v in HEADERS]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def request(port, path, body, content_type="application/json", tls_ca=None):
    """One POST by hand, plain or over TLS (the certificate checked against tls_ca, for
    "localhost")."""
    headers = dict(HEADERS)
    headers["Content-Type"] = content_type
    if tls_ca:
        context = ssl.create_default_context(cafile=tls_ca)
        conn = http.client.HTTPSConnection("localhost", port, timeout=30, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body.encode(), headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def json_literal(source, name):
    """The JSON text of `constexpr char NAME[] = R"json(...)json" R"json(...)json"...;`."""
    m = re.search(r"constexpr char %s\[\] =(.*?);\n" % re.escape(name), source, re.S)
    if not m:
        sys.exit("%s: no %s" % (MICRO_SOURCE, name))
    return "".join(re.findall(r'R"json\((.*?)\)json"', m.group(1), re.S))


def check_copies():
    """The app's handler is bench/functions/hello's; its body and schema are the
    micro-benchmarks'."""
    handler = os.path.join(TOP, "bench", "functions", "hello", "index.cjs")
    with open(handler, "rb") as f1, \
            open(os.path.join(APP_DIR, "functions", "hello", "index.cjs"), "rb") as f2:
        if f1.read() != f2.read():
            sys.exit("bench/gateway/stages-app/functions/hello/index.cjs differs from %s: copy it "
                     "again (the benchmarks measure the same handler)" % handler)
    source = open(MICRO_SOURCE).read()
    body = open(os.path.join(APP_DIR, "request.json")).read().strip()
    if body != json_literal(source, "kOrderBody"):
        sys.exit("bench/gateway/stages-app/request.json differs from kOrderBody in %s"
                 % MICRO_SOURCE)
    schema = json.load(open(os.path.join(APP_DIR, "schemas", "order.json")))
    if schema != json.loads(json_literal(source, "kOrderSchema")):
        sys.exit("bench/gateway/stages-app/schemas/order.json differs from kOrderSchema in %s"
                 % MICRO_SOURCE)
    return body, json_literal(source, "kBadOrderBody")


# --- micro-benchmarks -----------------------------------------------------------------------------

# Names may carry Google Benchmark's suffixes ("BM_X/real_time/threads:8").
BM_LINE = re.compile(r"^(BM_[\w/:.]+?)(_mean|_median|_stddev|_cv)?\s+([\d.]+) (ns|us|ms|s)\s+"
                     r"([\d.]+) (ns|us|ms|s)\s+(\d+)(.*)$")
BM_ERROR = re.compile(r"^(BM_[\w/:.]+)\s+ERROR OCCURRED: (.*)$")
TO_US = {"ns": 0.001, "us": 1, "ms": 1000, "s": 1e6}


def parse_micro(text):
    """{name: {"time_us", "cpu_us", "iterations", "counters"} or {"error"}} from Google
    Benchmark's console output (the medians when it ran with repetitions)."""
    plain, medians = {}, {}
    for line in text.splitlines():
        e = BM_ERROR.match(line.strip())
        if e:
            plain[e.group(1)] = {"error": e.group(2)}
            continue
        m = BM_LINE.match(line.strip())
        if not m or m.group(2) in ("_mean", "_stddev", "_cv"):
            continue
        row = {"time_us": float(m.group(3)) * TO_US[m.group(4)],
               "cpu_us": float(m.group(5)) * TO_US[m.group(6)],
               "iterations": int(m.group(7)),
               "counters": dict(re.findall(r"(\w+)=(\S+)", m.group(8)))}
        (medians if m.group(2) else plain)[m.group(1)] = row
    plain.update(medians)
    return plain


def micro_from_file(path, name="gateway_bench"):
    """One binary's part of bench/run's micro.txt ("-- NAME" to the next "-- ")."""
    text, inside = [], False
    for line in open(path, errors="replace"):
        if line.startswith("-- "):
            inside = line.strip() == "-- " + name
            continue
        if inside:
            text.append(line)
    return "".join(text)


def run_micro(binary, raw, extra=()):
    cmd = [binary, "--benchmark_min_time=0.2", "--benchmark_repetitions=3",
           "--benchmark_report_aggregates_only=true", "--benchmark_color=false", *extra]
    print("-- micro-benchmarks: " + " ".join(cmd), flush=True)
    result = subprocess.run(cmd, capture_output=True, text=True)
    raw.write("### micro-benchmarks\n$ %s\n%s%s\n" % (" ".join(cmd), result.stdout,
                                                     result.stderr))
    raw.flush()
    print(result.stdout, end="", flush=True)
    if result.returncode != 0:
        sys.exit("%s failed:\n%s%s" % (os.path.basename(binary), result.stdout, result.stderr))
    return result.stdout


# --- the daemon -----------------------------------------------------------------------------------

def start_daemon(a, moatless, work, env, procs, name, tls=None,
                 flags=("--log.access", "false")):
    """`moatless serve` on the data directory, its gateway plain or with TLS (cert, key), with
    `flags` (by default the access log off): (process, control port, gateway port)."""
    c_port, g_port = gw.free_port(), gw.free_port()
    log = os.path.join(work, name + ".log")
    cmd = [moatless, "serve", "--data-dir", os.path.join(work, "data"),
           "--listen", "127.0.0.1:%d" % c_port, "--gateway-listen", "127.0.0.1:%d" % g_port,
           "--apps.code-dir", os.path.join(work, "code"), *flags,
           "--log.level", a.log_level, "--http.max-requests-per-connection", "0"]
    if tls:
        cmd += ["--gateway.tls-cert-file", tls[0], "--gateway.tls-key-file", tls[1]]
    server = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    procs.append(server)
    gw.wait_http(c_port, "/readyz", "moatless serve", log, server)
    time.sleep(0.3)
    with open(log, errors="replace") as f:
        for line in f:
            if "functions cannot run on this host" in line:
                stop(server)
                skip(a.out, "functions cannot run on this host: " + line.strip())
    return server, c_port, g_port


def stop(server):
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)


def self_signed(work):
    cert, key = os.path.join(work, "gateway-cert.pem"), os.path.join(work, "gateway-key.pem")
    gw.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], "openssl req")
    os.chmod(key, 0o600)
    return cert, key


def expect(what, got, want):
    status, body = got
    if status != want:
        sys.exit("%s: expected %d, got %d %r" % (what, want, status, body[:300]))


def protection_counts(port):
    m = gw.scrape(port)
    api = APP + "/" + STAGE
    return (gw.metric_sum(m, "moatless_gateway_waf_matches_total", api=api),
            gw.metric_sum(m, "moatless_gateway_validation_failures_total", api=api))


# --- rounds ---------------------------------------------------------------------------------------

def measure(a, runner, targets, urls, script, modes, phase):
    """A discarded warm-up, then interleaved rounds until a.rounds are quiet (at most
    a.max_rounds): a list of {"rows": {(mode, target): row}, "quiet": bool}."""
    def one_round(label):
        rows = {}
        for mode, threads, conns in modes:
            for t in targets:
                rows[(mode, t)] = runner.wrk("%s %s %s" % (label, mode, LETTER[t]), t, urls[t],
                                             script, threads, conns)
        return rows

    print("-- %s: warm-up (discarded; starts the warm environments)" % phase, flush=True)
    one_round(phase + " warm-up")
    rounds = []
    max_rounds = a.max_rounds or 3 * a.rounds
    while len(rounds) < max_rounds and sum(r["quiet"] for r in rounds) < a.rounds:
        print("-- %s: round %d" % (phase, len(rounds) + 1), flush=True)
        rows = one_round("%s round %d" % (phase, len(rounds) + 1))
        quiet = all(r["other_cores"] <= a.max_other for r in rows.values())
        if not quiet:
            print("   (busy: other processes used more than %.2f cores; not counted)"
                  % a.max_other, flush=True)
        rounds.append({"rows": rows, "quiet": quiet})
    return rounds


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("moatless")
    p.add_argument("out")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", default="10s")
    p.add_argument("--connections", type=int, default=8,
                   help="wrk -c of the loaded runs; each concurrent request through the daemon "
                        "needs a warm environment of its own (default 8)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--unloaded-connections", type=int, default=1,
                   help="also run every target with -t1 -c N (default 1; 0: not at all)")
    p.add_argument("--raw", help="write wrk's own output of every run here")
    p.add_argument("--gateway-bench", help="run this gateway_bench binary first and report it")
    p.add_argument("--gateway-bench-output",
                   help="report the gateway_bench figures of this console output instead (a file "
                        "holding '-- gateway_bench' and its output, as bench/run's micro.txt)")
    p.add_argument("--max-other", type=float, default=0.35,
                   help="a round in which processes other than the daemon and wrk used more CPU "
                        "than this (cores) is run again (default 0.35)")
    p.add_argument("--max-rounds", type=int, default=0,
                   help="at most this many rounds per phase (default 3 x --rounds)")
    p.add_argument("--log-level", default="info",
                   help="the daemon's log.level (default info, as served: the gateway writes one "
                        "access-log line per request, the function host three per invocation)")
    p.add_argument("--keep", help="keep the data directory, app copy and logs in DIR")
    a = p.parse_args()
    for tool in ("node", "wrk", "openssl"):
        if shutil.which(tool) is None:
            skip(a.out, "%s is needed" % tool)
    body, bad_body = check_copies()
    moatless = os.path.abspath(a.moatless)
    work = os.path.abspath(a.keep) if a.keep else tempfile.mkdtemp(prefix="moatless-bench-stages-")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o711)  # deployed code lies below it: the sandboxes' users must traverse it
    procs = []
    raw = open(a.raw or os.path.join(work, "wrk-raw.txt"), "w")
    try:
        micro = None
        if a.gateway_bench:
            micro = parse_micro(run_micro(os.path.abspath(a.gateway_bench), raw))
        elif a.gateway_bench_output:
            micro = parse_micro(micro_from_file(a.gateway_bench_output))
        bench(a, moatless, work, procs, raw, body, bad_body, micro)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        raw.close()
        if not a.keep:
            subprocess.run(["rm", "-rf", work], check=False)


def bench(a, moatless, work, procs, raw, body, bad_body, micro):
    data, creds = os.path.join(work, "data"), os.path.join(work, "credentials")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOATLESS_")}
    gw.run([moatless, "init", "--data-dir", data, "--credentials-file", creds], "moatless init",
           env=env)
    app = os.path.join(work, "app")
    shutil.copytree(APP_DIR, app)
    server, c_port, g_port = start_daemon(a, moatless, work, env, procs, "serve-plain")
    cenv = dict(env, AWS_SHARED_CREDENTIALS_FILE=creds, AWS_PROFILE="moatless", AWS_REGION="local",
                AWS_CONFIG_FILE="/dev/null", MOATLESS_ENDPOINT="http://127.0.0.1:%d" % c_port)
    gw.run([moatless, "deploy", "--dir", app, "--yes"], "moatless deploy", env=cenv)

    # Each route answers the order, and each stage is on where it should be (and only there).
    sqli = body.replace('"coupon":"SPRING24"', '"coupon":"x\' OR \'1\'=\'1\' UNION SELECT '
                                               'password FROM users --"')
    for t, letter, route, _ in PHASE1:
        path = BASE + route.split(" ", 1)[1]
        gw.check_answer("(%s) by hand" % letter, *request(g_port, path, body))
        has_waf, has_schema = t in ("waf", "both"), t in ("validated", "both")
        expect("(%s) with an SQL injection" % letter, request(g_port, path, sqli),
               403 if has_waf else 400 if has_schema else 200)  # the coupon's pattern
        expect("(%s) with an invalid order" % letter, request(g_port, path, bad_body),
               400 if has_schema else 200)
        expect("(%s) with a form body" % letter,
               request(g_port, path, FORM, "application/x-www-form-urlencoded"),
               415 if has_schema else 200)
    protected0 = protection_counts(c_port)

    script = os.path.join(work, "post.lua")
    post_script(script, body)
    modes = [("loaded", a.threads, a.connections)]
    if a.unloaded_connections > 0:
        modes.append(("unloaded", 1, a.unloaded_connections))
    urls = {t: "http://127.0.0.1:%d%s%s" % (g_port, BASE, route.split(" ", 1)[1])
            for t, _, route, _ in PHASE1}
    runner = gw.Runner(a, raw, c_port, server.pid, [])
    rounds1 = measure(a, runner, [t for t, _, _, _ in PHASE1], urls, script, modes,
                      "phase 1 (plain)")
    protected1 = protection_counts(c_port)
    cold = [gw.metric_sum(gw.scrape(c_port), "moatless_function_init_duration_seconds_count",
                          function=gw.QUALIFIED)]
    stop(server)

    # Phase 2: the same daemon state, its gateway listener on TLS.
    cert, key = self_signed(work)
    server, c_port, g_port = start_daemon(a, moatless, work, env, procs, "serve-tls", (cert, key))
    gw.check_answer("(e) by hand", *request(g_port, BASE + "/plain", body, tls_ca=cert))
    protected2 = protection_counts(c_port)
    runner = gw.Runner(a, raw, c_port, server.pid, [])
    rounds2 = measure(a, runner, ["tls"], {"tls": "https://127.0.0.1:%d%s/plain" % (g_port, BASE)},
                      script, modes, "phase 2 (TLS)")
    protected3 = protection_counts(c_port)
    cold.append(gw.metric_sum(gw.scrape(c_port), "moatless_function_init_duration_seconds_count",
                              function=gw.QUALIFIED))
    stop(server)

    load = open("/proc/loadavg").read().split()[:3]
    protection = [(protected1[0] - protected0[0], protected1[1] - protected0[1]),
                  (protected3[0] - protected2[0], protected3[1] - protected2[1])]
    report(a, rounds1, rounds2, modes, load, versions(), cold, protection, len(body), micro)


def versions():
    def out(cmd):
        r = subprocess.run(cmd, capture_output=True, text=True)
        return (r.stdout + r.stderr).strip()

    def deb(package):
        return out(["dpkg-query", "-W", "-f=${Version}", package]) or "?"
    return {
        "node": out(["node", "--version"]),
        "wrk": (out(["wrk", "-v"]).split() + ["?", "?"])[1],
        "openssl": " ".join(out(["openssl", "version"]).split()[:2]),
        "modsecurity": deb("libmodsecurity3"),
        "crs": deb("modsecurity-crs"),
    }


# --- the report -----------------------------------------------------------------------------------

MICRO = [
    ("BM_SchemaValidateValid1KB", "CompiledSchema::Validate, the 1 KB order (valid)"),
    ("BM_SchemaValidateInvalid1KB", "CompiledSchema::Validate, a 1 KB order with mistakes "
                                    "(every violation collected)"),
    ("BM_SchemaCompile", "CompiledSchema::Compile of the schema (at deploy, not per request)"),
    ("BM_WafInspectGet", "WafEngine::Inspect, GET with browser/API headers, PL1 block"),
    ("BM_WafInspectPostJson1KB", "WafEngine::Inspect, POST of the 1 KB order, PL1 block"),
    ("BM_WafInspectPostSqliBlocked", "WafEngine::Inspect, the same POST with an SQL injection "
                                     "(blocked)"),
]


def report(a, rounds1, rounds2, modes, load, versions, cold, protection, body_bytes, micro):
    def used(rounds):
        quiet = [r for r in rounds if r["quiet"]]
        return (quiet, True) if len(quiet) >= min(a.rounds, 3) else (rounds, False)

    used1, enough1 = used(rounds1)
    used2, enough2 = used(rounds2)

    def rows_of(t):
        return used2 if t == "tls" else used1

    def med(mode, t, field):
        return statistics.median(r["rows"][(mode, t)][field] for r in rows_of(t))

    def around(mode, t):  # the daemon's own time around the invocation, median over rounds
        return statistics.median(r["rows"][(mode, t)]["daemon_mean_us"]
                                 - r["rows"][(mode, t)]["function_mean_us"] for r in rows_of(t))

    def busy(rounds, quiet_enough):
        return gw.busy_note(len(rounds), sum(r["quiet"] for r in rounds), quiet_enough,
                            a.max_other)

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?")
    verdict = lambda ok: "met" if ok else "not met"
    lines = [
        "Measured %s on %d cores (%s), Debian %s; load average at the end %s. Node.js %s, wrk %s, "
        "%s, libmodsecurity %s, OWASP CRS %s; everything on 127.0.0.1, sharing the %d cores."
        % (datetime.date.today().isoformat(), os.cpu_count(), cpu,
           open("/etc/debian_version").read().strip(), " ".join(load), versions["node"],
           versions["wrk"], versions["openssl"], versions["modsecurity"], versions["crs"],
           os.cpu_count()),
        "",
        "Every request is a keep-alive POST of the same %d-byte JSON order "
        "(bench/gateway/stages-app/request.json, `Content-Type: application/json`) to an "
        "`auth: none` route of one Node.js hello function (bench/functions/hello), which answers "
        "`{\"greeting\":\"hello world\"}`; `-d%s`. (a)-(d): %d interleaved round%s after a "
        "discarded warm-up, medians (%s). (e): a second phase after them, the daemon restarted on "
        "the same data directory with its gateway listener on TLS (self-signed P-256 "
        "certificate; wrk keeps its connections, so handshakes are amortised), its own warm-up "
        "and %d round%s (%s). One listener cannot serve both plain HTTP and TLS: **(e) is "
        "compared with (a) of the first phase**, so the TLS figures also carry any drift "
        "between the phases."
        % (body_bytes, a.duration, len(used1), "" if len(used1) == 1 else "s",
           busy(rounds1, enough1), len(used2), "" if len(used2) == 1 else "s",
           busy(rounds2, enough2)),
    ]
    for mode, threads, conns in modes:
        title = ("Under load" if mode == "loaded" else
                 "One request at a time" if conns == 1 else "Light load")
        a_rps = med(mode, "plain", "rps")
        lines += [
            "",
            "### %s: wrk -t%d -c%d" % (title, threads, conns),
            "",
            "| stage | requests/s | p50 ms | p99 ms | daemon CPU µs/request | daemon µs/request "
            "around the function | ÷ (a) req/s |",
            "|---|---|---|---|---|---|---|",
        ]
        for t, letter, route, what in TARGETS:
            lines.append("| (%s) %s — `%s` | %.0f | %.3f | %.3f | %.1f | %.1f | %.2f× |"
                         % (letter, what, route, med(mode, t, "rps"), med(mode, t, "p50"),
                            med(mode, t, "p99"), med(mode, t, "server_us"), around(mode, t),
                            med(mode, t, "rps") / a_rps))
        lines += ["", "Rounds (req/s): " + "; ".join(
            "(%s) %s" % (letter, " / ".join("%.0f" % r["rows"][(mode, t)]["rps"]
                                             for r in rows_of(t)))
            for t, letter, _, _ in TARGETS) + "."]
        lines += ["", "CPU during the runs, in cores of %d (medians): " % os.cpu_count() + "; ".join(
            "(%s) daemon %.2f, wrk %.2f, other %.2f, idle %.2f"
            % (letter, med(mode, t, "server_cores"), med(mode, t, "wrk_cores"),
               med(mode, t, "other_cores"), med(mode, t, "idle_cores"))
            for t, letter, _, _ in TARGETS) + "."]

    # Each stage's cost per request, against (a).
    costs = [("validated", "plain", "(b) − (a): JSON Schema validation of the 1 KB body"),
             ("waf", "plain", "(c) − (a): WAF, CRS 3.3 at paranoia 1, block"),
             ("both", "plain", "(d) − (a): WAF + schema"),
             ("both", "waf", "(d) − (c): the schema on top of the WAF"),
             ("tls", "plain", "(e) − (a): TLS, keep-alive (across the two phases)")]
    header = "| stage cost per request (medians) |"
    sep = "|---|"
    for mode, _, conns in modes:
        header += " p50 µs -c%d | daemon CPU µs -c%d | daemon µs -c%d |" % (conns, conns, conns)
        sep += "---|---|---|"
    lines += ["", "### What each stage costs", "", header, sep]
    for x, y, label in costs:
        cells = ""
        for mode, _, _ in modes:
            cells += " %+.0f | %+.1f | %+.1f |" % (
                (med(mode, x, "p50") - med(mode, y, "p50")) * 1000,
                med(mode, x, "server_us") - med(mode, y, "server_us"),
                around(mode, x) - around(mode, y))
        lines.append("| " + label + " |" + cells)
    unloaded = modes[-1][0]
    lines += [
        "",
        "Derived three ways: **p50 µs**, the difference of wrk's median latency (with one request "
        "at a time, the added work on the request's path; under load mostly queueing, roughly "
        "the CPU difference times the concurrency); **daemon CPU µs**, the difference of the "
        "CPU time of the daemon and everything below it per request wrk counted; **daemon µs**, "
        "the difference of the gateway's own latency minus the function's REPORT Duration, both "
        "means from /metrics over each run (the stages run inside that interval).",
    ]
    lines += [
        "",
        "TLS costs the daemon its share of the record layer (decrypting the request, "
            "encrypting the answer) and the wake-ups around it; wrk's own TLS work is in its CPU, "
            "not the daemon's. In the one-request-at-a-time p50 both sides' work counts.",
    ]

    if micro is not None:
        lines += ["", "### Micro-benchmarks (src/gateway/gateway_bench.cc)", "",
                  "Google Benchmark, the same order and schema as above (the schema: 13 "
                  "properties, nested objects, an array of objects, 11 patterns, enums, formats), "
                  "one thread; medians of 3 repetitions when run by this script.", "",
                  "| benchmark | what | time µs | CPU µs | iterations | counters |",
                  "|---|---|---|---|---|---|"]
        for name, what in MICRO:
            row = micro.get(name)
            if row is None:
                lines.append("| %s | %s | — | — | — | not run |" % (name, what))
            elif "error" in row:
                lines.append("| %s | %s | — | — | — | error: %s |" % (name, what, row["error"]))
            else:
                lines.append("| %s | %s | %.2f | %.2f | %d | %s |" % (
                    name, what, row["time_us"], row["cpu_us"], row["iterations"],
                    ", ".join("%s=%s" % kv for kv in row["counters"].items())))
        valid = micro.get("BM_SchemaValidateValid1KB", {})
        if "cpu_us" in valid:
            lines += ["", "- Validation of the 1 KB body: **%.1f µs** per call (target ≤ 20 µs: "
                      "%s)." % (valid["cpu_us"], verdict(valid["cpu_us"] <= 20))]
        post = micro.get("BM_WafInspectPostJson1KB", {})
        if "cpu_us" in post:
            lines.append("- WafEngine::Inspect of the same POST: %.0f µs per call, against "
                         "%+.0f µs of daemon CPU per request for (c) − (a) end to end (%s)."
                         % (post["cpu_us"], med(unloaded, "waf", "server_us")
                            - med(unloaded, "plain", "server_us"),
                            "one request at a time" if unloaded == "unloaded" else "under load"))
    elif a.gateway_bench is None and a.gateway_bench_output is None:
        lines += ["", "(Micro-benchmarks not run: pass --gateway-bench.)"]

    problems = []
    conns_of = dict((m, c) for m, _, c in modes)
    for phase, rounds in (("1", rounds1), ("2", rounds2)):
        for r in rounds:
            for (mode, t), row in r["rows"].items():
                conns = conns_of[mode]
                what = "(%s) %s" % (LETTER[t], mode)
                if not row["requests"] <= row["answered"] <= row["requests"] + conns:
                    problems.append("%s: wrk counted %d answers, the daemon %d"
                                    % (what, row["requests"], row["answered"]))
                if row["refused"] or row["failed"]:
                    problems.append("%s: %d non-2xx answers, %d failed invocations"
                                    % (what, row["refused"], row["failed"]))
                if abs(row["function_count"] - row["daemon_count"]) > conns:
                    problems.append("%s: %d requests timed, %d invocations"
                                    % (what, row["daemon_count"], row["function_count"]))
    for phase, (waf, invalid) in zip(("phase 1", "phase 2"), protection):
        if waf or invalid:
            problems.append("%s: the daemon counted %d WAF matches and %d validation failures "
                            "during the runs" % (phase, waf, invalid))
    lines += [
        "",
        "### What each figure includes",
        "",
        "- **requests/s, p50, p99**: wrk's, at the client, over loopback with the client on the "
        "same cores.",
        "- **daemon CPU µs/request**: CPU time of the daemon and every process below it (its I/O "
        "threads, gateway pool, the WAF and the validator, the Node.js runtimes in the function "
        "sandboxes) over the run ÷ requests wrk counted. wrk's own CPU is not in it.",
        "- **daemon µs/request around the function**: moatless_gateway_request_duration_seconds "
        "(from routing to the response being ready: the WAF, the schema check, building the "
        "event, the hand-off to the warm environment and back, the mapping) minus "
        "moatless_function_duration_seconds (the REPORT Duration), means between a /metrics "
        "scrape before and after each run, median over rounds. TLS happens outside it, in the "
        "HTTP server, so (e) − (a) is near zero here by construction.",
        "- The WAF of (c) and (d) is the route default: `block`, paranoia 1, anomaly threshold 5, "
        "CRS 3.3's request rules from the gateway's own configuration, the JSON body processor "
        "for `application/json`. (d) runs the WAF first, then the schema, as the gateway does "
        "for every request.",
        "- Before the runs each stage was shown to be on where it should be and off elsewhere: a "
        "copy of the order with an SQL injection in its coupon was refused with 403 by (c) and "
        "(d), with 400 by (b) (the coupon's pattern) and answered 200 by (a); an order with "
        "mistakes was refused with 400 and a urlencoded form with 415 by (b) and (d), and both were "
        "answered 200 by (a) and (c).",
        "- The daemon ran with `--log.level %s` and `--log.access false`; the gateway writes its "
        "own access-log line per request and the function host three per invocation; "
        "`--http.max-requests-per-connection 0`. The load needed %d warm environments; the "
        "daemon started %d in the first phase and %d after its restart (cold starts, nearly all "
        "in the warm-ups)." % (a.log_level, a.connections, cold[0], cold[1]),
        "- Consistency: %s." % (
            "every answer wrk counted was a 2xx the daemon counted, with no WAF match, no "
            "validation failure and no failed invocation during the runs" if not problems else
            "**PROBLEMS**: " + "; ".join(problems)),
    ]
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if problems:
        sys.exit("gateway protection: a consistency check failed")


if __name__ == "__main__":
    main()
