"""The app without a terminal on stdin (`proclab < /dev/null`, `ssh host proclab`): one
line saying so, exit status 2, nothing started; never a process spinning on end of file.
Output still goes to a real pseudo-terminal, as when a person redirects stdin by mistake."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import pytest
from pty_session import PROCLAB

SCENE = Path(__file__).resolve().parents[1] / "screenshots" / "scene.jsonl"


def run_without_stdin(args: list[str], timeout: float = 30) -> tuple[int, str]:
    """proclab with /dev/null on stdin and a pty on stdout and stderr: its exit status and
    what it wrote to the terminal. A proclab that spins is killed at `timeout` and fails."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [PROCLAB, *args],
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
            start_new_session=True,
        )
        os.close(terminal)
        try:
            status = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"proclab {' '.join(args)} < /dev/null still ran after {timeout} s")
        written = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            written += chunk
    finally:
        os.close(controller)
    return status, written.decode(errors="replace")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], "proclab: the app needs a terminal, and stdin is not one"),
        (
            ["proclab.core.tasks:sleep", "--args", "(30,)"],
            "proclab: the app needs a terminal, and stdin is not one",
        ),
        (["replay", str(SCENE)], "proclab replay: the app needs a terminal"),
        (["demo", "--speed", "50"], "proclab demo: the app needs a terminal"),
    ],
)
def test_the_app_refuses_a_stdin_that_is_not_a_terminal(args: list[str], words: str) -> None:
    status, written = run_without_stdin(args)
    lines = [line for line in written.splitlines() if line.strip()]
    assert status == 2, written
    assert len(lines) == 1 and words in lines[0], written
    assert "\x1b[?1049h" not in written, "the app started drawing"


def test_bad_arguments_are_still_named_first() -> None:
    status, written = run_without_stdin(["proclab.core.tasks:sleep", "--args", "(x,)"])
    assert status == 2
    assert "args: x is a name, not a literal" in written
