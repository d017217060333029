"""The tq client: submits URL batches to a tq broker, follows their results,
and runs the admin requests behind tq-ctl.

Threading: a :class:`Client` owns its socket and is NOT thread-safe; use one
Client per thread (they are cheap), or guard one with a lock.
Errors: every call raises a :class:`tq.TqError` subclass carrying the
broker's error code (see tq.errors).
Idempotence: every request is safe to retry. :meth:`Client.submit` is keyed
by (batch_id, item index), so submitting the same URLs and queues with the
same batch id again never queues duplicates.
"""

from __future__ import annotations

import collections
import os
import re
import secrets
import time
from typing import (
    Callable,
    Deque,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

import zmq

from . import tq_pb2
from .channel import Channel, Key, format_duration
from .errors import ErrorCode, ProtocolError, WaitTimeoutError, invalid_argument
from .result import (
    BatchProgress,
    BrokerStats,
    QueueInfo,
    QueueList,
    ResultPage,
    SubmitItemError,
    SubmitReceipt,
    TaskResult,
    WorkerInfo,
)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:7070"
BROKER_ENV_VAR = "TQ_BROKER"
GENERIC_QUEUE = "generic"

# As client/submit_plan.h: items and bytes per Submit message, and Submit
# messages awaiting their acknowledgement at once.
MAX_ITEMS_PER_CHUNK = 1000
MAX_CHUNK_BYTES = 4 * 1024 * 1024
SUBMIT_WINDOW = 16
_ITEM_OVERHEAD_BYTES = 24
_CHUNK_OVERHEAD_BYTES = 256

# As client/client.cc: results per page and the longest long poll while
# following a batch, so progress is reported about once a second.
RESULT_PAGE_LIMIT = 1000
MAX_LONG_POLL = 1.0

_BATCH_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}\Z")
_COUNTRY_SHAPE = re.compile(r"[A-Z]{2}\Z")


def new_batch_id() -> str:
    """A fresh random batch id: 16 lower-case hex digits."""
    return secrets.token_hex(8)


def validate_batch_id(batch_id: str) -> None:
    """Raises InvalidArgumentError unless batch_id is 1-64 characters of
    [A-Za-z0-9._:-]."""
    if not isinstance(batch_id, str) or not _BATCH_ID.match(batch_id):
        raise invalid_argument(
            f"batch id {batch_id!r} is not 1-64 characters of [A-Za-z0-9._:-]"
        )


def _check_queue_shape(queue: str) -> None:
    # Whether a two-letter code is an assigned country is the broker's to
    # say (per item, in SubmitReceipt.errors); the shape is checked here.
    if queue == GENERIC_QUEUE or _COUNTRY_SHAPE.match(queue):
        return
    if len(queue) == 2 and _COUNTRY_SHAPE.match(queue.upper()):
        raise invalid_argument(
            f"queue '{queue}': country codes are upper case (use '{queue.upper()}')"
        )
    raise invalid_argument(
        f"queue '{queue[:40]}' is neither 'generic' nor an ISO 3166-1 "
        "alpha-2 country code"
    )


def _expect(reply: tq_pb2.Envelope, body: str, request: str):
    got = reply.WhichOneof("body")
    if got != body:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED,
            f"broker answered {request} with {got}, not {body}",
            from_broker=False,
        )
    return getattr(reply, body)


