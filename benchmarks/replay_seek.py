"""A seek back in a long recording: how long the replay app is still while it hands out
every event again and the panes take them in (a tester's 100 MB recording froze it 0.7-0.9
s a press). A made-up session of one child sampled --ticks times, played to its end, then
seeked back 5 s, --rounds times; medians.

    python benchmarks/replay_seek.py [--ticks 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fakes import NOW, _sample, mixed_rows, system_history
from test_replay import settle

from proclab.core.model import Event, Sampled, Spawned
from proclab.core.recording import Replay
from proclab.tui.commands.replay import replay_app


def session(ticks: int) -> list[tuple[float, Event]]:
    row = next(r for r in mixed_rows() if r.name == "ForkProcess-3")
    events: list[tuple[float, Event]] = [(NOW, Spawned(row))]
    systems = system_history(ticks=10)
    for k in range(ticks):
        at, clock = NOW + k, 1000.0 + k
        sample = dataclasses.replace(_sample(50.0, k, 1 << 20, 0, "running"), time=clock)
        system = dataclasses.replace(systems[k % 10], time=clock, wall=at)
        events.append((at, Sampled(system, {row.id: sample})))
    return events


async def measure(ticks: int, rounds: int) -> list[float]:
    replay = Replay(session(ticks))
    app = replay_app(replay)
    took = []
    async with app.run_test(size=(120, 32)) as pilot:
        await settle(pilot, app)
        for _ in range(rounds):
            app.screen.seek_to(replay.end)  # type: ignore[attr-defined]
            await settle(pilot, app)
            began = time.perf_counter()
            app.screen.action_seek(-1)  # type: ignore[attr-defined]
            await settle(pilot, app)
            took.append(time.perf_counter() - began)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    ns = parser.parse_args()
    took = asyncio.run(measure(ns.ticks, ns.rounds))
    print(f"seek back over {ns.ticks:,} ticks: median {statistics.median(took):.3f} s ({took})")


if __name__ == "__main__":
    main()
