"""Small modal questions: confirm (y/n), prompt (one line of text, checked) and choose
(one of a list); and a refusal, said where no one reads stderr."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

QUESTION_COLUMNS = 80  # a question's lines at most, however wide the screen: read at a glance
BOX_EDGES = 8  # the dialog's border, padding and the space around it


def fit_question(screen: Screen[Any]) -> None:
    """A question no wider than the screen leaves room for, so that it wraps: as wide as
    its longest line, it was cut at 80 columns ("a join would" lost its "wait")."""
    width = max(20, min(QUESTION_COLUMNS, screen.size.width - BOX_EDGES))
    for question in screen.query(".question"):
        question.styles.max_width = width


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; y/Enter answers yes, n/Escape no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__(classes="dialog")
        self._question, self._yes, self._no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(self._question, classes="question", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(f"{self._yes} (y)", variant="error", id="yes")
                yield Button(f"{self._no} (n)", id="no")

    def on_mount(self) -> None:
        fit_question(self)
        self.query_one("#no", Button).focus()

    def on_resize(self) -> None:
        fit_question(self)

    @on(Button.Pressed, "#yes")
    def _yes_pressed(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def _no_pressed(self) -> None:
        self.dismiss(False)

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class PromptScreen(ModalScreen[str | None]):
    """One line of input. `check` returns an error message, or None if the text is fine;
    the dialog stays open, showing the error, until it is fine or cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        question: str,
        value: str = "",
        placeholder: str = "",
        check: Callable[[str], str | None] | None = None,
    ) -> None:
        super().__init__(classes="dialog")
        self._question, self._value, self._placeholder = question, value, placeholder
        self._check = check or (lambda _text: None)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self._question, classes="question", markup=False)
            yield Input(self._value, placeholder=self._placeholder, id="answer")
            yield Static("", classes="error", id="error", markup=False)
            yield Static("Enter: OK   Escape: cancel", classes="hint", markup=False)

    def on_mount(self) -> None:
        fit_question(self)

    def on_resize(self) -> None:
        fit_question(self)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        error = self._check(event.value)
        if error:
            self.query_one("#error", Static).update(error)
            return
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceScreen(ModalScreen[str | None]):
    """One of a list (htop's F6 menu): arrows and Enter, or type the start of a label."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, choices: list[tuple[str, str]], current: str) -> None:
        super().__init__(classes="dialog")
        self._question, self._choices, self._current = question, choices, current
        self._typed = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box", id="choice-box"):
            yield Label(self._question, classes="question", markup=False)
            yield OptionList(*(Option(Content(label), id=value) for label, value in self._choices))
            yield Static(
                "Enter: choose   type: find   Escape: cancel", classes="hint", markup=False
            )

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = next(
            (i for i, (_label, value) in enumerate(self._choices) if value == self._current), 0
        )
        options.focus()

    def on_key(self, event: events.Key) -> None:
        if not (event.character and event.character.isprintable()):
            return
        typed = (self._typed + event.character).lower()
        found = next(
            (i for i, (label, _v) in enumerate(self._choices) if label.lower().startswith(typed)),
            None,
        )
        if found is not None:
            self._typed = typed
            self.query_one(OptionList).highlighted = found
        event.stop()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class RefusalScreen(ModalScreen[None]):
    """Why what was asked for cannot be shown, in a browser tab under `proclab web`, whose
    user never sees the one line on stderr (the tab had stayed blank). Any of its keys
    closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter,escape,q", "close", "Close")]

    def __init__(self, reason: str) -> None:
        super().__init__(classes="dialog")
        self._reason = reason

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(self._reason, classes="question error", markup=False)
            yield Static("Enter, Esc or q ends this session.", classes="question hint")

    def action_close(self) -> None:
        self.dismiss(None)
