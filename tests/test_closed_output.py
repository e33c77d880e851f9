"""Output that cannot be written: a reader that went away (`proclab run … | head -2`), a
full disk under --record or stdout. A closed stdout ends the command quietly, as it ends
Unix tools (exit status 141, 128 + SIGPIPE), ending its children as on SIGTERM; a
recording that cannot be written is one line, and the run goes on. Never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from pty_session import PROCLAB, gone, quit_once
from support import free_port, kill_if_running, listening, wait_until

T = "proclab.core.tasks"
CLOSED = 141  # 128 + SIGPIPE, what a shell shows for `yes | head -1`'s yes


def family_of(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


TICKER = "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.05)\n"


@pytest.mark.parametrize(
    "command",
    [
        ["run", f"{T}:tick", "--args", "(20,)", "--count", "2", "--method", "fork"],
        ["watch", "--headless", "--", sys.executable, "-c", TICKER],
    ],
    ids=["run", "watch"],
)
def test_a_command_into_head_ends_quietly_and_ends_its_children(command: list[str]) -> None:
    # `proclab run … | head -2`: children print forever; the reader takes two lines and
    # goes away. Ending the children is what was asked: not a word on stderr about it.
    proc = subprocess.Popen(
        [PROCLAB, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        assert sum(b"| tick" in line for line in lines) >= 2, lines
        family = family_of(proc.pid)
        assert family
        proc.stdout.close()  # head -2 exits
        status = proc.wait(30)
        err = proc.stderr.read().decode()
    finally:
        kill_if_running(proc)
    assert status == CLOSED, err
    assert err == ""
    assert gone(family) == [], "children outlived a run whose reader went away"


def test_a_recording_onto_a_full_disk_is_one_line_and_the_run_goes_on() -> None:
    out = subprocess.run(
        [PROCLAB, "run", f"{T}:tick", "--args", "(50, 6)", "--record", "/dev/full"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in out.stderr, out.stderr
    problems = [line for line in out.stderr.splitlines() if "/dev/full" in line]
    assert len(problems) == 1, out.stderr
    assert "No space left on device" in problems[0]
    assert out.stdout.count("| tick") == 6  # the children's lines are all still shown
    assert "1 child in " in out.stdout, out.stdout  # and the summary
    assert out.returncode == 1  # the recording asked for was not made: a script must know


def test_the_app_and_serve_say_a_recording_cut_short_once_over_and_exit_1() -> None:
    """A tester's: a recording cut short by a full disk left the app's exit status 0, said
    only in a notice gone with the app, and `serve`'s 0 too (`run` exits 1)."""
    # once a child has ended: recorded, and so cut short
    status, drawn = quit_once([f"{T}:sleep", "--args", "(0,)", "--record", "/dev/full"], b"1 ended")
    assert status == 1
    said = drawn.decode(errors="replace")
    assert "the recording in /dev/full stops short" in said, said[-2000:]
    port = free_port()
    serve = subprocess.Popen(
        [PROCLAB, "serve", "--port", str(port), "--record", "/dev/full"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: listening(port), 30)
        serve.send_signal(signal.SIGTERM)
        _, err = serve.communicate(timeout=60)
    finally:
        kill_if_running(serve)
    assert serve.returncode == 1, err
    assert err.count("\n") == 1 and "stops short" in err and "No space left" in err, err


def test_stdout_onto_a_full_disk_is_one_line() -> None:
    with open("/dev/full", "w") as full:
        out = subprocess.run(
            [PROCLAB, "run", f"{T}:tick", "--args", "(20, 5)"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.splitlines()
    assert lines[0] == "proclab run: cannot write to stdout: No space left on device"
    # then only what ending the child says, as on SIGTERM
    assert all(line.startswith("proclab: ") for line in lines[1:]), out.stderr
    assert out.returncode == 1  # an error, not a reader gone (141 said that)


def closed_pipe() -> int:
    """The write end of a pipe whose reader is already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


def test_schedule_into_a_closed_pipe_is_quiet() -> None:
    write_end = closed_pipe()
    try:
        out = subprocess.run(
            [PROCLAB, "schedule", "--preset", "stallings"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert out.stderr == ""
    assert out.returncode == CLOSED


def test_serve_into_a_closed_pipe_stops_and_leaves_no_handler() -> None:
    write_end = closed_pipe()
    try:
        proc = subprocess.Popen(
            [PROCLAB, "serve", "--port", str(free_port()), "--mode", "pool", "--workers", "2"],
            stdout=write_end,
            stderr=subprocess.PIPE,
        )
    finally:
        os.close(write_end)
    try:
        began = time.monotonic()
        wait_until(lambda: len(family_of(proc.pid)) >= 2 or proc.poll() is not None, 20)
        family = family_of(proc.pid)
        status = proc.wait(30)
        err = proc.stderr.read().decode()  # type: ignore[union-attr]
    finally:
        kill_if_running(proc)
    assert status == CLOSED, err
    assert "Traceback" not in err, err
    assert time.monotonic() - began < 30
    assert gone(family) == []


WRITES_6000_LINES = """
import signal, sys
from proclab.tui.closed_output import guard_output, write_whole

signal.signal(signal.SIGINT, lambda *_: None)  # noted, as proclab's commands note it
with guard_output("proclab test"):
    print("ready", flush=True)
    sys.stdin.readline()  # the test's word: the pipe is full by the write below
    write_whole("".join(f"line {n:06d} {'x' * 80}\\n" for n in range(6000)))
"""


def test_a_signal_while_a_large_write_waits_on_a_full_pipe_loses_nothing() -> None:
    """Ctrl+C while the reader of proclab's log had stopped: Python's buffered writer,
    interrupted with part of a write done, dropped the rest without a word (705 lines
    of 6,000 arrived). write_whole writes the rest."""
    child = subprocess.Popen(
        [sys.executable, "-c", WRITES_6000_LINES],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline() == "ready\n"
    child.stdin.write("go\n")
    child.stdin.flush()
    time.sleep(0.5)  # 64 KiB in the pipe, the rest waiting
    child.send_signal(signal.SIGINT)
    time.sleep(0.2)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == 0
    assert out.splitlines() == [f"line {n:06d} {'x' * 80}" for n in range(6000)]


@pytest.mark.parametrize("command", [[], ["run"], ["watch"]], ids=["app", "run", "watch"])
def test_help_onto_a_full_disk_is_one_line_and_a_failure(command: list[str]) -> None:
    with open("/dev/full", "w") as full:
        out = subprocess.run(
            [PROCLAB, *command, "--help"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    prog = " ".join(["proclab", *command])
    assert out.stderr == f"{prog}: cannot write to stdout: No space left on device\n"
    assert out.returncode == 1  # the help asked for was not shown
