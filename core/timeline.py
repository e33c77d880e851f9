"""The scheduling timeline: what each child did in each sampler tick.

Fed by the controller's event stream (`attach(controller)`, or `feed(event)` from any
consumer's own loop); `snapshot()` hands out a frozen picture: one lane per child, one
cell per tick, the newest tick last, at most `keep` ticks (`snapshot(last=n)`: the newest
n). A tick costs O(children), whatever the history kept.

What a cell means, exactly: in a tick of `interval` seconds, a child whose CPU time grew
by at least ON_CPU_MIN of the interval ran on a CPU (RUNNING); its `core` is the CPU it
was on when the tick ended (the kernel's "processor" field, psutil's cpu_num(): a child
that moved between cores within the tick shows the last one) and `on_cpu` its share of
the tick on a CPU (CPU-time delta / interval; above 1 with several busy threads). Below
that share the child is WAITING if it spent at least WAITING_MIN of the tick runnable on
a run queue (schedstat's run delay: it wanted a CPU and had none), otherwise what the
kernel reports at the end of the tick: STOPPED, ZOMBIE, or SLEEPING (blocked on a timer,
I/O, a lock). The first tick after the child was reaped is EXITED, the ticks after it GONE:
a window of the newest ticks that begins after a child's end then says it ended earlier,
not in its first column.
"""

from __future__ import annotations

import enum
import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from proclab.core.exits import state_for_status
from proclab.core.model import (
    Cleared,
    Event,
    ProcessRow,
    ProcSample,
    ProcState,
    RowEvent,
    Sampled,
)

if TYPE_CHECKING:
    from proclab.core.source import ProcessSource

ON_CPU_MIN = 0.05  # share of a tick on a CPU that counts as running in it
WAITING_MIN = 0.5  # share of a tick waiting on a run queue that counts as waiting
DEFAULT_KEEP = 600  # ticks of history (10 minutes at the default 1 s tick)

# The rule above in words, for the legend, the help and the line under the grid: running
# comes first, so a child that ran and also waited shows its core (children sharing a core
# take turns: each runs part of every tick and waits the rest).
RUNNING_RULE = f"on a CPU {ON_CPU_MIN:.0%} of the tick or more, even if it also waited"
WAITING_RULE = (
    f"on a CPU less than {ON_CPU_MIN:.0%} of the tick, and waiting for one"
    f" {WAITING_MIN:.0%} of it or more"
)


