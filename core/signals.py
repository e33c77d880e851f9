"""Signals to a source's processes: terminate, kill, pause, resume, the SIGKILL that
follows a SIGTERM left unanswered, and the fork-bomb guard.

A process is signalled as a whole process group (proclab's children lead their own), so
its own children get it too; SIGTERM and SIGKILL also reach its descendants that left the
group, through the family (core/family.py) when the source keeps one.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from proclab.core import procfs
from proclab.core.errors import UnknownProcess
from proclab.core.exits import state_for_status
from proclab.core.family import Family
from proclab.core.groups import signal_group, signal_group_only
from proclab.core.model import ProcState, RowUpdated
from proclab.core.registry import Registry
from proclab.core.sampler import born_monotonic, final_sample


class Signaller:
    def __init__(self, registry: Registry, *, max_descendants: int) -> None:
        self._registry = registry
        self._lock = registry.lock
        self.max_descendants = max_descendants
        self.family: Family | None = None
        self._stopped_families: set[int] = set()
        self._allowed: dict[int, int] = {}  # rec_id -> its own limit, where it differs
        # rec_id -> the pause that waits for its start-up; a resume, SIGTERM or SIGKILL
        # meanwhile takes it back (`p p` on a child still starting left it stopped: the
        # SIGCONT went first)
        self._pauses_waiting: dict[int, object] = {}

    # Commands ----------------------------------------------------------------------------

    def terminate(self, rec_id: int, escalate_after: float | None = None) -> None:
        """SIGTERM to the process group (and SIGCONT, so a paused one gets it). With
        escalate_after, SIGKILL follows if it is still running that much later."""
        self.send(self._live_id(rec_id), signal.SIGTERM)
        if escalate_after is not None:
            timer = threading.Timer(escalate_after, self._escalate, (rec_id, escalate_after))
            timer.daemon = True
            timer.start()

    def kill(self, rec_id: int) -> None:
        self.send(self._live_id(rec_id), signal.SIGKILL)

    def pause(self, rec_id: int) -> None:
        """SIGSTOP to the group; a child still in its start-up is stopped as soon as its
        start-up is done (see bootstrap: stopped earlier, it could outlive proclab)."""
        rec_id = self._live_id(rec_id)
        pid = self._registry.row(rec_id).pid
        assert pid is not None
        if _is_ready(pid):
            self.send(rec_id, signal.SIGSTOP)
            return
        asked = self._pauses_waiting[rec_id] = object()

        def when_ready() -> None:
            deadline = time.monotonic() + 60
            while not _is_ready(pid) and time.monotonic() < deadline:
                row = self._registry.get(rec_id)
                if row is None or row.state.is_over:
                    with self._lock:
                        if self._pauses_waiting.get(rec_id) is asked:
                            del self._pauses_waiting[rec_id]
                    return
                time.sleep(0.002)
            with self._lock:  # a resume taking it back meanwhile holds it too
                if self._pauses_waiting.get(rec_id) is not asked:
                    return
                del self._pauses_waiting[rec_id]
                self.send(rec_id, signal.SIGSTOP)

        threading.Thread(target=when_ready, name="proclab-pause", daemon=True).start()

    def resume(self, rec_id: int) -> None:
        with self._lock:
            self._pauses_waiting.pop(rec_id, None)
        self.send(self._live_id(rec_id), signal.SIGCONT)

    def allow_descendants(self, rec_id: int, count: int) -> None:
        self._allowed[rec_id] = count

    def send(self, rec_id: int, sig: int, descendants: bool = True) -> None:
        """Signal the process's whole group; a stopped group is continued so SIGTERM can
        take effect. SIGTERM and SIGKILL also reach its descendants that left its group."""
        with self._lock:
            if sig in (signal.SIGTERM, signal.SIGKILL):  # shutdown's too: nothing to pause
                self._pauses_waiting.pop(rec_id, None)
            row = self._registry.get(rec_id)
            if row is None or row.pid is None or row.state.is_over:
                return  # reaped meanwhile: its pid may belong to someone else now
            pid = row.pid
            family = self.family
            outside: dict[int, procfs.Brief] = {}
            if descendants and sig in (signal.SIGTERM, signal.SIGKILL) and family:
                # Listed first: once the child is gone, they are no longer below it.
                outside = {p: b for p, b in family.descendants(pid).items() if b.pgid != pid}
            if (
                sig in (signal.SIGTERM, signal.SIGKILL)
                and row.spec
                and row.spec.method == "forkserver"
            ):
                # Its fork server reaps it, mostly before proclab can read its end, and its
                # figures were then its last tick's: half a second of CPU short in a batch
                # ended by --timeout, which turned into waits it never had. Read as the
                # signal goes, they fall short by the moments it takes to die.
                previous = self._registry.current_sample(row)
                born = born_monotonic(row)
                last = final_sample(pid, previous, born, started_at=row.started_at)
                if last is not None:
                    self._registry.update(rec_id, sample=last)
            if sig in (signal.SIGSTOP, signal.SIGCONT):
                self._registry.refresh_begins(rec_id)  # ended by the refresh below
            try:
                signal_group(pid, sig)
            except BaseException:
                self._registry.refresh_ends(rec_id)
                raise
            if sig == signal.SIGTERM:
                signal_group(pid, signal.SIGCONT)
            if outside and family is not None:
                family.signal(outside, sig)
                if sig == signal.SIGTERM:
                    family.signal(outside, signal.SIGCONT)
        if sig in (signal.SIGSTOP, signal.SIGCONT):
            self._refresh_state_soon(rec_id, sig)

    # The fork-bomb guard: the sampler's callback -----------------------------------------

    def guard(self, rec_id: int, pid: int, descendants: int) -> None:
        """A child whose own processes pass the limit is killed with every process below
        it and its whole process group."""
        limit = max(self.max_descendants, self._allowed.get(rec_id, 0))
        if descendants <= limit or rec_id in self._stopped_families:
            return
        with self._lock:
            row = self._registry.get(rec_id)
            if row is None or row.state.is_over or row.pid != pid:
                return
            self._stopped_families.add(rec_id)
            reason = (
                f"stopped by proclab: it started more than {self.max_descendants} processes"
                " of its own (a fork bomb?)"
            )
            row = self._registry.update(rec_id, error=reason)
            # Its group stopped as a whole first (one signal: none of it forks after it),
            # then the tree walked and killed (those that left the group too), then the
            # group killed, all under the lock. Killed afterwards by send(), the group was
            # passed over when the reaper had ended the row meanwhile; and a walk of
            # /proc's children lists can miss a process whose sibling exits as it is
            # read: left running, it carried on the bomb after the row had ended (a full
            # test run, under load).
            signal_group_only(pid, signal.SIGSTOP)
            try:
                if self.family is not None:
                    self.family.kill_tree(pid)  # stopped first, so none forks meanwhile
            finally:  # never left stopped
                signal_group_only(pid, signal.SIGKILL)
        self._registry.emit([RowUpdated(row)])
        self._registry.notice(
            "warning",
            f"{row.name} ({pid}) {reason}: killed its process group and every process below it",
        )

    # Internals ---------------------------------------------------------------------------

    def _live_id(self, rec_id: int) -> int:
        row = self._registry.row(rec_id)
        if row.state.is_over:
            raise UnknownProcess(f"{row.name} has already ended ({row.state})")
        if row.pid is None:
            raise UnknownProcess(f"{row.name} is still starting")
        return rec_id

    def _escalate(self, rec_id: int, waited: float) -> None:
        row = self._registry.get(rec_id)
        if row is None or row.state.is_over:
            return
        self._registry.notice(
            "warning",
            f"{row.name} ({row.pid}) still running {waited:g} s after SIGTERM: sending SIGKILL",
        )
        self.send(rec_id, signal.SIGKILL)

    def _refresh_state_soon(self, rec_id: int, sig: int) -> None:
        row = self._registry.get(rec_id)
        if row is None or row.pid is None:
            self._registry.refresh_ends(rec_id)
            return
        read_state_after_signal(self._registry, rec_id, row.pid, sig)


# How long a stop or continue is waited for, read every STATE_READ_EVERY_S: a loaded
# machine's scheduler may take that long to run a process that must stop itself.
STATE_WAIT_S = 3.0
STATE_READ_EVERY_S = 0.005


def read_state_after_signal(registry: Registry, rec_id: int, pid: int, sig: int) -> None:
    """Show a stop or continue proclab just sent (`sig`) at once, not at the next tick:
    the kernel's state read on a thread of its own until it is the one the signal leads
    to, and the row's stop counted from then (the tick after would see no change). Ends
    the registry's refresh_begins, which the sender called before its signal.

    Waited for as that state, not as any change: a process read running at its last tick
    and sleeping just after its SIGSTOP (it must run to stop itself) was shown sleeping,
    its stop then seen and counted at the next tick (a watched pause test, in CI)."""
    stops = sig == signal.SIGSTOP

    def read() -> None:
        deadline = time.monotonic() + STATE_WAIT_S
        try:
            while True:
                try:
                    state = state_for_status(procfs.read(pid).status)
                except (OSError, ValueError, IndexError):
                    return
                led_to = (state is ProcState.STOPPED) == stops or state is ProcState.ZOMBIE
                if led_to or time.monotonic() >= deadline:
                    registry.set_live_state(rec_id, state)
                    return
                time.sleep(STATE_READ_EVERY_S)
        finally:
            registry.refresh_ends(rec_id)

    threading.Thread(target=read, name="proclab-state", daemon=True).start()


def _is_ready(pid: int) -> bool:
    """The child's bootstrap ends its set-up by becoming a session leader, a TCP handler
    by leading a process group in its server's session: either way, its group's leader."""
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False
