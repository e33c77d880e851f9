"""proclab's guardian: ends proclab's family once proclab is gone, however it went.

proclab.core.family starts this as a small process of its own (its own session, outside
the family, the standard library only: `python -I -S family_guardian.py FD`). It reads
lines from FD, a pipe whose write end only proclab holds, until end of file, which comes
the moment proclab exits or is killed (SIGKILL included: the kernel closes its files):

  cgroup PATH        proclab and its family live in the cgroup tree at PATH: kill it,
                     then remove it (an empty PATH: no cgroup after all)
  child PID START    a child proclab started: it leads a process group of its own
  seen PID START     a descendant proclab saw (a grandchild, an orphan it adopted)
  gone PID           forget PID
  folder PATH        a private folder of proclab's (the watch hook's socket's): removed,
                     with the files in it, if proclab left it behind
  bye                proclab is exiting in good order: its helpers (the fork server,
                     the resource tracker) may finish their own work first

START is the process's start time in clock ticks since boot (/proc/PID/stat, field 22):
a pid that now belongs to another process is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

DRAIN_S = 10.0  # how long to wait for a killed cgroup to empty before removing it
HELPERS_S = 3.0  # after "bye": how long the helpers may take to end by themselves


def start_ticks(pid: int) -> int | None:
    """The process's start time, or None if there is no such process (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def kill_cgroup(root: str) -> None:
    """cgroup.kill ends every process in the tree at once, those forking included (again
    for any that joined meanwhile); the tree's folders go once it is empty."""
    deadline = time.monotonic() + DRAIN_S
    while populated(root) and time.monotonic() < deadline:
        with contextlib.suppress(OSError), open(os.path.join(root, "cgroup.kill"), "w") as f:
            f.write("1")
        time.sleep(0.01)
    for folder, _subfolders, _files in sorted(os.walk(root), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def populated(root: str) -> bool:
    try:
        with open(os.path.join(root, "cgroup.events")) as f:
            return "populated 1" in f.read()
    except OSError:
        return False


def kill_told(children: dict[int, int], seen: dict[int, int]) -> None:
    """SIGKILL every process proclab told of that is still the same process, and each
    child's process group. A group id stays taken while the group has members, so a group
    whose leader is gone can only hold what that leader left behind."""
    for pid, started in children.items():
        now = start_ticks(pid)
        if now is not None and now != started:
            continue  # the pid is another process's now, so the old group is gone
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        if now is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    for pid, started in seen.items():
        if start_ticks(pid) == started:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def remove_folders(folders: list[str]) -> None:
    """The files in each folder (they hold nothing else), then the folder: gone already
    where proclab removed them itself."""
    for folder in folders:
        with contextlib.suppress(OSError):
            for name in os.listdir(folder):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))
            os.rmdir(folder)


def main(fd: int) -> int:
    cgroup: str | None = None
    folders: list[str] = []
    orderly = False
    children: dict[int, int] = {}
    seen: dict[int, int] = {}
    pending = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except InterruptedError:
            continue
        except OSError:
            data = b""
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            word, _, rest = line.decode("utf-8", "replace").partition(" ")
            if word == "cgroup":
                cgroup = rest or None
                continue
            if word == "bye":
                orderly = True
                continue
            if word == "folder":
                folders.append(rest)
                continue
            parts = rest.split()
            with contextlib.suppress(ValueError, IndexError):
                if word == "child":
                    children[int(parts[0])] = int(parts[1])
                elif word == "seen":
                    seen[int(parts[0])] = int(parts[1])
                elif word == "gone":
                    children.pop(int(parts[0]), None)
                    seen.pop(int(parts[0]), None)
    # proclab is gone: end what is left of its family.
    if children or seen:
        kill_told(children, seen)
    if cgroup is not None:
        if orderly:
            deadline = time.monotonic() + HELPERS_S
            while populated(cgroup) and time.monotonic() < deadline:
                time.sleep(0.02)
        kill_cgroup(cgroup)
    remove_folders(folders)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2:  # READY_FD: closed once set up, so proclab starts the program
        os.close(int(sys.argv[2]))  # now, not while this interpreter is still starting
    sys.exit(main(int(sys.argv[1])))
