"""Shared support for the integration tests: starts the real `moatless` binary on port 0 with a
temporary data directory and talks to it over real sockets on 127.0.0.1.

The binary path comes from the command line (`python3 test_x.py --moatless PATH`), set by ctest.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import weakref

MOATLESS = None


def main():
    global MOATLESS
    argv = list(sys.argv)
    if "--moatless" in argv:
        i = argv.index("--moatless")
        MOATLESS = os.path.abspath(argv[i + 1])
        del argv[i:i + 2]
    else:
        MOATLESS = os.environ.get("MOATLESS_TEST_BINARY_PATH")
    if not MOATLESS or not os.access(MOATLESS, os.X_OK):
        sys.exit("harness: pass --moatless PATH to the built binary")
    unittest.main(argv=argv, verbosity=2)


def clean_env(extra=None):
    """The environment for a moatless child: no inherited MOATLESS_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOATLESS_")}
    env.update(extra or {})
    return env


def run_cli(*args, env=None, timeout=30):
    return subprocess.run([MOATLESS, *args], capture_output=True, text=True, timeout=timeout,
                          env=clean_env(env))


class Server:
    """A running `moatless serve`. Use as a context manager or call stop()."""

    def __init__(self, *flags, data_dir=None, env=None):
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="moatless-it-")
        self.lines = []
        self._cond = threading.Condition()
        args = [MOATLESS, "serve", "--data-dir", self.data_dir, "--listen", "127.0.0.1:0", *flags]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=clean_env(env))
        self._reader = threading.Thread(target=self._read_logs, daemon=True)
        self._reader.start()
        record = self.wait_for_log(lambda r: r.get("msg") == "listening"
                                   and r.get("listener") == "control")
        host, _, port = record["address"].rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)

    def _read_logs(self):
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def records(self):
        out = []
        with self._cond:
            lines = list(self.lines)
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def functions_refused(self):
        """Why this host cannot run functions (the daemon logs it at start-up), or None."""
        refused = [r for r in self.records() if r.get("msg") == "functions cannot run on this host"]
        return refused[0].get("error", "") if refused else None

    def wait_for_log(self, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    if predicate(record):
                        return record
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError("moatless exited (%s) before the expected log line:\n%s"
                                         % (self.proc.returncode, "\n".join(self.lines[-20:])))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for a log line:\n"
                                         + "\n".join(self.lines[-20:]))
                self._cond.wait(min(left, 0.2))

    def connect(self, timeout=10):
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def url(self, path):
        return "http://%s:%d%s" % (self.host, self.port, path)

    def signal(self, signo=signal.SIGTERM):
        self.proc.send_signal(signo)

    def wait(self, timeout=30):
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        if not self._reader.is_alive():
            self.proc.stderr.close()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        if self._own_dir:
            subprocess.run(["rm", "-rf", self.data_dir], check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


_leftover = weakref.WeakKeyDictionary()  # bytes read past the end of a response, per socket


def read_response(sock, limit=1 << 20):
    """Reads one HTTP/1.1 response from a socket: (status, headers dict lower-cased, body).
    Returns None if the peer closed before sending anything. Bytes past the response (pipelined
    responses) are kept for the next call on the same socket."""
    data = _leftover.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            if not data:
                return None
            raise AssertionError("connection closed mid-header: %r" % data[:200])
        data += chunk
        assert len(data) < limit
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed mid-body")
        rest += chunk
    if len(rest) > length:
        _leftover[sock] = rest[length:]
    return status, headers, rest[:length]


def peer_closed(sock, timeout=5):
    """True if the peer closes the connection (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def request(server, method, path, body=b"", headers=None):
    with server.connect() as sock:
        head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % (method, path)
        for k, v in (headers or {}).items():
            head += "%s: %s\r\n" % (k, v)
        if body:
            head += "Content-Length: %d\r\n" % len(body)
        sock.sendall(head.encode() + b"\r\n" + body)
        return read_response(sock)
