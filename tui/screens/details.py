"""Everything known about one process: its spec, timings, figures, how it ended, its
traceback and its last lines of output. Kept up to date while open."""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from proclab.core.batch import BatchFigures
from proclab.core.calls import CallLog
from proclab.core.classify import classify, cpu_demand, runnable_time
from proclab.core.cpus import format_cpu_list
from proclab.core.exits import describe_exit, signal_name, traceback_ended_it, traceback_words
from proclab.core.model import OutputLine, ProcessRow, ProcState
from proclab.core.output import escape_controls, on_screen
from proclab.core.words import plural
from proclab.tui import fmt
from proclab.tui.batch_words import batch_lines
from proclab.tui.screens.details_watched import RowOf, watched_exit, watched_lines
from proclab.tui.theme import resolve
from proclab.tui.widgets.process_table import STATE_STYLES
from proclab.tui.widgets.process_tree import shown_name

LAST_LINES = 30


_LIVE_WORDS = {
    ProcState.STARTING: "still starting",
    ProcState.STOPPED: "stopped (paused by SIGSTOP): p resumes it",
    ProcState.ZOMBIE: "ended, not reaped yet",
}


def live_words(row: ProcessRow) -> str:
    """Where a child is now, in words: 'still running', 'stopped (paused...)'..."""
    if row.state.is_over:
        return str(row.state)
    return _LIVE_WORDS.get(row.state, "still running")


def exit_reason(row: ProcessRow) -> str:
    if row.exitcode is None:
        if row.state.is_over:  # it never started: the error says why
            return row.error or str(row.state)
        reason = f"not yet: {live_words(row)}"
        if row.error:
            reason += f"; it printed a traceback ({row.error})"
        return reason
    reason = f"exit code {describe_exit(row.exitcode)}"
    if row.exitcode < 0:
        # The signal's own meaning, not only the state's word: a child that crashed
        # (SIGSEGV, SIGABRT) read "ended by signal SIGSEGV (killed)", as if someone had.
        number = -row.exitcode
        meaning = signal.strsignal(number) if 0 < number < signal.NSIG else None
        reason = f"ended by signal {signal_name(number)}" + (f": {meaning}" if meaning else "")
    elif row.exitcode == 0:
        reason = "returned normally (exit code 0)"
    if row.error:
        reason += (": " if traceback_ended_it(row) else "; ") + traceback_words(row)
    return reason


def describe(
    row: ProcessRow,
    output: Sequence[OutputLine],
    now: float,
    batch: BatchFigures | None = None,
    calls: CallLog | None = None,
    row_of: RowOf = lambda _id: None,
) -> list[tuple[str, str]]:
    """(label, value) lines of the details pane; plain text so tests can read them.
    `batch`: the figures of the children started with it, if it was. A watched process
    (no spec): `calls` made on it and by it, `row_of` names its parent."""
    spec = row.spec
    if spec is None:
        log = calls or CallLog()
        lines = watched_lines(row, log.on(row.id), log.by(row.id), row_of, now)
        lines += figure_lines(row, now)
        return [*lines, ("Ended", watched_exit(row, exit_reason(row)))]
    lines = [
        ("Process", f"{row.name}   pid {row.pid or '—'}   {row.state}"),
        ("Target", f"{spec.target.text}" + (f"   (started by {row.tag})" if row.tag else "")),
        ("Call", spec.call_text),
        ("args", repr(spec.args)),
        ("kwargs", repr(dict(spec.kwargs))),
        (
            "Start",
            f"method {spec.method}   daemon {'yes' if spec.daemon else 'no'}   {_pinning(spec.affinity)}   in {spec.cwd}",
        ),
        (
            "Times",
            f"asked {fmt.clock(row.created_at)}   started {fmt.clock(row.started_at)}   ended {fmt.clock(row.ended_at)}",
        ),
        (
            "",
            f"start() took {fmt.seconds(row.start_latency)}   ran for {fmt.seconds(row.wall_time(now))}"
            + (_CLOCK_BACK if _ended_before_start(row) else ""),
        ),
    ]
    lines += figure_lines(row, now)
    if batch is not None:
        times, *verdict = batch_lines(batch)
        lines.append(("Batch", f"one of the {times}"))
        lines += [("", line) for line in verdict]
    lines.append(("Ended", exit_reason(row)))
    return lines


