"""A terminal driver whose input thread sleeps until a key comes.

Textual's LinuxDriver reads keys in a thread that wakes ten times a second whether or not
anything was typed (`select` with a 0.1 s timeout, then the parser's `tick` for a lone Esc
waiting to be told from the start of a sequence). With 100 sleeping children that thread
was 1.0-1.7 ms of proclab's 8.5 ms of CPU a second (per thread, /proc/PID/task/*/stat,
`benchmarks/overhead.py`'s set-up): a monitor idling must not pay for a poll.

This driver's thread blocks in `select` with no timeout, unless the parser holds a partial
sequence: then it waits just until that sequence's time is up. Leaving (quitting, Ctrl+Z)
sets the driver's exit event, which here also writes a byte to a pipe the thread watches.
Everything else is Textual's driver as it is; only its input loop is replaced, kept to the
shape of the original (textual 8.2, `LinuxDriver.run_input_thread`).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
from codecs import getincrementaldecoder
from typing import TYPE_CHECKING, Any

from textual._parser import ParseError
from textual._time import get_time
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

if TYPE_CHECKING:
    from textual.app import App


class _WakingEvent(threading.Event):
    """An Event that, once set, also makes `wake_fd`'s pipe readable."""

    def __init__(self, wake_fd: int) -> None:
        super().__init__()
        self._wake_fd = wake_fd

    def set(self) -> None:
        super().set()
        with contextlib.suppress(OSError):  # full (already woken) or closed
            os.write(self._wake_fd, b"x")


class QuietLinuxDriver(LinuxDriver):
    def __init__(self, app: App[Any], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.exit_event = _WakingEvent(self._wake_write)

    def close(self) -> None:
        super().close()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def run_input_thread(self) -> None:
        """Wait for input (or the exit event) and dispatch events."""
        fileno, wake = self.fileno, self._wake_read
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        with selectors.DefaultSelector() as selector:
            selector.register(fileno, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while not self.exit_event.is_set():
                for key, _mask in selector.select(_until(parser)):
                    if key.fd == wake:
                        with contextlib.suppress(BlockingIOError):
                            os.read(wake, 64)
                    elif text := decode(os.read(fileno, 4096)):
                        for event in parser.feed(text):
                            self.process_message(event)
                    else:  # stdin ended: nothing more to read, nor to wake for
                        selector.unregister(fileno)
                for event in parser.tick():
                    self.process_message(event)
        with contextlib.suppress(EOFError, ParseError):
            for _event in parser.feed(""):
                pass


def _until(parser: XTermParser) -> float | None:
    """How long the input loop may sleep: until the parser's partial sequence (a lone Esc,
    say) times out, or until a key comes if it holds none."""
    due: float | None = parser._timeout_time  # Textual's private field, read only
    return None if due is None else max(0.0, due - get_time())
