"""`proclab run` end to end, through the installed console script."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from pty_session import PROCLAB
from support import kill_if_running, wait_until

T = "proclab.core.tasks"


def proclab(
    *args: str, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROCLAB, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False
    )


def summary_table(stdout: str) -> list[list[str]]:
    """The rows of the summary table (header first), after any output of the children."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("NAME "))
    end = next(
        i
        for i in range(start, len(lines))
        if not lines[i].strip() or (" in " in lines[i] and lines[i][0].isdigit())
    )
    return [line.split() for line in lines[start:end]]


def test_the_lessons_ten_sleepers():
    out = proclab("run", f"{T}:sleep", "--args", "(1,)", "--count", "10")
    assert out.returncode == 0, out.stderr
    table = out.stdout.strip().splitlines()
    assert table[0].split() == ["NAME", "PID", "EXIT", "STATE", "WALL", "CPU"]
    rows = [line.split() for line in table[1:11]]
    assert len(rows) == 10 and all(r[2] == "0" and r[3] == "exited" for r in rows)
    assert len({r[1] for r in rows}) == 10
    summary = table[11]
    assert summary.startswith("10 children in ")
    total = float(summary.split(" in ")[1].split()[0])
    assert total < 5, summary


def test_output_streams_live_with_name_and_pid(tmp_path):
    (tmp_path / "day36.py").write_text(
        "import time\n"
        "def task(name, age, gender):\n"
        "    print(name, age, gender)\n"
        "    with open('a.txt', 'w', encoding='utf-8') as f:\n"
        "        f.write('helloworld')\n"
    )
    out = proclab(
        "run",
        "day36.py:task",
        "--kwargs",
        "{'name': 'jerry', 'age': 20, 'gender': 'male'}",
        "--name",
        "process-2",
        "--method",
        "spawn",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0].split()
    assert (
        first[0] == "process-2" and first[1].isdigit() and first[2:] == ["|", "jerry", "20", "male"]
    )
    assert (tmp_path / "a.txt").read_text() == "helloworld"


