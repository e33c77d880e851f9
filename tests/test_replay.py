"""`--record FILE.jsonl` and `proclab replay FILE.jsonl`: a real session recorded, then
shown again in the app with the same table at its end and at a moment in between; pause,
step and seek keys; read-only; a broken file names its line; a file cut off mid-line (a
killed proclab) still replays; seeking back rebuilds the timeline."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from fakes import NOW, _sample, mixed_rows, system_history
from pty_session import PROCLAB, PtySession, quit_once
from support import TASKS, as_unprivileged_user, wait_for, wait_until

from proclab.core.controller import Controller
from proclab.core.errors import ProclabError
from proclab.core.exits import describe_exit
from proclab.core.model import (
    SERVER_TAG,
    Cleared,
    ClientAccepted,
    ClientClosed,
    ClientData,
    ClientTurnedAway,
    Event,
    Exited,
    OutputLine,
    ProcessRow,
    ProcState,
    Sampled,
    ServerEvent,
    ServerListening,
    ServerNote,
    Spawned,
    StateChanged,
)
from proclab.core.recording import (
    Recorder,
    Replay,
    decode_event,
    event_line,
    read_events,
    read_recording,
    record_into,
)
from proclab.core.server.tcp import describe_event
from proclab.core.spec import build_spec
from proclab.tui.app import ProclabApp
from proclab.tui.cli import main
from proclab.tui.commands.replay import replay_app


def states(rows: tuple[ProcessRow, ...]) -> dict[str, tuple[str, str]]:
    return {r.name: (str(r.state), describe_exit(r.exitcode)) for r in rows}


def table_states(app: ProclabApp) -> dict[str, tuple[str, str]]:
    table = app.lab.table
    return {
        table.cell_text(i, "name"): (table.cell_text(i, "state"), table.cell_text(i, "exit"))
        for i in table.order
    }


def record_session(
    path: Path,
) -> tuple[dict[str, tuple[str, str]], float, dict[str, tuple[str, str]]]:
    """A real session: children that exit 0, 3, fail, one terminated, one paused then
    terminated, one that prints. Returns the table in a quiet moment in the middle (and
    when that was), and at the end."""
    controller = Controller(sample_interval=0.2, grace=1.0)
    stop_recording = record_into(controller, path)
    try:
        controller.start()
        quick = [
            *controller.spawn(build_spec(f"{TASKS}:sleep", "(0.2,)", name="quick")),
            *controller.spawn(build_spec(f"{TASKS}:exit_with", "(3,)", name="three")),
            *controller.spawn(build_spec(f"{TASKS}:fail", name="failing", method="fork")),
        ]
        (long,) = controller.spawn(build_spec(f"{TASKS}:sleep", "(60,)", name="long"))
        (ticker,) = controller.spawn(build_spec(f"{TASKS}:tick", "(100,)", name="ticker"))
        assert controller.join(quick, timeout=30)
        assert controller.wait_started([long, ticker])
        controller.pause(ticker)
        assert wait_until(lambda: controller.row(ticker).state.value == "stopped", 10)
        time.sleep(0.5)  # quiet: only samples
        middle, middle_at = states(controller.rows()), time.time()
        time.sleep(0.5)
        controller.terminate(long)
        controller.terminate(ticker)
        assert controller.join([long, ticker], timeout=30)
        time.sleep(0.5)  # a last sample of the ended children
        end = states(controller.rows())
    finally:
        controller.close()
        stop_recording()
    return middle, middle_at, end


async def settle(pilot: object, app: ProclabApp) -> None:
    deadline = time.monotonic() + 30
    # What was queued is drawn (not waiting for the wake-up of events still arriving: a
    # playing replay hands some out every tick, and the test acts on it while it plays).
    while app.events_pending() and time.monotonic() < deadline:
        await pilot.pause(0.02)  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


TICKS = 20
SAMPLE_S = 0.2


def made_up_session() -> list[tuple[float, Event]]:
    """A spinning child sampled TICKS times, SAMPLE_S apart (no real process: quick)."""
    row = next(r for r in mixed_rows() if r.name == "ForkProcess-3")  # running
    events: list[tuple[float, Event]] = [(NOW, Spawned(row))]
    for k, system in enumerate(system_history(ticks=TICKS)):
        at, clock = NOW + k * SAMPLE_S, 1000.0 + k * SAMPLE_S
        sample = dataclasses.replace(_sample(99.0, k * SAMPLE_S, 1 << 20, 0, "running"), time=clock)
        system = dataclasses.replace(system, time=clock, wall=at)
        events.append((at, Sampled(system, {row.id: sample})))
    return events


def write_recording(path: Path, events: list[tuple[float, Event]], tail: bytes = b"") -> None:
    header = json.dumps({"format": 1, "recorded": "2027-01-15 08:00:00"})
    lines = [header, *(event_line(event, at) for at, event in events)]
    path.write_bytes("".join(line + "\n" for line in lines).encode() + tail)


async def test_seeking_back_rebuilds_the_timeline() -> None:
    """Seeking back hands out every event again from the first: the timeline starts again
    empty rather than getting the early ticks a second time, after the late ones."""
    replay = Replay(made_up_session())
    samples = [(at, e.system.time) for at, e in replay.events if isinstance(e, Sampled)]
    recorded = [tick for _, tick in samples]
    app = replay_app(replay)

    def ticks() -> list[float]:
        return [tick.time for tick in app.lab.timeline.snapshot().ticks]

    def assert_ticks_up_to_now() -> None:
        """Every tick recorded so far, once each, in order."""
        assert ticks() == [tick for at, tick in samples if at <= replay.now]

    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        await wait_for(pilot, lambda: app.lab.playing)  # it plays from the start (once drawn)
        await pilot.press("space")  # pause it
        if app.lab.playing:  # it had reached its end meanwhile (a loaded machine): space replayed
            await pilot.press("space")
        for key in ("greater_than_sign", "less_than_sign", "greater_than_sign"):  # end, start, end
            await pilot.press(key)
            await settle(pilot, app)
            assert_ticks_up_to_now()
        assert ticks() == recorded
        await pilot.press("left_square_bracket")  # -10 s from the end: the start
        await settle(pilot, app)
        assert replay.now == replay.start and ticks() == recorded[:1]
        app.lab.seek_to(NOW + 1.0)  # forward, then back from the middle
        app.lab.seek_to(NOW + 0.5)
        await settle(pilot, app)
        assert_ticks_up_to_now()
        assert len(ticks()) == 3
        await pilot.press("greater_than_sign")
        await settle(pilot, app)
        await pilot.press("space")  # at the end: plays again from the start
        await settle(pilot, app)
        assert app.lab.playing
        assert_ticks_up_to_now()


@pytest.mark.parametrize("at", [1.0, 1e6], ids=["middle", "past-the-end"])
async def test_at_opens_the_replay_that_far_in(at: float) -> None:
    replay = Replay(made_up_session())
    samples = [(when, e.system.time) for when, e in replay.events if isinstance(e, Sampled)]
    app = replay_app(replay, at=at)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        assert replay.now >= min(replay.start + at, replay.end)
        shown = [tick.time for tick in app.lab.timeline.snapshot().ticks]
        assert shown == [tick for when, tick in samples if when <= replay.now]
        assert len(shown) >= 1 + int(min(at, replay.end - replay.start) / SAMPLE_S)
        if at > replay.end - replay.start:
            assert replay.now == replay.end and not app.lab.playing


async def test_record_then_replay_reproduces_the_table(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    middle, middle_at, end = record_session(path)
    assert end["three"] == ("failed", "3") and end["quick"] == ("exited", "0")
    assert end["failing"][0] == "failed"
    assert end["long"][1] == "-15 SIGTERM"
    assert middle["ticker"][0] == "stopped" and middle["long"][0] == "sleeping"

    replay = Replay.load(path)
    kinds = {type(e).__name__ for _, e in replay.events}
    assert {"Spawned", "StateChanged", "Exited", "OutputLine", "Sampled"} <= kinds
    app = replay_app(replay)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        await wait_for(pilot, lambda: app.lab.playing)  # it plays from the start (once drawn)
        await pilot.press("space")  # pause it
        if app.lab.playing:  # it had reached its end meanwhile (a loaded machine): space replayed
            await pilot.press("space")
        assert not app.lab.playing
        assert "paused" in replay.status_text()

        await pilot.press("greater_than_sign")  # to the end
        await settle(pilot, app)
        assert replay.now == replay.end
        assert table_states(app) == end
        assert any("tick" in line for line in app.lab.output_log.lines_shown())

        await pilot.press("less_than_sign")  # back to the start: nothing yet
        await settle(pilot, app)
        assert replay.now == replay.start
        assert app.lab.output_log.lines_shown() == [] or all(
            "tick" not in line for line in app.lab.output_log.lines_shown()
        )

        before = replay.position
        await pilot.press("full_stop")  # one step: the next recorded moment
        await settle(pilot, app)
        assert replay.position > before and not app.lab.playing

        app.lab.seek_to(middle_at)  # the quiet moment in the middle
        await settle(pilot, app)
        assert table_states(app) == middle
        assert f"at {middle_at - replay.start:.1f} s of" in replay.status_text()

        await pilot.press("right_square_bracket")  # +10 s: past the end, so the end
        await settle(pilot, app)
        assert table_states(app) == end
        await pilot.press("left_square_bracket")  # -10 s: before the start, so the start
        await settle(pilot, app)
        assert replay.now == replay.start

        await pilot.press("space")  # play: the clock moves
        await pilot.pause(0.5)
        # the clock moved; on a loaded machine the pause may outlast the recording, which
        # then stops at its end
        assert replay.now > replay.start and (app.lab.playing or replay.now == replay.end)


async def test_a_replay_is_read_only(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    record_session(path)
    replay = Replay.load(path)
    app = replay_app(replay)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("greater_than_sign")
        await settle(pilot, app)
        rows = replay.rows()
        for key in ("n", "k", "t", "p", "c", "ctrl+t", "a"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is app.lab, f"{key} opened a dialog"
        messages = [n.message for n in app._notifications]
        assert messages and all("read-only" in m for m in messages), messages
        assert replay.rows() == rows


HOSTILE_ADDRESS = "127.0.0.1:8001\x1b]2;PWNED\x07\x1b[2J\x1b[5;5HXX"


async def test_a_recorded_server_s_address_is_shown_escaped(tmp_path: Path) -> None:
    """The server pane wrote a recording's address raw: the terminal took its title from
    the file and cleared its screen."""
    listening = ServerListening(NOW, HOSTILE_ADDRESS, "process", 8, "fork", text="listening")
    events = [*made_up_session(), (NOW + 1, listening)]
    path = tmp_path / "hostile.jsonl"
    write_recording(path, sorted(events, key=lambda e: e[0]))
    replay = Replay.load(path)
    app = replay_app(replay)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("greater_than_sign")
        await settle(pilot, app)
        pane = app.lab.query_one("#server-pane")
        await wait_for(pilot, lambda: app.source.server.running)
        await settle(pilot, app)
        text = str(pane.query_one("#server-status").render())
        assert "\\x1b]2;PWNED\\x07" in text and "\x1b" not in text, text
        assert "\x1b" not in pane.query_one("#server-port").value


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("mode", "bogus", 'event.mode: "bogus" is not one of process, pool, thread, watched'),
        ("method", "threads", 'event.method: "threads" is not one of fork, forkserver, spawn, ""'),
    ],
)
def test_a_server_mode_or_method_no_server_has_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: str, error: str
) -> None:
    """Read as any string, they reached the server pane's choices, which raised
    InvalidSelectValueError: a traceback instead of the replay."""
    listening = ServerListening(NOW, "127.0.0.1:8001", "process", 8, "fork", text="listening")
    path = tmp_path / "bad.jsonl"
    write_recording(path, [(NOW, dataclasses.replace(listening, **{field: value}))])
    assert main(["replay", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "line 2: " + error in line, line


async def test_samples_closer_than_the_shown_precision_still_replay(tmp_path: Path) -> None:
    """`proclab --refresh 0.004 --record F`: the median gap between samples was rounded to
    0, and the CPU pane divided by it (ZeroDivisionError). Samples at one time, or going
    back, are not a tick either."""
    events = made_up_session()
    for step, expected in ((0.004, 0.004), (0.0004, 0.001), (0.0, 1.0), (-0.2, 1.0)):
        fast = [
            (at, dataclasses.replace(e, system=dataclasses.replace(e.system, time=k * step)))
            if isinstance(e, Sampled)
            else (at, e)
            for k, (at, e) in enumerate(events)
        ]
        path = tmp_path / "fast.jsonl"
        write_recording(path, fast)
        replay = Replay.load(path)
        assert replay.sample_interval == expected, step
    app = replay_app(replay)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("greater_than_sign", "3")
        await settle(pilot, app)
        assert replay.now == replay.end


def test_times_going_back_are_refused_past_a_clock_s_small_step(tmp_path: Path) -> None:
    """Lines' times out of order were accepted: every event applied at once, and the status
    line said "at 0.0 s of -8.0 s". A wall clock set back a little while recording is not
    a broken file: such a line is taken at the time of the line before."""
    events = made_up_session()
    path = tmp_path / "back.jsonl"
    small = [*events[:5], (events[4][0] - 0.5, events[5][1]), *events[6:]]
    write_recording(path, small)
    replay = Replay.load(path)
    assert [at for at, _ in replay.events] == sorted(at for at, _ in replay.events)
    write_recording(path, [*events[:5], (events[4][0] - 5.0, events[5][1]), *events[6:]])
    with pytest.raises(ProclabError, match=r"line 7: t: 5.000 s before the line before's"):
        Replay.load(path)


def test_a_recording_an_editor_saved_with_a_byte_order_mark_replays(tmp_path: Path) -> None:
    """It was "not a proclab event (JSONDecodeError: Unexpected UTF-8 BOM)", where schedule
    reads a CSV so saved; and it is still a recording, never recorded over."""
    events = made_up_session()
    path = tmp_path / "saved.jsonl"
    write_recording(path, events)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(Replay.load(path).events) == len(events)
    Recorder(path).close()


def test_a_wall_clock_set_back_while_recording_leaves_a_recording_that_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines were stamped with time.time(): a clock set back 2 s while recording (NTP, by
    hand) made a genuine recording one that replay refused, as going back in time. They
    are stamped from the monotonic clock, after the wall clock's time at the start."""
    events = made_up_session()
    path = tmp_path / "stepped.jsonl"
    recorder = Recorder(path)
    for _at, event in events[:5]:
        recorder(event)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 2.0)  # set back, from now on
    for _at, event in events[5:]:
        recorder(event)
    recorder.close()
    replay = Replay.load(path)
    assert len(replay.events) == len(events)


