"""The experiments screen: choose an experiment, N and (for parallel) the task; run it
with real processes in a worker thread while a progress bar moves; then its result table,
a bar chart and a one-line summary; export as JSON or CSV.

The experiment runs in its own controller (proclab.core.experiments), off the event loop;
its progress and result reach the screen as messages (post_message is thread-safe).
Closing the screen cancels a running experiment, which ends its children.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, Label, ProgressBar, Select, Static

from proclab.core import experiments
from proclab.core.errors import InputError, ProclabError
from proclab.core.experiments import (
    EXPERIMENTS,
    PARALLEL_TASK,
    Plan,
    Progress,
    ProgressCallback,
    Result,
    default_count,
)
from proclab.tui.commands.experiment import check_writable
from proclab.tui.screens.dialogs import PromptScreen
from proclab.tui.theme import resolve

Runner = Callable[[Plan, ProgressCallback, threading.Event], Result]

DESCRIPTIONS = {
    "parallel": "N copies of the task one after another, then all at once: wall time each way,"
    " speed-up (serial / parallel), efficiency (speed-up / min(N, cores)).",
    "start-methods": "Start latency of fork, forkserver and spawn: from Process.start() to the"
    " target's first line; N samples each, in turns, after one uncounted warm-up. fork copies"
    " this whole process (proclab, with its threads and files); forkserver has its small"
    " server fork instead: here fork can be the slower (the result says why, with sizes).",
    "cpu-vs-io": "For N = 1, 2, 4... up to N: N copies at once of a CPU-bound task (count) and"
    " an I/O-bound one (sleep); speed-up = N x one copy's time alone / the time at once.",
}
COUNT_LABELS = {"parallel": "copies", "start-methods": "samples", "cpu-vs-io": "up to N"}
GROUP_STYLES = {
    "serial": "$warning",
    "parallel": "$success",
    "cpu": "$warning",
    "io": "$success",
    "fork": "$primary",
    "forkserver": "$success",
    "spawn": "$warning",
}
DEFAULT_ARGS = PARALLEL_TASK[1]


@dataclass
class ExperimentMemory:
    """What the screen was left with, kept by the app so that reopening it (e) shows the
    same experiment, fields and last result."""

    name: str = "parallel"
    count: str = str(default_count("parallel"))
    task: str = PARALLEL_TASK[0]
    args: str = DEFAULT_ARGS
    result: Result | None = None


class BarChart(Widget):
    """Horizontal bars: label, a bar scaled to the largest value, the value as text."""

    DEFAULT_CSS = """
    BarChart { height: auto; text-wrap: nowrap; text-overflow: clip; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bars: list[experiments.Bar] = []

    def show(self, bars: list[experiments.Bar]) -> None:
        self.bars = bars
        self.refresh(layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, len(self.bars))

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="crop", end="")
        if not self.bars:
            return text
        label_width = max(len(b[0]) for b in self.bars)
        value_width = max(len(b[2]) for b in self.bars)
        room = max(4, self.size.width - label_width - value_width - 3)
        lengths = experiments.bar_lengths(self.bars, room)
        for i, ((label, _value, shown, group), cells) in enumerate(
            zip(self.bars, lengths, strict=True)
        ):
            if i:
                text.append("\n")
            text.append(label.ljust(label_width) + " ", resolve(self.app, "$text-muted"))
            text.append("█" * cells, resolve(self.app, GROUP_STYLES.get(group, "$accent")))
            text.append(" " + shown)
        return text


@dataclass(frozen=True)
class _FiguresWithNotes:
    """A result's table with its notes under it, as wide as the table alone: beside the
    chart (wide screens), a note's long line made the table's column take the row, and
    the chart had none of it; halves cut the figures ("0.…", "speed-up 1.…")."""

    table: Table
    notes: list[Text]

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Group(self.table, *self.notes)


