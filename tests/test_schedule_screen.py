"""The CPU scheduling screen: SVG snapshots with presets, and Pilot tests that type into
it as a person would (a job's burst, a bad cell, a CSV file, the algorithm)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fakes import NOW, FakeController
from rich.console import Console
from support import wait_for
from textual.widgets import Input

from proclab.core.scheduling.simulator import ALGORITHM_KEYS, PRESETS, TIE_RULES
from proclab.tui.app import ProclabApp
from proclab.tui.commands.screenshots import steady_cursors
from proclab.tui.screens.help import HelpScreen
from proclab.tui.screens.schedule import ChartView, JobRow, ScheduleScreen

pytestmark = pytest.mark.once


def make_app() -> ProclabApp:
    return ProclabApp(FakeController(cores=2), clock=lambda: NOW)


def chart_text(screen: ScheduleScreen, width: int = 100) -> str:
    console = Console(width=width, record=True, file=None, color_system=None)
    with console.capture() as captured:
        console.print(screen.query_one(ChartView).content)
    return captured.get()


def algorithms(screen: ScheduleScreen) -> list[str]:
    return [s.algorithm for s in screen.schedules]


async def open_screen(pilot, preset: str | None = None) -> ScheduleScreen:
    await pilot.press("g")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ScheduleScreen))
    screen = pilot.app.screen
    assert isinstance(screen, ScheduleScreen)
    if preset is not None:
        chooser = screen.query_one("#sched-preset")
        chooser.focus()  # as a person choosing a preset would
        chooser.value = preset
        want = PRESETS[preset].algorithm
        await wait_for(pilot, lambda: algorithms(screen) in ([want], list(ALGORITHM_KEYS)))
        await wait_for(
            pilot, lambda: screen.schedules[0].jobs[0].name == PRESETS[preset].jobs[0].name
        )
    await wait_for(pilot, lambda: bool(screen.schedules))
    return screen


def rows(screen: ScheduleScreen) -> list[JobRow]:
    return list(screen.query(JobRow))


async def steady(pilot, preset: str | None = None) -> None:
    """Open the screen (with `preset`) and stop the cursor blinking, for a snapshot."""
    steady_cursors(await open_screen(pilot, preset))
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_snapshot_srtf_preset(snap_compare, size):
    # The default preset: Silberschatz's SRTF example, its Gantt chart and figures.
    assert snap_compare(make_app(), terminal_size=size, run_before=steady)


def test_snapshot_all_compared(snap_compare):
    # Stallings' five jobs under every algorithm, side by side.
    async def choose(pilot):
        await steady(pilot, "stallings")

    assert snap_compare(make_app(), terminal_size=(160, 48), run_before=choose)


async def test_editing_a_burst_changes_the_chart():
    async with make_app().run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot)
        before = screen.schedules[0]
        assert before.algorithm == "srtf" and before.averages.waiting == 6.5
        drawn = chart_text(screen)
        # P2's burst 4 -> 12: it no longer preempts P1 for long, and finishes last but one.
        burst = rows(screen)[1].cell("burst")
        burst.focus()
        burst.value = ""
        await pilot.press("1", "2", "enter")
        await wait_for(pilot, lambda: screen.schedules[0] is not before)
        after = screen.schedules[0]
        assert [(p.job, p.start, p.end) for p in after.gantt] == [
            ("P1", 0, 8),
            ("P4", 8, 13),
            ("P3", 13, 22),
            ("P2", 22, 34),
        ]
        assert chart_text(screen) != drawn
        assert "Edited from" in str(screen.query_one("#sched-about").content)


async def test_a_bad_cell_shows_its_error_beside_it_and_nothing_is_computed():
    async with make_app().run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot)
        row = rows(screen)[2]
        row.cell("arrival").focus()
        row.cell("arrival").value = ""
        await pilot.press("minus", "3", "enter")
        await wait_for(pilot, lambda: screen.schedules == ())
        assert row.cell("arrival").has_class("-bad")
        error = str(row.query_one(".sched-row-error").content)
        assert error.startswith("arrival must be 0 or from 0.000001 to")
        assert "Nothing computed" in chart_text(screen)
        # A name used twice is the second row's error.
        rows(screen)[2].cell("arrival").value = "2"
        rows(screen)[3].cell("name").value = "P1"
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: bool(str(rows(screen)[3].query_one(".sched-row-error").content))
        )
        assert str(rows(screen)[3].query_one(".sched-row-error").content) == (
            "name 'P1' is also job 1's name"
        )


async def test_a_row_s_error_has_the_row_s_width_under_its_cells():
    """At 120x32 the jobs pane is 38 columns: beside the cells an error had five, and
    wrapped mid-word ("burs / t / must / be a / fini / te"; a hostile tester's)."""
    async with make_app().run_test(size=(120, 32)) as pilot:
        screen = await open_screen(pilot)
        row = rows(screen)[1]
        row.cell("burst").focus()
        row.cell("burst").value = "nan"
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(str(row.query_one(".sched-row-error").content)))
        await pilot.pause()
        error = row.query_one(".sched-row-error")
        cells = row.query_one(".sched-row-cells")
        assert error.region.y > cells.region.y and error.size.width >= cells.size.width - 2
        drawn = [strip.text for strip in error.render_lines(error.region.reset_offset)]
        words = " ".join(line.strip() for line in drawn if line.strip())
        assert words == str(error.content) == "burst must be a finite number, got nan", drawn
        row.cell("burst").value = "4"  # mended: the line goes
        await pilot.press("enter")
        await wait_for(pilot, lambda: not error.display)


