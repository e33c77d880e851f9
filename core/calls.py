"""The multiprocessing calls of a watched program, per process: what its parent did to it
(start, join, terminate, kill, reaping it) and when it began to run, in the order they
happened. Fed from a source's events on one thread (the app's drain); `of(id)` hands out
a process's calls. And the rules behind the figures they give, in words, for the details
and the help.
"""

from __future__ import annotations

from collections import deque

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
    "what the pool queued to it (a map chunk is one task) and the calls"
    " of your function in them, counted by the hook in the worker. Final once the worker"
    " said so at its end; a worker the pool terminated (with Pool() as p: ends that way)"
    " may have run more than it last said (shown ≥)."
)


class CallLog:
    """Calls by the process they were made on, oldest first."""

    def __init__(self, keep: int = KEEP_PER_PROCESS) -> None:
        self._keep = keep
        self._calls: dict[int, deque[ProcessCall]] = {}

    def feed(self, event: Event) -> None:
        if isinstance(event, ProcessCall):
            calls = self._calls.get(event.id)
            if calls is None:
                calls = self._calls[event.id] = deque(maxlen=self._keep)
            calls.append(event)
        elif isinstance(event, Cleared):
            for rec_id in event.ids:
                self._calls.pop(rec_id, None)

    def of(self, rec_id: int) -> tuple[ProcessCall, ...]:
        """The calls made on process `rec_id`, in the order they happened."""
        return tuple(sorted(self._calls.get(rec_id, ()), key=lambda call: call.returned))
