"""The TCP server pane: its settings, start/stop, a status line, and the log of every
connection. Moving through the log selects each line's handler in the process table."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static

from proclab.core.defaults import (
    DEFAULT_METHOD,
    METHODS,
    SERVER_HOST,
    SERVER_MAX_CLIENTS,
    SERVER_MODE,
    SERVER_MODES,
    SERVER_PORT,
    SERVER_WORKERS,
)
from proclab.core.errors import ProclabError
from proclab.core.model import ServerEvent, ServerStatus
from proclab.core.output import escape_controls, on_screen
from proclab.core.source import ProcessSource, ServerLike
from proclab.core.words import plural
from proclab.tui.theme import resolve
from proclab.tui.widgets.line_list import LineList
from proclab.tui.widgets.offscreen import PaintedWhenShown

if TYPE_CHECKING:
    from proclab.core.defaults import StartMethod
    from proclab.core.server.tcp import Mode, ServerConfig

LOG_LINES = 1000
KIND_STYLES = {
    "listening": "bold $success",
    "stopped": "bold $warning",
    "busy": "$warning",
    "refused": "$text-muted",
    "error": "bold $error",
    "warning": "bold $warning",
    "disconnected": "$text-muted",
    "data_in": "",
    "data_out": "$accent",
    "accepted": "$primary",
}


class StatusText(PaintedWhenShown, Static):
    """The server's state and counts: updated every tick, painted when seen."""


