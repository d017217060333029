"""What comes back from the broker: results, progress, receipts, listings.

Plain dataclasses built from the wire messages of ``proto/tq.proto``.
:meth:`TaskResult.to_json` gives the same object, key for key and in the
same order, as one line of ``tq-submit --wait`` (client/result_json.cc).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from . import tq_pb2


def _json_output(text: str) -> Any:
    """The output as JSON when it is a JSON object or array, else None
    (as ParseJsonOutput in client/result_json.cc)."""
    stripped = text.lstrip(" \t\r\n")
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _utc_ms(ms: int) -> str:
    """1700000000123 -> "2023-11-14T22:13:20.123Z"; "" for 0 or less."""
    if ms <= 0:
        return ""
    import datetime

    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def state_name(state: int) -> str:
    """``TASK_STATE_DONE`` -> ``"done"``, as common/task_state.h names them."""
    try:
        name = tq_pb2.TaskState.Name(state)
    except ValueError:
        return "unknown"
    return name[len("TASK_STATE_") :].lower()


@dataclass(frozen=True)
class BatchProgress:
    """Task counts of a batch (or a queue) by state."""

    total: int = 0
    queued: int = 0
    leased: int = 0
    retry_wait: int = 0
    done: int = 0
    dead: int = 0
    cancelled: int = 0

    @property
    def finished(self) -> int:
        """Tasks that will not run again: done, dead or cancelled."""
        return self.done + self.dead + self.cancelled

    @property
    def complete(self) -> bool:
        """Every task of a non-empty batch has finished."""
        return self.total > 0 and self.finished >= self.total

    @classmethod
    def from_wire(cls, counts: tq_pb2.BatchCounts) -> "BatchProgress":
        return cls(
            total=counts.total,
            queued=counts.queued,
            leased=counts.leased,
            retry_wait=counts.retry_wait,
            done=counts.done,
            dead=counts.dead,
            cancelled=counts.cancelled,
        )


@dataclass(frozen=True)
class ResultFile:
    """A file a task produced (what an --exec tool wrote into its {outdir}).

    ``name`` is the path as the worker found it, not sanitised: see
    :func:`tq.layout.safe_relative_path`. ``content`` is None unless the
    results were fetched ``with_files``.
    """

    name: str
    sha256: str
    size: int
    content: Optional[bytes] = None


def _attempt_json(a: "tq_pb2.Attempt") -> Dict[str, Any]:
    j: Dict[str, Any] = {"attempt": a.attempt, "worker": a.worker, "ok": a.ok}
    if a.outcome:
        j["outcome"] = a.outcome
    if a.error:
        j["error"] = a.error
    return j


@dataclass(frozen=True)
class TaskResult:
    """A finished task with the result of its last attempt."""

    task_id: int
    batch_id: str
    index: int
    url: str
    queue: str
    state: str  # "done", "dead" or "cancelled"
    attempts: int
    worker: str
    ok: bool
    output: bytes  # the handler's stdout, size-capped
    output_truncated: bool
    error: str
    exit_code: int  # -1 when killed by a signal or not run
    stderr_tail: str
    duration_ms: int
    submitted_ms: int  # wall clock, ms since the epoch
    finished_ms: int
    finish_seq: int  # the results cursor at this task
    files: List[ResultFile] = field(default_factory=list)
    # Done tasks: "ok", "unreachable", "http_error" or "timeout" (#18).
    outcome: str = ""
    outcome_reason: str = ""
    # Every ended attempt, oldest first: dicts of attempt, worker, ok,
    # outcome (when set), error (when set), as in the JSON line.
    history: List[Dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_wire(cls, info: tq_pb2.TaskInfo, with_files: bool) -> "TaskResult":
        return cls(
            task_id=info.task_id,
            batch_id=info.batch_id,
            index=info.index,
            url=info.url,
            queue=info.queue,
            state=state_name(info.state),
            attempts=info.attempts,
            worker=info.worker,
            ok=info.ok,
            output=info.output,
            output_truncated=info.output_truncated,
            error=info.error,
            exit_code=info.exit_code,
            stderr_tail=info.stderr_tail,
            duration_ms=info.duration_ms,
            submitted_ms=info.submitted_ms,
            finished_ms=info.finished_ms,
            finish_seq=info.finish_seq,
            files=[
                ResultFile(
                    name=f.name,
                    sha256=f.sha256,
                    size=f.size,
                    content=f.content if with_files else None,
                )
                for f in info.files
            ],
            outcome=info.outcome,
            outcome_reason=info.outcome_reason,
            history=[_attempt_json(a) for a in info.history],
        )

    @property
    def text(self) -> Optional[str]:
        """The output as text, or None when it is not valid UTF-8."""
        try:
            return self.output.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def to_json(self) -> Dict[str, Any]:
        """The object of one ``tq-submit --wait`` line: task_id, batch_id,
        index, url, queue, status, ok, attempts, worker, duration_ms, result
        (embedded JSON when the output is a JSON object or array, else
        text; output_base64 instead when it is not UTF-8), output_truncated
        (only when true), error (only when non-empty), exit_code,
        stderr_tail (only when non-empty), submitted, finished (ISO-8601
        UTC), submitted_ms, finished_ms, files (name, sha256, size; only
        when there are any). As docs/result-line.md and tq-submit."""
        j: Dict[str, Any] = {
            "task_id": self.task_id,
            "batch_id": self.batch_id,
            "index": self.index,
            "url": self.url,
            "queue": self.queue,
            "status": self.state,
            "ok": self.ok,
        }
        if self.outcome:
            j["outcome"] = self.outcome
        if self.outcome_reason:
            j["outcome_reason"] = self.outcome_reason
        j.update({
            "attempts": self.attempts,
            "worker": self.worker,
            "duration_ms": self.duration_ms,
        })
        text = self.text
        if text is not None:
            embedded = None if self.output_truncated else _json_output(text)
            j["result"] = text if embedded is None else embedded
        else:
            j["output_base64"] = base64.b64encode(self.output).decode("ascii")
        if self.output_truncated:
            j["output_truncated"] = True
        if self.error:
            j["error"] = self.error
        j["exit_code"] = self.exit_code
        if self.stderr_tail:
            j["stderr_tail"] = self.stderr_tail
        j["submitted"] = _utc_ms(self.submitted_ms)
        j["finished"] = _utc_ms(self.finished_ms)
        j["submitted_ms"] = self.submitted_ms
        j["finished_ms"] = self.finished_ms
        if self.files:
            j["files"] = [
                {"name": f.name, "sha256": f.sha256, "size": f.size}
                for f in self.files
            ]
        if self.history:
            j["history"] = list(self.history)
        return j

    def to_json_line(self) -> str:
        """:meth:`to_json` as one line (no newline), byte for byte as
        tq-submit writes it: no spaces, non-ASCII kept as UTF-8."""
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class ResultPage:
    """One answer to :meth:`tq.Client.fetch_results`."""

    results: List[TaskResult]
    cursor: int  # pass as ``after`` to get the next page
    progress: BatchProgress


@dataclass(frozen=True)
class SubmitItemError:
    """A URL the broker (or the client) refused, on one queue."""

    url_index: int  # index into the urls given to submit()
    queue: str
    reason: str


@dataclass(frozen=True)
class SubmitReceipt:
    """What :meth:`tq.Client.submit` queued."""

    batch_id: str
    total: int  # urls x queues
    accepted: int  # newly queued
    duplicates: int  # already known from an earlier submit of this batch id
    errors: List[SubmitItemError] = field(default_factory=list)

    @property
    def held(self) -> int:
        """Tasks the broker holds for this batch from this submit."""
        return self.accepted + self.duplicates


@dataclass(frozen=True)
class QueueInfo:
    name: str
    counts: BatchProgress
    workers: int  # connected workers serving it


@dataclass(frozen=True)
class BrokerStats:
    messages_in: int = 0
    messages_out: int = 0
    bad_messages: int = 0
    commits: int = 0
    commit_failures: int = 0
    redeliveries: int = 0
    store_ok: bool = True
    store_error: str = ""


@dataclass(frozen=True)
class QueueList:
    queues: List[QueueInfo]
    stats: BrokerStats


@dataclass(frozen=True)
class WorkerInfo:
    worker_id: str
    country: str
    country_source: str
    queues: List[str]
    concurrency: int
    credit: int
    in_flight: int
    last_seen_ms_ago: int
    hostname: str
    tasks_done: int
    peer_address: str
