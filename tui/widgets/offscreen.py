"""Panes that keep taking data while another tab is shown, and repaint only when seen.

A repaint asked of a widget that is not on screen made Textual map the whole screen again
(its compositor takes any dirty widget it has not placed for a new one). At 80x24 the
hidden CPU pane did so every tick, a tenth of the app's main thread with 100 children
(benchmarks/overhead.py); with children printing, the hidden output pane asked 26 times
a second (20 children printing 10 lines a second each: 17-20 % of a core, 11-12 % now).
Such a widget now only notes that it owes a repaint while it is off screen, and pays it,
with a layout, when Textual shows it again (Show: it has entered the screen's map, the
first time too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from textual.geometry import Region

if TYPE_CHECKING:
    from textual.widget import Widget

    _Base = Widget
else:
    # Not a Widget at run time: a Widget subclass takes part in CSS, and Widget's own
    # defaults (overflow: hidden) then won over the pane's (ScrollView's overflow: auto).
    _Base = object


class PaintedWhenShown(_Base):
    """Mixed in before a widget class: `class Pane(PaintedWhenShown, ScrollView)`."""

    _on_screen = False
    _owes_repaint = False

    def refresh(
        self,
        *regions: Region,
        repaint: bool = True,
        layout: bool = False,
        recompose: bool = False,
    ) -> Self:
        if not self._on_screen and not recompose:
            self._owes_repaint = True
            return self
        super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)
        return self

    def on_show(self) -> None:
        self._on_screen = True
        if self._owes_repaint:
            self._owes_repaint = False
            self.refresh(layout=True)

    def on_hide(self) -> None:
        self._on_screen = False
