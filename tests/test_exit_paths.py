"""Every way proclab ends leaves no child, grandchild or handler behind, and no zombie.

The app runs in a real pseudo-terminal with children that ignore SIGTERM (and a
grandchild each that does too) and the TCP server with an open connection; then it is
ended by its quit key, Ctrl+C, SIGTERM, SIGHUP, SIGINT or SIGKILL. Every descendant must be
gone within 5 s. The same for `proclab run` and `proclab serve`.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from conftest import reap_orphans
from pty_session import PROCLAB, PtySession, gone
from support import free_port, listening, wait_until

from proclab.core.controller import Controller
from proclab.core.model import ProcState
from proclab.core.spec import build_spec

STUBBORN = """
import multiprocessing, signal, time

def _grandchild(seconds):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(seconds)

def stubborn(seconds=60):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = multiprocessing.Process(target=_grandchild, args=(seconds,))
    grandchild.start()
    print("ready", grandchild.pid, flush=True)
    time.sleep(seconds)
"""

METHODS = ["fork", "forkserver", "spawn"]


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
            "0.5",
            "--serve",
            f"127.0.0.1:{port}",
        ],
        cwd=str(lesson),
        size=(120, 40),
    )
    session.wait_for(b"2 live")
    # every child has started its grandchild; a client holds a connection open
    assert wait_until(lambda: session.output.count(b"ready") >= 2, 30), session.output[-500:]
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"hi")
    assert client.recv(10) == b"HI"
    return session, client


def end(session: PtySession, how: str) -> None:
    if how == "quit key":
        session.send("q")
        session.wait_for(b"still running")
        session.send("y")
    elif how == "ctrl+c":
        session.send(b"\x03")
        session.wait_for(b"still running")
        session.send("y")
    else:
        session.signal(getattr(signal, how))


@pytest.mark.parametrize(
    ("how", "method"),
    [(how, method) for how in ("SIGTERM", "SIGHUP", "SIGKILL") for method in METHODS]
    + [("quit key", "fork"), ("ctrl+c", "forkserver"), ("SIGINT", "spawn")],
)
def test_the_app_leaves_nothing_behind(lesson: Path, how: str, method: str) -> None:
    session, client = start_app(lesson, method)
    try:
        family = session.descendants()
        # 2 children + 2 grandchildren + the connection's handler, besides multiprocessing's helpers
        assert len(family) >= 5, [p.cmdline() for p in family]
        end(session, how)
        session.wait(timeout=20)
        assert gone(family, timeout=5) == [], "outlived proclab"
        if how != "SIGKILL":
            # the grace period was on screen before SIGKILL went to those that ignored SIGTERM
            assert b"sending SIGKILL" in session.output
            raw = session.output
            assert raw.rfind(b"\x1b[?1049l") > raw.rfind(b"\x1b[?1049h") >= 0, (
                "terminal not restored"
            )
    finally:
        client.close()
        session.close()
        reap_orphans()


def test_an_exception_inside_the_app_leaves_nothing_behind() -> None:
    from proclab.tui.app import ProclabApp
    from proclab.tui.launch_app import run_session

    class Broken(ProclabApp):
        def on_mount(self) -> None:  # Textual calls ProclabApp.on_mount too
            self.set_timer(1.5, self.explode)

        def explode(self) -> None:
            raise RuntimeError("a bug inside the app")

    controller = Controller(sample_interval=0.5, grace=0.5)
    spec = build_spec("proclab.core.tasks:ignore_sigterm", "(60,)")
    app = Broken(controller, startup=(spec, 3))
    status = run_session(controller, app, headless=True, size=(80, 24))
    assert status != 0
    assert len(controller.rows()) == 3
    assert all(r.state in (ProcState.KILLED, ProcState.TERMINATED) for r in controller.rows())


@pytest.mark.parametrize("method", METHODS)
def test_sigkill_of_proclab_run_leaves_nothing(lesson: Path, method: str) -> None:
    proc = subprocess.Popen(
        [PROCLAB, "run", "lesson.py:stubborn", "--count", "2", "--method", method],
        cwd=lesson,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ready = [proc.stdout.readline() for _ in range(2)]
        assert all("ready" in line for line in ready), ready
        family = psutil.Process(proc.pid).children(recursive=True)
        proc.kill()
        proc.wait()
        assert gone(family, timeout=5) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reap_orphans()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGHUP])
def test_proclab_serve_leaves_no_handler(how: int) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [PROCLAB, "serve", "--port", str(port), "--method", "fork"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
        proc.wait(timeout=20)
        assert gone(family, timeout=5) == []
    finally:
        for client in clients:
            client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reap_orphans()


def test_paused_children_die_with_proclab(lesson: Path) -> None:
    """A stopped child cannot run its watchdog; the kernel's parent-death SIGCONT wakes it."""
    session = PtySession(
        ["proclab.core.tasks:tick", "--args", "(300,)", "--count", "2", "--method", "forkserver"],
        size=(120, 40),
    )
    try:
        session.wait_for(b"2 live")
        time.sleep(1.0)
        session.send("p")  # pause the selected child
        assert wait_until(
            lambda: any(p.status() == psutil.STATUS_STOPPED for p in session.descendants()), 10
        )
        family = session.descendants()
        session.signal(signal.SIGKILL)
        session.wait(timeout=10)
        assert gone(family, timeout=5) == []
    finally:
        session.close()
        reap_orphans()
