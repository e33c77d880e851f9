"""`proclab attach PID`: the same view of a process tree that already runs.

No launch and no hook: what /proc tells (core/watch/tree.py), with multiprocessing's own
children recognised by their command lines (a spawn child, the fork server, the resource
tracker; a fork child's command line is its parent's, so it cannot be told apart).
proclab is the parent of none of them, so it reads no exit status: each ended row names
the parent that saw it. Signals reach any process of the tree; quitting leaves it running.
"""

from __future__ import annotations

import os
from dataclasses import replace

from proclab.core import procfs
from proclab.core.errors import clipped
from proclab.core.typed import ascii_number
from proclab.core.watch import tree
from proclab.core.watch.program import Pending, WatchedTree, WatchError


def parse_pid(text: str) -> int:
    """A PID as the command line gave it, or WatchError saying it is not one."""
    try:
        return ascii_number(text, int)  # as ps writes them (int() took "１")
    except ValueError:
        raise WatchError(f"{clipped(text)!r} is not a process id") from None


def check_pid(pid: int) -> tree.TreeProcess:
    """The process to attach to, or WatchError with one line saying why not."""
    if pid <= 0:
        raise WatchError(f"{pid} is not a process id")
    if pid == os.getpid():
        raise WatchError(f"{pid} is proclab itself")
    process = tree.describe(pid)
    if process is None:
        raise WatchError(f"no process {pid}")
    try:
        group = procfs.thread_group(pid)
    except (OSError, ValueError, IndexError):
        raise WatchError(f"no process {pid}") from None
    if group != pid:  # /proc shows threads too: one was taken for a process that ended
        raise WatchError(f"{pid} is a thread of process {group}: attach {group}")
    if process.state == "Z":
        raise WatchError(
            f"process {pid} has ended: a zombie, its exit status not read yet by its parent"
            f" ({process.ppid})"
        )
    try:
        os.kill(pid, 0)
    except PermissionError:
        raise WatchError(f"not allowed to watch process {pid}: it is another user's") from None
    except ProcessLookupError:
        raise WatchError(f"no process {pid}") from None
    return process


class AttachedTree(WatchedTree):
    """A running process and its descendants, watched from /proc."""

    # What a launched tree allows, but it ran before proclab and runs on after it.
    capabilities = replace(WatchedTree.capabilities, ends_on_quit=False)
    reaps_orphans = False  # proclab is not their subreaper: their orphans go elsewhere

    def __init__(self, pid: int, **options: object) -> None:
        self._process = check_pid(pid)  # before anything is made
        self.leave_out = os.getpid()  # attached to the shell it runs in, it is in the tree
        super().__init__(hook=False, **options)  # type: ignore[arg-type]
        self.pid = pid

    def start(self) -> AttachedTree:
        if self._started:
            return self
        events: Pending = []
        with self._lock:
            process = tree.describe(self.pid, self._process) or self._process
            rec_id = self._new_row(process, events, root=True)
            self._roots.append(rec_id)
            self._begin()
            self._watch_exit(rec_id, process)
        self._emit(events)
        self._walk_once()  # the tree as it is now, at once
        self._walker.start()
        return self
