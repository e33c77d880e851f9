"""Children are cut off from proclab's terminal, die with proclab, and core has no UI."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from conftest import reap_orphans
from pty_session import gone
from support import kill_if_running, start_task, wait_until

SUPERVISOR = textwrap.dedent(
    """
    import json, sys, time
    from proclab.core.controller import Controller
    from proclab.core.spec import build_spec

    if __name__ == "__main__":
        method = sys.argv[1]
        c = Controller(sample_interval=0.5).start()
        T = "proclab.core.tasks"
        ids = c.spawn(build_spec(T + ":with_grandchild", "(60,)", method=method), 2)
        ids += c.spawn(build_spec(T + ":sleep", "(60,)", method=method), 1)
        paused = c.spawn(build_spec(T + ":tick", "(100,)", method=method), 1)
        c.wait_started(ids + paused)
        c.pause(paused[0])
        def grandchildren():
            return [int(l.text.split()[-1]) for i in ids for l in c.output(i)
                    if l.text.startswith("started grandchild")]
        deadline = time.monotonic() + 20
        while len(grandchildren()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        while c.row(paused[0]).state != "stopped" and time.monotonic() < deadline:
            time.sleep(0.02)
        pids = [c.row(i).pid for i in ids + paused] + grandchildren()
        print(json.dumps(pids), flush=True)
        time.sleep(600)
    """
)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_sigkill_of_proclab_leaves_no_child_or_grandchild(tmp_path: Path, method: str) -> None:
    script = tmp_path / "supervise.py"
    script.write_text(SUPERVISOR)
    proc = subprocess.Popen(
        [sys.executable, str(script), method], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        pids = json.loads(proc.stdout.readline())
        assert len(pids) == 6, pids  # 3 children + 1 paused child + 2 grandchildren
        family = [psutil.Process(p) for p in pids]
        assert all(p.status() != psutil.STATUS_ZOMBIE for p in family)
        proc.kill()
        proc.wait()
        killed_at = time.monotonic()
        # a zombie is left over too, until it is reaped (these, re-parented to the test)
        left = gone(family, timeout=3)
        assert left == [], [(pids.index(p.pid), p) for p in left]
        assert time.monotonic() - killed_at < 3
    finally:
        kill_if_running(proc)
        reap_orphans()


PTY_SCRIPT = textwrap.dedent(
    """
    import sys
    from proclab.core.controller import Controller
    from proclab.core.spec import build_spec

    if __name__ == "__main__":
        c = Controller().start()
        ids = []
        for method in ("fork", "forkserver", "spawn"):
            ids += c.spawn(build_spec("proclab.core.tasks:tick", "(50,)", method=method))
        c.wait_started(ids)
        import time
        while not all(c.output(i) for i in ids):
            time.sleep(0.01)
        print(" ".join(str(c.row(i).pid) for i in ids), flush=True)
        sys.stdin.readline()
        c.close()
        print("closed", flush=True)
    """
)


def test_children_never_hold_the_terminal(tmp_path: Path) -> None:
    """In a real pseudo-terminal: the children's fds 0, 1, 2 are /dev/null and pipes, and
    their output never appears on the terminal."""
    script = tmp_path / "in_pty.py"
    script.write_text(PTY_SCRIPT)
    pid, master = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, str(script)])
    try:
        seen = _read_until(
            master, lambda text: text.strip().count(" ") == 2 and text.endswith("\n")
        )
        child_pids = [int(p) for p in seen.split()]
        terminal = os.readlink(f"/proc/{pid}/fd/0")
        assert terminal.startswith("/dev/pts/")
        for child in child_pids:
            fds = [os.readlink(f"/proc/{child}/fd/{n}") for n in (0, 1, 2)]
            assert fds[0] == "/dev/null", fds
            assert fds[1].startswith("pipe:") and fds[2].startswith("pipe:"), fds
            assert terminal not in fds
            # No controlling terminal either: the child runs in a session of its own.
            assert psutil.Process(child).terminal() is None
        time.sleep(0.3)  # the ticks keep printing meanwhile
        os.write(master, b"\n")
        rest = _read_until(master, lambda text: "closed" in text)
        assert "tick" not in seen + rest, "a child's output reached the terminal"
    finally:
        os.close(master)
        os.waitpid(pid, 0)


def _read_until(fd: int, done, timeout: float = 30.0) -> str:  # type: ignore[no-untyped-def]
    text = ""
    deadline = time.monotonic() + timeout
    while not done(text):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; terminal showed {text!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        text += chunk.decode(errors="replace").replace("\r\n", "\n")
    return text


def test_core_imports_no_ui_library() -> None:
    code = textwrap.dedent(
        """
        import pkgutil, importlib, sys
        import proclab.core as core
        for m in pkgutil.walk_packages(core.__path__, "proclab.core."):
            importlib.import_module(m.name)
        bad = sorted(n for n in sys.modules if n.split(".")[0] in ("textual", "rich"))
        print(",".join(bad))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"proclab.core imported {out.stdout.strip()}"


def test_headless_cli_imports_no_ui_library() -> None:
    code = (
        "import sys; from proclab.tui import cli; from proclab.tui.commands import run; "
        "print(','.join(n for n in sys.modules if n.split('.')[0] in ('textual', 'rich')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_children_have_their_own_session(controller) -> None:
    """A session and process group of its own: the terminal's Ctrl+C (sent to proclab's
    foreground group) misses it, and a terminate reaches its whole group."""
    (rec_id,) = start_task(controller, "sleep", "(30,)")
    pid = controller.row(rec_id).pid
    assert wait_until(lambda: os.getsid(pid) == pid)
    assert os.getpgid(pid) == pid != os.getpgid(0)
    controller.kill(rec_id)
