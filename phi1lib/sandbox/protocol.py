"""The frames the pool and a zygote exchange over pipes: a 4-byte length, then JSON.

Introduced in chapter 2 ("Executing the textbooks").
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

_HEADER = struct.Struct(">I")


def read_frame(stream: BinaryIO) -> Any:
    """One frame, or None at the end of the stream (the other side has gone)."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    return json.loads(body)


def write_frame(stream: BinaryIO, payload: Any) -> None:
    body = json.dumps(payload).encode()
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()
