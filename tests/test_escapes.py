"""A child, a client or a recording cannot take over the terminal: escape sequences in
what they send (set the title, clear the screen, move the cursor, C1 controls) are shown
escaped, as text (`\\x1b]0;…`), in the app's panes, its details screen, a replay, and the
lines `proclab run` and `proclab serve` print. In a real pseudo-terminal for the app: the
bytes proclab writes are compared with what it writes for a child that prints plain text."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import reap_orphans
from pty_session import PROCLAB, PtySession
from support import free_port, kill_if_running, wait_until

# Set the window title, clear the screen, move the cursor; a C1 CSI (U+009B) clearing the
# screen; a DCS request the terminal would answer on stdin; a bell.
HOSTILE = "\x1b]0;PWNED-TITLE\x07\x1b[2J\x1b[5;5HPWNED-AFTER \x9b2J \x1bP+q544e\x1b\\ \x07"
SHOWN = b"\\x1b]0;PWNED-TITLE\\x07\\x1b[2J\\x1b[5;5HPWNED-AFTER"
RAW = ("\x1b]0;PWNED", "\x1b[2J", "\x1b[5;5HPWNED", "\x9b", "\x1bP+q")

CHILDREN = f"""
import sys, time

HOSTILE = {HOSTILE!r}

def hostile(seconds=0.0):
    for i in range(3):
        print(HOSTILE, i, flush=True)
        print(HOSTILE, i, file=sys.stderr, flush=True)
    time.sleep(seconds)
    raise RuntimeError(HOSTILE)

def calm(seconds=0.0):
    for i in range(3):
        print("plain text", i, flush=True)
        print("plain text", i, file=sys.stderr, flush=True)
    time.sleep(seconds)
    raise RuntimeError("plain text")
"""


@pytest.fixture
def lesson(tmp_path: Path) -> Path:
    (tmp_path / "children.py").write_text(CHILDREN)
    return tmp_path


def osc_kinds(written: bytes) -> set[bytes]:
    """The operating-system commands (title, colours, pointer…) among the bytes, by number."""
    return set(re.findall(rb"\x1b\](\d+);", written))


def assert_nothing_acted(written: bytes, baseline: bytes) -> None:
    """Nothing the child sent reached the terminal raw; the app's own sequences are those it
    writes anyway (the baseline: the same session with a child that prints plain text)."""
    assert osc_kinds(written) <= osc_kinds(baseline), "an OSC (e.g. the title) reached the pty"
    if b"\x1b[2J" not in baseline:
        assert b"\x1b[2J" not in written, "a clear-screen reached the pty"
    assert b"\x1b[5;5HPWNED" not in written
    assert b"\xc2\x9b" not in written, "a C1 control reached the pty"
    assert b"\x1bP+q" not in written, "a DCS request reached the pty"


def quit_app(session: PtySession) -> int:
    """q until proclab exits: an Escape just before it may be read with it as alt+q."""
    for _ in range(5):
        session.send("q", pause=0)
        try:
            return session.wait(10)
        except AssertionError:
            continue
    raise AssertionError("proclab did not quit")


def app_session(lesson: Path, function: str) -> bytes:
    """The app with one child: its output pane, then its details (output, traceback)."""
    session = PtySession([f"children.py:{function}", "--args", "(0.5,)"], (160, 48), str(lesson))
    try:
        session.wait_for(b"1 ended")
        session.send("\r")  # the details of the selected (only) child
        session.wait_for(b"Last ")
        session.send("\x1b", pause=1)
        assert quit_app(session) == 0
        return session.output
    finally:
        session.close()
        reap_orphans()


def test_the_app_shows_a_childs_escape_sequences_as_text(lesson: Path) -> None:
    baseline = app_session(lesson, "calm")
    written = app_session(lesson, "hostile")
    assert_nothing_acted(written, baseline)
    assert SHOWN in written, "the child's line is not on screen, escaped"


def test_a_replay_shows_recorded_escape_sequences_as_text(lesson: Path) -> None:
    def replay(function: str) -> bytes:
        recording = lesson / f"{function}.jsonl"
        subprocess.run(
            [PROCLAB, "run", f"children.py:{function}", "--record", str(recording)],
            cwd=lesson,
            capture_output=True,
            timeout=60,
            check=False,
        )
        session = PtySession(["replay", str(recording), "--at", "60"], (160, 48))
        try:
            session.wait_for(b"1 ended")
            session.send("\r")
            session.wait_for(b"Last ")
            session.send("\x1b", pause=1)
            quit_app(session)
            return session.output
        finally:
            session.close()

    baseline = replay("calm")
    written = replay("hostile")
    assert_nothing_acted(written, baseline)
    assert SHOWN in written


def test_names_that_are_not_utf8_are_shown_escaped_and_the_app_still_quits(lesson: Path) -> None:
    """A folder and a file whose names hold bytes that are not UTF-8 (Python decodes each
    to a lone surrogate, which no terminal can be sent): the app froze on the first one it
    drew, deaf to q and to SIGTERM."""
    folder = lesson / os.fsdecode(b"\xfedir")
    folder.mkdir()
    (folder / os.fsdecode(b"\xffx.py")).write_text(CHILDREN)
    target = os.fsdecode(b"\xffx.py") + ":calm"
    session = PtySession([target, "--args", "(0.5,)"], (160, 48), str(folder))
    try:
        session.wait_for(b"1 ended")
        session.send("\r")  # the details: the target's file and the folder it ran in
        session.wait_for(b"\\udcfedir")
        # The file's name, escaped: the line's end (":calm") is cut at 160 columns where
        # the temporary folder's path is long (pytest-xdist's), as it was in 1 full run
        assert b"\\udcffx.py" in session.output
        session.send("\x1b", pause=1)
        assert quit_app(session) == 0
    finally:
        session.close()
        reap_orphans()


def test_run_prints_escape_sequences_as_text(lesson: Path) -> None:
    out = subprocess.run(
        [PROCLAB, "run", "children.py:hostile"],
        cwd=lesson,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 1
    for stream in (out.stdout, out.stderr):
        assert not any(raw in stream for raw in RAW), stream
    assert SHOWN.decode() in out.stdout  # the streamed lines
    assert SHOWN.decode() in out.stderr
    # the summary's reason, from the child's exception
    assert "RuntimeError: " + SHOWN.decode() in out.stdout


@pytest.mark.parametrize("as_json", [False, True])
def test_serve_logs_a_clients_escape_sequences_as_text(as_json: bool) -> None:
    port = free_port()
    command = [PROCLAB, "serve", "--port", str(port), "--mode", "thread"]
    server = subprocess.Popen(
        command + (["--json"] if as_json else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        connected = None

        def connect() -> bool:
            nonlocal connected
            try:
                connected = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                return False
            return True

        assert wait_until(connect, 20), "serve never listened"
        assert connected is not None
        with connected:
            connected.sendall(HOSTILE.encode())
            time.sleep(0.5)
        time.sleep(0.5)
        server.terminate()
        out, _err = server.communicate(timeout=20)
    finally:
        kill_if_running(server)
    assert not any(raw in out for raw in RAW), out
    assert "PWNED" in out  # the preview of the data, escaped
    if as_json:
        previews = [json.loads(line).get("preview", "") for line in out.splitlines()]
        assert any(p.startswith("\\x1b]0;PWNED") for p in previews), previews
