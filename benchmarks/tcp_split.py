"""Where a process-per-connection server's CPU goes: its own (every thread) and its
children's, per connection, with connections made one at a time (no contention between
them). Read from /proc/PID/stat: utime+stime, and cutime+cstime of the children it
reaped.

    python benchmarks/tcp_split.py [--method fork] [--connections 300]
        [--before DIR]   (also proclab from an older tree, as in tcp.py)
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import psutil
from tcp import PROCLAB, REFERENCE, free_port

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")


def stat_fields(pid: int | str) -> list[str]:
    """/proc/PID/stat's fields after the command name (fields[0] is the state); `pid`
    may be a thread's path below /proc too ("self/task/TID")."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _times(pid: int) -> tuple[float, float]:
    """(utime + stime, cutime + cstime) of one process, in seconds."""
    fields = stat_fields(pid)
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return own, (int(fields[13]) + int(fields[14])) / CLOCK_TICKS


def own_and_children(pid: int) -> tuple[float, float]:
    """The server's own CPU, and its whole tree's besides: the children it reaped, and
    those still alive with what they reaped (proclab's server process reaps the
    handlers, and is reaped only when the server stops)."""
    own, reaped = _times(pid)
    others = reaped
    for child in psutil.Process(pid).children(recursive=True):
        try:
            mine, theirs = _times(child.pid)
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile: its figures are in its parent's reaped ones
        others += mine + theirs
    return own, others


def one_at_a_time(
    argv: list[str],
    count: int,
    read: Callable[[int], T],
    env: dict[str, str] | None = None,
    settle: float = 1.5,
) -> tuple[T, T, float]:
    """Start the server `argv` ("{port}" filled in), make `count` connections of 10
    64-byte exchanges one after another, and return `read(server pid)` before and after
    them, with the seconds they took."""
    port = free_port()
    server = subprocess.Popen(
        [a.replace("{port}", str(port)) for a in argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(settle)
        before = read(server.pid)
        began = time.monotonic()
        for _ in range(count):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                for _ in range(10):
                    sock.sendall(b"x" * 64)
                    got = b""
                    while len(got) < 64:
                        got += sock.recv(64 - len(got))
        took = time.monotonic() - began
        time.sleep(1.0)  # the last children reaped
        return before, read(server.pid), took
    finally:
        server.terminate()
        server.wait()


def measure(name: str, argv: list[str], count: int, env: dict[str, str] | None = None) -> None:
    (own0, kids0), (own1, kids1), took = one_at_a_time(argv, count, own_and_children, env)
    print(
        f"{name:<28} own {1000 * (own1 - own0) / count:6.2f} ms/conn"
        f"   children {1000 * (kids1 - kids0) / count:6.2f} ms/conn"
        f"   ({count / took:.0f} conn/s, one at a time)",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="fork")
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--before", default="")
    ns = parser.parse_args()
    method, count = ns.method, ns.connections
    reference = [sys.executable, REFERENCE, "lesson", "--port", "{port}", "--method", method]
    measure("plain (lesson)", reference, count)
    for log in ("all", "errors"):
        argv = [PROCLAB, "serve", "--port", "{port}", "--method", method, "--log", log]
        measure(f"proclab --log {log}", argv, count)
        if ns.before:
            env = dict(os.environ, PYTHONPATH=ns.before)
            measure(f"proclab --log {log} (before)", argv, count, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
