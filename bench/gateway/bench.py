#!/usr/bin/env python3
"""Gateway benchmark (bench/run BENCH_ONLY=gateway).

A fresh `moatless init` data directory and one `moatless serve` with its public gateway on
127.0.0.1 (`--gateway-listen`), the app bench/gateway/app deployed to it (`moatless deploy --yes`):
one Node.js hello world (the handler of bench/functions/hello) behind three routes that differ
only in their authentication. Everything answers the same body, {"greeting":"hello world"}, to a
keep-alive GET (the Invoke request is a POST of `{}`), and wrk drives each target in turn:

  g1  GET /gwbench/bench/key through the gateway: an API key (x-api-key; cached lookup of its
      SHA-256) on the usage plan `big` (rate and burst 1,000,000: the token bucket is taken for
      every request but never refuses), then the payload 2.0 event, the invocation of a warm
      sandboxed environment and the mapping of its answer;
  g2  GET /gwbench/bench/jwt: the same with an RS256 bearer token instead (signature checked
      against the JWKS on every request, issuer, audience, expiry and a scope), minted with
      `openssl dgst -sha256 -sign` once per round and valid for the round;
  g3  GET /gwbench/bench/open: `auth: none`, to isolate the cost of authentication;
  a   the same function through the Lambda Invoke API of the same daemon, without the gateway:
      POST /2015-03-31/functions/gwbench_bench_hello/invocations, SigV4-signed by
      bench/functions/invoke.py (re-signed every round), which also takes a policy decision and
      waits for a durable audit record;
  b   nginx (reverse proxy, upstream keep-alive) in front of a plain Node HTTP server calling the
      same handler (bench/functions/baseline_server.cjs node): the usual way to put a Node
      function behind an HTTP front end, no isolation and no authentication.

Every round runs the five targets with the same wrk -t/-c/-d (--threads, --connections: the
load), then again with -t1 -c1 (--unloaded-connections; 0 leaves it out): with one request at a
time, a latency difference is the added work on the request's path rather than queueing on the
two cores. Rounds are interleaved after a discarded warm-up (which also starts the warm
environments), and the report quotes medians over rounds.

For every run it records, besides wrk's requests/s and latency percentiles, the CPU time of the
serving processes (the daemon with every process below it, which includes the function
sandboxes; nginx's master and workers plus the Node server), of wrk, and the machine's idle time.
A round in which other processes used more than --max-other cores (another build on a shared
machine) is run again, up to --max-rounds, and the medians use the quiet rounds. For the
daemon's targets it also reads the daemon's /metrics before and after the run: the gateway's
moatless_gateway_request_duration_seconds (from routing to the response) or, for the Invoke API,
moatless_http_request_duration_seconds (arrival to response), against
moatless_function_duration_seconds (the REPORT Duration: the runtime fetching the event to its
answer), both as sum/count over the run — the daemon's own time around each invocation; and it
checks that the daemon answered every request with a 2xx and counted no failed invocation.

Usage: bench/gateway/bench.py MOATLESS_BINARY OUT_MARKDOWN [--rounds 3] [--duration 10s]
           [--connections 8] [--threads 2] [--unloaded-connections 1] [--raw FILE]
           [--max-other 0.35] [--max-rounds 3xROUNDS] [--log-level info] [--keep DIR]
Needs node, nginx, wrk and openssl, and a host that can isolate functions (otherwise it writes
why it was skipped). Test tool only: python3 standard library.
"""
import argparse
import base64
import configparser
import datetime
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
APP, STAGE, FUNCTION = "gwbench", "bench", "hello"
QUALIFIED = "%s_%s_%s" % (APP, STAGE, FUNCTION)
API = APP + "/" + STAGE
ISSUER, AUDIENCE, SCOPE = "https://id.gwbench.invalid", "gwbench", "bench.read"
EXPECTED = {"greeting": "hello world"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
INVOKE_ROUTE = "/2015-03-31/functions/{name}/invocations"  # the control router's label

# The targets, in the order each round runs them: (name, what it is in the report).
TARGETS = [
    ("g1", "gateway, `api_key` + usage plan"),
    ("g2", "gateway, `jwt` (RS256)"),
    ("g3", "gateway, `auth: none`"),
    ("a", "Lambda Invoke API, SigV4 (no gateway)"),
    ("b", "nginx → plain Node HTTP server"),
]
GATEWAY_ROUTES = {"g1": "GET /key", "g2": "GET /jwt", "g3": "GET /open"}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(port, path, headers=None, method="GET", body=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_http(port, path, what, log_path, proc):
    for _ in range(200):
        if proc.poll() is not None:
            break
        try:
            if http_get(port, path, timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    text = open(log_path, errors="replace").read()[-4000:] if os.path.exists(log_path) else ""
    sys.exit("%s did not answer on 127.0.0.1:%d%s:\n%s" % (what, port, path, text))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_jwt(private_key, valid_s):
    """An RS256 JWT for the app's `users` authorizer (kid "demo", as scripts/demo-token's JWKS
    names the key), valid from now for valid_s seconds: pure Python cannot sign RS256, openssl
    does."""
    now = int(time.time())
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "demo"}).encode())
    claims = b64url(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench-user",
                                "scope": SCOPE, "iat": now, "exp": now + valid_s}).encode())
    signing_input = (header + "." + claims).encode()
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", private_key],
                               input=signing_input, check=True, capture_output=True).stdout
    return header + "." + claims + "." + b64url(signature)


