"""A file target is imported by its child: its top-level code runs there. A file that starts
a process at its top level (no `if __name__ == '__main__':` guard) fails in words that name
the line and the guard, in the row, the details and `proclab run`'s summary, instead of
"exited 0" with an empty "RuntimeError: " from a grandchild."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pty_session import PROCLAB

from proclab.core.model import ProcState
from proclab.core.spec import build_spec
from proclab.tui.screens.details import describe

NO_GUARD = (
    "from multiprocessing import Process\n"
    "print('top level of noguard')\n"
    "def task(n=1):\n"
    "    print('task', n)\n"
    "p = Process(target=task, args=(2,))\n"
    "p.start()\n"
    "p.join()\n"
)
GUARDED = NO_GUARD.replace("p = Process", "if __name__ == '__main__':\n    p = Process").replace(
    "p.start()\np.join()", "    p.start()\n    p.join()"
)
WORDS = "noguard.py line 6 starts a process while the file is imported"


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_file_that_starts_a_process_at_its_top_level_fails_in_words(controller, tmp_path, method):
    (tmp_path / "noguard.py").write_text(NO_GUARD)
    spec = build_spec("noguard.py:task", cwd=str(tmp_path), method=method)
    (rec_id,) = controller.spawn(spec)
    assert controller.join([rec_id], timeout=30)
    row = controller.row(rec_id)
    assert row.state is ProcState.FAILED and row.exitcode == 1, row
    assert row.error is not None and WORDS in row.error, row.error
    assert "if __name__ == '__main__':" in row.error
    printed = [o.text for o in controller.output(rec_id) if o.stream == "stdout"]
    assert printed == ["top level of noguard"], "the top level ran more than once, or the task ran"
    ended = dict(describe(row, controller.output(rec_id), row.ended_at or 0.0))["Ended"]
    assert ended == f"exit code 1: {row.error}"


def test_a_guarded_file_runs_its_task_and_not_its_main_block(controller, tmp_path):
    (tmp_path / "noguard.py").write_text(GUARDED)
    (rec_id,) = controller.spawn(build_spec("noguard.py:task", "(7,)", cwd=str(tmp_path)))
    assert controller.join([rec_id], timeout=30)
    assert controller.row(rec_id).state is ProcState.EXITED
    printed = [o.text for o in controller.output(rec_id) if o.stream == "stdout"]
    assert printed == ["top level of noguard", "task 7"]


def test_proclab_run_says_what_happened_and_exits_1(tmp_path: Path):
    (tmp_path / "noguard.py").write_text(NO_GUARD)
    out = subprocess.run(
        [PROCLAB, "run", "noguard.py:task"], cwd=tmp_path, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 1, out
    assert out.stdout.count("top level of noguard") == 1
    assert WORDS in out.stdout and "if __name__ == '__main__':" in out.stdout, out.stdout
    assert "exited" not in out.stdout.split("NAME")[1]
