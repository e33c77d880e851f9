"""A bounded, scrolling list of log lines with a cursor: each line can carry a value (the
server log's lines carry their handler's pid). Follows the newest line until the person
moves the cursor up; moving it announces the line's value."""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from proclab.tui.widgets.offscreen import PaintedWhenShown


class LineList(PaintedWhenShown, ScrollView, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "move(-10)", "Page up", show=False),
        Binding("pagedown", "move(10)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Newest", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"line-list--cursor"}
    DEFAULT_CSS = """
    LineList > .line-list--cursor {
        background: $block-cursor-blurred-background;
    }
    LineList:focus > .line-list--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
    }
    """

    class Highlighted(Message):
        def __init__(self, value: Any) -> None:
            super().__init__()
            self.value = value

    def __init__(self, max_lines: int = 1000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lines: deque[tuple[list[Segment], int, Any]] = deque(maxlen=max_lines)
        self._cursor: int | None = None  # None: follow the newest line
        self._width = 0

    @property
    def line_count(self) -> int:
        return len(self._lines)

    def plain_lines(self) -> list[str]:
        return ["".join(s.text for s in segments) for segments, _w, _v in self._lines]

    def add(self, lines: list[tuple[Text, Any]]) -> None:
        """Append (text, value) lines; the oldest fall off past max_lines."""
        if not lines:
            return
        dropped = max(0, len(self._lines) + len(lines) - (self._lines.maxlen or 0))
        for text, value in lines:
            segments = list(text.render(self.app.console))
            width = text.cell_len
            self._width = max(self._width, width)
            self._lines.append((segments, width, value))
        if self._cursor is not None:
            self._cursor = max(0, self._cursor - dropped)
        self._resize()

    def clear(self) -> None:
        self._lines.clear()
        self._cursor = None
        self._width = 0
        self._resize()

    def on_show(self) -> None:
        # Lines that came while another tab was shown were scrolled to with no height to
        # scroll in: a list that follows its end shows the newest once it has one.
        if self._cursor is None:
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True)

    def _resize(self) -> None:
        self.virtual_size = Size(self._width, len(self._lines))
        if self._cursor is None:
            # Once the new size is laid out: scrolled now, the end was the old size's, and
            # a burst of lines (a client's connections) stayed below the view, stale,
            # until the next line came.
            self.call_after_refresh(self._follow)
        self.refresh()

    def _follow(self) -> None:
        if self._cursor is None:
            self.scroll_end(animate=False, immediate=True)

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        width = self.size.width
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        segments, line_width, _value = self._lines[index]
        strip = Strip(segments, line_width)
        current = self._cursor if self._cursor is not None else len(self._lines) - 1
        if index == current and self.has_focus:
            cursor = self.get_component_rich_style("line-list--cursor")
            strip = Strip(
                [Segment(s.text, (s.style or Style()) + cursor) for s in segments], line_width
            )
            strip = strip.extend_cell_length(int(self.scroll_x) + width, cursor)
        x = int(self.scroll_x)
        return strip.crop_extend(x, x + width, self.rich_style).apply_style(self.rich_style)

    def action_move(self, step: int) -> None:
        if not self._lines:
            return
        current = self._cursor if self._cursor is not None else len(self._lines) - 1
        self._go(current + step)

    def action_jump(self, index: int) -> None:
        if self._lines:
            self._go(index if index >= 0 else len(self._lines) - 1)

    def _go(self, index: int) -> None:
        index = max(0, min(len(self._lines) - 1, index))
        # Back at the newest line: follow new lines again.
        self._cursor = None if index == len(self._lines) - 1 else index
        top = int(self.scroll_y)
        if index < top:
            self.scroll_to(y=index, animate=False)
        elif index >= top + self.size.height:
            self.scroll_to(y=index - self.size.height + 1, animate=False)
        self.refresh()
        self.post_message(self.Highlighted(self._lines[index][2]))

    def on_click(self, event: events.Click) -> None:
        self.focus()
        self._go(int(self.scroll_y) + event.y)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
