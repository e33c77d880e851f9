"""What `proclab watch` costs: the watched program's wall time, and proclab's own CPU.

1. Programs under `proclab watch --headless` against the same programs run plain, side by
   side, runs interleaved (issue 14: at most 5 % more wall time):
     ten_sleepers  examples/ten_sleepers.py METHOD 1
     pool_map      examples/pool_map.py METHOD 1000
   Both arms measure the program the same way: from its start time in /proc (10 ms
   clock ticks) to the moment its pidfd says it ended. Pool.map runs ~0.1-0.2 s, so it
   gets three times the runs. Plus Process.start() as the program itself times it
   (perf_counter around start(), 20 a run), plain and under watch (issue 14: at most
   1 ms more a start).
2. proclab's own CPU time watching a tree of 200 processes (a program that starts 199
   sleeping multiprocessing children) against `proclab run` with 200 sleeping children
   of its own (issue 14: no more), over the same window once all are up.

    python benchmarks/watch_cost.py [--repeats N] [--out benchmarks/results/watch_cost.json]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from results_file import write_results

from proclab.core.watch.tree import describe

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RESULTS = Path(__file__).with_name("results")
PROCLAB = str(Path(sys.executable).with_name("proclab"))
METHODS = ("fork", "forkserver", "spawn")
WINDOW_S = 10.0

TREE_200 = """
import multiprocessing, sys, time

def rest(seconds):
    time.sleep(seconds)

if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    children = [multiprocessing.Process(target=rest, args=(float(sys.argv[1]),)) for _ in range(199)]
    for c in children:
        c.start()
    print("up", flush=True)
    for c in children:
        c.join()
"""


def plain_wall(argv: list[str]) -> float:
    """The program's life: its /proc start time to its end (pidfd), output discarded."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pidfd = os.pidfd_open(proc.pid)
    process = describe(proc.pid)
    select.select([pidfd], [], [])
    ended = time.time()
    os.close(pidfd)
    proc.wait()
    assert process is not None
    return ended - process.started


def watched(argv: list[str]) -> tuple[float, list[float]]:
    """The program's life as `proclab watch` measured it (the same two clocks), and the
    hook's start() durations."""
    done = subprocess.run(
        [PROCLAB, "watch", "--headless", "--json", "--", *argv],
        capture_output=True,
        text=True,
        check=True,
    )
    objects = [json.loads(line) for line in done.stdout.splitlines()]
    summary = objects[-1]
    root = summary["rows"][0]
    starts = [o["returned_at"] - o["called_at"] for o in objects if o.get("call") == "start"]
    return root["ended_at"] - root["started_at"], starts


def compare(argv: list[str], repeats: int) -> dict[str, object]:
    plain: list[float] = []
    under: list[float] = []
    starts: list[float] = []
    for _ in range(repeats):
        plain.append(plain_wall(argv))
        wall, took = watched(argv)
        under.append(wall)
        starts += took
    p, w = statistics.median(plain), statistics.median(under)
    figures: dict[str, object] = {
        "plain_wall_s": round(p, 4),
        "watched_wall_s": round(w, 4),
        "ratio": round(w / p, 3),
        "plain_samples": [round(x, 4) for x in plain],
        "watched_samples": [round(x, 4) for x in under],
    }
    if starts:
        figures["start_call_ms_median"] = round(statistics.median(starts) * 1000, 3)
    return figures


START_TIMES = """
import multiprocessing, statistics, sys, time

def nothing():
    pass

if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[1])
    took = []
    for _ in range(int(sys.argv[2])):
        p = multiprocessing.Process(target=nothing)
        began = time.perf_counter()
        p.start()
        took.append(time.perf_counter() - began)
        p.join()
    with open(sys.argv[3], "a") as out:
        print(repr(took[1:]), file=out)  # the first: a fork server or tracker starting
"""


