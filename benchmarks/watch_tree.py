"""What one walk of a watched program's process tree costs (core/watch/tree.py).

A tree of 200 sleeping processes (the root, 9 children with 20 grandchildren each, and 10
more children of the root: 1 + 9 + 180 + 10 = 200) is made with os.fork, then walked again
and again: "first" walks know nothing (every cmdline and exe is read), "steady" walks
reuse the previous walk's result (what `proclab watch` does every tick). proclab's own
CPU time per walk is what matters: at a walk every 0.2 s, a steady walk of X ms costs
5 X % of a core.

    python benchmarks/watch_tree.py [--walks N] [--out benchmarks/results/watch_tree.json]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import time
from pathlib import Path

from results_file import write_results

from proclab.core.watch.tree import walk

RESULTS = Path(__file__).with_name("results")
TICK_S = 0.2  # proclab watch's walk interval (core/watch/program.py WALK_S)


def make_tree(children: int, grandchildren: int, extra: int) -> tuple[int, int]:
    """Fork the tree; returns (root pid, how many processes it holds). The root waits
    for SIGTERM, and its group is killed to end it all."""
    ready_r, ready_w = os.pipe()
    root = os.fork()
    if root == 0:
        os.setpgid(0, 0)
        os.close(ready_r)
        for i in range(children + extra):
            if os.fork() == 0:
                for _ in range(grandchildren if i < children else 0):
                    if os.fork() == 0:
                        signal.pause()
                        os._exit(0)
                signal.pause()
                os._exit(0)
        os.write(ready_w, b"x")
        signal.pause()
        os._exit(0)
    os.close(ready_w)
    os.read(ready_r, 1)
    os.close(ready_r)
    return root, 1 + children * (1 + grandchildren) + extra


def cpu() -> float:
    return time.thread_time()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--walks", type=int, default=200)
    parser.add_argument("--out", default=str(RESULTS / "watch_tree.json"))
    ns = parser.parse_args()
    root, expected = make_tree(children=9, grandchildren=20, extra=10)
    try:
        deadline = time.monotonic() + 10
        while len(walk([root])) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        first: list[float] = []
        steady: list[float] = []
        seen = 0
        for _ in range(ns.walks):
            began = cpu()
            known = walk([root])
            first.append(cpu() - began)
            began = cpu()
            again = walk([root], known)
            steady.append(cpu() - began)
            seen = len(again)
    finally:
        os.killpg(root, signal.SIGKILL)
        os.waitpid(root, 0)
    first_ms = statistics.median(first) * 1000
    steady_ms = statistics.median(steady) * 1000
    figures = {
        "processes": seen,
        "expected": expected,
        "walks": ns.walks,
        "first_walk_cpu_ms_median": round(first_ms, 3),
        "steady_walk_cpu_ms_median": round(steady_ms, 3),
        "steady_walk_cpu_ms_p90": round(sorted(steady)[int(len(steady) * 0.9)] * 1000, 3),
        "per_process_steady_us": round(steady_ms * 1000 / max(seen, 1), 2),
        "tick_s": TICK_S,
        "share_of_a_core_at_tick": round(steady_ms / 1000 / TICK_S, 4),
        "load": os.getloadavg(),
    }
    for key, value in figures.items():
        print(f"{key:>30}: {value}")
    write_results(ns.out, figures)


if __name__ == "__main__":
    main()
