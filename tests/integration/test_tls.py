"""TLS on the control listener of the real binary: TLS 1.2+ only, a key file that others can read
is refused, plaintext to a TLS port gets nowhere."""
import os
import socket
import ssl
import subprocess
import tempfile
import unittest

import harness
from harness import Server, run_cli


def make_cert(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.cert, cls.key = make_cert(cls.dir)
        cls.server = Server("--tls.cert-file", cls.cert, "--tls.key-file", cls.key)

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        subprocess.run(["rm", "-rf", cls.dir])

    def tls_get(self, context):
        with socket.create_connection((self.server.host, self.server.port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                return harness.read_response(tls), tls.version()

    def test_verified_tls_round_trip(self):
        context = ssl.create_default_context(cafile=self.cert)
        (status, _, body), version = self.tls_get(context)
        self.assertEqual(status, 200)
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))

    def test_tls_1_2_is_accepted(self):
        context = ssl.create_default_context(cafile=self.cert)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        (status, _, _), version = self.tls_get(context)
        self.assertEqual((status, version), (200, "TLSv1.2"))

    def test_tls_1_1_is_refused(self):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        # SECLEVEL=0 lets this client offer TLS 1.1 at all; the server must still refuse it.
        context.set_ciphers("ALL:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
        with self.assertRaises((ssl.SSLError, ConnectionResetError, OSError)):
            self.tls_get(context)

    def test_plaintext_to_tls_port_gets_no_http_response(self):
        with self.server.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(10)
            try:
                data = sock.recv(4096)
            except ConnectionResetError:
                data = b""
            self.assertFalse(data.startswith(b"HTTP/1.1 200"))

    def test_readable_key_file_is_refused(self):
        os.chmod(self.key, 0o644)
        try:
            result = run_cli("serve", "--data-dir", tempfile.mkdtemp(), "--listen", "127.0.0.1:0",
                             "--tls.cert-file", self.cert, "--tls.key-file", self.key)
            self.assertEqual(result.returncode, 1)
            self.assertIn("key", result.stderr)
        finally:
            os.chmod(self.key, 0o600)


if __name__ == "__main__":
    harness.main()
