#!/usr/bin/env python3
"""Observability cost benchmark (bench/run BENCH_ONLY=observability): the gateway's hot path with
metrics, access logs and function log files on against the same daemon with them off.

A fresh `moatless init` data directory with bench/gateway/stages-app deployed (the Node.js hello
handler of bench/functions behind `auth: none` routes), and wrk POSTing the same 1 KB JSON order
(stages-app/request.json, keep-alive) to its route (a) `POST /plain` (no WAF, no schema: the
gateway and the function alone, so observability is as large a share of the request as it can
be). Two phases of the same binary on the same data directory and the same deployed app:

  on     the defaults: metrics recorded (gateway, functions, service APIs, store, audit log),
         the gateway's "gateway request" access line on standard error and in
         DATA_DIR/logs/gateway.log, each invocation's lines in DATA_DIR/logs/functions/NAME.log;
  off    --metrics.enabled false --log.access false --log.function-files false;
  floor  (unless --phases leaves it out) off with --log.level warn as well: what the logging
         that stays in off costs.

What stays in both: the audit log (it cannot be switched off; on an `auth: none` route a
successful request writes no record), and the function host's platform-log lines per invocation
(its `invocation` record and the function's output, at --log-level info, on standard error and
in DATA_DIR/logs/moatless.log): the report gives the bytes each log received per request.

Every round runs every phase, their order reversed from one round to the next (on, off, floor;
floor, off, on; …):
the daemon is restarted for each phase (its log files removed while it is stopped, so none of
them rotates away during a phase), each phase checked to be what it claims (a request by hand,
then: on, /metrics has moatless_gateway_requests_total for the app and gateway.log and the
function's log file grew; off, neither the gateway's nor the functions' series exist and neither
file grew), its warm environments started by a discarded wrk run of --warmup, then wrk -t/-c/-d
(--threads, --connections: the load) and again -t1 -c1 (--unloaded-connections; 0 leaves it out).
The first round is a discarded warm-up; rounds in which other processes used more than --max-other
cores are run again (up to --max-rounds). Medians over rounds; the throughput ratio off/on both
as the ratio of the medians and as the median of each round's own ratio (the two phases of a
round run back to back, so the paired ratio cancels slow drift).

Per run it records wrk's requests/s and latency percentiles, the daemon's CPU (the daemon and
every process below it, the function sandboxes included) per request, and the bytes each log
received. With --observe-bench BINARY (or --observe-bench-output FILE: bench/run's micro.txt) it
also reports the observe micro-benchmarks: a counter and a histogram update, a JSON log line, and
the durable audit append that every decision on an IAM route waits for.

Set-up, wrk runs, CPU accounting and metrics come from bench/gateway/bench.py and the daemon's
start and the request from bench/gateway/stages.py (both imported).

Usage: bench/gateway/observability.py MOATLESS_BINARY OUT_MARKDOWN [--rounds 3] [--duration 10s]
           [--connections 8] [--threads 2] [--unloaded-connections 1] [--warmup 3s]
           [--phases on,off,floor] [--raw FILE]
           [--observe-bench BINARY | --observe-bench-output FILE] [--max-other 0.35]
           [--max-rounds 3xROUNDS] [--log-level info] [--keep DIR]
Needs node and wrk, and a host that can isolate functions (otherwise it writes why it was
skipped). Test tool only: python3 standard library.
"""
import argparse
import datetime
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench as gw  # noqa: E402  (bench/gateway/bench.py)
import stages  # noqa: E402  (bench/gateway/stages.py; sets bench.py's globals for stages-app)

