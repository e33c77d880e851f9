"""Start methods: which exist, which is the default, and getting them ready early.

fork in a threaded process is unsafe (a lock held by another thread at fork time stays
held in the child), and proclab always has threads, so the default is forkserver, which
Python 3.14 made the default on Linux too. Every spawn names its method explicitly.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import threading
import warnings
from multiprocessing.context import BaseContext

from proclab.core.defaults import DEFAULT_METHOD, METHODS
from proclab.core.errors import InputError

__all__ = ["DEFAULT_METHOD", "METHODS", "check_method", "context", "prepare"]


# Imported once in the fork server, inherited by every child it forks. ("__main__" would
# be pointless: up to 3.13 the fork server never receives the main path it would need, so
# each child still re-runs the parent's main script, as spawn children do. proclab's own
# script only imports its small CLI module.)
FORKSERVER_PRELOAD = [
    "proclab.core.forkserver_guard",
    "proclab.core.bootstrap",
    "proclab.core.tasks",
]

_ready = threading.Lock()
_prepared = False


def check_method(method: str) -> str:
    if method not in METHODS:
        raise InputError("method", f"{method!r} is not one of {', '.join(METHODS)}")
    return method


def context(method: str) -> BaseContext:
    return multiprocessing.get_context(check_method(method))


def prepare() -> None:
    """Start the resource tracker and the fork server now, while sys.stderr is still a real
    file: started lazily from inside a Textual app they fail with "bad value(s) in
    fds_to_keep" (textual issue #3593)."""
    global _prepared
    with _ready:
        if _prepared:
            return
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
