"""`proclab watch --record FILE` and `proclab attach --record FILE`, then `proclab replay
FILE`: a watched program's session recorded (its rows with their tree parents, commands,
multiprocessing facts and exit notes; the calls between its processes) and shown again as
the live app showed it: the tree, the names, the details' calls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pty_session import PROCLAB, quit_once
from test_replay import settle
from test_tree_view import names, subtitle

from proclab.core.model import Exited, OutputLine, ProcessCall, ProcState
from proclab.core.recording import Replay, encode
from proclab.tui.commands.replay import replay_app
from proclab.tui.screens.details import describe

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPT = [sys.executable, str(EXAMPLES / "named_process.py")]


class Watched:
    """One `proclab watch --headless --json --record` run of examples/named_process.py:
    what it printed (rows of its summary, its calls) and its recording."""

    def __init__(self, path: Path) -> None:
        done = subprocess.run(
            [PROCLAB, "watch", "--headless", "--json", "--record", str(path), "--", *SCRIPT],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        printed = [json.loads(line) for line in done.stdout.splitlines()]
        self.summary: dict[str, Any] = next(p for p in printed if p["type"] == "summary")
        self.calls = [
            {k: v for k, v in p.items() if k != "type"} for p in printed if p["type"] == "call"
        ]
        self.path = path


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Watched:
    return Watched(tmp_path_factory.mktemp("watch") / "watched.jsonl")


FACTS = ("id", "name", "pid", "parent", "command", "exitcode", "state", "mp", "exit_note")


def test_watch_headless_records_what_its_summary_printed(watched: Watched) -> None:
    replay = Replay.load(watched.path)
    replay.play_to(replay.end)
    recorded = sorted((encode(r) for r in replay.rows()), key=lambda r: r["id"])
    printed = watched.summary["rows"]
    assert [{k: r[k] for k in FACTS} for r in recorded] == [
        {k: r[k] for k in FACTS} for r in printed
    ]
    by_name = {r.mp.name if r.mp else r.name: r for r in replay.rows()}
    assert {"greeter", "slowpoke", "stuck"} <= by_name.keys()
    root = next(r for r in replay.rows() if r.parent is None)
    assert all(by_name[n].parent == root.id for n in ("greeter", "slowpoke", "stuck"))
    assert [by_name[n].exitcode for n in ("greeter", "slowpoke", "stuck")] == [0, -15, -9]
    greeter = by_name["greeter"].mp
    assert greeter is not None and greeter.target is not None and greeter.target.endswith("greet")
    assert greeter.kwargs == "{'who': 'world', 'times': 3}"
    calls = [encode(e) for _, e in replay.events if isinstance(e, ProcessCall)]
    assert calls == watched.calls
    kinds = [(c["call"], c["child_name"]) for c in calls]
    for call in [("join", "slowpoke"), ("terminate", "slowpoke"), ("kill", "stuck")]:
        assert call in kinds, kinds


async def test_the_replay_of_a_watched_session_shows_its_tree_names_and_calls(
    watched: Watched,
) -> None:
    replay = Replay.load(watched.path)
    app = replay_app(replay)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        await pilot.press("greater_than_sign")  # to the end
        await settle(pilot, app)
        drawn = names(app.lab.table)
        assert drawn[0].startswith("python") and "named_process.py" in drawn[0], drawn
        assert set(drawn[1:]) == {"├─ greeter", "├─ slowpoke", "└─ stuck"}, drawn
        assert "tree, sorted among siblings (F5: flat)" in subtitle(app)
        await pilot.press("f5")
        await pilot.pause()
        assert "flat (F5: tree)" in subtitle(app)

        def slowpoke_details() -> tuple[dict[str, str], list[str]]:
            row = next(r for r in replay.rows() if r.mp is not None and r.mp.name == "slowpoke")
            lines = describe(
                row, replay.output(row.id), replay.now, None, app.lab.calls, app.lab._row_or_none
            )
            return {label: value for label, value in lines if label}, [v for _, v in lines]

        labels, values = slowpoke_details()
        assert labels["Name"] == "slowpoke (its Process.name)"
        assert "terminated" in labels["Process"]
        text = "\n".join(values)
        assert "join(timeout=0.5)" in text and "terminate()" in text, text
        # Back to the start and to the end again: each call once, as recorded.
        await pilot.press("less_than_sign")
        await settle(pilot, app)
        await pilot.press("greater_than_sign")
        await settle(pilot, app)
        assert "\n".join(slowpoke_details()[1]) == text
        assert any("terminate()" in line for line in app.lab.output_log.lines_shown())


def test_the_watch_app_records_its_session(tmp_path: Path) -> None:
    """The app (not --headless) records the same: quit once the program has ended, and the
    recording holds every process with its name, parent and exit, and the calls."""
    path = tmp_path / "app.jsonl"
    args = ["watch", "--record", str(path), "--", *SCRIPT]
    assert quit_once(args, b"The program ended", size=(160, 48))[0] == 0
    replay = Replay.load(path)
    replay.play_to(replay.end)
    rows = {r.mp.name if r.mp else r.name: r for r in replay.rows()}
    root = next(r for r in replay.rows() if r.parent is None)
    assert root.exitcode == 0 and "named_process.py" in root.command
    ends = {n: (rows[n].parent, rows[n].exitcode) for n in ("greeter", "slowpoke", "stuck")}
    assert ends == {"greeter": (root.id, 0), "slowpoke": (root.id, -15), "stuck": (root.id, -9)}
    calls = [(e.call, e.child_name) for _, e in replay.events if isinstance(e, ProcessCall)]
    assert ("join", "slowpoke") in calls and ("kill", "stuck") in calls, calls


def test_the_watch_app_exits_with_the_program_s_status(tmp_path: Path) -> None:
    """A tester's: q in the app once the program had exited 3 gave proclab's status 0, where
    --headless gives 3."""
    script = tmp_path / "three.py"
    script.write_text("print('bye', flush=True)\nraise SystemExit(3)\n")
    args = ["watch", "--", sys.executable, str(script)]
    assert quit_once(args, b"1 ended", size=(120, 32))[0] == 3


def test_attach_records_a_tree_it_did_not_start(tmp_path: Path) -> None:
    """attach reads no exit status (proclab is not the parent): the recording keeps the
    ended row and its note saying so."""
    path = tmp_path / "attached.jsonl"
    program = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        attach = subprocess.Popen(
            [PROCLAB, "attach", "--headless", "--record", str(path), str(program.pid)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = attach.stdout.readline()  # type: ignore[union-attr]
        assert first.startswith(f"+ python {program.pid}"), first
    finally:
        program.stdin.close()  # type: ignore[union-attr]  # it ends now
        program.wait(timeout=30)  # reaped here, by its parent: then attach sees it end
    _, err = attach.communicate(timeout=60)
    assert attach.returncode == 0, err
    replay = Replay.load(path)
    replay.play_to(replay.end)
    (row,) = replay.rows()
    assert row.pid == program.pid and row.spec is None and "sys.stdin.read()" in row.command
    assert row.state is ProcState.ENDED and row.exitcode is None and row.exit_note


JOINS_TALKERS = """
import multiprocessing as mp, sys