async def test_add_and_remove_jobs_from_the_keyboard():
    async with make_app().run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot)
        assert len(rows(screen)) == 4
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: len(screen.schedules[0].jobs) == 5)
        assert [r.values()[0] for r in rows(screen)] == ["P1", "P5", "P2", "P3", "P4"]
        await pilot.press("down", "ctrl+r")
        await wait_for(pilot, lambda: len(screen.schedules[0].jobs) == 4)
        assert [r.values()[0] for r in rows(screen)] == ["P1", "P5", "P3", "P4"]


async def test_load_csv_and_its_errors(tmp_path: Path):
    good = tmp_path / "jobs.csv"
    good.write_text("name,arrival,burst\nA,0,3\nB,1,2\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,arrival,burst\nA,0,3\nB,1,0\n")
    async with make_app().run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot)
        path = screen.query_one("#set-csv")
        path.focus()
        path.value = str(bad)
        await pilot.press("enter")
        await pilot.pause()
        assert str(screen.query_one("#err-csv").content) == (
            f"{bad}: line 3 (B): burst must be more than 0, got 0"
        )
        assert len(rows(screen)) == 4  # nothing replaced
        path.value = str(good)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(screen.schedules[0].jobs) == 2)
        assert [r.values()[:3] for r in rows(screen)] == [("A", "0", "3"), ("B", "1", "2")]
        assert str(screen.query_one("#err-csv").content) == ""
        assert [(p.job, p.end) for p in screen.schedules[0].gantt] == [("A", 3), ("B", 5)]
        # A FIFO: opened on the event loop, it waited for a writer and froze the app (and
        # kept it alive past its terminal). An empty path is said to be one.
        fifo = tmp_path / "jobs.fifo"
        os.mkfifo(fifo)
        for typed, said in ((str(fifo), f"{fifo}: not a file (a FIFO"), ("", "no path: type")):
            path.value = typed
            await pilot.press("enter")
            await pilot.pause()
            assert str(screen.query_one("#err-csv").content).startswith(said)
            assert len(screen.schedules[0].jobs) == 2  # nothing replaced


async def test_algorithm_all_compares_and_settings_are_checked():
    async with make_app().run_test(size=(160, 48)) as pilot:
        screen = await open_screen(pilot, "rr")
        assert screen.schedules[0].label == "RR (quantum 4)"
        assert screen.schedules[0].averages.waiting == 17 / 3
        screen.query_one("#set-quantum").value = "0"
        await wait_for(pilot, lambda: screen.schedules == ())
        assert str(screen.query_one("#err-quantum").content) == "must be more than 0, got 0"
        screen.query_one("#set-quantum").value = "2"
        screen.query_one("#sched-algorithm").value = "mlfq"
        screen.query_one("#set-quanta").value = ",".join(["2"] * 33)
        await wait_for(pilot, lambda: str(screen.query_one("#err-quanta").content) != "")
        # it read as a quantum of 33 refused
        assert str(screen.query_one("#err-quanta").content) == (
            "one level a quantum: levels must be from 1 to 8, got 33"
        )
        screen.query_one("#set-quanta").value = "2,4"
        screen.query_one("#sched-algorithm").value = "all"
        await wait_for(pilot, lambda: len(screen.schedules) == len(ALGORITHM_KEYS))
        assert [s.algorithm for s in screen.schedules] == list(ALGORITHM_KEYS)
        assert screen.schedules[3].settings.quantum == 2
        text = chart_text(screen, 120)
        assert all(name in text for name in ("FCFS", "SJF", "SRTF", "RR", "Priority", "MLFQ"))


async def test_help_has_the_keys_and_the_tie_rules():
    async with make_app().run_test(size=(100, 40)) as pilot:
        await open_screen(pilot)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
        assert isinstance(pilot.app.screen, HelpScreen)
        shown = " ".join(str(s.content) for s in pilot.app.screen.query(".help-text"))
        assert TIE_RULES.splitlines()[0] in shown
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert not isinstance(pilot.app.screen, ScheduleScreen)
        # The app's own help has them too.
        await pilot.press("question_mark")
        await pilot.pause()
        shown = " ".join(str(s.content) for s in pilot.app.screen.query(".help-text"))
        assert "g: the CPU scheduling simulator" in shown and TIE_RULES[:40] in shown


