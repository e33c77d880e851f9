"""The output log: what children print, tagged with name and pid, stderr set apart.

A virtual list: it keeps the last SCROLLBACK entries and draws only the lines on screen,
when they are on screen, so a child printing millions of lines costs the pane what it
shows, not what was printed. Lines that never reached the pane (the app keeps only the
newest when children print faster than it draws) are counted in a line of their own:
"… 1,234,567 lines not shown". With "only the selected process" on, the pane shows that
child's own last lines (the controller keeps each child's), not only those among the
last SCROLLBACK of all. A watched program's multiprocessing calls (start, join,
terminate, kill, reaping) are lines too, under the process that made them.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from proclab.core.model import Notice, OutputLine, ProcessCall
from proclab.core.output import escape_controls, on_screen
from proclab.tui.call_words import call_moments, who
from proclab.tui.fmt import AFTER_END, line_text
from proclab.tui.theme import resolve
from proclab.tui.widgets.offscreen import PaintedWhenShown

SCROLLBACK = 2000


@dataclass(slots=True)
class Skipped:
    """Lines printed that the pane never got: it was drawing more slowly than they came."""

    count: int


@dataclass(frozen=True, slots=True)
class CallLine:
    """A multiprocessing call a watched process made, as a line under that process."""

    id: int  # the row it is shown under: the process that made the call
    about: int | None  # the row the call was made on (None: a process proclab never saw)
    pid: int
    name: str
    text: str
    time: float


def call_entries(call: ProcessCall) -> list[CallLine]:
    """`call` as a log line under the process that made it: its return, which says all
    (a join's call comes in when it returns; the details give both moments)."""
    child = who(call.child_name, call.child_pid)
    return [
        CallLine(call.id, call.child_id, call.pid, call.name, text, t)
        for t, text in call_moments(call, child)[-1:]
    ]


Entry = OutputLine | Notice | Skipped | CallLine


def in_turn(
    lines: Sequence[OutputLine], calls: Sequence[CallLine], told: dict[int, int]
) -> list[OutputLine | CallLine]:
    """A process's own lines and its calls, each kept in its order, merged in the order
    the source told them (`told`: an entry's id to its place among those the pane holds).
    By their times a child's lines, stamped as read, came after its parent's join(),
    stamped as made; a line older than what the pane holds goes by its time."""
    merged: list[OutputLine | CallLine] = []
    i = j = 0
    while i < len(lines) and j < len(calls):
        line, call = lines[i], calls[j]
        place = told.get(id(line))
        if line.time <= call.time if place is None else place < told[id(call)]:
            merged.append(line)
            i += 1
        else:
            merged.append(call)
            j += 1
    return merged + list(lines[i:]) + list(calls[j:])


class OutputLog(PaintedWhenShown, ScrollView, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        # One key, two words: the footer says what f does now (it said "Only selected"
        # while the pane already showed only the selected process's lines).
        Binding(
            "f",
            "only_selected(True)",
            "Only selected",
            tooltip="Show only the selected process's lines",
        ),
        Binding("f", "only_selected(False)", "All", tooltip="Show every process's lines again"),
    ]
    DEFAULT_CSS = """
    OutputLog {
        background: $surface;
        color: $foreground;
        overflow-y: scroll;
        &:focus {
            background-tint: $foreground 5%;
        }
    }
    """

    def __init__(
        self,
        history: Callable[[int], Sequence[OutputLine]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._history = history  # a child's own last lines, for "only the selected"
        self._entries: deque[Entry] = deque(maxlen=SCROLLBACK)
        # What is in view: each entry with a serial number (its drawn line's key in the
        # cache) and its width in cells. Its text is made when it is drawn.
        self._view: deque[tuple[int, Entry, int]] = deque(maxlen=SCROLLBACK)
        self._serials = itertools.count()
        self._styles: dict[str, Style] = {}
        self._base = Style()
        self._following = True
        self._content_width = 0
        self._widest = 0
        self._from_history: set[int] = set()
        self._not_shown = 0  # lines that never reached the pane, since it started  # lines the view took from the history
        self._cache: LRUCache[tuple[int, int, int], Strip] = LRUCache(512)
        self.only_id: int | None = None  # show only this record's lines
        self.only_selected = False
        self._selected: int | None = None

    # What it holds ---------------------------------------------------------------------

    def add(self, entries: Iterable[OutputLine | Notice | CallLine], skipped: int = 0) -> None:
        """Append entries, oldest first; `skipped`: lines printed before them that never
        reached the pane, said in one line before them."""
        fresh: list[Entry] = [Skipped(skipped)] if skipped else []
        if skipped:
            self._not_shown += skipped
            self._label()
        if self._from_history:  # only lines queued before the view was built repeat
            fresh.extend(e for e in entries if id(e) not in self._from_history)
            self._from_history.clear()
        else:
            fresh.extend(entries)
        if not fresh:
            return
        self._entries.extend(fresh)
        self._show([e for e in fresh if self._visible(e)])

    def reset(self) -> None:
        """Forget every line (a replay seeking back feeds them again)."""
        self._entries.clear()
        self._not_shown = 0
        self._label()
        self._set_view([])

    def set_selected(self, rec_id: int | None) -> None:
        self._selected = rec_id
        if self.only_selected:
            self._rebuild()

    class Filtered(Message):
        """Showing only the selected process's lines was switched on or off."""

        def __init__(self, log: OutputLog) -> None:
            super().__init__()
            self.log = log

        @property
        def control(self) -> OutputLog:
            return self.log

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "only_selected":
            return parameters[0] != self.only_selected
        return True

    def action_only_selected(self, only: bool) -> None:
        self.only_selected = only
        self._rebuild()
        self._label()
        self.refresh_bindings()

    @property
    def not_shown(self) -> int:
        """Lines that never reached the pane (printed faster than it draws), since it began."""
        return self._not_shown

    def _label(self) -> None:
        # The pane around it says what it shows: the log itself has no border.
        self.post_message(self.Filtered(self))

    def lines_shown(self) -> list[str]:
        """The plain text of every line the pane shows, scrolled to or not (for tests)."""
        return [self._text(entry)[0] for _serial, entry, _width in self._view]

    def _visible(self, entry: Entry) -> bool:
        if not self.only_selected or isinstance(entry, Skipped):
            return True
        if isinstance(entry, CallLine):  # the caller's line, and the child's
            return self._selected in (entry.id, entry.about)
        return isinstance(entry, OutputLine) and entry.id == self._selected

    def _rebuild(self) -> None:
        if self.only_selected and self._history is not None and self._selected is not None:
            lines = self._history(self._selected)
            self._from_history = {id(line) for line in lines}
            calls = [e for e in self._entries if isinstance(e, CallLine) and self._visible(e)]
            # a watched process's calls: those it made, and those made on it
            told = {id(e): n for n, e in enumerate(self._entries)} if calls else {}
            self._set_view(in_turn(lines, calls, told))
        else:
            self._set_view(e for e in self._entries if self._visible(e))

    def _set_view(self, entries: Iterable[Entry]) -> None:
        self._view.clear()
        self._widest = 0
        self.virtual_size = Size(0, 0)
        self.scroll_to(0, 0, animate=False, immediate=True)
        self._show(list(entries))

    def _show(self, entries: list[Entry]) -> None:
        """Put entries in view: only their text is made now, their lines when drawn."""
        if not entries:
            return
        following = self._following
        view = self._view
        first, last = entries[0], view[-1][1] if view else None
        if isinstance(first, Skipped) and isinstance(last, Skipped):
            # Two counts in a row are one: nothing between them was shown either.
            view.pop()
            entries[0] = Skipped(last.count + first.count)
        overflow = max(0, len(view) + len(entries) - SCROLLBACK)
        serials, width = self._serials, self._width
        added = [(next(serials), entry, width(entry)) for entry in entries[-SCROLLBACK:]]
        view.extend(added)
        self._widest = max(self._widest, max(w for _s, _e, w in added))
        self.virtual_size = Size(self._widest, len(view))
        if following:  # after the layout: a scrollbar that appears moves the end
            self.scroll_end(animate=False, x_axis=False)
        elif overflow:  # the lines in view moved up: keep looking at the same ones
            self.scroll_to(y=max(0, self.scroll_y - overflow), animate=False, immediate=True)
        self.refresh()

    @classmethod
    def _width(cls, entry: Entry) -> int:
        """The cells its line takes (how far the pane scrolls sideways), counted without
        making the line for the usual one: a name and text in printable ASCII."""
        if type(entry) is OutputLine:
            name, text = entry.name, entry.text
            if name.isascii() and text.isascii() and name.isprintable() and text.isprintable():
                tag = len(name) + len(str(entry.pid)) + 2
                marks = (
                    (2 if entry.stream == "stderr" else 0)
                    + (2 if entry.continues else 0)
                    + (2 if entry.after_end else 0)
                )
                return tag + len(text) + marks
        return cell_len(cls._text(entry)[0])

    @staticmethod
    def _text(entry: Entry) -> tuple[str, int]:
        """The entry's line, and how many of its first characters are its tag."""
        if isinstance(entry, Skipped):
            count = f"{entry.count:,} {'line' if entry.count == 1 else 'lines'}"
            return (
                f"… {count} not shown: printed faster than the pane draws them"
                " (f: the selected child's own last lines)",
                0,
            )
        if isinstance(entry, CallLine):
            tag = f"{escape_controls(entry.name, tabs=True)} {entry.pid} "
            return f"{tag}» {on_screen(entry.text)}", len(tag)
        if isinstance(entry, Notice):
            stamp = time.strftime("%H:%M:%S", time.localtime(entry.time))
            return f"{stamp} proclab: {on_screen(entry.text)}", 0
        tag = f"{escape_controls(entry.name, tabs=True)} {entry.pid} "
        if entry.after_end:
            tag += AFTER_END
        mark = "! " if entry.stream == "stderr" else ""
        return f"{tag}{mark}{line_text(entry)}", len(tag)

    # Drawing ---------------------------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # At the end, it follows new lines; scrolled up by the person, it stays put.
        self._following = new_value >= self.max_scroll_y

    def watch_show_horizontal_scrollbar(self, shown: bool) -> None:
        # A scrollbar that appears after a scroll to the end takes a line from the view, and
        # the last line hid under it (the pictures differed on a loaded machine): a log that
        # follows its end goes there again.
        if shown and self._following:
            self.scroll_end(animate=False, x_axis=False)

    def render_lines(self, crop: Region) -> list[Strip]:
        self._base = self.rich_style  # looked up once a frame, not once a line
        self._content_width = self.scrollable_content_region.width
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        width = self._content_width
        if index >= len(self._view):
            return Strip.blank(width, self._base)
        x = int(self.scroll_x)
        serial, entry, _width = self._view[index]
        key = (serial, x, width)
        strip = self._cache.get(key)
        if strip is None:
            text, tag = self._text(entry)
            if isinstance(entry, OutputLine | CallLine):
                if isinstance(entry, CallLine):
                    body = self._style("italic $accent")
                else:
                    body = self._style("$error") if entry.stream == "stderr" else Style()
                segments = [
                    Segment(text[:tag], self._style("$text-muted")),
                    Segment(text[tag:], body),
                ]
            else:
                segments = [Segment(text, self._style("italic $warning"))]
            strip = Strip(segments).crop_extend(x, x + width, self._base)
            strip = self._cache[key] = strip.apply_style(self._base)
        return strip

    def _style(self, definition: str) -> Style:
        style = self._styles.get(definition)
        if style is None:
            style = self._styles[definition] = Style.parse(resolve(self.app, definition))
        return style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._cache.clear()
