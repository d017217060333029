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
