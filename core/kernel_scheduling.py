"""The textbook jobs on the real kernel, measured beside the simulation.

Linux can be asked for the textbook policies: SCHED_FIFO is first come, first served
among equal priorities; SCHED_RR is round robin with the kernel's quantum; SCHED_FIFO
with different priorities is preemptive priority scheduling; SCHED_OTHER, the default,
shares the CPU fairly (processor sharing, about). `run` starts each job as a real child
(through the controller, so every exit path ends them), all on one core, with the policy
set before the job may run; a releaser makes each job runnable at its arrival; each job
burns CPU until the kernel counts its burst of its own CPU time, and records every
stretch it spent on the CPU (see kernel_job). The stretches, merged, are the measured
Gantt chart; its figures come by the simulator's own rules (schedule_from_gantt), beside
the simulation of the matching algorithm:

    fifo     <-> FCFS
    rr       <-> RR with q = the kernel's quantum / unit
    priority <-> preemptive priority
    other    <-> RR with a quantum small enough to be processor sharing

Real-time jobs must not starve the machine: one core only, never the one proclab's own
threads are kept on (they are moved off it while the jobs run); at most MAX_CPU_S of CPU
in all; the kernel's real-time throttling is left as it is, and no system setting is
changed. Two runs on the same core wait for each other (a lock file), so neither
measures the other.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import json
import math
import os
import select
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from proclab.core import kernel_job
from proclab.core.cpus import usable_cpus
from proclab.core.errors import ProclabError
from proclab.core.exits import describe_exit
from proclab.core.model import ProcessRow, ProcessSpec
from proclab.core.scheduling import (
    Job,
    Schedule,
    ScheduleError,
    Settings,
    Slice,
    check_jobs,
    format_time,
    nice_number,
    schedule,
    schedule_from_gantt,
    to_json_dict,
)
from proclab.core.spec import build_spec

DEFAULT_UNIT_MS = 10.0
MIN_UNIT_MS = 1.0
MAX_UNIT_MS = 1000.0
MAX_CPU_S = 30.0  # the jobs' CPU in all: a real-time job holds its core while it runs
MAX_WALL_S = 60.0  # the simulated makespan: arrivals far apart would hold the run open
MAX_REAL_JOBS = 50
MIN_BURST_MS = 1.0  # shorter, a burst is lost among wake-ups and switches
PS_SLICES = 2_000  # processor sharing is simulated as RR with about this many slices
START_TIMEOUT_S = 30.0
LOCK_WAIT_S = 120.0
RR_SYSCTL = "/proc/sys/kernel/sched_rr_timeslice_ms"
READY_AHEAD_NS = 20_000_000  # the release clock's zero, this far after the last child is ready


@dataclass(frozen=True, slots=True)
class KernelPolicy:
    key: str  # fifo, rr, priority, other
    kernel: str  # what the kernel calls it
    child: str  # the policy a job sets (kernel_job.POLICIES)
    algorithm: str  # the simulation it is compared with
    realtime: bool
    about: str


POLICIES: dict[str, KernelPolicy] = {
    "fifo": KernelPolicy(
        "fifo", "SCHED_FIFO", "fifo", "fcfs", True, "one real-time priority: FCFS"
    ),
    "rr": KernelPolicy(
        "rr", "SCHED_RR", "rr", "rr", True, "one real-time priority, the kernel's quantum: RR"
    ),
    "priority": KernelPolicy(
        "priority",
        "SCHED_FIFO",
        "fifo",
        "priority",
        True,
        "a real-time priority per priority number: preemptive priority",
    ),
    "other": KernelPolicy(
        "other",
        "SCHED_OTHER",
        "other",
        "rr",
        False,
        "the default fair scheduler: processor sharing",
    ),
}
POLICY_KEYS = tuple(POLICIES)

KERNEL_RULES = f"""\
Kernel    proclab schedule --real (F5 in the app) runs the jobs as
          real processes on one core, under SCHED_FIFO (fifo <->
          FCFS), SCHED_RR (rr <-> RR with the kernel's quantum),
          SCHED_FIFO with a priority per priority number (priority <->
          preemptive priority) or SCHED_OTHER (other <-> RR with a
          tiny quantum: processor sharing). A job becomes runnable at
          arrival x unit (jobs arriving together in list order) and
          burns CPU until the kernel counts its burst x unit of its own
          CPU time. It records each stretch on the CPU from its clock
          readings: over a gap of more than {kernel_job.GAP_NS // 1000} µs it asks the
          kernel whether it was switched out (the stretch ends) or not
          (interrupts or the host, billed to it: interrupted). At most
          {MAX_REAL_JOBS} jobs, {MAX_CPU_S:g} s of CPU, bursts of {MIN_BURST_MS:g} ms or more. fifo,
          rr and priority need the right to use real-time policies
          (root, CAP_SYS_NICE or ulimit -r); other does not.
"""

class KernelError(ProclabError):
    """A run that cannot be done, said in one line; `field` names what to change (policy,
    unit, core, jobs), or is empty when nothing the user set is at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class KernelCancelled(ProclabError):
    """The run was cancelled (a signal, the app quitting); its jobs were ended."""


# Planning ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KernelPlan:
    """A checked run: nothing starts from an unchecked one."""

    policy: KernelPolicy
    jobs: tuple[Job, ...]
    unit_ms: float
    core: int
    others: tuple[int, ...]  # where proclab's threads (and finished jobs) go meanwhile
    priorities: tuple[int, ...]  # each job's real-time priority (0 under SCHED_OTHER)
    releaser_priority: int
    quantum_ms: float  # the kernel's round-robin quantum, as read now
    simulated: Schedule

    @property
    def cpu_s(self) -> float:
        return sum(j.burst for j in self.jobs) * self.unit_ms / 1000

    @property
    def expected_s(self) -> float:
        """The simulated makespan, in seconds: how long the run should take."""
        return self.simulated.makespan * self.unit_ms / 1000


def plan(
    jobs: Sequence[Job],
    policy: str,
    unit_ms: float = DEFAULT_UNIT_MS,
    core: int | None = None,
) -> KernelPlan:
    """Check a run and work out everything it needs; KernelError (or ScheduleError for
    the jobs themselves) says in one line what is wrong."""
    kind = POLICIES.get(policy)
    if kind is None:
        raise KernelError(f"must be one of {', '.join(POLICY_KEYS)}, got {policy!r}", "policy")
    problems = check_jobs(jobs)
    if problems:
        problem = problems[0]
        who = f"{jobs[problem.index].name}: " if problem.index >= 0 else ""
        raise ScheduleError(f"{who}{problem.describe()}", field=problem.field)
    jobs = tuple(jobs)
    if len(jobs) > MAX_REAL_JOBS:
        raise KernelError(
            f"{len(jobs)} jobs: at most {MAX_REAL_JOBS} on the real kernel (one process each)",
            "jobs",
        )
    if not (math.isfinite(unit_ms) and MIN_UNIT_MS <= unit_ms <= MAX_UNIT_MS):
        raise KernelError(
            f"must be from {MIN_UNIT_MS:g} to {MAX_UNIT_MS:g} ms, got {unit_ms:g}", "unit"
        )
    usable = usable_cpus()
    if len(usable) < 2:
        raise KernelError(
            f"needs 2 usable CPUs, one for the jobs and one for proclab; this process may use"
            f" only CPU {usable[0]}",
            "core",
        )
    if core is None:
        core = usable[-1]
    elif core not in usable:
        raise KernelError(
            f"CPU {core} is not one this process may use ({', '.join(map(str, usable))})",
            "core",
        )
    cpu_s = sum(j.burst for j in jobs) * unit_ms / 1000
    if cpu_s > MAX_CPU_S:
        raise KernelError(
            f"these jobs need {cpu_s:.3g} s of CPU at {unit_ms:g} ms a unit: at most"
            f" {MAX_CPU_S:g} s, since a real-time job holds its core while it runs;"
            f" use a smaller unit",
            "unit",
        )
    short = min(jobs, key=lambda j: j.burst)
    if short.burst * unit_ms < MIN_BURST_MS:
        raise KernelError(
            f"{short.name}'s burst is {short.burst * unit_ms:.3g} ms at {unit_ms:g} ms a unit:"
            f" at least {MIN_BURST_MS:g} ms, or wake-ups and switches are all it measures;"
            f" use a larger unit",
            "unit",
        )
    quantum_ms = _rr_quantum_ms()
    simulated = simulate(jobs, kind.key, unit_ms, quantum_ms)
    wall_s = simulated.makespan * unit_ms / 1000
    if wall_s > MAX_WALL_S:
        raise KernelError(
            f"the run would last {wall_s:.3g} s (the simulated makespan at {unit_ms:g} ms a"
            f" unit): at most {MAX_WALL_S:g} s; use a smaller unit",
            "unit",
        )
    priorities, releaser = _priorities(jobs, kind)
    return KernelPlan(
        policy=kind,
        jobs=jobs,
        unit_ms=unit_ms,
        core=core,
        others=tuple(c for c in usable if c != core),
        priorities=priorities,
        releaser_priority=releaser,
        quantum_ms=quantum_ms,
        simulated=simulated,
    )


def _priorities(jobs: Sequence[Job], kind: KernelPolicy) -> tuple[tuple[int, ...], int]:
    """Each job's real-time priority and the releaser's, above them all. Under
    `priority` the lowest number gets the highest real-time priority, and jobs with no
    priority get 1, below every numbered one."""
    if not kind.realtime:
        return tuple(0 for _ in jobs), 0
    if kind.key != "priority":
        return tuple(1 for _ in jobs), 2
    levels = sorted({j.priority for j in jobs if j.priority is not None})
    base = 2 if any(j.priority is None for j in jobs) else 1
    top = base + len(levels) - 1
    chosen = tuple(1 if j.priority is None else top - levels.index(j.priority) for j in jobs)
    return chosen, max(chosen) + 1


def _rr_quantum_ms() -> float:
    try:
        with open(RR_SYSCTL, encoding="ascii") as file:
            return float(file.read().strip())
    except (OSError, ValueError):
        return 100.0  # the kernel's default (RR_TIMESLICE)


def simulate(jobs: Sequence[Job], policy: str, unit_ms: float, quantum_ms: float) -> Schedule:
    """The simulation a policy is compared with."""
    kind = POLICIES[policy]
    if policy == "rr":
        return schedule(jobs, "rr", Settings(quantum=quantum_ms / unit_ms))
    if policy == "other":
        quantum = sharing_quantum(jobs)
        shared = schedule(jobs, "rr", Settings(quantum=quantum))
        return replace(shared, label=f"processor sharing (RR, quantum {format_time(quantum)})")
    return schedule(jobs, kind.algorithm)


def sharing_quantum(jobs: Sequence[Job]) -> float:
    """The smallest quantum of 1, 2 or 5 times a power of ten that cuts these jobs into
    at most about PS_SLICES slices: RR with it is processor sharing to within a slice."""
    return nice_number(sum(j.burst for j in jobs) / PS_SLICES)


# Rights -------------------------------------------------------------------------------------


def check_rights(kind: KernelPolicy, priority: int) -> None:
    """Refuse, in one line saying what would allow it, a real-time policy this user may
    not use. Tried for real, in a short-lived thread of proclab's: the limit may come from
    a capability, `ulimit -r` or a control group, and only the kernel knows them all."""
    if not kind.realtime:
        return
    refused: list[OSError] = []

    def probe() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        except OSError as exc:
            refused.append(exc)
        else:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))

    thread = threading.Thread(target=probe, name="proclab-rt-probe")
    thread.start()
    thread.join()
    if refused:
        raise KernelError(
            f"{kind.kernel} needs the right to use real-time policies, which this user lacks"
            f" ({refused[0].strerror}): run as root, with CAP_SYS_NICE, or with a real-time"
            f" priority limit of {priority} or more (ulimit -r {priority});"
            f" --policy other needs no right",
            "policy",
        )


