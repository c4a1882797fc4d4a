#!/usr/bin/env python3
"""Secrets Manager benchmark (issue 8; bench/run BENCH_ONLY=secrets).

A fresh `moatless init` data directory and one `moatless serve` on 127.0.0.1. Through the AWS
Secrets Manager JSON 1.1 API (SigV4, signing name `secretsmanager`, region `local`) it creates two
secrets with CreateSecret, checks one GetSecretValue by hand, then runs interleaved wrk rounds
(the same -t/-c/-d, keep-alive, for all three) of:

  healthz  GET /healthz of the same server: the same-run baseline;
  get      GetSecretValue of `bench/read` by name: SigV4 check, policy decision, the version's
           data key unwrapped and its value decrypted, a durable audit append, a JSON answer.
           One signed request replayed by wrk (a static request: no Lua per request), signed
           with the current time before every round; the server accepts the same signed
           request again within its 15-minute clock-skew window;
  put      PutSecretValue of `bench/write`: each request a new version (distinct
           ClientRequestToken and value), one durable SQLite transaction (sealed under a fresh
           data key, AWSCURRENT / AWSPREVIOUS moved) plus a durable audit append. A batch of
           distinct requests is pre-signed before every round (one X-Amz-Date, the current
           time) and a wrk Lua script hands them out, each wrk thread its own share, each
           request once: a replayed token would be an idempotent no-op, so a round that runs
           out of pre-signed requests fails instead of reusing any.

Every round records the CPU time of the server (/proc/PID/stat) and of wrk (its rusage) and the
machine's idle time, to show where the two cores went: the client is not the bottleneck when wrk
uses a small share of them while the server uses the rest, and the same wrk drives /healthz
several times faster. The machine may be shared: a round in which other processes took more
than --max-other cores is run again (up to --max-rounds), and the medians use the quiet rounds
(if there are at least min(--rounds, 3) of them; otherwise all rounds, and the report says so).
After the rounds: the audit log holds a record for every request answered,
`moatless audit verify` passes after SIGTERM, and the write secret's AWSCURRENT version is one
of the values the last write round sent.

Usage: bench/secrets/bench.py MOATLESS_BINARY OUT_MARKDOWN [--rounds 3] [--duration 10s]
           [--connections 64] [--threads 2] [--raw FILE] [--write-batch N]
           [--max-other 0.35] [--max-rounds 3xROUNDS] [--keep DIR]
Test tool only: python3 standard library, no botocore.
"""
import argparse
import configparser
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

