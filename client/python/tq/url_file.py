"""Reading URL files, one URL per line, as tq-submit reads them
(client/url_file.h): lines end at \\n, \\r\\n or a lone \\r; a UTF-8
byte-order mark is skipped; each line is stripped of spaces and tabs; blank
lines and lines starting with '#' are skipped.

Every other line must pass normalize_url, a Python rendering of
common/url_check.h, so that the same file gives the same item indexes (and
so the same dedup keys) as in tq-submit. Two differences: a Unicode host is
converted with Python's IDNA 2003 codec (tq-submit uses IDNA 2008; they
differ on a few characters such as 'ß'), and a syntax error's column may be
counted differently. The broker checks every URL again; what it refuses
comes back per URL in SubmitReceipt.errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Tuple

MAX_URL_BYTES = 4096
MAX_LINES = 1_000_000
MAX_FILE_BYTES = 256 * 1024 * 1024

_LINE_END = re.compile(rb"\r\n|\r|\n")


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


# RFC 3986: what may appear outside an IP literal host (no brackets), and
# in the fragment (no second '#').
_URI_CHAR = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?#%]")
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# Where IDNA 2008 nontransitional (tq-submit) and Python's IDNA 2003 codec
# disagree: refused rather than converted to a different host.
_DEVIATIONS = {"\u00df": "\u00df", "\u03c2": "\u03c2", "\u200c": "ZWNJ", "\u200d": "ZWJ"}


def _syntax_error(column: int) -> str:
    return f"not a valid URL (syntax error at column {column})"


def _host_span(url: str) -> Tuple[int, int]:
    """Where the host of "scheme://[userinfo@]host[:port]..." lies; (0, 0)
    when there is no authority or the host is an IP literal."""
    m = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", url)
    if not m:
        return 0, 0
    authority = m.end()
    end = len(url)
    for sep in "/?#":
        i = url.find(sep, authority)
        if i != -1:
            end = min(end, i)
    at = url.rfind("@", authority, end)
    begin = authority if at == -1 else at + 1
    if begin < end and url[begin] == "[":
        return 0, 0
    colon = url.find(":", begin, end)
    return begin, end if colon == -1 else colon


def _check_characters(url: str) -> str:
    for i, c in enumerate(url):
        if ord(c) < 0x20 or ord(c) == 0x7F:
            return f"control character at column {i + 1}"
        if c == " ":
            return f"space at column {i + 1}"
    return ""


def _check_structure(url: str) -> str:
    """Syntax, scheme, host and port of an ASCII URL without spaces.
    Columns are 1-based, as uriparser counts them for tq-submit."""
    m = _SCHEME.match(url)
    authority_begin = authority_end = -1
    if m and url.startswith("//", m.end()):
        authority_begin = m.end() + 2
        found = [url.find(c, authority_begin) for c in "/?#"]
        authority_end = min([i for i in found if i != -1], default=len(url))
    hash_at = url.find("#")
    i = 0
    while i < len(url):
        c = url[i]
        if c == "%":
            if not _PCT.match(url, i):
                return _syntax_error(i + 2)
            i += 3
            continue
        in_authority = authority_begin <= i < authority_end
        if c in "[]" and in_authority:
            i += 1
            continue
        if not _URI_CHAR.match(c) or (c == "#" and i != hash_at):
            return _syntax_error(i + 1)
        i += 1
    if not m:
        return "not an absolute URL (no scheme; expected http:// or https://)"
    scheme = m.group(1).lower()
    if scheme not in ("http", "https"):
        return f"scheme '{scheme}' is not http or https"
    if authority_begin < 0:
        return "URL has no host"
    hostport = url[authority_begin:authority_end].rpartition("@")[2]
    # A malformed host or port is seen where the authority ends.
    bad_authority = _syntax_error(authority_end + 1)
    if hostport.startswith("["):
        close = hostport.find("]")
        if close == -1:
            return bad_authority
        host, port = hostport[: close + 1], hostport[close + 1 :]
        if port and not port.startswith(":"):
            return bad_authority
        port = port[1:]
    else:
        if "[" in hostport or "]" in hostport:
            return bad_authority
        host, _, port = hostport.partition(":")
    if port and not port.isdigit():
        return bad_authority
    if not host:
        return "URL has no host"
    if port and (int(port) == 0 or int(port) > 65535):
        return f"port {port} is out of range (1-65535)"
    return ""


def normalize_url(url: str, max_bytes: int = MAX_URL_BYTES) -> Tuple[str, str]:
    """(the URL as it should be queued, "") or (url, why it is refused).

    As common/url_check.h: an absolute http(s) URL with a host, at most
    max_bytes long, ASCII but for a host in Unicode (converted to its xn--
    form), no spaces or control characters, a port in 1-65535. The reasons
    read as tq-submit's; the broker checks again."""
    size = len(url.encode("utf-8", "surrogatepass"))
    if not url:
        return url, "empty URL"
    if size > max_bytes:
        return url, f"URL is {size} bytes long (limit {max_bytes})"
    reason = _check_characters(url)
    if reason:
        return url, reason
    if url.isascii():
        return url, _check_structure(url)
    begin, end = _host_span(url)
    for i, c in enumerate(url):
        if ord(c) >= 0x80 and not begin <= i < end:
            column = len(url[:i].encode("utf-8")) + 1
            return url, (
                f"non-ASCII byte at column {column} (only the host may be "
                "non-ASCII; percent-encode the rest)"
            )
    host = url[begin:end]
    # Check the rest with a stand-in host, then convert the host.
    reason = _check_structure(url[:begin] + "x" * len(host) + url[end:])
    if reason:
        return url, reason
    for c, shown in _DEVIATIONS.items():
        if c in host:
            return url, (
                f"host '{host}' has {shown}, which IDNA 2003 and 2008 convert "
                "differently; give the host in its xn-- form"
            )
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as e:
        return url, f"host '{host}' is not a valid internationalized domain name: {e}"
    if not re.fullmatch(r"[A-Za-z0-9.-]+", ascii_host):
        return url, (
            f"host '{host}' is not a valid internationalized domain name: it "
            f"maps to '{ascii_host}', not letters, digits, '-' and '.'"
        )
    converted = url[:begin] + ascii_host + url[end:]
    if len(converted) > max_bytes:
        return url, (
            f"URL is {len(converted)} bytes long with its host in xn-- form "
            f"(limit {max_bytes})"
        )
    return converted, ""


def _scheme_hint(text: str) -> str:
    """' (did you mean http://127.0.0.1:8766/a.html?)' for a line that lacks
    only its scheme, else '' (client/url_file.cc: SchemeHint)."""
    if "://" in text:
        return ""
    # "mailto:x" or "http:/x" name a scheme already; "host:8080/" does not.
    colon = text.find(":")
    if colon != -1 and colon + 1 < len(text) and text[colon + 1] not in "0123456789":
        return ""
    # Only what looks like a host: a dot or a port before the path.
    host = text.split("/", 1)[0]
    if "." not in host and ":" not in host:
        return ""
    fixed, reason = normalize_url("http://" + text)
    if reason:
        return ""
    return f" (did you mean {fixed}?)"


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
        url, reason = normalize_url(text)
        if reason:
            parsed.bad.append(BadLine(line_no, reason + _scheme_hint(text)))
        else:
            parsed.urls.append(UrlLine(line_no, url))
    return parsed
