"""The launcher steps off the CPU a child it has just forked waits on, so that the child
runs at once while the launcher records it on another CPU.

The kernel mostly puts a fork child on its parent's CPU, and an idle CPU does not pull a
waiting task for a while (a /tmp harness here: a parent that kept its CPU 0.3 ms after
forking had its child wait those 0.3 ms on it in 188 of 200 forks, the other CPU idle).
proclab's launcher records each child right after forking it, 0.3-0.5 ms of page faults
with the watcher's wake-up, and the child waited all of it: 0.58 ms of run-queue wait
before its first line of proclab's code, against bare multiprocessing's 0.11 (stamped in
the child). Moved, the launcher left the child 0.10 ms of wait.

Only when the child is queued on the launcher's own CPU: a child the kernel put on the
other CPU (it does when the launcher's looks busy) would otherwise have the launcher move
onto its CPU and take it from the child (seen in `perf sched timehist`). Asking /proc
which CPU the child is on costs the launcher 0.02 ms; stepping every time made start +
join 1.45-1.48x of bare, stepping only off the child's CPU 1.34-1.36x (and never 1.62-1.64x;
the three interleaved in one /tmp harness, 200 rounds).

Only the launcher thread moves, by narrowing its own CPU mask for the recording and
putting it back before it forks again: a child, forked before the narrowing, inherits the
mask proclab had. The move is made once Process.start() has returned: from an after-fork
hook it came 0.05 ms sooner, but a hook runs after every fork in the process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from typing import Any

from proclab.core import procfs


def _load_getcpu() -> Any:
    try:
        return ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError):
        return None


_getcpu = _load_getcpu()


def step_aside(child: int) -> set[int] | None:
    """Leave the CPU the calling thread runs on for any other it may use, if the process
    `child` waits on that CPU. Returns the mask to give back to `step_back`, or None if it
    did not move (the child is elsewhere, one CPU, or no way to know which). Waking the
    idle CPU it moves to may take a millisecond in a VM: the call returns once the thread
    runs there."""
    if _getcpu is None:
        return None
    try:
        allowed = os.sched_getaffinity(0)
        here = _getcpu()
        if len(allowed) < 2 or here not in allowed or procfs.last_cpu(child) != here:
            return None
        os.sched_setaffinity(0, allowed - {here})
    except (OSError, ValueError, IndexError):
        return None
    return allowed


def step_back(mask: set[int]) -> None:
    """The calling thread may run on every CPU it could before: called before it forks
    again, so that no child inherits the narrowed mask."""
    with contextlib.suppress(OSError):  # a cpuset changed meanwhile: the kernel's rule then
        os.sched_setaffinity(0, mask)
