"""A watched tree's events in the order things happened, for every one who hears them:
the app, a recording, the headless stream.

A process's lines are read from its pipes, and its end comes from elsewhere (its pidfd,
its parent's word on it), often first: a child's lines were told after its end, and its
parent's lines printed after `join()` came before the child's. So a process's end waits
while the pipes it printed to hold bytes not read yet, or (a pipe kept open by a process
that is not hooked) until LINES_WAIT_S after its last line; what is told after it waits
behind it, but that process's own events, which go before it. The sampler's ticks are
figures, not things told, and never wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from proclab.core.model import (
    Event,
    Exited,
    OutputLine,
    ProcessRow,
    ProcState,
    RowEvent,
    Sampled,
    StateChanged,
)

LINES_WAIT_S = 0.5  # after its last line, with its pipes empty but open
# At most this long an end waits for lines that keep coming on a pipe kept open (a
# process it started, not hooked, printing on): everything told after it waits too.
MAX_HOLD_S = 2.0
CHECK_S = 0.005  # at most this often, whether a held end may go
TICK_S = 0.05  # while something is held, how often the ticker asks


class Pipes(Protocol):
    def output_open(self, rec_id: int) -> bool: ...

    def output_unread(self, rec_id: int) -> bool: ...

    def row(self, rec_id: int) -> ProcessRow: ...


def row_of(event: Event) -> int | None:
    """The row an event is about, where it is about one."""
    if isinstance(event, OutputLine):
        return event.id
    if isinstance(event, RowEvent):
        return event.row.id
    return None


def is_end(event: Event) -> bool:
    """A process's end, or its status told after its end."""
    return isinstance(event, Exited) or (
        isinstance(event, StateChanged) and event.old is ProcState.ENDED
    )


class InOrder:
    """Hands events to `deliver` in order (see the module's docstring); called from the
    source's threads. A ticker thread of its own lets held events go while any are held.
    """

    def __init__(self, pipes: Pipes, deliver: Callable[[Event], None]) -> None:
        self._pipes = pipes
        self._deliver = deliver
        # Re-entrant: a subscriber may tell something from inside a delivery (a recording
        # whose write failed says so).
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)
        self._held: list[Event] = []  # behind an end that waits for its lines
        self._waiting: dict[int, float] = {}  # row -> until when its end waits
        self._held_at: dict[int, float] = {}  # row -> when its end began to wait
        self._before: dict[int, list[Event]] = {}  # row -> its events, before its end
        self._checked = 0.0  # when the end at the head was last asked about
        self._closed = False
        self._ticker: threading.Thread | None = None
        # What a subscriber told from inside a delivery: taken after it, so that every
        # subscriber hears the event being delivered before what it led to.
        self._delivering = False
        self._nested: list[Event] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, Sampled):
            self._deliver(event)
            return
        with self._lock:
            if self._delivering:
                self._nested.append(event)
            elif self._closed:
                self._send(event)  # the tree's pipes are read: nothing is waited for
            elif not self._held and type(event) is OutputLine:
                self._send(event)  # nothing waits: a flood of lines goes straight out
            else:
                self._take(event)
                self._release()

    def _take(self, event: Event) -> None:
        row = row_of(event)
        end = is_end(event)
        if row is not None and row in self._waiting and not end:
            # Printed before its process ended: before its end, which waits while its
            # lines keep coming (a burst of them takes a while to read).
            self._waiting[row] = time.monotonic() + LINES_WAIT_S
            head = self._held[0]
            if is_end(head) and row_of(head) == row:
                self._send(event)  # nothing waits before it
            else:
                self._before[row].append(event)
        elif self._held or (end and row is not None and self._pipes.output_open(row)):
            self._held.append(event)
            if end and row is not None and row not in self._waiting:
                now = time.monotonic()
                self._waiting[row] = now + LINES_WAIT_S
                self._held_at[row] = now
                self._before[row] = []
            self._tick_while_held()
        else:
            self._send(event)

    def _send(self, event: Event) -> None:
        """Under the lock: one event to the subscribers, then what they told meanwhile."""
        self._delivering = True
        try:
            self._deliver(event)
        finally:
            self._delivering = False
        while self._nested:
            self._take(self._nested.pop(0))

    def tick(self) -> None:
        """What waited long enough, or whose lines have all come, goes out (asked now: a
        pipe has closed, or the ticker's time has come)."""
        with self._lock:
            self._checked = 0.0
            self._release()

    def close(self) -> None:
        """Flush, and stop the ticker."""
        with self._lock:
            self._release(everything=True)
            self._closed = True
            self._wakeup.notify_all()
            ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(timeout=5)

    def _tick_while_held(self) -> None:
        """Under the lock: the ticker runs (it waits, idle, while nothing is held)."""
        if self._ticker is None and not self._closed:
            self._ticker = threading.Thread(
                target=self._tick_loop, name="proclab-in-order", daemon=True
            )
            self._ticker.start()
        self._wakeup.notify_all()

    def _tick_loop(self) -> None:
        with self._lock:
            while not self._closed:
                self._wakeup.wait(TICK_S if self._held else None)
                self.tick()

    def _release(self, everything: bool = False) -> None:
        """Under the lock: deliver what no waiting end holds back."""
        while self._held:
            head = self._held[0]
            row = row_of(head)
            if is_end(head) and row in self._waiting:
                assert row is not None
                before = self._before[row]
                while before:  # its events so far: nothing they wait behind now
                    self._send(self._as_now(before.pop(0)))
                if not everything and self._still_waits(row):
                    return
                del self._waiting[row], self._before[row], self._held_at[row]
            self._send(self._as_now(self._held.pop(0)))

    def _as_now(self, event: Event) -> Event:
        """A row's end that waited, with its row as it stands: a later event of the row
        (its traceback read after its end) may have gone before it, and the last a
        subscriber hears of a row is how it stands. Any other event of a row waits in
        order with the row's later ones, and tells the row as it was: made "as now", a
        fork child's start was told under the name it gave itself later ("+ renamed1")."""
        if not isinstance(event, RowEvent) or not is_end(event):
            return event
        try:
            row = self._pipes.row(event.row.id)
        except Exception:  # cleared meanwhile
            return event
        return event if row is event.row else replace(event, row=row)

    def _still_waits(self, row: int) -> bool:
        """Bytes still in its pipes are lines yet to come, however long the reader is busy
        with others; an empty pipe kept open is waited for so long. Asked at most every
        CHECK_S: not for every line other processes print meanwhile."""
        now = time.monotonic()
        if now - self._checked < CHECK_S:
            return True
        self._checked = now
        until = min(self._waiting[row], self._held_at[row] + MAX_HOLD_S)
        return self._pipes.output_open(row) and (now < until or self._pipes.output_unread(row))
