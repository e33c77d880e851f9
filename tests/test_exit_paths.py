"""Every way proclab ends leaves no child, grandchild or handler behind, and no zombie.

The app runs in a real pseudo-terminal with children that ignore SIGTERM (and a
grandchild each that does too) and the TCP server with an open connection; then it is
ended by its quit key, Ctrl+C, SIGTERM, SIGHUP, SIGINT or SIGKILL. Every descendant must be
gone within 5 s. The same for `proclab run` and `proclab serve`.

The stubborn children write down every signal they receive (and survive it), so SIGKILL is
the only way they can end; the kernel tells when each ended (a pidfd), and proclab's
recording tells whether proclab reaped it, with what exit code, before it exited itself.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import reap_orphans
from pty_session import PROCLAB, Deaths, PtySession, gone
from support import free_port, kill_if_running, listening, wait_until

from proclab.core.controller import Controller
from proclab.core.model import ProcState
from proclab.core.spec import build_spec

STUBBORN = """
import multiprocessing, os, signal, time

HERE = os.path.dirname(os.path.abspath(__file__))
# Every signal whose default would end the process: noted, then survived. Only SIGKILL
# (which no process can catch) can end one of these.
ENDING = [
    signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
    signal.SIGUSR2, signal.SIGALRM, signal.SIGPIPE, signal.SIGXCPU, signal.SIGXFSZ,
    signal.SIGVTALRM, signal.SIGPROF, signal.SIGIO, signal.SIGPWR,
    *range(signal.SIGRTMIN, signal.SIGRTMAX + 1),
]

def _note(signum, frame):
    with open(os.path.join(HERE, f"signals-{os.getpid()}"), "a") as f:
        f.write(f"{signum} {time.monotonic()}\\n")

def _survive_all():
    for s in ENDING:
        signal.signal(s, _note)

def _grandchild(seconds, armed):
    _survive_all()
    armed.set()
    time.sleep(seconds)

def stubborn(seconds=60):
    _survive_all()
    armed = multiprocessing.Event()
    grandchild = multiprocessing.Process(target=_grandchild, args=(seconds, armed))
    grandchild.start()
    armed.wait()  # the family is counted in once both note their signals
    with open(os.path.join(HERE, f"family-{os.getpid()}"), "w") as f:
        f.write(f"{os.getpid()} {grandchild.pid}")
    print("ready", grandchild.pid, flush=True)
    time.sleep(seconds)
