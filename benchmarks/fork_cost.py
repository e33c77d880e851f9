"""What a fork child costs, started with multiprocessing (fork) and with os.fork itself,
from a small Python process as proclab's TCP server process is: CPU of the parent and of
the child (getrusage: self and reaped children), and the minor faults of each, for a
child that does nothing and exits.

proclab's server process forks its process-mode handlers with os.fork (handler._fork);
the lesson's server, and benchmarks/tcp.py's reference, start them with
multiprocessing.Process. This is the difference between the two, alone.

    python benchmarks/fork_cost.py [--children 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import time
from pathlib import Path

from results_file import write_results

RESULTS = Path(__file__).with_name("results")


def nothing() -> None:
    pass


def with_multiprocessing(count: int) -> None:
    ctx = multiprocessing.get_context("fork")
    for _ in range(count):
        process = ctx.Process(target=nothing)
        process.start()
        process.join()


def with_os_fork(count: int) -> None:
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            try:
                nothing()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)


def usage() -> tuple[float, float, int, int]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (
        own.ru_utime + own.ru_stime,
        reaped.ru_utime + reaped.ru_stime,
        own.ru_minflt,
        reaped.ru_minflt,
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "fork_cost.json"))
    ns = parser.parse_args()
    arms = {"multiprocessing": with_multiprocessing, "os.fork": with_os_fork}
    got: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
    for _ in range(ns.rounds):
        for arm, run in arms.items():
            before, began = usage(), time.perf_counter()
            run(ns.children)
            wall, after = time.perf_counter() - began, usage()
            n = ns.children
            figures = {
                "wall_ms": wall / n * 1e3,
                "parent_cpu_ms": (after[0] - before[0]) / n * 1e3,
                "child_cpu_ms": (after[1] - before[1]) / n * 1e3,
                "parent_faults": (after[2] - before[2]) / n,
                "child_faults": (after[3] - before[3]) / n,
            }
            got[arm].append(figures)
            print(
                f"{arm:16} a child: wall {figures['wall_ms']:.2f} ms, CPU parent"
                f" {figures['parent_cpu_ms']:.2f} + child {figures['child_cpu_ms']:.2f} ms,"
                f" faults parent {figures['parent_faults']:.0f} child {figures['child_faults']:.0f}",
                flush=True,
            )
    medians = {
        arm: {key: round(statistics.median(r[key] for r in rounds), 3) for key in rounds[0]}
        for arm, rounds in got.items()
    }
    for arm, figures in medians.items():
        cpu = figures["parent_cpu_ms"] + figures["child_cpu_ms"]
        print(f"median {arm:16} {cpu:.2f} ms of CPU a child ({figures})")
    write_results(ns.out, {"children": ns.children, "medians": medians, "rounds": got})
    return 0


if __name__ == "__main__":
    sys.exit(main())
