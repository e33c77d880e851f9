"""Names a person can tell apart, in proclab's table and in every other tool: copies of one
name are numbered, the child's own Process.name is what its row says, `ps` and htop show
each child's name and target (its process title), TCP handlers are named after their
client, and a restart after a rename starts under the new name. Real children."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from pty_session import PROCLAB
from support import TASKS, handlers, lines, wait_until

from proclab.core import proctitle
from proclab.core.controller import Controller
from proclab.core.server.tcp import ServerConfig
from proclab.core.spec import build_spec

WHO = """\
import multiprocessing
import time


def who(seconds=30):
    print(multiprocessing.current_process().name, flush=True)
    time.sleep(seconds)
"""


@pytest.fixture
def who(tmp_path: Path) -> str:
    (tmp_path / "who.py").write_text(WHO)
    return str(tmp_path / "who.py")


def said(controller: Controller, rec_id: int) -> str:
    assert wait_until(lambda: lines(controller, rec_id), 20), "the child said nothing"
    return lines(controller, rec_id)[0]


def title(pid: int) -> str:
    return " ".join(psutil.Process(pid).cmdline()).strip()


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_copies_are_numbered_and_each_child_knows_its_name(
    controller: Controller, who: str, method: str
) -> None:
    ids = controller.spawn(build_spec(f"{who}:who", name="mine", method=method), 3)
    names = [controller.row(i).name for i in ids]
    assert names == ["mine-1", "mine-2", "mine-3"]
    for rec_id, name in zip(ids, names, strict=True):
        assert said(controller, rec_id) == name  # multiprocessing.current_process().name
        pid = controller.row(rec_id).pid
        assert pid is not None
        # what ps and htop show (cmdline), and top / ps -e (the kernel's 15-byte comm)
        assert title(pid) == f"{name}: who.py:who (proclab)"
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        assert comm == f"{name}: who.py:who"[:15]
    more = controller.spawn(build_spec(f"{who}:who", "(0,)", name="mine", method=method), 2)
    assert [controller.row(i).name for i in more] == ["mine-4", "mine-5"]


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_titled_child_keeps_its_environment_for_other_tools(who: str, method: str) -> None:
    """The title goes where the command line was, and /proc/PID/environ (ps e, psutil)
    still lists the child's variables: setproctitle moves them away to make room only for
    a title longer than the command line. Through `proclab run`: this test's own process
    may have had its title set already (pytest-xdist sets it), and a fork child inherits
    what that did."""
    run = subprocess.Popen(
        [PROCLAB, "run", f"{who}:who", "--name", "envy", "--method", method],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def titled() -> psutil.Process | None:
            for process in psutil.Process(run.pid).children(recursive=True):
                try:
                    if title(process.pid) == "envy: who.py:who (proclab)":
                        return process
                except psutil.Error:  # one of proclab's helpers, gone meanwhile
                    continue
            return None

        assert wait_until(titled, 20), "no titled child"
        child = titled()
        assert child is not None
        environment = child.environ()
        assert environment.get("PATH") == os.environ["PATH"]
        assert "SPT_NOENV" not in environment
    finally:
        run.terminate()
        run.wait(timeout=20)


def test_a_title_longer_than_the_command_line_is_whole(
    controller: Controller, who: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proctitle, "_COMMAND_LINE", 8)  # a fork child inherits it
    (rec_id,) = controller.spawn(build_spec(f"{who}:who", name="long-title", method="fork"))
    said(controller, rec_id)
    pid = controller.row(rec_id).pid
    assert pid is not None
    assert title(pid) == "long-title: who.py:who (proclab)"
    assert "SPT_NOENV" not in psutil.Process(pid).environ()


RETITLED = """
import os
from proclab.core import proctitle
proctitle.set_title("parent: x (proclab)")  # as a TCP server process sets its own
for wanted in ("child: y (proclab)", "ch\u00efld: \u00e9 (proclab)", "last: z (proclab)"):
    pid = os.fork()
    if pid == 0:
        proctitle.set_title(wanted)
        with open("/proc/self/cmdline", "rb") as f:
            shown = f.read().split(b"\\0")[0].decode()
        with open("/proc/self/environ", "rb") as f:
            readable = b"PATH=" in f.read()
        print(shown == wanted, readable, flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
"""


def test_a_fork_child_of_a_titled_process_is_retitled_whole() -> None:
    """A TCP handler or pool worker is forked by its titled server process, and only
    writes its own title there (proctitle's short way): whole, ASCII or not, and its
    environment still where other tools read it."""
    out = subprocess.run(
        [sys.executable, "-c", RETITLED], capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == ["True True"] * 3


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_a_target_file_whose_name_is_not_utf8_runs_and_is_titled(
    controller: Controller, tmp_path: Path, method: str
) -> None:
    """A file name is bytes: one that is not UTF-8 reaches Python with surrogates in it,
    which setproctitle refused, and the child ended in proclab's bootstrap."""
    path = os.path.join(os.fsencode(tmp_path), b"who\xff.py")
    with open(path, "w") as f:
        f.write(WHO)
    (rec_id,) = controller.spawn(build_spec(f"{os.fsdecode(path)}:who", method=method))
    row = controller.row(rec_id)
    assert said(controller, rec_id) == row.name, controller.row(rec_id).error
    pid = controller.row(rec_id).pid
    assert pid is not None
    assert title(pid) == f"{row.name}: who\\udcff.py:who (proclab)"


def test_one_child_keeps_its_name_and_a_default_name_is_its_title(controller: Controller) -> None:
    (named,) = controller.spawn(build_spec(f"{TASKS}:sleep", "(30,)", name="process-2"))
    (default,) = controller.spawn(build_spec(f"{TASKS}:sleep", "(30,)"))
    assert controller.wait_started([named, default])
    assert controller.row(named).name == "process-2"
    row = controller.row(default)
    assert row.name.startswith("ForkServerProcess-")
    expected = {
        named: f"process-2: {TASKS}:sleep (proclab)",
        default: f"{row.name}: {TASKS}:sleep (proclab)",
    }
    for rec_id, text in expected.items():
        pid = controller.row(rec_id).pid
        assert pid is not None
        assert wait_until(lambda pid=pid, text=text: title(pid) == text), title(pid)


def test_proclab_and_its_fork_server_keep_their_own_names() -> None:
    """Only children are titled: proclab's own process and its fork server keep the name
    and the command line they started with, as `ps -C`, pgrep and htop find them
    (setproctitle's first call, even a getproctitle, rewrites both)."""
    run = subprocess.Popen(
        [PROCLAB, "run", f"{TASKS}:sleep", "--args", "(30,)", "--method", "forkserver"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proclab = psutil.Process(run.pid)

        def fork_server() -> psutil.Process | None:
            found = [p for p in proclab.children() if "forkserver" in " ".join(p.cmdline())]
            return found[0] if found and found[0].children() else None  # its child runs

        assert wait_until(fork_server, 20), "no fork server with a child"
        server = fork_server()
        assert server is not None

        def own_name(process: psutil.Process) -> tuple[list[bytes], str]:
            with open(f"/proc/{process.pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
            with open(f"/proc/{process.pid}/comm") as f:
                return args, f.read().strip()

        args, comm = own_name(proclab)
        assert len(args) > 2 and comm == "proclab", (args, comm)  # not one string
        args, comm = own_name(server)
        assert len(args) > 2 and comm == Path(args[0].decode()).name[:15], (args, comm)
    finally:
        run.terminate()
        run.wait(timeout=20)


def test_titles_can_be_left_alone(who: str) -> None:
    with Controller(sample_interval=0.2, grace=1.0, titles=False) as controller:
        (rec_id,) = controller.spawn(build_spec(f"{who}:who", method="spawn"))
        said(controller, rec_id)
        pid = controller.row(rec_id).pid
        assert pid is not None
        assert "(proclab)" not in title(pid) and "multiprocessing" in title(pid)


def test_a_restart_after_a_rename_starts_under_the_new_name(
    controller: Controller, who: str
) -> None:
    (rec_id,) = controller.spawn(build_spec(f"{who}:who", "(0,)"))
    assert controller.join([rec_id], timeout=20)
    controller.rename(rec_id, "renamed")
    controller.restart(rec_id)
    (new,) = (r.id for r in controller.rows() if r.id != rec_id)
    assert controller.row(new).name == "renamed"
    assert said(controller, new) == "renamed"
    assert controller.join([new], timeout=20)


def test_tcp_handlers_are_named_after_their_client(controller: Controller) -> None:
    address = controller.server.start(ServerConfig(port=0, method="fork"))
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as client:
        client.sendall(b"hi\n")
        assert client.recv(10) == b"HI\n"
        me = "{}:{}".format(*client.getsockname()[:2])
        assert wait_until(lambda: handlers(controller), 5)  # told a moment after the echo
        handler = handlers(controller)[0]
        assert handler.name == f"tcp {me}"
        assert handler.pid is not None
        assert title(handler.pid).startswith(f"tcp {me}: ")
    controller.server.stop("test over")
