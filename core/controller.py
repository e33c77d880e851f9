"""The controller: owns every child proclab starts, and everything known about them.

Consumers (the app, the CLI, the tests) call its commands and read frozen snapshots
(`rows()`, `system()`, `output()`), or subscribe to its events. Its own threads:

- launcher: calls Process.start() so a slow start (spawn: ~60 ms) never blocks a caller;
- watcher:  reads children's output pipes and reaps each child the moment it ends;
- sampler:  measures the machine and the live children every `interval` seconds.

Subscribers are called from those threads, never under the controller's lock, so they may
call back into the controller; they must be quick (hand the event to their own thread).
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing.process
import os
import queue
import resource
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

from proclab.core import methods, procfs
from proclab.core.bootstrap import (
    DEFERRED_SIGNALS,
    EXIT_RECORD,
    ChildPayload,
    InheritedFd,
    child_main,
    parse_exit_record,
)
from proclab.core.cpus import usable_cpus
from proclab.core.defaults import (
    DEFAULT_GRACE_S,
    DEFAULT_INTERVAL_S,
    DEFAULT_MAX_DESCENDANTS,
    DEFAULT_MAX_PROCS,
    DEFAULT_METHOD,
)
from proclab.core.errors import AlreadyPending, SpawnRefused, UnknownProcess
from proclab.core.exits import state_for_exit, state_for_status
from proclab.core.family import Bound, Family
from proclab.core.model import (
    Cleared,
    Event,
    Exited,
    Notice,
    OutputLine,
    ProcessRow,
    ProcessSpec,
    ProcSample,
    ProcState,
    RowUpdated,
    Sampled,
    Spawned,
    StateChanged,
    SystemSample,
)
from proclab.core.output import TracebackCollector
from proclab.core.sampler import Sampler, final_sample, reported_sample
from proclab.core.source import Capabilities
from proclab.core.spec import check_name
from proclab.core.watcher import ChildWatcher
from proclab.core.words import plural

if TYPE_CHECKING:
    import asyncio

    from proclab.core.server.tcp import TcpServer
    from proclab.core.source import ProcessSource

OUTPUT_LINES_KEPT = 500


@dataclass(slots=True)
class _Child:
    """What the controller holds for one record while its process may still run."""

    process: BaseProcess
    stdout_r: int
    stderr_r: int
    stdout_w: int
    stderr_w: int
    done: threading.Event = field(default_factory=threading.Event)
    exit_callbacks: list[Callable[[ProcessRow], None]] = field(default_factory=list)
    started_mono: float = 0.0
    final_sample: ProcSample | None = None
    reported: tuple[float, float, int, int, float] | None = None  # the child's own exit record
    on_started: Callable[[ProcessRow], None] | None = None


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
        # The start method a view offers new processes first (the spawn form's, the
        # status line's); each spec names its own.
        self.default_method = default_method
        self.titles = titles  # children set their process title (ps, htop) to name and target
        self.max_descendants = max_descendants
        self.grace = grace
        self._lock = threading.RLock()
        # One Process.start() at a time: start() polls every process in multiprocessing's
        # own child set, and ours leave that set under this lock, so no start() ever
        # reads the exit status of a child the watcher is reaping.
        self._start_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._numbered: dict[str, int] = {}  # a name given to copies: the last number used
        self._rows: dict[int, ProcessRow] = {}
        self._children: dict[int, _Child] = {}
        self._outputs: dict[int, deque[OutputLine]] = {}
        self._tracebacks: dict[int, TracebackCollector] = {}
        self._system: SystemSample | None = None
        self._subscribers: list[Callable[[Event], None]] = []
        self._launch_queue: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._launcher = threading.Thread(
            target=self._launch_loop, name="proclab-launcher", daemon=True
        )
        self._watcher = ChildWatcher(self._on_line, self._on_exit, self._on_closed)
        self._sampler = Sampler(
            sample_interval, self._live_pids, self._on_sample, max_descendants, self._on_family
        )
        self._stopped_families: set[int] = set()
        self._restarting: set[int] = set()  # records whose restart waits for their end
        # Held by the launcher while it starts one child, so that shutdown sees every
        # child either started (and ends it) or not yet started (and cancels it).
        self._launch_gate = threading.Lock()
        self._started = False
        self._closed = False
        self._server: TcpServer | None = None
        self._family_bound = family
        self._family: Family | None = None  # every child and its descendants, from start()

    # Life cycle ------------------------------------------------------------------------

    def start(self) -> Controller:
        if self._started:
            return self
        # First: a family may move this process into a cgroup, where the fork server that
        # prepare() starts is then born.
        self._family = Family(self._family_bound)
        methods.prepare()
        _raise_fd_limit()
        self._launcher.start()
        self._watcher.start()
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
            server = self._server
        if server is not None:
            server.stop("proclab is closing")
        self.shutdown_children(self.grace if grace is None else grace)
        self._launch_queue.put(None)
        if self._launcher.is_alive():
            self._launcher.join(timeout=5)
        self._sampler.stop()
        self._watcher.stop()
        if self._family is not None:
            self._family.close()

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
        started are cancelled."""
        with self._launch_gate, self._lock:
            afters = [
                self._not_started(i, "not started: proclab was shutting down")
                for i, r in list(self._rows.items())
                if r.state is ProcState.STARTING
            ]
            live = [i for i in self._children if self._rows[i].pid is not None]
            pids = {self._rows[i].pid for i in live}
        for after in afters:
            after()
        family = self._family
        strays = self._strays(pids)
        if not live and not strays:
            return
        for rec_id in live:
            self._signal(rec_id, signal.SIGTERM, descendants=False)  # strays have theirs
        if family is not None and strays:
            family.signal(strays, signal.SIGTERM)
            family.signal(strays, signal.SIGCONT)  # a stopped process acts on it once woken
            self._notice(
                "info",
                f"{plural(len(strays), 'process')} that children started left their process"
                f" group or outlived their parent: {_describe(strays)}",
            )
        sent = [plural(len(live), "child")] if live else []
        sent += [plural(len(strays), "such process")] if strays else []
        self._notice("info", f"sent SIGTERM to {' and '.join(sent)}; waiting up to {grace:g} s")
        deadline = time.monotonic() + grace
        self.join(live, timeout=grace)
        while strays and time.monotonic() < deadline:
            strays = _still_there(strays)
            if strays:
                time.sleep(0.01)
        strays = _still_there(strays)
        stubborn = self._still_live(live)
        if stubborn or strays:
            late = [plural(len(stubborn), "child")] if stubborn else []
            late += [plural(len(strays), "such process")] if strays else []
            self._notice(
                "warning",
                f"{' and '.join(late)} still running {grace:g} s after SIGTERM: sending SIGKILL",
            )
        for rec_id in stubborn:
            self._signal(rec_id, signal.SIGKILL)
        if family is not None:
            family.kill_all()  # whatever is left, born meanwhile included
        if stubborn and not self.join(stubborn, timeout=5.0):
            self._notice(
                "error",
                f"{plural(len(self._still_live(stubborn)), 'child')} did not exit after SIGKILL",
            )

    def _strays(self, pids: set[int | None]) -> dict[int, procfs.Brief]:
        """The family's processes that a SIGTERM to the live children's process groups
        would not reach."""
        if self._family is None:
            return {}
        return {
            pid: brief
            for pid, brief in self._family.members().items()
            if pid not in pids and brief.pgid not in pids
        }

    # Subscribing and reading ---------------------------------------------------------

    def emit_event(self, event: Event) -> None:
        """Hand an event to every subscriber (the TCP server reports through here)."""
        self._emit([event])

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
        with self._lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    def rows(self) -> tuple[ProcessRow, ...]:
        with self._lock:
            return tuple(self._rows.values())

    def row(self, rec_id: int) -> ProcessRow:
        with self._lock:
            try:
                return self._rows[rec_id]
            except KeyError:
                raise UnknownProcess(f"no process #{rec_id} (cleared?)") from None

    def system(self) -> SystemSample | None:
        return self._system

    def output(self, rec_id: int, last: int | None = None) -> tuple[OutputLine, ...]:
        with self._lock:
            lines = tuple(self._outputs.get(rec_id, ()))
        return lines if last is None else lines[-last:]

    def live_count(self) -> int:
        with self._lock:
            return sum(1 for r in self._rows.values() if r.state.is_live)

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
        on_started: Callable[[ProcessRow], None] | None = None,
        shown_spec: ProcessSpec | None = None,
        here: bool = False,
    ) -> tuple[int, ...]:
        """Ask for `count` copies of `spec`; returns their record ids at once.

        The rows appear in state `starting`; the launcher thread starts them in order.
        `keep_fds`: inherited fds a fork child keeps (everything else is closed in it).
        `on_started(row)`: called once each start has been tried (row.pid is None if it
        failed); whatever the child was handed (a socket) may be closed then.
        `shown_spec`: what the row shows, when `spec` holds objects (a socket) that mean
        nothing on screen.
        `here`: start in the calling thread, before returning (the TCP server's accept
        thread: one hand-off less per connection). That thread must block
        DEFERRED_SIGNALS, as the launcher does, and outlive the children it starts.
        """
        if count < 1:
            raise SpawnRefused(f"count must be at least 1, got {count}")
        events: list[Event] = []
        with self._lock:
            if not self._started or self._closed:
                raise SpawnRefused("the controller is not running")
            live = sum(1 for r in self._rows.values() if r.state.is_live)
            if live + count > self.max_procs:
                raise SpawnRefused(
                    f"starting {count} would make {live + count} live children, past the limit"
                    f" of {self.max_procs}; let some finish, or raise --max-procs"
                )
            ids: list[int] = []
            for name in self._names(spec.name, count):
                rec_id = next(self._ids)
                batch = (ids[0] if ids else rec_id) if count > 1 else None
                child = self._prepare(replace(spec, name=name), keep_fds)
                child.on_started = on_started
                self._children[rec_id] = child
                self._outputs[rec_id] = deque(maxlen=OUTPUT_LINES_KEPT)
                self._tracebacks[rec_id] = TracebackCollector()
                row = ProcessRow(
                    id=rec_id,
                    name=child.process.name,
                    spec=replace(shown_spec or spec, name=name),
                    state=ProcState.STARTING,
                    created_at=time.time(),
                    tag=tag,
                    parent_id=parent_id,
                    batch=batch,
                )
                self._rows[rec_id] = row
                events.append(Spawned(row))
                ids.append(rec_id)
        self._emit(events)
        for rec_id in ids:
            if here:
                self._launch_one(rec_id)
            else:
                self._launch_queue.put(rec_id)
        return tuple(ids)

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
        deadline = time.monotonic() + timeout
        ids = tuple(ids)
        while True:
            with self._lock:
                if all(
                    self._rows[i].state is not ProcState.STARTING for i in ids if i in self._rows
                ):
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)

    def terminate(self, rec_id: int, escalate_after: float | None = None) -> None:
        """SIGTERM to the child's process group (and SIGCONT, so a paused child gets it).
        With escalate_after, SIGKILL follows if it is still running that much later."""
        self._signal(self._live_id(rec_id), signal.SIGTERM)
        if escalate_after is not None:
            timer = threading.Timer(escalate_after, self._escalate, (rec_id, escalate_after))
            timer.daemon = True
            timer.start()

    def kill(self, rec_id: int) -> None:
        self._signal(self._live_id(rec_id), signal.SIGKILL)

    def pause(self, rec_id: int) -> None:
        """SIGSTOP to the child's group; a child still in its start-up is stopped as soon
        as its start-up is done (see bootstrap: stopped earlier, it could outlive proclab)."""
        rec_id = self._live_id(rec_id)
        pid = self.row(rec_id).pid
        assert pid is not None
        if _is_ready(pid):
            self._signal(rec_id, signal.SIGSTOP)
            return

        def when_ready() -> None:
            deadline = time.monotonic() + 60
            while not _is_ready(pid) and time.monotonic() < deadline:
                with self._lock:
                    if self._rows[rec_id].state.is_over:
                        return
                time.sleep(0.002)
            self._signal(rec_id, signal.SIGSTOP)

        threading.Thread(target=when_ready, name="proclab-pause", daemon=True).start()

    def resume(self, rec_id: int) -> None:
        self._signal(self._live_id(rec_id), signal.SIGCONT)

    def rename(self, rec_id: int, name: str) -> None:
        """Rename the parent's handle (Process.name), as the lesson's p.name = '...' does;
        the child's own Process.name and its process title keep the name it started with.
        A restart starts under the new name (the spec is what restarts)."""
        new_name = check_name(name)
        if new_name is None:
            return
        with self._lock:
            row = self.row(rec_id)
            child = self._children.get(rec_id)
            if child is not None:
                child.process.name = new_name
            row = self._rows[rec_id] = replace(
                row, name=new_name, spec=replace(row.spec, name=new_name)
            )
        self._emit([RowUpdated(row)])

    def restart(self, rec_id: int) -> None:
        """Start the same spec again as a new row; a running child is terminated first.
        One restart at a time: asked again while its child is still ending, it raises
        AlreadyPending and starts nothing more."""
        row = self.row(rec_id)
        if row.tag is not None:
            raise SpawnRefused(
                f"{row.name} handled a TCP connection that is gone: it cannot be restarted"
            )
        with self._lock:
            if rec_id in self._restarting:  # also just after its end, until it has started
                raise AlreadyPending(
                    f"{row.name} is already restarting: it starts again once it has ended"
                )
            if not row.state.is_over:
                self._restarting.add(rec_id)
        if row.state.is_over:
            self.spawn(row.spec, parent_id=rec_id)
            return

        def again(_: ProcessRow) -> None:
            try:
                with contextlib.suppress(SpawnRefused):
                    self.spawn(row.spec, parent_id=rec_id)
            finally:
                with self._lock:
                    self._restarting.discard(rec_id)

        self.on_exit(rec_id, again)
        if row.pid is not None:
            self.terminate(rec_id, escalate_after=self.grace)

    def clear_exited(self) -> int:
        """Forget every record whose process has ended; returns how many."""
        with self._lock:
            ended = tuple(i for i, r in self._rows.items() if r.state.is_over)
        return self.forget(ended)

    def forget(self, ids: Iterable[int]) -> int:
        """Forget these records, those of them whose process has ended; returns how many."""
        with self._lock:
            gone = tuple(i for i in ids if i in self._rows and self._rows[i].state.is_over)
            for rec_id in gone:
                del self._rows[rec_id]
                self._outputs.pop(rec_id, None)
                self._tracebacks.pop(rec_id, None)
        if gone:
            self._emit([Cleared(gone)])
        return len(gone)

    # Joining -----------------------------------------------------------------------------

    def on_exit(self, rec_id: int, callback: Callable[[ProcessRow], None]) -> None:
        """Call `callback(row)` once the child has ended (at once if it already has)."""
        with self._lock:
            row = self.row(rec_id)
            child = self._children.get(rec_id)
            if child is not None and not row.state.is_over:
                child.exit_callbacks.append(callback)
                return
        callback(row)

    def join(self, ids: Iterable[int], timeout: float | None = None) -> bool:
        """Block until every child in `ids` has ended; False if `timeout` came first.
        For threads other than an event loop's: use join_async or on_exit there."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for rec_id in tuple(ids):
            with self._lock:
                child = self._children.get(rec_id)
            if child is None:
                continue
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not child.done.wait(remaining):
                return False
        return True

    async def join_async(self, ids: Iterable[int], timeout: float | None = None) -> bool:
        """Await every child in `ids`; the event loop keeps running meanwhile."""
        import asyncio  # here: `proclab run` never needs it

        loop = asyncio.get_running_loop()
        waits = []
        for rec_id in tuple(ids):
            future: asyncio.Future[None] = loop.create_future()

            def done(_: ProcessRow, future: asyncio.Future[None] = future) -> None:
                # the awaiting side may have given up and closed its loop (an app that quit)
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_resolve, future)

            self.on_exit(rec_id, done)
            waits.append(future)
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            return False
        return True

    # Internals: starting ----------------------------------------------------------------

    def _prepare(self, spec: ProcessSpec, keep_fds: tuple[int, ...]) -> _Child:
        ctx = methods.context(spec.method)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        payload = ChildPayload(
            kind=spec.target.kind,
            location=spec.target.location,
            function=spec.target.function,
            args=spec.args,
            kwargs=dict(spec.kwargs),
            cwd=spec.cwd,
            affinity=spec.affinity,
            stdout=InheritedFd(out_w),
            stderr=InheritedFd(err_w),
            method=spec.method,
            keep_fds=keep_fds,
            title_target=spec.target.label if self.titles else None,
        )
        process = ctx.Process(
            target=child_main, args=(payload,), name=spec.name, daemon=spec.daemon
        )
        return _Child(process, out_r, err_r, out_w, err_w)

    def _launch_loop(self) -> None:
        # Inherited by every child started here (see DEFERRED_SIGNALS); signals sent to
        # proclab itself go to a thread that does not block them.
        signal.pthread_sigmask(signal.SIG_BLOCK, DEFERRED_SIGNALS)
        while True:
            rec_id = self._launch_queue.get()
            if rec_id is None:
                return
            self._launch_one(rec_id)

    def _launch_one(self, rec_id: int) -> None:
        with self._launch_gate:
            with self._lock:
                child = self._children.get(rec_id)
                row = self._rows.get(rec_id)
                if child is None or row is None or row.state is not ProcState.STARTING:
                    return
            self._launch(rec_id, child)

    def _launch(self, rec_id: int, child: _Child) -> None:
        process = child.process
        try:
            with self._start_lock:
                began = time.perf_counter()
                process.start()
                latency = time.perf_counter() - began
                # The controller reaps its children itself. Left in multiprocessing's own
                # set, every start() would poll every live child first: with 1,000 of
                # them, starting the last took 70 ms instead of 10.
                multiprocessing.process._children.discard(process)  # type: ignore[attr-defined]
        except Exception as exc:
            os.close(child.stdout_r)
            os.close(child.stderr_r)
            with self._lock:
                after = self._not_started(rec_id, f"could not start: {type(exc).__name__}: {exc}")
            after()
            return
        finally:
            os.close(child.stdout_w)  # the child has its copies; EOF must mean it is done
            os.close(child.stderr_w)
        child.started_mono = time.monotonic()
        if self._family is not None:
            self._family.started(process.pid)  # type: ignore[arg-type]
        with self._lock:
            row = self._rows[rec_id]
            row = self._rows[rec_id] = replace(
                row,
                pid=process.pid,
                state=ProcState.RUNNING,
                started_at=time.time(),
                start_latency=latency,
            )
        self._emit([StateChanged(row, ProcState.STARTING)])
        self._watcher.watch(
            rec_id, child.stdout_r, child.stderr_r, _exit_fds(process, row.spec.method)
        )
        self._run_callbacks([child.on_started] if child.on_started else [], row)

    def _not_started(self, rec_id: int, reason: str) -> Callable[[], None]:
        """Under the lock: mark a record that never got a process. Returns what to call
        once the lock is released (its events and exit callbacks)."""
        row = self._rows[rec_id]
        row = self._rows[rec_id] = replace(
            row, state=ProcState.FAILED, error=reason, ended_at=time.time()
        )
        child = self._children.pop(rec_id)
        child.done.set()
        callbacks, child.exit_callbacks = child.exit_callbacks, []

        def after() -> None:
            self._emit([StateChanged(row, ProcState.STARTING), Exited(row)])
            self._run_callbacks([child.on_started] if child.on_started else [], row)
            self._run_callbacks(callbacks, row)

        return after

    # Internals: signals -----------------------------------------------------------------

    def _live_id(self, rec_id: int) -> int:
        row = self.row(rec_id)
        if row.state.is_over:
            raise UnknownProcess(f"{row.name} has already ended ({row.state})")
        if row.pid is None:
            raise UnknownProcess(f"{row.name} is still starting")
        return rec_id

    def _signal(self, rec_id: int, sig: int, descendants: bool = True) -> None:
        """Signal the child's whole process group (it made one at start-up), so its own
        children get it too; a stopped group is continued so SIGTERM can take effect.
        SIGTERM and SIGKILL also reach the child's descendants that left its group."""
        with self._lock:
            row = self._rows.get(rec_id)
            if row is None or row.pid is None or row.state.is_over:
                return  # reaped meanwhile: its pid may belong to someone else now
            pid = row.pid
            outside: dict[int, procfs.Brief] = {}
            if descendants and sig in (signal.SIGTERM, signal.SIGKILL) and self._family:
                # Listed first: once the child is gone, they are no longer below it.
                outside = {p: b for p, b in self._family.descendants(pid).items() if b.pgid != pid}
            _signal_group(pid, sig)
            if sig == signal.SIGTERM:
                _signal_group(pid, signal.SIGCONT)
            if outside and self._family is not None:
                self._family.signal(outside, sig)
                if sig == signal.SIGTERM:
                    self._family.signal(outside, signal.SIGCONT)
        if sig in (signal.SIGSTOP, signal.SIGCONT):
            self._refresh_state_soon(rec_id)

    def _escalate(self, rec_id: int, waited: float) -> None:
        with self._lock:
            row = self._rows.get(rec_id)
            if row is None or row.state.is_over:
                return
        self._notice(
            "warning",
            f"{row.name} ({row.pid}) still running {waited:g} s after SIGTERM: sending SIGKILL",
        )
        self._signal(rec_id, signal.SIGKILL)

    def _refresh_state_soon(self, rec_id: int) -> None:
        """Read the state the kernel reports shortly after a stop/continue, rather than
        waiting for the next sample."""

        def refresh() -> None:
            with self._lock:
                row = self._rows.get(rec_id)
                pid = row.pid if row else None
            if pid is None:
                return
            for _ in range(20):
                try:
                    state = state_for_status(procfs.read(pid).status)
                except (OSError, ValueError, IndexError):
                    return
                if self._set_live_state(rec_id, state):
                    return
                time.sleep(0.005)

        threading.Thread(target=refresh, name="proclab-state", daemon=True).start()

    def _set_live_state(self, rec_id: int, state: ProcState) -> bool:
        """True if the row changed."""
        with self._lock:
            row = self._rows.get(rec_id)
            if row is None or row.state.is_over or row.state is state:
                return False
            old = row.state
            row = self._rows[rec_id] = replace(row, state=state)
        self._emit([StateChanged(row, old)])
        return True

    # Internals: the watcher's and sampler's callbacks ------------------------------------

    def _on_line(self, rec_id: int, stream: str, text: str) -> None:
        events: list[Event] = []
        with self._lock:
            row = self._rows.get(rec_id)
            if row is None:
                return
            at = text.find(EXIT_RECORD) if stream == "stderr" else -1
            if at != -1:  # the bootstrap's exit record, maybe after an unfinished line
                child = self._children.get(rec_id)
                if child is not None:
                    child.reported = parse_exit_record(text[at:])
                if at == 0:
                    return
                text = text[:at]
            line = OutputLine(rec_id, row.pid or 0, row.name, stream, text, time.time())  # type: ignore[arg-type]
            self._outputs[rec_id].append(line)
            events.append(line)
            collector = self._tracebacks[rec_id]
            if stream == "stderr" and collector.feed(text):
                row = self._rows[rec_id] = replace(
                    row, traceback=collector.traceback, error=collector.error
                )
                events.append(RowUpdated(row))
        self._emit(events)

    def _on_exit(self, rec_id: int) -> bool:
        with self._lock:
            child = self._children.get(rec_id)
            row = self._rows.get(rec_id)
        if child is None or row is None:
            return True
        if child.final_sample is None and row.pid is not None:
            # The child's own exit record (its rusage) if it wrote one; else its figures
            # read while it is a zombie (once reaped they are gone; a forkserver child is
            # reaped by the fork server, often first).
            if child.reported:
                child.final_sample = reported_sample(child.reported, row.sample, child.started_mono)
            else:
                child.final_sample = final_sample(row.pid, row.sample, child.started_mono)
        # exitcode polls waitpid(pid, WNOHANG) (forkserver: reads the status the fork
        # server sent); join(0) would look at the sentinel pipe first, which a grandchild
        # may still hold open.
        exitcode = child.process.exitcode
        if exitcode is None:
            return False
        if self._family is not None and row.pid is not None:
            self._family.ended(row.pid)
        child.process.close()
        with self._lock:
            del self._children[rec_id]
            row = self._rows[rec_id]
            old = row.state
            row = self._rows[rec_id] = replace(
                row,
                state=state_for_exit(exitcode),
                exitcode=exitcode,
                sample=child.final_sample or row.sample,
                ended_at=time.time(),
                started_at=row.started_at or time.time(),
            )
            child.done.set()
            callbacks, child.exit_callbacks = child.exit_callbacks, []
        self._emit([StateChanged(row, old), Exited(row)])
        self._run_callbacks(callbacks, row)
        return True

    def _on_closed(self, rec_id: int) -> None:
        """The child's output pipes are closed (it and any grandchildren are done writing)."""

    def _on_family(self, rec_id: int, pid: int, descendants: int) -> None:
        """The fork-bomb guard: a child whose own processes pass the limit is killed with
        every process below it and its whole process group."""
        if descendants <= self.max_descendants or rec_id in self._stopped_families:
            return
        with self._lock:
            row = self._rows.get(rec_id)
            if row is None or row.state.is_over or row.pid != pid:
                return
            self._stopped_families.add(rec_id)
            reason = (
                f"stopped by proclab: it started more than {self.max_descendants} processes"
                " of its own (a fork bomb?)"
            )
            row = self._rows[rec_id] = replace(row, error=reason)
            if self._family is not None:
                self._family.kill_tree(pid)  # stopped first, so none forks meanwhile
        self._signal(rec_id, signal.SIGKILL)
        self._emit([RowUpdated(row)])
        self._notice(
            "warning",
            f"{row.name} ({pid}) {reason}: killed its process group and every process below it",
        )

    def _live_pids(self) -> dict[int, int]:
        with self._lock:
            return {
                i: r.pid for i, r in self._rows.items() if r.pid is not None and r.state.is_live
            }

    def _on_sample(self, sampled: Sampled) -> None:
        if self._family is not None:
            self._family.look()  # reaps adopted orphans: once a tick is soon enough
        events: list[Event] = []
        with self._lock:
            self._system = sampled.system
            for rec_id, sample in sampled.procs.items():
                row = self._rows.get(rec_id)
                if row is None or row.state.is_over:
                    continue
                state = state_for_status(sample.status)
                new = self._rows[rec_id] = replace(row, sample=sample, state=state)
                if state is not row.state:
                    events.append(StateChanged(new, row.state))
        events.append(sampled)
        self._emit(events)

    # Internals: events ------------------------------------------------------------------

    def _emit(self, events: list[Event]) -> None:
        for event in events:
            for callback in self._subscribers:
                try:
                    callback(event)
                except Exception:  # one broken subscriber must not stop the others
                    import traceback

                    traceback.print_exc()

    def _run_callbacks(
        self, callbacks: list[Callable[[ProcessRow], None]], row: ProcessRow
    ) -> None:
        for callback in callbacks:
            try:
                callback(row)
            except Exception:
                import traceback

                traceback.print_exc()

    def _notice(self, level: str, text: str) -> None:
        self._emit([Notice(level, text, time.time())])  # type: ignore[arg-type]

    def _still_live(self, ids: Iterable[int]) -> list[int]:
        with self._lock:
            return [i for i in ids if i in self._children]


