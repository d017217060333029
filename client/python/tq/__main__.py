"""python3 -m tq: the tq client from the command line.

    python3 -m tq submit urls.txt [--country IT,IN] [-o KEY=VALUE] [--wait]
    python3 -m tq results BATCH [--out DIR --layout thug]
    python3 -m tq progress BATCH
    python3 -m tq cancel BATCH
    python3 -m tq retry --batch BATCH | --queue QUEUE

`submit --wait` prints each result as the same JSON line as
`tq-submit --wait`, and exits with tq-submit's codes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import List, Optional

from .client import BROKER_ENV_VAR, DEFAULT_ENDPOINT, GENERIC_QUEUE, Client, new_batch_id
from .errors import NotFoundError, TqError, WaitTimeoutError
from .layout import LAYOUTS, ContentMissingError, write_result
from .result import BatchProgress
from .url_file import UrlFileTooLarge, parse_url_file

PROGRAM = "python3 -m tq"

# As client/exit_codes.h. When several apply, the largest wins.
EXIT_OK = 0
EXIT_TASKS_FAILED = 1  # --wait: some dead or cancelled, or unfinished
EXIT_USAGE = 2
EXIT_BAD_LINES = 3  # some lines skipped, the others submitted
EXIT_BROKER = 4  # unreachable, or refused
EXIT_NOT_FOUND = 5
EXIT_OUTPUT = 6  # results --out: a result not written

EXIT_CODES_HELP = """exit codes (when several apply, the largest wins):
  0  everything submitted (with --wait: every task done ok)
  1  --wait: some tasks ended dead or cancelled, or were unfinished at --timeout
  2  usage error or unreadable file
  3  some lines were bad and skipped; the others were submitted
  4  broker unreachable or refused the request
  5  no such batch
  6  --out: a result could not be written"""


def _fail(message: str) -> None:
    print(f"{PROGRAM}: {message}", file=sys.stderr)


def _countries(text: Optional[str]) -> List[str]:
    if not text:
        return [GENERIC_QUEUE]
    queues: List[str] = []
    for item in text.split(","):
        item = item.strip(" \t")
        if not item:
            raise ValueError(f"empty entry in --country '{text}'")
        if item not in queues:
            queues.append(item)
    return queues


def format_eta(seconds: float) -> str:
    """"0:07", "12:34", "1:02:03"; "--:--" when unknown (as tq-submit)."""
    if not seconds >= 0 or seconds > 100 * 3600:
        return "--:--"
    s = math.ceil(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def format_progress_line(p: BatchProgress, rate: float, width: int = 20) -> str:
    """"[########............] 412 done  3 dead / 1000  52.0 tasks/s  ETA
    0:11", as client/progress_line.cc draws it."""
    filled = min(p.finished, p.total) * width // p.total if p.total else 0
    line = f"[{'#' * filled}{'.' * (width - filled)}] {p.done} done  {p.dead} dead"
    if p.cancelled:
        line += f"  {p.cancelled} cancelled"
    rate = rate if math.isfinite(rate) else 0.0
    line += f" / {p.total}  {rate:.1f} tasks/s"
    eta = -1.0
    if p.total and p.finished >= p.total:
        eta = 0.0
    elif rate > 0:
        eta = (p.total - p.finished) / rate
    return line + "  ETA " + format_eta(eta)


class ProgressBar:
    """The progress line on stderr, redrawn in place while results stream;
    drawn only when stderr is a terminal."""

    REDRAW_INTERVAL = 0.1

    def __init__(self, enabled: bool, stdout_shares_terminal: bool) -> None:
        self._enabled = enabled
        self._clear_for_stdout = stdout_shares_terminal
        self._start: Optional[float] = None
        self._base_finished = 0
        self._last_draw = 0.0
        self._visible = False

    def update(self, p: BatchProgress) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if self._start is None:
            self._start, self._base_finished = now, p.finished
        if self._visible and now - self._last_draw < self.REDRAW_INTERVAL and not p.complete:
            return
        elapsed = now - self._start
        rate = (p.finished - self._base_finished) / elapsed if elapsed >= 0.5 else 0.0
        sys.stderr.write("\r" + format_progress_line(p, rate) + "\033[K")
        sys.stderr.flush()
        self._visible, self._last_draw = True, now

    def make_room_for_stdout(self) -> None:
        if self._visible and self._clear_for_stdout:
            self.clear()

    def clear(self) -> None:
        if self._visible:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self._visible = False


def _client(args: argparse.Namespace) -> Client:
    return Client(args.broker, request_timeout=args.request_timeout)


