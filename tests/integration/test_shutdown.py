"""Graceful shutdown of the real binary on SIGTERM / SIGINT: stop accepting, finish what is in
flight, cut what outlives the drain deadline, exit 0."""
import signal
import socket
import time
import unittest

import harness
from harness import Server, peer_closed, read_response, request


def refused(server):
    try:
        with socket.create_connection((server.host, server.port), timeout=2) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            return read_response(s) is None
    except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
        return True


class ShutdownTest(unittest.TestCase):
    def test_in_flight_request_completes_after_sigterm(self):
        with Server("--shutdown.drain-timeout", "20s") as server:
            sock = server.connect()
            # The request is in flight: headers and half the body have arrived.
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
            time.sleep(0.3)
            server.signal(signal.SIGTERM)
            server.wait_for_log(lambda r: r.get("msg") == "draining")
            self.assertTrue(refused(server), "new connections must be refused while draining")
            sock.sendall(b"56789")
            status, headers, _ = read_response(sock)
            self.assertEqual(status, 200)
            self.assertEqual(headers.get("connection"), "close")
            self.assertTrue(peer_closed(sock))
            sock.close()
            self.assertEqual(server.wait(), 0)
            self.assertTrue(any(r.get("msg") == "stopped" for r in server.records()))

    def test_idle_keep_alive_connections_do_not_delay_shutdown(self):
        with Server("--shutdown.drain-timeout", "60s") as server:
            idle = server.connect()
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(read_response(idle)[0], 200)
            start = time.monotonic()
            server.signal(signal.SIGINT)
            self.assertEqual(server.wait(timeout=30), 0)
            self.assertTrue(peer_closed(idle))
            # Bounded by the drain deadline, not an assertion on speed: a hang would time out.
            self.assertLess(time.monotonic() - start, 60)
            idle.close()

    def test_drain_deadline_cuts_requests_that_never_finish(self):
        with Server("--shutdown.drain-timeout", "1s", "--http.body-timeout", "120s") as server:
            stuck = server.connect()
            stuck.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            time.sleep(0.3)
            server.signal(signal.SIGTERM)
            self.assertEqual(server.wait(timeout=30), 0)
            self.assertTrue(peer_closed(stuck))
            stuck.close()


if __name__ == "__main__":
    harness.main()
