"""Reading URL files, one URL per line, as tq-submit reads them
(client/url_file.h): lines end at \\n, \\r\\n or a lone \\r; a UTF-8
byte-order mark is skipped; each line is stripped of spaces and tabs; blank
lines and lines starting with '#' are skipped.

Only the length and the host are handled here: a Unicode host is converted
to its xn-- form with Python's IDNA 2003 codec (tq-submit uses IDNA 2008;
they differ on a few characters such as 'ß'). Everything else is checked by
the broker, whose reasons come back per URL in SubmitReceipt.errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Tuple

MAX_URL_BYTES = 4096
MAX_LINES = 1_000_000
MAX_FILE_BYTES = 256 * 1024 * 1024

_LINE_END = re.compile(rb"\r\n|\r|\n")
_AUTHORITY = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)(.*)\Z", re.S)


@dataclass
class UrlLine:
    line_no: int  # 1-based physical line
    url: str  # as it will be queued


@dataclass
class BadLine:
    line_no: int
    reason: str


@dataclass
class UrlFile:
    urls: List[UrlLine] = field(default_factory=list)
    bad: List[BadLine] = field(default_factory=list)


class UrlFileTooLarge(Exception):
    """The file is over MAX_FILE_BYTES or MAX_LINES; nothing should be
    submitted."""


def _ascii_host(url: str) -> Tuple[str, str]:
    """(url with its host in xn-- form, "") or (url, reason)."""
    if url.isascii():
        return url, ""
    m = _AUTHORITY.match(url)
    if not m:
        return url, "non-ASCII URL that is not absolute (percent-encode it)"
    scheme, authority, rest = m.groups()
    userinfo, at, hostport = authority.rpartition("@")
    host, colon, port = hostport.partition(":")
    if not (userinfo + rest + port).isascii():
        return url, "non-ASCII outside the host (percent-encode it)"
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as e:
        return url, f"host '{host}' is not a valid internationalized domain name: {e}"
    return f"{scheme}{userinfo}{at}{ascii_host}{colon}{port}{rest}", ""


def parse_url_file(data: bytes) -> UrlFile:
    """The URLs and bad lines of a URL file's bytes."""
    if len(data) > MAX_FILE_BYTES:
        raise UrlFileTooLarge(
            f"is larger than the limit of {MAX_FILE_BYTES} bytes (256 MiB)"
        )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = _LINE_END.split(data)
    if lines and lines[-1] == b"":
        lines.pop()  # the end of the last line, not a line
    if len(lines) > MAX_LINES:
        raise UrlFileTooLarge(f"has more than the limit of {MAX_LINES} lines")
    parsed = UrlFile()
    for line_no, raw in enumerate(lines, 1):
        raw = raw.strip(b" \t")
        if not raw or raw.startswith(b"#"):
            continue
        if len(raw) > MAX_URL_BYTES:
            parsed.bad.append(
                BadLine(line_no, f"URL is {len(raw)} bytes long (limit {MAX_URL_BYTES})")
            )
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            parsed.bad.append(BadLine(line_no, f"invalid UTF-8 at column {e.start + 1}"))
            continue
        url, reason = _ascii_host(text)
        if reason:
            parsed.bad.append(BadLine(line_no, reason))
        else:
            parsed.urls.append(UrlLine(line_no, url))
    return parsed
