"""Experiments with real processes, measured now on this machine.

- parallel:      N copies of a task one after another, then all at once (AT_ONCE_RUNS
                 times, the median counts): wall time each way, speed-up (serial /
                 parallel) and efficiency (speed-up / the most cores N copies can use,
                 min(N, cores)); after a warm-up (below).
- start-methods: the start latency of fork, forkserver and spawn: from Process.start()
                 being called to the first line of the child's target running (the task
                 `proclab.core.tasks:clock` prints the wall clock then), several samples
                 each, taken in turns so that a busy moment hits every method alike,
                 after one start of each that is not counted (a first start pays
                 one-off costs).
- cpu-vs-io:     for N = 1, 2, 4... a CPU-bound and an I/O-bound task, N copies at once:
                 speed-up = N x (one copy's time alone) / (N copies' time at once). I/O
                 keeps gaining with N; CPU stops near the number of cores. One copy's
                 time alone is the median of SOLO_RUNS runs, N at once the median of
                 AT_ONCE_RUNS; after a warm-up.

Every speed-up comes with its spread over the repeats (the fastest and slowest single copy
against the slowest and fastest run at once), and a CPU-bound speed-up above what the cores
allow is flagged as noise, not shown as a result: on a machine busy with other work, N
copies take a larger share of it than one copy alone did (the scheduler shares a core per
runnable process), which no number of cores explains. Whether the copies were CPU-bound is
measured (core.batch's rule on the children run at once), not assumed from the task.

Warm-up: before the first measured copy, one uncounted child with the same start method
imports the target without running it (`proclab.core.tasks:load`). A first start pays
one-off costs that the copies after it do not: a fork server that is still starting
(~0.1 s here: it made 2 zero-length copies look 8x faster at once than one after another)
and the target's first import (reading it from disk, compiling it). Running the task
itself would warm the same things, at the cost of its whole duration.

`plan(...)` checks the request (raising InputError; nothing started), `run(plan, progress,
cancel)` runs it in its own Controller, so every child is ended whatever happens, and
returns a frozen result: `to_json()`, `csv_rows()`, `table()` and `bars()` for any UI.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from proclab.core.batch import NOISE_ABOVE, OWN_WAITS_SHARE, TOO_SHORT_S, batch_figures
from proclab.core.controller import Controller
from proclab.core.cpus import usable_cpus
from proclab.core.defaults import DEFAULT_METHOD, METHODS
from proclab.core.errors import InputError, ProclabError
from proclab.core.exits import describe_exit
from proclab.core.model import ProcessSpec, ProcState
from proclab.core.spec import build_spec
from proclab.core.words import plural

ExperimentName = Literal["parallel", "start-methods", "cpu-vs-io"]
EXPERIMENTS: tuple[ExperimentName, ...] = ("parallel", "start-methods", "cpu-vs-io")
TASKS = "proclab.core.tasks"
WARM_UP_TASK = f"{TASKS}:load"

PARALLEL_TASK = (f"{TASKS}:count", "(5_000_000,)")  # about 0.3 s of CPU
CPU_TASK = (f"{TASKS}:count", "(6_000_000,)")  # about 0.4 s of CPU: start-up stays small beside it
IO_TASK = (f"{TASKS}:sleep", "(0.2,)")
CLOCK_TASK = f"{TASKS}:clock"
DEFAULT_COUNTS: dict[str, int] = {"parallel": 4, "start-methods": 5}
MAX_COUNTS: dict[str, int] = {"parallel": 64, "start-methods": 50, "cpu-vs-io": 32}
SOLO_RUNS = 3  # cpu-vs-io: one copy alone is timed this many times (the median counts)
AT_ONCE_RUNS = 3  # N copies at once are timed this many times (the median counts)
SAMPLE_INTERVAL_S = 1.0  # the experiments' controller samples rarely: it only joins


def default_count(name: str) -> int:
    if name == "cpu-vs-io":
        return min(MAX_COUNTS[name], max(4, 4 * len(usable_cpus())))
    return DEFAULT_COUNTS[name]


class ExperimentError(ProclabError):
    """A child of the experiment did not exit cleanly, or a start failed."""


class Cancelled(ProclabError):
    """The experiment was cancelled; its children have been ended."""


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int
    text: str  # what is running now

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class Plan:
    """A checked request: running it starts only what it says."""

    name: ExperimentName
    count: int
    specs: tuple[
        ProcessSpec, ...
    ]  # parallel: (task,); cpu-vs-io: (cpu, io); start: clock per method
    counts: tuple[int, ...] = ()  # cpu-vs-io: the values of N

    @property
    def total_steps(self) -> int:
        if self.name == "parallel":
            return self.count + AT_ONCE_RUNS
        if self.name == "start-methods":
            return self.count * len(METHODS)
        more = sum(1 for n in self.counts if n > 1)  # N at once, AT_ONCE_RUNS times
        return 2 * (len(self.counts) - more + more * AT_ONCE_RUNS)


def plan(
    name: str,
    count: int | None = None,
    task: str | None = None,
    args: str = "",
    kwargs: str = "",
    method: str | None = None,
) -> Plan:
    """Check an experiment request; raises InputError naming the wrong field. `method`:
    the children's (default DEFAULT_METHOD); start-methods takes none, measuring all."""
    if name not in EXPERIMENTS:
        raise InputError("experiment", f"{name!r} is not one of {', '.join(EXPERIMENTS)}")
    if count is None:
        count = default_count(name)
    if not 1 <= count <= MAX_COUNTS[name]:
        raise InputError("count", f"must be 1 to {MAX_COUNTS[name]} for {name}, got {count}")
    if name != "parallel" and (task or args or kwargs):
        what = "its own empty task" if name == "start-methods" else "a CPU- and an I/O-bound task"
        raise InputError("task", f"{name} measures {what}; --task/--args/--kwargs are for parallel")
    if name == "start-methods" and method is not None:  # it was taken and not used
        raise InputError("method", "start-methods measures all three; --method is for the others")
    method = method or DEFAULT_METHOD
    if name == "parallel":
        target, default_args = PARALLEL_TASK
        if task:
            target, default_args = task, ""
        spec = build_spec(target, args or default_args, kwargs, method=method)
        return Plan("parallel", count, (spec,))
    if name == "start-methods":
        specs = tuple(build_spec(CLOCK_TASK, method=m) for m in METHODS)
        return Plan("start-methods", count, specs)
    cpu = build_spec(CPU_TASK[0], CPU_TASK[1], method=method)
    io = build_spec(IO_TASK[0], IO_TASK[1], method=method)
    return Plan("cpu-vs-io", count, (cpu, io), counts_up_to(count, len(usable_cpus())))


