"""Children's output: bytes from a pipe into lines, and tracebacks picked out of stderr."""

from __future__ import annotations

import re

# A child that never prints a newline still gets its output shown, in pieces this long.
MAX_LINE_BYTES = 16 * 1024
MAX_TRACEBACK_LINES = 200


class LineSplitter:
    """Splits a byte stream at newlines. Bytes are kept until a line is complete, so a
    multibyte character split across two reads still decodes as one character."""

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[str]:
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        out = [_decode(line) for line in lines]
        while len(self._partial) > MAX_LINE_BYTES:
            piece, self._partial = _split_utf8(self._partial, MAX_LINE_BYTES)
            out.append(_decode(piece))
        return out

    def flush(self) -> list[str]:
        rest, self._partial = self._partial, b""
        return [_decode(rest)] if rest else []


def _decode(line: bytes) -> str:
    return line.removesuffix(b"\r").decode("utf-8", errors="replace")


def _split_utf8(data: bytes, limit: int) -> tuple[bytes, bytes]:
    """Cut at most `limit` bytes without cutting a UTF-8 character in two."""
    cut = limit
    while cut > limit - 4 and cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return data[:cut], data[cut:]


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(:|$)")
_CHAIN = ("During handling of the above exception", "The above exception was the direct cause")


class TracebackCollector:
    """Watches a child's stderr lines and keeps the last Python traceback it printed."""

    __slots__ = ("_current", "error", "traceback")

    def __init__(self) -> None:
        self._current: list[str] | None = None
        self.traceback: tuple[str, ...] = ()
        self.error: str | None = None  # the last line of the last traceback

    def feed(self, line: str) -> bool:
        """Returns True when a complete traceback has just been read."""
        if line.startswith("Traceback (most recent call last):"):
            if self._current is None:
                self._current = []
            self._current.append(line)
            return False
        if self._current is None:
            return False
        if len(self._current) < MAX_TRACEBACK_LINES:
            self._current.append(line)
        if not line or line[0].isspace() or line.startswith(_CHAIN) or line.startswith("^"):
            return False
        if _EXCEPTION_LINE.match(line):
            self.traceback = tuple(self._current)
            self.error = line
            self._current = None
            return True
        return False
