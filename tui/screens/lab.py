"""The lab: process table, output log, CPU pane and TCP server pane on one screen (at
120x32 and larger) or one at a time behind tabs (smaller), driven from the keyboard.

Everything shown comes from a ProcessSource (proclab's controller, a recording, ...). The
app hands over what the source's threads sent in batches (`show_events`); the keys the source
does not allow (its `capabilities`) are not offered, and answer why when pressed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from textual import events, on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Footer, Input, Tab, Tabs

from proclab.core.batch import BatchFigures, batch_figures, batch_of
from proclab.core.calls import CallLog
from proclab.core.defaults import DEFAULT_METHOD
from proclab.core.errors import ProclabError
from proclab.core.model import (
    Event,
    Notice,
    OutputLine,
    ProcessCall,
    ProcessRow,
    ProcessSpec,
    Sampled,
    ServerEvent,
    SystemSample,
)
from proclab.core.output import escape_controls, on_screen
from proclab.core.source import ProcessSource
from proclab.core.timeline import Timeline
from proclab.tui.screens.details import DetailsScreen
from proclab.tui.screens.dialogs import ChoiceScreen
from proclab.tui.screens.help import HelpScreen
from proclab.tui.screens.lab_keys import LAB_BINDINGS, QUIT_LEAVING
from proclab.tui.screens.process_commands import ProcessCommands, allowed
from proclab.tui.widgets.cpu_pane import CpuPane
from proclab.tui.widgets.output_log import CallLine, OutputLog, call_entries
from proclab.tui.widgets.process_table import COLUMN_KEYS, COLUMN_LABELS, ProcessTable
from proclab.tui.widgets.server_pane import ServerPane
from proclab.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from proclab.core.server.tcp import ServerConfig
    from proclab.tui.screens.experiments import ExperimentMemory

# At this size and larger every pane is on screen; below it, one pane at a time.
WIDE = (120, 32)
PANES = {
    "procs": ("1", "Processes"),
    "log": ("2", "Output"),
    "cpu": ("3", "CPU"),
    "server": ("4", "Server"),
}
PANE_FOCUS = {"procs": "#table", "log": "#output", "cpu": "#cpu", "server": "#server-toggle"}


class LabScreen(ProcessCommands):
    EMPTY_TABLE = (
        "No processes. Press n to start one (the spawn form),\n"
        "or start proclab with some: proclab TARGET, e.g.\n"
        "  proclab proclab.core.tasks:sleep --args '(5,)' --count 3\n"
        "? shows every key."
    )
    BINDINGS: ClassVar[list[BindingType]] = LAB_BINDINGS
    COMPACT_FOOTER = False  # True: the footer's keys closer together (more keys to show)
    # The pane shown and focused (the only one on a narrow terminal), and whether it is.
    pane: reactive[str] = reactive("procs", init=False)
    narrow: reactive[bool | None] = reactive(None, init=False)

    class Ready(Message):
        """The panes are mounted and show the source (posted once, for the app)."""

    def __init__(
        self,
        source: ProcessSource,
        *,
        method: str = DEFAULT_METHOD,
        clock: Callable[[], float] = time.time,
        startup: tuple[ProcessSpec, int] | None = None,
        serve: ServerConfig | None = None,
        cwd: str | None = None,
        live_keys: bool = False,
    ) -> None:
        """`startup`: children to start as it opens; `serve`: the TCP server to start.
        The rest: ProcessCommands'."""
        super().__init__(source, method=method, clock=clock, cwd=cwd, live_keys=live_keys)
        self._startup = startup
        self._serve = serve
        self._backfilled: set[int] = set()
        self.timeline = Timeline()  # every tick of every child, for the timeline screen
        self.calls = CallLog()  # a watched program's multiprocessing calls, per process
        self._detach_timeline: Callable[[], None] | None = None
        self._experiments: ExperimentMemory | None = None  # the experiments screen's

    # Layout -------------------------------------------------------------------------------

    @property
    def table(self) -> ProcessTable:
        return self.query_one("#table", ProcessTable)

    @property
    def output_log(self) -> OutputLog:
        return self.query_one("#output", OutputLog)

    @property
    def cpu_pane(self) -> CpuPane:
        return self.query_one("#cpu-pane", CpuPane)

    @property
    def server_pane(self) -> ServerPane:
        return self.query_one("#server-pane", ServerPane)

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Tabs(
            *(Tab(f"{key} {title}", id=f"tab-{pane}") for pane, (key, title) in PANES.items()),
            id="tabs",
        )
        with Container(id="panes"):
            with Vertical(id="procs", classes="pane -active"):
                yield Input(
                    placeholder="filter: name, pid, state, target… (Enter: done, Escape: clear)",
                    id="filter",
                )
                yield ProcessTable(id="table")
            with VerticalScroll(id="cpu", classes="pane", can_focus=True):
                yield CpuPane(id="cpu-pane")
            with Vertical(id="log", classes="pane"):
                yield OutputLog(history=self.source.output, id="output")
            with Vertical(id="server", classes="pane"):
                yield ServerPane(self.source, live=self._live_keys, id="server-pane")
        yield Footer(compact=self.COMPACT_FOOTER)

    def on_mount(self) -> None:
        if not self.query("#filter"):
            # Its panes already gone: the app ended as it opened (a web tab closed 0.05-0.3
            # s after it opened, and its proclab failed with NoMatches).
            return
        for pane, (key, title) in PANES.items():
            self.query_one(f"#{pane}").border_title = f"{key} {title}"
        self.query_one("#filter", Input).display = False
        self._detach_timeline = self.timeline.attach(self.source)
        self._backfill_output()
        self.fit(self.app.size.width, self.app.size.height)
        self.table.empty_text = self.EMPTY_TABLE
        self.table.focus()
        self.refresh_rows()
        system = self.source.system()
        if system is not None:
            self.cpu_pane.record([system], self.source.interval)
        self.update_status()
        self.app.theme_changed_signal.subscribe(self, self._on_theme_changed)
        if self._startup is not None:
            spec, count = self._startup
            self.run_command(lambda: self.spawn(spec, count))
        config, server = self._serve, self.source.server
        if config is not None and server is not None:
            error = self.server_pane.start_asked(config)
            if error is not None:
                self.notify(error, severity="error", markup=False)
        self.post_message(self.Ready())

    def _backfill_output(self) -> None:
        """Lines printed before the app subscribed (children started before it, e.g. by
        `proclab TARGET`), in the order they were read. Lines also queued as events since
        the subscription are the same objects, and are skipped when drained."""
        earlier = sorted(
            (line for row in self.source.rows() for line in self.source.output(row.id)),
            key=lambda line: line.time,
        )
        self._backfilled = {id(line) for line in earlier}
        if earlier:
            self.output_log.add(earlier)

    def on_unmount(self) -> None:
        if self._detach_timeline is not None:
            self._detach_timeline()

    def fit(self, width: int, height: int) -> None:
        """Every pane at once on a large terminal; one at a time, behind tabs, on a small one."""
        self.narrow = width < WIDE[0] or height < WIDE[1]

    def watch_narrow(self, narrow: bool | None) -> None:
        self.set_class(bool(narrow), "-narrow")
        self.query_one("#tabs", Tabs).display = bool(narrow)

    def _on_theme_changed(self, _theme: object) -> None:
        self.table.restyle()
        self.refresh_rows()

    # What the source sent ------------------------------------------------------------------

    def show_events(
        self,
        arrived: Sequence[Event],
        dropped: int,
        *,
        notify: bool = True,
    ) -> None:
        """Draw a batch of events and output lines, in the order the source told them
        (`dropped`: lines printed faster than drawn, never handed over). The output pane
        shows lines, notices and calls in that order, and with `notify` the warnings and
        errors pop up too."""
        shown: list[OutputLine | Notice | CallLine] = []
        backfilled = self._backfilled
        server_events: list[ServerEvent] = []
        systems: list[SystemSample] = []  # the CPU pane's, drawn once for the batch
        rows_changed = told = False  # told: an event that is not an output line
        for event in arrived:
            if type(event) is OutputLine:  # a flood's every line: first, and alone
                if not backfilled or id(event) not in backfilled:
                    shown.append(event)
                continue
            told = True
            if isinstance(event, Notice):
                shown.append(event)
                if notify and event.level != "info":
                    text = on_screen(event.text)
                    self.notify(text, severity=event.level, timeout=8, markup=False)
            elif isinstance(event, Sampled):
                systems.append(event.system)
                rows_changed = True
            elif isinstance(event, ServerEvent):
                server_events.append(event)
            elif isinstance(event, ProcessCall):  # under the process that made it
                self.calls.feed(event)
                shown.extend(call_entries(event))
            else:
                rows_changed = True
        self.cpu_pane.record(systems, self.source.interval)
        self._backfilled.clear()  # only events queued before the backfill can repeat it
        if shown or dropped:
            self.output_log.add(shown, skipped=dropped)
        if server_events:
            self.server_pane.add_events(server_events)
        if rows_changed:
            self.refresh_rows()
            self.server_pane.follow()
        if told:  # output lines alone change nothing the status line shows
            self.update_status()
        if isinstance(self.app.screen, DetailsScreen):
            self.app.screen.reload()

    def selected_id(self) -> int | None:
        return self.table.selected_id

    def refresh_rows(self) -> None:
        self.table.show(self.source.rows(), self.clock())

    def update_status(self) -> None:
        self.query_one("#status", StatusBar).show(self.source, self._joining.values())

    def _details_source(
        self, rec_id: int
    ) -> tuple[ProcessRow, tuple[OutputLine, ...], float] | None:
        try:
            row = self.source.row(rec_id)
        except ProclabError:
            return None
        return row, self.source.output(rec_id), self.clock()

    def _row_or_none(self, rec_id: int) -> ProcessRow | None:
        try:
            return self.source.row(rec_id)
        except ProclabError:
            return None

    def _batch_figures(self, row: ProcessRow, now: float) -> BatchFigures | None:
        """The figures of the children started with `row`, if it was started with others."""
        if row.batch is None:
            return None
        members = batch_of(self.source.rows(), row)
        return batch_figures(members, now, self.source.usable_cpus())

    # Keys the source allows ------------------------------------------------------------------

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """The footer's keys: those the source does not allow are not offered (they still
        answer, saying why)."""
        return {
            key: active
            for key, active in super().active_bindings.items()
            if self.allows(active.binding.action)
        }

    def key_bindings(self) -> list[Binding]:
        """Every key of the lab the source allows, then the app's: for the help and the
        command palette (a replay's help listed spawn, kill and the server, which it
        refuses)."""
        bindings = [
            b
            for b in (*self.BINDINGS, *self.app.BINDINGS)
            if isinstance(b, Binding) and self.allows(b.action)
        ]
        if self.source.capabilities.ends_on_quit or self._live_keys:
            return bindings
        return [
            replace(b, tooltip=QUIT_LEAVING) if b.action == "app.quit" and b.tooltip else b
            for b in bindings
        ]

    # Selection ------------------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """Textual is taking the screens down: widgets' last messages still arrive, and
        must not reach for panes that are gone."""
        return not self.app.is_running or not self.app.screen_stack

    @on(ProcessTable.Selected, "#table")
    def _row_selected(self, message: ProcessTable.Selected) -> None:
        if self.closing:
            return
        self.output_log.set_selected(message.rec_id)
        self._label_table()
        self._label_log()

    @on(ProcessTable.Activated, "#table")
    def _row_activated(self) -> None:
        if not self.closing:
            self.action_details()

    @on(ProcessTable.Sorted, "#table")
    def _table_sorted(self) -> None:
        if not self.closing:
            self._label_table()

    @on(OutputLog.Filtered, "#output")
    def _log_filtered(self) -> None:
        if not self.closing:
            self._label_log()

    def _label_log(self) -> None:
        """The output pane's subtitle: whose lines it shows, when it shows one process's,
        and how many lines it never could show."""
        log = self.output_log
        parts = []
        if log.only_selected:
            rec_id = self.table.selected_id
            try:
                row = self.source.row(rec_id) if rec_id is not None else None
            except ProclabError:
                row = None
            who = (
                f"{escape_controls(row.name, tabs=True)} ({row.pid or 'not started'})"
                if row
                else "no process"
            )
            parts.append(f"only {who} · f: all")
        if log.not_shown:
            parts.append(f"{log.not_shown:,} lines not shown (printed faster than drawn)")
        # As typed or named, never read as markup: "[/]" in a name crashed the app.
        self.query_one("#log").border_subtitle = Content(" · ".join(parts))

    def _label_table(self) -> None:
        """The process pane's subtitle: how the table is sorted and filtered."""
        table = self.table
        parts = [f"sort {table.sort_label} (s)"]
        if table.view_label:  # a tree to show: tree or flat (F5)
            parts.append(table.view_label)
        if table.filter_text:
            typed = escape_controls(repr(table.filter_text))
            parts.append(f"filter {typed} ({table.row_count} shown)")
        self.query_one("#procs").border_subtitle = Content(" · ".join(parts))

    @on(ServerPane.SelectHandler, "#server-pane")
    def _handler_chosen(self, message: ServerPane.SelectHandler) -> None:
        """A server log line was highlighted: its handler becomes the selected process."""
        if self.closing:
            return
        row = next((r for r in self.source.rows() if r.pid == message.pid), None)
        if row is not None:
            self.table.select(row.id)

    # Commands ------------------------------------------------------------------------------

    def action_details(self) -> None:
        row = self.selected()
        if row is not None:
            self.app.push_screen(
                DetailsScreen(
                    row.id, self._details_source, self._batch_figures, self.calls, self._row_or_none
                )
            )

    def spawned(self, ids: tuple[int, ...] | None) -> None:
        """Children were started (by the form, a demo): the first is selected, in view."""
        if ids:
            self.table.select(ids[0])
            self.action_pane("procs")

    def action_cancel_join(self) -> None:
        """Stop waiting for pending joins (the children run on); Escape in the filter box
        clears the filter instead."""
        if not self._joining or self.query_one("#filter", Input).has_focus:
            raise SkipAction()
        what = ", ".join(self._joining.values())
        self.workers.cancel_group(self, "join")
        self.notify(
            f"stopped waiting for {what}: the children run on (j joins again)", markup=False
        )

    # Panes, filter, sort ---------------------------------------------------------------------

    def action_filter(self) -> None:
        self.action_pane("procs")
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value, self.source.rows(), self.clock())
        self._label_table()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.input.display = bool(event.value)
        self.table.focus()

    def on_key(self, event: events.Key) -> None:
        """Escape clears the filter: in its box, or at the table once Enter has left it
        there (where the table's "Escape clears the filter" sent it before); a join being
        waited for is stopped first (action_cancel_join)."""
        box = self.query_one("#filter", Input)
        at_table = self.table.has_focus and bool(box.value) and not self._joining
        if event.key == "escape" and (box.has_focus or at_table):
            box.value = ""
            box.display = False
            self.table.focus()
            event.stop()

    def action_pane(self, pane: str) -> None:
        self.pane = pane
        self.query_one(PANE_FOCUS[pane]).focus()

    def watch_pane(self, pane: str) -> None:
        for name in PANES:
            self.query_one(f"#{name}").set_class(name == pane, "-active")
        tabs = self.query_one("#tabs", Tabs)
        if tabs.active != f"tab-{pane}":
            tabs.active = f"tab-{pane}"

    @on(Tabs.TabActivated, "#tabs")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        pane = (event.tab.id or "tab-procs").removeprefix("tab-")
        if pane != self.pane and not self.closing:
            self.action_pane(pane)

    def action_sort_menu(self) -> None:
        def chosen(column: str | None) -> None:
            if column:
                self.table.sort_by(column)

        self.action_pane("procs")
        self.app.push_screen(
            ChoiceScreen(
                "Sort by (numbers: highest first)",
                [(COLUMN_LABELS[key], key) for key in COLUMN_KEYS],
                self.table.sort_column,
            ),
            chosen,
        )

    @allowed
    def action_server(self) -> None:
        """Start or stop the TCP server with the pane's settings."""
        self.action_pane("server")
        self.server_pane.toggle()

    # Other screens --------------------------------------------------------------------------

    def action_schedule(self) -> None:
        from proclab.tui.screens.schedule import ScheduleScreen

        if not isinstance(self.app.screen, ScheduleScreen):
            self.app.push_screen(ScheduleScreen(processes=self.source))

    def action_timeline(self) -> None:
        from proclab.tui.screens.timeline import TimelineScreen

        if not isinstance(self.app.screen, TimelineScreen):
            self.app.push_screen(
                TimelineScreen(self.timeline, self.source.interval, self.source.capabilities.spawn)
            )

    def action_experiments(self) -> None:
        from proclab.tui.screens.experiments import ExperimentMemory, ExperimentsScreen

        if self._experiments is None:
            self._experiments = ExperimentMemory()
        if not isinstance(self.app.screen, ExperimentsScreen):
            memory = self._experiments
            self.app.push_screen(ExperimentsScreen(cwd=self._cwd, clock=self.clock, memory=memory))

    def action_help(self) -> None:
        table_bindings = [b for b in ProcessTable.BINDINGS if isinstance(b, Binding)]
        log_bindings = [b for b in OutputLog.BINDINGS if isinstance(b, Binding)]
        self.app.push_screen(
            HelpScreen(
                [
                    # One section for the keys that work anywhere (it had an "Everywhere"
                    # and an "Anywhere").
                    (
                        "Everywhere",
                        [
                            *self.key_bindings(),
                            Binding("ctrl+p", "", "Command palette: every action by name"),
                            Binding("tab", "", "Next pane or field"),
                        ],
                    ),
                    (
                        "Process table",
                        [b for b in table_bindings if b.key in ("s", "S", "f5", "enter")],
                    ),
                    ("Output log", log_bindings),
                ]
            )
        )
