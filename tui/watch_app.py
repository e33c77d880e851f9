"""The app on a watched program (`proclab watch`): the same screen as for proclab's own
children, its rows and events from a WatchedProgram. The program is started once the
app listens, so its first calls (the start() of each child) reach the details and the
log; when it ends by itself the app says so and keeps the final table until the user
quits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proclab.core.errors import ProclabError
from proclab.core.exits import describe_exit
from proclab.core.watch.program import WatchedTree
from proclab.tui.app import ProclabApp
from proclab.tui.screens.dialogs import RefusalScreen
from proclab.tui.screens.lab import LabScreen
from proclab.tui.terminal import in_browser

DONE_POLL_S = 0.25  # how often the app looks whether the program has ended


class WatchScreen(LabScreen):
    EMPTY_TABLE = "Starting the program…"


class WatchApp(ProclabApp):
    def __init__(
        self, program: WatchedTree, start: Callable[[], object] | None = None, **options: Any
    ) -> None:
        """`start`: starts the program (None: it runs already, as an attached one)."""
        super().__init__(program, lab=WatchScreen(program), **options)
        self.program = program
        self._start = start
        self.start_error: str | None = None  # why the program could not start, if it could not
        self._said_done = False

    def on_lab_screen_ready(self, _message: LabScreen.Ready) -> None:
        # The app listens and the panes are up: the program's first calls reach them.
        self._start_program()

    def _start_program(self) -> None:
        try:
            if self._start is not None:
                self._start()
        except ProclabError as exc:
            self.start_error = str(exc)
            if in_browser():  # its user sees no stderr
                self.push_screen(RefusalScreen(self.start_error), lambda _: self.exit(2))
            else:
                self.exit(2)
            return
        self.set_interval(DONE_POLL_S, self._check_done)

    def _check_done(self) -> None:
        if self._said_done or not self.program.done:
            return
        self._said_done = True
        roots = self.program.root_rows()
        code = roots[0].exitcode if roots else None
        status = f"exit status {describe_exit(code)}" if code is not None else "exit status unknown"
        self.notify(
            f"The program ended ({status}). The table stays as it ended: q quits.",
            title="proclab watch",
            timeout=10,
            markup=False,
        )
