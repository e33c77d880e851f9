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

Where each part lives: WatchedTree (here) composes them, and keeps reading, commands,
the life cycle and the walker's loop; the book of rows, made and ended from a walk or a
parent's word, is rows.py; ends as they happen and proclab's own reaping, exits.py; the
hooks' messages, messages.py; which row each ChildWatcher channel is, channels.py.

Threads: the hook server's (messages), a ChildWatcher (output pipes, exits), the tree
walker, and a Sampler (figures, once per interval). Subscribers are called from those
threads, never under the lock, as the Controller does. One lock, the registry's, guards
the state of every part (core/registry.py: the lock rule).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING

from proclab.core import fd_limit, procfs
from proclab.core.controller import _describe, _still_there
from proclab.core.cpus import usable_cpus
from proclab.core.defaults import DEFAULT_GRACE_S, DEFAULT_INTERVAL_S
from proclab.core.errors import ProclabError, UnknownProcess
from proclab.core.family import Bound, Family
from proclab.core.model import (
    Event,
    OutputLine,
    ProcessRow,
    ProcessSpec,
    Spawned,
    Stream,
    SystemSample,
)
from proclab.core.registry import Registry, hand_out
from proclab.core.sampler import Sampler
from proclab.core.signals import read_state_after_signal
from proclab.core.source import Capabilities, NotAllowed, ServerLike
from proclab.core.watch import tree
from proclab.core.watch.channels import Channels
from proclab.core.watch.exits import Reaper
from proclab.core.watch.hook_server import HookServer, HookStats
from proclab.core.watch.in_order import InOrder
from proclab.core.watch.messages import HookMessages
from proclab.core.watch.protocol import Unread, unread_on
from proclab.core.watch.rows import STATUS_WAIT_S, Pending, TreeRows, short_command
from proclab.core.watch.sockets import SocketLog
from proclab.core.watcher import ChildWatcher

if TYPE_CHECKING:
    from proclab.core.source import ProcessSource
from proclab.core.words import plural

WALK_S = 0.2  # how often the tree is walked: benchmarks/watch_tree.py prices a walk
QUIET_WALKS = 5  # walks that found nothing new before walking once a tick only
FULL_WALK_S = 60.0  # a quiet tree is walked at least this often, whatever else says
CLOSE_READ_S = 30.0  # at most this long, at the end, for what waits in the tree's pipes