class ExperimentsScreen(ModalScreen[None]):
    """Modal, so the app's one-letter keys stay out of its fields."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("ctrl+r", "run", "Run"),
        Binding("ctrl+g", "cancel", "Cancel run"),
        Binding("ctrl+o", "export('json')", "Export JSON"),
        Binding("ctrl+s", "export('csv')", "Export CSV"),
    ]
    HORIZONTAL_BREAKPOINTS: list[tuple[int, str]] | None = [  # noqa: RUF012 (Textual's type)
        (0, "-exp-narrow"),
        (120, "-exp-wide"),
    ]

    DEFAULT_CSS = """
    ExperimentsScreen {
        layout: vertical;
        background: $background;
    }
    #exp-settings {
        height: auto;
        border: round $accent;
        border-title-color: $accent;
        background: $surface;
        padding: 0 1;
    }
    #exp-settings .exp-row {
        height: 1;
    }
    #exp-settings Label {
        width: auto;
        padding-right: 1;
        color: $text-muted;
    }
    #exp-name { width: 20; }
    #exp-count { width: 8; margin-right: 2; }
    #exp-task { width: 1fr; margin-right: 1; }
    #exp-args { width: 22; }
    #exp-about { color: $text-muted; height: auto; }
    #exp-error { color: $error; height: auto; display: none; }
    #exp-error.-shown { display: block; }
    #exp-buttons { height: 1; }
    #exp-buttons Button { margin-right: 1; }
    #exp-progress-row { height: 1; padding: 0 1; }
    #exp-progress { width: 34; }
    #exp-status { width: 1fr; padding-left: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #exp-results {
        height: 1fr;
        border: round $panel-lighten-2;
        background: $surface;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    #exp-results-body { height: auto; layout: vertical; }
    ExperimentsScreen.-exp-wide #exp-results-body { layout: horizontal; }
    /* The table as wide as its figures (_FiguresWithNotes), the chart the rest */
    ExperimentsScreen.-exp-wide #exp-table { width: auto; }
    ExperimentsScreen.-exp-wide #exp-chart { width: 1fr; padding-left: 2; }
    #exp-table { height: auto; }
    #exp-chart { margin-top: 1; }
    ExperimentsScreen.-exp-wide #exp-chart { margin-top: 0; }
    #exp-summary { height: auto; margin-top: 1; text-style: bold; }
    """

    class Progressed(Message):
        def __init__(self, progress: Progress) -> None:
            super().__init__()
            self.progress = progress

    class Finished(Message):
        def __init__(self, result: Result | None, error: str | None) -> None:
            super().__init__()
            self.result = result
            self.error = error

    def __init__(
        self,
        runner: Runner | None = None,
        cwd: str | None = None,
        clock: Callable[[], float] = time.time,
        memory: ExperimentMemory | None = None,
    ) -> None:
        super().__init__()
        self._runner: Runner = runner or experiments.run
        self._cwd = os.path.abspath(cwd or os.getcwd())
        self._clock = clock
        self._cancel = threading.Event()
        self.memory = memory or ExperimentMemory()
        self.running = False
        self.result: Result | None = None
        self.exported: list[Path] = []

    def compose(self) -> ComposeResult:
        memory = self.memory
        with Container(id="exp-settings"):
            with Horizontal(classes="exp-row"):
                yield Label("Experiment", markup=False)
                yield Select(
                    [(name, name) for name in EXPERIMENTS],
                    value=memory.name,
                    allow_blank=False,
                    id="exp-name",
                    compact=True,
                )
                yield Label(COUNT_LABELS[memory.name], id="exp-count-label", markup=False)
                yield Input(
                    memory.count,
                    id="exp-count",
                    restrict=r"[0-9]*",
                    max_length=3,
                    compact=True,
                )
            with Horizontal(classes="exp-row", id="exp-task-row"):
                yield Label("Task", markup=False)
                yield Input(
                    memory.task,
                    id="exp-task",
                    placeholder="module:function or file.py:function",
                    compact=True,
                )
                yield Label("args", markup=False)
                yield Input(memory.args, id="exp-args", placeholder="(1,)", compact=True)
            yield Static(DESCRIPTIONS[memory.name], id="exp-about", markup=False)
            yield Static("", id="exp-error", markup=False)
            with Horizontal(id="exp-buttons"):
                yield Button("Run ^r", id="exp-run", variant="primary", compact=True)
                yield Button("Cancel ^g", id="exp-cancel", compact=True, disabled=True)
                yield Button("JSON ^o", id="exp-json", compact=True, disabled=True)
                yield Button("CSV ^s", id="exp-csv", compact=True, disabled=True)
        with Horizontal(id="exp-progress-row"):
            yield ProgressBar(total=1, show_eta=False, show_percentage=False, id="exp-progress")
            yield Static("ready: ctrl+r runs the experiment", id="exp-status", markup=False)
        with VerticalScroll(id="exp-results"):
            with Container(id="exp-results-body"):
                yield Static("", id="exp-table", markup=False)
                yield BarChart(id="exp-chart")
            yield Static("", id="exp-summary", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(
            "#exp-settings"
        ).border_title = "Experiments: real processes, measured now (escape closes)"
        self.query_one("#exp-results").border_title = "Result"
        self.query_one("#exp-progress", ProgressBar).update(progress=0)
        self.query_one("#exp-task-row").display = self.memory.name == "parallel"
        self.query_one("#exp-name", Select).focus()
        if self.memory.result is not None:
            self.show_result(self.memory.result)

    def on_unmount(self) -> None:
        self._cancel.set()  # a running experiment ends its children

    # Settings --------------------------------------------------------------------------------

    @property
    def experiment(self) -> str:
        return str(self.query_one("#exp-name", Select).value)

    @on(Select.Changed, "#exp-name")
    def _experiment_chosen(self) -> None:
        if self.experiment == self.memory.name:
            return  # (the remembered choice, set again as the screen opens)
        name = self.memory.name = self.experiment
        self.query_one("#exp-count", Input).value = str(default_count(name))
        self.query_one("#exp-count-label", Label).update(COUNT_LABELS[name])
        self.query_one("#exp-task-row").display = name == "parallel"
        self.query_one("#exp-about", Static).update(DESCRIPTIONS[name])
        self._error("")

    @on(Input.Changed, "#exp-count")
    def _count_changed(self, event: Input.Changed) -> None:
        self.memory.count = event.value

    @on(Input.Changed, "#exp-task")
    def _task_changed(self, event: Input.Changed) -> None:
        self.memory.task = event.value

    @on(Input.Changed, "#exp-args")
    def _args_changed(self, event: Input.Changed) -> None:
        self.memory.args = event.value

    def plan(self) -> Plan | None:
        """The checked plan from the fields, or None with the error shown."""
        name = self.experiment
        text = self.query_one("#exp-count", Input).value.strip()
        try:
            count = int(text) if text else None
            if name == "parallel":
                task = self.query_one("#exp-task", Input).value.strip()
                args = self.query_one("#exp-args", Input).value.strip()
                plan = experiments.plan(name, count, task or None, args)
            else:
                plan = experiments.plan(name, count)
        except ProclabError as exc:
            self._error(str(exc))
            return None
        self._error("")
        return plan

    def _error(self, text: str) -> None:
        error = self.query_one("#exp-error", Static)
        error.update(text)
        error.set_class(bool(text), "-shown")

    # Running ---------------------------------------------------------------------------------

    def action_run(self) -> None:
        if self.running:
            self.notify(
                "an experiment is already running (ctrl+g cancels it)",
                severity="warning",
                markup=False,
            )
            return
        plan = self.plan()
        if plan is None:
            return
        self._cancel = threading.Event()
        self._set_running(True)
        bar = self.query_one("#exp-progress", ProgressBar)
        bar.update(total=plan.total_steps, progress=0)
        self.query_one("#exp-status", Static).update(f"{plan.name}: starting…")
        self._work(plan, self._cancel)

    @work(thread=True, exclusive=True, group="experiment", exit_on_error=False)
    def _work(self, plan: Plan, cancel: threading.Event) -> None:
        def progressed(progress: Progress) -> None:
            self.post_message(self.Progressed(progress))

        try:
            result = self._runner(plan, progressed, cancel)
        except experiments.Cancelled:
            self.post_message(self.Finished(None, "cancelled: its children were ended"))
        except ProclabError as exc:
            self.post_message(self.Finished(None, str(exc)))
        except Exception as exc:  # shown, never a crash of the app
            self.post_message(self.Finished(None, f"{type(exc).__name__}: {exc}"))
        else:
            self.post_message(self.Finished(result, None))

    def on_experiments_screen_progressed(self, message: Progressed) -> None:
        progress = message.progress
        self.query_one("#exp-progress", ProgressBar).update(
            total=progress.total, progress=progress.done
        )
        self.query_one("#exp-status", Static).update(
            Text(f"{progress.done}/{progress.total} {progress.text}", no_wrap=True)
        )

    def on_experiments_screen_finished(self, message: Finished) -> None:
        self._set_running(False)
        if message.result is None:
            self.query_one("#exp-status", Static).update(
                Text(message.error or "failed", style=resolve(self.app, "$error"))
            )
            return
        self.show_result(message.result)

    def show_result(self, result: Result) -> None:
        """Draw a result (also used by tests with a made-up one)."""
        self.result = self.memory.result = result
        bar = self.query_one("#exp-progress", ProgressBar)
        bar.update(total=bar.total or 1, progress=bar.total or 1)
        self.query_one("#exp-status", Static).update(f"{result.name}: done")
        header, rows = result.table()
        table = Table(box=None, padding=(0, 2, 0, 0), header_style=resolve(self.app, "bold"))
        for i, column in enumerate(header):
            left = i == 0 or column == "note"
            table.add_column(column, justify="left" if left else "right", no_wrap=True)
        for row in rows:
            table.add_row(*row)
        # What a figure means here (a '*', why fork compared as it did), under the table
        # where it is seen with the figures, not below the chart.
        notes = [Text(note, style=resolve(self.app, "$warning")) for note in result.notes()]
        self.query_one("#exp-table", Static).update(_FiguresWithNotes(table, notes))
        self.query_one("#exp-chart", BarChart).show(result.bars())
        self.query_one("#exp-summary", Static).update(Text(result.summary()))
        self.query_one("#exp-results").border_title = f"Result: {result.name}"
        for button in ("#exp-json", "#exp-csv"):
            self.query_one(button, Button).disabled = False

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.query_one("#exp-run", Button).disabled = running
        self.query_one("#exp-cancel", Button).disabled = not running

    def action_cancel(self) -> None:
        if self.running:
            self._cancel.set()
            self.query_one("#exp-status", Static).update("cancelling: ending its children…")

    def action_export(self, kind: str) -> None:
        """Ask where (the folder proclab was started in, by default), then write there and
        say where it went, in the status line too."""
        result = self.result
        if result is None:
            self.notify(
                "nothing to export yet: run an experiment (ctrl+r)",
                severity="warning",
                markup=False,
            )
            return
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self._clock()))
        default = os.path.join(self._cwd, f"proclab-{result.name}-{stamp}.{kind}")

        def check(text: str) -> str | None:
            if not text.strip():
                return "a file name, e.g. results.csv"
            try:
                check_writable(self._path(text), kind)
            except InputError as exc:
                return exc.message
            return None

        def answered(text: str | None) -> None:
            if text:
                self._write(Path(self._path(text)), kind, result)

        self.app.push_screen(
            PromptScreen(
                f"Write the {result.name} result as {kind.upper()} to", default, check=check
            ),
            answered,
        )

    def _path(self, text: str) -> str:
        """A typed path, relative ones from the folder proclab was started in."""
        return os.path.join(self._cwd, os.path.expanduser(text.strip()))

    def _write(self, path: Path, kind: str, result: Result) -> None:
        text = (
            experiments.to_json_text(result) + "\n"
            if kind == "json"
            else experiments.to_csv(result)
        )
        status = self.query_one("#exp-status", Static)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            # The status line too: it still said the last export's "written to"
            said = f"could not write {path}: {exc.strerror}"
            status.update(Text(said, no_wrap=True, overflow="ellipsis"))
            self.notify(said, severity="error", markup=False)
            return
        self.exported.append(path)
        said = f"{kind.upper()} written to {path}"
        status.update(Text(said, no_wrap=True, overflow="ellipsis"))
        self.notify(said, timeout=8, markup=False)

    @on(Button.Pressed, "#exp-run")
    def _run_pressed(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#exp-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#exp-json")
    def _json_pressed(self) -> None:
        self.action_export("json")

    @on(Button.Pressed, "#exp-csv")
    def _csv_pressed(self) -> None:
        self.action_export("csv")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_run()

    def action_close(self) -> None:
        self._cancel.set()
        self.dismiss(None)
