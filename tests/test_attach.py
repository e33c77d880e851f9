"""`proclab attach PID`: the view of a tree that already runs, from /proc alone; quitting
leaves it running."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import reap_orphans
from pty_session import PROCLAB
from support import as_unprivileged_user, wait_for, wait_until

from proclab.core.model import ProcState
from proclab.core.source import NotAllowed
from proclab.core.watch.attach import AttachedTree
from proclab.core.watch.program import WatchError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
METHODS = ["fork", "forkserver", "spawn"]


def start_sleepers(method: str, seconds: str = "30") -> subprocess.Popen[bytes]:
    """The ten sleepers, run without proclab (no hook), in a session of their own."""
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES / "ten_sleepers.py"), method, seconds],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


def end(program: subprocess.Popen[bytes]) -> None:
    """Kill its whole session's group; its orphans come to this process (a subreaper)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(program.pid, signal.SIGKILL)
    program.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        reap_orphans()
        try:
            os.killpg(program.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def sleepers_up(pid: int, count: int) -> bool:
    return len(psutil.Process(pid).children(recursive=True)) >= count


def attach_headless(pid: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PROCLAB, "attach", "--headless", str(pid)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("method", METHODS)
def test_attach_shows_the_running_tree_and_leaves_it_running(method: str) -> None:
    program = start_sleepers(method)
    try:
        helpers = {"fork": 0, "forkserver": 2, "spawn": 1}[method]
        assert wait_until(lambda: sleepers_up(program.pid, 10 + helpers), 30)
        attached = AttachedTree(program.pid, sample_interval=0.2)
        attached.start()
        try:
            rows = attached.rows()
            assert len(rows) == 11 + helpers
            root = attached.root_rows()[0]
            assert root.pid == program.pid and root.parent is None
            roles = {r.mp.role for r in rows if r.mp is not None and r.mp.role}
            children = [r for r in rows if r is not root and not (r.mp and r.mp.role)]
            assert len(children) == 10
            if method == "spawn":
                assert roles == {"resource_tracker"}
                # a child seen between its fork and its exec is told at the next walk
                assert wait_until(
                    lambda: all(
                        (r := attached.row(c.id)).mp is not None and r.mp.method == "spawn"
                        for c in children
                    ),
                    5,
                )
            if method == "forkserver":
                assert roles == {"resource_tracker", "forkserver"}
                server = next(r for r in rows if r.mp and r.mp.role == "forkserver")
                assert all(c.parent == server.id for c in children)
                assert all(c.mp is not None and c.mp.method == "forkserver" for c in children)
            if method == "fork":  # a fork child's command line is its parent's: not told
                assert all(c.parent == root.id and c.mp is None for c in children)
            with pytest.raises(NotAllowed):
                attached.restart(root.id)
            # Signals reach any process of the tree; its end is seen, its status is not.
            # The first one started is the one its parent is joining: reaped at once. (Not
            # the lowest pid: pids wrap at pid_max, 32768 here.)
            victim = min(children, key=lambda r: (r.started_at or 0.0, r.pid or 0))
            attached.kill(victim.id)
            assert attached.join([victim.id], timeout=10)
            ended = attached.row(victim.id)
            assert ended.state is ProcState.ENDED and ended.exitcode is None
            parent = attached.row(ended.parent)  # type: ignore[arg-type]
            assert (
                ended.exit_note
                == f"exit status not known: only its parent {parent.name} ({parent.pid}) could read it"
            )
        finally:
            attached.close()
        assert program.poll() is None  # quitting left it running
        assert sleepers_up(program.pid, 9 + helpers)
    finally:
        end(program)


ATTACHED_TO_ITS_PARENT = """
import json, os, sys
from proclab.core.source import NotAllowed
from proclab.core.watch.attach import AttachedTree

attached = AttachedTree(os.getppid(), sample_interval=0.2).start()
try:
    pids = sorted(r.pid for r in attached.rows())
    try:
        attached.pause(attached.root_rows()[0].id)
        refused = ""
    except NotAllowed as exc:
        refused = str(exc)
finally:
    attached.close()
print(json.dumps({"pids": pids, "refused": refused}))
"""


def test_attached_to_the_shell_it_runs_in_proclab_leaves_itself_out() -> None:
    """Attached to its own parent (the shell it was started from), proclab listed itself:
    a pause on that row stopped it, every key dead, and a kill ended it with the terminal
    left raw. Signalling its own parent from inside it is refused."""
    shell = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; subprocess.run(sys.argv[1:])",
            sys.executable,
            "-c",
            ATTACHED_TO_ITS_PARENT,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        out, _ = shell.communicate(timeout=60)
    finally:
        shell.kill()
    told = json.loads(out)
    assert told["pids"] == [shell.pid], told  # the root alone: not proclab, not below it
    assert told["refused"].startswith(f"python ({shell.pid}) is one of proclab's own parents")
    assert shell.returncode == 0


def test_attach_headless_quits_on_ctrl_c_and_leaves_the_tree() -> None:
    program = start_sleepers("fork")
    try:
        assert wait_until(lambda: sleepers_up(program.pid, 10), 30)
        proc = attach_headless(program.pid)
        assert proc.stdout is not None
        seen = [proc.stdout.readline() for _ in range(11)]
        assert all(line.startswith("+ ") for line in seen), seen
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 128 + signal.SIGINT
        assert "leaving 11 processes running" in err
        assert "still runs" in out
        assert program.poll() is None and sleepers_up(program.pid, 10)
    finally:
        end(program)


def shell_waiting(script: str) -> subprocess.Popen[bytes]:
    """`sh -c script` once a line comes on its stdin (see attached_then_go)."""
    return subprocess.Popen(
        ["sh", "-c", f"read _; {script}"], stdin=subprocess.PIPE, start_new_session=True
    )


def attached_then_go(program: subprocess.Popen[bytes]) -> tuple[subprocess.Popen[str], str]:
    """`attach --headless` on a shell_waiting, which goes on once attach has its row (a
    loaded machine took over a second to attach, past a shell that lived 2 s); and what
    attach printed until then."""
    proc = attach_headless(program.pid)
    assert proc.stdout is not None and program.stdin is not None
    read = [proc.stdout.readline()]
    assert read[0].startswith("+ sh "), read
    program.stdin.write(b"go\n")
    program.stdin.close()
    return proc, "".join(read)


def test_attach_says_ctrl_c_leaves_what_the_ended_program_left_running() -> None:
    """Once the attached program had ended it said "waiting for it (Ctrl+C ends it)",
    and Ctrl+C then left it running, as attach does."""
    program = shell_waiting("sleep 30 & sleep 2; exit 0")
    try:
        shell = psutil.Process(program.pid)
        proc, _ = attached_then_go(program)
        assert proc.stderr is not None
        # `sleep 30` past its exec (`sleep 2` may be first: once, under the full suite)
        left: list[psutil.Process] = []

        def sleeping_30() -> bool:
            for child in shell.children():
                with contextlib.suppress(psutil.Error):  # `sleep 2` may end meanwhile
                    if child.cmdline() == ["sleep", "30"]:
                        left.append(child)
            return bool(left)

        assert wait_until(sleeping_30, 10)
        said = ""
        deadline = time.monotonic() + 20
        while "still runs" not in said and time.monotonic() < deadline:
            if select.select([proc.stderr], [], [], 0.5)[0]:  # never past the deadline
                said += proc.stderr.readline()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        assert "(Ctrl+C stops watching and leaves it running)" in said, said
        assert len(left) == 1 and left[0].is_running()
    finally:
        end(program)


def test_a_program_that_ended_unreaped_is_not_said_to_still_run() -> None:
    """ "the program ran 2.06 s so far, and still runs", of a program its parent had not
    reaped yet: a zombie has ended (its row said so)."""
    program = shell_waiting("exit 3")  # this test reaps it only at the end
    try:
        proc, before = attached_then_go(program)
        shell = psutil.Process(program.pid)
        assert wait_until(lambda: shell.status() == psutil.STATUS_ZOMBIE, 10)
        time.sleep(1.5)  # a sampler tick or more past its end
        proc.send_signal(signal.SIGINT)
        out, _err = proc.communicate(timeout=30)
        out = before + out
        assert "the program ran" in out, out
        assert "still runs" not in out, out
        assert re.search(r"^sh +\d+ .*zombie", out, re.M), out
    finally:
        end(program)


def test_an_orphan_s_unknown_status_does_not_blame_its_dead_parent() -> None:
    """`only its parent bash (29689) could read it`, of a sleep whose bash had ended
    seconds before: the orphan's status was the adopting process's to read."""
    program = shell_waiting("sleep 4 & sleep 2; exit 0")
    try:
        proc, before = attached_then_go(program)
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline:  # the orphan is this process's (a subreaper)
            reap_orphans()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, _err = proc.communicate(timeout=30)
        out = before + out
        assert re.search(
            rf"^- sleep \d+ ended after 2\.\d+ s: .*only its parent sh \({program.pid}\)", out, re.M
        ), out
        orphan = re.search(r"^- sleep \d+ ended after 4\.\d+ s: (.*)$", out, re.M)
        assert orphan, out
        # (and how long it was a zombie, if this test's reaper, polling, was that slow)
        assert re.fullmatch(
            rf"exit status not known: its parent sh \({program.pid}\) ended first, and only"
            r" the process that adopted it could read it(; a zombie for [\d.]+ s before it was"
            r" reaped)?",
            orphan[1],
        ), orphan[1]
    finally:
        end(program)


REAPS_LATE = """
import os, sys, time
pid = os.fork()
if pid == 0:
    os._exit(3)
print(pid, flush=True)
time.sleep(float(sys.argv[1]))
os.waitpid(pid, 0)
time.sleep(60)
"""


def test_a_child_ended_before_attach_is_shown_with_its_life_as_a_bound(tmp_path: Path) -> None:
    """A zombie at attach was shown "ended after 0.859 s": the moment attach first saw it,
    not its end, which nothing tells (it lived a millisecond)."""
    script = tmp_path / "reaps_late.py"
    script.write_text(REAPS_LATE)
    program = subprocess.Popen(
        [sys.executable, str(script), "1.5"], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert program.stdout is not None
        child = int(program.stdout.readline())
        assert wait_until(lambda: psutil.Process(child).status() == psutil.STATUS_ZOMBIE, 10)
        proc = attach_headless(program.pid)
        assert proc.stdout is not None
        ended = next(line for line in proc.stdout if line.startswith("- "))
        proc.send_signal(signal.SIGINT)
        out, _err = proc.communicate(timeout=30)
        # Not hooked: its status was its parent's to read.
        assert ended.startswith(f"- python {child} ended within "), ended
        assert ": it had ended when proclab first read it in /proc;" in ended, ended
        assert " after " not in ended, ended
        row = next(line for line in out.splitlines() if line.startswith(f"python  {child} "))
        assert " ≤" in row, out
        assert "WALL marked ≤ for 1 process" in out, out
    finally:
        end(program)


def test_attach_to_a_missing_process_is_one_line_and_status_2() -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = gone.stdout.strip()
    for argv, said in (
        ([pid], f"no process {pid}"),
        (["nope"], "'nope' is not a process id"),
        ([str(os.getpid() * 0)], "0 is not a process id"),
    ):
        done = subprocess.run(
            [PROCLAB, "attach", "--headless", *argv], capture_output=True, text=True
        )
        assert done.returncode == 2
        assert done.stdout == "" and done.stderr.splitlines() == [f"proclab attach: {said}"]
    with pytest.raises(WatchError):
        AttachedTree(os.getpid())
    # A zombie has ended: said so (it was "no process", where ps shows it)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        assert wait_until(lambda: psutil.Process(zombie.pid).status() == psutil.STATUS_ZOMBIE)
        with pytest.raises(WatchError, match=f"process {zombie.pid} has ended: a zombie"):
            AttachedTree(zombie.pid)
    finally:
        zombie.wait()


def test_attach_to_a_thread_names_its_process() -> None:
    """/proc shows threads too: a thread's id was taken for a process, and when the
    thread ended the process was said to have ended ("ended after 0.535 s", with its
    status "only its parent could read"), while it ran on."""
    done = threading.Event()
    thread = threading.Thread(target=done.wait, args=(30,))
    thread.start()
    try:
        tid = thread.native_id
        assert tid is not None and tid != os.getpid()
        with pytest.raises(WatchError) as refused:
            AttachedTree(tid)
        assert (
            str(refused.value)
            == f"{tid} is a thread of process {os.getpid()}: attach {os.getpid()}"
        )
    finally:
        done.set()
        thread.join()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a process of another user: run as root")
def test_attach_to_another_users_process_is_one_line_and_status_2() -> None:
    def attach_to_init() -> str:
        try:
            AttachedTree(1)
        except WatchError as exc:
            return str(exc)
        return "attached"

    said = as_unprivileged_user(attach_to_init)
    assert said == "not allowed to watch process 1: it is another user's"


async def test_the_app_on_an_attached_tree_kills_one_and_quits_leaving_the_rest() -> None:
    """The app a user opens with `proclab attach PID`: the tree as a tree, a kill from the
    keyboard (asked first) ends the process chosen and no other, and quitting says that it
    leaves the tree running, and does."""
    from proclab.tui.screens.dialogs import ConfirmScreen
    from proclab.tui.watch_app import WatchApp

    program = start_sleepers("forkserver")
    try:
        assert wait_until(lambda: sleepers_up(program.pid, 12), 30)
        attached = AttachedTree(program.pid, sample_interval=0.2)
        app = WatchApp(attached, attached.start, refresh=0.2)
        try:
            async with app.run_test(size=(160, 48)) as pilot:
                table = app.lab.table
                await wait_for(pilot, lambda: table.row_count == 13, timeout=30)
                rows = {r.id: r for r in attached.rows()}
                assert table.order[0] == attached.root_rows()[0].id  # the program first
                server = next(r for r in rows.values() if r.mp and r.mp.role == "forkserver")
                children = [r for r in rows.values() if r.parent == server.id]
                assert len(children) == 10
                # Under the fork server, as a tree: its ten children follow it.
                at = table.order.index(server.id)
                assert set(table.order[at + 1 : at + 11]) == {c.id for c in children}
                victim = max(children, key=lambda r: r.pid or 0)
                table.select(victim.id)
                await pilot.press("k")
                await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
                await pilot.press("y")
                await wait_for(pilot, lambda: attached.row(victim.id).state.is_over, timeout=30)
                assert (
                    not psutil.pid_exists(victim.pid)
                    or psutil.Process(victim.pid).status() == psutil.STATUS_ZOMBIE
                )
                # A zombie until the fork server reaps it, then ended, as the table says.
                await wait_for(
                    pilot, lambda: table.cell_text(victim.id, "state") == "ended", timeout=30
                )
                others = [c for c in children if c is not victim]
                assert all(attached.row(c.id).state.is_live for c in others)
                await pilot.press("q")
                await wait_for(pilot, lambda: not app.is_running, timeout=30)
        finally:
            attached.close()
        assert program.poll() is None  # the tree runs on
        assert sleepers_up(program.pid, 11)
        assert app.shutdown_log == ["left 12 processes running, as attach does"]
    finally:
        end(program)