class CellState(enum.StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    SLEEPING = "sleeping"
    STOPPED = "stopped"
    ZOMBIE = "zombie"
    EXITED = "exited"  # the tick it was reaped in
    GONE = "gone"  # a tick after that one


ENDED = frozenset({CellState.EXITED, CellState.GONE})


@dataclass(frozen=True, slots=True)
class Cell:
    state: CellState
    core: int | None = None  # RUNNING: the CPU it was on at the end of the tick
    on_cpu: float = 0.0  # share of the tick on a CPU (CPU-time delta / interval)
    waited: float = 0.0  # share of the tick runnable but waiting for a CPU

    @property
    def is_on_cpu(self) -> bool:
        return self.state is CellState.RUNNING


@dataclass(frozen=True, slots=True)
class Tick:
    index: int  # counts every tick since the timeline began
    time: float  # monotonic clock of the reading
    wall: float  # wall clock of the reading
    interval: float  # seconds the tick covers


@dataclass(frozen=True, slots=True)
class Lane:
    """One child's row: `cells[i]` is its cell in `TimelineSnapshot.ticks[i]`."""

    id: int
    name: str
    pid: int | None
    state: ProcState  # its state now (how it ended, once it has)
    cells: tuple[Cell | None, ...]  # None: not started yet, or not sampled, in that tick


@dataclass(frozen=True, slots=True)
class TimelineSnapshot:
    ticks: tuple[Tick, ...] = ()
    lanes: tuple[Lane, ...] = ()
    cores: int = 0  # CPUs the machine has (from the latest sample)
    kept: int = 0  # ticks the timeline keeps (`ticks` may be only the newest of them)

    def lane(self, rec_id: int) -> Lane:
        return next(lane for lane in self.lanes if lane.id == rec_id)


def cell_for(sample: ProcSample) -> Cell:
    """The cell of one child's sample, by the rule in this module's docstring."""
    interval = sample.interval if sample.interval > 0 else 1.0
    on_cpu = sample.cpu_delta / interval
    waited = min(1.0, sample.run_delay_delta / interval)
    if on_cpu >= ON_CPU_MIN:
        return Cell(CellState.RUNNING, sample.core, on_cpu, waited)
    if waited >= WAITING_MIN:
        state = CellState.WAITING
    else:
        state = _STILL.get(state_for_status(sample.status), CellState.SLEEPING)
    if not on_cpu and not waited:
        # Most cells of most children: one shared cell each, not 600 ticks x 1,000 lanes
        # of equal ones (72 bytes each).
        return _IDLE[state]
    return Cell(state, None, on_cpu, waited)


_EXITED = Cell(CellState.EXITED)
_GONE = Cell(CellState.GONE)
# A child not on a CPU in the tick, by the state the table shows for its status.
_STILL = {ProcState.STOPPED: CellState.STOPPED, ProcState.ZOMBIE: CellState.ZOMBIE}
_IDLE: dict[CellState, Cell] = {s: Cell(s) for s in CellState if s is not CellState.RUNNING}


@dataclass(slots=True)
class _Lane:
    """One cell per tick from its first cell to the newest, in order (None: not sampled in
    it), so the newest are read from the back; holding as many as the timeline keeps ticks,
    the deque drops a cell as its tick scrolls out. Empty until its first cell, and again
    once every tick with a cell has scrolled out."""

    name: str
    pid: int | None
    state: ProcState
    cells: deque[Cell | None]  # maxlen: the ticks the timeline keeps
    last_cell: int = -1  # the newest tick with a cell
    last_live: int = -1  # the newest tick with a cell that is not EXITED or GONE
    # The cell of its latest sample, and that sample's interval: a tick in which that
    # sample stood (Sampled.stood) has the same cell again.
    standing: Cell | None = None
    standing_interval: float = 0.0

    def reset(self) -> None:
        self.cells.clear()
        self.last_cell, self.last_live = -1, -1

    def tail(self, count: int) -> tuple[Cell | None, ...]:
        """Its cells in the newest `count` ticks (None before its first)."""
        taken = min(count, len(self.cells))
        newest = tuple(itertools.islice(reversed(self.cells), taken))
        return (None,) * (count - taken) + newest[::-1]


class Timeline:
    """Thread-safe: `feed` may be called from the controller's threads."""

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._ticks: deque[Tick] = deque(maxlen=keep)
        self._lanes: dict[int, _Lane] = {}
        self._cores = 0
        self._next = 0
        self.version = 0  # bumped on every change, so readers can skip redraws

    def attach(self, source: ProcessSource) -> Callable[[], None]:
        """Subscribe to a source's events; returns the unsubscribe function. Processes it
        already has get lanes from the next tick."""
        for row in source.rows():
            self._know(row)
        return source.subscribe(self.feed)

    def feed(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, RowEvent):
                self._know(event.row)
            elif isinstance(event, Cleared):
                for rec_id in event.ids:
                    self._lanes.pop(rec_id, None)
            elif isinstance(event, Sampled):
                self._tick(event)
            else:
                return
            self.version += 1

    def _know(self, row: ProcessRow) -> None:
        lane = self._lanes.get(row.id)
        if lane is None:
            lane = self._lanes[row.id] = _Lane(
                row.name, row.pid, row.state, deque(maxlen=self.keep)
            )
            if row.sample is not None:  # sampled before the timeline began
                lane.standing, lane.standing_interval = cell_for(row.sample), row.sample.interval
        else:
            lane.name, lane.pid, lane.state = row.name, row.pid, row.state

    def _tick(self, sampled: Sampled) -> None:
        system = sampled.system
        index = self._next
        self._next += 1
        # The clock between ticks is the tick's length; a child's first reading covers only
        # its life so far, so children speak for the first tick alone (the longest lived).
        stood = frozenset(sampled.stood)
        if self._ticks:
            interval = system.time - self._ticks[-1].time
        else:
            intervals = [s.interval for s in sampled.procs.values()]
            intervals += [self._lanes[i].standing_interval for i in stood if i in self._lanes]
            interval = max(intervals, default=0.0)
        self._ticks.append(Tick(index, system.time, system.wall, interval))
        self._cores = len(system.per_core)
        oldest = self._ticks[0].index
        for rec_id, lane in list(self._lanes.items()):
            sample = sampled.procs.get(rec_id)
            cell: Cell | None = None
            if sample is not None:
                cell = lane.standing = cell_for(sample)
                lane.standing_interval = sample.interval
            elif rec_id in stood:
                cell = lane.standing
            elif lane.state.is_over and lane.cells:
                last = lane.cells[-1]
                cell = _GONE if last is not None and last.state in ENDED else _EXITED
            if cell is not None:
                lane.last_cell = index
                if cell.state not in ENDED:
                    lane.last_live = index
            if lane.cells or cell is not None:
                lane.cells.append(cell)
            if lane.last_cell < oldest:
                lane.reset()  # nothing left but empty ticks
            if lane.state.is_over and lane.last_live < oldest:
                # Ended, and every tick it lived in has scrolled out (or it was never
                # sampled at all): nothing left to show.
                del self._lanes[rec_id]

    def snapshot(self, last: int | None = None) -> TimelineSnapshot:
        """The kept history, or only its newest `last` ticks (what a screen can show:
        copying 600 ticks of 1,000 lanes to draw 70 of them took ~0.2 s)."""
        with self._lock:
            count = len(self._ticks) if last is None else max(0, min(last, len(self._ticks)))
            ticks = tuple(itertools.islice(reversed(self._ticks), count))[::-1]
            # Every lane with cells ends at the newest tick: its tail lines up with `ticks`.
            lanes = tuple(
                Lane(rec_id, lane.name, lane.pid, lane.state, lane.tail(count))
                for rec_id, lane in self._lanes.items()
                if lane.cells
            )
            return TimelineSnapshot(ticks, lanes, self._cores, len(self._ticks))

    def clear(self) -> None:
        with self._lock:
            self._ticks.clear()
            for lane in self._lanes.values():
                lane.reset()
            self.version += 1
