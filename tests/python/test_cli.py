"""python3 -m tq as a user runs it, next to tq-submit and tq-ctl."""

from __future__ import annotations

import json
import shlex
import unittest

from cluster import PYTHON, ClusterTestCase, binary
from tq import BatchProgress
from tq.__main__ import format_eta, format_progress_line
from tq.url_file import parse_url_file

# One handler for every kind of result line: text with non-ASCII, output that
# is not UTF-8 (output_base64), and a failure (error, stderr_tail, dead).
MIXED = (
    "--exec",
    "sh -c 'case \"$0\" in *fail*) echo broken >&2; exit 4;; "
    "*bin*) printf \"\\377\\376\\n\";; *) echo \"$0 \u00fc\";; esac' {url}",
)

URL_FILE = (
    "# comment\n"
    "http://127.0.0.1/one\n"
    "ftp://127.0.0.1/two\n"
    "\n"
    "http://127.0.0.1/bin\r\n"
    "http://127.0.0.1/fail\n"
)


def python_tq(*args: str) -> list:
    return [PYTHON, "-m", "tq", *args]


class SubmitCommandTest(ClusterTestCase):
    def test_wait_prints_the_lines_of_tq_submit(self) -> None:
        endpoint = self.start_broker()
        self.start_worker(endpoint, "w1", MIXED)
        self.start_worker(endpoint, "w2", MIXED)
        urls = self.write("urls.txt", URL_FILE)
        run = self.run_tool(
            python_tq("submit", urls, "--broker", endpoint, "--wait", "--timeout", "60",
                      "--max-attempts", "1")
        )
        # Bad lines skipped (3) outranks a dead task (1).
        self.assertEqual(run.returncode, 3, run.stderr + self.logs())
        self.assertIn(f"{urls}:3: scheme 'ftp' is not http or https", run.stderr)
        lines = run.stdout.splitlines()
        self.assertEqual(len(lines), 3, run.stdout)
        by_url = {j["url"]: j for j in map(json.loads, lines)}
        self.assertEqual(
            set(by_url), {"http://127.0.0.1/one", "http://127.0.0.1/bin", "http://127.0.0.1/fail"}
        )
        one = by_url["http://127.0.0.1/one"]
        self.assertEqual((one["status"], one["ok"], one["result"]), ("done", True, "http://127.0.0.1/one \u00fc\n"))
        self.assertEqual(by_url["http://127.0.0.1/bin"]["output_base64"], "//4K")
        self.assertNotIn("result", by_url["http://127.0.0.1/bin"])
        fail = by_url["http://127.0.0.1/fail"]
        self.assertEqual((fail["status"], fail["ok"], fail["exit_code"]), ("dead", False, 4))
        self.assertEqual(fail["stderr_tail"], "broken\n")
        self.assertIn("error", fail)

        # tq-ctl prints the same batch byte for byte, in the same order.
        batch_id = one["batch_id"]
        ctl = self.run_tool([binary("tq-ctl"), "--broker", endpoint, "results", batch_id])
        self.assertEqual(ctl.returncode, 0, ctl.stderr)
        self.assertEqual(ctl.stdout.splitlines(), lines)

        # tq-submit on the same file: the same keys in the same order.
        cxx = self.run_tool(
            [binary("tq-submit"), urls, "--broker", endpoint, "--wait", "--timeout", "60",
             "--max-attempts", "1"]
        )
        self.assertEqual(cxx.returncode, 3, cxx.stderr)
        cxx_by_url = {j["url"]: j for j in map(json.loads, cxx.stdout.splitlines())}
        self.assertEqual(set(cxx_by_url), set(by_url))
        for url, j in by_url.items():
            mine, theirs = list(j), list(cxx_by_url[url])
            self.assertEqual(mine, theirs, url)
            for key in ("url", "queue", "status", "ok", "attempts", "exit_code", "index"):
                self.assertEqual(j[key], cxx_by_url[url][key], (url, key))
            for key in ("result", "output_base64", "stderr_tail"):
                self.assertEqual(j.get(key), cxx_by_url[url].get(key), (url, key))

    def test_without_wait_it_prints_the_batch_id(self) -> None:
        endpoint = self.start_broker()
        env = {"TQ_BROKER": endpoint}
        urls = self.write("urls.txt", "http://127.0.0.1/a\nhttp://127.0.0.1/b\n")
        run = self.run_tool(
            python_tq("submit", urls, "--country", "IT, IN", "--batch-id", "cli-1",
                      "-o", "user_agent=winxpie60"),
            env,
        )
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout, "cli-1\n")
        self.assertIn("submitted 4 tasks (0 duplicates) in batch cli-1", run.stderr)
        again = self.run_tool(python_tq("submit", urls, "--country", "IT,IN", "--batch-id", "cli-1"), env)
        self.assertIn("(4 duplicates)", again.stderr)

        progress = self.run_tool(python_tq("progress", "cli-1"), env)
        self.assertEqual(progress.returncode, 0, progress.stderr)
        counts = json.loads(progress.stdout)
        self.assertEqual((counts["batch_id"], counts["total"], counts["queued"]), ("cli-1", 4, 4))

        cancel = self.run_tool(python_tq("cancel", "cli-1"), env)
        self.assertEqual((cancel.returncode, cancel.stdout), (0, "4 tasks cancelled\n"))
        counts = json.loads(self.run_tool(python_tq("progress", "cli-1"), env).stdout)
        self.assertEqual(counts["cancelled"], 4)

        missing = self.run_tool(python_tq("progress", "nope"), env)
        self.assertEqual(missing.returncode, 5)
        self.assertIn("no batch 'nope'", missing.stderr)

    def test_usage_errors_and_an_absent_broker(self) -> None:
        urls = self.write("urls.txt", "http://127.0.0.1/a\n")
        absent = self.run_tool(
            python_tq("submit", urls, "--broker", "tcp://127.0.0.1:1", "--request-timeout", "0.2")
        )
        self.assertEqual(absent.returncode, 4)
        self.assertIn("re-running with --batch-id", absent.stderr)
        lower = self.run_tool(python_tq("submit", urls, "--broker", "tcp://127.0.0.1:1", "--country", "it"))
        self.assertEqual(lower.returncode, 2)
        self.assertIn("upper case", lower.stderr)
        self.assertEqual(self.run_tool(python_tq("submit", self.path("missing.txt"))).returncode, 2)
        empty = self.write("empty.txt", "# nothing\n")
        self.assertEqual(self.run_tool(python_tq("submit", empty)).returncode, 2)
        self.assertEqual(self.run_tool(python_tq("submit", urls, "--layout", "nope")).returncode, 2)
        helped = self.run_tool(python_tq("submit", "--help"))
        self.assertEqual(helped.returncode, 0)
        self.assertIn("--country", helped.stdout)


