"""The audit log written by the real daemon, and `moatless audit verify` detecting tampering."""
import json
import os
import unittest

import harness
from harness import Server, run_cli


def audit_path(data_dir):
    return os.path.join(data_dir, "audit", "audit.log")


class AuditTest(unittest.TestCase):
    def make_log(self):
        """Starts and stops the daemon three times: six records (start + stop each)."""
        data_dir = None
        for _ in range(3):
            server = Server(data_dir=data_dir)
            data_dir = server.data_dir
            self.assertEqual(server.stop(), 0)
        self.addCleanup(lambda: os.system("rm -rf '%s'" % data_dir))
        return data_dir

    def verify(self, data_dir, *extra):
        return run_cli("audit", "verify", "--data-dir", data_dir, "--json", *extra)

    def test_daemon_lifecycle_is_audited_and_chain_verifies(self):
        data_dir = self.make_log()
        with open(audit_path(data_dir)) as f:
            records = [json.loads(line) for line in f]
        self.assertEqual([r["seq"] for r in records], list(range(1, 7)))
        self.assertEqual([r["action"] for r in records[:2]], ["moatless:ServeStart", "moatless:ServeStop"])
        result = self.verify(data_dir)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        report = json.loads(result.stdout)
        self.assertTrue(report["ok"])
        self.assertEqual(report["head"]["seq"], 6)

    def test_edited_record_is_detected(self):
        data_dir = self.make_log()
        path = audit_path(data_dir)
        with open(path) as f:
            lines = f.readlines()
        record = json.loads(lines[2])
        record["outcome"] = "denied"  # an attacker rewrites history but keeps the stored hash
        lines[2] = json.dumps(record, separators=(",", ":")) + "\n"
        with open(path, "w") as f:
            f.writelines(lines)
        result = self.verify(data_dir)
        self.assertEqual(result.returncode, 1)
        report = json.loads(result.stdout)
        self.assertFalse(report["ok"])
        self.assertEqual(report["first_bad"]["seq"], 3)

    def test_deleted_record_is_detected(self):
        data_dir = self.make_log()
        path = audit_path(data_dir)
        with open(path) as f:
            lines = f.readlines()
        del lines[3]
        with open(path, "w") as f:
            f.writelines(lines)
        result = self.verify(data_dir)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(json.loads(result.stdout)["first_bad"]["line"], 4)

    def test_truncated_tail_is_detected_against_an_anchored_head(self):
        data_dir = self.make_log()
        head = json.loads(self.verify(data_dir).stdout)["head"]
        path = audit_path(data_dir)
        with open(path) as f:
            lines = f.readlines()
        with open(path, "w") as f:
            f.writelines(lines[:-2])
        self.assertEqual(self.verify(data_dir).returncode, 0)  # a shorter chain is self-consistent
        anchored = self.verify(data_dir, "--expect-head", "%d:%s" % (head["seq"], head["hash"]))
        self.assertEqual(anchored.returncode, 1)

    def test_daemon_refuses_to_extend_a_broken_chain(self):
        data_dir = self.make_log()
        path = audit_path(data_dir)
        with open(path) as f:
            lines = f.readlines()
        del lines[1]
        with open(path, "w") as f:
            f.writelines(lines)
        result = run_cli("serve", "--data-dir", data_dir, "--listen", "127.0.0.1:0", timeout=30)
        self.assertEqual(result.returncode, 1)
        self.assertIn("audit", result.stderr)


if __name__ == "__main__":
    harness.main()
