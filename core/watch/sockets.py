"""The watched tree's TCP sockets, read once a tick: who listens where, which process
holds which client's connection, and connections opening and closing as server events.

Read from /proc directly: the kernel's TCP tables (/proc/net/tcp and tcp6) once a tick,
and each process's socket fds (/proc/PID/fd links "socket:[INODE]"). psutil's
per-process `net_connections` does the same but parses the whole table again for every
process: with 200 processes that cost a fifth of a core (benchmarks/watch_cost.py).
Read once a tick, so a connection that opens and closes within one tick is not seen, and
"closed" is the tick after its end (up to a tick late): the log says so.

Reading the tables is itself dear: /proc/net/tcp walks every bucket of the kernel's
connection hash, empty or not (262,144 here: 4.4 ms a read, twice with tcp6, nearly 1 %
of a core at one read a second for a program with no socket at all). So a tick first
reads the kernel's TCP counters (0.05 ms), and the tables only when they moved, the
tree's processes changed, the last read saw a change (a connection half-way through its
handshake shows at the next), or FULL_READ_S has passed: a change that moves no counter
(the peer closing first, seen by the counters only when the handler closes too, or a
socket that starts listening in the same tick as another closes) shows within that.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Mapping
from typing import NamedTuple

from proclab.core.model import ClientAccepted, ClientClosed, ServerEvent, ServerListening

LISTEN, ESTABLISHED = "0A", "01"  # the kernel's TCP states, as /proc/net/tcp writes them
FULL_READ_S = 10.0  # the longest between two reads of the tables, counters or not
# /proc/net/snmp's TCP counters (IPv4 and IPv6 alike): every connect() and accept() adds
# to one of the first two for ever, so no open can hide behind a close in the same tick.
SNMP_COUNTERS = ("ActiveOpens", "PassiveOpens", "CurrEstab")


class Socket(NamedTuple):
    id: int  # the row of the process that holds it
    pid: int
    local: str  # "127.0.0.1:8001"
    remote: str  # "" while listening
    listening: bool


def _address(hex_address: str, family: int) -> str:
    """/proc/net/tcp's "0100007F:1F41" as "127.0.0.1:8001" (the address is in the
    kernel's byte order, 32-bit word by word)."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = socket.inet_ntop(family, words)
    return f"[{ip}]:{int(port, 16)}" if family == socket.AF_INET6 else f"{ip}:{int(port, 16)}"


def tcp_table() -> dict[int, tuple[str, str, bool]]:
    """inode -> (local, remote, listening), of every listening or connected TCP socket."""
    table: dict[int, tuple[str, str, bool]] = {}
    for path, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        with contextlib.suppress(OSError), open(path) as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) < 10 or fields[3] not in (LISTEN, ESTABLISHED):
                    continue
                with contextlib.suppress(ValueError, OSError):
                    listening = fields[3] == LISTEN
                    remote = "" if listening else _address(fields[2], family)
                    table[int(fields[9])] = (_address(fields[1], family), remote, listening)
    return table


