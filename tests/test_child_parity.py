"""A proclab child behaves as a child of the learner's own script started with bare
multiprocessing, but for what the README says its bootstrap changes (its fds 0-2, its
session, its death signal, its title, the fds it inherits from proclab): its stdin, the
multiprocessing helpers its code uses, its signals and its output, under every method."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest
from pty_session import PROCLAB
from support import lines

from proclab.core.controller import Controller
from proclab.core.model import ProcessRow
from proclab.core.spec import build_spec

METHODS = ["fork", "forkserver", "spawn"]

LESSON = textwrap.dedent(
    """
    import os, signal, sys, time
    import multiprocessing as mp
    from multiprocessing import shared_memory

    def ask():
        # Files opened first: one may get the number of an fd closed under the child.
        opened = [open(__file__, encoding="utf-8") for _ in range(20)]
        try:
            input("name? ")
        except EOFError:
            print("end of input, stdin is", os.readlink(f"/proc/self/fd/{sys.stdin.fileno()}"))

    def hello(method):
        print("hello from a", method, "grandchild")

    def uses_helpers(folder):
        files = [open(os.path.join(folder, f"file{i}.txt"), "w") for i in range(20)]
        memory = shared_memory.SharedMemory(create=True, size=16)
        memory.close()
        memory.unlink()
        for method in ("spawn", "forkserver"):
            grandchild = mp.get_context(method).Process(target=hello, args=(method,))
            grandchild.start()
            grandchild.join()
            print(method, "grandchild exit", grandchild.exitcode)
        for f in files:
            f.write("mine\\n")
            f.close()

    def interrupted():
        signal.signal(signal.SIGUSR1, lambda *_: print("handled SIGUSR1"))
        os.kill(os.getpid(), signal.SIGUSR1)
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
        print("wake-up fd", signal.set_wakeup_fd(-1))

    def limits():
        import resource
        print("open files", *resource.getrlimit(resource.RLIMIT_NOFILE))

    def original_streams():
        print("to sys.__stdout__", file=sys.__stdout__)
        sys.__stderr__.write("to sys.__stderr__, no newline")
    """
)


def run_lesson(controller: Controller, folder: Path, function: str, method: str) -> ProcessRow:
    (folder / "lesson.py").write_text(LESSON)
    spec = build_spec(
        f"lesson:{function}",
        f"({str(folder)!r},)" if function == "uses_helpers" else "",
        cwd=str(folder),
        method=method,
    )
    (rec_id,) = controller.spawn(spec)
    assert controller.join([rec_id], timeout=30)
    row = controller.row(rec_id)
    assert row.exitcode == 0, (row.error, lines(controller, rec_id))
    return row


def proclab_run(
    folder: Path, function: str, method: str, setup: str = ":", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`proclab run lesson:FUNCTION`, as a user runs it, after the shell's `setup`."""
    (folder / "lesson.py").write_text(LESSON)
    argv = [PROCLAB, "run", f"lesson:{function}", "--method", method]
    out = subprocess.run(
        ["sh", "-c", f'{setup} && exec "$@"', "sh", *argv],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out


@pytest.mark.parametrize("method", METHODS)
def test_a_childs_input_reads_the_end_of_dev_null(controller, tmp_path: Path, method: str) -> None:
    """input() meets the end of input (EOFError), not a closed fd, nor a file the target
    opened on the fd sys.stdin reads."""
    row = run_lesson(controller, tmp_path, "ask", method)
    assert lines(controller, row.id, "stdout") == ["name? end of input, stdin is /dev/null"]


@pytest.mark.parametrize("method", METHODS)
def test_a_child_uses_shared_memory_and_starts_children_of_every_method(
    controller, tmp_path: Path, method: str
) -> None:
    """multiprocessing's resource tracker and fork server work in the child (proclab's
    own, which a fork child inherits, were half closed), and write into none of the
    target's files."""
    row = run_lesson(controller, tmp_path, "uses_helpers", method)
    assert sorted(lines(controller, row.id, "stdout")) == [
        "forkserver grandchild exit 0",
        "hello from a forkserver grandchild",
        "hello from a spawn grandchild",
        "spawn grandchild exit 0",
    ]
    assert lines(controller, row.id, "stderr") == []
    for i in range(20):
        assert (tmp_path / f"file{i}.txt").read_text() == "mine\n"


def test_a_fork_child_of_an_event_loop_handles_its_signals(controller, tmp_path: Path) -> None:
    """An event loop (the app's) has signals written to a wake-up fd of its own: a fork
    child does not inherit it, so its signals print no error and write into no socket."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    previous = signal.set_wakeup_fd(ours.fileno())
    try:
        row = run_lesson(controller, tmp_path, "interrupted", "fork")
    finally:
        signal.set_wakeup_fd(previous)
        ours.close()
        theirs.close()
    assert lines(controller, row.id, "stdout") == [
        "handled SIGUSR1",
        "KeyboardInterrupt",
        "wake-up fd -1",
    ]
    assert lines(controller, row.id, "stderr") == []
    assert row.error is None


@pytest.mark.parametrize("method", METHODS)
def test_what_a_child_writes_to_the_original_streams_is_shown(tmp_path: Path, method: str) -> None:
    """sys.__stdout__ and sys.__stderr__ are the child's own streams, flushed as it ends.
    Through `proclab run` with its output to a pipe and Python's streams buffered (no
    PYTHONUNBUFFERED), as a user runs it: the streams a child inherits are then buffered."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    out = proclab_run(tmp_path, "original_streams", method, env=env)
    shown = [
        line.split(" ", 2)[2]
        for line in (out.stdout + out.stderr).splitlines()
        if " | " in line or " ! " in line
    ]
    assert sorted(shown) == ["! to sys.__stderr__, no newline", "| to sys.__stdout__"]


@pytest.mark.parametrize("method", METHODS)
def test_a_child_has_the_limit_on_open_files_the_shell_set(tmp_path: Path, method: str) -> None:
    """proclab raises its own soft limit for its children's pipes; each child gets back
    the one the user's shell set (fork and spawn children had proclab's)."""
    out = proclab_run(tmp_path, "limits", method, setup="ulimit -S -n 512")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert out.stdout.splitlines()[0].endswith(f"| open files 512 {hard}"), out.stdout
