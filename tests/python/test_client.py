"""tq.Client against a real tq-broker and tq-workers on loopback."""

from __future__ import annotations

import threading
import unittest

import zmq

import tq
from tq import tq_pb2
from cluster import ClusterTestCase, wait_until

# Echoes the URL after a short pause, so results arrive over several pages.
SLOW_ECHO = ("--exec", "sh -c 'sleep 0.2; echo \"$0\"' {url}")


class ResultsTest(ClusterTestCase):
    def test_five_urls_on_two_workers_come_back_once_each(self) -> None:
        endpoint = self.start_broker()
        self.start_worker(endpoint, "w1", SLOW_ECHO)
        self.start_worker(endpoint, "w2", SLOW_ECHO)
        urls = [f"http://127.0.0.1/page{i}" for i in range(5)]
        with tq.Client(endpoint) as client:
            receipt = client.submit(urls)
            self.assertEqual((receipt.total, receipt.accepted, receipt.duplicates), (5, 5, 0))
            self.assertEqual(receipt.errors, [])
            pages = []
            stream = client.results(receipt.batch_id, timeout=60, on_progress=pages.append)
            results = list(stream)
            progress = client.progress(receipt.batch_id)
        self.assertEqual(len(results), 5, self.logs())
        self.assertEqual(len({r.task_id for r in results}), 5)
        self.assertEqual(sorted(r.url for r in results), urls)
        for r in results:
            self.assertEqual(r.batch_id, receipt.batch_id)
            self.assertEqual(r.state, "done")
            self.assertTrue(r.ok)
            self.assertEqual(r.attempts, 1)
            self.assertIn(r.worker, {"w1", "w2"})
            self.assertEqual(r.output, (r.url + "\n").encode())
            self.assertEqual(r.text, r.url + "\n")
            self.assertEqual(r.queue, "generic")
            self.assertGreater(r.finished_ms, 0)
        self.assertEqual(
            [r.finish_seq for r in results], sorted(r.finish_seq for r in results)
        )
        # The counts as the stream last saw them, and as asked afterwards.
        self.assertTrue(stream.progress.complete)
        self.assertEqual(stream.progress.done, 5)
        self.assertEqual(stream.progress, pages[-1])
        self.assertGreaterEqual(len(pages), 2)  # three rounds of 0.2 s
        self.assertEqual(progress, tq.BatchProgress(total=5, done=5))
        self.assertEqual(progress.finished, 5)

    def test_a_large_batch_goes_in_chunks_and_comes_back_in_pages(self) -> None:
        # Over MAX_ITEMS_PER_CHUNK and RESULT_PAGE_LIMIT: three Submit chunks
        # pipelined, and full result pages that do not end the stream.
        endpoint = self.start_broker()
        self.start_worker(endpoint, "w1", concurrency=8)
        self.start_worker(endpoint, "w2", concurrency=8)
        urls = [f"http://127.0.0.1/{i}" for i in range(2500)]
        with tq.Client(endpoint) as client:
            receipt = client.submit(urls)
            self.assertEqual((receipt.accepted, receipt.duplicates), (2500, 0))
            # Let them all finish first, so the pages come back full.
            self.assertTrue(
                wait_until(lambda: client.progress(receipt.batch_id).complete, 120, 0.05),
                self.logs(),
            )
            results = list(client.results(receipt.batch_id, timeout=60))
        self.assertEqual(len(results), 2500)
        self.assertEqual(len({r.task_id for r in results}), 2500)
        self.assertEqual({r.index for r in results}, set(range(2500)))

    def test_countries_and_options_reach_the_worker(self) -> None:
        endpoint = self.start_broker()
        echo_ua = ("--exec", "sh -c 'echo \"$0 $1\"' {url} {useragent}")
        self.start_worker(endpoint, "it", echo_ua, country="IT")
        self.start_worker(endpoint, "in", echo_ua, country="IN")
        urls = ["http://127.0.0.1/a", "http://127.0.0.1/b"]
        with tq.Client(endpoint) as client:
            receipt = client.submit(
                urls,
                ["IT", "IN"],
                options={"user_agent": "winxpie60"},
                batch_id="countries-1",
                max_attempts=1,
            )
            self.assertEqual((receipt.batch_id, receipt.total, receipt.accepted), ("countries-1", 4, 4))
            results = list(client.results("countries-1", timeout=60))
            # The same batch again: nothing new is queued.
            again = client.submit(urls, ["IT", "IN"], batch_id="countries-1")
        self.assertEqual((again.accepted, again.duplicates), (0, 4))
        self.assertEqual(len(results), 4, self.logs())
        seen = {(r.url, r.queue): r for r in results}
        self.assertEqual(set(seen), {(u, q) for u in urls for q in ("IT", "IN")})
        for (url, queue), r in seen.items():
            self.assertEqual(r.worker, queue.lower())
            self.assertEqual(r.text, f"{url} winxpie60\n")
            # Item i*n+j is url i on queue j.
            self.assertEqual(r.index, urls.index(url) * 2 + ["IT", "IN"].index(queue))

    def test_refused_urls_come_back_in_the_receipt(self) -> None:
        endpoint = self.start_broker()
        with tq.Client(endpoint) as client:
            receipt = client.submit(["http://127.0.0.1/ok", "ftp://127.0.0.1/no"], ["IT", "XX"])
            self.assertEqual(receipt.total, 4)
            self.assertEqual(receipt.accepted, 1)
            reasons = {(e.url_index, e.queue): e.reason for e in receipt.errors}
            self.assertEqual(set(reasons), {(0, "XX"), (1, "IT"), (1, "XX")})
            self.assertIn("scheme 'ftp' is not http or https", reasons[(1, "IT")])
            self.assertIn("ISO 3166-1", reasons[(0, "XX")])
            self.assertEqual(client.progress(receipt.batch_id).queued, 1)

    def test_queues_and_workers_are_listed(self) -> None:
        endpoint = self.start_broker()
        self.start_worker(endpoint, "w-it", country="IT", concurrency=3)
        with tq.Client(endpoint) as client:
            self.assertTrue(
                wait_until(lambda: any(w.worker_id == "w-it" for w in client.workers()), 20),
                self.logs(),
            )
            (worker,) = client.workers()
            self.assertEqual((worker.country, worker.concurrency), ("IT", 3))
            self.assertIn("IT", worker.queues)
            client.submit(["http://127.0.0.1/x"], ["IN"])
            listing = client.queues()
        queued = {q.name: q.counts.queued for q in listing.queues}
        self.assertEqual(queued.get("IN"), 1)
        self.assertTrue(listing.stats.store_ok)
        self.assertGreater(listing.stats.messages_in, 0)


