"""Mutual TLS on the gateway (src/gateway/truststore.h, manifest `mtls:`) with the real daemon and
real TLS clients (Python's ssl): the gateway listener serves TLS and asks for client
certificates; the app tests/integration/apps/mtls requires one issued by the CA the test generates
for the run. No certificate, a certificate of another CA, or one that is not for client
authentication is refused with 403 (audited, the function never runs); a good one reaches the
function with its subject, issuer, serial and validity in requestContext.authentication.clientCert.
Another app on the same listener needs no certificate.

Functions run in sandboxes; on a host that cannot isolate them the daemon says "functions cannot
run on this host" and every test here is skipped with that message."""
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import unittest

import harness
from harness import Server, run_cli

HERE = os.path.dirname(os.path.abspath(__file__))
MTLS_APP = os.path.join(HERE, "apps", "mtls")
CTX = {}


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(directory, name, cn):
    key, cert = os.path.join(directory, name + "-key.pem"), os.path.join(directory, name + ".pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", cert, "-days", "2", "-subj", "/O=moatless it/CN=" + cn,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_leaf(directory, name, ca, cn, eku, san=None):
    key, csr = os.path.join(directory, name + "-key.pem"), os.path.join(directory, name + ".csr")
    cert, ext = os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".ext")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/O=moatless it/CN=" + cn)
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=%s\n" % eku)
        if san:
            f.write("subjectAltName=%s\n" % san)
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
            "-out", cert, "-days", "2", "-extfile", ext)
    os.chmod(key, 0o600)
    return cert, key


def setUpModule():
    tmp = tempfile.mkdtemp(prefix="moatless-mtls-")
    os.chmod(tmp, 0o711)  # the sandboxes' users traverse it to apps.code_dir
    CTX["tmp"] = tmp
    unittest.addModuleCleanup(lambda: subprocess.run(["rm", "-rf", tmp], check=False))
    certs = os.path.join(tmp, "certs")
    os.makedirs(certs)
    ca = make_ca(certs, "ca", "mtls CA")
    other_ca = make_ca(certs, "other-ca", "other CA")
    CTX["server"] = make_leaf(certs, "server", ca, "localhost", "serverAuth",
                              "DNS:localhost,IP:127.0.0.1")
    CTX["client"] = make_leaf(certs, "client", ca, "client one", "clientAuth")
    CTX["stranger"] = make_leaf(certs, "stranger", other_ca, "stranger", "clientAuth")
    CTX["server-only"] = make_leaf(certs, "server-only", ca, "not a client", "serverAuth")
    CTX["ca"] = ca[0]

    app = os.path.join(tmp, "mt")
    shutil.copytree(MTLS_APP, app)
    # The function is the gateway test app's echo.
    shutil.copytree(os.path.join(HERE, "apps", "gateway", "functions"),
                    os.path.join(app, "functions"))
    os.makedirs(os.path.join(app, "certs"))
    shutil.copy(ca[0], os.path.join(app, "certs", "ca.pem"))
    # The same function without mtls: another app on the same listener.
    plain = os.path.join(tmp, "plain")
    shutil.copytree(app, plain, ignore=shutil.ignore_patterns("certs"))
    with open(os.path.join(plain, "moatless.yaml")) as f:
        text = f.read()
    with open(os.path.join(plain, "moatless.yaml"), "w") as f:
        f.write(text.replace("app: mt", "app: plain").split("\nmtls:")[0] + "\n")

    data_dir = os.path.join(tmp, "data")
    creds = os.path.join(tmp, "home", ".aws", "credentials")
    init = run_cli("init", "--data-dir", data_dir, "--credentials-file", creds)
    if init.returncode != 0:
        raise AssertionError("moatless init failed: " + init.stderr)
    server = Server("--apps.code-dir", os.path.join(tmp, "code"), "--gateway-listen", "127.0.0.1:0",
                    "--gateway.tls-cert-file", CTX["server"][0],
                    "--gateway.tls-key-file", CTX["server"][1],
                    "--gateway.tls-request-client-cert", data_dir=data_dir)
    CTX["daemon"] = server
    unittest.addModuleCleanup(server.cleanup)
    refused = server.functions_refused()
    if refused is not None:
        raise unittest.SkipTest("functions cannot run on this host: %s" % refused)
    record = server.wait_for_log(lambda r: r.get("msg") == "listening"
                                 and r.get("listener") == "gateway")
    host, _, port = record["address"].rpartition(":")
    CTX["gateway"] = (host.strip("[]"), int(port))
    env = {"HOME": tmp, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": creds,
           "AWS_REGION": "local", "AWS_PROFILE": "moatless", "MOATLESS_ENDPOINT": server.url("")}
    for directory in (app, plain):
        result = run_cli("deploy", "--dir", directory, "--yes", "--json", env=env, timeout=180)
        if result.returncode != 0:
            raise AssertionError("deploy failed:\n%s\n%s" % (result.stdout, result.stderr))
    CTX["data_dir"] = data_dir