REGION = "local"
SERVICE = "secretsmanager"
CONTENT_TYPE = "application/x-amz-json-1.1"
KINDS = ("healthz", "get", "put")
READ_NAME = "bench/read"
WRITE_NAME = "bench/write"
# Published by OpenBao for one node (as quoted in issue 8): not measured here.
OPENBAO_READS, OPENBAO_WRITES = 27000, 140


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Signer:
    """SigV4 (header form) for the JSON 1.1 protocol, every header signed."""

    def __init__(self, endpoint, key_id, secret):
        self.endpoint, self.key_id, self.secret = endpoint, key_id, secret
        self.keys = {}

    def signing_key(self, date):
        if date not in self.keys:
            k = ("AWS4" + self.secret).encode()
            for part in (date, REGION, SERVICE, "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            self.keys[date] = k
        return self.keys[date]

    def headers(self, operation, body, amz_date):
        """[(name, value)] of a signed POST / of `body` (bytes) calling `operation`."""
        date = amz_date[:8]
        headers = {"content-type": CONTENT_TYPE, "host": self.endpoint, "x-amz-date": amz_date,
                   "x-amz-target": "secretsmanager." + operation}
        names = sorted(headers)
        signed = ";".join(names)
        canonical = "\n".join(["POST", "/", "", "".join("%s:%s\n" % (k, headers[k]) for k in names),
                               signed, hashlib.sha256(body).hexdigest()])
        scope = "%s/%s/%s/aws4_request" % (date, REGION, SERVICE)
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        signature = hmac.new(self.signing_key(date), to_sign.encode(), hashlib.sha256).hexdigest()
        out = [("Host", self.endpoint), ("Content-Type", CONTENT_TYPE),
               ("X-Amz-Date", amz_date), ("X-Amz-Target", "secretsmanager." + operation)]
        out.append(("Authorization", "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                    "Signature=%s" % (self.key_id, scope, signed, signature)))
        return out


def now_amz():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def call(signer, operation, payload):
    """One signed request; returns (status, parsed JSON answer)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    host, port = signer.endpoint.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
        for k, v in signer.headers(operation, body, now_amz()):
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        text = response.read()
        return response.status, (json.loads(text) if text else {})
    finally:
        conn.close()


def must(signer, operation, payload):
    status, answer = call(signer, operation, payload)
    if status != 200:
        sys.exit("%s failed: HTTP %d %s" % (operation, status, json.dumps(answer)[:500]))
    return answer


def lua_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def read_script(signer, path):
    """A static wrk request: formatted once by wrk, the same bytes on every connection."""
    body = json.dumps({"SecretId": READ_NAME}, separators=(",", ":"))
    lines = ["-- generated by bench/secrets/bench.py: a signed GetSecretValue of " + READ_NAME,
             'wrk.method = "POST"', 'wrk.path = "/"', "wrk.body = " + lua_string(body),
             "wrk.headers = {}"]
    lines += ["wrk.headers[%s] = %s" % (lua_string(k), lua_string(v))
              for k, v in signer.headers("GetSecretValue", body.encode(), now_amz())]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


WRITE_LUA = r"""-- generated by bench/secrets/bench.py: %(count)d distinct pre-signed PutSecretValue
-- requests of %(name)s (one X-Amz-Date), read from %(data)s; each wrk thread sends its own share,
-- each request once. `done` reports how many requests found their thread's share used up (those
-- were sent again, as idempotent replays: bench.py fails the round if there are any).
local data_file = %(data_lua)s
local nthreads = %(threads)d
local fixed = {
  ["Host"] = %(host)s,
  ["Content-Type"] = %(ctype)s,
  ["X-Amz-Date"] = %(date)s,
  ["X-Amz-Target"] = "secretsmanager.PutSecretValue",
}
local auth_prefix = %(auth_prefix)s
local all_threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(all_threads, thread)
end

function init(args)
  reqs, n, reused = {}, 0, 0
  local line_no = 0
  for line in io.lines(data_file) do
    if line_no %% nthreads == id then
      local tab = string.find(line, "\t", 1, true)
      local h = {}
      for k, v in pairs(fixed) do h[k] = v end
      h["Authorization"] = auth_prefix .. string.sub(line, tab + 1)
      reqs[#reqs + 1] = wrk.format("POST", "/", h, string.sub(line, 1, tab - 1))
    end
    line_no = line_no + 1
  end
end

function request()
  n = n + 1
  if n > #reqs then
    reused = reused + 1
    return reqs[(n - 1) %% #reqs + 1]
  end
  return reqs[n]
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(all_threads) do total = total + t:get("reused") end
  io.write(string.format("pre-signed requests reused: %%d\n", total))
end
"""


def write_script(signer, count, threads, path, data_path):
    """Pre-signs `count` distinct PutSecretValue requests; returns the set of their values."""
    amz_date = now_amz()
    values = []
    with open(data_path, "w") as data:
        for _ in range(count):
            token = str(uuid.uuid4())
            value = json.dumps({"username": "bench", "password": secrets.token_urlsafe(24)},
                               separators=(",", ":"))
            body = json.dumps({"SecretId": WRITE_NAME, "ClientRequestToken": token,
                               "SecretString": value}, separators=(",", ":"))
            auth = dict(signer.headers("PutSecretValue", body.encode(), amz_date))["Authorization"]
            data.write(body + "\t" + auth.rsplit("Signature=", 1)[1] + "\n")
            values.append(value)
    auth_prefix = auth.rsplit("Signature=", 1)[0] + "Signature="
    with open(path, "w") as f:
        f.write(WRITE_LUA % {
            "count": count, "name": WRITE_NAME, "data": data_path, "data_lua": lua_string(data_path),
            "threads": threads, "host": lua_string(signer.endpoint), "ctype": lua_string(CONTENT_TYPE),
            "date": lua_string(amz_date), "auth_prefix": lua_string(auth_prefix)})
    return set(values)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_idle():
    """(idle seconds summed over all cores, wall seconds) from /proc/stat."""
    with open("/proc/stat") as f:
        cpu = f.readline().split()
    return (int(cpu[4]) + int(cpu[5])) / os.sysconf("SC_CLK_TCK"), time.monotonic()


def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


class Bench:
    def __init__(self, a, port, server_pid, raw):
        self.a, self.port, self.server_pid, self.raw = a, port, server_pid, raw

    def wrk(self, label, path="/healthz", script=None):
        """Runs wrk once; returns a dict of its figures and the CPU each side used."""
        cmd = ["wrk", "-t%d" % self.a.threads, "-c%d" % self.a.connections, "-d" + self.a.duration,
               "--latency"]
        if script:
            cmd += ["-s", script]
        cmd.append("http://127.0.0.1:%d%s" % (self.port, path))
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        server0 = cpu_seconds(self.server_pid)
        idle0, wall0 = machine_idle()
        result = subprocess.run(cmd, capture_output=True, text=True)
        idle1, wall1 = machine_idle()
        server1 = cpu_seconds(self.server_pid)
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
        reused = re.search(r"pre-signed requests reused: (\d+)", text)
        if reused and int(reused.group(1)):
            sys.exit("%s: the pre-signed batch ran out (%s requests reused); raise --write-batch"
                     % (label, reused.group(1)))
        wall = wall1 - wall0
        wrk_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
        requests = int(re.search(r"^\s*(\d+) requests in", text, re.M).group(1))
        row = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
               "p50": ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1)),
               "p99": ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1)),
               "requests": requests,
               "server_cores": (server1 - server0) / wall, "wrk_cores": wrk_cpu / wall,
               "idle_cores": (idle1 - idle0) / wall,
               # the rest: kernel threads (ext4 writeback, softirqs charged to none of the two)
               "other_cores": os.cpu_count() - (server1 - server0 + wrk_cpu + idle1 - idle0) / wall,
               "server_us": (server1 - server0) / max(requests, 1) * 1e6}
        print("%-8s %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  %8d requests  CPU cores: server "
              "%.2f, wrk %.2f, other %.2f, idle %.2f"
              % (label, row["rps"], row["p50"], row["p99"], row["requests"], row["server_cores"],
                 row["wrk_cores"], row["other_cores"], row["idle_cores"]), flush=True)
        return row


def audit_since(path, offset):
    """(records appended after byte `offset`, of them those matching each AUDIT_KINDS pattern,
    the new end offset)."""
    counts = dict.fromkeys(AUDIT_KINDS, 0)
    records = 0
    with open(path, "rb") as f:
        f.seek(offset)
        for line in f:
            records += 1
            for kind, pattern in AUDIT_KINDS.items():
                if pattern in line:
                    counts[kind] += 1
        return records, counts, f.tell()


# A GetSecretValue leaves one audit record (the decision, with the version read); a
# PutSecretValue two: the decision before the write, and its outcome ("value written", with the
# new version id) after it.
AUDIT_KINDS = {
    "get": b'"action":"secretsmanager:GetSecretValue","resource":"arn:aws:secretsmanager:local:'
           b'000000000000:secret:bench/read-',
    "put": b'"action":"secretsmanager:PutSecretValue","resource":"arn:aws:secretsmanager:'
           b'local:000000000000:secret:bench/write-',
    "put_written": b'"reason":"value written"',
}


def seconds(duration):
    n, unit = re.fullmatch(r"(\d+)([smh]?)", duration).groups()
    return int(n) * {"": 1, "s": 1, "m": 60, "h": 3600}[unit]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("moatless")
    p.add_argument("out")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", default="10s")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--raw", help="write wrk's own output of every run here")
    p.add_argument("--write-batch", type=int, default=0,
                   help="pre-signed PutSecretValue requests per round (default: 3x what the "
                        "warm-up round's rate needs, at least 20000; the warm-up: 5000/s)")
    p.add_argument("--max-other", type=float, default=0.35,
                   help="a round in which processes other than the server and wrk used more CPU "
                        "than this (cores) is run again (default 0.35)")
    p.add_argument("--max-rounds", type=int, default=0,
                   help="at most this many rounds in all (default 3 x --rounds)")
    p.add_argument("--keep", help="keep the data directory and logs in DIR")
    a = p.parse_args()
    moatless = os.path.abspath(a.moatless)
    work = a.keep or tempfile.mkdtemp(prefix="moatless-bench-secrets-")
    os.makedirs(work, exist_ok=True)
    data, creds = os.path.join(work, "data"), os.path.join(work, "credentials")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOATLESS_")}
    init = subprocess.run([moatless, "init", "--data-dir", data, "--credentials-file", creds],
                          capture_output=True, text=True, env=env)
    if init.returncode != 0:
        sys.exit("moatless init failed:\n" + init.stdout + init.stderr)
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(creds)
    port = free_port()
    log = open(os.path.join(work, "serve.log"), "w")
    server = subprocess.Popen([moatless, "serve", "--data-dir", data, "--listen",
                               "127.0.0.1:%d" % port, "--log.access", "false",
                               "--http.max-requests-per-connection", "0"],
                              stdout=log, stderr=log, env=env)
    raw = open(a.raw or os.path.join(work, "wrk-raw.txt"), "w")
    try:
        for _ in range(100):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            sys.exit("moatless serve did not answer:\n" + open(os.path.join(work, "serve.log")).read())
        signer = Signer("127.0.0.1:%d" % port, cp.get("moatless", "aws_access_key_id"),
                        cp.get("moatless", "aws_secret_access_key"))

        # Set-up through the API, and one read by hand: a problem shows as a readable error.
        read_value = json.dumps({"username": "bench", "password": secrets.token_urlsafe(24)},
                                separators=(",", ":"))
        must(signer, "CreateSecret", {"Name": READ_NAME, "SecretString": read_value,
                                      "ClientRequestToken": str(uuid.uuid4())})
        must(signer, "CreateSecret", {"Name": WRITE_NAME, "SecretString": "{}",
                                      "ClientRequestToken": str(uuid.uuid4())})
        got = must(signer, "GetSecretValue", {"SecretId": READ_NAME})
        if got.get("SecretString") != read_value or got.get("VersionStages") != ["AWSCURRENT"]:
            sys.exit("GetSecretValue answered a different value or stages")

        bench = Bench(a, port, server.pid, raw)
        audit_log = os.path.join(data, "audit", "audit.log")
        rscript, wscript = os.path.join(work, "read.lua"), os.path.join(work, "write.lua")
        wdata = os.path.join(work, "write-requests.tsv")
        dur = seconds(a.duration)

        # Warm-up, discarded; it also sizes the write batches.
        read_script(signer, rscript)
        bench.wrk("warm-up healthz")
        bench.wrk("warm-up get", "/", rscript)
        write_script(signer, a.write_batch or max(20000, 5000 * dur), a.threads, wscript, wdata)
        warm = bench.wrk("warm-up put", "/", wscript)
        batch = a.write_batch or max(20000, int(3 * warm["rps"] * dur))

        # Rounds in which other processes took more than --max-other cores (a build on the shared
        # machine) are run again, up to --max-rounds in all; the medians use the quiet ones.
        rounds = []  # {"healthz": row, "get": row, "put": row, "quiet": bool}
        # answered by wrk, audit records appended, and of them those of each kind (all rounds)
        audit = {k: {"answered": 0, "records": 0, "get": 0, "put": 0, "put_written": 0}
                 for k in ("get", "put")}
        offset = os.path.getsize(audit_log)
        last_values = set()
        max_rounds = a.max_rounds or 3 * a.rounds
        while (len(rounds) < max_rounds
               and sum(r["quiet"] for r in rounds) < a.rounds):
            print("-- round %d" % (len(rounds) + 1), flush=True)
            rnd = {"healthz": bench.wrk("healthz")}
            _, _, offset = audit_since(audit_log, offset)  # /healthz is not audited
            read_script(signer, rscript)
            rnd["get"] = bench.wrk("get", "/", rscript)
            last_values = write_script(signer, batch, a.threads, wscript, wdata)
            for kind in ("get", "put"):
                if kind == "put":
                    rnd["put"] = bench.wrk("put", "/", wscript)
                records, counts, offset = audit_since(audit_log, offset)
                audit[kind]["answered"] += rnd[kind]["requests"]
                audit[kind]["records"] += records
                for k, v in counts.items():
                    audit[kind][k] += v
            rnd["quiet"] = all(rnd[k]["other_cores"] <= a.max_other for k in KINDS)
            if not rnd["quiet"]:
                print("   (busy: other processes used more than %.2f cores; not counted)"
                      % a.max_other, flush=True)
            rounds.append(rnd)

        current = must(signer, "GetSecretValue", {"SecretId": WRITE_NAME})
        write_ok = current.get("SecretString") in last_values
        versions = must(signer, "ListSecretVersionIds", {"SecretId": WRITE_NAME})
        stages = sorted(s for v in versions.get("Versions", []) for s in v.get("VersionStages", []))
        load = open("/proc/loadavg").read().split()[:3]
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        verify = subprocess.run([moatless, "audit", "verify", "--data-dir", data],
                                capture_output=True, text=True, env=env)
        print(verify.stdout.strip() or verify.stderr.strip())
        report(a, rounds, audit, batch, write_ok, stages, verify.returncode == 0, load)
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=60)
        raw.close()
        if not a.keep:
            subprocess.run(["rm", "-rf", work], check=False)


def report(a, rounds, audit, batch, write_ok, stages, verified, load):
    quiet = [r for r in rounds if r["quiet"]]
    enough = len(quiet) >= min(a.rounds, 3)
    used = quiet if enough else rounds
    rows = {k: [r[k] for r in used] for k in KINDS}
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in rows.items()}
    h, g, w = med["healthz"], med["get"], med["put"]
    ratio = g["rps"] / h["rps"]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?")
    # Every 200 must have its audit record; a few more records than answers are requests still in
    # flight when wrk stopped (at most one per connection per round).
    slack = a.connections * len(rounds)
    within = lambda n, answered: answered <= n <= answered + slack
    ag, ap = audit["get"], audit["put"]
    audit_ok = (within(ag["get"], ag["answered"]) and ag["records"] == ag["get"]
                and within(ap["put"] - ap["put_written"], ap["answered"])
                and within(ap["put_written"], ap["answered"]) and ap["records"] == ap["put"])
    verdict = lambda ok: "met" if ok else "not met"
    fmt_rounds = lambda k: " / ".join("%.0f" % r["rps"] for r in rows[k])
    cores = lambda k: "server %.2f, wrk %.2f, other %.2f, idle (incl. I/O wait) %.2f" % (
        med[k]["server_cores"], med[k]["wrk_cores"], med[k]["other_cores"], med[k]["idle_cores"])
    if enough:
        busy = ("%d rounds run, %d of them discarded because other processes used more than "
                "%.2f cores (the machine is shared)" % (len(rounds), len(rounds) - len(quiet),
                                                         a.max_other)
                if len(rounds) > len(quiet) else "no round disturbed by other processes")
    else:
        busy = ("**the machine stayed busy**: only %d of %d rounds had other processes below "
                "%.2f cores; the medians are over all of them" % (len(quiet), len(rounds),
                                                                  a.max_other))
    lines = [
        "Measured %s on %d cores (%s), Debian %s; load average at the end %s."
        % (datetime.date.today().isoformat(), os.cpu_count(), cpu,
           open("/etc/debian_version").read().strip(), " ".join(load)),
        "",
        "| request (same server, same wrk -t%d -c%d -d%s) | requests/s (median) | p50 ms | p99 ms "
        "| server CPU µs/request |" % (a.threads, a.connections, a.duration),
        "|---|---|---|---|---|",
        "| `GET /healthz` (unauthenticated) | %.0f | %.3f | %.3f | %.1f |"
        % (h["rps"], h["p50"], h["p99"], h["server_us"]),
        "| `GetSecretValue` by name (SigV4, policy, decrypt, durable audit) | %.0f | %.3f | %.3f "
        "| %.1f |" % (g["rps"], g["p50"], g["p99"], g["server_us"]),
        "| `PutSecretValue`, a new version each (durable transaction + durable audit) | %.0f "
        "| %.3f | %.3f | %.1f |" % (w["rps"], w["p50"], w["p99"], w["server_us"]),
        "| OpenBao, one node, **published** (issue 8), not measured here: reads | %d | | | |"
        % OPENBAO_READS,
        "| OpenBao, one node, **published**, not measured here: writes | %d | | | |"
        % OPENBAO_WRITES,
        "",
        "%d interleaved rounds after a discarded warm-up, medians, keep-alive (%s). Rounds "
        "(req/s): healthz %s; GetSecretValue %s; PutSecretValue %s."
        % (len(used), busy, fmt_rounds("healthz"), fmt_rounds("get"), fmt_rounds("put")),
        "",
        "- GetSecretValue / healthz: **%.3f×** (target ≥ 0.3×: %s)" % (ratio, verdict(ratio >= 0.3)),
        "- PutSecretValue: **%.0f/s** (target ≥ 500/s: %s)" % (w["rps"], verdict(w["rps"] >= 500)),
        "- CPU during the rounds, in cores of %d (medians): healthz %s; GetSecretValue %s; "
        "PutSecretValue %s." % (os.cpu_count(), cores("healthz"), cores("get"), cores("put")),
        "- audit log: %d GetSecretValue records for %d answered; %d PutSecretValue decisions and "
        "%d \"value written\" outcomes for %d answered (%s); `moatless audit verify` after "
        "SIGTERM: %s. The write secret's AWSCURRENT value is one the last round wrote (%s); its "
        "labelled versions: %s. Write batches: %d distinct pre-signed requests per round, none "
        "reused."
        % (ag["get"], ag["answered"], ap["put"] - ap["put_written"], ap["put_written"], ap["answered"],
           "consistent" if audit_ok else "INCONSISTENT", "passed" if verified else "FAILED",
           "yes" if write_ok else "NO", ", ".join(stages), batch),
    ]
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not (audit_ok and verified and write_ok):
        sys.exit("secrets: a consistency check failed")


if __name__ == "__main__":
    main()