def counts_up_to(count: int, cores: int) -> tuple[int, ...]:
    """1, 2, 4, 8... up to `count`, with the number of cores and `count` itself."""
    values = {count}
    n = 1
    while n < count:
        values.add(n)
        n *= 2
    if cores <= count:
        values.add(cores)
    return tuple(sorted(values))


# Results ----------------------------------------------------------------------------------

# At once, copies of a CPU-bound task that used less than this share of the CPU work they
# did one after another ran for a set time, not a set amount of work.
LESS_WORK_BELOW = 0.75
# Starting a copy (a copy that only starts and loads the task) this share of one copy's
# time or more: the copies at once measure starting processes, not the task.
STARTING_SHARE = 0.5
START_RUNS = 3  # starts of a copy that only loads the task, timed (the median counts)

Row = tuple[str, ...]
Bar = tuple[str, float, str, str]  # label, value, the value as text, group (for colour)


@dataclass(frozen=True, slots=True)
class ParallelResult:
    task: str
    method: str
    count: int
    cores: int
    serial_s: float  # N copies one after another (cpu-vs-io: N x one copy's time alone)
    parallel_s: float  # N copies at once (the median of the runs)
    serial_runs_s: tuple[float, ...] = ()  # single copies, each timed
    parallel_runs_s: tuple[float, ...] = ()  # each run of N copies at once
    cpu_bound: bool | None = None  # measured on the copies run at once; None: unknown
    # The CPU seconds the copies used in all, one after another and at once (the median
    # run's); None: not measured. A task that runs for a set time (spin), not a set amount
    # of work, uses less at once when the copies share the cores.
    serial_cpu_s: float | None = None
    parallel_cpu_s: float | None = None
    # Their lives one after another, less their waits for a CPU (core.batch's "alone"): the
    # CPU work and the copies' own waits (sleeps, I/O), without a busy machine's queueing.
    serial_alone_s: float | None = None
    # One copy that only starts, loads the task and ends, timed as the copies are: what
    # starting a copy costs with this method (None: not measured).
    start_s: float | None = None

    name = "parallel"

    @property
    def speedup(self) -> float:
        return self.serial_s / self.parallel_s if self.parallel_s > 0 else 0.0

    @property
    def repeat_speedups(self) -> tuple[float, ...]:
        """Each run at once's own speed-up over the copies one after another: what the
        repeats measured. (A bound that paired the fastest single copy with the slowest
        run at once gave 0.93-2.54x where the repeats had measured 1.87-2.04x.)"""
        runs = tuple(r for r in self.parallel_runs_s if r > 0) or (self.parallel_s,)
        if min(runs) <= 0:
            return (self.speedup,)
        return tuple(self.serial_s / r for r in runs)

    @property
    def speedup_range(self) -> tuple[float, float]:
        """The slowest and the fastest repeat's speed-up."""
        speedups = self.repeat_speedups
        return (min(speedups), max(speedups))

    @property
    def ideal(self) -> int:
        """The most cores N copies of a CPU-bound task can use at once."""
        return max(1, min(self.count, self.cores))

    @property
    def efficiency(self) -> float:
        return self.speedup / self.ideal

    @property
    def efficiency_bound(self) -> str | None:
        """Why no efficiency is stated (the cores bound no part of the copies' time that
        matters), or None: the table says "-", and the JSON and CSV null (they said 1.215
        beside it, an efficiency past 100 %)."""
        if self.cpu_bound is False:
            return "the copies mostly waited, not on a CPU: no core bound"
        if self.waits_overlap:
            return "their own waits overlapped too: the cores bound only their CPU work"
        return None

    @property
    def waits_overlap(self) -> bool:
        """The copies' own waits (sleeps, I/O) were a good part of each one's work (core.
        batch's share): at once those overlap too, and the cores bound only the CPU work."""
        cpu, alone = self.serial_cpu_s, self.serial_alone_s
        if cpu is None or alone is None or alone <= 0:
            return False
        return alone - cpu >= OWN_WAITS_SHARE * alone

    @property
    def most(self) -> float:
        """The largest speed-up the copies' own figures allow: the cores, or, where their
        own waits overlap, N copies' work alone over the least time at once (their CPU
        work spread over the cores, or one copy's work, whichever is longer). Copies that
        computed 0.25 s and slept 0.2 s each measured 2.5x on 2 cores, and were called
        noise."""
        if not self.waits_overlap:
            return float(self.ideal)
        assert self.serial_cpu_s is not None and self.serial_alone_s is not None
        one = self.serial_alone_s / self.count
        return self.serial_alone_s / max(self.serial_cpu_s / self.ideal, one)

    @property
    def too_short(self) -> bool:
        """Over at once within TOO_SHORT_S: starting the copies is most of what was timed
        (core.batch's rule; 10 ms copies read "0.66x, efficiency 33 %")."""
        return 0 < self.parallel_s < TOO_SHORT_S

    @property
    def mostly_starting(self) -> bool:
        """Starting a copy (start_s) was half or more of one copy's time one after
        another: spawn copies of count(100_000), 13 ms of work each behind 80 ms of a new
        interpreter, read "1.24x-1.37x, efficiency 62-69 %", the speed-up of starting
        interpreters."""
        if self.start_s is None or self.count < 1 or self.serial_s <= 0:
            return False
        return self.start_s >= STARTING_SHARE * self.serial_s / self.count

    @property
    def beyond_cores(self) -> bool:
        """CPU-bound copies faster at once than the cores allow: noise, not a result."""
        return self._past_cores(self.speedup)

    @property
    def a_repeat_beyond_cores(self) -> bool:
        """Some repeat measured CPU-bound copies faster than the cores allow, as shown:
        that repeat is noise, and its figure is marked so. (A few percent past them was
        shown plain: 2.05x on 2 cores, a speed-up no machine gives.)"""
        return self._past_cores(self.speedup_range[1], slack=1.0)

    @property
    def past_most(self) -> bool:
        """Its median, as shown, is past what the cores allow (by noise, or by more)."""
        return self._past_cores(self.speedup, slack=1.0)

    def _past_cores(self, speedup: float, slack: float = NOISE_ABOVE) -> bool:
        return bool(self.cpu_bound) and round(speedup, 2) > round(self.most * slack, 2)

    @property
    def less_work_at_once(self) -> bool:
        """CPU-bound copies that did a quarter less CPU work at once than one after
        another: the task runs for a set time, and its speed-up measures nothing."""
        serial, at_once = self.serial_cpu_s, self.parallel_cpu_s
        if not self.cpu_bound or serial is None or at_once is None or serial <= 0:
            return False
        return at_once < serial * LESS_WORK_BELOW

    @property
    def marked(self) -> bool:
        """Its speed-up is not a result (see `notes`)."""
        return self.beyond_cores or self.less_work_at_once or self.too_short or self.mostly_starting

    def repeats_text(self, unit: str = "") -> str:
        """'1.85-2.01', marked '*' when the fastest is beyond the cores (see `notes`)."""
        low, high = self.speedup_range
        return f"{low:.2f}-{high:.2f}{unit}" + ("*" if self.a_repeat_beyond_cores else "")

    def speedup_text(self) -> str:
        """'1.93x (1.85-2.01)', with '*' when beyond the cores (see `notes`)."""
        low, high = self.speedup_range
        mark = "*" if self.marked or self.past_most else ""
        if self.count == 1 or high - low < 0.005:
            return f"{self.speedup:.2f}x{mark}"
        return f"{self.speedup:.2f}x{mark} ({self.repeats_text()})"

    def figures(self) -> dict[str, Any]:
        low, high = self.speedup_range
        return {
            "count": self.count,
            "cores": self.cores,
            "serial_s": round(self.serial_s, 4),
            "parallel_s": round(self.parallel_s, 4),
            "speedup": round(self.speedup, 3),
            "speedup_low": round(low, 3),
            "speedup_high": round(high, 3),
            "efficiency": None if self.efficiency_bound else round(self.efficiency, 3),
            "cpu_bound": self.cpu_bound,
            "beyond_cores": self.beyond_cores,
            "serial_cpu_s": _rounded(self.serial_cpu_s),
            "parallel_cpu_s": _rounded(self.parallel_cpu_s),
            "less_work_at_once": self.less_work_at_once,
            "serial_alone_s": _rounded(self.serial_alone_s),
            "waits_overlap": self.waits_overlap,
            "most_speedup": round(self.most, 3),
            "too_short": self.too_short,
            "start_s": _rounded(self.start_s),
            "mostly_starting": self.mostly_starting,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": "parallel",
            "task": self.task,
            "method": self.method,
            **self.figures(),
            "ideal_speedup": self.ideal,
            "serial_runs_s": [round(s, 4) for s in self.serial_runs_s],
            "parallel_runs_s": [round(s, 4) for s in self.parallel_runs_s],
        }

    def csv_rows(self) -> list[dict[str, Any]]:
        return [
            {"experiment": "parallel", "task": self.task, "method": self.method, **self.figures()}
        ]

    def table(self) -> tuple[Row, list[Row]]:
        singles = self.serial_runs_s
        each = f"; each {_range_s(singles)}" if len(singles) > 1 else ""
        runs = self.parallel_runs_s
        repeats = f"; {len(runs)} runs {_range_s(runs)}" if len(runs) > 1 else ""
        return ("", "wall time", "note"), [
            (
                "one after another",
                f"{self.serial_s:.3f} s",
                f"{plural(self.count, 'copy')}, serially{each}",
            ),
            (
                "all at once",
                f"{self.parallel_s:.3f} s",
                f"{plural(self.count, 'copy')}, {plural(self.cores, 'core')}{repeats}",
            ),
            (
                "speed-up",
                f"{self.speedup:.2f}x" + ("*" if self.marked else ""),
                f"repeats {self.repeats_text('x')}; {self._most_text()}",
            ),
            self._efficiency_row(),
        ]

    def _efficiency_row(self) -> Row:
        """Speed-up over the cores the copies could use: a CPU-bound measure. Copies that
        mostly waited are not bounded by the cores (sleeps at once showed 198 %), and a
        speed-up that is no result gives none (144 % beside a marked one)."""
        if self.efficiency_bound:
            return ("efficiency", "-", self.efficiency_bound)
        mark = "*" if self.marked else ""
        return ("efficiency", f"{self.efficiency:.0%}{mark}", f"speed-up / {self.ideal}")

    def bars(self) -> list[Bar]:
        return [
            ("one after another", self.serial_s, f"{self.serial_s:.2f} s", "serial"),
            ("all at once", self.parallel_s, f"{self.parallel_s:.2f} s", "parallel"),
        ]

    def notes(self) -> list[str]:
        return _notes([self], self.ideal)

    def _most_text(self) -> str:
        if self.waits_overlap:
            return f"at most {self.most:.2f}x: their own waits overlap too"
        return f"at most {self.ideal}x if CPU-bound"

    def not_a_result(self) -> str | None:
        """Why its speed-up is not one, in a summary's words; None if it is one."""
        if self.too_short:
            return (
                f"over in {self.parallel_s * 1000:.0f} ms at once: starting them is most of it,"
                " no speed-up stated"
            )
        if self.less_work_at_once:
            return f"{self.speedup:.2f}x measured, with less CPU work done at once: not a speed-up"
        if self.mostly_starting:
            assert self.start_s is not None
            return (
                f"starting a copy ({self.start_s * 1000:.0f} ms) is most of each one's"
                f" {self.serial_s / self.count * 1000:.0f} ms: no speed-up stated"
            )
        if self.beyond_cores:
            allow = (
                f"{plural(self.ideal, 'core')} and their own waits allow ({self.most:.2f}x)"
                if self.waits_overlap
                else f"{plural(self.ideal, 'core')} allow"
            )
            return f"{self.speedup:.2f}x measured, more than {allow}: noise"
        return None

    def summary(self) -> str:
        if self.cpu_bound is False:
            bound = " (the copies mostly waited: the cores do not bound them)"
        elif self.waits_overlap:
            bound = f" (their own waits overlapped too: at most {self.most:.2f}x)"
        else:
            bound = f" (efficiency {self.efficiency:.0%} of {self.ideal}x)"
        speedup = (
            self.not_a_result() or f"{self.speedup_text()} on {plural(self.cores, 'core')}{bound}"
        )
        return (
            f"{plural(self.count, 'copy')} of {self.task}: {self.serial_s:.2f} s one after another,"
            f" {self.parallel_s:.2f} s at once: {speedup}"
        )


