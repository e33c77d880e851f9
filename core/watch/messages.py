"""What the hook in a watched tree's Python processes says (hook/, hook_server.py), put on
their rows: a hello (a Python process born, its command line, its own output pipes),
multiprocessing's facts (name, target, args, start method, pool worker counts), the calls
one process makes on another (start, join, terminate, kill), and the exit statuses a
hooked parent read (`reaped`: os.waitpid and friends; `mp_join`: multiprocessing's
exitcode). Rows are found, made and ended through the book, TreeRows (rows.py).

The lock rule (core/registry.py): `on_message` (on the hook server's thread, or on a thread
that asked for messages now: hook_server.py) takes the registry's lock for the whole
message, and hands the hello's pipes to the ChildWatcher and emits the events only after
releasing it. It asks for a child's pending messages before it takes the lock.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from proclab.core.model import Event, MpFacts, Notice, ProcessCall, RowUpdated
from proclab.core.watch.channels import Channels
from proclab.core.watch.hook_server import PassedFds
from proclab.core.watch.protocol import (
    Bye,
    Dropped,
    Exec,
    Hello,
    Helper,
    Message,
    MpJoin,
    MpName,
    MpRun,
    MpSignal,
    MpStart,
    PoolReport,
    Reaped,
    Started,
)
from proclab.core.watch.rows import (
    Pending,
    Status,
    TreeRows,
    command_known,
    short_command,
    usage_sample,
)
from proclab.core.watcher import ChildWatcher
from proclab.core.words import plural


class HookMessages:
    """Puts the hooks' messages on the rows of a watched tree."""

    def __init__(
        self,
        rows: TreeRows,
        channels: Channels,
        watcher: ChildWatcher,
        emit: Callable[[Iterable[Event | Callable[[], None]]], None],
    ) -> None:
        self._rows = rows
        self._registry = rows.registry
        self._channels = channels
        self._watcher = watcher
        self._emit = emit
        # By row, not by pid: a pid reused kept its first process's start() (a child "ran
        # -815.0 ms after start()") and its name (a Process-2 named Process-1).
        self._start_calls: dict[int, float] = {}  # child row -> its parent's start() call
        self._starters: dict[int, int] = {}  # child row -> the pid whose start() started it
        self._runs: dict[int, float] = {}  # child row -> when it began running its target
        # Rows whose process said its name itself (run, rename): a parent's start()
        # message, delivered later (a child's own are read first before its lines and its
        # end), must not put back the name it started under.
        self._self_named: set[int] = set()
        # pid -> (argv, exe) a process said it was about to exec: true once its
        # connection closes (an exec that failed takes it back).
        self._execs: dict[int, tuple[tuple[str, ...], str | None]] = {}
        # Processes that started, joined or reaped a child: what they print may follow a
        # word on a child's end (watch/program.py: _before_lines).
        self.parents: set[int] = set()
        # The channel of the pipes each process took for itself (its hello), and back:
        # what it says is told in turn with what it wrote to them (program.py: _in_turn).
        self.own_channel: dict[int, int] = {}
        self.channel_pid: dict[int, int] = {}

    def on_message(self, message: Message, fds: PassedFds) -> None:
        if isinstance(message, MpStart | MpJoin | Reaped | Started):
            self.parents.add(message.pid)
        events: Pending = []
        watch: tuple[int, int, int] | None = None
        with self._registry.lock:
            if isinstance(message, Hello):
                watch = self._hello(message, fds, events)
            elif isinstance(message, MpStart):
                self._mp_start(message, events)
            elif isinstance(message, MpRun):
                self._mp_run(message, events)
            elif isinstance(message, MpJoin):
                self._mp_join(message, events)
            elif isinstance(message, MpName):
                rec_id = self._facts(message.pid, events, name=message.name)
                if rec_id is not None:
                    self._self_named.add(rec_id)
            elif isinstance(message, Started):
                self._started(message, events)
            elif isinstance(message, Exec):
                if message.argv is None:
                    self._execs.pop(message.pid, None)
                else:
                    self._execs[message.pid] = (message.argv, message.exe)
            elif isinstance(message, MpSignal):
                self._call(message.pid, message.child, message.how, message.t, message.t, events)
            elif isinstance(message, Reaped):
                sample = None
                if message.user is not None and message.system is not None:
                    sample = usage_sample(message.user, message.system, None)
                note = self._reported_by(message.pid, message.child, "reaped it")
                status = Status(message.status, message.t, note, message.pid, sample)
                row = self.child_row(message.pid, message.child)
                self._rows.parent_said(message.child, status, events, row)
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
                self._rows.hooked.discard(message.pid)
                execd = self._execs.pop(message.pid, None)
                rec_id = self._rows.known_pid(message.pid) if execd else None
                if execd and rec_id is not None:
                    self._rows.became(rec_id, *execd, events)
            elif isinstance(message, Dropped):
                self._rows.words_lost(message.pid, message.count, events)
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

    def _hello(
        self, message: Hello, fds: PassedFds, events: Pending
    ) -> tuple[int, int, int] | None:
        rows = self._rows
        rec_id = rows.row_for(message.pid, events)
        if rec_id is None:  # gone already: what it printed is still in its pipes
            rec_id = rows.unseen(
                message.pid, message.ppid, message.argv, message.exe, events, message.t
            )
        elif self._registry.row(rec_id).name == "?":  # made from its parent's word: now named
            row = self._registry.update(
                rec_id, name=os.path.basename(message.argv[0]) if message.argv else "?"
            )
        rows.hooked.add(message.pid)
        # A fork's hello names who forked it, read before the fork: the truth, where a
        # walk after its parent's end read the adopting process (a subreaper program).
        rows.parent_named(rec_id, message.ppid, message.t, events, forked=message.via == "fork")
        row = self._registry.row(rec_id)
        if message.argv:
            command = short_command(message.argv)
            if command != row.command:
                row = self._registry.update(rec_id, command=command)
                events.append(RowUpdated(row))
        passed = dict(zip(message.streams, fds.take(), strict=False))
        if not passed:
            return None
        channel = self._channels.open(rec_id, exit=False, output=True)
        self.own_channel[message.pid] = channel
        self.channel_pid[channel] = message.pid
        return channel, passed.get("stdout", -1), passed.get("stderr", -1)

    def _started(self, message: Started, events: Pending) -> None:
        """A subprocess child: its parent, and what it runs. One that has ended and been
        reaped by now is known by this word alone."""
        rows = self._rows
        rec_id = rows.row_for(message.child, events)
        if rec_id is None and message.argv and rows.known_pid(message.pid) is not None:
            rec_id = rows.unseen(message.child, message.pid, message.argv, "", events, message.t)
        elif rec_id is not None:
            rows.became(rec_id, message.argv, None, events)
        if rec_id is not None:
            rows.parent_named(rec_id, message.pid, message.t, events)

    def _facts(self, pid: int, events: Pending, **facts: object) -> int | None:
        rec_id = self._rows.row_for(pid, events)
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
        rows = self._rows
        child = rows.row_for(message.child, events)
        gone = child is None and rows.known_pid(message.pid) is not None
        # First seen a zombie, whose command line /proc no longer gives ("[python]")
        unread = child is not None and not command_known(self._registry.row(child).command)
        if gone or unread:  # (fork_server_of looks at every row: not at every start)
            # A forkserver child's parent is the fork server (0: not known), not its
            # starter. A fork child runs the command line of the process that forked it,
            # as a walk would have read it (a spawn child's names fds nobody told).
            forker = message.pid
            if message.method == "forkserver":
                forker = rows.fork_server_of(message.pid)
            command = rows.command(forker) if message.method != "spawn" else ""
            if gone:  # started and gone before proclab heard of it (kill() after start())
                child = rows.unseen(message.child, forker, (), "", events, message.t, command)
            elif command:
                events.append(RowUpdated(self._registry.update(child, command=command)))  # type: ignore[arg-type]
        ran = None
        if child is not None:
            self._start_calls[child] = message.t_call
            self._starters[child] = message.pid
            ran = self._runs.get(child)
            if self._registry.row(child).started_at is None:
                # No walk read its start (it had ended first): it was born inside this
                # start() call, so it lived at most from the call to its end as told
                # (row.end_unseen: shown "≤"). A Pool's short workers had no wall time.
                row = self._registry.update(child, started_at=message.t_call)
                events.append(RowUpdated(row))
        said = child in self._self_named
        self._facts(
            message.child,
            events,
            role=None,  # a Process (a forkserver child has the server's command line)
            **({} if said else {"name": message.name}),
            target=message.target,
            args=message.args,
            kwargs=message.kwargs,
            daemon=message.daemon,
            method=message.method,
            **({"ran_after": ran - message.t_call} if ran is not None else {}),
        )
        self._call(message.pid, message.child, "start", message.t_call, message.t, events)

    def _mp_run(self, message: MpRun, events: Pending) -> None:
        rec_id = self._rows.row_for(message.pid, events)
        if rec_id is None:
            return
        self._self_named.add(rec_id)
        self._runs[rec_id] = message.t
        called = self._start_calls.get(rec_id)
        facts: dict[str, object] = {"name": message.name, "role": None}
        if message.target is not None:
            facts["target"] = message.target
        if called is not None:
            facts["ran_after"] = message.t - called
        self._facts(message.pid, events, **facts)

    def _mp_join(self, message: MpJoin, events: Pending) -> None:
        if message.ended and message.exitcode is not None:
            # Its end first: join() returned once the child had ended.
            note = self._reported_by(message.pid, message.child, "joined it")
            status = Status(message.exitcode, message.t, note, message.pid)
            row = self.child_row(message.pid, message.child)
            self._rows.parent_said(message.child, status, events, row)
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
        caller = self._rows.row_for(pid, events)
        if caller is None:
            return
        child_id = self._rows.live.get(child)
        if child_id is None:
            ended = self._rows.ended_with(child)
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

    def child_row(self, reaper: int, child: int) -> int | None:
        """The ended row of pid `child` that `reaper` reaped or joined, however long after
        its end: a child keeps its pid until its parent reaps it (a fork server's child
        until its server does, and its starter's join reads what the server told), so a
        word on it 6 s after its end is about it, not about a process no walk saw (which
        made a second row for it, and a count of three processes of two). None: not one
        `reaper` is tied to (RECENT_S decides, as for any late word)."""
        rows = self._rows
        ended = rows.ended_with(child)
        reaper_row = rows.known_pid(reaper)
        if not ended or reaper_row is None:
            return None
        rec_id = max(ended)
        tied = self._registry.row(rec_id).parent == reaper_row
        return rec_id if tied or self._starters.get(rec_id) == reaper else None

    def _reported_by(self, pid: int, child: int, how: str) -> str:
        """Who told `child`'s end: only a parent can reap a child, and the process that
        joined one is its parent, but for a forkserver child (its parent is the fork
        server). The tree's own parent may not be known yet, a walk later."""
        rec_id = self._rows.known_pid(pid)
        name = self._registry.row(rec_id).name if rec_id is not None else "?"
        row = self._registry.get(c) if (c := self._rows.known_pid(child)) is not None else None
        adopted = row is not None and row.parent not in (None, rec_id)
        if how == "reaped it" and rec_id is not None and adopted:
            # shown under the parent that forked it: the reaper is its parent now
            return f"reported by {name} ({pid}), which adopted it and reaped it"
        parent = (
            how == "reaped it"
            or (row is not None and rec_id is not None and row.parent == rec_id)
            or (row is not None and row.mp is not None and row.mp.method in ("fork", "spawn"))
        )
        return f"reported by {'its parent ' if parent else ''}{name} ({pid}), which {how}"
