"""A load client for the echo servers, and what it needs to tell who was the bottleneck.

The client is P processes of T blocking threads (no asyncio: a thread blocked in recv()
costs no CPU, and each process has its own GIL). Every thread loops until the window
ends: connect, M times send B bytes and read the whole echo (checked: the bytes
upper-cased), close. Only connections that end inside the measured window count. Each
process reports what it did and its own CPU time over the window (getrusage: all its
threads), so the client's CPU is measured, not guessed.

Why not an existing tool: no load tool from Debian or PyPI speaks this protocol (connect,
M echoed messages checked byte for byte, close): wrk and ab speak HTTP, tcpkali (not in
Debian 12) streams on long-lived connections.

    python tcp_load.py --child HOST PORT THREADS MESSAGES SIZE START WINDOW_BEGIN WINDOW_END
        (one client process; prints one JSON object)

The rest of this module runs in the driver (benchmarks/tcp.py): starting the client
processes, and reading the CPU time of a whole process tree and of the machine from /proc.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SATURATED = 0.85  # a process busy this much of one core is at its limit (its GIL)


# The client process ---------------------------------------------------------------------


def _thread(
    host: str,
    port: int,
    messages: int,
    size: int,
    until: float,
    window: tuple[float, float],
    out: dict[str, list],
) -> None:
    payloads = [os.urandom(size) for _ in range(messages)]
    expected = [p.upper() for p in payloads]
    durations: list[float] = out["durations"]
    begin, end = window
    while True:
        began = time.monotonic()
        if began >= until:
            return
        sock = socket.socket()
        try:
            sock.connect((host, port))
            for payload, echo in zip(payloads, expected, strict=True):
                sock.sendall(payload)
                got = b""
                while len(got) < size:
                    chunk = sock.recv(size - len(got))
                    if not chunk:
                        break
                    got += chunk
                if got != echo:
                    kind = "busy" if got.startswith(b"busy") else "errors"
                    out[kind].append(f"{len(got)} bytes: {got[:40]!r}")
                    # "try again later": a client that retried at once would spin, and
                    # take from the server the CPU it needs to catch up
                    time.sleep(0.01)
                    break
            else:
                done = time.monotonic()
                if begin <= done <= end:
                    durations.append(done - began)
        except OSError as exc:
            out["errors"].append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.01)  # a refused connect must not spin
        finally:
            sock.close()


def child(argv: list[str]) -> int:
    host, port, threads, messages, size = argv[0], int(argv[1]), *map(int, argv[2:5])
    start, begin, end = map(float, argv[5:8])
    outs = [{"durations": [], "busy": [], "errors": []} for _ in range(threads)]
    workers = [
        threading.Thread(
            target=_thread, args=(host, port, messages, size, end, (begin, end), out), daemon=True
        )
        for out in outs
    ]
    time.sleep(max(0.0, start - time.monotonic()))
    for worker in workers:
        worker.start()
    time.sleep(max(0.0, begin - time.monotonic()))
    cpu0, user0 = _own_cpu(), _own_user()
    time.sleep(max(0.0, end - time.monotonic()))
    cpu1, user1 = _own_cpu(), _own_user()
    for worker in workers:
        worker.join(timeout=30)
    durations = [d for out in outs for d in out["durations"]]
    print(
        json.dumps(
            {
                "connections": len(durations),
                "busy": sum(len(o["busy"]) for o in outs),
                "errors": sum(len(o["errors"]) for o in outs),
                "first_errors": [e for o in outs for e in o["errors"]][:3],
                "cpu_s": cpu1 - cpu0,
                "user_s": user1 - user0,
                "durations": durations,
            }
        )
    )
    return 0


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _own_user() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime


# The driver -----------------------------------------------------------------------------


@dataclass
class Load:
    processes: int = 3
    threads: int = 4
    messages: int = 10
    size: int = 64


@dataclass
class Measured:
    window_s: float
    connections: int
    busy: int
    errors: int
    first_errors: list[str]
    client_cpu_s: list[float]  # per client process
    client_user_s: float  # of which in user space (the rest: the kernel's TCP work)
    server_cpu_s: float  # the server's whole process tree
    server_busiest: tuple[str, float]  # its busiest process (name, CPU s)
    machine_busy_s: float  # every CPU of the machine, busy time
    cores: int
    log_lines: int  # what the server printed over the window
    durations: list[float] = field(repr=False, default_factory=list)

    @property
    def conn_per_s(self) -> float:
        return self.connections / self.window_s

    def verdict(self) -> str:
        """Who held the rate back: a client process at the limit of its GIL, the machine's
        CPUs (then the shares say whose), or the server (a process of it at its limit,
        or neither side busy: it answers slowly)."""
        busiest_client = max(self.client_cpu_s) / self.window_s
        if busiest_client >= SATURATED:
            return f"client (a client process at {busiest_client:.0%} of a core)"
        if self.machine_busy_s / self.window_s >= SATURATED * self.cores:
            return "CPU (machine saturated: see the shares)"
        name, cpu = self.server_busiest
        if cpu / self.window_s >= SATURATED:
            return f"server ({name} at {cpu / self.window_s:.0%} of a core)"
        return "server (latency: neither side busy)"

    def summary(self) -> dict[str, object]:
        window = self.window_s
        ordered = sorted(self.durations)

        def pct(p: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 2)

        client = sum(self.client_cpu_s)
        others = max(0.0, self.machine_busy_s - client - self.server_cpu_s)
        per_conn = 1000 / self.connections if self.connections else float("nan")
        return {
            "connections": self.connections,
            "conn_per_s": round(self.conn_per_s, 1),
            "busy": self.busy,
            "errors": self.errors,
            "first_errors": self.first_errors,
            "conn_ms_p50": pct(50),
            "conn_ms_p99": pct(99),
            "conn_ms_mean": round(statistics.fmean(ordered) * 1000, 2) if ordered else None,
            "server_cpu_ms_per_conn": round(self.server_cpu_s * per_conn, 3),
            "client_cpu_ms_per_conn": round(client * per_conn, 3),
            "client_user_share": round(self.client_user_s / client, 2) if client else None,
            "cores_used": {
                "server": round(self.server_cpu_s / window, 2),
                "client": round(client / window, 2),
                "others": round(others / window, 2),
                "of": self.cores,
            },
            "server_busiest": {
                "process": self.server_busiest[0],
                "core_share": round(self.server_busiest[1] / window, 2),
            },
            "client_busiest_core_share": round(max(self.client_cpu_s) / window, 2),
            "bottleneck": self.verdict(),
            "log_lines_per_conn": round(self.log_lines / self.connections, 1)
            if self.connections
            else None,
        }


def run_load(
    port: int,
    load: Load,
    window: float,
    warm: float,
    server_pid: int,
    count: Callable[[], int] = lambda: 0,
    host: str = "127.0.0.1",
) -> Measured:
    """P client processes against the server at `port` for `warm` + `window` seconds;
    the server's process tree (`server_pid`), the machine and `count()` (the server's
    log lines) are read at the window's edges."""
    start = time.monotonic() + 0.3  # the client processes are up by then
    begin = start + warm
    end = begin + window
    argv = [str(x) for x in (host, port, load.threads, load.messages, load.size)]
    clients = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", *argv, str(start), str(begin), str(end)],
            stdout=subprocess.PIPE,
        )
        for _ in range(load.processes)
    ]
    time.sleep(max(0.0, begin - time.monotonic()))
    tree0, machine0, count0 = tree_cpu(server_pid), machine_busy(), count()
    time.sleep(max(0.0, end - time.monotonic()))
    tree1, machine1, count1 = tree_cpu(server_pid), machine_busy(), count()
    reports = []
    for client in clients:
        out, _ = client.communicate(timeout=60)
        reports.append(json.loads(out))
    busiest = max(
        ((pid, tree1[pid][1] - tree0[pid][1]) for pid in tree1.keys() & tree0.keys()),
        key=lambda item: item[1],
        default=(server_pid, 0.0),
    )
    return Measured(
        window_s=window,
        connections=sum(r["connections"] for r in reports),
        busy=sum(r["busy"] for r in reports),
        errors=sum(r["errors"] for r in reports),
        first_errors=[e for r in reports for e in r["first_errors"]][:3],
        client_cpu_s=[r["cpu_s"] for r in reports],
        client_user_s=sum(r["user_s"] for r in reports),
        server_cpu_s=sum(t for t, _ in tree1.values()) - sum(t for t, _ in tree0.values()),
        server_busiest=(_name(busiest[0]), busiest[1]),
        machine_busy_s=(machine1 - machine0),
        cores=os.cpu_count() or 1,
        log_lines=count1 - count0,
        durations=[d for r in reports for d in r["durations"]],
    )


def tree_cpu(pid: int) -> dict[int, tuple[float, float]]:
    """{pid: (CPU s of it and of the children it reaped, its own CPU s)} for `pid` and
    every process below it. Summed, the first figure is the tree's CPU since it began:
    a child that ended and was reaped is in its reaper's cutime/cstime."""
    found = {}
    queue = [pid]
    while queue:
        current = queue.pop()
        try:
            with open(f"/proc/{current}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            reaped = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
            found[current] = (own + reaped, own)
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", "rb") as f:
                    queue.extend(int(p) for p in f.read().split())
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
    return found


def machine_busy() -> float:
    """Seconds every CPU of the machine was busy since boot (all but idle and iowait)."""
    with open("/proc/stat", "rb") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().split(b"\0")
        shown = " ".join(w.decode(errors="replace") for w in words[:4] if w)
        return f"{pid} {shown}"[:60]
    except OSError:
        return str(pid)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.exit(child(sys.argv[2:]))
    sys.exit("run by benchmarks/tcp.py")
