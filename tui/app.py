"""The proclab app: a source of processes, and the lab screen that shows it.

The App keeps what is not one screen's: the bridge from the source's threads to the event
loop, signal handling and shutdown, and the command palette's system commands. The panes,
keys and actions live in the LabScreen (tui/screens/lab.py) it opens on.

The source's threads hand events over through `_on_event`; the app wakes once per burst and
drains them in batches on its own loop, so a chatty child or a thousand rows never make a key
wait. Nothing here blocks: the source's shutdown runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import operator
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen

from proclab.core.defaults import DEFAULT_METHOD
from proclab.core.model import (
    SERVER_TAG,
    Event,
    Notice,
    OutputLine,
    ProcessRow,
    ProcessSpec,
    ProcState,
    ServerStatus,
)
from proclab.core.output import on_screen
from proclab.core.source import ProcessSource, ServerLike
from proclab.core.words import plural
from proclab.tui.quiet_driver import QuietLinuxDriver
from proclab.tui.screens.lab import LabScreen
from proclab.tui.screens.shutdown import QuitScreen, ShutdownScreen
from proclab.tui.terminal import heeded
from proclab.tui.widgets.output_log import SCROLLBACK

if TYPE_CHECKING:
    from proclab.core.server.tcp import ServerConfig

DRAIN_DELAY_S = 0.05  # events arriving within this are drawn together
# While children print faster than the pane draws (lines were dropped), the screen is
# redrawn this often: drawing a flood 20 times a second would leave keys waiting.
FLOOD_DRAIN_S = 0.25
SIGNALS: dict[int, str] = {
    signal.SIGTERM: "SIGTERM",
    signal.SIGHUP: "SIGHUP",
    signal.SIGINT: "SIGINT",
}


_HANDED_TO = "_proclab_handed_to"  # the screen a key from the terminal was handed to


class ProclabApp(App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "proclab"

    # q and F10 are the lab screen's (the footer shows them there); these reach the app
    # from any screen.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q,ctrl+c", "quit", "Quit", show=False, priority=True, tooltip="Quit"),
    ]

    class EventsArrived(Message):
        """The source queued events for the app (posted at most once per drain)."""

    def __init__(
        self,
        source: ProcessSource,
        *,
        refresh: float = 1.0,
        method: str = DEFAULT_METHOD,
        clock: Callable[[], float] = time.time,
        startup: tuple[ProcessSpec, int] | None = None,
        serve: ServerConfig | None = None,
        cwd: str | None = None,
        lab: LabScreen | None = None,
    ) -> None:
        """`lab` is the screen to open on (a replay's, with its transport keys); without
        one, a LabScreen from `method`, `clock`, `startup`, `serve` and `cwd`."""
        super().__init__()
        self.source = source
        self.refresh_interval = refresh
        self.lab = lab or LabScreen(
            source, method=method, clock=clock, startup=startup, serve=serve, cwd=cwd
        )
        # Each event with its place in the order the source told them (`_arrivals`): the
        # output pane shows lines and calls in that order, which a watched tree's events
        # come in (core/watch/in_order.py). Sorted by their times instead, a child's lines
        # (stamped as read) came after its parent's join (stamped as made).
        self._arrivals = itertools.count()
        self._inbox: deque[tuple[int, Event]] = deque()
        # Output lines wait apart, the newest SCROLLBACK only (the pane keeps no more): a
        # child printing faster than the pane draws costs a count, not memory or time.
        self._lines_lock = threading.Lock()
        self._lines: deque[tuple[int, OutputLine]] = deque(maxlen=SCROLLBACK)
        self._lines_dropped = 0
        self._wake_pending = False
        self._drain_scheduled = False
        self._drain_delay = DRAIN_DELAY_S
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._quitting = False
        self._hurried = False
        # The signal that ended the app (SIGTERM, SIGHUP, Ctrl+C as SIGINT): its exit
        # status is then 128+N, as a shell says of a command it interrupted, not 0.
        self.ended_by: int | None = None
        self._toasts: dict[tuple[str, str, str], float] = {}  # notice -> shown until
        self.shutdown_log: list[str] = []  # notices while ending the children, shown on exit

    def get_default_screen(self) -> Screen[Any]:
        return self.lab

    def get_driver_class(self) -> type[Driver]:
        driver = super().get_driver_class()
        # Textual's terminal driver, with an input thread that does not wake to poll.
        return QuietLinuxDriver if driver is LinuxDriver else driver

    def on_mount(self) -> None:
        self._event_loop = asyncio.get_running_loop()
        self._unsubscribe = self.source.subscribe(self._on_event)
        self.source.set_interval(self.refresh_interval)
        for sig in heeded(*SIGNALS):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._event_loop.add_signal_handler(sig, self._on_signal, sig, SIGNALS[sig])

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._event_loop is not None:
            for sig in SIGNALS:
                with contextlib.suppress(Exception):
                    self._event_loop.remove_signal_handler(sig)

    # Keys typed ahead ------------------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            # As Textual hands a key from the terminal to the current screen's focus:
            # which screen that was (on_key).
            setattr(event, _HANDED_TO, self.screen)
        await super().on_event(event)

    def on_key(self, event: events.Key) -> None:
        """A key that comes back here from a screen another now covers was typed with the
        key that opened it, in one read of the terminal (`tmux send-keys n Enter`, a
        paste): Textual hands both to the screen's focus before the first, back here,
        runs its binding, and the second came back to find the spawn form, whose bindings
        do not know it. Lost before; handed to the screen on top now, as if typed a moment
        later (after keys the app hands that screen meanwhile). Only for a screen covered,
        still in the stack: one that ended meanwhile leaves its keys to the screen below,
        as Textual does."""
        handed_to = getattr(event, _HANDED_TO, None)
        stack = self.screen_stack
        if handed_to is None or handed_to is stack[-1] or handed_to not in stack:
            return
        event.prevent_default()  # the covered screen's bindings are not the top one's
        event.stop()
        self.post_message(events.Key(event.key, event.character))

    def on_resize(self, event: events.Resize) -> None:
        if self.lab.is_mounted:  # until then, it fits itself to the app's size as it mounts
            self.lab.fit(event.size.width, event.size.height)

    # Events from the source ----------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        """Called from the source's threads: queue, and wake the app once."""
        if isinstance(event, OutputLine):
            with self._lines_lock:
                if len(self._lines) == SCROLLBACK:
                    self._lines_dropped += 1
                self._lines.append((next(self._arrivals), event))
        else:
            self._inbox.append((next(self._arrivals), event))
        if self._wake_pending:
            return
        self._wake_pending = True
        self.post_message(self.EventsArrived())  # thread-safe

    def events_pending(self) -> bool:
        """Events handed over and not drawn yet (a drain is coming for them). A wake-up on
        its way with nothing queued draws nothing, and does not count."""
        return bool(self._inbox or self._lines or self._drain_scheduled)

    def forget_pending(self) -> None:
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
        if not self.lab.is_mounted:  # its panes are not there yet: the events wait
            self._drain_scheduled = True
            self.set_timer(self._drain_delay, self._drain)
            return
        told: list[tuple[int, Event]] = []
        while self._inbox:
            told.append(self._inbox.popleft())
        with self._lines_lock:
            queued, self._lines = self._lines, deque(maxlen=SCROLLBACK)
            dropped, self._lines_dropped = self._lines_dropped, 0
        self._drain_delay = FLOOD_DRAIN_S if dropped else DRAIN_DELAY_S
        if not told and not queued:
            return
        shutdown = self.screen if isinstance(self.screen, ShutdownScreen) else None
        if shutdown is not None:  # what happens to the children, said where it is seen
            for _, event in told:
                if isinstance(event, Notice):
                    shutdown.add(on_screen(event.text))
        # Both in the order told: one merge, not a sort (a flood's lines are most of it)
        arrived = [event for _, event in heapq.merge(told, queued, key=operator.itemgetter(0))]
        self.lab.show_events(arrived, dropped, notify=shutdown is None)

    # The command palette --------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.lab.key_bindings():
            if binding.action.endswith("quit"):  # Textual's own "Quit" stands for them
                continue
            title = binding.description.rstrip("…") if binding.description else binding.action
            yield SystemCommand(
                title, binding.tooltip or title, self._palette_action(binding.action)
            )

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Textual's notify, but a notice still on screen is not stacked again: R pressed
        ten times said "is already restarting" nine times over, covering the header and
        half the table for seconds."""
        now = time.monotonic()
        key = (message, title, severity)
        if now < self._toasts.get(key, 0.0):
            return
        shown = self.NOTIFICATION_TIMEOUT if timeout is None else timeout
        self._toasts = {k: until for k, until in self._toasts.items() if until > now}
        self._toasts[key] = now + shown
        super().notify(message, title=title, severity=severity, timeout=shown, markup=markup)

    def _palette_action(self, action: str) -> Callable[[], Any]:
        return lambda: self.run_action(action, self.lab)

    # Quitting -------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        if self._quitting:
            self._hurry()
            return
        if isinstance(self.screen, QuitScreen):  # a quit key again: yes (a second Ctrl+C)
            self.screen.dismiss(True)
            return
        # A zombie has ended: it waits for its parent to read its exit status.
        rows = [
            r for r in self.source.rows() if r.state.is_live and r.state is not ProcState.ZOMBIE
        ]
        live = len(rows)
        if not self.source.capabilities.ends_on_quit:  # an attached tree: it runs on
            said = f"left {plural(live, 'process')} running, as attach does" if live else ""
            if said:  # said again on the restored terminal, where the user looks next
                self.shutdown_log.append(said)
            self.shut_down(f"Quitting: {said}." if said else "Nothing running: quitting.")
            return
        # A thread server has no rows: its connections are proclab's own threads, and
        # quitting cut them off without a word while a process server's were asked about.
        threads = _thread_server(self.source.server)
        # Processes children started that outlived them (a grandchild printing on): no
        # row's, and quitting ends them too, which it did without asking.
        strays = len(self.source.strays())
        if not live and threads is None and not strays:
            self.shut_down("No children running: quitting.")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                ending = [plural(live + strays, "process")] if live or strays else []
                if threads is not None:
                    ending.insert(0, "the TCP server")
                self.shut_down(f"Ending {' and '.join(ending)}…")

        if live or strays:
            them = "it" if live + strays == 1 else "them"
            end = f"End {them} (SIGTERM, then SIGKILL if ignored)"
            if threads is not None:
                end = f"Stop the server, e{end[1:]}"
        else:
            end = "Stop it, closing its connections,"
        self.push_screen(
            QuitScreen(
                f"{_still_there(rows, threads, strays)}.\n{end} and quit?",
                "End and quit",
                "Stay",
            ),
            answered,
        )

    def _on_signal(self, sig: int, name: str) -> None:
        self.ended_by = sig
        if self._quitting:
            self._hurry()
        else:
            self.shut_down(f"{name} received: ending every child and quitting…")

    def _hurry(self) -> None:
        """A quit asked again while children are being ended: SIGKILL now. With a long
        --grace and a child that ignores SIGTERM, nothing but a kill from outside ended
        the wait (every key, and a SIGTERM to proclab, was taken as the quit under way)."""
        if not self._hurried and self.source.capabilities.ends_on_quit:
            self._hurried = True
            self.source.hurry()

    def shut_down(self, reason: str) -> None:
        """End the source's children (if quitting ends them), saying so, then exit."""
        self._quitting = True
        self.push_screen(ShutdownScreen(reason, self.source.capabilities.ends_on_quit))
        self._end_children()

    @work(thread=True, exit_on_error=False)
    def _end_children(self) -> None:
        def keep(event: Event) -> None:
            if isinstance(event, Notice):
                self.shutdown_log.append(event.text)

        # What happened to the children is printed again once the terminal is back (the
        # screen is gone a moment after the last SIGKILL).
        unsubscribe = self.source.subscribe(keep)
        try:
            if self.source.capabilities.ends_on_quit:
                self.source.shutdown_children(self.source.grace)
        finally:
            unsubscribe()
            status = 0 if self.ended_by is None else 128 + self.ended_by
            self.call_from_thread(self.exit, return_code=status)


def _thread_server(server: ServerLike | None) -> ServerStatus | None:
    """The TCP server's status if it runs in proclab's own threads (it has no row)."""
    if server is None or not server.running:
        return None
    status = server.status()
    return status if status.mode == "thread" else None


def _still_there(
    rows: list[ProcessRow], threads: ServerStatus | None = None, strays: int = 0
) -> str:
    """ "2 children are still running and 1 is stopped": a paused child is stopped, never
    "still running" (README, "What proclab promises"). The TCP server and its own
    processes are named apart: "1 child is still running" of the server alone read as a
    child the user had started. `threads`: the server running in proclab's threads;
    `strays`: processes children started that outlived them."""
    servers = {r.id: r.state for r in rows if r.tag == SERVER_TAG}
    theirs = sum(1 for r in rows if r.parent in servers)
    others = [r.state for r in rows if r.id not in servers and r.parent not in servers]
    parts = []
    if threads is not None:
        open_now = plural(threads.active, "connection")
        parts.append(f"the TCP server (threads of proclab's own, {open_now} open) is running")
    for state in servers.values():
        how = "stopped (paused)" if state is ProcState.STOPPED else "running"
        with_theirs = f", with {plural(theirs, 'process')} of its own," if theirs else ""
        parts.append(f"the TCP server{with_theirs} is {how}")
    running = sum(1 for state in others if state is not ProcState.STOPPED)
    stopped = len(others) - running
    children = []
    if running:
        children.append(
            f"{plural(running, 'child')} {'is' if running == 1 else 'are'} still running"
        )
    if stopped:
        noun = "" if running else (" child" if stopped == 1 else " children")
        children.append(f"{stopped}{noun} {'is' if stopped == 1 else 'are'} stopped (paused)")
    if children:  # "...is running and 1 child is ... and 1 is ..." read as one list
        parts.append(" and ".join(children))
    if strays:
        runs = "runs" if strays == 1 else "run"
        parts.append(
            f"{plural(strays, 'process')} that children started {runs} on, their parent ended"
        )
    text = "; ".join(parts)
    return text[:1].upper() + text[1:]
