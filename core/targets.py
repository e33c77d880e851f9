"""What a child runs: `module:function` or `path/to/file.py:function`, parsed and checked.

Checking never runs the target's file: a learner's lesson file may print, sleep or start
processes at its top level, and none of that may happen inside proclab. Files (and modules
that are not imported yet and have Python source) are read with `ast`, and found without
importing their packages; only Python's own modules without source (built-in, or compiled
in its standard library) are imported to look at their function. Another compiled module
is not checked: its child's import says what is wrong.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from typing import Literal

from proclab.core.errors import InputError, did_you_mean

FIELD = "target"


@dataclass(frozen=True, slots=True)
class Target:
    kind: Literal["module", "file"]
    location: str  # a dotted module name, or an absolute path to a .py file
    function: str

    @property
    def label(self) -> str:
        where = os.path.basename(self.location) if self.kind == "file" else self.location
        return f"{where}:{self.function}"

    @property
    def text(self) -> str:
        return f"{self.location}:{self.function}"


def parse_target(text: str, cwd: str) -> Target:
    """Split `where:function` and say which kind of target it is; no import happens here."""
    text = text.strip()
    if not text:
        raise InputError(FIELD, "empty: give module:function or path/to/file.py:function")
    if "\x00" in text:
        raise InputError(FIELD, "contains a NUL character")
    where, sep, function = text.rpartition(":")
    if not sep:
        raise InputError(
            FIELD, f"{text!r} has no ':function' part: give module:function or file.py:function"
        )
    if not where:
        raise InputError(
            FIELD, f"{text!r} names no module or file: give module:function or file.py:function"
        )
    if not function.isidentifier():
        raise InputError(FIELD, f"{function!r} is not a Python function name")
    if where.endswith(".py") or os.sep in where or where.startswith("."):
        path = os.path.abspath(os.path.join(cwd, os.path.expanduser(where)))
        if not path.endswith(".py"):
            raise InputError(FIELD, f"{where!r} is not a .py file")
        if not os.path.exists(path):
            raise InputError(FIELD, f"no file {where!r} (looked in {cwd})")
        if not os.path.isfile(path):  # it is there: "no file" was untrue
            raise InputError(FIELD, f"{where!r} is not a file (a folder or a device)")
        return Target("file", path, function)
    if not all(part.isidentifier() for part in where.split(".")):
        raise InputError(FIELD, f"{where!r} is not a module name (or a path ending in .py)")
    local = os.path.join(cwd, where + ".py")
    if "." not in where and os.path.isfile(local):
        # The folder's own file, as `python -c "import queue"` run there finds it: by its
        # name, a module proclab (or a fork server) had imported already (queue, random,
        # json) was taken for it, checked against, and run under fork.
        return Target("file", os.path.abspath(local), function)
    return Target("module", where, function)


@contextmanager
def _path_with(folder: str) -> Iterator[None]:
    """Look up modules the way the child will: the working folder first on sys.path."""
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        # Another thread may have changed sys.path meanwhile: remove our entry, not index 0.
        with suppress(ValueError):
            sys.path.remove(folder)


# The signature check --------------------------------------------------------------------

_UNKNOWN = None  # the call cannot be checked without running code: allow it


def signature_of(target: Target, cwd: str) -> inspect.Signature | None:
    """The target's signature, or None when it cannot be known without running its code.

    Raises InputError when the target does not exist, does not parse, or is not callable.
    """
    if target.kind == "file":
        source = _read_source(target.location)
        if source is None:
            return _UNKNOWN
        return _signature_from_source(source, target, target.location)
    with _path_with(cwd):
        if target.location in sys.modules:
            return _signature_from_object(sys.modules[target.location], target)
        spec = _find_spec(target.location, cwd)
        if spec is None:
            return _UNKNOWN
        origin = spec.origin or ""
        if origin.endswith(".py") and os.path.isfile(origin):
            source = _read_source(origin)
            return _UNKNOWN if source is None else _signature_from_source(source, target, origin)
        if not _interpreters_own(spec):
            return _UNKNOWN  # compiled, and not Python's: importing it would run it
        try:
            module = importlib.import_module(target.location)
        except Exception as exc:
            raise InputError(
                FIELD, f"importing {target.location!r} failed: {_one_line(exc)}"
            ) from None
        return _signature_from_object(module, target)


def _find_spec(name: str, cwd: str) -> ModuleSpec | None:
    """Where module `name` is, found without importing anything: importlib's find_spec
    imports a dotted name's packages, and a package's __init__.py ran inside proclab (it
    slept, the app froze; it wrote a file). Each package is looked into by the folders its
    spec names. None: it cannot be known without running a package (its __init__.py
    changes where its modules are). Raises InputError when it is not there."""
    parts = name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name imports nothing
    except (ImportError, ValueError) as exc:
        raise InputError(FIELD, f"cannot find module {name!r}: {exc}") from None
    looked = f"(looked in {cwd} and Python's path)"
    if spec is None:
        raise InputError(FIELD, f"no module named {parts[0]!r} {looked}")
    for depth in range(1, len(parts)):
        package, module = ".".join(parts[:depth]), ".".join(parts[: depth + 1])
        if package in sys.modules:
            found = importlib.util.find_spec(module)  # its package is imported already
        elif spec.submodule_search_locations is None:
            raise InputError(FIELD, f"no module named {module!r}: {package!r} is not a package")
        else:
            found = importlib.machinery.PathFinder.find_spec(
                module, list(spec.submodule_search_locations)
            )
        if found is None:
            if _moves_its_modules(spec):
                return None
            raise InputError(FIELD, f"no module named {module!r} {looked}")
        spec = found
    return spec


def _moves_its_modules(package: ModuleSpec) -> bool:
    """Whether a package's __init__.py may put its modules elsewhere than its folder
    (pkgutil.extend_path and the like change __path__): then only importing it tells."""
    init = package.origin or ""
    if not init.endswith(".py"):
        return True
    try:
        with open(init, "rb") as f:
            return b"__path__" in f.read(MAX_SOURCE_BYTES)
    except OSError:
        return True


def _interpreters_own(spec: ModuleSpec) -> bool:
    """A module built into the interpreter, or compiled in its standard library (math,
    _json): importing it runs no one's code but Python's."""
    origin = spec.origin or ""
    if origin in ("built-in", "frozen"):
        return True
    paths = sysconfig.get_paths()
    return any(origin.startswith(os.path.join(paths[key], "")) for key in ("stdlib", "platstdlib"))


# The most of a target's file proclab reads to check the call; past it the call is not
# checked (the child's import says what is wrong). A parse holds some 600 bytes a byte of
# source: a 12 MB file of `x=1` lines took 7.3 GB and 67 s of proclab's own before its
# error. Python's own largest modules are a fifth of it.
MAX_SOURCE_BYTES = 1_000_000


def _read_source(path: str) -> str | None:
    """The file's text, or None past MAX_SOURCE_BYTES (refused, a generated module of
    1.1 MB that ran before could not be started)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        raise InputError(FIELD, f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_SOURCE_BYTES:
        return None  # not checked here: the child's import says what is wrong, if anything
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(FIELD, f"{path} is not UTF-8 text") from None


def _signature_from_object(module: object, target: Target) -> inspect.Signature | None:
    where = target.location
    if not hasattr(module, target.function):
        hint = did_you_mean(target.function, (n for n in dir(module) if not n.startswith("_")))
        raise InputError(FIELD, f"no function {target.function!r} in {where}{hint}")
    obj = getattr(module, target.function)
    if not callable(obj):
        raise InputError(
            FIELD, f"{where}:{target.function} is a {type(obj).__name__}, not a function"
        )
    if inspect.iscoroutinefunction(obj):
        raise InputError(FIELD, _ASYNC)
    if inspect.isgeneratorfunction(obj) or inspect.isasyncgenfunction(obj):
        raise InputError(FIELD, _GENERATOR)
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return _UNKNOWN


_ASYNC = "is an async function: give a plain function (e.g. def main(): asyncio.run(...))"
# Called, a generator function runs none of its body: the child ended 0 having done nothing.
_GENERATOR = (
    "is a generator function (it yields): calling it runs none of its body; give a plain"
    " function (e.g. def main(): for item in gen(): ...)"
)


def _signature_from_source(source: str, target: Target, path: str) -> inspect.Signature | None:
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" if exc.lineno else "somewhere"
        raise InputError(
            FIELD, f"syntax error in {os.path.basename(path)} {where}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        # The parser's MemoryError for nesting too deep (100,000 minus signs) says nothing
        # on 3.11, and "Parser stack overflowed" on 3.12: said alike on every version.
        deep = isinstance(exc, MemoryError | RecursionError)
        why = "nested too deep" if deep else str(exc) or type(exc).__name__
        raise InputError(FIELD, f"cannot parse {os.path.basename(path)}: {why}") from None
    binding: ast.AST | None = None
    star_import = False
    functions = []
    for node in _top_level(tree.body):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            star_import = True
        if _binds(node, target.function):
            binding = node
        if isinstance(node, ast.FunctionDef):
            functions.append(node.name)
    name = f"{os.path.basename(path)}:{target.function}"
    if binding is None:
        if star_import:
            return _UNKNOWN
        raise InputError(
            FIELD,
            f"no function {target.function!r} in {os.path.basename(path)}"
            + did_you_mean(target.function, functions),
        )
    if isinstance(binding, ast.AsyncFunctionDef):
        raise InputError(FIELD, f"{name} {_GENERATOR if _yields(binding) else _ASYNC}")
    if isinstance(binding, ast.FunctionDef):
        if binding.decorator_list:  # what it is then is the decorator's to say
            return _UNKNOWN
        if _yields(binding):
            raise InputError(FIELD, f"{name} {_GENERATOR}")
        return _signature_from_args(binding.args)
    value = getattr(binding, "value", None)
    if isinstance(value, ast.Constant | ast.JoinedStr | ast.List | ast.Dict | ast.Tuple | ast.Set):
        raise InputError(FIELD, f"{name} is a value, not a function")
    return _UNKNOWN


def _yields(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether a `yield` of its own (not of a function, class or lambda inside it) makes
    it a generator function."""
    inner = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
    nodes: list[ast.AST] = [*function.body]
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.Yield | ast.YieldFrom):
            return True
        if not isinstance(node, inner):
            nodes.extend(ast.iter_child_nodes(node))
    return False


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run at import time, in source order: the module body, and the bodies
    of the if/try/with blocks in it (not of functions or classes)."""
    for node in body:
        yield node
        if isinstance(node, ast.If | ast.With | ast.For | ast.While):
            yield from _top_level(node.body)
            yield from _top_level(getattr(node, "orelse", []))
        elif isinstance(node, ast.Try | ast.TryStar):
            yield from _top_level(node.body)
            for handler in node.handlers:
                yield from _top_level(handler.body)
            yield from _top_level(node.orelse)
            yield from _top_level(node.finalbody)


def _binds(node: ast.stmt, name: str) -> bool:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name == name
    if isinstance(node, ast.Import | ast.ImportFrom):
        return any((a.asname or a.name.split(".")[0]) == name for a in node.names)
    if isinstance(node, ast.Assign):
        return any(_names_in(t, name) for t in node.targets)
    if isinstance(node, ast.AnnAssign | ast.AugAssign):
        return node.value is not None and _names_in(node.target, name)
    return False


def _names_in(target: ast.expr, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(target))


class _Default:
    """Stands for a default value the checker does not evaluate."""

    def __repr__(self) -> str:
        return "..."


_DEFAULT = _Default()


def _signature_from_args(args: ast.arguments) -> inspect.Signature:
    P = inspect.Parameter
    params: list[inspect.Parameter] = []
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    for i, arg in enumerate(positional):
        kind = P.POSITIONAL_ONLY if i < len(args.posonlyargs) else P.POSITIONAL_OR_KEYWORD
        default = _DEFAULT if i >= first_default else P.empty
        params.append(P(arg.arg, kind, default=default))
    if args.vararg:
        params.append(P(args.vararg.arg, P.VAR_POSITIONAL))
    for arg, given in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append(P(arg.arg, P.KEYWORD_ONLY, default=P.empty if given is None else _DEFAULT))
    if args.kwarg:
        params.append(P(args.kwarg.arg, P.VAR_KEYWORD))
    return inspect.Signature(params)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
