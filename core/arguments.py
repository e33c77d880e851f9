"""args and kwargs: Python literals typed by a person, parsed without running anything."""

from __future__ import annotations

import ast
import inspect
import pickle
from collections.abc import Mapping

from proclab.core.errors import InputError, did_you_mean

# A literal longer than this is almost certainly a paste accident; refusing it keeps the
# parser's time and memory small whatever is typed.
MAX_LITERAL_CHARS = 100_000


def parse_literal(text: str, field: str) -> object:
    """`ast.literal_eval`, with every way it can fail turned into one InputError."""
    if len(text) > MAX_LITERAL_CHARS:
        raise InputError(field, f"longer than {MAX_LITERAL_CHARS:,} characters")
    try:
        return ast.literal_eval(text.strip())
    except SyntaxError as exc:
        raise InputError(field, f"not a Python literal ({exc.msg})") from None
    except (ValueError, TypeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(field, f"not a Python literal ({detail})") from None
    except (RecursionError, MemoryError):
        raise InputError(field, "nested too deeply to read") from None


def parse_args(text: str) -> tuple[object, ...]:
    if not text.strip():
        return ()
    value = parse_literal(text, "args")
    if isinstance(value, tuple):
        return value
    if isinstance(value, list):
        return tuple(value)
    hint = f" (for one argument write ({text.strip()},))" if not isinstance(value, dict) else ""
    raise InputError("args", f"must be a tuple or list, got {type(value).__name__}{hint}")


def parse_kwargs(text: str) -> dict[str, object]:
    if not text.strip():
        return {}
    value = parse_literal(text, "kwargs")
    if not isinstance(value, dict):
        raise InputError(
            "kwargs", f"must be a dict like {{'name': 'jerry'}}, got {type(value).__name__}"
        )
    check_kwargs_keys(value)
    return value


def check_kwargs_keys(kwargs: Mapping[object, object]) -> None:
    for key in kwargs:
        if not isinstance(key, str):
            raise InputError("kwargs", f"keys must be strings, got {key!r}")


def check_call(
    signature: inspect.Signature | None,
    function: str,
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
) -> None:
    """Bind the call to the signature the way Python would when the child calls it."""
    if signature is None:
        return
    params = signature.parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        # A misspelled keyword is the kwargs' fault, whatever else is missing.
        named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        for key in kwargs:
            if key not in named:
                raise InputError(
                    "kwargs",
                    f"{function}{signature}: got an unexpected keyword argument {key!r}"
                    + did_you_mean(key, named),
                )
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        message = str(exc)
        field = "kwargs" if "keyword" in message else "args"
        raise InputError(field, f"{function}{signature}: {message}") from None


def check_crossable(args: tuple[object, ...], kwargs: Mapping[str, object], method: str) -> None:
    """spawn and forkserver pickle the call to send it to the child; fork copies memory."""
    if method == "fork":
        return
    for field, value in (("args", args), ("kwargs", dict(kwargs))):
        try:
            pickle.dumps(value)
        except Exception as exc:
            raise InputError(
                field,
                f"cannot be sent to a {method} child ({type(exc).__name__}: {exc});"
                " use plain values or the fork method",
            ) from None
