"""Helpers for the tests (imported as `support`: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

from proclab.core.controller import Controller
from proclab.core.model import ProcessRow
from proclab.core.spec import build_spec

TASKS = "proclab.core.tasks"


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick), for a server started later."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def kill_if_running(proc: subprocess.Popen[Any]) -> None:
    """For a test's `finally`: a process still running when the test failed is killed and
    reaped, so that it outlives neither the test nor its pipes."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def wait_until(
    predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.01
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


async def wait_for(pilot: object, predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Let a Textual app under a Pilot run until `predicate()` holds."""
    from textual.pilot import WaitForScreenTimeout  # support serves tests without an app too

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        try:
            await pilot.pause(0.05)  # type: ignore[attr-defined]
        except WaitForScreenTimeout:
            # A busy app on a loaded machine may hold messages past the pilot's 30 s: what
            # the test waits for is the predicate, with its own deadline.
            continue


def run_task(
    controller: Controller,
    function: str,
    args: str = "",
    kwargs: str = "",
    *,
    method: str = "forkserver",
    timeout: float = 20.0,
    **options: object,
) -> ProcessRow:
    """Start one built-in task, wait for it to end, return its final row."""
    spec = build_spec(f"{TASKS}:{function}", args, kwargs, method=method, **options)  # type: ignore[arg-type]
    (rec_id,) = controller.spawn(spec)
    assert controller.join([rec_id], timeout=timeout), f"{function} did not end in {timeout} s"
    return controller.row(rec_id)


def start_task(
    controller: Controller,
    function: str,
    args: str = "",
    kwargs: str = "",
    *,
    method: str = "forkserver",
    count: int = 1,
    **options: object,
) -> tuple[int, ...]:
    """Start a built-in task and wait until its processes exist."""
    spec = build_spec(f"{TASKS}:{function}", args, kwargs, method=method, **options)  # type: ignore[arg-type]
    ids = controller.spawn(spec, count)
    assert controller.wait_started(ids)
    return ids


def lines(controller: Controller, rec_id: int, stream: str | None = None) -> list[str]:
    return [o.text for o in controller.output(rec_id) if stream is None or o.stream == stream]


def grandchild_pid(controller: Controller, rec_id: int, timeout: float = 10.0) -> int:
    """The pid the with_grandchild task reports for its grandchild."""

    def reported() -> list[str]:
        return [t for t in lines(controller, rec_id) if t.startswith("started grandchild")]

    assert wait_until(reported, timeout), "the task never reported its grandchild"
    return int(reported()[0].split()[-1])


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port right now."""
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        return True
    except OSError:
        return False


def as_unprivileged_user(function: Callable[[], object]) -> object:
    """`function()`'s result, called in a fork of this process that runs as the user
    `nobody` (as root, CAP_DAC_OVERRIDE writes read-only files: CI runs as root). Its
    result must pickle; an exception in it is raised here, as text."""
    import grp
    import pickle
    import pwd
    import traceback

    if os.geteuid() != 0:
        return function()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root for good, do the work, hand the result back
        status = 0
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(grp.getgrnam("nogroup").gr_gid)
            os.setuid(pwd.getpwnam("nobody").pw_uid)
            outcome: tuple[bool, object] = (True, function())
        except BaseException:
            outcome = (False, traceback.format_exc())
        try:
            with os.fdopen(write, "wb") as pipe:
                pickle.dump(outcome, pipe)
        except BaseException:
            status = 1
        os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    ok, value = pickle.loads(data)
    if not ok:
        raise AssertionError(f"as the user nobody: {value}")
    return value


def handlers(controller: Controller) -> list[ProcessRow]:
    """The rows of the TCP server's handler processes, one per client ("tcp 127.0.0.1:…"):
    not its server process ("tcp server") nor a pool's workers."""
    return [
        r
        for r in controller.rows()
        if r.tag and r.tag.startswith("tcp ") and r.tag != "tcp server" and "pool" not in r.tag
    ]