# The measurement ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobMeasure:
    """One job's own record and the kernel's count of it, in the CSV's units from the
    release clock's zero."""

    name: str
    intervals: tuple[tuple[float, float], ...]  # its stretches on the CPU, as it saw them
    cpu: float  # its CPU time over its burn, by the kernel's CPU clock
    run: float  # /proc schedstat: time on a CPU, from before its release to its end
    wait: float  # /proc schedstat: time runnable but waiting for the CPU, the same span
    times_on_cpu: int  # /proc schedstat: how many times it was put on a CPU
    bookkeeping_ms: float  # its CPU on the core besides the burn: asking about gaps, set-up
    reporting_ms: float = 0.0  # its CPU writing its report, once off the core
    asked_ms: float = 0.0  # the part of bookkeeping_ms spent asking the kernel about gaps
    interrupted: float = 0.0  # gaps inside its stretches in which it was not switched out
    pid: int = 0

    @property
    def on_cpu(self) -> float:
        return sum(end - start for start, end in self.intervals)


@dataclass(frozen=True, slots=True)
class KernelResult:
    policy: str  # a key of POLICIES
    unit_ms: float
    quantum_ms: float  # the kernel's round-robin quantum
    core: int
    measured: Schedule
    simulated: Schedule
    jobs: tuple[JobMeasure, ...]  # in the jobs' order
    release_late_ms: float  # the latest any release came after its arrival time
    no_job: float  # time, while some job was ready, that the core ran none of them

    @property
    def kind(self) -> KernelPolicy:
        return POLICIES[self.policy]

    def differences(self) -> list[tuple[str, float, float, float]]:
        """Per job: measured - simulated turnaround, waiting and response."""
        return [
            (m.name, m.turnaround - s.turnaround, m.waiting - s.waiting, m.response - s.response)
            for m, s in zip(self.measured.jobs, self.simulated.jobs, strict=True)
        ]

    def average_differences(self) -> tuple[float, float, float]:
        measured, simulated = self.measured.averages.figures(), self.simulated.averages.figures()
        return (
            measured[0] - simulated[0],
            measured[1] - simulated[1],
            measured[2] - simulated[2],
        )


