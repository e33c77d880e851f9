"""The hook inside a watched program's Python processes, and proclab's end of its socket.

Real programs (examples/) run under fork, forkserver and spawn with a real HookServer
receiving; the tests read every pipe the hooks hand over, as proclab will."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import wait_until

from proclab.core.watch.hook_server import (
    HOOK_DIR,
    SWEEP_IDLE,
    HookServer,
    HookStats,
    PassedFds,
)
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
    ProtocolError,
    Reaped,
    Started,
    parse,
    parse_sent,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
METHODS = ["fork", "forkserver", "spawn"]
ROOT = "root"  # lines on the pipes proclab gave the program, not a hooked process's own


@dataclass
class Recorder:
    """What a HookServer's callback saw, and every line read from every pipe."""

    take: bool = True
    messages: list[Message] = field(default_factory=list)
    lines: dict[tuple[int | str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    readers: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, message: Message, fds: PassedFds) -> None:
        with self.lock:
            self.messages.append(message)
        if isinstance(message, Hello) and self.take:
            for stream, fd in zip(message.streams, fds.take(), strict=True):
                self.read(message.pid, stream, fd)

    def read(self, who: int | str, stream: str, fd: int) -> None:
        def run() -> None:
            with os.fdopen(fd, "rb") as pipe:
                for line in pipe:
                    with self.lock:
                        self.lines[who, stream].append(line.decode().rstrip("\n"))

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.readers.append(thread)

    def of(self, kind: type) -> list:
        with self.lock:
            return [m for m in self.messages if isinstance(m, kind)]

    def hello(self, pid: int) -> Hello:
        (hello,) = [h for h in self.of(Hello) if h.pid == pid]
        return hello


@dataclass
class Run:
    returncode: int
    root: int  # the program's own pid
    rec: Recorder
    server_stats: HookStats

    def out(self, pid: int | str, stream: str = "stdout") -> list[str]:
        return self.rec.lines.get((pid, stream), [])


def run_hooked(
    argv: list[str], *, base_env: dict[str, str] | None = None, take: bool = True
) -> Run:
    rec = Recorder(take=take)
    with HookServer(rec) as server:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        rec.read(ROOT, "stdout", out_r)
        rec.read(ROOT, "stderr", err_r)
        env = server.environment(base_env, output_fds=(out_w, err_w))
        try:
            with subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                cwd=EXAMPLES.parent,
            ) as proc:
                proc.wait(timeout=60)
        finally:
            os.close(out_w)
            os.close(err_w)
        stats = settle(server, rec)
    return Run(proc.returncode, proc.pid, rec, stats)


def settle(server: HookServer, rec: Recorder) -> HookStats:
    """Once the program's root has exited: wait until no hooked process is connected and
    the server has swept twice more with nothing new (a process that exited before its
    connection was accepted is still in the listen queue until the next sweep), then for
    every pipe a hello brought to end."""
    last = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stats = server.stats()
        now = (stats.live, stats.connections, stats.messages)
        if stats.live == 0 and now == last:
            break
        last = now
        time.sleep(3 * SWEEP_IDLE)
    else:
        raise AssertionError(f"a process of the tree is still connected: {stats}")
    assert {h.pid for h in rec.of(Hello)} <= {b.pid for b in rec.of(Bye)}
    for reader in rec.readers:
        reader.join(timeout=30)
        assert not reader.is_alive(), "a process of the tree kept its output open"
    return stats


def example(name: str, *args: str) -> list[str]:
    return [sys.executable, str(EXAMPLES / name), *args]


def reaper_of(run: Run, method: str) -> int:
    """Who reaps a multiprocessing child: its parent, or for forkserver the fork server."""
    if method != "forkserver":
        return run.root
    (server,) = [m.pid for m in run.rec.of(Helper) if m.role == "forkserver"]
    return server


