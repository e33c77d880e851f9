"""Quitting: the question while children run, and what proclab does while it ends them."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from proclab.tui.screens.dialogs import ConfirmScreen


class ShutdownScreen(ModalScreen[None]):
    """Shown while proclab ends its children: what it sent, how long it waits. A quit key
    again (the app's Ctrl+C and Ctrl+Q reach it too) kills them without waiting."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("q,f10", "app.quit", "Kill now")]

    def __init__(self, reason: str, ending: bool = True) -> None:
        """`ending`: quitting ends the source's processes (the key to hurry is said)."""
        super().__init__(classes="dialog")
        self._lines = [reason]
        self._ending = ending

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box", id="shutdown-box"):
            yield Static("\n".join(self._lines), id="shutdown-text", markup=False)
            if self._ending:
                yield Static(
                    "q or Ctrl+C again: SIGKILL now, without waiting",
                    classes="hint",
                    markup=False,
                )

    def add(self, line: str) -> None:
        self._lines.append(line)
        self.query_one("#shutdown-text", Static).update("\n".join(self._lines))


class QuitScreen(ConfirmScreen):
    """The quit question: a quit key pressed again answers it yes (Ctrl+C and Ctrl+Q reach
    the app's own binding, which is a priority one)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("q,f10", "answer(True)", "Quit")]
