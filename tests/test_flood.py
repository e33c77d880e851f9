"""An output flood (a child printing as fast as the pipe takes it) leaves the app
answering: keys, SIGTERM, and memory bounded, in a real pseudo-terminal. Not timed: the
bounds are generous (benchmarks/flood.py measures); a key or a signal waited for here
minutes before. Plus the pane's own bounds, through a Pilot."""

from __future__ import annotations

import time

import psutil
import pytest
from conftest import reap_orphans
from pty_session import PtySession, gone
from support import TASKS, wait_for

from proclab.core.model import Notice, OutputLine
from proclab.tui.widgets.output_log import SCROLLBACK, OutputLog

RSS_BOUND = 400 * 2**20  # the app idles at about 50 MiB; unbounded, it passed 1.8 GiB
FLOOD = [f"{TASKS}:flood", "--args", "(20_000_000_000, 100)"]  # longer than the test


def test_under_a_flood_the_app_answers_keys_and_sigterm_with_bounded_memory() -> None:
    session = PtySession(FLOOD, size=(160, 48))
    try:
        session.wait_for(b"1 live", timeout=60)
        app = psutil.Process(session.pid)
        family = session.descendants()
        peak = 0
        for _ in range(3):  # keys, while the flood runs on
            time.sleep(1)
            before = len(session.output)
            session.send("?", pause=0)  # the help: its heading is drawn once it opens
            deadline = time.monotonic() + 30
            while b"keys (escape closes)" not in session.output[before:]:
                assert time.monotonic() < deadline, "a key went unanswered for 30 s"
                time.sleep(0.05)
            session.send("\x1b", pause=0.5)
            peak = max(peak, app.memory_info().rss)
        assert peak < RSS_BOUND, f"proclab grew to {peak / 2**20:.0f} MiB"
        assert b"lines not shown" in session.output, "the pane never said it dropped lines"
        session.signal(15)
        assert session.wait(60) == 128 + 15  # acted on: the child ended, the app quit
        assert gone(family) == []
    finally:
        session.close()
        reap_orphans()


def line(i: int, rec_id: int = 1) -> OutputLine:
    return OutputLine(rec_id, 100 + rec_id, f"child-{rec_id}", "stdout", f"line {i}", float(i))


@pytest.mark.parametrize("dropped", [0, 1_234_567])
async def test_the_pane_keeps_its_last_lines_and_counts_the_rest(dropped: int) -> None:
    from textual.app import App, ComposeResult
    from textual.containers import Vertical

    class Pane(App[None]):
        def compose(self) -> ComposeResult:
            with Vertical(id="frame"):  # as in the app's pane
                yield OutputLog(id="log")

    app = Pane()
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(OutputLog)
        log.add([line(i) for i in range(SCROLLBACK * 3)], skipped=dropped)
        await pilot.pause()
        shown = log.lines_shown()
        assert len(shown) == SCROLLBACK
        assert shown[-1] == f"child-1 101 line {SCROLLBACK * 3 - 1}"  # the newest, in view
        if dropped:
            log.add([line(0, rec_id=2)], skipped=5)
            log.add([Notice("warning", "a notice", 0.0)], skipped=5)
            await pilot.pause()
            # The count; the app's pane puts it on its frame (the pty test above sees it).
            assert log.not_shown == 1_234_577
            assert log.lines_shown()[-2:] == [
                "… 5 lines not shown: printed faster than the pane draws them"
                " (f: the selected child's own last lines)",
                "00:00:00 proclab: a notice",
            ]
        await wait_for(pilot, lambda: log.scroll_y == log.max_scroll_y)


async def test_only_the_selected_shows_its_own_history_past_a_chatty_child() -> None:
    from textual.app import App, ComposeResult

    quiet = [line(i, rec_id=2) for i in range(3)]

    class Pane(App[None]):
        def compose(self) -> ComposeResult:
            yield OutputLog(history=lambda rec_id: quiet if rec_id == 2 else [], id="log")

    app = Pane()
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(OutputLog)
        log.add(quiet)
        log.add([line(i) for i in range(SCROLLBACK * 2)])  # the quiet lines fall off
        assert not any("child-2" in text for text in log.lines_shown())
        log.set_selected(2)
        log.action_only_selected(True)
        await pilot.pause()
        assert log.lines_shown() == [f"child-2 102 line {i}" for i in range(3)]
        log.add(quiet[-1:])  # queued before the view was built: not shown twice
        assert len(log.lines_shown()) == 3
