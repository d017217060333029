"""Celery 5 on RabbitMQ, results in Redis: the throughput, latency and
recovery workloads of tq-bench. Run with Debian's /usr/bin/python3.

This file is both the benchmark (`celery_bench.py SCENARIO ...`, prints one
JSON object) and the Celery app its workers load (`celery -A celery_bench`).
The workers read the broker, backend and durability from the environment the
benchmark sets for them.
"""

import argparse
import os
import signal
import subprocess
import sys
import time

from celery import Celery
from celery.result import ResultSet
from celery.signals import worker_ready
from kombu import Queue

import common

HERE = os.path.dirname(os.path.abspath(__file__))
QUEUE = "tqbench"
WORKER_LIFETIME = 3600  # seconds

app = Celery("tqbench",
             broker=os.environ.get("TQBENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672//"),
             backend=os.environ.get("TQBENCH_REDIS", "redis://127.0.0.1:6379/0"))
app.conf.update(
    # The settings: ack after the task ran, one message in flight per
    # worker slot, durable queue, persistent messages.
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_default_delivery_mode="persistent",
    task_queues=[Queue(QUEUE, durable=True)],
    task_default_queue=QUEUE,
    # Publisher confirms make apply_async return only once RabbitMQ has the
    # message on disk (it fsyncs persistent messages of durable queues before
    # confirming), as tq's submit returns once its commit is fsynced.
    broker_transport_options={"confirm_publish": os.environ.get("TQBENCH_CONFIRM") == "1"},
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
)


@app.task(name="tqbench.noop")
def noop(task_url):
    return "ok"


@app.task(name="tqbench.slow", bind=True)
def slow(self, task_url):
    log = common.StartLog(os.environ["TQBENCH_LOG"])
    log.write("start", self.request.hostname, task_url)
    time.sleep(common.RECOVERY_TASK_SECONDS)
    log.write("done", self.request.hostname, task_url)
    return "ok"


@worker_ready.connect
def _announce_ready(sender=None, **kwargs):
    # The harness waits for this file before it submits.
    open(os.path.join(os.environ["TQBENCH_READY_DIR"], sender.hostname), "w").close()


class Workers:
    """Celery worker processes started for one scenario, stopped after it."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.ready_dir = os.path.join(tmp, "ready")
        os.makedirs(self.ready_dir, exist_ok=True)
        self.procs = {}

    def start(self, name, concurrency):
        hostname = "%s@tqbench" % name
        env = dict(os.environ, TQBENCH_READY_DIR=self.ready_dir,
                   PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
        # `timeout` bounds a worker's life should this harness die unstopped.
        cmd = ["timeout", "-s", "TERM", "-k", "10", str(WORKER_LIFETIME),
               "/usr/bin/python3", "-m", "celery", "-A", "celery_bench", "worker",
               # Celery's default pool. (The solo and threads pools of Debian's
               # Celery 5.2.6 / kombu 5.2.4 left a delivered message unprocessed
               # for up to ~10 s at a time under a full queue.)
               "--pool", "prefork", "--concurrency", str(concurrency), "-n", hostname,
               "-Q", QUEUE, "--loglevel", "WARNING",
               # No worker-to-worker chatter: it is not part of the workload.
               "--without-gossip", "--without-mingle", "--without-heartbeat"]
        log = open(os.path.join(self.tmp, name + ".log"), "ab")
        # Its own process group: the worker is its main process plus pool
        # children, and "the worker dies" means all of them.
        self.procs[hostname] = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)
        return hostname

    def wait_ready(self, timeout=60):
        def ready():
            for h, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError("celery worker %s exited with %s" % (h, p.returncode))
            return all(os.path.exists(os.path.join(self.ready_dir, h)) for h in self.procs)
        common.wait_until(ready, timeout, interval=0.02, what="celery workers")

    def kill(self, hostname):
        """SIGKILL the worker's main process and its pool children at once."""
        p = self.procs[hostname]
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)

    def stop(self):
        for p in self.procs.values():
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.procs.values():
            _signal_group(p, signal.SIGKILL)  # stragglers, pool children included
            p.wait(timeout=5)


def _signal_group(p, sig):
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass


