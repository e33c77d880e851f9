"""proclab in a real pseudo-terminal: children never write to it, quitting ends them."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import termios
import time
from pathlib import Path

import psutil
import pytest
from conftest import reap_orphans
from pty_session import PROCLAB, PtySession, gone, quit_once
from support import wait_until

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


TABS = """
import time

def tabs():
    while True:
        print("0\\tcol\\t\\tx", flush=True)
        time.sleep(0.2)
"""


def test_a_child_s_tabs_are_spaced_out_not_sent_to_the_terminal(tmp_path: Path) -> None:
    """A tab sent as it is moves the cursor over cells other panes drew: the process
    table's headings showed through a child's tabbed line, its border gone."""
    (tmp_path / "tabs.py").write_text(TABS)
    session = PtySession(["tabs.py:tabs", "--method", "fork"], cwd=str(tmp_path))
    try:
        session.wait_for(b"1 live")
        session.send("2")  # the output log
        session.wait_for(b"0       col             x")  # each tab to its stop of 8
        assert b"\t" not in session.output
        session.send("q")
        session.wait_for(b"still running")
        session.send("y")
        assert session.wait() == 0
    finally:
        session.close()
        reap_orphans()


def test_terminal_is_restored_after_quit(tmp_path: Path) -> None:
    status, raw = quit_once([], b"0 live")
    assert status == 0
    # Textual left the alternate screen and showed the cursor again.
    assert raw.rfind(b"\x1b[?1049l") > raw.rfind(b"\x1b[?1049h") >= 0
    assert raw.rfind(b"\x1b[?25h") > raw.rfind(b"\x1b[?25l")


def _sleeps_per_thread(pid: int) -> dict[str, int]:
    """Each thread's voluntary context switches so far: one for each time it slept."""
    counts = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
            counts[tid] = int(status.split("\nvoluntary_ctxt_switches:")[1].split()[0])
    return counts


def test_an_idle_app_does_not_wake_to_poll_and_a_lone_escape_still_closes(
    tmp_path: Path,
) -> None:
    session = PtySession([])
    try:
        session.wait_for(b"0 live")
        time.sleep(1.0)  # past start-up's drawing
        before, seconds = _sleeps_per_thread(session.pid), 3.0
        time.sleep(seconds)
        after = _sleeps_per_thread(session.pid)
        woke = {tid: after[tid] - before[tid] for tid in after.keys() & before.keys()}
        # Textual's own input thread woke 10 times a second to poll (40 in 4 s); the
        # app's loop wakes about 3 times a second for its 1 s tick and drawing.
        assert max(woke.values()) <= 6 * seconds, woke
        # The key reader sleeps until a key, yet an Esc alone is told from the start of
        # a sequence once its moment is past.
        session.send("?")
        session.wait_for(b"escape closes")
        session.send("\x1b", pause=0.5)
        session.send("n")
        session.wait_for(b"Start processes: Process(", timeout=10)  # the form, not the help
    finally:
        session.close()


EVERY_ROW = set(range(1, 25))  # of an 80x24 screen


def _rows_drawn(raw: bytes) -> set[int]:
    """The screen rows a stretch of output moved the cursor to (ESC [ row ; col H)."""
    return {int(m.group(1)) for m in re.finditer(rb"\x1b\[(\d+);\d+H", raw)}


def test_a_sigcont_without_a_stop_changes_nothing_and_a_suspend_still_resumes(
    tmp_path: Path,
) -> None:
    """Textual's driver started another key reader and writer on every SIGCONT; a hung-up
    terminal sends one unasked. Two readers of one terminal, and threads that kept the
    app from ending. A stop (SIGSTOP from outside, or SIGTSTP as Ctrl+Z in a shell) is
    undone by SIGCONT, and the whole screen is drawn again: the shell may have written
    over it meanwhile."""
    session = PtySession([])
    try:
        session.wait_for(b"0 live")
        time.sleep(0.5)
        threads_before = len(psutil.Process(session.pid).threads())
        for _ in range(2):
            session.signal(signal.SIGCONT)
            time.sleep(0.3)
        assert len(psutil.Process(session.pid).threads()) == threads_before
        for stop in (signal.SIGSTOP, signal.SIGTSTP):
            session.signal(stop)
            assert wait_until(lambda: psutil.Process(session.pid).status() == "stopped", 10)
            mark = len(session.output)
            session.signal(signal.SIGCONT)
            # Every row, not only those a tick changes (the status line, the table's).
            assert wait_until(lambda m=mark: _rows_drawn(session.output[m:]) >= EVERY_ROW, 10)
            assert len(psutil.Process(session.pid).threads()) == threads_before
        session.send("?")
        session.wait_for(b"escape closes")
        session.send("\x1b", pause=0.5)
        session.send("q")
        assert session.wait(timeout=15) == 0
    finally:
        session.close()


