"""How a child ended, read from multiprocessing's exitcode (negative: killed by a signal)."""

from __future__ import annotations

import signal

from proclab.core.model import ProcessRow, ProcState


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


def traceback_ended_it(row: ProcessRow) -> bool:
    """Whether the traceback in its stderr may be why it ended: an exit code above 0, or
    SIGINT after a KeyboardInterrupt (Python prints it, then dies of the signal, as a
    shell expects: it was said to have survived it). One that exited 0, or died of
    another signal, printed one it survived (traceback.print_exc(), a child of its own
    that failed on the same stderr): it was said as its failure."""
    code = row.exitcode
    if code == -signal.SIGINT:
        return (row.error or "").startswith("KeyboardInterrupt")
    return code is not None and code > 0


def error_is_its_traceback(row: ProcessRow) -> bool:
    """Whether `row.error` is the exception its stderr's last traceback ended with; else
    it is proclab's own word (a start that failed, the fork-bomb guard, a fork server
    gone), which a summary called "a traceback, which it survived" of a child that printed
    none."""
    tail = [line.strip() for line in row.traceback[-2:]]
    # its last line, or the two a bare "RuntimeError:" and its message made
    return bool(tail) and row.error in (tail[-1], " ".join(tail))


def traceback_note(row: ProcessRow) -> str:
    return f"its stderr held a traceback, which it survived ({row.error})"


def traceback_words(row: ProcessRow) -> str:
    """The line a summary gives a row with an error: the exception its traceback ended
    with, or proclab's word for what happened to it."""
    if traceback_ended_it(row) or not error_is_its_traceback(row):
        return row.error or ""
    return traceback_note(row)
