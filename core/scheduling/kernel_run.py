"""Running a KernelPlan: the jobs as real processes on the kernel, and what they measured.

Each job and a releaser are started through the controller (so every way proclab ends,
ends them), talk to proclab through named pipes in a private folder (see kernel_job), and
leave their reports there. While they run, proclab's own threads are kept off their core
and no other run may use it (a lock file). Everything here blocks: an app calls `run` from
a thread of its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from proclab.core.cpus import usable_cpus
from proclab.core.errors import ProclabError
from proclab.core.exits import describe_exit
from proclab.core.model import ProcessRow, ProcessSpec
from proclab.core.scheduling import kernel_job
from proclab.core.scheduling.kernel import (
    JobMeasure,
    KernelCancelled,
    KernelError,
    KernelPlan,
    KernelResult,
    check_rights,
    measure,
)
from proclab.core.spec import build_spec

START_TIMEOUT_S = 30.0
LOCK_WAIT_S = 120.0
FOLDER_PREFIX = "proclab-kernel-"  # then the pid of the proclab that made it
READY_AHEAD_NS = 20_000_000  # the release clock's zero, this far after the last child is ready


class Spawner(Protocol):
    """What a run needs of proclab.core.Controller."""

    def spawn(self, spec: ProcessSpec, count: int = 1) -> tuple[int, ...]: ...
    def row(self, rec_id: int) -> ProcessRow: ...
    def join(self, ids: Sequence[int], timeout: float | None = None) -> bool: ...
    def terminate(self, rec_id: int, escalate_after: float | None = None) -> None: ...
    def kill(self, rec_id: int) -> None: ...


Progress = Callable[[float, str], None]


def run(
    the_plan: KernelPlan,
    controller: Spawner,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> KernelResult:
    """Run the plan's jobs on the kernel and measure them. Blocks (call it from a thread
    of its own in an app); `progress(fraction, text)` is called from this thread;
    setting `cancel` ends the jobs and raises KernelCancelled. Every way out of here,
    an exception included, ends the jobs it started."""
    report = progress or (lambda _done, _text: None)
    stop = cancel or threading.Event()
    check_rights(the_plan.policy, the_plan.releaser_priority)
    place = _place()
    _sweep(place)
    folder = tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=place)
    ids: list[int] = []
    try:
        specs = _specs(the_plan, folder)  # checked while proclab may still use every CPU
        with _core_lock(the_plan.core, stop, report), _kept_off(the_plan.core, the_plan.others):
            return _run(the_plan, controller, folder, specs, ids, report, stop)
    finally:
        _end(controller, ids)
        shutil.rmtree(folder, ignore_errors=True)


def _place() -> str:
    """Where a run's folder goes: /dev/shm where there is one (memory, not a disk)."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return tempfile.gettempdir()


