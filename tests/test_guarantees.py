"""proclab's promises that are not about one feature: fork bombs are stopped, hostile
input never starts anything, long runs give back what they took."""

from __future__ import annotations

import io
import os
import time
from contextlib import redirect_stderr, redirect_stdout

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import TASKS, start_task

from proclab.core.controller import Controller
from proclab.core.model import Notice, ProcState
from proclab.core.spec import build_spec, check_spec
from proclab.tui import cli


def test_a_fork_bomb_is_stopped(controller):
    notices = []
    controller.subscribe(lambda e: notices.append(e) if isinstance(e, Notice) else None)
    began = time.monotonic()
    (rec_id,) = start_task(controller, "fork_bomb", "(2, 12, 0.01)", method="fork")
    assert controller.join([rec_id], timeout=20), "the fork bomb was not stopped"
    row = controller.row(rec_id)
    assert row.state is ProcState.KILLED
    assert "fork bomb" in row.error and f"more than {controller.max_descendants}" in row.error
    assert any("killed its process group" in n.text for n in notices)
    assert time.monotonic() - began < 10
    # nothing of it survives: the autouse fixture fails the test otherwise


def test_a_modest_family_is_left_alone(controller):
    (rec_id,) = start_task(controller, "with_grandchild", "(2,)")
    assert controller.join([rec_id], timeout=20)
    assert controller.row(rec_id).state is ProcState.EXITED


# Hostile input to the CLI: whatever is typed, one line on stderr and exit status 2, or a
# valid start; never a traceback, never a start from invalid input, never code run.

SIDE_EFFECT = "/tmp/proclab-hostile-cli-ran"
hostile = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            f"__import__('os').system('touch {SIDE_EFFECT}')",
            "(" * 500,
            "[" * 3000,
            "1e999999",
            "9" * 5000,
            "{'a': open}",
            "\x00",
            "lambda: 0",
            "os:system",
            "../../etc/passwd:x",
            "/dev/null:x",
            ".py:x",
            "proclab.core.tasks:__doc__",
            "proclab.core.tasks:sleep",
        ]
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(target=hostile, args=hostile, kwargs=hostile)
def test_hostile_cli_input_never_escapes(monkeypatch, target, args, kwargs):
    started = []
    monkeypatch.setattr(
        Controller, "spawn", lambda self, spec, count=1, **kw: started.append(spec) or ()
    )
    monkeypatch.setattr(Controller, "start", lambda self: self)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            status = cli.main(["run", target, "--args", args, "--kwargs", kwargs])
        except SystemExit as exc:  # argparse's own errors (an option-looking value)
            status = exc.code
    valid = check_spec(target, args, kwargs)[0] is not None
    if valid:
        assert started and status in (0, 1)
    else:
        assert status == 2 and not started
        assert "Traceback" not in err.getvalue()
        # One line says what is wrong; argparse's own errors put the usage above it.
        lines = err.getvalue().strip().splitlines()
        assert lines and lines[-1].startswith("proclab"), lines
        assert all(line.startswith(("usage:", " ")) for line in lines[:-1]), lines
    assert not os.path.exists(SIDE_EFFECT)


def test_hostile_form_input_never_escapes():
    """The spawn form's gate (check_spec) answers every field with a value or errors."""
    cases = [
        ("(" * 1000, "", ""),
        ("os:system", "('touch /tmp/x',)", "{1: 2}"),
        ("\x00:\x00", "\x00", "\x00"),
    ]
    for target, args, kwargs in cases:
        spec, errors = check_spec(target, args, kwargs)
        assert (spec is None) == bool(errors)
        assert all("\n" not in str(e) for e in errors)


@pytest.mark.parametrize("count", [0, -1])
def test_silly_counts_are_refused(controller, count):
    from proclab.core.errors import SpawnRefused

    with pytest.raises(SpawnRefused):
        controller.spawn(build_spec(f"{TASKS}:sleep"), count)
