"""The details of a process proclab watches but did not start (proclab watch): its
command line, what multiprocessing said about it, its parent's calls on it as a timeline,
and how it ended, said only as far as someone saw it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from proclab.core.model import MpFacts, ProcessCall, ProcessRow
from proclab.tui import fmt
from proclab.tui.call_words import call_moments, who
from proclab.tui.widgets.process_tree import POOL_WORDS, shown_name

HOW_MEASURED = "? (help) says how each figure is measured"
SEEN_THROUGH = {"join": "join()", "reaped": "reaping it (wait/waitpid)"}

RowOf = Callable[[int], ProcessRow | None]


def name_of(rec_id: int | None, row_of: RowOf) -> str:
    row = row_of(rec_id) if rec_id is not None else None
    return who(shown_name(row), row.pid) if row is not None else who(None, None)


def watched_lines(
    row: ProcessRow, calls: Sequence[ProcessCall], row_of: RowOf, now: float
) -> list[tuple[str, str]]:
    """(label, value) lines before the figures every process has (CPU, memory...)."""
    parent = (
        name_of(row.tree_parent, row_of)
        if row.tree_parent is not None
        else "none in the table (the program proclab started, or one it adopted)"
    )
    lines = [
        ("Process", f"{shown_name(row)}   pid {row.pid or '—'}   {row.state}"),
        ("Command", row.command or "—"),
        ("Parent", parent),
    ]
    if row.mp is not None:
        lines += _mp_lines(row.mp, row.state.is_over)
    lines += [
        ("Times", f"started {fmt.clock(row.started_at)}   ended {fmt.clock(row.ended_at)}"),
        ("", f"ran for {fmt.seconds(row.wall_time(now))}"),
    ]
    lines += call_lines(row, calls, row_of)
    return lines


def _mp_lines(mp: MpFacts, over: bool) -> list[tuple[str, str]]:
    if mp.role:
        return [("Role", f"multiprocessing's {mp.role}: one of its own helper processes")]
    lines: list[tuple[str, str]] = []
    if mp.name:
        lines.append(("Name", f"{mp.name} (its Process.name)"))
    if mp.target:
        lines.append(("Target", mp.target))
    if mp.args or mp.kwargs:
        lines += [("args", mp.args or "()"), ("kwargs", mp.kwargs or "{}")]
    daemon = "not said" if mp.daemon is None else ("yes" if mp.daemon else "no")
    lines.append(("Start", f"method {mp.method or 'not said'}   daemon {daemon}"))
    if mp.pool_kind:
        lines.append(("Pool", _pool_words(mp, over)))
    return lines


def _pool_words(mp: MpFacts, over: bool) -> str:
    kind = POOL_WORDS.get(mp.pool_kind or "", mp.pool_kind)
    what = f"a worker of a {mp.pool_kind} ({kind} worker)"
    if mp.tasks is None:
        return f"{what}: it has not said how many tasks it ran"
    counts = f"{mp.tasks:,} tasks, {mp.calls or 0:,} calls of the function in them"
    if mp.final:
        return f"{what}: {counts} (final: it said so at its end)"
    if over:
        return f"{what}: at least {counts} (its last report; the pool ended it: ? explains)"
    return f"{what}: {counts} so far"


def call_lines(
    row: ProcessRow, calls: Sequence[ProcessCall], row_of: RowOf
) -> list[tuple[str, str]]:
    """The parent's calls on it, one line a moment, oldest first."""
    child = "it"
    moments: list[tuple[float, str]] = []
    for call in calls:
        caller = "" if call.kind == "run" else f"{name_of(call.caller, row_of)}: "
        moments += [(t, f"{fmt.clock(t)}  {caller}{text}") for t, text in call_moments(call, child)]
    if not moments:
        return [("Calls", "none seen")] if row.mp is not None and not row.mp.role else []
    moments.sort(key=lambda moment: moment[0])
    lines = [("Calls" if i == 0 else "", text) for i, (_t, text) in enumerate(moments)]
    return [*lines, ("", HOW_MEASURED)]


def watched_exit(row: ProcessRow, calls: Sequence[ProcessCall], row_of: RowOf, reason: str) -> str:
    """How it ended, with who saw it; an exit status nobody reported is said as such."""
    if row.exitcode is None and row.state.is_over:
        parent = name_of(row.tree_parent, row_of) if row.tree_parent is not None else None
        whose = f"its parent, {parent}," if parent else "its parent"
        return (
            f"ended; its exit status went to {whose} which did not report it"
            " (only a parent can read it: ? explains)"
        )
    seen = [
        call
        for call in calls
        if call.kind in SEEN_THROUGH and call.exitcode is not None and call.exitcode == row.exitcode
    ]
    if row.exitcode is None or not seen:
        return reason
    first = min(seen, key=lambda call: call.returned)
    return f"{reason} (seen by {name_of(first.caller, row_of)} through {SEEN_THROUGH[first.kind]})"
