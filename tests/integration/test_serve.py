"""`moatless serve` over real sockets: health, readiness, metrics, errors, request ids."""
import json
import os
import re
import socket
import unittest

import harness
from harness import Server, read_response, request


class ServeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_healthz(self):
        status, headers, body = request(self.server, "GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["status"], "ok")
        self.assertRegex(headers["x-amzn-requestid"],
                         r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

    def test_readyz(self):
        status, _, body = request(self.server, "GET", "/readyz")
        self.assertEqual(status, 200)
        checks = json.loads(body)["checks"]
        self.assertEqual(checks["store"], "ok")
        self.assertEqual(checks["audit"], "ok")

    def test_request_ids_are_unique(self):
        ids = {request(self.server, "GET", "/healthz")[1]["x-amzn-requestid"] for _ in range(20)}
        self.assertEqual(len(ids), 20)

    def test_unknown_route_is_a_json_error(self):
        status, headers, body = request(self.server, "GET", "/no/such/thing")
        self.assertEqual(status, 404)
        self.assertEqual(headers["x-amzn-errortype"], "ResourceNotFoundException")
        self.assertEqual(json.loads(body)["__type"], "ResourceNotFoundException")

    def test_wrong_method_is_405_with_allow(self):
        status, headers, _ = request(self.server, "DELETE", "/healthz")
        self.assertEqual(status, 405)
        self.assertIn("GET", headers["allow"])

    def test_metrics_count_requests(self):
        for _ in range(3):
            request(self.server, "GET", "/healthz")
        status, headers, body = request(self.server, "GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        text = body.decode()
        self.assertIn("# TYPE moatless_http_requests_total counter", text)
        counts = [int(m.group(2)) for m in re.finditer(
            r'^moatless_http_requests_total\{([^}]*)\} (\d+)$', text, re.M)
            if 'route="/healthz"' in m.group(1) and 'code="200"' in m.group(1)
            and 'method="GET"' in m.group(1)]
        self.assertEqual(len(counts), 1, text)
        self.assertGreaterEqual(counts[0], 3)
        self.assertIn("# TYPE moatless_http_request_duration_seconds histogram", text)
        self.assertIn("moatless_build_info{", text)

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        with self.server.connect() as sock:
            for _ in range(50):
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                status, headers, _ = read_response(sock)
                self.assertEqual(status, 200)
                self.assertNotEqual(headers.get("connection"), "close")

    def test_pipelined_requests_answer_in_order(self):
        with self.server.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual([read_response(sock)[0] for _ in range(3)], [200, 404, 200])

    def test_logs_are_json_lines_without_query_strings(self):
        request(self.server, "GET", "/healthz?api_key=very-secret-value")
        self.server.wait_for_log(lambda r: r.get("msg") == "request" and r.get("path") == "/healthz")
        for line in self.server.lines:
            json.loads(line)
            self.assertNotIn("very-secret-value", line)


class GatewayListenerTest(unittest.TestCase):
    def test_gateway_listener_serves_no_control_endpoint(self):
        with Server("--gateway-listen", "127.0.0.1:0") as server:
            record = server.wait_for_log(lambda r: r.get("msg") == "listening"
                                         and r.get("listener") == "gateway")
            host, _, port = record["address"].rpartition(":")
            self.assertNotEqual(int(port), server.port)
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                status, headers, body = read_response(sock)
            # The control endpoints are not reachable through the public listener.
            self.assertEqual(status, 404)
            self.assertEqual(json.loads(body), {"message": "Not Found"})
            self.assertEqual(headers.get("x-content-type-options"), "nosniff")
            _, _, metrics = request(server, "GET", "/metrics")
            self.assertRegex(metrics.decode(),
                             r'moatless_gateway_requests_total\{api="unknown",route="unmatched",'
                             r'status="4xx"\} 1')


class ObservabilitySwitchesTest(unittest.TestCase):
    def test_metrics_and_access_lines_off(self):
        with Server("--gateway-listen", "127.0.0.1:0", "--metrics.enabled", "false",
                    "--log.access", "false") as server:
            server.wait_for_log(lambda r: r.get("level") == "warn"
                                and "metrics.enabled is false" in r.get("msg", ""))
            record = server.wait_for_log(lambda r: r.get("msg") == "listening"
                                         and r.get("listener") == "gateway")
            host, _, port = record["address"].rpartition(":")
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                self.assertEqual(read_response(sock)[0], 404)
            self.assertEqual(request(server, "GET", "/healthz")[0], 200)
            status, _, body = request(server, "GET", "/metrics")
            self.assertEqual(status, 200)
            text = body.decode()
            # The listeners still count their requests; the modules record nothing.
            self.assertIn("moatless_http_requests_total{", text)
            self.assertIn("moatless_build_info{", text)
            for absent in ("moatless_gateway_", "moatless_audit_", "moatless_store_",
                           "moatless_log_write_failures_total"):
                self.assertNotIn(absent, text)
            self.assertFalse([r for r in server.records()
                              if r.get("msg") in ("gateway request", "request")])
            with open(os.path.join(server.data_dir, "logs", "gateway.log")) as f:
                self.assertNotIn('"gateway request"', f.read())


if __name__ == "__main__":
    harness.main()
