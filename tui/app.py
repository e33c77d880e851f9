"""The proclab app: process table, output log, CPU pane and TCP server pane on one screen
(at 120x32 and larger) or one at a time behind tabs (smaller), driven from the keyboard.

Everything shown comes from the controller. Its threads hand events over with
`call_soon_threadsafe`; the app drains them in batches on its own loop, so a chatty child
or a thousand rows never make a key wait. Nothing here blocks: joins are awaited, the
controller's shutdown runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

from rich.text import Text
from textual import events, work
from textual.actions import SkipAction
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Static, Tab, Tabs

from proclab.core.batch import BatchFigures, batch_figures, batch_of
from proclab.core.calls import CallLog
from proclab.core.defaults import DEFAULT_GRACE_S, DEFAULT_METHOD
from proclab.core.errors import AlreadyPending, ProclabError
from proclab.core.model import (
    Event,
    Notice,
    OutputLine,
    ProcessCall,
    ProcessRow,
    ProcessSpec,
    ProcState,
    Sampled,
    ServerEvent,
    SystemSample,
)
from proclab.core.output import escape_controls
from proclab.core.source import Capabilities
from proclab.core.timeline import Timeline
from proclab.core.words import plural
from proclab.tui.batch_words import batch_lines
from proclab.tui.screens.details import DetailsScreen, live_words
from proclab.tui.screens.dialogs import ChoiceScreen, ConfirmScreen, PromptScreen
from proclab.tui.screens.help import HelpScreen
from proclab.tui.screens.spawn_form import SpawnScreen
from proclab.tui.widgets.cpu_pane import CpuPane
from proclab.tui.widgets.output_log import SCROLLBACK, CallLine, OutputLog, call_entries
from proclab.tui.widgets.process_table import COLUMN_KEYS, COLUMN_LABELS, ProcessTable
from proclab.tui.widgets.server_pane import ServerPane

# At this size and larger every pane is on screen; below it, one pane at a time.
WIDE = (120, 32)
DRAIN_DELAY_S = 0.05  # events arriving within this are drawn together
# While children print faster than the pane draws (lines were dropped), the screen is
# redrawn this often: drawing a flood 20 times a second would leave keys waiting.
FLOOD_DRAIN_S = 0.25

PANES = {
    "procs": ("1", "Processes"),
    "log": ("2", "Output"),
    "cpu": ("3", "CPU"),
    "server": ("4", "Server"),
}
PANE_FOCUS = {"procs": "#table", "log": "#output", "cpu": "#cpu", "server": "#server-toggle"}


class ControllerLike(Protocol):
    """What the app needs from proclab.core.Controller (tests pass a fake)."""

    max_procs: int
    grace: float
    capabilities: Capabilities

    def describe(self) -> str: ...

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]: ...
    def rows(self) -> tuple[ProcessRow, ...]: ...
    def row(self, rec_id: int) -> ProcessRow: ...
    def system(self) -> SystemSample | None: ...
    def output(self, rec_id: int, last: int | None = None) -> tuple[OutputLine, ...]: ...
    def live_count(self) -> int: ...
    def usable_cpus(self) -> tuple[int, ...]: ...
    def set_interval(self, seconds: float) -> None: ...
    def spawn(self, spec: ProcessSpec, count: int = 1) -> tuple[int, ...]: ...
    def terminate(self, rec_id: int, escalate_after: float | None = None) -> None: ...
    def kill(self, rec_id: int) -> None: ...
    def pause(self, rec_id: int) -> None: ...
    def resume(self, rec_id: int) -> None: ...
    def rename(self, rec_id: int, name: str) -> None: ...
    def restart(self, rec_id: int) -> None: ...
    def clear_exited(self) -> int: ...
    async def join_async(self, ids: Iterable[int], timeout: float | None = None) -> bool: ...
    def shutdown_children(self, grace: float) -> None: ...


class StatusBar(Static):
    """One line: what is running, the start method, the machine's load."""


class ShutdownScreen(ModalScreen[None]):
    """Shown while proclab ends its children: what it sent, how long it waits."""

    def __init__(self, reason: str) -> None:
        super().__init__(classes="dialog")
        self._lines = [reason]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box", id="shutdown-box"):
            yield Static("\n".join(self._lines), id="shutdown-text")

    def add(self, line: str) -> None:
        self._lines.append(line)
        self.query_one("#shutdown-text", Static).update("\n".join(self._lines))


