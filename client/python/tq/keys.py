"""CURVE key files as tq-keygen writes them (ZeroMQ's certificate format).

    broker_public, _ = tq.load_key_file("/etc/tq/broker.key")
    key = tq.load_key_file("/home/me/.tq/ops.key_secret")
    client = tq.Client(endpoint, broker_key=broker_public, key=key)
"""

from __future__ import annotations

import re
from typing import Optional, Tuple

_ENTRY = re.compile(r'^\s+(public-key|secret-key)\s*=\s*"([^"]{40})"\s*$')


def load_key_file(path: str) -> Tuple[str, Optional[str]]:
    """(public key, secret key or None) in Z85 from a NAME.key or
    NAME.key_secret file. ValueError names the file when it holds no
    public key."""
    public: Optional[str] = None
    secret: Optional[str] = None
    in_curve = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line[0].isspace():
                in_curve = line.strip() == "curve"
                continue
            m = _ENTRY.match(line.rstrip("\n"))
            if in_curve and m:
                if m.group(1) == "public-key":
                    public = m.group(2)
                else:
                    secret = m.group(2)
    if public is None:
        raise ValueError(f"{path}: no curve public-key (not a tq-keygen key file?)")
    return public, secret
