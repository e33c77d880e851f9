"""The spawn form: a Process(target, args, kwargs, name, daemon) and how many, how started,
where pinned. Every field is checked by the same gate as `proclab run` (build_spec); a
wrong field shows its error beside it and nothing starts."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from typing import ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from proclab.core.cpus import format_cpu_list, usable_cpus
from proclab.core.errors import ProclabError, SpawnRefused
from proclab.core.methods import METHODS
from proclab.core.model import ProcessSpec
from proclab.core.spec import check_spec
from proclab.core.tasks import BUILTINS

TASKS_MODULE = "proclab.core.tasks"
FIELDS = ("target", "args", "kwargs", "name", "count", "method", "affinity")
MAX_COUNT = 10_000

Spawner = Callable[[ProcessSpec, int], tuple[int, ...]]
Room = Callable[[], tuple[int, int]]  # (live children now, the most at once: --max-procs)


class Flag(Checkbox):
    """A checkbox whose mark is there only when it is on: Textual's draws its X either way
    and tells on from off by colour alone, which NO_COLOR or a monochrome terminal lose."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]
        return "X" if self.value else " "


class SpawnScreen(ModalScreen[tuple[int, ...] | None]):
    """Dismisses with the new record ids, or None if cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "spawn", "Spawn", priority=True),
    ]
    # Nothing has focus until the keys typed while the form was being made are in: the
    # target then (on_mount). Textual's own would give the first field at once (None is
    # the app's choice, "*").
    AUTO_FOCUS = ""

    def __init__(
        self,
        spawner: Spawner,
        method: str,
        cwd: str | None = None,
        cpus: tuple[int, ...] | None = None,
        room: Room | None = None,
    ) -> None:
        super().__init__(classes="dialog")
        self._spawner = spawner
        self._room = room
        self._checked: dict[str | None, str] = {}  # each field's value at the last submit
        self._method = method
        self._cwd = cwd or os.getcwd()
        self._cpus = cpus if cpus is not None else usable_cpus()
        self._typed_ahead = False  # keys came before the first field had focus (on_key)
        self._early: list[tuple[str, str | None]] = []  # such keys, not in the field yet

    def compose(self) -> ComposeResult:
        greet_args, greet_kwargs, _ = BUILTINS["greet"]
        targets = [f"{TASKS_MODULE}:{name}" for name in BUILTINS]
        builtins, wide = BUILTINS.items(), max(map(len, BUILTINS))
        here = format_cpu_list(self._cpus)
        with Vertical(classes="dialog-box", id="spawn-box"):
            yield Static(
                "Start processes: Process(target, args, kwargs, name, daemon)",
                classes="title",
                markup=False,
            )
            yield from _field(
                "Built-in",
                Select(
                    [(Text(f"{name:{wide}}  {about}"), name) for name, (*_, about) in builtins],
                    prompt="choose a built-in task…",
                    value="greet",
                    id="builtin",
                    compact=True,
                ),
            )
            yield from _field(
                "Target",
                Input(
                    f"{TASKS_MODULE}:greet",
                    id="target",
                    placeholder="module:function or file.py:function",
                    suggester=SuggestFromList(targets),
                    compact=True,
                ),
            )
            yield from _field(
                "Args", Input(greet_args, id="args", placeholder="a tuple, e.g. (1,)", compact=True)
            )
            yield from _field(
                "Kwargs",
                Input(
                    greet_kwargs,
                    id="kwargs",
                    placeholder="a dict, e.g. {'name': 'jerry'}",
                    compact=True,
                ),
            )
            yield from _field(
                "Name",
                Input(
                    "",
                    id="name",
                    placeholder=_name_hint(self._method),
                    compact=True,
                ),
            )
            yield from _field(
                "Count",
                Input("1", id="count", restrict=r"[0-9]*", max_length=5, compact=True),
                Flag("daemon", id="daemon", compact=True),
            )
            yield from _field(
                "Method",
                Select(
                    [(m, m) for m in METHODS],
                    value=self._method,
                    allow_blank=False,
                    id="method",
                    compact=True,
                ),
            )
            yield from _field(
                "Affinity",
                Input(
                    "",
                    id="affinity",
                    placeholder=f"CPUs to pin to, e.g. 0 (usable here: {here})",
                    compact=True,
                ),
            )
            yield Static("", id="error-general", classes="field-error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Spawn (ctrl+s)", variant="primary", id="spawn")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        # Once every key that came before is in (on_key): focused at once, keys typed
        # while the form was being made reached the form, and later ones the field first.
        self.call_after_refresh(self._focus_target)

    def _focus_target(self) -> None:
        if self.message_queue_size:  # keys waiting here: they go in first
            self.call_after_refresh(self._focus_target)
            return
        self._take_early()
        found = self.query("#target")
        if not found:  # an Enter typed ahead spawned, and the form is gone
            return
        target = found.first(Input)
        if self._typed_ahead:
            target.select_on_focus = False  # what was typed is kept, not selected
        # At once (Widget.focus waits a turn of the app's queue: keys it dispatched
        # meanwhile came here, after it).
        self.set_focus(target)

    def on_key(self, event: events.Key) -> None:
        """Keys typed at speed after n (`n` then `day36.py:task`, or Enter) came to the
        form before its first field had focus, and were lost: they go into that field, in
        turn, as later keys do (the first replaces what is there, as a key does once the
        field, selected on focus, has it), and Enter submits, as it does there."""
        # A printable key here never reached a field (one takes every printable key it is
        # sent): it came while none had focus. A backspace or Enter a field took comes
        # here too.
        printable = event.is_printable and (self.focused is None or isinstance(self.focused, Input))
        early = self.focused is None and event.key in ("backspace", "enter")
        if not (printable or early):
            return
        event.stop()
        self._early.append((event.key, event.character))
        self._take_early()

    def _take_early(self) -> None:
        """The keys held by on_key, into the target in turn; held on while the form has
        no target yet (an Enter came before its fields were made)."""
        found = self.query("#target")
        if not found:
            return
        target = found.first(Input)
        while self._early:
            key, character = self._early.pop(0)
            if key == "enter":
                self.action_spawn()
                continue
            if not self._typed_ahead:
                target.value = ""
                self._typed_ahead = True
            if key == "backspace":
                target.action_delete_left()
            elif character:
                target.insert_text_at_cursor(character)

    @on(Select.Changed, "#method")
    def _method_chosen(self, event: Select.Changed) -> None:
        """The default name follows the method, as multiprocessing's does (it said
        ForkServerProcess-N whatever the method)."""
        self.query_one("#name", Input).placeholder = _name_hint(str(event.value))

    @on(Select.Changed, "#builtin")
    def _builtin_chosen(self, event: Select.Changed) -> None:
        if event.value is Select.NULL:
            return
        args, kwargs, _ = BUILTINS[str(event.value)]
        with self.prevent(Input.Changed):  # the list follows the target: not back again
            self.query_one("#target", Input).value = f"{TASKS_MODULE}:{event.value}"
        self.query_one("#args", Input).value = args
        self.query_one("#kwargs", Input).value = kwargs
        self._show_errors({})

    @on(Input.Changed, "#target")
    def _target_typed(self, event: Input.Changed) -> None:
        """The list names the built-in the target is, or none: it said "choose a built-in
        task…" over greet's target, and "sleep" over a target typed since. Its arguments
        are left as typed."""
        module, _, name = event.value.strip().partition(":")
        chosen = name if module == TASKS_MODULE and name in BUILTINS else Select.NULL
        with self.prevent(Select.Changed):
            self.query_one("#builtin", Select).value = chosen

    def on_input_changed(self, event: Input.Changed) -> None:
        """A field that changed has no error any more, until the next submit says so.
        (Its value now, compared with the value checked: a change event can arrive after
        the submit, and keys typed ahead with their Enter sent theirs after it, each
        with a value the field held before, which cleared the error shown.)"""
        field = event.input
        if field.has_class("-invalid-field") and field.value != self._checked.get(field.id):
            field.remove_class("-invalid-field")
            self.query_one(f"#error-{field.id}", Static).set_class(False, "-shown")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_spawn()

    @on(Button.Pressed, "#spawn")
    def _spawn_pressed(self) -> None:
        self.action_spawn()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_spawn(self) -> None:
        value = {
            f: self.query_one(f"#{f}", Input).value
            for f in ("target", "args", "kwargs", "name", "count", "affinity")
        }
        self._checked = {name: text for name, text in value.items()}
        errors: dict[str, str] = {}
        count = int(value["count"] or "0")  # the field takes digits only
        most, why = MAX_COUNT, ""
        if self._room is not None:
            live, limit = self._room()
            most = max(0, limit - live)
            why = f" (--max-procs {limit}, {live:,} live now)"
        if not 1 <= count <= most:
            errors["count"] = f"a whole number from 1 to {most:,}{why}" if most else f"no room{why}"
        spec, problems = check_spec(
            value["target"],
            value["args"],
            value["kwargs"],
            name=value["name"] or None,
            daemon=self.query_one("#daemon", Checkbox).value,
            method=str(self.query_one("#method", Select).value),
            affinity=value["affinity"],
            cwd=self._cwd,
        )
        for problem in problems:
            errors.setdefault(problem.field, problem.message)
        if errors or spec is None:
            self._show_errors(errors)
            return
        try:
            ids = self._spawner(spec, count)
        except SpawnRefused as exc:  # the limit, reached meanwhile
            self._show_errors({"count": str(exc)})
            return
        except ProclabError as exc:
            self._show_errors({"": str(exc)})
            return
        self.dismiss(ids)

    def _show_errors(self, errors: dict[str, str]) -> None:
        for field in (*FIELDS, ""):
            message = errors.get(field, "")
            error = self.query_one(f"#error-{field or 'general'}", Static)
            error.update(message)
            error.set_class(bool(message), "-shown")
            if field:
                self.query_one(f"#{field}").set_class(bool(message), "-invalid-field")
        if errors:
            first = next((f for f in FIELDS if f in errors), None)
            if first:
                self.query_one(f"#{first}").focus()


def _field(label: str, *widgets: Widget) -> Iterator[Widget]:
    """A labelled row, and below it the line where its error shows."""
    yield Horizontal(
        Label(label, classes="field-label", markup=False), *widgets, classes="field-row"
    )
    if widgets[0].id != "builtin":
        yield Static("", id=f"error-{widgets[0].id}", classes="field-error", markup=False)


def _name_hint(method: str) -> str:
    """ "default: multiprocessing's (SpawnProcess-N)": the name a child started with
    `method` gets when none is given."""
    # Each start method's context has its Process class; typeshed's BaseContext does not.
    kind = multiprocessing.get_context(method).Process.__name__  # type: ignore[attr-defined]
    return f"default: multiprocessing's ({kind}-N)"
