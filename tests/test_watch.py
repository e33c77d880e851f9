"""`proclab watch`: a user's own program, run as it is, and every process it starts.

Against real programs (the examples/), under fork, forkserver and spawn where
multiprocessing is involved: every process of the tree gets a row with the right name,
target, parent and exit code, the parent's join() shows how long it blocked, output lands
under the pid that printed it, and nothing of the tree outlives proclab.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from support import wait_until

from proclab.core.model import Event, Notice, ProcessCall, ProcessRow, ProcState
from proclab.core.watch import tree
from proclab.core.watch.program import WatchedProgram

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
METHODS = ["fork", "forkserver", "spawn"]


def test_the_walk_finds_every_process_below_the_root_with_its_parent_and_command() -> None:
    program = subprocess.Popen(
        ["bash", "-c", "sleep 30 & (sleep 31 & wait) & wait"], start_new_session=True
    )
    try:

        def full() -> dict[int, tree.TreeProcess]:
            found = tree.walk([program.pid])
            return found if len(found) == 4 else {}

        assert wait_until(lambda: full(), 10)
        found = full()
        by_command = {" ".join(p.cmdline): p for p in found.values()}
        assert by_command["sleep 30"].ppid == program.pid
        inner = by_command["sleep 31"]
        subshell = found[inner.ppid]
        assert subshell.ppid == program.pid and subshell.name == "bash"
        assert found[program.pid].exe.endswith("bash")
        # A second walk reuses what it knew, and still names each process by pid and start.
        again = tree.walk([program.pid], found)
        assert {p.key for p in again.values()} == {p.key for p in found.values()}
        assert again[inner.pid] is inner
        assert abs(found[program.pid].started - time.time()) < 30
    finally:
        os.killpg(program.pid, signal.SIGKILL)
        program.wait()


def test_a_walk_of_a_pid_that_is_gone_is_empty() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    assert tree.walk([int(done.stdout)]) == {}


# The watched program: WatchedProgram in this process, on the examples ---------------------


def watch(argv: list[str], **options: object) -> WatchedProgram:
    """Run `argv` under a WatchedProgram until its tree is done; returns it closed."""
    program = WatchedProgram(argv, family="tree", sample_interval=0.2, grace=1.0, **options)  # type: ignore[arg-type]
    events: list[Event] = []
    program.subscribe(events.append)
    program.events = events  # type: ignore[attr-defined]
    try:
        program.start()
        assert program.wait(60), [r.name for r in program.rows() if r.state.is_live]
    finally:
        program.close()
    return program


def example(name: str, *args: str) -> list[str]:
    return [sys.executable, str(EXAMPLES / name), *args]


def by_name(program: WatchedProgram) -> dict[str, ProcessRow]:
    return {r.name: r for r in program.rows()}


def lines_of(program: WatchedProgram, row: ProcessRow) -> list[str]:
    return [line.text for line in program.output(row.id) if line.stream == "stdout"]


def calls(program: WatchedProgram, kind: str) -> list[ProcessCall]:
    return [e for e in program.events if isinstance(e, ProcessCall) and e.call == kind]  # type: ignore[attr-defined]


def assert_close(hook: float, script: float) -> None:
    """The hook's measure of a join against the script's own: within 10 % for a join
    that really blocks; one that returns at once may be preempted (50 ms of slack)."""
    assert abs(hook - script) <= max(0.1 * script, 0.05), (hook, script)


@pytest.mark.parametrize("method", METHODS)
def test_ten_sleepers(method: str) -> None:
    program = watch(example("ten_sleepers.py", method, "0.3"))
    rows = by_name(program)
    root = program.root
    assert root is not None and root.exitcode == 0 and root.parent is None
    sleepers = [rows[f"Process-{i}"] for i in range(1, 11)]
    parent = rows["forkserver"].id if method == "forkserver" else root.id
    if method == "forkserver":
        assert rows["forkserver"].parent == root.id
    for row in sleepers:
        assert row.mp is not None and row.mp.target == "__main__.sleeper", row
        assert row.mp.method == method and row.mp.args == "(0.3,)"
        assert row.parent == parent
        assert row.exitcode == 0 and row.state is ProcState.EXITED
        assert lines_of(program, row) == [f"{row.name} sleeps 0.3 s"]
    script = blocked_figures(lines_of(program, root))
    joins = {c.child_pid: c for c in calls(program, "join") if c.pid == root.pid}
    assert set(joins) == set(script) == {r.pid for r in sleepers}
    for pid, figure in script.items():
        assert joins[pid].ended and joins[pid].exitcode == 0
        assert_close(joins[pid].took, figure)
    starts = calls(program, "start")
    assert {c.child_pid for c in starts} == {r.pid for r in sleepers}


def blocked_figures(lines: list[str]) -> dict[int, float]:
    """{pid: seconds} from the script's own "joined NAME pid PID exit 0: blocked S s"."""
    found = {}
    for line in lines:
        match = re.match(r"joined \S+ pid (\d+) exit \S+: blocked ([\d.]+) s", line)
        if match:
            found[int(match[1])] = float(match[2])
    return found