class ServerPane(Vertical):
    """Reads and drives the source's server (read-only where the source does not allow
    starting one: a recorded session's)."""

    DEFAULT_CSS = """
    ServerPane { height: 1fr; }
    ServerPane .server-row { height: 1; }
    ServerPane Label { width: auto; padding: 0 1 0 0; color: $text-muted; }
    ServerPane Input { width: 12; margin-right: 1; }
    ServerPane #server-host { width: 16; }
    ServerPane #server-port { width: 8; }
    ServerPane #server-workers, ServerPane #server-max { width: 6; }
    ServerPane Select { width: 16; margin-right: 1; }
    ServerPane Button { min-width: 9; margin-left: 1; }
    ServerPane #server-status { height: auto; padding-top: 1; }
    ServerPane LineList { height: 1fr; }
    """

    class SelectHandler(Message):
        """A log line was highlighted: select its handler process."""

        def __init__(self, pane: ServerPane, pid: int) -> None:
            super().__init__()
            self.pane = pane
            self.pid = pid

        @property
        def control(self) -> ServerPane:
            return self.pane

    def __init__(self, source: ProcessSource, *, live: bool = False, **kwargs: Any) -> None:
        """`live`: drawn as in a live session whatever the source allows (the README's
        pictures, made from a recording)."""
        super().__init__(**kwargs)
        self._source = source
        self._live = live

    def compose(self) -> ComposeResult:
        # Three short rows rather than two long ones: beside the process table at 120
        # columns the pane is 44 wide, and two rows cut off the mode ("mode pro") and, in
        # pool mode, Start.
        with Horizontal(classes="server-row"):
            yield Label("host", markup=False)
            yield Input(SERVER_HOST, id="server-host", compact=True)
            yield Label("port", markup=False)
            yield _number(SERVER_PORT, "server-port", 5)
        with Horizontal(classes="server-row"):
            yield Label("mode", markup=False)
            yield _choice(SERVER_MODES, SERVER_MODE, "server-mode")
            yield _choice(METHODS, DEFAULT_METHOD, "server-method")
        with Horizontal(classes="server-row"):
            yield Label("workers", markup=False, id="server-workers-label")
            yield _number(SERVER_WORKERS, "server-workers", 3)
            yield Label("max clients", markup=False)
            yield _number(SERVER_MAX_CLIENTS, "server-max", 4)
            yield Button("Start", id="server-toggle", variant="success", compact=True)
        yield StatusText(id="server-status")
        yield LineList(LOG_LINES, id="server-log")

    def on_mount(self) -> None:
        self.show_status()
        self._fit_mode()

    @on(Select.Changed, "#server-mode")
    def _fit_mode(self) -> None:
        """Only the settings the mode takes: workers were offered for a process-per-
        connection server, which has none; a thread server has no start method."""
        mode = self.query_one("#server-mode", Select).value
        for selector in ("#server-workers-label", "#server-workers"):
            self.query_one(selector).display = mode == "pool"
        self.query_one("#server-method", Select).display = mode != "thread"

    # Status and log ---------------------------------------------------------------------------

    _shown: ServerStatus | None = None

    def _server(self) -> ServerLike | None:
        return self._source.server

    def _status(self) -> ServerStatus | None:
        server = self._server()
        return server.status() if server is not None else None

    def follow(self) -> None:
        """Each tick: a handler's end changes the counts without a server event."""
        if self._status() != self._shown:
            self.show_status()

    def show_status(self, error: str | None = None) -> None:
        status = self._shown = self._status()
        text = Text(end="")
        if error:
            text.append(error + "\n", resolve(self.app, "bold $error"))
        read_only = not self._source.capabilities.server  # a recorded session's
        if status is None:
            text.append(
                "TCP server: proclab's echo server is not part of a watched program; it runs"
                " in `proclab` itself (this pane, or `proclab --serve PORT`).",
                resolve(self.app, "$text-muted"),
            )
        elif read_only and not status.running:
            text.append(
                "TCP server: not listening at this moment of the recording.",
                resolve(self.app, "$text-muted"),
            )
        elif status.running:
            address = escape_controls(status.address, tabs=True)  # a recording's may be anything
            text.append(f"listening on {address}", resolve(self.app, "bold $success"))
            how = status.mode + ("" if status.mode == "thread" else f", {status.method}")
            if status.mode == "pool":
                how += f", {plural(status.workers, 'worker')}"
            text.append(f"  ({how})\n")
            if status.counted:
                counts = f"active {status.active}/{status.max_clients} · served {status.served}"
            else:  # a recording of a server that logged errors only
                counts = f"active ?/{status.max_clients} · served ? (not recorded at --log errors)"
            text.append(
                f"{counts} · rejected {status.rejected} · handler processes {status.handlers}"
            )
        else:
            text.append("TCP server: stopped. ", resolve(self.app, "bold"))
            host = self.query_one("#server-host", Input).value
            port = self.query_one("#server-port", Input).value
            # An example only of what could be typed: not of a port that cannot be one.
            example = (
                f"`nc {host} {port}` or " if port.isdecimal() and 0 < int(port) < 65536 else ""
            )
            text.append(
                f"Set it up above and press Start; then connect, e.g. {example}`proclab client`.",
                resolve(self.app, "$text-muted"),
            )
        self.query_one("#server-status", Static).update(text)
        button = self.query_one("#server-toggle", Button)
        running = status is not None and status.running
        if running and status is not None:
            self._show_settings(status)
        for field in self.query("Input, Select"):
            field.disabled = running or read_only
        button.disabled = read_only
        # A recording or a watched program has no server to set up: its fields and a
        # Start, greyed, read as one to press (a tester's words). The status line says
        # what a recorded server was set up with.
        for row in self.query(".server-row"):
            row.display = self._live or not read_only
        button.label = "Stop" if running else "Start"
        button.variant = "error" if running else "success"

    def _show_settings(self, status: ServerStatus) -> None:
        """While it runs, the settings show the server's own (a recorded one's too)."""
        host, _, port = escape_controls(status.address, tabs=True).rpartition(":")
        self._fill(host.strip("[]"), port, status.workers, status.max_clients)
        self._choose(status.mode, status.method)

    def start_asked(self, config: ServerConfig) -> str | None:
        """Start the server asked for at launch (`--serve`); why it could not, if it
        could not, which its status then says. Its settings stay in the fields either
        way: one that could not start (its port taken) left the defaults there (8001),
        for the user to retype what had been asked."""
        self._fill(config.host, str(config.port), config.workers, config.max_clients)
        self._choose(config.mode, config.method)
        server = self._server()
        if server is None:
            return None
        try:
            server.start(config)
        except ProclabError as exc:
            self.show_status(error=f"not started: {exc}")
            return str(exc)
        self.show_status()
        return None

    def _fill(self, host: str, port: str, workers: int, max_clients: int) -> None:
        values = {
            "#server-host": host,
            "#server-port": port,
            "#server-workers": str(workers),
            "#server-max": str(max_clients),
        }
        for selector, value in values.items():
            self.query_one(selector, Input).value = value

    def _choose(self, mode: str, method: str) -> None:
        # A recorded thread server's method, or a watched program's socket, is none of
        # the choices: the choice then stays as it was.
        if mode in SERVER_MODES:
            self.query_one("#server-mode", Select).value = mode
        if method in METHODS:
            self.query_one("#server-method", Select).value = method

    def add_events(self, events: Iterable[ServerEvent]) -> None:
        from proclab.core.server.tcp import describe_event

        lines = []
        muted = resolve(self.app, "$text-muted")
        for event in events:
            text = Text(
                time.strftime("%H:%M:%S", time.localtime(event.time)) + " ", style=muted, end=""
            )
            shown = on_screen(describe_event(event))
            text.append(shown, resolve(self.app, KIND_STYLES.get(event.kind, "")))
            lines.append((text, event.pid))
        self.query_one("#server-log", LineList).add(lines)
        self.show_status()

    def on_line_list_highlighted(self, message: LineList.Highlighted) -> None:
        message.stop()
        if message.value:
            self.post_message(self.SelectHandler(self, message.value))

    # Start and stop ---------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.toggle()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.toggle()

    def toggle(self) -> None:
        server = self._server()
        if server is None:
            return
        if server.running:
            self._stop(server)
        else:
            self._start(server)

    def _start(self, server: ServerLike) -> None:
        from proclab.core.server.tcp import ServerConfig

        workers = self.query_one("#server-workers", Input)
        method = self.query_one("#server-method", Select)
        try:
            # Only the fields the mode shows (_fit_mode says which): a hidden worker count
            # of 0 was "not started: workers: ..." for a process server.
            config = ServerConfig(
                host=self.query_one("#server-host", Input).value.strip(),
                port=_whole(self.query_one("#server-port", Input).value, "port"),
                mode=cast("Mode", str(self.query_one("#server-mode", Select).value)),
                workers=_whole(workers.value, "workers") if workers.display else SERVER_WORKERS,
                max_clients=_whole(self.query_one("#server-max", Input).value, "max clients"),
                method=cast("StartMethod", str(method.value) if method.display else DEFAULT_METHOD),
            )
            server.start(config)
        except ProclabError as exc:
            self.show_status(error=f"not started: {exc}")
            return
        self.show_status()

    def _stop(self, server: ServerLike) -> None:
        # Ending the handlers can take the grace period: not on the event loop.
        self.run_worker(server.stop, thread=True, exit_on_error=False)


def _whole(text: str, field: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ProclabError(f"{field}: {text!r} is not a whole number") from None


def _choice(values: Iterable[str], value: str, id: str) -> Select[str]:
    return Select([(v, v) for v in values], value=value, allow_blank=False, id=id, compact=True)


def _number(value: int, id: str, digits: int) -> Input:
    """A field that takes digits only."""
    return Input(str(value), id=id, restrict=r"[0-9]*", max_length=digits, compact=True)
