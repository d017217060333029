"""client/python/examples/thug_layout.py against a broker and a worker
running the fake Thug (tests/worker/fake_thug.sh)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import unittest

import tq
from cluster import PYTHON, SOURCE_DIR, ClusterTestCase, binary, read

EXAMPLE = os.path.join(SOURCE_DIR, "client", "python", "examples", "thug_layout.py")
FAKE_THUG = os.path.join(SOURCE_DIR, "tests", "worker", "fake_thug.sh")
SAMPLE = b"MZ\x90\x00fake sample"


class ThugLayoutExampleTest(ClusterTestCase):
    def test_each_result_is_written_as_thug_lays_out_its_logs(self) -> None:
        endpoint = self.start_broker()
        thug = ("--exec", f"{FAKE_THUG} -n {{outdir}} -u {{useragent}} {{url}}")
        for country in ("IT", "IN"):
            self.start_worker(
                endpoint, f"thug-{country}", thug, country=country, concurrency=2,
                extra=("--work-dir", self.path(f"work-{country}")),
            )
        urls = ["http://127.0.0.1/one", "http://127.0.0.1/two"]
        url_file = self.write("urls.txt", "# two pages\n" + "\n".join(urls) + "\n")
        out = self.path("out")
        run = self.run_tool(
            [PYTHON, EXAMPLE, "--broker", endpoint, "--country", "IT,IN",
             "--user-agent", "winxpie60", "--timeout", "60", url_file, out]
        )
        self.assertEqual(run.returncode, 0, run.stderr + self.logs())
        self.assertEqual(len(run.stdout.splitlines()), 4, run.stdout)
        self.assertIn("4 done, 0 dead, 0 cancelled", run.stderr)
        for url in urls:
            url_dir = os.path.join(out, hashlib.md5(url.encode()).hexdigest())
            # One timestamp directory per run: the same URL ran in IT and IN
            # (two runs in the same second share one).
            stamps = os.listdir(url_dir)
            self.assertIn(len(stamps), (1, 2), stamps)
            for stamp in stamps:
                self.assertRegex(stamp, re.compile(r"^\d{14}$"))
                base = os.path.join(url_dir, stamp)
                # The result output: the worker's report with Thug's log in
                # "analysis" (as tq-submit --layout thug writes it).
                report = json.loads(read(os.path.join(base, "analysis", "json", "analysis.json")))
                log = report["analysis"]
                self.assertEqual(log["url"], url)
                self.assertEqual(log["thug"]["personality"]["useragent"], "winxpie60")
                with open(os.path.join(base, "application", "x-dosexec", "sample.exe"), "rb") as f:
                    self.assertEqual(f.read(), SAMPLE)
                # Thug's own <md5>/<timestamp> prefix is not repeated inside.
                self.assertFalse(os.path.exists(os.path.join(base, "0123abcd")))

    def test_out_trees_match_tq_ctl_in_both_layouts(self) -> None:
        endpoint = self.start_broker()
        self.start_worker(
            endpoint, "thug",
            ("--exec", f"{FAKE_THUG} -n {{outdir}} -u {{useragent}} {{url}}"),
            concurrency=2, extra=("--work-dir", self.path("work")),
        )
        with tq.Client(endpoint) as client:
            receipt = client.submit(["http://127.0.0.1/a", "http://127.0.0.1/b"])
            results = list(client.results(receipt.batch_id, timeout=60, with_files=True))
        self.assertEqual(len(results), 2, self.logs())
        self.assertTrue(all(r.files for r in results))
        for layout in ("tasks", "thug"):
            mine, theirs = self.path(f"py-{layout}"), self.path(f"cxx-{layout}")
            py = self.run_tool([PYTHON, "-m", "tq", "results", receipt.batch_id,
                                "--broker", endpoint, "--out", mine, "--layout", layout])
            self.assertEqual(py.returncode, 0, py.stderr)
            cxx = self.run_tool([binary("tq-ctl"), "--broker", endpoint, "results",
                                 receipt.batch_id, "--out", theirs, "--layout", layout])
            self.assertEqual(cxx.returncode, 0, cxx.stderr)
            self.assertEqual(py.stdout, cxx.stdout)
            self.assertEqual(tree(mine), tree(theirs), layout)
            self.assertGreaterEqual(len(tree(mine)), 4)


def tree(root: str) -> dict:
    """Relative path -> content of every file under root."""
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


if __name__ == "__main__":
    unittest.main()
