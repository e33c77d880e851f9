"""The process table as a person reads it: every row reachable, names whole where there is
room, sorted the way htop users expect, and the border saying how it is sorted. Drawing
only (fixed rows, a frozen clock, no child process)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fakes import NOW, FakeController, mixed_rows

from proclab.core.model import ProcessRow
from proclab.tui.app import ProclabApp
from proclab.tui.fmt import seconds
from proclab.tui.widgets.process_table import COLUMN_LABELS, ProcessTable

pytestmark = pytest.mark.once


def copies(n: int, name: str = "mine") -> list[ProcessRow]:
    template = mixed_rows()[0]
    return [replace(template, id=i, name=f"{name}-{i}", pid=50_000 + i) for i in range(1, n + 1)]


def table_lines(table: ProcessTable) -> list[str]:
    """The table's lines as drawn (header first), as text."""
    return [table.render_line(y).text for y in range(table.scrollable_content_region.height)]


def shown_rows(table: ProcessTable) -> list[int]:
    """Record ids of the rows drawn where a person can see them (not under a scrollbar)."""
    region = table.scrollable_content_region
    top = int(table.scroll_y)
    visible = region.height - 1  # the header takes the first line
    return table.order[top : top + visible]


@pytest.mark.parametrize("count", [20, 21])
async def test_the_last_row_is_visible_at_80x24(count: int) -> None:
    app = ProclabApp(FakeController(copies(count)), clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.lab.table
        await pilot.press("end")
        await pilot.pause()
        assert table.selected_id == table.order[-1]
        assert table.order[-1] in shown_rows(table), "the cursor's row is under the scrollbar"
        await pilot.press("home")
        await pilot.pause()
        assert table.order[0] in shown_rows(table)


async def test_left_and_right_move_the_table_a_whole_column_at_80x24() -> None:
    """At 80 columns Right moved the table one character a press, the columns it brought
    in came a character at a time, and the names scrolled away: every row then read
    "forkserver  proclab.core.tasks:sleep". The names stay; the rest move a column a key."""
    app = ProclabApp(FakeController(copies(3)), clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.lab.table
        names = [line.split()[0] for line in table_lines(table)[1:4]]
        for after in ("State", "Exit"):
            await pilot.press("right")
            await pilot.pause()
            header = table_lines(table)[0].split()
            assert header[:3] == ["Name", "▲", after], header
            assert [line.split()[0] for line in table_lines(table)[1:4]] == names
        for _ in range(20):  # as far as it goes, then no further
            await pilot.press("right")
        await pilot.pause()
        assert table.scroll_x == table.max_scroll_x
        assert table_lines(table)[0].rstrip().endswith("Target")
        assert table_lines(table)[0].startswith(" Name")
        await pilot.press("left")
        await pilot.pause()
        header = table_lines(table)[0].split()
        labels = {label.split()[0] for label in COLUMN_LABELS.values()}
        assert header[:2] == ["Name", "▲"] and header[2] in labels, header
        for _ in range(20):
            await pilot.press("left")
        await pilot.pause()
        assert table.scroll_x == 0 and table_lines(table)[0].split()[:3] == ["Name", "▲", "PID"]


async def test_the_border_says_how_the_table_is_sorted() -> None:
    app = ProclabApp(FakeController(), clock=lambda: NOW)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.lab.query_one("#procs")
        assert "sort Name ▲" in str(pane.border_subtitle)
        await pilot.press("s")
        await pilot.pause()
        assert "sort PID" in str(pane.border_subtitle)
        await pilot.press("S")
        await pilot.pause()
        label = app.lab.table.sort_label
        assert f"sort {label}" in str(pane.border_subtitle)


async def test_numeric_columns_sort_highest_first() -> None:
    app = ProclabApp(FakeController(), clock=lambda: NOW)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.lab.table
        while table.sort_column != "cpu":
            await pilot.press("s")
        await pilot.pause()
        assert table.sort_reverse and table.sort_label == "CPU% ▼"
        # its header has the arrow too, closed up where a space does not fit (it had none)
        assert "CPU%▼" in table_lines(table)[0] or "CPU% ▼" in table_lines(table)[0]
        cpus = [table.cell_text(i, "cpu") for i in table.order]
        numbers = [float(c) for c in cpus if c]
        assert numbers == sorted(numbers, reverse=True) and numbers[0] > 90
        await pilot.press("s")  # RSS: numeric too
        assert table.sort_column == "rss" and table.sort_reverse
        while table.sort_column != "state":
            await pilot.press("s")
        assert not table.sort_reverse  # words: A to Z


async def test_f6_picks_the_sort_column() -> None:
    app = ProclabApp(FakeController(), clock=lambda: NOW)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f6")
        await pilot.pause()
        picker = app.screen
        assert picker is not app.lab, "F6 opens a list of columns, as in htop"
        await pilot.press(*"cpu")  # type to find, as in htop's menu: the first match
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is app.lab
        assert app.lab.table.sort_column == "cpu" and app.lab.table.sort_reverse
        assert "sort CPU% ▼" in str(app.lab.query_one("#procs").border_subtitle)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_names_are_whole_when_they_fit(size: tuple[int, int]) -> None:
    rows = mixed_rows()
    rows.append(replace(rows[1], id=10, name="ForkServerProcess-12", pid=41010))
    app = ProclabApp(FakeController(rows), clock=lambda: NOW)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        lines = table_lines(app.lab.table)
        assert any("ForkServerProcess-12 " in line for line in lines)
        assert not any("…" in line for line in lines), "no name is cut when all fit"
        header = lines[0]
        assert header.index("PID") > len("ForkServerProcess-12")


async def test_a_long_name_is_cut_in_the_middle_keeping_its_number() -> None:
    rows = mixed_rows()
    long = "a-very-long-process-name-that-never-fits-in-a-column-7"
    rows.append(replace(rows[1], id=10, name=long, pid=41010))
    app = ProclabApp(FakeController(rows), clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        shown = app.lab.table.cell_text(10, "name").strip()
        assert shown.endswith("…-7") and len(shown) < 40


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_an_empty_table_says_what_to_do(size: tuple[int, int]) -> None:
    fake = FakeController([])
    app = ProclabApp(fake, clock=lambda: NOW)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        text = "\n".join(table_lines(app.lab.table))
        assert "Press n to start one" in text and "proclab TARGET" in text
        assert all(
            len(line.rstrip()) <= app.lab.table.size.width for line in table_lines(app.lab.table)
        )
        fake._rows = {r.id: r for r in copies(1)}
        app.lab.refresh_rows()
        await pilot.pause()
        text = "\n".join(table_lines(app.lab.table))
        assert "Press n" not in text and "mine-1" in text
        await pilot.press("slash", *"zzz")
        await pilot.pause()
        assert "No process matches 'zzz'" in "\n".join(table_lines(app.lab.table))
        await pilot.press("backspace", "backspace", "backslash")  # as typed: repr doubled it
        await pilot.pause()
        assert "No process matches 'z\\'" in "\n".join(table_lines(app.lab.table))


async def test_a_row_that_did_not_change_still_shows_the_clock_moving() -> None:
    """A sleeping child's row is the same object from tick to tick (its last sample
    stands): its runtime and its share of CPU over its life still move with the clock."""
    row = mixed_rows()[0]  # sleeping, 2 s old, 0.03 s of CPU
    now = [NOW]
    app = ProclabApp(FakeController([row]), clock=lambda: now[0])
    async with app.run_test(size=(200, 24)) as pilot:
        table = app.lab.table
        first = table_lines(table)[1]
        assert f" {seconds(2.0)} " in first and " 2% " in first  # runtime, CPU/wall
        now[0] += 58.0
        app.lab.refresh_rows()
        await pilot.pause()
        later = table_lines(table)[1]
        assert f" {seconds(60.0)} " in later and " 0% " in later, later
        assert f" {seconds(2.0)} " not in later and " 2% " not in later, later
