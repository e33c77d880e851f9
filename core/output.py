"""Children's output: bytes from a pipe into lines, tracebacks picked out of stderr, and
text made safe to show on a terminal."""

from __future__ import annotations

import re

# A child that never prints a newline still gets its output shown, in pieces this long.
MAX_LINE_BYTES = 16 * 1024
MAX_TRACEBACK_LINES = 200


# What a terminal acts on instead of showing: the C0 controls (ESC starts CSI, OSC, DCS…
# sequences; BEL, BS, CR, FF move or beep), DEL, and the C1 controls U+0080-U+009F (a
# terminal may take U+009B as CSI and U+009D as OSC). Also the invisible marks that reorder
# text (bidirectional overrides, isolates and marks) and the line and paragraph
# separators; and the characters that show nothing (a zero-width space, a byte-order mark,
# word joiners, tags), which made two different lines look the same. Not the zero-width
# joiners, which emoji and scripts need. And lone surrogates, which is what Python makes
# of a byte that is not UTF-8 in a file name, a folder or an argument (os.fsdecode): no
# terminal can be sent one, and Textual's writer thread died on the first, which froze
# the app for good.
_CONTROL_CHARS = (
    "\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028\u2029\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff\ud800-\udfff\U000e0000-\U000e007f"
)
# Compiled when first needed, not on import: compiling the three patterns of this module
# took 2.2 ms in every spawn child (a TCP handler escapes nothing: proclab makes the
# previews of its chunks).
_controls: dict[bool, re.Pattern[str]] = {}  # tabs too -> the pattern
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def escape_controls(text: str, *, tabs: bool = False) -> str:
    """`text` as a terminal should show it: every character that would act on the
    terminal (move the cursor, clear the screen, set its title, reorder the line) written
    out visibly, as `\\x1b`, `\\n`, `\\u202e`. The one place bytes from children,
    clients, files and recordings are made safe to show. `tabs`: escape tabs too (for
    text that must stay one short line); otherwise a tab is left to move to its stop."""
    if text.isprintable():  # a C scan: every character above is unprintable to Python
        return text
    return _control_pattern(tabs).sub(_escaped, text)


def on_screen(text: str) -> str:
    """escape_controls for a full-screen view, each tab spaced out to its next stop of 8
    (from the text's own start, as the child's terminal would): such a view draws cells,
    and a tab sent as it is moved the terminal's cursor over cells other panes had drawn
    (the process table's headings showed through a child's tabbed line). Headless output
    keeps its tabs: a terminal or a file takes them as they are."""
    return escape_controls(text).expandtabs(8)


def _control_pattern(tabs: bool) -> re.Pattern[str]:
    """What escape_controls escapes, compiled once per process."""
    pattern = _controls.get(tabs)
    if pattern is None:
        tab = "\t" if tabs else ""
        pattern = _controls[tabs] = re.compile(f"[{tab}{_CONTROL_CHARS}]")
    return pattern


class LineSplitter:
    """Splits a byte stream at newlines. Bytes are kept until a line is complete, so a
    multibyte character split across two reads still decodes as one character. A line
    longer than MAX_LINE_BYTES comes in pieces, and `continuing` tells which pieces go on
    from the one before: shown as lines of their own, unmarked, they read as lines the
    child printed."""

    __slots__ = ("_cut", "_partial", "continuing")

    def __init__(self) -> None:
        self._partial = b""
        self._cut = False  # the last line handed out was a piece of a longer one
        # Indices, in the list the last feed() or flush() returned, of the pieces that
        # continue the line before them: empty but for lines past MAX_LINE_BYTES.
        self.continuing: tuple[int, ...] = ()

    def feed(self, data: bytes) -> list[str]:
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        cut = self._cut
        continuing: tuple[int, ...] = ()
        # A whole line past the limit comes in pieces too (one of 60,000 bytes written
        # at once came whole). Looked for only in a read that could hold one.
        if lines and _has_long_line(data, len(data) - len(self._partial) - 1):
            out: list[str] = []
            for line in lines:
                while len(line) > MAX_LINE_BYTES:
                    piece, line = _split_utf8(line, MAX_LINE_BYTES)
                    if cut:
                        continuing += (len(out),)
                    out.append(_decode(piece))
                    cut = True
                if cut:  # the end of a line cut before
                    continuing += (len(out),)
                out.append(_decode(line))
                cut = False
        else:
            out = [_decode(line) for line in lines]
            if cut and out:  # the end of the line cut last time
                continuing, cut = (0,), False
        while len(self._partial) > MAX_LINE_BYTES:
            piece, self._partial = _split_utf8(self._partial, MAX_LINE_BYTES)
            if cut:
                continuing += (len(out),)
            out.append(_decode(piece))
            cut = True
        self._cut, self.continuing = cut, continuing
        return out

    @property
    def holding(self) -> bool:
        """Whether it holds the start of a line whose end has not come yet."""
        return bool(self._partial)

    def flush(self) -> list[str]:
        rest, self._partial = self._partial, b""
        self.continuing = (0,) if rest and self._cut else ()
        self._cut = False
        return [_decode(rest)] if rest else []


def _has_long_line(data: bytes, end: int) -> bool:
    """Whether `data` holds a line past MAX_LINE_BYTES before `end` (its last newline): a
    window's last newline at a time, a few memrchr's a read. Measuring every line took
    19 ns a line, 16 % of a flood's feed (46 us of 64 KiB of short lines, timeit)."""
    start = 0
    while end - start > MAX_LINE_BYTES:
        newline = data.rfind(b"\n", start, start + MAX_LINE_BYTES + 1)
        if newline < 0:
            return True
        start = newline + 1
    return False


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

    __slots__ = ("_bare", "_current", "error", "traceback")

    def __init__(self) -> None:
        self._current: list[str] | None = None
        self.traceback: tuple[str, ...] = ()
        self.error: str | None = None  # the last line of the last traceback
        self._bare = False  # that line had no message after its colon: it may follow

    def feed(self, line: str) -> bool:
        """Returns True when a complete traceback has just been read (and again when the
        line after one whose message began with a newline has given it)."""
        if self._bare:
            self._bare = False
            if line.strip() and not line.startswith("Traceback (most recent call last):"):
                # `RuntimeError("\nboom")` prints "RuntimeError: ", then "boom"
                self.traceback += (line,)
                self.error = f"{self.error} {line.strip()}" if self.error else line.strip()
                return True
        if line.startswith("Traceback (most recent call last):"):
            if self._current is None:
                self._current = []
            self._current.append(line)
            return False
        if self._current is None:
            return False
        kept = len(self._current) < MAX_TRACEBACK_LINES
        if kept:
            self._current.append(line)
        if not line or line[0].isspace() or line.startswith(_CHAIN) or line.startswith("^"):
            return False
        if _EXCEPTION_LINE.match(line):
            if not kept:  # past the cap: its exception line still ends it
                self._current.append(line)
            self.traceback = tuple(self._current)
            self.error = line.rstrip()
            # "RuntimeError:" alone, not "ValueError: expected one of:"
            self._bare = self.error.endswith(":") and ":" not in self.error[:-1]
            self._current = None
            return True
        return False
