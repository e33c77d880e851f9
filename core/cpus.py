"""CPU lists as people write them (`0`, `0,2`, `1-3`), checked against the CPUs we may use."""

from __future__ import annotations

import os

from proclab.core.errors import InputError, clipped

MAX_CPU_DIGITS = 6


def usable_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on (a container or taskset may allow fewer than exist)."""
    return tuple(sorted(os.sched_getaffinity(0)))


def parse_cpu_list(text: str, field: str = "affinity") -> tuple[int, ...] | None:
    """`""` means no pinning (None); otherwise a sorted tuple of distinct CPU numbers."""
    text = text.strip()
    if not text:
        return None
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        if not _number(lo) or (dash and not _number(hi)):
            raise InputError(field, f"{clipped(part)!r} is not a CPU number or range like 0-3")
        first, last = int(lo), int(hi) if dash else int(lo)
        if last < first:
            raise InputError(field, f"range {part!r} runs backwards")
        if last - first > 4096:
            raise InputError(field, f"range {part!r} is too large")
        cpus.update(range(first, last + 1))
    return check_cpus(cpus, field)


def _number(text: str) -> bool:
    """A CPU number as written: ASCII digits ("٣" read as CPU 3, and "1٠" as CPU 10), few
    enough for int() (past Python's 4,300 digits it raised) and for any machine."""
    return text.isascii() and text.isdecimal() and len(text) <= MAX_CPU_DIGITS


def check_cpus(cpus: set[int] | tuple[int, ...], field: str = "affinity") -> tuple[int, ...]:
    allowed = usable_cpus()
    missing = sorted(set(cpus) - set(allowed))
    if missing:
        raise InputError(
            field, f"CPU {missing[0]} is not available here (usable: {format_cpu_list(allowed)})"
        )
    if not cpus:
        raise InputError(field, "names no CPU")
    return tuple(sorted(cpus))


def format_cpu_list(cpus: tuple[int, ...] | None) -> str:
    """The shortest spelling: (0, 1, 2, 5) -> '0-2,5'."""
    if not cpus:
        return ""
    parts: list[str] = []
    start = prev = cpus[0]
    for cpu in (*cpus[1:], None):
        if cpu is not None and cpu == prev + 1:
            prev = cpu
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if cpu is not None:
            start = prev = cpu
    return ",".join(parts)