ROUTE = "/plain"
TARGET = "plain"  # stages.py's name of the route (bench.py's GATEWAY_ROUTES: "POST /plain")
OFF = ["--metrics.enabled", "false", "--log.access", "false", "--log.function-files", "false"]
# (name, what it is, flags, log level: None for --log-level)
ALL_PHASES = [
    ("on", "the defaults: metrics, access log, function log files", [], None),
    ("off", "`--metrics.enabled false --log.access false --log.function-files false`", OFF, None),
    ("floor", "off and `--log.level warn` as well: without the function host's info lines per "
              "invocation either (not a switch the issue asks for: what logging is left in off)",
     OFF, "warn"),
]
PHASES = ALL_PHASES  # what --phases selects
# The logs whose growth the report shows, as globs under the data directory (rotated files
# included) — and the daemon's standard error, a file of this script's.
LOGS = [
    ("gateway", "logs/gateway.log*"),
    ("functions", "logs/functions/*"),
    ("platform", "logs/moatless.log*"),
]
MICRO = [
    ("BM_CounterCachedInc/threads:1", "counter increment on a held series"),
    ("BM_CounterWithLabelsLookupAndInc/threads:1", "counter: label lookup + increment (what the "
                                                   "gateway does per request and series)"),
    ("BM_HistogramObserve/threads:1", "histogram observe"),
    ("BM_LogLineFormat", "format one JSON log line"),
    ("BM_AuditAppendDurable/real_time/threads:1", "durable audit append, 1 thread"),
    ("BM_AuditAppendDurable/real_time/threads:8", "durable audit append, 8 threads (group "
                                                  "commit), per append"),
]
MICRO_FILTER = "BM_CounterCachedInc|BM_CounterWithLabels|BM_HistogramObserve|BM_LogLineFormat|" \
               "BM_AuditAppendDurable"


def skip(out, why):
    with open(out, "w") as f:
        f.write("observability benchmark skipped: %s\n" % why)
    print("observability benchmark skipped: " + why)
    sys.exit(0)


class Logs:
    """Sizes of the daemon's logs: the files under the data directory and its standard error."""

    def __init__(self, data, stderr_path):
        self.data, self.stderr_path = data, stderr_path

    def sizes(self):
        out = {}
        for name, pattern in LOGS:
            out[name] = sum(os.path.getsize(p) for p in glob.glob(os.path.join(self.data, pattern))
                            if os.path.isfile(p))
        out["stderr"] = os.path.getsize(self.stderr_path) if os.path.exists(self.stderr_path) else 0
        return out

    def remove(self):
        """While the daemon is stopped: a phase starts with empty logs, so no file it writes is
        rotated away before it is measured."""
        for _, pattern in LOGS:
            for p in glob.glob(os.path.join(self.data, pattern)):
                if os.path.isfile(p):
                    os.remove(p)


stages.skip = skip  # stages.start_daemon skips when functions cannot run on this host


def series(metrics, name):
    return sum(1 for (n, _) in metrics if n == name)


