"""The output log: what children print, tagged with name and pid, stderr set apart.

Lines arrive in batches (one write per refresh, not per line). The pane keeps its own
bounded copy of the lines, so that "only the selected process" can be switched on and off
and rebuilt without asking the controller.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import RichLog

from proclab.core.model import Notice, OutputLine
from proclab.core.output import escape_controls
from proclab.tui.theme import resolve

SCROLLBACK = 2000

Entry = OutputLine | Notice


class OutputLog(RichLog):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "f",
            "toggle_follow_selected",
            "Only selected",
            tooltip="Show only the selected process's lines",
        ),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_lines=SCROLLBACK, wrap=False, markup=False, highlight=False, **kwargs)  # type: ignore[arg-type]
        self._entries: deque[Entry] = deque(maxlen=SCROLLBACK)
        self.only_id: int | None = None  # show only this record's lines
        self.only_selected = False
        self._selected: int | None = None

    def add(self, entries: Iterable[Entry]) -> None:
        fresh = list(entries)
        self._entries.extend(fresh)
        visible = [e for e in fresh if self._visible(e)]
        if visible:
            self.write(self._render_lines(visible))

    def reset(self) -> None:
        """Forget every line (a replay seeking back feeds them again)."""
        self._entries.clear()
        self.clear()

    def set_selected(self, rec_id: int | None) -> None:
        self._selected = rec_id
        if self.only_selected:
            self._rebuild()

    def action_toggle_follow_selected(self) -> None:
        self.only_selected = not self.only_selected
        self._rebuild()
        self.border_subtitle = "only the selected process (f: all)" if self.only_selected else ""

    def lines_shown(self) -> list[str]:
        """The plain text of what the pane shows (for tests and the details screen)."""
        return [strip.text for strip in self.lines]

    def _visible(self, entry: Entry) -> bool:
        if not self.only_selected:
            return True
        return isinstance(entry, OutputLine) and entry.id == self._selected

    def _rebuild(self) -> None:
        self.clear()
        visible = [e for e in self._entries if self._visible(e)]
        if visible:
            self.write(self._render_lines(visible))

    def _render_lines(self, entries: list[Entry]) -> Text:
        tag_style = resolve(self.app, "$text-muted")
        err_style = resolve(self.app, "$error")
        notice_style = resolve(self.app, "italic $warning")
        text = Text(no_wrap=True, end="")
        for i, entry in enumerate(entries):
            if i:
                text.append("\n")
            if isinstance(entry, Notice):
                text.append(
                    f"{time.strftime('%H:%M:%S', time.localtime(entry.time))} proclab: "
                    + escape_controls(entry.text),
                    notice_style,
                )
                continue
            text.append(f"{escape_controls(entry.name)} {entry.pid} ", tag_style)
            if entry.stream == "stderr":
                text.append("! ", err_style)
                text.append(escape_controls(entry.text), err_style)
            else:
                text.append(escape_controls(entry.text))
        return text
