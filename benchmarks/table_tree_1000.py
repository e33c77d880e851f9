"""The process table with 1,000 rows, flat and as a tree: how long each refresh holds the
app's event loop (the drain: the table brought up to the rows, plus the frame drawn).

Times are CPU time of the app's thread (a loaded machine's wall clock counts other
processes' turns too): the drain, and the table's lines drawn in the frames after it; and
how many table lines were drawn a tick (what the repaint-only-what-changed rule saves,
and a figure the machine's load does not move).

A watched program's tree is built by hand (a script, 10 pools of 99 workers and their
helpers: 1,000 rows, three levels) and fed to the real app through tests/fakes.py's
FakeController; every tick, every live row gets a new sample (its CPU% moves, as a real
tick's do), so the table does a real tick's work. Run against the same rows without tree
parents too, which is what proclab's own 1,000 children cost the table.

    python benchmarks/table_tree_1000.py [--rows 1000] [--ticks 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from results_file import write_results

HERE = Path(__file__).parent
RESULTS = HERE / "results"
KINDS = {
    "own": "proclab's own children (flat)",
    "flat": "a watched program's processes, no tree parents (flat)",
    "tree": "a watched program's tree (three levels)",
}
sys.path.insert(0, str(HERE.parent / "tests"))


def own_rows(count: int) -> list:
    """proclab's own children: a spec, no tree parent (what the table drew before trees)."""
    from fakes import mixed_rows

    template = mixed_rows()[1]  # a running child with a sample
    return [replace(template, id=i, name=f"ForkProcess-{i}", pid=50_000 + i) for i in range(count)]


def tree_rows(count: int, tree: bool) -> list:
    from fakes import watched_rows

    from proclab.core.model import MpFacts

    root, _tracker, _child, _sleep, _done, worker, _ended = watched_rows()
    rows = [replace(root, id=1, pid=50_001, parent=None)]
    pools = 10
    for p in range(pools):
        pool_id = 2 + p
        rows.append(
            replace(
                root,
                id=pool_id,
                pid=50_002 + p,
                parent=1 if tree else None,
                mp=MpFacts(name=f"pool-owner-{p}", target="__main__.run_pool", method="fork"),
            )
        )
    next_id = 2 + pools
    while len(rows) < count:
        owner = 2 + (next_id % pools)
        assert worker.mp is not None
        rows.append(
            replace(
                worker,
                id=next_id,
                pid=50_000 + next_id,
                parent=owner if tree else None,
                mp=replace(worker.mp, name=f"ForkPoolWorker-{next_id}", tasks=next_id % 97),
            )
        )
        next_id += 1
    return rows


async def measure(count: int, ticks: int, kind: str, sort: str) -> dict[str, object]:
    from fakes import NOW, FakeController

    from proclab.core.model import Sampled
    from proclab.tui.app import ProclabApp
    from proclab.tui.widgets.process_table import ProcessTable

    rows = own_rows(count) if kind == "own" else tree_rows(count, kind == "tree")
    fake = FakeController(rows)
    app = ProclabApp(fake, clock=lambda: NOW)
    # CPU time of the event loop's thread, not wall time: on a shared, loaded machine the
    # wall clock also counts the time other processes had the CPU.
    drains: list[float] = []
    painting = [0.0, 0]  # CPU seconds in the table's lines, and how many lines were drawn
    original = ProclabApp._drain
    original_line = ProcessTable.render_line

    def timed_drain(self: ProclabApp) -> None:
        began = time.thread_time()
        original(self)
        drains.append(time.thread_time() - began)

    def timed_line(self: ProcessTable, y: int) -> Any:
        began = time.thread_time()
        strip = original_line(self, y)
        painting[0] += time.thread_time() - began
        painting[1] += 1
        return strip

    ProclabApp._drain = timed_drain  # type: ignore[method-assign]
    ProcessTable.render_line = timed_line  # type: ignore[method-assign]
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause(0.3)
            app.table.sort_by(sort)
            await pilot.pause(0.2)
            drains.clear()
            painting[:] = [0.0, 0]
            system = fake.system()
            assert system is not None
            for tick in range(ticks):
                for rec_id, row in list(fake._rows.items()):
                    if row.sample is not None and row.state.is_live:
                        cpu = float((rec_id * 7 + tick * 13) % 100)
                        sample = replace(row.sample, cpu_percent=cpu)
                        fake._rows[rec_id] = replace(row, sample=sample)
                for callback in list(fake._subscribers):
                    callback(Sampled(system, {}))
                await pilot.pause(0.12)  # the drain, and the frame it asks for
            shown = app.table.row_count
    finally:
        ProclabApp._drain = original  # type: ignore[method-assign]
        ProcessTable.render_line = original_line  # type: ignore[method-assign]
    return {
        "rows": shown,
        "rows_are": KINDS[kind],
        "sort": sort,
        "refreshes": len(drains),
        "refresh_cpu_ms_median": round(statistics.median(drains) * 1000, 2),
        "refresh_cpu_ms_max": round(max(drains) * 1000, 2),
        "table_lines_cpu_ms_per_tick": round(painting[0] / ticks * 1000, 2),
        "table_lines_drawn_per_tick": round(painting[1] / ticks, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--kinds", default=",".join(KINDS), help="own,flat,tree")
    parser.add_argument("--out", default=str(RESULTS / "table_tree_1000.json"))
    ns = parser.parse_args()
    runs = []
    for sort in ("name", "cpu"):
        for kind in ns.kinds.split(","):
            result = asyncio.run(measure(ns.rows, ns.ticks, kind, sort))
            print("  ".join(f"{k}: {v}" for k, v in result.items()))
            runs.append(result)
    write_results(ns.out, {"runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