class QuitScreen(ConfirmScreen):
    """The quit question: a quit key pressed again answers it yes (Ctrl+C and Ctrl+Q reach
    the app's own binding, which is a priority one)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("q,f10", "answer(True)", "Quit")]


class ProclabApp(App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "proclab"
    EMPTY_TABLE = (
        "No processes yet. Press n to start one (the spawn form),\n"
        "or start proclab with some: proclab TARGET, e.g.\n"
        "  proclab proclab.core.tasks:sleep --args '(5,)' --count 3\n"
        "? shows every key."
    )

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "spawn", "Spawn", tooltip="Start processes (the spawn form)"),
        Binding(
            "j",
            "join",
            "Join",
            tooltip="Join the selected process: wait for it to end; the interface keeps running",
        ),
        Binding("J", "join_timeout", "Join…", show=False, tooltip="Join with a timeout"),
        Binding(
            "a",
            "join_all",
            "Join all",
            show=False,
            tooltip="Join all: the selected process's batch (started together) if it runs,"
            " else every live child; then their total time and speed-up",
        ),
        Binding(
            "escape",
            "cancel_join",
            "Cancel join",
            show=False,
            tooltip="Stop waiting for a pending join (the children run on)",
        ),
        Binding(
            "t",
            "terminate",
            "Term",
            tooltip="Terminate the selected process (SIGTERM to its group, asks first)",
        ),
        Binding("k,f9", "kill", "Kill", tooltip="Kill the selected process (SIGKILL, asks first)"),
        Binding(
            "p",
            "pause",
            "Pause",
            tooltip="Pause (SIGSTOP) or resume (SIGCONT) the selected process",
        ),
        Binding(
            "i",
            "details",
            "Details",
            show=False,
            tooltip="Details of the selected process (also Enter)",
        ),
        Binding(
            "r",
            "rename",
            "Rename",
            show=False,
            tooltip="Rename the selected process (its Process.name)",
        ),
        Binding(
            "R", "restart", "Restart", show=False, tooltip="Start the selected process's spec again"
        ),
        Binding(
            "c", "clear", "Clear", show=False, tooltip="Clear every ended process from the table"
        ),
        Binding("slash", "filter", "Filter", show=False, tooltip="Filter the table by text"),
        Binding(
            "1", "pane('procs')", "Processes", show=False, tooltip="Show / focus the process table"
        ),
        Binding("2", "pane('log')", "Output", show=False, tooltip="Show / focus the output log"),
        Binding("3", "pane('cpu')", "CPU", show=False, tooltip="Show / focus the CPU pane"),
        Binding(
            "4", "pane('server')", "Server", show=False, tooltip="Show / focus the TCP server pane"
        ),
        Binding(
            "ctrl+t",
            "server",
            "Server on/off",
            show=False,
            tooltip="Start or stop the TCP echo server (settings in its pane)",
        ),
        Binding(
            "g",
            "schedule",
            "CPU scheduling",
            show=False,
            tooltip="CPU scheduling simulator: FCFS, SJF, SRTF, RR, MLFQ; Gantt chart, compared",
        ),
        Binding(
            "l",
            "timeline",
            "Timeline",
            show=False,
            tooltip="Timeline: each child's state and core in every tick (parallel vs concurrent)",
        ),
        Binding(
            "e",
            "experiments",
            "Experiments",
            show=False,
            tooltip="Experiments: parallel vs serial, start-method latency, CPU- vs I/O-bound",
        ),
        Binding("f6", "sort_menu", "Sort by", show=False, tooltip="Sort by a column (a list)"),
        Binding("question_mark,f1", "help", "Help", tooltip="This help"),
        Binding(
            "q,f10",
            "quit",
            "Quit",
            tooltip="Quit: ends every child first (asks if some still run; again: yes)",
        ),
        Binding("ctrl+q,ctrl+c", "quit", "Quit", show=False, priority=True, tooltip="Quit"),
    ]

    def __init__(
        self,
        controller: ControllerLike,
        *,
        refresh: float = 1.0,
        method: str = DEFAULT_METHOD,
        clock: Callable[[], float] = time.time,
        startup: tuple[ProcessSpec, int] | None = None,
        serve: Any = None,
        cwd: str | None = None,
    ) -> None:
        super().__init__()
        self.controller = controller
        self.refresh_interval = refresh
        self.default_method = method
        self.clock = clock
        self._startup = startup
        self._serve = serve  # a ServerConfig to start the TCP server with at launch
        self._cwd = cwd
        self._inbox: deque[Event] = deque()
        # Output lines wait apart, the newest SCROLLBACK only (the pane keeps no more): a
        # child printing faster than the pane draws costs a count, not memory or time.
        self._lines_lock = threading.Lock()
        self._lines: deque[OutputLine] = deque(maxlen=SCROLLBACK)
        self._lines_dropped = 0
        self._wake_pending = False
        self._drain_scheduled = False
        self._drain_delay = DRAIN_DELAY_S
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._joining: dict[int, str] = {}  # what each pending join waits for
        self._join_tokens = itertools.count()
        self._active_pane = "procs"
        self._quitting = False
        self.shutdown_log: list[str] = []  # notices while ending the children, shown on exit
        self._narrow: bool | None = None
        self._backfilled: set[int] = set()
        self.timeline = Timeline()  # every tick of every child, for the timeline screen
        self.calls = CallLog()  # a watched program's multiprocessing calls, per process
        self._detach_timeline: Callable[[], None] | None = None
        self._experiments: Any = None  # the experiments screen's choice and last result

    # Layout -------------------------------------------------------------------------------

    @property
    def main(self) -> Screen[Any]:
        """The main screen, whatever dialog is on top of it."""
        return self.screen_stack[0]

    @property
    def table(self) -> ProcessTable:
        return self.main.query_one("#table", ProcessTable)

    @property
    def output_log(self) -> OutputLog:
        return self.main.query_one("#output", OutputLog)

    @property
    def cpu_pane(self) -> CpuPane:
        return self.main.query_one("#cpu-pane", CpuPane)

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
                yield OutputLog(history=self.controller.output, id="output")
            with Vertical(id="server", classes="pane"):
                yield ServerPane(id="server-pane")
        yield Footer()

    def on_mount(self) -> None:
        for pane, (key, title) in PANES.items():
            self.main.query_one(f"#{pane}").border_title = f"{key} {title}"
        self.main.query_one("#filter", Input).display = False
        self._event_loop = asyncio.get_running_loop()
        self._unsubscribe = self.controller.subscribe(self._on_event)
        self._detach_timeline = self.timeline.attach(self.controller)
        self._backfill_output()
        self.controller.set_interval(self.refresh_interval)
        self._apply_layout(self.size.width, self.size.height)
        self.table.empty_text = self.EMPTY_TABLE
        self.table.focus()
        self._refresh_rows()
        system = self.controller.system()
        if system is not None:
            self.cpu_pane.record(system, self.refresh_interval)
        self._update_status()
        for sig, name in (
            (signal.SIGTERM, "SIGTERM"),
            (signal.SIGHUP, "SIGHUP"),
            (signal.SIGINT, "SIGINT"),
        ):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._event_loop.add_signal_handler(sig, self._on_signal, name)
        self.theme_changed_signal.subscribe(self, self._on_theme_changed)
        if self._startup is not None:
            spec, count = self._startup
            self._run(lambda: self._spawn(spec, count))
        if self._serve is not None:
            self._run(lambda: self.controller.server.start(self._serve))  # type: ignore[attr-defined]
            self.main.query_one("#server-pane", ServerPane).show_status()

    def _backfill_output(self) -> None:
        """Lines printed before the app subscribed (children started before it, e.g. by
        `proclab TARGET`), in the order they were read. Lines also queued as events since
        the subscription are the same objects, and are skipped when drained."""
        earlier = sorted(
            (line for row in self.controller.rows() for line in self.controller.output(row.id)),
            key=lambda line: line.time,
        )
        self._backfilled = {id(line) for line in earlier}
        if earlier:
            self.output_log.add(earlier)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._detach_timeline is not None:
            self._detach_timeline()
        if self._event_loop is not None:
            for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                with contextlib.suppress(Exception):
                    self._event_loop.remove_signal_handler(sig)

    def on_resize(self, event: events.Resize) -> None:
        self._apply_layout(event.size.width, event.size.height)

    def _apply_layout(self, width: int, height: int) -> None:
        narrow = width < WIDE[0] or height < WIDE[1]
        if narrow == self._narrow:
            return
        self._narrow = narrow
        self.screen.set_class(narrow, "-narrow")
        self.main.query_one("#tabs", Tabs).display = narrow

    def _on_theme_changed(self, _theme: object) -> None:
        self.table.restyle()
        self._refresh_rows()

    # Events from the controller ----------------------------------------------------------

    class EventsArrived(Message):
        """The controller queued events for the app (posted at most once per drain)."""

    def _on_event(self, event: Event) -> None:
        """Called from the controller's threads: queue, and wake the app once."""
        if isinstance(event, OutputLine):
            with self._lines_lock:
                if len(self._lines) == SCROLLBACK:
                    self._lines_dropped += 1
                self._lines.append(event)
        else:
            self._inbox.append(event)
        if self._wake_pending:
            return
        self._wake_pending = True
        self.post_message(self.EventsArrived())  # thread-safe

    def events_pending(self) -> bool:
        """Events handed over and not drawn yet (a drain is coming for them)."""
        return bool(self._inbox or self._lines or self._wake_pending or self._drain_scheduled)

    def _forget_pending(self) -> None:
        """Drop the events not drawn yet (a replay seeking back hands them out again)."""
        self._inbox.clear()
        with self._lines_lock:
            self._lines.clear()
            self._lines_dropped = 0

    def on_proclab_app_events_arrived(self, _message: EventsArrived) -> None:
        self._wake_pending = False
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self.set_timer(self._drain_delay, self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        # The app is closing: its screens go before it unsubscribes, and this timer may
        # fire in between (it did on a slow machine, and raised NoMatches).
        if not self.is_running or self._exit or not self.screen_stack:
            return
        events: list[Event] = []
        while self._inbox:
            events.append(self._inbox.popleft())
        with self._lines_lock:
            queued, self._lines = self._lines, deque(maxlen=SCROLLBACK)
            dropped, self._lines_dropped = self._lines_dropped, 0
        self._drain_delay = FLOOD_DRAIN_S if dropped else DRAIN_DELAY_S
        if not events and not queued:
            return
        lines: list[OutputLine | Notice | CallLine] = list(queued)
        if self._backfilled:
            lines = [e for e in lines if id(e) not in self._backfilled]
        notices: list[Notice | CallLine] = []  # lines that are not output
        server_events: list[ServerEvent] = []
        rows_changed = False
        cpu = self.cpu_pane
        for event in events:
            if isinstance(event, Notice):
                notices.append(event)
                self._show_notice(event)
            elif isinstance(event, Sampled):
                cpu.record(event.system, self.refresh_interval)
                rows_changed = True
            elif isinstance(event, ServerEvent):
                server_events.append(event)
            elif isinstance(event, ProcessCall):  # under the process that made it
                self.calls.feed(event)
                notices.extend(call_entries(event))
            else:
                rows_changed = True
        self._backfilled.clear()  # only events queued before the backfill can repeat it
        if notices:  # among the lines they came with
            lines = sorted([*lines, *notices], key=lambda entry: entry.time)
        if lines or dropped:
            self.output_log.add(lines, skipped=dropped)
        server_pane = self.main.query_one("#server-pane", ServerPane)
        if server_events:
            server_pane.add_events(server_events)
        if rows_changed:
            self._refresh_rows()
            server_pane.follow()
        if events:  # output lines alone change nothing the status line shows
            self._update_status()
        self._refresh_details()

    def _show_notice(self, notice: Notice) -> None:
        screen = self.screen
        text = escape_controls(notice.text)
        if isinstance(screen, ShutdownScreen):
            screen.add(text)
        elif notice.level != "info":
            self.notify(text, severity=notice.level, timeout=8, markup=False)

    def _refresh_rows(self) -> None:
        self.table.show(self.controller.rows(), self.clock())

    def _details_source(
        self, rec_id: int
    ) -> tuple[ProcessRow, tuple[OutputLine, ...], float] | None:
        try:
            row = self.controller.row(rec_id)
        except ProclabError:
            return None
        return row, self.controller.output(rec_id), self.clock()

    def _row_or_none(self, rec_id: int) -> ProcessRow | None:
        try:
            return self.controller.row(rec_id)
        except ProclabError:
            return None

    def _batch_figures(self, row: ProcessRow, now: float) -> BatchFigures | None:
        """The figures of the children started with `row`, if it was started with others."""
        if row.batch is None:
            return None
        members = batch_of(self.controller.rows(), row)
        return batch_figures(members, now, self.controller.usable_cpus())

    def _refresh_details(self) -> None:
        if isinstance(self.screen, DetailsScreen):
            self.screen.reload()

    def _update_status(self) -> None:
        if not self.screen_stack:
            return
        rows = self.controller.rows()
        live = sum(1 for r in rows if r.state.is_live)
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        text.append(" proclab ", "bold reverse")
        text.append(f" {live} live · {len(rows) - live} ended")
        status_text = getattr(self.controller, "status_text", None)  # a recorded session
        if status_text is not None:  # before the machine's figures: the line is cut at 80
            text.append(f"   {status_text()}", "dim")
        system = self.controller.system()
        if system is not None:
            load = system.load[0]
            text.append(
                f"   CPU {system.total:.0f}%  mem {system.mem_percent:.0f}%  load {load:.2f}"
            )
        if self._joining:
            text.append(f"   joining {', '.join(self._joining.values())}; esc stops", "bold")
        if status_text is None and not self.controller.capabilities.spawn:  # proclab watch
            text.append(f"   {self.controller.describe()}", "dim")
        elif status_text is None:
            text.append(
                f"   new: {self.default_method}, tick {self.refresh_interval:g} s,"
                f" max {self.controller.max_procs}",
                "dim",
            )
        self.main.query_one("#status", StatusBar).update(text, layout=False)

    # Selection ------------------------------------------------------------------------------

    def _selected(self) -> ProcessRow | None:
        rec_id = self.table.selected_id
        if rec_id is None:
            self.notify("No process selected: start one with n", severity="warning")
            return None
        try:
            return self.controller.row(rec_id)
        except ProclabError:
            return None

    @property
    def closing(self) -> bool:
        """Textual is taking the screens down: widgets' last messages still arrive, and
        must not reach for panes that are gone."""
        return not self.is_running or not self.screen_stack

    def on_process_table_selected(self, message: ProcessTable.Selected) -> None:
        if self.closing:
            return
        self.output_log.set_selected(message.rec_id)
        self._label_table()
        self._label_log()

    def on_output_log_filtered(self, _message: OutputLog.Filtered) -> None:
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
                row = self.controller.row(rec_id) if rec_id is not None else None
            except ProclabError:
                row = None
            who = f"{row.name} ({row.pid or 'not started'})" if row else "no process"
            parts.append(f"only {who} · f: all")
        if log.not_shown:
            parts.append(f"{log.not_shown:,} lines not shown (printed faster than drawn)")
        self.main.query_one("#log").border_subtitle = " · ".join(parts)

    def on_process_table_sorted(self, _message: ProcessTable.Sorted) -> None:
        if not self.closing:
            self._label_table()

    def action_sort_menu(self) -> None:
        def chosen(column: str | None) -> None:
            if column:
                self.table.sort_by(column)

        self.action_pane("procs")
        self.push_screen(
            ChoiceScreen(
                "Sort by (numbers: highest first)",
                [(COLUMN_LABELS[key], key) for key in COLUMN_KEYS],
                self.table.sort_column,
            ),
            chosen,
        )

    def _label_table(self) -> None:
        """The process pane's subtitle: how the table is sorted and filtered."""
        table = self.table
        parts = [f"sort {table.sort_label} (s)"]
        if table.view_label:  # a tree to show: tree or flat (F5)
            parts.append(table.view_label)
        if table.filter_text:
            parts.append(f"filter {table.filter_text!r} ({table.row_count} shown)")
        self.main.query_one("#procs").border_subtitle = " · ".join(parts)

    def on_server_pane_select_handler(self, message: ServerPane.SelectHandler) -> None:
        """A server log line was highlighted: its handler becomes the selected process."""
        if self.closing:
            return
        row = next((r for r in self.controller.rows() if r.pid == message.pid), None)
        if row is not None:
            self.table.select(row.id)

    def action_server(self) -> None:
        """Start or stop the TCP server with the pane's settings."""
        self.action_pane("server")
        self.main.query_one("#server-pane", ServerPane).toggle()

    def on_process_table_activated(self, message: ProcessTable.Activated) -> None:
        if not self.closing:
            self.action_details()

    # Actions ------------------------------------------------------------------------------

    def _run(self, command: Callable[[], object], done: str | None = None) -> None:
        """Run a controller command; its errors become a notification, not a crash."""
        try:
            command()
        except AlreadyPending as exc:  # asked twice: not an error, but nothing more is done
            self.notify(str(exc), severity="warning", timeout=3)
            return
        except ProclabError as exc:
            self.notify(str(exc), severity="error")
            return
        if done:
            self.notify(done, timeout=3)
        self._refresh_rows()

    def action_spawn(self) -> None:
        self.push_screen(
            SpawnScreen(
                self._spawn,
                self.default_method,
                self._cwd,
                self.controller.usable_cpus(),
                lambda: (self.controller.live_count(), self.controller.max_procs),
            ),
            self._spawned,
        )

    def _spawn(self, spec: ProcessSpec, count: int) -> tuple[int, ...]:
        ids = self.controller.spawn(spec, count)
        self._refresh_rows()
        return ids

    def _spawned(self, ids: tuple[int, ...] | None) -> None:
        if ids:
            self.table.select(ids[0])
            self.action_pane("procs")

    def action_details(self) -> None:
        row = self._selected()
        if row is not None:
            self.push_screen(
                DetailsScreen(
                    row.id,
                    self._details_source,
                    self._batch_figures,
                    self.calls,
                    self._row_or_none,
                )
            )

    def action_terminate(self) -> None:
        self._ask_then_signal(
            "SIGTERM",
            "Terminate",
            "It may clean up first (or ignore it); its children get it too.",
            lambda row: self.controller.terminate(row.id),
        )

    def action_kill(self) -> None:
        self._ask_then_signal(
            "SIGKILL",
            "Kill",
            "It cannot clean up, and its children die with it.",
            lambda row: self.controller.kill(row.id),
        )

    def _ask_then_signal(
        self, signame: str, verb: str, consequence: str, send: Callable[[ProcessRow], None]
    ) -> None:
        """A signal that ends a process asks first: htop users press keys to look around."""
        row = self._selected()
        if row is None:
            return
        if row.state.is_over or row.pid is None:  # nothing to ask: say why it can't be sent
            self._run(lambda: send(row))
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._run(lambda: send(row), f"{signame} sent to {row.name} ({row.pid})")

        self.push_screen(
            ConfirmScreen(f"{verb} {row.name} ({row.pid}) with {signame}?\n{consequence}", verb),
            answered,
        )

    def action_pause(self) -> None:
        row = self._selected()
        if row is None:
            return
        if row.state.value == "stopped":
            self._run(
                lambda: self.controller.resume(row.id), f"SIGCONT sent to {row.name} ({row.pid})"
            )
        else:
            self._run(
                lambda: self.controller.pause(row.id), f"SIGSTOP sent to {row.name} ({row.pid})"
            )

    def action_rename(self) -> None:
        row = self._selected()
        if row is None:
            return

        def check(text: str) -> str | None:
            return None if text.strip() else "a name cannot be empty"

        def answered(name: str | None) -> None:
            if name:
                self._run(lambda: self.controller.rename(row.id, name))

        self.push_screen(
            PromptScreen(f"New name for {row.name} (pid {row.pid})", row.name, check=check),
            answered,
        )

    def action_restart(self) -> None:
        row = self._selected()
        if row is not None:
            self._run(lambda: self.controller.restart(row.id), f"restarting {row.name}")

    def action_clear(self) -> None:
        cleared = self.controller.clear_exited()
        self.notify(f"cleared {plural(cleared, 'ended process')}", timeout=3)
        self._refresh_rows()

    def action_join(self) -> None:
        row = self._selected()
        if row is not None:
            self._join_unless_stopped([row], None, f"{row.name} ({row.pid})")

    def action_join_all(self) -> None:
        """The selected process's batch while some of it runs, else every live child; a
        batch that has ended is joined at once, for its figures."""
        rows = self.controller.rows()
        batch: tuple[ProcessRow, ...] = ()
        selected = self.table.selected_id
        row = next((r for r in rows if r.id == selected), None)
        if row is not None and row.batch is not None:
            batch = batch_of(rows, row)
        live = [r for r in rows if r.state.is_live]
        if batch and (any(r.state.is_live for r in batch) or not live):
            what = f"{batch[0].name}'s batch ({len(batch)} started together)"
            self._join_unless_stopped(batch, None, what)
        elif live:
            self._join_unless_stopped(live, None, plural(len(live), "live child"))
        else:
            self.notify("No child is running: nothing to join", severity="warning")

    def action_join_timeout(self) -> None:
        row = self._selected()
        if row is None:
            return

        def check(text: str) -> str | None:
            try:
                return (
                    None if not text.strip() or float(text) > 0 else "a number of seconds above 0"
                )
            except ValueError:
                return "a number of seconds, e.g. 2.5 (empty: no timeout)"

        def answered(text: str | None) -> None:
            if text is not None:
                timeout = float(text) if text.strip() else None
                self._join_unless_stopped([row], timeout, f"{row.name} ({row.pid})")

        self.push_screen(
            PromptScreen(f"Join {row.name}: wait at most how many seconds?", "5", check=check),
            answered,
        )

    def _join_unless_stopped(
        self, rows: Sequence[ProcessRow], timeout: float | None, what: str
    ) -> None:
        """Join, but first offer to resume a stopped child: a join waits for it to end,
        and a stopped child never does until something sends it SIGCONT."""
        stopped = [r for r in rows if r.state is ProcState.STOPPED]
        if not stopped:
            self._join(rows, timeout, what)
            return
        names = ", ".join(f"{r.name} ({r.pid})" for r in stopped[:3])
        if len(stopped) > 3:
            names += f" and {len(stopped) - 3} more"
        one = len(stopped) == 1

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            for row in stopped:
                self._run(lambda rec_id=row.id: self.controller.resume(rec_id))
            self._join(rows, timeout, what)

        self.push_screen(
            ConfirmScreen(
                f"{names} {'is' if one else 'are'} stopped (paused by SIGSTOP): a join would"
                f" wait until {'it is' if one else 'they are'} resumed.\n"
                f"Resume {'it' if one else 'them'} (SIGCONT) and join?",
                "Resume and join",
                "Cancel",
            ),
            answered,
        )

    @work(group="join", exit_on_error=False)
    async def _join(self, rows: Sequence[ProcessRow], timeout: float | None, what: str) -> None:
        """p.join(timeout) for each, awaited: the interface keeps running while it waits,
        and Escape stops waiting."""
        token = next(self._join_tokens)
        self._joining[token] = what
        self._update_status()
        began = time.monotonic()
        ids = [r.id for r in rows]
        try:
            done = await self.controller.join_async(ids, timeout)
        finally:
            self._joining.pop(token, None)
            self._update_status()
        waited = time.monotonic() - began
        if not done:
            row = self.controller.row(ids[0])
            self.notify(
                f"join {what} timed out after {timeout:g} s; it is {live_words(row)}",
                severity="warning",
            )
        elif len(ids) == 1:
            ended = self.controller.row(ids[0])
            self.notify(
                f"joined {what} after {waited:.2f} s: {ended.state}, exit {ended.exitcode}",
                timeout=5,
            )
        else:
            ended_rows = [self.controller.row(i) for i in ids]
            figures = batch_figures(ended_rows, self.clock(), self.controller.usable_cpus())
            self.notify("\n".join([f"joined {what}", *batch_lines(figures)]), timeout=12)

    def action_cancel_join(self) -> None:
        """Stop waiting for pending joins (the children run on); Escape in the filter box
        clears the filter instead."""
        if not self._joining or self.main.query_one("#filter", Input).has_focus:
            raise SkipAction()
        what = ", ".join(self._joining.values())
        self.workers.cancel_group(self, "join")
        self.notify(f"stopped waiting for {what}: the children run on (j joins again)")

    def action_filter(self) -> None:
        self.action_pane("procs")
        box = self.main.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.table.set_filter(event.value, self.controller.rows(), self.clock())
            self._label_table()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.display = bool(event.value)
            self.table.focus()

    def on_key(self, event: events.Key) -> None:
        box = self.main.query_one("#filter", Input)
        if event.key == "escape" and box.has_focus:
            box.value = ""
            box.display = False
            self.table.focus()
            event.stop()

    def action_pane(self, pane: str) -> None:
        self._active_pane = pane
        for name in PANES:
            self.main.query_one(f"#{name}").set_class(name == pane, "-active")
        tabs = self.main.query_one("#tabs", Tabs)
        if tabs.active != f"tab-{pane}":
            tabs.active = f"tab-{pane}"
        self.main.query_one(PANE_FOCUS[pane]).focus()

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        pane = (event.tab.id or "tab-procs").removeprefix("tab-")
        if pane != self._active_pane and not self.closing:
            self.action_pane(pane)

    def action_schedule(self) -> None:
        from proclab.tui.screens.schedule import ScheduleScreen

        if not isinstance(self.screen, ScheduleScreen):
            self.push_screen(ScheduleScreen())

    def action_timeline(self) -> None:
        from proclab.tui.screens.timeline import TimelineScreen

        if not isinstance(self.screen, TimelineScreen):
            self.push_screen(TimelineScreen(self.timeline, self.refresh_interval))

    def action_experiments(self) -> None:
        from proclab.tui.screens.experiments import ExperimentMemory, ExperimentsScreen

        if self._experiments is None:
            self._experiments = ExperimentMemory()
        if not isinstance(self.screen, ExperimentsScreen):
            screen = ExperimentsScreen(cwd=self._cwd, clock=self.clock, memory=self._experiments)
            self.push_screen(screen)

    def action_help(self) -> None:
        table_bindings = [b for b in ProcessTable.BINDINGS if isinstance(b, Binding)]
        log_bindings = [b for b in OutputLog.BINDINGS if isinstance(b, Binding)]
        app_bindings = [b for b in self.BINDINGS if isinstance(b, Binding)]
        self.push_screen(
            HelpScreen(
                [
                    ("Everywhere", app_bindings),
                    (
                        "Process table",
                        [b for b in table_bindings if b.key in ("s", "S", "f5", "enter")],
                    ),
                    ("Output log", log_bindings),
                    (
                        "Anywhere",
                        [
                            Binding("ctrl+p", "", "Command palette: every action by name"),
                            Binding("tab", "", "Next pane or field"),
                        ],
                    ),
                ]
            )
        )

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if not isinstance(binding, Binding) or (
                binding.action == "quit" and binding.key != "q"
            ):
                continue
            title = binding.description.rstrip("…") if binding.description else binding.action
            yield SystemCommand(
                title, binding.tooltip or title, self._palette_action(binding.action)
            )

    def _palette_action(self, action: str) -> Callable[[], Any]:
        return lambda: self.run_action(action)

    # Quitting -------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        if self._quitting:
            return
        if isinstance(self.screen, QuitScreen):  # a quit key again: yes (a second Ctrl+C)
            self.screen.dismiss(True)
            return
        live = self.controller.live_count()
        if not live:
            self._begin_shutdown("No children running: quitting.")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._begin_shutdown(f"Ending {plural(live, 'child')}…")

        self.push_screen(
            QuitScreen(
                f"{live} {'child is' if live == 1 else 'children are'} still running.\n"
                f"End {'it' if live == 1 else 'them'} (SIGTERM, then SIGKILL if ignored) and quit?",
                "End and quit",
                "Stay",
            ),
            answered,
        )

    def _on_signal(self, name: str) -> None:
        if not self._quitting:
            self._begin_shutdown(f"{name} received: ending every child and quitting…")

    def _begin_shutdown(self, reason: str) -> None:
        self._quitting = True
        self.push_screen(ShutdownScreen(reason))
        self._end_children()

    @work(thread=True, exit_on_error=False)
    def _end_children(self) -> None:
        grace = getattr(self.controller, "grace", DEFAULT_GRACE_S)

        def keep(event: Event) -> None:
            if isinstance(event, Notice):
                self.shutdown_log.append(event.text)

        # What happened to the children is printed again once the terminal is back (the
        # screen is gone a moment after the last SIGKILL).
        unsubscribe = self.controller.subscribe(keep)
        try:
            self.controller.shutdown_children(grace)
        finally:
            unsubscribe()
            self.call_from_thread(self.exit, 0)