def _write_out(args: argparse.Namespace, result) -> bool:
    try:
        write_result(args.out, result, args.layout)
        return True
    except (OSError, ContentMissingError) as e:
        _fail(str(e))
        return False


def cmd_submit(args: argparse.Namespace) -> int:
    try:
        queues = _countries(args.country)
    except ValueError as e:
        _fail(str(e))
        return EXIT_USAGE
    options = {}
    for kv in args.option:
        key, eq, value = kv.partition("=")
        if not key or not eq:
            _fail(f"--option '{kv}': expected KEY=VALUE")
            return EXIT_USAGE
        options[key] = value

    shown = "<stdin>" if args.file == "-" else args.file
    try:
        if args.file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as f:
                data = f.read()
        parsed = parse_url_file(data)
    except IsADirectoryError:
        _fail(f"cannot read {args.file}: is a directory")
        return EXIT_USAGE
    except OSError as e:
        _fail(f"cannot open {args.file}: {e.strerror}")
        return EXIT_USAGE
    except UrlFileTooLarge as e:
        _fail(f"{shown} {e}; nothing submitted")
        return EXIT_USAGE
    for bad in parsed.bad:
        print(f"{shown}:{bad.line_no}: {bad.reason}", file=sys.stderr)
    exit_code = EXIT_BAD_LINES if parsed.bad else EXIT_OK
    if not parsed.urls:
        _fail(f"no URLs to submit in {shown}")
        return EXIT_USAGE

    # The id is chosen here so a failed submit can say how to resume it.
    batch_id = args.batch_id or new_batch_id()
    try:
        client = _client(args)
    except TqError as e:
        _fail(e.message)
        return EXIT_USAGE
    with client:
        try:
            receipt = client.submit(
                [u.url for u in parsed.urls],
                queues,
                options=options,
                priority=args.priority,
                max_attempts=args.max_attempts,
                time_limit=args.time_limit,
                batch_id=batch_id,
            )
        except TqError as e:
            if not e.from_broker and e.code.name == "INVALID_ARGUMENT":
                _fail(e.message)
                return EXIT_USAGE
            _fail(
                f"submit failed: {e.message} (re-running with --batch-id "
                f"{batch_id} resumes without duplicates)"
            )
            return EXIT_BROKER
        for e in receipt.errors:
            line_no = parsed.urls[e.url_index].line_no
            print(f"{shown}:{line_no}: {e.reason} (queue {e.queue})", file=sys.stderr)
            exit_code = max(exit_code, EXIT_BAD_LINES)
        if args.wait:
            if not args.quiet:
                print(f"batch {receipt.batch_id}: {receipt.held} tasks queued", file=sys.stderr)
        else:
            print(receipt.batch_id, flush=True)
        if not args.quiet:
            print(
                f"submitted {receipt.held} tasks ({receipt.duplicates} duplicates) "
                f"in batch {receipt.batch_id}",
                file=sys.stderr,
            )
        if not args.wait or receipt.held == 0:
            return exit_code
        return max(exit_code, _follow(client, args, receipt.batch_id))


def _follow(client: Client, args: argparse.Namespace, batch_id: str) -> int:
    """Streams the batch's results as JSON lines; the exit code."""
    exit_code = EXIT_OK
    bar = ProgressBar(not args.quiet and sys.stderr.isatty(), sys.stdout.isatty())
    stream = client.results(
        batch_id, timeout=args.timeout, with_files=bool(args.out), on_progress=bar.update
    )
    try:
        for r in stream:
            bar.make_room_for_stdout()
            print(r.to_json_line(), flush=True)
            if args.out and not _write_out(args, r):
                exit_code = max(exit_code, EXIT_TASKS_FAILED)
            if r.state != "done" or not r.ok:
                exit_code = max(exit_code, EXIT_TASKS_FAILED)
    except WaitTimeoutError:
        bar.clear()
        p = stream.progress
        unfinished = p.total - p.finished if p else 0
        total = p.total if p else 0
        _fail(
            f"gave up waiting after {args.timeout:g} s: {unfinished} of {total} "
            "tasks unfinished"
        )
        return max(exit_code, EXIT_TASKS_FAILED)
    except TqError as e:
        bar.clear()
        _fail(f"waiting for results failed: {e.message}")
        return max(exit_code, EXIT_BROKER)
    except KeyboardInterrupt:
        bar.clear()
        raise
    bar.clear()
    p = stream.progress
    if not args.quiet and p is not None:
        print(
            f"batch {batch_id}: {p.done} done, {p.dead} dead, {p.cancelled} "
            f"cancelled of {p.total}",
            file=sys.stderr,
        )
    return exit_code


