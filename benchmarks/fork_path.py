"""Where a fork child's start + join goes, proclab's controller against bare
multiprocessing, in one process, one child of each in turn (--children of each): for
each arm, the median start + join; the fork call itself (from just before os.fork to
just after it returns in the parent, hooks registered before proclab is imported, so
that proclab's own after-fork hook, step_aside, is not counted in it); the minor page
faults and the CPU of each of this process's threads; the interprocessor interrupts
the machine took (/proc/interrupts: RES reschedule, CAL function call, TLB shootdown,
summed over every CPU), per child; and the moments of a child's life, stamped in the
parent and the child (benchmarks/child_stamps.py), as milliseconds from the call: each
arm's medians side by side, and the steps between them, the part proclab adds in each.

A fork makes every page of the parent copy-on-write, so each page any of its threads
writes until the next fork costs a fault; and a fork, or a thread woken, on another CPU
than the one it last ran on costs an interrupt there (in a VM, waking an idle virtual
CPU). Bare multiprocessing forks and waits on the caller's thread; proclab hands each
child from the caller to its launcher thread, which forks it, and its watcher thread
reaps it and wakes the caller.

    python benchmarks/fork_path.py [--children 300] [--rounds 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from results_file import write_results

RESULTS = Path(__file__).with_name("results")

import child_stamps  # noqa: E402  (its page is shared with every fork child after this)

# Registered before proclab is imported: the "before" hooks run last-registered first,
# the "after" hooks first-registered first, so these two frame os.fork alone.
_fork_began = [0.0]
_fork_took: list[float] = []


def _before_fork() -> None:
    child_stamps.stamp("fork called")
    _fork_began[0] = time.perf_counter()


def _after_fork_in_parent() -> None:
    _fork_took.append(time.perf_counter() - _fork_began[0])
    child_stamps.stamp("fork returned")


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=lambda: child_stamps.stamp("child running"),
)

from tcp_split import CLOCK_TICKS, stat_fields  # noqa: E402

from proclab.core.controller import Controller  # noqa: E402
from proclab.core.model import Exited  # noqa: E402
from proclab.core.spec import build_spec  # noqa: E402

# After proclab's own after-fork hook (step_aside): the launcher is back from stepping off
# the child's CPU. In bare multiprocessing's forks it comes right after "fork returned".
os.register_at_fork(after_in_parent=lambda: child_stamps.stamp("step aside done"))

# Steps between two moments, each arm's median: (label, from, to).
STEPS = (
    ("before the fork (the caller, the launcher)", "call", "fork called"),
    ("the fork call", "fork called", "fork returned"),
    ("the child's first Python after the fork", "fork returned", "child running"),
    ("the child's set-up, to its target", "child running", "target runs"),
    ("the child's end, to os._exit", "target runs", "child exits"),
    ("from os._exit to join() returning", "child exits", "join returned"),
)
INTERRUPTS = ("RES:", "CAL:", "TLB:")


def interrupts() -> dict[str, int]:
    counts = {}
    with open("/proc/interrupts") as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] in INTERRUPTS:
                counts[fields[0][:-1]] = sum(int(x) for x in fields[1:] if x.isdigit())
    return counts


def per_thread() -> dict[str, tuple[int, int]]:
    """Each of this process's threads (by its Python name): minor faults, CPU ticks."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    figures = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = stat_fields(f"self/task/{tid}")
        except OSError:  # the thread has ended
            continue
        figures[names.get(int(tid), tid)] = (int(fields[7]), int(fields[11]) + int(fields[12]))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--children", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS / "fork-path.json"))
    ns = parser.parse_args()

    ctx = multiprocessing.get_context("fork")
    controller = Controller(sample_interval=1.0).start()
    # A module target, as spawn.py's os:getpid is, found on sys.path (this folder) and
    # already imported: from this folder the name would be its file, imported again in
    # each child (and its stamps written to a page of its own).
    spec = build_spec("child_stamps:target", method="fork", cwd=tempfile.gettempdir())
    child_stamps.stamp_exits()
    # Each child's Exited event, timed as it is emitted. It may come after join() returns
    # (the watcher emits it once the joiner is woken): each proclab child's is waited for,
    # outside its timed start + join, so that it is never taken for the next child's.
    ended: dict[int, float] = {}
    emitted = threading.Condition()

    def on_event(event: object) -> None:
        if isinstance(event, Exited):
            with emitted:
                ended[event.row.id] = time.perf_counter()
                emitted.notify_all()

    def end_reported(rec_id: int) -> float | None:
        with emitted:
            emitted.wait_for(lambda: rec_id in ended, timeout=5)
            return ended.pop(rec_id, None)

    controller.subscribe(on_event)
    last_spawned = [0]

    def bare() -> None:
        child_stamps.clear()
        child_stamps.stamp("call")
        p = ctx.Process(target=child_stamps.target)
        p.start()
        p.join()
        child_stamps.stamp("join returned")
        p.close()

    def proclab() -> None:
        child_stamps.clear()
        child_stamps.stamp("call")
        ids = controller.spawn(spec)
        child_stamps.stamp("spawn returned")
        controller.join(ids)
        child_stamps.stamp("join returned")
        controller.clear_exited()
        last_spawned[0] = ids[0]

    arms = {"bare": bare, "proclab": proclab}
    for _ in range(30):  # warm: every path run and compiled
        bare()
        proclab()
        end_reported(last_spawned[0])
    tick_ms = 1000 / CLOCK_TICKS
    rounds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    lives: dict[str, list[dict[str, float]]] = {name: [] for name in arms}  # read() a child
    try:
        for r in range(ns.rounds):
            for name in list(arms) if r % 2 == 0 else list(arms)[::-1]:
                run = arms[name]
                _fork_took.clear()
                took = []
                threads_before, irq_before = per_thread(), interrupts()
                for _ in range(ns.children):
                    began = time.perf_counter()
                    run()
                    took.append(time.perf_counter() - began)
                    if run is proclab and (at := end_reported(last_spawned[0])) is not None:
                        child_stamps.stamp("end reported", at)
                    lives[name].append(child_stamps.read())
                threads_after, irq_after = per_thread(), interrupts()
                n = ns.children
                threads = {
                    t: {
                        "faults": round((threads_after[t][0] - threads_before[t][0]) / n),
                        "cpu_ms": round(
                            (threads_after[t][1] - threads_before[t][1]) * tick_ms / n, 3
                        ),
                    }
                    for t in threads_after
                    if t in threads_before and threads_after[t] != threads_before[t]
                }
                figures = {
                    "start_join_ms": round(statistics.median(took) * 1e3, 3),
                    "fork_call_ms": round(statistics.median(_fork_took) * 1e3, 3),
                    "interrupts_per_child": {
                        k: round((irq_after[k] - irq_before[k]) / n, 2) for k in irq_after
                    },
                    "threads": threads,
                }
                rounds[name].append(figures)
                shown = "  ".join(
                    f"{t} {v['faults']} faults {v['cpu_ms']} ms" for t, v in threads.items()
                )
                irq = " ".join(f"{k} {v}" for k, v in figures["interrupts_per_child"].items())
                print(
                    f"round {r + 1} {name:8} start+join {figures['start_join_ms']:.2f} ms"
                    f"  fork call {figures['fork_call_ms']:.3f} ms  interrupts: {irq}  {shown}"
                )
    finally:
        controller.close()
    ratio = statistics.median(
        p["start_join_ms"] / b["start_join_ms"]
        for p, b in zip(rounds["proclab"], rounds["bare"], strict=True)
    )
    fork_ratio = statistics.median(
        p["fork_call_ms"] / b["fork_call_ms"]
        for p, b in zip(rounds["proclab"], rounds["bare"], strict=True)
    )
    print(f"proclab / bare: start + join {ratio:.2f}x, the fork call alone {fork_ratio:.2f}x")
    timeline = {
        name: {
            m: round(statistics.median(life[m] for life in arm if m in life), 3)
            for m in child_stamps.MOMENTS
            if any(m in life for life in arm)
        }
        for name, arm in lives.items()
    }
    steps = {label: step_ms(lives, a, b) for label, a, b in STEPS}
    print_timeline(timeline, steps)
    write_results(
        ns.out,
        {
            "command": "python benchmarks/fork_path.py "
            f"--children {ns.children} --rounds {ns.rounds}",
            "rounds": dict(rounds),
            "start_join_ratio": round(ratio, 3),
            "fork_call_ratio": round(fork_ratio, 3),
            "moments_ms_from_the_call": timeline,
            "steps_ms": steps,
        },
    )


