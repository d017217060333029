"""Real tq binaries on loopback for the Python client's tests, as
tests/support/cluster.cc: a broker on an ephemeral port in a temp dir,
workers attached to it, each process in its own group and killed by PID."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from typing import Callable, List, Optional, Sequence

BIN_DIR = os.environ.get("TQ_BIN_DIR", "")
SOURCE_DIR = os.environ.get("TQ_SOURCE_DIR", "")
# The interpreter running the tests also runs `python3 -m tq`.
PYTHON = sys.executable


def binary(name: str) -> str:
    return os.path.join(BIN_DIR, name)


def wait_until(
    condition: Callable[[], bool], timeout: float, step: float = 0.01
) -> bool:
    """Polls `condition` every `step` seconds until it holds (True) or
    `timeout` passes (False). Bounded in time and so in count."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)  # poll interval, not a fixed wait


def read(path: str) -> str:
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


class Process:
    """A child in its own process group, output to files; killed with its
    group by PID."""

    def __init__(
        self,
        argv: Sequence[str],
        stdout_path: Optional[str] = None,
        stderr_path: Optional[str] = None,
        env: Optional[dict] = None,
    ) -> None:
        self.argv = list(argv)
        out = open(stdout_path or os.devnull, "ab")
        err = open(stderr_path or os.devnull, "ab")
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
            )
        finally:
            out.close()
            err.close()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float) -> Optional[int]:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        # The group: children of the child (an --exec handler) too.
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait(10)


class ClusterTestCase(unittest.TestCase):
    """Each test gets a temp dir; start_broker / start_worker processes are
    killed when it ends, and their logs are shown if it failed."""

    def setUp(self) -> None:
        if not BIN_DIR or not os.path.exists(binary("tq-broker")):
            self.fail("TQ_BIN_DIR must name the directory of tq-broker")
        self._tmp = tempfile.TemporaryDirectory(prefix="tq-python-")
        self.dir = self._tmp.name
        self._processes: List[Process] = []
        self.addCleanup(self._tmp.cleanup)
        self.addCleanup(self._stop_all)

    def _stop_all(self) -> None:
        for p in reversed(self._processes):
            p.kill()

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def logs(self) -> str:
        text = []
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".log"):
                text.append(f"--- {name}\n{read(self.path(name))[-4000:]}")
        return "\n".join(text)

    def start_broker(self, *extra: str) -> str:
        """Starts tq-broker on DIR/tq.db and an ephemeral loopback port;
        returns its endpoint once it listens."""
        ready = self.path("broker.endpoint")
        p = Process(
            [
                binary("tq-broker"),
                "--db",
                self.path("tq.db"),
                "--listen",
                "tcp://127.0.0.1:0",
                "--ready-file",
                ready,
                "--log-level",
                "debug",
                *extra,
            ],
            stderr_path=self.path("broker.log"),
        )
        self._processes.append(p)
        up = wait_until(lambda: read(ready).strip() != "" or not p.running(), 20)
        endpoint = read(ready).strip()
        if not up or not endpoint:
            self.fail("tq-broker did not start:\n" + self.logs())
        return endpoint

    def start_worker(
        self,
        endpoint: str,
        worker_id: str,
        handler: Sequence[str] = ("--noop",),
        country: str = "none",
        concurrency: int = 1,
        extra: Sequence[str] = (),
    ) -> Process:
        p = Process(
            [
                binary("tq-worker"),
                "--broker",
                endpoint,
                "--id",
                worker_id,
                "--country",
                country,
                "--concurrency",
                str(concurrency),
                "--log-level",
                "debug",
                *extra,
                *handler,
            ],
            stderr_path=self.path(f"worker-{worker_id}.log"),
        )
        self._processes.append(p)
        return p

    def run_tool(
        self, argv: Sequence[str], env_extra: Optional[dict] = None, timeout: float = 60
    ) -> "subprocess.CompletedProcess[str]":
        """Runs a command to its end (bounded), capturing its output as
        text with line ends as written ("\r" kept)."""
        env = dict(os.environ)
        env.update(env_extra or {})
        try:
            done = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=env,
                timeout=timeout,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as e:
            self.fail(f"{shlex.join(argv)} still running after {timeout} s: {e}")
        done.stdout = done.stdout.decode("utf-8", "replace")
        done.stderr = done.stderr.decode("utf-8", "replace")
        return done

    def write(self, name: str, text: str) -> str:
        path = self.path(name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path
