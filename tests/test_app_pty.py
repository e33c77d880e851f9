"""proclab in a real pseudo-terminal: children never write to it, quitting ends them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import reap_orphans
from pty_session import PtySession, gone

MARKER = "XYZZY-MARKER"

LESSON = f"""
import os, sys, time

def shout(count):
    for i in range(count):
        print("{MARKER}", i, flush=True)
        os.write(1, b"{MARKER}-raw\\n")
        os.write(2, b"{MARKER}-err\\n")
        try:
            with open("/dev/tty", "w") as tty:  # no controlling terminal: this must fail
                tty.write("{MARKER}-tty\\n")
        except OSError:
            pass
        time.sleep(0.2)
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_children_output_never_reaches_the_terminal(tmp_path: Path, method: str) -> None:
    (tmp_path / "lesson.py").write_text(LESSON)
    session = PtySession(
        ["lesson.py:shout", "--args", "(200,)", "--count", "2", "--method", method],
        cwd=str(tmp_path),
    )
    try:
        session.wait_for(b"2 live")
        family = session.descendants()
        session.send("2")  # the output log
        session.wait_for(MARKER.encode() + b"-err")  # rendered inside the log pane
        session.send("q")
        session.wait_for(b"still running")
        session.send("y")
        assert session.wait() == 0
        raw = session.output
        # A line written to the terminal ends with a newline (\r\n once the terminal has
        # translated it); proclab's own drawing of the log places text with cursor moves.
        for written in (rb" \d+", b"-raw", b"-err", b"-tty"):
            line = re.escape(MARKER.encode()) + written + rb"\r?\n"
            assert not re.search(line, raw), f"{line!r} reached the terminal"
        assert b"-tty" not in raw, "a child opened the terminal"
        assert gone(family) == []
    finally:
        session.close()
        reap_orphans()


def test_terminal_is_restored_after_quit(tmp_path: Path) -> None:
    session = PtySession([])
    try:
        session.wait_for(b"0 live")
        session.send("q")
        assert session.wait() == 0
        raw = session.output
        # Textual left the alternate screen and showed the cursor again.
        assert raw.rfind(b"\x1b[?1049l") > raw.rfind(b"\x1b[?1049h") >= 0
        assert raw.rfind(b"\x1b[?25h") > raw.rfind(b"\x1b[?25l")
    finally:
        session.close()
