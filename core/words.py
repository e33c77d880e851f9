"""Words proclab writes about numbers: the one plural rule every message uses."""

from __future__ import annotations

_IRREGULAR = {"child": "children"}


def plural(n: int, noun: str) -> str:
    """ "1 child", "2 children", "1 line", "0 lines", "2 processes", "1,500 jobs",
    "3 live children": in a phrase, its last word takes the plural."""
    if n == 1:
        return f"1 {noun}"
    head, _, last = noun.rpartition(" ")
    many = _IRREGULAR.get(last)
    if many is None:
        if last.endswith(("s", "x", "ch", "sh")):
            many = last + "es"
        elif last.endswith("y") and last[-2:-1] not in "aeiou":
            many = last[:-1] + "ies"
        else:
            many = last + "s"
    return f"{n:,} {head + ' ' if head else ''}{many}"
