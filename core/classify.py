"""CPU-bound or I/O-bound, read from a child's own figures.

The rule, as the help screen states it: over its life so far, a child that *wanted* a CPU
(ran on one, or waited in a run queue for one) at least half of the time is CPU-bound;
otherwise it spent most of its life blocked (on I/O, a timer, a lock) and is I/O-bound.
Time it spent stopped (SIGSTOP, paused) is neither: it is left out of its life. (Counted
in, a CPU-bound child paused for a while read as I/O-bound, and stayed so.)
Counting the run-queue wait keeps a CPU-bound child that shares its core with others
(pinned, or on a busy machine) CPU-bound, which CPU time alone would not. Context switches
tell the same story from the other side: a CPU-bound child is mostly preempted
(involuntary), an I/O-bound one mostly gives the CPU up itself (voluntary).
"""

from __future__ import annotations

from typing import Literal

from proclab.core.model import ProcessRow

Workload = Literal["CPU", "I/O"]

# Too young to tell: start-up (importing Python, for spawn) dominates the first moments.
MIN_WALL_S = 0.5
CPU_BOUND_DEMAND = 0.5


def cpu_demand(cpu_time: float, run_delay: float, wall: float) -> float:
    """Share of its wall time the child ran on or waited for a CPU."""
    return (cpu_time + run_delay) / wall if wall > 0 else 0.0


def runnable_time(row: ProcessRow, now: float) -> float | None:
    """Its wall time so far, less the time it spent stopped; None before it started."""
    wall = row.wall_time(now)
    return None if wall is None else max(0.0, wall - row.stopped_time(now))


def classify(row: ProcessRow, now: float) -> Workload | None:
    wall = runnable_time(row, now)
    if row.sample is None or wall is None or wall < MIN_WALL_S or row.end_unseen:
        return None
    demand = cpu_demand(row.sample.cpu_time, row.sample.run_delay, wall)
    return "CPU" if demand >= CPU_BOUND_DEMAND else "I/O"
