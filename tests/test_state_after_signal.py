"""A stop or continue proclab sends is shown as it lands (core/signals.py's
read_state_after_signal), even when the kernel shows the signal's effect a few reads late:
a process must run to stop itself, and on a loaded machine that takes a while. CI met it
once: a watched `sleep` read running at its last tick was read sleeping just after its
SIGSTOP, shown so, and its stop then counted at the next tick. Here the kernel's reads are
given in that order on purpose."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from types import SimpleNamespace

import pytest
from fakes import mixed_rows
from support import wait_until

from proclab.core import signals
from proclab.core.model import ProcessRow, ProcState
from proclab.core.registry import Registry


def kernel_says(monkeypatch: pytest.MonkeyPatch, *statuses: str) -> None:
    """The process's status as /proc gives it, read after read (the last one from then on)."""
    left: Iterator[str] = iter(statuses)
    last = [statuses[0]]

    def read(pid: int) -> SimpleNamespace:
        last[0] = next(left, last[0])
        return SimpleNamespace(status=last[0])

    monkeypatch.setattr(signals.procfs, "read", read)


def signalled(row: ProcessRow, sig: int) -> ProcessRow:
    """The row once read_state_after_signal has read the state `sig` led to."""
    registry = Registry()
    registry.add(row)
    registry.refresh_begins(row.id)
    signals.read_state_after_signal(registry, row.id, row.pid or 0, sig)
    assert wait_until(lambda: row.id not in registry._refreshing, 10)
    return registry.row(row.id)


def test_a_stop_the_kernel_shows_late_is_shown_as_a_stop(monkeypatch) -> None:
    running = replace(mixed_rows()[1], state=ProcState.RUNNING)
    kernel_says(monkeypatch, "sleeping", "sleeping", "stopped")
    row = signalled(running, signal.SIGSTOP)
    assert row.state is ProcState.STOPPED and row.stopped_since is not None
    assert not row.stops_at_ticks


def test_a_continue_the_kernel_shows_late_ends_the_stop(monkeypatch) -> None:
    paused = replace(mixed_rows()[1], state=ProcState.STOPPED, stopped_since=time.time() - 2)
    kernel_says(monkeypatch, "stopped", "running")
    row = signalled(paused, signal.SIGCONT)
    assert row.state is ProcState.RUNNING and row.stopped_since is None
    assert 2 <= row.stopped_s < 5


def test_a_stop_that_never_lands_leaves_the_row_to_the_ticks(monkeypatch) -> None:
    """A process that never stops (one in uninterruptible sleep) is read until the wait
    runs out, shown as last read, and its state is the ticks' again."""
    monkeypatch.setattr(signals, "STATE_WAIT_S", 0.1)
    running = replace(mixed_rows()[1], state=ProcState.RUNNING)
    kernel_says(monkeypatch, "disk-sleep")
    row = signalled(running, signal.SIGSTOP)
    assert row.state is ProcState.SLEEPING and row.stopped_since is None
