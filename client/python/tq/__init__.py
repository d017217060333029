"""tq: the Python client of the tq distributed task queue.

    import tq

    with tq.Client("tcp://broker.example:7070") as client:
        receipt = client.submit(["http://example.com/"], ["IT", "IN"],
                                options={"user_agent": "winxpie60"})
        for result in client.results(receipt.batch_id):
            print(result.to_json_line())

The wire messages (tq_pb2) are generated from proto/tq.proto at build time;
run from the build tree with PYTHONPATH=build/python. See client/python/README.md.
"""

try:
    import google.protobuf  # noqa: F401
    import zmq  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the machine
    raise ImportError(
        f"tq needs pyzmq and protobuf (no module {e.name}): on Debian, "
        "apt-get install python3-zmq python3-protobuf and run /usr/bin/python3"
    ) from e
try:
    from . import tq_pb2  # noqa: F401
except ImportError as e:  # pragma: no cover
    raise ImportError(
        "tq.tq_pb2 is generated at build time: use the package from "
        "build/python (cmake --build build --target tq_python)"
    ) from e

from .client import (
    BROKER_ENV_VAR,
    DEFAULT_ENDPOINT,
    GENERIC_QUEUE,
    Client,
    ResultStream,
    new_batch_id,
    validate_batch_id,
)
from .errors import (
    ErrorCode,
    InvalidArgumentError,
    NoReplyError,
    NotFoundError,
    ProtocolError,
    TqError,
    UnavailableError,
    WaitTimeoutError,
)
from .keys import load_key_file
from .layout import write_result
from .result import (
    BatchProgress,
    BrokerStats,
    QueueInfo,
    QueueList,
    ResultFile,
    ResultPage,
    SubmitItemError,
    SubmitReceipt,
    TaskResult,
    WorkerInfo,
)

__all__ = [
    "BROKER_ENV_VAR",
    "DEFAULT_ENDPOINT",
    "GENERIC_QUEUE",
    "BatchProgress",
    "BrokerStats",
    "Client",
    "ErrorCode",
    "InvalidArgumentError",
    "load_key_file",
    "NoReplyError",
    "NotFoundError",
    "ProtocolError",
    "QueueInfo",
    "QueueList",
    "ResultFile",
    "ResultPage",
    "ResultStream",
    "SubmitItemError",
    "SubmitReceipt",
    "TaskResult",
    "TqError",
    "UnavailableError",
    "WaitTimeoutError",
    "WorkerInfo",
    "new_batch_id",
    "validate_batch_id",
    "write_result",
]