def merge_runs(runs: Sequence[tuple[str, Sequence[tuple[float, float]]]]) -> tuple[Slice, ...]:
    """The core's Gantt chart from each job's own stretches on the CPU: in time order,
    from 0, gaps (no job on the CPU) as idle slices. One core runs one job at a time, so
    stretches overlap only where a job was away for less than the gap it can see; there
    the job that started later held the CPU, and the other's stretch is cut around it."""
    pending = [(start, end, name) for name, stretches in runs for start, end in stretches]
    pending = [(max(start, 0.0), end, name) for start, end, name in pending if end > start]
    pending.sort()  # a sorted list is a heap
    out: list[Slice] = []
    while pending:
        start, end, name = heapq.heappop(pending)
        if end <= start:
            continue
        if out and start < out[-1].end:
            before = out.pop()
            if before.start < start:
                out.append(Slice(before.job, before.start, start))
            if before.end > end:
                heapq.heappush(pending, (end, before.end, before.job))  # type: ignore[arg-type]
        if out and out[-1].job == name and out[-1].end == start:
            start = out.pop().start
        out.append(Slice(name, start, end))
    chart: list[Slice] = []
    at = 0.0
    for piece in out:
        if piece.start > at:
            chart.append(Slice(None, at, piece.start))
        chart.append(piece)
        at = piece.end
    return tuple(chart)


