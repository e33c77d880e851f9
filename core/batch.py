"""Children started together (a batch: `proclab run --count N`, the form's Count): how long
the batch took, what their own times add up to, and what running them at once gained.

One rule, which BATCH_RULE states in words for the help and the CLI:
- wall: from the first child's start to the last one's end (to now while some still run);
- lives: each child's own wall time, added up; lives / wall is how many were alive at once
  on average (their overlap);
- cpu: each child's CPU time, added up: the CPU work they did;
- the batch is CPU-bound or I/O-bound by core.classify's rule applied to the sums: it
  wanted a CPU (ran on one, or waited in a run queue) at least half of its lives;
- CPU-bound: cpu / wall is how many cores were busy on average. The speed-up over the same
  work one after another is alone / wall, where alone is each child's life less its waits
  for a CPU (which running at once made) and its stops, added up: its CPU work and its
  own waits (a sleep, I/O). For children that only compute, alone is their CPU time and the
  two figures agree; children that also wait overlap their waits too (two that each spin
  1 s and sleep 1 s take 2 s at once, 4 s one after another: 2x, with one core busy on
  average). Allowed one core (pinned), they shared it: no parallel speed-up. Below
  NO_SPEEDUP_BELOW they took turns all the same: no parallel speed-up either. More cores
  busy than they could use is measuring noise.
- I/O-bound: their overlap is concurrency (they waited at the same time), not parallelism;
  no speed-up from cores is claimed, only what the overlap saved in wall time.
- theirs: the CPU time of the processes they started and reaped (a Pool inside the
  target), told apart: the rule is about the children themselves, and a child that waits
  for its own children's work waits. Said beside the verdict, never left out silently.

Summing wall times alone misleads: two CPU-bound children pinned to one core each take
twice as long, so their lives add up to twice the batch's wall time although no work ran
in parallel; a task that runs for a fixed time (spin) shows the same.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from proclab.core.classify import CPU_BOUND_DEMAND, cpu_demand
from proclab.core.model import ProcessRow, ProcSample, ProcState

NO_SPEEDUP_BELOW = 1.1  # cores busy on average: below this, within noise of one core
NOISE_ABOVE = 1.05  # a speed-up this much past the cores allowed is measuring noise
OWN_WAITS_SHARE = 0.25  # of their work alone, their own waits: from this, they count
# A batch shorter than this is mostly starting them (a bootstrap, a spawn child's 60 ms
# interpreter): three children of an empty target read "1.7x faster, CPU-bound" in 15 ms.
TOO_SHORT_S = 0.1
OTHER_THREADS_SHARE = 0.1  # of a child's CPU time, run by its other threads: it is threaded
OTHER_THREADS_MIN_S = 0.02

BATCH_RULE = (
    "A batch (children started together) takes from its first start to its last end."
    f" CPU-bound (they wanted a CPU {CPU_BOUND_DEMAND:.0%} of their lives or more): their"
    " CPU time added up, over that wall time, is how many cores were busy; their lives less"
    " their waits for a CPU, added up, over it, the speed-up over the same work one after"
    " another (the same figure for children that only compute; more for those whose own"
    " waits overlapped too, less than that if they waited for each other). Pinned to one"
    f" core, or under {NO_SPEEDUP_BELOW:g}x, they shared a core: no parallel speed-up."
    " I/O-bound: they waited at the same time (concurrency, not parallelism). Over within"
    f" {TOO_SHORT_S * 1000:.0f} ms, nothing is stated: starting them is most of it; nor where"
    " they ran threads of their own, which keep cores busy by themselves (and whose waits"
    " for a CPU are not counted). The CPU of"
    " processes they started and reaped (a Pool inside each) is said apart: each row is one"
    " process."
)


class Verdict(enum.StrEnum):
    ALONE = "alone"  # fewer than two children started: nothing ran at once
    UNMEASURED = "unmeasured"  # some child's CPU time is not known (never sampled)
    TOO_SHORT = "too short"  # over within TOO_SHORT_S: start-up is most of what was measured
    PARALLEL = "parallel"  # CPU-bound, more than one core busy on average
    SHARED_ONE_CORE = "shared one core"  # CPU-bound, allowed one core only
    NO_SPEEDUP = "no speed-up"  # CPU-bound, allowed more, but about one core busy
    CONCURRENT = "concurrent"  # I/O-bound: they waited at the same time


@dataclass(frozen=True, slots=True)
class BatchFigures:
    count: int  # children in the batch
    started: int  # of them, how many started
    ended: int  # of them, how many have ended
    wall: float  # first start to last end (or now), seconds
    lives: float  # their own wall times added up
    cpu: float  # their CPU times added up (of those measured)
    waited: float  # their run-queue waits added up
    cores: int  # CPUs they were allowed to run on
    measured: bool  # every started child has a CPU figure
    stopped: float = 0.0  # of their lives, the time they spent stopped, added up
    paused: int = 0  # of those not ended, how many are stopped now (not "still running")
    # CPU of the processes they started and reaped: work done for them, in processes of
    # its own (rows of no batch), so in none of the figures above
    theirs: float = 0.0
    cpu_at_least: bool = False  # some child's CPU time is a lower bound, so is their sum
    # Some child's own threads did a good part of its work: they may have kept several
    # cores busy by themselves, so cores busy is not what running them at once gained
    # (two children hashing in two threads each read "1.9x" where one alone took half
    # the time: 1.0x).
    threaded: bool = False

    @property
    def done(self) -> bool:
        return self.ended == self.count

    @property
    def overlap(self) -> float:
        """How many were alive at once, on average."""
        return self.lives / self.wall if self.wall > 0 else 0.0

    @property
    def busy_cores(self) -> float:
        """Cores busy with their work on average."""
        return self.cpu / self.wall if self.wall > 0 else 0.0

    @property
    def alone(self) -> float:
        """What their lives would have added up to one after another: each life less its
        waits for a CPU and its stops (its CPU work and its own waits)."""
        return max(0.0, self.lives - self.waited - self.stopped)

    @property
    def speedup(self) -> float:
        """How much faster than one after another, when CPU-bound."""
        return self.alone / self.wall if self.wall > 0 else 0.0

    @property
    def waits_overlapped(self) -> bool:
        """Their own waits (sleeps, I/O) were a good part of their work, and overlapped:
        the speed-up is more than the cores busy on average say. Not a start-up's few
        tens of milliseconds of reading files beside a CPU-bound child's work."""
        if self.cpu_at_least:  # life not on a CPU may be CPU that went unread: no waits
            return False
        own_waits = self.alone - self.cpu
        return own_waits >= OWN_WAITS_SHARE * self.alone and self.speedup >= self.busy_cores + 0.1

    @property
    def cpu_bound(self) -> bool:
        runnable = max(0.0, self.lives - self.stopped)  # stopped, they wanted no CPU
        return cpu_demand(self.cpu, self.waited, runnable) >= CPU_BOUND_DEMAND

    @property
    def beyond_cores(self) -> bool:
        """More cores busy than they were allowed: a measuring error, not a result."""
        return self.busy_cores > self.cores * NOISE_ABOVE

    @property
    def verdict(self) -> Verdict:
        if self.started < 2 or self.wall <= 0:
            return Verdict.ALONE
        if not self.measured:
            return Verdict.UNMEASURED
        if self.wall < TOO_SHORT_S:
            return Verdict.TOO_SHORT
        if not self.cpu_bound:
            return Verdict.CONCURRENT
        if self.cores <= 1:
            return Verdict.SHARED_ONE_CORE
        if self.busy_cores < NO_SPEEDUP_BELOW and self.speedup < NO_SPEEDUP_BELOW:
            return Verdict.NO_SPEEDUP
        return Verdict.PARALLEL