# Lines that tq-submit accepts or refuses, with its reasons. (Hosts with
# IDNA 2003/2008 deviations, e.g. "fa\u00df.de", are refused by the Python
# reader on purpose: see tq/url_file.py.)
TRICKY_LINES = [
    "ftp://a.example/7", "http://", "http://a.example:0/", "http://a.example:1/",
    "http://a.example:65535/", "http://a.example:99999/", "http://ctl.example/a\x01z",
    "https://user@xn--bcher-kva.example:8080/p?q#f", "http://127.0.0.1:8080/x",
    "http://B\u00dc", "http://[::1]/", "http://[\u00fc]/", "http://\u00fc", "http://a.com/",
    "http://a.example/\u00fc", "http://a.example:/", "http://a.example:000/",
    "http://a.example:08080/", "http://a.example:65536", "http://a.example:80x/",
    "http://a_\u00fc.example/", "http://b\u00fc", "http://bu\u0308", "http://evil.example\uff0f",
    "http://exa mple.com/", "http://example.com/a b", "http://u@[::1]:123456789012345678901/",
    "http://xn--bcher-kva.example.:80", "https://[::1]:443/",
    "https://u:p@\u4f8b\u5b50.example:8443/", "https://u:p@xn--fsqu00a.example:8443/A%20b?x=1#F",
    "example.com/three", "localhost:80", "http://a.example/%zz", "http://a.example/<x>",
    "http://a.example/{x}", "http://a.example/a|b", "http:foo", "HTTP://A.EXAMPLE/",
    "http://a.example/\\x", "http://a.example/#a#b", "http://a.example/?q=[1]", "mailto:x@y",
    "//a.example/", "http://@a.example/", "http://a.example:8080:90/", "http://[::1",
    "http://a.example/\x7f", "x" * 5000,
]


