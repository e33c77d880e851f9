"""Built-in targets: the lesson's tasks and a few that show one behaviour each.

Module-level functions only, so that every start method can find them by name:
`proclab run proclab.core.tasks:sleep --args '(1,)'`.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time


def write_file(path: str = "a.txt") -> None:
    """The lesson's first task: write 'helloworld' into a file."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("helloworld")
    print(f"wrote helloworld to {os.path.abspath(path)}")


def greet(name: str, age: int, gender: str, seconds: float = 3.0) -> None:
    """The lesson's Process(target=task, kwargs={'name': 'jerry', 'age': 20, ...})."""
    print(name, age, gender)
    time.sleep(seconds)
    print("child process code done")


def sleep(seconds: float = 1.0) -> None:
    """I/O-bound: waits on a timer and uses almost no CPU."""
    time.sleep(seconds)


def clock() -> None:
    """Prints the wall clock the moment it runs: `proclab experiment start-methods`
    measures each start method's start latency with it."""
    print(repr(time.time()), flush=True)


def load(kind: str, location: str, function: str) -> None:
    """Imports a target as its child would, without calling it: the experiments start
    this once, uncounted, so that no measured copy pays the one-off costs of a first start
    (a fork server still starting, the target's first import)."""
    from proclab.core.bootstrap import load_target

    load_target(kind, location, function, os.getcwd())


def spin(seconds: float = 1.0) -> None:
    """CPU-bound: keeps one core busy for `seconds` of wall time."""
    print(f"spinning for {seconds:g} s", flush=True)
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1


def count(n: int = 10_000_000) -> None:
    """The lesson's CPU-bound loop: for i in range(n): i += 1."""
    for i in range(n):
        i += 1
    print(f"counted to {n:,}")


def fib(n: int = 30) -> int:
    """CPU-bound recursion; prints its result."""

    def f(k: int) -> int:
        return k if k < 2 else f(k - 1) + f(k - 2)

    result = f(n)
    print(f"fib({n}) = {result}")
    return result


def fail(message: str = "this task always fails") -> None:
    """Raises: the child ends with exit code 1 and its traceback on stderr."""
    print("about to raise", flush=True)
    raise RuntimeError(message)


def exit_with(code: int = 3) -> None:
    """Exits with the given code, as sys.exit(code) does."""
    print(f"exiting with code {code}")
    sys.exit(code)


def ignore_sigterm(seconds: float = 60.0) -> None:
    """Ignores SIGTERM, so terminate() does nothing and only kill() ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"ignoring SIGTERM for {seconds:g} s")
    time.sleep(seconds)


def tick(interval_ms: int = 500, count: int | None = None) -> None:
    """Prints a numbered line every interval_ms milliseconds (forever if count is None)."""
    i = 0
    while count is None or i < count:
        print(f"tick {i} from pid {os.getpid()}")
        i += 1
        time.sleep(interval_ms / 1000)


def flood(total_bytes: int = 200_000_000, line_bytes: int = 100) -> None:
    """Prints `total_bytes` in numbered lines of `line_bytes` bytes (newline included), as
    fast as the pipe takes them: an output flood, for what watches it to survive."""
    filler = b"x" * max(0, line_bytes - 12)
    out = sys.stdout.buffer
    lines = total_bytes // max(line_bytes, 12)
    batch = 1000
    for start in range(0, lines, batch):
        out.write(
            b"".join(b"%010d %s\n" % (i, filler) for i in range(start, min(lines, start + batch)))
        )
    out.flush()


def _grandchild(seconds: float) -> None:
    print(f"grandchild {os.getpid()} of {os.getppid()} sleeping {seconds:g} s", flush=True)
    time.sleep(seconds)


def with_grandchild(seconds: float = 30.0) -> None:
    """Starts a grandchild with its own start method and waits for it."""
    child = multiprocessing.Process(target=_grandchild, args=(seconds,), name="grandchild")
    child.start()
    print(f"started grandchild {child.pid}", flush=True)
    child.join()
    print(f"grandchild exited with {child.exitcode}")


def fork_bomb(width: int = 2, depth: int = 8, delay: float = 0.05) -> None:
    """Each process starts `width` copies of itself, `depth` levels deep: width**depth
    processes, unless proclab stops it first (it kills a child's whole process group once
    the child has started more than its limit of processes)."""
    children = []
    for _ in range(width if depth > 0 else 0):
        time.sleep(delay)
        pid = os.fork()
        if pid == 0:
            try:
                fork_bomb(width, depth - 1, delay)
            finally:
                os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)


# The choices the spawn form offers: arguments that show each one off, and what it does in
# a few words (the form's list says them beside its name). Plain tuples: a spawn child
# imports this module to run its task, and a NamedTuple would import `typing` into it.
BUILTINS: dict[str, tuple[str, str, str]] = {
    "greet": ("", "{'name': 'jerry', 'age': 20, 'gender': 'male'}", "the lesson's task"),
    "sleep": ("(1,)", "", "I/O-bound: waits, almost no CPU"),
    "spin": ("(5,)", "", "CPU-bound: a core busy for N s"),
    "count": ("(10_000_000,)", "", "the lesson's CPU-bound loop"),
    "fib": ("(30,)", "", "CPU-bound recursion; prints its result"),
    "write_file": ("('a.txt',)", "", "the lesson's first task: writes a file"),
    "tick": ("(500,)", "", "prints a numbered line every N ms"),
    "fail": ("", "", "raises: exit code 1 and a traceback"),
    "exit_with": ("(3,)", "", "exits with the code it is given"),
    "ignore_sigterm": ("(60,)", "", "ignores SIGTERM: only kill ends it"),
    "with_grandchild": ("(30,)", "", "starts a grandchild, waits for it"),
    "fork_bomb": ("(2, 10, 0.05)", "", "careful: forks until proclab stops it"),
}
