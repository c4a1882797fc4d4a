"""Malformed, oversized and slow requests against the real binary: a clear status, a closed
connection, and a server that keeps serving everyone else."""
import resource
import selectors
import socket
import time
import unittest

import harness
from harness import Server, peer_closed, read_response, request


class LimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("--http.max-header-bytes", "8KiB", "--http.max-body-bytes", "64KiB",
                            "--http.header-timeout", "1s", "--http.body-timeout", "1s")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def assert_still_serving(self):
        self.assertEqual(request(self.server, "GET", "/healthz")[0], 200)

    def test_oversized_header_is_431_and_closed(self):
        with self.server.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
            status, headers, _ = read_response(sock)
            self.assertEqual(status, 431)
            self.assertTrue(peer_closed(sock))
        self.assert_still_serving()

    def test_oversized_body_is_413_without_reading_it(self):
        with self.server.connect() as sock:
            sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
            status, _, _ = read_response(sock)
            self.assertEqual(status, 413)
            self.assertTrue(peer_closed(sock))
        self.assert_still_serving()

    def test_oversized_chunked_body_is_413(self):
        with self.server.connect() as sock:
            chunk = b"%x\r\n%s\r\n" % (32768, b"z" * 32768)
            try:
                sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             + chunk * 4 + b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            status, _, _ = read_response(sock)
            self.assertEqual(status, 413)
        self.assert_still_serving()

    def test_malformed_requests_are_400_and_closed(self):
        for raw in [b"GARBAGE\r\n\r\n",
                    b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
                    b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                    b"GET /healthz HTTP/1.1\r\n\r\n",  # HTTP/1.1 requires Host
                    b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",  # smuggling shape
                    b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                    b"GET /a/../healthz HTTP/1.1\r\nHost: x\r\n\r\n"]:
            with self.subTest(raw=raw[:40]), self.server.connect() as sock:
                sock.sendall(raw)
                response = read_response(sock)
                self.assertIsNotNone(response, raw)
                self.assertEqual(response[0], 400, raw)
                self.assertTrue(peer_closed(sock))
        self.assert_still_serving()

    def test_slowloris_header_gets_408_and_others_are_served(self):
        with self.server.connect() as slow:
            slow.sendall(b"GET /healthz HTTP/1.1\r\n")
            # Dribble header bytes, each well inside any per-read timeout, but the whole header
            # never completes: the header deadline (1s here) must cut the connection.
            closed = False
            response = None
            for _ in range(40):
                try:
                    slow.sendall(b"X")
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                self.assert_still_serving()  # the server answers others meanwhile
                slow.settimeout(0.1)
                try:
                    data = slow.recv(4096)
                    if data:
                        response = data
                    closed = True
                    break
                except socket.timeout:
                    continue
            self.assertTrue(closed, "slow header was never cut off")
            if response:
                self.assertTrue(response.startswith(b"HTTP/1.1 408"), response[:40])

    def test_idle_connection_without_bytes_is_closed(self):
        with self.server.connect() as sock:
            self.assertTrue(peer_closed(sock, timeout=10))

    def test_thousand_concurrent_connections(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 4096:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
        socks = [self.server.connect(timeout=30) for _ in range(1000)]
        try:
            for s in socks:  # every connection is open before any request is sent
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            sel = selectors.DefaultSelector()
            buffers = {}
            for s in socks:
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ)
                buffers[s] = b""
            done = 0
            deadline = time.monotonic() + 60
            while done < len(socks) and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=1):
                    chunk = key.fileobj.recv(65536)
                    self.assertTrue(chunk, "connection closed before its response")
                    buffers[key.fileobj] += chunk
                    if b"\r\n\r\n" in buffers[key.fileobj] and b'"ok"' in buffers[key.fileobj]:
                        sel.unregister(key.fileobj)
                        done += 1
            self.assertEqual(done, 1000)
            for s in socks:
                self.assertTrue(buffers[s].startswith(b"HTTP/1.1 200"))
        finally:
            for s in socks:
                s.close()
        self.assert_still_serving()


if __name__ == "__main__":
    harness.main()
