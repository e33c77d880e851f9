"""Signalling a process as its whole process group: shared by the controller and the TCP
server's process (kept light: that process imports it from scratch)."""

from __future__ import annotations

import contextlib
import os


def signal_group(pid: int, sig: int) -> None:
    """The process leads its own group once it has run setsid() (proclab's children in
    their bootstrap) or setpgid() (a TCP handler or pool worker as it starts); before that
    (its first moments: under a millisecond for fork, an interpreter start-up for spawn)
    the group does not exist yet and only the process itself can be signalled."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    except PermissionError:
        pass


def signal_group_only(pgid: int, sig: int) -> None:
    """The group, or nothing: not its leader's pid alone (signal_group's fallback), for a
    leader that may have been killed and reaped, and its pid given to another process."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
