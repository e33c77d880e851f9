"""The launcher steps off the CPU it has just forked a child on, so that the child runs at
once while the launcher records it on another CPU.

The kernel puts a fork child on its parent's CPU unless that CPU looks busy, and an idle
CPU does not pull a waiting task for a while (a /tmp harness here: a parent that kept its
CPU 0.3 ms after forking had its child wait those 0.3 ms on it in 188 of 200 forks, the
other CPU idle). proclab's launcher records each child right after forking it, 0.3-0.5 ms
of page faults with the watcher's wake-up, and the child waited all of it: 0.58 ms of
run-queue wait before its first line of proclab's code, against bare multiprocessing's
0.11 (stamped in the child). Moved, the launcher left the child 0.10 ms of wait, and a
start + join took 0.2 ms less (benchmarks/spawn.py).

Only the launcher thread moves, by narrowing its own CPU mask for the recording and
putting it back before it forks again: a child, forked before the narrowing, inherits the
mask proclab had. The move is made once Process.start() has returned: from an after-fork
hook it came 0.05 ms sooner, but a hook runs after every fork in the process, and cost
each of them (bare multiprocessing's in the benchmark too) about as much.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from typing import Any


def _load_getcpu() -> Any:
    try:
        return ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError):
        return None


_getcpu = _load_getcpu()


def step_aside() -> set[int] | None:
    """Leave the CPU the calling thread runs on for any other it may use. Returns the mask
    to give back to `step_back`, or None if it did not move (one CPU, or no way to know
    which). Waking the idle CPU it moves to may take a millisecond in a VM: the call
    returns once the thread runs there."""
    if _getcpu is None:
        return None
    try:
        allowed = os.sched_getaffinity(0)
        here = _getcpu()
        if len(allowed) < 2 or here not in allowed:
            return None
        os.sched_setaffinity(0, allowed - {here})
    except OSError:
        return None
    return allowed


def step_back(mask: set[int]) -> None:
    """The calling thread may run on every CPU it could before: called before it forks
    again, so that no child inherits the narrowed mask."""
    with contextlib.suppress(OSError):  # a cpuset changed meanwhile: the kernel's rule then
        os.sched_setaffinity(0, mask)