def lua_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def header_script(path, comment, headers):
    """A static wrk request: a GET with extra headers (the credential stays out of the command
    line, and so out of the raw output)."""
    lines = ["-- generated by bench/gateway/bench.py: " + comment, 'wrk.method = "GET"',
             "wrk.headers = wrk.headers or {}"]
    lines += ["wrk.headers[%s] = %s" % (lua_string(k), lua_string(v)) for k, v in headers]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)


# --- CPU accounting -------------------------------------------------------------------------------

def process_table():
    """{pid: (ppid, CPU seconds of the process and its reaped children)} of every process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        table[int(name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]) / CLK_TCK)
    return table


def tree_cpu(roots):
    """CPU seconds used so far by the processes `roots` and everything below them (the function
    sandboxes are the daemon's descendants; nginx's workers its master's)."""
    table = process_table()
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack, seen = 0.0, list(roots), set()
    while stack:
        pid = stack.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        total += table[pid][1]
        stack += children.get(pid, [])
    return total


def machine_idle():
    """(idle + iowait seconds summed over all cores, monotonic wall seconds)."""
    with open("/proc/stat") as f:
        cpu = f.readline().split()
    return (int(cpu[4]) + int(cpu[5])) / CLK_TCK, time.monotonic()


# --- the daemon's metrics -------------------------------------------------------------------------

LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        # label values may hold braces ("/functions/{name}/invocations"): skip quoted strings
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?\s+(\S+)',
                     line)
        if not m:
            continue
        labels = frozenset((k, v.replace('\\"', '"').replace("\\\\", "\\"))
                           for k, v in LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric_sum(metrics, name, **want):
    """The sum of every series of `name` whose labels include `want`."""
    total = 0.0
    for (n, labels), value in metrics.items():
        if n == name and all((k, v) in labels for k, v in want.items()):
            total += value
    return total


def metric_delta(before, after, name, **want):
    return metric_sum(after, name, **want) - metric_sum(before, name, **want)


def scrape(port):
    status, body = http_get(port, "/metrics")
    if status != 200:
        sys.exit("GET /metrics answered %d" % status)
    return parse_metrics(body.decode())


# --- wrk ----------------------------------------------------------------------------------------

def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


class Runner:
    def __init__(self, a, raw, control_port, daemon_pid, baseline_pids):
        self.a, self.raw = a, raw
        self.control_port, self.daemon_pid, self.baseline_pids = control_port, daemon_pid, baseline_pids

    def wrk(self, label, target, url, script, threads, connections):
        """One wrk run of `target`; a dict of wrk's figures, the CPU each side used and, for the
        daemon's targets, what its metrics counted over the run."""
        cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d" + self.a.duration, "--latency"]
        if script:
            cmd += ["-s", script]
        cmd.append(url)
        daemon = target != "b"
        roots = [self.daemon_pid] if daemon else self.baseline_pids
        m0 = scrape(self.control_port) if daemon else None
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        server0 = tree_cpu(roots)
        idle0, wall0 = machine_idle()
        result = subprocess.run(cmd, capture_output=True, text=True)
        idle1, wall1 = machine_idle()
        server1 = tree_cpu(roots)
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        text = result.stdout + result.stderr
        self.raw.write("### %s\n$ %s\n%s\n" % (label, " ".join(cmd), text))
        self.raw.flush()
        if result.returncode != 0:
            sys.exit("wrk failed:\n" + text)
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        if errors:
            sys.exit("%s: wrk saw %s non-2xx responses" % (label, errors.group(1)))
        sock = re.search(r"Socket errors:.*", text)
        if sock:
            print("warning: %s: wrk %s" % (label, sock.group(0)), file=sys.stderr)
        wall = wall1 - wall0
        wrk_cpu = ((children1.ru_utime + children1.ru_stime)
                   - (children0.ru_utime + children0.ru_stime))
        requests = int(re.search(r"^\s*(\d+) requests in", text, re.M).group(1))
        row = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
               "p50": ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1)),
               "p99": ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1)),
               "requests": requests,
               "server_cores": (server1 - server0) / wall, "wrk_cores": wrk_cpu / wall,
               "idle_cores": (idle1 - idle0) / wall,
               "other_cores": os.cpu_count() - (server1 - server0 + wrk_cpu + idle1 - idle0) / wall,
               "server_us": (server1 - server0) / max(requests, 1) * 1e6}
        if daemon:
            time.sleep(0.2)  # requests still in flight when wrk stopped land in this window
            row.update(self.daemon_figures(target, m0, scrape(self.control_port)))
        extra = ""
        if daemon:
            extra = "  daemon %.1f µs, function %.1f µs per request" % (
                row["daemon_mean_us"], row["function_mean_us"])
        print("%-14s %8.0f req/s  p50 %7.3f ms  p99 %7.3f ms  %7d requests  CPU cores: server "
              "%.2f, wrk %.2f, other %.2f, idle %.2f%s"
              % (label, row["rps"], row["p50"], row["p99"], row["requests"], row["server_cores"],
                 row["wrk_cores"], row["other_cores"], row["idle_cores"], extra), flush=True)
        return row

    @staticmethod
    def daemon_figures(target, m0, m1):
        d = lambda name, **labels: metric_delta(m0, m1, name, **labels)
        if target in GATEWAY_ROUTES:
            route = GATEWAY_ROUTES[target]
            name = "moatless_gateway_request_duration_seconds"
            labels = {"api": API, "route": route}
            answered = d("moatless_gateway_requests_total", api=API, route=route, status="2xx")
            refused = (d("moatless_gateway_requests_total", api=API, route=route)
                       - answered)
        else:
            name = "moatless_http_request_duration_seconds"
            labels = {"listener": "control", "route": INVOKE_ROUTE}
            answered = sum(d("moatless_http_requests_total", listener="control",
                             route=INVOKE_ROUTE, code=code) for code in ("200",))
            refused = d("moatless_http_requests_total", listener="control",
                        route=INVOKE_ROUTE) - answered
        count = d(name + "_count", **labels)
        fcount = d("moatless_function_duration_seconds_count", function=QUALIFIED)
        failed = (d("moatless_function_invocations_total", function=QUALIFIED, outcome="error")
                  + d("moatless_function_invocations_total", function=QUALIFIED, outcome="timeout"))
        return {
            "daemon_count": count,
            "daemon_mean_us": d(name + "_sum", **labels) / max(count, 1) * 1e6,
            "function_count": fcount,
            "function_mean_us": (d("moatless_function_duration_seconds_sum", function=QUALIFIED)
                                 / max(fcount, 1) * 1e6),
            "answered": answered, "refused": refused, "failed": failed,
        }


