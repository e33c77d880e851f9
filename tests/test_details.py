"""The details' words agree with the state they describe."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fakes import NOW, mixed_rows

from proclab.core.exits import traceback_words
from proclab.core.model import ProcState
from proclab.tui.screens.details import describe, output_heading

pytestmark = pytest.mark.once  # words from made-up rows: no child process


def _facts(row) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return dict(describe(row, (), NOW))


def test_a_stopped_child_has_not_ended_and_is_not_running():
    stopped = next(r for r in mixed_rows() if r.state is ProcState.STOPPED)
    ended = _facts(stopped)["Ended"]
    assert ended == "not yet: stopped (paused by SIGSTOP): p resumes it"
    running = next(r for r in mixed_rows() if r.state is ProcState.RUNNING)
    assert _facts(running)["Ended"] == "not yet: still running"


def test_an_ended_child_shows_no_last_tick_and_no_unknown_core():
    """A short failed child's figures come from its exit record, which knows no core; the
    details said 'last tick 14% on core None'."""
    failed = next(r for r in mixed_rows() if r.state is ProcState.FAILED)
    failed = replace(failed, sample=replace(failed.sample, core=None, cpu_percent=14.0))
    cpu = _facts(failed)["CPU"]
    assert "None" not in cpu and "last tick" not in cpu and cpu.startswith("user ")
    live = next(r for r in mixed_rows() if r.state is ProcState.RUNNING)
    live = replace(live, sample=replace(live.sample, core=None))
    assert _facts(live)["CPU"].endswith("last tick 100%")  # core unknown: not printed


def test_a_live_child_that_printed_a_traceback_has_not_ended():
    running = next(r for r in mixed_rows() if r.state is ProcState.RUNNING)
    row = replace(running, error="ValueError: caught and printed")
    assert _facts(row)["Ended"] == (
        "not yet: still running; it printed a traceback (ValueError: caught and printed)"
    )


def test_a_traceback_is_the_reason_only_of_an_exit_code_above_0():
    """A child that printed a traceback it survived (traceback.print_exc()) and exited 0,
    or one a signal ended, was said to have ended with that error."""
    ended = next(r for r in mixed_rows() if r.state is ProcState.FAILED)
    error = "ZeroDivisionError: division by zero"
    printed = ("Traceback (most recent call last):", '  File "t.py", line 1, in f', error)
    ended = replace(ended, traceback=printed)
    survived = replace(ended, state=ProcState.EXITED, exitcode=0, error=error)
    assert _facts(survived)["Ended"] == (
        f"returned normally (exit code 0); its stderr held a traceback, which it survived ({error})"
    )
    killed = replace(ended, state=ProcState.TERMINATED, exitcode=-15, error=error)
    assert "; its stderr held a traceback, which it survived" in _facts(killed)["Ended"]
    failed = replace(ended, exitcode=1, error=error)
    assert _facts(failed)["Ended"] == f"exit code 1: {error}"


def test_a_keyboard_interrupt_is_what_ended_a_child_that_died_of_sigint():
    """Python prints an uncaught KeyboardInterrupt, then dies of SIGINT (exit 130 from a
    shell): a tester's watched program was said to have survived it."""
    ended = next(r for r in mixed_rows() if r.state is ProcState.FAILED)
    printed = ("Traceback (most recent call last):", '  File "k.py", line 3', "KeyboardInterrupt")
    interrupted = replace(
        ended, state=ProcState.KILLED, exitcode=-2, traceback=printed, error="KeyboardInterrupt"
    )
    assert traceback_words(interrupted) == "KeyboardInterrupt"
    assert "survived" not in _facts(interrupted)["Ended"]
    # another exception printed before a SIGINT was survived, as before
    other = replace(interrupted, traceback=(*printed[:2], "ValueError: x"), error="ValueError: x")
    assert "which it survived (ValueError: x)" in traceback_words(other)


