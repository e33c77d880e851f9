"""The whole family of the children proclab starts: every process descending from them,
whatever it does (fork, exec, setsid, setpgid, a double fork, C code that holds the GIL),
ends when proclab ends, however proclab ends.

What holds the family (`Family.bound`), strongest first:

- "cgroup": where this process may make a cgroup (v2: as root, or inside a delegated
  subtree), proclab moves itself, once, into a cgroup of its own; every child is then
  born in it, whatever its start method, and nothing it or its descendants do can leave
  it. (A child could move itself in instead, but each move waits for an RCU grace period,
  about 10 ms here whenever children do not start in a burst: too dear for every start.)
- "tree": the process tree. proclab is the subreaper of its descendants
  (PR_SET_CHILD_SUBREAPER, as tini does): an orphan is re-parented to proclab instead of
  init, so while proclab runs its tree holds the whole family, sessions and process groups
  notwithstanding.

Either way proclab is the reaper of the orphans it adopts, and reaps each by its pid
(never waitpid(-1), which would steal multiprocessing's exit codes). At shutdown it ends
every member: those of the cgroup (a complete list) or of its tree. For SIGKILL, when
proclab cannot act, a guardian (family_guardian.py) waits outside the family for end of
file on a pipe only proclab holds, then kills the cgroup (cgroup.kill: those busy forking
too) or, without one, every child's process group and every descendant proclab told it
of, checking start times so that a reused pid is never hit. Each child also asks the
kernel to SIGKILL it when its parent dies (bootstrap.py): that survives exec and needs no
Python code to run in the child.

The process is the unit: its cgroup, the guardian and the subreaper setting are shared by
the families (one per Controller) that live in it. A family ends its own children and what
descends from them; the processes no family can claim (orphans whose parent is gone) are
ended by the last family to close in proclab's own process (`claim_process`), and by the
guardian when the process ends.

Per child, a family costs proclab nothing with a cgroup; in the tree, one /proc read and
one short write to the guardian. Once a tick (the sampler's), it reaps adopted orphans,
and in the tree it also walks the family for the guardian.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import multiprocessing.resource_tracker
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

from proclab.core import methods, procfs
from proclab.core.family_guardian import kill_cgroup

__all__ = [
    "BOUNDS",
    "Family",
    "claim_process",
    "guardian_pid",
    "helper_pids",
]

Bound = Literal["cgroup", "tree", "off"]
# What a family may ask for (PROCLAB_FAMILY in the environment, or Family(bound=...)):
# "cgroup" where one can be had (the default); "tree", the process tree (what a user
# without a writable cgroup gets; also for the tests); "off" (benchmarks only: the guardian
# hears of no child; the tree is still ended at shutdown).
BOUNDS: tuple[Bound, ...] = ("cgroup", "tree", "off")
ENVIRONMENT = "PROCLAB_FAMILY"
PR_SET_CHILD_SUBREAPER = 36
GUARDIAN = Path(__file__).with_name("family_guardian.py")
KILL_WAIT_S = 5.0
READY_WAIT_S = 2.0  # the longest the first family waits for its guardian to be up
ZOMBIE = "Z"


class _Shared:
    """What every family of this process shares."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.guardian: subprocess.Popen[bytes] | None = None
        self.write_fd = -1
        self.cgroup: Path | None = None  # the cgroup this process and its family live in
        self.cgroup_tried = False
        self.families: list[Family] = []  # open ones
        # The main thread's children, where the kernel puts adopted orphans: read every
        # tick, kept open (the process's own, reopened after a fork).
        self.children = procfs.Kept("/proc/{pid}/task/{pid}/children")

    def tell(self, line: str) -> None:
        """A line for the guardian (one write: atomic under PIPE_BUF bytes)."""
        if self.write_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self.write_fd, line.encode() + b"\n")


_shared: _Shared | None = None
_shared_lock = threading.Lock()
_claimed = False


