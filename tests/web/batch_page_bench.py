#!/usr/bin/env python3
"""Times the web console's pages on a database holding N tasks (default
1,000,000) in one batch: the batch page (first page, deep page, filtered by
state, queue and URL search), the batch list, the overview and the API.

usage: batch_page_bench.py BUILD_DIR [N]

Not a test (no pass/fail): it prints median / p95 / max per page over 20
requests, for the README. The database is filled with SQL in the shape the
broker writes (70% done with a 200-byte result, 10% dead, 20% queued, over
two queues, finished over the last two hours), then served by tq-broker."""
import os, signal, sqlite3, statistics, subprocess, sys, tempfile, time
import urllib.request

build = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
tmp = tempfile.mkdtemp(prefix="tq-bench-web-")
db = os.path.join(tmp, "tq.db")
broker = os.path.join(build, "bin", "tq-broker")


def wait_file(path, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and open(path).read().strip():
            return open(path).read().strip()
        time.sleep(0.05)
    raise SystemExit("timed out waiting for " + path)


def start(extra, ready):
    log = open(os.path.join(tmp, "broker.log"), "a")
    return subprocess.Popen([broker, "--db", db, "--listen", "tcp://127.0.0.1:0",
                             "--ready-file", ready, "--geoip-db", "none"] + extra,
                            stdout=log, stderr=log, start_new_session=True)


# The schema, made by the broker itself.
p = start(["--http", "off"], os.path.join(tmp, "ready0"))
wait_file(os.path.join(tmp, "ready0"))
p.send_signal(signal.SIGTERM)
p.wait(60)

t0 = time.time()
con = sqlite3.connect(db)
con.execute("PRAGMA journal_mode=WAL")
now_ms = int(time.time() * 1000)
output = b'{"title":"' + b"x" * 180 + b'"}'


def rows():
    seq = 0
    for i in range(n):
        kind = i % 10
        queue = "IT" if i % 2 else "generic"
        url = f"https://site{i}.example/page"
        if kind < 8:
            seq += 1
            state = 3 if kind < 7 else 4
            fin = now_ms - (i * 7919 % 7_200_000)
            yield ("big", i, queue, url, state, 1, "w1", now_ms - 8_000_000,
                   fin - 400, fin, seq, 1 if state == 3 else 0,
                   output if state == 3 else None,
                   None if state == 3 else "exit status 1", 400)
        else:
            yield ("big", i, queue, url, 0, 0, None, now_ms - 8_000_000,
                   None, None, None, None, None, None, None)


con.executemany(
    "INSERT INTO tasks(batch_id, item_index, queue, url, priority, max_attempts,"
    " time_limit_ms, state, attempts, worker, submitted_ms, started_ms,"
    " finished_ms, finish_seq, ok, output, error, duration_ms)"
    " VALUES(?, ?, ?, ?, 0, 3, 300000, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
con.execute("INSERT INTO batches(batch_id, created_ms) VALUES('big', ?)",
            (now_ms - 8_000_000,))
con.commit()
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
con.close()
print(f"filled {n:,} tasks in {time.time() - t0:.1f} s "
      f"({os.path.getsize(db) / 1e6:.0f} MB)")

t0 = time.time()
p = start(["--http", "127.0.0.1:0", "--http-ready-file",
           os.path.join(tmp, "url")], os.path.join(tmp, "ready1"))
try:
    wait_file(os.path.join(tmp, "ready1"))
    base = wait_file(os.path.join(tmp, "url"))
    print(f"broker up in {time.time() - t0:.1f} s at {base}")

    def timed(path, runs=20):
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            with urllib.request.urlopen(base + path, timeout=60) as r:
                body = r.read()
                assert r.status == 200, (path, r.status)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        print(f"{path:<58} median {statistics.median(times):7.1f} ms  "
              f"p95 {times[int(len(times) * 0.95) - 1]:7.1f} ms  "
              f"max {times[-1]:7.1f} ms  ({len(body):,} bytes)")

    print(f"{'page':<58} over 20 requests each")
    timed("/batches/big")
    timed(f"/batches/big?after={n - 100}")
    timed(f"/batches/big?after={n // 2}&state=dead")
    timed("/batches/big?state=queued&queue=IT")
    timed(f"/batches/big?q=site{n - 7}.example")
    timed(f"/batches/big?q=site{n // 2}")
    timed("/api/v1/batches/big/tasks?limit=50&after=500000")
    timed("/api/v1/batches/big")
    timed("/batches", runs=5)
    timed("/", runs=5)

    # tq-ctl's views: answered by the broker's loop from memory (or one
    # point read), so each is a process start plus a round trip.
    endpoint = open(os.path.join(tmp, "ready1")).read().strip()
    ctl = os.path.join(build, "bin", "tq-ctl")

    def timed_ctl(args, runs=20):
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run([ctl, "--broker", endpoint] + args, check=True,
                           stdout=subprocess.DEVNULL)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        print(f"{'tq-ctl ' + ' '.join(args):<58} median "
              f"{statistics.median(times):7.1f} ms  p95 "
              f"{times[int(len(times) * 0.95) - 1]:7.1f} ms  max "
              f"{times[-1]:7.1f} ms")

    timed_ctl(["batches"])
    timed_ctl(["status"])
    timed_ctl(["task", str(n // 2)])
    timed_ctl(["active"])
    timed_ctl(["workers"])
finally:
    p.send_signal(signal.SIGTERM)
    p.wait(60)
    subprocess.run(["rm", "-rf", tmp])
