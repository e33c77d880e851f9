"""`proclab run`: start N children, stream their output, join them, print a summary.

The lesson's "start ten, join them all, print the total time", with what the lesson's
version does not show: each child's exit code or signal, wall and CPU time, and what happens
on Ctrl+C (the children are ended, never left behind).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import TextIO

from proclab.core.batch import batch_figures
from proclab.core.columns import columns
from proclab.core.controller import Controller
from proclab.core.cpus import usable_cpus
from proclab.core.errors import ProclabError
from proclab.core.exits import describe_exit, traceback_words
from proclab.core.model import Event, Notice, OutputLine, ProcessRow, ProcState
from proclab.core.output import escape_controls
from proclab.core.recording import record_into
from proclab.core.words import plural
from proclab.tui import fmt
from proclab.tui.batch_words import batch_lines
from proclab.tui.closed_output import on_closed, unsaid
from proclab.tui.commands.options import (
    add_grace_argument,
    add_record_argument,
    add_spawn_arguments,
    positive_float,
    spec_from_arguments,
)
from proclab.tui.terminal import heeded

HELP = "start children, stream their output, join them, print a summary"
DESCRIPTION = (
    "Start N children of a Python function, stream their output, join them all"
    " and print how long they took: the lesson's 'start ten, join them, print the total time'."
)
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Printer:
    """Prints children's output as it arrives (from the controller's threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if isinstance(event, OutputLine):
            stream = sys.stdout if event.stream == "stdout" else sys.stderr
            self._write(stream, fmt.printed_line(event))
        elif isinstance(event, Notice) and not unsaid(event):
            self._write(sys.stderr, f"proclab: {escape_controls(event.text)}")

    def _write(self, stream: TextIO, line: str) -> None:
        with self._lock:  # one write a line: print() wrote its text and newline apart
            stream.write(line + "\n")
            stream.flush()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spawn_arguments(parser, target_required=True)
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        metavar="S",
        help="end the children still running S seconds after the last of them started",
    )
    add_grace_argument(parser)
    add_record_argument(parser)


def run(ns: argparse.Namespace) -> int:
    try:
        spec = spec_from_arguments(ns)
    except ProclabError as exc:
        print(f"proclab run: {exc}", file=sys.stderr)
        return EXIT_USAGE

    controller = Controller(max_procs=ns.max_procs, grace=ns.grace)
    try:
        stop_recording = record_into(controller, ns.record)
    except ProclabError as exc:
        print(f"proclab run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    controller.subscribe(_Printer())

    def again() -> None:  # a second Ctrl+C (or SIGTERM) while they end: SIGKILL now
        if asked_twice(received):
            controller.hurry()

    with stop_signals(again) as received:
        try:
            controller.start()
            try:
                ids = controller.spawn(spec, ns.count)
            except ProclabError as exc:
                print(f"proclab run: {exc}", file=sys.stderr)
                return EXIT_USAGE
            spawned = time.monotonic()
            deadline: float | None = None  # monotonic: a clock set meanwhile moves nothing
            while not controller.join(ids, timeout=0.05):
                if ns.timeout is not None and deadline is None:
                    ends = _timeout_ends_at(controller, ids, ns.timeout)
                    if ends is not None:
                        deadline = time.monotonic() + ends - time.time()
                    elif time.monotonic() - spawned >= ns.timeout:
                        deadline = time.monotonic()  # a start that hangs is bounded too
                if received:
                    if received[0] != signal.SIGPIPE:  # a closed stdout ends it quietly
                        name = signal.Signals(received[0]).name
                        _ending(controller, ids, f"{name} received")
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    _ending(controller, ids, f"timeout after {ns.timeout:g} s")
                    break
        finally:
            controller.close()  # ends whatever still runs: SIGTERM, then SIGKILL after --grace
            recorded = stop_recording() is None  # said already, as the notice it made
    rows = [controller.row(i) for i in ids]
    print_summary(rows)
    if received:
        return 128 + received[0]
    # A recording cut short fails the run too: a script would go on to use half a file.
    clean = recorded and all(r.state is ProcState.EXITED for r in rows)
    return EXIT_OK if clean else EXIT_FAILED


@contextlib.contextmanager
def stop_signals(on_signal: Callable[[], None] | None = None) -> Iterator[list[int]]:
    """While inside, Ctrl+C, SIGTERM and SIGHUP (the terminal closed) are noted in the list
    for the headless command to see (and `on_signal` is called): it ends its children and
    stops. So is a stdout that can no longer be written, as SIGPIPE (closed_output)."""
    received: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if on_signal is not None:
            on_signal()

    previous = {
        s: signal.signal(s, note) for s in heeded(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    stop_listening = on_closed(lambda: note(signal.SIGPIPE, None))
    try:
        yield received
    finally:
        stop_listening()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def asked_twice(received: Sequence[int]) -> bool:
    """A Ctrl+C or SIGTERM after what began the shutdown: not a closed stdout and stderr
    (each told as SIGPIPE), nor a SIGHUP, which `2>&1 | head` or a closed terminal bring
    without asking."""
    return len(received) > 1 and received[-1] in (signal.SIGINT, signal.SIGTERM)


def _timeout_ends_at(controller: Controller, ids: Sequence[int], timeout: float) -> float | None:
    """When --timeout ends the children (wall clock): `timeout` after the last of them
    started, once each has started or ended. Counted from before spawn(), the fork
    server's own start came out of the children's time: "timeout after 1 s" ended
    children of 0.88 s (their WALL), and one ignoring SIGTERM was killed 1.83 s after
    start() with 1 s of grace."""
    rows = [controller.row(i) for i in ids]
    if any(r.started_at is None and not r.state.is_over for r in rows):
        return None
    return max((r.started_at for r in rows if r.started_at is not None), default=0.0) + timeout


def _ending(controller: Controller, ids: Sequence[int], why: str) -> None:
    """Told through the controller: by the printer, whole between children's lines (a
    print from this thread landed inside one), and recorded."""
    alive = plural(_alive(controller, ids), "child")
    controller.emit_event(Notice("info", f"{why}: ending {alive}", time.time()))


def _alive(controller: Controller, ids: Sequence[int]) -> int:
    return sum(1 for i in ids if controller.row(i).state.is_live)


def print_summary(rows: Sequence[ProcessRow]) -> None:
    table = [("NAME", "PID", "EXIT", "STATE", "WALL", "CPU")]
    for row in rows:
        table.append(
            (
                escape_controls(row.name),
                str(row.pid or ""),
                describe_exit(row.exitcode),
                str(row.state),
                fmt.seconds(row.wall_time(time.time())),
                fmt.cpu_time(row),
            )
        )
    print()
    for line in columns(table, left=4):
        print(line)
    figures = batch_figures(rows, time.time(), usable_cpus())
    lines = batch_lines(figures)
    failed = sum(1 for r in rows if r.state is not ProcState.EXITED)
    if failed:
        lines[0] += f"; {failed} did not exit cleanly"
    print("\n".join(lines))
    for row in rows:
        if row.error:
            print(escape_controls(f"  {row.name} {row.pid or ''}: {traceback_words(row)}"))
