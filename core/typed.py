"""Numbers as a person types them at a terminal: ASCII digits, no underscores.

int() and float() also take "１２" (fullwidth), "١٢" (Arabic-Indic) and "1_000", which
proclab's other fields refused: one option took what the next did not.
"""

from __future__ import annotations

from typing import TypeVar

N = TypeVar("N", int, float)


def ascii_number(text: str, kind: type[N]) -> N:
    """`text` as `kind`; ValueError for anything but ASCII (and no underscores)."""
    if not text.isascii() or "_" in text:
        raise ValueError(f"not an ASCII number: {text!r}")
    return kind(text)
