"""Turn what a person typed (or a program passed) into a checked ProcessSpec.

This is the single gate every spawn request passes: the form, `proclab run`, `proclab
TARGET` and the experiments all call `build_spec`, and nothing starts unless it returns.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

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
    cwd = os.path.abspath(cwd or os.getcwd())
    method = check_method(method or DEFAULT_METHOD)
    parsed_target = parse_target(target, cwd)
    call_args = parse_args(args) if isinstance(args, str) else tuple(args)
    if kwargs is None:
        call_kwargs: dict[str, object] = {}
    elif isinstance(kwargs, str):
        call_kwargs = parse_kwargs(kwargs)
    else:
        check_kwargs_keys(kwargs)
        call_kwargs = dict(kwargs)
    cpus = (
        parse_cpu_list(affinity)
        if isinstance(affinity, str)
        else (check_cpus(tuple(affinity)) if affinity is not None else None)
    )
    name = check_name(name)
    signature = signature_of(parsed_target, cwd)
    check_call(signature, parsed_target.function, call_args, call_kwargs)
    check_crossable(call_args, call_kwargs, method)
    return ProcessSpec(
        target=parsed_target,
        args=call_args,
        kwargs=call_kwargs,
        name=name,
        daemon=bool(daemon),
        method=method,  # type: ignore[arg-type]
        affinity=cpus,
        cwd=cwd,
    )


def check_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = name.strip()
    if not name:
        return None
    if len(name) > MAX_NAME_CHARS:
        raise InputError("name", f"longer than {MAX_NAME_CHARS} characters")
    if not name.isprintable():
        raise InputError("name", "contains control characters")
    return name
