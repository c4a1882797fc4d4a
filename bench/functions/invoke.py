#!/usr/bin/env python3
"""Signed Lambda Invoke requests for the functions benchmark (bench/run BENCH_ONLY=functions).

  invoke.py lua  --endpoint HOST:PORT --credentials-file F [--function hello] [--payload JSON]
      A wrk Lua script that sends one SigV4-signed Invoke request over and over. A signature
      stays valid for the server's clock-skew window (15 minutes) and moatless accepts the same
      signed request again within it, so a load generator may replay it for a short run;
      re-sign for every round.
  invoke.py once --endpoint ... --credentials-file F [--function hello] [--payload JSON]
      Sends that request once; prints the status and body; exit 1 unless 200.
  invoke.py cold --endpoint ... --credentials-file F --code DIR [--function cold] [--rounds 5]
      Cold starts: versions 1 .. rounds+1 of the function (published beforehand, never invoked:
      a version never reuses another's environment), each invoked once with its qualifier (end
      to end, as the client sees it, and the REPORT line's Init Duration and Duration), each
      followed by `node -e` running the same handler once (process start to exit). The first
      round is a discarded warm-up. Prints JSON.

Test tool only: python3 standard library, no botocore.
"""
import argparse
import base64
import configparser
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time

REGION = "local"
PATH = "/2015-03-31/functions/%s/invocations"


def keys_of(credentials_file, profile):
    cp = configparser.ConfigParser(interpolation=None)
    if not cp.read(credentials_file) or not cp.has_section(profile):
        sys.exit("no profile [%s] in %s" % (profile, credentials_file))
    return cp.get(profile, "aws_access_key_id"), cp.get(profile, "aws_secret_access_key")


def sign(endpoint, key_id, secret, path, body, extra=None, when=None, query=""):
    """The headers (name, value) of a SigV4-signed POST of `body` to `path` (with `query`, one
    already-encoded name=value pair or ""), every header signed."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    headers = {"content-type": "application/json", "host": endpoint, "x-amz-date": amz_date}
    headers.update({k.lower(): v for k, v in (extra or {}).items()})
    signed = ";".join(sorted(headers))
    canonical = "\n".join(["POST", path, query,
                           "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers)),
                           signed, hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/lambda/aws4_request" % (date, REGION)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (date, REGION, "lambda", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    # Sent in the usual capitalisation (wrk adds a Host header unless one is named "Host").
    out = [("-".join(p.capitalize() for p in k.split("-")), v) for k, v in headers.items()]
    out.append(("Authorization", "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                "Signature=%s" % (key_id, scope, signed, signature)))
    return out


def lua_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def send(endpoint, headers, path, body):
    host, port = endpoint.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.putrequest("POST", path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, dict((k.lower(), v) for k, v in response.getheaders()), \
            response.read()
    finally:
        conn.close()


def cold(a, key_id, secret):
    # Every version's first invocation is a cold start: environments are per version.
    handler_file = os.path.join(a.code, "index.cjs")
    node_script = ("require(process.argv[1]).handler({name: 'cold'})"
                   ".then((r) => process.stdout.write(JSON.stringify(r)))")
    expected = {"greeting": "hello cold"}
    body = json.dumps({"name": "cold"}).encode()
    path = PATH % a.function
    rows = []
    for r in range(a.rounds + 1):
        version = str(r + 1)
        query = "Qualifier=" + version
        headers = sign(a.endpoint, key_id, secret, path, body, {"x-amz-log-type": "Tail"},
                       query=query)
        t0 = time.perf_counter()
        status, response_headers, answer = send(a.endpoint, headers, path + "?" + query, body)
        e2e = (time.perf_counter() - t0) * 1000
        if status != 200 or json.loads(answer) != expected:
            sys.exit("cold invocation failed: HTTP %d %s" % (status, answer[:300]))
        if response_headers.get("x-amz-executed-version") != version:
            sys.exit("cold invocation ran version %s, not %s"
                     % (response_headers.get("x-amz-executed-version"), version))
        log = base64.b64decode(response_headers.get("x-amz-log-result", "")).decode()
        init = re.search(r"Init Duration: ([\d.]+) ms", log)
        duration = re.search(r"\tDuration: ([\d.]+) ms", log)
        if not init:
            sys.exit("not a cold start (no Init Duration):\n" + log)
        t0 = time.perf_counter()
        ran = subprocess.run(["node", "-e", node_script, handler_file], capture_output=True,
                             text=True)
        node_ms = (time.perf_counter() - t0) * 1000
        if ran.returncode != 0 or json.loads(ran.stdout) != expected:
            sys.exit("node -e failed: " + ran.stderr)
        row = {"version": version, "e2e_ms": e2e, "init_ms": float(init.group(1)),
               "duration_ms": float(duration.group(1)), "node_ms": node_ms}
        print("cold round %d%s: %s" % (r, " (warm-up, discarded)" if r == 0 else "",
                                       json.dumps(row)), file=sys.stderr)
        if r > 0:
            rows.append(row)
    med = {k: statistics.median(row[k] for row in rows)
           for k in ("e2e_ms", "init_ms", "duration_ms", "node_ms")}
    print(json.dumps({"rounds": rows, "median": med}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("mode", choices=["lua", "once", "cold"])
    ap.add_argument("--endpoint", required=True, help="host:port exactly as sent in Host")
    ap.add_argument("--credentials-file", required=True)
    ap.add_argument("--profile", default="moatless")
    ap.add_argument("--function", default="hello")
    ap.add_argument("--payload", default='{"name":"bench"}')
    ap.add_argument("--code", help="cold: the function's code directory (for node -e)")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    key_id, secret = keys_of(a.credentials_file, a.profile)
    if a.mode == "cold":
        if not a.code:
            sys.exit("cold needs --code")
        cold(a, key_id, secret)
        return
    path = PATH % a.function
    body = a.payload.encode()
    headers = sign(a.endpoint, key_id, secret, path, body)
    if a.mode == "lua":
        lines = ["-- generated by bench/functions/invoke.py: a signed Lambda Invoke of "
                 + a.function, 'wrk.method = "POST"', "wrk.path = " + lua_string(path),
                 "wrk.body = " + lua_string(a.payload), "wrk.headers = {}"]
        lines += ["wrk.headers[%s] = %s" % (lua_string(k), lua_string(v)) for k, v in headers]
        sys.stdout.write("\n".join(lines) + "\n")
        return
    status, _, answer = send(a.endpoint, headers, path, body)
    print(status, answer.decode(errors="replace"))
    sys.exit(0 if status == 200 else 1)


if __name__ == "__main__":
    main()
