"""The `moatless` command line: help, version, exit codes, configuration errors."""
import json
import os
import socket
import tempfile
import unittest

import harness
from harness import Server, run_cli


class CliTest(unittest.TestCase):
    def test_help_documents_every_subcommand(self):
        result = run_cli("--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        for sub in ("serve", "version", "audit", "policy", "doctor"):
            self.assertIn(sub, result.stdout)

    def test_serve_help_documents_its_flags(self):
        result = run_cli("serve", "--help")
        self.assertEqual(result.returncode, 0)
        for flag in ("--data-dir", "--listen", "--gateway-listen", "--config",
                     "--http.max-body-bytes", "--tls.cert-file"):
            self.assertIn(flag, result.stdout)

    def test_doctor_reports_isolation_and_exits_by_it(self):
        result = run_cli("doctor", "--json")
        report = json.loads(result.stdout)
        self.assertEqual(result.returncode, 0 if report["full_isolation"] else 1, result.stdout)
        self.assertEqual(report["full_isolation"], not report["missing"])
        self.assertGreater(report["seccomp_denied_syscalls"], 40)
        text = run_cli("doctor")
        self.assertIn("user namespaces:", text.stdout)
        self.assertIn("isolation:", text.stdout)
        if os.geteuid() == 0 and report["user_namespaces"] and report["cgroup"] != "none":
            # The CI machine (root, namespaces, cgroups): full isolation.
            self.assertTrue(report["full_isolation"], report["missing"])
        # The daemon probes the same at start-up and says so.
        with Server() as server:
            record = server.wait_for_log(lambda r: r.get("msg", "").startswith("function")
                                         or r.get("msg", "").startswith("functions"))
        expected = ("function isolation: full" if report["full_isolation"]
                    else "functions cannot run on this host")
        self.assertEqual(record["msg"], expected, record)

    def test_version(self):
        result = run_cli("version")
        self.assertEqual(result.returncode, 0)
        self.assertRegex(result.stdout, r"^moatless \d+\.\d+\.\d+")

    def test_usage_errors_exit_2(self):
        self.assertEqual(run_cli("no-such-command").returncode, 2)
        self.assertEqual(run_cli("serve", "--no-such-flag").returncode, 2)
        self.assertEqual(run_cli().returncode, 2)

    def test_bad_config_value_exits_2_naming_the_key(self):
        result = run_cli("serve", "--data-dir", tempfile.mkdtemp(), "--listen", "127.0.0.1:notaport")
        self.assertEqual(result.returncode, 2)
        self.assertIn("'listen'", result.stderr)
        result = run_cli("serve", "--data-dir", tempfile.mkdtemp(),
                         env={"MOATLESS_HTTP_MAX_BODY_BYTES": "lots"})
        self.assertEqual(result.returncode, 2)
        self.assertIn("MOATLESS_HTTP_MAX_BODY_BYTES", result.stderr)
        self.assertIn("http.max_body_bytes", result.stderr)

    def test_unknown_key_in_config_file_exits_2(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write("http:\n  max_body_byte: 1KiB\n")
        result = run_cli("serve", "--config", f.name, "--data-dir", tempfile.mkdtemp())
        os.unlink(f.name)
        self.assertEqual(result.returncode, 2)
        self.assertIn("http.max_body_byte", result.stderr)

    def test_config_file_values_apply(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write("http:\n  max_body_bytes: 1KiB\n")
        try:
            with Server("--config", f.name) as server:
                with server.connect() as sock:
                    sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n")
                    self.assertEqual(harness.read_response(sock)[0], 413)
        finally:
            os.unlink(f.name)

    def test_port_in_use_is_a_runtime_error_exit_1(self):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        try:
            result = run_cli("serve", "--data-dir", tempfile.mkdtemp(), "--listen", "127.0.0.1:%d" % port)
            self.assertEqual(result.returncode, 1)
            self.assertIn(str(port), result.stderr)
        finally:
            blocker.close()

    def test_second_daemon_on_same_data_dir_is_refused(self):
        with Server() as first:
            result = run_cli("serve", "--data-dir", first.data_dir, "--listen", "127.0.0.1:0")
            self.assertEqual(result.returncode, 1)
            self.assertIn("in use", result.stderr)

    def test_data_dir_is_private(self):
        with Server() as server:
            self.assertEqual(os.stat(server.data_dir).st_mode & 0o077, 0)
            for root, _, files in os.walk(server.data_dir):
                for name in files:
                    path = os.path.join(root, name)
                    self.assertEqual(os.stat(path).st_mode & 0o077, 0, path)


if __name__ == "__main__":
    harness.main()
