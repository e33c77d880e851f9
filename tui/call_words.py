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


def call_moments(call: ProcessCall, child: str) -> list[tuple[float, str]]:
    """(wall clock, what happened) for each moment of `call`, `child` naming the process
    it was made on; said from the caller's side. The last moment says it all (the hook
    reports a call when it returns)."""
    if call.call == "start":
        return [(call.returned_at, f"start() of {child} returned after {took(call.took)}")]
    if call.call == "join":
        timeout = f"timeout={call.timeout:g}" if call.timeout is not None else ""
        called = f"join({timeout}) of {child} called"
        if call.ended:
            exit_text = (
                f", exit {describe_exit(call.exitcode)}" if call.exitcode is not None else ""
            )
            outcome = f"it had ended{exit_text}"
        elif call.ended is False:
            outcome = "timed out: it is still running"
        else:
            outcome = "whether it had ended was not said"
        returned = f"join({timeout}) of {child} returned: blocked {took(call.took)}, {outcome}"
        return [(call.called_at, called), (call.returned_at, returned)]
    signal = "SIGTERM" if call.call == "terminate" else "SIGKILL"
    return [(call.returned_at, f"{call.call}() of {child}: {signal} sent")]
