"""A demo scenario: a TOML file of steps that `proclab demo` plays in the real app.

Each `[[step]]` may say something (a caption), do one thing, then wait. Everything is
checked when the file is read, so a broken scenario is refused with the line to fix
before anything starts.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proclab.core.errors import InputError, ProclabError
from proclab.core.model import ProcessSpec
from proclab.core.scheduling.simulator import PRESETS
from proclab.core.spec import build_spec

BUILTIN = Path(__file__).with_name("scenarios") / "lesson.toml"

# What a step can do; each takes the value shown in the default scenario.
ACTIONS = ("spawn", "join", "show", "server", "clients", "clear", "terminate", "schedule")
SHOWABLE = ("procs", "log", "cpu", "server", "timeline", "details")
_SPAWN_KEYS = {"spawn", "args", "kwargs", "count", "name", "method", "affinity"}
_STEP_KEYS = {"say", "wait", *ACTIONS} | _SPAWN_KEYS | {"mode", "messages"}


class ScenarioError(ProclabError):
    """A scenario file that cannot be played; the message names the file and line."""


@dataclass(frozen=True)
class Step:
    line: int  # of its [[step]] header, for messages
    say: str | None = None
    action: str | None = None  # one of ACTIONS, or None for a caption and a pause
    spec: ProcessSpec | None = None  # spawn
    count: int = 1  # spawn: copies; clients: connections
    target: str | None = None  # show: a pane; server: start or stop; schedule: a preset
    mode: str = "process"  # server start
    messages: int = 5  # clients
    wait: float = 0.0  # seconds after the action, before the pace is applied


@dataclass(frozen=True)
class Scenario:
    path: Path
    title: str
    steps: tuple[Step, ...]

    @property
    def length_s(self) -> float:
        """Seconds of waiting written in the file (joins add the children's run time)."""
        return sum(step.wait for step in self.steps)


MAX_SCENARIO_CHARS = 1_000_000  # the built-in lesson is 3 kB
MAX_WAIT_S = 3600  # a step's wait: a pause (any key) holds the demo for longer


def load_scenario(path: str | Path | None = None, cwd: str | None = None) -> Scenario:
    """Read and check a scenario; the built-in lesson when no path is given."""
    if path is not None and not str(path).strip():  # Path("") is ".": "cannot read ."
        raise ScenarioError("no scenario named: give a SCENARIO.toml, or none for the lesson")
    where = Path(path) if path is not None else BUILTIN
    try:
        with where.open(encoding="utf-8") as file:
            text = file.read(MAX_SCENARIO_CHARS + 1)
    except OSError as exc:
        raise ScenarioError(f"cannot read {where}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{where} is not UTF-8 text") from None
    if len(text) > MAX_SCENARIO_CHARS:  # read whole, /dev/zero ended in a MemoryError
        raise ScenarioError(
            f"{where} is longer than {MAX_SCENARIO_CHARS:,} characters: a scenario is a few"
            " thousand"
        )
    return parse_scenario(text, where, cwd)


def parse_scenario(text: str, path: Path, cwd: str | None = None) -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line L, column C)"; lead with the line, as the other errors do
        found = re.search(r"\(at line (\d+), column \d+\)$", str(exc))
        where = f"line {found.group(1)}: " if found else ""
        message = str(exc)[: found.start()].strip() if found else str(exc)
        raise ScenarioError(f"{path} {where}not valid TOML: {message}") from None
    except RecursionError:  # tomllib parses nested arrays by recursion
        raise ScenarioError(f"{path}: nested too deeply (not a scenario)") from None
    text_lines = text.splitlines()
    unknown = set(data) - {"title", "step"}
    if unknown:
        name = sorted(unknown)[0]
        raise ScenarioError(
            f"{path} line {_line_of_key(text_lines, name)}: unknown top-level key {name!r}"
            " (a scenario has a title and [[step]] tables)"
        )
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScenarioError(f"{path}: no [[step]] tables; each step says or does one thing")
    starts = _step_lines(text_lines)
    steps = []
    for index, raw in enumerate(raw_steps):
        line = starts[index] if index < len(starts) else 0
        try:
            steps.append(_step(raw, line, cwd))
        except ProclabError as exc:
            if isinstance(exc, InputError):  # point at the key's own line when it has one
                end = starts[index + 1] if index + 1 < len(starts) else len(text_lines) + 1
                key = "spawn" if exc.field == "target" else exc.field
                line = _line_of_key(text_lines[line : end - 1], key, line + 1) or line
            raise ScenarioError(f"{path} line {line}: {exc}") from None
    title = data.get("title", path.stem)
    if not isinstance(title, str):
        raise ScenarioError(f"{path} line {_line_of_key(text_lines, 'title')}: title must be text")
    return Scenario(path=path, title=title, steps=tuple(steps))


