"""The process table: one row per child, kept up to date by key.

A lean widget of its own rather than Textual's DataTable: measured here, DataTable
re-rendered every visible cell through Rich on every update (any update_cell invalidates
all of its caches), about 75 ms a frame for 18 rows, which made proclab six times as
heavy as htop. Here each row is plain strings; a row is re-drawn only when one of its
strings changed, and a frame is a list of cached strips.

Rows are keyed by record id. Sorting is by any column, numerically where the column is a
number, and the cursor follows the process it was on, not the line. Rows with a tree
parent (a watched program's processes) are drawn as htop's tree: each under its parent,
sorted among its siblings; F5 switches to the flat list and back.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from proclab.core.classify import classify
from proclab.core.cpus import format_cpu_list
from proclab.core.exits import describe_exit
from proclab.core.model import ProcessRow, ProcState
from proclab.core.output import escape_controls
from proclab.tui import fmt
from proclab.tui.theme import resolve
from proclab.tui.widgets.process_tree import has_tree, shown_name, tree_order

STATE_STYLES: dict[ProcState, str] = {
    ProcState.STARTING: "italic $text-muted",
    ProcState.RUNNING: "bold $success",
    ProcState.SLEEPING: "$primary",
    ProcState.STOPPED: "bold $warning",
    ProcState.ZOMBIE: "bold $warning",
    ProcState.EXITED: "$text-muted",
    ProcState.TERMINATED: "$warning",
    ProcState.KILLED: "$error",
    ProcState.FAILED: "bold reverse $error",
    ProcState.ENDED: "$text-muted",
}

NAME_WIDTH = 16  # what a cut name keeps, and where the name column starts
NAME_MIN_WIDTH = len("Name ▲")
BLANK = (1, 0.0)  # sorts after every number
NO_VALUE = (BLANK, "~")  # the sort keys of empty cells
PARENT_ONLY = "? (parent)"  # an exit status only the process's parent read

# (text, sort key, style name or "") for one cell
CellValue = tuple[str, Any, str]


def short_name(name: str, width: int = NAME_WIDTH) -> str:
    """Cut a long name in the middle, keeping its end: "ForkServerProcess-12" ->
    "ForkServerPr…-12" (the number, or a client's port, is what tells processes apart)."""
    if cell_len(name) <= width:
        return name
    cut = max(name.rfind("-"), name.rfind(":"))
    tail = name[cut:] if cut >= len(name) - 8 else name[-4:]
    return set_cell_size(name, width - cell_len(tail) - 1) + "…" + tail


def name_width(rows: Iterable[ProcessRow], guides: dict[int, str] | None = None) -> int:
    """Cells the longest name needs (with its tree guides, one cell a character), read at
    every refresh: when every name is ASCII (nearly always) their lengths are their
    widths, cheaper than measuring each one's cells."""
    rows = list(rows)
    names = [shown_name(r) for r in rows]
    measure = len if "".join(names).isascii() else cell_len
    if not guides:
        return max(map(measure, names), default=0)
    return max(
        (measure(name) + len(guides.get(r.id, "")) for r, name in zip(rows, names, strict=True)),
        default=0,
    )


CACHED_NAME_CHARS = 256


def _cached_for_names(function: Callable[[str], Any]) -> Callable[[str], Any]:
    """`function`, its answers kept for names of up to CACHED_NAME_CHARS: every row's name
    is sorted and printed each tick and rarely changes (uncached, its sort key was a fifth
    of a tick's table work with 100 children: benchmarks/overhead.py). A longer name (a
    watched program may give one of 64 KB) is worked out each time, not kept."""
    cached = functools.lru_cache(maxsize=4096)(function)
    return lambda text: cached(text) if len(text) <= CACHED_NAME_CHARS else function(text)


@_cached_for_names
def natural(text: str) -> tuple[Any, ...]:
    """Sort "Process-10" after "Process-9"."""
    return tuple(
        int(part) if part.isdecimal() else part.lower() for part in re.split(r"(\d+)", text)
    )


def _num(value: float | None) -> tuple[int, float]:
    return (0, value) if value is not None else BLANK


def _live(row: ProcessRow) -> Any:
    return row.sample if row.state.is_live else None


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    right: bool  # right-aligned (numbers), sorted highest first as htop does
    value: Callable[[ProcessRow, float], CellValue]
    timed: bool = False  # reads the clock: a live row's cell moves with it


def _name(row: ProcessRow, now: float) -> CellValue:
    # Cut to fit by the table, which knows how wide the name column is now.
    name = shown_name(row)
    return _printable(name), natural(name), ""


_printable = _cached_for_names(functools.partial(escape_controls, tabs=True))


def _pid(row: ProcessRow, now: float) -> CellValue:
    return str(row.pid or ""), _num(row.pid), ""


def _state(row: ProcessRow, now: float) -> CellValue:
    return str(row.state), str(row.state), STATE_STYLES[row.state]


def _exit(row: ProcessRow, now: float) -> CellValue:
    if row.state is ProcState.ENDED:
        # A watched process reaped by a parent that did not tell proclab: only a parent
        # can read a child's exit status (the details say so, and name the parent).
        return PARENT_ONLY, (0, float("inf")), "$text-muted"
    style = STATE_STYLES[row.state] if row.state.is_over and row.exitcode else ""
    return describe_exit(row.exitcode), _num(row.exitcode), style


def _cpu_percent(row: ProcessRow, now: float) -> CellValue:
    sample = _live(row)
    value = sample.cpu_percent if sample else None
    return ("" if value is None else f"{value:.0f}"), _num(value), ""


def _rss(row: ProcessRow, now: float) -> CellValue:
    sample = _live(row)
    value = sample.rss if sample else None
    return fmt.size(value), _num(value), ""


def _core(row: ProcessRow, now: float) -> CellValue:
    sample = _live(row)
    value = sample.core if sample else None
    return ("" if value is None else str(value)), _num(value), ""


def _kind(row: ProcessRow, now: float) -> CellValue:
    kind = classify(row, now)
    return kind or "", kind or "~", ""


def _runtime(row: ProcessRow, now: float) -> CellValue:
    wall = row.wall_time(now)
    return fmt.wall_time(row, now), _num(wall), ""


def _cpu_time(row: ProcessRow, now: float) -> CellValue:
    value = row.sample.cpu_time if row.sample else None
    return fmt.cpu_time(row) if value is not None else "", _num(value), ""


def _busy(row: ProcessRow, now: float) -> CellValue:
    """CPU time / wall time over its life so far: how much of it it spent on a CPU."""
    wall = row.wall_time(now)
    if row.sample is None or not wall or row.end_unseen:  # its wall time is not known
        return "", BLANK, ""
    share = row.sample.cpu_time / wall
    return f"{share:.0%}", _num(share), ""


def _switches(row: ProcessRow, now: float) -> CellValue:
    """Context switches, voluntary (gave the CPU up) / involuntary (preempted)."""
    sample = row.sample
    if sample is None:
        return "", BLANK, ""
    text = f"{fmt.count(sample.ctx_voluntary)}/{fmt.count(sample.ctx_involuntary)}"
    return text, _num(sample.ctx_voluntary + sample.ctx_involuntary), ""


def _threads(row: ProcessRow, now: float) -> CellValue:
    sample = _live(row)
    value = sample.threads if sample else None
    return ("" if value is None else str(value)), _num(value), ""


def _method(row: ProcessRow, now: float) -> CellValue:
    if row.spec is not None:
        return row.spec.method, row.spec.method, ""
    method = row.mp.method if row.mp is not None and row.mp.method else ""
    return method, method or "~", ""  # a watched process: what its parent said, if it did


def _pinned(row: ProcessRow, now: float) -> CellValue:
    text = format_cpu_list(row.spec.affinity) if row.spec is not None else ""
    return text, text or "~", ""


def _target(row: ProcessRow, now: float) -> CellValue:
    if row.spec is None:  # a watched process: its multiprocessing target, if it has one
        label = (row.mp.target if row.mp is not None else None) or ""
        return escape_controls(label, tabs=True), label or "~", ""
    label = row.spec.target.label
    if row.tag:
        label = f"{row.tag} {label}"
    return escape_controls(label, tabs=True), label, ""


# Most telling first: at 80 columns the first seven or eight fit (the name column is as
# wide as the longest name), the rest scroll into view.
COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", NAME_WIDTH, False, _name),
    Column("pid", "PID", 7, True, _pid),
    Column("state", "State", 10, False, _state),
    Column("exit", "Exit", 11, False, _exit),
    Column("cpu", "CPU%", 4, True, _cpu_percent),
    Column("rss", "RSS", 6, True, _rss),
    Column("core", "Core", 4, True, _core),
    Column("kind", "Kind", 4, False, _kind, timed=True),
    Column("runtime", "Runtime", 8, True, _runtime, timed=True),
    Column("cputime", "CPU time", 8, True, _cpu_time),
    Column("busy", "CPU/wall", 8, True, _busy, timed=True),
    Column("switches", "Ctx vol/inv", 11, True, _switches),
    Column("threads", "Thr", 3, True, _threads),
    Column("method", "Method", 10, False, _method),
    Column("pinned", "Pinned", 6, False, _pinned),
    Column("target", "Target", 36, False, _target),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
TIMED = tuple(i for i, c in enumerate(COLUMNS) if c.timed)
COLUMN_LABELS = {c.key: c.label for c in COLUMNS}
PAD = 1  # blank cells on each side of a column


def _spans(widths: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Where each column's cells are across the table: (first x, x after the last)."""
    spans, left = [], 0
    for width in widths:
        right = left + width + 2 * PAD
        spans.append((left, right))
        left = right
    return tuple(spans)


@dataclass(slots=True)
class _Drawn:
    """One row as last drawn: redrawn when its ProcessRow changes (a live row's also when
    the clock moves, for its runtime)."""

    row: ProcessRow
    now: float
    guides: str  # its tree guides when drawn ("" flat, or for a root)
    values: tuple[CellValue, ...]
    segments: list[Segment]


class ProcessTable(ScrollView, can_focus=True):
    """Rows keyed by record id; `show(rows, now)` brings the table up to date."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sort_next", "Sort", tooltip="Sort by the next column"),
        Binding("S", "sort_reverse", "Reverse", show=False, tooltip="Reverse the sort order"),
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "cursor_to(0)", "First", show=False),
        Binding("end", "cursor_to(-1)", "Last", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
        Binding("enter", "activate", "Details", show=False, tooltip="Details of the process"),
        Binding(
            "f5",
            "toggle_tree",
            "Tree/flat",
            show=False,
            tooltip="Tree view (each process under its parent, as htop's F5) or flat list",
        ),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "process-table--header",
        "process-table--cursor",
        "process-table--cursor-blurred",
        "process-table--hint",
    }

    DEFAULT_CSS = """
    ProcessTable {
        background: $surface;
    }
    ProcessTable > .process-table--header {
        background: $panel;
        color: $foreground;
        text-style: bold;
    }
    ProcessTable > .process-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    ProcessTable > .process-table--hint {
        color: $text-muted;
    }
    ProcessTable > .process-table--cursor-blurred {
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
    }
    """

    class Selected(Message):
        """The cursor moved to another process (or to none)."""

        def __init__(self, table: ProcessTable, rec_id: int | None) -> None:
            super().__init__()
            self.table = table
            self.rec_id = rec_id

        @property
        def control(self) -> ProcessTable:
            return self.table

    class Sorted(Message):
        """The sort column or direction changed."""

        def __init__(self, table: ProcessTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> ProcessTable:
            return self.table

    class Activated(Message):
        """Enter (or a double click) on a process."""

        def __init__(self, table: ProcessTable, rec_id: int) -> None:
            super().__init__()
            self.table = table
            self.rec_id = rec_id

        @property
        def control(self) -> ProcessTable:
            return self.table

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._all: dict[int, ProcessRow] = {}
        self._now = 0.0
        self._sort_keys: dict[int, Any] = {}
        self._keys_for = ""  # the column _sort_keys were read from
        self._fitted_share = 0  # the name column's room when names were last fitted
        self._drawn: dict[int, _Drawn] = {}
        self._on_screen: dict[int, tuple[int, tuple[CellValue, ...]]] = {}  # line: as drawn
        self._order: list[int] = []  # record ids, sorted and filtered, as shown
        self._guides: dict[int, str] = {}  # tree guides before each name, in tree view
        self._parents: dict[int, int] = {}  # tree parents, as last ordered
        self._cursor_id: int | None = None
        self._announced: int | None = -1  # so the first selection is announced
        self._styles: dict[str, Style] = {}
        # The name column is as wide as the longest name, up to a share of the table's
        # width: names are what tell rows apart, so they get their room first.
        self._widths = [c.width for c in COLUMNS]
        self._spans = _spans(self._widths)
        self.sort_column = "name"
        self.sort_reverse = False
        self.filter_text = ""
        self.empty_text = ""  # what to do when there is no row at all (the app says)
        self.tree_view = True  # drawn as a tree where rows have tree parents
        self._tree_toggled = False  # F5 was pressed: the border says the view from then on

    # Reading -------------------------------------------------------------------------------

    @property
    def selected_id(self) -> int | None:
        return self._cursor_id

    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def order(self) -> list[int]:
        """Record ids in the order shown."""
        return list(self._order)

    def cell_text(self, rec_id: int, column: str) -> str:
        return self._values(rec_id)[COLUMN_KEYS.index(column)][0]

    @property
    def table_width(self) -> int:
        return self._spans[-1][1]

    def column_span(self, column: str) -> tuple[int, int]:
        """Where a column is across the table (first x, x after the last)."""
        return self._spans[COLUMN_KEYS.index(column)]

    # Updating ----------------------------------------------------------------------------

    def show(self, rows: Iterable[ProcessRow], now: float) -> None:
        """Bring the table up to `rows`. Only the sort column is computed for every row;
        the other cells only for the rows on screen, when they are drawn (with 1,000
        children that is what keeps a refresh far below a frame's time)."""
        before, self._all = self._all, {r.id: r for r in rows}
        self._now = now
        column = COLUMNS[COLUMN_KEYS.index(self.sort_column)]
        # A row that did not change is the same object (a sleeping child's, tick after
        # tick): with every row the same, a key that does not read the clock is too.
        unchanged = before.keys() == self._all.keys() and all(
            row is before[rec_id] for rec_id, row in self._all.items()
        )
        if unchanged and not column.timed and self._keys_for == self.sort_column:
            keys = self._sort_keys
        else:
            keys = {rec_id: column.value(row, now)[1] for rec_id, row in self._all.items()}
        for gone in self._drawn.keys() - self._all.keys():
            del self._drawn[gone]
        parents = self._tree_parents()
        # The rows shown change without a sort key changing: with a filter on, one row can
        # stop matching as another starts (same count, other rows). Unfiltered, the keys'
        # ids are the rows shown, so comparing the keys says it all.
        if (
            (keys is not self._sort_keys and keys != self._sort_keys)
            or parents != self._parents
            or (self.filter_text and set(self._order) != set(self._matching()))
        ):
            self._sort_keys, self._keys_for = keys, self.sort_column
            self._reorder(parents)
            self._fit_names()
        else:
            self._fit_names(rows_changed=not unchanged)
            self._refresh_changed()

    def _fit_names(self, rows_changed: bool = True) -> None:
        """Widen or narrow the name column to the longest name (within its share); every
        row is drawn again when it changes (rarely: a new name, a resize)."""
        share = max(NAME_WIDTH, self.scrollable_content_region.width // 3)
        if not rows_changed and share == self._fitted_share:
            return  # the same names in the same room
        self._fitted_share = share
        longest = name_width(self._all.values(), self._guides)
        width = max(NAME_MIN_WIDTH, min(longest, share))
        if width == self._widths[0]:
            return
        self._widths[0] = width
        self._spans = _spans(self._widths)
        self._drawn.clear()
        self._on_screen.clear()
        self.virtual_size = Size(self.table_width, len(self._order) + 1)
        self.refresh()

    def _refresh_changed(self) -> None:
        """Repaint only the cells whose text or style changed since they were drawn. A tick
        of an idle table changes a few cells (a runtime, a CPU %), often none on screen:
        repainting every row wrote the whole table to the terminal every tick."""
        width, top = self.size.width, int(self.scroll_y)
        for y in range(1, self.scrollable_content_region.height):
            index = top + y - 1
            rec_id = self._order[index] if index < len(self._order) else None
            shown = self._on_screen.get(y)
            if rec_id is None or shown is None or shown[0] != rec_id:
                if rec_id is not None or shown is not None:
                    self.refresh(Region(0, y, width, 1))
                continue
            values = self._draw(rec_id).values
            if values is shown[1]:
                continue
            changed = [
                self._on_screen_x(i, *self._spans[i])
                for i, (old, new) in enumerate(zip(shown[1], values, strict=True))
                if old[0] != new[0] or old[2] != new[2]
            ]
            if changed:
                left = max(0, min(a for a, _ in changed))
                right = min(width, max(b for _, b in changed))
                if left < right:
                    self.refresh(Region(left, y, right - left, 1))

    def set_filter(self, text: str, rows: Iterable[ProcessRow], now: float) -> None:
        self.filter_text = text.strip()
        self.show(rows, now)
        self._reorder()

    def restyle(self) -> None:
        """After a theme change: styles are resolved again and every row re-drawn."""
        self._styles.clear()
        self._drawn.clear()
        self.refresh()

    def select(self, rec_id: int) -> None:
        if rec_id in self._order:
            self._cursor_id = rec_id
            self._scroll_to_cursor()
            self.refresh()
            self._announce()

    def _matching(self) -> list[int]:
        if not self.filter_text:
            return list(self._all)
        needle = self.filter_text.lower()
        return [i for i in self._all if needle in self._haystack(i)]

    def _haystack(self, rec_id: int) -> str:
        row = self._all.get(rec_id)
        if row is None:
            return ""
        spec = row.spec
        about = f"{spec.target.label} {spec.method}" if spec is not None else ""
        if row.mp is not None:
            about += f" {row.mp.name} {row.mp.target or ''} {row.mp.method or ''}"
        name = shown_name(row)
        return f"{name} {row.pid or ''} {row.state} {about} {row.command} {row.tag or ''}".lower()

    def _reorder(self, parents: dict[int, int] | None = None) -> None:
        """Sort (and filter) the rows; in tree view, each under its parent. `parents`: the
        tree parents, when the caller has just read them."""
        column = COLUMNS[COLUMN_KEYS.index(self.sort_column)]
        if self._sort_keys.keys() != self._all.keys() or self._keys_for != self.sort_column:
            self._sort_keys = {i: column.value(r, self._now)[1] for i, r in self._all.items()}
            self._keys_for = self.sort_column
        keys = self._sort_keys
        ids = self._matching()
        ids.sort(key=lambda i: (keys[i], i), reverse=self.sort_reverse)
        if self.sort_reverse:  # rows with no value (ended, unknown) stay last either way
            ids = [i for i in ids if keys[i] not in NO_VALUE] + [
                i for i in ids if keys[i] in NO_VALUE
            ]
        had_tree = bool(self._parents)
        self._parents = self._tree_parents() if parents is None else parents
        if had_tree != bool(self._parents):
            self.post_message(self.Sorted(self))  # the border says the view once there is a tree
        if self.tree_view and self._parents:
            ids, self._guides = tree_order(ids, self._parents)
        else:
            self._guides = {}
        self._order = ids
        if self._cursor_id not in ids:
            self._cursor_id = ids[0] if ids else None
        self.virtual_size = Size(self.table_width, len(ids) + 1)
        self._scroll_to_cursor()
        self.refresh()
        self._announce()

    def _tree_parents(self) -> dict[int, int]:
        return {i: r.parent for i, r in self._all.items() if r.parent is not None}

    def _announce(self) -> None:
        if self._cursor_id != self._announced:
            self._announced = self._cursor_id
            self.post_message(self.Selected(self, self._cursor_id))

    # Drawing -----------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = Style.parse(resolve(self.app, name)) if name else Style()
        return style

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x = int(self.scroll_x)
        base = self.rich_style
        if y == 0:
            strip = Strip(self._header_segments(), self.table_width)
        else:
            index = int(self.scroll_y) + y - 1
            if index >= len(self._order):
                self._on_screen.pop(y, None)
                hint = self._hint()
                if 0 < y - 1 <= len(hint):
                    muted = self.get_component_rich_style("process-table--hint")
                    return Strip([Segment(" " + hint[y - 2], muted)]).crop_extend(0, width, base)
                return Strip.blank(width, base)
            rec_id = self._order[index]
            drawn = self._draw(rec_id)
            self._on_screen[y] = (rec_id, drawn.values)
            segments = drawn.segments
            if rec_id == self._cursor_id:
                cursor = self.get_component_rich_style(
                    "process-table--cursor" if self.has_focus else "process-table--cursor-blurred"
                )
                strip = Strip(
                    [Segment(s.text, (s.style or Style()) + cursor) for s in segments],
                    self.table_width,
                )
                strip = strip.extend_cell_length(scroll_x + width, cursor)
            else:
                strip = Strip(segments, self.table_width)
        frozen = self._frozen()
        if frozen:  # the names stay: scrolled right, every row read "forkserver  proclab..."
            strip = Strip.join(
                [
                    strip.crop_extend(0, frozen, base),
                    strip.crop(frozen + scroll_x, scroll_x + width),
                ]
            )
            return strip.crop_extend(0, width, base).apply_style(base)
        return strip.crop_extend(scroll_x, scroll_x + width, base).apply_style(base)

    def _frozen(self) -> int:
        """The columns the name column takes at the left while the rest scroll (0: none,
        not scrolled, or too narrow a view to spare them)."""
        names = self._spans[0][1]
        return names if int(self.scroll_x) > 0 and self.size.width >= names + 20 else 0

    def _on_screen_x(self, column: int, left: int, right: int) -> tuple[int, int]:
        """Where a column's cells are on screen, scrolled (the name column frozen)."""
        frozen, scroll_x = self._frozen(), int(self.scroll_x)
        if frozen and column == 0:
            return left, right
        return max(frozen, left - scroll_x), right - scroll_x

    def _hint(self) -> list[str]:
        """Lines drawn below the header when no row is shown: what to do next."""
        if self._order:
            return []
        if self._all and self.filter_text:
            # As typed (repr doubled a backslash), controls written out
            typed = escape_controls(self.filter_text, tabs=True)
            return [f"No process matches '{typed}' (Escape clears the filter)."]
        return self.empty_text.splitlines()

    @property
    def sort_label(self) -> str:
        label = next(c.label for c in COLUMNS if c.key == self.sort_column)
        return f"{label} {'▼' if self.sort_reverse else '▲'}"

    def _header_segments(self) -> list[Segment]:
        """Column labels; the sorted one is underlined, with its arrow where it fits."""
        style = self.get_component_rich_style("process-table--header")
        sorted_style = style + Style(underline=True)
        segments = []
        arrow = "▼" if self.sort_reverse else "▲"
        for column, width in zip(COLUMNS, self._widths, strict=True):
            sorted_here = column.key == self.sort_column
            label, after = column.label, " " * PAD
            if sorted_here and len(label) + 2 <= width:
                label = f"{label} {arrow}"
            elif sorted_here:
                # In the space after it: CPU%, four columns wide, showed no arrow at all
                after = arrow + " " * (PAD - 1)
            text = " " * PAD + _fit(label, width, column.right) + after
            segments.append(Segment(text, sorted_style if sorted_here else style))
        return segments

    def _draw(self, rec_id: int) -> _Drawn:
        row = self._all[rec_id]
        drawn = self._drawn.get(rec_id)
        guides = self._guides.get(rec_id, "")
        values: tuple[CellValue, ...]
        if drawn is not None and drawn.row is row and drawn.guides == guides:
            if row.state.is_over or drawn.now == self._now:
                return drawn
            # Only the clock moved (a sleeping child's row stays the same object from tick
            # to tick): only the cells that read it are worked out again.
            moved = list(drawn.values)
            for i in TIMED:
                moved[i] = COLUMNS[i].value(row, self._now)
            values = tuple(moved)
        else:
            name, *others = (column.value(row, self._now) for column in COLUMNS)
            room = self._widths[0] - len(guides)
            text = guides + (short_name(name[0], room) if room > 8 else name[0])
            values = ((text, *name[1:]), *others)
        if drawn is not None and drawn.values == values:
            drawn.row, drawn.now, drawn.guides = row, self._now, guides
            return drawn
        # A tick changes a cell or two of a row (its runtime, its CPU %): the others keep
        # their segments (widths changing clears every drawn row: _fit_names).
        segments = [
            drawn.segments[i]
            if drawn is not None and drawn.values[i][0] == text and drawn.values[i][2] == style
            else Segment(
                " " * PAD + _fit(text, width, column.right) + " " * PAD, self._style(style)
            )
            for i, (column, width, (text, _key, style)) in enumerate(
                zip(COLUMNS, self._widths, values, strict=True)
            )
        ]
        drawn = self._drawn[rec_id] = _Drawn(row, self._now, guides, values, segments)
        return drawn

    def _values(self, rec_id: int) -> tuple[CellValue, ...]:
        return self._draw(rec_id).values

    # Moving ------------------------------------------------------------------------------

    def _cursor_index(self) -> int:
        try:
            return self._order.index(self._cursor_id) if self._cursor_id is not None else 0
        except ValueError:
            return 0

    def _move_to(self, index: int) -> None:
        if not self._order:
            return
        index = max(0, min(len(self._order) - 1, index))
        self._cursor_id = self._order[index]
        self._scroll_to_cursor()
        self.refresh()
        self._announce()

    def _scroll_to_cursor(self) -> None:
        # Not self.size: that includes the horizontal scrollbar, which hid the last row.
        visible = max(1, self.scrollable_content_region.height - 1)
        index = self._cursor_index()
        top = int(self.scroll_y)
        if index < top:
            self.scroll_to(y=index, animate=False)
        elif index >= top + visible:
            self.scroll_to(y=index - visible + 1, animate=False)

    def action_cursor(self, step: int) -> None:
        self._move_to(self._cursor_index() + step)

    def action_page(self, direction: int) -> None:
        self._move_to(
            self._cursor_index() + direction * max(1, self.scrollable_content_region.height - 2)
        )

    def action_cursor_to(self, index: int) -> None:
        self._move_to(index if index >= 0 else len(self._order) - 1)

    def action_scroll_right(self) -> None:
        """A column a key, not a character: at 80 columns the table showed half a column,
        and moved one character each press. The names stay at the left (_frozen): a stop
        is where a column begins right of them."""
        x = round(self.scroll_x)
        ahead = [stop for stop in self._column_stops() if stop > x]
        self.scroll_to(x=min(ahead[0] if ahead else x, self.max_scroll_x), animate=False)

    def action_scroll_left(self) -> None:
        x = round(self.scroll_x)
        behind = [stop for stop in self._column_stops() if stop < x]
        self.scroll_to(x=behind[-1] if behind else 0, animate=False)

    def _column_stops(self) -> list[int]:
        """Where Left and Right stop: each column's start, then the table's end."""
        names = self._spans[0][1]
        ends = int(self.max_scroll_x)
        return sorted({*(min(left - names, ends) for left, _ in self._spans[1:]), ends})

    def action_activate(self) -> None:
        if self._cursor_id is not None:
            self.post_message(self.Activated(self, self._cursor_id))

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        """Sort by `column`; numbers start highest first (htop's habit), words A to Z."""
        self.sort_column = column
        self.sort_reverse = COLUMNS[COLUMN_KEYS.index(column)].right if reverse is None else reverse
        self._reorder()
        self.post_message(self.Sorted(self))

    def action_sort_next(self) -> None:
        index = (COLUMN_KEYS.index(self.sort_column) + 1) % len(COLUMN_KEYS)
        self.sort_by(COLUMN_KEYS[index])

    def action_sort_reverse(self) -> None:
        self.sort_by(self.sort_column, not self.sort_reverse)

    def action_toggle_tree(self) -> None:
        """htop's F5: each process under its parent, or one flat list sorted as a whole."""
        self.tree_view = not self.tree_view
        self._tree_toggled = True
        self._reorder()
        self._fit_names()
        self.post_message(self.Sorted(self))

    @property
    def view_label(self) -> str:
        """What the border says of the view: only once there is a tree to show (or F5 was
        pressed), so a table of proclab's own children reads as it always has."""
        if not (self._tree_toggled or has_tree(self._all.values())):
            return ""
        return "tree, sorted among siblings (F5: flat)" if self.tree_view else "flat (F5: tree)"

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            frozen = self._frozen()
            column = self._column_at(event.x if event.x < frozen else event.x + int(self.scroll_x))
            if column is not None:
                if column == self.sort_column:
                    self.sort_by(column, not self.sort_reverse)
                else:
                    self.sort_by(column)
            return
        self._move_to(int(self.scroll_y) + event.y - 1)
        if event.chain >= 2:
            self.action_activate()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self._fit_names()
        self._scroll_to_cursor()

    def _column_at(self, x: int) -> str | None:
        for column, (left, right) in zip(COLUMNS, self._spans, strict=True):
            if left <= x < right:
                return column.key
        return None


def _fit(text: str, width: int, right: bool) -> str:
    """Pad or cut `text` to exactly `width` terminal cells."""
    length = cell_len(text)
    if length > width:
        return set_cell_size(text, width - 1) + "…"
    return (" " * (width - length) + text) if right else (text + " " * (width - length))