@pytest.mark.parametrize("method", METHODS)
def test_named_process_join_timeout_terminate_kill(method: str) -> None:
    program = watch(example("named_process.py", method))
    rows = by_name(program)
    root = program.root
    assert root is not None and root.exitcode == 0
    greeter, slow, stuck = rows["greeter"], rows["slowpoke"], rows["stuck"]
    assert greeter.mp is not None and greeter.mp.target == "__main__.greet"
    assert greeter.mp.kwargs == "{'who': 'world', 'times': 3}" and greeter.mp.args == "('Hello',)"
    assert lines_of(program, greeter) == ["Hello, world!"] * 3
    assert greeter.exitcode == 0
    assert slow.mp is not None and slow.mp.daemon is True
    assert slow.exitcode == -signal.SIGTERM and slow.state is ProcState.TERMINATED
    assert stuck.exitcode == -signal.SIGKILL and stuck.state is ProcState.KILLED
    timed_out = [c for c in calls(program, "join") if c.child_pid == slow.pid and c.timeout]
    assert len(timed_out) == 1 and timed_out[0].ended is False and timed_out[0].timeout == 0.5
    said = next(line for line in lines_of(program, root) if line.startswith("join(timeout=0.5)"))
    assert_close(timed_out[0].took, float(re.search(r"blocked ([\d.]+) s", said)[1]))  # type: ignore[index]
    assert [c.child_pid for c in calls(program, "terminate")] == [slow.pid]
    assert [c.child_pid for c in calls(program, "kill")] == [stuck.pid]


@pytest.mark.parametrize("method", METHODS)
def test_pool_workers_are_labelled_and_counted(method: str) -> None:
    program = watch(example("pool_map.py", method, "200"))
    workers = [r for r in program.rows() if r.mp is not None and r.mp.pool_kind == "Pool"]
    assert len(workers) == 2
    assert all(w.mp is not None and w.mp.target for w in workers)
    assert sum(w.mp.calls or 0 for w in workers if w.mp is not None) == 200
    root = program.root
    assert root is not None and root.exitcode == 0
    assert lines_of(program, root) == ["sum of 200 squares: 2646700"]


def test_process_pool_executor_workers_are_labelled() -> None:
    program = watch(example("executor.py", "forkserver"))
    workers = [
        r for r in program.rows() if r.mp is not None and r.mp.pool_kind == "ProcessPoolExecutor"
    ]
    assert len(workers) == 2
    assert sum(w.mp.calls or 0 for w in workers if w.mp is not None) == 120
    assert all(w.state.is_over for w in program.rows())


def test_non_python_programs_and_their_output() -> None:
    program = watch(example("run_program.py"))
    root = program.root
    assert root is not None and root.exitcode == 0
    rows = [r for r in program.rows() if r is not root]
    # echo and sh live under a walk; their parent's hook still said how each ended
    assert sorted(r.exitcode for r in rows if r.parent == root.id) == [0, 0, 0, 3]
    said = lines_of(program, root)
    assert "a line from echo" in said and "sh exited with 3" in said
    assert "the child said: a line the parent captures" in said
    child = next(r for r in rows if "a line from a Python child" in r.command)
    assert lines_of(program, child) == ["a line from a Python child"]


def test_a_program_without_the_hook_keeps_its_exit_status_and_names_who_saw_the_rest() -> None:
    program = watch(["bash", "-c", "sleep 0.5 & (sleep 0.6; exit 3) & echo hi; wait; exit 4"])
    root = program.root
    assert root is not None and root.exitcode == 4 and root.state is ProcState.FAILED
    assert lines_of(program, root) == ["hi"]
    rows = {r.command: r for r in program.rows() if r is not root}
    sleeper = rows["sleep 0.5"]
    assert sleeper.parent == root.id and sleeper.exitcode is None
    assert sleeper.state is ProcState.ENDED
    assert sleeper.exit_note == f"exit status seen only by its parent bash ({root.pid})"
    inner = rows["sleep 0.6"]
    subshell = program.row(inner.parent)  # type: ignore[arg-type]
    assert subshell.parent == root.id and inner.exit_note.endswith(f"bash ({subshell.pid})")
    assert all(r.exitcode is None for r in rows.values())  # none made up


def test_a_users_own_sitecustomize_still_runs(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("print('the user sitecustomize ran', flush=True)\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    program = watch([sys.executable, "-c", "print('main ran')"], env=env)
    root = program.root
    assert root is not None and root.exitcode == 0
    assert lines_of(program, root) == ["the user sitecustomize ran", "main ran"]
    assert program.hook_stats().connections == 1  # type: ignore[union-attr]


def test_quitting_ends_the_tree_and_names_what_left_the_session() -> None:
    program = WatchedProgram(
        ["bash", "-c", "setsid sleep 60 & trap '' TERM; sleep 60; wait"],
        family="tree",
        grace=0.5,
    )
    notices: list[str] = []
    program.subscribe(lambda e: notices.append(e.text) if isinstance(e, Notice) else None)
    program.start()
    try:
        assert wait_until(lambda: len([r for r in program.rows() if r.state.is_live]) == 3, 10)
        pids = [r.pid for r in program.rows()]
    finally:
        program.close()
    assert all(not psutil.pid_exists(p) or psutil.Process(p).status() == "zombie" for p in pids)
    assert any("left the program's session" in n and "sleep" in n for n in notices), notices
    assert any("SIGKILL" in n for n in notices), notices  # bash ignored SIGTERM
    root = program.root
    assert root is not None and root.exitcode == -signal.SIGKILL
    assert all(r.state.is_over for r in program.rows())