_STEP_HEADER = re.compile(r"\s*\[\[\s*step\s*\]\]\s*(#.*)?$")


def _step_lines(lines: list[str]) -> list[int]:
    return [number for number, line in enumerate(lines, start=1) if _STEP_HEADER.match(line)]


def _line_of_key(lines: list[str], key: str, first: int = 1) -> int:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    return next((first + i for i, line in enumerate(lines) if pattern.match(line)), 0)


def _step(raw: dict[str, Any], line: int, cwd: str | None) -> Step:
    unknown = set(raw) - _STEP_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise InputError(key, f"unknown key (a step has say, wait and one of {', '.join(ACTIONS)})")
    actions = [name for name in ACTIONS if name in raw]
    if len(actions) > 1:
        raise ProclabError(f"one action per step, found {' and '.join(actions)}: split the step")
    say = _typed(raw, "say", str)
    wait = _typed(raw, "wait", (int, float), 0.0)
    if not 0 <= wait <= MAX_WAIT_S:  # NaN fails it too
        # inf was "must be 0 or more seconds", and 1e308 was taken
        raise InputError("wait", f"must be 0 to {MAX_WAIT_S:,} seconds, got {wait}")
    action = actions[0] if actions else None
    if action is None and say is None:
        raise ProclabError("a step says something or does one of " + ", ".join(ACTIONS))
    stray = (_SPAWN_KEYS - {"spawn"}) & set(raw) if action != "spawn" else set()
    if stray:
        raise InputError(sorted(stray)[0], "belongs to a spawn step")
    fields: dict[str, Any] = {"line": line, "say": say, "action": action, "wait": float(wait)}
    if action == "spawn":
        count = _typed(raw, "count", int, 1)
        if not 1 <= count <= 100:
            raise InputError("count", f"must be 1 to 100, got {count}")
        affinity = raw.get("affinity")
        if isinstance(affinity, list):
            affinity = ",".join(str(cpu) for cpu in affinity)
        fields["spec"] = build_spec(
            _typed(raw, "spawn", str),
            _typed(raw, "args", str, "()"),
            _typed(raw, "kwargs", str, "{}"),
            name=_typed(raw, "name", str),
            method=_typed(raw, "method", str),
            affinity=None if affinity is None else str(affinity),
            cwd=cwd,
        )
        fields["count"] = count
    elif action == "show":
        fields["target"] = _choice(raw, "show", SHOWABLE)
    elif action == "server":
        fields["target"] = _choice(raw, "server", ("start", "stop"))
        fields["mode"] = _choice(raw, "mode", ("process", "pool", "thread"), "process")
    elif action == "clients":
        fields["count"] = _typed(raw, "clients", int)
        fields["messages"] = _typed(raw, "messages", int, 5)
        if not 1 <= fields["count"] <= 50:
            raise InputError("clients", f"must be 1 to 50, got {fields['count']}")
        if not 1 <= fields["messages"] <= 1000:
            raise InputError("messages", f"must be 1 to 1000, got {fields['messages']}")
    elif action == "schedule":
        fields["target"] = _choice(raw, "schedule", tuple(PRESETS))
    elif action in ("join", "clear", "terminate") and raw[action] is not True:
        raise InputError(action, f"takes true (it acts on every child), got {raw[action]!r}")
    if "mode" in raw and action != "server":
        raise InputError("mode", "belongs to a server step")
    if "messages" in raw and action != "clients":
        raise InputError("messages", "belongs to a clients step")
    return Step(**fields)


def _typed(raw: dict[str, Any], key: str, kind: Any, default: Any = None) -> Any:
    if key not in raw:
        return default
    value = raw[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else "a number"
        wanted = {"str": "text", "int": "a whole number"}.get(names, names)
        raise InputError(key, f"must be {wanted}, got {value!r}")
    return value


def _choice(raw: dict[str, Any], key: str, choices: tuple[str, ...], default: str = "") -> str:
    value = _typed(raw, key, str, default)
    if value not in choices:
        raise InputError(key, f"must be one of {', '.join(choices)}, got {value!r}")
    return str(value)