class WatchError(ProclabError):
    """The program cannot be watched (no such command, no such process, not allowed)."""


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
    # A process not walked, with all below it: proclab itself, where an attached tree
    # holds it (attach to the shell that started it). Its row took a pause: proclab
    # stopped itself, every key dead; a kill ended it with the terminal left raw.
    leave_out = 0

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
        self._socket_log = SocketLog()
        self._stop = threading.Event()
        self._wake = threading.Event()  # walk now: a process ended, or proclab is closing
        self._done = threading.Event()  # the roots have ended and nothing of the tree is left
        self._started = False
        self._closed = False
        self._hurried = threading.Event()  # hurry(): the grace of a shutdown is cut short
        self._session: int | None = None  # the program's session (_begin)
        self._watcher = ChildWatcher(
            self._on_line,
            self._on_exit,
            self._on_closed,
            self._before_lines,
            self._after_lines,
            self._cut,
        )
        # The collaborators, all under the registry's lock: the book of rows (rows.py),
        # the ends and reaping (exits.py), the hooks' messages (messages.py).
        self._channels = Channels()
        self._rows = TreeRows(self._registry, self._watch_exit)
        self._reaper = Reaper(
            self._rows,
            self._channels,
            self._watcher,
            wake=self._wake,
            on_own_exit=self._on_own_exit,
            check_done=self._check_done,
            settle=self._deliver_all,
            emit=self._emit,
        )
        self._sampler = Sampler(
            sample_interval, self._live_ids, self._registry.sampled, None, on_names=self._names_seen
        )
        self._exec_seen = False  # a sampled command name differs from the walk's: walk
        self._walker = threading.Thread(target=self._walk_loop, name="proclab-tree", daemon=True)
        # The watcher's thread's own (_before_lines): channels of named processes that are
        # no root and have started no child, as of how many processes had started one.
        self._plain_channels: dict[int, int] = {}  # channel -> its process's pid
        self._parents_known = 0
        messages = self._messages = HookMessages(
            self._rows, self._channels, self._watcher, self._emit
        )
        self._hook_server: HookServer | None = (
            HookServer(messages.on_message, in_turn=self._in_turn, all_told=self._all_told)
            if hook
            else None
        )
        if self._hook_server is not None:
            self._watcher.wait_for(self._hook_server.held)
        self._family_bound = family
        self._family: Family | None = None
        self.server: ServerLike | None = None  # a watched tree has no server of proclab's
        # Every subscriber hears the registry's events through one InOrder: the app, a
        # recording and the headless stream tell the same story in the same order.
        self._subscribers: tuple[Callable[[Event], None], ...] = ()
        self._in_order = InOrder(self, self._hand_out)
        self._registry.subscribe(self._in_order)

    # Reading -------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback` with every event, in the order things happened (in_order.py),
        from the source's threads."""
        with self._lock:
            self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    def _hand_out(self, event: Event) -> None:
        hand_out(self._subscribers, event)

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

    def strays(self) -> tuple[int, ...]:
        return ()  # every process of the tree has a row

    def running_count(self) -> int:
        """Of the processes not seen ended, those running now, read from /proc: not a
        zombie, nor one its parent reaped since the last walk (what to say is still
        running, or is being ended)."""
        running = 0
        for pid in self._registry.live_pids().values():
            try:
                state = procfs.brief(pid).state
            except (OSError, ValueError, IndexError):
                continue
            running += state not in ("Z", "X")
        return running

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
        command = root.command or root.name
        interpreter, _, script = command.partition(" ")
        if script.startswith("-"):  # python -c CODE, -m MODULE: no script to name first
            return f"watching {os.path.basename(interpreter)} {script} (pid {root.pid})"
        if script and os.path.basename(interpreter).startswith("python"):
            # The program first: at 80 columns "watching /home/me/.venv/bin/python" was
            # all the line had room for.
            return f"watching {script} (pid {root.pid}, {os.path.basename(interpreter)})"
        return f"watching {command} (pid {root.pid})"

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
            pid, start = self._rows.keys[rec_id]
        self._refuse_own(row.name, pid)
        refresh = sig in (signal.SIGSTOP, signal.SIGCONT)
        if refresh:
            self._registry.refresh_begins(rec_id)  # ended by read_state_after_signal
        if not _signal_same(pid, start, sig):
            if refresh:
                self._registry.refresh_ends(rec_id)
            raise UnknownProcess(f"{row.name} ({pid}) has already ended")
        if sig == signal.SIGTERM:  # a stopped process acts on it once continued
            _signal_same(pid, start, signal.SIGCONT)
        if refresh:
            read_state_after_signal(self._registry, rec_id, pid, sig)

    @staticmethod
    def _refuse_own(name: str, pid: int) -> None:
        """proclab's own ancestors are no processes to signal from inside it: stopping or
        ending the shell it runs in stops or ends it too."""
        if pid in procfs.ancestors(os.getpid()):
            raise NotAllowed(
                f"{name} ({pid}) is one of proclab's own parents: signalling it from here"
                " could stop or end proclab (use another terminal)"
            )

    # Life cycle --------------------------------------------------------------------------

    def _begin(self) -> None:
        """Start the threads (the roots are known or being launched)."""
        # Read now, while the root lives: once it is reaped its session cannot be read,
        # and every process left would be taken for one that had left it.
        roots = self._rows.roots
        self._session = _sid(self._rows.keys[roots[0]][0]) if roots else None
        fd_limit.raise_own()
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
            # What waits its turn goes as the watcher reads the lines before it; closing
            # the hook server lets the rest go at once, before the tree's last lines.
            deadline = time.monotonic() + 1.0
            while self._hook_server.held and time.monotonic() < deadline:
                time.sleep(0.01)
            self._hook_server.close()  # no pipes come after this
        # What the tree wrote last is still in its pipes: a second for an open pipe to
        # close, and while bytes wait in one, until they are read (a flood of lines to a
        # slow reader of proclab's own output takes seconds), up to half a minute.
        began = time.monotonic()
        while self._channels.reading and time.monotonic() - began < CLOSE_READ_S:
            if time.monotonic() - began >= 1.0 and not self._unread_left():
                break
            time.sleep(0.01)
        self._sampler.stop()
        self._watcher.stop()
        self._finish_gone(force=True)
        self._in_order.close()  # every end told: nothing held is waited for any more
        if self._family is not None:
            self._family.close()

    def _settle(self) -> None:
        """The last word: wait (briefly) for proclab's own children to be reaped and for
        the hooks' last messages, then walk once more."""
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            with self._lock:
                own_left = bool(self._rows.own)
            if not own_left:
                break
            time.sleep(0.01)
        if self._hook_server is not None:
            # The hooks' last messages (a reaped, a join, the hello of a process that
            # lived moments, with its pipes) may still wait to be read: read before the
            # last walk, whose rows are the only ones it can end (rows.walked).
            time.sleep(STATUS_WAIT_S)
            self._deliver_all()
        self._walk_once()

    def hurry(self) -> None:
        """Cut the grace of a shutdown short, now or to come (a second Ctrl+C)."""
        self._hurried.set()

    def shutdown_children(self, grace: float) -> None:
        """End every process of the tree (and of the family: orphans, those that left the
        session): SIGTERM (and SIGCONT), up to `grace` seconds, then SIGKILL."""
        targets = self._everything()
        if not targets:
            return
        left_session = {p: b for p, b in targets.items() if _sid(p) not in (self._session, None)}
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
        while left and time.monotonic() < deadline and not self._hurried.is_set():
            time.sleep(0.02)
            left = _still_there(self._everything())
        left = _still_there(self._everything())  # hurried before a look: those that ended
        if left:
            when = (
                "asked not to wait"
                if self._hurried.is_set()
                else f"still running {grace:g} s after SIGTERM"
            )
            self._notice(
                "warning",
                f"{plural(len(left), 'process')} {when}: sending SIGKILL: {_describe(left)}",
            )
            for pid, brief in left.items():
                _signal_same(pid, brief.start, signal.SIGKILL)
            if self._family is not None:
                # Not reaped here: the watch's reaper reads each status (a SIGKILL of its
                # own), where this reap, first, left it "not known" (3 of 8 quits).
                self._family.kill_all(reap=False)

    def _everything(self) -> dict[int, procfs.Brief]:
        """Every live process of the tree now, and of the family."""
        with self._lock:
            keys = {pid: self._rows.keys[i][1] for pid, i in self._rows.live.items()}
        found = {}
        for pid, start in keys.items():
            with contextlib.suppress(OSError, ValueError, IndexError):
                brief = procfs.brief(pid)
                if brief.start == start and brief.state != "Z":
                    found[pid] = brief
        if self._family is not None and self.ends_on_quit:
            found.update(self._family.members())
        return found

    # The tree --------------------------------------------------------------------------

    def _walk_loop(self) -> None:
        """Walk every walk_interval while the tree changes; once it has been quiet for
        QUIET_WALKS walks, once a tick (the sampling interval): a process that shows
        within one tick is the promise, and a steady tree of 200 costs a fifth as much
        (benchmarks/watch_cost.py). A hook's hello (a Python process born) or an end
        makes it busy again; ends themselves are seen at once (pidfds), never by a walk.

        A quiet tick walks only if a process was born anywhere on the machine since the
        last walk (its fork count moved), the sampler read a command name that is not the
        walk's (an exec), a process of the tree is young enough to exec yet (under the same
        name), or FULL_WALK_S has passed."""
        looked = walked = time.monotonic()
        quiet, forks = 0, None
        while not self._stop.is_set():
            self._wake.wait(self.walk_interval if quiet < QUIET_WALKS else self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                forks_now = tree.forks()  # before the walk: a fork during it shows next time
                if (
                    quiet < QUIET_WALKS
                    or self._exec_seen
                    or forks_now is None
                    or forks_now != forks
                    or time.monotonic() - walked >= FULL_WALK_S
                    or tree.any_young(self._rows.known.values())
                ):
                    forks, walked = forks_now, time.monotonic()
                    self._exec_seen = False
                    self._walk_once()
                with self._lock:
                    born, busy = self._rows.changed()
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

    def _names_seen(self, names: dict[int, str]) -> None:
        """The sampler's tick: a process whose command name is not the one the last walk
        read has exec'd (without forking, or the fork count would have said so)."""
        known = self._rows.known
        if any(p in known and known[p].name != name for p, name in names.items()):
            self._exec_seen = True
            self._wake.set()

    def _look_at_sockets(self) -> None:
        """Once a tick: the tree's TCP sockets, and what changed since, as server events."""
        events = self._socket_log.look(self._live_ids())
        if events:
            self._registry.emit(list(events))

    def _walk_once(self) -> None:
        with self._lock:
            roots, expect, known = self._rows.walk_from()
        # Every live row's pid is a root too: an orphan whose parent died has left the
        # root's subtree (re-parented to proclab, or to init) but not the program. So is
        # each orphan proclab adopted before any walk saw it (`sh -c 'sleep 30 & exit'`:
        # the sleep was ended as the program's, and shown in no row).
        orphans = self._family.adopted() if self._family is not None and self.reaps_orphans else {}
        began = time.monotonic()
        found = tree.walk([*roots, *expect, *orphans], known, expect, self.leave_out)
        events: Pending = []
        waits = self._waits(found)
        with self._lock:
            adopt = self._rows.walked(found, events, self.reaps_orphans, expect, waits, began)
        for rec_id in adopt:
            self._reaper.adopt(rec_id)
        self._emit(events)

    def _waits(self, found: Mapping[int, tree.TreeProcess]) -> set[int]:
        """The processes a walk found that wait for something before their rows are made:
        their hello (held behind the lines their parent printed before them), or their
        parent's word on what it did before starting them."""
        server = self._hook_server
        if server is None:
            return set()
        waits = server.hellos_held()
        new = [p for p in found.values() if p.pid not in self._rows.live]
        for ppid in {p.ppid for p in new}:
            server.deliver_pending(ppid)  # what its parent said first, still in its socket
        if server.held:
            # A start time is in clock ticks: one it may be late by is waited for too.
            tick = 1 / procfs.CLOCK_TICKS
            waits.update(p.pid for p in new if server.said_before(p.ppid, p.started + tick))
        return waits

    # The subclasses' start() (WatchedProgram, attach.AttachedTree) make and watch their
    # roots through these three.

    def _new_row(self, process: tree.TreeProcess, events: Pending, root: bool = False) -> int:
        """Under the lock: a row for `process` (a root: the family hears of it)."""
        rec_id = self._rows.new_row(process, events, root=root)
        if self._family is not None and root:
            self._family.started(process.pid)
        return rec_id

    def _watch_exit(
        self, rec_id: int, process: tree.TreeProcess, pipes: tuple[int, int] | None = None
    ) -> None:
        self._reaper.watch_exit(rec_id, process, pipes)

    @property
    def _roots(self) -> list[int]:
        return self._rows.roots

    def _finish_gone(self, force: bool = False) -> None:
        with self._lock:
            gone = bool(self._rows.gone)
            waited_on = self._rows.waited_on(time.time()) if gone else set()
        if gone:
            self._deliver_all()
        if waited_on and self._hook_server is not None:
            # Their word on a child's end may wait its turn behind lines not read yet:
            # the child's row is ended now, with it rather than without.
            self._hook_server.release_now(waited_on)
        events: Pending = []
        with self._lock:
            self._rows.finish_gone(events, force)
        self._emit(events)

    def _check_done(self) -> None:
        with self._lock:
            if not self._rows.all_ended():
                return
        if self._orphans_unseen():
            self._walk_once()  # their rows: the program is not over while they run
            with self._lock:
                if not self._rows.all_ended():
                    return
        self._done.set()

    def _orphans_unseen(self) -> bool:
        """Processes of the program re-parented to proclab that no walk has seen: their
        parent ended before one could (a shell's `sleep 30 &`, then its exit)."""
        if self._family is None or not self.reaps_orphans:
            return False
        with self._lock:
            live = set(self._rows.live)
        adopted = self._family.adopted()
        return any(b.state != "Z" and pid not in live for pid, b in adopted.items())

    def _on_own_exit(self, row: ProcessRow) -> None:
        """One of proclab's own children has been reaped."""

    # Output and samples -----------------------------------------------------------------

    def _before_lines(self, channel: int) -> bool:
        """What a hooked process said before it wrote what was just read from its pipes
        (a message is in its socket before the line is in its pipe) is delivered first:
        its multiprocessing name names the line, and a join or a reap it made before
        printing is told before the line; and the hellos of processes born meanwhile,
        whose pipes are then read before this chunk. For a named process that is no root and
        has started no child (a pool's worker printing a flood), only if it has sent
        something (one epoll_wait): a delivery per chunk read cost proclab 13 % more CPU
        watching 8 children print 20,000 lines each, and without any, the lines a worker
        printed after renaming itself in its initializer carried its old name."""
        parents = len(self._messages.parents)
        if parents != self._parents_known:  # a process started its first child: ask again
            self._plain_channels.clear()
            self._parents_known = parents
        plain = self._plain_channels.get(channel)
        if plain is not None and (self._hook_server is None or not self._hook_server.sent(plain)):
            return True
        with self._lock:
            rec_id = self._channels.output_row(channel)
            if rec_id is None:
                return True
            row = self._registry.row(rec_id)
            pid = row.pid
            if pid is None or pid not in self._rows.hooked:
                return True
            named = row.mp is not None and bool(row.mp.name)
            if named and rec_id not in self._rows.roots and pid not in self._messages.parents:
                self._plain_channels[channel] = pid
                if self._hook_server is None or not self._hook_server.sent(pid):
                    return True
        self._deliver_pending(pid)
        if self._hook_server is None:
            return True
        # A process born since the last sweep may have printed before this (and told
        # this one so): its hello brings its pipes, which the watcher reads first.
        self._hook_server.deliver_new()
        self._child_first(pid)
        # Unless this process said something after writing part of this chunk (a start()
        # waits its turn): those bytes came before the processes born since.
        return self._hook_server.held_head(pid) is None

    def _after_lines(self, channel: int) -> None:
        """What the channel's process said after writing the chunk just told: its turn
        may have come (hook_server: in_turn)."""
        pid = self._messages.channel_pid.get(channel)
        if pid is None or self._hook_server is None:
            return
        self._hook_server.release(pid)
        self._child_first(pid)

    def _child_first(self, pid: int) -> None:
        """On the watcher's thread, before more of `pid`'s lines go out: when the first
        thing it said that waits its turn is its word on a child's end (a reap, a join),
        and the lines it wrote before that word have been told, the child's lines are read
        now and the word goes. The child has ended, so all it wrote is in its pipes; the
        rest of `pid`'s chunk came after (a line printed after waitpid() or join() was
        told before the child's lines). And so on for each end it said next: with two
        children joined in turn, the second's lines, end and join came after the line
        printed after both joins (4 runs in 5 under fork)."""
        server = self._hook_server
        if server is None or not self._watcher.on_its_thread():
            return
        while (child := server.end_waiting(pid)) is not None:
            if not self._in_turn(pid, server.held_head(pid)):
                return
            server.release(child)  # its hello, whose turn has come by now
            self._read_own(child)
            server.release(pid)
            if server.end_waiting(pid) == child:
                return  # its lines are not all in yet (a pipe a process it left holds)

    def _cut(self, channel: int, stream: Stream) -> int | None:
        """Where in the channel's `stream` bytes those written before the first thing its
        process said that waits its turn end (in_turn); None: nothing waits."""
        pid = self._messages.channel_pid.get(channel)
        head = self._hook_server.held_head(pid) if self._hook_server and pid else None
        count = unread_on(head, stream)
        if head is None or count is None:
            return None
        return self._watcher.written_before(channel, stream, head[0], count)

    def _in_turn(self, pid: int, unread: Unread) -> bool:
        """Whether the lines process `pid` wrote to its own pipes before a message it made
        with `unread` bytes still in them have been handed out."""
        channel = self._messages.own_channel.get(pid)
        if channel is None or unread is None:
            return True
        streams: tuple[Stream, Stream] = ("stdout", "stderr")
        return all(
            (count := unread_on(unread, stream)) is None
            or self._watcher.told_through(channel, stream, unread[0], count)
            for stream in streams
        )

    def _all_told(self, pid: int) -> bool:
        """Whether everything process `pid` has written to its own pipes so far has been
        handed out: a parent's word on its end (a reap, a join) comes after its lines."""
        channel = self._messages.own_channel.get(pid)
        return channel is None or self._watcher.all_told(channel)

    def _on_line(self, channel: int, stream: str, text: str, continues: bool) -> None:
        with self._lock:
            rec_id = self._channels.output_row(channel)
        if rec_id is not None:
            self._registry.add_line(rec_id, stream, text, continues)  # type: ignore[arg-type]

    def _deliver_pending(self, pid: int) -> None:
        if self._hook_server is not None:
            self._hook_server.deliver_pending(pid)

    def _deliver_all(self) -> None:
        """Every hook message sent so far, before an end is told: the ends and the pipes
        (hellos) of processes that ended before it are known first."""
        if self._hook_server is None:
            return
        self._hook_server.deliver_all()
        gone = self._hook_server.held_gone()
        if gone and self._watcher.on_its_thread():
            # Processes gone have written all they will: their lines are read now, and
            # what they said after them goes in its turn (in_turn), or at least now.
            # Elsewhere than on the watcher's thread their lines are read as it comes to
            # them (a parent's word on a child's end waits STATUS_WAIT_S: waited_on).
            for pid in gone:
                self._read_own(pid)
                # Its word on a child's end comes after what that child said and wrote:
                # the child's hello (which waited for the lines just read), its lines,
                # each in turn with what it said after writing them. Released whole
                # before its lines were read, a fork child's rename came before the line
                # it printed first (3 runs of 4, a watched program).
                for child in self._hook_server.ends_held(pid):
                    self._hook_server.release_hello_now(child)
                    self._read_own(child)
                    self._hook_server.release_now([child])
            self._hook_server.release_now(gone)

    def output_open(self, rec_id: int) -> bool:
        """Whether a pipe the row's process printed to is still open: lines it wrote
        before it ended may still be on their way."""
        with self._lock:
            return bool(self._channels.reading_for(rec_id))

    def _unread_left(self) -> bool:
        """Whether anything the tree printed waits in its pipes, not read yet."""
        with self._lock:
            channels = self._channels.reading_channels()
        return self._unread(channels)

    def output_unread(self, rec_id: int) -> bool:
        """Whether what the row's process printed waits in its pipes, not read yet."""
        with self._lock:
            channels = self._channels.reading_for(rec_id)
        return self._unread(channels)

    def _unread(self, channels: list[int]) -> bool:
        return any(self._watcher.unread(channel) for channel in channels)

    def _on_exit(self, channel: int) -> bool:
        # What it wrote to the pipes it took for itself (its hello's) is told first, and
        # with it what it said after writing it (a start, a reap: in_turn), before its
        # end ends its children's rows.
        with self._lock:
            rec_id = self._channels.exit_row(channel)
            pid = self._rows.keys[rec_id][0] if rec_id is not None else None
        if pid is not None:
            self._read_own(pid)
        return self._reaper.on_exit(channel)

    def _read_own(self, pid: int) -> None:
        """On the watcher's thread, for a process that has ended: what it wrote to the
        pipes it took for itself, read now (ChildWatcher.drain)."""
        channel = self._messages.own_channel.get(pid)
        if channel is not None:
            self._watcher.drain(channel)

    def _on_closed(self, channel: int) -> None:
        with self._lock:  # under which a hello sets them
            pid = self._messages.channel_pid.pop(channel, None)
            if pid is not None and self._messages.own_channel.get(pid) == channel:
                del self._messages.own_channel[pid]  # all it wrote there has been told
            self._channels.closed(channel)
        self._in_order.tick()  # an end that waited for this pipe may go now

    def _live_ids(self) -> dict[int, int]:
        with self._lock:
            return {i: pid for pid, i in self._rows.live.items()}

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
        self._executable = check_command(self.argv, cwd)  # before anything is made
        if stdin is not None and not os.path.exists(stdin):
            raise WatchError(f"--stdin {stdin}: no such file")
        if stdin is not None and os.path.isdir(stdin):  # a pipe (`<(…)`) or a device will do
            raise WatchError(f"--stdin {stdin}: is a directory, not a file to read")
        # Opened before anything is made, as a shell's `< FILE` is: a FIFO holds the open
        # until a writer comes, and Ctrl+C or SIGTERM must still end proclab then. Opened
        # in start(), after its signal handlers and its hook's folder, neither could.
        self._stdin: IO[bytes] | None = None
        if stdin is not None:
            try:
                self._stdin = open(stdin, "rb")  # noqa: SIM115
            except OSError as exc:
                raise WatchError(f"--stdin {stdin}: {exc.strerror}") from None
        try:
            super().__init__(**options)  # type: ignore[arg-type]
        except BaseException:
            self._close_stdin()
            raise
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
        if self._hook_server is not None:
            self._family.leaves_folder(self._hook_server.directory)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin: IO[bytes] | int = self._stdin if self._stdin is not None else subprocess.DEVNULL
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
            self._close_stdin()
        pid = self._popen.pid
        events: Pending = []
        # As /proc and the hook write it: proclab's own argv holds a lone surrogate for a
        # byte that is not UTF-8, and the same command line read two ways was an exec.
        argv = tuple(procfs.arg_text(os.fsencode(arg)) for arg in self.argv)
        with self._lock:
            process = tree.describe(pid) or _launched(pid, argv)
            rec_id = self._root_id = self._new_row(process, events, root=True)
            self._roots.append(rec_id)
            row = self._registry.update(rec_id, command=short_command(argv))
            events[-1] = Spawned(row)
            self._rows.own[rec_id] = pid
            self._begin()
            self._watch_exit(rec_id, process, (out_r, err_r))
        self._walker.start()
        self._emit(events)
        return self

    def _close_stdin(self) -> None:
        if self._stdin is not None:
            self._stdin.close()
            self._stdin = None

    def close(self, grace: float | None = None) -> None:
        self._close_stdin()  # never started
        super().close(grace)

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
