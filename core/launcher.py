"""Preparing and starting proclab's own children, on a thread of their own.

Process.start() takes a while (spawn: ~60 ms), so a caller only queues a record and the
launcher thread starts each in order; once a child runs it is handed to the reaper. Its
per-record state is guarded by the registry's lock (see core/registry.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing.connection
import multiprocessing.forkserver
import multiprocessing.process
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from multiprocessing.process import BaseProcess
from typing import NamedTuple

from proclab.core import fd_limit, methods, procfs, step_aside
from proclab.core.bootstrap import (
    DEFERRED_SIGNALS,
    ChildPayload,
    InheritedFd,
    child_main,
    prepare_writers,
    record_pipe,
)
from proclab.core.family import Family
from proclab.core.model import ProcessSpec, ProcState, StateChanged
from proclab.core.reaping import Ending, Reaper
from proclab.core.registry import Registry, RowCallback
from proclab.core.watcher import close_fds

BURST = 16  # children started back to back before they are recorded (_launch_burst)


@dataclass(slots=True)
class _Child:
    """One child from its preparation until its end: its process and its output pipes."""

    process: BaseProcess
    stdout_r: int
    stderr_r: int
    stdout_w: int
    stderr_w: int
    record_r: int  # the pipe of its exit record (bootstrap.EXIT_RECORD)
    record_w: int
    method: str  # its start method, as its spec says
    on_started: RowCallback | None = None


class _Started(NamedTuple):
    """A child started, not yet recorded (Launcher._record)."""

    rec_id: int
    child: _Child
    latency: float  # seconds Process.start() took
    mono: float  # time.monotonic() as Process.start() was called
    wall: float  # time.time() as Process.start() was called


class Launcher:
    def __init__(self, registry: Registry, reaper: Reaper, *, titles: bool = True) -> None:
        self._registry = registry
        self._lock = registry.lock
        self._reaper = reaper
        self.titles = titles  # children set their process title (ps, htop) to name and target
        self.family: Family | None = None  # told of each start, when the source keeps one
        self._children: dict[int, _Child] = {}
        # One Process.start() at a time: start() polls every process in multiprocessing's
        # own child set, and ours leave that set under this lock, so no start() ever
        # reads the exit status of a child the watcher is reaping.
        self._start_lock = threading.Lock()
        # Held while one child is started, so that shutdown sees every child either
        # started (and ends it) or not yet started (and cancels it).
        self.gate = threading.Lock()
        self._stepped: set[int] | None = None  # the launcher's CPU mask while it steps aside
        self._queue: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="proclab-launcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def prepare(
        self,
        rec_id: int,
        spec: ProcessSpec,
        keep_fds: tuple[int, ...],
        on_started: RowCallback | None,
    ) -> str:
        """A child for `spec`, not started yet; returns its Process.name."""
        ctx = methods.context(spec.method)
        if spec.method == "fork":
            prepare_writers()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        record_r, record_w, record_id = record_pipe()
        payload = ChildPayload(
            kind=spec.target.kind,
            location=spec.target.location,
            function=spec.target.function,
            args=spec.args,
            kwargs=dict(spec.kwargs),
            cwd=spec.cwd,
            affinity=spec.affinity,
            stdout=InheritedFd(out_w),
            stderr=InheritedFd(err_w),
            method=spec.method,
            keep_fds=keep_fds,
            title_target=spec.target.label if self.titles else None,
            record=InheritedFd(record_w),
            record_pipe=record_id,
            fd_limit=fd_limit.found,
        )
        process = ctx.Process(
            target=child_main, args=(payload,), name=spec.name, daemon=spec.daemon
        )
        with self._lock:
            self._children[rec_id] = _Child(
                process, out_r, err_r, out_w, err_w, record_r, record_w, spec.method, on_started
            )
        return process.name

    def launch_later(self, rec_id: int) -> None:
        self._queue.put(rec_id)

    def rename(self, rec_id: int, name: str) -> None:
        """The parent's handle (Process.name) of a child not ended yet."""
        with self._lock:
            child = self._children.get(rec_id)
            if child is not None:
                child.process.name = name

    def cancel_all(self, reason: str) -> list[Callable[[], None]]:
        """Under the gate and the lock: every child not started yet is marked as never
        started. Returns what to call once the lock is released."""
        return [
            self._not_started(r.id, reason)
            for r in self._registry.rows()
            if r.state is ProcState.STARTING
        ]

    def _release(self, rec_id: int) -> None:
        """The child has ended: multiprocessing's handle goes."""
        with self._lock:
            child = self._children.pop(rec_id)
        os.close(child.record_r)
        child.process.close()

    def _loop(self) -> None:
        # Inherited by every child started here (see DEFERRED_SIGNALS); signals sent to
        # proclab itself go to a thread that does not block them.
        signal.pthread_sigmask(signal.SIG_BLOCK, DEFERRED_SIGNALS)
        while True:
            rec_id = self._queue.get()
            if rec_id is None:
                return
            burst = [rec_id]
            while len(burst) < BURST:  # those queued already: started back to back
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._launch_burst(burst)
                    return
                burst.append(more)
            self._launch_burst(burst)

    def _launch_burst(self, ids: list[int]) -> None:
        """Start each fork child, one fork after another, then record them all (each
        row's pid and state, its events, the reaper's hand-off, `on_started`).

        Every fork makes each page of proclab's memory copy-on-write again, and each
        page a thread then writes costs a fault, and a copy while a child shares it.
        Recorded between forks, each child cost proclab 470 faults against bare
        multiprocessing's 160, and a batch of 1,000 waited on that (benchmarks/spawn.py);
        recorded after the burst, each page written is copied once for the burst. A fork
        child's pid stays its own until proclab reaps it, so recording it a few
        milliseconds late is safe. Recorded at once: a forkserver child (proclab does
        not fork it, and its fork server may reap it and free its pid), a spawn child
        (it takes 60 ms to start), and a child with `on_started`, which may close what
        the child was handed before the next fork child would inherit it.

        A fork child started alone is let run at once: the launcher steps off the child's
        CPU to record it (core/step_aside.py). Not in a burst: its first children run while the
        next are forked, and the launcher would wait for another CPU to wake each time."""
        with self.gate:
            started: list[_Started] = []
            for rec_id in ids:
                with self._lock:
                    child = self._children.get(rec_id)
                    row = self._registry.get(rec_id)
                    if child is None or row is None or row.state is not ProcState.STARTING:
                        continue
                begun = self._start(
                    rec_id, child, lone_fork=child.method == "fork" and len(ids) == 1
                )
                if begun is None:
                    continue
                started.append(begun)
                if child.method != "fork" or child.on_started is not None:
                    self._record(started)
                    started = []
            self._record(started)

    def _start(self, rec_id: int, child: _Child, *, lone_fork: bool) -> _Started | None:
        """Start the child's process: when, and how long that took; None if it could not.
        A lone fork child has the launcher step off its CPU as the fork returns."""
        process = child.process
        try:
            with self._start_lock:
                if lone_fork:
                    step_aside.arm()
                # The child's life begins inside start(), and may end there: from its
                # return, a child that ran 6 ms of CPU was shown 1 ms of wall time. A
                # fork or spawn child is born as start() begins; a forkserver child as it
                # ends, once the fork server has forked it (the first start() waits for
                # the server to be ready: 60 ms more of a child's life, which turned a
                # batch's verdict from CPU-bound to I/O-bound).
                born_mono, born_wall = time.monotonic(), time.time()
                began = time.perf_counter()
                try:
                    process.start()
                finally:
                    self._stepped, stepping = step_aside.taken()
                if child.method == "forkserver":
                    born_mono, born_wall = time.monotonic(), time.time()
                # What start() takes for the user: the launcher's step is proclab's own.
                latency = time.perf_counter() - began - stepping
                # The controller reaps its children itself. Left in multiprocessing's own
                # set, every start() would poll every live child first: with 1,000 of
                # them, starting the last took 70 ms instead of 10.
                multiprocessing.process._children.discard(process)  # type: ignore[attr-defined]
        except Exception as exc:
            close_fds(child.stdout_r, child.stderr_r, child.record_r)
            with self._lock:
                why = f"could not start: {type(exc).__name__}: {exc}"
                if child.method == "forkserver":
                    why += methods.fork_server_shadowed()
                after = self._not_started(rec_id, why)
            after()
            return None
        finally:
            # The child has its copies, and the next child of the burst must not inherit
            # them: EOF must mean this one is done.
            close_fds(child.stdout_w, child.stderr_w, child.record_w)
        return _Started(rec_id, child, latency, born_mono, born_wall)

    def _record(self, started: list[_Started]) -> None:
        """Started children: each row running with its pid, its events, its output and
        end the reaper's. The launcher then runs on every CPU again (step_aside), before
        it forks another child."""
        try:
            self._record_each(started)
        finally:
            if self._stepped is not None:
                step_aside.step_back(self._stepped)
                self._stepped = None

    def _record_each(self, started: list[_Started]) -> None:
        for rec_id, child, latency, mono, wall in started:
            process = child.process
            pid = process.pid
            assert pid is not None  # started
            try:
                exit_fds = _exit_fds(process, pid, child.method)
            except OSError as exc:
                self._unwatchable(rec_id, child, exc)
                continue
            if self.family is not None:
                self.family.started(pid)
            row = self._registry.update(
                rec_id, pid=pid, state=ProcState.RUNNING, started_at=wall, start_latency=latency
            )
            self._registry.emit([StateChanged(row, ProcState.STARTING)])
            ending = Ending(
                pid, _exitcode(process), partial(self._release, rec_id), mono, child.record_r
            )
            if child.method != "forkserver":  # forked by proclab: reaped by proclab
                ending.reap = partial(_wait4, process)
            else:
                ending.exitcode, ending.status_lost = _forkserver_exitcode(process)
            self._reaper.watch(rec_id, ending, child.stdout_r, child.stderr_r, exit_fds)
            self._registry.run_callbacks([child.on_started] if child.on_started else [], row)

    def _unwatchable(self, rec_id: int, child: _Child, exc: OSError) -> None:
        """A child whose end could not be watched (no fd left for it) is not left running
        unwatched and unreaped: it is killed, and its row failed, saying why."""
        process = child.process
        with contextlib.suppress(OSError):
            os.kill(process.pid or 0, signal.SIGKILL)
        process.join(timeout=5)
        close_fds(child.stdout_r, child.stderr_r, child.record_r)
        with self._lock:
            after = self._not_started(rec_id, f"could not watch it: {type(exc).__name__}: {exc}")
        after()
        with contextlib.suppress(ValueError):  # not reaped within the timeout
            process.close()

    def _not_started(self, rec_id: int, reason: str) -> Callable[[], None]:
        """Under the lock: mark a record that never got a process. Returns what to call
        once the lock is released (its events and callbacks)."""
        child = self._children.pop(rec_id)
        return self._registry.end(
            rec_id,
            also=child.on_started,
            state=ProcState.FAILED,
            error=reason,
            ended_at=time.time(),
        )


