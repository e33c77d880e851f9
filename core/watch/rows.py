"""A watched tree's book of rows: which process (pid *and* start time) each row is, which
may still run, which the walk saw gone, which proclab reaps itself, the exit statuses that
came before their process's end; and the rows made and ended from what a walk of /proc
or a parent's word says. WatchedTree (program.py) composes it with its Reaper (exits.py)
and HookMessages (messages.py), which read and change the book through its methods.

The lock rule (core/registry.py): every method here runs under the registry's lock, which
the caller holds, and hands out what to emit in `events` (a Pending list) for the caller
to emit once it has released the lock. Nothing here emits, signals or blocks.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from proclab.core import procfs, shell
from proclab.core.exits import state_for_exit, state_for_status
from proclab.core.model import (
    Event,
    MpFacts,
    ProcessRow,
    ProcSample,
    ProcState,
    RowUpdated,
    Spawned,
    StateChanged,
)
from proclab.core.registry import Registry
from proclab.core.sampler import final_sample
from proclab.core.watch import tree
from proclab.core.watch.protocol import FORK_SERVER_MAIN
from proclab.core.words import plural

COMMAND_CHARS = 200
# A hook's word on what a process runs outweighs a walk's for this long: a walk reads
# /proc before it takes the lock, and its older command line undid the word just given,
# a false "exec'd" each way.
TOLD_S = 1.0
ORPHAN_MARGIN_S = 0.05  # a parent that ended this much before its child left it an orphan
# A process gone from the tree whose parent has the hook: how long its parent's word on
# its exit status may take to arrive (the hook server sweeps every 0.1 s at most).
STATUS_WAIT_S = 0.5
# What a change under the lock hands out for after it: events, and the calls an end
# returns (Registry.end: its events, then whoever joined it).
Pending = list["Event | Callable[[], None]"]
RECENT_S = 5.0  # a message about a process that ended this long ago still lands on its row
UNSEEN = -1  # the start time of a process no walk saw: not known
START_SLACK_S = 0.05  # /proc's start times (clock ticks from boot) against the wall clock


@dataclass(slots=True)
class Status:
    """An exit status as its reaper read it."""

    code: int
    at: float  # wall clock
    note: str  # who said so
    reaper: int  # the pid that said so
    sample: ProcSample | None = None


def short_command(argv: Sequence[str]) -> str:
    """The command line as shown, the same from every source (told as an exec otherwise):
    without trailing empty arguments, which /proc loses (as ps does) and the hook's argv
    has. A byte that is not UTF-8 comes written alike from each (procfs.arg_text)."""
    args = list(argv)
    while args and not args[-1]:
        args.pop()
    return shell.join(args)[:COMMAND_CHARS]


class TreeRows:
    """The rows of a watched tree and what proclab knows of each one's process."""

    def __init__(
        self, registry: Registry, watch_exit: Callable[[int, tree.TreeProcess], None]
    ) -> None:
        self.registry = registry
        # Be told of a new (non-root) row's process's end: the Reaper's pidfd watch.
        self._watch_exit = watch_exit
        self.keys: dict[int, tuple[int, int]] = {}  # row id -> (pid, start)
        self.ppids: dict[int, int] = {}  # row id -> its parent's pid when first seen
        self.live: dict[int, int] = {}  # pid -> row id, while the process may run
        self.known: dict[int, tree.TreeProcess] = {}  # the last walk
        self.own: dict[int, int] = {}  # row id -> pid, of proclab's own children (reaped here)
        self.exited: dict[int, float] = {}  # row id -> when its pidfd said it ended
        # row id -> the CPU seconds of the children its process reaped, read from its
        # zombie: its reaper's wait4 counts them in (see own_cpu_from_reaper)
        self.children_cpu: dict[int, float] = {}
        self._told: dict[int, float] = {}  # row id -> when a hook said what it runs (became)
        self.gone: dict[int, float] = {}  # row id -> when the walk saw it gone, status unknown
        # pid -> monotonic time a row was made for its process from what was said of it,
        # gone before any walk saw it (unseen): its start time, its key's half, not known
        self._unseen_at: dict[int, float] = {}
        self.statuses: dict[int, Status] = {}  # pid -> a status that came before the end
        self.hooked: set[int] = set()  # pids with a live hook connection
        # row id -> messages its process's hook could not send (its socket full): a word
        # on a child's end among them, the child's status is lost, not left unread by its
        # parent. By row: a pid reused is another process.
        self.lost_words: dict[int, int] = {}
        self.roots: list[int] = []  # row ids
        self.orphans: dict[int, list[int]] = {}  # a pid -> rows made before its row, under it
        self.last_ppid: dict[int, int] = {}  # row id -> its ppid when a walk last saw it
        self._born = False  # a row was made since the walker last asked
        self._exits_seen = 0  # len(exited) at the last walk: a change makes it busy
        self._me = os.getpid()

    # The walk ----------------------------------------------------------------------------

    def walk_from(self) -> tuple[list[int], dict[int, int], dict[int, tree.TreeProcess]]:
        """The roots' pids, every live row's (pid -> start), and the last walk."""
        roots = [self.keys[i][0] for i in self.roots]
        expect = {pid: self.keys[i][1] for pid, i in self.live.items()}
        return roots, expect, self.known

    def walked(
        self,
        found: dict[int, tree.TreeProcess],
        events: Pending,
        reaps_orphans: bool,
        looked_for: Mapping[int, int],
        hello_waits: Container[int] = (),
        read_at: float = math.inf,
    ) -> list[int]:
        """What a walk found: rows made and brought up to date, and those gone marked so.
        `looked_for`: the live rows' processes as the walk began (walk_from), the only ones
        it can say are gone: a row made meanwhile (a hook's hello) was not looked for.
        `hello_waits`: processes whose hook's hello waits its turn, and will make their
        rows then (a fork child's, behind the lines its parent printed before it: made
        here, its "+" came before them). `read_at`: when the walk began reading /proc
        (monotonic).
        Returns the rows of orphans re-parented to proclab, for the Reaper to adopt."""
        adopt: list[int] = []
        self.known = found
        for process in found.values():
            if process.pid in hello_waits and process.pid not in self.live:
                continue
            rec_id = self.see(process, events, read_at)
            mine = reaps_orphans and process.ppid == self._me
            if rec_id is not None and mine and rec_id not in self.own:
                adopt.append(rec_id)
        now = time.time()
        for pid, rec_id in list(self.live.items()):
            start = self.keys[rec_id][1]
            if looked_for.get(pid) != start:
                continue
            current = found.get(pid)
            if current is not None and current.start == start:
                continue
            if rec_id in self.own:
                continue  # reaped by proclab when its pidfd says so
            if rec_id not in self.gone:
                self.gone[rec_id] = now
        return adopt

    def changed(self) -> tuple[bool, bool]:
        """(born, busy) since the last call: a row was made; a row was made, is gone with
        its status unknown, or a pidfd said a process ended."""
        born, self._born = self._born, False
        busy = born or bool(self.gone) or len(self.exited) != self._exits_seen
        self._exits_seen = len(self.exited)
        return born, busy

    def all_ended(self) -> bool:
        """The roots have ended and nothing of the tree is left."""
        return bool(self.roots) and not (self.live or self.gone or self.own)

    def see(
        self, process: tree.TreeProcess, events: Pending, read_at: float = math.inf
    ) -> int | None:
        """The row of `process`, made or brought up to date; `read_at`: when it was read
        (monotonic), if that may be before what a hook said of it."""
        rec_id = self.live.get(process.pid)
        unseen_at = self._unseen_at.get(process.pid, -math.inf)
        if read_at < unseen_at and (rec_id is None or self.keys[rec_id] != process.key):
            # Read before a row was made for it from what was said (gone and reaped by
            # then, its start time not known): that process, most likely, not another
            # with its pid. Taken for another, a Pool's short worker was shown twice (once
            # as a zombie "[python]", 8 runs of 20 under load), and a shell Popen started
            # ended "exit status not known", then again with the status its parent gave.
            # A pid used again since shows at the next walk.
            return None
        if rec_id is not None and self.keys[rec_id][1] != process.start:
            self.gone.setdefault(rec_id, time.time())  # its pid was reused: it is gone
            self.finish(rec_id, events)
            rec_id = None
        if rec_id is None:
            if any(self.keys[i] == process.key for i in self.ended_with(process.pid)):
                return None  # ended already (its status came first); /proc lags behind
            return self.new_row(process, events)
        self.last_ppid[rec_id] = process.ppid
        row = self.registry.row(rec_id)
        changes: dict[str, Any] = {}
        told = self._told.get(rec_id)
        # Not a walk begun before the hook's word, however late it took the lock (a loaded
        # machine's walk undid a subprocess child's "true" more than TOLD_S on). A walk
        # begun after an exec's own word (said just before the exec) may still read the
        # old command line: TOLD_S stands for that.
        heard = told is None or (read_at > told and time.monotonic() - told >= TOLD_S)
        if (
            process.cmdline
            and short_command(process.cmdline) != row.command  # it exec'd
            and heard
        ):
            changes |= self._execd(row, process)
        if process.state == "Z" and row.state is not ProcState.ZOMBIE and not row.state.is_over:
            changes["state"] = ProcState.ZOMBIE
            last = final_sample(process.pid, self.registry.current_sample(row), time.monotonic())
            if last is not None:
                changes["sample"] = last
        if row.parent is None and rec_id not in self.roots and process.ppid in self.live:
            changes |= self._under(row, self.live[process.ppid], process.name)
        if changes:
            new = self.registry.update(rec_id, **changes)
            if "state" in changes:
                events.append(StateChanged(new, row.state))
            else:
                events.append(RowUpdated(new))
        return rec_id

    def parent_named(
        self, rec_id: int, ppid: int, born: float, events: Pending, forked: bool = False
    ) -> None:
        """Its own hook named its parent, and it had been born by `born` (wall clock: the
        message's time): a row made without one (from its starter's word, after its end,
        before the fork server it came from had a row) goes under it, now or when the
        parent has a row. `forked`: named as it was forked, so also a row a walk placed
        under the process that adopted it (its parent had ended: a double fork under a
        subreaper program) moves to its parent."""
        row = self.registry.row(rec_id)
        if rec_id in self.roots or ppid <= 0:
            return
        placed = row.parent is not None
        if placed and (not forked or self.registry.row(row.parent).pid == ppid):  # type: ignore[arg-type]
            return
        self.ppids[rec_id] = ppid
        if row.started_at is not None:
            # Its birth, where /proc told it: a parent that forked it and exited at once
            # can have ended (its end read from its own parent's word) before the child's
            # hook spoke, and was not taken for the process with that pid then.
            born = min(born, row.started_at)
        parent = self.living_at(ppid, born)
        if parent is not None and parent != row.parent:
            changes = self._under(row, parent, row.name)
            events.append(RowUpdated(self.registry.update(rec_id, **changes)))
        elif ppid not in self.live and rec_id not in self.orphans.get(ppid, ()):
            # the parent's row made later takes it (its hello can be read after this one's)
            self.orphans.setdefault(ppid, []).append(rec_id)

    def living_at(self, pid: int, when: float) -> int | None:
        """The row of the process that had `pid` at `when` (wall clock): one that had
        started by then, where its start is known (no walk saw one made from a message:
        it is not), and had not ended (a pid is reused; /proc's start is in ticks)."""
        live = self.live.get(pid)
        for rec_id in ([live] if live is not None else []) + self.ended_with(pid)[::-1]:
            row = self.registry.row(rec_id)
            started = row.started_at is None or row.started_at <= when + START_SLACK_S
            if started and (row.ended_at is None or row.ended_at >= when):
                return rec_id
        return None

    def _under(self, row: ProcessRow, parent: int, name: str) -> dict[str, Any]:
        """The changes that put a row made before its parent's under it."""
        changes: dict[str, Any] = {"parent": parent}
        if row.mp is not None and row.mp.role == "forkserver" and self._served(parent):
            # Taken for the fork server by its command line while its parent was not
            # known: it is a child the server forked.
            changes["mp"] = replace(row.mp, role=None, method="forkserver")
            changes["name"] = row.mp.name or name
        return changes

    def _adopt(self, rec_id: int, process: tree.TreeProcess, events: Pending) -> None:
        """Rows made before this one's, of its children: under it now. A child's hook can
        speak before any walk or hook has shown its parent (a fork server's children,
        under load), and a quiet machine may not walk again while they live."""
        for orphan in self.orphans.pop(process.pid, ()):
            row = self.registry.row(orphan)
            start = self.keys[orphan][1]
            # A row no walk saw has no start to compare, but a time its process had been
            # born by (a message's): if that is before this process's start, it was a
            # child of an earlier owner of the pid.
            if start == UNSEEN:
                earlier = row.created_at + START_SLACK_S < process.started
            else:
                earlier = start < process.start
            # A row a walk placed waits here only where a fork's hello named this pid
            walked = row.parent is not None and self.ppids.get(orphan) != process.pid
            if walked or earlier:
                continue  # placed by a walk, or the child of an earlier owner of the pid
            known = self.known.get(self.keys[orphan][0])
            name = known.name if known is not None else row.name
            events.append(
                RowUpdated(self.registry.update(orphan, **self._under(row, rec_id, name)))
            )

    def became(self, rec_id: int, argv: Sequence[str], exe: str | None, events: Pending) -> None:
        """`rec_id`'s process runs `argv` now, as its hook or its parent said: one that
        ends at once (a fork child that execs `echo`) ends before a walk reads it."""
        row = self.registry.row(rec_id)
        if not argv:
            return
        # Its word stands against a walk begun before it, whether or not it changed the
        # row: a Popen'd `true` already read as such was put back to the Python it forked
        # from by a walk that had read /proc before the exec (CI, 1 of 30 children).
        self._told[rec_id] = time.monotonic()
        if short_command(argv) == row.command:
            return
        name = os.path.basename(exe or argv[0])  # as the kernel names it: after the file
        process = tree.TreeProcess(row.pid or 0, UNSEEN, 0, 0, "X", name, tuple(argv), exe or "")
        new = self.registry.update(rec_id, **self._execd(row, process))
        events.append(RowUpdated(new))

    def _execd(self, row: ProcessRow, process: tree.TreeProcess) -> dict[str, Any]:
        """How `row` changes once its process has exec'd `process`'s command line."""
        changes: dict[str, Any] = {"command": short_command(process.cmdline)}
        if row.mp is None:
            changes["name"] = process.name
            mp = self._recognise(process, row.parent)
            if mp is not None:
                changes["mp"] = mp
                changes["name"] = mp.role or process.name
        return changes

    def _recognise(self, process: tree.TreeProcess, parent: int | None) -> MpFacts | None:
        """What its command line says multiprocessing made it."""
        mp = _recognised(process.cmdline)
        if mp is None or parent is None:
            return mp
        if mp.role == "forkserver" and self._served(parent):
            return MpFacts(method="forkserver")  # forked by the server: its command line
        return None if self.registry.row(parent).mp == mp else mp  # forked by such a child

    def fork_server_of(self, pid: int) -> int:
        """The pid of the fork server `pid` started (0: none known): the parent of the
        forkserver children `pid` starts."""
        starter = self.known_pid(pid)
        for row in self.registry.rows():
            if row.parent == starter and row.mp is not None and row.mp.role == "forkserver":
                return row.pid or 0
        return 0

    def _served(self, parent: int) -> bool:
        """The row `parent` is multiprocessing's fork server."""
        mp = self.registry.row(parent).mp
        return mp is not None and mp.role == "forkserver"

    def new_row(
        self,
        process: tree.TreeProcess,
        events: Pending,
        root: bool = False,
        parent: int | None = None,
        born: float | None = None,
        command: str = "",
    ) -> int:
        rec_id = self.registry.new_id()
        self._born = True
        if parent is None and not root:
            parent = self.live.get(process.ppid)
        state = state_for_status(procfs.STATES.get(process.state, "running"))
        mp = self._recognise(process, parent)
        row = ProcessRow(
            id=rec_id,
            name=process.name,
            spec=None,
            state=state,
            pid=process.pid,
            created_at=process.started if process.start != UNSEEN else born or time.time(),
            started_at=process.started if process.start != UNSEEN else None,
            parent=parent,
            command=command or _command_of(process),
            mp=mp,
            # A zombie, or a process no walk read (made from a word once it had ended):
            # when it ended is not known, only by when.
            end_unseen=process.state == "Z" or process.start == UNSEEN,
        )
        if row.mp is not None and row.mp.role:
            row = replace(row, name=row.mp.role)
        self.registry.add(row)
        self.keys[rec_id] = process.key
        self.ppids[rec_id] = process.ppid
        self.live[process.pid] = rec_id
        events.append(Spawned(row))
        if parent is None and not root and process.ppid > 0:
            self.orphans.setdefault(process.ppid, []).append(rec_id)
        self._adopt(rec_id, process, events)
        if not root:
            self._watch_exit(rec_id, process)
        return rec_id

    # Looking rows up ---------------------------------------------------------------------

    def ended_with(self, pid: int) -> list[int]:
        return [i for i, (p, _s) in self.keys.items() if p == pid and i not in self.live.values()]

    def row_for(self, pid: int, events: Pending) -> int | None:
        """The live row of `pid`, made now if the walk has not seen it."""
        rec_id = self.live.get(pid)
        if rec_id is not None:
            return rec_id
        process = tree.describe(pid)
        if process is not None:
            return self.see(process, events)
        return self.recent(pid)

    def recent(self, pid: int) -> int | None:
        """The row of `pid` if its process ended moments ago (its messages come up to
        ~0.1 s late)."""
        ended = self.ended_with(pid)
        if not ended:
            return None
        rec_id = max(ended)
        ended_at = self.registry.row(rec_id).ended_at
        recent = ended_at is None or time.time() - ended_at < RECENT_S
        return rec_id if recent else None

    def known_pid(self, pid: int) -> int | None:
        """The row of `pid`, live or ended moments ago (a process's messages are read up
        to ~0.1 s after it sent them, maybe after its end)."""
        rec_id = self.live.get(pid)
        return rec_id if rec_id is not None else self.recent(pid)

    def command(self, pid: int) -> str:
        """The command line `pid`'s row shows, if it is one read or told ("" if not)."""
        rec_id = self.known_pid(pid)
        command = self.registry.row(rec_id).command if rec_id is not None else ""
        return command if command_known(command) else ""

    def unseen(
        self,
        pid: int,
        ppid: int,
        argv: Sequence[str],
        exe: str,
        events: Pending,
        born: float | None = None,
        command: str = "",
    ) -> int:
        """A row for a process that ended before any walk saw it (it lived less than a
        walk), from what its hook or its parent's said; `born`: by when it was born, if a
        message says (its parent's `start()` had returned, its hook spoke). `command`: its
        command line where `argv` is not told (a fork child's is its forker's)."""
        name = os.path.basename(argv[0]) if argv else "?"
        process = tree.TreeProcess(pid, UNSEEN, ppid, 0, "X", name, tuple(argv), exe)
        parent = self.known_pid(ppid) if born is None else self.living_at(ppid, born)
        rec_id = self.new_row(process, events, parent=parent, born=born, command=command)
        self.gone.setdefault(rec_id, time.time())
        self._unseen_at[pid] = time.monotonic()
        return rec_id

    def own_cpu_from_reaper(self, rec_id: int) -> bool:
        """A reaper's word on CPU time (wait4) counts the children the process reaped too:
        it is the process's own only when it had none, that proclab saw or that its zombie
        counted (a shell's short commands, which no walk saw, were 90 % of `os.system`'s
        figure)."""
        if self.children_cpu.get(rec_id, 0.0) > 0.0:
            return False
        return not any(r.parent == rec_id for r in self.registry.rows())

    # Ends --------------------------------------------------------------------------------

    def finish_gone(self, events: Pending, force: bool = False) -> None:
        """End the rows of processes the walk saw gone, with the status their parent gave
        if it gave one; a hooked parent is given STATUS_WAIT_S to give it."""
        now = time.time()
        for rec_id, since in list(self.gone.items()):
            pid = self.keys[rec_id][0]
            parent = self._parent_pid(rec_id)
            # Its hooked parent's `reaped` comes before the parent's `bye`; or its
            # reaper's, where the walk last saw it adopted (a row shown under the parent
            # that forked it, which had ended: a subreaper program reaps it).
            waiting = parent in self.hooked or self.last_ppid.get(rec_id) in self.hooked
            if pid in self.statuses or force or not waiting or now - since >= STATUS_WAIT_S:
                self.finish(rec_id, events)

    def waited_on(self, now: float) -> set[int]:
        """The hooked parents (and reapers) of processes gone STATUS_WAIT_S ago whose
        status they have not given: finish_gone ends those rows now, and what those
        processes said and is held for its turn must be heard first (hook_server)."""
        found = set()
        for rec_id, since in self.gone.items():
            if self.keys[rec_id][0] in self.statuses or now - since < STATUS_WAIT_S:
                continue
            for pid in (self._parent_pid(rec_id), self.last_ppid.get(rec_id)):
                if pid in self.hooked:
                    found.add(pid)
        return found

    def _parent_pid(self, rec_id: int) -> int | None:
        parent = self.registry.row(rec_id).parent
        return self.keys[parent][0] if parent is not None else None

    def finish(self, rec_id: int, events: Pending) -> None:
        """The row's process is gone; end its row with what is known."""
        self.reaped_children(rec_id, events)
        since = self.gone.pop(rec_id, time.time())
        pid = self.keys[rec_id][0]
        if self.live.get(pid) == rec_id:
            del self.live[pid]
        row = self.registry.row(rec_id)
        if row.state.is_over:
            return
        status = self.statuses.pop(pid, None)
        ended_at = self.exited.get(rec_id)  # its pidfd's word: exact, if it ran then
        if ended_at is None or row.end_unseen:
            # It had ended when proclab first looked (its pidfd then said so at once):
            # it ended by each of these moments, the first the closest; by its parent's
            # reaping, where that came first (a Pool's worker, whose start() and join()
            # were read after both had returned, was said to end when they were read).
            told = status.at if status is not None else None
            ended_at = min(t for t in (ended_at, since, told) if t is not None)
        if status is not None:
            changes = ended(row, status.code, ended_at, status.note, self._final(rec_id, status))
        else:
            changes = {
                "state": ProcState.ENDED,
                "ended_at": ended_at,
                "exit_note": self._unknown_note(rec_id),
            }
        events.append(self.registry.end(rec_id, **changes))

    def reaped_children(self, rec_id: int, events: Pending) -> None:
        """Before the row ends: its children that are gone already, which it reaped (a
        shell waits for each command), end first. No walk may have seen them gone yet,
        and a parent that is not hooked says nothing of its children's ends."""
        for pid, child in list(self.live.items()):
            if child in self.own or self.registry.row(child).parent != rec_id:
                continue
            now = tree.describe(pid)
            if now is None or now.start != self.keys[child][1]:
                self.gone.setdefault(child, time.time())
                self.finish(child, events)

    def parent_said(
        self, pid: int, status: Status, events: Pending, ended_row: int | None = None
    ) -> None:
        """`pid`'s parent read its exit status (it has been reaped). `ended_row`: the row
        it is about, where the reaper's tie to it says so (HookMessages.child_row), however
        long ago that row ended."""
        rec_id = self.live.get(pid)
        if rec_id is not None and rec_id not in self.own:
            self.statuses[pid] = status
            self.gone.setdefault(rec_id, status.at)
            self.finish(rec_id, events)
            return
        if rec_id is not None:
            return  # proclab reaps it itself
        ended_ids = [
            i for i in self.ended_with(pid) if self.registry.row(i).state is ProcState.ENDED
        ]
        if ended_row is not None:
            if self.registry.row(ended_row).state is not ProcState.ENDED:
                return  # its exit status is known already
            ended_ids = [ended_row]
        if not ended_ids and self.recent(pid) is None:
            # Born and reaped between two walks: known by its parent's word only.
            if self.known_pid(status.reaper) is not None:
                rec_id = self.unseen(pid, status.reaper, (), "", events)
                self.statuses[pid] = status
                self.finish(rec_id, events)
            return
        # Ended already, its status unknown until now: the walk saw it go first.
        if ended_ids:
            rec_id = max(ended_ids)
            row = self.registry.row(rec_id)
            new = self.registry.update(
                rec_id,
                **ended(
                    row,
                    status.code,
                    row.ended_at or status.at,
                    status.note,
                    self._final(rec_id, status),
                ),
            )
            events += [StateChanged(new, row.state), RowUpdated(new)]

    def _final(self, rec_id: int, status: Status) -> ProcSample | None:
        """Its last figures: its reaper's word on its CPU times where that is its own
        only (it had no children), over the last ones read (see usage_sample)."""
        row = self.registry.row(rec_id)
        if status.sample is None or not self.own_cpu_from_reaper(rec_id):
            return row.sample
        return usage_sample(status.sample.cpu_user, status.sample.cpu_system, row.sample)

    def _orphaned(self, rec_id: int, parent: int) -> bool:
        """Its parent ended before it did (pidfd times; a shell that reaps its command and
        exits ends a moment after it, within ORPHAN_MARGIN_S)."""
        own, theirs = self.exited.get(rec_id), self.exited.get(parent)
        if own is not None and theirs is not None and theirs < own - ORPHAN_MARGIN_S:
            return True
        # Or it was read under another process since, by a walk or as a zombie: an
        # attached root's resource tracker, which ends as its parent does, a moment
        # after it, was said to be that parent's to reap.
        adopter = self.last_ppid.get(rec_id)
        return adopter is not None and adopter != self.keys[parent][0]

    def words_lost(self, pid: int, count: int, events: Pending) -> None:
        """Process `pid`'s hook could not send `count` messages: children of its whose
        status is not known may have been reaped and told in them (said once it could
        send again: rows ended meanwhile are told so too)."""
        parent = self.live.get(pid)
        if parent is None:
            return
        self.lost_words[parent] = self.lost_words.get(parent, 0) + count
        for rec_id in list(self.keys):
            row = self.registry.row(rec_id)
            if row.parent == parent and row.state is ProcState.ENDED and row.exitcode is None:
                note = self._unknown_note(rec_id)
                if note != row.exit_note:
                    events.append(RowUpdated(self.registry.update(rec_id, exit_note=note)))

    def _unknown_note(self, rec_id: int) -> str:
        parent = self.registry.row(rec_id).parent
        if parent is not None:
            who = self.registry.row(parent)
            if self._orphaned(rec_id, parent):
                # The kernel gave it to init or a subreaper, which reaped it.
                return (
                    f"exit status not known: its parent {who.name} ({who.pid}) ended first,"
                    " and only the process that adopted it could read it"
                )
            lost = self.lost_words.get(parent)
            if lost:
                return (
                    f"exit status not known: its parent {who.name} ({who.pid}) may have read"
                    f" it, and could not tell proclab ({plural(lost, 'message')} lost: its"
                    " socket was full)"
                )
            return f"exit status not known: only its parent {who.name} ({who.pid}) could read it"
        ppid = self.ppids.get(rec_id)
        outside = tree.describe(ppid) if ppid else None  # an attached tree's root's parent
        if outside is not None:
            return f"exit status not known: only its parent {outside.name} ({ppid}) could read it"
        return "exit status not known: only its parent could read it"


