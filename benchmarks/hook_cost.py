"""What the watch hook costs a program: the same program run plain and hooked, side by side.

The hooked arm runs with a HookServer receiving and every pipe the hooks hand over read
(as `proclab watch` will); the plain arm's output is read the same way. The arms are
interleaved run by run, so the machine's noise hits both alike: the figures that matter
are the ratios of medians from the same run.

Workloads:
  ten_sleepers  examples/ten_sleepers.py METHOD 1: wall time (issue 14: at most 5 % more)
  pool_map      examples/pool_map.py METHOD 1000: wall time (at most 5 % more)
  start         a script timing Process.start() (at most 1 ms more per call), and start
                plus join of a child that does nothing
  python -c pass  the interpreter's start-up, with the hook loaded and connected
  start-up CPU  an interpreter's CPU before its first line, read inside it
  idle server   the server's own CPU while the program's processes send nothing

    python benchmarks/hook_cost.py [--repeats N] [--out benchmarks/results/hook_cost.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from results_file import write_results

from proclab.core.watch.hook_server import HookServer, PassedFds
from proclab.core.watch.protocol import Hello, Message

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RESULTS = Path(__file__).with_name("results")
METHODS = ("fork", "forkserver", "spawn")
STARTS = {"fork": 30, "forkserver": 30, "spawn": 10}  # of each arm, per run

START_SCRIPT = """
import json, multiprocessing, statistics, sys, time

def nothing():
    pass

if __name__ == "__main__":
    # Hooked, calls alternate with the hook switched off in this process (a fork child
    # then has no hook either; a spawn or forkserver child loads its own regardless):
    # the same moment of a noisy machine for both.
    hook = sys.modules.get("_proclab_hook")
    sock = hook._sock if hook else None
    ctx = multiprocessing.get_context(sys.argv[1])
    figures = {"start": [], "round": [], "start_off": [], "round_off": []}
    for i in range(2 * int(sys.argv[2])):
        off = hook is not None and i % 2 == 1
        if off:
            hook._sock = None
        p = ctx.Process(target=nothing)
        began = time.perf_counter()
        p.start()
        started = time.perf_counter()
        p.join()
        ended = time.perf_counter()
        if hook:
            hook._sock = sock
        suffix = "_off" if off else ""
        figures["start" + suffix].append(started - began)
        figures["round" + suffix].append(ended - began)
    with open(sys.argv[3], "w") as out:
        json.dump({k: statistics.median(v) for k, v in figures.items() if v}, out)
"""


class Drain:
    """Reads and discards every pipe handed to it, on one thread, as proclab reads them."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._pending: list[int] = []
        self._lock = threading.Lock()
        self._open = 0
        self._stop = False
        self.bytes = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def add(self, fd: int) -> None:
        with self._lock:
            self._pending.append(fd)
        os.write(self._wake_w, b"x")

    def _run(self) -> None:
        while not (self._stop and self._open == 0):
            for key, _ in self._selector.select(0.5):
                if key.fd == self._wake_r:
                    os.read(self._wake_r, 4096)
                    with self._lock:
                        pending, self._pending = self._pending, []
                    for fd in pending:
                        self._selector.register(fd, selectors.EVENT_READ)
                        self._open += 1
                    continue
                data = os.read(key.fd, 65536)
                self.bytes += len(data)
                if not data:
                    self._selector.unregister(key.fd)
                    os.close(key.fd)
                    self._open -= 1

    def close(self) -> None:
        self._stop = True
        os.write(self._wake_w, b"x")
        self._thread.join(30)
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


def run_once(argv: list[str], server: HookServer | None, drain: Drain) -> tuple[float, float]:
    """Wall time of the program, from start to its exit, and the CPU time (user + system)
    of its processes that were reaped within the tree (the fork server and the resource
    tracker outlive the root and are not counted, in either arm). Its output is read by
    the drain (and, hooked, the pipes its processes take over too)."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    drain.add(out_r)
    drain.add(err_r)
    env = server.environment(output_fds=(out_w, err_w)) if server else dict(os.environ)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=out_w, stderr=err_w, stdin=subprocess.DEVNULL)
    os.close(out_w)
    os.close(err_w)
    proc.wait()
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} exited with {proc.returncode}")
    return wall, cpu


class Hooked:
    """A HookServer whose hellos' pipes go to the drain."""

    def __init__(self, drain: Drain) -> None:
        self.drain = drain
        self.server = HookServer(self.on_message).start()

    def on_message(self, message: Message, fds: PassedFds) -> None:
        if isinstance(message, Hello):
            for fd in fds.take():
                self.drain.add(fd)


