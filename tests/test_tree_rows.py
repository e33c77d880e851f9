"""The watched tree's book of rows (core/watch/rows.py) when what it learns comes in an
order real programs bring only now and then: a fork server's child made a row before the
server had one (the hook's word about the child came first), so that its command line,
the server's, was all there was to name it by. CI met it once in some fifty runs of
test_watch_app's forkserver case: the table named Process-1 "mp forkserver". Here the
order is made on purpose, with the processes as /proc would show them."""

from __future__ import annotations

import sys
import time

import pytest

from proclab.core.model import Event, ProcessRow, ProcSample, ProcState
from proclab.core.registry import Registry
from proclab.core.watch import tree
from proclab.core.watch.hook_server import PassedFds
from proclab.core.watch.messages import HookMessages
from proclab.core.watch.protocol import Hello, MpName, MpRun, MpStart, Started
from proclab.core.watch.rows import Status, TreeRows, usage_sample
from proclab.tui.fmt import wall_time as shown_wall_at
from proclab.tui.widgets.process_tree import shown_name

SCRIPT = (sys.executable, "ten_sleepers.py", "forkserver")
SERVER = (
    sys.executable,
    "-c",
    "from multiprocessing.forkserver import main; main(5, 6, ['__main__'], **{})",
)


def process(pid: int, ppid: int, cmdline: tuple[str, ...]) -> tree.TreeProcess:
    return tree.TreeProcess(pid, 1000 + pid, ppid, 100, "S", "python3", cmdline, sys.executable)


def book() -> tuple[TreeRows, list[Event | object]]:
    rows = TreeRows(Registry(), lambda rec_id, process: None)
    events: list[Event | object] = []
    rows.roots.append(rows.new_row(process(100, 1, SCRIPT), events, root=True))
    return rows, events


def test_a_forkserver_child_seen_before_its_server_is_not_taken_for_the_server() -> None:
    rows, events = book()
    child = rows.see(process(300, 200, SERVER), events)  # its parent has no row yet
    server = rows.see(process(200, 100, SERVER), events)
    assert child is not None and server is not None
    rows.see(process(300, 200, SERVER), events)  # the next walk: its parent is known now
    row = rows.registry.row(child)
    assert row.parent == server
    assert row.mp is not None and row.mp.role is None and row.mp.method == "forkserver"
    assert shown_name(rows.registry.row(server)) == "mp forkserver"
    assert shown_name(row) != "mp forkserver"


def test_a_child_seen_before_its_parent_is_put_under_it_when_the_parent_is_seen() -> None:
    """Not left at the top of the tree until a walk sees it again: a quiet machine may not
    walk while it lives. A local full run met it once: Process-1 drawn above the script."""
    rows, events = book()
    child = rows.see(process(300, 200, SERVER), events)  # its parent has no row yet
    assert child is not None and rows.registry.row(child).parent is None
    server = rows.see(process(200, 100, SERVER), events)  # no walk of the child after this
    row = rows.registry.row(child)
    assert row.parent == server
    assert row.mp is not None and row.mp.role is None and row.mp.method == "forkserver"
    assert shown_name(row) != "mp forkserver"


def test_a_process_named_by_its_own_word_is_a_process_not_a_helper() -> None:
    rows, events = book()
    child = rows.see(process(300, 200, SERVER), events)  # taken for the server, for now
    assert child is not None
    messages = HookMessages(rows, None, None, lambda pending: None)  # type: ignore[arg-type]
    messages.on_message(MpRun(300, 0.0, "Process-1", "ten_sleepers.sleeper", 100), PassedFds(()))
    row = rows.registry.row(child)
    assert shown_name(row) == "Process-1"
    assert row.mp is not None and row.mp.role is None and row.mp.target == "ten_sleepers.sleeper"


@pytest.mark.parametrize("hello_first", [False, True], ids=["start-first", "hello-first"])
def test_a_forkserver_child_gone_before_any_walk_is_put_under_the_server(
    monkeypatch: pytest.MonkeyPatch, hello_first: bool
) -> None:
    """Under load, a short forkserver child can run and end before proclab reads a word
    about it, and before any walk has seen the fork server: its row is made from what the
    messages say. Its starter's `start()` does not know the server; its own hook names it as
    its parent. CI met it once: the greeter of test_watch's forkserver case had no parent."""
    monkeypatch.setattr(tree, "describe", lambda pid: None)  # gone from /proc already
    rows, events = book()
    messages = HookMessages(rows, None, None, lambda pending: None)  # type: ignore[arg-type]
    now = time.time()
    start = MpStart(100, now, 300, "greeter", "greet", "()", "{}", False, "forkserver", now - 0.01)
    hello = Hello(300, now - 0.005, 200, SERVER, sys.executable, "fork", ())
    for message in (hello, start) if hello_first else (start, hello):
        messages.on_message(message, PassedFds(()))
    (greeter,) = [r for r in rows.registry.rows() if r.pid == 300]
    assert greeter.parent is None  # the server has no row yet
    server = rows.see(process(200, 100, SERVER), events)
    greeter = rows.registry.row(greeter.id)
    assert greeter.parent == server and greeter.name == "greeter"


