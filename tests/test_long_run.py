"""Long runs give back what they took: 500 children sampled at 1 s for a minute, then
ended and cleared; proclab's open fds and live Python objects return to where they were,
and every child is reaped.

RSS is measured and printed but cannot be asserted to return exactly: CPython's
allocator and glibc keep freed pages for reuse (a trial: 50.8 -> 63.9 -> 56.7 MiB,
while live Python blocks went 260,969 -> 504,034 -> 261,517). What can be asserted is
that the kept memory is reused: a second batch of 500 does not grow RSS again."""

from __future__ import annotations

import gc
import os
import sys
import time

import psutil
import pytest

from proclab.core.controller import Controller
from proclab.core.model import ProcState, Sampled
from proclab.core.spec import build_spec

CHILDREN = 500
MINUTE = 60.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss() -> int:
    return psutil.Process().memory_info().rss


def run_batch(controller: Controller, seconds: float) -> list[int]:
    ids = controller.spawn(build_spec("proclab.core.tasks:sleep", f"({seconds},)"), CHILDREN)
    assert controller.wait_started(ids, timeout=120)
    return list(ids)


def end_batch(controller: Controller, ids: list[int]) -> None:
    assert controller.join(ids, timeout=60)
    assert all(controller.row(i).state is ProcState.EXITED for i in ids)
    assert controller.clear_exited() == CHILDREN
    gc.collect()
    time.sleep(1.5)


@pytest.mark.slow
def test_five_hundred_children_for_a_minute():
    controller = Controller(max_procs=CHILDREN + 10, sample_interval=1.0).start()
    samples: list[Sampled] = []
    controller.subscribe(lambda e: samples.append(e) if isinstance(e, Sampled) else None)
    try:
        # A warm-up round, so that what is measured is the children, not first imports.
        warm = controller.spawn(build_spec("proclab.core.tasks:sleep", "(0.1,)"), 5)
        assert controller.join(warm, timeout=30)
        controller.clear_exited()
        gc.collect()
        time.sleep(1.5)
        fds_before, rss_before = open_fds(), rss()
        blocks_before = sys.getallocatedblocks()

        asked = time.monotonic()
        ids = run_batch(controller, MINUTE + 5)
        began = time.monotonic()
        samples.clear()
        time.sleep(MINUTE)
        minute_took = time.monotonic() - began
        fds_during, rss_during = open_fds(), rss()
        blocks_during = sys.getallocatedblocks()
        # every child measured: sampled again, or its last sample stood (nothing moved)
        full = [s.system.time for s in samples if len(s.procs) + len(s.stood) == CHILDREN]
        ticks = len(full)
        # Sampling never stalls: full samples all through the minute. How many a minute
        # (60 at 1 s on a quiet machine) is a timing figure, printed below, not asserted:
        # on a loaded machine the sampler gets the CPU it gets.
        # The first child ends MINUTE + 5 s after it started, which on a loaded machine can
        # be before the minute is over (500 starts took more than 5 s): samples are full
        # until then.
        until = min(began + minute_took, asked + MINUTE + 5)
        gaps = [b - a for a, b in zip([began, *full], [*full, until], strict=True)]
        assert ticks >= MINUTE / 10 and max(gaps) < 10, f"{ticks} full samples; gaps {gaps}"
        end_batch(controller, ids)
        samples.clear()
        fds_after, rss_after = open_fds(), rss()
        blocks_after = sys.getallocatedblocks()

        # The second batch reuses what the first left in the allocator.
        end_batch(controller, run_batch(controller, 10))
        rss_again = rss()
        print(
            f"\nfds {fds_before} -> {fds_during} -> {fds_after};"
            f" Python blocks {blocks_before} -> {blocks_during} -> {blocks_after};"
            f" RSS {rss_before / 2**20:.1f} -> {rss_during / 2**20:.1f} -> {rss_after / 2**20:.1f}"
            f" MiB, after a second batch {rss_again / 2**20:.1f} MiB;"
            f" the sampled minute took {minute_took:.1f} s with {ticks} full samples"
        )
        assert fds_during >= fds_before + 2 * CHILDREN, "the children were not watched"
        assert fds_after == fds_before, "file descriptors leaked"
        # Dicts keep their grown tables and interned ids stay cached: a few thousand
        # blocks, against the ~hundreds of thousands the children used.
        grown = blocks_during - blocks_before
        assert blocks_after - blocks_before < max(5000, 0.05 * grown), "Python objects leaked"
        assert rss_again - rss_after < 4 * 2**20, "the second batch needed new memory"
        zombies = [
            p
            for p in psutil.Process().children(recursive=True)
            if p.status() == psutil.STATUS_ZOMBIE
        ]
        assert zombies == []
    finally:
        controller.close()
