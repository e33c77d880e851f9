"""`proclab watch`: a user's own program, run as it is, and every process it starts.

Against real programs (the examples/), under fork, forkserver and spawn where
multiprocessing is involved: every process of the tree gets a row with the right name,
target, parent and exit code, the parent's join() shows how long it blocked, output lands
under the pid that printed it, and nothing of the tree outlives proclab.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from support import wait_until

from proclab.core.watch import tree


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