def check_phase(phase, port, c_port, path, body, logs):
    """A request by hand, then proof that the phase is what it claims; returns the metric
    families /metrics exposed."""
    before = logs.sizes()
    gw.check_answer("%s: POST %s by hand" % (phase, path), *stages.request(port, path, body))
    time.sleep(0.5)  # the function's log lines are written after its answer
    metrics = gw.scrape(c_port)
    after = logs.sizes()
    gateway_series = gw.metric_sum(metrics, "moatless_gateway_requests_total", api=gw.API)
    function_series = series(metrics, "moatless_function_invocations_total")
    grew = {k: after[k] - before[k] for k in after}
    state = "gateway series %d requests, function series %d, gateway.log +%d B, function log +%d B" \
        % (gateway_series, function_series, grew["gateway"], grew["functions"])
    print("   %s: %s" % (phase, state), flush=True)
    if phase == "on":  # off and floor: the same switches
        ok = gateway_series >= 1 and function_series >= 1 and grew["gateway"] > 0 \
            and grew["functions"] > 0
    else:
        ok = series(metrics, "moatless_gateway_requests_total") == 0 and function_series == 0 \
            and grew["gateway"] == 0 and grew["functions"] == 0
    if not ok:
        sys.exit("phase %s is not what it should be: %s" % (phase, state))
    return sorted({n for (n, _) in metrics})


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
                   help="also run with -t1 -c N (default 1; 0: not at all)")
    p.add_argument("--warmup", default="3s",
                   help="after each restart, a discarded wrk run this long starts the warm "
                        "environments (default 3s)")
    p.add_argument("--phases", default="on,off,floor",
                   help="the phases to run, a list of on, off and floor (on and off needed)")
    p.add_argument("--raw", help="write wrk's own output of every run here")
    p.add_argument("--observe-bench", help="run this observe_bench binary and report it")
    p.add_argument("--observe-bench-output",
                   help="report the observe_bench figures of this console output instead (a file "
                        "holding '-- observe_bench' and its output, as bench/run's micro.txt)")
    p.add_argument("--max-other", type=float, default=0.35,
                   help="a round in which processes other than the daemon and wrk used more CPU "
                        "than this (cores) is run again (default 0.35)")
    p.add_argument("--max-rounds", type=int, default=0,
                   help="at most this many rounds (default 3 x --rounds)")
    p.add_argument("--log-level", default="info",
                   help="the daemon's log.level of on and off (default info, as served; "
                        "floor: warn)")
    p.add_argument("--keep", help="keep the data directory, app copy and logs in DIR")
    a = p.parse_args()
    wanted = a.phases.split(",")
    if "on" not in wanted or "off" not in wanted or not set(wanted) <= {"on", "off", "floor"}:
        p.error("--phases: a list of on, off and floor, with on and off")
    global PHASES
    PHASES = [ph for ph in ALL_PHASES if ph[0] in wanted]
    for tool in ("node", "wrk"):
        if shutil.which(tool) is None:
            skip(a.out, "%s is needed" % tool)
    body, _ = stages.check_copies()
    moatless = os.path.abspath(a.moatless)
    work = os.path.abspath(a.keep) if a.keep else tempfile.mkdtemp(prefix="moatless-bench-obs-")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o711)  # deployed code lies below it: the sandboxes' users must traverse it
    procs = []
    raw = open(a.raw or os.path.join(work, "wrk-raw.txt"), "w")
    try:
        micro = None
        if a.observe_bench:
            micro = stages.parse_micro(stages.run_micro(
                os.path.abspath(a.observe_bench), raw, ["--benchmark_filter=" + MICRO_FILTER]))
        elif a.observe_bench_output:
            micro = stages.parse_micro(stages.micro_from_file(a.observe_bench_output,
                                                              "observe_bench"))
        bench(a, moatless, work, procs, raw, body, micro)
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