def figure_lines(row: ProcessRow, now: float) -> list[tuple[str, str]]:
    """What was measured of any process: CPU, waiting, memory, switches, kind."""
    lines: list[tuple[str, str]] = []
    sample = row.sample
    if sample is not None:
        wall = row.wall_time(now) or 0.0
        kind = classify(row, now)
        runnable = runnable_time(row, now) or 0.0
        demand = cpu_demand(sample.cpu_time, sample.run_delay, runnable)
        stopped = wall - runnable
        of = (
            f"the {fmt.seconds(runnable)} it was not stopped (stopped {fmt.seconds(stopped)}"
            f"{', as seen at sampler ticks: within a tick either way' if row.stops_at_ticks else ''})"
            if stopped > 0
            else f"its {fmt.seconds(wall)}"
        )
        cpu = f"user {fmt.seconds(sample.cpu_user)}   system {fmt.seconds(sample.cpu_system)}"
        if row.cpu_at_least:  # as the table's ≥ says: the same figure, the same bound
            cpu = f"at least {cpu}: read while it ran, not at its end (it used more)"
        if row.state.is_live:  # an ended child's last figures come from its exit, not a tick
            cpu += f"   last tick {sample.cpu_percent:.0f}%"
            cpu += f" on core {sample.core}" if sample.core is not None else ""
        lines += [
            ("CPU", cpu),
            ("", f"waited for a CPU {fmt.seconds(sample.run_delay)} (runnable, not running)"),
            *(
                [("", f"besides, processes it started and reaped used {theirs} of CPU")]
                if (theirs := fmt.theirs_cpu(sample))
                else []
            ),
            (
                "CPU/wall",
                f"not known: {fmt.seconds(sample.cpu_time)} on a CPU, its end (so its wall time) not known"
                if row.end_unseen
                else f"{'≥' if row.cpu_at_least else ''}{sample.cpu_time / wall:.0%}: {fmt.cpu_time(row)} on a CPU in {fmt.seconds(wall)} of wall time"
                if wall
                else "not known: its end is stamped before its start"
                if _ended_before_start(row)
                else "not started yet",
            ),
            (
                "Memory",
                f"RSS {fmt.size(sample.rss)}   threads {sample.threads}"
                if row.state.is_live
                else "freed when it ended",
            ),
            (
                "Switches",
                f"voluntary {sample.ctx_voluntary:,} (gave the CPU up)   involuntary {sample.ctx_involuntary:,} (preempted)",
            ),
            (
                "Kind",
                f"not known: {fmt.ENDED_UNSEEN}"
                if row.end_unseen
                else f"{kind + '-bound' if kind else 'too young to tell'}: wanted a CPU {demand:.0%} of {of}",
            ),
        ]
    elif row.pid is not None:
        lines.append(("CPU", "not measured: it ended before its first sample"))
    return lines


class DetailsScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,i", "close", "Close")]

    def __init__(
        self,
        rec_id: int,
        source: Callable[[int], tuple[ProcessRow, Sequence[OutputLine], float] | None],
        batch: Callable[[ProcessRow, float], BatchFigures | None] = lambda _row, _now: None,
        calls: CallLog | None = None,
        row_of: RowOf = lambda _id: None,
    ) -> None:
        super().__init__(classes="dialog")
        self.rec_id = rec_id
        self._source = source
        self._batch = batch
        self._calls = calls  # a watched process's: what its parent did to it
        self._row_of = row_of
        self.facts: list[tuple[str, str]] = []  # what is shown, as plain text

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog-box", id="details-box"):
            yield Static(id="details-facts", markup=False)
            yield Static(id="details-traceback", classes="traceback", markup=False)
            yield Static(id="details-output", markup=False)

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        """Show the process as it is now; close if it has been cleared."""
        if not self.query("#details-box"):
            return  # the app is closing: its widgets are gone, a last drain still comes
        found = self._source(self.rec_id)
        if found is None:
            self.dismiss(None)
        else:
            self.show(*found)

    def show(self, row: ProcessRow, output: Sequence[OutputLine], now: float) -> None:
        title = f"{escape_controls(shown_name(row), tabs=True)} ({row.pid or 'not started'})"
        self.query_one("#details-box").border_title = Content(title)  # never read as markup
        label_style = resolve(self.app, "bold $accent")
        facts = Table.grid(padding=(0, 1))
        facts.add_column(style=label_style, no_wrap=True)
        facts.add_column(ratio=1)
        batch = self._batch(row, now)
        self.facts = describe(row, output, now, batch, self._calls, self._row_of)
        for label, value in self.facts:
            style = (
                resolve(self.app, STATE_STYLES[row.state]) if label in ("Process", "Ended") else ""
            )
            facts.add_row(label, Text(on_screen(value), style=style))
        self.query_one("#details-facts", Static).update(facts)
        traceback = self.query_one("#details-traceback", Static)
        traceback.display = bool(row.traceback)
        if row.traceback:
            shown = "\n".join(on_screen(line) for line in row.traceback)
            traceback.update(Text(shown, style=resolve(self.app, "$error")))
        last = output[-LAST_LINES:]
        body = Text(end="")
        body.append(output_heading(row.state, len(last)), label_style)
        error_style = resolve(self.app, "$error")
        for line in last:
            body.append("\n")
            if line.stream == "stderr":
                body.append("! " + fmt.line_text(line), error_style)
            else:
                body.append(fmt.line_text(line))
        self.query_one("#details-output", Static).update(body)

    def action_close(self) -> None:
        self.dismiss(None)


def _pinning(affinity: tuple[int, ...] | None) -> str:
    if not affinity:
        return "not pinned (any CPU)"
    return f"pinned to {'CPU' if len(affinity) == 1 else 'CPUs'} {format_cpu_list(affinity)}"


def output_heading(state: ProcState, shown: int) -> str:
    """The heading of the last lines shown: an ended process that printed nothing will
    not ("No output yet" said it might)."""
    if shown:
        return f"Last {plural(shown, 'line')} of output"
    return "No output" if state.is_over else "No output yet"


# A replay's row (a genuine recording, its wall clock set back while the child ran) said
# "started 08:40:52   ended 08:39:12   ran for 0 ms" and "CPU/wall not started yet".
_CLOCK_BACK = " (its end is stamped before its start: the wall clock was set back meanwhile)"


def _ended_before_start(row: ProcessRow) -> bool:
    began, ended = row.started_at, row.ended_at
    return began is not None and ended is not None and ended < began
