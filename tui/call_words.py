"""A watched program's multiprocessing calls in words, for the details and the output
log: one call may be two moments (a join is called, then returns)."""

from __future__ import annotations

from proclab.core.exits import describe_exit
from proclab.core.model import ProcessCall
from proclab.tui import fmt


def took(seconds: float) -> str:
    """A call's duration: start() takes about a millisecond, so milliseconds get decimals
    ('0.84 ms', '31.2 ms'); a second or more as elsewhere ('2.00 s')."""
    if abs(seconds) < 0.01:
        return f"{seconds * 1000:.2f} ms"
    if abs(seconds) < 1:
        return f"{seconds * 1000:.1f} ms"
    return fmt.seconds(seconds)


def who(name: str, pid: int | None) -> str:
    """'fetcher (42003)'."""
    return f"{name} ({pid})" if pid else name


# A join that blocked less than this found the child ended: what it took was the join's
# own work (tens of microseconds), not a wait.
ALREADY_ENDED_S = 0.001


def join_outcome(call: ProcessCall) -> str:
    """How a join ended, after the time it blocked: ' until it ended, exit 0', or ': it
    had ended already, exit 0'. "blocked 0.432 s: it had ended" read as if the child had
    ended before the join was called."""
    if call.ended is False:
        return ": timed out, it is still running"
    if not call.ended:
        return ": whether it had ended was not said"
    exit_text = f", exit {describe_exit(call.exitcode)}" if call.exitcode is not None else ""
    if call.took < ALREADY_ENDED_S:
        return f": it had ended already{exit_text}"
    return f" until it ended{exit_text}"


def call_moments(call: ProcessCall, child: str) -> list[tuple[float, str]]:
    """(wall clock, what happened) for each moment of `call`, `child` naming the process
    it was made on; said from the caller's side. The last moment says it all (the hook
    reports a call when it returns)."""
    if call.call == "start":
        return [(call.returned_at, f"start() of {child} returned after {took(call.took)}")]
    if call.call == "join":
        timeout = f"timeout={call.timeout:g}" if call.timeout is not None else ""
        called = f"join({timeout}) of {child} called"
        returned = f"join({timeout}) of {child} returned: blocked {took(call.took)}"
        return [(call.called_at, called), (call.returned_at, returned + join_outcome(call))]
    signal = "SIGTERM" if call.call == "terminate" else "SIGKILL"
    return [(call.returned_at, f"{call.call}() of {child}: {signal} sent")]