# Helpers -------------------------------------------------------------------------------------


def _recognised(cmdline: Sequence[str]) -> MpFacts | None:
    """multiprocessing's own children, told by their command lines (a spawn child, the
    fork server, the resource tracker): what /proc alone can say."""
    text = " ".join(cmdline)
    if "from multiprocessing.spawn import spawn_main" in text:
        return MpFacts(method="spawn")
    if FORK_SERVER_MAIN in text:
        return MpFacts(role="forkserver")
    if "from multiprocessing.resource_tracker import main" in text:
        return MpFacts(role="resource_tracker")
    return None


def ended(
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


def usage_sample(user: float, system: float, previous: ProcSample | None) -> ProcSample:
    """A final sample from the CPU times its reaper read (wait4's rusage), over the last
    figures read: those to the microsecond, a zombie's in /proc in clock ticks (a child
    that spun 15 ms was shown 10 ms of CPU). Status "zombie" marks figures read at its
    end, as the Controller's final samples are."""
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


def is_final(sample: ProcSample | None) -> bool:
    """Figures read at the process's end (as a zombie, or its reaper's rusage)."""
    return sample is not None and sample.status == "zombie"


def _command_of(process: tree.TreeProcess) -> str:
    if process.cmdline:
        return short_command(process.cmdline)
    if process.start == UNSEEN:
        return "(ended before a walk saw it)"
    return f"[{process.name}]"  # a kernel thread, or a zombie: as ps shows them


def command_known(command: str) -> bool:
    """`command` is a command line read or told, not what stands for one not known
    (_command_of): a real one begins with neither bracket, which short_command quotes."""
    return not command.startswith(("(", "["))
