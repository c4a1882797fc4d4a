#!/usr/bin/env python3
"""Deploy benchmark: how long `moatless deploy --yes` takes to put a one-line change of examples/notes
live (pack the bundle, upload and plan, upload and apply in one transaction), and how long until
the changed function first answers with the new code — against two baselines measured in the same
run, alternating round by round: `tar czf` of the same files and `tar xzf` of that into a fresh
directory (packing and unpacking them: the floor of any deploy that uploads an app), and `moatless
functions publish` of the changed function alone (a new version, no upload, no roles, no plan).

Usage: bench/deploy/bench.py MOATLESS_BINARY OUT_MARKDOWN [--rounds N]
Needs node and npm (the example's AWS SDK) and a host that can isolate functions (otherwise it
writes why it was skipped)."""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def timed(cmd, **kw):
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit("failed: %s\n%s\n%s" % (" ".join(cmd), result.stdout, result.stderr))
    return elapsed, result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("moatless")
    p.add_argument("out")
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    moatless = os.path.abspath(a.moatless)
    work = tempfile.mkdtemp(prefix="moatless-bench-deploy-")
    os.chmod(work, 0o711)
    server = None
    try:
        data, code = os.path.join(work, "data"), os.path.join(work, "code")
        creds = os.path.join(work, "credentials")
        subprocess.run([moatless, "init", "--data-dir", data, "--credentials-file", creds],
                       check=True, capture_output=True)
        app = os.path.join(work, "notes")
        shutil.copytree(os.path.join(TOP, "examples", "notes"), app,
                        ignore=shutil.ignore_patterns("node_modules", "keys"))
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=os.path.join(app, "functions", "api"), check=True, capture_output=True)
        subprocess.run([os.path.join(TOP, "scripts", "demo-token"), os.path.join(app, "keys")],
                       check=True, capture_output=True)
        port = free_port()
        log = open(os.path.join(work, "serve.log"), "w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOATLESS_")}
        server = subprocess.Popen([moatless, "serve", "--data-dir", data, "--listen",
                                   "127.0.0.1:%d" % port, "--apps.code-dir", code,
                                   "--log.access", "false"], stdout=log, stderr=log, env=env)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(0.5)
        with open(os.path.join(work, "serve.log")) as f:
            if "functions cannot run on this host" in f.read():
                with open(a.out, "w") as out:
                    out.write("deploy benchmark skipped: functions cannot run on this host\n")
                print("deploy benchmark skipped: functions cannot run on this host")
                return
        cenv = dict(env, AWS_SHARED_CREDENTIALS_FILE=creds, AWS_PROFILE="moatless",
                    AWS_REGION="local", AWS_CONFIG_FILE="/dev/null",
                    MOATLESS_ENDPOINT="http://127.0.0.1:%d" % port)
        first, _ = timed([moatless, "deploy", "--dir", app, "--yes"], env=cenv)
        summarize = os.path.join(app, "functions", "summarize", "app.py")
        with open(summarize) as f:
            original = f.read()
        files = len([1 for _, _, names in os.walk(app) for _ in names])

        deploy_s, live_s, tar_s, publish_s = [], [], [], []
        for r in range(1, a.rounds + 1):
            with open(summarize, "w") as f:
                f.write(original + "\nROUND = %d\n" % r)
            # Baseline 1: packing the same files with tar and gzip, and unpacking them.
            t, _ = timed(["tar", "czf", os.path.join(work, "app.tgz"), "-C", app, "."])
            unpacked = os.path.join(work, "unpacked-%d" % r)
            os.makedirs(unpacked)
            t2, _ = timed(["tar", "xzf", os.path.join(work, "app.tgz"), "-C", unpacked])
            tar_s.append(t + t2)
            # Baseline 2: publishing the one changed function directly into the registry.
            t, _ = timed([moatless, "functions", "publish", "bench-publish", "--data-dir", data,
                          "--runtime", "python3", "--handler", "app.handler", "--code",
                          os.path.dirname(summarize)], env=env)
            publish_s.append(t)
            # moatless deploy, then the first answer of the new code.
            start = time.perf_counter()
            t, out = timed([moatless, "deploy", "--dir", app, "--yes", "--json"], env=cenv)
            deploy_s.append(t)
            changed = [c["Name"] for c in json.loads(out.stdout)["Changes"]]
            if changed != ["summarize"]:
                sys.exit("unexpected plan: %s" % changed)
            _, answer = timed([moatless, "invoke", "notes_dev_summarize", "--payload",
                               '{"text":"x"}'], env=cenv)
            live_s.append(time.perf_counter() - start)
        with open(summarize, "w") as f:
            f.write(original)

        def ms(values):
            return statistics.median(values) * 1000

        rows = [
            ("`moatless deploy --yes` (pack, plan, apply)", ms(deploy_s)),
            ("… until the changed function first answers", ms(live_s)),
            ("baseline: `tar czf` of the same files, then `tar xzf` of them", ms(tar_s)),
            ("baseline: `moatless functions publish` of the changed function", ms(publish_s)),
        ]
        bundle = os.path.getsize(os.path.join(work, "app.tgz"))
        text = ["# Deploy", "",
                "examples/notes (%d files, %.1f MiB as .tar.gz, with the AWS SDK in node_modules), "
                "one line of one function changed per round; %d rounds, alternating; medians. "
                "First deployment: %.0f ms." % (files, bundle / 2**20, a.rounds, first * 1000), "",
                "| what | median ms |", "|---|---|"]
        text += ["| %s | %.0f |" % (name, value) for name, value in rows]
        text += ["", "deploy / tar c+x: %.1f×; deploy / publish: %.1f×"
                 % (ms(deploy_s) / ms(tar_s), ms(deploy_s) / ms(publish_s)), ""]
        with open(a.out, "w") as out:
            out.write("\n".join(text))
        print("\n".join(text))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()
