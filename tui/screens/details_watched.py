"""The details of a process proclab watches but did not start (proclab watch): its
command line, what multiprocessing said about it, the calls made on it and by it as a
timeline, and how it ended, said only as far as someone saw it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from proclab.core.model import MpFacts, ProcessCall, ProcessRow, ProcState
from proclab.tui import fmt
from proclab.tui.call_words import call_moments, took, who
from proclab.tui.widgets.process_tree import POOL_WORDS, shown_name

HOW_MEASURED = "? (help) says how each figure is measured"
SHOWN_CALLS = 24  # moments in a timeline; a parent of hundreds shows its latest

RowOf = Callable[[int], ProcessRow | None]


def name_of(rec_id: int | None, row_of: RowOf) -> str:
    row = row_of(rec_id) if rec_id is not None else None
    return who(shown_name(row), row.pid) if row is not None else "a process not in the table"


def watched_lines(
    row: ProcessRow,
    calls_on: Sequence[ProcessCall],
    calls_by: Sequence[ProcessCall],
    row_of: RowOf,
    now: float,
) -> list[tuple[str, str]]:
    """(label, value) lines before the figures every process has (CPU, memory...)."""
    parent = (
        name_of(row.parent, row_of)
        if row.parent is not None
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
        ("", _ran_for(row, now)),
    ]
    moments = [
        (t, f"{fmt.clock(t)}  {who(call.name, call.pid)}: {text}")
        for call in calls_on
        for t, text in call_moments(call, "it")
    ]
    lines += _timeline("Calls", moments)
    moments = [
        (t, f"{fmt.clock(t)}  {text}")
        for call in calls_by
        for t, text in call_moments(call, who(call.child_name, call.child_pid))
    ]
    lines += _timeline("It called", moments)
    if calls_on or calls_by:
        lines.append(("", HOW_MEASURED))
    return lines


def _ran_for(row: ProcessRow, now: float) -> str:
    if row.end_unseen:
        return f"ran for at most {fmt.seconds(row.wall_time(now))}: {fmt.ENDED_UNSEEN}"
    return f"ran for {fmt.seconds(row.wall_time(now))}"


def _mp_lines(mp: MpFacts, over: bool) -> list[tuple[str, str]]:
    if mp.role:
        return [("Role", f"multiprocessing's {mp.role}: one of its own helper processes")]
    lines: list[tuple[str, str]] = []
    if mp.name:
        lines.append(("Name", f"{mp.name} (its Process.name)"))
    if mp.target:
        lines.append(("Target", mp.target))
    if mp.args is not None or mp.kwargs is not None:
        lines += [("args", mp.args or "()"), ("kwargs", mp.kwargs or "{}")]
    daemon = "not said" if mp.daemon is None else ("yes" if mp.daemon else "no")
    lines.append(("Start", f"method {mp.method or 'not said'}   daemon {daemon}"))
    if mp.ran_after is not None:
        lines.append(("", f"ran its target {took(mp.ran_after)} after its parent called start()"))
    if mp.pool_kind:
        lines.append(("Pool", _pool_words(mp, over)))
    return lines


def _pool_words(mp: MpFacts, over: bool) -> str:
    kind = POOL_WORDS.get(mp.pool_kind or "", mp.pool_kind)
    what = f"a worker of a {mp.pool_kind} ({kind} worker)"
    if mp.tasks is None:
        return f"{what}: it has not said how many tasks it ran"
    counts = f"{mp.tasks:,} tasks done, {mp.calls or 0:,} calls of the function in them"
    if mp.counts_final:
        return f"{what}: {counts} (final: it said so at its end)"
    if over:
        return f"{what}: at least {counts} (its last report; the pool ended it: ? explains)"
    return f"{what}: {counts} so far"


def _timeline(label: str, moments: list[tuple[float, str]]) -> list[tuple[str, str]]:
    """One line a moment, oldest first; of many, the latest SHOWN_CALLS."""
    if not moments:
        return []
    moments.sort(key=lambda moment: moment[0])
    texts = [text for _t, text in moments[-SHOWN_CALLS:]]
    if len(moments) > SHOWN_CALLS:
        texts.insert(0, f"… {len(moments) - SHOWN_CALLS:,} earlier (the output log has them)")
    return [(label if i == 0 else "", text) for i, text in enumerate(texts)]


def watched_exit(row: ProcessRow, reason: str) -> str:
    """How it ended, and who saw its exit status; one nobody reported is said as such."""
    if row.state is ProcState.ENDED:
        note = row.exit_note or "exit status not known"
        return f"ended; {note} (? explains)"
    return f"{reason} ({row.exit_note})" if row.exit_note else reason
