"""`proclab watch`: run a program as it is and watch every process it starts.

Headless (`--headless`), the tree's events and every process's output stream as lines
(`--json`: one JSON object each) and a summary ends it; the exit status is the
program's. Without it, the app opens on the program.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from proclab.core.columns import columns
from proclab.core.defaults import DEFAULT_GRACE_S
from proclab.core.errors import ProclabError
from proclab.core.exits import describe_exit, traceback_words
from proclab.core.model import (
    ClientAccepted,
    ClientClosed,
    Event,
    Exited,
    Notice,
    OutputLine,
    ProcessCall,
    ProcessRow,
    ProcState,
    RowUpdated,
    ServerListening,
    Spawned,
    StateChanged,
)
from proclab.core.output import escape_controls
from proclab.core.recording import encode, record_into
from proclab.core.watch.program import WatchedProgram, WatchedTree, WatchError
from proclab.core.watch.rows import command_known
from proclab.core.words import plural
from proclab.tui import fmt
from proclab.tui.call_words import join_outcome
from proclab.tui.closed_output import unsaid
from proclab.tui.commands.options import add_record_argument, add_refresh_argument, positive_float

if TYPE_CHECKING:
    from proclab.core.watch.attach import AttachedTree

HELP = "run your own program as it is and watch every process it starts"
DESCRIPTION = (
    "Run COMMAND (or a Python script, under the interpreter proclab runs on) as it is, in a"
    " session of its own, stdin from /dev/null (--stdin FILE to feed it), and watch its whole"
    " process tree: every process it starts, what multiprocessing says each one is, the"
    " calls between them (start, join, terminate, kill) and every line each one prints."
    " Quitting ends the whole tree (SIGTERM, then SIGKILL after --grace)."
    " Examples: proclab watch -- python day36.py; proclab watch --headless examples/ten_sleepers.py"
)
EXIT_USAGE = 2
TARGET_CHARS = 40  # a command line in the summary's TARGET column


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_view_arguments(parser)
    parser.add_argument(
        "--stdin",
        default=None,
        metavar="FILE",
        help="the program's standard input (default /dev/null: it never reads the terminal)",
    )
    parser.add_argument(
        "argv",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND [ARG...] | SCRIPT.py [ARG...]",
        help="the program to run (after --), or a Python script",
    )


def add_view_arguments(parser: argparse.ArgumentParser) -> None:
    """What `watch` and `attach` share."""
    parser.add_argument(
        "--headless",
        action="store_true",
        help="no app: stream the tree's events and output as lines, then a summary",
    )
    parser.add_argument(
        "--json", action="store_true", help="with --headless: one JSON object per line"
    )
    add_refresh_argument(parser, "samples")
    parser.add_argument(
        "--grace",
        type=positive_float,
        default=DEFAULT_GRACE_S,
        metavar="S",
        help=f"seconds between SIGTERM and SIGKILL when ending the tree (default {DEFAULT_GRACE_S:g})",
    )
    add_record_argument(parser)


def command_of(argv: Sequence[str]) -> list[str]:
    """After `--`, the command as given; else a SCRIPT.py runs under proclab's Python
    (which must exist: Python would start only to say it cannot open it)."""
    words = list(argv)
    if words and words[0] == "--":
        return words[1:]
    if words and words[0].endswith(".py"):
        if not os.path.exists(words[0]):
            raise WatchError(f"{words[0]}: no such file")
        if not os.path.isfile(words[0]):  # it exists: "no such file" was untrue
            raise WatchError(f"{words[0]}: not a file (a folder or a device): give a script")
        return [sys.executable, *words]
    return words


def run(ns: argparse.Namespace) -> int:
    prog = "proclab watch"
    try:
        program = WatchedProgram(
            command_of(ns.argv),
            stdin=ns.stdin,
            sample_interval=ns.refresh,
            grace=ns.grace,
        )
    except ProclabError as exc:
        return refuse(prog, str(exc))
    return run_watched(program, ns, prog)


def refuse(prog: str, reason: str) -> int:
    """The one line on stderr; under `proclab web`, in the tab too, whose user sees no
    stderr (the tab had stayed blank)."""
    from proclab.tui.terminal import in_browser

    line = f"{prog}: {reason}"
    print(line, file=sys.stderr)
    if in_browser():
        from proclab.tui.refusal_app import refuse_in_browser

        refuse_in_browser(line)
    return EXIT_USAGE


def run_watched(source: WatchedProgram | AttachedTree, ns: argparse.Namespace, prog: str) -> int:
    """The app on the tree, or --headless; recorded into --record FILE from before it
    starts to after it closed (its last events are the tree's ends)."""
    from proclab.tui.terminal import NO_TERMINAL, has_keyboard

    if not ns.headless and not has_keyboard():  # before --record makes its file
        source.close()
        print(f"{prog}: {NO_TERMINAL} (over ssh: ssh -t); --headless needs none", file=sys.stderr)
        return EXIT_USAGE
    try:
        stop_recording = record_into(source, ns.record)
    except ProclabError as exc:
        source.close()
        return refuse(prog, str(exc))
    try:
        if not ns.headless:
            return run_app(source, ns, prog)
        return run_headless(source, ns, source.start)
    finally:
        cut_short = stop_recording()
        if cut_short is not None:  # the program's exit status stands (its, not proclab's)
            with contextlib.suppress(OSError):
                print(f"{prog}: {cut_short}", file=sys.stderr)


def run_app(source: WatchedProgram | AttachedTree, ns: argparse.Namespace, prog: str) -> int:
    """The app on the watched tree: the source starts (launches, or attaches) once the app
    listens, so the program's first calls reach it, and ends (ends its tree, if it owns
    it) however the app ends."""
    from proclab.tui.terminal import private_terminal
    from proclab.tui.watch_app import WatchApp  # textual is imported only for the app

    app = WatchApp(source, source.start, refresh=ns.refresh)
    try:
        with private_terminal():
            app.run()
    finally:
        source.close()  # whatever ended the app: a launched tree ends, an attached one stays
    if app.start_error is not None:
        print(f"{prog}: {app.start_error}", file=sys.stderr)
        return EXIT_USAGE
    for line in app.shutdown_log:  # on the restored terminal, for the scrollback
        with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
            print(f"{prog}: {line}", file=sys.stderr)
    # The program's, as --headless gives it (a tester's: q after it exited 3 gave 0); a
    # signal that ended proclab itself says so first.
    return app.return_code or exit_status(source)


def run_headless(source: WatchedTree, ns: argparse.Namespace, start: Callable[[], object]) -> int:
    """Stream events and output until the tree is done (or a signal, or a closed stdout),
    end it if the source ends its tree, print the summary; the program's status."""
    from proclab.tui.commands.run import asked_twice, stop_signals

    printer = _Printer(source, json_lines=ns.json)
    source.subscribe(printer)

    def again() -> None:  # a second Ctrl+C (or SIGTERM) while the tree ends: SIGKILL now
        if asked_twice(received):
            source.hurry()

    with stop_signals(again) as received:
        try:
            try:
                start()
            except ProclabError as exc:
                print(f"proclab: {exc}", file=sys.stderr)
                return EXIT_USAGE
            told = False  # the program (its roots) had ended: its status is known
            while not source.wait(0.05):
                if received:
                    told = told or all(r.state.is_over for r in source.root_rows())
                    if received[0] != signal.SIGPIPE:
                        name = signal.Signals(received[0]).name
                        count = plural(source.running_count(), "process")
                        what = (
                            f"ending {count}" if source.ends_on_quit else f"leaving {count} running"
                        )
                        _notice(source, f"{name} received: {what}")
                    break
                if not told and all(_has_ended(r) for r in source.root_rows()):
                    told = True
                    left = source.running_count()
                    if left:
                        runs, them = ("runs", "it") if left == 1 else ("run", "them")
                        ctrl_c = (
                            f"Ctrl+C ends {them}"
                            if source.ends_on_quit
                            else f"Ctrl+C stops watching and leaves {them} running"
                        )
                        _notice(
                            source,
                            f"the program has ended; {plural(left, 'process')} it started"
                            f" still {runs}: waiting for {them} ({ctrl_c})",
                        )
        finally:
            source.close()
    rows = sorted(source.rows(), key=lambda r: r.id)
    printer.summary(rows, source)
    # Ctrl+C once the program has ended, while processes it left run on, ends them, not
    # the program: its status stands. A closed pipe is said as a pipeline's tools say it.
    if received and (not told or received[0] == signal.SIGPIPE):
        return 128 + received[0]
    return exit_status(source)


def _has_ended(row: ProcessRow) -> bool:
    """Ended, its status read or not: an attached program's parent (a shell) may not
    have read it yet, and it has ended all the same."""
    return row.state.is_over or row.state is ProcState.ZOMBIE


def _notice(source: WatchedTree, text: str) -> None:
    """Told through the source: in its order, and in a recording."""
    source.emit_event(Notice("info", text, time.time()))


def exit_status(source: WatchedTree) -> int:
    """The program's own: its exit code, or 128+N as a shell says for signal N."""
    roots = source.root_rows()
    code = roots[0].exitcode if roots else None
    if code is None:
        return 0 if not source.ends_on_quit else 1
    return 128 - code if code < 0 else code


class _Printer:
    """Lines from the source's threads: output under its pid, the tree's events, told in
    the order the source hands them out (core/watch/in_order.py: a process's end after
    the lines it printed)."""

    def __init__(self, source: WatchedTree, json_lines: bool) -> None:
        self._source = source
        self._json = json_lines
        self._lock = threading.Lock()
        self._described: set[int] = set()  # rows whose multiprocessing facts were shown
        self._started: set[int] = set()  # rows whose start was shown
        self._zombie_since: dict[int, float] = {}  # monotonic time each was seen a zombie
        self._zombie_for: dict[int, float] = {}  # seconds, once its end was told
        self._ended: dict[int, str] = {}  # the end each row was last shown with
        self._commands: dict[int, tuple[str, str]] = {}  # row -> (name, command) last shown

    def __call__(self, event: Event) -> None:
        if isinstance(event, OutputLine):
            if event.id not in self._started:  # read before the walk's word on its start
                self._started_line(self._source.row(event.id))
            if self._json:
                self._emit(sys.stdout, {"type": "output", **encode(event)})
            else:
                stream = sys.stdout if event.stream == "stdout" else sys.stderr
                self._write(stream, fmt.printed_line(event))
        elif isinstance(event, Notice):
            if self._json:
                self._emit(sys.stdout, {"type": "notice", **encode(event)})
            elif not unsaid(event):
                self._write(sys.stderr, f"proclab: {escape_controls(event.text)}")
        elif isinstance(event, Spawned):
            self._started_line(event.row)
            if event.row.state is ProcState.ZOMBIE:  # found so by a walk
                self._zombie_since.setdefault(event.row.id, time.monotonic())
        elif isinstance(event, Exited):
            self._ended_line(event.row)
        elif isinstance(event, ServerListening | ClientAccepted | ClientClosed):
            if self._json:
                self._emit(sys.stdout, {"type": "server", **encode(event)})
            else:
                from proclab.core.server.tcp import describe_event

                self._write(sys.stdout, escape_controls(f"# {describe_event(event)}"))
        elif isinstance(event, ProcessCall):
            if self._json:
                self._emit(sys.stdout, {"type": "call", **encode(event)})
            else:
                self._write(sys.stdout, escape_controls(f"= {call_text(event)}"))
        elif isinstance(event, RowUpdated | StateChanged):
            row = event.row
            self._execd_line(row)
            if row.state is ProcState.ZOMBIE:
                self._zombie_since.setdefault(row.id, time.monotonic())
            if not self._described_line(row) and (
                isinstance(event, StateChanged) and event.old is ProcState.ENDED
            ):
                self._ended_line(row)  # its status came after its end

    def _described_line(self, row: ProcessRow) -> bool:
        """What multiprocessing made of it, once, when known whole: a child's own word
        (its target) can come before its parent's (args, start method), which then never
        reached the line (4 runs of 9, a fork child). Or at its end, with what is known."""
        mp = row.mp
        if mp is None or row.id in self._described or not (mp.target or mp.role):
            return False
        if not (mp.role or mp.method or row.state.is_over):
            return False  # its parent's word is yet to come
        self._described.add(row.id)
        self._started_line(row)
        self._event("multiprocessing", row, f"{row.name} {row.pid}: {mp_text(row)}")
        return True

    def _started_line(self, row: ProcessRow) -> None:
        """Once, and before anything else of the row: a walk's Spawned, handed out after
        the registry's lock, can go out after another thread's word on the same row."""
        if row.id in self._started:
            return
        self._started.add(row.id)
        roots = self._source.root_rows()
        for first in roots:
            # The program started before anything of its tree: a fork server's child heard
            # of by the hook's thread could be told before the root's Spawned went out.
            if first.id not in self._started:
                self._started_line(first)
        self._commands[row.id] = (row.name, row.command)
        parent = self._source.row(row.parent) if row.parent is not None else None
        root = parent is None and any(r.id == row.id for r in roots)
        self._event("started", row, _started_text(row, parent, root))

    def _execd_line(self, row: ProcessRow) -> None:
        """A process shown already that runs another program now (it exec'd); not one
        whose command was not known when it was shown, and is now (a fork child first
        told of by its parent's start(): it runs what its parent ran)."""
        shown = self._commands.get(row.id)
        if shown is not None and row.command != shown[1]:
            self._commands[row.id] = (row.name, row.command)
            if command_known(shown[1]):
                self._event("exec", row, f"{shown[0]} {row.pid} exec'd: {row.command}")

    def _ended_line(self, row: ProcessRow) -> None:
        """Once for each end known: a parent's word on the status can come in before the
        walk that saw the end hands out its event, which then tells the same end again."""
        self._started_line(row)
        self._described_line(row)
        since = self._zombie_since.pop(row.id, None)
        if since is not None:  # measured once: an end told again says the same
            self._zombie_for[row.id] = time.monotonic() - since
        text = _ended_text(row, self._zombie_for.get(row.id))
        if self._ended.get(row.id) != text:
            self._ended[row.id] = text
            self._event("ended", row, text)

    def _event(self, kind: str, row: ProcessRow, text: str) -> None:
        if self._json:
            self._emit(sys.stdout, {"type": kind, "row": encode(row)})
        else:
            self._write(sys.stdout, escape_controls(f"{_MARKS[kind]} {text}"))

    def _emit(self, stream: TextIO, obj: dict[str, object]) -> None:
        # Escaped whole, C1 controls and bidi overrides too (a child's OSC 52 as \x9d…\x9c
        # reached the terminal raw): see recording.event_line.
        self._write(stream, json.dumps(obj, ensure_ascii=True))

    def _write(self, stream: TextIO, text: str) -> None:
        with self._lock:  # lines from several threads, each whole
            print(text, file=stream, flush=True)

    def summary(self, rows: Sequence[ProcessRow], source: WatchedTree) -> None:
        if self._json:
            self._emit(sys.stdout, {"type": "summary", **summary_figures(rows, source)})
            return
        with self._lock:
            print_summary(rows, source)


_MARKS = {"started": "+", "ended": "-", "multiprocessing": "*", "exec": "~"}

# A zombie's time is said at its end past this: a child reaped by a join that waited for
# it is one for microseconds, and a line for each made the stream noise (a tester's); a
# reaper that polls (a shell, a loop with a short sleep) keeps one a tick or two.
ZOMBIE_SAID_S = 0.5


def _started_text(row: ProcessRow, parent: ProcessRow | None, root: bool) -> str:
    # A child can be heard of before its parent is (a fork server's, under load), or its
    # parent may never be known (it ended before any walk, and nothing hooked told of it).
    if parent is not None:
        of = f" (child of {parent.name} {parent.pid})"
    else:
        of = "" if root else " (its parent not known yet)"
    return f"{row.name} {row.pid}{of}: {row.command}"


def _ended_text(row: ProcessRow, zombie: float | None = None) -> str:
    """`zombie`: seconds it was seen a zombie (ended, its status not read) before this."""
    wall = row.wall_time(time.time())
    after = f" after {wall:.3f} s" if wall is not None else ""
    notes = [row.exit_note] if row.exit_note else []
    if wall is not None and row.end_unseen:
        after = f" within {wall:.3f} s"
        notes.insert(0, fmt.ENDED_UNSEEN)
    if zombie is not None and zombie >= ZOMBIE_SAID_S:
        # Ended, its status not read: a child left unreaped for 3 s read as one that
        # "ended within 0.05 s", and nothing more.
        notes.append(f"a zombie for {zombie:.1f} s before it was reaped")
    if row.exitcode is None:
        return f"{row.name} {row.pid} ended{after}: {'; '.join(notes)}"
    note = f" ({'; '.join(notes)})" if notes else ""
    return f"{row.name} {row.pid} exit {describe_exit(row.exitcode)}{after}{note}"


def mp_text(row: ProcessRow) -> str:
    mp = row.mp
    if mp is None:
        return ""
    if mp.role:
        return f"multiprocessing's {mp.role.replace('_', ' ')}"
    parts = []
    if mp.target:
        parts.append(f"target {mp.target}")
    if mp.args not in (None, "()"):
        parts.append(f"args {mp.args}")
    if mp.kwargs not in (None, "{}"):
        parts.append(f"kwargs {mp.kwargs}")
    if mp.daemon:
        parts.append("daemon")
    if mp.method:
        parts.append(mp.method)
    if mp.pool_kind:
        parts.append(f"{mp.pool_kind} worker")
    if mp.ran_after is not None:
        parts.append(f"ran {mp.ran_after * 1000:.1f} ms after start()")
    return ", ".join(parts)


def call_text(call: ProcessCall) -> str:
    who = f"{call.name} {call.pid}"
    child = f"{call.child_name} {call.child_pid}"
    if call.call == "start":
        return f"{who}: start() of {child} took {call.took * 1000:.2f} ms"
    if call.call == "join":
        timeout = f"timeout={call.timeout:g}" if call.timeout is not None else ""
        return f"{who}: join({timeout}) on {child} blocked {call.took:.6f} s{join_outcome(call)}"
    return f"{who}: {call.call}() of {child}"


def summary_figures(rows: Sequence[ProcessRow], source: WatchedTree) -> dict[str, object]:
    now = time.time()
    roots = source.root_rows()
    root = roots[0] if roots else None
    # A process that ended before any walk saw it has no start proclab knows: its life is
    # counted apart, not as 0.
    walls = [r.wall_time(now) for r in rows]
    # Ended before proclab first read it in /proc: its wall time is how long it lived at most
    at_most = [r for r, w in zip(rows, walls, strict=True) if w is not None and r.end_unseen]
    cpu = [r.sample.cpu_time if r.sample is not None else None for r in rows]
    # CPU read while it ran, of a process that has ended: it used more (fmt.cpu_time's ≥)
    bounds = [r for r in rows if r.cpu_at_least]
    return {
        "program_wall": root.wall_time(now) if root is not None else None,
        "exit": root.exitcode if root is not None else None,
        "processes": len(rows),
        "lives": sum(w for w in walls if w is not None),
        "lives_unknown": sum(1 for w in walls if w is None),
        "lives_upper_bounds": len(at_most),
        "cpu": sum(c for c in cpu if c is not None),
        "cpu_unknown": sum(1 for c in cpu if c is None),
        "cpu_lower_bounds": len(bounds),
        "rows": [encode(r) for r in rows],
    }


def print_summary(rows: Sequence[ProcessRow], source: WatchedTree) -> None:
    pids = {r.id: r.pid for r in rows}
    table = [("NAME", "PID", "PARENT", "TARGET", "EXIT", "WALL", "CPU")]
    for row in rows:
        table.append(
            (
                escape_controls(row.name, tabs=True),
                str(row.pid or ""),
                str(pids.get(row.parent) or "") if row.parent is not None else "",
                escape_controls(_target(row), tabs=True),
                describe_exit(row.exitcode) if row.exitcode is not None else str(row.state),
                fmt.wall_time(row, time.time()),
                fmt.cpu_time(row),
            )
        )
    print()
    for line in columns(table, left=5):
        print(line)
    figures = summary_figures(rows, source)
    wall = figures["program_wall"]
    roots = source.root_rows()
    still = " so far, and still runs" if roots and not _has_ended(roots[0]) else ""
    bounded = figures["lives_upper_bounds"]
    print(
        f"the program ran {fmt.seconds(wall) if isinstance(wall, float) else '?'}{still};"
        f" its {plural(len(rows), 'process')} lived {'at most ' if bounded else ''}"
        f"{fmt.seconds(figures['lives'])} in all"  # type: ignore[arg-type]
        + (f" ({figures['lives_unknown']} not known)" if figures["lives_unknown"] else "")
        + f" and used {'at least ' if figures['cpu_lower_bounds'] or figures['cpu_unknown'] else ''}"
        + f"{fmt.seconds(figures['cpu'])} of CPU"  # type: ignore[arg-type]
        + (f" ({figures['cpu_unknown']} never measured)" if figures["cpu_unknown"] else "")
    )
    unknown = [r for r in rows if r.exitcode is None and r.state.is_over]
    for row in unknown:
        print(escape_controls(f"  {row.name} {row.pid}: {row.exit_note}"))
    if figures["cpu_lower_bounds"]:
        print(
            f"  CPU marked ≥ for {plural(figures['cpu_lower_bounds'], 'process')}: read while it"  # type: ignore[arg-type]
            " ran (its parent, not proclab, reaped it), so it used more: what it ran after"
            " that reading, up to the refresh interval on each of its threads"
        )
    if bounded:
        print(
            f"  WALL marked ≤ for {plural(bounded, 'process')}: {fmt.ENDED_UNSEEN},"  # type: ignore[arg-type]
            " so it ended sooner, when is not known"
        )
    for row in rows:
        if row.error:
            print(escape_controls(f"  {row.name} {row.pid}: {traceback_words(row)}"))


def _target(row: ProcessRow) -> str:
    if row.mp is not None:
        if row.mp.role:
            return f"({row.mp.role})"
        if row.mp.target:
            return row.mp.target
        if row.mp.method:
            return f"(a multiprocessing {row.mp.method} child)"
    return (
        row.command if len(row.command) <= TARGET_CHARS else row.command[: TARGET_CHARS - 1] + "…"
    )
