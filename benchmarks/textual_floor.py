"""The least a Textual app pays to redraw a screen of rows once a second: the reference
beside proclab in benchmarks/overhead.py.

A header line, `--rows` rows whose every line changes each second (as proclab's table's
Runtime column does), and a footer, drawn by the cheapest Textual path (a widget's
`render_line` handing back one segment a line), with proclab's key reader (no polling,
tui/quiet_driver.py). It samples nothing: whatever proclab spends above it is its own.

    python benchmarks/textual_floor.py [--rows 20]
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.driver import Driver
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Footer

from proclab.tui.quiet_driver import QuietLinuxDriver


class Rows(Widget):
    DEFAULT_CSS = "Rows { height: 1fr; }"

    def __init__(self, rows: int) -> None:
        super().__init__()
        self.rows, self.tick = rows, 0

    def render_line(self, y: int) -> Strip:
        if y == 0:
            text = f" floor  {self.rows} rows   tick {self.tick}"
        elif y <= self.rows:
            text = f" row {y:3d}   {100000 + y:7d}  sleeping   0.0  11.9M  {self.tick:6d} s"
        else:
            text = ""
        return Strip([Segment(text.ljust(self.size.width))])


class Floor(App[None]):
    BINDINGS = [("q", "quit", "Quit")]  # noqa: RUF012

    def __init__(self, rows: int) -> None:
        super().__init__()
        self.body = Rows(rows)

    def get_driver_class(self) -> type[Driver]:
        return QuietLinuxDriver

    def compose(self) -> ComposeResult:
        yield self.body
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    def _tick(self, *_: Any) -> None:
        self.body.tick += 1
        self.body.refresh()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20)
    Floor(parser.parse_args().rows).run()