"""

METHODS = ["fork", "forkserver", "spawn"]
GRACE = 0.5
# How late SIGKILL may come after the grace period on a loaded machine. The children's
# own watchdog (their last resort once proclab has gone) would take 5 s longer.
MARGIN = 2.5


@pytest.fixture
def lesson(tmp_path: Path) -> Path:
    (tmp_path / "lesson.py").write_text(STUBBORN)
    return tmp_path


def start_app(lesson: Path, method: str) -> tuple[PtySession, socket.socket]:
    port = free_port()
    session = PtySession(
        [
            "lesson.py:stubborn",
            "--count",
            "2",
            "--method",
            method,
            "--grace",
            str(GRACE),
            "--serve",
            f"127.0.0.1:{port}",
            "--record",
            "record.jsonl",
        ],
        cwd=str(lesson),
        size=(120, 40),
    )
    session.wait_for(b"3 live")  # the two children and the TCP server's process
    # every child has started its grandchild; a client holds a connection open
    assert wait_until(lambda: len(stubborn_family(lesson)) == 2, 30), session.output[-500:]
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"hi")
    assert client.recv(10) == b"HI"
    return session, client


def stubborn_family(lesson: Path) -> dict[int, int]:
    """Each stubborn child's pid, and its grandchild's."""
    pairs = [f.read_text().split() for f in lesson.glob("family-*")]
    return {int(child): int(grandchild) for child, grandchild in pairs if grandchild}


def signals_received(lesson: Path, pid: int) -> list[tuple[int, float]]:
    path = lesson / f"signals-{pid}"
    if not path.exists():
        return []
    return [(int(s), float(t)) for s, t in (line.split() for line in path.read_text().splitlines())]


def reaped_by_proclab(lesson: Path) -> dict[int, int]:
    """pid -> exit code of every child proclab saw end (its recording's Exited events)."""
    exits = {}
    for line in (lesson / "record.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry.get("type") == "Exited":  # the first line is a header
            row = entry["event"]["row"]
            exits[row["pid"]] = row["exitcode"]
    return exits


def end(session: PtySession, how: str) -> float:
    """End proclab; returns the moment the last key or the signal was sent."""
    if how in ("quit key", "ctrl+c"):
        session.send("q" if how == "quit key" else b"\x03")
        session.wait_for(b"End and quit")  # the question's button: its text wraps
        sent = time.monotonic()
        session.send("y")
        return sent
    sent = time.monotonic()
    session.signal(getattr(signal, how))
    return sent


@pytest.mark.parametrize(
    ("how", "method"),
    [(how, method) for how in ("SIGTERM", "SIGHUP", "SIGKILL") for method in METHODS]
    + [("quit key", "fork"), ("ctrl+c", "forkserver"), ("SIGINT", "spawn")],
)
def test_the_app_leaves_nothing_behind(lesson: Path, how: str, method: str) -> None:
    session, client = start_app(lesson, method)
    deaths = None
    try:
        family = session.descendants()
        # 2 children + 2 grandchildren + the connection's handler, besides multiprocessing's helpers
        assert len(family) >= 5, [p.cmdline() for p in family]
        children = stubborn_family(lesson)
        stubborn = [*children, *children.values()]
        deaths = Deaths([*stubborn, session.pid])
        sent = end(session, how)
        session.wait(timeout=20)
        assert gone(family, timeout=5) == [], "outlived proclab"
        assert wait_until(lambda: len(deaths.at) == len(stubborn) + 1, 5)
        proclab_ended = deaths.at[session.pid]
        if how == "SIGKILL":
            # Nothing could be sent by proclab: each child's watchdog ended its family.
            for pid in stubborn:
                assert signals_received(lesson, pid) == [], pid
                # (as proclab's files close, a moment before the kernel reports it ended)
                assert sent <= deaths.at[pid] <= proclab_ended + MARGIN, pid
            return
        exits = reaped_by_proclab(lesson)
        for pid in children:
            # reaped by proclab, so ended while it still ran; -9: by SIGKILL
            assert exits.get(pid) == -signal.SIGKILL, (pid, exits)
        for pid in stubborn:
            received = signals_received(lesson, pid)
            assert received, f"{pid} never got SIGTERM"
            term = received[0][1]
            # SIGKILL came after the grace period, and not long after it
            assert sent + GRACE <= deaths.at[pid] <= term + GRACE + MARGIN, (
                pid,
                deaths.at[pid] - term,
            )
            assert deaths.at[pid] <= proclab_ended, pid
            # SIGTERM from proclab, nothing else (the terminal's Ctrl+C never reaches them)
            assert [s for s, _ in received] == [signal.SIGTERM], (pid, received)
        # the grace period was on screen before SIGKILL went to those that ignored SIGTERM
        assert b"sending SIGKILL" in session.output
        raw = session.output
        assert raw.rfind(b"\x1b[?1049l") > raw.rfind(b"\x1b[?1049h") >= 0, "screen not restored"
        assert raw.rfind(b"\x1b[?25h") > raw.rfind(b"\x1b[?25l") >= 0, "cursor left hidden"
    finally:
        if deaths is not None:
            deaths.close()
        client.close()
        session.close()
        reap_orphans()


def test_an_exception_inside_the_app_leaves_nothing_behind() -> None:
    from proclab.tui.app import ProclabApp
    from proclab.tui.commands.app import run_session

    class Broken(ProclabApp):
        def on_mount(self) -> None:  # Textual calls ProclabApp.on_mount too
            self.set_interval(0.1, self.explode_once_armed)

        def explode_once_armed(self) -> None:
            rows = controller.rows()
            # each child said it ignores SIGTERM: only SIGKILL can end it now
            if len(rows) == 3 and all(controller.output(r.id) for r in rows):
                raise RuntimeError("a bug inside the app")

    controller = Controller(sample_interval=0.5, grace=0.5)
    spec = build_spec("proclab.core.tasks:ignore_sigterm", "(60,)")
    app = Broken(controller, startup=(spec, 3))
    status = run_session(controller, app, headless=True, size=(80, 24))
    assert status != 0
    assert [(r.state, r.exitcode) for r in controller.rows()] == [(ProcState.KILLED, -9)] * 3


@pytest.mark.parametrize("method", METHODS)
def test_sigkill_of_proclab_run_leaves_nothing(lesson: Path, method: str) -> None:
    proc = subprocess.Popen(
        [PROCLAB, "run", "lesson.py:stubborn", "--count", "2", "--method", method],
        cwd=lesson,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deaths = None
    try:
        ready = [proc.stdout.readline() for _ in range(2)]
        assert all("ready" in line for line in ready), ready
        family = psutil.Process(proc.pid).children(recursive=True)
        children = stubborn_family(lesson)
        stubborn = [*children, *children.values()]
        deaths = Deaths(stubborn)
        proc.kill()
        proc.wait()
        killed = time.monotonic()
        reaped: dict[int, int] = {}
        assert gone(family, timeout=5, reaped=reaped) == []
        assert wait_until(lambda: len(deaths.at) == len(stubborn), 5)
        for pid in stubborn:
            # the children's watchdogs, at once: by SIGKILL, no SIGTERM first
            assert signals_received(lesson, pid) == [], pid
            assert deaths.at[pid] <= killed + MARGIN, pid
            assert reaped.get(pid, -signal.SIGKILL) == -signal.SIGKILL, (pid, reaped)
    finally:
        if deaths is not None:
            deaths.close()
        kill_if_running(proc)
        reap_orphans()


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_proclab_serve_leaves_no_handler(how: int) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [PROCLAB, "serve", "--port", str(port), "--method", "fork"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    clients = []
    try:
        assert wait_until(lambda: listening(port), 20)
        for _ in range(3):
            client = socket.create_connection(("127.0.0.1", port))
            client.sendall(b"x")
            assert client.recv(1) == b"X"
            clients.append(client)
        family = psutil.Process(proc.pid).children(recursive=True)
        assert len(family) >= 3
        proc.send_signal(how)
        out, _ = proc.communicate(timeout=20)
        assert gone(family, timeout=5) == []
        if how == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
        else:
            # it stopped as it says it does: the server first, every handler ended
            assert proc.returncode == 0, out[-500:]
            assert "stopped" in out, out[-500:]
        for client in clients:  # every connection was closed, none left half-open
            client.settimeout(5)
            assert client.recv(10) == b""
    finally:
        for client in clients:
            client.close()
        kill_if_running(proc)
        reap_orphans()


# A child that would outlive a closed output pipe: it ignores SIGPIPE and write errors, so
# once paused, only the wake-up and watchdog proclab gives every child can end it.
TICKER = """
import signal, time

def tick(seconds=300):
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            print("tick", flush=True)
        except OSError:
            pass
        time.sleep(0.1)
"""


def test_paused_children_die_with_proclab(tmp_path: Path) -> None:
    """A stopped child cannot run its watchdog; the kernel's parent-death signal is
    SIGKILL, which ends a stopped process without waking it."""
    (tmp_path / "ticker.py").write_text(TICKER)
    session = PtySession(
        ["ticker.py:tick", "--count", "2", "--method", "forkserver"],
        cwd=str(tmp_path),
        size=(120, 40),
    )
    deaths = None
    try:
        session.wait_for(b"2 live")
        time.sleep(1.0)
        session.send("p")  # pause the selected child
        family = session.descendants()
        assert wait_until(lambda: any(p.status() == psutil.STATUS_STOPPED for p in family), 10), (
            "nothing was paused"
        )
        paused = [p.pid for p in family if p.status() == psutil.STATUS_STOPPED]
        deaths = Deaths(paused)
        session.signal(signal.SIGKILL)
        session.wait(timeout=10)
        killed = time.monotonic()
        assert gone(family, timeout=5) == []
        assert wait_until(lambda: len(deaths.at) == len(paused), 5)
        assert all(deaths.at[pid] <= killed + MARGIN for pid in paused), (killed, deaths.at)
    finally:
        if deaths is not None:
            deaths.close()
        session.close()
        reap_orphans()


def test_a_zombie_is_left_over_until_it_is_reaped() -> None:
    """What these tests count as gone: a zombie is not, until its parent reaps it; an
    orphan re-parented to the test process is reaped by it, as init would."""
    code = (
        "import os, sys, time\n"
        "zombie = os.fork()\n"
        "if zombie == 0: os._exit(0)\n"
        "orphan = os.fork()\n"
        "if orphan == 0: time.sleep(0.5); os._exit(7)\n"
        "print(zombie, orphan, flush=True)\n"
        "time.sleep(float(sys.argv[1]))\n"
        "os.waitpid(zombie, 0)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code, "3"], stdout=subprocess.PIPE, text=True)
    try:
        zombie, orphan = (psutil.Process(int(pid)) for pid in parent.stdout.readline().split())
        assert gone([zombie], timeout=0.5) == [zombie], "an unreaped zombie counted as gone"
        reaped: dict[int, int] = {}
        assert gone([zombie, orphan], timeout=20, reaped=reaped) == []
        assert parent.wait(timeout=20) == 0
        assert reaped == {orphan.pid: 7}  # re-parented to this process, which reaped it
    finally:
        parent.kill()
        parent.wait()


async def test_events_arriving_while_the_app_closes_raise_nothing() -> None:
    """The controller's threads queue events until the app unsubscribes: a drain that runs
    while the app's screens are being taken down drops them instead of raising (it raised
    NoMatches for the CPU pane when the machine was slow enough)."""
    from fakes import NOW, FakeController
    from textual.screen import Screen

    from proclab.tui.app import ProclabApp

    fake = FakeController()
    app = ProclabApp(fake, clock=lambda: NOW)
    drained_while_closing = []
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        prune = app._prune

        def prune_then_drain(*nodes, parent=None):  # type: ignore[no-untyped-def]
            removal = prune(*nodes, parent=parent)
            if not (nodes and isinstance(nodes[0], Screen)):
                return removal

            async def then_drain() -> None:
                await removal
                fake.emit_history()  # the sampler ticks meanwhile
                app._drain()  # and the drain timer fires
                drained_while_closing.append(True)

            return then_drain()

        app._prune = prune_then_drain  # type: ignore[method-assign]
    assert drained_while_closing