def _range_s(values: tuple[float, ...]) -> str:
    return f"{min(values):.2f}-{max(values):.2f} s"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _notes(runs: list[ParallelResult], cores: int) -> list[str]:
    """The note that explains the '*' of the first run marked (a set-time task first);
    `cores`: the most the copies could use."""
    # In not_a_result's order: the summary and its note give the same reason.
    if short := [r for r in runs if r.too_short]:
        return [_too_short_note(short[0])]
    if less := [r for r in runs if r.less_work_at_once]:
        return [_less_work_note(less[0])]
    if starting := [r for r in runs if r.mostly_starting]:
        return [_mostly_starting_note(starting[0])]
    beyond = [r for r in runs if r.a_repeat_beyond_cores]
    return [_beyond_note(cores, beyond[0])] if beyond else []


def _less_work_note(run: ParallelResult) -> str:
    assert run.serial_cpu_s is not None and run.parallel_cpu_s is not None
    return (
        f"* not a speed-up: at once the copies did less CPU work ({run.parallel_cpu_s:.2f} s"
        f" in all) than one after another ({run.serial_cpu_s:.2f} s). This task runs for a"
        " set time, not a set amount of work (as spin does): sharing the cores, each copy"
        " did less. Compare a task that does a set amount, such as count(n) or fib(n)."
    )