# --- set-up ---------------------------------------------------------------------------------------

def skip(out, why):
    with open(out, "w") as f:
        f.write("gateway benchmark skipped: %s\n" % why)
    print("gateway benchmark skipped: " + why)
    sys.exit(0)


def run(cmd, what, **kw):
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        sys.exit("%s failed:\n%s\n%s" % (what, result.stdout, result.stderr))
    return result


def nginx_conf(work, port, upstream_port):
    return """worker_processes 2;
daemon off;
pid %(w)s/nginx.pid;
error_log %(w)s/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  client_body_temp_path %(w)s/nginx-body;
  proxy_temp_path %(w)s/nginx-proxy;
  upstream node {
    server 127.0.0.1:%(up)d;
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:%(port)d;
    location / {
      proxy_pass http://node;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
""" % {"w": work, "port": port, "up": upstream_port}


def check_answer(what, status, body):
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if status != 200 or parsed != EXPECTED:
        sys.exit("%s: expected 200 %s, got %d %r" % (what, json.dumps(EXPECTED), status,
                                                     body[:300]))


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
    p.add_argument("--max-other", type=float, default=0.35,
                   help="a round in which processes other than the servers and wrk used more CPU "
                        "than this (cores) is run again (default 0.35)")
    p.add_argument("--max-rounds", type=int, default=0,
                   help="at most this many rounds in all (default 3 x --rounds)")
    p.add_argument("--log-level", default="info",
                   help="the daemon's log.level (default info, as served: the gateway writes one "
                        "access-log line per request, the function host three per invocation)")
    p.add_argument("--keep", help="keep the data directory, app copy and logs in DIR")
    a = p.parse_args()
    for tool in ("node", "nginx", "wrk", "openssl"):
        if shutil.which(tool) is None:
            skip(a.out, "%s is needed" % tool)
    handler = os.path.join(TOP, "bench", "functions", "hello", "index.cjs")
    with open(handler, "rb") as f1, \
            open(os.path.join(HERE, "app", "functions", "hello", "index.cjs"), "rb") as f2:
        if f1.read() != f2.read():
            sys.exit("bench/gateway/app/functions/hello/index.cjs differs from %s: copy it again "
                     "(the two benchmarks measure the same handler)" % handler)
    moatless = os.path.abspath(a.moatless)
    work = os.path.abspath(a.keep) if a.keep else tempfile.mkdtemp(prefix="moatless-bench-gateway-")
    os.makedirs(work, exist_ok=True)
    # Deployed code lies below it: the sandboxes' unprivileged users must traverse it.
    os.chmod(work, 0o711)
    procs = []
    raw = open(a.raw or os.path.join(work, "wrk-raw.txt"), "w")
    try:
        bench(a, moatless, work, procs, raw)
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


