"""A user's own program as a source of rows: `proclab watch` (launched here) and `proclab
attach` (already running: attach.py). Every process of its tree gets a row, which stays
after the process ends.

Where each fact comes from:

- The tree: a walk of /proc from the root(s) every WALK_S (tree.py), plus the hook's
  hello from every Python process at once (hook/, hook_server.py), so a new process shows
  within one walk at the latest. A process is its pid *and* start time: a reused pid is a
  new row.
- Exit statuses, only as truly known: proclab's own children (the root it launched, and
  the orphans it adopts as the family's subreaper) are reaped here, each by its own pid
  when its pidfd says it ended (never waitpid(-1)), with their CPU times (wait4). Any
  other process is reaped by its parent, and only the parent can read its status: a
  hooked Python parent reports it (`reaped`: os.waitpid and friends; `mp_join`:
  multiprocessing's exitcode). Otherwise the row ends as ENDED, and its exit_note names
  the parent that saw the status. A status that arrives after the walk saw the process
  gone still lands on its row (the hook's messages come up to ~0.1 s late).
- multiprocessing's facts (name, target, args, start method, pool worker counts) and the
  calls one process makes on another (start, join, terminate, kill) come from the hook.
- Output: each hooked Python process passes proclab pipes of its own for fds 1 and 2, so
  its lines carry its pid. Everything else is read from the pipes proclab gave the root,
  and is shown under the root: a non-Python process's lines go to its nearest hooked
  Python ancestor's pipes (it inherited them), or to the root's.

Threads: the hook server's (messages), a ChildWatcher (output pipes, exits), the tree
walker, and a Sampler (figures, once per interval). Subscribers are called from those
threads, never under the lock, as the Controller does.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import IO, TYPE_CHECKING, Any

from proclab.core import procfs
from proclab.core.controller import _describe, _raise_fd_limit, _still_there
from proclab.core.cpus import usable_cpus
from proclab.core.defaults import DEFAULT_GRACE_S, DEFAULT_INTERVAL_S, DEFAULT_MAX_DESCENDANTS
from proclab.core.errors import ProclabError, UnknownProcess
from proclab.core.exits import state_for_exit, state_for_status
from proclab.core.family import Bound, Family
from proclab.core.model import (
    Event,
    MpFacts,
    Notice,
    OutputLine,
    ProcessCall,
    ProcessRow,
    ProcessSpec,
    ProcSample,
    ProcState,
    RowUpdated,
    Spawned,
    StateChanged,
    SystemSample,
)
from proclab.core.registry import Registry
from proclab.core.sampler import Sampler, final_sample
from proclab.core.source import Capabilities, NotAllowed, ServerLike
from proclab.core.watch import tree
from proclab.core.watch.hook_server import HookServer, HookStats, PassedFds
from proclab.core.watch.protocol import (
    Bye,
    Dropped,
    Hello,
    Helper,
    Message,
    MpJoin,
    MpRun,
    MpSignal,
    MpStart,
    PoolReport,
    Reaped,
)
from proclab.core.watch.sockets import SocketLog
from proclab.core.watcher import ChildWatcher

if TYPE_CHECKING:
    from proclab.core.source import ProcessSource
from proclab.core.words import plural

WALK_S = 0.2  # how often the tree is walked: benchmarks/watch_tree.py prices a walk
QUIET_WALKS = 5  # walks that found nothing new before walking once a tick only
# A process gone from the tree whose parent has the hook: how long its parent's word on
# its exit status may take to arrive (the hook server sweeps every 0.1 s at most).
STATUS_WAIT_S = 0.5
COMMAND_CHARS = 200
# What a change under the lock hands out for after it: events, and the calls an end
# returns (Registry.end: its events, then whoever joined it).
Pending = list["Event | Callable[[], None]"]
RECENT_S = 5.0  # a message about a process that ended this long ago still lands on its row
UNSEEN = -1  # the start time of a process no walk saw: not known


class WatchError(ProclabError):
    """The program cannot be watched (no such command, no such process, not allowed)."""


@dataclass(slots=True)
class _Status:
    code: int
    at: float  # wall clock
    note: str  # who said so
    reaper: int  # the pid that said so
    sample: ProcSample | None = None


def check_command(argv: Sequence[str], cwd: str | None = None) -> str:
    """The executable `argv[0]` names, or WatchError with one line saying why not."""
    if not argv:
        raise WatchError("no command given (proclab watch -- COMMAND [ARG...])")
    name = argv[0]
    if os.sep in name:
        path = name if os.path.isabs(name) else os.path.join(cwd or os.getcwd(), name)
        if not os.path.exists(path):
            raise WatchError(f"{name}: no such file")
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise WatchError(f"{name}: not an executable file")
        return path
    found = shutil.which(name)
    if found is None:
        raise WatchError(f"{name}: command not found")
    return found


def short_command(argv: Sequence[str]) -> str:
    return shlex.join(argv)[:COMMAND_CHARS]


class WatchedTree:
    """The rows of a process tree proclab watches. WatchedProgram launches the program;
    attach.Attached watches one that runs already."""

    # It starts nothing: the program does. Signals reach any process of the tree.
    capabilities = Capabilities(
        spawn=False,
        signal=True,
        rename=False,
        restart=False,
        join=True,
        clear=False,
        server=False,
        ends_on_quit=True,
    )

    # Orphans of the tree are re-parented to proclab (the family's subreaper), which then
    # reaps them and reads their exit statuses.
    reaps_orphans = True

    @property
    def ends_on_quit(self) -> bool:
        return self.capabilities.ends_on_quit

    def __init__(
        self,
        *,
        sample_interval: float = DEFAULT_INTERVAL_S,
        grace: float = DEFAULT_GRACE_S,
        hook: bool = True,
        family: Bound | None = None,
        walk_interval: float = WALK_S,
    ) -> None:
        self.grace = grace
        self.max_procs = 0  # it starts nothing itself
        self.walk_interval = walk_interval
        # Rows, output, events and joins: the Controller's registry. Its lock guards the
        # tree's own state here too (core/registry.py: the lock rule).
        self._registry = Registry()
        self._lock = self._registry.lock
        self._channels = itertools.count(1)
        self._keys: dict[int, tuple[int, int]] = {}  # row id -> (pid, start)
        self._ppids: dict[int, int] = {}  # row id -> its parent's pid when first seen
        self._live: dict[int, int] = {}  # pid -> row id, while the process may run
        self._known: dict[int, tree.TreeProcess] = {}  # the last walk
        self._channel_rows: dict[int, int] = {}  # watcher channel -> row id
        self._own: dict[int, int] = {}  # row id -> pid, of proclab's own children (reaped here)
        self._exit_channels: dict[int, int] = {}  # watcher channel -> row id, its pidfd
        self._exited: dict[int, float] = {}  # row id -> when its pidfd said it ended
        self._gone: dict[int, float] = {}  # row id -> when the walk saw it gone, status unknown
        self._statuses: dict[int, _Status] = {}  # pid -> a status that came before the end
        self._start_calls: dict[int, float] = {}  # child pid -> its parent's start() call
        self._runs: dict[int, float] = {}  # child pid -> when it began running its target
        self._hooked: set[int] = set()  # pids with a live hook connection
        self._born = False  # a row was made since the guardian last heard
        self._socket_log = SocketLog()
        self._exits_seen = 0  # len(_exited) at the last walk: a change makes it busy
        self._roots: list[int] = []  # row ids
        self._stop = threading.Event()
        self._wake = threading.Event()  # walk now: a process ended, or proclab is closing
        self._done = threading.Event()  # the roots have ended and nothing of the tree is left
        self._started = False
        self._closed = False
        self._me = os.getpid()
        self._reading: set[int] = set()  # channels whose output pipes are still open
        self._watcher = ChildWatcher(self._on_line, self._on_exit, self._on_closed)
        self._sampler = Sampler(
            sample_interval, self._live_ids, self._registry.sampled, DEFAULT_MAX_DESCENDANTS
        )
        self._walker = threading.Thread(target=self._walk_loop, name="proclab-tree", daemon=True)
        self._hook_server: HookServer | None = HookServer(self._on_message) if hook else None
        self._family_bound = family
        self._family: Family | None = None
        self.server: ServerLike | None = None  # a watched tree has no server of proclab's

    # Reading -------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        return self._registry.subscribe(callback)

    def emit_event(self, event: Event) -> None:
        """Hand an event to every subscriber (a recording that stopped says so here)."""
        self._registry.emit([event])

    def rows(self) -> tuple[ProcessRow, ...]:
        return self._registry.rows()

    def row(self, rec_id: int) -> ProcessRow:
        return self._registry.row(rec_id)

    def root_rows(self) -> tuple[ProcessRow, ...]:
        with self._lock:
            return tuple(self._registry.row(i) for i in self._roots)

    def system(self) -> SystemSample | None:
        return self._registry.system()

    def output(self, rec_id: int, last: int | None = None) -> tuple[OutputLine, ...]:
        return self._registry.output(rec_id, last)

    def live_count(self) -> int:
        return self._registry.live_count()

    def usable_cpus(self) -> tuple[int, ...]:
        return usable_cpus()

    @property
    def interval(self) -> float:
        return self._sampler.interval

    def set_interval(self, seconds: float) -> None:
        self._sampler.set_interval(seconds)

    def describe(self) -> str:
        roots = self.root_rows()
        if not roots:
            return "watching nothing yet"
        root = roots[0]
        return f"watching {root.command or root.name} (pid {root.pid})"

    @property
    def done(self) -> bool:
        """The roots have ended and no process of the tree is left."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def hook_stats(self) -> HookStats | None:
        return self._hook_server.stats() if self._hook_server is not None else None

    # Commands --------------------------------------------------------------------------

    def spawn(self, spec: ProcessSpec, count: int = 1) -> tuple[int, ...]:
        raise NotAllowed("a watched program starts its own processes: proclab starts none in it")

    def rename(self, rec_id: int, name: str) -> None:
        raise NotAllowed("a watched process keeps the name its program gave it")

    def restart(self, rec_id: int) -> None:
        raise NotAllowed("proclab did not start this process, so it cannot start it again")

    def clear_exited(self) -> int:
        raise NotAllowed("a watched program's ended processes stay in its tree")

    def join(self, ids: Iterable[int], timeout: float | None = None) -> bool:
        """Wait until every one of these processes has ended; False on timeout."""
        return self._registry.join(ids, timeout)

    async def join_async(self, ids: Iterable[int], timeout: float | None = None) -> bool:
        return await self._registry.join_async(ids, timeout)

    def terminate(self, rec_id: int, escalate_after: float | None = None) -> None:
        self._send(rec_id, signal.SIGTERM)
        if escalate_after is not None:
            timer = threading.Timer(escalate_after, self._escalate, (rec_id,))
            timer.daemon = True
            timer.start()

    def _escalate(self, rec_id: int) -> None:
        with self._lock:
            if self._closed or self._registry.row(rec_id).state.is_over:
                return
        with contextlib.suppress(UnknownProcess):
            self._send(rec_id, signal.SIGKILL)

    def kill(self, rec_id: int) -> None:
        self._send(rec_id, signal.SIGKILL)

    def pause(self, rec_id: int) -> None:
        self._send(rec_id, signal.SIGSTOP)

    def resume(self, rec_id: int) -> None:
        self._send(rec_id, signal.SIGCONT)

    def _send(self, rec_id: int, sig: int) -> None:
        """Signal one process of the tree, if it is still the process of that row."""
        with self._lock:
            row = self.row(rec_id)
            if row.state.is_over or row.pid is None:
                raise UnknownProcess(f"{row.name} has already ended ({row.state})")
            pid, start = self._keys[rec_id]
        if not _signal_same(pid, start, sig):
            raise UnknownProcess(f"{row.name} ({pid}) has already ended")
        if sig == signal.SIGTERM:  # a stopped process acts on it once continued
            _signal_same(pid, start, signal.SIGCONT)
        if sig in (signal.SIGSTOP, signal.SIGCONT):
            threading.Thread(
                target=self._refresh, args=(rec_id, pid), name="proclab-state", daemon=True
            ).start()

    def _refresh(self, rec_id: int, pid: int) -> None:
        """Show a stop or continue at once rather than at the next sample."""
        for _ in range(100):
            try:
                state = state_for_status(procfs.read(pid).status)
            except (OSError, ValueError, IndexError):
                return
            with self._lock:
                row = self._registry.row(rec_id)
                if row.state.is_over:
                    return
                if row.state is not state:
                    new = self._registry.update(rec_id, state=state)
                    event: Event | None = StateChanged(new, row.state)
                else:
                    event = None
            if event is not None:
                self._emit([event])
                return
            time.sleep(0.005)

    # Life cycle --------------------------------------------------------------------------

    def _begin(self) -> None:
        """Start the threads (the roots are known or being launched)."""
        _raise_fd_limit()
        if self._hook_server is not None:
            self._hook_server.start()
        self._watcher.start()
        self._sampler.start()
        self._started = True

    def __enter__(self) -> WatchedTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, grace: float | None = None) -> None:
        """Quit: end the tree if this source ends it (SIGTERM, then SIGKILL after `grace`),
        read the last exit statuses, stop every thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._started and self.ends_on_quit:
            self.shutdown_children(self.grace if grace is None else grace)
        self._stop.set()
        self._wake.set()
        if self._walker.is_alive():
            self._walker.join(timeout=5)
        if self._started:
            self._settle()
        if self._hook_server is not None:
            self._hook_server.close()  # no pipes come after this
        deadline = time.monotonic() + 1.0
        while self._reading and time.monotonic() < deadline:
            time.sleep(0.01)  # what the tree wrote last is still in its pipes
        self._sampler.stop()
        self._watcher.stop()
        self._finish_gone(force=True)
        if self._family is not None:
            self._family.close()

    def _settle(self) -> None:
        """The last word: wait (briefly) for proclab's own children to be reaped and for
        the hooks' last messages, then walk once more."""
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            with self._lock:
                own_left = bool(self._own)
            if not own_left:
                break
            time.sleep(0.01)
        if self._hook_server is not None:
            # The hooks' last messages (a reaped, a join, the hello of a process that
            # lived moments, with its pipes) may still wait to be read.
            time.sleep(STATUS_WAIT_S)
        self._walk_once()

    def shutdown_children(self, grace: float) -> None:
        """End every process of the tree (and of the family: orphans, those that left the
        session): SIGTERM (and SIGCONT), up to `grace` seconds, then SIGKILL."""
        targets = self._everything()
        if not targets:
            return
        session = self._root_session()
        left_session = {p: b for p, b in targets.items() if _sid(p) not in (session, None)}
        if left_session:
            self._notice(
                "info",
                f"{plural(len(left_session), 'process')} had left the program's session on"
                f" purpose (setsid, a daemon): ending {'it' if len(left_session) == 1 else 'them'}"
                f" too: {_describe(left_session)}",
            )
        self._notice(
            "info",
            f"sent SIGTERM to {plural(len(targets), 'process')} of the tree;"
            f" waiting up to {grace:g} s",
        )
        for pid, brief in targets.items():
            _signal_same(pid, brief.start, signal.SIGTERM)
            _signal_same(pid, brief.start, signal.SIGCONT)
        deadline = time.monotonic() + grace
        left = targets
        while left and time.monotonic() < deadline:
            time.sleep(0.02)
            left = _still_there(self._everything())
        if left:
            self._notice(
                "warning",
                f"{plural(len(left), 'process')} still running {grace:g} s after SIGTERM:"
                f" sending SIGKILL: {_describe(left)}",
            )
            for pid, brief in left.items():
                _signal_same(pid, brief.start, signal.SIGKILL)
            if self._family is not None:
                self._family.kill_all()

    def _everything(self) -> dict[int, procfs.Brief]:
        """Every live process of the tree now, and of the family."""
        with self._lock:
            keys = {pid: self._keys[i][1] for pid, i in self._live.items()}
        found = {}
        for pid, start in keys.items():
            with contextlib.suppress(OSError, ValueError, IndexError):
                brief = procfs.brief(pid)
                if brief.start == start and brief.state != "Z":
                    found[pid] = brief
        if self._family is not None and self.ends_on_quit:
            found.update(self._family.members())
        return found

    def _root_session(self) -> int | None:
        with self._lock:
            pids = [self._keys[i][0] for i in self._roots]
        return _sid(pids[0]) if pids else None

    # The tree --------------------------------------------------------------------------

    def _walk_loop(self) -> None:
        """Walk every walk_interval while the tree changes; once it has been quiet for
        QUIET_WALKS walks, once a tick (the sampling interval): a process that shows
        within one tick is the promise, and a steady tree of 200 costs a fifth as much
        (benchmarks/watch_cost.py). A hook's hello (a Python process born) or an end
        makes it busy again; ends themselves are seen at once (pidfds), never by a walk."""
        looked = time.monotonic()
        quiet = 0
        while not self._stop.is_set():
            self._wake.wait(self.walk_interval if quiet < QUIET_WALKS else self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._walk_once()
                with self._lock:
                    born, self._born = self._born, False
                    busy = born or bool(self._gone) or len(self._exited) != self._exits_seen
                    self._exits_seen = len(self._exited)
                quiet = 0 if busy else quiet + 1
                self._finish_gone()
                # The guardian (the tree's last resort if proclab is SIGKILLed) hears of new
                # processes at once, of the others' ends once a tick. The family reaps
                # nothing here: proclab reaps its own children itself, for their statuses.
                due = time.monotonic() - looked >= self.interval
                if due:
                    looked = time.monotonic()
                    self._look_at_sockets()
                if self._family is not None and (born or due):
                    self._family.look(reap=False)
                self._check_done()
            except Exception:  # a walker that dies silently would freeze the tree
                import traceback

                traceback.print_exc()

    def _look_at_sockets(self) -> None:
        """Once a tick: the tree's TCP sockets, and what changed since, as server events."""
        events = self._socket_log.look(self._live_ids())
        if events:
            self._registry.emit(list(events))

    def _walk_once(self) -> None:
        with self._lock:
            roots = [self._keys[i][0] for i in self._roots]
            expect = {pid: self._keys[i][1] for pid, i in self._live.items()}
            known = self._known
        # Every live row's pid is a root too: an orphan whose parent died has left the
        # root's subtree (re-parented to proclab, or to init) but not the program.
        found = tree.walk([*roots, *expect], known, expect)
        events: Pending = []
        adopt: list[int] = []
        with self._lock:
            self._known = found
            for process in found.values():
                rec_id = self._see(process, events)
                mine = self.reaps_orphans and process.ppid == self._me
                if rec_id is not None and mine and rec_id not in self._own:
                    adopt.append(rec_id)
            now = time.time()
            for pid, rec_id in list(self._live.items()):
                current = found.get(pid)
                if current is not None and current.start == self._keys[rec_id][1]:
                    continue
                if rec_id in self._own:
                    continue  # reaped by proclab when its pidfd says so
                if rec_id not in self._gone:
                    self._gone[rec_id] = now
        for rec_id in adopt:
            self._adopt(rec_id)
        self._emit(events)

    def _see(self, process: tree.TreeProcess, events: Pending) -> int | None:
        """Under the lock: the row of `process`, made or brought up to date."""
        rec_id = self._live.get(process.pid)
        if rec_id is not None and self._keys[rec_id][1] != process.start:
            self._gone.setdefault(rec_id, time.time())  # its pid was reused: it is gone
            self._finish(rec_id, events)
            rec_id = None
        if rec_id is None:
            if any(self._keys[i] == process.key for i in self._ended_with(process.pid)):
                return None  # ended already (its status came first); /proc lags behind
            return self._new_row(process, events)
        row = self._registry.row(rec_id)
        changes: dict[str, Any] = {}
        command = short_command(process.cmdline) if process.cmdline else row.command
        if command != row.command:  # it exec'd
            changes["command"] = command
            if row.mp is None:
                changes["name"] = process.name
                mp = self._recognise(process, row.parent)
                if mp is not None:
                    changes["mp"] = mp
                    changes["name"] = mp.role or process.name
        if process.state == "Z" and row.state is not ProcState.ZOMBIE and not row.state.is_over:
            changes["state"] = ProcState.ZOMBIE
            last = final_sample(process.pid, row.sample, time.monotonic())
            if last is not None:
                changes["sample"] = last
        if row.parent is None and rec_id not in self._roots and process.ppid in self._live:
            changes["parent"] = self._live[process.ppid]  # seen (by its hello) before its parent
        if changes:
            new = self._registry.update(rec_id, **changes)
            if "state" in changes:
                events.append(StateChanged(new, row.state))
            else:
                events.append(RowUpdated(new))
        return rec_id

    def _recognise(self, process: tree.TreeProcess, parent: int | None) -> MpFacts | None:
        """Under the lock: what its command line says multiprocessing made it."""
        mp = _recognised(process.cmdline)
        if mp is not None and parent is not None and self._registry.row(parent).mp == mp:
            # A child the fork server forked has the server's command line.
            mp = MpFacts(method="forkserver") if mp.role == "forkserver" else None
        return mp

    def _ended_with(self, pid: int) -> list[int]:
        return [i for i, (p, _s) in self._keys.items() if p == pid and i not in self._live.values()]

    def _new_row(
        self,
        process: tree.TreeProcess,
        events: Pending,
        root: bool = False,
        parent: int | None = None,
    ) -> int:
        rec_id = self._registry.new_id()
        self._born = True
        if parent is None and not root:
            parent = self._live.get(process.ppid)
        state = state_for_status(procfs.STATES.get(process.state, "running"))
        mp = self._recognise(process, parent)
        row = ProcessRow(
            id=rec_id,
            name=process.name,
            spec=None,
            state=state,
            pid=process.pid,
            created_at=process.started if process.start != UNSEEN else time.time(),
            started_at=process.started if process.start != UNSEEN else None,
            parent=parent,
            command=_command_of(process),
            mp=mp,
        )
        if row.mp is not None and row.mp.role:
            row = replace(row, name=row.mp.role)
        self._registry.add(row)
        self._keys[rec_id] = process.key
        self._ppids[rec_id] = process.ppid
        self._live[process.pid] = rec_id
        events.append(Spawned(row))
        if self._family is not None and root:
            self._family.started(process.pid)
        if not root:
            self._watch_exit(rec_id, process)
        return rec_id

    def _watch_exit(
        self, rec_id: int, process: tree.TreeProcess, pipes: tuple[int, int] | None = None
    ) -> None:
        """Under the lock: be told the moment the process ends (its pidfd: any process's,
        not only a child's), to read its last figures while it is a zombie and to know
        when it ended, whoever reaps it."""
        exit_fds: tuple[int, ...] = ()
        with contextlib.suppress(OSError):
            exit_fds = (os.pidfd_open(process.pid),)
        same = tree.describe(process.pid, process)
        if exit_fds and (same is None or same.start != process.start):
            os.close(exit_fds[0])  # its pid is another process's now
            exit_fds = ()
        if not exit_fds:
            self._exited.setdefault(rec_id, time.time())  # gone already
            if pipes is None:
                return
        channel = next(self._channels)
        self._exit_channels[channel] = rec_id
        if pipes is not None:
            self._channel_rows[channel] = rec_id
            self._reading.add(channel)
        out_fd, err_fd = pipes or (-1, -1)
        self._watcher.watch(channel, out_fd, err_fd, exit_fds)

    def _adopt(self, rec_id: int) -> None:
        """An orphan of the tree that the kernel re-parented to proclab (the family's
        subreaper): proclab reaps it, so proclab reads its exit status."""
        with self._lock:
            if rec_id in self._own or not self._registry.row(rec_id).state.is_live:
                return
            self._own[rec_id] = self._keys[rec_id][0]
            self._gone.pop(rec_id, None)
            ended = rec_id in self._exited  # else its pidfd's word will reap it
        if ended:
            self._reap(rec_id)

    def _finish_gone(self, force: bool = False) -> None:
        """End the rows of processes the walk saw gone, with the status their parent gave
        if it gave one; a hooked parent is given STATUS_WAIT_S to give it."""
        events: Pending = []
        now = time.time()
        with self._lock:
            for rec_id, since in list(self._gone.items()):
                pid = self._keys[rec_id][0]
                parent = self._parent_pid(rec_id)
                # Its hooked parent's `reaped` comes before the parent's `bye`.
                waiting = parent in self._hooked
                if pid in self._statuses or force or not waiting or now - since >= STATUS_WAIT_S:
                    self._finish(rec_id, events)
        self._emit(events)

    def _parent_pid(self, rec_id: int) -> int | None:
        parent = self._registry.row(rec_id).parent
        return self._keys[parent][0] if parent is not None else None

    def _finish(self, rec_id: int, events: Pending) -> None:
        """Under the lock: the row's process is gone; end its row with what is known."""
        since = self._gone.pop(rec_id, time.time())
        pid = self._keys[rec_id][0]
        if self._live.get(pid) == rec_id:
            del self._live[pid]
        row = self._registry.row(rec_id)
        if row.state.is_over:
            return
        status = self._statuses.pop(pid, None)
        ended_at = self._exited.get(rec_id, since)
        if status is not None:
            changes = _ended(row, status.code, ended_at, status.note, self._final(rec_id, status))
        else:
            changes = {
                "state": ProcState.ENDED,
                "ended_at": ended_at,
                "exit_note": self._unknown_note(rec_id),
            }
        events.append(self._registry.end(rec_id, **changes))

    def _final(self, rec_id: int, status: _Status) -> ProcSample | None:
        """Under the lock: its last figures: read as a zombie, else its reaper's word
        when that is its own CPU time only (it had no children), else the last sample."""
        row = self._registry.row(rec_id)
        if _is_final(row.sample) or status.sample is None or self._has_children(rec_id):
            return row.sample
        return status.sample

    def _unknown_note(self, rec_id: int) -> str:
        parent = self._registry.row(rec_id).parent
        if parent is not None:
            who = self._registry.row(parent)
            return f"exit status seen only by its parent {who.name} ({who.pid})"
        ppid = self._ppids.get(rec_id)
        outside = tree.describe(ppid) if ppid else None  # an attached tree's root's parent
        if outside is not None:
            return f"exit status seen only by its parent {outside.name} ({ppid})"
        return "exit status not known: only its parent could read it"

    def _check_done(self) -> None:
        with self._lock:
            if not self._roots or self._live or self._gone or self._own:
                return
        self._done.set()

    # Exit statuses -----------------------------------------------------------------------

    def _status(self, pid: int, status: _Status, events: Pending) -> None:
        """Under the lock: `pid`'s parent read its exit status (it has been reaped)."""
        rec_id = self._live.get(pid)
        if rec_id is not None and rec_id not in self._own:
            self._statuses[pid] = status
            self._gone.setdefault(rec_id, status.at)
            self._finish(rec_id, events)
            return
        if rec_id is not None:
            return  # proclab reaps it itself
        ended = [i for i in self._ended_with(pid) if self._registry.row(i).state is ProcState.ENDED]
        if not ended and self._recent(pid) is None:
            # Born and reaped between two walks: known by its parent's word only.
            if self._known_pid(status.reaper) is not None:
                rec_id = self._unseen(pid, status.reaper, (), "", events)
                self._statuses[pid] = status
                self._finish(rec_id, events)
            return
        # Ended already, its status unknown until now: the walk saw it go first.
        if ended:
            rec_id = max(ended)
            row = self._registry.row(rec_id)
            new = self._registry.update(
                rec_id,
                **_ended(
                    row,
                    status.code,
                    row.ended_at or status.at,
                    status.note,
                    self._final(rec_id, status),
                ),
            )
            events += [StateChanged(new, row.state), RowUpdated(new)]

    def _on_exit(self, channel: int) -> bool:
        """A pidfd is readable: the process has ended. Its last figures are read now,
        while it is a zombie (if its parent has not reaped it yet); proclab's own children
        are then reaped, by pid."""
        with self._lock:
            rec_id = self._exit_channels.get(channel)
            if rec_id is None:
                return True
            pid, start = self._keys[rec_id]
            first = rec_id not in self._exited
            row = self._registry.row(rec_id)
        if first:
            last = _zombie_sample(pid, start, row)
            self._wake.set()  # the walk that finds it gone ends its row
            with self._lock:
                self._exited.setdefault(rec_id, time.time())
                row = self._registry.row(rec_id)
                if last is not None and not row.state.is_over:
                    self._registry.update(rec_id, sample=last)
                own = rec_id in self._own
        else:
            with self._lock:
                own = rec_id in self._own
        if not own:
            return True
        return self._reap(rec_id)

    def _reap(self, rec_id: int) -> bool:
        """Reap one of proclab's own children by its pid (wait4: its status and CPU
        times); False if it has not ended yet."""
        with self._lock:
            pid = self._own.get(rec_id)
        if pid is None:
            return True
        try:
            reaped, status, usage = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:
            reaped, status, usage = pid, None, None  # reaped by someone else: not ours to read
        if reaped == 0:
            return False
        with self._lock:
            if self._own.pop(rec_id, None) is None:
                return True  # reaped meanwhile by the other thread
            row = self._registry.row(rec_id)
            if self._live.get(pid) == rec_id:
                del self._live[pid]
            self._gone.pop(rec_id, None)
            ended_at = self._exited.get(rec_id, time.time())
            if status is None or usage is None:
                changes: dict[str, Any] = {
                    "state": ProcState.ENDED,
                    "ended_at": ended_at,
                    "exit_note": "exit status not known: reaped before proclab could",
                }
            else:
                code = os.waitstatus_to_exitcode(status)
                sample = row.sample if _is_final(row.sample) else None
                if sample is None and not self._has_children(rec_id):
                    sample = _usage_sample(usage.ru_utime, usage.ru_stime, row.sample)
                note = (
                    "reaped by proclab" if rec_id in self._roots else "reaped by proclab (adopted)"
                )
                changes = _ended(row, code, ended_at, note, sample)
            after = self._registry.end(rec_id, also=self._on_own_exit, **changes)
        after()
        self._check_done()
        return True

    def _has_children(self, rec_id: int) -> bool:
        """Under the lock. A reaper's word on CPU time counts the children it reaped too:
        it is the process's own only when it had none."""
        return any(r.parent == rec_id for r in self._registry.rows())

    def _on_own_exit(self, row: ProcessRow) -> None:
        """One of proclab's own children has been reaped."""

    # The hook's messages ---------------------------------------------------------------

    def _on_message(self, message: Message, fds: PassedFds) -> None:
        events: Pending = []
        watch: tuple[int, int, int] | None = None
        with self._lock:
            if isinstance(message, Hello):
                watch = self._hello(message, fds, events)
            elif isinstance(message, MpStart):
                self._mp_start(message, events)
            elif isinstance(message, MpRun):
                self._mp_run(message, events)
            elif isinstance(message, MpJoin):
                self._mp_join(message, events)
            elif isinstance(message, MpSignal):
                self._call(message.pid, message.child, message.how, message.t, message.t, events)
            elif isinstance(message, Reaped):
                sample = None
                if message.user is not None and message.system is not None:
                    sample = _usage_sample(message.user, message.system, None)
                note = self._reported_by(message.pid, "reaped it")
                status = _Status(message.status, message.t, note, message.pid, sample)
                self._status(message.child, status, events)
            elif isinstance(message, PoolReport):
                self._facts(
                    message.pid,
                    events,
                    pool_kind=message.kind,
                    tasks=message.tasks,
                    calls=message.calls,
                    counts_final=message.final,
                )
            elif isinstance(message, Helper):
                self._facts(message.pid, events, role=message.role)
            elif isinstance(message, Bye):
                self._hooked.discard(message.pid)
            elif isinstance(message, Dropped):
                events.append(
                    Notice(
                        "warning",
                        f"process {message.pid} could not send {plural(message.count, 'message')}"
                        " to proclab (its socket was full): some of its facts are missing",
                        time.time(),
                    )
                )
        if watch is not None:
            self._watcher.watch(*watch, ())
        self._emit(events)

    def _row_for(self, pid: int, events: Pending) -> int | None:
        """Under the lock: the live row of `pid`, made now if the walk has not seen it."""
        rec_id = self._live.get(pid)
        if rec_id is not None:
            return rec_id
        process = tree.describe(pid)
        if process is not None:
            return self._see(process, events)
        return self._recent(pid)

    def _recent(self, pid: int) -> int | None:
        """Under the lock: the row of `pid` if its process ended moments ago (its
        messages come up to ~0.1 s late)."""
        ended = self._ended_with(pid)
        if not ended:
            return None
        rec_id = max(ended)
        ended_at = self._registry.row(rec_id).ended_at
        recent = ended_at is None or time.time() - ended_at < RECENT_S
        return rec_id if recent else None

    def _unseen(self, pid: int, ppid: int, argv: Sequence[str], exe: str, events: Pending) -> int:
        """Under the lock: a row for a process that ended before any walk saw it (it
        lived less than a walk), from what its hook or its parent's said."""
        name = os.path.basename(argv[0]) if argv else "?"
        process = tree.TreeProcess(pid, UNSEEN, ppid, 0, "X", name, tuple(argv), exe)
        rec_id = self._new_row(process, events, parent=self._known_pid(ppid))
        self._gone.setdefault(rec_id, time.time())
        return rec_id

    def _hello(
        self, message: Hello, fds: PassedFds, events: Pending
    ) -> tuple[int, int, int] | None:
        rec_id = self._row_for(message.pid, events)
        if rec_id is None:  # gone already: what it printed is still in its pipes
            rec_id = self._unseen(message.pid, message.ppid, message.argv, message.exe, events)
        elif self._registry.row(rec_id).name == "?":  # made from its parent's word: now named
            row = self._registry.update(
                rec_id, name=os.path.basename(message.argv[0]) if message.argv else "?"
            )
        self._hooked.add(message.pid)
        row = self._registry.row(rec_id)
        if message.argv:
            command = short_command(message.argv)
            if command != row.command:
                row = self._registry.update(rec_id, command=command)
                events.append(RowUpdated(row))
        passed = dict(zip(message.streams, fds.take(), strict=False))
        if not passed:
            return None
        channel = next(self._channels)
        self._channel_rows[channel] = rec_id
        self._reading.add(channel)
        return channel, passed.get("stdout", -1), passed.get("stderr", -1)

    def _facts(self, pid: int, events: Pending, **facts: object) -> int | None:
        rec_id = self._row_for(pid, events)
        if rec_id is None:
            return None
        row = self._registry.row(rec_id)
        mp = replace(row.mp or MpFacts(), **facts)  # type: ignore[arg-type]
        name = mp.name or mp.role or row.name
        if mp != row.mp or name != row.name:
            row = self._registry.update(rec_id, mp=mp, name=name)
            events.append(RowUpdated(row))
        return rec_id

    def _mp_start(self, message: MpStart, events: Pending) -> None:
        self._start_calls[message.child] = message.t_call
        ran = self._runs.get(message.child)
        if self._row_for(message.child, events) is None and self._known_pid(message.pid):
            # Started and gone before proclab heard of it (a kill() right after start()).
            self._unseen(message.child, message.pid, (), "", events)
        self._facts(
            message.child,
            events,
            name=message.name,
            target=message.target,
            args=message.args,
            kwargs=message.kwargs,
            daemon=message.daemon,
            method=message.method,
            **({"ran_after": ran - message.t_call} if ran is not None else {}),
        )
        self._call(message.pid, message.child, "start", message.t_call, message.t, events)

    def _mp_run(self, message: MpRun, events: Pending) -> None:
        self._runs[message.pid] = message.t
        called = self._start_calls.get(message.pid)
        facts: dict[str, object] = {"name": message.name}
        if message.target is not None:
            facts["target"] = message.target
        if called is not None:
            facts["ran_after"] = message.t - called
        self._facts(message.pid, events, **facts)

    def _mp_join(self, message: MpJoin, events: Pending) -> None:
        self._call(
            message.pid,
            message.child,
            "join",
            message.t_call,
            message.t,
            events,
            timeout=message.timeout,
            ended=message.ended,
            exitcode=message.exitcode,
        )
        if message.ended and message.exitcode is not None:
            note = self._reported_by(message.pid, "joined it")
            self._status(
                message.child, _Status(message.exitcode, message.t, note, message.pid), events
            )

    def _call(
        self,
        pid: int,
        child: int,
        call: str,
        called: float,
        returned: float,
        events: Pending,
        **extra: object,
    ) -> None:
        caller = self._row_for(pid, events)
        if caller is None:
            return
        child_id = self._live.get(child)
        if child_id is None:
            ended = self._ended_with(child)
            child_id = max(ended) if ended else None
        child_name = self._registry.row(child_id).name if child_id is not None else str(child)
        events.append(
            ProcessCall(
                id=caller,
                pid=pid,
                name=self._registry.row(caller).name,
                call=call,  # type: ignore[arg-type]
                child_id=child_id,
                child_pid=child,
                child_name=child_name,
                called_at=called,
                returned_at=returned,
                **extra,  # type: ignore[arg-type]
            )
        )

    def _known_pid(self, pid: int) -> int | None:
        """Under the lock: the row of `pid`, live or ended moments ago (a process's
        messages are read up to ~0.1 s after it sent them, maybe after its end)."""
        rec_id = self._live.get(pid)
        return rec_id if rec_id is not None else self._recent(pid)

    def _reported_by(self, pid: int, how: str) -> str:
        rec_id = self._known_pid(pid)
        name = self._registry.row(rec_id).name if rec_id is not None else "?"
        return f"reported by its parent {name} ({pid}), which {how}"

    # Output and samples -----------------------------------------------------------------

    def _on_line(self, channel: int, stream: str, text: str) -> None:
        with self._lock:
            rec_id = self._channel_rows.get(channel)
        if rec_id is not None:
            self._registry.add_line(rec_id, stream, text)  # type: ignore[arg-type]

    def _on_closed(self, channel: int) -> None:
        with self._lock:
            self._reading.discard(channel)

    def _live_ids(self) -> dict[int, int]:
        with self._lock:
            return {i: pid for pid, i in self._live.items()}

    # Events ------------------------------------------------------------------------------

    def _emit(self, events: Iterable[Event | Callable[[], None]]) -> None:
        """Events, and what an end returned to call (its events, its joiners), in order;
        never under the lock."""
        for event in events:
            if callable(event):
                event()
            else:
                self._registry.emit([event])

    def _notice(self, level: str, text: str) -> None:
        self._registry.notice(level, text)  # type: ignore[arg-type]


class WatchedProgram(WatchedTree):
    """`proclab watch -- COMMAND`: runs the command as it is, in a session of its own,
    stdin from /dev/null (or `stdin`), its stdout and stderr on pipes proclab reads, in the
    caller's directory and environment (plus the hook's), under proclab's process family,
    so nothing of it outlives proclab."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        **options: object,
    ) -> None:
        self.argv = tuple(argv)
        self.cwd = cwd
        self._env = dict(os.environ if env is None else env)
        self._stdin_path = stdin
        self._executable = check_command(self.argv, cwd)  # before anything is made
        if stdin is not None and not os.path.isfile(stdin):
            raise WatchError(f"--stdin {stdin}: no such file")
        super().__init__(**options)  # type: ignore[arg-type]
        self._popen: subprocess.Popen[bytes] | None = None
        self._root_id: int | None = None

    @property
    def exitcode(self) -> int | None:
        """The program's (the root's) exit code: -N if a signal N ended it."""
        if self._root_id is None:
            return None
        return self._registry.row(self._root_id).exitcode

    @property
    def root(self) -> ProcessRow | None:
        return self._registry.get(self._root_id) if self._root_id is not None else None

    def start(self) -> WatchedProgram:
        if self._started:
            return self
        # First, as the Controller does: a family may move proclab into a cgroup, where
        # the program is then born.
        self._family = Family(self._family_bound)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin: IO[bytes] | int
        try:
            stdin = open(self._stdin_path, "rb") if self._stdin_path else subprocess.DEVNULL  # noqa: SIM115
        except OSError as exc:
            _close_all(out_r, out_w, err_r, err_w)
            self._abandon()
            raise WatchError(f"--stdin {self._stdin_path}: {exc.strerror}") from None
        env = self._env
        if self._hook_server is not None:
            env = self._hook_server.environment(env, output_fds=(out_w, err_w))
        try:
            self._popen = subprocess.Popen(
                self.argv,
                executable=self._executable,
                stdin=stdin,
                stdout=out_w,
                stderr=err_w,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            _close_all(out_r, err_r)
            self._abandon()
            raise WatchError(f"{self.argv[0]}: {exc.strerror or exc}") from None
        finally:
            _close_all(out_w, err_w)
            if not isinstance(stdin, int):
                stdin.close()
        pid = self._popen.pid
        events: Pending = []
        with self._lock:
            process = tree.describe(pid) or _launched(pid, self.argv)
            rec_id = self._root_id = self._new_row(process, events, root=True)
            self._roots.append(rec_id)
            row = self._registry.update(rec_id, command=short_command(self.argv))
            events[-1] = Spawned(row)
            self._own[rec_id] = pid
            self._begin()
            self._watch_exit(rec_id, process, (out_r, err_r))
        self._walker.start()
        self._emit(events)
        return self

    def _abandon(self) -> None:
        if self._hook_server is not None:
            self._hook_server.close()
        if self._family is not None:
            self._family.close()

    def _on_own_exit(self, row: ProcessRow) -> None:
        if row.id != self._root_id:
            return
        if self._family is not None and row.pid is not None:
            self._family.ended(row.pid)
        if self._popen is not None:
            # Reaped here, by its pid: Popen must not try (it would find no child).
            self._popen.returncode = row.exitcode if row.exitcode is not None else -1


# Helpers -------------------------------------------------------------------------------------


def _recognised(cmdline: Sequence[str]) -> MpFacts | None:
    """multiprocessing's own children, told by their command lines (a spawn child, the
    fork server, the resource tracker): what /proc alone can say."""
    text = " ".join(cmdline)
    if "from multiprocessing.spawn import spawn_main" in text:
        return MpFacts(method="spawn")
    if "from multiprocessing.forkserver import main" in text:
        return MpFacts(role="forkserver")
    if "from multiprocessing.resource_tracker import main" in text:
        return MpFacts(role="resource_tracker")
    return None


def _ended(
    row: ProcessRow, code: int, at: float, note: str, sample: ProcSample | None
) -> dict[str, Any]:
    """How a row ends with a known exit status."""
    return {
        "state": state_for_exit(code),
        "exitcode": code,
        "ended_at": at,
        "exit_note": note,
        "sample": sample or row.sample,
    }


def _usage_sample(user: float, system: float, previous: ProcSample | None) -> ProcSample:
    """A final sample from the CPU times its reaper read (wait4's rusage); status
    "zombie" marks figures read at its end, as the Controller's final samples are."""
    now = time.monotonic()
    return ProcSample(
        time=now,
        interval=now - previous.time if previous else 0.0,
        status="zombie",
        cpu_percent=0.0,
        cpu_user=user,
        cpu_system=system,
        cpu_delta=max(0.0, user + system - (previous.cpu_time if previous else 0.0)),
        run_delay_delta=0.0,
        run_delay=previous.run_delay if previous else 0.0,
        rss=0,
        threads=previous.threads if previous else 1,
        core=previous.core if previous else None,
        ctx_voluntary=previous.ctx_voluntary if previous else 0,
        ctx_involuntary=previous.ctx_involuntary if previous else 0,
    )


def _command_of(process: tree.TreeProcess) -> str:
    if process.cmdline:
        return short_command(process.cmdline)
    if process.start == UNSEEN:
        return "(ended before a walk saw it)"
    return f"[{process.name}]"  # a kernel thread, or a zombie: as ps shows them


def _is_final(sample: ProcSample | None) -> bool:
    """Figures read at the process's end (as a zombie, or its reaper's rusage)."""
    return sample is not None and sample.status == "zombie"


def _zombie_sample(pid: int, start: int, row: ProcessRow) -> ProcSample | None:
    """Its last figures, if /proc still shows it (a zombie not reaped yet)."""
    process = tree.describe(pid)
    if process is None or process.start != start or process.state != "Z":
        return None
    age = time.time() - row.started_at if row.started_at is not None else 0.0
    return final_sample(pid, row.sample, time.monotonic() - age)


def _launched(pid: int, argv: Sequence[str]) -> tree.TreeProcess:
    """The root when /proc no longer shows it (it ended at once): what proclab knows."""
    return tree.TreeProcess(
        pid, 0, os.getpid(), pid, "Z", os.path.basename(argv[0]), tuple(argv), ""
    )


def _signal_same(pid: int, start: int, sig: int) -> bool:
    """Signal `pid` if it is still the process that started at `start`."""
    try:
        if procfs.brief(pid).start != start:
            return False
        os.kill(pid, sig)
        return True
    except (OSError, ValueError, IndexError):
        return False


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def _close_all(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


if TYPE_CHECKING:

    def _has_the_face(program: WatchedProgram) -> ProcessSource:
        return program  # mypy checks that a watched program is a ProcessSource
