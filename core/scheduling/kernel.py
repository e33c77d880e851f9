"""The textbook jobs on the real kernel, measured beside the simulation: what a run is
(its plan, checked before anything starts), what it measured and how that is read.

Linux can be asked for the textbook policies: SCHED_FIFO is first come, first served
among equal priorities; SCHED_RR is round robin with the kernel's quantum; SCHED_FIFO
with different priorities is preemptive priority scheduling; SCHED_OTHER, the default,
shares the CPU fairly (processor sharing, about). kernel_run starts each job as a real
child (through the controller, so every exit path ends them), all on one core, with the
policy set before the job may run; a releaser makes each job runnable at its arrival;
each job burns CPU until the kernel counts its burst of its own CPU time, and records
every stretch it spent on the CPU (kernel_job). The stretches, merged, are the measured
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

import heapq
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from proclab.core.cpus import usable_cpus
from proclab.core.errors import ProclabError
from proclab.core.scheduling import kernel_job
from proclab.core.scheduling.simulator import (
    Averages,
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

DEFAULT_UNIT_MS = 10.0
MIN_UNIT_MS = 1.0
MAX_UNIT_MS = 1000.0
MAX_CPU_S = 30.0  # the jobs' CPU in all: a real-time job holds its core while it runs
MAX_WALL_S = 60.0  # the simulated makespan: arrivals far apart would hold the run open
MAX_REAL_JOBS = 50
# A measured time's decimals (of a unit, or of a ms): a stretch's edges are known to
# within kernel_job.GAP_NS (50 µs, half a hundredth of a 10 ms unit), and the six decimals
# a clock's nanoseconds divided by the unit gave said more (an axis ending "18.076967").
MEASURED_DECIMALS = 3
MIN_BURST_MS = 1.0  # shorter, a burst is lost among wake-ups and switches
PS_SLICES = 2_000  # processor sharing is simulated as RR with about this many slices
RR_SYSCTL = "/proc/sys/kernel/sched_rr_timeslice_ms"


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


def check_together(plans: Sequence[KernelPlan]) -> None:
    """Runs made one after another (`--policy all`) are held to the limits together: each
    was checked alone, and four ran 120 s of real-time CPU where 30 is the most."""
    if len(plans) < 2:
        return
    cpu_s = sum(p.cpu_s for p in plans)
    wall_s = sum(p.expected_s for p in plans)
    runs = f"{len(plans)} runs of these jobs, one after another,"
    if cpu_s > MAX_CPU_S:
        raise KernelError(
            f"{runs} need {cpu_s:.6g} s of CPU: at most {MAX_CPU_S:g} s in all; use a smaller unit",
            "unit",
        )
    if wall_s > MAX_WALL_S:
        raise KernelError(
            f"{runs} would last {wall_s:.6g} s: at most {MAX_WALL_S:g} s in all; use a"
            " smaller unit",
            "unit",
        )


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
            f"these jobs need {cpu_s:.6g} s of CPU at {unit_ms:g} ms a unit: at most"
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
            f"the run would last {wall_s:.6g} s (the simulated makespan at {unit_ms:g} ms a"
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
    stretches_of = [(start, end, name) for name, stretches in runs for start, end in stretches]
    pending: list[tuple[float, float, str | None]] = [
        (max(start, 0.0), end, name) for start, end, name in stretches_of if end > start
    ]
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
                heapq.heappush(pending, (end, before.end, before.job))
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
    gantt = merge_runs(
        [
            (m.name, [(measured_value(a), measured_value(b)) for a, b in m.intervals])
            for m in measures
        ]
    )
    label = f"{kind.kernel} on CPU {core}"
    measured = schedule_from_gantt(jobs, gantt, kind.algorithm, label)
    # and their averages too ("9.04675" of four such times)
    averages = Averages(*map(measured_value, measured.averages.figures()))
    measured = replace(measured, averages=averages)
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


def measured_value(value: float) -> float:
    """A time the run measured, to MEASURED_DECIMALS."""
    return round(value, MEASURED_DECIMALS)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value
