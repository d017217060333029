"""Writing results and their files to a directory tree, in the layouts of
``tq-submit --wait --out DIR [--layout tasks|thug]`` (client/result_files.cc).

tasks: DIR/<task-id>/result.json (the JSON line) and DIR/<task-id>/files/<name>.
thug:  as Thug writes its log dir: DIR/<md5(url)>/<YYYYMMDDHHMMSS>/ with the
       result output as analysis/json/analysis.json and the files beside it.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from typing import List, Optional

from .result import TaskResult

LAYOUTS = ("tasks", "thug")


class ContentMissingError(Exception):
    """A result's file came without its content (fetched without files)."""


def _safe_components(name: str) -> List[str]:
    parts = []
    for part in re.split(r"[/\\]", name):
        part = part.replace("\0", "")
        if part and part not in (".", ".."):
            parts.append(part)
    return parts


def safe_relative_path(name: str) -> str:
    """`name` as a relative path that stays inside its directory: no empty,
    "." or ".." components, no leading "/", no NUL; "file" if nothing is
    left."""
    return "/".join(_safe_components(name)) or "file"


def thug_timestamp(wall_ms: int) -> str:
    """Thug's timestamp directory name: YYYYMMDDHHMMSS, UTC."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(wall_ms // 1000))


def thug_dir(out_dir: str, result: TaskResult) -> str:
    """DIR/<md5(url)>/<timestamp>: where the thug layout puts a result."""
    digest = hashlib.md5(result.url.encode("utf-8")).hexdigest()
    return os.path.join(out_dir, digest, thug_timestamp(result.finished_ms))


def _write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def write_result(out_dir: str, result: TaskResult, layout: str = "tasks") -> str:
    """Writes one result and its files under out_dir; returns the result's
    directory. Every file with content is written; then, if some file came
    without content (fetch with_files=True to get it), ContentMissingError.
    OSError says which path failed."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout '{layout}' (tasks or thug)")
    if layout == "tasks":
        base = os.path.join(out_dir, str(result.task_id))
        files_dir = os.path.join(base, "files")
        _write(os.path.join(base, "result.json"), (result.to_json_line() + "\n").encode())
    else:
        base = thug_dir(out_dir, result)
        files_dir = base
    missing: Optional[str] = None
    for f in result.files:
        parts = _safe_components(f.name)
        # Thug names what it saves <md5>/<timestamp>/...: under our own
        # <md5(url)>/<timestamp> that prefix would repeat.
        if layout == "thug" and len(parts) >= 3:
            parts = parts[2:]
        rel = "/".join(parts) or "file"
        if layout == "thug" and rel == "analysis/json/analysis.json":
            continue  # the result output takes its place
        if f.content is None or len(f.content) != f.size:
            missing = missing or f.name
            continue
        _write(os.path.join(files_dir, *rel.split("/")), f.content)
    if layout == "thug":
        _write(os.path.join(base, "analysis", "json", "analysis.json"), result.output)
    if missing is not None:
        raise ContentMissingError(
            f"task {result.task_id}: content of {missing} not available"
        )
    return base