def test_proclab_s_own_word_on_a_child_is_not_called_a_traceback_it_survived():
    """The fork-bomb guard's kill read "its stderr held a traceback, which it survived
    (stopped by proclab: ...)" of a child that printed none (a hostile tester's)."""
    ended = next(r for r in mixed_rows() if r.state is ProcState.FAILED)
    note = "stopped by proclab: it started more than 64 processes of its own (a fork bomb?)"
    killed = replace(ended, state=ProcState.KILLED, exitcode=-9, error=note)
    assert _facts(killed)["Ended"] == f"ended by signal SIGKILL: Killed; {note}"
    assert traceback_words(killed) == note
    # a traceback printed before it does not make proclab's word its exception
    printed = ("Traceback (most recent call last):", "ValueError: x")
    assert traceback_words(replace(killed, traceback=printed)) == note
    assert traceback_words(replace(killed, traceback=printed, error="ValueError: x")) == (
        "its stderr held a traceback, which it survived (ValueError: x)"
    )


def test_what_a_child_s_own_children_computed_is_said_beside_its_own_cpu():
    running = next(r for r in mixed_rows() if r.state is ProcState.RUNNING)
    lines = describe(replace(running, sample=replace(running.sample, reaped_cpu=1.5)), (), NOW)
    cpu_at = [label for label, _ in lines].index("CPU")
    assert lines[cpu_at + 2] == ("", "besides, processes it started and reaped used 1.50 s of CPU")
    quiet = describe(replace(running, sample=replace(running.sample, reaped_cpu=0.002)), (), NOW)
    assert not any("reaped" in text for _, text in quiet)


def test_an_ended_child_that_printed_nothing_has_no_output_not_none_yet():
    assert output_heading(ProcState.FAILED, 0) == "No output"
    assert output_heading(ProcState.SLEEPING, 0) == "No output yet"
    assert output_heading(ProcState.EXITED, 1) == "Last 1 line of output"


def test_cpu_read_while_it_ran_is_a_bound_in_the_details_as_in_the_table():
    """A killed forkserver child's CPU was read at its last tick (its fork server reaped
    it first): the table said '≥10.99 s', its details '10.99 s on a CPU', '100%'."""
    from proclab.tui import fmt

    killed = next(r for r in mixed_rows() if r.state is ProcState.RUNNING)
    killed = replace(killed, state=ProcState.KILLED, exitcode=-9, ended_at=NOW)
    assert killed.cpu_at_least and fmt.cpu_time(killed).startswith("≥")
    facts = _facts(killed)
    assert facts["CPU"].startswith("at least user ") and "it used more" in facts["CPU"]
    assert (
        facts["CPU/wall"].startswith("≥")
        and f"{fmt.cpu_time(killed)} on a CPU" in facts["CPU/wall"]
    )


@pytest.mark.parametrize(
    ("exitcode", "state", "said"),
    [
        (-11, ProcState.KILLED, "ended by signal SIGSEGV: Segmentation fault"),
        (-9, ProcState.KILLED, "ended by signal SIGKILL: Killed"),
        (-15, ProcState.TERMINATED, "ended by signal SIGTERM: Terminated"),
    ],
)
def test_a_signal_s_end_says_what_the_signal_means(exitcode, state, said):
    """A child that crashed read 'ended by signal SIGSEGV (killed)', as if someone had
    killed it (a tester's)."""
    ended = next(r for r in mixed_rows() if r.state is ProcState.FAILED)
    ended = replace(ended, state=state, exitcode=exitcode, error=None)
    assert _facts(ended)["Ended"] == said


def test_a_row_whose_end_is_stamped_before_its_start_says_why_not_that_it_never_started():
    """A tester's replay: "started 08:40:52 ended 08:39:12 ran for 0 ms", "CPU/wall not
    started yet" (a wall clock set back while it ran makes a genuine recording so)."""
    ended = next(r for r in mixed_rows() if r.state is ProcState.FAILED)
    assert ended.started_at is not None
    back = replace(ended, ended_at=ended.started_at - 100)
    lines = describe(back, (), NOW)
    times = [text for label, text in lines if "ran for" in text]
    assert times and "the wall clock was set back" in times[0], lines
    assert dict(lines)["CPU/wall"] == "not known: its end is stamped before its start"
