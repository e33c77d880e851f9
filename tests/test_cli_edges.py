"""What hostile use of the commands found: each is one clear line and status 2, or a
log whose lines stay whole."""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import subprocess
from pathlib import Path

import psutil
import pytest
from pty_session import PROCLAB
from support import kill_if_running, wait_until

JOBS = "name,arrival,burst\nA,0,2\nB,1,3\n"


def proclab(
    *argv: str, cwd: Path | str | None = None, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROCLAB, *argv], capture_output=True, text=True, timeout=60, cwd=cwd, stdin=stdin
    )


def one_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr  # argparse adds its usage
    for word in words:
        assert word in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("options", "said"),
    [
        # an OverflowError traceback, or gigabytes of chart
        (["--algo", "fcfs", "--width", "9" * 27], "--width must be from 20 to 10,000"),
        (["--algo", "fcfs", "--width", "1000000000000"], "--width must be from 20 to 10,000"),
        # ignored without a word
        (["--policy", "fifo"], "--policy is for the kernel: add --real"),
        (["--unit", "5"], "--unit is for the kernel: add --real"),
        # empty: taken as the default where --quantum said "is empty"
        (["--allotment="], "--allotment is empty"),
        (["--switch-cost="], "--switch-cost is empty"),
        (["--algo="], "--algo must be one of"),
    ],
)
def test_schedule_options_out_of_bounds_or_place(
    tmp_path: Path, options: list[str], said: str
) -> None:
    (tmp_path / "jobs.csv").write_text(JOBS)
    one_line(proclab("schedule", "jobs.csv", *options, cwd=tmp_path), said)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--mode", "thread", "--method", "spawn"], "--method: thread mode starts no process"),
        (["--workers", "3"], "--workers: process mode has no workers"),
        (["--mode", "pool", "--max-procs", "4"], "could not start the pool: 4 pool workers"),
        (["--max-procs", "1"], "could not start the server process: it and a handler"),
    ],
)
def test_serve_options_its_mode_would_not_use_or_room_it_lacks_are_refused(
    options: list[str], said: str
) -> None:
    """Taken and ignored: threads ran where spawn was asked. With no room for a
    handler, a server listened only to turn every client away."""
    one_line(proclab("serve", "--port", "0", *options), said)


@pytest.mark.parametrize(
    "command",
    [
        ["{refresh}"],
        ["watch", "{refresh}", "--headless", "--", "true"],
        ["attach", "{refresh}", "1"],
    ],
)
@pytest.mark.parametrize("refresh", ["1e-9", "0.05"])
def test_a_refresh_shorter_than_the_kernel_counts_is_refused(
    command: list[str], refresh: str
) -> None:
    """At `--refresh 1e-9` every CPU figure read 0 (CPU time is counted in 10 ms ticks)
    while proclab itself took most of a core. Said in one line: argparse's usage above
    it ran to five lines for the app."""
    done = proclab(*(f"--refresh={refresh}" if word == "{refresh}" else word for word in command))
    one_line(done, "--refresh: must be at least 0.1")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["watch", "--headless", "{}"], "{}: not a file (a folder or a device): give a script"),
        (["run", "{}:f"], "target: '{}' is not a file (a folder or a device)"),
    ],
)
@pytest.mark.parametrize("kind", ["folder", "device"])
def test_a_script_that_is_no_file_is_not_said_to_be_missing(
    tmp_path: Path, command: list[str], said: str, kind: str
) -> None:
    """A folder named x.py, or a link to /dev/zero, was 'no such file'."""
    if kind == "folder":
        (tmp_path / "x.py").mkdir()
    else:
        (tmp_path / "x.py").symlink_to("/dev/zero")
    done = proclab(*(word.format("x.py") for word in command), cwd=tmp_path)
    one_line(done, said.format("x.py"))


def test_schedule_from_a_closed_stdin() -> None:
    """`schedule - <&-`: an AttributeError traceback."""
    done = subprocess.run(
        [PROCLAB, "schedule", "-"],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.close(0),
    )
    one_line(done, "stdin is closed")


@pytest.mark.parametrize(
    "command", [["run", "proclab.core.tasks:sleep", "--args", "(0.1,)"], ["serve"]]
)
def test_a_deleted_current_folder(tmp_path: Path, command: list[str]) -> None:
    """A FileNotFoundError traceback from os.getcwd()."""
    gone = tmp_path / "gone"
    gone.mkdir()
    done = subprocess.run(
        [PROCLAB, *command],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=gone,
        preexec_fn=lambda: os.rmdir(gone),
        stdin=subprocess.DEVNULL,
    )
    one_line(done, "the current folder cannot be read")