def test_a_sigcont_as_the_app_leaves_does_not_take_the_terminal_back() -> None:
    """A SIGCONT just after quitting (a hang-up racing the exit) once started application
    mode again: the process never ended and left the terminal raw, on the other screen."""
    session = PtySession([])
    try:
        session.wait_for(b"0 live")
        time.sleep(0.5)
        session.send("q", pause=0)
        assert wait_until(lambda: b"\x1b[?1049l" in session.output or not session.running(), 10)
        with contextlib.suppress(ProcessLookupError):
            session.signal(signal.SIGCONT)
        assert session.wait(timeout=15) == 0
        raw = session.output
        assert raw.rfind(b"\x1b[?1049l") > raw.rfind(b"\x1b[?1049h")  # the normal screen
        assert termios.tcgetattr(session.fd)[3] & termios.ECHO  # cooked again
    finally:
        session.close()


def test_a_character_split_between_two_reads_loses_no_key_after_it() -> None:
    """A read can end inside a UTF-8 character (a paste forwarded in pieces by ssh or
    tmux); it decodes to nothing until the rest comes, and is not the end of the input."""
    session = PtySession([])
    try:
        session.wait_for(b"0 live")
        session.send(b"\xc3", pause=0.5)  # the first byte of an accented letter, alone
        session.send(b"\xa9", pause=0.5)
        session.send("?")
        session.wait_for(b"escape closes", timeout=10)
    finally:
        session.close()


def _tell(path: Path, text: str) -> None:
    """Write a file the test reads as soon as it exists: whole, or not there at all (a
    file being written is there, empty, before its text: CI read '' once)."""
    part = path.with_name(path.name + ".part")
    part.write_text(text)
    os.replace(part, path)


def test_started_in_the_background_then_brought_to_the_foreground_it_draws_and_reads(
    tmp_path: Path,
) -> None:
    """`proclab &`, then `fg`: Textual's start stops the app (SIGTTOU) inside itself and
    starts again at the SIGCONT, which the key reader must not take for a stray one."""
    pid, fd = pty.fork()
    if pid == 0:  # the session leader, as a shell with job control
        try:
            app = os.fork()
            if app == 0:
                os.setpgid(0, 0)
                os.execv(PROCLAB, [PROCLAB])
            _tell(tmp_path / "app", str(app))
            # Both sides set the group, as a shell does; the child may already have
            # exec'd, and then this one fails with EACCES, but the group is set.
            with contextlib.suppress(PermissionError):
                os.setpgid(app, app)
            _, status = os.waitpid(app, os.WUNTRACED)
            _tell(tmp_path / "stopped", str(os.WIFSTOPPED(status)))
            signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            os.tcsetpgrp(0, app)  # fg
            os.killpg(app, signal.SIGCONT)
            os.waitpid(app, 0)
        finally:
            os._exit(0)
    screen = bytearray()

    def read_until(text: bytes, seconds: float = 45) -> bool:
        end = time.monotonic() + seconds
        while text not in screen and time.monotonic() < end:
            if select.select([fd], [], [], 0.1)[0]:
                with contextlib.suppress(OSError):
                    screen.extend(os.read(fd, 65536))
        return text in screen

    try:
        assert wait_until(lambda: (tmp_path / "stopped").exists(), 30)
        assert (tmp_path / "stopped").read_text() == "True"  # stopped in the background
        assert read_until(b"0 live"), bytes(screen[-500:])  # drawn in the foreground
        os.write(fd, b"?")
        assert read_until(b"escape closes"), bytes(screen[-500:])  # and reading keys
    finally:
        with contextlib.suppress(OSError, ValueError):
            app = int((tmp_path / "app").read_text())
            os.killpg(app, signal.SIGKILL)
        with contextlib.suppress(OSError, ValueError):  # not yet in its own group
            os.kill(int((tmp_path / "app").read_text()), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
        reap_orphans()


@pytest.mark.parametrize("redirect", [{2: os.devnull}, {1: os.devnull, 2: os.devnull}])
def test_the_app_draws_on_the_terminal_when_stderr_is_sent_elsewhere(
    redirect: dict[int, str],
) -> None:
    """`proclab 2>/dev/null` ran the app, keys, children and all, and drew nothing: Textual
    draws on stderr. It draws on the terminal that stdout or stdin is."""
    session = PtySession([], size=(120, 40), redirect=redirect, env={"COLUMNS": "", "LINES": ""})
    try:
        session.wait_for(b"0 live")
        # At the terminal's size: with stdout sent elsewhere too, Textual's own reading
        # of the size (stdout's) gave 80x24 on a 120x40 terminal (a reviewer's).
        session.wait_for(b"\x1b[40;")
        session.send("q")
        assert session.wait() == 0
    finally:
        session.close()


@pytest.mark.parametrize(("args", "ready"), [([], b"0 live"), (["demo", "--speed", "2"], b"1/")])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_the_app_ended_by_a_signal_exits_128_and_its_number(
    args: list[str], ready: bytes, sig: int
) -> None:
    """SIGTERM or SIGHUP ended the app, the demo and a replay with status 0, where `run`,
    `serve` and `watch --headless` say 128+N: a script could not tell it was interrupted."""
    session = PtySession(args)
    try:
        session.wait_for(ready)
        session.signal(sig)
        assert session.wait() == 128 + sig
    finally:
        session.close()
