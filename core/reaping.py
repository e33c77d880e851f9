"""The reaping side of a source: each running process's output lines, and its end the
moment it happens, with its exit status and its last figures.

`Reaper` owns the watcher thread (core/watcher.py) and writes what it sees into a
`Registry`. It starts nothing: whoever starts a process (the controller's launcher, or a
watched program) hands it over with `watch` once it runs, saying how to read its exit
status. Its per-process state is guarded by the registry's lock (see core/registry.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proclab.core import procfs
from proclab.core.bootstrap import others_cpu, read_exit_record, scheduled
from proclab.core.exits import state_for_exit
from proclab.core.family import Family
from proclab.core.model import ProcSample, ProcState, Stream
from proclab.core.registry import Registry
from proclab.core.sampler import final_sample, reported_sample
from proclab.core.watcher import ChildWatcher


@dataclass(slots=True)
class Ending:
    """What the reaper needs of one running process."""

    pid: int
    exitcode: Callable[[], int | None]  # None while it runs; polls, never blocks
    release: Callable[[], None]  # frees what held the process, once its end is known
    started_mono: float
    record: int = -1  # the read end of its exit record's pipe (-1: none); not ours to close
    final_sample: ProcSample | None = None
    # For a child proclab forked: reaps it (wait4) and gives its CPU times and context
    # switches, exact to the microsecond; None while it runs, () if it was reaped
    # elsewhere. Without it (a forkserver child, reaped by its fork server) they come
    # from its exit record or /proc.
    reap: Callable[[], tuple[float, float, int, int] | tuple[()] | None] | None = None
    born_early: float = 0.0  # seconds its life began before started_mono said (its record)
    # Why its exit status, though the exit code says one, is not known (a forkserver
    # child whose fork server ended first): None where it is.
    status_lost: Callable[[], str | None] | None = None


class Reaper:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._lock = registry.lock
        self._endings: dict[int, Ending] = {}
        self._watcher = ChildWatcher(self._on_line, self._on_exit, self._on_closed)
        self.family: Family | None = None  # told of each end, when the source keeps one

    def start(self) -> None:
        self._watcher.start()

    def stop(self) -> None:
        self._watcher.stop()

    def watch(
        self, rec_id: int, ending: Ending, stdout_fd: int, stderr_fd: int, exit_fds: tuple[int, ...]
    ) -> None:
        """Read the process's output from these fds and notice its end on `exit_fds` (a
        pidfd, a sentinel); every fd is the reaper's from here on, closed when done."""
        with self._lock:
            self._endings[rec_id] = ending
        self._watcher.watch(rec_id, stdout_fd, stderr_fd, exit_fds)

    # The watcher's callbacks, on its thread ---------------------------------------------

    def _on_line(self, rec_id: int, stream: Stream, text: str, continues: bool) -> None:
        # Its end handled (on this thread, which read its pipes dry first): a line now is
        # a process's it started, which kept its output (a grandchild printing on).
        after_end = rec_id not in self._endings
        self._registry.add_line(rec_id, stream, text, continues, after_end)

    def _on_exit(self, rec_id: int) -> bool:
        with self._lock:
            ending = self._endings.get(rec_id)
            row = self._registry.get(rec_id)
        if ending is None or row is None:
            return True
        if ending.final_sample is None:
            # The child's own exit record (its rusage) if it wrote one; else wait4's, for
            # a child proclab reaps itself; else its figures read while it is a zombie
            # (once reaped they are gone; a forkserver child is reaped by the fork server,
            # often first).
            last = self._registry.current_sample(row)
            reported = read_exit_record(ending.record) if ending.record >= 0 else None
            if reported:
                user, system, voluntary, involuntary, delay, began, reaped, threads = reported
                if 0 < began < ending.started_mono:
                    # Born before start() returned (a forkserver child): its life counts
                    # from the birth its record tells, or a child was shown more CPU than
                    # wall time.
                    ending.born_early = ending.started_mono - began
                    ending.started_mono = began
                told = (user, system, voluntary, involuntary, delay)
                ending.final_sample = reported_sample(
                    told, last, ending.started_mono, reaped, threads
                )
            elif ending.reap is not None:
                ran, waited = scheduled(ending.pid) or (None, 0.0)  # gone once it is reaped
                # With no exit record (killed, or ended by os._exit), wait4's CPU times
                # count the children it reaped too: a child killed after waiting 2 s for a
                # spinning grandchild was shown 2.1 s of CPU that was its grandchild's.
                theirs = procfs.reaped_cpu(ending.pid)
                usage = ending.reap()
                if usage is None:
                    return False
                if usage:
                    user, system, voluntary, involuntary = usage
                    own = (max(0.0, user - theirs[0]), max(0.0, system - theirs[1]))
                    figures = (*own, voluntary, involuntary, waited)
                    threads = others_cpu(own[0] + own[1], ran)
                    ending.final_sample = reported_sample(
                        figures, last, ending.started_mono, theirs[0] + theirs[1], threads
                    )
            else:
                ending.final_sample = final_sample(ending.pid, last, ending.started_mono)
        exitcode = ending.exitcode()
        if exitcode is None:
            return False
        lost = ending.status_lost() if ending.status_lost is not None else None
        if self.family is not None:
            self.family.ended(ending.pid)
        ending.release()
        with self._lock:
            del self._endings[rec_id]
            row = self._registry.row(rec_id)
            how: dict[str, Any] = (
                # Its row says why; a traceback it printed, if any, stays its error.
                {"state": ProcState.ENDED, "exitcode": None, "exit_note": lost}
                | ({} if row.error else {"error": lost})
                if lost
                else {"state": state_for_exit(exitcode), "exitcode": exitcode}
            )
            after = self._registry.end(
                rec_id,
                **how,
                sample=ending.final_sample or row.sample,
                ended_at=time.time(),
                started_at=(row.started_at or time.time()) - ending.born_early,
            )
        after()
        return True

    def _on_closed(self, rec_id: int) -> None:
        """The output pipes are closed (the process and any of its own are done writing)."""
