"""beanstalkd: the throughput, latency and recovery workloads of tq-bench,
over a small client of beanstalkd's text protocol written here (plain
sockets, standard library only).

Jobs go to tube `generic` with the task's URL; a worker reserves one, does
the work, puts a result job on tube `results` and deletes the task, so the
submitter gets every result back as tq's does.

`beanstalk_bench.py SCENARIO ...` prints one JSON object;
`beanstalk_bench.py worker ...` is a worker process the scenarios start.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import common

HERE = os.path.abspath(__file__)
TASKS, RESULTS = "generic", "results"
# Long enough that only a closed connection gives a reserved job back.
TTR = 600
PIPELINE = 500  # puts written before their replies are read


class ProtocolError(RuntimeError):
    pass


class Beanstalk:
    """One connection. Commands can be sent ahead of reading their replies
    (the protocol answers in order), which the bulk paths use."""

    def __init__(self, port, timeout=120):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb")

    def close(self):
        self.rfile.close()
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def reply(self, *expected):
        line = self.rfile.readline()
        if not line.endswith(b"\r\n"):
            raise ProtocolError("connection closed")
        words = line[:-2].decode().split()
        if words[0] not in expected:
            raise ProtocolError("expected %s, got %r" % ("/".join(expected), line))
        return words

    @staticmethod
    def put_cmd(body, ttr=TTR):
        return b"put 0 0 %d %d\r\n%s\r\n" % (ttr, len(body), body)

    def put(self, body):
        self.send(self.put_cmd(body))
        return int(self.reply("INSERTED")[1])

    def use(self, tube):
        self.send(b"use %s\r\n" % tube.encode())
        self.reply("USING")

    def watch_only(self, tube):
        self.send(b"watch %s\r\nignore default\r\n" % tube.encode())
        self.reply("WATCHING")
        self.reply("WATCHING")

    def read_reserved(self):
        """Reads a reply to reserve(-with-timeout): (id, body) or None."""
        words = self.reply("RESERVED", "TIMED_OUT")
        if words[0] == "TIMED_OUT":
            return None
        body = self.rfile.read(int(words[2]) + 2)
        return int(words[1]), body[:-2]

    def reserve(self, timeout=None):
        self.send(b"reserve\r\n" if timeout is None
                  else b"reserve-with-timeout %d\r\n" % timeout)
        return self.read_reserved()

    def delete(self, job_id):
        self.send(b"delete %d\r\n" % job_id)
        self.reply("DELETED")


# --- worker process --------------------------------------------------------

def worker_main(args):
    """`slots` threads, one connection each (a slot = one reserved job).
    Lives until TERM, until its parent is gone, or `--lifetime` seconds."""
    log = common.StartLog(args.log) if args.log else None
    deadline = time.monotonic() + args.lifetime

    def slot():
        c = Beanstalk(args.port, timeout=None)
        c.watch_only(TASKS)
        c.use(RESULTS)
        ready.release()
        job = None
        while time.monotonic() < deadline:
            if job is None:
                job = c.reserve(timeout=1)
                continue
            job_id, body = job
            if log:
                log.write("start", args.name, body.decode())
            if args.work:
                time.sleep(args.work)
            if log:
                log.write("done", args.name, body.decode())
            # Result, delete and the next reserve in one write; replies in order.
            c.send(c.put_cmd(body + b" " + args.name.encode()) +
                   b"delete %d\r\nreserve-with-timeout 1\r\n" % job_id)
            c.reply("INSERTED")
            c.reply("DELETED")
            job = c.read_reserved()

    parent = os.getppid()
    ready = threading.Semaphore(0)
    for _ in range(args.slots):
        threading.Thread(target=slot, daemon=True).start()
    for _ in range(args.slots):
        if not ready.acquire(timeout=10):
            raise RuntimeError("a slot did not connect")
    open(args.ready_file, "w").close()
    while time.monotonic() < deadline and os.getppid() == parent:
        if signal.sigtimedwait({signal.SIGTERM}, 1):
            break


class Workers:
    def __init__(self, tmp, port):
        self.tmp, self.port, self.procs = tmp, port, {}

    def start(self, name, slots, work=0.0, log=None):
        ready = os.path.join(self.tmp, name + ".ready")
        cmd = [sys.executable, HERE, "worker", "--port", str(self.port), "--name", name,
               "--slots", str(slots), "--work", str(work), "--ready-file", ready]
        if log:
            cmd += ["--log", log]
        out = open(os.path.join(self.tmp, name + ".log"), "ab")
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        self.procs[name] = p

        def up():
            if p.poll() is not None:
                raise RuntimeError("worker %s exited with %s" % (name, p.returncode))
            return os.path.exists(ready)
        common.wait_until(up, 20, interval=0.005, what="worker " + name)

    def kill(self, name):
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(timeout=10)

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


def job_body(i):
    return common.url(i).encode()


# --- scenarios -------------------------------------------------------------

def throughput(args):
    workers = Workers(args.tmp, args.port)
    submitter, collector = Beanstalk(args.port), Beanstalk(args.port)
    try:
        for i in range(args.workers):
            workers.start("bench-%d" % i, args.slots)
        submitter.use(TASKS)
        collector.watch_only(RESULTS)
        bodies = [job_body(i) for i in range(args.tasks)]
        errors = []

        def submit():
            try:
                for at in range(0, len(bodies), PIPELINE):
                    chunk = bodies[at:at + PIPELINE]
                    submitter.send(b"".join(Beanstalk.put_cmd(b) for b in chunk))
                    for _ in chunk:
                        submitter.reply("INSERTED")
            except Exception as e:  # reported by the main thread
                errors.append(e)

        if collector.reserve(timeout=0) is not None:
            raise RuntimeError("stale results: each run needs a fresh beanstalkd")
        seen = {}
        broker0 = common.cpu_seconds(args.broker_pid)
        start = time.monotonic()
        t = threading.Thread(target=submit)
        t.start()
        deadline = start + args.timeout
        while len(seen) < args.tasks and time.monotonic() < deadline and not errors:
            job = collector.reserve(timeout=5)
            if job is None:
                continue
            # Results are not deleted: tq keeps its results too. They stay
            # reserved on this connection; the server is discarded after.
            task_url = job[1].split(b" ", 1)[0]
            seen[task_url] = seen.get(task_url, 0) + 1
        end = time.monotonic()
        broker1 = common.cpu_seconds(args.broker_pid)
        t.join(timeout=60)
        if errors:
            raise errors[0]
    finally:
        workers.stop()
        submitter.close()
        collector.close()
    collected = len(seen)
    seconds = end - start
    return {
        "scenario": "throughput", "tasks": args.tasks, "results_collected": collected,
        "duplicates": sum(n - 1 for n in seen.values()),
        "workers": args.workers, "slots_per_worker": args.slots, "seconds": seconds,
        "tasks_per_second": collected / seconds,
        "broker_cpu_us_per_task": (broker1 - broker0) * 1e6 / max(collected, 1),
    }


def latency(args):
    workers = Workers(args.tmp, args.port)
    submitter, collector = Beanstalk(args.port), Beanstalk(args.port)
    try:
        workers.start("bench-0", 1)
        submitter.use(TASKS)
        collector.watch_only(RESULTS)
        ms = []
        for i in range(common.LATENCY_WARMUP + args.trips):
            start = time.monotonic()
            submitter.put(job_body(i))
            job = collector.reserve(timeout=10)
            elapsed = (time.monotonic() - start) * 1000.0
            if job is None:
                raise RuntimeError("a round trip did not finish in 10 s")
            collector.delete(job[0])  # bookkeeping, after the clock
            if i >= common.LATENCY_WARMUP:
                ms.append(elapsed)
    finally:
        workers.stop()
        submitter.close()
        collector.close()
    out = {"scenario": "latency", "trips": args.trips}
    out.update(common.latency_summary(ms))
    return out


def recovery(args):
    """tq-bench's recovery: a 1-slot victim and a 2-slot other worker, two
    0.2 s jobs; SIGKILL the victim while it runs one (its connection closes
    and beanstalkd gives the job back); time until the other starts it again.
    A round where the victim got no job is discarded and repeated (bounded)."""
    for attempt in range(5):
        tmp = os.path.join(args.tmp, "round-%d" % attempt)
        os.makedirs(tmp)
        log = common.StartLog(os.path.join(tmp, "starts.log"))
        workers = Workers(tmp, args.port)
        submitter, collector = Beanstalk(args.port), Beanstalk(args.port)
        try:
            workers.start("victim", 1, common.RECOVERY_TASK_SECONDS, log.path)
            workers.start("other", 2, common.RECOVERY_TASK_SECONDS, log.path)
            submitter.use(TASKS)
            collector.watch_only(RESULTS)
            urls = [common.url(attempt * 2 + i) for i in range(2)]
            for u in urls:
                submitter.put(u.encode())

            def both_started():
                starts = [e for e in log.read() if e[1] == "start"]
                return starts if len(starts) >= 2 else None
            starts = common.wait_until(both_started, 20, what="both jobs to start")
            victim_ran = any(w == "victim" for _, _, w, _ in starts)
            killed_at = time.time()
            if victim_ran:
                workers.kill("victim")
            seen = {}
            deadline = time.monotonic() + 60
            while sum(seen.values()) < 2 and time.monotonic() < deadline:
                job = collector.reserve(timeout=5)
                if job:
                    collector.delete(job[0])
                    u = job[1].split(b" ", 1)[0].decode()
                    seen[u] = seen.get(u, 0) + 1
            # Nothing more may come back: a duplicate would be here by now.
            extra = collector.reserve(timeout=1)
        finally:
            workers.stop()
            submitter.close()
            collector.close()
        if not victim_ran:
            continue
        _, rerun_ms, done_once = common.recovery_figures(log, "victim", killed_at, urls)
        return {
            "scenario": "recovery", "kill": "SIGKILL (the worker process)",
            "rerun_after_ms": rerun_ms, "results": sum(seen.values()),
            "every_result_once": done_once and extra is None and all(seen.get(u) == 1 for u in urls),
            "rounds_discarded": attempt,
        }
    raise RuntimeError("the victim never got a job in 5 rounds")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", choices=["throughput", "latency", "recovery", "worker"])
    p.add_argument("--port", type=int, required=True, help="beanstalkd's port on 127.0.0.1")
    p.add_argument("--tmp", help="scratch directory (logs, markers)")
    p.add_argument("--broker-pid", type=int, default=0, help="beanstalkd's PID, for CPU")
    p.add_argument("-n", "--tasks", type=int, default=20000)
    p.add_argument("-w", "--workers", type=int, default=2)
    p.add_argument("-c", "--slots", type=int, default=1)
    p.add_argument("--trips", type=int, default=2000)
    p.add_argument("--timeout", type=float, default=900, help="seconds to wait for results")
    # worker only
    p.add_argument("--name")
    p.add_argument("--work", type=float, default=0.0, help="seconds each job takes")
    p.add_argument("--log", help="StartLog file for job starts and ends")
    p.add_argument("--ready-file")
    p.add_argument("--lifetime", type=float, default=3600, help="seconds before a worker exits anyway")
    args = p.parse_args()
    if args.scenario == "worker":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        return worker_main(args)
    os.makedirs(args.tmp, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    common.emit({"throughput": throughput, "latency": latency, "recovery": recovery}[args.scenario](args))


if __name__ == "__main__":
    main()
