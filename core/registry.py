"""The rows of a source's processes, their output, the events about them, and who waits
for their end: everything a source knows, whoever starts and reaps its processes.

The lock rule. One re-entrant lock (`Registry.lock`) guards every dict here, and the
parts that compose a registry (the controller's launcher, reaper and signals) take the
same lock for their own per-record state, so one lock orders them all. Nothing is emitted
and no callback runs while it is held: a method that changes rows hands out its events
after releasing it, and one called under the lock (`end`) returns what to call once the
caller has released it. Subscribers and callbacks run on the thread that caused the event
(a launcher, watcher or sampler thread), so they may call back in; they must be quick.
Row events go out one thread at a time (a second lock, never taken under the first, so
subscribers must not wait on another thread that emits), each with its row as it stands.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from proclab.core.defaults import OUTPUT_LINES_KEPT
from proclab.core.errors import UnknownProcess
from proclab.core.exits import state_for_status
from proclab.core.model import (
    Cleared,
    Event,
    Exited,
    Notice,
    NoticeLevel,
    OutputLine,
    ProcessRow,
    ProcSample,
    ProcState,
    RowEvent,
    RowUpdated,
    Sampled,
    Spawned,
    StateChanged,
    Stream,
    SystemSample,
)
from proclab.core.output import TracebackCollector

if TYPE_CHECKING:
    import asyncio

RowCallback = Callable[[ProcessRow], None]


class Registry:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self._rows: dict[int, ProcessRow] = {}
        # Records whose end is still to come, each with what to call at its end; joiners
        # wait on one condition for all of them (an Event a record cost each spawn() a
        # Condition, a lock and their bound methods, pages written after a fork).
        self._awaited: dict[int, list[RowCallback]] = {}
        self._ended = threading.Condition(self.lock)
        self._outputs: dict[int, deque[OutputLine]] = {}
        self._tracebacks: dict[int, TracebackCollector] = {}
        self._subscribers: list[Callable[[Event], None]] = []
        self._row_events = threading.RLock()  # a subscriber's notice comes back in
        self._told_made: set[int] = set()  # rows whose Spawned has gone out
        self._system: SystemSample | None = None
        # The latest tick's time, and the children whose last sample stood in it.
        self._stood: tuple[float, frozenset[int]] = (0.0, frozenset())
        # Rows whose stop or continue proclab has just sent, and reads at once (refreshing):
        # a tick leaves their state to that read, which counts the stop from when it was
        # made, not from the tick (a test saw a pause "seen at ticks", 1 CI run).
        self._refreshing: set[int] = set()
        self._signalled: dict[int, float] = {}  # monotonic time of proclab's last stop/continue

    # Events ------------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback` with every event, from the source's threads."""
        with self.lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self.lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    def emit(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, RowEvent):
                # Made under the lock and handed out after it, two threads' row events
                # can go out in the other order than their changes (a walk's late Spawned
                # undid a hook's rename on the timeline). One at a time, each with its row
                # as it stands: the last a subscriber hears of a row is how it stands. A
                # cleared row's late event would bring it back. Other events do not wait
                # here: a sampler's tick must not wait behind a printer stuck on stdout.
                with self._row_events:
                    row = self._rows.get(event.row.id)
                    if row is None:
                        continue
                    if type(event) is not Spawned:
                        self._tell_made(row)
                    elif row.id in self._told_made:
                        continue  # told made already, as it stands: this is older
                    else:
                        self._told_made.add(row.id)
                    self._hand_out(event if row is event.row else replace(event, row=row))
            else:
                if type(event) is OutputLine and event.id not in self._told_made:
                    with self._row_events:
                        row = self._rows.get(event.id)
                        if row is not None:
                            self._tell_made(row)
                self._hand_out(event)

    def _tell_made(self, row: ProcessRow) -> None:
        """Under _row_events: a row is told made (Spawned) before anything else of it. Its
        Spawned, made by one thread, could go out after another thread's update of it,
        or its first line: a recording held a row updated before it was made."""
        if row.id not in self._told_made:
            self._told_made.add(row.id)
            self._hand_out(Spawned(row))

    def _hand_out(self, event: Event) -> None:
        hand_out(self._subscribers, event)

    def notice(self, level: NoticeLevel, text: str) -> None:
        self.emit([Notice(level, text, time.time())])

    # Reading -----------------------------------------------------------------------------

    def rows(self) -> tuple[ProcessRow, ...]:
        with self.lock:
            return tuple(self._rows.values())

    def row(self, rec_id: int) -> ProcessRow:
        with self.lock:
            try:
                return self._rows[rec_id]
            except KeyError:
                raise UnknownProcess(f"no process #{rec_id} (cleared?)") from None

    def get(self, rec_id: int) -> ProcessRow | None:
        with self.lock:
            return self._rows.get(rec_id)

    def system(self) -> SystemSample | None:
        return self._system

    def output(self, rec_id: int, last: int | None = None) -> tuple[OutputLine, ...]:
        with self.lock:
            lines = tuple(self._outputs.get(rec_id, ()))
        return lines if last is None else lines[-last:]

    def live_count(self) -> int:
        with self.lock:
            return sum(1 for r in self._rows.values() if r.state.is_live)

    def live_pids(self) -> dict[int, int]:
        """Record id -> pid of every live process (what the sampler measures)."""
        with self.lock:
            return {
                i: r.pid for i, r in self._rows.items() if r.pid is not None and r.state.is_live
            }

    def awaited(self) -> list[int]:
        """The records whose end is still to come."""
        with self.lock:
            return list(self._awaited)

    def still_live(self, ids: Iterable[int]) -> list[int]:
        with self.lock:
            return [i for i in ids if i in self._awaited]

    # Changing rows -----------------------------------------------------------------------

    def new_id(self) -> int:
        return next(self._ids)

    def add(self, row: ProcessRow) -> None:
        """A new record, its process still to end (or to start). The caller emits."""
        with self.lock:
            self._rows[row.id] = row
            self._awaited[row.id] = []
            self._outputs[row.id] = deque(maxlen=OUTPUT_LINES_KEPT)
            self._tracebacks[row.id] = TracebackCollector()

    def update(self, rec_id: int, **changes: Any) -> ProcessRow:
        """The row with `changes`; the caller emits."""
        with self.lock:
            row = self._rows[rec_id] = self._rows[rec_id].with_changes(**changes)
            return row

    def refresh_begins(self, rec_id: int) -> None:
        """The row's state is read at once after a stop or continue proclab sends now: until
        refresh_ends, ticks leave it alone, and so does a tick begun before now (its read
        of the state may come from before the signal)."""
        with self.lock:
            self._refreshing.add(rec_id)
            self._signalled[rec_id] = time.monotonic()

    def refresh_ends(self, rec_id: int) -> None:
        with self.lock:
            self._refreshing.discard(rec_id)

    def set_live_state(self, rec_id: int, state: ProcState) -> bool:
        """True if the row changed."""
        with self.lock:
            row = self._rows.get(rec_id)
            if row is None or row.state.is_over or row.state is state:
                return False
            old = row.state
            stops = row.stop_changes(state, time.time())
            row = self._rows[rec_id] = row.with_changes(state=state, **stops)
        self.emit([StateChanged(row, old)])
        return True

    def end(
        self, rec_id: int, *, also: RowCallback | None = None, **changes: Any
    ) -> Callable[[], None]:
        """Under the lock: the record's process is over (or never started); `changes` say
        how. Returns what to call once the lock is released: its events, then `also`, then
        whoever waited for its end."""
        with self.lock:
            before = self._rows[rec_id]
            old = before.state
            if "state" in changes:  # a stop it ended in is over too
                at = changes.get("ended_at") or time.time()
                changes = {**before.stop_changes(changes["state"], at), **changes}
            row = self.update(rec_id, **changes)
            callbacks = self._awaited.pop(rec_id)
            self._signalled.pop(rec_id, None)  # no tick reads it any more
            self._ended.notify_all()

        def after() -> None:
            self.emit([StateChanged(row, old), Exited(row)])
            self.run_callbacks([also] if also else [], row)
            self.run_callbacks(callbacks, row)

        return after

    def add_line(
        self,
        rec_id: int,
        stream: Stream,
        text: str,
        continues: bool = False,
        after_end: bool = False,
    ) -> None:
        """A line the record's process printed (`continues`: a piece of a long line, after
        the one before it; `after_end`: read once it had ended, a descendant's)."""
        events: list[Event] = []
        with self.lock:
            row = self._rows.get(rec_id)
            if row is None:
                return
            line = OutputLine(
                rec_id, row.pid or 0, row.name, stream, text, time.time(), continues, after_end
            )
            self._outputs[rec_id].append(line)
            events.append(line)
            collector = self._tracebacks[rec_id]
            if stream == "stderr" and collector.feed(text):
                row = self._rows[rec_id] = row.with_changes(
                    traceback=collector.traceback, error=collector.error
                )
                events.append(RowUpdated(row))
        self.emit(events)

    def sampled(self, sampled: Sampled) -> None:
        """A sampler tick: the machine's figures, each live process's, and its state."""
        events: list[Event] = []
        with self.lock:
            self._system = sampled.system
            self._stood = (sampled.system.time, frozenset(sampled.stood))
            for rec_id, sample in sampled.procs.items():
                row = self._rows.get(rec_id)
                if row is None or row.state.is_over:
                    continue
                if row.sample is not None and sample.time < row.sample.time:
                    continue  # read before the figures a signal's sender took (signals.py)
                state = state_for_status(sample.status)
                if rec_id in self._refreshing or sample.time < self._signalled.get(rec_id, 0.0):
                    # A tick that read "T" before a resume, handed over after the resume's
                    # read, stopped the row again, "seen at ticks" (a watched pause test).
                    state = row.state
                new = row.with_sample(sample, state)
                if state is not row.state:
                    stops = row.stop_changes(state, sampled.system.wall)
                    new = new.with_changes(**stops, stops_at_ticks=True) if stops else new
                    events.append(StateChanged(new, row.state))
                self._rows[rec_id] = new
        events.append(sampled)
        self.emit(events)

    def current_sample(self, row: ProcessRow) -> ProcSample | None:
        """`row`'s last sample, as of the latest tick if it stood in it (`Sampled.stood`:
        nothing had moved since it was taken). A child's final figures are measured from
        there: from an older sample, a child idle for a minute that spun for its last half
        second would end at 1 % instead of 50."""
        sample = row.sample
        at, stood = self._stood  # one read: the sampler's thread replaces it whole
        if sample is None or row.id not in stood or sample.time >= at:
            return sample
        return replace(sample, time=at)

    def clear_exited(self) -> int:
        """Forget every record whose process has ended; returns how many."""
        with self.lock:
            ended = tuple(i for i, r in self._rows.items() if r.state.is_over)
        return self.forget(ended)

    def forget(self, ids: Iterable[int]) -> int:
        """Forget these records, those of them whose process has ended; returns how many."""
        with self.lock:
            gone = tuple(i for i in ids if i in self._rows and self._rows[i].state.is_over)
            for rec_id in gone:
                del self._rows[rec_id]
                self._told_made.discard(rec_id)
                self._outputs.pop(rec_id, None)
                self._tracebacks.pop(rec_id, None)
        if gone:
            self.emit([Cleared(gone)])
        return len(gone)

    # Waiting for ends --------------------------------------------------------------------

    def on_exit(self, rec_id: int, callback: RowCallback) -> None:
        """Call `callback(row)` once the process has ended (at once if it already has)."""
        with self.lock:
            row = self.row(rec_id)
            awaited = self._awaited.get(rec_id)
            if awaited is not None and not row.state.is_over:
                awaited.append(callback)
                return
        callback(row)

    def join(self, ids: Iterable[int], timeout: float | None = None) -> bool:
        """Block until every process in `ids` has ended; False if `timeout` came first.
        For threads other than an event loop's: use join_async or on_exit there."""
        # Each wake looks only at the ids not yet seen ended, first given first (the order
        # children mostly end in): a check of every id at every end took 46 ms, under the
        # registry's lock, to join 1,000 children ending in order (timeit of the two).
        pending = list(reversed(tuple(ids)))

        def all_ended() -> bool:
            while pending and pending[-1] not in self._awaited:
                pending.pop()
            return not pending

        with self._ended:
            return self._ended.wait_for(all_ended, timeout)

    async def join_async(self, ids: Iterable[int], timeout: float | None = None) -> bool:
        """Await every process in `ids`; the event loop keeps running meanwhile."""
        import asyncio  # here: `proclab run` never needs it

        loop = asyncio.get_running_loop()
        waits = []
        for rec_id in tuple(ids):
            future: asyncio.Future[None] = loop.create_future()

            def done(_: ProcessRow, future: asyncio.Future[None] = future) -> None:
                # the awaiting side may have given up and closed its loop (an app that quit)
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_resolve, future)

            self.on_exit(rec_id, done)
            waits.append(future)
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            return False
        return True

    def wait_started(self, ids: Iterable[int], timeout: float = 30.0) -> bool:
        """Block until none of `ids` is still `starting`."""
        deadline = time.monotonic() + timeout
        ids = tuple(ids)
        while True:
            with self.lock:
                if all(
                    self._rows[i].state is not ProcState.STARTING for i in ids if i in self._rows
                ):
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)

    @staticmethod
    def run_callbacks(callbacks: list[RowCallback], row: ProcessRow) -> None:
        for callback in callbacks:
            try:
                callback(row)
            except Exception:
                traceback.print_exc()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def hand_out(subscribers: Sequence[Callable[[Event], None]], event: Event) -> None:
    """`event` to each subscriber in turn: one that raises must not stop the others."""
    for callback in subscribers:
        try:
            callback(event)
        except Exception:
            traceback.print_exc()
