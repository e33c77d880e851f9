"""Text laid out for a terminal, where a character may take two columns or none: what the
headless commands' tables and the schedule's Gantt chart are aligned by."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def cells(text: str) -> int:
    """Columns `text` takes on a terminal: a wide character (CJK, most emoji) two, a
    combining mark none (str.ljust counted each as one, and a CJK name pushed every
    column after it out of line). Not rich's cell_len: the headless commands import no
    UI library."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def cut(text: str, width: int) -> str:
    """`text` in at most `width` columns: past them, cut and ended with "…"."""
    if cells(text) <= width:
        return text
    used = 0
    for end, char in enumerate(text):
        used += cells(char)
        if used > width - 1:
            return text[:end] + "…"
    return text  # not reached: the text is wider than width


def padded(cell: str, width: int, *, left: bool) -> str:
    """`cell` padded to `width` columns, on its right (left-aligned) or its left."""
    pad = " " * (width - cells(cell))
    return cell + pad if left else pad + cell


def centred(cell: str, width: int) -> str:
    """`cell` in the middle of `width` columns (str.center's split of the spaces)."""
    spare = max(0, width - cells(cell))
    before = spare // 2 + (spare & width & 1)
    return " " * before + cell + " " * (spare - before)


def columns(table: Sequence[Sequence[str]], left: int) -> list[str]:
    """A text table's lines: each column as wide as its widest cell on a terminal, the
    first `left` columns aligned left and the rest (figures) right, two spaces between."""
    widths = [max(cells(row[i]) for row in table if i < len(row)) for i in range(len(table[0]))]
    return [
        "  ".join(padded(cell, widths[i], left=i < left) for i, cell in enumerate(row)).rstrip()
        for row in table
    ]