def _too_short_note(run: ParallelResult) -> str:
    return (
        f"* no speed-up stated: {plural(run.count, 'copy')} at once were over in"
        f" {run.parallel_s * 1000:.0f} ms, under {TOO_SHORT_S * 1000:.0f} ms, and starting"
        " a process is most of that. Give the task more work to compare."
    )


def _mostly_starting_note(run: ParallelResult) -> str:
    assert run.start_s is not None
    return (
        f"* no speed-up stated: a {run.method} copy that only starts and loads the task"
        f" took {run.start_s * 1000:.0f} ms, and each copy one after another"
        f" {run.serial_s / run.count * 1000:.0f} ms: at once, what ran side by side was"
        " mostly starting processes, not the task. Give the task more work to compare."
    )


def _beyond_note(cores: int, run: ParallelResult) -> str:
    if run.waits_overlap:
        assert run.serial_cpu_s is not None and run.serial_alone_s is not None
        allow = (
            f"* more than {plural(cores, 'core')} and the copies' own waits allow"
            f" ({run.most:.2f}x: each copy computed {run.serial_cpu_s / run.count:.2f} s and"
            f" waited {(run.serial_alone_s - run.serial_cpu_s) / run.count:.2f} s on its own)"
        )
    else:
        allow = f"* more than {plural(cores, 'core')} allow for CPU-bound copies"
    if not run._past_cores(run.speedup_range[1]):  # within NOISE_ABOVE of it
        return (
            f"{allow} ({run.most:.2f}x), by a few percent: measuring noise (one after another"
            " ran a little slower than it could). Read it as the most they allow."
        )
    return (
        f"{allow}: noise, not a speed-up. On a machine busy with other work, N copies get a"
        " larger share of it than one copy alone did; run it again on a quiet machine."
    )


