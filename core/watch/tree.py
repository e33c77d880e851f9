"""The watched program's process tree, read from /proc.

A walk starts at the root(s) and follows /proc/PID/task/*/children (a child's parent is
the thread that forked it, so every thread's file is read). Each process is named by its
pid *and* its start time (clock ticks since boot): a pid the kernel hands to a new
process after the old one was reaped is a new process, never the old one's row.

What a process is does not change while it lives, except by exec: its command line and
executable are read when it is first seen, on every walk during its first second (a
spawn child execs a new interpreter at once, under the same command name), and again
whenever its command name (comm, in /proc/PID/stat, read on every walk anyway) changes.
A later exec that keeps the command name (a Python that execs another Python) is not
noticed here; the hook says hello again for those.

Cost per walk: per known process, one stat read, one listdir of its tasks and one
children read per thread; per new process, also its cmdline and its exe link
(benchmarks/watch_tree.py measures it).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from proclab.core import procfs

YOUNG_S = 1.0


@dataclass(frozen=True, slots=True)
class TreeProcess:
    """One process of the tree as /proc shows it."""

    pid: int
    start: int  # clock ticks since boot: with the pid, names one process for ever
    ppid: int
    pgid: int
    state: str  # the kernel's letter: R, S, Z...
    name: str  # comm: the kernel's short command name
    cmdline: tuple[str, ...]  # empty for a zombie or a kernel thread
    exe: str  # "" when it cannot be read (another user's, or gone)

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.start)

    @property
    def started(self) -> float:
        """Wall clock when it started (10 ms resolution: the kernel's clock ticks)."""
        return procfs.wall_of(self.start)


def read_exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _read(path: str) -> bytes:
    """One small /proc file. os.open/os.read rather than open(): half the CPU time, which
    matters at a walk of every process every tick."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


def _brief(pid: int) -> procfs.Brief:
    """procfs.brief, read the cheaper way."""
    return procfs.brief_of(_read(f"/proc/{pid}/stat"))


def children(pid: int) -> list[int]:
    """The processes any of `pid`'s threads started (and the orphans it adopted)."""
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in threads:
        with contextlib.suppress(OSError, ValueError):
            found.extend(int(p) for p in _read(f"/proc/{pid}/task/{tid}/children").split())
    return found


def forks() -> int | None:
    """How many processes the machine has started since it booted (/proc/stat's
    "processes"): while it stays the same, no process was born anywhere, in the tree or
    out of it. None if it cannot be read. 0.02 ms, against 8 ms for a walk of 200."""
    try:
        stat = _read("/proc/stat")
        at = stat.index(b"\nprocesses ") + len(b"\nprocesses ")
        return int(stat[at : stat.index(b"\n", at)])
    except (OSError, ValueError):
        return None


def any_young(processes: Iterable[TreeProcess]) -> bool:
    """Some process may still exec under the same command name (see _young)."""
    since = _young_since()
    return any(p.start > since for p in processes)


def _young_since() -> float:
    """The start time (clock ticks since boot) after which a process is young now."""
    return (time.time() - procfs.BOOT_TIME - YOUNG_S) * procfs.CLOCK_TICKS


def _young(start: int) -> bool:
    """Started within YOUNG_S: it may exec any moment (a spawn child does, under the same
    command name), so its command line is read again."""
    return start > _young_since()


def describe(pid: int, known: TreeProcess | None = None) -> TreeProcess | None:
    """The process `pid` now, or None if there is none. `known`: what was read before;
    its command line is kept when it is the same process under the same command name."""
    try:
        brief = _brief(pid)
    except (OSError, ValueError, IndexError):
        return None
    if (
        known is not None
        and known.start == brief.start
        and known.name == brief.name
        and (known.cmdline or brief.state == "Z")
        and not _young(brief.start)
    ):
        if known.state == brief.state and known.ppid == brief.ppid and known.pgid == brief.pgid:
            return known
        return TreeProcess(
            pid,
            brief.start,
            brief.ppid,
            brief.pgid,
            brief.state,
            brief.name,
            known.cmdline,
            known.exe,
        )
    return TreeProcess(
        pid=pid,
        start=brief.start,
        ppid=brief.ppid,
        pgid=brief.pgid,
        state=brief.state,
        name=brief.name,
        cmdline=procfs.read_cmdline(pid),
        exe=read_exe(pid),
    )


def walk(
    roots: Iterable[int],
    known: Mapping[int, TreeProcess] | None = None,
    starts: Mapping[int, int] | None = None,
    leave_out: int = 0,
) -> dict[int, TreeProcess]:
    """Every process at or below `roots` now, by pid. `known` (the previous walk's
    result) saves re-reading what has not changed. `starts`: the start times some roots
    must have; a root whose pid now belongs to another process is skipped (a process
    found below a root is the tree's, whatever its pid was before). `leave_out`: a
    process left out, with all below it."""
    known = known or {}
    starts = starts or {}
    found: dict[int, TreeProcess] = {}
    stack = [(pid, True) for pid in dict.fromkeys(roots)]
    while stack:
        pid, is_root = stack.pop()
        if pid in found or pid == leave_out:
            continue
        process = describe(pid, known.get(pid))
        if process is None or (is_root and starts.get(pid, process.start) != process.start):
            continue
        found[pid] = process
        if process.state != "Z":  # a zombie has no threads, hence no children file
            stack.extend((child, False) for child in children(pid))
    return found
