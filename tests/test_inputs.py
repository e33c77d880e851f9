"""Bad input: one clear error naming the field, and nothing started, ever."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import TASKS

from proclab.core.arguments import parse_args, parse_kwargs
from proclab.core.cpus import format_cpu_list, parse_cpu_list
from proclab.core.errors import InputError
from proclab.core.spec import build_spec
from proclab.tui.widgets.process_table import natural


@pytest.fixture
def lesson_dir(tmp_path: Path) -> Path:
    (tmp_path / "good.py").write_text(
        "print('top level code ran')\n"
        "open('top-level-ran', 'w').close()\n"
        "def task(name, age, gender):\n    print(name, age, gender)\n"
        "CONSTANT = 42\n"
        "async def coro():\n    pass\n"
        "def flexible(*args, **kwargs):\n    pass\n"
        # a generator runs none of its body when called; one whose inner function yields
        # is a plain function
        "def gen():\n    yield 1\n"
        "async def agen():\n    yield 1\n"
        "def outer():\n    def inner():\n        yield 1\n    return list(inner())\n"
        # a decorator may make a generator function a plain one (it drains it)
        "def drained(f):\n    return lambda *a: list(f(*a))\n"
        "@drained\ndef produced():\n    yield 1\n"
    )
    (tmp_path / "broken.py").write_text("def task(:\n    pass\n")
    (tmp_path / "deep.py").write_text("x = " + "-" * 100_000 + "1\ndef task():\n    pass\n")
    # 1 MB and a byte of `x=1` lines: read whole and parsed, 12 MB of them took 7.3 GB
    (tmp_path / "huge.py").write_text("x=1\n" * 250_000 + "#")
    return tmp_path


BAD = [
    # (target, args, kwargs, field, words in the message)
    ("no.such.module:f", "", "", "target", "no module named 'no'"),
    ("nosuchmodule:f", "", "", "target", "no module named 'nosuchmodule' (looked in"),
    ("missing.py:task", "", "", "target", "no file 'missing.py'"),
    ("broken.py:task", "", "", "target", "syntax error in broken.py line 1"),
    # the parser's MemoryError says nothing: "cannot parse deep.py: " was all
    ("deep.py:task", "", "", "target", "cannot parse deep.py: nested too deep"),
    ("good.py:nope", "", "", "target", "no function 'nope' in good.py"),
    ("good.py:CONSTANT", "", "", "target", "is a value, not a function"),
    ("good.py:coro", "", "", "target", "async function"),
    ("good.py:gen", "", "", "target", "generator function (it yields): calling it runs none"),
    ("good.py:agen", "", "", "target", "generator function"),
    ("difflib:unified_diff", "([], [])", "", "target", "generator function"),
    ("math:pi", "", "", "target", "is a float, not a function"),
    (f"{TASKS}:nope", "", "", "target", "no function 'nope'"),
    ("good.py", "", "", "target", "no ':function' part"),
    (":task", "", "", "target", "names no module or file"),  # it said "no ':function' part"
    ("good.py:2bad", "", "", "target", "not a Python function name"),
    ("", "", "", "target", "empty"),
    (f"{TASKS}:sleep", "(1,", "", "args", "not a Python literal"),
    (f"{TASKS}:sleep", "__import__('os')", "", "args", "is a call, not a literal"),
    # Python's own words asked for a call of sys.set_int_max_str_digits()
    (f"{TASKS}:sleep", f"({'9' * 5000},)", "", "args", "an integer of more than 4,300 digits"),
    (f"{TASKS}:sleep", "", f"{{'x': {'9' * 5000}}}", "kwargs", "more than 4,300 digits"),
    # Read in hex, it is under the limit; shown in decimal (the table, the details, a
    # recording), it was past it, and the app crashed as it drew the details.
    (f"{TASKS}:sleep", f"(0x{'f' * 3600},)", "", "args", "an integer of more than 4,300 digits"),
    (f"{TASKS}:sleep", "", f"{{'x': [0b{'1' * 14400}]}}", "kwargs", "more than 4,300 digits"),
    (
        f"{TASKS}:sleep",
        "1",
        "",
        "args",
        "must be a tuple or list, got int (for one argument write (1,))",
    ),
    (f"{TASKS}:sleep", "{'a': 1}", "", "args", "must be a tuple or list, got dict"),
    (f"{TASKS}:sleep", "", "[1]", "kwargs", "must be a dict"),
    (f"{TASKS}:sleep", "", "{1: 2}", "kwargs", "keys must be strings"),
    (f"{TASKS}:sleep", "", "{'x': open}", "kwargs", "open is a name, not a literal"),
    ("good.py:task", "", "{'name': 'jerry'}", "args", "missing a required argument: 'age'"),
    ("good.py:task", "(1, 2, 3, 4)", "", "args", "too many positional arguments"),
    (
        "good.py:task",
        "",
        "{'name': 'j', 'age': 1, 'gender': 'm', 'colour': 'red'}",
        "kwargs",
        "unexpected keyword argument 'colour'",
    ),
    (f"{TASKS}:greet", "", "{'name': 'jerry'}", "args", "missing a required argument: 'age'"),
    ("os:getpid", "(1,)", "", "args", "too many positional arguments"),
]


@pytest.mark.parametrize(("target", "args", "kwargs", "field", "words"), BAD)
def test_bad_input_names_the_field_and_starts_nothing(
    controller, lesson_dir, target, args, kwargs, field, words
):
    with pytest.raises(InputError) as info:
        build_spec(target, args, kwargs, cwd=str(lesson_dir))
    assert info.value.field == field
    assert words in str(info.value)
    assert "\n" not in str(info.value)
    assert controller.rows() == ()
    assert not (lesson_dir / "top-level-ran").exists(), "checking a file target ran its code"


def test_good_file_target_is_checked_without_running_it(lesson_dir):
    spec = build_spec("good.py:task", "('jerry', 20, 'male')", cwd=str(lesson_dir))
    assert spec.target.kind == "file" and spec.target.location == str(lesson_dir / "good.py")
    assert build_spec("good.py:flexible", "(1, 2)", "{'x': 1}", cwd=str(lesson_dir))
    assert build_spec("good.py:outer", cwd=str(lesson_dir))  # only its inner function yields
    assert build_spec("good.py:produced", cwd=str(lesson_dir))  # its decorator drains it
    assert not (lesson_dir / "top-level-ran").exists()


RAN = "open(__import__('os').path.join(__import__('os').path.dirname(__file__), 'ran'), 'w')\n"


def test_a_module_target_s_package_is_not_imported_to_check_it(tmp_path: Path) -> None:
    """importlib's find_spec imports a dotted name's packages: a package's __init__.py ran
    inside proclab (it wrote a file; one that slept froze the app)."""
    package = tmp_path / "pkg"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text(RAN)
    (package / "inner" / "__init__.py").write_text(RAN)
    (package / "inner" / "sub.py").write_text(RAN + "def f(a):\n    pass\n")
    assert build_spec("pkg.inner.sub:f", "(1,)", cwd=str(tmp_path))
    with pytest.raises(InputError, match=r"f\(a\): too many positional arguments"):
        build_spec("pkg.inner.sub:f", "(1, 2)", cwd=str(tmp_path))
    with pytest.raises(InputError, match=r"no module named 'pkg\.inner\.nosuch'"):
        build_spec("pkg.inner.nosuch:f", "", cwd=str(tmp_path))
    with pytest.raises(InputError, match=r"'pkg\.inner\.sub' is not a package"):
        build_spec("pkg.inner.sub.deeper:f", "", cwd=str(tmp_path))
    assert not list(tmp_path.rglob("ran")), "a package's __init__.py ran inside proclab"
    # A package that moves its modules elsewhere (pkgutil.extend_path): only importing it
    # would tell, so the call is left to the child.
    (package / "__init__.py").write_text(RAN + "__path__ = list(__path__)\n")
    assert build_spec("pkg.elsewhere:f", "", cwd=str(tmp_path))
    assert not list(tmp_path.rglob("ran"))


def test_a_compiled_module_not_python_s_own_is_not_imported_to_check_it(tmp_path: Path) -> None:
    """Only a module without source that is the interpreter's own (built in, or compiled in
    its standard library) is imported to check the call: any other runs its code."""
    import compileall

    (tmp_path / "binary.py").write_text(RAN + "def f():\n    pass\n")
    compileall.compile_file(str(tmp_path / "binary.py"), legacy=True, quiet=1)
    (tmp_path / "binary.py").unlink()  # binary.pyc alone, beside where the child looks
    assert build_spec("binary:f", "(1, 2, 3)", cwd=str(tmp_path))  # not checked: left
    assert not (tmp_path / "ran").exists()
    with pytest.raises(InputError, match=r"sqrt\(x, /\): too many positional arguments"):
        build_spec("math:sqrt", "(1, 2)", cwd=str(tmp_path))  # Python's own: checked


def test_value_that_cannot_cross_to_a_spawn_child():
    lock_free = socket.socket()
    try:
        with pytest.raises(InputError, match="cannot be sent to a spawn child") as info:
            build_spec(f"{TASKS}:sleep", (lambda: 1,), method="spawn")
        assert info.value.field == "args"
        with pytest.raises(InputError, match="kwargs: cannot be sent to a forkserver child"):
            build_spec("builtins:print", (), {"file": lock_free}, method="forkserver")
        # fork copies memory: nothing needs pickling
        assert build_spec(f"{TASKS}:sleep", (lambda: 1,), method="fork")
    finally:
        lock_free.close()


def test_a_target_file_past_a_megabyte_is_not_parsed_to_check_the_call(lesson_dir) -> None:
    """A 12 MB file of `x=1` lines took 7.3 GB and 67 s of proclab's own before its one-line
    error; refusing such files stopped a generated module that ran before. Past 1 MB the
    call is not checked (the child's import says what is wrong): no function of the name
    in it is no error here."""
    import tracemalloc

    tracemalloc.start()
    try:
        spec = build_spec("huge.py:task", cwd=str(lesson_dir))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert spec.target.function == "task"
    assert peak < 20 * 2**20  # read, not parsed (a parse takes some 600 MB)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("method", "thread", "not one of fork, forkserver, spawn"),
        ("affinity", "0-", "not a CPU number"),
        ("affinity", "3-1", "runs backwards"),
        ("affinity", "9999", "not available here"),
        ("name", "a\nb", r"a control character that does not print \(U\+000A\)"),
        ("name", "a\u00a0b", r"contains a character that does not print \(U\+00A0\)"),
        # a name typed in Latin-1, as os.fsdecode gives it: it was "control characters"
        ("name", "caf\udce9", r"is not UTF-8 \(it holds the byte \\xe9\)"),
        ("name", "x" * 201, "longer than 200"),
    ],
)
def test_bad_options(field, value, words):
    with pytest.raises(InputError, match=words) as info:
        build_spec(f"{TASKS}:sleep", "(1,)", **{field: value})
    assert info.value.field == field


@pytest.mark.parametrize(
    ("field", "text", "words"),
    [
        ("args", "(2**40,)", "2**40 is an expression, not a literal: write 1099511627776"),
        ("kwargs", "{'name': alice}", "alice is a name, not a literal: quote it ('alice')"),
        ("args", "(-x,)", "x is a name, not a literal: quote it ('x')"),
        ("kwargs", "{'x': open}", "open is a name, not a literal"),
        ("args", "(2**10**10,)", "2**10**10 is an expression, not a literal: write its value"),
        ("args", "(1/0,)", "1/0 is an expression, not a literal: write its value"),
        ("args", "__import__('os')", "__import__('os') is a call, not a literal"),
        ("args", "(a.b,)", "a.b is an attribute, not a literal"),
        ("args", "([1][0],)", "[1][0] is an expression, not a literal"),
        ("args", "(*a,)", "*a is an unpacking, not a literal"),
        ("kwargs", "{**a}", "**a is an unpacking, not a literal"),
        ("args", "('a' + 'b',)", "'a' + 'b' is an expression, not a literal"),
        ("args", "(f'{x}',)", "f'{x}' is an f-string, not a literal"),
        ("args", "(" + "x" * 100 + ",)", "xxxxxxxxxxxx… is a name, not a literal"),
    ],
)
def test_a_non_literal_is_named_in_words(field, text, words):
    parse = parse_args if field == "args" else parse_kwargs
    with pytest.raises(InputError) as info:
        parse(text)
    message = str(info.value)
    assert info.value.field == field
    assert words in message
    assert "object at 0x" not in message and "\n" not in message
    assert len(message) < 160


def test_cpu_lists():
    cpus = sorted(os.sched_getaffinity(0))
    assert parse_cpu_list("") is None
    assert parse_cpu_list(f" {cpus[0]} ") == (cpus[0],)
    assert parse_cpu_list(",".join(map(str, cpus))) == tuple(cpus)
    assert format_cpu_list((0, 1, 2, 5, 7, 8)) == "0-2,5,7-8"


@pytest.mark.parametrize(
    "text", ["²", "0-²", "¹,0", "٠", "1٠", "9" * 5000, "0-" + "9" * 5000], ids=str.__len__
)
def test_a_digit_int_cannot_read_is_a_field_error(text: str) -> None:
    """`str.isdigit` says yes to "²", and `int` then raised a ValueError: a traceback
    from the form's affinity field and from `--affinity`; so did 5,000 nines (Python's
    digit limit). "٠" (Arabic-Indic zero) was read as CPU 0, and "1٠" as CPU 10."""
    with pytest.raises(InputError, match="is not a CPU number"):
        parse_cpu_list(text)


def test_names_with_digits_int_cannot_read_still_sort() -> None:
    """A process named "²" ended the app when the table was sorted by name."""
    assert sorted(["p10", "²", "p9", "p٣"], key=natural) == ["p٣", "p9", "p10", "²"]


# Properties: whatever is typed, the parser answers with a value or one InputError, and
# never runs it. ------------------------------------------------------------------------

SIDE_EFFECT = "/tmp/proclab-hypothesis-ran"

code_like = st.sampled_from(
    [
        f"__import__('pathlib').Path({SIDE_EFFECT!r}).touch()",
        f"open({SIDE_EFFECT!r}, 'w')",
        "exec('1')",
        "(lambda: 1)()",
        "[x for x in range(3)]",
        "{**{}}",
        "f'{1}'",
        "1 if True else 2",
        "a.b",
        "print",
    ]
)
literal_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
).map(repr)
typed = st.one_of(
    st.text(max_size=60),
    literal_like,
    code_like,
    st.builds(lambda a, b: f"({a}, {b})", literal_like, code_like),
    st.builds(lambda a, b: f"{{'k': {a}, 'j': {b}}}", literal_like, code_like),
    st.integers(1, 300).map(lambda n: "(" * n + ")" * n),
    st.integers(1, 3000).map(lambda n: "[" * n),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed)
def test_args_parser_never_raises_anything_else_and_never_runs_code(text):
    for parse, kind in ((parse_args, tuple), (parse_kwargs, dict)):
        try:
            value = parse(text)
        except InputError as exc:
            assert exc.field in ("args", "kwargs") and "\n" not in str(exc)
        else:
            assert isinstance(value, kind)
    assert not os.path.exists(SIDE_EFFECT)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), typed, typed)
def test_build_spec_never_raises_anything_else(target, args, kwargs):
    try:
        build_spec(target, args, kwargs)
    except InputError as exc:
        assert "\n" not in str(exc)
    assert not os.path.exists(SIDE_EFFECT)


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (
            ["run", f"{TASKS}:sleep", "--args", '(print("\x1b]0;PWN\x07\x1b[31mred"),)'],
            'args: print("\\x1b]0;PWN\\x07\\x1b[31mred") is a call, not a literal',
        ),
        (["serve", "--public", "--host", "\x1b[2J"], "host: \\x1b[2J is not a host name"),
    ],
)
def test_an_error_quoting_typed_text_shows_its_controls_escaped(argv, shown, capsys):
    """Typed text quoted in an error reaches the terminal as text: its escape sequences
    (a title, a colour, clear the screen) written out, and the error still one line."""
    from proclab.tui.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert shown in err
    assert "\x1b" not in err and "\x07" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_call_error_quotes_a_long_signature_cut_to_one_line(tmp_path: Path) -> None:
    """A function of 100,000 parameters called wrongly gave an error of 788,926
    characters, which filled the spawn form and hid its other fields and buttons."""
    params = ", ".join(f"a{i}" for i in range(5000))
    (tmp_path / "many.py").write_text(f"def f({params}):\n    pass\n")
    with pytest.raises(InputError) as info:
        build_spec("many.py:f", "()", cwd=str(tmp_path))
    said = str(info.value)
    assert info.value.field == "args" and len(said) < 300, len(said)
    assert said.startswith("args: f(a0, a1") and "…" in said
    assert said.endswith("missing a required argument: 'a0'")