def measure(
    jobs: Sequence[Job],
    policy: str,
    unit_ms: float,
    core: int,
    quantum_ms: float,
    measures: Sequence[JobMeasure],
    release_late_ms: float = 0.0,
) -> KernelResult:
    """The measured chart and figures from each job's record, beside the simulation."""
    kind = POLICIES[policy]
    gantt = merge_runs([(m.name, m.intervals) for m in measures])
    label = f"{kind.kernel} on CPU {core}"
    measured = schedule_from_gantt(jobs, gantt, kind.algorithm, label)
    simulated = simulate(jobs, policy, unit_ms, quantum_ms)
    return KernelResult(
        policy=policy,
        unit_ms=unit_ms,
        quantum_ms=quantum_ms,
        core=core,
        measured=measured,
        simulated=simulated,
        jobs=tuple(measures),
        release_late_ms=release_late_ms,
        no_job=_no_job_while_ready(measured),
    )


def _no_job_while_ready(measured: Schedule) -> float:
    """Time in the chart's gaps during which some job had arrived and not completed."""
    ready: list[list[float]] = []
    for arrival, completion in sorted((r.arrival, r.completion) for r in measured.jobs):
        if ready and arrival <= ready[-1][1]:
            ready[-1][1] = max(ready[-1][1], completion)
        else:
            ready.append([arrival, completion])
    return sum(
        max(0.0, min(piece.end, until) - max(piece.start, since))
        for piece in measured.gantt
        if piece.job is None
        for since, until in ready
    )


