"""One browser tab of `proclab web`: what its page may say, and how its proclab ends.

textual-serve forwarded whatever a tab's websocket sent, and a tab holding the token could
end its proclab with a bad message (a resize to -5 columns) or print tracebacks on the
server's terminal (`[]`, `notjson`). Only the messages textual.js sends are passed on
here; anything else is ignored.

A tab can also stop reading (a dropped network, a laptop put to sleep). textual-serve's
loop then waited on the tab's websocket for good, so it no longer read the tab's proclab,
which blocked on its full pipe. When the tab closed, textual-serve asked that proclab to
quit through the same loop, and waited for it: the proclab and its children lived on until
`proclab web` itself was stopped. Here the tab's end does not wait on the tab: what its
proclab still draws is read and dropped, it is asked to quit, and it is ended (SIGTERM, then
SIGKILL) if it does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from proclab.core.output import escape_controls

# A tab's terminal size: what a screen can show, at the smallest font a person can read.
# Past it, one frame of the app was megabytes.
MAX_COLUMNS = 1000
MAX_ROWS = 500
DEFAULT_SIZE = (80, 24)
SEND_S = 5.0  # for the quit message to reach a proclab that reads nothing
QUIT_S = 30.0  # for a proclab asked to quit to end its children (their --grace) and exit
KILL_S = 5.0  # for one sent SIGTERM, then SIGKILL

log = logging.getLogger("proclab.web")


def tab_size(width: object, height: object) -> tuple[int, int] | None:
    """A size a tab gave (its page's numbers, or the text of its address), within
    1..MAX_COLUMNS x 1..MAX_ROWS; None if either is not a whole number."""
    sizes = []
    for value, most in ((width, MAX_COLUMNS), (height, MAX_ROWS)):
        if isinstance(value, str) and value.isascii() and value.isdigit():
            digits = value.lstrip("0") or "0"
            # int() of more than 4,300 digits raises: past seven, it is past `most` anyway.
            value = int(digits) if len(digits) <= 7 else most
        if type(value) is not int:  # a bool is an int to isinstance
            return None
        sizes.append(min(max(value, 1), most))
    return sizes[0], sizes[1]


def tab_message(text: str) -> tuple[str, Any] | None:
    """A message from a tab's page as textual.js sends it: ("stdin", bytes), ("resize",
    (columns, rows)), ("ping", text), ("blur", None) or ("focus", None). None for
    anything else, which is ignored."""
    try:
        envelope = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(envelope, list) or not envelope or not isinstance(envelope[0], str):
        return None
    kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
    if kind == "stdin" and isinstance(data, str):
        return kind, data.encode("utf-8", "replace")  # a lone surrogate is valid JSON
    if kind == "resize" and isinstance(data, dict):
        size = tab_size(data.get("width"), data.get("height"))
        return None if size is None else (kind, size)
    if kind == "ping" and isinstance(data, str):
        return kind, data
    if kind in ("blur", "focus"):
        return kind, None
    return None


class LastWords:
    """A tab's proclab's stderr, read for its life; its last few chunks kept, for a line in
    the server's log if it fails."""

    def __init__(self, stream: asyncio.StreamReader | None) -> None:
        self._kept: list[bytes] = []
        self._task = asyncio.create_task(_drain(stream, self._kept)) if stream else None

    async def last_line(self, wait: float) -> str:
        """Its last line ("" for none), once its stream has ended (or `wait`); the log
        escapes it (OneLine)."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), wait)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        lines = b"".join(self._kept).decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else ""


async def end_tab(
    process: asyncio.subprocess.Process, quit: Callable[[], Awaitable[object]], said: LastWords
) -> None:
    """Ask a tab's proclab to quit, reading and dropping whatever it still draws, and end
    it if it does not. Said in the server's log: a proclab that had to be signalled, and
    the last line of one that failed. Cancelled meanwhile (proclab web stopping at once),
    it still leaves no proclab running."""
    drain = asyncio.create_task(_drain(process.stdout, None)) if process.stdout else None
    try:
        # Its stdin closed or full: it has ended, or reads nothing; the signals follow.
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(quit(), SEND_S)
        steps = (
            (None, QUIT_S, ""),
            ("SIGTERM", KILL_S, f"{QUIT_S:g} s after its tab closed"),
            ("SIGKILL", KILL_S, f"{KILL_S:g} s after SIGTERM"),
        )
        for signal_name, wait, since in steps:
            if signal_name is not None:
                log.warning(
                    f"a tab's proclab (pid {process.pid}) had not ended {since}: sent {signal_name}"
                )
                _send(process, getattr(signal, signal_name))
            with contextlib.suppress(TimeoutError):
                # Not process.wait(), which also waits for its pipes to close: a child it
                # left holding one would hold this tab's end too.
                await asyncio.wait_for(_ended(process), wait)
                break
    finally:
        if process.returncode is None:
            _send(process, signal.SIGKILL)
        if drain is not None:
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)
    last = await said.last_line(KILL_S)
    if process.returncode and last:
        log.warning(f"a tab's proclab ended with status {process.returncode}: {last}")


def _send(process: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)


async def _ended(process: asyncio.subprocess.Process) -> None:
    """Until it has ended: its status is known (asyncio's child watcher reaped it)."""
    while process.returncode is None:
        await asyncio.sleep(0.05)


async def _drain(stream: asyncio.StreamReader, keep: list[bytes] | None) -> None:
    """Read `stream` to its end; its last few chunks kept in `keep`."""
    while chunk := await stream.read(65536):
        if keep is not None:
            keep[:] = [*keep[-3:], chunk]


class OneLine(logging.Formatter):
    """A log record in one line, escaped: aiohttp logs a request it cannot parse (no Host,
    a 100 KB header, a control character) with a traceback and its locals, and every
    request line with the token in it."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        error = getattr(record, "error_said", "") or _error_said(record)
        if error:
            text += f" ({error})"
        held = getattr(record, "held", 0)
        if held:
            text += f" ({held} more like it since the last one shown, held back)"
        return "proclab web: " + escape_controls(text, tabs=True)


def _error_said(record: logging.LogRecord) -> str:
    error = record.exc_info[1] if record.exc_info else None
    return f"{type(error).__name__}: {error}" if error is not None else ""


class OncePerSecond(logging.Filter):
    """The same complaint (by its message's template and error) at most once a second,
    with a count of those held back: out of file descriptors, asyncio logs every accept
    it cannot make, 6,892 lines in a tester's run, as `serve`'s log says it once a second."""

    def __init__(self, every: float = 1.0) -> None:
        super().__init__()
        self.every = every
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}
        self._last_held: dict[tuple[str, str], logging.LogRecord] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        key = (str(record.msg), type(error).__name__ if error is not None else "")
        now = time.monotonic()
        if now - self._last.get(key, -self.every) < self.every:
            self._held[key] = self._held.get(key, 0) + 1
            # Its words, not its exception: that holds a traceback and every frame's
            # locals (a transport, its socket), kept for as long as nothing follows
            kept = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
            kept.error_said = _error_said(record)
            self._last_held[key] = kept
            return False
        if len(self._last) > KINDS_KEPT:  # messages made whole, each its own: forgotten
            self._last.clear()
        self._last[key] = now
        record.held = self._held.pop(key, 0)
        self._last_held.pop(key, None)
        return True

    def held_back(self) -> list[logging.LogRecord]:
        """The last complaint of each kind held back since its last line, counting the
        others held with it: a burst that nothing followed was never said."""
        records = []
        for key, record in self._last_held.items():
            record.held = self._held.pop(key) - 1  # the others: it is shown itself
            records.append(record)
        self._last_held.clear()
        return records


class SaysHeldBack(logging.StreamHandler):
    """A stream handler that, as the log closes (proclab web ending), says what its
    OncePerSecond filters still hold back."""

    def close(self) -> None:
        for spaced in self.filters:
            if isinstance(spaced, OncePerSecond):
                for record in spaced.held_back():
                    self.emit(record)  # not handle(): its filter would hold it again
        super().close()


KINDS_KEPT = 1000


def quiet_logging() -> None:
    """Warnings and errors only, one line each, the same one at most once a second: not
    aiohttp's line per request (which holds the token), nor textual-serve's tracebacks
    with their locals."""
    handler = SaysHeldBack()
    handler.setFormatter(OneLine())
    handler.addFilter(OncePerSecond())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
