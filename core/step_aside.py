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
mask proclab had. The move is made from an after-fork hook, the moment fork returns in
the launcher, not once Process.start() has returned: multiprocessing's bookkeeping after
the fork (its Finalize, closing the child's pipe ends; every page it writes a copy now
that the child shares it) took 0.18 ms, which the child waited on the launcher's CPU
(stamped: its run-queue wait before its first line of proclab's code went from 0.35 ms
to 0.26, bare multiprocessing's being 0.17; `benchmarks/spawn.py --methods fork`: 1.46x
and 1.41x of bare before, 1.38x and 1.35x after, alternated). The hook runs after every
fork in proclab's process and in its fork children (they inherit it), and returns at once
unless the forking thread armed it (`arm`): a bare fork start + join in a process with
such a hook took 1.48-1.54 ms against 1.47-1.52 without (six runs of 400, alternated).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
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


class _Armed(threading.local):
    """Per thread: whether its next fork is to be stepped off, and what that did."""

    on = False
    # The process that armed it: a fork child inherits its thread's copy, armed, and must
    # not step aside when its own code forks.
    pid = 0
    mask: set[int] | None = None  # what step_aside returned, for step_back
    seconds = 0.0  # how long the step took, inside Process.start()


_armed = _Armed()


def arm() -> None:
    """Step off the CPU of the child the calling thread forks next, the moment its fork
    returns (before Process.start() does)."""
    _armed.on, _armed.pid, _armed.mask, _armed.seconds = True, os.getpid(), None, 0.0


def taken() -> tuple[set[int] | None, float]:
    """Once the armed start is over: the mask to give back to `step_back` (None: the
    thread did not move) and the seconds the step took. Disarms."""
    done = (_armed.mask, _armed.seconds)
    _armed.on, _armed.mask, _armed.seconds = False, None, 0.0
    return done


def _after_fork_in_parent() -> None:
    if not _armed.on:
        return
    _armed.on = False
    if _armed.pid != os.getpid():  # a fork child of the thread that armed it
        return
    began = time.perf_counter()
    with contextlib.suppress(OSError, ValueError, IndexError):
        _armed.mask = step_aside(procfs.newest_child())  # its pid is not told here
    _armed.seconds = time.perf_counter() - began


os.register_at_fork(after_in_parent=_after_fork_in_parent)


def step_back(mask: set[int]) -> None:
    """The calling thread may run on every CPU it could before: called before it forks
    again, so that no child inherits the narrowed mask."""
    with contextlib.suppress(OSError):  # a cpuset changed meanwhile: the kernel's rule then
        os.sched_setaffinity(0, mask)
