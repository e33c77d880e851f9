"""`proclab watch` in the app, on real programs (examples/): what a user sees. The tree in
the table (each process under its parent, named by what it is), a child's output under
its own pid, the parent's join() in the child's details with the time it was blocked
(against what the script itself measured), pool workers with their task counts, and the
final table kept after the program ends."""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from proclab.core.model import ProcessRow
from proclab.core.watch.program import WatchedProgram
from proclab.tui.screens.details import DetailsScreen
from proclab.tui.watch_app import WatchApp
from proclab.tui.widgets.process_table import ProcessTable

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@contextlib.asynccontextmanager
async def watched(*args: str) -> AsyncIterator[tuple[WatchApp, Any, WatchedProgram]]:
    """The app on `python examples/ARGS...`, as `proclab watch SCRIPT.py ...` opens it."""
    script, *rest = args
    argv = [sys.executable, str(EXAMPLES / script), *rest]
    program = WatchedProgram(argv, family="tree", sample_interval=0.2, grace=1.0)
    app = WatchApp(program, program.start, refresh=0.2)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            yield app, pilot, program
    finally:
        program.close()


async def until(pilot: Any, done: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.1)


async def ended(app: WatchApp, pilot: Any, program: WatchedProgram) -> None:
    """Until the program has ended and the app has drawn its last events."""
    await until(pilot, lambda: program.done)
    await until(pilot, lambda: not app.events_pending())
    await pilot.pause(0.3)


def names(table: ProcessTable) -> list[str]:
    left, right = table.column_span("name")
    lines = (table.render_line(y).text for y in range(1, table.row_count + 1))
    return [line[left + 1 : right - 1].rstrip() for line in lines]


def descends_from(row: ProcessRow, root: ProcessRow, rows: dict[int, ProcessRow]) -> bool:
    parent = row.parent
    while parent is not None:
        if parent == root.id:
            return True
        parent = rows[parent].parent
    return False


async def details(app: WatchApp, pilot: Any, rec_id: int) -> list[tuple[str, str]]:
    app.lab.table.select(rec_id)
    await pilot.press("i")
    await pilot.pause()
    assert isinstance(app.screen, DetailsScreen)
    facts = list(app.screen.facts)
    await pilot.press("escape")
    await pilot.pause()
    return facts


def seconds(text: str) -> float:
    """'488.3 ms' or '1.02 s' (the details' figures) in seconds."""
    number, unit = text.split()
    return float(number) / 1000 if unit == "ms" else float(number)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
async def test_ten_sleepers_tree_names_output_join_and_final_table(method: str) -> None:
    async with watched("ten_sleepers.py", method, "0.5") as (app, pilot, program):
        await ended(app, pilot, program)
        table = app.lab.table
        rows = {r.id: r for r in program.rows()}
        root = program.root
        assert root is not None and root.exitcode == 0
        # The tree: the script first, every child under it, named by its Process.name.
        shown = names(table)
        assert shown[0].startswith("python") and "ten_sleepers.py" in shown[0]
        children = {r.mp.name: r for r in rows.values() if r.mp is not None and r.mp.name}
        assert {f"Process-{i}" for i in range(1, 11)} <= children.keys()
        for i in range(1, 11):
            child = children[f"Process-{i}"]
            assert descends_from(child, root, rows)
            line = table.order.index(child.id)
            assert re.fullmatch(rf"(│  |   )*[├└]─ Process-{i}", shown[line]), shown[line]
            assert table.cell_text(child.id, "exit") == "0"
        # Each child's line under its own pid and name, not the script's.
        log = app.lab.output_log.lines_shown()
        third = children["Process-3"]
        assert f"Process-3 {third.pid} Process-3 sleeps 0.5 s" in log
        # The first join blocked while Process-1 slept: the details say how long, within
        # 10 % of what the script itself measured around the same join().
        (said,) = [line for line in log if " joined Process-1 " in line]
        measured = float(re.search(r"blocked ([\d.]+) s", said)[1])  # type: ignore[index]
        assert measured > 0.2
        facts = await details(app, pilot, children["Process-1"].id)
        joins = [v for _label, v in facts if "join() of it returned: blocked" in v]
        assert len(joins) == 1, facts
        blocked = seconds(re.search(r"blocked ([\d.]+ m?s)", joins[0])[1])  # type: ignore[index]
        assert abs(blocked - measured) <= 0.1 * measured, (blocked, measured)
        assert f"python ({root.pid}): join() of it returned" in joins[0]
        # The program has ended: the app stays on its final table until the user quits.
        before = names(table)
        await pilot.pause(1.0)
        assert app.is_running and names(table) == before
        assert all(r.state.is_over for r in program.rows())