async def test_the_command_palette_opens_it():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        command = next(
            c for c in app.get_system_commands(app.screen) if c.title == "CPU scheduling"
        )
        assert "FCFS" in command.help
        await pilot.pause()
        app.call_later(command.callback)  # on the app's loop, as the palette runs it
        await wait_for(pilot, lambda: isinstance(app.screen, ScheduleScreen))


async def test_priority_preset_uses_the_priority_column():
    async with make_app().run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "priority-preempt")
        (only,) = screen.schedules
        assert only.algorithm == "priority" and only.averages.waiting == 4.5
        assert [p.job for p in only.gantt] == ["P1", "P2", "P1", "P4", "P1", "P3"]
        assert [r.values()[3] for r in rows(screen)] == ["3", "1", "4", "2"]
        # Priority 1 for P3 (was 4): it now preempts P1 at 4 too.
        prio = rows(screen)[2].cell("priority")
        prio.focus()
        prio.value = ""
        await pilot.press("1", "enter")
        await wait_for(pilot, lambda: screen.schedules and screen.schedules[0] is not only)
        assert [p.job for p in screen.schedules[0].gantt][:4] == ["P1", "P2", "P1", "P3"]


async def test_at_80x24_pagedown_and_end_reach_the_results():
    async with make_app().run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot)
        body = screen.query_one("#sched-body")
        rows(screen)[0].cell("burst").focus()  # typing in a job's burst
        await wait_for(pilot, lambda: isinstance(screen.focused, Input))
        assert body.max_scroll_y > 10 and body.scroll_y == 0
        await pilot.press("pagedown")
        await wait_for(pilot, lambda: body.scroll_y > 0)
        await pilot.press("pageup")
        await wait_for(pilot, lambda: body.scroll_y == 0)
        await pilot.press("ctrl+end")  # from a text field: End moves its cursor
        await wait_for(pilot, lambda: body.scroll_y == body.max_scroll_y)
        results = screen.query_one("#sched-results")
        assert results.region.y < 23  # on screen, above the footer
        await pilot.press("ctrl+home")
        await wait_for(pilot, lambda: body.scroll_y == 0)
        screen.query_one(ChartView).focus()
        await pilot.press("end")
        await wait_for(pilot, lambda: body.scroll_y == body.max_scroll_y)
        await pilot.press("home")
        await wait_for(pilot, lambda: body.scroll_y == 0)


async def test_tab_passes_the_job_table_in_one_stop_and_arrows_walk_its_cells():
    async with make_app().run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot)
        screen.query_one("#sched-preset").focus()
        await pilot.pause()
        stops = []
        for _ in range(12):
            await pilot.press("tab")
            stops.append(screen.focused.id if screen.focused else None)
        cells = [stop for stop in stops if stop and stop.startswith("job-")]
        # One stop for the 16 cells of the table on each round, then on to the CSV field.
        assert cells and len(set(cells)) == 1, stops
        after = stops[stops.index(cells[0]) + 1]
        assert after == "set-csv", stops
        # Inside the table, ← and → at a cell's edge move to the next cell.
        name = rows(screen)[1].cell("name")  # P2
        name.focus()
        name.cursor_position = len(name.value)
        await pilot.press("right")
        assert screen.focused is rows(screen)[1].cell("arrival")
        await pilot.press("right", "right")  # "1": one step to its end, then the next cell
        assert screen.focused is rows(screen)[1].cell("burst")
        screen.focused.cursor_position = 0
        await pilot.press("left")
        assert screen.focused is rows(screen)[1].cell("arrival")
        await pilot.press("down")
        assert screen.focused is rows(screen)[2].cell("arrival")


def test_a_name_cut_to_fit_its_box_keeps_its_colour() -> None:
    """The chart's names are coloured by a match on the whole name: one cut to fit
    ("abcdefghijklmno…") lost its colour."""
    from proclab.core.scheduling.simulator import Job, fcfs
    from proclab.tui.widgets.schedule_chart import ChartStyle, slice_lines

    name = "abcdefghijklmnopqrstuvwx"
    style = ChartStyle({name: "red", "B": "blue"}, "grey50", "yellow", "white")
    (bars, *_rest) = [t for t in slice_lines(fcfs([Job(name, 0, 1), Job("B", 1, 30)]), style, 20)
                      if t.plain.startswith("|")]  # fmt: skip
    cut = bars.plain.index("…")
    assert any(span.start <= cut < span.end and "red" in str(span.style) for span in bars.spans), (
        bars.spans
    )
