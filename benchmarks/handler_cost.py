"""What one process-mode handler costs at each log level: a fork handler started as the
server process starts it (handler._fork of handle_connection, in a small process), serving
one connection of 10 random 64-byte messages from this process, then reaped with wait4
(its CPU and minor faults). The levels are interleaved handler by handler, so that the
machine's noise hits them alike; the figure that matters is each level's excess over
--log errors (what describing connections and chunks costs a handler).

No controller, no proclab thread: only the handler's own code. The log's shared data
budget is the server's (handler.SharedBudget), renewed each second as in a server, and
its event pipe is drained here.

    python benchmarks/handler_cost.py [--levels all,connections,errors] [--rounds 200]
                                      [--out benchmarks/results/handler_cost.json]

An older tree: run it with that tree first on PYTHONPATH (its `proclab/`), as spawn.py's
comparisons do.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from pathlib import Path

from results_file import write_results

RESULTS = Path(__file__).with_name("results")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="all,connections,errors")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--out", default=str(RESULTS / "handler_cost.json"))
    ns = parser.parse_args()

    from proclab.core import bootstrap
    from proclab.core.server import handler

    levels = ns.levels.split(",")
    if hasattr(handler, "preview"):
        # An older tree, whose handlers made their chunks' previews: its server process
        # compiled their pattern (output.control_pattern) before it forked them, and so
        # does this one.
        from proclab.core import output

        output.control_pattern(tabs=True)  # type: ignore[attr-defined]
    events_r, events_w = os.pipe()
    os.set_blocking(events_r, False)
    opened = handler.OpenConnections(4)
    budget = handler.SharedBudget()
    payloads = [os.urandom(64) for _ in range(10)]

    def one(log: str) -> tuple[float, float, int]:
        """Wall seconds, the handler's CPU seconds and minor faults."""
        ours, theirs = socket.socketpair()
        slot = opened.take()
        args = (theirs, "127.0.0.1:5555", bootstrap.InheritedFd(events_w), 10.0, 60.0, log)
        args += ("fork", budget if log == "all" else None)
        args += ((bootstrap.InheritedFd(opened.fd), slot), os.getpid())
        began = time.perf_counter()
        child = handler._fork(handler.handle_connection, args)
        theirs.close()
        for payload in payloads:
            ours.sendall(payload)
            got = 0
            while got < len(payload):
                got += len(ours.recv(4096))
        ours.close()
        _pid, _status, usage = os.wait4(child.pid, 0)
        took = time.perf_counter() - began
        opened.give_back(slot)
        try:
            while os.read(events_r, 65536):
                pass
        except BlockingIOError:
            pass
        return took, usage.ru_utime + usage.ru_stime, usage.ru_minflt

    for log in levels:  # warm every path
        one(log)
    got: dict[str, list[tuple[float, float, int]]] = {log: [] for log in levels}
    for n in range(ns.rounds):
        for log in levels if n % 2 == 0 else levels[::-1]:
            got[log].append(one(log))
    figures: dict[str, dict[str, float]] = {}
    for log, rows in got.items():
        figures[log] = {
            "wall_ms": round(statistics.median(r[0] for r in rows) * 1000, 3),
            "cpu_ms": round(statistics.fmean(r[1] for r in rows) * 1000, 3),
            "faults": statistics.median(r[2] for r in rows),
        }
    base = figures.get("errors")
    for log, f in figures.items():
        excess = f" (+{f['cpu_ms'] - base['cpu_ms']:.3f} ms over errors)" if base else ""
        print(
            f"--log {log:<12} handler CPU {f['cpu_ms']:.3f} ms{excess}, faults {f['faults']:.0f},"
            f" wall {f['wall_ms']:.3f} ms",
            flush=True,
        )
    write_results(ns.out, {"rounds": ns.rounds, "levels": figures})
    return 0


if __name__ == "__main__":
    sys.exit(main())