def start_extra(method: str, repeats: int, folder: str) -> dict[str, object]:
    """Process.start() as the program itself times it, plain and under watch (issue 14:
    at most 1 ms more a start): 20 starts a run, runs interleaved."""
    script = Path(folder, "start_times.py")
    script.write_text(START_TIMES)
    arms: dict[str, list[float]] = {"plain": [], "watched": []}
    for _ in range(repeats):
        for arm in arms:
            out = Path(folder, f"{arm}.txt")
            out.unlink(missing_ok=True)
            argv = [sys.executable, str(script), method, "21", str(out)]
            command = argv if arm == "plain" else [PROCLAB, "watch", "--headless", "--", *argv]
            subprocess.run(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
            )
            arms[arm] += json.loads(out.read_text().strip().replace("'", '"'))
    plain, under = statistics.median(arms["plain"]), statistics.median(arms["watched"])
    return {
        "plain_start_ms": round(plain * 1000, 3),
        "watched_start_ms": round(under * 1000, 3),
        "extra_ms": round((under - plain) * 1000, 3),
        "starts_per_arm": len(arms["plain"]),
    }


def cpu_of(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def proclab_cpu(argv: list[str], cwd: str, window: float = WINDOW_S) -> dict[str, float]:
    """proclab's own CPU seconds (its threads, not its children's) over `window` once all
    200 processes are up. Its output goes to a file, so nothing blocks it."""
    with open(Path(cwd, "out.txt"), "w") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.DEVNULL)
    try:
        me = psutil.Process(proc.pid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            family = [
                p for p in me.children(recursive=True) if "guardian" not in " ".join(p.cmdline())
            ]
            if len(family) >= 200:
                break
            time.sleep(0.2)
        processes = len(family)
        time.sleep(3.0)  # past the start-up burst
        began, cpu0 = time.monotonic(), cpu_of(proc.pid)
        time.sleep(window)
        cpu1, ended = cpu_of(proc.pid), time.monotonic()
        return {
            "processes": processes,
            "cpu_s": round(cpu1 - cpu0, 4),
            "share_of_a_core": round((cpu1 - cpu0) / (ended - began), 4),
        }
    finally:
        proc.send_signal(2)
        proc.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=10, help="runs per arm (default 10; Pool.map 3x)"
    )
    parser.add_argument("--out", default=str(RESULTS / "watch_cost.json"))
    parser.add_argument("--tree-only", action="store_true", help="part 2 only")
    parser.add_argument(
        "--window",
        type=float,
        default=WINDOW_S,
        help=f"seconds of proclab's CPU measured, part 2 (default {WINDOW_S:g}; its clock"
        " counts 10 ms ticks)",
    )
    ns = parser.parse_args()
    figures: dict[str, object] = {"load_before": os.getloadavg()}
    for method in () if ns.tree_only else METHODS:
        sleepers = compare(
            [sys.executable, str(EXAMPLES / "ten_sleepers.py"), method, "1"], ns.repeats
        )
        # ~0.1-0.2 s a run, its start on a 10 ms clock: three times the runs
        pool = compare(
            [sys.executable, str(EXAMPLES / "pool_map.py"), method, "1000"], 3 * ns.repeats
        )
        with tempfile.TemporaryDirectory() as tmp:
            starts = start_extra(method, max(3, ns.repeats // 3), tmp)
        figures[f"ten_sleepers_{method}"] = sleepers
        figures[f"pool_map_{method}"] = pool
        figures[f"start_{method}"] = starts
        print(
            f"{method:>10}: ten sleepers x{sleepers['ratio']}, Pool.map x{pool['ratio']},"
            f" start() {starts['plain_start_ms']} -> {starts['watched_start_ms']} ms"
        )
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "tree200.py").write_text(TREE_200)
        seconds = str(ns.window + 30)
        figures["watch_tree_200"] = proclab_cpu(
            [PROCLAB, "watch", "--headless", "tree200.py", seconds], tmp, ns.window
        )
        figures["run_200_children"] = proclab_cpu(
            [
                PROCLAB,
                "run",
                "proclab.core.tasks:sleep",
                "--args",
                f"({seconds},)",
                "--count",
                "200",
                "--method",
                "fork",
            ],
            tmp,
            ns.window,
        )
    watch_cpu = figures["watch_tree_200"]["cpu_s"]  # type: ignore[index]
    run_cpu = figures["run_200_children"]["cpu_s"]  # type: ignore[index]
    figures["watch_over_run_cpu"] = round(watch_cpu / run_cpu, 3) if run_cpu else None
    figures["load_after"] = os.getloadavg()
    print(
        json.dumps({k: v for k, v in figures.items() if "samples" not in str(k)}, indent=1)[:3000]
    )
    write_results(ns.out, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
