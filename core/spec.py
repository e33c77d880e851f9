"""Turn what a person typed (or a program passed) into a checked ProcessSpec.

This is the single gate every spawn request passes: the form, `proclab run`, `proclab
TARGET` and the experiments all call `build_spec`, and nothing starts unless it returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TypeVar

from proclab.core.arguments import (
    check_call,
    check_crossable,
    check_kwargs_keys,
    parse_args,
    parse_kwargs,
)
from proclab.core.cpus import check_cpus, parse_cpu_list
from proclab.core.errors import InputError
from proclab.core.methods import DEFAULT_METHOD, check_method
from proclab.core.model import ProcessSpec
from proclab.core.targets import parse_target, signature_of

T = TypeVar("T")

MAX_NAME_CHARS = 200


def build_spec(
    target: str,
    args: str | tuple[object, ...] | list[object] = (),
    kwargs: str | Mapping[str, object] | None = None,
    *,
    name: str | None = None,
    daemon: bool = False,
    method: str | None = None,
    affinity: str | tuple[int, ...] | None = None,
    cwd: str | None = None,
) -> ProcessSpec:
    """Check every field; raise InputError naming the first wrong one."""
    spec, errors = check_spec(
        target, args, kwargs, name=name, daemon=daemon, method=method, affinity=affinity, cwd=cwd
    )
    if spec is None:
        raise errors[0]
    return spec


def check_spec(
    target: str,
    args: str | tuple[object, ...] | list[object] = (),
    kwargs: str | Mapping[str, object] | None = None,
    *,
    name: str | None = None,
    daemon: bool = False,
    method: str | None = None,
    affinity: str | tuple[int, ...] | None = None,
    cwd: str | None = None,
) -> tuple[ProcessSpec | None, list[InputError]]:
    """Check every field independently, so a form can show every error at once: the spec,
    or None and the errors in field order (the call is checked against the signature only
    once the target, args and kwargs are themselves right)."""
    cwd = os.path.abspath(cwd or os.getcwd())
    errors: list[InputError] = []

    def attempt(check: Callable[[], T]) -> T | None:
        try:
            return check()
        except InputError as exc:
            errors.append(exc)
            return None

    parsed_target = attempt(lambda: parse_target(target, cwd))
    call_args = attempt(lambda: parse_args(args) if isinstance(args, str) else tuple(args))
    call_kwargs = attempt(lambda: _kwargs(kwargs))
    the_method = attempt(lambda: check_method(method or DEFAULT_METHOD))
    cpus = attempt(lambda: _affinity(affinity))
    the_name = attempt(lambda: check_name(name))
    if parsed_target is not None:
        before = len(errors)
        signature = attempt(lambda: signature_of(parsed_target, cwd))
        if call_args is not None and call_kwargs is not None and len(errors) == before:
            attempt(lambda: check_call(signature, parsed_target.function, call_args, call_kwargs))
    if errors:
        return None, errors
    # Without errors, each check returned its value (only a name and affinity may be None).
    assert parsed_target is not None and the_method is not None
    assert call_args is not None and call_kwargs is not None
    attempt(lambda: check_crossable(call_args, call_kwargs, the_method))
    if errors:
        return None, errors
    return (
        ProcessSpec(
            target=parsed_target,
            args=call_args,
            kwargs=call_kwargs,
            name=the_name,
            daemon=bool(daemon),
            method=the_method,
            affinity=cpus,
            cwd=cwd,
        ),
        [],
    )


def _kwargs(kwargs: str | Mapping[str, object] | None) -> dict[str, object]:
    if kwargs is None:
        return {}
    if isinstance(kwargs, str):
        return parse_kwargs(kwargs)
    check_kwargs_keys(kwargs)
    return dict(kwargs)


def _affinity(affinity: str | tuple[int, ...] | None) -> tuple[int, ...] | None:
    if isinstance(affinity, str):
        return parse_cpu_list(affinity)
    return check_cpus(tuple(affinity)) if affinity is not None else None


def check_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = name.strip()
    if not name:
        return None
    if len(name) > MAX_NAME_CHARS:
        raise InputError("name", f"longer than {MAX_NAME_CHARS} characters")
    if not name.isprintable():
        bad = next(c for c in name if not c.isprintable())
        if "\udc80" <= bad <= "\udcff":  # a byte os.fsdecode could not decode
            # "contains control characters" said of a name with a Latin-1 é in it
            raise InputError("name", f"is not UTF-8 (it holds the byte \\x{ord(bad) - 0xDC00:02x})")
        import unicodedata  # only here: an error's words

        # isprintable() is False for a no-break space too: only C0 and C1 are controls
        what = "a control character" if unicodedata.category(bad) == "Cc" else "a character"
        raise InputError("name", f"contains {what} that does not print (U+{ord(bad):04X})")
    return name
