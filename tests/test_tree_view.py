"""The process table as a tree (a watched program's processes, each under its parent, as
htop's tree view) and flat (F5), as a person reads it: guides, names, the border saying
which view, sorting among siblings, and proclab's own children drawn as they always were.
Drawing only: fixed rows, a frozen clock, no child process."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from fakes import NOW, FakeController, mixed_rows, watched_rows

from proclab.core.model import MpFacts, ProcessRow, ProcState
from proclab.tui.app import ProclabApp
from proclab.tui.widgets.process_table import ProcessTable
from proclab.tui.widgets.process_tree import shown_name, tree_order

pytestmark = pytest.mark.once


def names(table: ProcessTable) -> list[str]:
    """The name cells as drawn, top to bottom (guides included)."""
    left, right = table.column_span("name")
    lines = (table.render_line(y).text for y in range(1, table.row_count + 1))
    return [line[left + 1 : right - 1].rstrip() for line in lines]


def subtitle(app: ProclabApp) -> str:
    return str(app.lab.query_one("#procs").border_subtitle)


async def test_a_watched_program_is_drawn_as_htops_tree_and_f5_flattens_it() -> None:
    app = ProclabApp(FakeController(watched_rows()), clock=lambda: NOW)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        table = app.lab.table
        assert names(table) == [
            "python pool_demo.py",
            "├─ fetcher",
            "│  ├─ Process-3",  # ended: it keeps its place under its parent
            "│  └─ sleep 30",
            "├─ mp resource_tracker",
            "├─ Pool worker: 12 tasks done",
            "└─ Pool worker: 25 tasks done",
        ]
        assert "tree, sorted among siblings (F5: flat)" in subtitle(app)
        await pilot.press("f5")
        await pilot.pause()
        assert names(table) == [
            "fetcher",
            "mp resource_tracker",
            "Pool worker: 12 tasks done",
            "Pool worker: 25 tasks done",
            "Process-3",
            "python pool_demo.py",
            "sleep 30",
        ]
        assert "flat (F5: tree)" in subtitle(app)
        await pilot.press("f5")
        await pilot.pause()
        assert names(table)[1] == "├─ fetcher"


async def test_in_the_tree_a_sort_orders_siblings_and_keeps_children_under_parents() -> None:
    app = ProclabApp(FakeController(watched_rows()), clock=lambda: NOW)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        table = app.lab.table
        table.sort_by("pid", reverse=True)
        await pilot.pause()
        pids = [table.cell_text(i, "pid") for i in table.order]
        # The root; its children highest pid first, each followed by its own children.
        assert pids == ["42001", "42005", "42004", "42003", "42010", "42006", "42002"]
        assert "sort PID ▼" in subtitle(app)
        table.sort_by("cpu")
        await pilot.pause()
        # Ended rows (no CPU%) stay last among their siblings, as in the flat table.
        assert names(table)[1:3] == ["├─ Pool worker: 12 tasks done", "├─ fetcher"]
        assert names(table)[-1] == "└─ Pool worker: 25 tasks done"


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_proclabs_own_children_look_the_same_in_both_views(size: tuple[int, int]) -> None:
    app = ProclabApp(FakeController(), clock=lambda: NOW)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        table = app.lab.table
        tree = [table.render_line(y).text for y in range(table.scrollable_content_region.height)]
        before = subtitle(app)
        assert "tree" not in before and "flat" not in before  # nothing to switch yet
        await pilot.press("f5")
        await pilot.pause()
        flat = [table.render_line(y).text for y in range(table.scrollable_content_region.height)]
        assert flat == tree
        assert "flat (F5: tree)" in subtitle(app)  # pressed: the border says what it did


async def test_the_name_column_is_as_wide_as_the_deepest_name_and_its_guides() -> None:
    rows = watched_rows()
    deep = replace(rows[3], id=8, pid=42011, parent=4, command="sleep 3600 --longest")
    fake = FakeController([*rows, deep])
    app = ProclabApp(fake, clock=lambda: NOW)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        table = app.lab.table
        assert "│     └─ sleep 3600 --longest" in names(table)
        left, right = table.column_span("name")
        assert right - left - 2 == len("│     └─ sleep 3600 --longest")
        await pilot.press("f5")
        await pilot.pause()
        assert "sleep 3600 --longest" in names(table)
        left, right = table.column_span("name")
        assert right - left - 2 == len("Pool worker: 12 tasks done")
        await pilot.press("f5")
        # Longer than its share of the table: cut in the middle, guides and end kept.
        fake._rows[8] = replace(deep, command="sleep 3600 --a-much-longer-flag-99")
        table.show(fake.rows(), NOW)
        await pilot.pause()
        cut = names(table)[4]
        assert cut.startswith("│     └─ sleep 3600") and cut.endswith("…-99")


async def test_a_tick_in_the_tree_repaints_only_the_cells_that_changed() -> None:
    """The table's repaint cost is kept in the tree: one worker's CPU% changing repaints
    that part of its line, not the table."""
    rows = watched_rows()
    fake = FakeController(rows)
    app = ProclabApp(fake, clock=lambda: NOW)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        table = app.lab.table
        painted: list[Any] = []
        original = table.refresh

        def spy(*regions: Any, **kwargs: Any) -> Any:
            painted.append(regions)
            return original(*regions, **kwargs)

        table.refresh = spy  # type: ignore[method-assign]
        worker = rows[5]
        assert worker.sample is not None
        fake._rows[6] = replace(worker, sample=replace(worker.sample, cpu_percent=42.0))
        table.show(fake.rows(), NOW)
        line = table.order.index(6) + 1
        assert len(painted) == 1 and len(painted[0]) == 1, painted
        (region,) = painted[0]
        assert region.y == line and region.height == 1
        left, right = table.column_span("cpu")
        assert region.x <= left and region.x + region.width >= right
        assert region.width < table.table_width // 2


def test_tree_order_puts_a_filtered_out_parents_children_under_its_nearest_shown_ancestor() -> None:
    parents = {2: 1, 3: 2, 4: 3, 5: 1}
    order, guides = tree_order([1, 3, 4, 5], parents)  # 2 filtered out
    assert order == [1, 3, 4, 5]
    assert [guides[i] for i in order] == ["", "├─ ", "│  └─ ", "└─ "]
    order, guides = tree_order([3, 4], parents)  # no shown ancestor: a root
    assert [guides[i] for i in order] == ["", "└─ "]


def test_tree_order_never_hides_a_row_in_a_loop_of_parents() -> None:
    order, guides = tree_order([1, 2, 3], {1: 2, 2: 1, 3: 3})
    assert sorted(order) == [1, 2, 3] and len(order) == 3
    assert guides[3] == ""  # its own parent: a root


def _row(**changes: Any) -> ProcessRow:
    return replace(watched_rows()[0], **changes)


def test_names_say_what_each_watched_process_is() -> None:
    assert shown_name(_row(mp=MpFacts(name="fetcher"))) == "fetcher"
    assert shown_name(_row(mp=MpFacts(role="forkserver"))) == "mp forkserver"
    assert shown_name(_row(command="bash -c 'sleep 1'")) == "bash -c 'sleep 1'"
    # Files by their names (the details show the whole command line).
    python = _row(command="/usr/bin/python3 /home/me/day36.py --out=/tmp/x fast")
    assert shown_name(python) == "python3 day36.py --out=/tmp/x fast"
    # Only words that are paths: what a program is given to run stays as it was given.
    for kept in ("sh -c 'sleep 15 && echo a/b/c'", "python3 -c 'print(1/2)'", "sh -c x '[/]'"):
        assert shown_name(_row(command=kept)) == kept
    assert shown_name(_row(command="/bin/sh -c 'cat /etc/x'")) == "sh -c 'cat /etc/x'"
    relative = _row(command="python3 examples/day36.py fork")  # a path all the same
    assert shown_name(relative) == "python3 day36.py fork"
    cut = "/usr/bin/python3 -c 'import os; print(1/"  # cut short inside its quotes
    assert shown_name(_row(command=cut)) == cut
    executor = MpFacts(name="SpawnProcess-2", pool_kind="ProcessPoolExecutor", tasks=1)
    assert shown_name(_row(mp=executor)) == "Executor worker: 1 task done"
    # An ended worker whose count is not final ran at least that many.
    ended = _row(mp=replace(executor, tasks=7), state=ProcState.TERMINATED)
    assert shown_name(ended) == "Executor worker: ≥7 tasks done"
    assert shown_name(replace(ended, mp=replace(executor, tasks=7, counts_final=True))) == (
        "Executor worker: 7 tasks done"
    )
    assert shown_name(mixed_rows()[0]) == "process-2"  # proclab's own: its name
