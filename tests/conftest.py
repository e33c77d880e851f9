"""Shared fixtures. The autouse `no_leftover_processes` fails any test that leaves a child,
grandchild or zombie behind: proclab's first promise is that nothing outlives it."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import time
from collections.abc import Iterator

import psutil
import pytest
from hypothesis import settings

from proclab.core import family
from proclab.core.controller import Controller
from proclab.core.methods import forget_main_script

PR_SET_CHILD_SUBREAPER = 36

# No deadline per example: Hypothesis's 200 ms fails a test whose example a loaded
# machine stalled (a worker's garbage collection), and timing belongs in benchmarks/.
settings.register_profile("proclab", deadline=None)
settings.load_profile("proclab")


def pytest_configure(config: pytest.Config) -> None:
    # Snapshots print clock times: make them the same on every machine.
    os.environ["TZ"] = "UTC"
    time.tzset()
    # As proclab's own entry point does: children must not re-run pytest's script.
    forget_main_script()
    # CI's second run makes forkserver the interpreter's default, as Python 3.14 does on
    # Linux, so user code that starts processes of its own behaves as it will for 3.14 users.
    default_method = os.environ.get("PROCLAB_TEST_MP_DEFAULT")
    if default_method:
        multiprocessing.set_start_method(default_method, force=True)
    # Orphans (a grandchild whose parent died) are re-parented to this process instead of
    # to init, so the leftover check below still sees them.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _helper_pids() -> set[int]:
    """This test process's long-lived helpers (multiprocessing's, proclab's guardian): not
    leftovers."""
    return family.helper_pids()


def descendants() -> dict[int, psutil.Process]:
    helpers = _helper_pids()
    return {p.pid: p for p in psutil.Process().children(recursive=True) if p.pid not in helpers}


def reap_orphans() -> None:
    """Zombies re-parented to this (subreaper) process: reap them by pid, never -1."""
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error, ChildProcessError):
            if child.status() == psutil.STATUS_ZOMBIE and child.pid not in _helper_pids():
                os.waitpid(child.pid, os.WNOHANG)


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    before = set(descendants())
    yield
    deadline = time.monotonic() + 5
    while True:
        reap_orphans()
        left = {pid: p for pid, p in descendants().items() if pid not in before}
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if left:
        described = []
        for p in left.values():
            with contextlib.suppress(psutil.Error):
                described.append(f"{p.pid} {p.status()} {' '.join(p.cmdline())[:80]}")
                p.kill()
        time.sleep(0.1)
        reap_orphans()
        pytest.fail(f"processes outlived the test: {described}")


@pytest.fixture
def controller() -> Iterator[Controller]:
    c = Controller(sample_interval=0.2, grace=1.0)
    c.start()
    try:
        yield c
    finally:
        c.close()