def tcp_counters() -> tuple[int, ...]:
    """What moves when a TCP socket opens, closes or starts listening: the opens and
    the established count, and the sockets in use, orphaned, in TIME_WAIT and allocated
    (not their memory, which any traffic moves). Empty where they cannot be read."""
    values: list[int] = []
    with contextlib.suppress(OSError, ValueError), open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
        if len(rows) == 2:
            named = dict(zip(rows[0][1:], rows[1][1:], strict=False))
            values += [int(named[name]) for name in SNMP_COUNTERS if name in named]
    for path in ("/proc/net/sockstat", "/proc/net/sockstat6"):
        with contextlib.suppress(OSError, ValueError), open(path) as f:
            for line in f:
                if line.startswith(("TCP:", "TCP6:")):
                    words = line.split()  # "TCP: inuse 3 orphan 0 tw 0 alloc 5 mem 1"
                    fields = dict(zip(words[1::2], words[2::2], strict=False))
                    fields.pop("mem", None)
                    values += [int(v) for v in fields.values()]
    return tuple(values)


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets the process holds (its fds that are sockets)."""
    found = set()
    folder = f"/proc/{pid}/fd"
    with contextlib.suppress(OSError):
        for fd in os.listdir(folder):
            with contextlib.suppress(OSError):
                link = os.readlink(f"{folder}/{fd}")
                if link.startswith("socket:["):
                    found.add(int(link[8:-1]))
    return found


def tcp_sockets(pids: Mapping[int, int], table: Mapping[int, tuple[str, str, bool]]) -> set[Socket]:
    """The TCP sockets (of `table`) the processes (row id -> pid) hold now."""
    held = {rec_id: socket_inodes(pid) for rec_id, pid in pids.items()}
    found: set[Socket] = set()
    for rec_id, inodes in held.items():
        for inode in inodes:
            entry = table.get(inode)
            if entry is not None:
                found.add(Socket(rec_id, pids[rec_id], *entry))
    return found


class SocketLog:
    """Server events from one tick's sockets to the next: listening, accepted, closed.
    A socket shared by several processes (a parent's copy of a client's connection
    before it closes it) is the connection of the newest of them (the latest row): its
    handler."""

    def __init__(self) -> None:
        self._table: frozenset[int] = frozenset()  # the TCP sockets' inodes at the last look
        self._looked_at: set[int] = set()  # the rows whose fds were read then
        self._listening: set[tuple[int, str]] = set()
        self._open: dict[tuple[str, str], int] = {}  # (local, remote) -> the handler's pid
        self._counters: tuple[int, ...] = ()  # the TCP counters at the last read
        self._read_at = -FULL_READ_S  # monotonic time of the last read of the tables
        self._settling = False  # the last read saw a change: read again at the next look

    def look(self, pids: Mapping[int, int]) -> list[ServerEvent]:
        """What changed since the last look. Reading every process's fds is the dear part
        (a fork child inherits its parent's: 200 mp children held 40,000, 135 ms a look):
        it is done only when the machine's TCP sockets or the tree's processes changed."""
        counters, now = tcp_counters(), time.monotonic()
        if (
            counters
            and counters == self._counters
            and not self._settling
            and pids.keys() <= self._looked_at
            and now - self._read_at < FULL_READ_S
        ):
            return []
        self._settling = counters != self._counters
        self._counters, self._read_at = counters, now
        table = tcp_table()
        inodes = frozenset(table)
        if inodes == self._table and pids.keys() <= self._looked_at:
            return []
        self._table, self._looked_at = inodes, set(pids)
        return self.update(tcp_sockets(pids, table) if table else set())

    def update(self, sockets: set[Socket]) -> list[ServerEvent]:
        now = time.time()
        events: list[ServerEvent] = []
        listening = {(s.pid, s.local) for s in sockets if s.listening}
        for pid, local in sorted(listening - self._listening):
            events.append(
                ServerListening(
                    time=now,
                    address=local,
                    mode="watched",
                    max_clients=0,
                    text=f"process {pid} holds a socket listening on {local}",
                    pid=pid,
                )
            )
        self._listening = listening
        holders: dict[tuple[str, str], Socket] = {}
        for s in sockets:
            key = (s.local, s.remote)
            if not s.listening and (key not in holders or holders[key].id < s.id):
                holders[key] = s  # the newest process that holds it: the handler
        for key, s in sorted(holders.items()):
            if key not in self._open:
                self._open[key] = s.pid
                events.append(ClientAccepted(time=now, client=s.remote, pid=s.pid))
        for key in sorted(self._open.keys() - holders.keys()):
            pid = self._open.pop(key)
            events.append(
                ClientClosed(
                    time=now,
                    client=key[1],
                    pid=pid,
                    reason="seen gone at a tick (its exact end is not known)",
                    duration=None,
                )
            )
        return events
