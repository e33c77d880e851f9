"""The whole family of the children proclab starts: every process descending from them,
whatever it does (fork, exec, setsid, setpgid, a double fork, C code that holds the GIL),
ends when proclab ends, however proclab ends.

What holds the family, strongest first (`Family.bound` says which one a family has):

- "cgroup": a cgroup v2 of its own, where this process may make one (as root, or inside
  a delegated subtree). Each child joins it in its bootstrap, before its target is even
  imported; nothing it or its descendants do can leave a cgroup, and `cgroup.kill` ends
  all of them at once, those busy forking included.
- "tree": proclab is the subreaper of its descendants (PR_SET_CHILD_SUBREAPER, as
  tini does): an orphan is re-parented to proclab instead of init, so while proclab runs
  its tree holds the whole family, sessions and process groups notwithstanding. Without a
  cgroup, the family is that tree.

Both keep proclab the reaper of the orphans it adopts: it reaps each by its pid (never
waitpid(-1), which would steal multiprocessing's exit codes). And for the case where
proclab cannot act, SIGKILL, a guardian (family_guardian.py) waits outside the family for
end of file on a pipe only proclab holds, then kills the cgroup, or, without one, every
child's process group and every descendant proclab told it of (checking start times, so a
reused pid is never hit). Each child also asks the kernel to SIGKILL it when its parent
dies (bootstrap.py): that survives exec and needs no Python code to run in the child.

One Family per Controller. The guardian, the subreaper setting and the folder that holds
the families' cgroups belong to the process and are shared.

A child costs proclab nothing per start with a cgroup (the child writes itself into the
cgroup, about 50 µs); in the process tree, one /proc read and one short write to the
guardian.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

from proclab.core import procfs
from proclab.core.family_guardian import kill_cgroup, populated

__all__ = [
    "BOUNDS",
    "Family",
    "claim_process",
    "guardian_pid",
    "helper_pids",
]

Bound = Literal["cgroup", "tree", "off"]
# What a family may ask for (PROCLAB_FAMILY in the environment, or Family(bound=...)):
# "cgroup" where one can be had (the default), "tree" (the process tree: what a user without a
# writable cgroup gets; also for tests), "off" (benchmarks only: children join no cgroup
# and the guardian hears of none of them; the tree is still ended at shutdown).
BOUNDS: tuple[Bound, ...] = ("cgroup", "tree", "off")
ENVIRONMENT = "PROCLAB_FAMILY"
PR_SET_CHILD_SUBREAPER = 36
GUARDIAN = Path(__file__).with_name("family_guardian.py")
KILL_WAIT_S = 5.0
ORPHAN = "Z"  # a zombie: its exit status waits for its parent (here: for us)


class _Shared:
    """What every family of this process shares: the guardian and the cgroup folder."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.guardian: subprocess.Popen[bytes] | None = None
        self.write_fd = -1
        self.cgroup: Path | None = None  # holds one folder per family
        self.cgroup_tried = False
        self.numbers = itertools.count(1)

    def tell(self, line: str) -> None:
        """A line for the guardian (one write: atomic under PIPE_BUF bytes)."""
        if self.write_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self.write_fd, line.encode() + b"\n")


_shared: _Shared | None = None
_shared_lock = threading.Lock()
_claimed = False


def claim_process() -> None:
    """Say that this process is proclab itself (its command line), so that every child it
    has, other than multiprocessing's helpers and the guardian, is family: an orphan that
    left its tree before proclab had looked at it is still found. A process that uses the
    controller as a library (a test) may have children of its own, and does not claim."""
    global _claimed
    _claimed = True


def guardian_pid() -> int | None:
    shared = _shared
    return shared.guardian.pid if shared is not None and shared.guardian is not None else None


def helper_pids() -> set[int]:
    """This process's long-lived helpers, which are not family: the fork server, the
    resource tracker, the guardian."""
    pids = set()
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    if server is not None and getattr(server, "_forkserver_pid", None):
        pids.add(server._forkserver_pid)
    tracker = getattr(multiprocessing.resource_tracker, "_resource_tracker", None)
    if tracker is not None and getattr(tracker, "_pid", None):
        pids.add(tracker._pid)
    guardian = guardian_pid()
    if guardian is not None:
        pids.add(guardian)
    return pids