# Medians of start latency closer than this share are told as the same: a fifth of a
# millisecond apart, the order of fork and forkserver changes from run to run.
SAME_WITHIN = 0.1


@dataclass(frozen=True, slots=True)
class MethodLatency:
    method: str
    samples_ms: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def min_ms(self) -> float:
        return min(self.samples_ms)

    @property
    def max_ms(self) -> float:
        return max(self.samples_ms)

    @property
    def spread_ms(self) -> float:
        """Slowest minus fastest sample."""
        return self.max_ms - self.min_ms

    def to_json(self) -> dict[str, Any]:
        return {
            "median_ms": round(self.median_ms, 3),
            "min_ms": round(self.min_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "spread_ms": round(self.spread_ms, 3),
            "samples_ms": [round(s, 3) for s in self.samples_ms],
        }


@dataclass(frozen=True, slots=True)
class StartMethodsResult:
    methods: tuple[MethodLatency, ...]
    parent_rss: int | None = None  # bytes: what fork copies (its page tables)
    parent_threads: int | None = None
    server_rss: int | None = None  # bytes: the fork server, which forkserver forks instead

    name = "start-methods"

    def method(self, name: str) -> MethodLatency:
        return next(m for m in self.methods if m.method == name)

    def to_json(self) -> dict[str, Any]:
        return {m.method: m.to_json() for m in self.methods}

    def csv_rows(self) -> list[dict[str, Any]]:
        return [
            {"experiment": "start-methods", "method": m.method, "sample": i + 1, "ms": round(ms, 3)}
            for m in self.methods
            for i, ms in enumerate(m.samples_ms)
        ]

    def table(self) -> tuple[Row, list[Row]]:
        return ("method", "median", "fastest", "slowest", "samples"), [
            (
                m.method,
                f"{m.median_ms:.1f} ms",
                f"{m.min_ms:.1f} ms",
                f"{m.max_ms:.1f} ms",
                str(len(m.samples_ms)),
            )
            for m in self.methods
        ]

    def bars(self) -> list[Bar]:
        return [(m.method, m.median_ms, f"{m.median_ms:.1f} ms", m.method) for m in self.methods]

    def notes(self) -> list[str]:
        """Why fork and forkserver compare as they did here, with this run's figures."""
        if self.parent_rss is None:
            return []
        fork, server = self.method("fork").median_ms, self.method("forkserver").median_ms
        copies = f"fork copies this process (RSS {_mib(self.parent_rss)}"
        copies += f", {self.parent_threads} threads)" if self.parent_threads else ")"
        size = f" (RSS {_mib(self.server_rss)})" if self.server_rss else ""
        how = (
            f"{copies}: its page tables, then every page either side writes, and the child"
            f" closes every file it inherited; forkserver asks its fork server{size} to"
            " fork instead, then sends the child its task"
        )
        if abs(fork - server) < SAME_WITHIN * min(fork, server):
            # 2.4 ms against 2.3 read "fork was slower than forkserver here", and was
            # explained: a tenth of a millisecond, which the next run turns round.
            return [
                f"fork and forkserver took about as long here ({fork:.1f} and {server:.1f} ms,"
                f" within {SAME_WITHIN:.0%}): {how}."
            ]
        if fork > server:
            return [f"fork was slower than forkserver here: {how}."]
        return [f"fork was faster here: {how}, a round trip fork saves."]

    def summary(self) -> str:
        parts = [f"{m.method} {m.median_ms:.1f} ms" for m in self.methods]
        return "start latency, median: " + ", ".join(parts)


def _mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


@dataclass(frozen=True, slots=True)
class KindScaling:
    kind: Literal["cpu", "io"]
    task: str
    one_s: float  # one copy alone
    runs: tuple[ParallelResult, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "one_s": round(self.one_s, 4),
            "runs": [r.figures() for r in self.runs],
        }


@dataclass(frozen=True, slots=True)
class CpuVsIoResult:
    cores: int
    method: str
    kinds: tuple[KindScaling, ...]

    name = "cpu-vs-io"

    def kind(self, kind: str) -> KindScaling:
        return next(k for k in self.kinds if k.kind == kind)

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": "cpu-vs-io",
            "cores": self.cores,
            "method": self.method,
            "serial_s_is": f"N x the median of {SOLO_RUNS} runs of one copy alone",
            "counts": [r.count for r in self.kinds[0].runs],
            **{k.kind: k.to_json() for k in self.kinds},
        }

    def csv_rows(self) -> list[dict[str, Any]]:
        return [
            {"experiment": "cpu-vs-io", "kind": k.kind, "task": k.task, **r.figures()}
            for k in self.kinds
            for r in k.runs
        ]

    def table(self) -> tuple[Row, list[Row]]:
        cpu, io = self.kind("cpu"), self.kind("io")
        rows: list[tuple[str, ...]] = [
            (
                str(c.count),
                f"{c.parallel_s:.2f} s",
                c.speedup_text(),
                f"{i.parallel_s:.2f} s",
                i.speedup_text(),
            )
            for c, i in zip(cpu.runs, io.runs, strict=True)
        ]
        # Wall times of N copies at once, the CPU-bound and the I/O-bound task's.
        return ("N", "wall, CPU", "speed-up", "wall, I/O", "speed-up"), rows

    def bars(self) -> list[Bar]:
        """Speed-up per N, CPU- and I/O-bound side by side; '*': beyond the cores."""
        bars: list[Bar] = []
        cpu, io = self.kind("cpu"), self.kind("io")
        for c, i in zip(cpu.runs, io.runs, strict=True):
            for run, kind, label in ((c, "cpu", "CPU"), (i, "io", "I/O")):
                mark = "*" if run.marked else ""
                text = f"{run.speedup:.2f}x{mark}"
                bars.append((f"N={run.count} {label}", run.speedup, text, kind))
        return bars

    def notes(self) -> list[str]:
        cpu, io = self.kind("cpu"), self.kind("io")
        # Not N copies one after another, as `parallel` measures: their time is computed,
        # and a reader of the figures must know which.
        how = (
            f"Speed-up: N x one copy's time alone (the median of {SOLO_RUNS} runs:"
            f" {cpu.one_s:.2f} s CPU-bound, {io.one_s:.2f} s I/O-bound) over N at once;"
            " its range is over the runs at once."
        )
        return [how, *_notes([r for k in self.kinds for r in k.runs], self.cores)]

    def summary(self) -> str:
        cpu, io = self.kind("cpu").runs[-1], self.kind("io").runs[-1]
        cpu_text = cpu.not_a_result() or cpu.speedup_text()
        return (
            f"N={cpu.count} on {plural(self.cores, 'core')}: CPU-bound {cpu_text},"
            f" I/O-bound {io.speedup_text()}"
        )