def median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 3)


def compare(
    name: str, argv: list[str], repeats: int, hooked: Hooked, drain: Drain
) -> dict[str, object]:
    runs: dict[str, list[tuple[float, float]]] = {"plain": [], "hooked": []}
    for _ in range(repeats):
        runs["plain"].append(run_once(argv, None, drain))
        runs["hooked"].append(run_once(argv, hooked.server, drain))
    wall = {arm: statistics.median(w for w, _ in values) for arm, values in runs.items()}
    cpu = {arm: statistics.median(c for _, c in values) for arm, values in runs.items()}
    row: dict[str, object] = {
        "plain_ms": round(wall["plain"] * 1000, 2),
        "hooked_ms": round(wall["hooked"] * 1000, 2),
        "ratio": round(wall["hooked"] / wall["plain"], 4),
        "extra_ms": round((wall["hooked"] - wall["plain"]) * 1000, 2),
        "cpu_plain_ms": round(cpu["plain"] * 1000, 2),
        "cpu_hooked_ms": round(cpu["hooked"] * 1000, 2),
        "cpu_ratio": round(cpu["hooked"] / cpu["plain"], 4),
        "repeats": repeats,
        "samples_ms": {
            arm: [[round(w * 1000, 1), round(c * 1000, 1)] for w, c in values]
            for arm, values in runs.items()
        },
    }
    print(
        f"{name:<24} wall {row['plain_ms']:>8.1f} -> {row['hooked_ms']:>8.1f} ms"
        f" ({row['ratio']:.3f}x)   CPU {row['cpu_plain_ms']:>7.1f} -> {row['cpu_hooked_ms']:>7.1f}"
        f" ms ({row['cpu_ratio']:.3f}x)"
    )
    return row


def start_costs(
    method: str, repeats: int, script: str, hooked: Hooked, drain: Drain
) -> dict[str, float]:
    """Process.start(), and start + join of a child that does nothing, inside the program
    (medians of each run's medians): plain runs against hooked runs, and inside the
    hooked runs, calls with the hook on against calls with it off."""
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "hooked": []}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        argv = [sys.executable, script, method, str(STARTS[method]), str(out)]
        for _ in range(repeats):
            for arm, server in (("plain", None), ("hooked", hooked.server)):
                run_once(argv, server, drain)
                runs[arm].append(json.loads(out.read_text()))

    def ms(arm: str, key: str) -> float:
        return median_ms([figures[key] for figures in runs[arm]])

    row = {
        "start_plain_ms": ms("plain", "start"),
        "start_hooked_ms": ms("hooked", "start"),
        "start_hook_off_ms": ms("hooked", "start_off"),
        "start_join_plain_ms": ms("plain", "round"),
        "start_join_hooked_ms": ms("hooked", "round"),
        "start_join_hook_off_ms": ms("hooked", "round_off"),
        "starts_per_run": 2 * STARTS[method],
        "repeats": repeats,
    }
    row["start_extra_ms"] = round(row["start_hooked_ms"] - row["start_plain_ms"], 3)
    row["start_extra_same_process_ms"] = round(row["start_hooked_ms"] - row["start_hook_off_ms"], 3)
    row["start_join_extra_ms"] = round(row["start_join_hooked_ms"] - row["start_join_plain_ms"], 3)
    print(
        f"{'start ' + method:<24} Process.start() plain {row['start_plain_ms']:.3f} ms, hooked "
        f"{row['start_hooked_ms']:.3f} ({row['start_extra_ms']:+.3f}; against the hook "
        f"switched off in the same run {row['start_extra_same_process_ms']:+.3f});  start+join "
        f"{row['start_join_plain_ms']:.3f} -> {row['start_join_hooked_ms']:.3f} ms "
        f"({row['start_join_extra_ms']:+.3f})"
    )
    return row


