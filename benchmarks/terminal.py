"""A program in a pseudo-terminal of a given size, its output drained (and counted) so it
never blocks, for the benchmarks that measure a terminal program as a person runs it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import signal
import struct
import termios
import threading
import time
from collections.abc import Sequence

import psutil


class Terminal:
    def __init__(
        self,
        argv: Sequence[str],
        size: tuple[int, int] = (80, 24),
        env: dict[str, str] | None = None,
    ) -> None:
        columns, lines = size
        pid, fd = pty.fork()
        if pid == 0:
            environment = {**os.environ, "TERM": "xterm-256color", **(env or {})}
            os.execvpe(argv[0], list(argv), environment)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        self.started = time.monotonic()
        self.bytes_written = 0
        self.first_seen: dict[bytes, float] = {}
        self._watch: list[bytes] = []
        self._tail = b""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self.process = psutil.Process(pid)

    def watch(self, *needles: bytes) -> None:
        """Note the time each of these byte strings first appears in the output."""
        with self._lock:
            self._watch.extend(needles)

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            now = time.monotonic()
            with self._lock:
                self.bytes_written += len(data)
                window = self._tail + data
                for needle in self._watch:
                    if needle not in self.first_seen and needle in window:
                        self.first_seen[needle] = now
                self._tail = window[-256:]

    def wait_for(self, needle: bytes, timeout: float = 30.0) -> float:
        """Seconds from launch until `needle` was first written."""
        self.watch(needle)
        deadline = time.monotonic() + timeout
        while needle not in self.first_seen:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{needle!r} not seen in {timeout} s")
            time.sleep(0.01)
        return self.first_seen[needle] - self.started

    def send(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def cpu_seconds(self) -> float:
        """CPU time of the program itself (not its children)."""
        times = self.process.cpu_times()
        return times.user + times.system

    def close(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        with contextlib.suppress(OSError):
            os.close(self.fd)
