"""Helpers shared by the compare harness and the peer benchmarks.

Standard library only: this module is imported both by `run` and by the
peer benchmarks, which Debian's /usr/bin/python3 runs.
"""

import json
import os
import socket
import sys
import time

# The same 61-byte payload tq-bench submits (bench/bench_main.cc, Url()).
URL_FORMAT = "http://bench.example.com/analysis/target/page-%014d"

# tq-bench's warm-up before timed latency trips.
LATENCY_WARMUP = 200

# Recovery tasks "work" this long, as tq-bench's `--exec "sleep 0.2"`.
RECOVERY_TASK_SECONDS = 0.2


def url(i):
    return URL_FORMAT % i


def percentile(values, p):
    """Same rule as tq-bench: the sorted value at floor(p% * n)."""
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


def latency_summary(ms):
    return {
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "p999_ms": percentile(ms, 99.9),
        "max_ms": max(ms) if ms else 0.0,
    }


def cpu_seconds(pid):
    """utime + stime of one process from /proc (0 if it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            line = f.read()
    except OSError:
        return 0.0
    # Fields after the ")" of the command name; utime and stime are 14 and 15.
    fields = line[line.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median_run(runs, key):
    """The run whose `key` is the median, as tq-bench picks it."""
    ordered = sorted(runs, key=lambda r: r[key])
    return ordered[len(ordered) // 2]


def free_port():
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.001, what="condition"):
    """Polls `predicate` until true; raises after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


class StartLog:
    """Append-only file of task starts and ends, written by workers.

    One line per event: time.time(), kind (start/done), worker, url. Lines are
    written with a single O_APPEND write, so concurrent writers don't mix.
    """

    def __init__(self, path):
        self.path = path

    def write(self, kind, worker, task_url):
        line = "%.6f %s %s %s\n" % (time.time(), kind, worker, task_url)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def read(self):
        try:
            with open(self.path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        events = []
        for line in lines:
            t, kind, worker, task_url = line.split(" ", 3)
            events.append((float(t), kind, worker, task_url))
        return events


def recovery_figures(log, victim, killed_at, urls):
    """From a StartLog after a recovery round: the victim's task, the time from
    the kill to its re-run's start elsewhere, and whether each task finished
    exactly once."""
    events = log.read()
    victim_urls = [u for t, k, w, u in events if k == "start" and w == victim]
    victim_url = victim_urls[-1]
    reruns = [t for t, k, w, u in events
              if k == "start" and u == victim_url and w != victim and t >= killed_at]
    done = {}
    for t, k, w, u in events:
        if k == "done":
            done[u] = done.get(u, 0) + 1
    once = all(done.get(u, 0) == 1 for u in urls)
    rerun_ms = (reruns[0] - killed_at) * 1000.0 if reruns else -1.0
    return victim_url, rerun_ms, once


def emit(obj):
    json.dump(obj, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
