"""TLS on the real binary. The control listener: TLS 1.2+ only, a key file that others can read is
refused, plaintext to a TLS port gets nowhere. The gateway listener: openssl s_client refused with
TLS 1.0/1.1 and served with 1.2/1.3, HSTS on its responses, certificates reloaded on SIGHUP without
dropping established connections (and kept when the new files are broken), and
`serve --tls-self-signed`."""
import hashlib
import os
import re
import shutil
import signal
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


HSTS = "max-age=31536000; includeSubDomains"


def gateway_address(server):
    record = server.wait_for_log(lambda r: r.get("msg") == "listening"
                                 and r.get("listener") == "gateway")
    host, _, port = record["address"].rpartition(":")
    return host.strip("[]"), int(port)


def der_fingerprint(der):
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def file_fingerprint(cert_file):
    with open(cert_file) as f:
        return der_fingerprint(ssl.PEM_cert_to_DER_cert(f.read()))


def s_client(address, *flags, request=None):
    """Runs `openssl s_client` against address; returns (returncode, stdout + stderr)."""
    host, port = address
    args = ["openssl", "s_client", "-connect", "%s:%d" % (host, port), "-servername", "localhost",
            *flags]
    if request is not None:
        args.append("-ign_eof")
    result = subprocess.run(args, input=request or b"", capture_output=True, timeout=30)
    return result.returncode, (result.stdout + result.stderr).decode("latin-1")


class KeepAlive:
    """One TLS connection that stays open across requests (HTTP/1.1 keep-alive)."""

    def __init__(self, address, cafile):
        context = ssl.create_default_context(cafile=cafile)
        raw = socket.create_connection(address, timeout=10)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")

    def fingerprint(self):
        return der_fingerprint(self.sock.getpeercert(binary_form=True))

    def get(self, path):
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
        return harness.read_response(self.sock)

    def close(self):
        self.sock.close()


def count_logs(server, predicate):
    return sum(1 for r in server.records() if predicate(r))


class GatewayTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.cert, cls.key = make_cert(cls.dir)
        cls.server = Server("--gateway-listen", "127.0.0.1:0", "--gateway.tls-cert-file", cls.cert,
                            "--gateway.tls-key-file", cls.key)
        cls.gateway = gateway_address(cls.server)

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_openssl_tls_1_0_and_1_1_are_refused_by_the_server(self):
        for flag in ("-tls1", "-tls1_1"):
            # SECLEVEL=0 lets this client offer the old protocol at all: the refusal must be the
            # server's (a protocol_version alert), not the client's.
            code, out = s_client(self.gateway, flag, "-cipher", "DEFAULT@SECLEVEL=0")
            self.assertNotEqual(code, 0, out)
            self.assertNotIn("no protocols available", out)
            self.assertIn("alert protocol version", out)
            self.assertNotRegex(out, r"New, TLSv1(\.[01])?, Cipher")

    def test_openssl_tls_1_2_and_1_3_handshake(self):
        request = b"GET /nothing HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        for flag, version in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            code, out = s_client(self.gateway, flag, "-CAfile", self.cert, "-verify_return_error",
                                 "-msg", request=request)
            self.assertEqual(code, 0, out)
            match = re.search(r"New, (TLSv1\.[23]), Cipher is (\S+)", out)
            self.assertIsNotNone(match, out)
            self.assertEqual(match.group(1), version)
            if version == "TLSv1.2":
                self.assertRegex(match.group(2), r"^ECDHE-(ECDSA|RSA)-(AES\d+-GCM|CHACHA20)")
            self.assertIn("Verify return code: 0 (ok)", out)
            self.assertIn("HTTP/1.1 ", out)
            self.assertIn("Strict-Transport-Security: " + HSTS, out)
            self.assertIn("ServerHello", out)  # -msg shows the handshake messages...
            self.assertNotIn("CertificateRequest", out)  # ...and no client certificate is asked for

    def test_hsts_on_gateway_tls_responses_only(self):
        conn = KeepAlive(self.gateway, self.cert)
        try:
            for path in ("/", "/no-such-app/stage/route"):
                status, headers, _ = conn.get(path)
                self.assertGreaterEqual(status, 400)
                self.assertEqual(headers.get("strict-transport-security"), HSTS)
            # The server's own 400 (no Host header) carries it too.
            conn.sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
            status, headers, _ = harness.read_response(conn.sock)
            self.assertEqual(status, 400)
            self.assertEqual(headers.get("strict-transport-security"), HSTS)
        finally:
            conn.close()
        # The control listener here is plaintext: no HSTS there.
        status, headers, _ = harness.request(self.server, "GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertNotIn("strict-transport-security", headers)


class TlsReloadTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.cert, self.key = make_cert(self.dir)
        self.server = Server("--gateway-listen", "127.0.0.1:0", "--gateway.tls-cert-file",
                             self.cert, "--gateway.tls-key-file", self.key)
        self.gateway = gateway_address(self.server)

    def tearDown(self):
        self.server.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def replace_files(self, cert_text, key_text, key_mode=0o600):
        for path, text, mode in ((self.cert, cert_text, 0o644), (self.key, key_text, key_mode)):
            tmp = path + ".new"
            with open(tmp, "w") as f:
                f.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)

    def sighup(self, msg):
        predicate = (lambda r: r.get("msg", "").startswith(msg)
                     and r.get("listener") == "gateway")
        before = count_logs(self.server, predicate)
        self.server.signal(signal.SIGHUP)
        self.server.wait_for_log(lambda r: count_logs(self.server, predicate) > before)
        return [r for r in self.server.records() if predicate(r)][-1]

    def new_connection_fingerprint(self, cafile):
        conn = KeepAlive(self.gateway, cafile)
        try:
            status, headers, _ = conn.get("/")
            self.assertEqual(headers.get("strict-transport-security"), HSTS)
            return conn.fingerprint()
        finally:
            conn.close()

    def test_sighup_reloads_the_certificate_and_keeps_established_connections(self):
        old = file_fingerprint(self.cert)
        established = KeepAlive(self.gateway, self.cert)
        try:
            first = established.get("/before")
            self.assertIsNotNone(first)
            self.assertEqual(established.fingerprint(), old)

            renewed_dir = tempfile.mkdtemp()
            try:
                new_cert, new_key = make_cert(renewed_dir)
                with open(new_cert) as c, open(new_key) as k:
                    new_cert_text, new_key_text = c.read(), k.read()
            finally:
                shutil.rmtree(renewed_dir, ignore_errors=True)
            new = der_fingerprint(ssl.PEM_cert_to_DER_cert(new_cert_text))
            self.assertNotEqual(new, old)
            self.replace_files(new_cert_text, new_key_text)
            self.sighup("tls certificates reloaded")

            # A new connection gets the new certificate (and trusts only it).
            self.assertEqual(self.new_connection_fingerprint(self.cert), new)
            # The connection made before the reload keeps working.
            second = established.get("/after")
            self.assertIsNotNone(second)
            self.assertEqual(second[0], first[0])
            self.assertEqual(established.fingerprint(), old)

            # A broken key: the daemon says why and keeps the certificate it has.
            with open(self.cert) as c:
                good_cert = c.read()
            self.replace_files(good_cert, "-----BEGIN PRIVATE KEY-----\nbroken\n")
            record = self.sighup("tls certificate reload failed")
            self.assertIn(self.key, record.get("error", ""))
            self.assertIsNone(self.server.proc.poll())
            self.assertEqual(self.new_connection_fingerprint(self.cert), new)
            # A key that others can read is refused the same way.
            self.replace_files(good_cert, new_key_text, key_mode=0o644)
            record = self.sighup("tls certificate reload failed")
            self.assertIn("group or others", record.get("error", ""))
            self.assertEqual(self.new_connection_fingerprint(self.cert), new)
            self.assertIsNotNone(established.get("/still"))
            status, _, _ = harness.request(self.server, "GET", "/healthz")
            self.assertEqual(status, 200)
        finally:
            established.close()
        # SIGHUP did not change how the daemon stops.
        self.assertEqual(self.server.stop(), 0)