def test_a_line_too_long_to_keep_whole_comes_in_pieces_marked_as_such(tmp_path):
    """A child's 100,000-character line, printed in one call, was shown as seven lines,
    each as if the child had printed it: every piece after the first says it goes on."""
    (tmp_path / "long.py").write_text(
        "def task():\n    print('x' * 100_000, flush=True)\n    print('after')\n"
    )
    out = proclab("run", "long.py:task", "--name", "long", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    printed = [line.split(" ", 3) for line in out.stdout.splitlines()]
    lines = [p[2:] for p in printed if p[0] == "long" and len(p) == 4 and p[1].isdigit()]
    assert len(lines) > 2 and lines[0][0] == "|" and lines[-1] == ["|", "after"], lines
    first, *pieces, _ = (text for _, text in lines)
    assert pieces and all(p.startswith("↪ ") for p in pieces)
    assert first + "".join(p.removeprefix("↪ ") for p in pieces) == "x" * 100_000
    assert not first.startswith("↪")


def test_a_failing_child_fails_the_run():
    out = proclab("run", f"{T}:fail", "--method", "fork")
    assert out.returncode == 1
    assert "! RuntimeError: this task always fails" in out.stderr
    assert "failed" in out.stdout and "1 did not exit cleanly" in out.stdout


def test_exit_codes_and_signals_in_the_summary():
    out = proclab("run", f"{T}:exit_with", "--args", "(7,)")
    assert out.returncode == 1
    assert "exiting with code 7" in out.stdout
    row = summary_table(out.stdout)[1]
    assert row[2:4] == ["7", "failed"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nosuch:thing"], "proclab run: target: no module named 'nosuch'"),
        (
            ["run", f"{T}:sleep", "--args", "1"],
            "proclab run: args: must be a tuple or list, got int",
        ),
        (["run", f"{T}:sleep", "--kwargs", "{'x': 1}"], "proclab run: kwargs: "),
        (
            ["run", f"{T}:sleep", "--affinity", "9999"],
            "proclab run: affinity: CPU 9999 is not available",
        ),
        (["run", f"{T}:sleep", "--count", "0"], "argument --count: must be at least 1"),
        (["run", f"{T}:sleep", "--method", "thread"], "argument --method: invalid choice"),
        # Accepted, they ended a stop in an OverflowError traceback (a lock's wait).
        (["run", f"{T}:sleep", "--grace", "inf"], "argument --grace: must be at most 1,000,000"),
        (["run", f"{T}:sleep", "--timeout", "1e12"], "argument --timeout: must be at most"),
        (
            ["run", f"{T}:sleep", "--max-procs", "9" * 20, "--count", "9" * 20],
            "argument --max-procs: must be at most",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(args, message):
    out = proclab(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""


def test_too_many_children_is_refused():
    out = proclab("run", f"{T}:sleep", "--count", "5", "--max-procs", "3")
    assert out.returncode == 2
    assert "past the limit of 3" in out.stderr and "Traceback" not in out.stderr
    # the app refuses it before it opens, as it refuses any bad launch argument
    app = proclab(f"{T}:sleep", "--count", "5", "--max-procs", "3")
    assert app.returncode == 2 and app.stdout == ""
    assert (
        app.stderr
        == "proclab: count: 5 children at once are past the limit of 3; raise --max-procs\n"
    )


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_ends_every_child(sig, status):
    proc = subprocess.Popen(
        [
            PROCLAB,
            "run",
            f"{T}:with_grandchild",
            "--args",
            "(60,)",
            "--count",
            "3",
            "--method",
            "fork",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # 3 children + 3 grandchildren, plus multiprocessing's resource tracker and fork server
        assert wait_until(lambda: len(_descendants(proc.pid)) >= 8, 20), _descendants(proc.pid)
        family = _descendants(proc.pid)
        time.sleep(0.2)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        kill_if_running(proc)
    assert proc.returncode == status, err
    assert f"{signal.Signals(sig).name} received: ending 3 children" in err
    assert out.count("-15 SIGTERM") == 3
    assert wait_until(lambda: not any(p.is_running() and p.status() != "zombie" for p in family), 5)


def test_a_signal_it_was_started_ignoring_stays_ignored():
    """Run with `&` from a script (SIGINT ignored), a Ctrl+C sent 0.2 s in or later
    cancelled the run (130), sent sooner was ignored: programs keep ignoring what they
    were started ignoring (a tester's). SIGTERM still ends it."""
    proc = subprocess.Popen(
        [PROCLAB, "run", f"{T}:sleep", "--args", "(1.5,)", "--method", "fork"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert wait_until(lambda: len(_descendants(proc.pid)) >= 1, 20)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        kill_if_running(proc)
    assert proc.returncode == 0 and "received" not in err, err  # ran its 1.5 s to the end
    assert "exited" in out, out


def test_sigterm_ignorers_are_killed_after_the_grace_period():
    proc = subprocess.Popen(
        [
            PROCLAB,
            "run",
            f"{T}:ignore_sigterm",
            "--count",
            "2",
            "--grace",
            "0.5",
            "--method",
            "fork",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        until_both_ignore_sigterm(proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        kill_if_running(proc)
    assert proc.returncode == 130
    assert "still running 0.5 s after SIGTERM: sending SIGKILL" in err
    assert out.count("-9 SIGKILL") == 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_proclab_s_whole_group_keeps_the_children_s_statuses(sig):
    """What `timeout`, `kill -- -PGID` and a terminal's hang-up send: under forkserver the
    fork server, in proclab's group, died of it with the children's statuses ("exit status
    not known: its fork server ended before it told it"), and the grace and SIGKILL never
    came (a hostile tester's)."""
    proc = subprocess.Popen(
        [PROCLAB, "run", f"{T}:ignore_sigterm", "--count", "2", "--grace", "0.5",
         "--method", "forkserver"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        until_both_ignore_sigterm(proc)
        os.killpg(proc.pid, sig)
        out, err = proc.communicate(timeout=20)
    finally:
        kill_if_running(proc)
    assert proc.returncode == 128 + sig
    assert "still running 0.5 s after SIGTERM: sending SIGKILL" in err, err
    assert out.count("-9 SIGKILL") == 2 and "not known" not in out, out


def until_both_ignore_sigterm(proc: subprocess.Popen[str]) -> None:
    """Reads `run`'s stdout until its two ignore_sigterm children have said they ignore
    it (proclab's own helpers were counted as descendants before any child was there)."""
    assert proc.stdout is not None
    ignoring = 0
    while ignoring < 2:
        line = proc.stdout.readline()
        assert line, "proclab run ended before its children ignored SIGTERM"
        ignoring += "ignoring SIGTERM" in line


def test_a_second_ctrl_c_cuts_the_grace_short():
    """Ctrl+C began a wait of --grace seconds for children that ignore SIGTERM; a second
    Ctrl+C (or a SIGTERM) meanwhile was heard and did nothing: 20 s to wait."""
    proc = subprocess.Popen(
        [PROCLAB, "run", f"{T}:ignore_sigterm", "--count", "2", "--grace", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        until_both_ignore_sigterm(proc)
        proc.send_signal(signal.SIGINT)
        said = ""
        while "waiting up to 60 s" not in said:
            line = proc.stderr.readline()
            assert line, said
            said += line
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert time.monotonic() - began < 20  # not the 60 s of --grace
    finally:
        kill_if_running(proc)
    assert proc.returncode == 130
    assert "2 children asked not to wait: sending SIGKILL" in said + err
    assert out.count("-9 SIGKILL") == 2


STUBBORN_TALKER = """
import signal, time

def talk():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        print("still here", flush=True)
        time.sleep(0.05)
"""


def test_a_closed_pipe_is_no_second_ctrl_c(tmp_path):
    """`2>&1 | head` closes stdout and stderr, each told as a SIGPIPE: taken for a second
    Ctrl+C, they cut the grace short, and children that would end on SIGTERM were
    SIGKILLed at once."""
    (tmp_path / "talker.py").write_text(STUBBORN_TALKER)
    began = time.monotonic()
    subprocess.run(
        ["bash", "-c", f"{PROCLAB} run talker.py:talk --grace 3 2>&1 | head -n 2"],
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert time.monotonic() - began >= 3  # the grace, whole: asked once, by the pipe


def test_timeout_ends_the_children():
    began = time.monotonic()
    out = proclab("run", f"{T}:sleep", "--args", "(60,)", "--count", "2", "--timeout", "0.5")
    assert time.monotonic() - began < 15
    assert out.returncode == 1
    assert "timeout after 0.5 s: ending 2 children" in out.stderr
    # each ended by SIGTERM after at least the 0.5 s asked for, counted from its start
    # (counted from before spawn(), the fork server's start took 0.12 s of it)
    walls = re.findall(r"-15 SIGTERM +terminated +(\d+) ms", out.stdout)
    walls += [
        str(float(s) * 1000) for s in re.findall(r"-15 SIGTERM +terminated +([\d.]+) s", out.stdout)
    ]
    assert len(walls) == 2 and all(float(w) >= 500 for w in walls), out.stdout


def test_run_does_not_import_textual():
    code = "import sys; from proclab.tui.cli import main; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert os.path.exists(PROCLAB)


def test_the_command_is_under_its_ctrl_c_guard_before_it_imports_proclab():
    """Ctrl+C in the first tenth of a second printed a KeyboardInterrupt traceback: the
    entry point's import of the CLI module imported proclab's model (60 ms), before
    main() and its guard. Importing it now loads nothing of proclab's but the package."""
    code = (
        "import sys; from proclab.tui.cli import main;"
        " print(sorted(m for m in sys.modules if m.startswith('proclab.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['proclab.tui', 'proclab.tui.cli']"


POOLED = """
import multiprocessing, time

def work(x):
    time.sleep(60)

def pooled(n=2):
    with multiprocessing.get_context("spawn").Pool(n) as pool:
        pool.map(work, range(n))
"""


def test_a_killed_childs_pool_leaves_nothing_on_the_terminal(tmp_path):
    # The Pool's semaphores are registered with multiprocessing's resource tracker, which
    # warns about them when it exits, after proclab has: it must not write to proclab's
    # terminal. stderr's end of file comes once every process holding it has closed it.
    (tmp_path / "pooltask.py").write_text(POOLED)
    proc = subprocess.Popen(
        [PROCLAB, "run", "pooltask.py:pooled", "--timeout", "2", "--grace", "0.5"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _out, err = proc.communicate(timeout=60)
    finally:
        kill_if_running(proc)
    assert proc.returncode == 1, err
    assert "timeout after 2 s" in err
    assert "leaked" not in err and "Warning" not in err, err


MARKING = "def mark():\n    open('made.txt', 'w').write('x')\n    print('printed')\n"


def run_with_closed(tmp_path: Path, closing: str) -> subprocess.CompletedProcess[str]:
    """`proclab run marking:mark` with the shell's `closing` redirections (`>&-`)."""
    (tmp_path / "marking.py").write_text(MARKING)
    return subprocess.run(
        ["sh", "-c", f'exec "$@" {closing}', "sh", PROCLAB, "run", "marking:mark"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


def test_a_closed_stdout_starts_nothing_and_says_so_in_one_line(tmp_path):
    """`proclab run … >&-`: Python has no sys.stdout then; nothing is started for no one
    to read, and no traceback."""
    out = run_with_closed(tmp_path, ">&-")
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "proclab run: stdout is closed; send it to /dev/null to run without it"
    ]
    assert not (tmp_path / "made.txt").exists()


def test_a_closed_stderr_or_stdin_changes_nothing(tmp_path):
    out = run_with_closed(tmp_path, "2>&- <&-")
    assert out.returncode == 0
    assert out.stdout.splitlines()[0].endswith("| printed")
    assert summary_table(out.stdout)[1][2:4] == ["0", "exited"]
    assert (tmp_path / "made.txt").read_text() == "x"


def test_a_ctrl_c_after_a_closed_pipe_is_asked_for():
    """Only a Ctrl+C or SIGTERM after what began the shutdown cuts its grace short: not
    the SIGPIPEs of a closed stdout and stderr, nor a SIGHUP; but a Ctrl+C after a
    closed pipe began it (`run | head` with stderr on the terminal) is one."""
    from proclab.tui.commands.run import asked_twice

    pipe, hup, ctrl_c, term = signal.SIGPIPE, signal.SIGHUP, signal.SIGINT, signal.SIGTERM
    assert asked_twice([ctrl_c, ctrl_c]) and asked_twice([term, ctrl_c])
    assert asked_twice([pipe, ctrl_c])
    assert not asked_twice([ctrl_c]) and not asked_twice([pipe, pipe])
    assert not asked_twice([ctrl_c, pipe]) and not asked_twice([hup, pipe])


SURVIVED = """
import traceback
def handled():
    try:
        1 / 0
    except ZeroDivisionError:
        traceback.print_exc()
def failed():
    raise ValueError("real failure")
"""


def test_a_traceback_a_child_survived_is_not_its_failure(tmp_path: Path) -> None:
    """A child that printed a traceback with traceback.print_exc() and exited 0 was
    summed up with 'ZeroDivisionError: division by zero' under it, as a failed one is."""
    (tmp_path / "t.py").write_text(SURVIVED)
    done = proclab("run", "t.py:handled", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "its stderr held a traceback, which it survived (ZeroDivisionError" in done.stdout
    done = proclab("run", "t.py:failed", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout.rstrip().endswith(": ValueError: real failure"), done.stdout
