"""The controller: owns every child proclab starts, and everything known about them.

Consumers (the app, the CLI, the tests) call its commands and read frozen snapshots
(`rows()`, `system()`, `output()`), or subscribe to its events. It composes:

- a registry (core/registry.py): the rows, output, events and joins, and the lock rule;
- a launcher (core/launcher.py), on its own thread: Process.start() so a slow start
  (spawn: ~60 ms) never blocks a caller;
- a reaper (core/reaping.py), on the watcher's thread: children's output, and each
  child's end the moment it happens;
- signals (core/signals.py): terminate, kill, pause, resume, the fork-bomb guard;
- the sampler (core/sampler.py), on its thread: the machine and the live children every
  `interval` seconds;
- the family (core/family.py): every child and its descendants, for the shutdown.

Subscribers are called from those threads, never under the controller's lock, so they may
call back into the controller; they must be quick (hand the event to their own thread).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from proclab.core import fd_limit, methods, procfs, shell
from proclab.core.cpus import usable_cpus
from proclab.core.defaults import (
    DEFAULT_GRACE_S,
    DEFAULT_INTERVAL_S,
    DEFAULT_MAX_DESCENDANTS,
    DEFAULT_MAX_PROCS,
    DEFAULT_METHOD,
)
from proclab.core.errors import AlreadyPending, SpawnRefused
from proclab.core.exits import state_for_exit
from proclab.core.family import ZOMBIE, Bound, Family
from proclab.core.launcher import Launcher
from proclab.core.model import (
    SERVER_TAG,
    Event,
    OutputLine,
    ProcessRow,
    ProcessSpec,
    ProcState,
    RowUpdated,
    Sampled,
    Spawned,
    SystemSample,
)
from proclab.core.reaping import Reaper
from proclab.core.registry import Registry, RowCallback
from proclab.core.sampler import Sampler, born_monotonic, reported_sample
from proclab.core.signals import Signaller
from proclab.core.source import Capabilities
from proclab.core.spec import check_name
from proclab.core.words import plural

if TYPE_CHECKING:
    from proclab.core.server.tcp import TcpServer
    from proclab.core.source import ProcessSource

DESCRIBED_CHARS = 60  # a process's command line in a notice naming it
HURRY_STEP_S = 0.05  # how soon a shutdown's wait hears hurry()


def past_the_limit(live: int, count: int, max_procs: int) -> str:
    """Why starting `count` more than `live` is refused under --max-procs."""
    if not live:
        return f"{count} children at once are past the limit of {max_procs}; raise --max-procs"
    return (
        f"starting {count} would make {live + count} live children, past the limit"
        f" of {max_procs}; let some finish, or raise --max-procs"
    )


class Controller:
    # proclab's own children: it may do everything to them, and quitting ends them.
    capabilities = Capabilities(
        spawn=True,
        signal=True,
        rename=True,
        restart=True,
        join=True,
        clear=True,
        server=True,
        ends_on_quit=True,
    )

    def __init__(
        self,
        *,
        max_procs: int = DEFAULT_MAX_PROCS,
        sample_interval: float = DEFAULT_INTERVAL_S,
        grace: float = DEFAULT_GRACE_S,
        max_descendants: int = DEFAULT_MAX_DESCENDANTS,
        titles: bool = True,
        family: Bound | None = None,
        default_method: str = DEFAULT_METHOD,
    ) -> None:
        self.max_procs = max_procs
        self.max_descendants = max_descendants
        self.grace = grace
        # The start method a view offers new processes first (the spawn form's, the
        # status line's); each spec names its own.
        self.default_method = default_method
        self._registry = Registry()
        self._lock = self._registry.lock  # the one lock: see core/registry.py
        self._reaper = Reaper(self._registry)
        self._launcher = Launcher(self._registry, self._reaper, titles=titles)
        self._signals = Signaller(self._registry, max_descendants=max_descendants)
        self._sampler = Sampler(
            sample_interval,
            self._registry.live_pids,
            self._on_sample,
            max_descendants,
            self._signals.guard,
        )
        self._numbered: dict[str, int] = {}  # a name given to copies: the last number used
        self._restarting: set[int] = set()  # records whose restart waits for their end
        self._started = False
        self._closed = False
        self._hurried = threading.Event()  # hurry(): the grace of a shutdown is cut short
        self._server: TcpServer | None = None
        self._family_bound = family
        self._family: Family | None = None  # every child and its descendants, from start()
        self._adopted_told: set[tuple[int, int]] = set()  # (pid, start) of those said

    # Life cycle ------------------------------------------------------------------------

    def start(self) -> Controller:
        if self._started:
            return self
        # First: a family may move this process into a cgroup, where the fork server that
        # prepare() starts is then born.
        family = self._family = Family(self._family_bound)
        self._launcher.family = self._reaper.family = self._signals.family = family
        methods.prepare()
        fd_limit.raise_own()
        self._launcher.start()
        self._reaper.start()
        self._sampler.start()
        self._started = True
        return self

    def __enter__(self) -> Controller:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, grace: float | None = None) -> None:
        """End every child (SIGTERM, then SIGKILL after `grace`), reap them, stop threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True  # from here on spawn() refuses
        self.shutdown_children(self.grace if grace is None else grace)
        self._launcher.stop()
        self._sampler.stop()
        self._reaper.stop()
        if self._family is not None:
            self._family.close()

    def hurry(self) -> None:
        """Cut the grace of a shutdown short, now or to come: what is left gets SIGKILL
        (a second Ctrl+C, where the first began a wait of --grace seconds)."""
        self._hurried.set()

    @property
    def closed(self) -> bool:
        """close() has begun: spawn() refuses from then on."""
        return self._closed

    @property
    def family(self) -> Family | None:
        """What holds every child and its descendants (None before start())."""
        return self._family

    def shutdown_children(self, grace: float) -> None:
        """terminate -> wait up to `grace` -> kill -> wait: no child is left running, and
        none of their own processes (the family: see family.py), those that left their
        child's process group or outlived it included. Children still waiting to be
        started are cancelled. The server stops first, saying why: its processes are
        among them, and their end was logged as its error ("its server process ended
        (exited, exit 0)") when the app quit."""
        server = self._server
        if server is not None:
            server.stop("proclab is closing")
        with self._launcher.gate, self._lock:
            afters = self._launcher.cancel_all("not started: proclab was shutting down")
            live = [i for i in self._registry.awaited() if self.row(i).pid is not None]
            pids = {self.row(i).pid for i in live}
        for after in afters:
            after()
        family = self._family
        strays = self._strays(pids)
        if not live and not strays:
            return
        for rec_id in live:
            self._signals.send(rec_id, signal.SIGTERM, descendants=False)  # strays: theirs
        if family is not None and strays:
            # Named first: their command lines are gone once they have ended.
            self._registry.notice(
                "info",
                f"{plural(len(strays), 'process')} that children started left their process"
                f" group or outlived their parent: {_describe(strays)}",
            )
            family.signal(strays, signal.SIGTERM)
            family.signal(strays, signal.SIGCONT)  # a stopped process acts on it once woken
        sent = [plural(len(live), "child")] if live else []
        sent += [plural(len(strays), "such process")] if strays else []
        self._registry.notice(
            "info", f"sent SIGTERM to {' and '.join(sent)}; waiting up to {grace:g} s"
        )
        deadline = time.monotonic() + grace
        joined = False
        while not self._hurried.is_set() and (wait := deadline - time.monotonic()) > 0:
            # in steps, so that hurry() is heard (a second Ctrl+C)
            joined = joined or self.join(live, timeout=min(wait, HURRY_STEP_S))
            strays = _still_there(strays)
            if joined and not strays:
                break
            if joined:
                time.sleep(0.01)
        strays = _still_there(strays)
        stubborn = self._registry.still_live(live)
        if stubborn or strays:
            late = [plural(len(stubborn), "child")] if stubborn else []
            late += [plural(len(strays), "such process")] if strays else []
            when = (
                "asked not to wait"
                if self._hurried.is_set()
                else f"still running {grace:g} s after SIGTERM"
            )
            self._registry.notice("warning", f"{' and '.join(late)} {when}: sending SIGKILL")
        for rec_id in stubborn:
            self._signals.send(rec_id, signal.SIGKILL)
        if family is not None:
            family.kill_all()  # whatever is left, born meanwhile included
        if stubborn and not self.join(stubborn, timeout=5.0):
            left = self._registry.still_live(stubborn)
            self._registry.notice(
                "error", f"{plural(len(left), 'child')} did not exit after SIGKILL"
            )

    def _strays(self, pids: set[int | None]) -> dict[int, procfs.Brief]:
        """The family's processes that a SIGTERM to the live children's process groups
        would not reach."""
        if self._family is None:
            return {}
        # Those that still run, read again now (the family's word may be a tick old): a
        # forkserver child whose fork server was killed has ended with it, a zombie
        # adopted by proclab, and was named as one that outlived its parent.
        return _still_there(
            {
                pid: brief
                for pid, brief in self._family.members().items()
                if pid not in pids and brief.pgid not in pids
            }
        )

    # Subscribing and reading ---------------------------------------------------------

    def emit_event(self, event: Event) -> None:
        """Hand an event to every subscriber (the TCP server reports through here)."""
        self._registry.emit([event])

    def emit_events(self, events: list[Event]) -> None:
        """emit_event for each, in order."""
        self._registry.emit(events)

    @property
    def server(self) -> TcpServer:
        """The TCP echo server, created on first use; stopped by close()."""
        from proclab.core.server.tcp import TcpServer  # here: most sessions never serve

        with self._lock:
            if self._server is None:
                self._server = TcpServer(self)
            return self._server

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback` with every event, from the controller's threads."""
        return self._registry.subscribe(callback)

    def rows(self) -> tuple[ProcessRow, ...]:
        return self._registry.rows()

    def row(self, rec_id: int) -> ProcessRow:
        return self._registry.row(rec_id)

    def system(self) -> SystemSample | None:
        return self._registry.system()

    def output(self, rec_id: int, last: int | None = None) -> tuple[OutputLine, ...]:
        return self._registry.output(rec_id, last)

    def live_count(self) -> int:
        return self._registry.live_count()

    def strays(self) -> tuple[int, ...]:
        if self._family is None:
            return ()
        return tuple(p for p, b in self._family.adopted().items() if b.state != ZOMBIE)

    def set_interval(self, seconds: float) -> None:
        self._sampler.set_interval(seconds)

    def usable_cpus(self) -> tuple[int, ...]:
        """The CPUs children may be pinned to."""
        return usable_cpus()

    @property
    def interval(self) -> float:
        return self._sampler.interval

    def describe(self) -> str:
        return f"new: {self.default_method}, tick {self.interval:g} s, max {self.max_procs}"

    # Commands --------------------------------------------------------------------------

    def spawn(
        self,
        spec: ProcessSpec,
        count: int = 1,
        *,
        tag: str | None = None,
        keep_fds: tuple[int, ...] = (),
        parent_id: int | None = None,
        on_started: RowCallback | None = None,
        shown_spec: ProcessSpec | None = None,
    ) -> tuple[int, ...]:
        """Ask for `count` copies of `spec`; returns their record ids at once.

        The rows appear in state `starting`; the launcher thread starts them in order.
        `keep_fds`: inherited fds a fork child keeps (everything else is closed in it).
        `on_started(row)`: called once each start has been tried (row.pid is None if it
        failed); whatever the child was handed (a socket) may be closed then.
        `shown_spec`: what the row shows, when `spec` holds objects (a socket) that mean
        nothing on screen.
        """
        if count < 1:
            raise SpawnRefused(f"count must be at least 1, got {count}")
        events: list[Event] = []
        with self._lock:
            if not self._started or self._closed:
                raise SpawnRefused("the controller is not running")
            live = self._registry.live_count()
            if live + count > self.max_procs:
                raise SpawnRefused(past_the_limit(live, count, self.max_procs))
            ids: list[int] = []
            for name in self._names(spec.name, count):
                rec_id = self._registry.new_id()
                batch = (ids[0] if ids else rec_id) if count > 1 else None
                # A copy only for a new name: each costs a fork child's parent a few pages
                # written after the last fork (page faults: benchmarks/spawn.py).
                named = spec if name == spec.name else replace(spec, name=name)
                row = ProcessRow(
                    id=rec_id,
                    name=self._launcher.prepare(rec_id, named, keep_fds, on_started),
                    spec=named if shown_spec is None else replace(shown_spec, name=name),
                    state=ProcState.STARTING,
                    created_at=time.time(),
                    tag=tag,
                    parent_id=parent_id,
                    batch=batch,
                )
                self._registry.add(row)
                events.append(Spawned(row))
                ids.append(rec_id)
        self._registry.emit(events)
        for rec_id in ids:
            self._launcher.launch_later(rec_id)
        return tuple(ids)

    def add_reported(
        self,
        name: str,
        pid: int,
        spec: ProcessSpec,
        *,
        tag: str,
        parent: int | None,
        started_at: float | None = None,
    ) -> int:
        """A row for a process one of proclab's children started and told proclab of (the
        TCP server process's handlers). It is sampled and signalled as proclab's own are;
        its parent tells how it ended (`end_reported`). `started_at`: when it began, where
        known (else now, when proclab heard of it)."""
        now = time.time() if started_at is None else started_at
        row = ProcessRow(
            id=self._registry.new_id(),
            name=name,
            spec=spec,
            state=ProcState.RUNNING,
            pid=pid,
            created_at=now,
            started_at=now,
            tag=tag,
            parent=parent,
        )
        self._registry.add(row)
        self._registry.emit([Spawned(row)])
        return row.id

    def set_start_latency(self, rec_id: int, seconds: float, born: float | None = None) -> None:
        """How long start() took for a reported row, as its parent timed it; `born`: when
        that start() began, where its life counts from (as a child of proclab's own)."""
        with self._lock:
            if born is None:
                row = self._registry.update(rec_id, start_latency=seconds)
            else:
                row = self._registry.update(rec_id, start_latency=seconds, started_at=born)
        self._registry.emit([RowUpdated(row)])

    def allow_descendants(self, rec_id: int, count: int) -> None:
        """Let this child have up to `count` processes of its own before the fork-bomb
        guard ends it (the TCP server process: one per client)."""
        self._signals.allow_descendants(rec_id, count)

    def end_reported(
        self,
        rec_id: int,
        exitcode: int | None,
        figures: tuple[float, float, int, int, float] | None,
        note: str = "",
    ) -> None:
        """A reported row's process has ended: its exit code (None: not known, `note`
        says why) and its CPU figures (its rusage and run-queue wait), if told."""
        with self._lock:
            row = self._registry.get(rec_id)
            if row is None or row.state.is_over:
                return
            sample = row.sample
            if figures is not None:
                previous = self._registry.current_sample(row)
                sample = reported_sample(figures, previous, born_monotonic(row))
            after = self._registry.end(
                rec_id,
                state=ProcState.ENDED if exitcode is None else state_for_exit(exitcode),
                exitcode=exitcode,
                sample=sample,
                ended_at=time.time(),
                exit_note=note,
            )
        after()

    def _names(self, name: str | None, count: int) -> list[str | None]:
        """Under the lock. Copies of one name are numbered as multiprocessing numbers its
        default names, never reusing a number: mine-1..mine-10, then mine-11... A single
        child keeps its name as given (the lesson's name='process-2')."""
        if name is None or count == 1:
            return [name] * count
        last = self._numbered.get(name, 0)
        self._numbered[name] = last + count
        return [f"{name}-{n}" for n in range(last + 1, last + count + 1)]

    def wait_started(self, ids: Iterable[int], timeout: float = 30.0) -> bool:
        """Block until none of `ids` is still `starting`."""
        return self._registry.wait_started(ids, timeout)

    def terminate(self, rec_id: int, escalate_after: float | None = None) -> None:
        """SIGTERM to the child's process group (and SIGCONT, so a paused child gets it).
        With escalate_after, SIGKILL follows if it is still running that much later."""
        self._signals.terminate(rec_id, escalate_after)

    def kill(self, rec_id: int) -> None:
        self._signals.kill(rec_id)

    def pause(self, rec_id: int) -> None:
        """SIGSTOP to the child's group (once its start-up is done)."""
        self._signals.pause(rec_id)

    def resume(self, rec_id: int) -> None:
        self._signals.resume(rec_id)

    def rename(self, rec_id: int, name: str) -> None:
        """Rename the parent's handle (Process.name), as the lesson's p.name = '...' does;
        the child's own Process.name and its process title keep the name it started with.
        A restart starts under the new name (the spec is what restarts)."""
        new_name = check_name(name)
        if new_name is None:
            return
        with self._lock:
            row = self.row(rec_id)
            self._launcher.rename(rec_id, new_name)
            row = self._registry.update(
                rec_id, name=new_name, spec=replace(row.own_spec, name=new_name)
            )
        self._registry.emit([RowUpdated(row)])

    def restart(self, rec_id: int) -> None:
        """Start the same spec again as a new row; a running child is terminated first.
        One restart at a time: asked again while its child is still ending, it raises
        AlreadyPending and starts nothing more."""
        row = self.row(rec_id)
        if row.tag == SERVER_TAG:
            raise SpawnRefused(
                f"{row.name} is the TCP server's own process: stop and start the server instead"
            )
        if row.tag is not None:  # a handler's (its client) or a pool worker's
            raise SpawnRefused(
                f"{row.name} was started by the TCP server, for its clients: it cannot be"
                " restarted on its own (stop and start the server)"
            )
        with self._lock:
            if rec_id in self._restarting:  # also just after its end, until it has started
                raise AlreadyPending(
                    f"{row.name} is already restarting: it starts again once it has ended"
                )
            if not row.state.is_over:
                self._restarting.add(rec_id)
        if row.state.is_over:
            self.spawn(row.own_spec, parent_id=rec_id)
            return

        def again(_: ProcessRow) -> None:
            try:
                with contextlib.suppress(SpawnRefused):
                    self.spawn(row.own_spec, parent_id=rec_id)
            finally:
                with self._lock:
                    self._restarting.discard(rec_id)

        self.on_exit(rec_id, again)
        if row.pid is not None:
            self.terminate(rec_id, escalate_after=self.grace)

    def clear_exited(self) -> int:
        """Forget every record whose process has ended; returns how many."""
        return self._registry.clear_exited()

    def forget(self, ids: Iterable[int]) -> int:
        """Forget these records, those of them whose process has ended; returns how many."""
        return self._registry.forget(ids)

    # Joining -----------------------------------------------------------------------------

    def on_exit(self, rec_id: int, callback: RowCallback) -> None:
        """Call `callback(row)` once the child has ended (at once if it already has)."""
        self._registry.on_exit(rec_id, callback)

    def join(self, ids: Iterable[int], timeout: float | None = None) -> bool:
        """Block until every child in `ids` has ended; False if `timeout` came first.
        For threads other than an event loop's: use join_async or on_exit there."""
        return self._registry.join(ids, timeout)

    async def join_async(self, ids: Iterable[int], timeout: float | None = None) -> bool:
        """Await every child in `ids`; the event loop keeps running meanwhile."""
        return await self._registry.join_async(ids, timeout)

    # The sampler's callback --------------------------------------------------------------

    def _on_sample(self, sampled: Sampled) -> None:
        if self._family is not None:
            # reaps adopted orphans: once a tick is soon enough
            self._tell_adopted(self._family.look())
        self._registry.sampled(sampled)

    def _tell_adopted(self, alive: dict[int, procfs.Brief]) -> None:
        """Processes a child started that outlived it (proclab, their subreaper, adopted
        them, `alive`) are said once: a child ended with `t` whose own children ignored
        SIGTERM read "1 live · 1 ended" while they ran on, named only at quit."""
        new = {p: b for p, b in alive.items() if (p, b.start) not in self._adopted_told}
        self._adopted_told = {(p, b.start) for p, b in alive.items()}
        if new:
            self._registry.notice(
                "warning",
                f"{plural(len(new), 'process')} that children started outlived"
                f" {'its' if len(new) == 1 else 'their'} parent and"
                f" {'runs' if len(new) == 1 else 'run'} on, adopted by proclab (ended when it"
                f" quits): {_describe(new)}",
            )


if TYPE_CHECKING:

    def _has_the_face(controller: Controller) -> ProcessSource:
        return controller  # mypy checks that a Controller is a ProcessSource


def _describe(processes: dict[int, procfs.Brief], most: int = 5) -> str:
    """ "1234 sleep 300, 1240 python3 -c 'import time; …' and 3 more": by command line
    while the process still runs (its 15-character command name cut `python3 worker.py
    --port 80` to `python3`), by that name once it has none (a zombie, a kernel thread)."""
    named = [f"{pid} {_command(pid, brief)}" for pid, brief in sorted(processes.items())[:most]]
    more = len(processes) - len(named)
    return ", ".join(named) + (f" and {more} more" if more else "")


def _command(pid: int, brief: procfs.Brief) -> str:
    argv = procfs.read_cmdline(pid)
    if not argv:
        return brief.name
    text = shell.join(argv)
    return text if len(text) <= DESCRIBED_CHARS else text[: DESCRIBED_CHARS - 1] + "…"


def _still_there(processes: dict[int, procfs.Brief]) -> dict[int, procfs.Brief]:
    """Those of `processes` that still run (the same process: pid and start time)."""
    left = {}
    for pid, brief in processes.items():
        with contextlib.suppress(OSError, ValueError, IndexError):
            now = procfs.brief(pid)
            if now.start == brief.start and now.state != "Z":
                left[pid] = brief
    return left
