"""The watched tree's TCP sockets, read once a tick: who listens where, which process
holds which client's connection, and connections opening and closing as server events.

psutil's per-process `net_connections` (the process's socket fds matched against
/proc/net/tcp and tcp6). Read once a tick, so a connection that opens and closes within
one tick is not seen, and "closed" is when the tick after its end noticed it (up to a
tick late): the log says so (benchmarks/watch_cost.py measures the cost).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import NamedTuple

import psutil

from proclab.core.model import ClientAccepted, ClientClosed, ServerEvent, ServerListening


class Socket(NamedTuple):
    id: int  # the row of the process that holds it
    pid: int
    local: str  # "127.0.0.1:8001"
    remote: str  # "" while listening
    listening: bool


def _address(addr: object) -> str:
    if not addr:
        return ""
    ip, port = addr  # type: ignore[misc]
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def tcp_sockets(pids: Mapping[int, int]) -> set[Socket]:
    """The TCP sockets the processes (row id -> pid) hold now: listening or connected."""
    found: set[Socket] = set()
    for rec_id, pid in pids.items():
        with contextlib.suppress(psutil.Error, OSError):
            for conn in psutil.Process(pid).net_connections(kind="tcp"):
                listening = conn.status == psutil.CONN_LISTEN
                if not listening and conn.status != psutil.CONN_ESTABLISHED:
                    continue
                local, remote = _address(conn.laddr), _address(conn.raddr)
                found.add(Socket(rec_id, pid, local, remote, listening))
    return found


class SocketLog:
    """Server events from one tick's sockets to the next: listening, accepted, closed.
    A socket shared by several processes (a parent's copy of a client's connection
    before it closes it) is the connection of the newest of them (the latest row): its
    handler."""

    def __init__(self) -> None:
        self._listening: set[tuple[int, str]] = set()
        self._open: dict[tuple[str, str], int] = {}  # (local, remote) -> the handler's pid

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