def _exitcode(process: BaseProcess) -> Callable[[], int | None]:
    return lambda: process.exitcode


def _forkserver_exitcode(
    process: BaseProcess,
) -> tuple[Callable[[], int | None], Callable[[], str | None]]:
    """A forkserver child's exit status, which its fork server sends on the sentinel once
    it has reaped it; and why it is not known, where the fork server ended first (killed):
    multiprocessing then gives 255, a status no process had, and a child ended by its
    death signal was shown 'exit 255 failed'."""
    popen = process._popen  # type: ignore[attr-defined]
    lost: list[str] = []

    def exitcode() -> int | None:
        if popen.returncode is None and not lost and _readable(popen.sentinel):
            try:
                popen.returncode = multiprocessing.forkserver.read_signed(popen.sentinel)
            except (OSError, EOFError):
                lost.append("exit status not known: its fork server ended before it told it")
        if lost and popen.returncode is None:
            # The server's end is told at once, the child's (its death signal) a moment
            # later: until its pidfd says so, it runs.
            if _runs(popen.pid):
                return None
            popen.returncode = 255  # multiprocessing's own word for it
        return popen.returncode

    return exitcode, lambda: lost[0] if lost else None


def _readable(fd: int) -> bool:
    # multiprocessing's own wait (poll): select() refuses an fd past 1,023, which a
    # proclab with hundreds of children has (fd_limit raises its limit for them).
    try:
        return bool(multiprocessing.connection.wait([fd], 0))
    except (OSError, ValueError):
        return False


