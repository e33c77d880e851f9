"""Children's output: lines from a byte stream, tracebacks from stderr."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proclab.core.output import (
    MAX_LINE_BYTES,
    MAX_TRACEBACK_LINES,
    LineSplitter,
    TracebackCollector,
)


def test_multibyte_character_split_across_reads():
    splitter = LineSplitter()
    data = "héllo wörld ✓\n".encode()
    assert splitter.feed(data[:2]) == []
    assert splitter.feed(data[2:9]) == []
    assert splitter.feed(data[9:]) == ["héllo wörld ✓"]


def test_crlf_and_invalid_utf8():
    splitter = LineSplitter()
    assert splitter.feed(b"dos line\r\n\xff\xfe bytes\npartial") == [
        "dos line",
        "\ufffd\ufffd bytes",
    ]
    assert splitter.flush() == ["partial"]
    assert splitter.flush() == []


def test_a_line_without_newline_is_cut_in_bounded_pieces():
    splitter = LineSplitter()
    pieces = splitter.feed(("é" * MAX_LINE_BYTES).encode())
    assert pieces and all(len(p.encode()) <= MAX_LINE_BYTES for p in pieces)
    assert "".join(pieces + splitter.flush()) == "é" * MAX_LINE_BYTES


@given(st.lists(st.integers(0, 3 * MAX_LINE_BYTES), min_size=1, max_size=4), st.data())
def test_the_pieces_of_long_lines_join_back_into_the_lines_printed(
    lengths: list[int], data: st.DataObject
) -> None:
    """Each piece that goes on from the one before says so (`continuing`): joined on
    that, the pieces are the lines printed, however the reads cut the stream; and none
    is past the limit (a long line whose newline came in the same read came whole)."""
    printed = [chr(ord("a") + i) * n for i, n in enumerate(lengths)]
    stream = "".join(line + "\n" for line in printed).encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    splitter = LineSplitter()
    joined: list[str] = []
    reads = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    for read in [*reads, None]:
        pieces = splitter.flush() if read is None else splitter.feed(read)
        assert all(len(piece.encode()) <= MAX_LINE_BYTES for piece in pieces)
        for i, piece in enumerate(pieces):
            if i in splitter.continuing:
                joined[-1] += piece
            else:
                joined.append(piece)
    assert joined == printed


def test_the_last_piece_of_a_line_without_its_newline_goes_on_too() -> None:
    splitter = LineSplitter()
    assert len(splitter.feed(b"y" * (MAX_LINE_BYTES + 3))) == 1
    assert splitter.continuing == ()
    assert splitter.flush() == ["yyy"] and splitter.continuing == (0,)
    assert splitter.feed(b"new\n") == ["new"] and splitter.continuing == ()


@given(
    st.lists(
        st.text(
            alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)),
            max_size=20,
        ),
        max_size=10,
    ),
    st.data(),
)
def test_any_chunking_gives_the_same_lines(lines, data):
    blob = "".join(line + "\n" for line in lines).encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=8)))
    splitter = LineSplitter()
    out = []
    for a, b in zip([0, *cuts], [*cuts, len(blob)], strict=True):
        out += splitter.feed(blob[a:b])
    assert out + splitter.flush() == lines


def test_traceback_collector_keeps_the_last_one():
    collector = TracebackCollector()
    text = [
        "Process ForkProcess-1:",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "    1 / 0",
        "    ~~^~~",
        "ZeroDivisionError: division by zero",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "x.py", line 3, in <module>',
        "ValueError: bad",
    ]
    done = [collector.feed(line) for line in text]
    assert done.count(True) == 2
    assert collector.error == "ValueError: bad"
    assert (
        collector.traceback[0].startswith("Traceback")
        and collector.traceback[-1] == "ValueError: bad"
    )


def test_a_traceback_past_the_cap_still_ends_with_its_exception():
    """A RecursionError's thousand frames: the lines past the cap are left out, but not
    the exception line that ends it (what tells its error from proclab's own words)."""
    collector = TracebackCollector()
    frames = ['  File "x.py", line 2, in f', "    return f()"] * 600
    for line in ["Traceback (most recent call last):", *frames]:
        collector.feed(line)
    assert collector.feed("RecursionError: maximum recursion depth exceeded")
    assert collector.traceback[-1] == "RecursionError: maximum recursion depth exceeded"
    assert len(collector.traceback) == MAX_TRACEBACK_LINES + 1


def test_an_exception_whose_message_begins_with_a_newline_is_told_with_its_message():
    """`raise RuntimeError("\\nthe disk is full")` prints "RuntimeError: " and the message
    on the next line: the row's error read "RuntimeError: " alone."""
    collector = TracebackCollector()
    text = [
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "RuntimeError: ",
        "the disk is full",
        "after it",
    ]
    done = [collector.feed(line) for line in text]
    assert done == [False, False, True, True, False]
    assert collector.error == "RuntimeError: the disk is full"
    assert collector.traceback[-1] == "the disk is full"
    # a message that ends with a colon is whole: the next line is not its
    ending = TracebackCollector()
    done = [ending.feed(line) for line in [*text[:2], "ValueError: one of:", "unrelated"]]
    assert done == [False, False, True, False] and ending.error == "ValueError: one of:"


def test_escape_controls_shows_what_a_terminal_would_act_on():
    from proclab.core.output import escape_controls

    hostile = "\x1b]0;TITLE\x07\x1b[2J\x1b[5;5Hafter\x9b2J\r\x08\x7f\u202eevil\u2028"
    shown = escape_controls(hostile)
    assert shown == (
        "\\x1b]0;TITLE\\x07\\x1b[2J\\x1b[5;5Hafter\\x9b2J\\r\\x08\\x7f\\u202eevil\\u2028"
    )
    assert shown.isprintable()
    # what is only text stays as it is: accents, wide characters, emoji, tabs
    plain = "héllo wörld ✓ 日本 👍\tcolumn"
    assert escape_controls(plain) == plain
    assert escape_controls("a\tb", tabs=True) == "a\\tb"
    # a byte that is not UTF-8 in a file name, as Python decodes it: no terminal takes it
    assert escape_controls(os.fsdecode(b"\xffx.py")) == "\\udcffx.py"
    # the bidirectional marks and what shows nothing (a tester: U+202E was escaped, U+200F,
    # U+061C, U+200B, U+FEFF and a tag went through), but the joiners emoji need
    unseen = "a\u200fb\u061cc\u200bd\ufeffe\U000e0041f"
    assert escape_controls(unseen) == "a\\u200fb\\u061cc\\u200bd\\ufeffe\\U000e0041f"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert escape_controls(family) == family


# Every character, lone surrogates included (which st.text() leaves out by default).
@given(st.text(st.characters(exclude_categories=())))
def test_escaped_text_never_holds_a_control(text):
    from proclab.core.output import escape_controls

    shown = escape_controls(text, tabs=True)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)
    shown.encode()  # nothing a terminal cannot be sent (a lone surrogate)


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
@pytest.mark.parametrize("continues", [False, True])
@pytest.mark.parametrize("after_end", [False, True])
def test_the_pane_s_quick_width_is_the_line_s_own(stream, continues, after_end) -> None:
    """The cells counted for how far the pane scrolls sideways, without making the line,
    left out the ↳ of a line read after its child's end: the widest line's last two
    characters could not be scrolled into view (a reviewer's)."""
    from rich.cells import cell_len

    from proclab.core.model import OutputLine
    from proclab.tui.widgets.output_log import OutputLog

    line = OutputLine(3, 4242, "Process-1", stream, "x" * 50, 0.0, continues, after_end)
    assert OutputLog._width(line) == cell_len(OutputLog._text(line)[0])
