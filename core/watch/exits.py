"""A watched tree's ends as they happen: every process's pidfd says when it ended (any
process's, not only a child's), its last figures are read then, while it is a zombie; and
proclab's own children (the root it launched, the orphans it adopts as the family's
subreaper) are reaped here, each by its own pid (never waitpid(-1)), with their exit
statuses and CPU times (wait4). The book of rows is TreeRows (rows.py).

The lock rule (core/registry.py): `watch_exit` runs under the registry's lock, held by its
caller; `on_exit`, `reap` and `adopt` take the lock themselves, never hold it across a
wait4 or a read of /proc (but the stat of each child of the process being reaped, which
rows.reaped_children reads, as the book reads a process it is told of), and call what an
end returns once they have released it.
`reap` (and `adopt`, through it) has the hooks' pending messages delivered first, which
takes the hook server's lock: never call them under the registry's lock or from a message.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from proclab.core import procfs
from proclab.core.model import ProcessRow, ProcSample, ProcState
from proclab.core.sampler import final_sample
from proclab.core.watch import tree
from proclab.core.watch.channels import Channels
from proclab.core.watch.rows import Pending, TreeRows, ended, is_final, usage_sample
from proclab.core.watcher import ChildWatcher


class Reaper:
    """Watches each process of the tree for its end, and reaps proclab's own children."""

    def __init__(
        self,
        rows: TreeRows,
        channels: Channels,
        watcher: ChildWatcher,
        *,
        wake: threading.Event,
        on_own_exit: Callable[[ProcessRow], None],
        check_done: Callable[[], None],
        settle: Callable[[], None],
        emit: Callable[[Pending], None],
    ) -> None:
        self._rows = rows
        self._registry = rows.registry
        self._lock = rows.registry.lock
        self._channels = channels
        self._watcher = watcher
        self._wake = wake  # the walk that finds an ended process gone ends its row
        self._on_own_exit = on_own_exit  # one of proclab's own children has been reaped
        self._check_done = check_done
        # Before one of proclab's own children's end is told: every hook message sent
        # by then (the ends of the children it joined, the pipes of their lines).
        self._settle = settle
        self._emit = emit  # events, and what an end returned to call, in order

    def watch_exit(
        self, rec_id: int, process: tree.TreeProcess, pipes: tuple[int, int] | None = None
    ) -> None:
        """Under the lock: be told the moment the process ends (its pidfd: any process's,
        not only a child's), to read its last figures while it is a zombie and to know
        when it ended, whoever reaps it."""
        exit_fds: tuple[int, ...] = ()
        with contextlib.suppress(OSError):
            exit_fds = (os.pidfd_open(process.pid),)
        same = tree.describe(process.pid, process)
        if exit_fds and (same is None or same.start != process.start):
            os.close(exit_fds[0])  # its pid is another process's now
            exit_fds = ()
        if not exit_fds:
            self._rows.exited.setdefault(rec_id, time.time())  # gone already
            if pipes is None:
                return
        channel = self._channels.open(rec_id, exit=True, output=pipes is not None)
        out_fd, err_fd = pipes or (-1, -1)
        self._watcher.watch(channel, out_fd, err_fd, exit_fds)

    def on_exit(self, channel: int) -> bool:
        """A pidfd is readable: the process has ended. Its last figures are read now,
        while it is a zombie (if its parent has not reaped it yet); proclab's own children
        are then reaped, by pid."""
        with self._lock:
            rec_id = self._channels.exit_row(channel)
            if rec_id is None:
                return True
            pid, start = self._rows.keys[rec_id]
            first = rec_id not in self._rows.exited
            row = self._registry.row(rec_id)
        if first:
            zombie = tree.describe(pid)
            if zombie is None or zombie.start != start or zombie.state != "Z":
                zombie = None  # reaped already (or its pid another's)
            last = _zombie_sample(zombie, row, self._registry.current_sample(row))
            # Read with its own figures (then it was this zombie): what wait4 adds.
            children = sum(procfs.reaped_cpu(pid)) if last is not None else 0.0
            self._wake.set()  # the walk that finds it gone ends its row
            with self._lock:
                if zombie is not None:
                    # Whose it is to reap: its parent's, or the adopter's, if its parent
                    # ended first (an attached root's resource tracker: init's)
                    self._rows.last_ppid[rec_id] = zombie.ppid
                if children:
                    self._rows.children_cpu[rec_id] = children
                exited_at = self._rows.exited.setdefault(rec_id, time.time())
                row = self._registry.row(rec_id)
                if not row.state.is_over:
                    figures = {"sample": last} if last is not None else {}
                    self._registry.update(rec_id, exited_at=exited_at, **figures)
                own = rec_id in self._rows.own
        else:
            with self._lock:
                own = rec_id in self._rows.own
        if not own:
            return True
        return self.reap(rec_id)

    def adopt(self, rec_id: int) -> None:
        """An orphan of the tree that the kernel re-parented to proclab (the family's
        subreaper): proclab reaps it, so proclab reads its exit status."""
        with self._lock:
            rows = self._rows
            if rec_id in rows.own or not self._registry.row(rec_id).state.is_live:
                return
            rows.own[rec_id] = rows.keys[rec_id][0]
            rows.gone.pop(rec_id, None)
            ended_now = rec_id in rows.exited  # else its pidfd's word will reap it
        if ended_now:
            self.reap(rec_id)

    def reap(self, rec_id: int) -> bool:
        """Reap one of proclab's own children by its pid (wait4: its status and CPU
        times); False if it has not ended yet."""
        rows = self._rows
        with self._lock:
            pid = rows.own.get(rec_id)
        if pid is None:
            return True
        try:
            reaped, status, usage = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:
            reaped, status, usage = pid, None, None  # reaped by someone else: not ours to read
        if reaped == 0:
            return False
        self._settle()
        first: Pending = []
        with self._lock:
            if rows.own.pop(rec_id, None) is None:
                return True  # reaped meanwhile by the other thread
            rows.reaped_children(rec_id, first)
            row = self._registry.row(rec_id)
            if rows.live.get(pid) == rec_id:
                del rows.live[pid]
            rows.gone.pop(rec_id, None)
            ended_at = rows.exited.get(rec_id, time.time())
            if status is None or usage is None:
                changes: dict[str, Any] = {
                    "state": ProcState.ENDED,
                    "ended_at": ended_at,
                    "exit_note": "exit status not known: reaped before proclab could",
                }
            else:
                code = os.waitstatus_to_exitcode(status)
                sample = row.sample if is_final(row.sample) else None
                if rows.own_cpu_from_reaper(rec_id):
                    previous = sample or self._registry.current_sample(row)
                    sample = usage_sample(usage.ru_utime, usage.ru_stime, previous)
                note = (
                    "reaped by proclab" if rec_id in rows.roots else "reaped by proclab (adopted)"
                )
                changes = ended(row, code, ended_at, note, sample)
            after = self._registry.end(rec_id, also=self._on_own_exit, **changes)
        self._emit(first)  # the children it reaped, before it
        after()
        self._check_done()
        return True


def _zombie_sample(
    zombie: tree.TreeProcess | None, row: ProcessRow, previous: ProcSample | None
) -> ProcSample | None:
    """Its last figures, if /proc still shows it (`zombie`: not reaped yet); `previous`:
    its last sample, as of the tick it last stood in."""
    if zombie is None:
        return None
    age = time.time() - row.started_at if row.started_at is not None else 0.0
    return final_sample(zombie.pid, previous, time.monotonic() - age)