class BatchControlTest(ClusterTestCase):
    def test_cancel_of_a_batch_nobody_serves(self) -> None:
        endpoint = self.start_broker()
        self.start_worker(endpoint, "generic-only")
        with tq.Client(endpoint) as client:
            receipt = client.submit([f"http://127.0.0.1/{i}" for i in range(3)], ["IT"])
            self.assertEqual(
                client.progress(receipt.batch_id), tq.BatchProgress(total=3, queued=3)
            )
            self.assertEqual(client.cancel(receipt.batch_id), 3)
            progress = client.progress(receipt.batch_id)
            results = list(client.results(receipt.batch_id, timeout=30))
            self.assertEqual(client.cancel(receipt.batch_id), 0)
        self.assertEqual(progress, tq.BatchProgress(total=3, cancelled=3))
        self.assertTrue(progress.complete)
        self.assertEqual([r.state for r in results], ["cancelled"] * 3)

    def test_retry_dead_runs_dead_tasks_again(self) -> None:
        endpoint = self.start_broker()
        flag = self.path("healed")
        # Fails until the flag file exists.
        handler = ("--exec", f"sh -c 'test -e {flag} || exit 4; echo healed' {{url}}")
        self.start_worker(endpoint, "w", handler, concurrency=2)
        with tq.Client(endpoint) as client:
            receipt = client.submit(["http://127.0.0.1/a", "http://127.0.0.1/b"], max_attempts=1)
            stream = client.results(receipt.batch_id, timeout=60)
            dead = list(stream)
            self.assertEqual([r.state for r in dead], ["dead", "dead"], self.logs())
            self.assertEqual(dead[0].exit_code, 4)
            self.assertFalse(dead[0].ok)
            self.assertEqual(stream.progress.dead, 2)

            open(flag, "w").close()
            self.assertEqual(client.retry_dead(receipt.batch_id), 2)
            # Resumed from the cursor: only the second runs come back.
            again = list(client.results(receipt.batch_id, timeout=60, after=stream.cursor))
            self.assertEqual(client.retry_dead(receipt.batch_id), 0)
            self.assertEqual(client.retry_dead(queue="generic"), 0)
        self.assertEqual(len(again), 2, self.logs())
        self.assertEqual({r.url for r in again}, {r.url for r in dead})
        for r in again:
            self.assertEqual((r.state, r.ok, r.text), ("done", True, "healed\n"))

    def test_wait_gives_up_at_the_deadline(self) -> None:
        endpoint = self.start_broker()
        with tq.Client(endpoint) as client:
            receipt = client.submit(["http://127.0.0.1/a"], ["IT"])
            stream = client.results(receipt.batch_id, timeout=0.3)
            with self.assertRaises(tq.WaitTimeoutError) as cm:
                list(stream)
            self.assertIsInstance(cm.exception, TimeoutError)
            self.assertIn("1 of 1 tasks unfinished", cm.exception.message)


