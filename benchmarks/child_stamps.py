"""Moments of one child's start + join, stamped by the parent and the child alike.

One shared page (an anonymous MAP_SHARED mapping made when this module is imported, so a
fork child writes into the same page its parent reads), a slot per moment, each the
`time.perf_counter()` of when it happened: CLOCK_MONOTONIC, the same clock in every
process. Imported before a fork, this module is already loaded in each fork child, so
`target` costs the child no import (benchmarks/fork_path.py).
"""

from __future__ import annotations

import mmap
import os
import struct
import time

# In the order they happen; "parent" moments are stamped on the thread that did them.
MOMENTS = (
    "call",  # the caller starts the child (Process() or Controller.spawn)
    "spawn returned",  # proclab only: Controller.spawn() handed the child to the launcher
    "fork called",  # os.fork about to run (a before-fork hook)
    "fork returned",  # os.fork returned in the parent (the first after-fork hook)
    "step aside done",  # proclab only: its launcher's after-fork hook is over
    "child running",  # the child's first Python (its first after-fork hook)
    "target runs",  # the child's target begins
    "child exits",  # the child calls os._exit
    "end reported",  # proclab only: its Exited event, timed on the watcher's thread
    "join returned",  # the caller's join() returns
)
_SLOT = {name: i for i, name in enumerate(MOMENTS)}
_page = mmap.mmap(-1, mmap.PAGESIZE)  # anonymous and shared: a fork child writes here too


def stamp(moment: str, at: float | None = None) -> None:
    """Now, or `at` (a `time.perf_counter()` taken elsewhere)."""
    struct.pack_into("d", _page, _SLOT[moment] * 8, time.perf_counter() if at is None else at)


def clear() -> None:
    _page[: len(MOMENTS) * 8] = bytes(len(MOMENTS) * 8)


def read() -> dict[str, float]:
    """Milliseconds from the call to each moment stamped since the last clear()."""
    values = struct.unpack_from(f"{len(MOMENTS)}d", _page)
    began = values[0]
    return {m: (v - began) * 1e3 for m, v in zip(MOMENTS, values, strict=True) if v}


def target() -> None:
    """What each child runs: it stamps the moment its target begins, and nothing else."""
    stamp("target runs")


def stamp_exits() -> None:
    """Each fork child started from here on stamps its os._exit (multiprocessing ends a
    fork child with os._exit, looked up on the module when it is called)."""
    real_exit = os._exit

    def stamped_exit(code: int) -> None:
        stamp("child exits")
        real_exit(code)

    os._exit = stamped_exit  # type: ignore[assignment]