def step_ms(lives: dict[str, list[dict[str, float]]], a: str, b: str) -> dict[str, float]:
    """Each arm's median of the time from moment `a` to moment `b`, child by child (of
    the children that stamped both)."""
    return {
        name: round(statistics.median(spans), 3)
        for name, arm in lives.items()
        if (spans := [life[b] - life[a] for life in arm if a in life and b in life])
    }


def print_timeline(
    timeline: dict[str, dict[str, float]], steps: dict[str, dict[str, float]]
) -> None:
    print("\nmoments, ms from the call (medians)     bare   proclab")
    for moment in child_stamps.MOMENTS[1:]:
        shown = [
            f"{timeline[a][moment]:7.3f}" if moment in timeline[a] else "      -" for a in timeline
        ]
        print(f"  {moment:<36} {'  '.join(shown)}")
    print("steps, ms (medians)                      bare   proclab   added")
    for label, by_arm in steps.items():
        if len(by_arm) < 2:  # a moment one arm never stamps
            print(f"  {label:<40} " + "  ".join(f"{a} {v:.3f}" for a, v in by_arm.items()))
            continue
        added = by_arm["proclab"] - by_arm["bare"]
        print(f"  {label:<40} {by_arm['bare']:6.3f}  {by_arm['proclab']:6.3f}  {added:+6.3f}")


if __name__ == "__main__":
    main()