def throughput(args):
    workers = Workers(args.tmp)
    try:
        for i in range(args.workers):
            workers.start("bench-%d" % i, args.slots)
        workers.wait_ready()
        urls = [common.url(i) for i in range(args.tasks)]
        broker0, store0 = common.cpu_seconds(args.broker_pid), common.cpu_seconds(args.store_pid)
        start = time.monotonic()
        with app.producer_or_acquire() as producer:
            results = [noop.apply_async((u,), producer=producer) for u in urls]
        submitted = time.monotonic()
        values = ResultSet(results).join_native(timeout=args.timeout)
        end = time.monotonic()
        broker1, store1 = common.cpu_seconds(args.broker_pid), common.cpu_seconds(args.store_pid)
    finally:
        workers.stop()
    collected = sum(1 for v in values if v == "ok")
    seconds = end - start
    return {
        "scenario": "throughput", "tasks": args.tasks, "results_collected": collected,
        "workers": args.workers, "slots_per_worker": args.slots,
        "seconds": seconds, "submit_seconds": submitted - start,
        "tasks_per_second": collected / seconds,
        "broker_cpu_us_per_task": (broker1 - broker0) * 1e6 / max(collected, 1),
        "result_store_cpu_us_per_task": (store1 - store0) * 1e6 / max(collected, 1),
    }


def latency(args):
    workers = Workers(args.tmp)
    try:
        workers.start("bench-0", 1)
        workers.wait_ready()
        ms = []
        for i in range(common.LATENCY_WARMUP + args.trips):
            start = time.monotonic()
            noop.apply_async((common.url(i),)).get(timeout=10)
            if i >= common.LATENCY_WARMUP:
                ms.append((time.monotonic() - start) * 1000.0)
    finally:
        workers.stop()
    out = {"scenario": "latency", "trips": args.trips}
    out.update(common.latency_summary(ms))
    return out


def recovery(args):
    """tq-bench's recovery: a 1-slot victim and a 2-slot other worker, two
    0.2 s tasks; SIGKILL the victim while it runs one; time until the other
    starts that task again. A round where the other worker got both tasks
    is discarded and repeated (bounded)."""
    for attempt in range(5):
        tmp = os.path.join(args.tmp, "round-%d" % attempt)
        os.makedirs(tmp)
        os.environ["TQBENCH_LOG"] = os.path.join(tmp, "starts.log")
        log = common.StartLog(os.environ["TQBENCH_LOG"])
        workers = Workers(tmp)
        try:
            victim = workers.start("victim", 1)
            workers.start("other", 2)
            workers.wait_ready()
            urls = [common.url(attempt * 2 + i) for i in range(2)]
            results = [slow.apply_async((u,)) for u in urls]
            def both_started():
                starts = [e for e in log.read() if e[1] == "start"]
                return starts if len(starts) >= 2 else None
            starts = common.wait_until(both_started, 20, what="both tasks to start")
            if not any(w == victim for _, _, w, _ in starts):
                ResultSet(results).join_native(timeout=30)
                continue
            killed_at = time.time()
            workers.kill(victim)
            values = ResultSet(results).join_native(timeout=60)
        finally:
            workers.stop()
        _, rerun_ms, done_once = common.recovery_figures(log, victim, killed_at, urls)
        return {
            "scenario": "recovery", "kill": "SIGKILL (the worker's main process and pool child)",
            "rerun_after_ms": rerun_ms, "results": sum(1 for v in values if v == "ok"),
            "every_result_once": done_once and values == ["ok", "ok"],
            "rounds_discarded": attempt,
        }
    raise RuntimeError("the victim never got a task in 5 rounds")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", choices=["throughput", "latency", "recovery"])
    p.add_argument("--tmp", required=True, help="scratch directory (logs, markers)")
    p.add_argument("--broker-pid", type=int, default=0, help="RabbitMQ's beam.smp, for CPU")
    p.add_argument("--store-pid", type=int, default=0, help="redis-server, for CPU")
    p.add_argument("-n", "--tasks", type=int, default=20000)
    p.add_argument("-w", "--workers", type=int, default=2)
    p.add_argument("-c", "--slots", type=int, default=1)
    p.add_argument("--trips", type=int, default=2000)
    p.add_argument("--timeout", type=float, default=900, help="seconds to wait for results")
    args = p.parse_args()
    os.makedirs(args.tmp, exist_ok=True)
    # On TERM/INT unwind through the `finally`s that stop the workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    common.emit({"throughput": throughput, "latency": latency, "recovery": recovery}[args.scenario](args))


if __name__ == "__main__":
    main()