class Family:
    """The children one owner (a Controller) starts, and all their descendants.

    The owner hands `ticket` to each child's bootstrap (the cgroup to join, or None),
    reports `started(pid)` and `ended(pid)` (reaped) for each child, and calls `look()`
    now and then (the sampler's tick): it reaps adopted orphans and, without a cgroup,
    notes new descendants for the guardian. `members()`, `signal()`, `kill_all()` and
    `kill_tree()` act on the family; `close()` ends what is left of it.
    """

    def __init__(self, bound: Bound | None = None) -> None:
        wanted = bound or os.environ.get(ENVIRONMENT) or "cgroup"
        if wanted not in BOUNDS:
            wanted = "cgroup"
        self._shared = _share()
        self._lock = threading.Lock()
        self._own: set[int] = set()  # children started and not reaped yet
        self._seen: dict[int, int] = {}  # process tree: descendant pid -> start ticks
        self._strangers: dict[int, int] = {}  # our children that are not family (pid -> start)
        self._look_lock = threading.Lock()  # one look at our children at a time
        self._closed = False
        self._cgroup: Path | None = None
        self._cgroup_line = ""  # how /proc/PID/cgroup names our cgroup
        if wanted == "cgroup":
            self._cgroup = _family_cgroup(self._shared)
        if self._cgroup is not None:
            self.bound: Bound = "cgroup"
            relative = _own_cgroup()
            self._cgroup_line = (
                f"0::{relative.rstrip('/')}/{self._cgroup.parent.name}/{self._cgroup.name}"
            )
        else:
            self.bound = "off" if wanted == "off" else "tree"
        self.ticket: str | None = str(self._cgroup / "cgroup.procs") if self._cgroup else None

    # What the owner reports ---------------------------------------------------------

    def started(self, pid: int) -> None:
        with self._lock:
            self._own.add(pid)
        if self.bound == "tree":
            with contextlib.suppress(OSError, ValueError, IndexError):
                self._shared.tell(f"child {pid} {procfs.brief(pid).start}")

    def ended(self, pid: int) -> None:
        """The child has been reaped. What it left in its process group is found by the
        next look (orphans come to this process)."""
        with self._lock:
            self._own.discard(pid)
        if self.bound == "tree":
            self._shared.tell(f"gone {pid}")

    def look(self) -> None:
        """Reap the family's orphans this process adopted that have ended; without a
        cgroup, also note the family's new processes, for the guardian."""
        if self._closed:
            return
        for pid, brief in self._adopted().items():
            if brief.state == ORPHAN:
                _reap(pid)
        if self.bound == "tree":
            self._walk()

    # What the owner asks ------------------------------------------------------------

    def members(self) -> dict[int, procfs.Brief]:
        """Every live process of the family now, the owner's children included."""
        if self._cgroup is not None:
            pids: Iterable[int] = _cgroup_pids(self._cgroup)
        else:
            with self._lock:
                roots = set(self._own)
            roots |= {p for p, b in self._adopted().items() if b.state != ORPHAN}
            pids = _tree(roots, every_thread=True)
        found = {}
        for pid in pids:
            with contextlib.suppress(OSError, ValueError, IndexError):
                brief = procfs.brief(pid)
                if brief.state != ORPHAN:
                    found[pid] = brief
        return found

    def signal(self, targets: dict[int, procfs.Brief], sig: int) -> None:
        """Signal each of these processes that is still the one named (pid and start)."""
        for pid, brief in targets.items():
            _signal_same(pid, brief.start, sig)

    def descendants(self, pid: int) -> dict[int, procfs.Brief]:
        """The processes below `pid` in the tree now (those of its own that are orphans
        already belong to this process: members() has them)."""
        found = {}
        for child in _tree({pid}, every_thread=True) - {pid}:
            with contextlib.suppress(OSError, ValueError, IndexError):
                found[child] = procfs.brief(child)
        return found

    def kill_tree(self, pid: int) -> int:
        """SIGKILL `pid` and every process below it, a fork bomb included; returns how
        many were killed."""
        return _stop_then_kill(lambda: _starts(_tree({pid}, every_thread=True)))

    def kill_all(self, timeout: float = KILL_WAIT_S) -> dict[int, procfs.Brief]:
        """SIGKILL every process of the family and wait (up to `timeout`) until none is
        left; returns those that were there. The owner's children are among them: it
        reaps them as usual."""
        there = self.members()
        deadline = time.monotonic() + timeout
        if self._cgroup is not None:
            kill = self._cgroup / "cgroup.kill"
            while populated(str(self._cgroup)) and time.monotonic() < deadline:
                with contextlib.suppress(OSError), open(kill, "w") as f:
                    f.write("1")
                time.sleep(0.005)
        else:
            left = there
            while left and time.monotonic() < deadline:
                _stop_then_kill(lambda: {p: b.start for p, b in self.members().items()})
                time.sleep(0.005)
                left = self.members()
        self._reap_adopted()
        return there

    def close(self) -> dict[int, procfs.Brief]:
        """End whatever is left of the family and let go of its cgroup; returns what was
        left. The family cannot be used afterwards."""
        left = self.kill_all()
        self._closed = True
        if self._cgroup is not None:
            with contextlib.suppress(OSError):
                self._cgroup.rmdir()
        return left

    # Internals ----------------------------------------------------------------------

    def _adopted(self) -> dict[int, procfs.Brief]:
        """Our children that are family but not ones we started: orphans re-parented to
        us. They are the main thread's (the kernel gives orphans to a subreaper's first
        live thread); the controller's children belong to the threads that started them."""
        me = os.getpid()
        helpers = helper_pids()
        with self._lock:
            own = set(self._own)
        with self._look_lock:
            return self._adopted_among(procfs.children_of(me), own | helpers)

    def _adopted_among(self, children: list[int], skip: set[int]) -> dict[int, procfs.Brief]:
        adopted = {}
        for pid in children:
            if pid in skip:
                continue
            try:
                brief = procfs.brief(pid)
            except (OSError, ValueError, IndexError):
                continue
            if self._strangers.get(pid) == brief.start:
                continue
            if self._is_family(pid, brief):
                adopted[pid] = brief
            else:
                self._strangers[pid] = brief.start
        if len(self._strangers) > 64:  # forget strangers that are gone
            alive = set(children)
            self._strangers = {p: s for p, s in self._strangers.items() if p in alive}
        return adopted

    def _is_family(self, pid: int, brief: procfs.Brief) -> bool:
        if self._cgroup is not None:
            try:
                with open(f"/proc/{pid}/cgroup") as f:
                    lines = f.read().splitlines()
            except OSError:
                return False
            line = self._cgroup_line
            return any(entry == line or entry.startswith(line + "/") for entry in lines)
        with self._lock:
            if self._seen.get(pid) == brief.start:
                return True
        return _claimed

    def _walk(self) -> None:
        """Process tree: note the family's processes the guardian has not heard of, and
        forget those that are gone."""
        with self._lock:
            roots = set(self._own)
        adopted = self._adopted()
        roots |= {p for p, b in adopted.items() if b.state != ORPHAN}
        now = _tree(roots, every_thread=False) - (roots - adopted.keys())
        with self._lock:
            known = dict(self._seen)
        for pid in now - known.keys():
            with contextlib.suppress(OSError, ValueError, IndexError):
                start = procfs.brief(pid).start
                with self._lock:
                    self._seen[pid] = start
                self._shared.tell(f"seen {pid} {start}")
        for pid in known.keys() - now:
            with self._lock:
                self._seen.pop(pid, None)
            self._shared.tell(f"gone {pid}")

    def _reap_adopted(self) -> None:
        deadline = time.monotonic() + 1.0
        while True:
            waiting = [p for p, b in self._adopted().items() if b.state == ORPHAN]
            for pid in waiting:
                _reap(pid)
            if not waiting or time.monotonic() > deadline:
                return