Result = ParallelResult | StartMethodsResult | CpuVsIoResult


def bar_lengths(bars: list[Bar], width: int) -> list[int]:
    """Each bar's length in cells, the largest value filling `width`; any value above 0
    gets at least one cell, so a small one still shows."""
    top = max((bar[1] for bar in bars), default=0.0) or 1.0
    return [max(1, round(value / top * width)) if value > 0 else 0 for _, value, _, _ in bars]


# Running ----------------------------------------------------------------------------------


class Timed(NamedTuple):
    """A batch of copies run at once."""

    took: float  # seconds, from the first start to the last end
    cpu_bound: bool  # core.batch's rule on their own figures
    cpu: float | None  # their CPU seconds in all; None: some were not measured
    alone: float | None  # their lives less their waits for a CPU, in all (core.batch)


class AtOnce(NamedTuple):
    """The runs of N copies at once."""

    took: list[float]  # each run's seconds
    cpu_bound: bool | None  # most runs were CPU-bound (None: not asked)
    cpu: float | None  # the median run's CPU seconds in all


class _Runner:
    def __init__(
        self, plan: Plan, progress: ProgressCallback | None, cancel: threading.Event | None
    ) -> None:
        self.plan = plan
        self._progress = progress
        self._cancel = cancel or threading.Event()
        self.done = 0
        self.controller = Controller(
            sample_interval=SAMPLE_INTERVAL_S,
            grace=0.5,
            max_procs=max(plan.count, *plan.counts, 1) + 8,
        )

    def step(self, text: str, advance: int = 0) -> None:
        self.done += advance
        if self._cancel.is_set():
            raise Cancelled("cancelled")
        if self._progress is not None:
            self._progress(Progress(self.done, self.plan.total_steps, text))

    def wait(self, ids: Iterable[int]) -> None:
        ids = tuple(ids)
        while not self.controller.join(ids, timeout=0.05):
            if self._cancel.is_set():
                raise Cancelled("cancelled")
        for rec_id in ids:
            row = self.controller.row(rec_id)
            if row.state is not ProcState.EXITED:
                why = row.error or describe_exit(row.exitcode) or str(row.state)
                raise ExperimentError(f"{row.name} ({row.pid}) {row.state}: {why}")

    def timed_batch(self, spec: ProcessSpec, count: int) -> Timed:
        """`count` copies at once: how long they took, whether they were CPU-bound
        (measured: core.batch's rule on their own figures), their CPU seconds in all."""
        began = time.perf_counter()
        ids = self.controller.spawn(spec, count)
        self.wait(ids)
        took = time.perf_counter() - began
        rows = [self.controller.row(i) for i in ids]
        figures = batch_figures(rows, time.time(), usable_cpus())
        if not figures.measured:
            return Timed(took, figures.cpu_bound, None, None)
        return Timed(took, figures.cpu_bound, figures.cpu, figures.alone)

    def at_once(self, spec: ProcessSpec, count: int, text: str) -> AtOnce:
        """AT_ONCE_RUNS runs of `count` copies at once (a step each)."""
        runs = []
        for i in range(AT_ONCE_RUNS):
            self.step(f"{text}, run {i + 1} of {AT_ONCE_RUNS}")
            runs.append(self.timed_batch(spec, count))
            self.done += 1
        cpus = [r.cpu for r in runs if r.cpu is not None]
        return AtOnce(
            [r.took for r in runs],
            sum(r.cpu_bound for r in runs) * 2 > AT_ONCE_RUNS,
            statistics.median(cpus) if len(cpus) == len(runs) else None,
        )


