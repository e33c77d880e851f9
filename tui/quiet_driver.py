"""A terminal driver whose input thread sleeps until a key comes.

Textual's LinuxDriver reads keys in a thread that wakes ten times a second whether or not
anything was typed (`select` with a 0.1 s timeout, then the parser's `tick` for a lone Esc
waiting to be told from the start of a sequence). With 100 sleeping children that thread
was 1.0-1.7 ms of proclab's 8.5 ms of CPU a second (per thread, /proc/PID/task/*/stat,
`benchmarks/overhead.py`'s set-up): a monitor idling must not pay for a poll.

This driver's thread blocks in `select` with no timeout, unless the parser holds a partial
sequence: then it waits just until that sequence's time is up. Leaving (quitting, Ctrl+Z)
sets the driver's exit event, whose pipe the thread watches: readable while it is set.
Everything else is Textual's driver as it is; only its input loop is replaced, kept to the
shape of the original (textual 8.2, `LinuxDriver.run_input_thread`).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import termios
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
    """An Event whose pipe (`wake_read`, once `open`) is readable exactly while it is set:
    every thread waiting on that pipe wakes, and none takes the wake from another."""

    def __init__(self) -> None:
        super().__init__()
        self.wake_read = self._wake_write = -1

    def open(self) -> None:
        if self.wake_read < 0:
            self.wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            if self.is_set():
                os.write(self._wake_write, b"x")

    def set(self) -> None:
        super().set()
        with contextlib.suppress(OSError):  # full (readable already), or not open
            os.write(self._wake_write, b"x")

    def clear(self) -> None:
        super().clear()
        with contextlib.suppress(OSError):  # drained (BlockingIOError), or not open
            while os.read(self.wake_read, 4096):
                pass

    def close(self) -> None:
        for fd in (self.wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.wake_read = self._wake_write = -1


class QuietLinuxDriver(LinuxDriver):
    def __init__(self, app: App[Any], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.exit_event = self._exit = _WakingEvent()
        self._raw_modes: list[Any] | None = None  # the terminal's, in application mode
        self._wanted = False  # application mode asked for, and not stopped since

    def _get_terminal_size(self) -> tuple[int, int]:
        """The size of the terminal it draws on. Textual's asks stdout's (through shutil),
        which under `proclab >/dev/null 2>&1` is no terminal: the app drew in 80x24 on a
        larger one, and kept to it when the window grew (terminal.py draws on the
        terminal stdin is, then)."""
        screen = self._file
        if screen is not None:
            with contextlib.suppress(ValueError, OSError):
                size = os.get_terminal_size(screen.fileno())
                return size.columns or 80, size.lines or 25
        return super()._get_terminal_size()

    def start_application_mode(self) -> None:
        self._wanted = True
        self._exit.open()  # again after a suspend (Ctrl+Z), which closes the driver
        super().start_application_mode()
        if self._reading():
            with contextlib.suppress(termios.error):
                self._raw_modes = termios.tcgetattr(self.fileno)

    def stop_application_mode(self) -> None:
        self._wanted = False
        super().stop_application_mode()

    def close(self) -> None:
        super().close()
        self._exit.close()

    def _reading(self) -> bool:
        """Whether application mode is up: its key reader runs and is not asked to stop."""
        thread = self._key_thread
        return thread is not None and thread.is_alive() and not self.exit_event.is_set()

    def _sigcont_application(self, *args: Any) -> None:
        # Textual starts application mode again on every SIGCONT, whatever the state: a
        # hung-up terminal sends SIGHUP and SIGCONT unasked. While it was up, that started
        # a second key reader and writer (two readers of one terminal, threads that kept
        # the process from ending); once the app had stopped it, it took the terminal
        # back. Started again here only when it was stopped by SIGTSTP (Ctrl+Z) or stopped
        # the process in the middle of its start (`proclab &`, then `fg`).
        if not self._reading() and (self._wanted or self._must_signal_resume):
            super()._sigcont_application(*args)
        elif self._reading() and self._raw_modes is not None:
            # Up all along (`kill -STOP`, then `fg`): a shell may have set the terminal to
            # its own modes meanwhile.
            with contextlib.suppress(termios.error):  # a terminal gone
                termios.tcsetattr(self.fileno, termios.TCSANOW, self._raw_modes)
        if self._reading():
            # Whatever was printed while it was stopped is drawn over; a same-size Resize
            # repaints only what changed. As App.suspend() does on its way out.
            self._loop.call_soon_threadsafe(lambda: self._app.refresh(layout=True))

    def run_input_thread(self) -> None:
        """Wait for input (or the exit event) and dispatch events."""
        fileno, wake = self.fileno, self._exit.wake_read
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        with selectors.DefaultSelector() as selector:
            selector.register(fileno, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            # Should application mode start again while this thread runs, the thread it
            # starts reads the keys and this one leaves at its next wake.
            me = threading.current_thread()
            while not self.exit_event.is_set() and self._key_thread is me:
                for key, _mask in selector.select(_until(parser)):
                    if key.fd == wake:  # the exit event is set: the loop ends
                        continue
                    if not (data := os.read(fileno, 4096)):
                        selector.unregister(fileno)  # stdin ended: nothing more to read
                        continue
                    # Empty when the read ended inside a character (the rest comes next);
                    # fed empty text, the parser would take it for the end.
                    if text := decode(data):
                        for event in parser.feed(text):
                            self.process_message(event)
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
