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
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
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


def title_for(name: str, target: str) -> str:
    """The name first: `top` and `ps -e` show only the first 15 bytes (the kernel's comm)."""
    return f"{name}: {target} (proclab)"


def set_title(title: str) -> bool:
    """Set this process's title; False where it cannot be set."""
    if _setproctitle is None:
        return False
    _setproctitle(title)
    return True