def _broker_call(fn) -> int:
    try:
        return fn()
    except NotFoundError as e:
        _fail(e.message)
        return EXIT_NOT_FOUND
    except TqError as e:
        _fail(e.message)
        return EXIT_USAGE if e.code.name == "INVALID_ARGUMENT" else EXIT_BROKER


def cmd_results(args: argparse.Namespace) -> int:
    """Every result of the batch so far (like tq-ctl results)."""

    def run() -> int:
        code = EXIT_OK
        with _client(args) as client:
            cursor = 0
            while True:
                page = client.fetch_results(
                    args.batch_id, cursor, with_files=bool(args.out)
                )
                for r in page.results:
                    print(r.to_json_line(), flush=True)
                    if args.out and not _write_out(args, r):
                        code = EXIT_OUTPUT
                if not page.results or page.cursor <= cursor:
                    return code
                cursor = page.cursor

    return _broker_call(run)


def cmd_progress(args: argparse.Namespace) -> int:
    def run() -> int:
        with _client(args) as client:
            p = client.progress(args.batch_id)
        print(json.dumps({"batch_id": args.batch_id, **p.__dict__}, separators=(",", ":")))
        return EXIT_OK

    return _broker_call(run)


def cmd_cancel(args: argparse.Namespace) -> int:
    def run() -> int:
        with _client(args) as client:
            n = client.cancel(args.batch_id)
        print(f"{n} tasks cancelled")
        return EXIT_OK

    return _broker_call(run)


def cmd_retry(args: argparse.Namespace) -> int:
    if (args.batch is None) == (args.queue is None):
        _fail("give either --batch or --queue")
        return EXIT_USAGE

    def run() -> int:
        with _client(args) as client:
            n = client.retry_dead(args.batch, queue=args.queue)
        print(f"{n} dead tasks queued again")
        return EXIT_OK

    return _broker_call(run)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--broker",
        default=os.environ.get(BROKER_ENV_VAR) or DEFAULT_ENDPOINT,
        help=f"broker endpoint (default ${BROKER_ENV_VAR} or {DEFAULT_ENDPOINT})",
    )
    common.add_argument(
        "--request-timeout",
        type=float,
        default=5.0,
        help="seconds to wait for each broker reply (3 attempts; default 5)",
    )
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="The tq client: submit URL batches and follow their results.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "submit",
        parents=[common],
        help="queue a file of URLs as one batch",
        description="Queue every URL of FILE (one per line; '-' for standard "
        "input) as one batch and print its id. With --wait, stream each "
        "result as a JSON line instead.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("file", metavar="FILE")
    s.add_argument("--country", help="comma-separated queues, e.g. IT,IN (default: generic)")
    s.add_argument("--batch-id", help="batch id (1-64 of [A-Za-z0-9._:-]); default random")
    s.add_argument("--priority", type=int, default=0, help="higher runs first within a queue")
    s.add_argument("--max-attempts", type=int, default=0, help="attempts per task (default: broker's)")
    s.add_argument("--time-limit", type=float, help="seconds one attempt may run (default: broker's)")
    s.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="handed to the workers with every task (repeat)")
    s.add_argument("--wait", action="store_true", help="print the results as JSON lines on stdout")
    s.add_argument("--timeout", type=float, help="with --wait, give up after this many seconds")
    s.add_argument("--out", help="with --wait: also write each result and its files under DIR")
    s.add_argument("--layout", choices=LAYOUTS, default="tasks", help="with --out (default tasks)")
    s.add_argument("-q", "--quiet", action="store_true", help="no summary lines on stderr")
    s.set_defaults(run=cmd_submit)

    r = sub.add_parser("results", parents=[common], help="every result of a batch so far, as JSON lines")
    r.add_argument("batch_id", metavar="BATCH")
    r.add_argument("--out", help="also write each result and its files under DIR")
    r.add_argument("--layout", choices=LAYOUTS, default="tasks")
    r.set_defaults(run=cmd_results)

    p = sub.add_parser("progress", parents=[common], help="a batch's task counts, as JSON")
    p.add_argument("batch_id", metavar="BATCH")
    p.set_defaults(run=cmd_progress)

    c = sub.add_parser("cancel", parents=[common], help="cancel a batch's waiting tasks")
    c.add_argument("batch_id", metavar="BATCH")
    c.set_defaults(run=cmd_cancel)

    t = sub.add_parser("retry", parents=[common], help="queue dead tasks again")
    t.add_argument("--batch")
    t.add_argument("--queue")
    t.set_defaults(run=cmd_retry)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "out", None) is not None and args.command == "submit" and not args.wait:
        _fail("--out needs --wait")
        return EXIT_USAGE
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed early (| head): not an error of ours.
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
