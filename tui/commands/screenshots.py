"""`proclab screenshots`: the README's SVGs, made from a recorded session.

The scene is a real session, recorded once with `--record-scene` (real children, real
figures) into screenshots/scene.jsonl. Regenerating replays it to its last moment with the
clock frozen there, so the same recording always gives the same pictures. The scheduling
screen's run on the kernel is recorded the same way, once, into screenshots/kernel-run.json
(`proclab schedule --real --json`'s output), and shown again from it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from proclab.core.errors import ProclabError
from proclab.core.model import ProcessRow, ProcState
from proclab.core.output import escape_controls
from proclab.tui.commands.options import positive_float

if TYPE_CHECKING:
    from textual.pilot import Pilot
    from textual.screen import Screen

    from proclab.tui.app import ProclabApp

DEFAULT_DIR = Path("screenshots")
SCENE_NAME = "scene.jsonl"
# The recording the README's pictures come from, wherever proclab is run from.
REPO_SCENE = Path(__file__).resolve().parents[2] / DEFAULT_DIR / SCENE_NAME
KERNEL_RUN_NAME = "kernel-run.json"
KERNEL_RUN_PRESET = "priority-preempt"

HELP = "regenerate the README's SVGs from the recorded scene"
DESCRIPTION = (
    "Regenerate every SVG in screenshots/ by replaying a recorded session (frozen clock,"
    " fixed sizes): the same recording always gives the same pictures."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default="screenshots",
        metavar="DIR",
        help="where the SVGs go (default screenshots/)",
    )
    parser.add_argument(
        "--scene",
        default=None,
        metavar="FILE",
        help="the recording to replay (default: the repository's screenshots/scene.jsonl;"
        " with --record-scene, DIR/scene.jsonl)",
    )
    parser.add_argument(
        "--record-scene",
        action="store_true",
        help="first record the scene again, with real children",
    )
    parser.add_argument(
        "--seconds",
        type=positive_float,
        default=8.0,
        metavar="S",
        help="length of a new recording (default 8)",
    )


@dataclass(frozen=True)
class Shot:
    name: str
    size: tuple[int, int]
    keys: tuple[str, ...] = ()
    select: Callable[[ProcessRow], bool] | None = None  # the row the cursor is on
    kernel_run: bool = False  # show the recorded kernel run on the scheduling screen


def _failed(row: ProcessRow) -> bool:
    return row.state is ProcState.FAILED


def _greeter(row: ProcessRow) -> bool:
    return row.name == "process-2"


SHOTS = (
    Shot("main-80x24", (80, 24), select=_greeter),
    Shot("output-80x24", (80, 24), ("2",), select=_greeter),
    Shot("cpu-80x24", (80, 24), ("3",)),
    Shot("server-80x24", (80, 24), ("4",)),
    Shot("main-160x48", (160, 48), select=_greeter),
    Shot("details-160x48", (160, 48), ("i",), select=_failed),
    Shot("spawn-form-160x48", (160, 48), ("n",)),
    Shot("help-160x48", (160, 48), ("question_mark",)),
    Shot("timeline-160x48", (160, 48), ("l",)),
    Shot("timeline-80x24", (80, 24), ("l",)),
    Shot("schedule-160x48", (160, 48), ("g",)),
    Shot("schedule-80x24", (80, 24), ("g",)),
    Shot("schedule-kernel-160x48", (160, 48), ("g",), kernel_run=True),
)


def record_scene(path: Path, seconds: float = 8.0) -> None:
    """Run the lesson's scene for real and record it."""
    from proclab.core.controller import Controller
    from proclab.core.cpus import usable_cpus
    from proclab.core.recording import Recorder
    from proclab.core.server.tcp import ServerConfig
    from proclab.core.spec import build_spec

    tasks = "proclab.core.tasks"
    controller = Controller(sample_interval=1.0, grace=1.0).start()
    recorder = Recorder(path)
    controller.subscribe(recorder)
    try:
        controller.spawn(
            build_spec(
                f"{tasks}:greet",
                kwargs="{'name': 'jerry', 'age': 20, 'gender': 'male', 'seconds': 60}",
                name="process-2",
            )
        )
        controller.spawn(build_spec(f"{tasks}:sleep", "(2,)", method="spawn", name="sleeper"), 3)
        controller.spawn(build_spec(f"{tasks}:spin", "(60,)", method="fork"), 2)
        controller.spawn(build_spec(f"{tasks}:spin", "(60,)", affinity=(usable_cpus()[0],)), 2)
        controller.spawn(build_spec(f"{tasks}:fail", kwargs="{'message': 'boom'}"))
        (ignorer,) = controller.spawn(build_spec(f"{tasks}:ignore_sigterm", "(60,)"))
        (sleeper,) = controller.spawn(build_spec(f"{tasks}:sleep", "(60,)"))
        (ticker,) = controller.spawn(build_spec(f"{tasks}:tick", "(400,)"))
        # The lesson's server, with a client that talks and leaves and one that stays.
        address = controller.server.start(ServerConfig(port=0, method="fork", max_clients=8))
        host, port = address.rsplit(":", 1)
        with socket.create_connection((host, int(port))) as talker:
            for word in (b"hello\n", b"proclab\n"):
                talker.sendall(word)
                talker.recv(100)
        stayer = socket.create_connection((host, int(port)))
        stayer.sendall("héllo, wörld\n".encode())
        stayer.recv(100)
        time.sleep(2.5)
        controller.terminate(sleeper)
        controller.terminate(ignorer, escalate_after=1.0)
        controller.pause(ticker)
        time.sleep(max(0.0, seconds - 2.5))
        stayer.close()
    finally:
        recorder.close()
        controller.close()


