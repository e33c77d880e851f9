"""proclab's echo server against plain ones, under a load client that can saturate them.

Each server runs as its own program on 127.0.0.1. The load (benchmarks/tcp_load.py) is P
client processes of T blocking threads, each looping connect, M echoed messages, close;
only connections that end inside the measured window count. For every measurement the
client's own CPU, the server tree's CPU and the machine's are read, and a verdict says
who held the rate back: a client process at the limit of its GIL, the machine, or the
server. A figure whose verdict is "client" measures the client, not the server.

Arms (each ratio is proclab / its plain reference, measured in the same round):
  - process mode, per start method (fork, forkserver, spawn), against the lesson's
    server with its flaws fixed (one Process per connection, tcp_reference.py lesson);
  - pool mode of N workers against a plain pre-forked pool of N (tcp_reference.py prefork);
proclab is measured with its default logging (--log all: every chunk in and out, what a
user gets) and with --log errors. Targets: every ratio >= 0.9x.

The arms run round after round, interleaved, so the noise of a shared machine hits them
alike; the figures reported are each arm's median over the rounds, and each ratio's
median and spread (min-max of the per-round ratios).

--before DIR adds, next to each proclab arm, the same arm run from an older tree (DIR
holds a `proclab/` package, e.g. `git archive COMMIT | tar -x -C DIR/proclab`, put first
on PYTHONPATH): a cut's before and after in the same run.

    python benchmarks/tcp.py [--rounds 3] [--window 4] [--processes 3] [--threads 4]
                             [--only process-fork,pool] [--before DIR]
                             [--bytecode] [--out benchmarks/results/tcp.json]

--bytecode: proclab's own modules compiled, as an installed proclab has them
(benchmarks/bytecode.py says why it matters to spawn).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bytecode import compiled, package_roots
from results_file import write_results
from tcp_load import Load, run_load

RESULTS = Path(__file__).with_name("results")
REFERENCE = str(Path(__file__).with_name("tcp_reference.py"))
PROCLAB = str(Path(sys.executable).with_name("proclab"))
TARGET = 0.9
LOGS = ("all", "errors")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server program, its output in a file (counted: the log lines it wrote)."""

    def __init__(self, argv: list[str], port: int) -> None:
        self.port = port
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        # A session of its own, apart from the load's clients: as a server started from its
        # own terminal or by a service manager is, and as proclab's server process is (every
        # proclab child leads a session). The kernel schedules each session as one group
        # (autogroup): a server sharing its clients' session was measured at 9,100-9,200
        # connections a second, the same plain epoll pool in a session of its own at
        # 7,150-7,450, each connection costing it 0.14 ms of CPU instead of 0.10.
        self.process = subprocess.Popen(
            argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{argv} never listened") from None
                time.sleep(0.05)
        time.sleep(0.5)  # a pool's workers all up

    def lines(self) -> int:
        self.log.seek(0)
        return sum(chunk.count(b"\n") for chunk in iter(lambda: self.log.read(1 << 20), b""))

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def arms(
    workers: int, before: str = ""
) -> dict[str, tuple[list[str], list[tuple[str, list[str]]]]]:
    """name: (the reference's argv, [(proclab arm name, proclab's argv)]); "{port}" is
    filled in per run."""

    def proclab(*options: str) -> list[str]:
        return [PROCLAB, "serve", "--port", "{port}", "--max-clients", "64", *options]

    def with_before(ours: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
        if not before:
            return ours
        old = [(f"{arm} before", ["env", f"PYTHONPATH={before}", *argv]) for arm, argv in ours]
        return [arm for pair in zip(ours, old, strict=True) for arm in pair]

    table: dict[str, tuple[list[str], list[tuple[str, list[str]]]]] = {}
    for method in ("fork", "forkserver", "spawn"):
        reference = [sys.executable, REFERENCE, "lesson", "--port", "{port}", "--method", method]
        ours = [
            (f"log {log}", proclab("--mode", "process", "--method", method, "--log", log))
            for log in LOGS
        ]
        table[f"process-{method}"] = (reference, with_before(ours))
    reference = [sys.executable, REFERENCE, "prefork", "--port", "{port}"]
    reference += ["--workers", str(workers)]
    pool = ["--mode", "pool", "--workers", str(workers), "--method", "fork"]
    table["pool"] = (
        reference,
        with_before([(f"log {log}", proclab(*pool, "--log", log)) for log in LOGS]),
    )
    # The same pool, each worker serving many connections at once, as proclab's do: what
    # of the gap to "pool" is that concurrency model rather than proclab (--only pool-epoll).
    table["pool-epoll"] = (
        [sys.executable, REFERENCE, "epoll", "--port", "{port}", "--workers", str(workers)],
        with_before([(f"log {log}", proclab(*pool, "--log", log)) for log in LOGS]),
    )
    return table


def measure(argv: list[str], load: Load, window: float, warm: float) -> dict[str, object]:
    port = free_port()
    server = Server([a.replace("{port}", str(port)) for a in argv], port)
    try:
        measured = run_load(port, load, window, warm, server.process.pid, count=server.lines)
    finally:
        server.stop()
    summary = measured.summary()
    if measured.errors:
        print(f"    errors: {measured.first_errors}", flush=True)
    return summary


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=4.0, help="measured seconds per arm")
    parser.add_argument("--warm", type=float, default=1.0, help="load before the window")
    parser.add_argument("--processes", type=int, default=3, help="client processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per client process")
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--only", default="", help="comma-separated: process-fork, pool, ...")
    parser.add_argument("--before", default="", help="a folder holding an older proclab/")
    parser.add_argument("--out", default=str(RESULTS / "tcp.json"))
    parser.add_argument(
        "--bytecode", action="store_true", help="proclab's modules compiled, as installed"
    )
    ns = parser.parse_args()
    with compiled(package_roots(ns.before), ns.bytecode):
        return run(ns)


def run(ns: argparse.Namespace) -> int:
    load = Load(ns.processes, ns.threads, ns.messages, ns.size)
    table = arms(ns.workers, ns.before)
    if ns.only:
        table = {k: v for k, v in table.items() if k in ns.only.split(",")}
    load0 = os.getloadavg()
    print(f"proclab's own modules: {'compiled' if ns.bytecode else 'as this checkout has them'}")
    runs: dict[str, dict[str, list[dict[str, object]]]] = {
        name: {"reference": [], **{arm: [] for arm, _ in ours}} for name, (_, ours) in table.items()
    }
    for n in range(ns.rounds):
        print(f"round {n + 1}/{ns.rounds} (load average {os.getloadavg()[0]:.2f})", flush=True)
        for name, (reference, ours) in table.items():
            for arm, argv in [("reference", reference), *ours]:
                got = measure(argv, load, ns.window, ns.warm)
                runs[name][arm].append(got)
                cores = got["cores_used"]
                print(
                    f"  {name:<18} {arm:<10} {got['conn_per_s']:>8} conn/s"
                    f"  server {got['server_cpu_ms_per_conn']} ms CPU/conn"
                    f"  cores: server {cores['server']} client {cores['client']}"  # type: ignore[index]
                    f" others {cores['others']}  log {got['log_lines_per_conn']} lines/conn"  # type: ignore[index]
                    f"  bottleneck: {got['bottleneck']}",
                    flush=True,
                )
    results: dict[str, object] = {}
    print(f"\nmedians over {ns.rounds} rounds; ratio = proclab / reference in the same round")
    for name, by_arm in runs.items():
        ref_rates = [float(r["conn_per_s"]) for r in by_arm["reference"]]  # type: ignore[arg-type]
        entry: dict[str, object] = {"reference": _median_of(by_arm["reference"])}
        for arm, got in by_arm.items():
            if arm == "reference":
                continue
            rates = [float(r["conn_per_s"]) for r in got]  # type: ignore[arg-type]
            ratios = [ours / ref for ours, ref in zip(rates, ref_rates, strict=True) if ref]
            entry[arm] = {
                **_median_of(got),
                "ratio": spread(ratios),
                "target": TARGET,
                "met": statistics.median(ratios) >= TARGET,
            }
            print(
                f"{name:<18} {arm:<11} proclab {statistics.median(rates):>8.1f} conn/s"
                f"  reference {statistics.median(ref_rates):>8.1f}"
                f"  ratio {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
                f"  target >= {TARGET}x"
            )
        results[name] = entry
    write_results(
        ns.out,
        {
            "load": {
                "processes": ns.processes,
                "threads": ns.threads,
                "messages": ns.messages,
                "size": ns.size,
                "window_s": ns.window,
                "rounds": ns.rounds,
            },
            "load_average_at_start": [round(x, 2) for x in load0],
            "before": ns.before,
            "bytecode": ns.bytecode,  # proclab's modules compiled (benchmarks/bytecode.py)
            "results": results,
            "runs": runs,
        },
    )
    return 0


def _median_of(got: list[dict[str, object]]) -> dict[str, object]:
    """The round whose rate is the median, with every rate seen."""
    ordered = sorted(got, key=lambda r: float(r["conn_per_s"]))  # type: ignore[arg-type]
    return {**ordered[len(ordered) // 2], "conn_per_s_all": [r["conn_per_s"] for r in got]}


if __name__ == "__main__":
    sys.exit(main())