def _share() -> _Shared:
    """The process's shared part, set up by the first family: this process becomes the
    subreaper of its descendants and starts the guardian."""
    global _shared
    with _shared_lock:
        if _shared is None:
            shared = _Shared()
            with contextlib.suppress(OSError, AttributeError):
                libc = ctypes.CDLL(None, use_errno=True)
                libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
            _start_guardian(shared)
            _shared = shared
        return _shared


def _start_guardian(shared: _Shared) -> None:
    read_fd, write_fd = os.pipe()  # close-on-exec: no other process gets the write end
    try:
        shared.guardian = subprocess.Popen(
            [sys.executable, "-I", "-S", str(GUARDIAN), str(read_fd)],
            pass_fds=(read_fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # no terminal's signal reaches it
            cwd="/",
        )
        shared.write_fd = write_fd
    except (OSError, ValueError):  # no interpreter to run it with: no guardian
        os.close(write_fd)
    finally:
        os.close(read_fd)


def _family_cgroup(shared: _Shared) -> Path | None:
    """A new cgroup for one family, inside the process's proclab folder (made on first
    use, if this process may make cgroups and move processes between them)."""
    with shared.lock:
        if not shared.cgroup_tried:
            shared.cgroup_tried = True
            shared.cgroup = _make_cgroup_folder(shared)
            if shared.cgroup is not None:
                shared.tell(f"cgroup {shared.cgroup}")
        folder = shared.cgroup
        if folder is None:
            return None
        cgroup = folder / f"family-{next(shared.numbers)}"
    try:
        cgroup.mkdir()
    except OSError:
        return None
    return cgroup


def _make_cgroup_folder(shared: _Shared) -> Path | None:
    mount = _cgroup_mount()
    relative = _own_cgroup()
    if mount is None or relative is None or shared.guardian is None:
        return None
    base = mount / relative.lstrip("/")
    _remove_stale(base)
    try:
        me = procfs.brief(os.getpid())
    except (OSError, ValueError, IndexError):
        return None
    folder = base / f"proclab-{os.getpid()}-{me.start}"
    probe = folder / "probe"
    try:
        folder.mkdir()
        if not (folder / "cgroup.kill").exists():  # Linux before 5.14
            raise OSError("no cgroup.kill")
        # Moving a process in and out is what children will do: try it on the guardian.
        probe.mkdir()
        _move(shared.guardian.pid, probe)
        _move(shared.guardian.pid, base)
        probe.rmdir()
    except OSError:
        for leftover in (probe, folder):
            with contextlib.suppress(OSError):
                leftover.rmdir()
        return None
    return folder


def _remove_stale(base: Path) -> None:
    """Folders left by a proclab whose guardian was killed with it: end and remove them."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if len(parts) != 3 or parts[0] != "proclab" or not (parts[1] + parts[2]).isdigit():
            continue
        try:
            alive = procfs.brief(int(parts[1])).start == int(parts[2])
        except (OSError, ValueError, IndexError):
            alive = False
        if not alive:
            kill_cgroup(str(base / name))


def _cgroup_mount() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or .../unified beside v1)."""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "cgroup2" and left.split()[3] == "/":
                    return Path(left.split()[4].replace("\\040", " "))
    except OSError:
        pass
    return None


def _own_cgroup() -> str | None:
    """This process's cgroup v2 path (/proc/self/cgroup's "0::" line)."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                if line.startswith("0::"):
                    path = line[3:].rstrip("\n")
                    return None if path.endswith(" (deleted)") else path
    except OSError:
        pass
    return None


def _move(pid: int, cgroup: Path) -> None:
    with open(cgroup / "cgroup.procs", "w") as f:
        f.write(str(pid))


def _cgroup_pids(cgroup: Path) -> list[int]:
    pids: list[int] = []
    for folder, _subfolders, _files in os.walk(cgroup):
        with (
            contextlib.suppress(OSError, ValueError),
            open(os.path.join(folder, "cgroup.procs")) as f,
        ):
            pids.extend(int(p) for p in f.read().split())
    return pids


def _tree(roots: set[int], every_thread: bool) -> set[int]:
    """`roots` and every process below them."""
    children = procfs.children_of_every_thread if every_thread else procfs.children_of
    found = set(roots)
    stack = list(roots)
    while stack:
        for child in children(stack.pop()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _starts(pids: Iterable[int]) -> dict[int, int]:
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            found[pid] = procfs.brief(pid).start
    return found


def _stop_then_kill(now: Callable[[], dict[int, int]]) -> int:
    """SIGSTOP every process `now()` lists (pid: start), again and again until no new one
    appears (a stopped process cannot fork), then SIGKILL them all. Returns how many."""
    stopped: dict[int, int] = {}
    for _ in range(100):
        new = {p: s for p, s in now().items() if stopped.get(p) != s}
        if not new:
            break
        for pid, start in new.items():
            _signal_same(pid, start, signal.SIGSTOP)
        stopped.update(new)
    for pid, start in stopped.items():
        _signal_same(pid, start, signal.SIGKILL)
    return len(stopped)


def _signal_same(pid: int, start: int, sig: int) -> None:
    """Signal `pid` if it is still the process that started at `start`."""
    try:
        if procfs.brief(pid).start == start:
            os.kill(pid, sig)
    except (OSError, ValueError, IndexError):
        pass


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