def assert_own_pipes(run: Run) -> None:
    """Every hooked process of these programs writes to pipes of its own."""
    for hello in run.rec.of(Hello):
        assert hello.streams == ("stdout", "stderr"), hello
    assert run.out(ROOT) == [] and run.out(ROOT, "stderr") == [], "lines not attributed"


def blocked_figures(lines: list[str]) -> dict[int, float]:
    found = {}
    for line in lines:
        m = re.search(r"pid (\d+)\b.*blocked ([\d.]+) s", line)
        if m:
            found[int(m[1])] = float(m[2])
    return found


def assert_close(hook: float, script: float) -> None:
    """The hook's blocked time against the script's own figure for the same join(). The
    hook's clock runs inside the script's (measured here: 0.02 to 0.3 ms less), so it is
    never more; a join that really blocks is within 10 %. A join that returns at once is
    a few microseconds either way, unless the script was preempted around the wrapper on
    a loaded machine (12 ms seen at a load of 13 on 2 cores): slack for one preemption."""
    assert hook <= script + 0.001, (hook, script)
    assert script - hook <= 0.1 * script + (0 if script >= 0.5 else 0.05), (hook, script)


@pytest.mark.parametrize("method", METHODS)
def test_ten_sleepers(method: str) -> None:
    run = run_hooked(example("ten_sleepers.py", method, "1"))
    assert run.returncode == 0
    assert_own_pipes(run)
    starts = run.rec.of(MpStart)
    assert [s.name for s in starts] == [f"Process-{i}" for i in range(1, 11)]
    assert {(s.pid, s.target, s.args, s.kwargs, s.daemon, s.method) for s in starts} == {
        (run.root, "__main__.sleeper", "(1.0,)", "{}", False, method)
    }
    children = {s.child: s.name for s in starts}
    runs = {m.pid: m for m in run.rec.of(MpRun)}
    assert set(runs) == set(children)
    for pid, name in children.items():
        assert (runs[pid].name, runs[pid].target, runs[pid].parent) == (
            name,
            "__main__.sleeper",
            run.root,
        )
        assert run.out(pid) == [f"{name} sleeps 1.0 s"]  # on the child's own pipe
        assert runs[pid].t >= next(s.t_call for s in starts if s.child == pid)
    hellos = {h.pid: h for h in run.rec.of(Hello)}
    assert set(children) <= set(hellos)
    assert {hellos[pid].via for pid in children} == {"load" if method == "spawn" else "fork"}

    joins = run.rec.of(MpJoin)
    assert [j.child for j in joins] == list(children)
    assert all(j.ended and j.exitcode == 0 and j.timeout is None for j in joins)
    script = blocked_figures(run.out(run.root))
    assert set(script) == set(children)
    for j in joins:
        assert_close(j.blocked, script[j.child])
    assert max(j.blocked for j in joins) > 0.5  # the first join waits for the sleep

    reaped = {r.child: r for r in run.rec.of(Reaped) if r.child in children}
    assert set(reaped) == set(children)
    assert {(r.pid, r.status) for r in reaped.values()} == {(reaper_of(run, method), 0)}

    helpers = sorted(h.role for h in run.rec.of(Helper))
    expected = {"fork": [], "forkserver": ["forkserver", "resource_tracker"]}
    assert helpers == expected.get(method, ["resource_tracker"])
    for helper in run.rec.of(Helper):  # they say hello too, with pipes of their own
        assert run.rec.hello(helper.pid).streams == ("stdout", "stderr")


