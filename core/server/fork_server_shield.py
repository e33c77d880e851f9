"""Imported only by the TCP server process's fork server, as a preload module: what the
fork server prepares before it forks handlers.

proclab terminates the server process as a process group, and its fork server is in
that group: killed with it, the fork server could no longer tell the server how its
handlers ended (multiprocessing then says 255, which is not true). So the fork server
ignores SIGTERM, and dies with the server process instead, as proclab's own fork
server dies with proclab (forkserver_guard). Its handlers set their own SIGTERM handler
as they start (handler.SigtermStop).
"""

from __future__ import annotations

import signal

import proclab.core.forkserver_guard  # noqa: F401  (dies with its parent: the server process)

signal.signal(signal.SIGTERM, signal.SIG_IGN)