def _runs(pid: int) -> bool:
    try:
        return procfs.brief(pid).state not in ("Z", "X")
    except (OSError, ValueError, IndexError):
        return False


def _wait4(process: BaseProcess) -> tuple[float, float, int, int] | tuple[()] | None:
    """Reap a child proclab forked (fork, spawn) with wait4: its user and system CPU and
    its context switches, its own exactly while it has reaped no child (its bootstrap
    writes an exit record otherwise, which the reaper takes first); None while it runs,
    () if it was reaped elsewhere (its figures are gone). /proc has CPU times in clock
    ticks only (10 ms). multiprocessing's handle is given the exit status, as its own
    poll would have taken it."""
    popen = process._popen  # type: ignore[attr-defined]
    if popen.returncode is not None:  # reaped by multiprocessing's own poll
        return ()
    try:
        pid, status, usage = os.wait4(popen.pid, os.WNOHANG)
    except ChildProcessError:
        return ()
    if pid == 0:
        return None
    popen.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime, usage.ru_stime, usage.ru_nvcsw, usage.ru_nivcsw


def _exit_fds(process: BaseProcess, pid: int, method: str) -> tuple[int, ...]:
    """fds that become readable when the child has ended: its pidfd (the moment it ends,
    while its figures can still be read), and for a forkserver child a copy of the
    sentinel, on which the fork server sends the status once it has reaped the child."""
    fds = []
    with contextlib.suppress(OSError, AttributeError):
        fds.append(os.pidfd_open(pid))
    if method == "forkserver" or not fds:
        fds.append(os.dup(process.sentinel))
    return tuple(fds)
