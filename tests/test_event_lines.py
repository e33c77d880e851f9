"""A handler's event lines, written by hand (core/server/event_lines.py), read back by the
server with json.loads: whatever a client sent or a system call said, the record read is
the record written, on one line."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from proclab.core.server.event_lines import (
    DATA_LINE,
    accepted_line,
    data_line,
    disconnected_line,
    event_line,
)
from proclab.core.server.tcp import _records

texts = st.text(alphabet=st.characters(codec=None))  # any code point, lone surrogates too
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
fields = st.dictionaries(
    st.from_regex(r"[a-z_]{1,12}", fullmatch=True).filter(lambda name: name != "kind"),
    st.one_of(scalars, st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=5)),
    max_size=8,
)


@given(kind=texts, record=fields)
def test_every_line_reads_back_as_the_record_written(kind: str, record: dict) -> None:
    line = event_line(kind, record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # one line, whatever it carries
    assert line.isascii()
    assert json.loads(line) == {"kind": kind, **record}


@given(records=st.lists(st.tuples(texts, fields), max_size=12))
def test_a_whole_read_reads_back_as_the_records_written(records: list) -> None:
    """The server parses a read's lines in one json.loads: the same records, in order."""
    lines = [event_line(kind, record).rstrip(b"\n") for kind, record in records]
    assert _records(lines) == [{"kind": kind, **record} for kind, record in records]


finite = st.floats(allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=0, max_value=2**63)


@given(client=texts, pid=counts, when=finite, duration=finite, ins=counts, outs=counts, why=texts)
def test_a_connections_lines_are_the_general_lines(
    client: str, pid: int, when: float, duration: float, ins: int, outs: int, why: str
) -> None:
    """The two lines every connection makes, from their templates, are byte for byte the
    lines event_line makes of the same fields, whatever text they carry."""
    assert accepted_line(client, pid, when) == event_line(
        "accepted", {"client": client, "pid": pid, "time": when}
    )
    fields = {"client": client, "pid": pid, "time": when, "duration": duration}
    fields.update(bytes_in=ins, bytes_out=outs, reason=why)
    line = disconnected_line(client, pid, when, duration, ins, outs, why)
    assert line == event_line("disconnected", fields)
    assert json.loads(line) == {"kind": "disconnected", **fields}
    fields.update(left_out=ins + 1, over_rate=outs)  # a handler's count rides on it
    line = disconnected_line(client, pid, when, duration, ins, outs, why, ins + 1, outs)
    assert line == event_line("disconnected", fields)


@given(
    kind=st.sampled_from(["data_in", "data_out"]),
    client=texts,
    pid=counts,
    when=finite,
    nbytes=counts,
    data=st.binary(max_size=32),
)
def test_a_chunks_line_is_the_general_line(
    kind: str, client: str, pid: int, when: float, nbytes: int, data: bytes
) -> None:
    fields = {"client": client, "pid": pid, "time": when, "nbytes": nbytes, "head": data.hex()}
    line = data_line(kind, client, pid, when, nbytes, data.hex())
    assert line == event_line(kind, fields)
    assert line.startswith(DATA_LINE)  # counted unparsed past the log's budget


def test_a_bad_line_in_a_read_loses_only_itself() -> None:
    good = [event_line("accepted", {"client": f"c{i}", "pid": i}).rstrip(b"\n") for i in range(3)]
    for bad in (b"", b"{", b"not json", b"1", b"[1, 2]", b'{"a":1},{"b":2}'):
        read = [good[0], bad, good[1], good[2]]
        assert [r["client"] for r in _records(read)] == ["c0", "c1", "c2"], bad


def test_a_clients_hostile_bytes_stay_inside_their_string() -> None:
    preview = '"},"kind":"busy\n\x1b]0;pwned\x07\\\ud800'
    line = event_line("data_in", {"client": "127.0.0.1:5000", "preview": preview})
    assert json.loads(line) == {"kind": "data_in", "client": "127.0.0.1:5000", "preview": preview}
    assert line.startswith(DATA_LINE)


def test_numbers_json_has_no_word_for_are_written_as_null() -> None:
    line = event_line("figures", {"figures": [1.5, math.inf, math.nan], "left": -math.inf})
    assert json.loads(line) == {"kind": "figures", "figures": [1.5, None, None], "left": None}


def test_a_spawn_handler_imports_no_json_and_no_typing() -> None:
    """A spawn handler imports the handler module from scratch for every connection:
    json and typing were the largest of its imports (python -X importtime)."""
    code = (
        "import sys, multiprocessing.spawn, multiprocessing.reduction, socket\n"
        "import proclab.core.server.handler\n"
        "print(','.join(m for m in ('json', 'typing', 'dataclasses') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