@pytest.mark.parametrize("method", METHODS)
def test_named_process_join_timeout_terminate_kill(method: str) -> None:
    run = run_hooked(example("named_process.py", method))
    assert run.returncode == 0
    assert_own_pipes(run)
    starts = {s.name: s for s in run.rec.of(MpStart)}
    assert set(starts) == {"greeter", "slowpoke", "stuck"}
    greeter, slow, stuck = starts["greeter"], starts["slowpoke"], starts["stuck"]
    assert (greeter.target, greeter.args, greeter.kwargs, greeter.daemon) == (
        "__main__.greet",
        "('Hello',)",
        "{'who': 'world', 'times': 3}",
        False,
    )
    assert slow.daemon and slow.args == "(30,)"
    assert run.out(greeter.child) == ["Hello, world!"] * 3

    joins = {}
    for j in run.rec.of(MpJoin):
        joins.setdefault(j.child, []).append(j)
    assert [(j.ended, j.exitcode) for j in joins[greeter.child]] == [(True, 0)]
    timed_out, after_terminate = joins[slow.child]
    assert (timed_out.timeout, timed_out.ended, timed_out.exitcode) == (0.5, False, None)
    (script_figure,) = [
        float(m[1])
        for line in run.out(run.root)
        if (m := re.search(r"on slowpoke blocked ([\d.]+) s", line))
    ]
    assert_close(timed_out.blocked, script_figure)
    assert (after_terminate.ended, after_terminate.exitcode) == (True, -15)
    assert [(j.ended, j.exitcode) for j in joins[stuck.child]] == [(True, -9)]

    signals = [(s.child, s.how) for s in run.rec.of(MpSignal)]
    assert signals == [(slow.child, "terminate"), (stuck.child, "kill")]
    statuses = {r.child: (r.pid, r.status) for r in run.rec.of(Reaped)}
    reaper = reaper_of(run, method)
    assert statuses[greeter.child] == (reaper, 0)
    assert statuses[slow.child] == (reaper, -15)
    assert statuses[stuck.child] == (reaper, -9)


def assert_pool(run: Run, target: str, kind: str, tasks: int, calls: int) -> set[int]:
    """Every worker the program started is labelled from its first moment, and the final
    counts (each worker's last report, after its loop ended) add up to the work done."""
    assert run.returncode == 0
    assert_own_pipes(run)
    starts = run.rec.of(MpStart)
    assert {s.target for s in starts} == {target}
    last: dict[int, PoolReport] = {}
    for report in run.rec.of(PoolReport):
        if report.pid not in last:
            assert (report.tasks, report.calls, report.final) == (0, 0, False)
        last[report.pid] = report
    assert set(last) == {s.child for s in starts}
    assert all(r.kind == kind and r.final for r in last.values())
    assert sum(r.tasks for r in last.values()) == tasks
    assert sum(r.calls for r in last.values()) == calls
    return set(last)


@pytest.mark.parametrize("method", METHODS)
def test_pool_map_workers_are_labelled_and_counted(method: str) -> None:
    run = run_hooked(example("pool_map.py", method, "1000"))
    # 1,000 items in chunks of 125 (Pool.map's chunk size for 2 workers): 8 tasks.
    workers = assert_pool(run, "multiprocessing.pool.worker", "Pool", tasks=8, calls=1000)
    assert len(workers) == 2
    assert run.out(run.root) == ["sum of 1000 squares: 332833500"]


@pytest.mark.parametrize("method", METHODS)
def test_process_pool_executor_workers_are_counted(method: str) -> None:
    run = run_hooked(example("executor.py", method))
    # 20 calls one per task, then 100 in 4 chunks of 25.
    target = "concurrent.futures.process._process_worker"
    assert_pool(run, target, "ProcessPoolExecutor", tasks=24, calls=120)


def test_subprocess_children_and_captured_output() -> None:
    run = run_hooked(example("run_program.py"))
    assert run.returncode == 0
    root = run.root
    hellos = run.rec.of(Hello)
    assert len(hellos) == 3  # the script and its two Python children: echo and sh have no hook
    (captured,) = [h for h in hellos if h.pid != root and h.streams == ()]
    (inherited,) = [h for h in hellos if h.pid != root and h.streams]
    # The child whose output the parent captures keeps its pipes: the hook takes only
    # proclab's pipes over, never a parent's.
    assert captured.streams == ()
    assert inherited.streams == ("stdout", "stderr")
    assert (captured.ppid, inherited.ppid) == (root, root)
    assert run.out(root) == [
        "a line from echo",  # a non-Python child writes where its parent does
        "sh exited with 3",
        "the child said: a line the parent captures",
    ]
    assert run.out(inherited.pid) == ["a line from a Python child"]
    assert run.out(captured.pid) == []
    statuses = sorted(r.status for r in run.rec.of(Reaped) if r.pid == root)
    assert statuses == [0, 0, 0, 3]


