"""The timeline with 1,000 children and 600 ticks of history (its default): what one
sampler tick costs the timeline (under its lock, on the controller's thread), and what the
timeline screen costs the event loop each time it redraws (the snapshot it takes, the
grid's update and the drawing of the grid's visible lines).

No processes: the events are made up, as the controller would send them.

    uv run python benchmarks/timeline_1000.py [--lanes 1000] [--ticks 600] [--size 160x48]
                                                   [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from results_file import write_results

RESULTS = Path(__file__).with_name("results")


def _events(lanes: int, ticks: int) -> tuple[list[object], list[object]]:
    from proclab.core.model import ProcessRow, ProcSample, ProcState, Sampled, Spawned, SystemSample
    from proclab.core.spec import build_spec

    spec = build_spec("proclab.core.tasks:spin", (60,))
    spawned = [
        Spawned(ProcessRow(i, f"Process-{i}", spec, ProcState.RUNNING, 40000 + i))
        for i in range(1, lanes + 1)
    ]

    def sample(i: int, t: int) -> ProcSample:
        busy = (i + t) % 3 != 0
        return ProcSample(
            float(t), 1.0, "running" if busy else "sleeping", 50.0, 0.0, 0.0,
            0.5 if busy else 0.0, 0.0, 0.0, 0, 1, (i + t) % 2, 0, 0,
        )  # fmt: skip

    sampled = [
        Sampled(
            SystemSample(1000.0 + t, 1e9 + t, (50.0, 50.0), 50.0, 1, 1, 0.0, (0, 0, 0)),
            {i: sample(i, t) for i in range(1, lanes + 1)},
        )
        for t in range(ticks)
    ]
    return spawned, sampled


def per_tick_ms(lanes: int, ticks: int, measured: int = 100) -> tuple[object, float, float]:
    """Feed `ticks` ticks (the history full), then time `measured` more."""
    from proclab.core.timeline import Timeline

    spawned, sampled = _events(lanes, ticks + measured)
    timeline = Timeline(keep=ticks)
    for event in spawned:
        timeline.feed(event)  # type: ignore[arg-type]
    for event in sampled[:ticks]:
        timeline.feed(event)  # type: ignore[arg-type]
    took = []
    for event in sampled[ticks:]:
        began = time.perf_counter()
        timeline.feed(event)  # type: ignore[arg-type]
        took.append((time.perf_counter() - began) * 1000)
    return timeline, statistics.median(took), max(took)


async def screen_ms(timeline: object, size: tuple[int, int], rounds: int = 20) -> dict[str, float]:
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from fakes import NOW, FakeController
    from textual.geometry import Region

    from proclab.tui.app import ProclabApp
    from proclab.tui.screens.timeline import TimelineGrid, TimelineScreen

    app = ProclabApp(FakeController(rows=[]), clock=lambda: NOW)
    app.lab.timeline = timeline  # type: ignore[assignment]
    show, draw, full = [], [], []
    async with app.run_test(size=size) as pilot:
        await pilot.press("l")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TimelineScreen)
        grid = screen.query_one(TimelineGrid)
        for _ in range(rounds):
            began = time.perf_counter()
            screen._version = -1  # as after a tick: the timeline moved
            screen._show()  # the snapshot and the grid's update
            shown = time.perf_counter()
            crop = Region(0, 0, grid.size.width, min(grid.size.height, size[1]))
            grid.render_lines(crop)  # what a frame draws of the grid
            drawn = time.perf_counter()
            full_began = time.perf_counter()
            timeline.snapshot()  # type: ignore[attr-defined]
            full.append((time.perf_counter() - full_began) * 1000)
            show.append((shown - began) * 1000)
            draw.append((drawn - shown) * 1000)
            await pilot.pause()
    return {
        "show_ms": statistics.median(show),
        "draw_ms": statistics.median(draw),
        "snapshot_all_ticks_ms": statistics.median(full),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lanes", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=600)
    parser.add_argument("--size", default="160x48")
    parser.add_argument("--out", default=str(RESULTS / "timeline_1000.json"))
    ns = parser.parse_args()
    width, height = (int(v) for v in ns.size.split("x"))
    timeline, median_tick, max_tick = per_tick_ms(ns.lanes, ns.ticks)
    print(f"{ns.lanes} lanes x {ns.ticks} ticks kept")
    print(f"  per tick (feed, under the lock): median {median_tick:.2f} ms, max {max_tick:.2f} ms")
    screen = asyncio.run(screen_ms(timeline, (width, height)))
    print(f"  screen at {ns.size}: snapshot + show {screen['show_ms']:.2f} ms,")
    print(f"    drawing the grid's visible lines {screen['draw_ms']:.2f} ms")
    print(f"  snapshot() of every kept tick: {screen['snapshot_all_ticks_ms']:.2f} ms")
    write_results(
        ns.out,
        {
            "lanes": ns.lanes,
            "ticks": ns.ticks,
            "size": ns.size,
            "tick_median_ms": round(median_tick, 3),
            "tick_max_ms": round(max_tick, 3),
            **{k: round(v, 3) for k, v in screen.items()},
        },
    )


if __name__ == "__main__":
    main()