class UrlFileTest(ClusterTestCase):
    def test_lines_are_judged_as_tq_submit_judges_them(self) -> None:
        path = self.write("tricky.txt", "\n".join(TRICKY_LINES) + "\n")
        # --strict stops after reading: no broker is asked.
        cxx = self.run_tool(
            [binary("tq-submit"), "--strict", "--broker", "tcp://127.0.0.1:1", path]
        )
        self.assertEqual(cxx.returncode, 2, cxx.stderr)
        # tq-submit prints the first 20 bad lines, then how many it left out.
        theirs = {}
        not_shown = 0
        for line in cxx.stderr.splitlines():
            if line.startswith(path + ": ") and line.endswith(" more bad lines not shown"):
                not_shown = int(line[len(path) + 2 :].split(" ", 1)[0])
            elif line.startswith(path + ":"):
                line_no, reason = line[len(path) + 1 :].split(": ", 1)
                theirs[int(line_no)] = reason
        with open(path, "rb") as f:
            parsed = parse_url_file(f.read())
        mine = {b.line_no: b.reason for b in parsed.bad[:20]}
        self.assertEqual(len(theirs), 20)
        self.assertEqual(not_shown, len(parsed.bad) - 20)
        self.assertEqual(mine, theirs)
        self.assertIn("http://xn--tda", [u.url for u in parsed.urls])


class ProgressLineTest(unittest.TestCase):
    """The strings of tests/client/progress_line_test.cc."""

    def test_eta(self) -> None:
        for seconds, text in [(0, "0:00"), (7, "0:07"), (6.2, "0:07"), (754, "12:34"),
                              (3723, "1:02:03"), (-1, "--:--"), (float("nan"), "--:--"),
                              (float("inf"), "--:--"), (1e9, "--:--")]:
            self.assertEqual(format_eta(seconds), text, seconds)

    def test_line(self) -> None:
        self.assertEqual(
            format_progress_line(BatchProgress(total=1000, done=400, dead=100, queued=500), 50.0, 10),
            "[#####.....] 400 done  100 dead / 1000  50.0 tasks/s  ETA 0:10",
        )
        self.assertEqual(
            format_progress_line(BatchProgress(total=10, queued=10), 0.0, 4),
            "[....] 0 done  0 dead / 10  0.0 tasks/s  ETA --:--",
        )
        self.assertEqual(
            format_progress_line(BatchProgress(total=3, done=1, dead=1, cancelled=1), 2.5, 6),
            "[######] 1 done  1 dead  1 cancelled / 3  2.5 tasks/s  ETA 0:00",
        )
        self.assertEqual(
            format_progress_line(BatchProgress(), 0.0, 3),
            "[...] 0 done  0 dead / 0  0.0 tasks/s  ETA --:--",
        )


class ProgressBarTest(ClusterTestCase):
    def test_bar_is_drawn_only_when_stderr_is_a_terminal(self) -> None:
        endpoint = self.start_broker()
        self.start_worker(endpoint, "w", concurrency=2)
        urls = self.write("urls.txt", "http://127.0.0.1/a\nhttp://127.0.0.1/b\nhttp://127.0.0.1/c\n")
        command = python_tq("submit", "--broker", endpoint, "--wait", urls)
        plain = self.run_tool(command)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertNotIn("tasks/s", plain.stderr)
        self.assertEqual(len(plain.stdout.splitlines()), 3)
        # Under a pseudo-terminal (script(1)) the bar is drawn in place.
        tty = self.run_tool(["/usr/bin/script", "-qfec", shlex.join(command), "/dev/null"])
        self.assertEqual(tty.returncode, 0, tty.stdout)
        self.assertIn("tasks/s", tty.stdout)
        self.assertIn("3 done", tty.stdout)
        self.assertIn("\r", tty.stdout)


if __name__ == "__main__":
    unittest.main()