class ErrorTest(ClusterTestCase):
    def test_broker_errors_carry_the_broker_code(self) -> None:
        endpoint = self.start_broker()
        with tq.Client(endpoint) as client:
            for call in (
                lambda: client.purge("Italy"),
                lambda: client.purge("it"),
            ):
                with self.assertRaises(tq.InvalidArgumentError) as cm:
                    call()
                self.assertEqual(cm.exception.code, tq.ErrorCode.INVALID_ARGUMENT)
                self.assertTrue(cm.exception.from_broker)
                self.assertIsInstance(cm.exception, tq.TqError)
            for call in (
                lambda: client.progress("no-such-batch"),
                lambda: client.cancel("no-such-batch"),
                lambda: client.fetch_results("no-such-batch"),
                lambda: list(client.results("no-such-batch", timeout=10)),
            ):
                with self.assertRaises(tq.NotFoundError) as cm:
                    call()
                self.assertEqual(cm.exception.code, tq.ErrorCode.NOT_FOUND)
                self.assertTrue(cm.exception.from_broker)
                self.assertIn("no-such-batch", cm.exception.message)
                self.assertIn("NOT_FOUND", str(cm.exception))
            # RetryDead of an unknown batch finds no dead tasks.
            self.assertEqual(client.retry_dead("no-such-batch"), 0)

    def test_requests_refused_before_sending(self) -> None:
        endpoint = self.start_broker()
        with tq.Client(endpoint) as client:
            for call in (
                lambda: client.submit(["http://127.0.0.1/"], ["it"]),
                lambda: client.submit(["http://127.0.0.1/"], ["IT", "IT"]),
                lambda: client.submit([]),
                lambda: client.submit(["http://127.0.0.1/"], batch_id="has space"),
                lambda: client.progress("x" * 65),
                lambda: client.retry_dead(),
                lambda: client.retry_dead(queue="nowhere"),
            ):
                with self.assertRaises(tq.InvalidArgumentError) as cm:
                    call()
                self.assertEqual(cm.exception.code, tq.ErrorCode.INVALID_ARGUMENT)
                self.assertFalse(cm.exception.from_broker)
            with self.assertRaisesRegex(tq.InvalidArgumentError, "upper case"):
                client.submit(["http://127.0.0.1/"], ["it"])
            # Nothing reached the broker.
            self.assertEqual(sum(q.counts.total for q in client.queues().queues), 0)

    def test_no_broker_is_no_reply_after_every_attempt(self) -> None:
        # Port 1 on loopback: nothing listens there.
        with tq.Client("tcp://127.0.0.1:1", request_timeout=0.2, attempts=2) as client:
            with self.assertRaises(tq.NoReplyError) as cm:
                client.progress("b1")
        e = cm.exception
        self.assertIsInstance(e, tq.UnavailableError)
        self.assertIsInstance(e, TimeoutError)
        self.assertFalse(e.from_broker)
        self.assertTrue(e.retryable)
        self.assertIn("after 2 attempts of 200 ms", e.message)

    def test_bad_endpoint_is_invalid_argument(self) -> None:
        with self.assertRaises(tq.InvalidArgumentError):
            tq.Client("nonsense://here")
        with self.assertRaises(tq.InvalidArgumentError):
            tq.Client("tcp://127.0.0.1:1", attempts=0)


class FakeBroker:
    """A ROUTER on loopback answering BatchStatus requests through `answer`
    (frame in, frames out), in a thread; optionally a CURVE server."""

    def __init__(self, answer, secret_key: bytes = b"") -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if secret_key:
            self.socket.setsockopt(zmq.CURVE_SERVER, 1)
            self.socket.setsockopt(zmq.CURVE_SECRETKEY, secret_key)
        port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.received = []
        self._answer = answer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self.socket.poll(20):
                continue
            peer, frame = self.socket.recv_multipart()
            request = tq_pb2.Envelope.FromString(frame)
            self.received.append(request)
            for reply in self._answer(request, len(self.received)):
                self.socket.send_multipart([peer, reply.SerializeToString()])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.socket.close(0)
        self.context.term()