class SelfSignedTest(unittest.TestCase):
    def test_serve_tls_self_signed_serves_the_gateway_for_localhost(self):
        data_dir = tempfile.mkdtemp(prefix="moatless-it-")
        try:
            fingerprints = []
            for run in range(2):
                with Server("--gateway-listen", "127.0.0.1:0", "--tls-self-signed",
                            "--gateway.tls-request-client-cert", data_dir=data_dir) as server:
                    record = server.wait_for_log(
                        lambda r: "self-signed development certificate" in r.get("msg", ""))
                    self.assertEqual(record.get("generated"), run == 0)
                    fingerprints.append(record["sha256_fingerprint"])
                    cert = os.path.join(data_dir, "tls", "self-signed-cert.pem")
                    key = os.path.join(data_dir, "tls", "self-signed-key.pem")
                    self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
                    self.assertEqual(os.stat(os.path.join(data_dir, "tls")).st_mode & 0o777,
                                     0o700)
                    self.assertEqual(file_fingerprint(cert), record["sha256_fingerprint"])
                    gateway = gateway_address(server)
                    # Verified against the certificate itself, for the name localhost.
                    conn = KeepAlive(gateway, cert)
                    try:
                        self.assertEqual(conn.fingerprint(), record["sha256_fingerprint"])
                        status, headers, _ = conn.get("/")
                        self.assertEqual(headers.get("strict-transport-security"), HSTS)
                    finally:
                        conn.close()
                    out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-text"],
                                         capture_output=True, text=True, check=True).stdout
                    self.assertIn("DNS:localhost", out)
                    self.assertIn("IP Address:127.0.0.1", out)
                    self.assertIn("IP Address:0:0:0:0:0:0:0:1", out)
                    self.assertIn("prime256v1", out)
                    # gateway.tls_request_client_cert: the server asks for a client certificate.
                    for flag in ("-tls1_2", "-tls1_3"):
                        code, out = s_client(gateway, flag, "-CAfile", cert, "-verify_return_error",
                                             "-msg")
                        self.assertEqual(code, 0, out)
                        self.assertIn("CertificateRequest", out)
            self.assertEqual(fingerprints[0], fingerprints[1])  # reused on restart
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)

    def test_tls_self_signed_needs_the_gateway(self):
        result = run_cli("serve", "--data-dir", tempfile.mkdtemp(), "--listen", "127.0.0.1:0",
                         "--tls-self-signed")
        self.assertEqual(result.returncode, 2)
        self.assertIn("gateway_listen", result.stderr)


if __name__ == "__main__":
    harness.main()
