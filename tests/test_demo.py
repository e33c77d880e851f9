"""`proclab demo`: the built-in scenario plays to its end in the real app with real
children and a real server; keys pause it and q ends it; broken scenarios name the line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pty_session import PROCLAB
from support import wait_for
from textual import events

from proclab.core.model import Event, Exited
from proclab.core.scenario import BUILTIN, ScenarioError, load_scenario, parse_scenario
from proclab.tui import fmt
from proclab.tui.screens.demo import DemoApp

SIZE = (120, 36)


def test_the_builtin_scenario_is_a_readable_file_of_about_a_minute():
    scenario = load_scenario()
    assert scenario.path == BUILTIN and BUILTIN.read_text().startswith("# proclab's built-in demo")
    # the waits alone; joins add the children's own run time
    assert 55 <= scenario.length_s <= 90
    actions = {step.action for step in scenario.steps}
    assert {"spawn", "join", "server", "clients", "schedule", "show"} <= actions
    assert any(step.spec and step.spec.affinity == (0,) for step in scenario.steps)


# The whole lesson at 40x: about 15 s alone; a loaded machine has taken over 60 s.
@pytest.mark.timeout(330)
async def test_the_builtin_scenario_plays_to_the_end(controller):
    exits: list[Exited] = []

    def keep(event: Event) -> None:
        if isinstance(event, Exited):
            exits.append(event)

    controller.subscribe(keep)
    app = DemoApp(controller, load_scenario(), speed=40, refresh=0.2)
    pushed: list[str] = []
    push_screen = app.push_screen

    def spy(screen, *args, **kwargs):  # type: ignore[no-untyped-def]
        pushed.append(type(screen).__name__)
        return push_screen(screen, *args, **kwargs)

    app.push_screen = spy  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.done, timeout=300)
        caption = str(app.caption.render())
        assert "the end" in caption
        by_name: dict[str, list[int | None]] = {}
        for event in exits:
            # copies of one name are numbered (sleeper-1..sleeper-10): group by the name given
            by_name.setdefault(event.row.name.rsplit("-", 1)[0], []).append(event.row.exitcode)
        assert len(by_name.get("sleeper", [])) == 10
        assert by_name["free"] == [0, 0] and by_name["pinned"] == [0, 0]
        tcp = [e.row for e in exits if e.row.tag and e.row.tag.startswith("tcp")]
        handlers = [row for row in tcp if row.tag != "tcp server"]
        assert len(handlers) == 3 and all(row.exitcode == 0 for row in handlers)
        assert [row.exitcode for row in tcp if row.tag == "tcp server"] == [0]
        assert not controller.server.running
        assert {"TimelineScreen", "ScheduleScreen"} <= set(pushed)
        assert app.screen is app.lab, "the last step shows the main screen"


async def test_a_key_pauses_and_q_ends_leaving_nothing_running(controller):
    text = """
[[step]]
say = "a sleeper"
spawn = "proclab.core.tasks:sleep"
args = "(60,)"
wait = 0.2

[[step]]
say = "second"
wait = 30
"""
    app = DemoApp(controller, parse_scenario(text, Path("t.toml")), refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: controller.live_count() == 1)
        await pilot.press("x")
        assert "paused" in str(app.caption.render())
        step = app.step_index
        await pilot.pause(1.0)
        assert app.step_index == step and not app.done, "the demo went on while paused"
        await pilot.press("space")
        await wait_for(pilot, lambda: app.step_index == 1)
        await pilot.press("q")
        await wait_for(pilot, lambda: app.return_code is not None, timeout=15)
    assert controller.live_count() == 0


async def test_a_pause_during_a_step_stays_said_when_the_step_ends(controller):
    """A key that pauses while a step is under way (here a join): the step's end redraws
    the caption, which still says the demo is paused, as it is."""
    text = """
[[step]]
say = "a sleeper"
spawn = "proclab.core.tasks:sleep"
args = "(1.5,)"
wait = 0

[[step]]
say = "joining"
join = true
wait = 30
"""
    app = DemoApp(controller, parse_scenario(text, Path("t.toml")), refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.step_index == 1 and controller.live_count() == 1, 30)
        await pilot.press("x")  # during the join
        await wait_for(pilot, lambda: "Joined" in app._said, 30)  # the join's end redrew it
        await pilot.pause(0.2)
        caption = str(app.caption.render())
        assert "Joined" in caption and "paused" in caption, caption
        await pilot.press("q")
        await wait_for(pilot, lambda: app.return_code is not None, timeout=15)
    assert controller.live_count() == 0


async def test_a_pause_stops_the_clock_of_a_wait(controller):
    text = """
[[step]]
say = "first"
wait = 0.1