def run(
    plan: Plan,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Result:
    """Run a checked plan; blocks until it is done (call it from a worker thread in a UI).

    Raises Cancelled once `cancel` is set (at the next step, or while a step waits), and
    ExperimentError if a child fails; every child is ended before it returns or raises."""
    runner = _Runner(plan, progress, cancel)
    with runner.controller:
        runner.step("starting")
        if plan.name == "parallel":
            return _parallel(runner, plan.specs[0], plan.count)
        if plan.name == "start-methods":
            return _start_methods(runner, plan)
        return _cpu_vs_io(runner, plan)


def _warm_up(runner: _Runner, specs: Sequence[ProcessSpec]) -> list[float]:
    """One uncounted child per start method and target that imports the target and ends;
    then one more, timed: what starting a copy costs, for each spec in turn."""
    took: dict[tuple[str, str, str, str], float] = {}
    for spec in specs:
        key = _warm_key(spec)
        if key in took:
            continue
        runner.step(f"warming up: one {spec.method} start, not counted")
        target = spec.target
        warm = build_spec(
            WARM_UP_TASK,
            (target.kind, target.location, target.function),
            method=spec.method,
            affinity=spec.affinity,
            cwd=spec.cwd,
            name=f"warm-up-{spec.method}",
        )
        runner.wait(runner.controller.spawn(warm))
        # The median of a few: one slow start on a busy machine marked a sound result
        took[key] = statistics.median(runner.timed_batch(warm, 1).took for _ in range(START_RUNS))
    return [took[_warm_key(s)] for s in specs]


def _warm_key(spec: ProcessSpec) -> tuple[str, str, str, str]:
    """What a warm-up stands for: one start method, target and folder."""
    return (spec.method, spec.target.kind, spec.target.location, spec.cwd)


def _parallel(runner: _Runner, spec: ProcessSpec, count: int) -> ParallelResult:
    (start_s,) = _warm_up(runner, [spec])
    serial = []
    for i in range(count):
        runner.step(f"one after another: copy {i + 1} of {count}")
        serial.append(runner.timed_batch(spec, 1))
        runner.done += 1
    at_once = runner.at_once(spec, count, f"all at once: {plural(count, 'copy')}")
    runner.step("done")
    return ParallelResult(
        spec.target.label,
        spec.method,
        count,
        len(usable_cpus()),
        sum(s.took for s in serial),
        statistics.median(at_once.took),
        tuple(s.took for s in serial),
        tuple(at_once.took),
        at_once.cpu_bound,
        _total([s.cpu for s in serial]),
        at_once.cpu,
        _total([s.alone for s in serial]),
        start_s,
    )


def _total(figures: list[float | None]) -> float | None:
    """Their sum; None if any is unknown."""
    return None if any(f is None for f in figures) else sum(f or 0.0 for f in figures)


def _start_methods(runner: _Runner, plan: Plan) -> StartMethodsResult:
    # The task's module loaded here, as the fork server has it (methods.FORKSERVER_PRELOAD)
    # and as a script's own function is in its process: left out, each fork child
    # imported it on its own, 3-5 ms that were put down to fork copying proclab (fork
    # 8.8 ms against forkserver's 3.5; bare multiprocessing forks in 1.7 ms here).
    import proclab.core.tasks  # noqa: F401

    samples: dict[str, list[float]] = {spec.method: [] for spec in plan.specs}
    runner.step("warming up: one start of each method, not counted")
    for spec in plan.specs:  # the first start of each pays one-off costs (a cold fork server)
        _start_latency_ms(runner, spec)
    for i in range(plan.count):
        for spec in plan.specs:  # in turns: a busy moment hits every method alike
            runner.step(f"{spec.method}: sample {i + 1} of {plan.count}")
            samples[spec.method].append(_start_latency_ms(runner, spec))
            runner.done += 1
    runner.step("done")
    latencies = tuple(MethodLatency(m, tuple(s)) for m, s in samples.items())
    return StartMethodsResult(latencies, *_what_fork_copies())


def _what_fork_copies() -> tuple[int | None, int | None, int | None]:
    """This process's RSS and threads (what fork copies) and the fork server's RSS (what
    forkserver forks instead), read now."""
    from proclab.core import methods, procfs

    try:
        me = procfs.read(os.getpid())
    except (OSError, ValueError, IndexError):
        return None, None, None
    server_pid = methods.fork_server_pid()
    server_rss = None
    if server_pid is not None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            server_rss = procfs.read(server_pid).rss
    return me.rss, me.threads, server_rss


def _start_latency_ms(runner: _Runner, spec: ProcessSpec) -> float:
    controller = runner.controller
    (rec_id,) = controller.spawn(spec)
    runner.wait([rec_id])
    row = controller.row(rec_id)
    lines = [o.text for o in controller.output(rec_id) if o.stream == "stdout"]
    if not lines or row.started_at is None:
        raise ExperimentError(f"{row.name} did not report when its target ran")
    began = row.started_at  # wall clock when start() was called
    try:
        ran_at = float(lines[0])
    except ValueError:
        ran_at = math.nan
    if not math.isfinite(ran_at):
        raise ExperimentError(
            f"{row.name} printed {lines[0][:80]!r} where the wall clock was expected"
            " (something else wrote to its standard output first)"
        )
    return (ran_at - began) * 1000


def _cpu_vs_io(runner: _Runner, plan: Plan) -> CpuVsIoResult:
    start_s = _warm_up(runner, plan.specs)
    cores = len(usable_cpus())
    kinds = []
    for kind, spec, start in zip(("cpu", "io"), plan.specs, start_s, strict=True):
        label = "CPU-bound" if kind == "cpu" else "I/O-bound"
        runs: list[ParallelResult] = []
        # Set by the first count, which counts_up_to makes 1: one copy alone, the yardstick
        # of every N, timed a few times against noise (the median counts).
        solo: tuple[float, ...] = ()
        one = 0.0
        one_cpu: float | None = None
        one_alone: float | None = None
        for n in plan.counts:
            text = f"{label} {spec.target.function}: {n} at once"
            if n == 1:
                runner.step(text)
                alone = [runner.timed_batch(spec, 1) for _ in range(SOLO_RUNS)]
                solo = tuple(a.took for a in alone)
                one = statistics.median(solo)
                total = _total([a.cpu for a in alone])
                one_cpu = None if total is None else total / len(alone)
                total = _total([a.alone for a in alone])
                one_alone = None if total is None else total / len(alone)
                at_once = AtOnce([one], None, one_cpu)
                runner.done += 1
            else:
                at_once = runner.at_once(spec, n, text)
            runs.append(
                ParallelResult(
                    spec.target.label,
                    spec.method,
                    n,
                    cores,
                    n * one,
                    statistics.median(at_once.took),
                    solo,
                    tuple(at_once.took) if n > 1 else (),
                    at_once.cpu_bound,
                    None if one_cpu is None else n * one_cpu,
                    at_once.cpu,
                    None if one_alone is None else n * one_alone,
                    start,
                )
            )
        kinds.append(KindScaling(kind, spec.target.label, one, tuple(runs)))  # type: ignore[arg-type]
    runner.step("done")
    return CpuVsIoResult(cores, plan.specs[0].method, tuple(kinds))


# Export -------------------------------------------------------------------------------------


def to_csv(result: Result) -> str:
    import csv
    import io

    rows = result.csv_rows()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_json_text(result: Result) -> str:
    import json

    return json.dumps(result.to_json(), indent=2)