def status_reply(seq: int, total: int) -> tq_pb2.Envelope:
    reply = tq_pb2.Envelope(version=1, seq=seq)
    reply.batch_status.batch_id = "b"
    reply.batch_status.counts.total = total
    return reply


class ChannelTest(unittest.TestCase):
    def test_lost_request_is_resent_with_its_seq_and_stale_replies_dropped(self) -> None:
        def answer(request, n):
            if n == 1:
                return []  # the first attempt is lost
            # A stale reply for another seq first: it must be ignored.
            return [status_reply(request.seq + 100, 99), status_reply(request.seq, 7)]

        broker = FakeBroker(answer)
        self.addCleanup(broker.close)
        with tq.Client(broker.endpoint, request_timeout=0.3, attempts=3) as client:
            self.assertEqual(client.progress("b").total, 7)
        self.assertEqual(len(broker.received), 2)
        self.assertEqual(broker.received[0].seq, broker.received[1].seq)
        self.assertEqual(broker.received[0].version, 1)

    def test_reply_of_the_wrong_version_is_a_protocol_error(self) -> None:
        def answer(request, n):
            reply = status_reply(request.seq, 1)
            reply.version = 2
            return [reply]

        broker = FakeBroker(answer)
        self.addCleanup(broker.close)
        with tq.Client(broker.endpoint, request_timeout=2) as client:
            with self.assertRaises(tq.ProtocolError) as cm:
                client.progress("b")
        self.assertEqual(cm.exception.code, tq.ErrorCode.BAD_VERSION)

    def test_curve_keys_encrypt_the_connection(self) -> None:
        # A bare CURVE ROUTER: the client's options are set before
        # connecting, and an ephemeral key pair works (KeyedBrokerTest runs
        # the real broker).
        server_public, server_secret = zmq.curve_keypair()
        broker = FakeBroker(lambda r, n: [status_reply(r.seq, 3)], server_secret)
        self.addCleanup(broker.close)
        with tq.Client(
            broker.endpoint,
            request_timeout=2,
            broker_key=server_public.decode(),
            key=zmq.curve_keypair(),
        ) as client:
            self.assertEqual(client.progress("b").total, 3)
        # With an ephemeral client key pair too.
        with tq.Client(broker.endpoint, request_timeout=2, broker_key=server_public) as client:
            self.assertEqual(client.progress("b").total, 3)
        # A wrong server key: the handshake fails, so no answer.
        wrong_public, _ = zmq.curve_keypair()
        with tq.Client(
            broker.endpoint, request_timeout=0.3, attempts=1, broker_key=wrong_public
        ) as client:
            with self.assertRaises(tq.NoReplyError):
                client.progress("b")
        with self.assertRaises(tq.InvalidArgumentError):
            tq.Client(broker.endpoint, broker_key="short")


class KeyedBrokerTest(ClusterTestCase):
    def keygen(self, name: str, *args: str) -> None:
        import subprocess
        from cluster import binary
        subprocess.run([binary("tq-keygen"), name, "--dir", self.dir, *args], check=True,
                       stdout=subprocess.DEVNULL)

    def test_keys_from_tq_keygen_reach_the_real_broker_with_their_roles(self) -> None:
        import os
        import shutil
        authorized = self.path("authorized")
        os.mkdir(authorized)
        self.keygen("broker")
        self.keygen("py", "--role", "submit")
        self.keygen("eve", "--role", "admin")  # never authorized
        shutil.copy(self.path("py.key"), authorized)
        endpoint = self.start_broker("--key", self.path("broker.key_secret"),
                                     "--authorized-keys", authorized)
        broker_public, _ = tq.load_key_file(self.path("broker.key"))
        py = tq.load_key_file(self.path("py.key_secret"))
        self.assertIsNotNone(py[1])
        with tq.Client(endpoint, request_timeout=2, broker_key=broker_public, key=py) as client:
            receipt = client.submit(["http://127.0.0.1/keyed"])
            self.assertEqual(receipt.accepted, 1)
            self.assertEqual(client.progress(receipt.batch_id).total, 1)
            # A submit key may not list the workers: that needs admin.
            with self.assertRaises(tq.TqError) as refused:
                client.workers()
            self.assertIn("admin", str(refused.exception))
        # An unknown key, or no key at all, gets no answer.
        eve = tq.load_key_file(self.path("eve.key_secret"))
        for key in (eve, None):
            with tq.Client(endpoint, request_timeout=0.3, attempts=1, broker_key=broker_public,
                           key=key) as client:
                with self.assertRaises(tq.NoReplyError):
                    client.queues()
        with self.assertRaises(ValueError):
            tq.load_key_file(self.path("tq.db"))


if __name__ == "__main__":
    unittest.main()
