"""proclab owns its children's whole family, whatever they do, and ends all of it however
proclab ends; and it never signals a process group but its children's own.

The family's members here do what escaped proclab before: a grandchild outliving a child
that returned (forked, and started with subprocess.Popen), grandchildren that left their
child's process group (setsid, setpgid, a double fork), a child that exec'd another
program, and a child in C code that holds the GIL (its Python watchdog can never run).
They run under the app (in a pseudo-terminal) and under `proclab run`, which are ended by
their quit key, SIGTERM, SIGHUP or SIGKILL, with a cgroup (the default where one can be
had, as root here and in CI) and with the process tree alone (what a user without a
writable cgroup gets; PROCLAB_FAMILY=tree).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import reap_orphans
from pty_session import PROCLAB, PtySession
from support import kill_if_running, start_task, wait_until

from proclab.core.controller import Controller
from proclab.core.spec import build_spec

FAMILY = """
import ctypes, os, subprocess, time

ROLES = ("returns", "leaves", "execs", "holds the GIL")


def note(folder, what, pid=None):
    # Written aside, then renamed: a note read as it was being written would be empty.
    name = str(pid or os.getpid())
    with open(os.path.join(folder, "." + name), "w") as f:
        f.write(what)
    os.rename(os.path.join(folder, "." + name), os.path.join(folder, name))


def sleeper(folder, what, detach=None):
    pid = os.fork()
    if pid == 0:
        try:
            if detach == "setsid":
                os.setsid()
            elif detach == "setpgid":
                os.setpgid(0, 0)
            note(folder, what)
            time.sleep(300)
        finally:
            os._exit(0)
    return pid


def orphan(folder):
    # The double fork of a daemon: its parent exits at once, so it is nobody's child.
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            note(folder, "double-forked orphan")
            time.sleep(300)
        os._exit(0)
    os.waitpid(pid, 0)


def family(folder):
    for role in ROLES:
        try:
            os.close(os.open(os.path.join(folder, "role " + role), os.O_CREAT | os.O_EXCL))
            break
        except FileExistsError:
            continue
    if role == "returns":
        sleeper(folder, "forked grandchild of a child that returned")
        popen = subprocess.Popen(["sleep", "300"])
        note(folder, "Popen grandchild of a child that returned", popen.pid)
        return
    if role == "leaves":
        sleeper(folder, "grandchild in a session of its own", "setsid")
        sleeper(folder, "grandchild in a group of its own", "setpgid")
        orphan(folder)
        note(folder, "child whose grandchildren left")
        time.sleep(300)
    if role == "execs":
        note(folder, "child that exec'd sleep")
        os.execvp("sleep", ["sleep", "300"])
    note(folder, "child holding the GIL in C code")
    ctypes.PyDLL(None).sleep(300)  # PyDLL keeps the GIL: no other thread of it runs


def setsid_crowd(folder, count=80):
    # Past the fork-bomb guard (64): every one in a session of its own.
    for _ in range(count):
        sleeper(folder, "setsid crowd", "setsid")
    time.sleep(300)


def lone_setsid(folder):
    sleeper(folder, "setsid grandchild", "setsid")
    time.sleep(300)


def short_orphan(folder):
    # A grandchild that outlives its parent by a moment, then ends: an orphan to reap.
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            note(folder, "short-lived orphan")
            time.sleep(0.5)
        os._exit(0)
    os.waitpid(pid, 0)
    time.sleep(300)
