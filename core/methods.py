"""Start methods: which exist, which is the default, and getting them ready early.

fork in a threaded process is unsafe (a lock held by another thread at fork time stays
held in the child), and proclab always has threads, so the default is forkserver, which
Python 3.14 made the default on Linux too. Every spawn names its method explicitly.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from multiprocessing.context import ForkContext, ForkServerContext, SpawnContext
from typing import cast

import proclab.core.proctitle  # noqa: F401  (loaded once here, inherited by fork children)
from proclab.core.defaults import DEFAULT_METHOD, METHODS, StartMethod
from proclab.core.errors import InputError

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "check_method",
    "context",
    "forget_main_script",
    "fork_server_pid",
    "prepare",
    "stop_fork_server",
]


# Imported once in the fork server, inherited by every child it forks. ("__main__" would
# be pointless: up to 3.13 the fork server never receives the main path it would need, so
# each child still re-runs the parent's main script, as spawn children do. proclab's own
# script only imports its small CLI module.)
FORKSERVER_PRELOAD = [
    "proclab.core.forkserver_guard",  # first: the fork server dies with proclab from here on
    # Where the fds a child is passed (its output pipes: bootstrap.InheritedFd) are
    # unpickled from. Not loaded in the fork server, each child imported it: 0.57 ms of a
    # forkserver child's start + join of 2.7 (benchmarks/spawn_floor.py).
    "multiprocessing.popen_forkserver",
    "proclab.core.bootstrap",
    "proclab.core.proctitle",
    "proclab.core.tasks",
]

_ready = threading.Lock()
_prepared = False


def forget_main_script() -> None:
    """Stop spawn and forkserver children from re-running this process's main script.

    multiprocessing makes every spawn and forkserver child import the parent's __main__
    (that is why the lesson needs `if __name__ == '__main__':`). A proclab child never
    needs it: its bootstrap imports the target itself. Measured here, a host script that
    imports the controller made each child spend ~0.1 s of CPU on it, and starting 600
    children took 30 s instead of 6. Called by proclab's own entry points once their
    script has been read; without a __file__ the children import nothing as main.
    """
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__spec__", None) is None and hasattr(main, "__file__"):
        del main.__file__


def check_method(method: str) -> StartMethod:
    for known in METHODS:  # a StartMethod to a checker
        if method == known:
            return known
    raise InputError("method", f"{method!r} is not one of {', '.join(METHODS)}")


def context(method: str) -> ForkContext | ForkServerContext | SpawnContext:
    # typeshed types get_context per literal, but a union of them as BaseContext (which
    # has no Process): the method is one of the three here.
    started = multiprocessing.get_context(check_method(method))
    return cast("ForkContext | ForkServerContext | SpawnContext", started)


# multiprocessing keeps its fork server private (`forkserver._forkserver`); it is read here
# only. (The bootstrap forgets an inherited one by itself: spawn children import it bare.)


def fork_server_pid() -> int | None:
    """The pid of this process's fork server; None before one was started."""
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    return getattr(server, "_forkserver_pid", None) or None


def stop_fork_server() -> None:
    """End this process's fork server and wait for it; nothing if it has none or it is
    gone already."""
    stop = getattr(getattr(multiprocessing.forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        with contextlib.suppress(OSError):  # already gone: nothing to wait for
            stop()


@contextlib.contextmanager
def _helpers_write_nowhere() -> Iterator[None]:
    """The resource tracker and the fork server inherit fds 1 and 2 from the process that
    starts them, and outlive it: the tracker warns about a killed child's Pool ("leaked
    semaphore objects") after proclab has exited, the fork server prints a traceback when
    proclab exits while it reads a request. proclab's terminal is its own, so they get
    /dev/null (fork server children point fds 1 and 2 at proclab's pipes as they start)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    saved = [os.dup(fd) for fd in (1, 2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    # Inside a Textual app sys.stderr is its capture, whose fileno() is -1: the tracker
    # passed that on, and failed with "bad value(s) in fds_to_keep" (experiments in a
    # replay or a watch, which start their helpers only then). They get fd 2 itself,
    # /dev/null by then.
    stderr = sys.stderr
    fd_2 = None if _has_fd(stderr) else open(2, "w", closefd=False)  # noqa: SIM115
    if fd_2 is not None:
        sys.stderr = fd_2
    try:
        for fd in (1, 2):
            os.dup2(devnull, fd)
        yield
    finally:
        if fd_2 is not None:
            sys.stderr = stderr
            fd_2.close()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def _has_fd(stream: object) -> bool:
    try:
        return stream.fileno() >= 0  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def fork_server_shadowed(folder: str | None = None) -> str:
    """Why a fork server may have failed to start, where a file in the folder it started
    in (first on its path) has the name of a module of Python's own, which it imports
    before any of the user's: said after a start's error (it was "EOFError: unexpected
    EOF"), else ""."""
    try:
        here = folder or os.getcwd()
        names = sorted(
            name[:-3]
            for name in os.listdir(here)
            if name.endswith(".py") and name[:-3] in sys.stdlib_module_names
        )
    except OSError:
        return ""
    if not names:
        return ""
    files = ", ".join(f"{name}.py" for name in names[:3])
    has, it = ("has", "it") if len(names) == 1 else ("have", "them")
    return (
        f" ({files} in {here} {has} the name of Python's own module, which the fork server"
        f" imports from that folder first: rename {it}, or use --method fork or spawn)"
    )


def prepare() -> None:
    """Start the resource tracker and the fork server now: started lazily by
    multiprocessing from inside a Textual app they fail with "bad value(s) in
    fds_to_keep" (textual issue #3593). Called from inside one, they are given fd 2."""
    global _prepared
    with _ready:
        if _prepared:
            return
        with _helpers_write_nowhere():
            multiprocessing.resource_tracker.ensure_running()
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
            multiprocessing.forkserver.ensure_running()
        # proclab chooses fork knowingly and says so per process; Python's warning about
        # forking a threaded process would only reach the terminal under the interface.
        warnings.filterwarnings(
            "ignore",
            message=".*use of fork\\(\\) may lead to deadlocks.*",
            category=DeprecationWarning,
        )
        _prepared = True