def record_kernel_run(path: Path) -> None:
    """Run the priority preset on the kernel for real and keep what was measured."""
    import json

    from proclab.core.controller import Controller
    from proclab.core.scheduling.kernel import plan, to_json
    from proclab.core.scheduling.kernel_run import run
    from proclab.core.scheduling.simulator import PRESETS

    the_plan = plan(list(PRESETS[KERNEL_RUN_PRESET].jobs), "priority")
    with Controller(grace=1.0) as controller:
        result = run(the_plan, controller)
    path.write_text(json.dumps(to_json(result), indent=1) + "\n", encoding="utf-8")


async def _show_kernel_run(screen: Screen, path: Path) -> None:
    import json

    from proclab.core.scheduling.kernel import from_json
    from proclab.tui.screens.schedule import ScheduleScreen

    assert isinstance(screen, ScheduleScreen)
    try:
        result = from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ProclabError(f"no recorded kernel run at {path}: {exc}") from None
    await screen.load_preset(KERNEL_RUN_PRESET)
    screen.show_kernel_result(result)
    screen.refresh_now()
    screen.scroll_to_kernel()


async def _shoot(scene: Path, shot: Shot) -> str:
    from proclab.core.recording import Replay
    from proclab.tui.app import ProclabApp
    from proclab.tui.screens.lab import LabScreen

    replay = Replay.load(scene)
    # The app as it is live: its keys are those a recording does not allow.
    lab = LabScreen(replay, clock=replay.clock, live_keys=True)
    app = ProclabApp(replay, refresh=replay.sample_interval, lab=lab)
    async with app.run_test(size=shot.size) as pilot:
        replay.play_to(replay.end)
        await _settle(pilot, app)
        if shot.select is not None:
            row = next((r for r in replay.rows() if shot.select(r)), None)
            if row is not None:
                app.lab.table.select(row.id)
                await _settle(pilot, app)
        for key in shot.keys:
            await pilot.press(key)
            await _settle(pilot, app)
        if shot.kernel_run:
            await _show_kernel_run(app.screen, scene.with_name(KERNEL_RUN_NAME))
            await _settle(pilot, app)
        steady_cursors(app.screen)
        await pilot.pause()
        return app.export_screenshot(title=f"proclab · {shot.name}")


def steady_cursors(screen: Screen) -> None:
    """A blinking cursor is shown or hidden by a 0.5 s timer, so on a loaded machine a
    picture (or snapshot) depended on when it was taken. A steady cursor is always drawn."""
    from textual.widgets import Input

    for field in screen.query(Input):
        field.cursor_blink = False


async def _settle(pilot: Pilot[int], app: ProclabApp) -> None:
    """Wait until the app has drawn every replayed event (however busy the machine is):
    a fixed pause made pictures depend on the machine's load."""
    deadline = time.monotonic() + 30
    while app.events_pending() and time.monotonic() < deadline:
        await pilot.pause(0.02)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def make_screenshots(out: Path, scene: Path) -> list[Path]:
    # Clock times in the pictures (details) are the recording's, shown in UTC, so the same
    # recording gives the same pictures on every machine.
    os.environ["TZ"] = "UTC"
    time.tzset()
    written = []
    for shot in SHOTS:
        svg = asyncio.run(_shoot(scene, shot))
        path = out / f"{shot.name}.svg"
        path.write_text(svg, encoding="utf-8")
        written.append(path)
    return written


def run(ns: argparse.Namespace) -> int:
    out = Path(ns.out)
    # A scene recorded now goes beside its pictures; otherwise the repository's is replayed.
    scene = (
        Path(ns.scene)
        if ns.scene is not None
        else out / SCENE_NAME
        if ns.record_scene
        else REPO_SCENE
    )
    try:
        # The scene first: a missing one made the whole --out tree before it was said.
        if not ns.record_scene and not os.path.isfile(scene):  # False for a name too long
            print(
                f"proclab screenshots: no scene at {escape_controls(str(scene))}: name one"
                " with --scene FILE, or record one with --record-scene",
                file=sys.stderr,
            )
            return 2
        if os.path.lexists(out) and not os.path.isdir(out):
            print(
                f"proclab screenshots: --out {escape_controls(str(out))} is not a folder",
                file=sys.stderr,
            )
            return 2
        out.mkdir(parents=True, exist_ok=True)
        if ns.record_scene:
            print(f"recording a real session into {scene} ({ns.seconds:g} s)…")
            record_scene(scene, ns.seconds)
            kernel_run = scene.with_name(KERNEL_RUN_NAME)
            print(f"recording a run on the kernel into {kernel_run}…")
            record_kernel_run(kernel_run)
        for path in make_screenshots(out, scene):
            print(f"wrote {path}")
    except ProclabError as exc:
        print(f"proclab screenshots: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder it cannot make, a path too long: a traceback before
        where = escape_controls(str(exc.filename or out))
        print(f"proclab screenshots: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