"""
NOTES = 8  # what family() writes across its four roles


@pytest.fixture
def lesson(tmp_path: Path) -> Path:
    (tmp_path / "fam.py").write_text(FAMILY)
    (tmp_path / "notes").mkdir()
    return tmp_path


def noted(lesson: Path) -> dict[int, str]:
    return {int(p.name): p.read_text() for p in (lesson / "notes").iterdir() if p.name.isdigit()}


def processes(pids: dict[int, str]) -> dict[psutil.Process, str]:
    found = {}
    for pid, what in pids.items():
        with contextlib.suppress(psutil.NoSuchProcess):
            found[psutil.Process(pid)] = what
    return found


def running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def survivors(family: dict[psutil.Process, str], timeout: float = 5.0) -> list[str]:
    """What still runs `timeout` seconds from now (at most)."""
    deadline = time.monotonic() + timeout
    while True:
        reap_orphans()
        left = [f"{p.pid} {what}" for p, what in family.items() if running(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def bound_of(pid: int, proclab: int) -> str:
    """Whether `pid` lives in the cgroup of the proclab whose pid is `proclab`."""
    with open(f"/proc/{pid}/cgroup") as f:
        return "cgroup" if f"/proclab-{proclab}-" in f.read() else "tree"


def the_family(
    lesson: Path, bound: str, alive: object, how: str, proclab: int, tick: float
) -> dict[psutil.Process, str]:
    """Wait until every member has noted its pid; skip where no cgroup can be had."""
    assert wait_until(lambda: len(noted(lesson)) >= NOTES or not alive(), 30), noted(lesson)  # type: ignore[operator]
    pids = noted(lesson)
    assert len(pids) == NOTES, pids
    family = processes(pids)
    child = next(p for p, what in family.items() if what == "child whose grandchildren left")
    if bound == "cgroup" and bound_of(child.pid, proclab) != "cgroup":
        pytest.skip("no writable cgroup v2 here: the process tree is all there is")
    assert bound_of(child.pid, proclab) == bound
    if bound == "tree" and how == "SIGKILL":
        # Without a cgroup, a SIGKILLed proclab's guardian knows the processes proclab saw:
        # it looks at its family once a sampler tick.
        time.sleep(tick * 2.2)
    return family


def options(lesson: Path, method: str) -> list[str]:
    return [
        "fam.py:family",
        "--kwargs",
        repr({"folder": str(lesson / "notes")}),
        "--count",
        "4",
        "--method",
        method,
        "--grace",
        "0.5",
    ]


def cgroup_folders(pid: int) -> list[Path]:
    """This proclab's cgroup folders. Walked with os.walk, which passes over a folder
    removed meanwhile: other tests' proclabs remove theirs while this one looks, and
    pathlib's glob raised FileNotFoundError there (seen once in CI)."""
    prefix = f"proclab-{pid}-"
    return [
        Path(root, name)
        for root, names, _ in os.walk("/sys/fs/cgroup")
        for name in names
        if name.startswith(prefix)
    ]


@pytest.mark.parametrize(
    ("how", "bound", "method"),
    [
        ("quit key", "cgroup", "fork"),
        ("SIGTERM", "cgroup", "forkserver"),
        ("SIGKILL", "cgroup", "spawn"),
        # the tree: quitting ends it as SIGHUP does (the same shutdown, the app's own)
        ("SIGHUP", "tree", "fork"),
        ("SIGKILL", "tree", "forkserver"),
    ],
)
def test_the_app_ends_the_whole_family(lesson: Path, how: str, bound: str, method: str) -> None:
    session = PtySession(
        [*options(lesson, method), "--refresh", "0.5"],
        cwd=str(lesson),
        size=(120, 40),
        env={"PROCLAB_FAMILY": bound},
    )
    try:
        family = the_family(lesson, bound, session.running, how, session.pid, tick=0.5)
        if how == "quit key":
            session.send("q")
            session.wait_for(b"still running")
            session.send("y")
        else:
            session.signal(getattr(signal, how))
        session.wait(timeout=20)
        assert survivors(family) == [], f"outlived proclab ({how}, {bound})"
        if how != "SIGKILL":
            # named, not silently ended: they left their child's group or outlived it
            assert b"left their process" in session.output
        assert wait_until(lambda: not cgroup_folders(session.pid), 10)
    finally:
        session.close()
        reap_orphans()


@pytest.mark.parametrize(
    ("how", "bound", "method"),
    [
        ("SIGHUP", "cgroup", "forkserver"),
        ("SIGKILL", "cgroup", "fork"),
        ("SIGTERM", "tree", "spawn"),
        ("SIGKILL", "tree", "fork"),
    ],
)
def test_proclab_run_ends_the_whole_family(lesson: Path, how: str, bound: str, method: str) -> None:
    proc = subprocess.Popen(
        [PROCLAB, "run", *options(lesson, method)],
        cwd=lesson,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PROCLAB_FAMILY": bound},
    )
    try:
        family = the_family(lesson, bound, lambda: proc.poll() is None, how, proc.pid, tick=1.0)
        proc.send_signal(getattr(signal, how))
        _, err = proc.communicate(timeout=20)
        assert survivors(family) == [], f"outlived proclab run ({how}, {bound})"
        if how != "SIGKILL":
            assert b"left their process" in err, err[-800:]
    finally:
        kill_if_running(proc)
        reap_orphans()


