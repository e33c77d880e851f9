"""proclab's echo server against plain ones, with the same load client, in one run.

Each server runs as its own program on 127.0.0.1; the load (`proclab client`'s engine,
in this process) is C clients at once making N connections of M messages. Figures are
connections per second; what matters is the ratio to the reference measured beside it.
  - process mode, per start method, against the lesson's server with its flaws fixed
    (one Process per connection);  target >= 0.9x;
  - pool mode against a plain pre-forked pool of the same size;  target >= 0.9x, and
    >= 10x process mode with fork.
proclab logs each connection (--log connections: no per-chunk events, as a load test
would); the pool is also measured logging errors only.

    python benchmarks/tcp.py [--clients 8] [--messages 10] [--workers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

from results_file import write_results

RESULTS = Path(__file__).with_name("results")  # read now: main() forgets __file__
REFERENCE = str(Path(__file__).with_name("tcp_reference.py"))
PROCLAB = str(Path(sys.executable).with_name("proclab"))
CONNECTIONS = {"fork": 600, "forkserver": 200, "spawn": 60, "pool": 3000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(argv: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            time.sleep(0.5)  # let a pool's workers all be up
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{argv} never listened")


def measure(
    argv: list[str], port: int, ns: argparse.Namespace, connections: int
) -> dict[str, object]:
    from proclab.core.server.echo_client import run_load

    server = serve(argv, port)
    try:
        result = asyncio.run(
            run_load("127.0.0.1", port, ns.clients, ns.messages, ns.size, connections)
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    summary = result.summary()
    if result.errors:
        raise RuntimeError(f"{argv}: {result.errors[:3]}")
    return summary


def main() -> int:
    from proclab.core.methods import forget_main_script

    forget_main_script()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--out", default=str(RESULTS / "tcp.json"))
    ns = parser.parse_args()
    results: dict[str, dict[str, object]] = {}

    def row(name: str, ours: dict[str, object], theirs: dict[str, object], target: float) -> None:
        ratio = float(ours["conn_per_s"]) / float(theirs["conn_per_s"])  # type: ignore[arg-type]
        results[name] = {
            "proclab": ours,
            "reference": theirs,
            "ratio": round(ratio, 2),
            "target": target,
        }
        print(
            f"{name:<20} proclab {ours['conn_per_s']:>8} conn/s   reference {theirs['conn_per_s']:>8} conn/s"
            f"   ratio {ratio:4.2f}x (target >= {target}x)   p99 {ours['latency_p99_ms']} ms",
            flush=True,
        )

    def proclab(port: int, *options: str) -> list[str]:
        return [PROCLAB, "serve", "--port", str(port), "--max-clients", "64", *options]

    for method in ("fork", "forkserver", "spawn"):
        port = free_port()
        ours = measure(
            proclab(port, "--method", method, "--log", "connections"), port, ns, CONNECTIONS[method]
        )
        port = free_port()
        theirs = measure(
            [sys.executable, REFERENCE, "lesson", "--port", str(port), "--method", method],
            port,
            ns,
            CONNECTIONS[method],
        )
        row(f"process ({method})", ours, theirs, 0.9)
    port = free_port()
    theirs = measure(
        [sys.executable, REFERENCE, "prefork", "--port", str(port), "--workers", str(ns.workers)],
        port,
        ns,
        CONNECTIONS["pool"],
    )
    pool = ["--mode", "pool", "--workers", str(ns.workers), "--method", "fork"]
    for log in ("connections", "errors"):
        port = free_port()
        ours = measure(proclab(port, *pool, "--log", log), port, ns, CONNECTIONS["pool"])
        row(f"pool ({ns.workers}, log {log})", ours, theirs, 0.9)
    over_fork = float(ours["conn_per_s"]) / float(
        results["process (fork)"]["proclab"]["conn_per_s"]
    )  # type: ignore[index]
    print(f"pool / process (fork): {over_fork:.1f}x (target >= 10x)")
    write_results(
        ns.out,
        {
            "load": {"clients": ns.clients, "messages": ns.messages, "size": ns.size},
            "results": results,
            "pool_over_process_fork": round(over_fork, 1),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