def bench(a, moatless, work, procs, raw):
    data, creds = os.path.join(work, "data"), os.path.join(work, "credentials")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOATLESS_")}
    run([moatless, "init", "--data-dir", data, "--credentials-file", creds], "moatless init",
        env=env)
    app = os.path.join(work, "app")
    shutil.copytree(os.path.join(HERE, "app"), app, ignore=shutil.ignore_patterns("keys"))
    keys = os.path.join(app, "keys")
    run([os.path.join(TOP, "scripts", "demo-token"), keys, "--issuer", ISSUER, "--audience",
         AUDIENCE, "--scope", SCOPE], "scripts/demo-token")
    private_key = os.path.join(keys, "private.pem")

    c_port, g_port = free_port(), free_port()
    serve_log = os.path.join(work, "serve.log")
    server = subprocess.Popen(
        [moatless, "serve", "--data-dir", data, "--listen", "127.0.0.1:%d" % c_port,
         "--gateway-listen", "127.0.0.1:%d" % g_port, "--apps.code-dir", os.path.join(work, "code"),
         "--log.access", "false", "--log.level", a.log_level,
         "--http.max-requests-per-connection", "0"],
        stdout=open(serve_log, "w"), stderr=subprocess.STDOUT, env=env)
    procs.append(server)
    wait_http(c_port, "/readyz", "moatless serve", serve_log, server)
    time.sleep(0.3)
    with open(serve_log, errors="replace") as f:
        for line in f:
            if "functions cannot run on this host" in line:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=60)
                skip(a.out, "functions cannot run on this host: " + line.strip())

    cenv = dict(env, AWS_SHARED_CREDENTIALS_FILE=creds, AWS_PROFILE="moatless", AWS_REGION="local",
                AWS_CONFIG_FILE="/dev/null", MOATLESS_ENDPOINT="http://127.0.0.1:%d" % c_port)
    run([moatless, "deploy", "--dir", app, "--yes"], "moatless deploy", env=cenv)
    created = run([moatless, "apikeys", "create", "--app", APP, "--stage", STAGE, "--plan", "big",
                   "--name", "bench"], "moatless apikeys create", env=cenv)
    api_key = created.stdout.strip().splitlines()[-1].strip()

    # The baseline: a plain Node HTTP server calling the same handler, behind nginx.
    fbench = os.path.join(TOP, "bench", "functions")
    n_port, x_port = free_port(), free_port()
    node_log = os.path.join(work, "node.log")
    node = subprocess.Popen(["node", "baseline_server.cjs", "node", str(n_port), "hello/index.cjs"],
                            cwd=fbench, stdout=open(node_log, "w"), stderr=subprocess.STDOUT)
    procs.append(node)
    with open(os.path.join(work, "nginx.conf"), "w") as f:
        f.write(nginx_conf(work, x_port, n_port))
    nginx_log = os.path.join(work, "nginx-error.log")
    nginx = subprocess.Popen(["nginx", "-c", os.path.join(work, "nginx.conf"), "-e", nginx_log],
                             stdout=subprocess.DEVNULL, stderr=open(nginx_log, "a"))
    procs.append(nginx)
    wait_http(n_port, "/", "the Node baseline server", node_log, node)
    wait_http(x_port, "/", "nginx", nginx_log, nginx)

    # Each target once by hand: a set-up, auth or mapping problem shows as a readable error; and
    # the authenticated routes must refuse a request without credentials.
    base = "/%s/%s" % (APP, STAGE)
    token = mint_jwt(private_key, 600)
    check_answer("g1 by hand", *http_get(g_port, base + "/key", {"x-api-key": api_key}))
    check_answer("g2 by hand", *http_get(g_port, base + "/jwt", {"Authorization": "Bearer " + token}))
    check_answer("g3 by hand", *http_get(g_port, base + "/open"))
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for path, headers, what, want in (
            ("/key", {}, "without an API key", 401),
            ("/key", {"x-api-key": "x" * 40}, "with an unknown API key", 403),
            ("/jwt", {}, "without a token", 401),
            ("/jwt", {"Authorization": "Bearer " + forged}, "with a forged signature", 401)):
        status, body = http_get(g_port, base + path, headers)
        if status != want:
            sys.exit("GET %s %s answered %d %r, not %d" % (base + path, what, status, body[:200],
                                                           want))
    invoke_py = [sys.executable, os.path.join(fbench, "invoke.py")]
    invoke_args = ["--endpoint", "127.0.0.1:%d" % c_port, "--credentials-file", creds,
                   "--function", QUALIFIED, "--payload", "{}"]
    once = run(invoke_py + ["once"] + invoke_args, "signed Invoke by hand")
    check_answer("a by hand", *(lambda s: (int(s[0]), s[1].encode()))(once.stdout.split(" ", 1)))
    check_answer("b by hand", *http_get(x_port, "/"))

    scripts = {t: os.path.join(work, t + ".lua") for t in ("g1", "g2", "a")}
    header_script(scripts["g1"], "GET with an API key", [("x-api-key", api_key)])
    seconds = int(re.fullmatch(r"(\d+)([smh]?)", a.duration).group(1)) * \
        {"": 1, "s": 1, "m": 60, "h": 3600}[re.fullmatch(r"(\d+)([smh]?)", a.duration).group(2)]

    def refresh():
        """Credentials for one round: a new JWT valid for the round (ten runs of --duration and
        the metrics scrapes between them, plus a margin), a new Invoke signature."""
        jwt = mint_jwt(private_key, 10 * seconds + 300)
        header_script(scripts["g2"], "GET with an RS256 bearer token",
                      [("Authorization", "Bearer " + jwt)])
        with open(scripts["a"], "w") as f:
            f.write(run(invoke_py + ["lua"] + invoke_args, "invoke.py lua").stdout)

    urls = {"g1": "http://127.0.0.1:%d%s/key" % (g_port, base),
            "g2": "http://127.0.0.1:%d%s/jwt" % (g_port, base),
            "g3": "http://127.0.0.1:%d%s/open" % (g_port, base),
            "a": "http://127.0.0.1:%d/2015-03-31/functions/%s/invocations" % (c_port, QUALIFIED),
            "b": "http://127.0.0.1:%d/" % x_port}
    runner = Runner(a, raw, c_port, server.pid, [nginx.pid, node.pid])
    modes = [("loaded", a.threads, a.connections)]
    if a.unloaded_connections > 0:
        modes.append(("unloaded", 1, a.unloaded_connections))

    def one_round(label):
        refresh()
        rows = {}
        for mode, threads, conns in modes:
            for t, _ in TARGETS:
                rows[(mode, t)] = runner.wrk("%s %s %s" % (label, mode, t), t, urls[t],
                                             scripts.get(t), threads, conns)
        return rows

    print("-- warm-up (discarded; starts the warm environments)", flush=True)
    one_round("warm-up")
    rounds = []
    max_rounds = a.max_rounds or 3 * a.rounds
    while len(rounds) < max_rounds and sum(r["quiet"] for r in rounds) < a.rounds:
        print("-- round %d" % (len(rounds) + 1), flush=True)
        rows = one_round("round %d" % (len(rounds) + 1))
        quiet = all(r["other_cores"] <= a.max_other for r in rows.values())
        if not quiet:
            print("   (busy: other processes used more than %.2f cores; not counted)"
                  % a.max_other, flush=True)
        rounds.append({"rows": rows, "quiet": quiet})

    load = open("/proc/loadavg").read().split()[:3]
    cold = int(metric_sum(scrape(c_port), "moatless_function_init_duration_seconds_count",
                          function=QUALIFIED))
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)
    versions = {
        "node": run(["node", "--version"], "node --version").stdout.strip(),
        "nginx": run(["nginx", "-v"], "nginx -v").stderr.strip().split("/")[-1],
        "wrk": ((lambda r: r.stdout + r.stderr)(subprocess.run(["wrk", "-v"], capture_output=True,
                                                               text=True)).split() + ["?", "?"])[1],
    }
    report(a, rounds, modes, load, versions, cold)


