"""proclab's own limit on open files, raised for its children's pipes, and the limit it
found, which each child it starts gets back: a child's is the one your shell set, as for
a child of your own script (an exercise counting the files a process may open, or
`select` meeting fds past 1,024, would otherwise meet proclab's figure)."""

from __future__ import annotations

import errno
import resource

# The errors that say a process (EMFILE) or the machine (ENFILE) has no file descriptor left
OUT_OF_FDS = (errno.EMFILE, errno.ENFILE)

# (soft, hard) as proclab found them, once it raised its own soft limit; None until then.
found: tuple[int, int] | None = None


def raise_own() -> None:
    """Each child costs proclab about five fds (two output pipes, an exit fd,
    multiprocessing's sentinel pipe): raise the soft limit so hundreds of children fit."""
    global found
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        return
    if found is None:
        found = soft, hard
