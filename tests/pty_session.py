"""Run proclab in a real pseudo-terminal, as a person at a terminal would, and record
every byte it writes to that terminal."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

PROCLAB = str(Path(sys.executable).with_name("proclab"))


class PtySession:
    def __init__(
        self,
        args: Sequence[str],
        size: tuple[int, int] = (80, 24),
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        redirect: dict[int, str] | None = None,
    ) -> None:
        """`redirect`: fds of proclab's to open on a file instead of the terminal, as a
        shell's `2>/dev/null` does."""
        columns, lines = size
        pid, fd = pty.fork()
        if pid == 0:  # the child: becomes proclab, with the pty as its terminal
            if cwd:
                os.chdir(cwd)
            for number, path in (redirect or {}).items():
                os.dup2(os.open(path, os.O_RDWR), number)
            environment = {
                **os.environ,
                "TERM": "xterm-256color",
                "COLUMNS": str(columns),
                "LINES": str(lines),
                **(env or {}),
            }
            environment.pop("TEXTUAL", None)
            os.execve(PROCLAB, [PROCLAB, *args], environment)
        self.pid = pid
        self.fd = fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.returncode: int | None = None

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self._chunks.append(data)

    @property
    def output(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)

    def send(self, keys: str | bytes, pause: float = 0.3) -> None:
        os.write(self.fd, keys.encode() if isinstance(keys, str) else keys)
        time.sleep(pause)

    def wait_for(self, needle: bytes, timeout: float = 45.0) -> None:
        # Generous for a loaded machine (a child's SIGTERM, reaping and the redraw that
        # shows it took over 20 s at load 25); a test that promises a time measures it.
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            if time.monotonic() > deadline or not self.running():
                raise AssertionError(
                    f"{needle!r} never appeared; processes below: {self._described()};"
                    f" last output: {self.output[-600:]!r}"
                )
            time.sleep(0.05)

    def _described(self) -> str:
        """Each process below the session's, for a failure to tell what still ran."""
        described = []
        for process in self.descendants():
            with contextlib.suppress(psutil.Error):
                described.append(f"{process.pid} {process.status()} {process.name()}")
        return ", ".join(described) or "none"

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def running(self) -> bool:
        if self.returncode is not None:
            return False
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return True
        self.returncode = os.waitstatus_to_exitcode(status)
        return False

    def wait(self, timeout: float = 60.0) -> int:
        # Generous: on a loaded machine an app's exit (its children's grace, Textual's
        # teardown, the interpreter's) has taken over 20 s. Tests that promise an exit
        # time pass their own timeout, or measure it.
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline:
                raise AssertionError("proclab did not exit")
            time.sleep(0.05)
        assert self.returncode is not None
        return self.returncode

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def hang_up(self) -> None:
        """The terminal goes away (a closed ssh session, a killed tmux): its master side
        closes, and the kernel hangs up its session."""
        os.close(self.fd)
        self.fd = -1  # closed once: the number may be another file's by now

    def close(self) -> None:
        if self.running():
            with contextlib.suppress(OSError, AssertionError):
                os.kill(self.pid, signal.SIGKILL)
                self.wait(5)
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self._reader.join(timeout=2)


def quit_once(
    args: Sequence[str], shown: bytes, size: tuple[int, int] = (80, 24)
) -> tuple[int, bytes]:
    """proclab on a terminal with `args`, quit with q once `shown` is on the screen: its
    exit status, and every byte it wrote to the terminal."""
    session = PtySession(args, size=size)
    try:
        session.wait_for(shown)
        session.send("q")
        return session.wait(), session.output
    finally:
        session.close()


def gone(
    processes: Sequence[psutil.Process],
    timeout: float = 5.0,
    reaped: dict[int, int] | None = None,
) -> list[psutil.Process]:
    """The processes not gone after up to `timeout` seconds. A zombie is not gone: it is
    left over until its parent reaps it. One whose parent is this test process (an orphan
    re-parented to it: conftest makes it a subreaper) is reaped here, by pid, as init would
    reap it; its exit code (as Popen.returncode gives it) goes into `reaped`."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in processes if _left(p, reaped)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _left(process: psutil.Process, reaped: dict[int, int] | None) -> bool:
    try:
        if not process.is_running():  # its pid now names another process
            return False
        if process.status() != psutil.STATUS_ZOMBIE or process.ppid() != os.getpid():
            return True
        pid, status = os.waitpid(process.pid, os.WNOHANG)
    except (psutil.NoSuchProcess, ChildProcessError):
        return False
    if pid == 0:
        return True
    if reaped is not None:
        reaped[pid] = os.waitstatus_to_exitcode(status)
    return False


class Deaths:
    """When each of some processes ended, on this machine's monotonic clock: a thread
    waits on a pidfd of each, which the kernel makes readable the moment the process
    ends (before anyone reaps it), whoever its parent is."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.at: dict[int, float] = {}
        self._fds: dict[int, int] = {}
        for pid in pids:
            try:
                self._fds[os.pidfd_open(pid)] = pid
            except ProcessLookupError:
                self.at[pid] = time.monotonic()  # already over: no later than now
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while self._fds:
            ready, _, _ = select.select([*self._fds, self._stop_r], [], [])
            now = time.monotonic()
            if self._stop_r in ready:
                return
            for fd in ready:
                self.at[self._fds.pop(fd)] = now
                os.close(fd)

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=5)
        for fd in (*self._fds, self._stop_r, self._stop_w):
            os.close(fd)
        self._fds.clear()
