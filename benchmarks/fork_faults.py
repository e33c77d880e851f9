"""What forking a handler per connection costs the process that forks: the accept loop's
own minor page faults and CPU per connection, the lesson's server against proclab's
server process, connections made one at a time. After each fork every page the parent
writes is copied once more (copy on write), so a loop that touches more pages between
forks pays more for each. Read from /proc/PID/stat (minflt, utime, stime).

    python benchmarks/fork_faults.py [--connections 400] [--rounds 2] [--before DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import psutil
from tcp import PROCLAB, REFERENCE
from tcp_split import CLOCK_TICKS, one_at_a_time, stat_fields


def _stat(pid: int) -> tuple[int, float, float]:
    """(minor faults, user s, system s) of one process, its children not included."""
    fields = stat_fields(pid)
    return int(fields[7]), int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def _server_process(pid: int) -> int:
    """proclab's server process: the child whose title says so."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for child in psutil.Process(pid).children(recursive=True):
            if "tcp server" in " ".join(child.cmdline()):
                return child.pid
        time.sleep(0.1)
    raise SystemExit("proclab's server process was not found")


def measure(
    name: str,
    argv: list[str],
    find: Callable[[int], int],
    count: int,
    env: dict[str, str] | None = None,
) -> None:
    (faults0, user0, system0), (faults1, user1, system1), _ = one_at_a_time(
        argv, count, lambda pid: _stat(find(pid)), env, settle=1.0
    )
    print(
        f"{name:<26} faults {(faults1 - faults0) / count:6.1f} a connection"
        f"   CPU {1000 * (user1 - user0) / count:5.2f} ms user"
        f" {1000 * (system1 - system0) / count:5.2f} ms system",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", default="")
    ns = parser.parse_args()
    plain = [sys.executable, REFERENCE, "lesson", "--port", "{port}", "--method", "fork"]
    ours = [PROCLAB, "serve", "--port", "{port}", "--method", "fork", "--log", "errors"]
    for _ in range(ns.rounds):
        measure("plain (lesson)", plain, lambda pid: pid, ns.connections)
        measure("proclab --log errors", ours, _server_process, ns.connections)
        if ns.before:
            env = dict(os.environ, PYTHONPATH=ns.before)
            measure("proclab (before)", ours, _server_process, ns.connections, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