# Running ------------------------------------------------------------------------------------


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
    shm = "/dev/shm"
    place = shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None
    folder = tempfile.mkdtemp(prefix="proclab-kernel-", dir=place)
    ids: list[int] = []
    try:
        specs = _specs(the_plan, folder)  # checked while proclab may still use every CPU
        with _core_lock(the_plan.core, stop, report), _kept_off(the_plan.core, the_plan.others):
            return _run(the_plan, controller, folder, specs, ids, report, stop)
    finally:
        _end(controller, ids)
        shutil.rmtree(folder, ignore_errors=True)


def _specs(the_plan: KernelPlan, folder: str) -> list[ProcessSpec]:
    """The jobs' children, then the releaser's."""
    kind = the_plan.policy
    unit_ns = the_plan.unit_ms * 1e6
    specs = [
        build_spec(
            "proclab.core.kernel_job:job",
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
            "proclab.core.kernel_job:releaser",
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


# JSON -------------------------------------------------------------------------------------


def to_json(result: KernelResult) -> dict[str, Any]:
    """The run as plain JSON data: the measured and the simulated schedules in the shape
    `proclab schedule --json` has, their differences, and each job's own record (enough
    to rebuild the result: from_json)."""
    differences = result.differences()
    average = result.average_differences()
    return {
        "policy": result.policy,
        "kernel_policy": result.kind.kernel,
        "unit_ms": _number(result.unit_ms),
        "kernel_quantum_ms": _number(result.quantum_ms),
        "core": result.core,
        "measured": to_json_dict(result.measured),
        "simulated": to_json_dict(result.simulated),
        "difference": {
            "jobs": [
                {"name": name, "turnaround": t, "waiting": w, "response": r}
                for name, t, w, r in differences
            ],
            "averages": {"turnaround": average[0], "waiting": average[1], "response": average[2]},
        },
        "kernel": {
            "release_late_ms": result.release_late_ms,
            "no_job_while_ready": result.no_job,
            "jobs": [
                {
                    "name": m.name,
                    "pid": m.pid,
                    "cpu": m.cpu,
                    "run": m.run,
                    "wait": m.wait,
                    "times_on_cpu": m.times_on_cpu,
                    "bookkeeping_ms": m.bookkeeping_ms,
                    "reporting_ms": m.reporting_ms,
                    "asked_ms": m.asked_ms,
                    "interrupted": m.interrupted,
                    "intervals": [list(pair) for pair in m.intervals],
                }
                for m in result.jobs
            ],
        },
    }


def from_json(data: Mapping[str, Any]) -> KernelResult:
    """A result from to_json's data (a recorded run, shown again); ValueError if it is
    not one."""
    try:
        jobs = [
            Job(j["name"], float(j["arrival"]), float(j["burst"]), j.get("priority"))
            for j in data["simulated"]["jobs"]
        ]
        measures = [
            JobMeasure(
                name=str(m["name"]),
                intervals=tuple((float(a), float(b)) for a, b in m["intervals"]),
                cpu=float(m["cpu"]),
                run=float(m["run"]),
                wait=float(m["wait"]),
                times_on_cpu=int(m["times_on_cpu"]),
                bookkeeping_ms=float(m["bookkeeping_ms"]),
                reporting_ms=float(m["reporting_ms"]),
                asked_ms=float(m["asked_ms"]),
                interrupted=float(m["interrupted"]),
                pid=int(m.get("pid", 0)),
            )
            for m in data["kernel"]["jobs"]
        ]
        return measure(
            jobs,
            str(data["policy"]),
            float(data["unit_ms"]),
            int(data["core"]),
            float(data["kernel_quantum_ms"]),
            measures,
            float(data["kernel"]["release_late_ms"]),
        )
    except (KeyError, TypeError, ValueError, ScheduleError) as exc:
        raise ValueError(f"not a recorded kernel run: {exc}") from None


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value
