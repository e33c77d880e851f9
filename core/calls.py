"""The multiprocessing calls of a watched program, per process: those made on it (start,
join, terminate, kill) and those it made, in the order they happened. Fed from a source's
events on one thread (the app's drain). And the rules behind the figures they give, in
words, for the details and the help.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from proclab.core.model import Cleared, Event, ProcessCall

KEEP_PER_PROCESS = 200  # calls kept for one process (a loop of joins with a timeout...)

START_RULE = (
    "from start() called in the parent to the child running its target, both"
    " clocks read by the hook (time.time() in each process); start() returns without"
    " waiting for the child to run."
)
JOIN_RULE = (
    "blocked is from the call to its return, measured in the caller by the hook:"
    " how long the parent waited, doing nothing else in that thread. With a timeout it"
    " returns when the child ends or the timeout runs out, whichever comes first: a"
    " timed-out join leaves the child running."
)
EXIT_RULE = (
    "only a process's parent can read it (by reaping it, wait/waitpid). proclab"
    " reads its own children's; a watched program's other processes report it through the"
    " hook in their parent (multiprocessing's exitcode, os.waitpid...). A parent without"
    " the hook (not Python, or a static binary) keeps it to itself: proclab says so, and"
    " never guesses."
)
TASKS_RULE = (
    "the tasks it has done (what the pool queued to it: a map chunk is one task) and"
    " the calls of your function in them, counted by the hook in the worker as it hands"
    " each result back: the task it is running is not counted yet. Final once the worker"
    " said so at its end; a worker the pool terminated (with Pool() as p: ends that way)"
    " may have run more than it last said (shown ≥)."
)


class CallLog:
    """Calls by the process they were made on, and by the process that made them."""

    def __init__(self, keep: int = KEEP_PER_PROCESS) -> None:
        self._keep = keep
        self._on: dict[int, deque[ProcessCall]] = {}
        self._by: dict[int, deque[ProcessCall]] = {}

    def feed(self, event: Event) -> None:
        if isinstance(event, ProcessCall):
            if event.child_id is not None:
                self._add(self._on, event.child_id, event)
            self._add(self._by, event.id, event)
        elif isinstance(event, Cleared):
            for rec_id in event.ids:
                self._on.pop(rec_id, None)
                self._by.pop(rec_id, None)

    def clear(self) -> None:
        """Forget every call (a replay seeking back hands them out again)."""
        self._on.clear()
        self._by.clear()

    def _add(self, index: dict[int, deque[ProcessCall]], rec_id: int, call: ProcessCall) -> None:
        calls = index.get(rec_id)
        if calls is None:
            calls = index[rec_id] = deque(maxlen=self._keep)
        calls.append(call)

    def on(self, rec_id: int) -> tuple[ProcessCall, ...]:
        """The calls made on process `rec_id`, in the order they returned."""
        return _in_order(self._on.get(rec_id, ()))

    def by(self, rec_id: int) -> tuple[ProcessCall, ...]:
        """The calls process `rec_id` made on its children, in the order they returned."""
        return _in_order(self._by.get(rec_id, ()))


def _in_order(calls: Iterable[ProcessCall]) -> tuple[ProcessCall, ...]:
    return tuple(sorted(calls, key=lambda call: call.returned_at))
