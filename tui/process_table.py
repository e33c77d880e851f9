"""The process table: one row per child, updated by key so the cursor and scroll stay put.

Each refresh compares every row's cells with what the table shows and updates only the
cells that changed (dolphie's keyed diff); rows are added and removed by record id.
Sorting is by any column, numerically where the column is a number, and the cursor
follows the process it was on, not the line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from proclab.core.classify import classify
from proclab.core.cpus import format_cpu_list
from proclab.core.exits import describe_exit
from proclab.core.model import ProcessRow, ProcState
from proclab.tui import fmt
from proclab.tui.theme import resolve

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
}

NAME_WIDTH = 16


class Cell(Text):
    """Rich text that sorts by a key of its own (numbers as numbers, blanks last)."""

    __slots__ = ("sort_key",)

    def __init__(self, text: str, sort_key: Any, style: str = "", justify: str = "left") -> None:
        super().__init__(text, style=style, justify=justify, no_wrap=True, end="")  # type: ignore[arg-type]
        self.sort_key = sort_key

    def __lt__(self, other: object) -> bool:
        return self.sort_key < other.sort_key  # type: ignore[attr-defined,no-any-return]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cell) and self.plain == other.plain and self.style == other.style

    __hash__ = None  # type: ignore[assignment]


def _num(value: float | None) -> tuple[int, float]:
    return (0, value) if value is not None else (1, 0.0)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    cell: Callable[[ProcessRow, float, Callable[[str], str]], Cell]
    width: int | None  # fixed, so columns never jump as figures change; None: fit content


def short_name(name: str, width: int = NAME_WIDTH) -> str:
    """Cut a long name in the middle, keeping its end: "ForkServerProcess-12" ->
    "ForkServerPr…-12" (the number is what tells processes apart)."""
    if len(name) <= width:
        return name
    tail = name[name.rfind("-") :] if "-" in name[-8:] else name[-4:]
    return name[: width - len(tail) - 1] + "…" + tail


def _name(row: ProcessRow, now: float, theme: Callable[[str], str]) -> Cell:
    return Cell(short_name(row.name), row.name.lower())


def _pid(row: ProcessRow, now: float, theme: Callable[[str], str]) -> Cell:
    return Cell(str(row.pid or ""), _num(row.pid), justify="right")


def _state(row: ProcessRow, now: float, theme: Callable[[str], str]) -> Cell:
    return Cell(str(row.state), str(row.state), style=theme(STATE_STYLES[row.state]))


def _exit(row: ProcessRow, now: float, theme: Callable[[str], str]) -> Cell:
    style = theme(STATE_STYLES[row.state]) if row.state.is_over and row.exitcode else ""
    return Cell(describe_exit(row.exitcode), _num(row.exitcode), style=style)


def _live_sample(row: ProcessRow) -> Any:
    return row.sample if row.state.is_live else None


def _cpu_percent(row: ProcessRow, now: float, theme: Callable[[str], str]) -> Cell:
    sample = _live_sample(row)
    value = sample.cpu_percent if sample else None
    return Cell(f"{value:.0f}" if value is not None else "", _num(value), justify="right")


def _rss(row: ProcessRow, now: float, theme: Callable[[str], str]) -> Cell:
    sample = _live_sample(row)
    value = sample.rss if sample else None
    return Cell(fmt.size(value), _num(value), justify="right")


def _core(row: ProcessRow, now: float, theme: Callable[[str], str]) -> Cell:
    sample = _live_sample(row)
    value = sample.core if sample else None
    return Cell("" if value is None else str(value), _num(value), justify="right")


def _kind(row: ProcessRow, now: float, theme: Callable[[str], str]) -> Cell:
    kind = classify(row, now)
    return Cell(kind or "", kind or "~")


def _runtime(row: ProcessRow, now: float, theme: Callable[[str], str]) -> Cell:
    wall = row.wall_time(now)
    return Cell(fmt.seconds(wall), _num(wall), justify="right")


def _cpu_time(row: ProcessRow, now: float, theme: Callable[[str], str]) -> Cell:
    value = row.sample.cpu_time if row.sample else None
    return Cell(fmt.seconds(value), _num(value), justify="right")


def _threads(row: ProcessRow, now: float, theme: Callable[[str], str]) -> Cell:
    sample = _live_sample(row)
    value = sample.threads if sample else None
    return Cell("" if value is None else str(value), _num(value), justify="right")


def _method(row: ProcessRow, now: float, theme: Callable[[str], str]) -> Cell:
    return Cell(row.spec.method, row.spec.method)


def _pinned(row: ProcessRow, now: float, theme: Callable[[str], str]) -> Cell:
    text = format_cpu_list(row.spec.affinity)
    return Cell(text, text or "~")


def _target(row: ProcessRow, now: float, theme: Callable[[str], str]) -> Cell:
    label = row.spec.target.label
    if row.tag:
        label = f"{row.tag} {label}"
    return Cell(label, label)


# Most telling first: at 80 columns the first eight fit, the rest scroll into view.
COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", _name, NAME_WIDTH),
    Column("pid", "PID", _pid, 7),
    Column("state", "State", _state, 10),
    Column("exit", "Exit", _exit, 11),
    Column("cpu", "CPU%", _cpu_percent, 4),
    Column("rss", "RSS", _rss, 6),
    Column("core", "Core", _core, 4),
    Column("kind", "Kind", _kind, 4),
    Column("runtime", "Runtime", _runtime, 8),
    Column("cputime", "CPU time", _cpu_time, 8),
    Column("threads", "Thr", _threads, 3),
    Column("method", "Method", _method, 10),
    Column("pinned", "Pinned", _pinned, 6),
    Column("target", "Target", _target, None),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)


class ProcessTable(DataTable[Text]):
    """Rows keyed by record id; `show(rows, now)` brings the table up to date."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sort_next", "Sort", tooltip="Sort by the next column"),
        Binding("S", "sort_reverse", "Reverse", show=False, tooltip="Reverse the sort order"),
    ]

    class Selected(Message):
        """The cursor moved to another process (or to none)."""

        def __init__(self, rec_id: int | None) -> None:
            super().__init__()
            self.rec_id = rec_id

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._shown: dict[int, tuple[Cell, ...]] = {}
        self.sort_column = "name"
        self.sort_reverse = False
        self.filter_text = ""
        self._selected: int | None = None

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.add_column(column.label, key=column.key, width=column.width)
        self._label_sort_column()

    @property
    def selected_id(self) -> int | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return int(row_key.value) if row_key.value is not None else None

    def show(self, rows: Iterable[ProcessRow], now: float) -> None:
        """Add, update and remove rows so the table shows `rows` (after the filter)."""
        selected = self.selected_id
        wanted = {r.id: r for r in rows if self._matches(r)}
        changed_order = False
        with self.app.batch_update():
            for rec_id in list(self._shown):
                if rec_id not in wanted:
                    self.remove_row(str(rec_id))
                    del self._shown[rec_id]
            for rec_id, row in wanted.items():
                cells = tuple(c.cell(row, now, self._resolve) for c in COLUMNS)
                old = self._shown.get(rec_id)
                if old is None:
                    self.add_row(*cells, key=str(rec_id))
                    changed_order = True
                else:
                    for i, (key, new_cell) in enumerate(zip(COLUMN_KEYS, cells, strict=True)):
                        if i >= len(old) or new_cell != old[i]:
                            self.update_cell(str(rec_id), key, new_cell)
                            changed_order |= key == self.sort_column
                self._shown[rec_id] = cells
            if changed_order:
                self._sort()
            self._restore_cursor(selected)
        self._announce_selection()

    def _resolve(self, style: str) -> str:
        return resolve(self.app, style)

    def restyle(self) -> None:
        """After a theme change: the next show() rewrites every cell."""
        self._shown = {rec_id: () for rec_id in self._shown}

    def _matches(self, row: ProcessRow) -> bool:
        if not self.filter_text:
            return True
        needle = self.filter_text.lower()
        hay = f"{row.name} {row.pid or ''} {row.state} {row.spec.target.label} {row.spec.method} {row.tag or ''}"
        return needle in hay.lower()

    def _sort(self) -> None:
        self.sort(self.sort_column, reverse=self.sort_reverse)

    def _restore_cursor(self, rec_id: int | None) -> None:
        if rec_id is None or str(rec_id) not in self.rows:
            return
        index = self.get_row_index(str(rec_id))
        if index != self.cursor_row:
            self.move_cursor(row=index, animate=False)

    def select(self, rec_id: int) -> None:
        if str(rec_id) in self.rows:
            self.move_cursor(row=self.get_row_index(str(rec_id)), animate=False)
            self._announce_selection()

    def _announce_selection(self) -> None:
        selected = self.selected_id
        if selected != self._selected:
            self._selected = selected
            self.post_message(self.Selected(selected))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._announce_selection()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = str(event.column_key.value)
        if key == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = key, False
        self._apply_sort()

    def action_sort_next(self) -> None:
        index = (COLUMN_KEYS.index(self.sort_column) + 1) % len(COLUMN_KEYS)
        self.sort_column, self.sort_reverse = COLUMN_KEYS[index], False
        self._apply_sort()

    def action_sort_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._apply_sort()

    def set_filter(self, text: str, rows: Iterable[ProcessRow], now: float) -> None:
        self.filter_text = text.strip()
        self.show(rows, now)

    def _apply_sort(self) -> None:
        selected = self.selected_id
        self._label_sort_column()
        self._sort()
        self._restore_cursor(selected)

    def _label_sort_column(self) -> None:
        arrow = "▼" if self.sort_reverse else "▲"
        for column in COLUMNS:
            label = f"{column.label} {arrow}" if column.key == self.sort_column else column.label
            self.columns[self._column_key(column.key)].label = Text(label)
        self.refresh()

    def _column_key(self, key: str) -> Any:
        return next(k for k in self.columns if k.value == key)