def test_a_parent_named_by_pid_is_the_process_that_had_the_pid_then(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pid is reused: a child whose hook names pid 200 as its parent does not go under
    a process that had pid 200 and had ended before the child spoke."""
    monkeypatch.setattr(tree, "describe", lambda pid: None)
    rows, events = book()
    earlier = rows.see(process(200, 100, SCRIPT), events)
    assert earlier is not None
    rows.gone.setdefault(earlier, time.time())
    rows.finish(earlier, events)
    now = time.time()
    rows.registry.update(earlier, ended_at=now - 2)  # ended 2 s before the child spoke
    messages = HookMessages(rows, None, None, lambda pending: None)  # type: ignore[arg-type]
    messages.on_message(Hello(300, now, 200, SCRIPT, sys.executable, "fork", ()), PassedFds(()))
    (child,) = [r for r in rows.registry.rows() if r.pid == 300]
    assert child.parent is None


def test_a_child_whose_parent_ended_before_its_hook_spoke_goes_under_that_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A double fork: the middle process forks and exits at once, and its end (its own
    parent's word) was read before its child's hook spoke. The child, born before that
    end as /proc says, goes under it; the message's time had it taken for a later owner
    of the pid (CI, and 4 runs of 6 under load)."""
    rows, events = book()
    middle = rows.see(process(200, 100, SCRIPT), events)
    assert middle is not None
    born = rows.registry.row(middle).started_at
    assert born is not None
    rows.gone.setdefault(middle, time.time())
    rows.finish(middle, events)
    rows.registry.update(middle, ended_at=born + 0.5)
    child_process = tree.TreeProcess(
        300, 1000 + 200 + 10, 1, 300, "S", "python3", SCRIPT, sys.executable
    )  # born 0.1 s after its parent, a tick's worth of /proc; its ppid already the reaper
    monkeypatch.setattr(tree, "describe", lambda pid: child_process if pid == 300 else None)
    messages = HookMessages(rows, None, None, lambda pending: None)  # type: ignore[arg-type]
    spoke = born + 2.0  # after the middle's end
    messages.on_message(Hello(300, spoke, 200, SCRIPT, sys.executable, "fork", ()), PassedFds(()))
    (child,) = [r for r in rows.registry.rows() if r.pid == 300]
    assert child.parent == middle


def test_a_row_made_while_a_walk_ran_is_not_taken_for_gone_by_it() -> None:
    """A hook's hello can make a row while a walk runs (a double fork's daemon, heard of
    as the program's root is reaped): the walk did not look for it, and must not end it.
    Ended so, a daemon that lived on had its row ended at once, its status "not known",
    and the program was taken for over."""
    rows, events = book()
    looked_for = rows.walk_from()[1]
    daemon = rows.see(process(300, 1, SCRIPT), events)  # the hello, during the walk
    assert daemon is not None
    rows.walked({}, events, reaps_orphans=False, looked_for=looked_for)  # found nothing
    assert daemon not in rows.gone
    assert rows.gone == {rows.roots[0]: pytest.approx(time.time(), abs=5)}
    rows.walked({}, events, reaps_orphans=False, looked_for=rows.walk_from()[1])  # the next
    assert daemon in rows.gone


def test_a_parent_s_start_message_read_late_does_not_undo_a_child_s_rename() -> None:
    """A child's own messages are read before its lines and its end, so they can be read
    before its parent's `start()` message: the name it gave itself (a Pool initializer's)
    stays, not the one it started under. CI met it once: the row kept "c-1"."""
    rows, events = book()
    child = rows.see(process(300, 100, SCRIPT), events)
    assert child is not None
    messages = HookMessages(rows, None, None, lambda pending: None)  # type: ignore[arg-type]
    now = time.time()
    said = (
        MpRun(300, now, "c-1", "work", 100),
        MpName(300, now + 0.001, "renamed-1"),
        MpStart(100, now + 0.002, 300, "c-1", "work", "(1,)", "{}", False, "fork", now - 0.01),
    )
    for message in said:
        messages.on_message(message, PassedFds(()))
    row = rows.registry.row(child)
    assert row.name == "renamed-1"
    assert row.mp is not None and row.mp.target == "work" and row.mp.method == "fork"


def test_a_short_child_s_cpu_time_is_its_reaper_s_word_not_the_zombie_s_ticks() -> None:
    """A zombie's CPU times in /proc are in clock ticks (10 ms): a child that spun 15 ms
    was shown 10 ms of CPU though its hooked parent had reaped it with wait4, whose
    figures are its own to the microsecond (it had no children). What else was read at
    its end (its context switches) stays."""
    rows, events = book()
    child = rows.see(process(300, 100, SCRIPT), events)
    assert child is not None
    zombie = ProcSample(
        time=time.monotonic(), interval=0.1, status="zombie", cpu_percent=0.0,
        cpu_user=0.01, cpu_system=0.0, cpu_delta=0.01, run_delay_delta=0.0, run_delay=0.002,
        rss=0, threads=1, core=1, ctx_voluntary=3, ctx_involuntary=9,
    )  # fmt: skip
    rows.registry.update(child, sample=zombie, state=ProcState.ZOMBIE)
    reaped = Status(
        0, time.time(), "reported by its parent", 100, usage_sample(0.0153, 0.0007, None)
    )
    rows.parent_said(300, reaped, events)
    row = rows.registry.row(child)
    assert row.state is ProcState.EXITED and row.sample is not None
    assert row.sample.cpu_time == pytest.approx(0.016)
    assert (row.sample.ctx_voluntary, row.sample.ctx_involuntary) == (3, 9)
    assert row.sample.run_delay == 0.002


def test_a_walk_s_older_reading_does_not_undo_what_a_hook_said() -> None:
    """A walk reads /proc before it takes the lock: a command line it read before a
    Popen's word on the child was applied undid that word, and the next walk did it
    again, each a false "exec'd" line."""
    rows, events = book()
    child = rows.see(process(300, 100, SCRIPT), events)  # the fork, before its exec
    assert child is not None
    rows.became(child, ("/bin/sh", "-c", "sleep 1"), None, events)
    assert rows.registry.row(child).command == "/bin/sh -c 'sleep 1'"
    rows.see(process(300, 100, SCRIPT), events)  # the walk's reading from before the word
    assert rows.registry.row(child).command == "/bin/sh -c 'sleep 1'"


def test_a_subreaper_s_grandchild_whose_hello_came_first_goes_under_its_forker_later() -> None:
    """A program that reaps its orphans (a subreaper): a walk placed the grandchild under
    it, and the grandchild's fork hello, naming the parent that forked it, was read before
    that parent had a row (each hook has a socket of its own). It stayed under the
    program (1 run of 3 of test_watch's case)."""
    rows, events = book()
    grandchild = rows.see(process(300, 100, SCRIPT), events)  # adopted: its ppid the root
    assert grandchild is not None
    messages = HookMessages(rows, None, None, lambda pending: None)  # type: ignore[arg-type]
    spoke = time.time()
    messages.on_message(Hello(300, spoke, 200, SCRIPT, sys.executable, "fork", ()), PassedFds(()))
    assert rows.registry.row(grandchild).parent == rows.roots[0]  # its forker has no row yet
    forker = rows.see(process(200, 100, SCRIPT), events)
    assert rows.registry.row(grandchild).parent == forker


def test_an_adopted_grandchild_gone_waits_for_the_hooked_program_that_reaps_it() -> None:
    """Shown under the parent that forked it, which had ended, its end did not wait for
    the hooked subreaper program that reaps it: it was 'exit status not known' a moment.
    (The wait looked at the last walk's reading, which no longer holds a gone process.)"""
    rows, events = book()
    rows.see(process(200, 100, SCRIPT), events)
    grandchild = rows.see(process(300, 200, SCRIPT), events)
    rows.hooked.add(100)  # the program, a subreaper
    # the forker ends; the grandchild, adopted, is walked with the program as its ppid
    rows.walked({100: process(100, 1, SCRIPT), 300: process(300, 100, SCRIPT)}, events, False, {})
    looked_for = {pid: rows.keys[i][1] for pid, i in rows.live.items()}
    rows.walked({100: process(100, 1, SCRIPT)}, events, False, looked_for)  # reaped by it
    assert grandchild in rows.gone
    rows.finish_gone(events)
    assert grandchild in rows.gone  # waiting, STATUS_WAIT_S at most, for the program's word


def test_a_row_is_told_made_before_anything_else_of_it() -> None:
    """Its Spawned, made by one thread, went out after another thread's update of it (a
    hello's name): a recording held a row updated before it was made, which a replay
    took for a made-up row. The late Spawned is older than what went out: left out."""
    from dataclasses import replace

    from fakes import mixed_rows

    from proclab.core.model import OutputLine, RowUpdated, Spawned

    registry = Registry()
    told: list[Event] = []
    registry.subscribe(told.append)
    row = mixed_rows()[0]
    registry.add(row)
    named = registry.update(row.id, name="renamed")
    registry.emit([RowUpdated(named)])  # the other thread's, first
    registry.emit([Spawned(row)])  # the maker's, late
    registry.emit([OutputLine(row.id, row.pid or 0, "renamed", "stdout", "a line", 0.0)])
    assert [type(e).__name__ for e in told] == ["Spawned", "RowUpdated", "OutputLine"]
    assert told[0].row.name == "renamed"  # type: ignore[union-attr]
    other = replace(row, id=row.id + 1)
    registry.add(other)
    registry.emit([OutputLine(other.id, 1, "x", "stdout", "its first line", 0.0)])
    assert [type(e).__name__ for e in told[3:]] == ["Spawned", "OutputLine"]
    third = replace(row, id=row.id + 2)
    registry.add(third)
    registry.emit([Spawned(third), RowUpdated(third)])  # in order: told once
    assert [type(e).__name__ for e in told[5:]] == ["Spawned", "RowUpdated"]


def test_a_hooks_word_that_changed_nothing_still_stands_against_an_older_walk() -> None:
    """A Popen'd `true`, read from /proc once it had exec'd (its row already "true"), was
    put back to the Python it forked from by a walk that had read /proc before the exec
    and took the lock after the hook's word: that word had changed nothing, so it was
    not kept (CI, 1 child of 30)."""
    rows, events = book()
    walk_began = time.monotonic()
    child = rows.see(process(400, 100, ("true",)), events)  # described as Popen returned
    assert child is not None
    rows.became(child, ("true",), None, events)  # the hook: Popen's child runs `true`
    rows.see(process(400, 100, SCRIPT), events, read_at=walk_began)
    assert rows.registry.row(child).command == "true"


def test_a_walk_that_read_proc_before_a_hooks_word_does_not_undo_it() -> None:
    """A subprocess child told as running `true` was shown "exec'd: python fork_exec.py"
    by a walk that had read /proc just before the exec and, on a loaded machine, took the
    lock more than TOLD_S later (CI's full suite, once)."""
    rows, events = book()
    child = rows.see(process(400, 100, SCRIPT), events)  # forked, not yet exec'd
    assert child is not None
    rows.became(child, ("true",), None, events)  # the hook: Popen's child runs `true`
    told = time.monotonic() - 2.0  # as if the walk below waited 2 s for the lock
    rows._told[child] = told
    rows.see(process(400, 100, SCRIPT), events, read_at=told - 0.001)
    assert rows.registry.row(child).command == "true"
    # a walk that began after the word is believed: it did exec again
    rows.see(process(400, 100, ("echo", "hi")), events, read_at=time.monotonic())
    assert rows.registry.row(child).command == "echo hi"


def test_a_walk_that_read_proc_before_a_row_was_made_from_words_does_not_make_it_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Pool's short worker, told of by its parent's start() after its parent had reaped
    it, was made a row from that word (its start time not known); a walk that had read it
    as a zombie just before then made it a second row, "python [python]" (a watched
    program under load, 8 runs of 20)."""
    rows, events = book()
    read_at = time.monotonic()  # the walk begins: pid 300 is a zombie
    zombie = tree.TreeProcess(300, 1300, 100, 100, "Z", "python3", (), "")
    monkeypatch.setattr(tree, "describe", lambda pid: None)  # reaped before the word
    messages = HookMessages(rows, None, None, lambda pending: None)  # type: ignore[arg-type]
    now = time.time()
    start = MpStart(100, now, 300, "ForkPoolWorker-6", "worker", "()", "{}", True, "fork", now)
    messages.on_message(start, PassedFds(()))
    rows.walked({100: process(100, 1, SCRIPT), 300: zombie}, events, False, {}, (), read_at)
    assert [r.name for r in rows.registry.rows() if r.pid == 300] == ["ForkPoolWorker-6"]
    # a walk begun after the word sees a process of its own: the pid used again
    rows.walked({300: process(300, 100, SCRIPT)}, events, False, {}, (), time.monotonic())
    assert len([r for r in rows.registry.rows() if r.pid == 300]) == 2


def test_a_fork_child_first_seen_a_zombie_shows_what_its_forker_ran() -> None:
    """A zombie's command line is not in /proc: a Pool's short worker first seen so was
    shown "[python]" where its parent's start() says it is a fork child, which runs the
    command line of the process that forked it."""
    rows, events = book()
    zombie = tree.TreeProcess(300, 1300, 100, 100, "Z", "python3", (), "")
    child = rows.see(zombie, events)
    assert child is not None and rows.registry.row(child).command == "[python3]"
    messages = HookMessages(rows, None, None, lambda pending: None)  # type: ignore[arg-type]
    now = time.time()
    start = MpStart(100, now, 300, "ForkPoolWorker-5", "worker", "()", "{}", True, "fork", now)
    messages.on_message(start, PassedFds(()))
    row = rows.registry.row(child)
    assert (row.name, row.command) == ("ForkPoolWorker-5", rows.registry.row(1).command)
    assert row.command.endswith("ten_sleepers.py forkserver")


def test_a_popen_child_read_by_a_walk_before_its_row_was_made_ends_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shell Popen started, reaped before proclab read its parent's word, was made a
    row from that word; a walk that had read it just before took it for another process
    with its pid and ended the row "exit status not known", which the parent's status
    then ended again (4 runs of 56 of a watched program)."""
    rows, events = book()
    read_at = time.monotonic()  # the walk begins: the shell still runs
    shell = process(300, 100, ("sh", "-c", "exit 3"))
    monkeypatch.setattr(tree, "describe", lambda pid: None)  # reaped before the word
    messages = HookMessages(rows, None, None, lambda pending: None)  # type: ignore[arg-type]
    messages.on_message(Started(100, time.time(), 300, ("sh", "-c", "exit 3")), PassedFds(()))
    rows.walked({100: process(100, 1, SCRIPT), 300: shell}, events, False, {}, (), read_at)
    (row,) = [r for r in rows.registry.rows() if r.pid == 300]
    assert not row.state.is_over  # its parent's word is waited for
    rows.parent_said(300, Status(3, time.time(), "reported by its parent", 100), events)
    row = rows.registry.row(row.id)
    assert (row.state, row.exitcode) == (ProcState.FAILED, 3)
    ends = [e for e in events if callable(e)]  # Registry.end's: one for the shell
    assert len(ends) == 1


def test_a_process_last_read_under_another_was_its_adopter_s_to_reap() -> None:
    """An attached root's resource tracker ends as its parent does, a moment after it:
    no pidfd time tells them apart, and it was said to be its parent's to reap. Read as a
    zombie under init, it was init's."""
    rows, events = book()
    tracker = rows.see(process(300, 100, ("python3", "-c", "tracker")), events)
    other = rows.see(process(301, 100, ("sleep", "1")), events)
    assert tracker is not None and other is not None
    rows.last_ppid[tracker] = 1  # as its zombie was read: init's now
    for rec_id in (tracker, other):
        rows.gone[rec_id] = time.time()
        rows.finish(rec_id, events)
    assert (
        "ended first, and only the process that adopted it" in rows.registry.row(tracker).exit_note
    )
    assert "only its parent python3 (100) could read it" in rows.registry.row(other).exit_note


def test_a_fork_child_no_walk_saw_lived_at_most_from_its_start_call_to_its_reaping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Pool's short worker that had ended when proclab first looked for it in /proc had
    no wall time at all ("2 not known" in every `Pool.map` example's summary), though its
    parent's start() told when it was called (the child is born inside it) and its
    parent's join when it was reaped: it lived at most that long, shown with its ≤."""
    rows, events = book()
    # As the watcher's own does for a process gone when it is asked to watch it: "ended
    # by now", which was taken for its pidfd's exact word (a reviewer's).
    monkeypatch.setattr(
        rows, "_watch_exit", lambda rec_id, process: rows.exited.setdefault(rec_id, time.time())
    )
    monkeypatch.setattr(tree, "describe", lambda pid: None)  # ended before any read
    messages = HookMessages(rows, None, None, lambda pending: None)  # type: ignore[arg-type]
    called = time.time() - 0.050
    start = MpStart(
        100, called + 0.001, 300, "ForkPoolWorker-1", "worker", "()", "{}", True, "fork", called
    )
    messages.on_message(start, PassedFds(()))
    rows.parent_said(300, Status(0, called + 0.020, "reported by its parent", 100), events)
    (row,) = [r for r in rows.registry.rows() if r.pid == 300]
    assert row.state is ProcState.EXITED
    assert row.started_at == called and row.end_unseen
    assert row.wall_time(time.time()) == pytest.approx(0.020, abs=0.001)
    assert shown_wall(row) == "≤20 ms"


def shown_wall(row: ProcessRow) -> str:
    return shown_wall_at(row, time.time())
