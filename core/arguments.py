"""args and kwargs: Python literals typed by a person, parsed without running anything."""

from __future__ import annotations

import ast
import inspect
import operator
import pickle
from collections.abc import Callable, Mapping
from typing import Any

from proclab.core.errors import InputError, clipped, did_you_mean, past_digit_limit

# A literal longer than this is almost certainly a paste accident; refusing it keeps the
# parser's time and memory small whatever is typed.
MAX_LITERAL_CHARS = 100_000


def parse_literal(text: str, field: str) -> object:
    """`ast.literal_eval`, with every way it can fail turned into one InputError."""
    if len(text) > MAX_LITERAL_CHARS:
        raise InputError(field, f"longer than {MAX_LITERAL_CHARS:,} characters")
    try:
        value = ast.literal_eval(text.strip())
        # Shown in decimal (the table, the details, a recording): an integer written in hex
        # or binary reads under Python's digit limit and may be past it in decimal, and
        # its repr() then raised wherever it was first drawn.
        repr(value)
        return value
    except SyntaxError as exc:
        said = past_digit_limit(exc)
        raise InputError(field, said or f"not a Python literal ({exc.msg})") from None
    except (ValueError, TypeError) as exc:
        said = past_digit_limit(exc) or _not_literal(text.strip())
        if said is not None:
            raise InputError(field, said) from None
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(field, f"not a Python literal ({detail})") from None
    except (RecursionError, MemoryError):
        raise InputError(field, "nested too deeply to read") from None


# What literal_eval refuses, in words, by the kind of the first node it cannot take.
_KINDS: dict[type[ast.AST], str] = {
    ast.Name: "a name",
    ast.Call: "a call",
    ast.Attribute: "an attribute",
    ast.Starred: "an unpacking",
    ast.JoinedStr: "an f-string",
    ast.Lambda: "a function",
}
SHOWN_CHARS = 40
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
MAX_RESULT_BITS = 256  # 2**40 is worked out for the person; 2**10**10 is not


def _not_literal(text: str) -> str | None:
    """What in `text` is not a literal, said in words: "alice is a name, not a literal:
    quote it ('alice')" (literal_eval's own message is the rejected node's repr)."""
    try:
        node = _first_non_literal(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if node is None:
        return None
    if isinstance(node, ast.Dict):  # {**a}: an unpacking has no key
        index = node.keys.index(None)
        shown = "**" + (ast.get_source_segment(text, node.values[index]) or "")
        return f"{_cut(shown)} is an unpacking, not a literal"
    shown = _cut(ast.get_source_segment(text, node) or type(node).__name__)
    if isinstance(node, ast.Name):
        example = f" ({node.id!r})" if len(node.id) < SHOWN_CHARS else ""
        return f"{shown} is a name, not a literal: quote it{example}"
    kind = _KINDS.get(type(node))
    if kind is not None:
        return f"{shown} is {kind}, not a literal"
    value = _arithmetic(node)
    if value is not None and len(repr(value)) <= SHOWN_CHARS:
        return f"{shown} is an expression, not a literal: write {value!r}"
    if value is not None or _numeric(node):
        return f"{shown} is an expression, not a literal: write its value"
    return f"{shown} is an expression, not a literal"


def _first_non_literal(node: ast.AST) -> ast.AST | None:
    """The first node ast.literal_eval would refuse (its own rules, walked in order)."""
    if isinstance(node, ast.Constant):
        return None
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return next(filter(None, map(_first_non_literal, node.elts)), None)
    if isinstance(node, ast.Dict):
        if None in node.keys:
            return node
        parts = [p for pair in zip(node.keys, node.values, strict=True) for p in pair]
        return next(filter(None, map(_first_non_literal, parts)), None)  # type: ignore[arg-type]
    if isinstance(node, ast.Call) and ast.unparse(node) == "set()":
        return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        if isinstance(node.operand, ast.Constant):
            return None if _is_number(node.operand.value) else node
        return _first_non_literal(node.operand) if _leaf(node.operand) else node
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        right = node.right
        if isinstance(right, ast.Constant) and isinstance(right.value, complex):
            left = node.left
            if isinstance(left, ast.UnaryOp):
                left = left.operand
            if isinstance(left, ast.Constant) and _is_number(left.value):
                return None  # 1+2j
    return node


def _leaf(node: ast.AST) -> bool:
    """A node worth naming by itself rather than the expression around it."""
    return isinstance(node, tuple(_KINDS))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | complex) and not isinstance(value, bool)


def _numeric(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return _is_number(node.value)
    if isinstance(node, ast.UnaryOp):
        return _numeric(node.operand)
    if isinstance(node, ast.BinOp):
        return _numeric(node.left) and _numeric(node.right)
    return False


def _arithmetic(node: ast.AST) -> object:
    """The value of plain arithmetic on number literals, if small enough to show; None
    for anything else (nothing but + - * / // % ** on numbers is ever computed)."""
    if isinstance(node, ast.Constant):
        return node.value if _is_number(node.value) else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        value = _arithmetic(node.operand)
        if value is None:
            return None
        return -value if isinstance(node.op, ast.USub) else value  # type: ignore[operator]
    if not isinstance(node, ast.BinOp) or type(node.op) not in _ARITHMETIC:
        return None
    left, right = _arithmetic(node.left), _arithmetic(node.right)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Pow) and not _small_power(left, right):
        return None
    try:
        value = _ARITHMETIC[type(node.op)](left, right)
    except (ArithmeticError, ValueError, TypeError):
        return None
    if isinstance(value, int) and value.bit_length() > MAX_RESULT_BITS:
        return None
    return value


def _small_power(base: object, exponent: object) -> bool:
    if not isinstance(exponent, int) or not isinstance(base, int):
        return isinstance(exponent, int | float) and abs(exponent) <= MAX_RESULT_BITS
    return exponent <= 0 or abs(base) <= 1 or abs(base).bit_length() * exponent <= MAX_RESULT_BITS


def _cut(shown: str) -> str:
    return shown if len(shown) <= SHOWN_CHARS else shown[: SHOWN_CHARS - 1] + "…"


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


def check_kwargs_keys(kwargs: Mapping[Any, object]) -> None:
    for key in kwargs:
        if not isinstance(key, str):
            raise InputError("kwargs", f"keys must be strings, got {key!r}")


SIGNATURE_CHARS = 120  # of a signature or binding error quoted in an error


def check_call(
    signature: inspect.Signature | None,
    function: str,
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
) -> None:
    """Bind the call to the signature the way Python would when the child calls it."""
    if signature is None:
        return
    # A one-line error: a function of 100,000 parameters made one of 788,926 characters,
    # which filled the spawn form and hid its other fields.
    called = f"{function}{clipped(str(signature), SIGNATURE_CHARS)}"
    params = signature.parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        # A misspelled keyword is the kwargs' fault, whatever else is missing.
        named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        for key in kwargs:
            if key not in named:
                raise InputError(
                    "kwargs",
                    f"{called}: got an unexpected keyword argument {key!r}"
                    + did_you_mean(key, named),
                )
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        message = str(exc)
        field = "kwargs" if "keyword" in message else "args"
        raise InputError(field, f"{called}: {clipped(message, SIGNATURE_CHARS)}") from None


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
