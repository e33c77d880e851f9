"""The scheduling timeline: one row per child, one column per sampler tick, newest at the
right. A child on a CPU shows the core's number in the core's colour, with a bar for its
share of the tick; the letters and the dot carry the other states, so it reads the same
without colour (NO_COLOR). What a cell means exactly is proclab.core.timeline's rule, and
the legend under the grid says it.

Two CPU-bound children on two cores show two different digits in the same columns, full
bars (parallel); four pinned to one core show the same digit, quarter bars (concurrent:
they take turns, each on the CPU a quarter of every tick).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.screen import ModalScreen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Footer, Static

from proclab.core.output import escape_controls
from proclab.core.timeline import (
    ON_CPU_MIN,
    RUNNING_RULE,
    WAITING_MIN,
    WAITING_RULE,
    Cell,
    CellState,
    Timeline,
    TimelineSnapshot,
)
from proclab.core.words import plural
from proclab.tui import fmt
from proclab.tui.theme import resolve
from proclab.tui.widgets.cpu_pane import BLOCKS
from proclab.tui.widgets.process_table import short_name

CELL_WIDTH = 2  # the core's digit and the share bar
LABEL_WIDTH = 15  # a child's name, then a space
BARS = BLOCKS[1:]  # ▁ to █: an eighth to all of a tick
CORE_LABELS = "0123456789abcdefghijklmnopqrstuvwxyz"
# Distinct on dark and light backgrounds (Tableau 10); cores past ten cycle through them.
CORE_COLOURS = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
STATE_GLYPHS = {
    CellState.WAITING: "W",
    CellState.SLEEPING: "·",
    CellState.STOPPED: "T",
    CellState.ZOMBIE: "Z",
    CellState.EXITED: "X",
    CellState.GONE: " ",  # after the X: blank
}
STATE_STYLES = {
    CellState.WAITING: "bold $warning",
    CellState.SLEEPING: "$text-muted",
    CellState.STOPPED: "bold $warning",
    CellState.ZOMBIE: "bold $error",
    CellState.EXITED: "$text-muted",
    CellState.GONE: "$text-muted",
}
POLL_S = 0.25


def core_label(core: int | None) -> str:
    """0-9, then a-z for cores 10-35, '+' past that (the line under the grid names it)."""
    if core is None:
        return "?"
    return CORE_LABELS[core] if 0 <= core < len(CORE_LABELS) else "+"


def core_colour(core: int | None) -> str:
    return CORE_COLOURS[(core or 0) % len(CORE_COLOURS)]


def share_bar(share: float) -> str:
    """An eighth of a block per eighth of the tick on a CPU (at least one)."""
    return BARS[max(1, min(8, math.ceil(min(1.0, share) * 8))) - 1]


def cell_text(cell: Cell | None) -> str:
    """The two characters of a cell, as drawn (and as read without colour)."""
    if cell is None:
        return "  "
    if cell.state is CellState.RUNNING:
        return core_label(cell.core) + share_bar(cell.on_cpu)
    return STATE_GLYPHS[cell.state] + " "


def describe_cell(cell: Cell | None, interval: float) -> str:
    """One cell in words, for the line under the grid."""
    if cell is None:
        return "not started yet (or not sampled in this tick)"
    if cell.state is CellState.GONE:
        return "ended in an earlier tick"
    tick = fmt.seconds(interval)
    waited = f", waited for a CPU {cell.waited:.0%}" if cell.waited >= 0.01 else ""
    if cell.state is CellState.RUNNING:
        if cell.waited >= WAITING_MIN:  # why it is not a W: running comes first
            waited += f" (shown as running: it ran {ON_CPU_MIN:.0%} of the tick or more)"
        return (
            f"on a CPU {cell.on_cpu:.0%} of the {tick} tick, on core {cell.core} at its end{waited}"
        )
    text = {
        CellState.WAITING: "runnable but waiting for a CPU",
        CellState.SLEEPING: "sleeping (blocked: a timer, I/O, a lock)",
        CellState.STOPPED: "stopped (SIGSTOP)",
        CellState.ZOMBIE: "zombie: ended, not reaped yet",
        CellState.EXITED: "ended",
    }[cell.state]
    return f"{text}; on a CPU {cell.on_cpu:.0%} of the {tick} tick{waited}"


LEGEND = (
    "A column is a sampler tick, newest at the right; a cell, what the child did in it."
    f" {{bar}}: {RUNNING_RULE}; the digit (and colour) is the core it was on at the tick's"
    " end (10-35: a-z), the bar its share of the tick on a CPU, from its CPU-time growth"
    " (█ all, ▄ half, ▁ an eighth or less)."
    f" W: {WAITING_RULE}  · sleeping  T stopped  Z zombie  X ended (blank after it)"
    "  blank before a child's first cell: not started"
)


class TimelineGrid(ScrollView, can_focus=True):
    """The lanes under a fixed axis line; a cursor (lane, ticks back from the newest) picks
    a cell to describe, and the window follows it back through every tick kept. Line API:
    a frame draws only the lanes on screen, so 1,000 children cost what a screenful does."""

    DEFAULT_CSS = """
    TimelineGrid { overflow-x: hidden; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1, 0)", "Child up"),
        Binding("down", "move(1, 0)", "Child down"),
        Binding("left", "move(0, -1)", "Earlier"),
        Binding("right", "move(0, 1)", "Later"),
        Binding("end", "move(0, 100000)", "Newest tick", show=False),
    ]

    class Moved(Message):
        """The cursor moved to another cell."""

    class Resized(Message):
        """Its width changed: it can show another number of ticks."""

    def __init__(self, spawn: bool = True, **kwargs: Any) -> None:
        """`spawn`: whether its source starts children (a replay's does not)."""
        super().__init__(**kwargs)
        self.spawn = spawn
        self.snapshot = TimelineSnapshot()
        self.cursor_lane = 0
        self.cursor_back = 0  # ticks back from the newest
        # Ticks between the newest and the window's right edge: the snapshot holds the
        # window and those (TimelineScreen._show), no more.
        self.back = 0
        self._styles: dict[str, Style] = {}  # definition -> the widget's style plus it
        self._base = Style()
        self._longest = 0  # the snapshot's longest name: read once a snapshot, not a line

    def show(self, snapshot: TimelineSnapshot) -> None:
        if self.back and self.snapshot.ticks and snapshot.ticks:
            # Looking back, the window stays on the ticks it shows as new ones come (as
            # far as they are kept: the oldest scroll out under it)
            came = snapshot.ticks[-1].index - self.snapshot.ticks[-1].index
            self.back += came
            self.cursor_back += came
        self.snapshot = snapshot
        self._keep_in_view()
        self._longest = max((len(lane.name) for lane in snapshot.lanes), default=0)
        self.cursor_lane = min(self.cursor_lane, max(0, len(snapshot.lanes) - 1))
        self.virtual_size = Size(0, 1 + max(1, len(snapshot.lanes)))
        self._styles.clear()
        self.refresh()

    def on_resize(self) -> None:
        self._keep_in_view()
        self.post_message(self.Resized())

    @property
    def label_width(self) -> int:
        """The names' column: as wide as the longest name and a space, within a third of
        the width (at 80 columns every name read "ForkServerP…-1" beside 40 blank ones),
        never narrower than LABEL_WIDTH."""
        return max(LABEL_WIDTH, min(self._longest + 1, self.size.width // 3))

    @property
    def columns(self) -> int:
        return max(1, (self.size.width - self.label_width) // CELL_WIDTH)

    def _keep_in_view(self) -> None:
        """The cursor on a kept tick, the window on the cursor, and the window full where
        the ticks kept fill it (looking back as ticks came, it shrank to one column; a
        narrower screen left the cursor outside it)."""
        kept = max(len(self.snapshot.ticks), self.snapshot.kept)
        self.cursor_back = max(0, min(kept - 1, self.cursor_back))
        self.back = max(0, min(self.back, kept - self.columns, self.cursor_back))
        if self.cursor_back >= self.back + self.columns:
            self.back = self.cursor_back - self.columns + 1

    def visible_ticks(self) -> int:
        return max(0, min(self.columns, len(self.snapshot.ticks) - self._back()))

    def _back(self) -> int:
        """`back`, within the snapshot: one taken before the window last moved may hold
        fewer ticks."""
        return max(0, min(self.back, len(self.snapshot.ticks) - 1))

    def action_move(self, lanes: int, ticks: int) -> None:
        self.move(lanes, ticks)
        self.post_message(self.Moved())

    def move(self, lanes: int = 0, ticks: int = 0) -> None:
        last = max(0, len(self.snapshot.lanes) - 1)
        self.cursor_lane = max(0, min(last, self.cursor_lane + lanes))
        # Back through every tick kept ("Earlier" stopped at the window's edge, with three
        # minutes kept and 48 s shown)
        self.cursor_back -= ticks
        self._keep_in_view()
        rows = max(1, self.size.height - 1)  # under the axis line
        top = round(self.scroll_y)
        if self.cursor_lane < top:
            self.scroll_to(y=self.cursor_lane, animate=False, immediate=True)
        elif self.cursor_lane >= top + rows:
            self.scroll_to(y=self.cursor_lane - rows + 1, animate=False, immediate=True)
        self.refresh()

    def picked(self) -> str:
        """The cursor's cell in words."""
        snap = self.snapshot
        if not snap.lanes or not snap.ticks:
            # In a replay, n is refused: its hint sent a reader to a key that does nothing.
            return "no child has been sampled yet" + (
                ": start some with n (the spawn form)" if self.spawn else ""
            )
        lane = snap.lanes[self.cursor_lane]
        index = len(snap.ticks) - 1 - min(self.cursor_back, len(snap.ticks) - 1)
        tick = snap.ticks[index]
        age = snap.ticks[-1].time - tick.time
        when = "the newest tick" if age <= 0 else f"{fmt.seconds(age)} ago"
        return (
            f"{escape_controls(lane.name, tabs=True)} ({lane.pid}), {when}:"
            f" {describe_cell(lane.cells[index], tick.interval)}"
        )

    def _style(self, name: str) -> Style:
        """The widget's style plus a definition ("bold $warning reverse"), resolved once a
        snapshot: a frame draws thousands of cells in a handful of styles."""
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self._base + Style.parse(resolve(self.app, name))
        return style

    def render_line(self, y: int) -> Strip:
        base = self.rich_style
        if base != self._base:
            self._base = base
            self._styles.clear()
        snap = self.snapshot
        muted = self._style("$text-muted")
        if y == 0:
            segments = [Segment(self._axis(snap, self.visible_ticks()), muted)]
        elif not snap.lanes:
            segments = [Segment("(no children yet)", muted)] if y == 1 else []
        else:
            row = round(self.scroll_y) + y - 1
            segments = self._lane_segments(row) if row < len(snap.lanes) else []
        return Strip(segments).crop_extend(0, self.size.width, base)

    def _lane_segments(self, row: int) -> list[Segment]:
        """A lane's label and cells, a segment per run of cells in the same style."""
        lane = self.snapshot.lanes[row]
        shown = self.visible_ticks()
        back = self._back()
        end = len(self.snapshot.ticks) - back
        start = end - shown
        width = self.label_width
        label = short_name(escape_controls(lane.name, tabs=True), width - 1).ljust(width)
        segments = [
            Segment(label, self._style("bold" if row == self.cursor_lane else "$text-muted"))
        ]
        if shown < self.columns:  # fewer ticks than columns yet: the newest stay at the right
            segments.append(Segment(" " * (self.columns - shown) * CELL_WIDTH, self._base))
        cursor_at = shown - 1 - (self.cursor_back - back) if row == self.cursor_lane else -1
        run: list[str] = []
        run_style = ""
        for i, cell in enumerate(lane.cells[start:end]):
            if cell is None:
                style = ""
            elif cell.state is CellState.RUNNING:
                style = f"bold {core_colour(cell.core)}"
            else:
                style = STATE_STYLES[cell.state]
            if i == cursor_at:
                style += " reverse"
            if style != run_style and run:
                segments.append(Segment("".join(run), self._style(run_style)))
                run = []
            run_style = style
            run.append(cell_text(cell))
        if run:
            segments.append(Segment("".join(run), self._style(run_style)))
        return segments

    def _axis(self, snap: TimelineSnapshot, shown: int) -> str:
        """'child' and a mark every ten ticks: how long ago that column was."""
        cells = [" "] * (self.columns * CELL_WIDTH)
        if snap.ticks:
            newest, end = snap.ticks[-1], len(snap.ticks) - self._back()
            for back in range(0, shown, 10):
                tick = snap.ticks[end - 1 - back]
                age = newest.time - tick.time
                label = "now" if tick is newest else f"-{age:.0f}s" if age >= 1 else f"-{age:.1f}s"
                at = (self.columns - 1 - back) * CELL_WIDTH
                mark = "|" + label
                if back == 0:
                    at -= len(label) - 1
                    mark = label + "|"
                if at < 0:
                    continue
                for k, ch in enumerate(mark):
                    if at + k < len(cells):
                        cells[at + k] = ch
        return "child".ljust(self.label_width) + "".join(cells)


# Rows the timeline screen keeps for the grid before it shows its legend (its border, axis
# and three children), and the rows besides the legend that are not the grid's (the picked
# cell's two lines, the footer).
GRID_LEAST = 6
BESIDE_GRID = 3


class TimelineScreen(ModalScreen[None]):
    """The timeline, full screen. Modal, so the app's one-letter keys stay on the table."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,l,q", "close", "Close"),
    ]

    DEFAULT_CSS = """
    TimelineScreen {
        layout: vertical;
        background: $background;
    }
    #timeline-grid {
        height: 1fr;
        border: round $accent;
        border-title-color: $accent;
        background: $surface;
        scrollbar-size-vertical: 1;
    }
    #timeline-picked {
        height: auto;
        max-height: 2;  /* at 80 columns a cell's words take two lines: none is cut */
        padding: 0 1;
        background: $panel;
    }
    #timeline-legend {
        height: auto;
        padding: 0 1;
        color: $text-muted;
    }
    """

    def __init__(self, timeline: Timeline, interval: float = 1.0, spawn: bool = True) -> None:
        super().__init__()
        self.timeline = timeline
        self.interval = interval
        self.spawn = spawn
        self._version = -1
        self._columns = 0
        self._back = 0

    def compose(self) -> ComposeResult:
        yield TimelineGrid(self.spawn, id="timeline-grid")
        yield Static(id="timeline-picked", markup=False)
        yield Static(
            Text(
                LEGEND.format(bar="0█ 1▄"),
                no_wrap=False,
            ),
            id="timeline-legend",
            markup=False,
        )
        yield Footer()

    def on_mount(self) -> None:
        grid = self.query_one(TimelineGrid)
        grid.border_title = (
            f"Timeline: what each child did in each {fmt.seconds(self.interval)} tick"
        )
        grid.focus()
        self.poll()
        self.set_interval(POLL_S, self.poll)

    def poll(self) -> None:
        self._show()

    def on_resize(self, event: events.Resize) -> None:
        """The legend only where the grid keeps room for a few children under it: at 40x12
        the legend took the whole screen and left no lane (each cell is still described
        in words under the grid, as the cursor picks it)."""
        legend = self.query_one("#timeline-legend", Static)
        size = event.size
        lines = legend.get_content_height(size, size, max(1, size.width - 2))  # its padding
        legend.display = size.height - lines - BESIDE_GRID >= GRID_LEAST

    def on_timeline_grid_resized(self, _message: TimelineGrid.Resized) -> None:
        self._show()

    def _show(self) -> None:
        grid = self.query_one(TimelineGrid)
        columns, back = grid.columns, grid.back
        if (self.timeline.version, columns, back) == (self._version, self._columns, self._back):
            return
        self._version, self._columns, self._back = self.timeline.version, columns, back
        # Only the ticks the grid can show (and those after them, when it looks back):
        # copying the whole history of 1,000 children every tick cost the event loop ~0.2 s.
        snapshot = self.timeline.snapshot(last=columns + back)
        grid.show(snapshot)
        if grid.back != back:  # it stayed on its ticks as new ones came: take them too
            self._back = grid.back
            grid.show(self.timeline.snapshot(last=columns + grid.back))
        self._picked()
        subtitle = f"{plural(len(snapshot.lanes), 'child')} · {plural(snapshot.kept, 'tick')} kept"
        if snapshot.cores:
            subtitle = f"{plural(snapshot.cores, 'core')} · " + subtitle
        grid.border_subtitle = subtitle

    def _picked(self) -> None:
        self.query_one("#timeline-picked", Static).update(
            Text(self.query_one(TimelineGrid).picked(), overflow="ellipsis")
        )

    def on_timeline_grid_moved(self, _message: TimelineGrid.Moved) -> None:
        self._show()  # the window may have moved back or forth
        self._picked()

    def action_close(self) -> None:
        self.dismiss(None)
