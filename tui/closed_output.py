"""A headless command's stdout or stderr that can no longer be written.

`proclab run … | head -2`: the reader goes away and every later write fails with
BrokenPipeError, in whichever thread prints (children's lines are printed from the
controller's threads). Unix tools die of SIGPIPE there, quietly. proclab ignores SIGPIPE
(Python does, and its TCP server must: a client that resets its connection would stop
it), so `guard_output` does the same at the one place every print goes through: the
streams themselves. The first write that fails silences that stream (its fd then points
at /dev/null, so nothing buffered fails again at exit), says nothing for a closed pipe and
one line for any other error (a full disk), and tells whoever listens (`on_closed`): the
command then stops as on SIGTERM, ending its children. The command exits with
CLOSED_STATUS, what a shell shows for a tool ended by SIGPIPE, for a reader gone, and
with 1 for a stream that failed otherwise (a full disk is an error, not a reader gone).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from proclab.core.model import Notice

CLOSED_STATUS = 128 + signal.SIGPIPE

_lock = threading.Lock()
_listeners: list[Callable[[], None]] = []
_closed: list[str] = []  # the names of the streams that failed
_errors: list[str] = []  # of them, those that failed otherwise than by a reader gone


class _Guarded:
    """A text stream whose failed writes silence it instead of raising."""

    def __init__(self, stream: TextIO, name: str, prog: str) -> None:
        self._stream = stream
        self._name = name
        self._prog = prog
        self._silent = False

    def write(self, text: str) -> int:
        if not self._silent:
            try:
                return self._stream.write(text)
            except OSError as exc:
                self._failed(exc)
        return len(text)

    def write_whole(self, text: str) -> None:
        """`text` written whole, through the fd: a signal that came while a buffered write
        waited on a full pipe (Ctrl+C while the reader had stopped) lost the rest of a
        large write, without a word (CPython's BufferedWriter; 705 lines of 6,000 were
        left). os.write tells what it wrote; this writes the rest."""
        if self._silent:
            return
        try:
            fd = self._stream.fileno()
        except (OSError, ValueError):  # no fd (a test's capture), or closed
            self.write(text)
            self.flush()
            return
        # As the stream would have said it: what its encoding cannot, escaped.
        data = memoryview(text.encode(self._stream.encoding or "utf-8", "backslashreplace"))
        try:
            self._stream.flush()
            while data:
                data = data[os.write(fd, data) :]
        except OSError as exc:
            self._failed(exc)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self._silent:
            try:
                self._stream.flush()
            except OSError as exc:
                self._failed(exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _failed(self, exc: OSError) -> None:
        with _lock:
            if self._silent:
                return
            self._silent = True
            _closed.append(self._name)
            listeners = list(_listeners)
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        if not isinstance(exc, BrokenPipeError):
            _errors.append(self._name)
            reason = exc.strerror or type(exc).__name__
            terminal = sys.__stderr__
            with contextlib.suppress(OSError, ValueError):
                if terminal is not None:
                    terminal.write(f"{self._prog}: cannot write to {self._name}: {reason}\n")
                    terminal.flush()
        for listener in listeners:
            listener()


@contextlib.contextmanager
def guard_output(prog: str) -> Iterator[Callable[[], int | None]]:
    """While inside, sys.stdout and sys.stderr are guarded; yields a function that gives
    the exit status a failed one calls for (None: neither failed)."""
    saved = sys.stdout, sys.stderr
    _closed.clear()
    _errors.clear()
    sys.stdout = _Guarded(sys.stdout, "stdout", prog)
    sys.stderr = _Guarded(sys.stderr, "stderr", prog)
    try:
        yield lambda: (1 if _errors else CLOSED_STATUS) if _closed else None
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = saved


def write_whole(text: str) -> None:
    """`text` to stdout whole (see _Guarded.write_whole), where it is guarded."""
    stream = sys.stdout
    if isinstance(stream, _Guarded):
        stream.write_whole(text)
    else:
        stream.write(text)
        stream.flush()


def unsaid(notice: Notice) -> bool:
    """Whether a headless command keeps this notice to itself: once a guarded stream's
    reader went away (`| head -2`, not a full disk), ending the children is what was asked,
    and Unix tools end quietly on SIGPIPE. A warning (a child that needed SIGKILL) is
    still said."""
    return notice.level == "info" and bool(_closed) and not _errors


def reopen_missing() -> tuple[str, ...]:
    """The standard streams closed when proclab started (`proclab run … >&-`), each given
    /dev/null. Python leaves such a stream None (a print raised AttributeError), and the
    next fd proclab opened (a child's pipe, a socket) would take its number and be
    written to as if it were the terminal."""
    missing = []
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free fd: this one, or below
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            missing.append(name)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is None:
            stream = open(fd, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
            setattr(sys, name, stream)
    return tuple(missing)


def on_closed(listener: Callable[[], None]) -> Callable[[], None]:
    """Call `listener` (from the thread that wrote) when a guarded stream fails, at once
    if one already has; returns what stops listening."""
    with _lock:
        _listeners.append(listener)
        already = bool(_closed)
    if already:
        listener()

    def stop() -> None:
        with _lock, contextlib.suppress(ValueError):
            _listeners.remove(listener)

    return stop