def claim_process() -> None:
    """Say that this process is proclab itself (its command line): every process it has
    as a child, or in its cgroup, other than multiprocessing's helpers and the guardian,
    is family. A process that uses the controller as a library (a test) may have children
    of its own, and does not claim."""
    global _claimed
    _claimed = True


def guardian_pid() -> int | None:
    shared = _shared
    return shared.guardian.pid if shared is not None and shared.guardian is not None else None


def helper_pids() -> set[int]:
    """This process's long-lived helpers, which are not family: the fork server, the
    resource tracker, the guardian."""
    pids = set()
    server = methods.fork_server_pid()
    if server is not None:
        pids.add(server)
    tracker = getattr(multiprocessing.resource_tracker, "_resource_tracker", None)
    if tracker is not None and getattr(tracker, "_pid", None):
        pids.add(tracker._pid)
    guardian = guardian_pid()
    if guardian is not None:
        pids.add(guardian)
    return pids


class Family:
    """The children one owner (a Controller) starts, and all their descendants.

    Create it before the owner starts multiprocessing's fork server. The owner reports
    `started(pid)` and `ended(pid)` (reaped) for each child and calls `look()` now and then
    (the sampler's tick). `members()`, `signal()`, `descendants()`, `kill_tree()` and
    `kill_all()` act on the family; `close()` ends what is left of it.
    """

    def __init__(self, bound: Bound | None = None) -> None:
        asked = bound or os.environ.get(ENVIRONMENT) or "cgroup"
        wanted: Bound = next((b for b in BOUNDS if b == asked), BOUNDS[0])  # else cgroup
        self._shared = shared = _share()
        self._lock = threading.Lock()
        self._own: set[int] = set()  # children started and not reaped yet
        self._seen: dict[int, int] = {}  # tree: descendant pid -> start ticks, told
        self._groups_left: set[int] = set()  # tree: reaped children whose group may live
        self._closed = False
        if wanted == "cgroup":
            _enter_cgroup(shared)
            if shared.cgroup is None:
                wanted = "tree"
        self.bound: Bound = wanted
        with shared.lock:
            shared.families.append(self)

    @property
    def cgroup(self) -> Path | None:
        """The cgroup that holds the family (and this process), if it has one."""
        return self._shared.cgroup if self.bound == "cgroup" else None

    # What the owner reports ---------------------------------------------------------

    def started(self, pid: int) -> None:
        with self._lock:
            self._own.add(pid)
        if self.bound == "tree":
            with contextlib.suppress(OSError, ValueError, IndexError):
                self._shared.tell(f"child {pid} {procfs.brief(pid).start}")

    def leaves_folder(self, path: str) -> None:
        """A private folder this process removes as it ends (the watch hook's socket's):
        the guardian removes it if the process cannot (SIGKILL)."""
        if "\n" not in path:  # one line of the guardian's
            self._shared.tell(f"folder {path}")

    def ended(self, pid: int) -> None:
        """The child has been reaped. The guardian forgets it once its process group is
        empty too (a look sees to it): until then it would still end that group."""
        with self._lock:
            self._own.discard(pid)
            if self.bound == "tree":
                self._groups_left.add(pid)

    def look(self, reap: bool = True) -> dict[int, procfs.Brief]:
        """Reap the family's orphans this process adopted that have ended; in the tree,
        also tell the guardian of the family's new processes. Returns the adopted orphans
        that still run. `reap=False`: the owner reaps adopted orphans itself, by pid, to
        read their exit statuses (a watched program's: core/watch/program.py), and none
        are looked at here."""
        if self._closed:
            return {}
        running = {}
        for pid, brief in self.adopted().items() if reap else ():
            if brief.state == ZOMBIE:
                _reap(pid)
            else:
                running[pid] = brief
        if self.bound == "tree":
            self._walk()
            self._forget_empty_groups()
        return running

    # What the owner asks ------------------------------------------------------------

    def members(self) -> dict[int, procfs.Brief]:
        """Every live process of the family now, the owner's children included."""
        with self._lock:
            roots = set(self._own)
            seen = dict(self._seen)
        if self._whole_process():
            pids = _tree(roots, every_thread=True) | self._process_family()
        else:  # orphans it saw are its own; the others, the last family's to end
            adopted = self.adopted()
            roots |= {p for p, b in adopted.items() if b.state != ZOMBIE and seen.get(p) == b.start}
            pids = _tree(roots, every_thread=True)
        pids -= {os.getpid(), *helper_pids()}
        found = {}
        for pid in pids:
            with contextlib.suppress(OSError, ValueError, IndexError):
                brief = procfs.brief(pid)
                if brief.state != ZOMBIE:
                    found[pid] = brief
        return found

    def signal(self, targets: dict[int, procfs.Brief], sig: int) -> None:
        """Signal each of these processes that is still the one named (pid and start)."""
        for pid, brief in targets.items():
            _signal_same(pid, brief.start, sig)

    def descendants(self, pid: int) -> dict[int, procfs.Brief]:
        """The processes below `pid` in the tree now."""
        return _briefs(_tree({pid}, every_thread=True) - {pid})

    def kill_tree(self, pid: int) -> int:
        """SIGKILL `pid` and every process below it, a fork bomb included; returns how
        many were killed."""
        return _stop_then_kill(lambda: _starts(_tree({pid}, every_thread=True)))

    def kill_all(self, timeout: float = KILL_WAIT_S, reap: bool = True) -> dict[int, procfs.Brief]:
        """SIGKILL every process of the family and wait (up to `timeout`) until none is
        left; returns those that were there. The owner's children are among them: it
        reaps them as usual. `reap=False`: the owner reaps adopted orphans too, to read
        their statuses (as `look`)."""
        there = left = self.members()
        deadline = time.monotonic() + timeout
        while left and time.monotonic() < deadline:
            _stop_then_kill(lambda: {p: b.start for p, b in self.members().items()})
            time.sleep(0.005)
            left = self.members()
        if reap:
            self._reap_adopted()
        return there

    def close(self) -> dict[int, procfs.Brief]:
        """End whatever is left of the family; returns what was left. The family cannot
        be used afterwards."""
        left = self.kill_all()
        self._closed = True
        with self._shared.lock:
            if self in self._shared.families:
                self._shared.families.remove(self)
        return left

    # Internals ----------------------------------------------------------------------

    def _whole_process(self) -> bool:
        """Whether this family answers for every process the process holds: in proclab's
        own process, when it is the only family open."""
        with self._shared.lock:
            return _claimed and self._shared.families == [self]

    def _process_family(self) -> set[int]:
        """Every process of this process's family, however it got there."""
        cgroup = self._shared.cgroup
        if cgroup is not None:
            return set(_cgroup_pids(cgroup))
        helpers = helper_pids()
        roots = set(procfs.children_of_every_thread(os.getpid())) - helpers
        return _tree(roots, every_thread=True)

    def adopted(self) -> dict[int, procfs.Brief]:
        """Orphans re-parented to this process that belong to the family (the kernel
        gives them to a subreaper's first live thread, the main one: the controller's
        children belong to the threads that started them)."""
        with self._lock:
            skip = self._own | helper_pids()
            seen = dict(self._seen)
        adopted = {}
        for pid in procfs.children_of(os.getpid(), self._shared.children):
            if pid in skip:
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                brief = procfs.brief(pid)
                if _claimed or seen.get(pid) == brief.start:
                    adopted[pid] = brief
        return adopted

    def _walk(self) -> None:
        """The tree: tell the guardian of the family's processes it has not heard of, and
        forget those that are gone."""
        with self._lock:
            own = set(self._own)
        adopted = {p for p, b in self.adopted().items() if b.state != ZOMBIE}
        now = _tree(own | adopted, every_thread=False) - own
        with self._lock:
            known = dict(self._seen)
        for pid, start in _starts(now - known.keys()).items():
            with self._lock:
                self._seen[pid] = start
            self._shared.tell(f"seen {pid} {start}")
        for pid in known.keys() - now:
            with self._lock:
                self._seen.pop(pid, None)
            self._shared.tell(f"gone {pid}")

    def _forget_empty_groups(self) -> None:
        with self._lock:
            groups = set(self._groups_left)
        for pid in groups:
            try:
                os.killpg(pid, 0)  # anyone left in the group? (a group id is not reused)
                continue
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            with self._lock:
                self._groups_left.discard(pid)
            self._shared.tell(f"gone {pid}")

    def _reap_adopted(self) -> None:
        deadline = time.monotonic() + 1.0
        while True:
            waiting = [p for p, b in self.adopted().items() if b.state == ZOMBIE]
            for pid in waiting:
                _reap(pid)
            if not waiting or time.monotonic() > deadline:
                return


