"""Request/reply over one DEALER socket to the broker, as client/channel.cc:
seq matching, per-attempt timeouts, resends and a window of pipelined
requests. Not thread-safe: one owner, like the Client holding it."""

from __future__ import annotations

import logging
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import zmq
from google.protobuf.message import DecodeError

from . import tq_pb2
from .errors import (
    ErrorCode,
    NoReplyError,
    ProtocolError,
    TqError,
    error_from_wire,
    invalid_argument,
)

log = logging.getLogger("tq")

PROTOCOL_VERSION = 1
# Application cap on one message (common/defaults.h), and room above it so
# ZeroMQ only cuts off what would be refused anyway.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_MAX_MESSAGE_SLACK = 64 * 1024

Key = Union[str, bytes]


def format_duration(seconds: float) -> str:
    """"5 s", "1.5 s", "250 ms", as the C++ tools say it."""
    ms = int(round(seconds * 1000))
    if ms < 1000:
        return f"{ms} ms"
    if ms % 1000 == 0:
        return f"{ms // 1000} s"
    return f"{ms / 1000:.1f} s"


def _key_bytes(key: Key, what: str) -> bytes:
    # ZeroMQ takes a CURVE key as 32 raw bytes or 40 characters of Z85.
    raw = key.encode("ascii") if isinstance(key, str) else bytes(key)
    if len(raw) not in (32, 40):
        raise invalid_argument(
            f"{what} must be 40 characters of Z85 or 32 bytes, not {len(raw)}"
        )
    return raw


class _Pending:
    __slots__ = ("index", "attempts", "deadline", "frame")

    def __init__(self, index: int, frame: bytes, deadline: float) -> None:
        self.index = index
        self.attempts = 1
        self.deadline = deadline
        self.frame = frame


