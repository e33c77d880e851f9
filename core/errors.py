"""Errors a person can act on: each names what was wrong and, where it helps, what to do."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable

from proclab.core.output import escape_controls


class ProclabError(Exception):
    """An error shown to a person as one line, never as a traceback. What it quotes of
    what was typed, read or received is shown escaped, wherever it is shown: a terminal
    acts on none of it (an escape sequence in --args once cleared the screen it was
    reported on)."""

    def __str__(self) -> str:
        return escape_controls(super().__str__(), tabs=True)


class InputError(ProclabError):
    """A field of a spawn request (target, args, kwargs, name, ...) is wrong.

    Nothing has been started when this is raised.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = escape_controls(message, tabs=True)  # shown beside its field


class SpawnRefused(ProclabError):
    """The request was valid, but starting it would break a limit (e.g. --max-procs)."""


class UnknownProcess(ProclabError):
    """A command named a process record that does not exist (or was cleared)."""


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """ " (did you mean 'task'?)" when one known word is close to `word`, else ""."""
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def clipped(text: str, limit: int = 40) -> str:
    """What was typed, quoted in a one-line error at most `limit` characters long: a
    100,000-character burst made a 100 KB line."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def past_digit_limit(exc: BaseException) -> str | None:
    """Python's refusal of an integer written with too many digits, in words a person can
    act on: its own asks for a call of sys.set_int_max_str_digits()."""
    if "integer string conversion" not in str(exc):
        return None
    return f"an integer of more than {sys.get_int_max_str_digits():,} digits (Python's limit)"


class AlreadyPending(ProclabError):
    """The command was asked for before and is still under way (a restart waiting for its
    child to end): said so, and nothing more is done."""