def test_a_plain_fork_child_says_hello_and_its_status_is_reported() -> None:
    code = (
        "import os, sys\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    print('from the child'); sys.stdout.flush(); os._exit(7)\n"
        "print('parent got', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
    )
    run = run_hooked([sys.executable, "-c", code])
    root = run.root
    (child,) = [h for h in run.rec.of(Hello) if h.via == "fork"]
    assert child.ppid == root and child.streams == ("stdout", "stderr")
    assert run.out(child.pid) == ["from the child"]
    assert run.out(root) == ["parent got 7"]
    (reaped,) = run.rec.of(Reaped)
    assert (reaped.pid, reaped.child, reaped.status) == (root, child.pid, 7)
    assert reaped.user is not None and reaped.system is not None


def test_the_users_own_sitecustomize_still_runs(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\nsys.stderr.write('user sitecustomize ran\\n')\nMARK = 42\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    code = "import sitecustomize, sys; print(sitecustomize.MARK, sitecustomize.__file__)"
    run = run_hooked([sys.executable, "-c", code], base_env=env)
    assert run.returncode == 0
    assert run.out(run.root) == [f"42 {tmp_path / 'sitecustomize.py'}"]
    assert run.out(run.root, "stderr") == ["user sitecustomize ran"]


PROBE = """
import sys
print(sys.argv, sys.path)
print(sorted(sys.modules))
print('sitecustomize' in sys.modules, sys.stdout.line_buffering)
sys.stderr.write('to stderr\\n')
sys.exit(3)
"""


def plain_run(env: dict[str, str]) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "arg"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def user_site(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment with a user sitecustomize that fails, as some do."""
    (tmp_path / "sitecustomize.py").write_text("raise RuntimeError('boom')\n")
    yield {**os.environ, "PYTHONPATH": str(tmp_path)}


@pytest.mark.parametrize("absence", ["unset", "closed", "nobody listens"])
def test_without_a_server_the_program_runs_as_without_the_hook(
    absence: str, user_site: dict[str, str], tmp_path: Path
) -> None:
    expected = plain_run(user_site)
    assert expected[0] == 3 and "RuntimeError: boom" in expected[2]
    with HookServer(Recorder()) as server:
        env = server.environment(user_site)
        assert env["PYTHONPATH"] == f"{HOOK_DIR}{os.pathsep}{user_site['PYTHONPATH']}"
        if absence == "unset":  # the hook's folder is there, its sitecustomize runs
            del env["PROCLAB_HOOK"]
            assert plain_run(env) == expected
    if absence == "nobody listens":  # proclab died, its socket file stayed behind
        stale = tmp_path / "stale.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            sock.bind(str(stale))
            env["PROCLAB_HOOK"] = str(stale)
            assert plain_run(env) == expected
    elif absence == "closed":
        assert plain_run(env) == expected


def old_interpreters() -> list[str]:
    found = []
    for folder in sorted(Path("/root/.pyenv/versions").glob("*")):
        python = folder / "bin" / "python"
        if python.exists() and not str(sys.executable).startswith(str(folder)):
            found.append(str(python))
    return found


@pytest.mark.parametrize("python", old_interpreters() or [pytest.param("", marks=pytest.mark.skip)])
def test_any_interpreter_in_the_tree_runs_and_37_on_are_hooked(python: str) -> None:
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info[0] * 100 + sys.version_info[1])"],
        capture_output=True,
        text=True,
        check=True,
    )
    hooked = int(version.stdout) >= 307
    code = (
        "from __future__ import print_function\n"
        "import multiprocessing as mp\n"
        "ctx = mp.get_context('fork') if hasattr(mp, 'get_context') else mp\n"
        "p = ctx.Process(target=print, args=('child',))\n"
        "p.start(); p.join(); print('exit', p.exitcode)\n"
    )
    run = run_hooked([python, "-c", code])
    assert run.returncode == 0
    if not hooked:
        assert run.rec.messages == []
        assert run.out(ROOT) == ["child", "exit 0"] and run.out(ROOT, "stderr") == []
        return
    (start,) = run.rec.of(MpStart)
    assert run.out(start.child) == ["child"]
    assert run.out(run.root) == ["exit 0"]
    assert [(j.child, j.exitcode) for j in run.rec.of(MpJoin)] == [(start.child, 0)]


# --- the server against hostile input -----------------------------------------------


def connect(server: HookServer) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(server.path)
    return sock


def valid(kind: str = "helper", **fields: object) -> bytes:
    body = {"k": kind, "pid": os.getpid(), "t": time.time(), "role": "manager", **fields}
    return json.dumps(body).encode()


def test_junk_is_dropped_and_counted_and_its_fds_closed() -> None:
    rec = Recorder(take=False)
    junk = [
        b"\xff\xfe\x00garbage",
        b"[]",
        b"null",
        b'{"k": "hello"}',
        b"[" * 60_000,  # too deep for json
        b'{"k": "helper", "pid": 1, "t": 1, "role": "manager", "x": "' + b"a" * 70_000 + b'"}',
        valid(t=float("nan")),
        valid(t=float("inf")),
        valid().replace(b'"t": ', b'"t": 1e999, "u": '),
        valid(t=10**400),
        valid(pid=True),
        valid(pid=1),  # someone else's pid
        valid(role="ghost"),
        valid("mp_start", child=5),
        valid("hello", ppid=1, argv=["x"] * 10_000, exe="p", via="load", fds=[]),
        valid("hello", ppid=1, argv=[1], exe="p", via="load", fds=[]),
        b"",
    ]
    with HookServer(rec) as server, connect(server) as client:
        for data in junk:
            client.send(data)
        # fds with a message that takes none, and a hello that claims fewer than it sends
        r1, w1 = os.pipe()
        r2, w2 = os.pipe()
        client.sendmsg([valid()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _fds(r1))])
        hello = valid("hello", ppid=1, argv=["x"], exe="p", via="load", fds=["stdout"])
        client.sendmsg([hello], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _fds(r2, r2))])
        os.close(r1)
        os.close(r2)
        client.send(valid(role="forkserver"))
        assert wait_until(lambda: rec.of(Helper), 10)
        stats = server.stats()
        assert stats.junk == len(junk) + 2, stats.last_error
        assert [m.role for m in rec.of(Helper)] == ["forkserver"]
        assert stats.fds_closed == 3
        for w in (w1, w2):  # the server closed every read end it was sent
            with pytest.raises(BrokenPipeError):
                os.write(w, b"x")
            os.close(w)
        # ...and still serves.
        with connect(server) as other:
            other.send(valid(role="resource_tracker"))
            assert wait_until(lambda: len(rec.of(Helper)) == 2, 10)


def _fds(*fds: int) -> bytes:
    return b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)


def test_a_flood_never_breaks_the_server() -> None:
    rec = Recorder()
    with HookServer(rec) as server:
        flooder = connect(server)
        flooder.setblocking(False)
        sent = 0
        began = time.monotonic()
        while time.monotonic() - began < 1.0:
            for data in (valid(), b"junk" * 100):
                try:
                    flooder.send(data)
                    sent += 1
                except BlockingIOError:
                    time.sleep(0.001)
        with connect(server) as late:
            late.send(valid(role="forkserver"))
            assert wait_until(lambda: any(m.role == "forkserver" for m in rec.of(Helper)), 20)
        flooder.close()
        assert wait_until(lambda: len(rec.of(Bye)) == 2, 20)
        stats = server.stats()
        # Every message read: the flood's, the late one, and two byes.
        assert stats.messages + stats.junk == sent + 3
        assert stats.callback_errors == 0


@pytest.mark.parametrize("take", [False, True])
def test_untaken_fds_are_closed_and_taken_ones_kept(take: bool) -> None:
    rec = Recorder(take=take)
    with HookServer(rec) as server, connect(server) as client:
        r, w = os.pipe()
        hello = valid("hello", ppid=1, argv=["x"], exe="p", via="load", fds=["stdout"])
        client.sendmsg([hello], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _fds(r))])
        os.close(r)
        # The message counts before the callback runs, the fd after it returns.
        assert wait_until(lambda: server.stats().messages == 1 and rec.of(Hello), 10)
        if take:
            assert wait_until(lambda: rec.readers, 10)  # the callback reads what it took
            os.write(w, b"kept\n")
            os.close(w)
            rec.readers[0].join(5)
            assert rec.lines[os.getpid(), "stdout"] == ["kept"]
            assert server.stats().fds_closed == 0
        else:
            assert wait_until(lambda: server.stats().fds_closed == 1, 10)
            with pytest.raises(BrokenPipeError):
                os.write(w, b"x")
            os.close(w)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to become another user")
def test_another_users_connection_is_refused() -> None:
    rec = Recorder()
    with HookServer(rec) as server:
        os.chmod(server.directory, 0o755)  # let the other user reach the socket at all
        os.chmod(server.path, 0o777)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.setuid(65534)
                with connect(server) as sock:
                    sock.send(valid(role="forkserver"))
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        assert wait_until(lambda: server.stats().refused == 1, 10)
        time.sleep(0.1)
        assert rec.messages == []


def test_a_full_socket_drops_messages_and_says_how_many() -> None:
    """The hook never blocks: while proclab is not reading, sends that do not fit are
    dropped and counted, and the first one that fits after tells proclab the count."""
    release = threading.Event()
    rec = Recorder()

    def slow(message: Message, fds: PassedFds) -> None:
        rec(message, fds)
        if isinstance(message, Helper):
            release.wait(30)

    code = (
        "import _proclab_hook, time\n"
        "attempts = sent = 0\n"
        "for _ in range(3000):\n"
        "    attempts += 1; sent += _proclab_hook._send('helper', {'role': 'manager'})\n"
        "print('flooded', flush=True)\n"
        "while True:\n"
        "    attempts += 1\n"
        "    if _proclab_hook._send('helper', {'role': 'forkserver'}):\n"
        "        sent += 1; break\n"
        "    time.sleep(0.01)\n"
        "print(attempts, sent)\n"
    )
    result: list[Run] = []
    thread = threading.Thread(target=lambda: result.append(_run_with(slow, rec, code)))
    thread.start()
    assert wait_until(lambda: any("flooded" in line for line in _all_lines(rec)), 30)
    release.set()
    thread.join(60)
    (run,) = result
    attempts, sent = map(int, run.out(run.root)[-1].split())
    helpers = run.rec.of(Helper)
    assert len(helpers) == sent < attempts
    assert sum(d.count for d in run.rec.of(Dropped)) == attempts - sent
    assert helpers[-1].role == "forkserver"


def _all_lines(rec: Recorder) -> list[str]:
    with rec.lock:
        return [line for lines in rec.lines.values() for line in lines]


def _run_with(callback: object, rec: Recorder, code: str) -> Run:
    with HookServer(callback) as server:  # type: ignore[arg-type]
        out_r, out_w = os.pipe()
        rec.read(ROOT, "stdout", out_r)
        env = server.environment(output_fds=(out_w,))
        with subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out_w) as proc:
            proc.wait(timeout=60)
        os.close(out_w)
        return Run(proc.returncode, proc.pid, rec, settle(server, rec))


def test_close_removes_the_socket_and_its_private_directory() -> None:
    server = HookServer(Recorder()).start()
    assert os.stat(server.directory).st_mode & 0o777 == 0o700
    assert os.path.exists(server.path)
    env = server.environment({"PYTHONPATH": "/mine"})
    assert env["PYTHONPATH"] == f"{HOOK_DIR}{os.pathsep}/mine"
    assert env["PROCLAB_HOOK"] == server.path
    # The hook is there compiled, for processes that may not write bytecode.
    compiled = {p.name.split(".")[0] for p in (HOOK_DIR / "__pycache__").iterdir()}
    assert {"sitecustomize", "_proclab_hook"} <= compiled
    server.close()
    server.close()
    assert not os.path.exists(server.directory)


# --- the parser -----------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
_KINDS = [
    "hello",
    "mp_start",
    "mp_run",
    "mp_join",
    "mp_signal",
    "started",
    "exec",
    "reaped",
    "pool",
    "helper",
    "dropped",
]
_kinds = st.sampled_from(_KINDS)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=200)
    | st.builds(
        lambda kind, pid, t, fields: json.dumps(
            {"k": kind, "pid": pid, "t": t, **fields}, allow_nan=True
        ).encode(),
        _kinds,
        _json_values,
        _json_values,
        st.dictionaries(
            st.sampled_from(
                [
                    "ppid",
                    "argv",
                    "exe",
                    "via",
                    "fds",
                    "child",
                    "name",
                    "target",
                    "args",
                    "kwargs",
                    "daemon",
                    "method",
                    "t_call",
                    "timeout",
                    "ended",
                    "exitcode",
                    "how",
                    "status",
                    "user",
                    "system",
                    "kind",
                    "tasks",
                    "calls",
                    "final",
                    "role",
                    "count",
                    "parent",
                    "u",
                    "tu",
                ]
            ),
            _json_values,
        ),
    )
)
def test_parse_never_raises_anything_but_a_protocol_error(data: bytes) -> None:
    try:
        message = parse(data)
    except ProtocolError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert type(message).__name__ in {
            "Hello", "MpStart", "MpRun", "MpName", "MpJoin", "MpSignal", "Started", "Exec",
            "Reaped", "PoolReport", "Helper", "Dropped",
        }  # fmt: skip


def test_parse_reads_what_the_hook_writes() -> None:
    data = json.dumps(
        {"k": "mp_join", "pid": 7, "t": 12.5, "child": 8, "t_call": 10.0, "timeout": None,
         "ended": True, "exitcode": -15, "later": "ignored"}
    ).encode()  # fmt: skip
    assert parse(data) == MpJoin(
        pid=7, t=12.5, child=8, t_call=10.0, timeout=None, ended=True, exitcode=-15
    )
    assert parse(data).blocked == 2.5


def test_a_call_says_what_its_sender_left_unread_and_nothing_else_is_taken() -> None:
    """A call's "u": bytes of its sender's output still in its pipes as it sent it (None:
    not its own pipe); anything else there is junk, not a guess."""
    base = {"k": "mp_name", "pid": 7, "t": 12.5, "name": "x"}
    assert parse_sent(json.dumps(base).encode())[1] is None
    assert parse_sent(json.dumps({**base, "u": [60, None]}).encode())[1] == (12.5, 60, None)
    counted = {**base, "u": [60, 0], "tu": 12.25}  # when it counted, before the message's time
    assert parse_sent(json.dumps(counted).encode())[1] == (12.25, 60, 0)
    for bad in ([60], [-1, 0], [1.5, 0], "60", [60, 0, 0], [2**40, 0], [True, 0]):
        with pytest.raises(ProtocolError, match=r"mp_name\.u"):
            parse_sent(json.dumps({**base, "u": bad}).encode())


def the_hook() -> Any:
    """The hook's module, loaded here without installing it (nothing to connect to)."""
    spec = importlib.util.spec_from_file_location("_hook_here", HOOK_DIR / "_proclab_hook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("args", "call", "argv"),
    [
        (["true"], {}, ["true"]),
        ("/usr/bin/true", {}, ["/usr/bin/true"]),
        ("echo hi; exit 3", {"shell": True}, ["/bin/sh", "-c", "echo hi; exit 3"]),
        ("echo hi", {"shell": True, "executable": "/bin/bash"}, ["/bin/bash", "-c", "echo hi"]),
        ([b"prog", Path("x")], {}, ["prog", "x"]),
    ],
)
def test_a_popen_child_is_named_by_what_popen_ran(
    args: Any, call: dict[str, Any], argv: list[str]
) -> None:
    """Read from /proc as Popen returned, the child's command line could still be its
    parent's (it had not set its new one yet): a short child was named 'python'."""
    positional = (args, call.get("executable"), *[None] * 7, call.get("shell", False))
    hook = the_hook()
    assert hook._popen_argv(args, positional, {}) == argv
    assert hook._popen_argv(args, (), {"args": args, **call}) == argv


def test_an_argv_told_to_proclab_fits_in_one_message() -> None:
    """64 arguments of 1,000 four-byte characters made a message of 256 KB, over
    proclab's 64 KiB: lost whole, and the child was shown as 'python'."""
    told = the_hook()._bounded(["true", *["😀" * 999] * 63])
    assert len(json.dumps(told, ensure_ascii=False).encode()) < 48 * 1024
    assert told[0] == "true"


def test_parse_reads_an_exec_and_its_taking_back() -> None:
    told = {"k": "exec", "pid": 7, "t": 1.0, "argv": ["echo", "hi"], "exe": "/bin/echo"}
    assert parse(json.dumps(told).encode()) == Exec(
        pid=7, t=1.0, argv=("echo", "hi"), exe="/bin/echo"
    )
    back = {"k": "exec", "pid": 7, "t": 1.0, "argv": None, "exe": None}
    assert parse(json.dumps(back).encode()) == Exec(pid=7, t=1.0, argv=None, exe=None)
    # Without what the child runs, it is still named.
    assert parse(b'{"k": "started", "pid": 7, "t": 1.0, "child": 8}') == Started(7, 1.0, 8, ())


def test_a_connection_that_closes_right_after_sending_is_not_junk() -> None:
    """A process that sends and exits at once: its end must not be counted as an empty
    (junk) message, whenever the server happens to read it, and all it sent arrives."""
    rec = Recorder()
    with HookServer(rec) as server:
        for _ in range(300):
            with connect(server) as client:
                for _ in range(20):
                    client.send(valid())
        assert wait_until(lambda: len(rec.of(Bye)) == 300, 30)
        stats = server.stats()
    assert (stats.junk, stats.last_error) == (0, "")
    assert len(rec.of(Helper)) == 300 * 20


RENAMES_ITSELF = """
import multiprocessing as mp, sys

def work(i):
    mp.current_process().name = "renamed-%d" % i  # as a Pool initializer may
    print(mp.current_process().name, flush=True)

if __name__ == "__main__":
    mp.set_start_method(sys.argv[1])
    mp.current_process().name = "boss"  # the main process: no Process name to show
    children = [mp.Process(target=work, args=(i,), name="c-%d" % i) for i in range(2)]
    for c in children:
        c.start()
    children[0].name = "parent-side"  # the parent's object only: not the child's name
    for c in children:
        c.join()
"""


@pytest.mark.parametrize("method", METHODS)
def test_a_child_that_renames_itself_says_its_new_name(method: str, tmp_path: Path) -> None:
    (tmp_path / "renames.py").write_text(RENAMES_ITSELF)
    run = run_hooked([sys.executable, str(tmp_path / "renames.py"), method])
    assert run.returncode == 0
    starts = {s.child: s.name for s in run.rec.of(MpStart)}
    said = {(m.pid, m.name) for m in run.rec.of(MpName)}
    assert said == {(pid, "renamed-" + name[-1]) for pid, name in starts.items()}