def _sweep(place: str) -> None:
    """Remove the folders of runs whose proclab is gone: one that was SIGKILLed could
    not remove its own."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(place):
            owner = entry.name.removeprefix(FOLDER_PREFIX).split("-", 1)[0]
            if not entry.name.startswith(FOLDER_PREFIX) or not owner.isdecimal():
                continue
            try:
                os.kill(int(owner), 0)
            except ProcessLookupError:
                shutil.rmtree(entry.path, ignore_errors=True)
            except (OSError, OverflowError):
                pass  # alive, someone else's, or no pid at all (anyone may name a file here)


def _specs(the_plan: KernelPlan, folder: str) -> list[ProcessSpec]:
    """The jobs' children, then the releaser's."""
    kind = the_plan.policy
    unit_ns = the_plan.unit_ms * 1e6
    specs = [
        build_spec(
            "proclab.core.scheduling.kernel_job:job",
            (
                folder,
                index,
                kind.child,
                the_plan.priorities[index],
                the_plan.core,
                round(job.burst * unit_ns),
                the_plan.others,
            ),
            name=f"{job.name} ({kind.key})",
            affinity=(the_plan.core,),
            cwd=folder,
        )
        for index, job in enumerate(the_plan.jobs)
    ]
    releases: dict[int, list[int]] = {}
    for index, job in enumerate(the_plan.jobs):
        releases.setdefault(round(job.arrival * unit_ns), []).append(index)
    where = (the_plan.core,) if kind.realtime else the_plan.others
    specs.append(
        build_spec(
            "proclab.core.scheduling.kernel_job:releaser",
            (
                folder,
                kind.child,
                the_plan.releaser_priority,
                where,
                sorted(releases.items()),
                the_plan.others,
            ),
            name=f"releaser ({kind.key})",
            affinity=where,
            cwd=folder,
        )
    )
    return specs


def _run(
    the_plan: KernelPlan,
    controller: Spawner,
    folder: str,
    specs: Sequence[ProcessSpec],
    ids: list[int],
    report: Progress,
    stop: threading.Event,
) -> KernelResult:
    jobs = the_plan.jobs
    kind = the_plan.policy
    unit_ns = the_plan.unit_ms * 1e6
    os.mkfifo(kernel_job.ready_path(folder), 0o600)
    os.mkfifo(kernel_job.start_path(folder), 0o600)
    for index in range(len(jobs)):
        os.mkfifo(kernel_job.go_path(folder, index), 0o600)
    ready = os.open(kernel_job.ready_path(folder), os.O_RDWR | os.O_NONBLOCK)
    start = os.open(kernel_job.start_path(folder), os.O_RDWR)
    try:
        for spec in specs:
            ids += controller.spawn(spec)
        _wait_ready(the_plan, controller, ids, ready, report, stop)
        zero = time.monotonic_ns() + READY_AHEAD_NS
        os.write(start, str(zero).encode())
        _wait_done(the_plan, controller, ids, zero, report, stop)
    finally:
        os.close(ready)
        os.close(start)
    measures = [
        _read_measure(folder, index, job.name, zero, unit_ns) for index, job in enumerate(jobs)
    ]
    try:
        with open(kernel_job.release_path(folder), encoding="utf-8") as file:
            late_ns = max(json.load(file)["late_ns"], default=0)
    except (OSError, ValueError, KeyError, TypeError):
        raise KernelError("the releaser left no report") from None
    quantum_ms = the_plan.quantum_ms
    if kind.key == "rr":
        quantum_ms = _job_quantum_ms(folder) or quantum_ms
    report(1.0, "measured")
    return measure(
        jobs, kind.key, the_plan.unit_ms, the_plan.core, quantum_ms, measures, late_ns / 1e6
    )


def _wait_ready(
    the_plan: KernelPlan,
    controller: Spawner,
    ids: Sequence[int],
    ready: int,
    report: Progress,
    stop: threading.Event,
) -> None:
    """Until every child has said it is set up; an error, a child that ended, a cancel
    or START_TIMEOUT_S stop the run."""
    wanted = len(ids)
    told: set[str] = set()
    buffer = b""
    deadline = time.monotonic() + START_TIMEOUT_S
    while len(told) < wanted:
        report(
            0.0, f"starting {wanted - 1} jobs on CPU {the_plan.core}: {len(told)} of {wanted} ready"
        )
        if stop.is_set():
            raise KernelCancelled("cancelled while the jobs started")
        readable, _, _ = select.select([ready], [], [], 0.05)
        if readable:
            with contextlib.suppress(BlockingIOError):
                buffer += os.read(ready, 65536)
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            word, _, rest = raw.decode(errors="replace").partition(" ")
            who, _, why = rest.partition(" ")
            if word == "error":
                name = "the releaser" if who == "releaser" else the_plan.jobs[int(who)].name
                raise KernelError(f"{name} could not be set up: {why}")
            told.add(who)
        for rec_id in ids:
            row = controller.row(rec_id)
            if row.state.is_over:
                raise KernelError(f"{row.name} ended before it was ready: {_ending(row)}")
        if time.monotonic() > deadline:
            raise KernelError(
                f"only {len(told)} of {wanted} children were ready after {START_TIMEOUT_S:g} s"
            )


def _wait_done(
    the_plan: KernelPlan,
    controller: Spawner,
    ids: Sequence[int],
    zero: int,
    report: Progress,
    stop: threading.Event,
) -> None:
    expected = the_plan.expected_s
    limit = max(10.0, 3 * expected + 5)
    while not controller.join(ids, timeout=0.05):
        if stop.is_set():
            raise KernelCancelled("cancelled while the jobs ran")
        elapsed = max(0.0, (time.monotonic_ns() - zero) / 1e9)
        if elapsed > limit:
            raise KernelError(
                f"the jobs had not finished {elapsed:.1f} s after their start (about"
                f" {expected:.2g} s expected): CPU {the_plan.core} is busy with something else"
            )
        report(
            min(0.99, elapsed / expected) if expected else 0.99,
            f"running on CPU {the_plan.core}: {elapsed:.1f} s of about {expected:.2g} s",
        )
    for rec_id in ids:
        row = controller.row(rec_id)
        if row.exitcode != 0:
            raise KernelError(f"{row.name} did not finish: {_ending(row)}")


def _ending(row: ProcessRow) -> str:
    reason = row.error or ""
    exit_text = describe_exit(row.exitcode)
    return f"exit {exit_text}" + (f" ({reason})" if reason else "") if exit_text else reason


def _read_measure(folder: str, index: int, name: str, zero: int, unit_ns: float) -> JobMeasure:
    try:
        figures, flat, reported = kernel_job.read_report(kernel_job.report_path(folder, index))
        before, after = figures["schedstat_before"], figures["schedstat_after"]
        cpu = figures["cpu_ns"]
        on_core = cpu["burn_start"] - cpu["woke"] + cpu["left"] - cpu["burn_end"]
        return JobMeasure(
            name=name,
            intervals=tuple(
                ((flat[k] - zero) / unit_ns, (flat[k + 1] - zero) / unit_ns)
                for k in range(0, len(flat), 2)
            ),
            cpu=(cpu["burn_end"] - cpu["burn_start"]) / unit_ns,
            run=(after[0] - before[0]) / unit_ns,
            wait=(after[1] - before[1]) / unit_ns,
            times_on_cpu=after[2] - before[2],
            bookkeeping_ms=(on_core + figures["asked_ns"]) / 1e6,
            reporting_ms=(reported - cpu["left"]) / 1e6,
            asked_ms=figures["asked_ns"] / 1e6,
            interrupted=figures["interrupted_ns"] / unit_ns,
            pid=int(figures.get("pid", 0)),
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise KernelError(f"{name} left no readable report: {exc}") from None


def _job_quantum_ms(folder: str) -> float | None:
    """The quantum the jobs read under SCHED_RR (sched_rr_get_interval)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        quantum_ns = kernel_job.read_report(kernel_job.report_path(folder, 0))[0]["quantum_ns"]
        if quantum_ns > 0:
            return quantum_ns / 1e6
    return None


