"""Over SSH: proclab in a real 80x24 pseudo-terminal with the terminals people log in
from (xterm-256color, xterm, the Linux console's 16 colors) and with NO_COLOR: it starts,
draws its panes, answers keys without a mouse, quits, and leaves no child behind."""

from __future__ import annotations

import re
import time

import pytest
from conftest import reap_orphans
from pty_session import PtySession, gone

TERMINALS = {
    "xterm-256color": {"TERM": "xterm-256color"},
    "xterm": {"TERM": "xterm"},
    "linux": {"TERM": "linux"},
    "no-color": {"TERM": "xterm-256color", "NO_COLOR": "1"},
}
TRUECOLOR = re.compile(rb"\x1b\[[0-9;]*[34]8;2;")
COLOR_256 = re.compile(rb"\x1b\[[0-9;]*[34]8;5;")
SGR = re.compile(rb"\x1b\[([0-9;]*)m")
GREYS_256 = {0, 7, 8, 15, 16, 231, *range(232, 256)}


def hues(raw: bytes) -> set[str]:
    """Every colour in the output's SGR codes that is not a grey."""
    found = set()
    for params in SGR.findall(raw):
        parts = [int(p) if p else 0 for p in params.split(b";")]
        i = 0
        while i < len(parts):
            code = parts[i]
            if code in (38, 48) and parts[i + 1 : i + 2] == [5]:
                if parts[i + 2] not in GREYS_256:
                    found.add(f"256:{parts[i + 2]}")
                i += 3
            elif code in (38, 48) and parts[i + 1 : i + 2] == [2]:
                r, g, b = parts[i + 2 : i + 5]
                if not r == g == b:
                    found.add(f"rgb:{r},{g},{b}")
                i += 5
            else:
                if 31 <= code <= 36 or 41 <= code <= 46 or 91 <= code <= 96 or 101 <= code <= 106:
                    found.add(f"ansi:{code}")
                i += 1
    return found


@pytest.mark.parametrize("terminal", TERMINALS)
def test_usable_at_80x24(terminal: str) -> None:
    session = PtySession(
        ["proclab.core.tasks:sleep", "--args", "(60,)", "--count", "2", "--method", "fork"],
        size=(80, 24),
        env=TERMINALS[terminal],
    )
    try:
        session.wait_for(b"2 live")
        session.wait_for(b"Processes")  # the tabs: one pane at a time at this size
        family = session.descendants()
        session.send("2")  # keyboard only: the output pane
        session.wait_for(b"Output")
        session.send("1")
        mark = len(session.output)
        session.send("t")  # terminate the selected child (it asks first): the count drops
        session.wait_for(b"with SIGTERM?")
        session.send("y")
        session.wait_for(b"1 live")
        assert b"SIGTERM" in session.output[mark:]
        session.send("q")
        session.wait_for(b"still running")
        session.send("y")
        assert session.wait() == 0
        raw = session.output
        if terminal == "no-color":
            # Textual's NO_COLOR: every colour becomes a grey (its Monochrome filter).
            assert hues(raw) == set()
        elif terminal in ("xterm", "linux"):
            # 16 colors (xterm: 8 + bright): no 256-color or truecolor codes.
            assert not TRUECOLOR.search(raw) and not COLOR_256.search(raw)
        assert gone(family) == []
    finally:
        session.close()
        reap_orphans()


def test_idle_redraws_write_only_what_changed() -> None:
    """Sleeping children change no cell on an 80x24 screen from one tick to the next (their
    runtimes are off to the right): a tick writes the status line and little else, not
    the whole table again (that was about 7.5 KB a tick with 20 children)."""
    session = PtySession(
        ["proclab.core.tasks:sleep", "--args", "(60,)", "--count", "20", "--refresh", "0.5"],
        size=(80, 24),
    )
    try:
        session.wait_for(b"20 live")
        time.sleep(3)  # settle: the first samples fill the CPU and RSS columns
        before, began = len(session.output), time.monotonic()
        time.sleep(4)
        written, ticks = len(session.output) - before, (time.monotonic() - began) / 0.5
        family = session.descendants()
        session.send("q")
        session.wait_for(b"still running")
        session.send("y")
        assert session.wait() == 0
        assert written / ticks < 1000, f"{written} bytes in {ticks:.0f} idle ticks"
        assert gone(family) == []
    finally:
        session.close()
        reap_orphans()
