"""How a child ended, read from multiprocessing's exitcode (negative: killed by a signal)."""

from __future__ import annotations

import signal

from proclab.core.model import ProcState


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_exit(exitcode: int | None) -> str:
    """'0', '3', '-15 SIGTERM'; '' while it runs."""
    if exitcode is None:
        return ""
    if exitcode < 0:
        return f"{exitcode} {signal_name(-exitcode)}"
    return str(exitcode)


def state_for_exit(exitcode: int) -> ProcState:
    """0 is a clean exit; another code is a failure (an uncaught exception gives 1);
    SIGTERM is a terminate, any other signal (SIGKILL, SIGSEGV...) a kill."""
    if exitcode == 0:
        return ProcState.EXITED
    if exitcode == -signal.SIGTERM:
        return ProcState.TERMINATED
    if exitcode < 0:
        return ProcState.KILLED
    return ProcState.FAILED


# psutil status strings -> the live states proclab shows.
_LIVE = {
    "running": ProcState.RUNNING,
    "sleeping": ProcState.SLEEPING,
    "disk-sleep": ProcState.SLEEPING,
    "idle": ProcState.SLEEPING,
    "parked": ProcState.SLEEPING,
    "waking": ProcState.RUNNING,
    "stopped": ProcState.STOPPED,
    "tracing-stop": ProcState.STOPPED,
    "zombie": ProcState.ZOMBIE,
    "dead": ProcState.ZOMBIE,
}


def state_for_status(status: str) -> ProcState:
    return _LIVE.get(status, ProcState.RUNNING)