def test_lines_after_a_suspend_are_stamped_that_much_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stamped from time.monotonic, which stops while the machine is suspended, the lines
    after a suspend of a minute were a minute early (as if the gap had not happened)."""
    events = made_up_session()
    path = tmp_path / "suspended.jsonl"
    recorder = Recorder(path)
    for _at, event in events[:5]:
        recorder(event)
    real_time, real_clock = time.time, time.clock_gettime

    def clock_after_suspend(clock: int) -> float:
        return real_clock(clock) + (60.0 if clock == time.CLOCK_BOOTTIME else 0.0)

    # a minute suspended: the wall clock and the boot clock move on, monotonic does not
    monkeypatch.setattr(time, "time", lambda: real_time() + 60.0)
    monkeypatch.setattr(time, "clock_gettime", clock_after_suspend)
    for _at, event in events[5:]:
        recorder(event)
    recorder.close()
    stamps = [json.loads(line)["t"] for line in path.read_text().splitlines()[1:]]
    assert 60.0 <= stamps[5] - stamps[4] < 70.0, stamps


def test_recording_into_a_fifo_nobody_reads_is_refused_at_once(tmp_path: Path) -> None:
    """The open waited for a reader, where Ctrl+C and SIGTERM could not end proclab
    cleanly (a watched program's hook folder was left in /tmp)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ProclabError, match="a FIFO nobody reads yet"):
        Recorder(fifo)


def test_a_file_it_may_write_and_not_read_is_not_recorded_over() -> None:
    """A tester's: notes in a file of mode 200 (writable, not readable) were taken for an
    empty file (the read failed) and replaced by a recording."""
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:  # one `nobody` may enter
        os.chmod(folder, 0o777)
        _not_recorded_over(Path(folder) / "notes.txt")


def _not_recorded_over(notes: Path) -> None:
    notes.write_text("my notes\n")
    notes.chmod(0o222)

    def record() -> str:
        try:
            Recorder(notes).close()
        except ProclabError as exc:
            return str(exc)
        return "recorded"

    said = as_unprivileged_user(record)
    assert isinstance(said, str) and "cannot be read (Permission denied)" in said, said
    notes.chmod(0o644)
    assert notes.read_text() == "my notes\n"


def test_a_file_that_is_not_a_recording_is_never_recorded_over(tmp_path: Path) -> None:
    """`--record notes.txt` replaced the notes with a recording, and `watch --stdin
    in.csv --record in.csv` the program's own input. An empty file, or a recording, is
    recorded over as before."""
    notes = tmp_path / "notes.txt"
    for text in ("\nmy notes\n", "my notes\n"):
        notes.write_text(text)
        with pytest.raises(ProclabError, match="holds something other than a proclab recording"):
            Recorder(notes)
    assert notes.read_text() == "my notes\n"
    done = subprocess.run(
        [PROCLAB, "run", f"{TASKS}:sleep", "--args", "(0,)", "--record", str(notes)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert notes.read_text() == "my notes\n"
    for earlier in ("", json.dumps({"format": 3, "recorded": "2026-12-05 17:00:00"}) + "\n"):
        path = tmp_path / "again.jsonl"
        path.write_text(earlier)
        Recorder(path).close()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            {"per_core": (-1e15, 1e15)},
            "event.system.per_core[0]: -1000000000000000.0 is not 0-100 %",
        ),
        ({"total": -50.0}, "event.system.total: -50.0 is not 0-100 %"),
        ({"mem_total": 0}, "event.system.mem_used: more than mem_total"),
    ],
)
def test_figures_no_machine_gives_are_refused_by_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, object], error: str
) -> None:
    """Their types were right, and a replay showed them as measured: "cpu0 ...
    -1000000000000000%", "CPU -50%", "mem 4194304.0T of 0B"."""
    events = made_up_session()
    index, (at, sampled) = next((i, e) for i, e in enumerate(events) if isinstance(e[1], Sampled))
    system = dataclasses.replace(sampled.system, **change)  # type: ignore[union-attr]
    events[index] = (at, dataclasses.replace(sampled, system=system))  # type: ignore[type-var]
    path = tmp_path / "bad.jsonl"
    write_recording(path, events)
    assert main(["replay", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"line {index + 2}: {error}" in line, line


def test_a_row_that_ended_before_it_started_lived_no_time() -> None:
    """It showed "ran for -251605868137243 ms" and "CPU/wall -0%". Not refused: a wall
    clock set back while a short child ran makes a genuine recording say so."""
    row = next(r for r in mixed_rows() if r.name == "ForkProcess-3")
    ended = dataclasses.replace(row, started_at=NOW, ended_at=NOW - 5.0)
    line = json.loads(event_line(Exited(ended), NOW))
    decoded = decode_event(line["type"], line["event"])
    assert decoded.row.wall_time(NOW) == 0.0  # type: ignore[attr-defined]
    line["event"]["row"]["exited_at"] = -1e15
    with pytest.raises(ProclabError, match=r"event.row.exited_at: .* is not a time"):
        decode_event(line["type"], line["event"])


def test_a_broken_recording_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.jsonl"
    good = json.dumps({"format": 1, "recorded": "2026-01-01 00:00:00"})
    path.write_text(good + "\n" + '{"t": 1.0, "type": "Spawned", "event": {"row"\n')
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "line 2" in err and str(path) in err, err
    assert main(["replay", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    path.write_text(good + "\n" + '{"t": 1.0, "type": "Teleported", "event": {}}\n')
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "newer" not in err
    # A newer proclab's file: what stops this one is said to be new, not broken.
    newer = json.dumps({"format": 99, "recorded": "2031-01-01 00:00:00"})
    path.write_text(newer + "\n" + '{"t": 1.0, "type": "Teleported", "event": {}}\n')
    assert main(["replay", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "line 2: unknown event type 'Teleported'" in line
    assert line.endswith("(recorded by a newer proclab: format 99; this one reads 1 to 3)")
    # A header with a format that is none: it replayed what followed without a word.
    for written, shown in (("x", '"x"'), (0, "0"), (1.5, "1.5"), (True, "true")):
        header = json.dumps({"format": written, "recorded": "2031-01-01 00:00:00"})
        path.write_text(header + "\n" + '{"t": 1.0, "type": "Teleported", "event": {}}\n')
        assert main(["replay", str(path)]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert f"line 1: format: {shown} is not a format (proclab's are 1 to 3)" in line, line


def test_a_recording_cut_off_mid_line_still_replays(tmp_path: Path) -> None:
    """proclab killed while recording: the file ends inside a line (even inside a UTF-8
    character). That last line is left out; the rest replays."""
    events = made_up_session()
    path = tmp_path / "cut.jsonl"
    line = event_line(OutputLine(2, 41002, "ForkProcess-3", "stdout", "naïve", NOW + 5), NOW + 5)
    # as an earlier proclab wrote it: its lines held UTF-8 (they are ASCII now)
    last = json.dumps(json.loads(line), ensure_ascii=False).encode()
    whole = len(events) + 2  # the header, then the events: the cut line is the next
    for cut in (last[:10], last[: last.index("ï".encode()) + 1]):  # the second in the "ï"
        write_recording(path, events, tail=cut)
        read, cut_line = read_recording(path)
        assert len(read) == len(events) and cut_line == whole
        replay = Replay.load(path)
        assert replay.cut_line == whole and replay.end == events[-1][0]
    write_recording(path, events, tail=last)  # whole, only its newline missing
    assert read_recording(path) == (read_events(path), None) and len(read_events(path)) == whole - 1
    write_recording(path, events)
    assert Replay.load(path).cut_line is None


async def test_the_app_says_a_recording_was_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    write_recording(path, made_up_session(), tail=b'{"t": 1.0, "ty')
    app = replay_app(Replay.load(path))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        messages = [n.message for n in app._notifications]
        assert any("cut off" in m for m in messages), messages


def test_a_file_of_another_kind_is_refused_in_a_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "picture.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff\xfe\x80" * 50)
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"proclab replay: {path} line 1: not UTF-8 text (not a proclab recording)", err
    # A broken line inside the file is no cut-off end: refused, named by its line.
    events = made_up_session()
    write_recording(tmp_path / "inside.jsonl", events, tail=b"\xff\xfe\n" + b"{}")
    assert main(["replay", str(tmp_path / "inside.jsonl")]) == 2
    # named by its line (a tester's: a header, then binary bytes, said no line)
    assert f"line {len(events) + 2}: not UTF-8" in capsys.readouterr().err
    write_recording(tmp_path / "ends.jsonl", events, tail=b'{"t": 1.0, "ty\n')
    assert main(["replay", str(tmp_path / "ends.jsonl")]) == 2
    assert f"line {len(events) + 2}" in capsys.readouterr().err


def test_two_recordings_joined_are_refused_not_replayed_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tester's: `cat r1.jsonl r2.jsonl` replayed as one session, the second's rows on
    the first's ids: 3 processes shown of 5, and the first's gone."""
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    events = made_up_session()
    write_recording(first, events)
    write_recording(second, events)
    joined = tmp_path / "joined.jsonl"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    assert main(["replay", str(joined)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"proclab replay: {joined} line {len(events) + 2}: format: a second recording's"
        " header (two recordings joined?)"
    ), err


def test_an_endless_line_is_refused_without_reading_it_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """/dev/zero has no end and no newline: read line by line, it filled memory until a
    MemoryError's traceback. Refused at the first line past any recording's longest."""
    assert main(["replay", "/dev/zero"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "proclab replay: /dev/zero line 1: longer than 4,194,304 bytes (not a proclab recording)"
    )


def test_run_records_every_child(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    done = subprocess.run(
        [PROCLAB, "run", f"{TASKS}:exit_with", "--args", "(3,)", "--count", "2", "--record", path],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    events = [e for _, e in read_events(path)]
    assert sum(isinstance(e, Spawned) for e in events) == 2
    assert [e.row.exitcode for e in events if isinstance(e, Exited)] == [3, 3]
    assert sum(isinstance(e, OutputLine) and "exiting with code 3" in e.text for e in events) == 2
    unwritable = subprocess.run(
        [PROCLAB, "run", f"{TASKS}:sleep", "--record", str(tmp_path / "no" / "such.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unwritable.returncode == 2 and "cannot record" in unwritable.stderr


def test_serve_records_server_events(tmp_path: Path) -> None:
    path = tmp_path / "serve.jsonl"
    server = subprocess.Popen(
        [PROCLAB, "serve", "--port", "0", "--method", "fork", "--record", str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"hello\n")
            assert client.recv(100) == b"HELLO\n"
        time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    kinds = [e.kind for _, e in read_events(path) if isinstance(e, ServerEvent)]
    for kind in ("listening", "accepted", "data_in", "data_out", "disconnected", "stopped"):
        assert kind in kinds, kinds
    replay = Replay.load(path)
    replay.play_to(replay.end)
    assert replay.server.status().served == 1


@pytest.mark.parametrize("mode", ["process", "pool"])
def test_a_replayed_server_counts_as_the_live_one_at_log_errors(tmp_path: Path, mode: str) -> None:
    """At --log errors nothing tells a connection's opening or end: a replay said "active 0
    · served 0 · handler processes 3" with two clients connected (its server process
    counted among the handlers). Process mode counts its handlers, one a connection;
    pool mode says it does not know."""
    path = tmp_path / "serve.jsonl"
    options = ["--mode", mode, "--workers", "2"] if mode == "pool" else []
    options += ["--record", str(path)]
    server = subprocess.Popen(
        [PROCLAB, "serve", "--port", "0", "--method", "fork", "--log", "errors", *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
        clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        for client in clients:
            client.sendall(b"hi")
            assert client.recv(10) == b"HI"
        time.sleep(1.5)  # a sample or more with both open
        for client in clients:
            client.close()
        time.sleep(1.0)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    replay = Replay.load(path)
    events = read_events(path)
    starts = [t for t, e in events if isinstance(e, Spawned) and e.row.tag != SERVER_TAG]
    (stopped,) = [t for t, e in events if isinstance(e, ServerEvent) and e.kind == "stopped"]
    replay.play_to(starts[-1] + 0.5)
    status = replay.server.status()
    assert status.handlers == 2  # two handlers, or two workers: not the server process
    if mode == "process":
        assert (status.active, status.served, status.counted) == (2, 0, True)
        replay.play_to(stopped - 0.01)
        assert replay.server.status().served == 2
    else:
        assert status.handlers == 2 and not status.counted


def test_a_serve_that_never_started_leaves_an_earlier_recording_as_it_was(
    tmp_path: Path,
) -> None:
    """A refused port emptied the --record file before it was refused: an earlier
    recording of 31,659 bytes became a header of 49. A file it made is not left behind."""
    kept = tmp_path / "kept.jsonl"
    earlier = json.dumps({"format": 3, "recorded": "2026-12-05 17:00:00"}) + "\n"
    kept.write_text(earlier)
    fresh = tmp_path / "fresh.jsonl"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for path in (kept, fresh):
            done = subprocess.run(
                [PROCLAB, "serve", "--port", port, "--record", str(path)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 2 and "already in use" in done.stderr, done.stderr
    assert kept.read_text() == earlier
    assert not fresh.exists()


def test_the_app_records_its_session(tmp_path: Path) -> None:
    path = tmp_path / "app.jsonl"
    args = [f"{TASKS}:exit_with", "--args", "(3,)", "--count", "2", "--record", str(path)]
    assert quit_once(args, b"2 ended")[0] == 0
    replay = Replay.load(path)
    replay.play_to(replay.end)
    assert [describe_exit(r.exitcode) for r in replay.rows()] == ["3", "3"]


def test_a_format_1_recording_reads_as_the_server_event_classes(tmp_path: Path) -> None:
    """Format 1 wrote one ServerEvent with every field; it reads as the class of its
    kind, and its server replays as it did. What is recorded now names the class."""
    blank = {
        "client": "",
        "pid": None,
        "nbytes": 0,
        "preview": "",
        "duration": None,
        "bytes_in": 0,
        "bytes_out": 0,
        "reason": "",
        "max_clients": 0,
        "text": "",
        "address": "",
        "mode": "",
        "method": "",
        "workers": 0,
    }
    old = [
        {"kind": "listening", "address": "127.0.0.1:8001", "mode": "pool", "method": "fork"}
        | {"workers": 2, "max_clients": 8, "text": "listening on 127.0.0.1:8001"},
        {"kind": "accepted", "client": "127.0.0.1:5000", "pid": 41}
        | {"text": "thread proclab-handler"},
        {"kind": "data_in", "client": "127.0.0.1:5000", "pid": 41, "nbytes": 2, "preview": "hi"},
        {"kind": "busy", "client": "127.0.0.1:5002", "pid": 40, "max_clients": 8},
        {"kind": "disconnected", "client": "127.0.0.1:5000", "pid": 41, "duration": 0.5}
        | {"bytes_in": 2, "bytes_out": 2, "reason": "peer closed"},
        {"kind": "stopped", "text": "stopped (server stopped); served 1, rejected 1"},
    ]
    path = tmp_path / "old.jsonl"
    records = [
        {"t": NOW + i, "type": "ServerEvent", "event": blank | {"time": NOW + i} | e}
        for i, e in enumerate(old)
    ]
    header = json.dumps({"format": 1, "recorded": "2026-11-27 20:16:05"})
    path.write_text("\n".join([header, *map(json.dumps, records)]) + "\n")
    events = [e for _, e in read_events(path)]
    assert [type(e) for e in events] == [
        ServerListening,
        ClientAccepted,
        ClientData,
        ClientTurnedAway,
        ClientClosed,
        ServerNote,
    ]
    assert [describe_event(e) for e in events] == [
        "listening on 127.0.0.1:8001",
        "127.0.0.1:5000 accepted by a thread in proclab (41)",
        "127.0.0.1:5000 [41] <- 2 B  hi",
        "127.0.0.1:5002 turned away: busy (at the limit of 8 clients)",
        "127.0.0.1:5000 [41] closed: peer closed, after 0.50 s (in 2 B, out 2 B)",
        "stopped (server stopped); served 1, rejected 1",
    ]
    replay = Replay(list(enumerate(events, start=int(NOW))))
    replay.play_to(NOW + 4)
    status = replay.server.status()
    assert (status.running, status.address, status.mode, status.workers) == (
        True,
        "127.0.0.1:8001",
        "pool",
        2,
    )
    assert (status.served, status.rejected, status.active) == (1, 1, 0)
    line = json.loads(event_line(events[4], NOW))
    assert line["type"] == "ClientClosed" and "nbytes" not in line["event"]
    assert line["event"]["kind"] == "disconnected"


def test_a_late_older_row_in_a_recording_changes_nothing_true() -> None:
    """Recordings made before row events went out in order, or edited, can hold a row's
    events out of order: an ended row does not live again, and a cleared one does not come
    back, in the replay's rows nor in what it hands out (the timeline keeps lanes)."""
    sleeping = next(r for r in mixed_rows() if r.state is ProcState.SLEEPING)
    exited = dataclasses.replace(sleeping, state=ProcState.EXITED, exitcode=0, ended_at=NOW)
    other = dataclasses.replace(sleeping, id=99, name="other")
    events: list[Event] = [
        Exited(exited),
        Spawned(sleeping),  # late: from before the end
        StateChanged(sleeping, ProcState.STARTING),
        Spawned(other),
        Exited(dataclasses.replace(other, state=ProcState.EXITED, exitcode=0, ended_at=NOW)),
        Cleared((99,)),
        StateChanged(other, ProcState.STARTING),  # late: the row was cleared
    ]
    replay = Replay(list(enumerate(events, start=int(NOW))))
    handed: list[Event] = []
    replay.subscribe(handed.append)
    replay.play_to(NOW + len(events))
    assert [(r.id, r.state) for r in replay.rows()] == [(sleeping.id, ProcState.EXITED)]
    told = [e.row for e in handed if isinstance(e, Spawned | StateChanged | Exited)]
    assert all(row.state is ProcState.EXITED for row in told if row.id == sleeping.id)
    assert not any(isinstance(e, StateChanged) and e.row.id == 99 for e in handed)


def test_a_replay_ends_when_its_terminal_goes_away() -> None:
    """A closed ssh session or a killed tmux takes the terminal from a playing replay: it
    ends, as the live app does (it stayed blocked in Textual's output thread for good)."""
    scene = Path(__file__).resolve().parent.parent / "screenshots" / "scene.jsonl"
    session = PtySession(["replay", str(scene)], size=(160, 48))
    try:
        session.wait_for(b"Play")
        time.sleep(1.0)  # playing: it draws all the while
        session.hang_up()
        assert wait_until(lambda: not session.running(), 30), "the replay outlived its terminal"
    finally:
        session.close()


def test_a_start_that_took_less_than_no_time_is_refused() -> None:
    """A tester's: start_latency -5.0 showed "start() took -5000 ms" (a steady clock's
    difference: no clock set back makes it)."""
    row = next(r for r in mixed_rows() if r.name == "ForkProcess-3")
    line = json.loads(event_line(Spawned(dataclasses.replace(row, start_latency=-5.0)), NOW))
    with pytest.raises(ProclabError, match=r"event.row.start_latency: -5.0 is below 0"):
        decode_event(line["type"], line["event"])


async def test_a_replay_s_empty_timeline_sends_nobody_to_the_spawn_form() -> None:
    """A tester's: a replay's timeline, before any tick, said "start some with n (the
    spawn form)", and n is refused in a replay."""
    from proclab.tui.screens.timeline import TimelineGrid

    app = replay_app(Replay(made_up_session()[:1]))  # a child started, never sampled
    async with app.run_test(size=(120, 32)) as pilot:
        await settle(pilot, app)
        await pilot.press("l")
        await pilot.pause()
        picked = app.screen.query_one(TimelineGrid).picked()
        assert picked == "no child has been sampled yet", picked


def test_a_recording_whose_only_event_was_cut_off_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tester's: a header and one line cut off mid-way said "the recording holds no
    events", not that its one event was cut off."""
    path = tmp_path / "cut.jsonl"
    write_recording(path, [], tail=b'{"t": 1.0, "ty')
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"proclab replay: {path}: the recording holds no whole event (its line 2 is cut off"
        " mid-way: proclab stopped while writing it)"
    ), err


async def test_seeking_back_draws_the_cpu_pane_as_playing_forward_did() -> None:
    """A tester's: each seek back in a long recording froze the app (0.7-0.9 s for 143,000
    ticks): the CPU pane repainted once for every tick handed out again. It takes the
    batch at once now; what it shows is what playing forward to that moment showed."""
    events = made_up_session()
    target = events[len(events) // 2][0] + SAMPLE_S / 2

    async def pane_after(seek_back: bool) -> list[float]:
        replay = Replay(events)
        app = replay_app(replay)
        async with app.run_test(size=(120, 32)) as pilot:
            await settle(pilot, app)
            screen = app.screen
            screen.seek_to(replay.end if seek_back else target)  # type: ignore[attr-defined]
            await settle(pilot, app)
            if seek_back:
                screen.seek_to(target)  # type: ignore[attr-defined]
                await settle(pilot, app)
            return list(screen.cpu_pane._total)  # type: ignore[attr-defined]

    forward, back = await pane_after(False), await pane_after(True)
    assert forward and back == forward
