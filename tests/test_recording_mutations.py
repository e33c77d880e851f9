"""A broken recording is one line naming the line and the field, never a crash.

A small recording holding every kind of event is mutated, one value at a time, into every
wrong kind of value (text where a number belongs, a list where an object belongs, null,
huge numbers, deep nesting...), and lines are broken whole. Each mutant either is refused
as a ProclabError that names its line and field, or loads, and then everything replay
shows of it (the table's cells, the tree, the details, the calls, the server's log and
status, the timeline, the status line) is drawn without an error. The same holds for a
watched program's recording (proclab watch --record): rows with no spec, their tree
parents, multiprocessing's facts, exit notes, and the calls between processes.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from proclab.core.calls import CallLog
from proclab.core.errors import ProclabError
from proclab.core.model import (
    Cleared,
    Event,
    Exited,
    MpFacts,
    Notice,
    OutputLine,
    ProcessCall,
    ProcessRow,
    ProcessSpec,
    ProcSample,
    ProcState,
    RowUpdated,
    Sampled,
    ServerEvent,
    Spawned,
    StateChanged,
    SystemSample,
    server_event,
)
from proclab.core.recording import Replay, event_line
from proclab.core.server.tcp import describe_event
from proclab.core.targets import Target
from proclab.core.timeline import Timeline
from proclab.tui.cli import main
from proclab.tui.screens.details import describe
from proclab.tui.widgets.output_log import call_entries
from proclab.tui.widgets.process_table import COLUMNS
from proclab.tui.widgets.process_tree import shown_name, tree_order

T = 1_700_000_000.0
SAMPLE = ProcSample(
    time=50.0,
    interval=1.0,
    status="running",
    cpu_percent=99.5,
    cpu_user=1.5,
    cpu_system=0.25,
    cpu_delta=0.9,
    run_delay_delta=0.1,
    run_delay=0.2,
    rss=12_000_000,
    threads=2,
    core=1,
    ctx_voluntary=10,
    ctx_involuntary=3,
    descendants=1,
)
ROW = ProcessRow(
    id=1,
    name="worker",
    spec=ProcessSpec(
        Target("module", "proclab.core.tasks", "sleep"),
        args=(1,),
        kwargs={"extra": [1, 2]},
        name="worker",
        affinity=(0, 1),
    ),
    state=ProcState.RUNNING,
    pid=4242,
    created_at=T,
    started_at=T + 0.1,
    start_latency=0.01,
    sample=SAMPLE,
    error="RuntimeError: boom",
    traceback=("Traceback (most recent call last):", "RuntimeError: boom"),
    tag="tcp 127.0.0.1:5000",
    parent_id=None,
)
SYSTEM = SystemSample(
    time=50.0,
    wall=T + 1,
    per_core=(10.0, 90.0),
    total=50.0,
    mem_total=8_000_000_000,
    mem_used=4_000_000_000,
    mem_percent=50.0,
    load=(0.5, 0.25, 0.1),
)
EVENTS: list[Event] = [
    Spawned(replace(ROW, state=ProcState.STARTING, pid=None, sample=None)),
    StateChanged(ROW, ProcState.STARTING),
    Sampled(SYSTEM, {1: SAMPLE}),
    OutputLine(1, 4242, "worker", "stdout", "hello", T + 1.5),
    RowUpdated(ROW),
    server_event("listening", T + 2, address="127.0.0.1:8001", mode="process", max_clients=32),
    server_event(
        "disconnected",
        T + 2.5,
        client="127.0.0.1:5000",
        pid=4243,
        duration=0.5,
        bytes_in=4,
        bytes_out=4,
        reason="peer closed",
    ),
    Exited(replace(ROW, state=ProcState.EXITED, exitcode=0, ended_at=T + 3)),
    Notice("info", "sent SIGTERM to 1 child", T + 3.5),
    Cleared((1,)),
    Sampled(replace(SYSTEM, time=51.0), {}, stood=(1,)),  # its last sample stood
]
# A watched program's (proclab watch): rows with no spec, a tree, what multiprocessing
# said, an end only the parent saw, and the calls between them.
ROOT = replace(ROW, spec=None, name="python", command="python day36.py", error=None)
CHILD = replace(
    ROOT,
    id=2,
    pid=4243,
    name="greeter",
    parent=1,
    command="python -c from multiprocessing.spawn import spawn_main",
    mp=MpFacts(
        "greeter", "__main__.greet", "('Hello',)", "{'who': 'w'}", False, "spawn", ran_after=0.01
    ),
)
WATCHED: list[Event] = [
    Spawned(ROOT),
    Spawned(CHILD),
    RowUpdated(CHILD),
    ProcessCall(1, 4242, "python", "join", 2, 4243, "greeter", T + 1, T + 1.5, 0.5, True, 0),
    Exited(
        replace(
            CHILD,
            state=ProcState.ENDED,
            ended_at=T + 2,
            mp=MpFacts(pool_kind="Pool", tasks=3, calls=9, role="worker"),
            exit_note="its parent reaped it and did not say",
        )
    ),
]
BAD_VALUES: list[Any] = ["x", 12345, 1.5, 1e300, 10**30, True, None, [], {}]


def lines(events: list[Event] = EVENTS) -> list[dict[str, Any]]:
    return [json.loads(event_line(e, T + i)) for i, e in enumerate(events)]


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value that holds something, itself included."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, index))


def put(record: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copied = copy.deepcopy(record)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copied


def mutants(events: list[Event] = EVENTS) -> Iterator[tuple[int, str, str]]:
    """(line number, field path, the file's text) for every mutation."""
    base = lines(events)
    header = json.dumps({"format": 1, "recorded": "2023-11-14 22:13:20"})
    for index, record in enumerate(base):
        number = index + 2  # after the header
        for path in leaves(record):
            if path[:2] == ("event", "row") and len(path) > 2 and record["type"] != "RowUpdated":
                continue  # a row is read the same way in every event that holds one
            for bad in BAD_VALUES:
                mutated = [*base[:index], put(record, path, bad), *base[index + 1 :]]
                text = "\n".join([header, *map(json.dumps, mutated)]) + "\n"
                yield number, ".".join(map(str, path)), text
        # whole lines: deep nesting, a bare value, a missing key
        for broken in ("[" * 100_000 + "]" * 100_000, "42", '"x"', "[]", "{}"):
            yield number, "", "\n".join([header, *map(json.dumps, base[:index]), broken]) + "\n"
        for key in record:
            without = {k: v for k, v in record.items() if k != key}
            text = "\n".join([header, *map(json.dumps, [*base[:index], without])]) + "\n"
            yield number, key, text


def show_everything(replay: Replay) -> None:
    """Everything replay draws from a recording, as the app would draw it."""
    timeline = Timeline()
    calls = CallLog()
    replay.subscribe(timeline.feed)
    replay.subscribe(calls.feed)

    def row_of(rec_id: int) -> ProcessRow | None:
        return next((r for r in replay.rows() if r.id == rec_id), None)

    for wall, event in replay.events:
        replay.play_to(wall)
        replay.status_text()
        replay.server.status()
        if isinstance(event, ServerEvent):
            describe_event(event)
        if isinstance(event, ProcessCall):
            call_entries(event)
        rows = replay.rows()
        tree_order([r.id for r in rows], {r.id: r.parent for r in rows})
        for row in rows:
            shown_name(row)
            for column in COLUMNS:
                column.value(row, replay.now)
            describe(row, replay.output(row.id), replay.now, None, calls, row_of)
    timeline.snapshot()
    assert math.isfinite(replay.sample_interval)


@pytest.mark.parametrize(
    ("events", "at_least"),
    [(EVENTS, (500, 100)), (WATCHED, (300, 60))],
    ids=["own-children", "watched-program"],
)
def test_every_mutation_is_refused_by_line_and_field_or_replays(
    tmp_path: Path, events: list[Event], at_least: tuple[int, int]
) -> None:
    refused = replayed = 0
    for count, (number, field, text) in enumerate(mutants(events)):
        path = tmp_path / f"{count}.jsonl"  # a new file: truncating one costs ext4 a flush
        path.write_text(text)
        try:
            replay = Replay.load(path)
        except ProclabError as exc:
            message = str(exc)
            assert f"line {number}" in message and "\n" not in message, message
            leaf = field.rsplit(".", 1)[-1]
            # the field is named (a list index names its list)
            assert not leaf or leaf.isdigit() or leaf in message, (field, message)
            refused += 1
            continue
        show_everything(replay)  # never raises
        replayed += 1
    assert refused > at_least[0] and replayed > at_least[1], (refused, replayed)


OWN_MUTATIONS: list[tuple[int, tuple[str, ...], Any, str]] = [
    (2, ("event", "procs"), [], "event.procs"),
    (2, ("event", "procs", "1", "cpu_percent"), "high", "event.procs[1].cpu_percent"),
    (7, ("event", "row", "exitcode"), "x", "event.row.exitcode"),
    (4, ("event", "row", "name"), 12345, "event.row.name"),
    (3, ("event", "text"), 42, "event.text"),
    (6, ("event", "pid"), "x", "event.pid"),
    (0, ("t",), 1e300, "t"),
    (10, ("event", "stood"), ["1"], "event.stood[0]"),
    # shown as they were: pid -5, and "-999 signa…" as an exited row's exit code
    (7, ("event", "row", "pid"), -5, "event.row.pid"),
    (7, ("event", "row", "exitcode"), -999, "event.row.exitcode"),
    (7, ("event", "row", "exitcode"), 256, "event.row.exitcode"),
]
# A watched program's rows and calls (proclab watch --record) are read as strictly.
WATCHED_MUTATIONS: list[tuple[int, tuple[str, ...], Any, str]] = [
    (0, ("event", "row", "spec"), "python", "event.row.spec"),
    (1, ("event", "row", "parent"), "1", "event.row.parent"),
    (1, ("event", "row", "command"), ["python"], "event.row.command"),
    (1, ("event", "row", "mp"), "greeter", "event.row.mp"),
    (1, ("event", "row", "mp", "daemon"), "yes", "event.row.mp.daemon"),
    (1, ("event", "row", "mp", "ran_after"), "fast", "event.row.mp.ran_after"),
    (1, ("event", "row", "exit_note"), 0, "event.row.exit_note"),
    (3, ("event", "call"), "fork", "event.call"),
    (3, ("event", "child_id"), 2.5, "event.child_id"),
    (3, ("event", "called_at"), -5, "event.called_at"),
    (3, ("event", "timeout"), "0.5", "event.timeout"),
    (4, ("event", "row", "state"), "gone", "event.row.state"),
    (4, ("event", "row", "mp", "tasks"), 10**30, "event.row.mp.tasks"),
]


@pytest.mark.parametrize(
    ("events", "index", "path", "value", "named"),
    [(EVENTS, *m) for m in OWN_MUTATIONS] + [(WATCHED, *m) for m in WATCHED_MUTATIONS],
)
def test_the_reported_mutations_are_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    events: list[Event],
    index: int,
    path: tuple[str, ...],
    value: Any,
    named: str,
) -> None:
    base = lines(events)
    base[index] = put(base[index], path, value)
    recording = tmp_path / "broken.jsonl"
    recording.write_text("\n".join(json.dumps(r) for r in base) + "\n")
    assert main(["replay", str(recording)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"line {index + 1}: {named}:" in err, err


def test_deep_nesting_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recording = tmp_path / "deep.jsonl"
    recording.write_text(json.dumps(lines()[0]) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    assert main(["replay", str(recording)]) == 2
    err = capsys.readouterr().err
    assert "line 2: nested too deeply" in err and err.count("\n") == 1, err


def test_an_integer_past_pythons_digit_limit_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = tmp_path / "digits.jsonl"
    recording.write_text(json.dumps(lines()[0]) + "\n" + "9" * 5000 + "\n")
    assert main(["replay", str(recording)]) == 2
    err = capsys.readouterr().err
    assert "line 2: an integer of more than 4,300 digits" in err and err.count("\n") == 1, err


def test_a_recording_too_big_for_memory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MemoryError while reading (436 MB under a 700 MB limit) was a traceback."""
    from proclab.core import recording

    def out_of_memory(*_: object) -> None:
        raise MemoryError

    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps(lines()[0]) + "\n")
    monkeypatch.setattr(recording, "_read_lines", out_of_memory)
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert "too big to replay in the memory" in err and err.count("\n") == 1, err


def test_a_row_event_of_a_row_never_spawned_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An Exited of a row no Spawned event began made up a row: the replay's table listed
    one process twice, "0 live · 3 ended" of two children."""
    base = lines(EVENTS)
    index = next(i for i, r in enumerate(base) if r.get("type") == "Exited")
    base[index] = put(base[index], ("event", "row", "id"), 99)
    recording = tmp_path / "unknown.jsonl"
    recording.write_text("\n".join(json.dumps(r) for r in base) + "\n")
    assert main(["replay", str(recording)]) == 2
    err = capsys.readouterr().err
    assert f"line {index + 1}: event.row.id: 99: no Spawned event began this row" in err
    # Its Spawned after it is no made-up row: a watched tree's row could be told updated
    # by one thread as another told it made, and recordings hold such.
    base = lines(EVENTS)
    first = next(i for i, r in enumerate(base) if r.get("type") == "Spawned")
    base.insert(first, put(base[first], ("type",), "RowUpdated"))
    recording.write_text("\n".join(json.dumps(r) for r in base) + "\n")
    assert Replay.load(recording).rows() == ()