def bench(a, moatless, work, procs, raw, body, micro):
    data, creds = os.path.join(work, "data"), os.path.join(work, "credentials")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOATLESS_")}
    gw.run([moatless, "init", "--data-dir", data, "--credentials-file", creds], "moatless init",
           env=env)
    app = os.path.join(work, "app")
    shutil.copytree(stages.APP_DIR, app)
    flags = dict((name, f) for name, _, f, _ in ALL_PHASES)
    levels = dict((name, level or a.log_level) for name, _, _, level in ALL_PHASES)

    # Deployed once, with the defaults; every phase then restarts on the same data directory.
    server, c_port, _ = stages.start_daemon(a, moatless, work, env, procs, "serve-deploy",
                                            flags=flags["on"])
    cenv = dict(env, AWS_SHARED_CREDENTIALS_FILE=creds, AWS_PROFILE="moatless", AWS_REGION="local",
                AWS_CONFIG_FILE="/dev/null", MOATLESS_ENDPOINT="http://127.0.0.1:%d" % c_port)
    gw.run([moatless, "deploy", "--dir", app, "--yes"], "moatless deploy", env=cenv)
    stages.stop(server)
    procs.remove(server)

    script = os.path.join(work, "post.lua")
    stages.post_script(script, body)
    modes = [("loaded", a.threads, a.connections)]
    if a.unloaded_connections > 0:
        modes.append(("unloaded", 1, a.unloaded_connections))
    path = stages.BASE + ROUTE
    exposed = {}

    def run_phase(phase, label):
        """Restart the daemon in `phase`, check it, warm it up, measure: {mode: row}."""
        name = "serve-" + phase
        stderr_path = os.path.join(work, name + ".log")
        logs = Logs(data, stderr_path)
        logs.remove()
        if os.path.exists(stderr_path):
            os.remove(stderr_path)
        server, c_port, g_port = stages.start_daemon(
            argparse.Namespace(**dict(vars(a), log_level=levels[phase])), moatless, work, env,
            procs, name, flags=flags[phase])
        exposed[phase] = check_phase(phase, g_port, c_port, path, body, logs)
        runner = gw.Runner(a, raw, c_port, server.pid, [])
        url = "http://127.0.0.1:%d%s" % (g_port, path)
        warm = argparse.Namespace(**dict(vars(a), duration=a.warmup))
        gw.Runner(warm, raw, c_port, server.pid, []).wrk(
            "%s %s warm-up" % (label, phase), TARGET, url, script, a.threads, a.connections)
        rows = {}
        for mode, threads, conns in modes:
            before = logs.sizes()
            row = runner.wrk("%s %s %s" % (label, phase, mode), TARGET, url, script, threads,
                             conns)
            time.sleep(0.3)  # the last invocations' log lines
            after = logs.sizes()
            row["log_bytes"] = {k: (after[k] - before[k]) / max(row["requests"], 1)
                                for k in after}
            rows[mode] = row
        stages.stop(server)
        procs.remove(server)
        return rows

    def one_round(index, label):
        order = [name for name, _, _, _ in PHASES]
        if index % 2:
            order.reverse()
        rows = {}
        for phase in order:
            print("-- %s: phase %s" % (label, phase), flush=True)
            for mode, row in run_phase(phase, label).items():
                rows[(mode, phase)] = row
        return rows, order

    print("-- warm-up round (discarded)", flush=True)
    one_round(0, "warm-up")
    rounds = []
    max_rounds = a.max_rounds or 3 * a.rounds
    while len(rounds) < max_rounds and sum(r["quiet"] for r in rounds) < a.rounds:
        label = "round %d" % (len(rounds) + 1)
        rows, order = one_round(len(rounds), label)
        quiet = all(r["other_cores"] <= a.max_other for r in rows.values())
        if not quiet:
            print("   (busy: other processes used more than %.2f cores; not counted)"
                  % a.max_other, flush=True)
        rounds.append({"rows": rows, "quiet": quiet, "order": order})

    load = open("/proc/loadavg").read().split()[:3]
    report(a, rounds, modes, load, exposed, micro, len(body))


def versions():
    def out(cmd):
        r = subprocess.run(cmd, capture_output=True, text=True)
        return (r.stdout + r.stderr).strip()
    return {"node": out(["node", "--version"]), "wrk": (out(["wrk", "-v"]).split() + ["?", "?"])[1]}


