"""Numbers and children's lines as people read them; shared by the CLI and the app (no UI
library here)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from proclab.core.output import escape_controls, on_screen

if TYPE_CHECKING:
    from proclab.core.model import OutputLine, ProcessRow, ProcSample


def seconds(value: float | None) -> str:
    """0.004 -> '4 ms', 1.234 -> '1.23 s', 75 -> '1m15s', 4000 -> '1h06m'."""
    if value is None:
        return ""
    # A figure that rounds up to the next unit is said in it: a 0.9996 s tick was
    # "1000 ms" beside its neighbours' "1.00 s". Compared, not formatted twice: drawn for
    # every row each tick (363 ns a call against 573, timeit).
    millis = value * 1000
    if millis < 999.5:
        return f"{millis:.0f} ms"
    if value < 59.995:
        return f"{value:.2f} s"
    minutes, secs = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def cpu_time(row: ProcessRow) -> str:
    """A row's CPU time: "?" if never measured; "≥" before it when it is a lower bound
    (ProcessRow.cpu_at_least)."""
    if row.sample is None:
        return "?"
    text = seconds(row.sample.cpu_time)
    return f"≥{text}" if row.cpu_at_least else text


# Below a clock tick (/proc's figures for a child killed unreported), or a `subprocess.run`
# of `ls`: not worth a word.
THEIRS_WORTH_SAYING_S = 0.01


def theirs_cpu(sample: ProcSample) -> str:
    """The CPU of the processes a child started and reaped (ProcSample.reaped_cpu), which
    is not in its own figures; '' when not worth a word."""
    return seconds(sample.reaped_cpu) if sample.reaped_cpu >= THEIRS_WORTH_SAYING_S else ""


def wall_time(row: ProcessRow, now: float) -> str:
    """A row's wall time; "≤" before it when the process had ended when proclab first
    saw it (a zombie): it ended at some moment before, not known."""
    text = seconds(row.wall_time(now))
    return f"≤{text}" if text and row.end_unseen else text


def clock(wall: float | None) -> str:
    """A wall-clock time to the millisecond, '08:00:01.250'; '—' for none."""
    if wall is None:
        return "—"
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall % 1 * 1000):03d}"


def size(value: int | None) -> str:
    """Bytes in binary units: 1536 -> '1.5K', 30_000_000 -> '28.6M'."""
    if value is None:
        return ""
    amount = float(value)
    for unit in ("B", "K", "M", "G", "T"):
        # Compared as it will be shown: 1,048,535 bytes read "1024.0K", not "1.0M".
        if (amount < 1023.95 if unit != "B" else amount < 1024) or unit == "T":
            return f"{amount:.0f}{unit}" if unit == "B" else f"{amount:.1f}{unit}"
        amount /= 1024
    return f"{amount:.1f}T"


def percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}%"


def count(value: int) -> str:
    """A count in at most four characters (any count below 10^21, so any 64-bit one):
    950 -> '950', 9_949 -> '9.9k', 9_950 -> '10k', 12_345 -> '12k', 3_400_000 -> '3.4M'."""
    if value < 1000:
        return str(value)
    for power, unit in enumerate("kMGTPE", start=1):
        scale = 1000**power
        if value < scale * 995 // 100:  # one decimal fits: 9.9k (9.95k would show as 10.0k)
            return f"{value / scale:.1f}{unit}"
        if value < scale * 1000:
            return f"{max(10, value // scale)}{unit}"  # from 9.95k on: 10k
    return f"{value // 1000**6}E"


# Before a piece of a child's line too long to keep whole (output.MAX_LINE_BYTES): it goes
# on from the piece before, and is no line of its own.
CONTINUES = "↪ "
# After a line's name and pid: printed once that process had ended, by one it started
# (OutputLine.after_end).
AFTER_END = "↳ "
# A process first read in /proc as a zombie: its start, lines and words may have come
# before (by its hook and its pipes), its end before that reading, when not known.
ENDED_UNSEEN = "it had ended when proclab first read it in /proc"


def line_text(line: OutputLine) -> str:
    """A child's line as shown: escaped where it would act on a terminal, and marked where
    it goes on from the piece before."""
    text = on_screen(line.text)
    return CONTINUES + text if line.continues else text


def printed_line(line: OutputLine) -> str:
    """A child's line as the headless commands print it: its name and pid, `|` for stdout
    or `!` for stderr, then its text."""
    mark = "|" if line.stream == "stdout" else "!"
    more = CONTINUES if line.continues else ""
    after = AFTER_END if line.after_end else ""
    # One escape of the whole: a flood's every line comes through here.
    return escape_controls(f"{line.name} {line.pid} {after}{mark} {more}{line.text}")
