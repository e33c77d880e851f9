"""An app that only says why a tab's command could not start (see RefusalScreen)."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from proclab.tui.screens.dialogs import RefusalScreen
from proclab.tui.terminal import private_terminal


class RefusalApp(App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "proclab"

    def __init__(self, reason: str) -> None:
        super().__init__()
        self._reason = reason

    def on_mount(self) -> None:
        self.push_screen(RefusalScreen(self._reason), lambda _: self.exit(2))


def refuse_in_browser(reason: str) -> None:
    """Say `reason` in the tab, until its user closes it (or proclab web ends: as every
    tab's app does, it ends with it, even when proclab web is SIGKILLed)."""
    with private_terminal():
        RefusalApp(reason).run()
