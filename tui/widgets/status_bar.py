"""The status line: what runs and what ended, what the source is, the machine's load, and
any join the app is waiting for."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import Static

from proclab.core.model import ProcState
from proclab.core.source import ProcessSource
from proclab.core.words import plural


class StatusBar(Static):
    """One line: what is running, the start method, the machine's load."""

    _shown: Text | None = None

    def show(self, source: ProcessSource, joining: Iterable[str]) -> None:
        rows = source.rows()
        live = sum(1 for r in rows if r.state.is_live)
        # A zombie has ended, and waits for its parent to read its status: not live.
        zombies = sum(1 for r in rows if r.state is ProcState.ZOMBIE)
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        text.append(" proclab ", "bold reverse")
        text.append(f" {live - zombies} live · ")
        if zombies:
            text.append(f"{plural(zombies, 'zombie')} · ")
        text.append(f"{len(rows) - live} ended")
        # A source that starts processes describes the settings of new ones, last; any
        # other says first what it is (a recording, a watched program): the line is cut
        # at 80 columns.
        spawns = source.capabilities.spawn
        described = f"   {source.describe()}"
        if not spawns:
            text.append(described, "dim")
        # A join waited for comes before the machine's figures: at 80 columns it read
        # "joining ticker-1's", its "esc stops" cut off.
        waiting = ", ".join(joining)
        if waiting:
            text.append(f"   esc stops joining {waiting}", "bold")
        system = source.system()
        if system is not None:
            load = system.load[0]
            text.append(
                f"   CPU {system.total:.0f}%  mem {system.mem_percent:.0f}%  load {load:.2f}"
            )
        # Whole or not at all: cut at 80 columns, "tick 1 s" read "tick 1".
        if spawns and text.cell_len + len(described) <= self.app.size.width:
            text.append(described, "dim")
        if text != self._shown:  # most ticks say the same: no repaint for those
            self._shown = text
            self.update(text, layout=False)