def batch_figures(rows: Iterable[ProcessRow], now: float, usable: Iterable[int]) -> BatchFigures:
    """The figures of `rows` taken as one batch; `usable`: the CPUs of the machine (a
    child pinned by affinity may use only those it names)."""
    rows = tuple(rows)
    started = [r for r in rows if r.started_at is not None]
    allowed: set[int] = set()
    machine = set(usable)
    for row in rows:
        pinned = row.spec.affinity if row.spec is not None else None  # a watched row: none
        allowed |= set(pinned) & machine if pinned else machine
    wall = 0.0
    if started:
        first = min(r.started_at for r in started if r.started_at is not None)
        last = max(r.ended_at if r.ended_at is not None else now for r in started)
        wall = max(0.0, last - first)
    return BatchFigures(
        count=len(rows),
        started=len(started),
        ended=sum(1 for r in rows if r.state.is_over),
        wall=wall,
        lives=sum(r.wall_time(now) or 0.0 for r in started),
        cpu=sum(r.sample.cpu_time for r in started if r.sample is not None),
        waited=sum(r.sample.run_delay for r in started if r.sample is not None),
        cores=max(1, len(allowed)),
        measured=all(r.sample is not None for r in started),
        stopped=sum(r.stopped_time(now) for r in started),
        paused=sum(1 for r in rows if r.state is ProcState.STOPPED),
        theirs=sum(r.sample.reaped_cpu for r in started if r.sample is not None),
        cpu_at_least=any(r.cpu_at_least for r in started),
        threaded=any(_threaded(r.sample) for r in started if r.sample is not None),
    )


def _threaded(sample: ProcSample) -> bool:
    """Its threads other than the main one ran a good part of its CPU time: more than
    /proc's rounding (a clock tick each for the process and its main thread)."""
    return sample.others_cpu >= max(OTHER_THREADS_MIN_S, OTHER_THREADS_SHARE * sample.cpu_time)


def batch_of(rows: Iterable[ProcessRow], row: ProcessRow) -> tuple[ProcessRow, ...]:
    """The children started together with `row` (itself included), in start order; just
    `row` when it was started alone."""
    if row.batch is None:
        return (row,)
    return tuple(sorted((r for r in rows if r.batch == row.batch), key=lambda r: r.id))