def test_replay_of_a_file_that_fails_as_it_is_read() -> None:
    """It opens, then a read fails (an OSError traceback)."""
    one_line(proclab("replay", "/proc/self/mem"), "cannot read /proc/self/mem")


@pytest.mark.parametrize("at", ["nan", "-5", "inf"])
def test_replay_at_a_moment_that_is_none(tmp_path: Path, at: str) -> None:
    """Taken as 0 in silence."""
    one_line(proclab("replay", str(tmp_path / "any.jsonl"), "--at", at), "--at: must be from 0")


ENDLESS = """
import sys

def endless():
    while True:
        sys.stdout.write("y" * 200 + "\\n")
        sys.stdout.flush()
"""


def test_run_s_notices_never_land_inside_a_child_s_line(tmp_path: Path) -> None:
    """The timeout's notice was printed by another thread than the children's lines, and
    print() writes a line's text and its newline apart: 'yyyyproclab: timeout after...'."""
    (tmp_path / "t.py").write_text(ENDLESS)
    log = tmp_path / "log"
    with open(log, "w") as out:
        subprocess.run(
            [PROCLAB, "run", "t.py:endless", "--timeout", "0.5", "--count", "2"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            timeout=60,
        )
    lines = log.read_text().splitlines()
    notices = [line for line in lines if "proclab:" in line]
    assert any("timeout after 0.5 s" in line for line in notices), notices
    for line in notices:
        assert line.startswith("proclab:"), line
    streamed = lines[: lines.index("")]  # the summary follows an empty line
    child_line = re.compile(r"^\S+ \d+ \| y{200}$")
    assert all(line in notices or child_line.match(line) for line in streamed), streamed[:5]


def test_a_module_target_is_the_folder_s_own_file_before_one_proclab_imported(
    tmp_path: Path,
) -> None:
    """`queue:f` with a queue.py in the folder: proclab had imported Python's queue, took
    it for the target ("no function 'f' in queue"), and under fork ran the wrong one."""
    (tmp_path / "queue.py").write_text("def f():\n    print('the folder s own queue')\n")
    for method in ("fork", "spawn", "forkserver"):
        done = proclab("run", "queue:f", "--method", method, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "| the folder s own queue" in done.stdout, done.stdout


def test_a_fork_server_a_local_file_breaks_says_which(tmp_path: Path) -> None:
    """A random.py in the folder shadows the module the fork server imports as it starts:
    every forkserver child failed with "EOFError: unexpected EOF", and nothing more."""
    (tmp_path / "random.py").write_text("def f():\n    pass\n")
    done = proclab("run", "random:f", "--method", "forkserver", cwd=tmp_path)
    assert done.returncode == 1
    assert "random.py in" in done.stdout and "rename it, or use --method fork or spawn" in (
        done.stdout
    ), done.stdout
    assert proclab("run", "random:f", "--method", "fork", cwd=tmp_path).returncode == 0


def test_a_client_out_of_open_files_says_so() -> None:
    """Every connect failing with EMFILE was put down to the server not running."""
    done = subprocess.run(
        ["sh", "-c", f"ulimit -n 64; exec {PROCLAB} client --port 9 --clients 300"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "ran out of open files" in done.stderr and "ulimit -n" in done.stderr, done.stderr


def test_a_forkserver_child_whose_fork_server_was_killed_has_no_made_up_status(
    tmp_path: Path,
) -> None:
    """SIGKILL of the fork server ends its children (their death signal), and nobody can
    tell their status: they were shown "exit 255 failed" (multiprocessing's placeholder),
    and named as processes that outlived their parent."""
    proc = subprocess.Popen(
        [PROCLAB, "run", "proclab.core.tasks:sleep", "--args", "(30,)", "--count", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:

        def fork_server() -> list[psutil.Process]:
            found = []
            for child in psutil.Process(proc.pid).children():
                with contextlib.suppress(psutil.Error):
                    if "multiprocessing.forkserver" in " ".join(child.cmdline()):
                        found.append(child)
            return found

        def sleepers_up() -> bool:
            # Each through its set-up (it leads its own session then), so proclab has its
            # pid: counted as soon as forked, the second was killed while its start had
            # not returned, and read "failed, never started" (the fresh clone's CI, once)
            servers = fork_server()
            sleepers = servers[0].children() if servers else []
            return len(sleepers) >= 2 and all(os.getsid(c.pid) == c.pid for c in sleepers)

        assert wait_until(sleepers_up, 20)
        fork_server()[0].kill()
        out, err = proc.communicate(timeout=30)
    finally:
        kill_if_running(proc)
    assert proc.returncode == 1
    # Not multiprocessing's placeholder status, in the EXIT column (a pid may hold "255").
    rows = [line.split() for line in out.splitlines() if line.startswith("ForkServerProcess-")]
    assert len(rows) == 2 and all(row[2] == "ended" for row in rows), out
    assert out.count("exit status not known: its fork server ended before it told it") == 2, out
    assert "outlived their parent" not in err, err


HOSTILE = "\x1b]0;PWNED\x07\x1b[2J"
SHOWN = "\\x1b]0;PWNED\\x07\\x1b[2J"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        # argparse quoted the escape raw, and named `proclab` for a command's option
        ([f"--{HOSTILE}"], f"proclab: error: unrecognized arguments: --{SHOWN}"),
        (
            ["run", "proclab.core.tasks:sleep", "--bogus"],
            "proclab run: error: unrecognized arguments: --bogus (see proclab run --help)",
        ),
        (["schedule", HOSTILE], f"proclab schedule: cannot read {SHOWN}"),
        # a traceback: the name no resolver takes (idna), then three lines of zeros
        (["client", "--host", "a..b"], "proclab client: cannot connect to a..b:8001: no address"),
        (["demo", "deep.toml"], "deep.toml: nested too deeply"),
        # printed raw in its errors; a byte that is not UTF-8 was a TypeError traceback
        (["client", "--host", f"a{HOSTILE}"], f"host: a{SHOWN} is not a host name"),
        (["web", "--host", "x\udcff"], "host: x\\udcff is not a host name"),
        (["serve", "--host", "x\udcff"], "host: x\\udcff is not a host name"),
    ],
)
def test_hostile_command_lines_are_one_escaped_line(
    tmp_path: Path, argv: list[str], said: str
) -> None:
    (tmp_path / "deep.toml").write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    done = proclab(*argv, cwd=tmp_path)
    one_line(done, said)
    assert len(done.stderr.splitlines()) == 1 and "\x1b" not in done.stderr, done.stderr
    assert done.stdout == "", done.stdout


def test_a_client_with_no_server_says_so_in_one_line() -> None:
    with socket.socket() as probe:  # a port nothing listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        done = proclab("client", "--port", str(port), "--connections", "3")
    one_line(done, f"cannot connect to 127.0.0.1:{port}: is the server running?")
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done


def test_a_name_web_cannot_resolve_is_said_in_words() -> None:
    done = proclab("web", "--host", "a..b", "--public")
    one_line(done, "proclab web: cannot listen on a..b:8000: ")
    assert "Unknown error" not in done.stderr, done.stderr


def test_a_fifo_is_said_to_be_waited_on(tmp_path: Path) -> None:
    """`schedule FIFO` (and `replay FIFO`) waited for a writer without a word."""
    fifo = tmp_path / "jobs"
    os.mkfifo(fifo)
    reader = subprocess.Popen(
        [PROCLAB, "schedule", str(fifo), "--algo", "fcfs"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stderr is not None
        readable, _, _ = select.select([reader.stderr], [], [], 30)
        assert readable, "nothing said in 30 s"
        assert "is a FIFO: waiting for something to write to it" in reader.stderr.readline()
        fifo.write_text(JOBS)
        out, _ = reader.communicate(timeout=60)
        assert reader.returncode == 0 and "FCFS" in out, out
    finally:
        kill_if_running(reader)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--affinity", "99"], "--affinity is"),
        (["--count", "3", "--daemon"], "--count, --daemon are"),
    ],
)
def test_launch_options_for_children_without_a_target_are_refused(
    options: list[str], named: str
) -> None:
    """Without a target, they were dropped without a word (bad values too): the app
    opened as if they had not been given."""
    done = proclab(*options)
    one_line(done, f"proclab: {named} for the children a target starts at launch")
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["run", "proclab.core.tasks:sleep", "--count", "１２"], "'１２' is not a whole number"),
        (["run", "proclab.core.tasks:sleep", "--timeout", "١"], "'١' is not a number"),
        (["serve", "--port", "8_001"], "'8_001' is not a port number"),
        (["attach", "１"], "'１' is not a process id"),
        (["schedule", "--preset", "rr", "--width", "１００"], "--width is not a whole number"),
        (["schedule", "--preset", "mlfq-mixed", "--levels", "١"], "--levels is not a whole number"),
        (["run", "proclab.core.tasks:sleep", "--count", "9" * 5000], "'99999"),
    ],
)
def test_numbers_are_ascii_digits_everywhere_and_said_back_short(
    argv: list[str], said: str
) -> None:
    """int() took "１２", "١" and "8_001" where --affinity and schedule refused them, and a
    5,000-digit --count was said back whole: a 5,088-character line."""
    done = proclab(*argv)
    one_line(done, said)
    assert max(len(line) for line in done.stderr.splitlines()) < 200, done.stderr
