"""What proclab's shape costs a fork child's start + join before any of proclab's own work:
bare multiprocessing, with the start handed to a launcher thread and the end to a watcher
thread, as proclab's controller does (core/launcher.py, core/reaping.py).

Four arms, interleaved round by round in one process (medians; the ratios are what count):
  bare:      Process.start() and join() in the caller, as a script does;
  launcher:  start() on a second thread the caller hands the Process to, and waits for;
  watcher:   start() in the caller; a second thread waits on the child's pidfd, reaps it
             and wakes the caller (which waits on an Event);
  both:      the two hand-offs, as proclab's spawn() then join() makes them.
No pipes, no bootstrap, no rows, no figures: the floor under `spawn.py`'s ratio for fork.
`--import`: modules to load first (a process the size of proclab's forks slower, and a
hand-off is a share of less).

    python benchmarks/handoff_floor.py [--rounds 300] [--import proclab.tui.app]
                                       [--out benchmarks/results/handoff-floor.json]
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import os
import queue
import select
import statistics
import threading
import time
from collections.abc import Callable

from results_file import write_results

CTX = multiprocessing.get_context("fork")


def target() -> None:
    pass


class Shapes:
    """The launcher and watcher threads, each waiting for work."""

    def __init__(self) -> None:
        self._to_start: queue.SimpleQueue[multiprocessing.process.BaseProcess] = queue.SimpleQueue()
        self._started: queue.SimpleQueue[multiprocessing.process.BaseProcess] = queue.SimpleQueue()
        self._epoll = select.epoll()
        self._waiting: dict[int, tuple[int, threading.Event]] = {}
        threading.Thread(target=self._launch, daemon=True).start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _launch(self) -> None:
        while True:
            process = self._to_start.get()
            process.start()
            self._started.put(process)

    def _watch(self) -> None:
        while True:
            for fd, _ in self._epoll.poll():
                self._epoll.unregister(fd)
                pid, done = self._waiting.pop(fd)
                os.close(fd)
                os.waitpid(pid, 0)
                done.set()

    def start(self, process: multiprocessing.process.BaseProcess, handed: bool) -> None:
        if handed:
            self._to_start.put(process)
            self._started.get()
        else:
            process.start()

    def join(self, process: multiprocessing.process.BaseProcess, handed: bool) -> None:
        if not handed:
            process.join()
            return
        pid = process.pid
        assert pid is not None
        done = threading.Event()
        fd = os.pidfd_open(pid)
        self._waiting[fd] = (pid, done)
        self._epoll.register(fd, select.EPOLLIN)
        done.wait()
        multiprocessing.process._children.discard(process)  # type: ignore[attr-defined]


def arm(shapes: Shapes, launcher: bool, watcher: bool) -> Callable[[], float]:
    def once() -> float:
        began = time.perf_counter()
        process = CTX.Process(target=target)
        shapes.start(process, launcher)
        shapes.join(process, watcher)
        return time.perf_counter() - began

    return once


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--import", dest="modules", default="", help="comma-separated")
    parser.add_argument("--out", default="")
    ns = parser.parse_args()
    for name in filter(None, ns.modules.split(",")):
        importlib.import_module(name)
    shapes = Shapes()
    arms = {
        "bare": arm(shapes, False, False),
        "launcher": arm(shapes, True, False),
        "watcher": arm(shapes, False, True),
        "both": arm(shapes, True, True),
    }
    taken: dict[str, list[float]] = {name: [] for name in arms}
    for once in arms.values():
        once()  # every path warm
    for n in range(ns.rounds):
        names = list(arms)
        turn = n % len(names)  # each arm takes each place in turn
        for name in names[turn:] + names[:turn]:
            taken[name].append(arms[name]())
    bare = statistics.median(taken["bare"])
    figures = {}
    for name, times in taken.items():
        ms = statistics.median(times) * 1000
        figures[name] = {"median_ms": round(ms, 3), "ratio_vs_bare": round(ms / bare / 1000, 3)}
        print(f"{name:<9} {ms:6.3f} ms  {ms / bare / 1000:5.2f}x bare")
    if ns.out:
        write_results(ns.out, {"rounds": ns.rounds, "imported": ns.modules, "arms": figures})


if __name__ == "__main__":
    main()
