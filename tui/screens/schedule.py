"""The CPU scheduling screen: a job table edited from the keyboard (or a preset, or a CSV
file), the algorithm and its settings, and the result: a Gantt chart (the CPU's lane and
one row per job, on a time axis) and the per-job figures with averages, throughput and
utilisation; or every algorithm on the same jobs, compared.

Everything shown is computed by proclab.core.scheduling.simulator; this module only reads the fields
and draws. A wrong cell or setting shows its error beside it, and nothing is computed until
every shown field is right. Typing recomputes after a short pause (Enter at once).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, HorizontalGroup, VerticalGroup
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Input, Select, Static

from proclab.core.scheduling.kernel import (
    KERNEL_RULES,
)
from proclab.core.scheduling.simulator import (
    ALGORITHMS,
    LIMITS,
    MAX_CSV_CHARS,
    PRESETS,
    SETTING_NAMES,
    Job,
    JobProblem,
    Schedule,
    ScheduleError,
    Settings,
    check_jobs,
    check_settings,
    compare,
    format_time,
    job_from_fields,
    parse_jobs_csv,
    parse_setting,
    schedule,
    setting_texts,
)
from proclab.core.source import ProcessSource
from proclab.tui.screens.help import SCHEDULING, HelpScreen
from proclab.tui.screens.schedule_kernel import KernelRuns
from proclab.tui.screens.schedule_layout import (
    SETTING_LABELS,
    ChartView,
    ResultsView,
    jobs_box,
    outputs,
    settings_box,
)
from proclab.tui.theme import resolve
from proclab.tui.widgets.schedule_chart import (
    PALETTE,
    ChartStyle,
    GanttRenderable,
    results_renderable,
)

DEFAULT_PRESET = "srtf"
MAX_ROWS = 26
DEBOUNCE_S = 0.3
CELLS = ("name", "arrival", "burst", "priority")
SETTINGS_SHOWN: dict[str, tuple[str, ...]] = {
    # which settings each choice reads: the others are hidden, and not checked
    "fcfs": ("switch_cost",),
    "sjf": ("switch_cost",),
    "srtf": ("switch_cost",),
    "rr": ("quantum", "switch_cost"),
    "priority-np": ("switch_cost",),
    "priority": ("switch_cost",),
    "mlfq": ("quanta", "allotment", "boost", "switch_cost"),
    "all": SETTING_NAMES,
}
# The kernel policy that matches an algorithm, where one does.
KERNEL_FOR = {"fcfs": "fifo", "rr": "rr", "priority": "priority", "priority-np": "priority"}
# Widgets ---------------------------------------------------------------------------------------


class CellInput(Input):
    """A job's cell. ← at its start and → at its end go to the neighbouring cell, so the
    table is walked with the arrow keys while Tab passes it in one step."""

    class Edge(Message):
        def __init__(self, cell: CellInput, step: int) -> None:
            super().__init__()
            self.cell = cell
            self.step = step

    def action_cursor_left(self, select: bool = False) -> None:
        if not select and self.cursor_at_start and self.selection.is_empty:
            self.post_message(self.Edge(self, -1))
        else:
            super().action_cursor_left(select)

    def action_cursor_right(self, select: bool = False) -> None:
        if not select and self.cursor_at_end and self.selection.is_empty:
            self.post_message(self.Edge(self, 1))
        else:
            super().action_cursor_right(select)


class JobRow(VerticalGroup):
    """One job's cells, and its errors under them (beside them, a 38-column jobs pane left
    them five columns: "burs / t / must / be a"). The cells exist from the start, so a
    row can be read while it is still being mounted."""

    def __init__(self, key: int, job: Job | None = None) -> None:
        super().__init__(classes="sched-row", id=f"job-{key}")
        self.key = key
        values = (
            ("", "", "", "")
            if job is None
            else (
                job.name,
                format_time(job.arrival),
                format_time(job.burst),
                "" if job.priority is None else str(job.priority),
            )
        )
        self._cells = {
            cell: CellInput(
                value,
                id=f"job-{key}-{cell}",
                classes=f"sched-cell sched-{cell}",
                compact=True,
                select_on_focus=False,
            )
            for cell, value in zip(CELLS, values, strict=True)
        }
        self._error = Static("", classes="sched-row-error", markup=False)
        self._error.display = False

    def compose(self) -> ComposeResult:
        with HorizontalGroup(classes="sched-row-cells"):
            yield from self._cells.values()
        yield self._error

    def cell(self, name: str) -> CellInput:
        return self._cells[name]

    def cells(self) -> list[CellInput]:
        return list(self._cells.values())

    def values(self) -> tuple[str, str, str, str]:
        name, arrival, burst, priority = (self._cells[c].value for c in CELLS)
        return name, arrival, burst, priority

    def show(self, problems: Sequence[JobProblem]) -> None:
        wrong = {p.field for p in problems}
        for cell, widget in self._cells.items():
            widget.set_class(cell in wrong, "-bad")
        said = "; ".join(p.describe() for p in problems)
        self._error.update(said)
        self._error.display = bool(said)


SCHEDULE_BINDINGS: list[BindingType] = [
    Binding("escape", "close", "Close"),
    Binding("ctrl+n", "add_job", "Add job"),
    Binding("ctrl+r", "remove_job", "Remove job"),
    Binding("f1", "help", "Help, tie rules"),
    Binding(
        "f5",
        "run_kernel",
        "Run on kernel",
        tooltip="Run the jobs as real processes on one core, measured beside the simulation",
    ),
    Binding("up", "row(-1)", "Row up", show=False),
    Binding("down", "row(1)", "Row down", show=False),
    Binding("pagedown", "scroll_results('page_down')", "Scroll"),
    Binding("pageup", "scroll_results('page_up')", "Page up", show=False),
    # End and Home move a text field's cursor; Ctrl+End and Ctrl+Home always scroll.
    Binding("ctrl+end,end", "scroll_results('end')", "To the results", show=False),
    Binding("ctrl+home,home", "scroll_results('home')", "To the top", show=False),
]


class ScheduleScreen(KernelRuns):
    """The simulator. Modal, so the app's one-letter keys stay out of its fields."""

    BINDINGS: ClassVar[list[BindingType]] = SCHEDULE_BINDINGS
    HORIZONTAL_BREAKPOINTS: list[tuple[int, str]] | None = [  # noqa: RUF012 (Textual's type)
        (0, "-sched-narrow"),
        (120, "-sched-wide"),
    ]

    CSS_PATH = Path(__file__).with_name("schedule.tcss")

    def __init__(
        self,
        preset: str = DEFAULT_PRESET,
        algorithm: str | None = None,
        processes: ProcessSource | None = None,
    ) -> None:
        """`processes`: the app's source (runs on the kernel need proclab's own controller)."""
        super().__init__(processes)
        if preset not in PRESETS:
            raise ValueError(f"no preset {preset!r}")
        self._preset = preset
        self._algorithm = algorithm or PRESETS[preset].algorithm
        self._next_key = 0
        self._timer: Timer | None = None
        self._computed: tuple[object, ...] | None = None
        self._shown: tuple[Schedule, ...] = ()
        self._edited = False
        self._source: str | None = None  # the CSV file the jobs came from, if any
        self._loaded = PRESETS[preset].jobs  # the jobs as last loaded, preset or file
        self._last_cell: CellInput | None = None  # the job table's Tab stop
        self._kernel = KERNEL_FOR.get(self._algorithm, "fifo")

    # Building ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="sched-title", markup=False)
        with Container(id="sched-body"):
            with VerticalGroup(id="sched-inputs"):
                yield settings_box(self._preset, self._algorithm, self._kernel)
                yield jobs_box(self._row(job) for job in PRESETS[self._preset].jobs)
            yield outputs()
        yield Footer()

    def _row(self, job: Job | None) -> JobRow:
        self._next_key += 1
        return JobRow(self._next_key, job)

    def on_mount(self) -> None:
        self.query_one("#sched-settings-box").border_title = "Settings"
        self.query_one("#sched-jobs-box").border_title = "Jobs"
        self.query_one("#sched-rules").border_title = "Rules and ties (F1: keys)"
        self.query_one("#sched-kernel-box").border_title = "On the kernel (F5)"
        self.query_one("#kernel-progress").display = False
        self._show_relevant()
        self._describe_preset()
        self._recompute()
        self.app.theme_changed_signal.subscribe(self, self._on_theme_changed)
        self.query_one(f"#job-{self._first_key()}-burst", Input).focus()

    def _first_key(self) -> int:
        return self._rows()[0].key

    def _on_theme_changed(self, _theme: object) -> None:
        self._computed = None
        self._kernel_drawn = None
        self._recompute()

    def on_unmount(self) -> None:
        if self._kernel_cancel is not None:
            self._kernel_cancel.set()  # the run ends its jobs and stops

    # Reading and checking ----------------------------------------------------------------------

    def _row_values(self) -> tuple[tuple[str, str, str, str], ...]:
        return tuple(row.values() for row in self._rows())

    def _rows(self) -> list[JobRow]:
        return list(self.query_one("#sched-rows").query_children(JobRow))

    def _algorithm_value(self) -> str:
        value = self.query_one("#sched-algorithm", Select).value
        return str(value) if isinstance(value, str) else "all"

    def _setting_text(self, name: str) -> str:
        return self.query_one(f"#set-{name}", Input).value

    def _state(self) -> tuple[object, ...]:
        algorithm = self._algorithm_value()
        return (
            algorithm,
            tuple(row.values() for row in self._rows()),
            tuple((n, self._setting_text(n)) for n in SETTINGS_SHOWN[algorithm]),
            self.app.theme,
        )

    def _check_jobs(self) -> tuple[list[Job], dict[int, list[JobProblem]], str]:
        """The jobs, each row's problems, and a problem with the list as a whole."""
        rows = self._rows()
        jobs: list[Job] = []
        stand_ins: list[Job] = []
        problems: dict[int, list[JobProblem]] = {}
        for index, row in enumerate(rows):
            job, found = job_from_fields(index, *row.values())
            problems[index] = found
            if job is not None:
                jobs.append(job)
            # A row with a bad number still has a name that others may repeat.
            stand_ins.append(job or Job(row.values()[0].strip(), 0.0, 1.0))
        general = ""
        for problem in check_jobs(stand_ins):
            if problem.index < 0:
                general = problem.message
            elif all(p.field != problem.field for p in problems[problem.index]):
                problems[problem.index].append(problem)
        return jobs, problems, general

    def _check_settings(self, algorithm: str) -> tuple[Settings | None, dict[str, str]]:
        errors: dict[str, str] = {}
        shown = SETTINGS_SHOWN[algorithm]
        values: dict[str, Any] = {}  # each a setting's parsed value
        for name in shown:
            try:
                values[name] = parse_setting(name, self._setting_text(name))
            except ValueError as exc:
                errors[name] = str(exc)
        if errors:
            return None, errors
        settings = replace(Settings(), **values)
        for problem in check_settings(settings, algorithm):
            if problem.field == "levels":  # one a quantum: said beside them, as levels
                # ("must be from 1 to 8, got 33" read as a quantum of 33 refused)
                errors.setdefault("quanta", f"one level a quantum: levels {problem.message}")
            else:
                errors.setdefault(problem.field, problem.message)
        return (None if errors else settings), errors

    # Computing -----------------------------------------------------------------------------------

    def _schedule_soon(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE_S, self._recompute)

    def _recompute(self) -> None:
        self._timer = None
        self._show_kernel()
        state = self._state()
        if state == self._computed:
            return
        self._computed = state
        algorithm = self._algorithm_value()
        jobs, job_problems, general = self._check_jobs()
        settings, setting_errors = self._check_settings(algorithm)
        schedules: tuple[Schedule, ...] = ()
        if settings is not None and not general and not any(job_problems.values()):
            try:
                schedules = (
                    compare(jobs, settings)
                    if algorithm == "all"
                    else (schedule(jobs, algorithm, settings),)
                )
            except ScheduleError as exc:
                field = "quanta" if exc.field == "levels" else exc.field
                if field in SETTINGS_SHOWN[algorithm]:
                    # beside the field its name goes without saying (but not levels' in
                    # the quanta field)
                    same = field == exc.field and exc.detail
                    setting_errors[field] = exc.detail if same else str(exc)
                else:
                    general = str(exc)
        for index, row in enumerate(self._rows()):
            row.show(job_problems.get(index, []))
        for name in SETTING_LABELS:
            error = setting_errors.get(name, "")
            self.query_one(f"#err-{name}", Static).update(error)
            self.query_one(f"#set-{name}", Input).set_class(bool(error), "-bad")
        jobs_error = self.query_one("#sched-jobs-error", Static)
        jobs_error.update(general)
        jobs_error.display = bool(general)
        self._show(schedules, algorithm)

    def _style(self, names: Iterable[str]) -> ChartStyle:
        colours = {
            name: resolve(self.app, PALETTE[index % len(PALETTE)])
            for index, name in enumerate(names)
        }
        return ChartStyle(
            colours=colours,
            muted=resolve(self.app, "$text-muted"),
            switch=resolve(self.app, "bold $warning"),
            axis=resolve(self.app, "$text-muted"),
        )

    def _show(self, schedules: tuple[Schedule, ...], algorithm: str) -> None:
        self._shown = schedules
        chart = self.query_one("#sched-chart", ChartView)
        results = self.query_one("#sched-results", ResultsView)
        title = self.query_one("#sched-title", Static)
        heading = Text(no_wrap=True, overflow="ellipsis")
        heading.append(" CPU scheduling ", "bold reverse")
        if not schedules:
            heading.append(
                "  nothing computed: fix the fields marked in red", resolve(self.app, "bold $error")
            )
            title.update(heading)
            chart.border_title = "Gantt chart"
            chart.update(
                Text(
                    "Nothing computed: a field is wrong (its error is beside it).",
                    resolve(self.app, "$error"),
                )
            )
            results.border_title = "Results"
            results.update("")
            return
        style = self._style(r.name for r in schedules[0].jobs)
        if len(schedules) == 1:
            only = schedules[0]
            heading.append(f"  {ALGORITHMS[only.algorithm][1]}", "bold")
            heading.append(f"   {only.label}", resolve(self.app, "$text-muted"))
            chart.border_title = f"Gantt chart: {only.label}"
            results.border_title = "Per job"
        else:
            heading.append(f"  all {len(schedules)} algorithms on the same jobs", "bold")
            chart.border_title = "Gantt charts, one lane per algorithm"
            results.border_title = "Compared"
        title.update(heading)
        chart.update(GanttRenderable(schedules, style))
        results.update(results_renderable(schedules, style, resolve(self.app, "bold $success")))

    @property
    def schedules(self) -> tuple[Schedule, ...]:
        """What the screen shows now (empty while a field is wrong)."""
        return self._shown

    def _show_relevant(self) -> None:
        shown = SETTINGS_SHOWN[self._algorithm_value()]
        for name in SETTING_LABELS:
            self.query_one(f"#field-{name}").set_class(name not in shown, "-hidden")

    def _describe_preset(self) -> None:
        about = self._source or PRESETS[self._preset].description
        if self._edited:
            about = f"Edited from: {about}"
        self.query_one("#sched-about", Static).update(about)

    # Events -------------------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.input.has_class("sched-cell") and not self._edited:
            self._edited = self._jobs_edited()
            if self._edited:
                self._describe_preset()
        self._schedule_soon()

    def _jobs_edited(self) -> bool:
        jobs, problems, _ = self._check_jobs()
        return any(problems.values()) or tuple(jobs) != self._loaded

    @on(Input.Submitted, "#set-csv")
    async def _csv_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        await self.load_csv(event.value)

    @on(Input.Submitted, "#sched-settings Input, .sched-cell")
    def _field_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._recompute()

    @on(Select.Changed, "#sched-preset")
    async def _preset_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str) and (event.value != self._preset or self._edited):
            await self.load_preset(event.value)

    @on(Select.Changed, "#sched-algorithm")
    def _algorithm_chosen(self, event: Select.Changed) -> None:
        event.stop()
        matching = KERNEL_FOR.get(self._algorithm_value())
        if matching is not None:
            self.query_one("#sched-kernel", Select).value = matching
        self._show_relevant()
        self._recompute()

    @on(Select.Changed, "#sched-kernel")
    def _kernel_chosen(self, event: Select.Changed) -> None:
        event.stop()
        self._show_kernel()

    async def load_preset(self, key: str) -> None:
        """Replace the jobs and settings with a preset's, and show its algorithm."""
        preset = PRESETS[key]
        self._preset = key
        self._source = None
        self.query_one("#sched-preset", Select).value = key  # when not chosen there
        for name, value in setting_texts(preset.settings).items():
            self.query_one(f"#set-{name}", Input).value = value
        self.query_one("#sched-algorithm", Select).value = preset.algorithm
        await self._replace_jobs(preset.jobs)

    async def load_csv(self, path: str) -> None:
        """Replace the jobs with a CSV file's (name,arrival,burst[,priority]); an error
        (the file, or its first wrong line) shows beside the path and changes nothing."""
        error = self.query_one("#err-csv", Static)
        path = path.strip()
        if not path:
            error.update("no path: type a CSV file's path")
            return
        try:
            file_path = Path(path).expanduser()
            if file_path.exists() and not file_path.is_file() and not file_path.is_dir():
                # A FIFO or a device: opening one waits for a writer, and froze the app.
                raise ScheduleError("not a file (a FIFO or a device): load a CSV file")
            with file_path.open(encoding="utf-8") as file:
                text = file.read(MAX_CSV_CHARS + 1)
            if len(text) > MAX_CSV_CHARS:
                raise ScheduleError(f"longer than {MAX_CSV_CHARS:,} characters")
            jobs = parse_jobs_csv(text)
            if len(jobs) > MAX_ROWS:
                raise ScheduleError(f"{len(jobs)} jobs: at most {MAX_ROWS} here")
        except (OSError, UnicodeDecodeError, ScheduleError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            error.update(f"{path or 'no path'}: {reason}")
            return
        error.update("")
        self._source = f"{path}: {len(jobs)} job{'s' if len(jobs) != 1 else ''}."
        await self._replace_jobs(jobs)

    async def _replace_jobs(self, jobs: Sequence[Job]) -> None:
        self._loaded = tuple(jobs)
        self._edited = False
        rows = self.query_one("#sched-rows")
        focused = self.focused
        had_focus = focused is not None and rows in focused.ancestors
        await rows.remove_children()
        new = [self._row(job) for job in jobs]
        await rows.mount_all(new)
        if had_focus and new:
            new[0].cell("name").focus()  # not wherever removing the focused cell left it
        self._describe_preset()
        self._computed = None
        self._recompute()

    # Actions ------------------------------------------------------------------------------------

    def _focused_row(self) -> JobRow | None:
        focused = self.focused
        while focused is not None and not isinstance(focused, JobRow):
            parent = focused.parent
            focused = parent if isinstance(parent, Widget) else None
        return focused

    async def action_add_job(self) -> None:
        rows = self._rows()
        if len(rows) >= MAX_ROWS:
            self.notify(f"at most {MAX_ROWS} jobs here", severity="warning", markup=False)
            return
        taken = {row.values()[0].strip() for row in rows}
        number = len(rows) + 1
        while f"P{number}" in taken:
            number += 1
        current = self._focused_row()
        arrival = current.values()[1].strip() if current is not None else "0"
        row = self._row(Job(f"P{number}", 0, 1))
        await self.query_one("#sched-rows").mount(row, after=current)
        if arrival:
            row.cell("arrival").value = arrival
        row.cell("burst").focus()
        self._edited = True
        self._describe_preset()
        self._schedule_soon()

    async def action_remove_job(self) -> None:
        rows = self._rows()
        if not rows:
            return
        current = self._focused_row() or rows[-1]
        index = rows.index(current)
        await current.remove()
        rest = [r for r in rows if r is not current]
        if rest:
            neighbour = rest[min(index, len(rest) - 1)]
            neighbour.cell("name").focus()
        self._edited = True
        self._describe_preset()
        self._recompute()

    def action_row(self, delta: int) -> None:
        focused = self.focused
        row = self._focused_row()
        if row is None or not isinstance(focused, Input):
            return
        cell = (focused.id or "").rsplit("-", 1)[-1]
        rows = self._rows()
        index = rows.index(row) + delta
        if 0 <= index < len(rows):
            rows[index].cell(cell).focus()

    def action_scroll_results(self, where: str) -> None:
        """Scroll what holds the results: the whole screen when narrow, the right-hand
        column when wide."""
        target = self.query_one(
            "#sched-outputs" if self.has_class("-sched-wide") else "#sched-body"
        )
        scrolls = {
            "page_down": target.scroll_page_down,
            "page_up": target.scroll_page_up,
            "end": target.scroll_end,
            "home": target.scroll_home,
        }
        scrolls[where](animate=False)

    @property
    def focus_chain(self) -> list[Widget]:
        """Tab's stops, with the job table as one: the cell in use (or the one last used,
        or the first), so Tab goes past the table; the arrow keys walk its cells."""
        chain = super().focus_chain
        cells = [w for w in chain if isinstance(w, CellInput)]
        if not cells:
            return chain
        stop = self.focused if self.focused in cells else self._last_cell
        if stop not in cells:
            stop = cells[0]
        return [w for w in chain if not isinstance(w, CellInput) or w is stop]

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if isinstance(event.widget, CellInput):
            self._last_cell = event.widget

    def on_cell_input_edge(self, event: CellInput.Edge) -> None:
        """← at a cell's start, → at its end: the neighbouring cell, across rows."""
        event.stop()
        cells = [cell for row in self._rows() for cell in row.cells()]
        index = cells.index(event.cell) + event.step if event.cell in cells else -1
        if 0 <= index < len(cells):
            target = cells[index]
            target.focus()
            target.cursor_position = len(target.value) if event.step < 0 else 0

    def action_help(self) -> None:
        keys = [b for b in self.BINDINGS if isinstance(b, Binding)]
        keys.append(Binding("tab,shift+tab", "", "Next / previous field (the job table is one)"))
        keys.append(Binding("left,right", "", "In the job table, at a cell's edge: the next cell"))
        self.app.push_screen(
            HelpScreen(
                [("CPU scheduling", keys)],
                texts=(SCHEDULING, LIMITS, KERNEL_RULES),
                heading="CPU scheduling: keys and tie rules (escape closes)",
            )
        )

    def action_close(self) -> None:
        self.dismiss(None)

    def refresh_now(self) -> None:
        """Recompute and redraw at once, not after the typing pause."""
        self._computed = None
        self._recompute()
