"""A watched tree's events in the order things happened (core/watch/in_order.py), as the
app, a recording and the headless stream all hear them."""

from __future__ import annotations

import time
from dataclasses import replace
from types import SimpleNamespace

import pytest
from support import wait_until

from proclab.core.model import (
    Event,
    Exited,
    Notice,
    OutputLine,
    ProcessRow,
    ProcState,
    Spawned,
    StateChanged,
)
from proclab.core.watch import in_order
from proclab.core.watch.in_order import InOrder


def said(events: list[Event]) -> list[str]:
    """Each event in a word: the kind, and the line or notice's text."""
    out = []
    for e in events:
        if isinstance(e, OutputLine):
            out.append(f"{e.pid} | {e.text}")
        elif isinstance(e, Notice):
            out.append(f"notice {e.text}")
        else:
            out.append(f"{type(e).__name__} {e.row.pid}")  # type: ignore[union-attr]
    return out


def test_an_end_is_told_after_the_lines_its_process_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lines are read from a process's pipes, its end comes from elsewhere (its parent's
    word, its pidfd): the end waits until its pipes are read to their end, what is told
    after it waits behind it, and its own late lines go before it. A pipe held open by
    something else (a child it started) lets the end go after LINES_WAIT_S, but never
    while bytes wait in it."""
    monkeypatch.setattr(in_order, "CHECK_S", 0.0)  # each tick asks again
    monkeypatch.setattr(in_order, "LINES_WAIT_S", 60.0)  # no end goes by the clock here
    monkeypatch.setattr(in_order, "MAX_HOLD_S", 60.0)
    child = ProcessRow(2, "talker", None, ProcState.EXITED, 101, exitcode=0, parent=1)
    still_open = {2}
    unread: set[int] = set()  # rows whose pipes hold bytes not read yet
    pipes = SimpleNamespace(output_open=still_open.__contains__, output_unread=unread.__contains__)
    heard: list[Event] = []
    ordered = InOrder(pipes, heard.append)
    try:
        ordered(Spawned(child))
        ordered(OutputLine(2, 101, "talker", "stdout", "first", 0.0))
        ordered(Exited(child))  # the parent's word, before the rest of its lines are read
        ordered(Notice("info", "after the end", 0.0))
        ordered(StateChanged(child, ProcState.ENDED))  # its status, told after its end
        ordered(OutputLine(2, 101, "talker", "stdout", "last", 0.0))
        ordered.tick()
        assert said(heard) == ["Spawned 101", "101 | first", "101 | last"]
        still_open.clear()  # its pipes read to their end
        ordered.tick()
        assert said(heard)[3:] == ["Exited 101", "notice after the end", "StateChanged 101"]

        monkeypatch.setattr(in_order, "LINES_WAIT_S", 0.0)
        other = replace(child, id=3, pid=102)
        still_open.add(3)
        unread.add(3)
        ordered(Exited(other))
        ordered.tick()
        assert said(heard)[6:] == []  # its pipe open and not read to its end
        unread.clear()
        ordered.tick()
        assert said(heard)[6:] == ["Exited 102"]  # open, empty, its time is up
    finally:
        ordered.close()


def test_what_a_subscriber_tells_while_hearing_an_event_comes_after_it() -> None:
    """A recording whose write fails says so from inside the delivery: every subscriber
    hears the event first, then the notice."""
    pipes = SimpleNamespace(output_open=lambda _: False, output_unread=lambda _: False)
    first: list[Event] = []
    second: list[Event] = []

    def deliver(event: Event) -> None:
        first.append(event)
        if isinstance(event, OutputLine):
            ordered(Notice("error", "the recording stopped", 0.0))
        second.append(event)

    ordered = InOrder(pipes, deliver)
    ordered(OutputLine(2, 101, "talker", "stdout", "a line", 0.0))
    ordered.close()
    assert said(first) == said(second) == ["101 | a line", "notice the recording stopped"]


def test_the_ticker_lets_a_held_end_go_without_anyone_asking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The app and a recording tick nothing themselves: a held end goes by the clock."""
    monkeypatch.setattr(in_order, "LINES_WAIT_S", 0.5)  # more than a stall before the check
    child = ProcessRow(2, "talker", None, ProcState.EXITED, 101, exitcode=0, parent=1)
    pipes = SimpleNamespace(output_open=lambda _: True, output_unread=lambda _: False)
    heard: list[Event] = []
    ordered = InOrder(pipes, heard.append)
    try:
        ordered(Exited(child))
        ordered(Notice("info", "behind it", 0.0))
        assert heard == []
        assert wait_until(lambda: len(heard) == 2, 5)
        assert said(heard) == ["Exited 101", "notice behind it"]
    finally:
        ordered.close()


def test_an_end_waits_at_most_so_long_for_a_pipe_that_keeps_printing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process it started, not hooked, holds its pipe and prints on: each line pushed
    its end back, and everything told after it waited as long (the app's panes froze)."""
    monkeypatch.setattr(in_order, "CHECK_S", 0.0)
    monkeypatch.setattr(in_order, "MAX_HOLD_S", 0.05)
    child = ProcessRow(2, "sh", None, ProcState.EXITED, 101, exitcode=0, parent=1)
    pipes = SimpleNamespace(
        output_open=lambda _: True, output_unread=lambda _: False, row=lambda _: child
    )
    heard: list[Event] = []
    ordered = InOrder(pipes, heard.append)
    try:
        ordered(Exited(child))
        ordered(Notice("info", "behind it", 0.0))
        deadline = time.monotonic() + 5
        while "notice behind it" not in said(heard) and time.monotonic() < deadline:
            ordered(OutputLine(2, 101, "sh", "stdout", "again", 0.0))  # its descendant's
            time.sleep(0.01)
        assert "Exited 101" in said(heard) and "notice behind it" in said(heard)
    finally:
        ordered.close()


def test_a_row_s_end_that_waited_goes_out_as_the_row_stands() -> None:
    """Its traceback, read after its end came from its parent's word, went out before the
    held end, which then carried the row without it: a replay kept that row."""
    before = ProcessRow(2, "talker", None, ProcState.FAILED, 101, exitcode=1, parent=1)
    now = replace(before, error="ValueError: boom")
    still_open = {2}
    pipes = SimpleNamespace(
        output_open=still_open.__contains__, output_unread=lambda _: False, row=lambda _: now
    )
    heard: list[Event] = []
    ordered = InOrder(pipes, heard.append)
    ordered(Exited(before))
    still_open.clear()
    ordered.tick()
    ordered.close()
    assert [type(e).__name__ for e in heard] == ["Exited"]
    assert heard[0].row.error == "ValueError: boom"  # type: ignore[union-attr]
