"""The exceptions of the tq client, each carrying the broker's error code.

Every failure of a call raises a subclass of :class:`TqError`. ``code`` is a
member of :class:`ErrorCode` (the ``ErrorCode`` enum of ``proto/tq.proto``);
``from_broker`` says whether the broker sent it in an ``Error`` reply or the
client decided it alone (a request checked before sending, or no answer).

    TqError
     +-- InvalidArgumentError   INVALID_ARGUMENT: refused as given
     +-- NotFoundError          NOT_FOUND: unknown batch or queue
     +-- UnavailableError       STORE_UNAVAILABLE, SHUTTING_DOWN: retry later
     |    +-- NoReplyError      no answer after every attempt (TimeoutError)
     +-- WaitTimeoutError       a batch not complete by the caller's deadline
     +-- ProtocolError          anything else: BAD_MESSAGE, UNSUPPORTED, ...
"""

from __future__ import annotations

import enum

from . import tq_pb2

# Built from the generated module so the names and numbers never drift from
# proto/tq.proto.
ErrorCode = enum.IntEnum(
    "ErrorCode", dict(tq_pb2.ErrorCode.items()), module=__name__
)
ErrorCode.__doc__ = "The broker's error codes (tq.wire.ErrorCode)."


class TqError(Exception):
    """A tq call failed.

    Attributes:
        code: the :class:`ErrorCode`; the broker's when ``from_broker``.
        message: what went wrong, in the broker's words when it said so.
        retryable: the same request may succeed later.
        from_broker: the broker answered with this error (False: the client
            refused the request before sending it, or got no answer).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retryable: bool = False,
        from_broker: bool = True,
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.retryable = retryable
        self.from_broker = from_broker

    def __str__(self) -> str:
        return f"{self.message} [{self.code.name}]"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.code.name}, {self.message!r}, "
            f"retryable={self.retryable}, from_broker={self.from_broker})"
        )


class InvalidArgumentError(TqError, ValueError):
    """The request was refused as given (INVALID_ARGUMENT)."""


class NotFoundError(TqError, LookupError):
    """No such batch or queue (NOT_FOUND)."""


class UnavailableError(TqError):
    """The broker cannot serve the request now; the same request may succeed
    later (STORE_UNAVAILABLE, SHUTTING_DOWN, or no answer)."""


class NoReplyError(UnavailableError, TimeoutError):
    """No answer from the broker after every attempt of a request."""

    def __init__(self, message: str) -> None:
        super().__init__(
            ErrorCode.ERROR_UNSPECIFIED, message, retryable=True, from_broker=False
        )


class WaitTimeoutError(TqError, TimeoutError):
    """A batch was not complete when the caller's deadline passed."""

    def __init__(self, message: str) -> None:
        super().__init__(
            ErrorCode.ERROR_UNSPECIFIED, message, retryable=True, from_broker=False
        )


class ProtocolError(TqError):
    """The broker and the client did not understand each other (BAD_MESSAGE,
    UNSUPPORTED, BAD_VERSION, TOO_LARGE, NOT_REGISTERED, or a reply of the
    wrong kind)."""


_BY_CODE = {
    ErrorCode.INVALID_ARGUMENT: InvalidArgumentError,
    ErrorCode.NOT_FOUND: NotFoundError,
    ErrorCode.STORE_UNAVAILABLE: UnavailableError,
    ErrorCode.SHUTTING_DOWN: UnavailableError,
}


def error_from_wire(error: tq_pb2.Error) -> TqError:
    """The exception for a broker ``Error`` reply."""
    try:
        code = ErrorCode(error.code)
    except ValueError:  # a code from a newer broker
        code = ErrorCode.ERROR_UNSPECIFIED
    message = error.message or code.name
    cls = _BY_CODE.get(code, ProtocolError)
    return cls(code, message, retryable=error.retryable, from_broker=True)


def invalid_argument(message: str) -> InvalidArgumentError:
    """A request refused by the client before sending, as the broker would."""
    return InvalidArgumentError(
        ErrorCode.INVALID_ARGUMENT, message, from_broker=False
    )