class Client:
    """A connection to one tq broker.

    Args:
        endpoint: the broker's ZeroMQ endpoint; default ``$TQ_BROKER`` or
            tcp://127.0.0.1:7070.
        request_timeout: seconds one attempt of a request waits for its reply.
        attempts: attempts of a request before NoReplyError.
        broker_key: the broker's CURVE public key (Z85 text or 32 bytes).
            Given, the connection is encrypted and the broker authenticated.
        key: this client's CURVE key pair (public, secret), Z85 or raw; with
            broker_key but no key, an ephemeral pair is made.
        context: a zmq.Context to use; default the process's shared one.

    ZeroMQ connects lazily: an absent broker shows up as NoReplyError on the
    first request, not here. A malformed endpoint raises
    InvalidArgumentError. Use as a context manager, or call close().
    """

    def __init__(
        self,
        endpoint: Optional[str] = None,
        *,
        request_timeout: float = 5.0,
        attempts: int = 3,
        broker_key: Optional[Key] = None,
        key: Optional[Tuple[Key, Key]] = None,
        context: Optional[zmq.Context] = None,
    ) -> None:
        if endpoint is None:
            endpoint = os.environ.get(BROKER_ENV_VAR) or DEFAULT_ENDPOINT
        self._channel = Channel(
            endpoint,
            request_timeout=request_timeout,
            attempts=attempts,
            context=context or zmq.Context.instance(),
            broker_key=broker_key,
            key=key,
        )

    @property
    def endpoint(self) -> str:
        return self._channel.endpoint

    def close(self) -> None:
        """Closes the socket; later calls raise InvalidArgumentError."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # Submitting.

    def submit(
        self,
        urls: Iterable[str],
        countries: Optional[Sequence[str]] = None,
        *,
        options: Optional[Mapping[str, str]] = None,
        priority: int = 0,
        max_attempts: int = 0,
        time_limit: Optional[float] = None,
        batch_id: Optional[str] = None,
    ) -> SubmitReceipt:
        """Queues every URL on every queue of `countries` as one batch.

        Args:
            urls: absolute http(s) URLs (IDN hosts in their xn-- form).
            countries: queues: ISO 3166-1 alpha-2 codes ("IT") or "generic";
                default ["generic"]. Item i*n+j is urls[i] on countries[j].
            options: KEY=VALUE strings handed to the worker with each task
                (the built-in analyser reads user_agent, referer, proxy, ...).
            priority: higher runs first within a queue.
            max_attempts: attempts per task before it is dead; 0: broker's.
            time_limit: seconds one attempt may run; None: broker's.
            batch_id: 1-64 of [A-Za-z0-9._:-]; default a fresh random id.
                Submitting again with the same id, urls and countries only
                counts duplicates.

        Returns the receipt; URLs the broker refused are in its errors (the
        rest are queued). Raises InvalidArgumentError before sending for a
        bad batch id or queue name, no URLs or a repeated queue; on
        NoReplyError some chunks may be queued: submit again with the same
        batch id.
        """
        urls = list(urls)
        queues = [GENERIC_QUEUE] if countries is None else list(countries)
        batch_id = new_batch_id() if batch_id is None else batch_id
        validate_batch_id(batch_id)
        if not urls:
            raise invalid_argument("no URLs to submit")
        if not queues:
            raise invalid_argument("no queues given")
        seen = set()
        for q in queues:
            _check_queue_shape(q)
            if q in seen:
                raise invalid_argument(f"queue '{q}' is listed twice")
            seen.add(q)
        n = len(queues)
        if len(urls) > (1 << 32) // n:  # item indexes are uint32 on the wire
            raise invalid_argument(
                f"too many items for one batch: {len(urls)} URLs x {n} queues"
            )
        if max_attempts < 0:
            raise invalid_argument("max_attempts must not be negative")
        time_limit_ms = 0
        if time_limit is not None:
            if not time_limit > 0:
                raise invalid_argument("time_limit must be positive")
            time_limit_ms = min(int(round(time_limit * 1000)), 0xFFFFFFFF)
        task_options = dict(options or {})
        options_bytes = _CHUNK_OVERHEAD_BYTES + len(batch_id)
        for k, v in task_options.items():
            if not isinstance(k, str) or not isinstance(v, str) or not k:
                raise invalid_argument(f"option {k!r}: keys and values are strings")
            options_bytes += len(k.encode()) + len(v.encode()) + _ITEM_OVERHEAD_BYTES
        if options_bytes > MAX_CHUNK_BYTES // 2:
            raise invalid_argument(
                f"task options are {options_bytes} bytes; too large to send"
            )

        errors: List[SubmitItemError] = []
        chunks: List[tq_pb2.Envelope] = []
        current: Optional[tq_pb2.Submit] = None
        current_bytes = 0
        for i, url in enumerate(urls):
            url_bytes = len(url.encode("utf-8", "surrogatepass"))
            for j, queue in enumerate(queues):
                item_bytes = url_bytes + len(queue) + _ITEM_OVERHEAD_BYTES
                if options_bytes + item_bytes > MAX_CHUNK_BYTES:
                    errors.append(
                        SubmitItemError(
                            i, queue, f"URL is {url_bytes} bytes long; too large to submit"
                        )
                    )
                    continue
                if (
                    current is None
                    or len(current.items) >= MAX_ITEMS_PER_CHUNK
                    or current_bytes + item_bytes > MAX_CHUNK_BYTES
                ):
                    envelope = tq_pb2.Envelope()
                    current = envelope.submit
                    current.batch_id = batch_id
                    current.priority = priority
                    current.max_attempts = max_attempts
                    current.time_limit_ms = time_limit_ms
                    current.options.update(task_options)
                    chunks.append(envelope)
                    current_bytes = options_bytes
                item = current.items.add()
                item.index = i * n + j
                item.url = url
                item.queue = queue
                current_bytes += item_bytes

        total = len(urls) * n
        counts = {"accepted": 0, "duplicates": 0}

        def on_ack(_: int, reply: tq_pb2.Envelope) -> None:
            ack = _expect(reply, "submit_ack", "Submit")
            counts["accepted"] += ack.accepted
            counts["duplicates"] += ack.duplicates
            for e in ack.errors:
                if e.index >= total:
                    raise ProtocolError(
                        ErrorCode.ERROR_UNSPECIFIED,
                        f"broker reported an error for item {e.index} of a "
                        f"batch of {total}",
                        from_broker=False,
                    )
                errors.append(SubmitItemError(e.index // n, queues[e.index % n], e.reason))

        # Resending a chunk is safe: the broker dedups by (batch_id, index).
        self._channel.call_pipelined(chunks, SUBMIT_WINDOW, 0.0, on_ack)
        errors.sort(key=lambda e: (e.url_index, queues.index(e.queue)))
        return SubmitReceipt(
            batch_id=batch_id,
            total=total,
            accepted=counts["accepted"],
            duplicates=counts["duplicates"],
            errors=errors,
        )

    # Results.

    def fetch_results(
        self,
        batch_id: str,
        after: int = 0,
        limit: int = RESULT_PAGE_LIMIT,
        wait: float = 0.0,
        with_files: bool = False,
    ) -> ResultPage:
        """Results that finished after cursor `after`, oldest first, at most
        `limit`. Waits up to `wait` seconds for at least one if none is ready
        (long poll). with_files: the files come with their content; a page
        then holds fewer results (about 12 MiB), so page until one comes
        back empty. Raises NotFoundError for an unknown batch."""
        validate_batch_id(batch_id)
        wait = max(float(wait), 0.0)
        request = tq_pb2.Envelope()
        fetch = request.fetch_results
        fetch.batch_id = batch_id
        fetch.after = after
        fetch.limit = limit
        fetch.wait_ms = min(int(wait * 1000), 0xFFFFFFFF)
        fetch.with_files = with_files
        # The broker may hold the request for `wait` before answering.
        reply = self._channel.call(request, extra_wait=wait)
        results = _expect(reply, "results", "FetchResults")
        return ResultPage(
            results=[TaskResult.from_wire(t, with_files) for t in results.tasks],
            cursor=max(results.cursor, after),
            progress=BatchProgress.from_wire(results.counts),
        )

    def results(
        self,
        batch_id: str,
        *,
        timeout: Optional[float] = None,
        with_files: bool = False,
        after: int = 0,
        on_progress: Optional[Callable[[BatchProgress], None]] = None,
    ) -> "ResultStream":
        """Every result of the batch, in finishing order, as an iterator that
        ends when the batch is complete. Its ``progress`` attribute holds the
        counts as of the last page; on_progress, if given, is called after
        every page (about once a second while waiting). Iterating raises
        WaitTimeoutError once `timeout` seconds have passed, and any broker
        error as its TqError. Each task comes exactly once."""
        validate_batch_id(batch_id)
        return ResultStream(self, batch_id, timeout, with_files, after, on_progress)

    # Batches.

    def progress(self, batch_id: str) -> BatchProgress:
        """The batch's task counts. Raises NotFoundError for an unknown
        batch."""
        validate_batch_id(batch_id)
        request = tq_pb2.Envelope()
        request.batch_status_request.batch_id = batch_id
        status = _expect(self._channel.call(request), "batch_status", "BatchStatus")
        return BatchProgress.from_wire(status.counts)

    def cancel(self, batch_id: str) -> int:
        """Cancels the batch's queued and retry-waiting tasks (running ones
        finish). Returns how many were cancelled."""
        validate_batch_id(batch_id)
        request = tq_pb2.Envelope()
        request.cancel_batch.batch_id = batch_id
        return _expect(self._channel.call(request), "admin_ack", "CancelBatch").affected

    def retry_dead(
        self, batch_id: Optional[str] = None, *, queue: Optional[str] = None
    ) -> int:
        """Queues the dead tasks of a batch, or (batch_id None) of a queue,
        again with fresh attempts. Returns how many (0 for a batch or queue
        the broker does not know)."""
        if (batch_id is None) == (queue is None):
            raise invalid_argument("give either a batch id or a queue")
        request = tq_pb2.Envelope()
        if batch_id is not None:
            validate_batch_id(batch_id)
            request.retry_dead.batch_id = batch_id
        else:
            _check_queue_shape(queue)
            request.retry_dead.queue = queue
        return _expect(self._channel.call(request), "admin_ack", "RetryDead").affected

    # Queues and workers.

    def purge(self, queue: str) -> int:
        """Cancels every queued and retry-waiting task of the queue. Returns
        how many. The broker checks the queue name (InvalidArgumentError)."""
        request = tq_pb2.Envelope()
        request.purge_queue.queue = queue
        return _expect(self._channel.call(request), "admin_ack", "PurgeQueue").affected

    def queues(self) -> QueueList:
        """Every queue with its counts and workers, and the broker's
        counters."""
        request = tq_pb2.Envelope()
        request.list_queues.SetInParent()
        reply = _expect(self._channel.call(request), "queue_list", "ListQueues")
        s = reply.stats
        return QueueList(
            queues=[
                QueueInfo(q.name, BatchProgress.from_wire(q.counts), q.workers)
                for q in reply.queues
            ],
            stats=BrokerStats(
                messages_in=s.messages_in,
                messages_out=s.messages_out,
                bad_messages=s.bad_messages,
                commits=s.commits,
                commit_failures=s.commit_failures,
                redeliveries=s.redeliveries,
                store_ok=s.store_ok if reply.HasField("stats") else True,
                store_error=s.store_error,
            ),
        )

    def workers(self) -> List[WorkerInfo]:
        """The connected workers."""
        request = tq_pb2.Envelope()
        request.list_workers.SetInParent()
        reply = _expect(self._channel.call(request), "worker_list", "ListWorkers")
        return [
            WorkerInfo(
                worker_id=w.worker_id,
                country=w.country,
                country_source=w.country_source,
                queues=list(w.queues),
                concurrency=w.concurrency,
                credit=w.credit,
                in_flight=w.in_flight,
                last_seen_ms_ago=w.last_seen_ms_ago,
                hostname=w.hostname,
                tasks_done=w.tasks_done,
                peer_address=w.peer_address,
            )
            for w in reply.workers
        ]


class ResultStream(Iterator[TaskResult]):
    """The results of one batch as they finish; from :meth:`Client.results`.

    Pages through FetchResults with a cursor, long-polling up to a second at
    a time, and stops once the counts say the batch is complete and the last
    page was not full. Not thread-safe (it uses the Client's socket).
    """

    def __init__(
        self,
        client: Client,
        batch_id: str,
        timeout: Optional[float],
        with_files: bool,
        after: int,
        on_progress: Optional[Callable[[BatchProgress], None]],
    ) -> None:
        self.batch_id = batch_id
        #: Counts as of the last page; None before the first.
        self.progress: Optional[BatchProgress] = None
        #: Cursor after the last page: pass as ``after`` to resume.
        self.cursor = after
        self._client = client
        self._timeout = timeout
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._with_files = with_files
        self._on_progress = on_progress
        self._buffer: Deque[TaskResult] = collections.deque()
        self._done = False

    def __iter__(self) -> "ResultStream":
        return self

    def __next__(self) -> TaskResult:
        while not self._buffer:
            if self._done:
                raise StopIteration
            self._fetch_page()
        return self._buffer.popleft()

    def _fetch_page(self) -> None:
        wait = MAX_LONG_POLL
        if self._deadline is not None:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                p = self.progress or BatchProgress()
                raise WaitTimeoutError(
                    f"batch {self.batch_id} not complete after "
                    f"{format_duration(self._timeout)}: "
                    f"{p.total - p.finished} of {p.total} tasks unfinished"
                )
            wait = min(wait, remaining)
        page = self._client.fetch_results(
            self.batch_id, self.cursor, RESULT_PAGE_LIMIT, wait, self._with_files
        )
        self._buffer.extend(page.results)
        self.cursor = page.cursor
        self.progress = page.progress
        if self._on_progress is not None:
            self._on_progress(page.progress)
        # A full page means more may be waiting even if the counts say done.
        # With files a page may be cut short by size: only an empty one ends.
        if (
            page.progress.complete
            and len(page.results) < RESULT_PAGE_LIMIT
            and (not self._with_files or not page.results)
        ):
            self._done = True
