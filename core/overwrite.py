"""Whether proclab may write over a file a user named for it (`--record`, `experiment
--csv`, the experiments screen's export): only over nothing yet, an empty file, no regular
file (a FIFO, /dev/null), or a file of proclab's own of that kind. Notes or a script of
the same name are refused, not replaced."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

HEAD_BYTES = 4096  # what is read of the file to tell what it holds


def not_overwritable(
    path: str | os.PathLike[str], ours: Callable[[bytes], bool], kind: str
) -> str | None:
    """Why proclab may not write over `path` ("it holds something other than {kind}"), or
    None if it may. `ours(head)`: whether the file's start (a byte-order mark and the
    blank space before its first text taken off: an editor's file may have both) is
    proclab's."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
    except OSError:
        return None  # none there (or not to be looked at): the open says what is wrong
    try:
        with open(path, "rb") as file:
            head = file.read(HEAD_BYTES)
    except OSError as exc:
        # A file it may write and not read (mode 200) was taken for an empty one, and
        # its notes replaced.
        return f"it cannot be read ({exc.strerror}) to tell whether it holds {kind}"
    if not head.strip() or ours(head.removeprefix(b"\xef\xbb\xbf").lstrip()):
        return None
    return f"it holds something other than {kind}"