if TYPE_CHECKING:

    def _has_the_face(controller: Controller) -> ProcessSource:
        return controller  # mypy checks that a Controller is a ProcessSource


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _is_ready(pid: int) -> bool:
    """The child's bootstrap ends its set-up by becoming a session leader."""
    try:
        return os.getsid(pid) == pid
    except OSError:
        return False


def _signal_group(pid: int, sig: int) -> None:
    """The child leads its own group once its bootstrap has run setsid(); before that (its
    first moments: under a millisecond for fork, an interpreter start-up for spawn) the
    group does not exist yet and only the child itself can be signalled."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    except PermissionError:
        pass


def _exit_fds(process: BaseProcess, method: str) -> tuple[int, ...]:
    """fds that become readable when the child has ended: its pidfd (the moment it ends,
    while its figures can still be read), and for a forkserver child a copy of the
    sentinel, on which the fork server sends the status once it has reaped the child."""
    fds = []
    with contextlib.suppress(OSError, AttributeError):
        fds.append(os.pidfd_open(process.pid))  # type: ignore[arg-type]
    if method == "forkserver" or not fds:
        fds.append(os.dup(process.sentinel))
    return tuple(fds)


def _raise_fd_limit() -> None:
    """Each child costs about five fds (two output pipes, an exit fd, multiprocessing's
    sentinel pipe): raise the soft limit so hundreds of children fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _describe(processes: dict[int, procfs.Brief], most: int = 5) -> str:
    """ "1234 sleep, 1240 python3 and 3 more"."""
    named = [f"{pid} {brief.name}" for pid, brief in sorted(processes.items())[:most]]
    more = len(processes) - len(named)
    return ", ".join(named) + (f" and {more} more" if more else "")


def _still_there(processes: dict[int, procfs.Brief]) -> dict[int, procfs.Brief]:
    """Those of `processes` that still run (the same process: pid and start time)."""
    left = {}
    for pid, brief in processes.items():
        with contextlib.suppress(OSError, ValueError, IndexError):
            now = procfs.brief(pid)
            if now.start == brief.start and now.state != "Z":
                left[pid] = brief
    return left