def talk(n):
    for i in range(3):
        print(f"talker {n} line {i}")

if __name__ == "__main__":
    mp.set_start_method(sys.argv[1])
    for n in range(3):
        p = mp.Process(target=talk, args=(n,))
        p.start()
        p.join()
        print(f"parent after join {n}", flush=True)
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_recording_tells_each_child_s_lines_before_its_end_and_the_parent_s_after(
    tmp_path: Path, method: str
) -> None:
    """The recording (and so a replay, and the live app, which hear the same events) had
    each child's end, and its parent's line printed after join(), before the child's own
    lines (5 of 5 under fork): a child's lines are read from its pipes, its end comes
    from its parent's word. (What a parent says through the hook and what it prints come
    by two ways: its line printed between two children can be told after the second's
    start, which is not promised here.)"""
    script = tmp_path / "talkers.py"
    script.write_text(JOINS_TALKERS)
    path = tmp_path / "talkers.jsonl"
    done = subprocess.run(
        [PROCLAB, "watch", "--headless", "--record", str(path), str(script), method],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    told: list[str] = []
    for _, event in Replay.load(path).events:
        if isinstance(event, OutputLine):
            told.append(event.text)
        elif isinstance(event, Exited) and event.row.name.startswith("Process-"):
            told.append(f"end {event.row.name}")
    for n in range(3):
        lines = [told.index(f"talker {n} line {i}") for i in range(3)]
        end = told.index(f"end Process-{n + 1}")
        assert lines == sorted(lines) and lines[-1] < end < told.index(f"parent after join {n}"), (
            told
        )


@pytest.mark.parametrize("command", ["watch", "attach"])
def test_a_recording_that_cannot_be_opened_is_one_line_and_starts_nothing(
    tmp_path: Path, command: str
) -> None:
    marker = tmp_path / "ran"
    program = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        what = (
            ["--", sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
            if command == "watch"
            else [str(program.pid)]
        )
        done = subprocess.run(
            [PROCLAB, command, "--headless", "--record", str(tmp_path / "no" / "f.jsonl"), *what],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        program.kill()
        program.wait(timeout=30)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "cannot record" in done.stderr, done.stderr
    assert not marker.exists()


def test_a_format_2_row_without_the_watched_fields_still_replays(tmp_path: Path) -> None:
    """Format 2 rows had no parent, command, mp or exit_note: they read as proclab's own
    children (no tree parent, nothing said)."""
    row = {
        "id": 1,
        "name": "worker",
        "spec": {"target": {"kind": "module", "location": "m", "function": "f"}},
        "state": "exited",
    }
    row |= {"pid": 42, "exitcode": 0}
    path = tmp_path / "old.jsonl"
    header = {"format": 2, "recorded": "2026-11-27 20:16:05"}
    path.write_text(
        "\n".join(
            json.dumps(r)
            for r in (
                header,
                {"t": 1e9, "type": "Spawned", "event": {"row": row | {"state": "running"}}},
                {"t": 1e9, "type": "Exited", "event": {"row": row}},
            )
        )
        + "\n"
    )
    replay = Replay.load(path)
    replay.play_to(replay.end)
    (read,) = replay.rows()
    assert (read.parent, read.command, read.mp, read.exit_note) == (None, "", None, "")
    assert read.spec is not None and read.spec.target.function == "f"


def test_the_app_without_a_terminal_is_refused_before_its_recording_is_made(
    tmp_path: Path,
) -> None:
    marker, recording = tmp_path / "ran", tmp_path / "session.jsonl"
    program = [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    done = subprocess.run(
        [PROCLAB, "watch", "--record", str(recording), "--", *program],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "proclab watch: the app needs a terminal, and stdin is not one"
        " (over ssh: ssh -t); --headless needs none"
    ]
    assert not recording.exists() and not marker.exists()  # no header-only file, no program