# --- the report -----------------------------------------------------------------------------------

def busy_note(total, quiet, enough, max_other):
    """What the report says about rounds other processes disturbed (quiet: the undisturbed ones;
    enough: whether the medians could keep to them)."""
    if not enough:
        return ("**the machine stayed busy**: only %d of %d rounds had other processes below "
                "%.2f cores; the medians are over all of them" % (quiet, total, max_other))
    if total > quiet:
        return ("%d rounds run, %d of them discarded because other processes used more than "
                "%.2f cores (the machine is shared)" % (total, total - quiet, max_other))
    return "no round disturbed by other processes"


def report(a, rounds, modes, load, versions, cold):
    quiet = [r for r in rounds if r["quiet"]]
    enough = len(quiet) >= min(a.rounds, 3)
    used = quiet if enough else rounds
    names = dict(TARGETS)

    def med(mode, t, field):
        return statistics.median(r["rows"][(mode, t)][field] for r in used)

    def per_round(mode, t, field, fmt="%.0f"):
        return " / ".join(fmt % r["rows"][(mode, t)][field] for r in used)

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?")
    busy = busy_note(len(rounds), len(quiet), enough, a.max_other)
    verdict = lambda ok: "met" if ok else "not met"
    lines = [
        "Measured %s on %d cores (%s), Debian %s; load average at the end %s. Node.js %s, "
        "nginx %s, wrk %s; everything on 127.0.0.1, sharing the %d cores."
        % (datetime.date.today().isoformat(), os.cpu_count(), cpu,
           open("/etc/debian_version").read().strip(), " ".join(load), versions["node"],
           versions["nginx"], versions["wrk"], os.cpu_count()),
        "",
        "%d interleaved round%s after a discarded warm-up, medians (%s); keep-alive, `-d%s`, "
        "every target in every round. The same body, `{\"greeting\":\"hello world\"}`, from the "
        "same handler (bench/functions/hello/index.cjs) everywhere."
        % (len(used), "" if len(used) == 1 else "s", busy, a.duration),
    ]
    for mode, threads, conns in modes:
        lines += [
            "",
            "### %s: wrk -t%d -c%d" % ("Under load" if mode == "loaded" else
                                       "One request at a time" if conns == 1 else
                                       "Light load", threads, conns),
            "",
            "| target | requests/s | p50 ms | p99 ms | serving CPU µs/request | ÷ (b) req/s "
            "| ÷ (a) req/s |",
            "|---|---|---|---|---|---|---|",
        ]
        b_rps, a_rps = med(mode, "b", "rps"), med(mode, "a", "rps")
        for t, label in TARGETS:
            r = med(mode, t, "rps")
            lines.append("| (%s) %s | %.0f | %.3f | %.3f | %.1f | %.2f× | %.2f× |"
                         % (t, label, r, med(mode, t, "p50"), med(mode, t, "p99"),
                            med(mode, t, "server_us"), r / b_rps, r / a_rps))
        lines += ["", "Rounds (req/s): " + "; ".join(
            "(%s) %s" % (t, per_round(mode, t, "rps")) for t, _ in TARGETS) + "."]
        lines += ["", "CPU during the runs, in cores of %d (medians; server = the serving processes "
                  "as below): " % os.cpu_count() + "; ".join(
                      "(%s) server %.2f, wrk %.2f, other %.2f, idle %.2f"
                      % (t, med(mode, t, "server_cores"), med(mode, t, "wrk_cores"),
                         med(mode, t, "other_cores"), med(mode, t, "idle_cores"))
                      for t, _ in TARGETS) + "."]
        d = lambda x, y: (med(mode, x, "p50") - med(mode, y, "p50")) * 1000
        c = lambda x, y: med(mode, x, "server_us") - med(mode, y, "server_us")
        lines += [
            "",
            "| difference (medians) | p50 latency µs | serving CPU µs/request |",
            "|---|---|---|",
            "| (g1) − (a): gateway with API key + plan vs the Invoke API | %+.0f | %+.1f |"
            % (d("g1", "a"), c("g1", "a")),
            "| (g2) − (a): gateway with JWT vs the Invoke API | %+.0f | %+.1f |"
            % (d("g2", "a"), c("g2", "a")),
            "| (g3) − (a): gateway without auth vs the Invoke API | %+.0f | %+.1f |"
            % (d("g3", "a"), c("g3", "a")),
            "| (g1) − (g3): API key lookup + usage plan | %+.0f | %+.1f |"
            % (d("g1", "g3"), c("g1", "g3")),
            "| (g2) − (g3): RS256 JWT verification + claims + scope | %+.0f | %+.1f |"
            % (d("g2", "g3"), c("g2", "g3")),
            "| (g1) − (b): gateway + sandboxed function vs nginx → Node | %+.0f | %+.1f |"
            % (d("g1", "b"), c("g1", "b")),
        ]
        lines += [
            "",
            "The daemon's own accounting over the same runs (sum/count of its histograms between "
            "a /metrics scrape before and after each run, then the median over rounds):",
            "",
            "| target | daemon µs/request | function µs/request (REPORT Duration) | difference µs |",
            "|---|---|---|---|",
        ]
        for t in ("g1", "g2", "g3", "a"):
            dm, fm = med(mode, t, "daemon_mean_us"), med(mode, t, "function_mean_us")
            lines.append("| (%s) %s | %.1f | %.1f | %.1f |"
                         % (t, names[t], dm, fm, statistics.median(
                             r["rows"][(mode, t)]["daemon_mean_us"]
                             - r["rows"][(mode, t)]["function_mean_us"] for r in used)))
        diff = lambda t: statistics.median(r["rows"][(mode, t)]["daemon_mean_us"]
                                           - r["rows"][(mode, t)]["function_mean_us"]
                                           for r in used)
        lines += ["", "Of which API key + usage plan (g1 − g3 of the differences): %+.1f µs; "
                  "JWT (g2 − g3): %+.1f µs; gateway vs Invoke API (g1 − a): %+.1f µs."
                  % (diff("g1") - diff("g3"), diff("g2") - diff("g3"), diff("g1") - diff("a"))]

    lines += ["", "### Against the targets", ""]
    L = modes[0][0]
    e2e = med(L, "g1", "rps") / med(L, "b", "rps")
    lines.append("- End to end, (g1) ÷ (b) requests/s under load (-c%d): **%.2f×** (target ≥ 0.5×: "
                 "%s)." % (modes[0][2], e2e, verdict(e2e >= 0.5)))
    lines.append("- Gateway overhead (auth + usage plan + mapping), target ≤ 50 µs median. No "
                 "single figure is exactly that; each below says what it holds:")
    for mode, _, conns in modes:
        def p50(x, y):
            return (med(mode, x, "p50") - med(mode, y, "p50")) * 1000

        def around(t):
            return statistics.median(r["rows"][(mode, t)]["daemon_mean_us"]
                                     - r["rows"][(mode, t)]["function_mean_us"] for r in used)
        at = "-c%d" % conns
        lines += [
            "  - %s, (g1) − (a), p50 at the client: **%+.0f µs** (%s as written; but (a) is not "
            "free: it waits for a durable audit record, so this compares two complete paths "
            "into the same function);" % (at, p50("g1", "a"), verdict(p50("g1", "a") <= 50)),
            "  - %s, from the daemon's metrics, (g1) gateway latency − function duration, means: "
            "**%.1f µs** (%s; it includes the hand-off to the warm environment through the Runtime "
            "API and back, which every invocation pays: the Invoke API's own figure is %.1f µs);"
            % (at, around("g1"), verdict(around("g1") <= 50), around("a")),
            "  - %s, authentication + usage plan alone, (g1) − (g3): **%+.0f µs** p50 at the "
            "client, %+.1f µs in the daemon's metrics, %+.1f µs of serving CPU per request "
            "(%s on the p50)." % (at, p50("g1", "g3"), around("g1") - around("g3"),
                                  med(mode, "g1", "server_us") - med(mode, "g3", "server_us"),
                                  verdict(p50("g1", "g3") <= 50)),
        ]
    # Consistency: every answer wrk counted was a 2xx the daemon counted, no failed invocation.
    problems = []
    for r in rounds:
        for (mode, t), row in r["rows"].items():
            if t == "b":
                continue
            conns = dict((m, c) for m, _, c in modes)[mode]
            if not row["requests"] <= row["answered"] <= row["requests"] + conns:
                problems.append("%s %s: wrk counted %d answers, the daemon %d"
                                % (mode, t, row["requests"], row["answered"]))
            if row["refused"] or row["failed"]:
                problems.append("%s %s: %d non-2xx answers, %d failed invocations"
                                % (mode, t, row["refused"], row["failed"]))
            if abs(row["function_count"] - row["daemon_count"]) > conns:
                problems.append("%s %s: %d requests timed, %d invocations"
                                % (mode, t, row["daemon_count"], row["function_count"]))
    lines += [
        "",
        "### What each figure includes",
        "",
        "- **requests/s, p50, p99**: wrk's, at the client: the whole HTTP exchange over loopback "
        "with the client on the same cores. Under load (-c%d) on %d cores, latency is mostly "
        "queueing: p50 ≈ connections ÷ throughput, so a p50 difference there is roughly the "
        "difference in CPU per request times the concurrency, not the length of one request's "
        "path; the one-request-at-a-time table measures that path (and each side then also pays "
        "its wake-ups)." % (modes[0][2], os.cpu_count()),
        "- **serving CPU µs/request**: CPU time of the serving processes over the run ÷ requests "
        "wrk counted — for (g*) and (a) the daemon and everything below it (its I/O threads, "
        "gateway and service pools, the audit writer, and the Node.js runtimes in the function "
        "sandboxes); for (b) nginx's master and workers plus the Node server. Kernel time spent "
        "on loopback networking is charged to whichever process runs it; wrk's own CPU is not "
        "in it.",
        "- **(g1) − (a)**: both end in the same "
        "warm sandboxed environment through the same invoker, so the difference is what the "
        "gateway does (routing under /APP/STAGE, API key lookup, token bucket, payload 2.0 "
        "event of about 1 KB instead of `{}`, response mapping, its access-log line) minus what "
        "the Invoke API does instead (SigV4 check with a cached signing key, policy decision, "
        "a durable audit record the response waits for, the Lambda response headers). It can be "
        "negative: the Invoke API is not free.",
        "- **(g1) − (g3), (g2) − (g3)**: the cost of authentication alone: the same route shape, "
        "function and environments; (g1) adds the x-api-key header, (g2) the bearer token and "
        "its claims in the event's requestContext.authorizer, so the function parses a slightly "
        "larger event.",
        "- **daemon µs/request − function µs/request** (metrics): for the gateway, "
        "moatless_gateway_request_duration_seconds runs from the gateway handler's start (after "
        "the HTTP server has read and validated the request) to the response being ready, before "
        "it is written and before the access-log line; for (a), "
        "moatless_http_request_duration_seconds of the control listener's Invoke route covers "
        "the router and handler, including the wait for the durable audit record. "
        "moatless_function_duration_seconds is the REPORT Duration, from the runtime in the "
        "sandbox receiving the event to it posting the result. The difference is therefore the "
        "daemon's time around each invocation: authentication, usage plan, event building, "
        "response mapping, the hand-off to the warm environment through the Runtime API and "
        "back (a loopback HTTP exchange with the sandbox's runtime, both ways), and the "
        "hops between the I/O threads and the blocking pool — under load also the time a "
        "request waits for a core. Means, not medians: the histograms' buckets (0.5 ms and up) "
        "are too coarse for a median of tens of µs.",
        "- **(b)**: nginx %s (`worker_processes 2`, upstream keep-alive, access log off) "
        "proxying to one Node.js process (`node:http`, the handler called in-process): no "
        "isolation, no authentication, no per-request log. Under moatless each request in "
        "flight needs a warm environment of its own (a Node.js runtime in its own sandbox): the "
        "load needed %d; the daemon started %d in all (cold starts, nearly all in the warm-up)."
        % (versions["nginx"], modes[0][2], cold),
        "- The daemon ran with `--log.level %s` and `--log.access false` (the control listener's "
        "per-request line off, as in the other sections); the gateway writes its own access-log "
        "line for every request whatever log.access says, and the function host three per "
        "invocation on every target (the runtime's START and END lines and its own invocation "
        "record), to a file on the same disk. "
        "`--http.max-requests-per-connection 0` on both listeners, as in the other sections."
        % a.log_level,
        "- Consistency: %s." % ("every answer wrk counted was a 2xx the daemon counted, and the "
                               "daemon counted no failed invocation" if not problems else
                               "**PROBLEMS**: " + "; ".join(problems)),
    ]
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if problems:
        sys.exit("gateway: a consistency check failed")


if __name__ == "__main__":
    main()