def _share() -> _Shared:
    """The process's shared part, set up by its first family: the process becomes the
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
    """Start the guardian and wait until it is up (READY_WAIT_S at most): its start-up
    (an interpreter, ~10 ms of CPU) would otherwise run beside the first children, and
    on 2 cores it slowed a watched 90 ms Pool.map by 4-8 % (benchmarks/watch_cost.py)."""
    read_fd, write_fd = os.pipe()  # close-on-exec: no other process gets the write end
    ready_r, ready_w = os.pipe()
    try:
        shared.guardian = subprocess.Popen(
            [sys.executable, "-I", "-S", str(GUARDIAN), str(read_fd), str(ready_w)],
            pass_fds=(read_fd, ready_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # no terminal's signal reaches it
            cwd="/",
        )
        shared.write_fd = write_fd
        # Exiting in good order: the helpers (fork server, resource tracker) may finish
        # their own work before the guardian ends what is left.
        atexit.register(shared.tell, "bye")
        os.close(ready_w)  # the guardian's copy closes once it is up: end of file here
        ready_w = -1
        with contextlib.suppress(OSError, ValueError):
            select.select([ready_r], [], [], READY_WAIT_S)
    except (OSError, ValueError):  # no interpreter to run it with: no guardian
        os.close(write_fd)
    finally:
        for fd in (read_fd, ready_r, ready_w):
            if fd >= 0:
                os.close(fd)


def _enter_cgroup(shared: _Shared) -> None:
    """Move this process into a cgroup of its own, once, if it may: its children are born
    in it from then on. The fork server, if it already runs, moves too (its children are
    forkserver children)."""
    with shared.lock:
        if shared.cgroup_tried:
            return
        shared.cgroup_tried = True
        mount, own = _cgroup_mount(), _own_cgroup()
        if mount is None or own is None or shared.guardian is None:
            return
        base = mount / own.lstrip("/")
        _remove_stale(base)
        try:
            me = procfs.brief(os.getpid())
        except (OSError, ValueError, IndexError):
            return
        folder = base / f"proclab-{os.getpid()}-{me.start}"
        cgroup = folder / "main"
        try:
            folder.mkdir()
            cgroup.mkdir()
            if not (folder / "cgroup.kill").exists():  # Linux before 5.14
                raise OSError("no cgroup.kill")
            shared.tell(f"cgroup {folder}")
            _move(os.getpid(), cgroup)
            server_pid = methods.fork_server_pid()
            if server_pid is not None:
                _move(server_pid, cgroup)
        except OSError:
            with contextlib.suppress(OSError):
                _move(os.getpid(), base)
            for leftover in (cgroup, folder):
                with contextlib.suppress(OSError):
                    leftover.rmdir()
            shared.tell("cgroup ")  # none after all
            return
        shared.cgroup = cgroup


def _remove_stale(base: Path) -> None:
    """Cgroups left by a proclab whose guardian was killed with it: end and remove them."""
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
    """Every process in the cgroup and the cgroups below it (a proclab run by a child
    makes its own)."""
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


def _briefs(pids: Iterable[int]) -> dict[int, procfs.Brief]:
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            found[pid] = procfs.brief(pid)
    return found


def _starts(pids: Iterable[int]) -> dict[int, int]:
    return {pid: brief.start for pid, brief in _briefs(pids).items()}


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
