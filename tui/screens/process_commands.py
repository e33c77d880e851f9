"""What a screen may ask of a source's processes: start, signal, rename, restart, clear
and join them. Each command is checked against what the source allows (`Capabilities`):
a key for one it does not allow says why, and does nothing.

The LabScreen shows the processes (tui/screens/lab.py); this is its half that sends
commands, with the hooks it fills in (the selection, redrawing the rows and the status).
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Concatenate, ParamSpec, TypeVar

from textual import work
from textual.screen import Screen

from proclab.core.batch import batch_figures, batch_of
from proclab.core.defaults import DEFAULT_METHOD
from proclab.core.errors import AlreadyPending, InputError, ProclabError
from proclab.core.model import ProcessRow, ProcessSpec, ProcState
from proclab.core.signals import STATE_WAIT_S
from proclab.core.source import Capabilities, ProcessSource
from proclab.core.spec import check_name
from proclab.core.words import plural
from proclab.tui.batch_words import batch_lines
from proclab.tui.screens.details import live_words
from proclab.tui.screens.dialogs import ConfirmScreen, PromptScreen
from proclab.tui.screens.lab_keys import NEEDS
from proclab.tui.screens.spawn_form import SpawnScreen

P = ParamSpec("P")
S = TypeVar("S", bound="ProcessCommands")


def allowed(
    action: Callable[Concatenate[S, P], None],
) -> Callable[Concatenate[S, P], None]:
    """An action the source may not allow (NEEDS): if it does not, the key says why."""
    name = action.__name__.removeprefix("action_")

    @functools.wraps(action)
    def checked(screen: S, *args: P.args, **kwargs: P.kwargs) -> None:
        if screen.allows(name):
            action(screen, *args, **kwargs)
        else:
            screen.refuse(name)

    return checked


class ProcessCommands(Screen[None]):
    """The commands half of the lab screen."""

    def __init__(
        self,
        source: ProcessSource,
        *,
        method: str = DEFAULT_METHOD,
        clock: Callable[[], float] = time.time,
        cwd: str | None = None,
        live_keys: bool = False,
    ) -> None:
        """`live_keys`: every key is offered and acts as in a live session, whatever the
        source allows (its commands then refuse with NotAllowed): the README's pictures,
        made from a recording, show the live app."""
        super().__init__()
        self.source = source
        self.default_method = method  # the spawn form's first choice
        self.clock = clock
        self._cwd = cwd
        self._live_keys = live_keys
        self._joining: dict[int, str] = {}  # what each pending join waits for
        self._join_tokens = itertools.count()
        # Each row's last pause key: whether it asked to stop, and when (time.monotonic())
        self._pause_asked: dict[int, tuple[bool, float]] = {}

    # What the screen showing the processes fills in --------------------------------------

    def selected_id(self) -> int | None:
        """The row the cursor is on."""
        raise NotImplementedError

    def refresh_rows(self) -> None:
        raise NotImplementedError

    def update_status(self) -> None:
        raise NotImplementedError

    def spawned(self, ids: tuple[int, ...] | None) -> None:
        """Children were started (by the form): show them."""
        raise NotImplementedError

    @property
    def joining(self) -> tuple[str, ...]:
        """What each pending join waits for."""
        return tuple(self._joining.values())

    # Keys the source allows ------------------------------------------------------------------

    def allows(self, action: str) -> bool:
        need: Callable[[Capabilities], bool] | None = NEEDS.get(action)
        return need is None or self._live_keys or need(self.source.capabilities)

    def refuse(self, action: str) -> None:
        """A key the source does not allow: say so, do nothing."""
        self.notify(
            f"Not here: {self.source.describe()} does not allow {action.replace('_', ' ')}.",
            severity="warning",
            timeout=4,
            markup=False,
        )

    # Selection ------------------------------------------------------------------------------

    def selected(self) -> ProcessRow | None:
        """The row the cursor is on (None, saying so, when there is none)."""
        rec_id = self.selected_id()
        if rec_id is None:
            self.notify("No process selected: start one with n", severity="warning", markup=False)
            return None
        try:
            return self.source.row(rec_id)
        except ProclabError:
            return None

    # Commands ------------------------------------------------------------------------------

    def run_command(self, command: Callable[[], object], done: str | None = None) -> bool:
        """Run a source command; its errors become a notification, not a crash. Whether
        it was carried out."""
        try:
            command()
        except AlreadyPending as exc:  # asked twice: not an error, but nothing more is done
            self.notify(str(exc), severity="warning", timeout=3, markup=False)
            return False
        except ProclabError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return False
        if done:
            self.notify(done, timeout=3, markup=False)
        self.refresh_rows()
        return True

    def spawn(self, spec: ProcessSpec, count: int) -> tuple[int, ...]:
        ids = self.source.spawn(spec, count)
        self.refresh_rows()
        return ids

    @allowed
    def action_spawn(self) -> None:
        self.app.push_screen(
            SpawnScreen(
                self.spawn,
                self.default_method,
                self._cwd,
                self.source.usable_cpus(),
                lambda: (self.source.live_count(), self.source.max_procs),
            ),
            self.spawned,
        )

    @allowed
    def action_terminate(self) -> None:
        self._ask_then_signal(
            "SIGTERM",
            "Terminate",
            "It may clean up first (or ignore it); its children get it too.",
            lambda row: self.source.terminate(row.id),
        )

    @allowed
    def action_kill(self) -> None:
        self._ask_then_signal(
            "SIGKILL",
            "Kill",
            "It cannot clean up, and its children die with it.",
            lambda row: self.source.kill(row.id),
        )

    def _ask_then_signal(
        self, signame: str, verb: str, consequence: str, send: Callable[[ProcessRow], None]
    ) -> None:
        """A signal that ends a process asks first: htop users press keys to look around."""
        row = self.selected()
        if row is None:
            return
        if row.state.is_over or row.pid is None:  # nothing to ask: say why it can't be sent
            self.run_command(lambda: send(row))
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_command(lambda: send(row), f"{signame} sent to {row.name} ({row.pid})")

        self.app.push_screen(
            ConfirmScreen(f"{verb} {row.name} ({row.pid}) with {signame}?\n{consequence}", verb),
            answered,
        )

    @allowed
    def action_pause(self) -> None:
        row = self.selected()
        if row is None:
            return
        stopped = row.state is ProcState.STOPPED
        asked, at = self._pause_asked.get(row.id, (stopped, 0.0))
        if asked != stopped and time.monotonic() - at < STATE_WAIT_S:
            # The row has not caught up with the last press yet (its state is read once
            # the signal has taken effect): a second quick p sent SIGSTOP again, and p p
            # left a child stopped.
            stopped = asked
        if stopped:
            sent = self.run_command(
                lambda: self.source.resume(row.id), f"SIGCONT sent to {row.name} ({row.pid})"
            )
        else:
            sent = self.run_command(
                lambda: self.source.pause(row.id), f"SIGSTOP sent to {row.name} ({row.pid})"
            )
        if sent:  # a refused one asked nothing of the child
            self._pause_asked[row.id] = (not stopped, time.monotonic())

    @allowed
    def action_rename(self) -> None:
        row = self.selected()
        if row is None:
            return

        def check(text: str) -> str | None:
            # The rule the rename itself applies, said in the prompt, which stays open: a
            # name past the limit closed it, the text typed lost, the error a toast.
            try:
                return None if check_name(text) else "a name cannot be empty"
            except InputError as exc:
                return f"a name {exc.message}"

        def answered(name: str | None) -> None:
            if name:
                self.run_command(lambda: self.source.rename(row.id, name))

        self.app.push_screen(
            PromptScreen(f"New name for {row.name} (pid {row.pid})", row.name, check=check),
            answered,
        )

    @allowed
    def action_restart(self) -> None:
        row = self.selected()
        if row is not None:
            self.run_command(lambda: self.source.restart(row.id), f"restarting {row.name}")

    @allowed
    def action_clear(self) -> None:
        cleared = self.source.clear_exited()
        self.notify(f"cleared {plural(cleared, 'ended process')}", timeout=3, markup=False)
        self.refresh_rows()

    # Joins ----------------------------------------------------------------------------------

    @allowed
    def action_join(self) -> None:
        row = self.selected()
        if row is not None:
            self._join_unless_stopped([row], None, f"{row.name} ({row.pid})")

    @allowed
    def action_join_all(self) -> None:
        """The selected process's batch while some of it runs, else every live child; a
        batch that has ended is joined at once, for its figures."""
        rows = self.source.rows()
        batch: tuple[ProcessRow, ...] = ()
        selected = self.selected_id()
        row = next((r for r in rows if r.id == selected), None)
        if row is not None and row.batch is not None:
            batch = batch_of(rows, row)
        live = [r for r in rows if r.state.is_live]
        if batch and (any(r.state.is_live for r in batch) or not live):
            # The count before the name: the status line, cut at 80 columns, read "esc
            # stops joining ForkServerProcess-1's batch (3"
            what = f"the batch of {len(batch)} with {batch[0].name}"
            self._join_unless_stopped(batch, None, what)
        elif live:
            self._join_unless_stopped(live, None, plural(len(live), "live child"))
        else:
            self.notify("No child is running: nothing to join", severity="warning", markup=False)

    @allowed
    def action_join_timeout(self) -> None:
        row = self.selected()
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

        self.app.push_screen(
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
                self.run_command(functools.partial(self.source.resume, row.id))
            self._join(rows, timeout, what)

        self.app.push_screen(
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
        self.update_status()
        began = time.monotonic()
        ids = [r.id for r in rows]
        try:
            done = await self.source.join_async(ids, timeout)
        finally:
            self._joining.pop(token, None)
            self.update_status()
        waited = time.monotonic() - began
        if not done:
            row = self.source.row(ids[0])
            self.notify(
                f"join {what} timed out after {timeout:g} s; it is {live_words(row)}",
                severity="warning",
                markup=False,
            )
        elif len(ids) == 1:
            ended = self.source.row(ids[0])
            self.notify(
                f"joined {what} after {waited:.2f} s: {ended.state}, exit {ended.exitcode}",
                timeout=5,
                markup=False,
            )
        else:
            ended_rows = [self.source.row(i) for i in ids]
            figures = batch_figures(ended_rows, self.clock(), self.source.usable_cpus())
            self.notify(
                "\n".join([f"joined {what}", *batch_lines(figures)]), timeout=12, markup=False
            )