def report(a, rounds, modes, load, exposed, micro, body_bytes):
    quiet = [r for r in rounds if r["quiet"]]
    enough = len(quiet) >= min(a.rounds, 3)
    used = quiet if enough else rounds

    def med(mode, phase, field):
        return statistics.median(r["rows"][(mode, phase)][field] for r in used)

    def med_log(mode, phase, log):
        return statistics.median(r["rows"][(mode, phase)]["log_bytes"][log] for r in used)

    def paired(mode, field, x="off", y="on"):  # median over rounds of x/y within the round
        return statistics.median(r["rows"][(mode, x)][field] / r["rows"][(mode, y)][field]
                                 for r in used)

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?")
    v = versions()
    busy = gw.busy_note(len(rounds), len(quiet), enough, a.max_other)
    verdict = lambda ok: "met" if ok else "not met"
    lines = [
        "Measured %s on %d cores (%s), Debian %s; load average at the end %s. Node.js %s, wrk %s; "
        "everything on 127.0.0.1, sharing the %d cores."
        % (datetime.date.today().isoformat(), os.cpu_count(), cpu,
           open("/etc/debian_version").read().strip(), " ".join(load), v["node"], v["wrk"],
           os.cpu_count()),
        "",
        "Every request is a keep-alive POST of the same %d-byte JSON order "
        "(bench/gateway/stages-app/request.json) to `POST %s%s`, an `auth: none` route without WAF "
        "or schema, of one Node.js hello function (bench/functions/hello); `-d%s`. %s phases "
        "of the same binary on the same data directory and deployed app, the daemon restarted "
        "for each (its log files removed meanwhile), each checked before it was measured and "
        "its warm environments started by a discarded `-d%s` run: %s. "
        "%d interleaved round%s after a discarded warm-up round, the phases' order reversed "
        "from one round to the next; medians (%s)."
        % (body_bytes, stages.BASE, ROUTE, a.duration,
           {2: "Two", 3: "Three"}.get(len(PHASES), str(len(PHASES))), a.warmup,
           "; ".join("**%s** = %s" % (name, what) for name, what, _, _ in PHASES),
           len(used), "" if len(used) == 1 else "s", busy),
    ]
    for mode, threads, conns in modes:
        title = ("Under load" if mode == "loaded" else
                 "One request at a time" if conns == 1 else "Light load")
        lines += [
            "",
            "### %s: wrk -t%d -c%d" % (title, threads, conns),
            "",
            "| phase | requests/s | p50 ms | p99 ms | daemon CPU µs/request | log bytes/request: "
            "gateway.log | functions/ | moatless.log | stderr |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for phase, _, _, _ in PHASES:
            lines.append("| %s | %.0f | %.3f | %.3f | %.1f | %.0f | %.0f | %.0f | %.0f |" % (
                phase, med(mode, phase, "rps"), med(mode, phase, "p50"), med(mode, phase, "p99"),
                med(mode, phase, "server_us"), med_log(mode, phase, "gateway"),
                med_log(mode, phase, "functions"), med_log(mode, phase, "platform"),
                med_log(mode, phase, "stderr")))
        on, off = med(mode, "on", "rps"), med(mode, "off", "rps")
        cost = 1 - on / off  # the share of off's throughput that on loses
        lines += [
            "",
            "- off/on requests/s: **%.3f×** (ratio of the medians), %.3f× (median of each round's "
            "own ratio); on/off − 1 = **%+.1f%%** (target: on at most 10%% below off: %s)."
            % (off / on, paired(mode, "rps"), -cost * 100, verdict(cost <= 0.10)),
            "- daemon CPU per request: on %.1f µs, off %.1f µs: **%+.1f µs** (%+.1f%%) for "
            "observability; p50 %+.0f µs, p99 %+.0f µs (on − off)."
            % (med(mode, "on", "server_us"), med(mode, "off", "server_us"),
               med(mode, "on", "server_us") - med(mode, "off", "server_us"),
               (med(mode, "on", "server_us") / med(mode, "off", "server_us") - 1) * 100,
               (med(mode, "on", "p50") - med(mode, "off", "p50")) * 1000,
               (med(mode, "on", "p99") - med(mode, "off", "p99")) * 1000),
            "",
            "Rounds (req/s, in the order run): " + "; ".join(
                "%s" % " then ".join("%s %.0f" % (ph, r["rows"][(mode, ph)]["rps"])
                                     for ph in r["order"]) + ("" if r["quiet"] else " (busy)")
                for r in rounds) + ".",
            "",
            "CPU during the runs, in cores of %d (medians): " % os.cpu_count() + "; ".join(
                "%s: daemon %.2f, wrk %.2f, other %.2f, idle %.2f"
                % (phase, med(mode, phase, "server_cores"), med(mode, phase, "wrk_cores"),
                   med(mode, phase, "other_cores"), med(mode, phase, "idle_cores"))
                for phase, _, _, _ in PHASES) + ".",
        ]
        if "floor" in [ph[0] for ph in PHASES]:
            lines[-4:-4] = [
                "- floor (off, and the function host's info lines too): floor/on requests/s "
                "%.3f× (medians), %.3f× (paired); daemon CPU per request %.1f µs (%+.1f µs "
                "against off): what the platform-log lines that stay in off cost."
                % (med(mode, "floor", "rps") / on, paired(mode, "rps", "floor", "on"),
                   med(mode, "floor", "server_us"),
                   med(mode, "floor", "server_us") - med(mode, "off", "server_us")),
            ]

    if micro is not None:
        lines += ["", "### Micro-benchmarks (src/observe/observe_bench.cc)", "",
                  "Google Benchmark; the audit append is the record every decision on an IAM "
                  "(SigV4) route, and every control-API call, waits for (fdatasync'ed, group "
                  "commit): it cannot be switched off, so it is reported here rather than "
                  "measured as a phase.", "",
                  "| benchmark | what | time µs | CPU µs |", "|---|---|---|---|"]
        for name, what in MICRO:
            row = micro.get(name) or micro.get(name.split("/")[0])
            if row is None or "error" in row:
                lines.append("| %s | %s | — | — |" % (name, what))
            else:
                lines.append("| %s | %s | %.3f | %.3f |" % (name, what, row["time_us"],
                                                              row["cpu_us"]))

    problems = []
    conns_of = dict((m, c) for m, _, c in modes)
    for r in rounds:
        for (mode, phase), row in r["rows"].items():
            conns = conns_of[mode]
            if phase == "on":
                if not row["requests"] <= row["answered"] <= row["requests"] + conns:
                    problems.append("on %s: wrk counted %d answers, the daemon %d"
                                    % (mode, row["requests"], row["answered"]))
                if row["refused"] or row["failed"]:
                    problems.append("on %s: %d non-2xx answers, %d failed invocations"
                                    % (mode, row["refused"], row["failed"]))
            elif row["answered"] or row["function_count"]:
                problems.append("%s %s: the daemon counted %d gateway requests and %d "
                                "invocations with metrics off" % (phase, mode, row["answered"],
                                                                  row["function_count"]))
            if phase != "on" and (row["log_bytes"]["gateway"] or row["log_bytes"]["functions"]):
                problems.append("%s %s: gateway.log or a function log grew" % (phase, mode))
    lines += [
        "",
        "### What each figure includes",
        "",
        "- **requests/s, p50, p99**: wrk's, at the client, over loopback with the client on the "
        "same cores.",
        "- **daemon CPU µs/request**: CPU time of the daemon and every process below it (its I/O "
        "threads, the gateway's pool, the log writers, the Node.js runtimes in the function "
        "sandboxes) over the run ÷ requests wrk counted.",
        "- **log bytes/request**: what each log received over the run ÷ requests: "
        "`DATA_DIR/logs/gateway.log` (the gateway's access line), `DATA_DIR/logs/functions/` "
        "(START, END and REPORT of each invocation, in the function's own file), "
        "`DATA_DIR/logs/moatless.log` and the daemon's standard error (a file here), where the "
        "function host writes each invocation's `invocation` record and the function's output "
        "in on and off (not in floor), and the gateway's access line in **on**.",
        "- **What stays on in off**: the function host's platform-log lines per invocation "
        "(`--log.level %s`), the audit log (an `auth: none` route writes no record for a "
        "successful request; IAM routes audit every decision durably — see the micro-benchmark "
        "above), and the listeners' own request counts behind /metrics. /metrics in **off** "
        "exposed: %s."
        % (a.log_level, ", ".join("`%s`" % n for n in exposed.get("off", [])) or "nothing"),
        "- Before each phase was measured, a request by hand showed it on or off: **on**, "
        "/metrics counted the request in moatless_gateway_requests_total and "
        "moatless_function_invocations_total and gateway.log and the function's log grew; "
        "**off** (and floor), neither series existed and neither file grew.",
        "- `--http.max-requests-per-connection 0` in every phase; everything else the defaults.",
        "- Consistency: %s." % (
            "every answer wrk counted in the on phase was a 2xx the daemon counted, with no "
            "failed invocation; with the switches off the daemon counted nothing and wrote no "
            "access or function log line" if not problems else "**PROBLEMS**: " + "; ".join(problems)),
    ]
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if problems:
        sys.exit("observability: a consistency check failed")


if __name__ == "__main__":
    main()