async def test_pool_workers_are_named_by_pool_and_tasks() -> None:
    async with watched("pool_map.py", "fork", "1000") as (app, pilot, program):
        await ended(app, pilot, program)
        shown = names(app.lab.table)
        workers = [name for name in shown if "Pool worker: " in name]
        assert len(workers) == 2, shown
        # Pool(2).map over 1,000 numbers queues 8 chunks of 125: each worker ran some,
        # and said its final count at its end (no ≥).
        counts = [int(re.search(r"Pool worker: (\d+) tasks? done$", n)[1]) for n in workers]  # type: ignore[index]
        assert sum(counts) == 8, workers
        rows = [r for r in program.rows() if r.mp is not None and r.mp.pool_kind]
        facts = dict(await details(app, pilot, rows[0].id))
        assert facts["Pool"].endswith("(final: it said so at its end)"), facts["Pool"]
        assert "calls of the function in them" in facts["Pool"]


async def test_a_non_python_childs_lines_go_under_its_python_parent() -> None:
    async with watched("run_program.py") as (app, pilot, program):
        await ended(app, pilot, program)
        root = program.root
        assert root is not None
        log = app.lab.output_log.lines_shown()
        # echo inherited the script's pipes: its line is the script's.
        assert any(line.endswith(f" {root.pid} a line from echo") for line in log), log
        # A Python child took pipes of its own: its line carries its own pid.
        (child_line,) = [line for line in log if line.endswith("a line from a Python child")]
        pid = int(child_line.split()[1])
        assert pid != root.pid
        child = next(r for r in program.rows() if r.pid == pid)
        assert child.parent == root.id
        assert names(app.lab.table)[app.lab.table.order.index(child.id)].startswith(("├─ ", "└─ "))


async def test_the_timeline_has_a_lane_for_each_watched_process_with_its_ticks() -> None:
    """`l` on a watched program: a lane per process of the tree (the script and its ten
    children, each under its Process.name and pid), each with sampled cells."""
    from proclab.tui.screens.timeline import TimelineGrid, TimelineScreen

    async with watched("ten_sleepers.py", "fork", "3") as (app, pilot, program):
        await until(pilot, lambda: sum(r.state.is_live for r in program.rows()) == 11)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, TimelineScreen))
        grid = app.screen.query_one(TimelineGrid)
        rows = program.rows()

        def sampled() -> bool:  # every process has a lane, with a cell of some tick
            lanes = {lane.id: lane for lane in grid.snapshot.lanes}
            return all(
                r.id in lanes and any(cell is not None for cell in lanes[r.id].cells) for r in rows
            )

        await until(pilot, sampled)
        lanes = {lane.id: lane for lane in grid.snapshot.lanes}
        assert all(lanes[r.id].pid == r.pid for r in rows)
        names = {lane.name for lane in lanes.values()}
        assert {f"Process-{i}" for i in range(1, 11)} <= names
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, TimelineScreen))


async def test_the_output_pane_shows_a_child_s_lines_between_its_start_and_its_join(
    tmp_path: Path,
) -> None:
    """The pane sorted each batch's lines and calls by their times: a line is stamped as
    read, a call as made, so the children's lines (read a moment late) came after their
    parent's join() and the next start(). It keeps the order the source told them in,
    as the headless stream and a recording do."""
    script = tmp_path / "in_turn.py"
    script.write_text(
        "import multiprocessing as mp\n"
        "def child(i):\n"
        "    print(f'child {i} here', flush=True)\n"
        "if __name__ == '__main__':\n"
        "    ctx = mp.get_context('fork')\n"
        "    for i in range(4):\n"
        "        p = ctx.Process(target=child, args=(i,))\n"
        "        p.start()\n"
        "        p.join()\n"
    )
    async with watched(str(script)) as (app, pilot, program):
        await ended(app, pilot, program)
        log = app.lab.output_log.lines_shown()
        said = [
            "start" if "start()" in line else "join" if "join()" in line else "line"
            for line in log
            if "start()" in line or "join()" in line or " here" in line
        ]
        assert said == ["start", "line", "join"] * 4, log
        # Only one child's: its start, its line, its join, in that order too (merged by
        # their times, its line, stamped as read, came after the join).
        (second,) = [r for r in program.rows() if r.name.endswith("Process-2")]
        app.lab.table.select(second.id)
        app.lab.output_log.action_only_selected(True)
        await pilot.pause()
        only = app.lab.output_log.lines_shown()
        said = ["start" if "start()" in s else "join" if "join()" in s else s for s in only]
        assert said == ["start", f"{second.name} {second.pid} child 1 here", "join"], only
