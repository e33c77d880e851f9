"""Imported only by the TCP server process's fork server, as a preload module: what the
fork server prepares before it forks handlers.

proclab terminates the server process as a process group. Killed with it, the fork
server could no longer tell the server how its handlers ended (multiprocessing then says
255, which is not true). So the fork server leaves that group as it starts and dies with
the server process instead, by the parent-death signal, as proclab's own fork server
dies with proclab (forkserver_guard, imported here); it also ignores SIGTERM, which only
a signal meant for it alone can still bring. Its handlers set their own SIGTERM handler
as they start (handler.SigtermStop).
"""

from __future__ import annotations

import signal

import proclab.core.forkserver_guard  # noqa: F401  (dies with its parent: the server process)

signal.signal(signal.SIGTERM, signal.SIG_IGN)
