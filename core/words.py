"""Words proclab writes about numbers: the one plural rule every message uses."""

from __future__ import annotations

_IRREGULAR = {"child": "children"}


def plural(n: int, noun: str) -> str:
    """ "1 child", "2 children", "1 line", "0 lines", "2 processes", "1,500 jobs"."""
    if n == 1:
        return f"1 {noun}"
    many = _IRREGULAR.get(noun)
    if many is None:
        if noun.endswith(("s", "x", "ch", "sh")):
            many = noun + "es"
        elif noun.endswith("y") and noun[-2:-1] not in "aeiou":
            many = noun[:-1] + "ies"
        else:
            many = noun + "s"
    return f"{n:,} {many}"