def idle_server_cpu(seconds: float = 5.0, connections: int = 10) -> dict[str, float]:
    """proclab's side at rest: a server sweeping idle connections (a watched program
    waiting on something), its CPU share of one core. Nothing else runs in this process
    meanwhile but the main thread's sleep."""
    server = HookServer(lambda message, fds: None).start()
    clients = []
    try:
        for _ in range(connections):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            client.connect(server.path)
            clients.append(client)
        time.sleep(0.5)  # accepted, and the sweeps backed off to their idle pace
        cpu, began = time.process_time(), time.perf_counter()
        time.sleep(seconds)
        share = (time.process_time() - cpu) / (time.perf_counter() - began)
    finally:
        for client in clients:
            client.close()
        server.close()
    row = {"cpu_percent_of_a_core": round(share * 100, 3), "connections": connections}
    print(f"{'idle server':<24} {row['cpu_percent_of_a_core']:.3f} % of a core")
    return row


def startup_cpu(hooked: Hooked, runs: int) -> dict[str, float]:
    """The CPU an interpreter spends before its first line of code, read inside it
    (time.process_time), plain against hooked, interleaved: steadier on a busy machine
    than the tree's rusage, which also holds fork, exec and exit. Its stdout is captured
    here, not proclab's: the hook loads and says hello but leaves it alone."""
    code = "import time; print(time.process_time())"
    figures: dict[str, list[float]] = {"plain": [], "hooked": []}
    for _ in range(runs):
        for arm, env in (("plain", dict(os.environ)), ("hooked", hooked.server.environment())):
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
            figures[arm].append(float(out.stdout))
    row = {arm: median_ms(values) for arm, values in figures.items()}
    row = {"plain_ms": row["plain"], "hooked_ms": row["hooked"], "runs": runs}
    row["extra_ms"] = round(row["hooked_ms"] - row["plain_ms"], 3)
    print(
        f"{'start-up CPU':<24} {row['plain_ms']:.2f} -> {row['hooked_ms']:.2f} ms"
        f" ({row['extra_ms']:+.2f} ms) before the first line of `python -c`"
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="runs per arm (default 9)")
    parser.add_argument("--out", default=str(RESULTS / "hook_cost.json"))
    ns = parser.parse_args()
    # First, while this process has no other thread: process_time counts all of them.
    results: dict[str, object] = {"idle server": idle_server_cpu()}
    drain = Drain()
    hooked = Hooked(drain)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            script = os.path.join(tmp, "starts.py")
            Path(script).write_text(START_SCRIPT)
            results["start-up CPU"] = startup_cpu(hooked, ns.repeats * 4)
            results["python -c pass"] = compare(
                "python -c pass", [sys.executable, "-c", "pass"], ns.repeats * 4, hooked, drain
            )
            for method in METHODS:
                argv = [sys.executable, str(EXAMPLES / "ten_sleepers.py"), method, "1"]
                results[f"ten_sleepers {method}"] = compare(
                    f"ten_sleepers {method}", argv, ns.repeats, hooked, drain
                )
                argv = [sys.executable, str(EXAMPLES / "pool_map.py"), method, "1000"]
                results[f"pool_map {method}"] = compare(
                    f"pool_map 1000 {method}", argv, ns.repeats, hooked, drain
                )
                results[f"start {method}"] = start_costs(method, ns.repeats, script, hooked, drain)
    finally:
        stats = hooked.server.stats()
        hooked.server.close()
        drain.close()
    results["server"] = {
        "messages": stats.messages,
        "junk": stats.junk,
        "lost": stats.lost,
        "callback_errors": stats.callback_errors,
    }
    results["load_average_after"] = os.getloadavg()
    print(f"hook server: {stats.messages} messages, {stats.junk} junk, {stats.lost} lost")
    write_results(ns.out, {"benchmark": "hook_cost", "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
