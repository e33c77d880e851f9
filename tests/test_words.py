"""Words a person reads: one plural rule everywhere ("1 line", "1 child"), pinning said
as it is, and the output pane saying when it shows only one process."""

from __future__ import annotations

import subprocess

import pytest
from fakes import NOW, FakeController
from pty_session import PROCLAB
from support import TASKS

from proclab.core.words import plural
from proclab.tui.app import ProclabApp
from proclab.tui.screens.details import DetailsScreen


def test_plural() -> None:
    assert [plural(n, "child") for n in (0, 1, 2)] == ["0 children", "1 child", "2 children"]
    assert plural(1, "line") == "1 line" and plural(3, "line") == "3 lines"
    assert plural(1, "process") == "1 process" and plural(2, "process") == "2 processes"
    assert plural(2, "copy") == "2 copies" and plural(1_500, "job") == "1,500 jobs"


def test_run_ends_one_child_in_the_singular() -> None:
    done = subprocess.run(
        [PROCLAB, "run", f"{TASKS}:sleep", "--args", "(30,)", "--timeout", "0.5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "timeout after 0.5 s: ending 1 child\n" in done.stderr, done.stderr


@pytest.mark.once
async def test_details_count_lines_and_say_pinning_as_it_is() -> None:
    app = ProclabApp(FakeController(), clock=lambda: NOW)
    async with app.run_test(size=(160, 48)) as pilot:
        for rec_id, pinned in ((1, "not pinned (any CPU)"), (3, "pinned to CPU 0")):
            app.lab.table.select(rec_id)  # process-2 printed one line; #3 is pinned to core 0
            await pilot.press("i")
            await pilot.pause()
            assert isinstance(app.screen, DetailsScreen)
            facts = "\n".join(f"{label} {value}" for label, value in app.screen.facts)
            assert pinned in facts and "any CPU   in" not in facts.replace("(any CPU)", "")
            if rec_id == 1:
                assert "Last 1 line of output" in str(
                    app.screen.query_one("#details-output").render()
                )
            await pilot.press("escape")


@pytest.mark.once
async def test_the_output_pane_says_when_it_shows_one_process() -> None:
    app = ProclabApp(FakeController(), clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        app.lab.table.select(4)
        await pilot.press("2", "f")
        await pilot.pause()
        pane = app.lab.query_one("#log")
        assert "only ForkServerProcess-5 (41004)" in str(pane.border_subtitle)
        await pilot.press("f")
        await pilot.pause()
        assert "only" not in str(pane.border_subtitle or "")
