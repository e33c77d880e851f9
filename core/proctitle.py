"""Process titles: what `ps`, top and htop show for a child, instead of every child's
`python -B -c from multiprocessing.forkserver import main…`.

The setproctitle package does it (it rewrites the process's argv area, and on Linux its
`comm` name too). Its package `__init__` imports logging, which measured 6 ms of a spawn
child's start here; its C module alone loads in about 0.4 ms, so that is what is loaded.
proclab imports this module before it starts children, and the fork server preloads it, so
fork and forkserver children find it loaded; a spawn child loads it when it sets its title.

Nothing here calls it in proclab or a fork server: its first call, even getproctitle(),
rewrites the process's own command line as one string and its comm as that string's start
(`ps -C python` would no longer find proclab's fork server). Each child makes that first
call as it sets its title (0.04 ms of a forkserver child, stamped).

That first call also copies the whole environment elsewhere, to make room for a title
longer than the command line, and blanks the original, which is what other tools read
(/proc/PID/environ: `ps e`, psutil). Where the title fits in the command line it is told
not to (SPT_NOENV): the child's environment stays readable, and its title took 0.04-0.06
ms less of a forkserver child's 0.11-0.15 ms (stamped in 200 children, alternated).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable

__all__ = ["set_title", "title_for"]


def _load() -> Callable[[str], None] | None:
    """setproctitle's own function, or None where it is not installed or not built."""
    try:
        package = importlib.machinery.PathFinder.find_spec("setproctitle")
        if package is None or not package.submodule_search_locations:
            return None
        spec = importlib.machinery.PathFinder.find_spec(
            "setproctitle._setproctitle", list(package.submodule_search_locations)
        )
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        setproctitle: Callable[[str], None] = module.setproctitle
        return setproctitle
    except (ImportError, OSError, AttributeError):
        return None


_setproctitle = _load()

# Bytes of this process's command line, in which setproctitle writes a title when it is
# not to move the environment. Read where this module is loaded (proclab, the fork
# server, a spawn child): a fork child has the command line of the process it was forked
# from, and inherits the figure.
_COMMAND_LINE = sum(len(os.fsencode(arg)) + 1 for arg in sys.orig_argv)
_NOENV_SET = "SPT_NOENV" in os.environ  # the user's own: left as it is
# Whether setproctitle's first call was made here or in the process this one was forked
# from (its C module's set-up is inherited with the memory, as this is).
_set_up = False


def title_for(name: str, target: str) -> str:
    """The name first: `top` and `ps -e` show only the first 15 bytes (the kernel's comm)."""
    return f"{name}: {target} (proclab)"


def set_title(title: str) -> bool:
    """Set this process's title; False where it cannot be set."""
    global _set_up
    if _setproctitle is None:
        return False
    if _set_up and title.isascii():
        # Only the title to write (a TCP handler or pool worker, forked by its titled
        # server process): SPT_NOENV would change nothing now, and the checks below took
        # such a child 40 us of its 65 (12 of 19 page faults; stamped in 200 fork children).
        _setproctitle(title)
        return True
    # A target's file name need not be UTF-8 (os.fsdecode leaves surrogates in it), and
    # setproctitle takes only text it can encode: the child would end before its target.
    encoded = title.encode("utf-8", "backslashreplace")
    title = encoded.decode()
    # Read once per process, and not the user's to see: unset again at once.
    fits = not _NOENV_SET and len(encoded) < _COMMAND_LINE - 1
    if fits:
        os.putenv("SPT_NOENV", "1")
    try:
        _setproctitle(title)
    finally:
        if fits:
            os.unsetenv("SPT_NOENV")
    _set_up = True
    return True