class MtlsTest(unittest.TestCase):
    def get(self, path, client=None):
        """GET over TLS (server verified against the run's CA), presenting `client` (cert, key)."""
        context = ssl.create_default_context(cafile=CTX["ca"])
        if client is not None:
            context.load_cert_chain(*client)
        host, port = CTX["gateway"]
        with socket.create_connection((host, port), timeout=30) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                             % path).encode())
                data = b""
                while True:
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(lines[0].split(" ")[1]), headers, body

    def invocations(self):
        status, _, body = harness.request(CTX["daemon"], "GET", "/metrics")
        self.assertEqual(status, 200)
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith("moatless_function_invocations_total{") and "mt_dev_echo" in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def audit(self):
        with open(os.path.join(CTX["data_dir"], "audit", "audit.log")) as f:
            return [json.loads(line) for line in f if line.strip()]

    def test_a_client_certificate_of_the_apps_ca_reaches_the_function(self):
        status, headers, body = self.get("/mt/dev/echo", CTX["client"])
        self.assertEqual(status, 200, body)
        cert = json.loads(body)["requestContext"]["authentication"]["clientCert"]
        self.assertEqual(cert["subjectDN"], "CN=client one,O=moatless it")
        self.assertEqual(cert["issuerDN"], "CN=mtls CA,O=moatless it")
        with open(CTX["client"][0]) as f:
            self.assertEqual(cert["clientCertPem"].strip(), f.read().strip())
        self.assertRegex(cert["serialNumber"], r"^[0-9a-f]{2}(:[0-9a-f]{2})+$")
        self.assertRegex(cert["validity"]["notAfter"], r" GMT$")
        self.assertIn("max-age=", headers.get("strict-transport-security", ""))

    def test_no_certificate_another_cas_or_a_server_certificate_is_refused(self):
        before = self.invocations()
        for who, client in (("none", None), ("stranger", CTX["stranger"]),
                            ("server-only", CTX["server-only"])):
            with self.subTest(who):
                status, headers, body = self.get("/mt/dev/echo", client)
                self.assertEqual(status, 403, body)
                self.assertEqual(json.loads(body), {"message": "Forbidden"})
                request_id = headers["x-amzn-requestid"]
                records = [r for r in self.audit() if r.get("request_id") == request_id]
                self.assertEqual(len(records), 1, records)
                self.assertEqual(records[0]["outcome"], "denied")
                self.assertIn("client certificate", records[0]["reason"])
        self.assertEqual(self.invocations(), before)

    def test_an_app_without_mtls_on_the_same_listener_needs_no_certificate(self):
        status, _, body = self.get("/plain/dev/echo")
        self.assertEqual(status, 200, body)
        self.assertNotIn("authentication", json.loads(body)["requestContext"])


if __name__ == "__main__":
    harness.main()