def _end(controller: Spawner, ids: Sequence[int]) -> None:
    """End whatever of the run still runs: SIGTERM, then SIGKILL a second later."""
    live = [i for i in ids if controller.row(i).state.is_live]
    for rec_id in live:
        with contextlib.suppress(ProclabError):
            controller.terminate(rec_id, escalate_after=1.0)
    if live:
        controller.join(live, timeout=5.0)


@contextlib.contextmanager
def _core_lock(core: int, stop: threading.Event, report: Progress) -> Iterator[None]:
    """One run per core at a time, across processes and users (a lock file in the
    temporary folder): a second run would measure the first."""
    path = os.path.join(tempfile.gettempdir(), f"proclab-kernel-cpu{core}.lock")
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError as exc:
        raise KernelError(f"cannot open the lock file {path}: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            if stop.is_set():
                raise KernelCancelled("cancelled while waiting for the core")
            if time.monotonic() > deadline:
                raise KernelError(
                    f"CPU {core} stayed busy with another proclab run for {LOCK_WAIT_S:g} s:"
                    " try another --core",
                    "core",
                )
            report(0.0, f"waiting: another proclab run is measuring CPU {core}")
            time.sleep(0.05)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _kept_off(core: int, others: Sequence[int]) -> Iterator[None]:
    """Keep every thread of proclab off the jobs' core while they run: real-time jobs
    there would starve them (the app's drawing, the controller's reaping). Threads
    started meanwhile inherit it; all get their affinity back afterwards."""
    saved: dict[int, set[int]] = {}
    for tid in _threads():
        with contextlib.suppress(OSError):
            saved[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, others)
    try:
        yield
    finally:
        usual = saved.get(os.getpid()) or set(usable_cpus()) | {core}
        for tid in _threads():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, saved.get(tid, usual))


def _threads() -> list[int]:
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return []
