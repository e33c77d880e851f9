"""The source face (core/source.py): each source says what it allows, says what it is on
the status line, and refuses what it does not allow with one readable sentence."""

from __future__ import annotations

import asyncio
from dataclasses import astuple

import pytest
from fakes import mixed_rows, system_history
from support import TASKS

from proclab.core.controller import Controller
from proclab.core.errors import ProclabError
from proclab.core.model import Sampled, Spawned
from proclab.core.recording import Replay
from proclab.core.server.tcp import ServerConfig
from proclab.core.source import NotAllowed
from proclab.core.spec import build_spec


def test_the_controller_allows_everything_and_ends_its_children_on_quit() -> None:
    assert all(astuple(Controller.capabilities))


def test_the_controller_describes_what_new_processes_get() -> None:
    controller = Controller(max_procs=7, sample_interval=0.5, default_method="spawn")
    assert controller.describe() == "new: spawn, tick 0.5 s, max 7"
    assert Controller().describe() == "new: forkserver, tick 1 s, max 256"


def recorded() -> Replay:
    t = 1_800_000_000.0
    row = mixed_rows()[0]
    samples = system_history(ticks=3)
    return Replay(
        [(t, Spawned(row))] + [(t + i + 1, Sampled(s, {})) for i, s in enumerate(samples)]
    )


def test_a_replay_allows_nothing_and_ends_nothing_on_quit() -> None:
    assert not any(astuple(Replay.capabilities))


def test_a_replay_refuses_every_command_in_one_sentence() -> None:
    replay = recorded()
    spec = build_spec(f"{TASKS}:sleep", "(1,)")
    commands = {
        "spawn": lambda: replay.spawn(spec),
        "terminate": lambda: replay.terminate(1),
        "kill": lambda: replay.kill(1),
        "pause": lambda: replay.pause(1),
        "resume": lambda: replay.resume(1),
        "rename": lambda: replay.rename(1, "x"),
        "restart": lambda: replay.restart(1),
        "clear_exited": replay.clear_exited,
        "join_async": lambda: asyncio.run(replay.join_async([1])),
        "server.start": lambda: replay.server.start(ServerConfig()),
        "server.stop": lambda: replay.server.stop("bye"),
    }
    for name, command in commands.items():
        with pytest.raises(NotAllowed) as refused:
            command()
        assert isinstance(refused.value, ProclabError), name
        text = str(refused.value)
        assert "recorded session" in text and "\n" not in text, (name, text)


def test_a_replay_describes_where_it_is() -> None:
    replay = recorded()
    replay.play_to(replay.start + 1.5)
    assert replay.describe().startswith("at 1.5 s of 3.0 s · recorded ")
    replay.state_label = "paused"
    assert replay.describe().startswith("paused · at 1.5 s of 3.0 s")
    assert replay.interval == 1.0