[[step]]
say = "waits four seconds of unpaused time"
wait = 4
"""
    app = DemoApp(controller, parse_scenario(text, Path("t.toml")), refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.step_index == 1)
        # the key lands well inside the wait, even when a loaded machine delays it seconds
        await pilot.press("x")
        await pilot.pause(4.5)  # longer than the whole wait
        await pilot.press("space")
        await pilot.pause(0.5)
        assert app.step_index == 1 and not app.done, "the paused time counted as waiting"
        await wait_for(pilot, lambda: app.done, timeout=10)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("[[step]]\nsay = 'x'\nwiat = 3\n", 3, "wiat: unknown key"),
        ("[[step]]\nsay = 'x'\n[[step]]\nspawn = 'nope:f'\n", 4, "no module named 'nope'"),
        ("[[step]]\nspawn = 'proclab.core.tasks:sleep'\n\nargs = '(1, 2)'\n", 4, "too many"),
        ("[[step]]\nsay = 'x'\nwait = -1\n", 3, "must be 0 to 3,600 seconds, got -1"),
        ("[[step]]\nsay = 'x'\nwait = nan\n", 3, "must be 0 to 3,600 seconds, got nan"),
        # "must be 0 or more seconds, got inf", and 1e308 was taken (a tester's)
        ("[[step]]\nsay = 'x'\nwait = inf\n", 3, "must be 0 to 3,600 seconds, got inf"),
        ("[[step]]\nsay = 'x'\nwait = 1e308\n", 3, "must be 0 to 3,600 seconds"),
        ("[[ step ]]  # first\nsay = 'x'\n[[step]]\nshow = 'x'\n", 4, "must be one of"),
        ("[[step]]\njoin = true\nclear = true\n", 1, "one action per step"),
        ("[[step]]\nshow = 'nowhere'\n", 2, "must be one of procs"),
        ("[[step]]\nsay = 'x'\ncount = 3\n", 3, "belongs to a spawn step"),
        ("[[step]\n", 1, "not valid TOML"),
        ("title = 'nothing'\n", None, "no [[step]]"),
    ],
)
def test_a_broken_scenario_names_its_line(text: str, line: int | None, words: str):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, Path("broken.toml"))
    message = str(caught.value)
    assert words in message and "\n" not in message
    if line is not None:
        assert message.startswith(f"broken.toml line {line}: "), message


def test_the_cli_refuses_a_broken_scenario_and_starts_nothing(tmp_path: Path):
    (tmp_path / "s.toml").write_text(
        "[[step]]\nsay = 'x'\nspawn = 'proclab.core.tasks:sleep'\nargs = '(1, 2, 3)'\n"
    )
    done = subprocess.run(
        [PROCLAB, "demo", "s.toml"], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "proclab demo: s.toml line 4: args: sleep(seconds=...): too many positional arguments"
    ]


def test_a_scenario_that_never_ends_is_refused_in_a_line():
    """`proclab demo /dev/zero` read until memory ran out, then printed a MemoryError
    traceback."""
    done = subprocess.run(
        [PROCLAB, "demo", "/dev/zero"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "proclab demo: /dev/zero is longer than 1,000,000 characters: a scenario is a few thousand"
    ]


async def test_a_joins_caption_times_the_children_it_describes(controller):
    """A greet still running from an earlier step is not one of them, and their time runs
    from the first one's start to the last one's end, not from when the join began (the
    caption said 'Joined 11 children: 1.9 s' for ten sleepers that took 2.07 s)."""
    text = """
[[step]]
spawn = "proclab.core.tasks:sleep"
args = "(30,)"
name = "earlier"

[[step]]
say = "three sleepers"
spawn = "proclab.core.tasks:sleep"
args = "(0.6,)"
count = 3
name = "sleeper"
wait = 0.4

[[step]]
join = true
wait = 30
"""
    app = DemoApp(controller, parse_scenario(text, Path("t.toml")), refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.step_index == 2 and "Joined" in app._said, 30)
        caption = str(app.caption.render())
        sleepers = [r for r in controller.rows() if r.name.startswith("sleeper")]
        assert len(sleepers) == 3 and all(r.state.is_over for r in sleepers)
        took = max(r.ended_at for r in sleepers) - min(r.started_at for r in sleepers)
        assert f"3 children in {fmt.seconds(took)} of wall time" in caption, caption
        assert "Concurrency, not parallelism" in caption
        assert any(r.name == "earlier" and r.state.is_live for r in controller.rows())
        await pilot.press("q")
        await wait_for(pilot, lambda: app.return_code is not None, timeout=15)


def test_an_empty_scenario_name_is_said_so() -> None:
    """`proclab demo ''` said "cannot read .: Is a directory"."""
    with pytest.raises(ScenarioError, match=r"no scenario named: give a SCENARIO\.toml"):
        load_scenario("")


async def test_a_key_before_the_demo_has_begun_pauses_it_and_q_ends_it(controller):
    """A key pressed as `proclab demo` started ended it in a traceback (its caption looked
    up before it was there), exit 1; a tester's, 4 of 4."""
    text = '[[step]]\nsay = "a sleeper"\nspawn = "proclab.core.tasks:sleep"\nargs = "(60,)"\n'
    app = DemoApp(controller, parse_scenario(text, Path("t.toml")), refresh=0.2)
    app.post_message(events.Key("space", " "))  # queued before the app runs
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "paused" in str(app.caption.render()))
        assert controller.live_count() == 0  # paused before its first step
        await pilot.press("q")
        await wait_for(pilot, lambda: app.return_code is not None, timeout=15)
    assert app.return_code == 0