def test_sigkill_of_proclab_spares_its_caller(tmp_path: Path) -> None:
    """proclab killed while spawn children are still starting: each child's watchdog sees
    proclab gone, and must end its own group only, never the group it was born in, which
    is its caller's (here a shell and its other job, a sleep)."""
    caller = subprocess.Popen(
        [
            "bash",
            "-c",
            f"sleep 60 & echo $!; {PROCLAB} run proclab.core.tasks:sleep --args '(30,)'"
            " --count 20 --method spawn >/dev/null 2>&1 & echo $!; wait",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the caller's own group, as a shell's job would have
    )
    assert caller.stdout is not None
    sleep_pid, proclab_pid = int(caller.stdout.readline()), int(caller.stdout.readline())
    sleeper = psutil.Process(sleep_pid)
    try:
        proclab = psutil.Process(proclab_pid)

        def starting() -> bool:
            """Children run, and more are in their start-up (not in a session of their
            own yet) as the launcher goes on: some of those see proclab gone at once."""
            kids = [c for c in proclab.children() if "spawn_main" in " ".join(c.cmdline())]
            return len(kids) >= 8 and sum(1 for c in kids if _sid(c.pid) != c.pid) >= 3

        assert wait_until(starting, 30, interval=0.002)
        family = proclab.children(recursive=True)
        os.kill(proclab_pid, signal.SIGKILL)
        time.sleep(3)  # long enough for every child's watchdog to act
        assert caller.poll() is None, "proclab's caller was killed"
        assert running(sleeper), "the caller's other job was killed"
        assert survivors(dict.fromkeys(family, "child")) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(caller.pid, signal.SIGKILL)
        caller.wait()
        reap_orphans()


GUARDED_FORK_SERVER = """
import multiprocessing, os, sys, time
from proclab.core import bootstrap, methods

def child(note):
    bootstrap.die_with_parent("forkserver")  # as the bootstrap does
    threads = len(os.listdir("/proc/self/task"))
    with open(note, "w") as f:
        f.write(f"{os.getpid()} {threads}")
    time.sleep(30)

if __name__ == "__main__":
    methods.prepare()  # proclab's fork server, which dies with this process
    multiprocessing.get_context("forkserver").Process(target=child, args=(sys.argv[1],)).start()
    time.sleep(30)
"""


def test_a_forkserver_child_dies_with_proclab_through_its_fork_server(tmp_path: Path) -> None:
    """A forkserver child's parent is the fork server, which dies with proclab: the kernel's
    parent-death signals chain from proclab to the child, with no watchdog thread in the
    child and no guardian (a raw Process, outside any family)."""
    script = tmp_path / "guarded.py"
    script.write_text(GUARDED_FORK_SERVER)
    note = tmp_path / "child"
    owner = subprocess.Popen([sys.executable, str(script), str(note)], start_new_session=True)
    try:
        assert wait_until(lambda: note.exists() and note.read_text().count(" ") == 1, 30)
        pid, threads = map(int, note.read_text().split())
        child = psutil.Process(pid)
        assert threads == 1, "the child started a watchdog thread"
        owner.kill()  # SIGKILL: no Python code of the owner runs
        assert survivors({child: "the forkserver child"}, timeout=10) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(owner.pid, signal.SIGKILL)
        owner.wait()
        reap_orphans()


WATCHDOG_LATE = """
import multiprocessing, os, subprocess, sys, time
from proclab.core import bootstrap

def child(parent):
    while os.getppid() == parent:  # until the parent is gone
        time.sleep(0.01)
    bootstrap.die_with_parent()  # as the bootstrap does, before it leads its own group
    time.sleep(30)

if __name__ == "__main__":
    bystander = subprocess.Popen(["sleep", "30"])  # another job of the same caller
    child_process = multiprocessing.get_context("fork").Process(target=child, args=(os.getpid(),))
    child_process.start()
    print(bystander.pid, child_process.pid, flush=True)
    os._exit(0)  # gone without a word, as by SIGKILL
"""


def test_a_late_watchdog_ends_its_child_only(tmp_path: Path) -> None:
    """The same, without the race: a child whose parent died before it left the group it
    was born in (its caller's) ends itself, and nothing else of that group."""
    script = tmp_path / "late.py"
    script.write_text(WATCHDOG_LATE)
    caller = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert caller.stdout is not None
    bystander_pid, child_pid = map(int, caller.stdout.readline().split())
    try:
        child = psutil.Process(child_pid)
        bystander = psutil.Process(bystander_pid)
        assert survivors({child: "the child"}, timeout=10) == []
        assert running(bystander), "the watchdog killed its caller's group"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(caller.pid, signal.SIGKILL)
        caller.wait()
        reap_orphans()


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


# The family while proclab runs -------------------------------------------------------


def _controller_run(lesson: Path, function: str) -> tuple[Controller, int]:
    controller = Controller(sample_interval=0.2, grace=0.5).start()
    spec = build_spec(
        f"{lesson / 'fam.py'}:{function}", kwargs=repr({"folder": str(lesson / "notes")})
    )
    (rec_id,) = controller.spawn(spec)
    assert controller.wait_started([rec_id])
    return controller, rec_id


def test_the_fork_bomb_guard_ends_processes_that_left_the_group(lesson: Path) -> None:
    controller, rec_id = _controller_run(lesson, "setsid_crowd")
    try:
        assert wait_until(lambda: controller.row(rec_id).state.is_over, 30)
        crowd = processes(noted(lesson))
        assert crowd, "the guard fired before any grandchild noted itself"
        # while proclab still runs: none of the crowd outlives the guard's kill
        assert survivors(crowd) == []
        assert "fork bomb" in (controller.row(rec_id).error or "")
    finally:
        controller.close()
        reap_orphans()


def test_terminate_reaches_a_grandchild_in_a_session_of_its_own(lesson: Path) -> None:
    controller, rec_id = _controller_run(lesson, "lone_setsid")
    try:
        assert wait_until(lambda: noted(lesson), 10)
        grandchild = processes(noted(lesson))
        controller.terminate(rec_id)
        assert controller.join([rec_id], timeout=10)
        assert survivors(grandchild, timeout=3) == []
    finally:
        controller.close()
        reap_orphans()


@pytest.mark.parametrize("bound", ["cgroup", "tree"])
def test_adopted_orphans_are_reaped_while_proclab_runs(lesson: Path, bound: str) -> None:
    """A grandchild outlives its parent (so proclab, its subreaper, adopts it), then ends:
    proclab reaps it while it runs, rather than keep a zombie until it exits."""
    proc = subprocess.Popen(
        [
            PROCLAB,
            "run",
            "fam.py:short_orphan",
            "--kwargs",
            repr({"folder": str(lesson / "notes")}),
        ],
        cwd=lesson,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PROCLAB_FAMILY": bound},
    )
    try:
        assert wait_until(lambda: noted(lesson), 20)
        (pid,) = noted(lesson)
        # It ends 0.5 s after it noted itself; proclab looks once a sampler tick (1 s).
        assert wait_until(lambda: not psutil.pid_exists(pid), 10), "the orphan stayed a zombie"
        assert proc.poll() is None  # proclab still runs
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        reap_orphans()


def test_a_child_starts_in_the_family_cgroup() -> None:
    controller = Controller(sample_interval=0.2, grace=0.5).start()
    try:
        (rec_id,) = start_task(controller, "sleep", "(5,)", method="fork")
        pid = controller.row(rec_id).pid
        assert pid is not None
        family = controller.family
        assert family is not None
        expected = "cgroup" if family.bound == "cgroup" else "tree"
        assert bound_of(pid, os.getpid()) == expected
        assert pid in family.members()
    finally:
        controller.close()
    assert controller.family is not None and not controller.family.members()


FALLBACK = """
from pathlib import Path
from proclab.core import family
from proclab.core.controller import Controller
from proclab.core.methods import forget_main_script
from proclab.core.spec import build_spec

if __name__ == "__main__":
    forget_main_script()
    family._cgroup_mount = lambda: Path("/proc")  # a cgroup2 mount where none can be made
    with Controller(sample_interval=0.2, grace=0.5) as controller:
        (rec_id,) = controller.spawn(build_spec("proclab.core.tasks:exit_with", "(0,)"))
        assert controller.join([rec_id], timeout=30)
        print(controller.family.bound, controller.row(rec_id).exitcode, flush=True)
"""


def test_without_a_writable_cgroup_the_tree_holds_the_family(tmp_path: Path) -> None:
    """Where no cgroup can be made (a user without a delegated cgroup), proclab falls
    back to the process tree and runs as before."""
    script = tmp_path / "fallback.py"
    script.write_text(FALLBACK)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["tree", "0"], done.stdout


FIRST_FAMILY = """
import os, time
from proclab.core.family import Family, guardian_pid

def cpu(pid):
    return int(open(f"/proc/{pid}/schedstat").read().split()[0])  # ns on a CPU, exact

family = Family()
guardian = guardian_pid()
before = cpu(guardian)
time.sleep(0.5)
print(guardian, before, cpu(guardian))
family.close()
"""


def test_the_guardian_is_up_before_the_first_family_starts_anything() -> None:
    """Its start-up (an interpreter) does not run beside the first children: when the
    first Family is made, the guardian has finished starting and only waits."""
    done = subprocess.run(
        [sys.executable, "-c", FIRST_FAMILY], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    guardian, before, after = (int(word) for word in done.stdout.split())
    assert guardian > 0
    # Up: what is left is going from closing its ready pipe into its read (microseconds).
    # Still starting, an interpreter has milliseconds to go.
    assert after - before < 1_000_000, f"the guardian used {after - before} ns of CPU after"