class Channel:
    """One DEALER socket connected to the broker."""

    def __init__(
        self,
        endpoint: str,
        *,
        request_timeout: float,
        attempts: int,
        context: zmq.Context,
        broker_key: Optional[Key] = None,
        key: Optional[Tuple[Key, Key]] = None,
    ) -> None:
        if not endpoint:
            raise invalid_argument("empty broker endpoint")
        if attempts < 1:
            raise invalid_argument("attempts must be at least 1")
        if not request_timeout > 0:
            raise invalid_argument("request timeout must be positive")
        self.endpoint = endpoint
        self._request_timeout = float(request_timeout)
        self._attempts = int(attempts)
        self._next_seq = 1
        self._socket = context.socket(zmq.DEALER)
        try:
            # Every request waits for its reply, so nothing worth keeping is
            # left unsent at close; don't hang the process on exit.
            self._socket.setsockopt(zmq.LINGER, 0)
            self._socket.setsockopt(
                zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES + _MAX_MESSAGE_SLACK
            )
            if key is not None and broker_key is None:
                raise invalid_argument("key given without broker_key")
            if broker_key is not None:
                self._set_curve(broker_key, key)
            self._socket.connect(endpoint)
        except zmq.ZMQError as e:
            self._socket.close(0)
            raise invalid_argument(f"cannot connect to '{endpoint}': {e}") from e
        except TqError:
            self._socket.close(0)
            raise

    def _set_curve(self, broker_key: Key, key: Optional[Tuple[Key, Key]]) -> None:
        """CURVE client options; must precede connect. Without `key` an
        ephemeral key pair is made (a broker that only admits known client
        keys will refuse it)."""
        if not zmq.has("curve"):
            raise invalid_argument("this libzmq has no CURVE support")
        if key is None:
            public, secret = zmq.curve_keypair()
        else:
            public, secret = key
        self._socket.setsockopt(
            zmq.CURVE_SERVERKEY, _key_bytes(broker_key, "broker_key")
        )
        self._socket.setsockopt(zmq.CURVE_PUBLICKEY, _key_bytes(public, "public key"))
        self._socket.setsockopt(zmq.CURVE_SECRETKEY, _key_bytes(secret, "secret key"))

    def close(self) -> None:
        self._socket.close(0)

    @property
    def closed(self) -> bool:
        return self._socket.closed

    def call(
        self, request: tq_pb2.Envelope, extra_wait: float = 0.0
    ) -> tq_pb2.Envelope:
        """Sends `request` and returns the broker's reply. Each attempt waits
        request_timeout + extra_wait; an Error reply is raised as its
        TqError."""
        replies: List[tq_pb2.Envelope] = []
        self.call_pipelined([request], 1, extra_wait, lambda _, r: replies.append(r))
        return replies[0]

    def call_pipelined(
        self,
        requests: Sequence[tq_pb2.Envelope],
        window: int,
        extra_wait: float,
        on_reply: Callable[[int, tq_pb2.Envelope], None],
    ) -> None:
        """Sends every request, at most `window` awaiting a reply at a time,
        and calls on_reply(i, reply) for requests[i] as replies arrive, in
        any order. Raises at the first failure. Requests are resent
        unchanged, so they must be idempotent."""
        if self._socket.closed:
            raise invalid_argument("the client is closed")
        per_attempt = self._request_timeout + max(extra_wait, 0.0)
        window = max(window, 1)
        # Keyed by seq. A request keeps its seq across resends, so the answer
        # to any attempt completes it; replies for seqs not here are late
        # duplicates and are dropped.
        outstanding: Dict[int, _Pending] = {}
        next_index = 0
        answered = 0
        while answered < len(requests):
            while len(outstanding) < window and next_index < len(requests):
                seq = self._next_seq
                self._next_seq += 1
                envelope = requests[next_index]
                envelope.version = PROTOCOL_VERSION
                envelope.seq = seq
                p = _Pending(
                    next_index,
                    envelope.SerializeToString(),
                    time.monotonic() + per_attempt,
                )
                next_index += 1
                self._send(p.frame)
                outstanding[seq] = p

            now = time.monotonic()
            earliest = float("inf")
            for seq, p in outstanding.items():
                if p.deadline <= now:
                    if p.attempts >= self._attempts:
                        plural = "" if p.attempts == 1 else "s"
                        raise NoReplyError(
                            f"no answer from {self.endpoint} after "
                            f"{p.attempts} attempt{plural} of "
                            f"{format_duration(per_attempt)}"
                        )
                    p.attempts += 1
                    p.deadline = now + per_attempt
                    log.debug(
                        "no reply to seq %d yet; attempt %d of %d",
                        seq,
                        p.attempts,
                        self._attempts,
                    )
                    self._send(p.frame)
                earliest = min(earliest, p.deadline)

            wait_ms = max(0, int((earliest - time.monotonic()) * 1000) + 1)
            if not self._socket.poll(wait_ms, zmq.POLLIN):
                continue
            # Drain everything that has arrived.
            while True:
                try:
                    frame = self._socket.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                reply = tq_pb2.Envelope()
                try:
                    reply.ParseFromString(frame)
                except DecodeError:
                    log.debug("dropping a reply that does not parse")
                    continue
                p = outstanding.pop(reply.seq, None)
                if p is None:
                    if reply.seq == 0 and reply.WhichOneof("body") == "error":
                        # The broker could not read some request well enough
                        # to echo its seq; the request itself will time out.
                        log.warning("broker error: %s", reply.error.message)
                    else:
                        log.debug("dropping reply with unknown seq %d", reply.seq)
                    continue
                self._check(reply)
                on_reply(p.index, reply)
                answered += 1

    def _check(self, reply: tq_pb2.Envelope) -> None:
        if reply.version != PROTOCOL_VERSION:
            raise ProtocolError(
                ErrorCode.BAD_VERSION,
                f"reply from {self.endpoint} has protocol version "
                f"{reply.version}, not {PROTOCOL_VERSION}",
                from_broker=False,
            )
        body = reply.WhichOneof("body")
        if body is None:
            raise ProtocolError(
                ErrorCode.UNSUPPORTED,
                f"reply from {self.endpoint} has no body this client knows",
                from_broker=False,
            )
        if body == "error":
            raise error_from_wire(reply.error)

    def _send(self, frame: bytes) -> None:
        try:
            self._socket.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            # With the pipe full the attempt simply times out and is resent,
            # like a lost message.
            log.debug("send to %s would block; counted as a lost attempt", self.endpoint)
