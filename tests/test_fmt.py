"""Numbers as people read them (tui/fmt.py)."""

from __future__ import annotations

import pytest

from proclab.core.columns import cells, columns
from proclab.tui import fmt


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (999, "999"),
        (1000, "1.0k"),
        (1050, "1.1k"),
        (9949, "9.9k"),
        (9950, "10k"),  # not "10.0k"
        (9999, "10k"),
        (12_345, "12k"),
        (999_999, "999k"),
        (1_000_000, "1.0M"),
        (3_400_000, "3.4M"),
        (9_960_000, "10M"),  # not "10.0M"
        (123_456_789, "123M"),  # not "123.5M"
        (2_500_000_000, "2.5G"),
        (2**64 - 1, "18E"),  # the largest 64-bit count
    ],
)
def test_count(value: int, text: str) -> None:
    assert fmt.count(value) == text


def test_count_is_never_longer_than_four() -> None:
    edges = [
        s * e // 100 + d for s in (10**3, 10**6, 10**9) for e in (995, 10**5) for d in (-1, 0, 1)
    ]
    for value in [*range(20_000), *edges, 2**63, 2**64 - 1]:
        assert len(fmt.count(value)) <= 4, value


def test_a_wide_name_keeps_the_columns_in_line() -> None:
    """A CJK name takes two terminal cells a character, an accent's combining mark none:
    each column still starts where the header's does."""
    table = [["NAME", "PID"], ["进程甲-1", "31844"], ["e\u0301t\u00e9", "7"], ["abc", "12"]]
    lines = columns(table, left=1)
    assert lines == [
        "NAME        PID",
        "进程甲-1  31844",
        "e\u0301té           7",
        "abc          12",
    ]
    assert cells("进程甲-1") == 8 and cells("e\u0301té") == 3


def test_a_cpu_time_read_before_the_end_is_marked_as_at_least():
    """A forkserver child killed and reaped by its fork server before proclab read its end
    kept its last tick's figure, shown as exact: 0 ms for a child that had used 5."""
    from dataclasses import replace

    from fakes import _sample, mixed_rows

    from proclab.core.model import ProcState

    row = mixed_rows()[0]
    ticked = replace(
        row, state=ProcState.KILLED, sample=_sample(0.0, 0.005, 1 << 20, 0, "sleeping")
    )
    assert fmt.cpu_time(ticked) == "≥5 ms"
    at_its_end = replace(ticked, sample=replace(ticked.sample, status="zombie"))
    assert fmt.cpu_time(at_its_end) == "5 ms"
    assert fmt.cpu_time(replace(ticked, state=ProcState.RUNNING)) == "5 ms"  # so far
    assert fmt.cpu_time(replace(ticked, sample=None)) == "?"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.004, "4 ms"),
        (0.9994, "999 ms"),
        (0.9996, "1.00 s"),  # a tick that rounds to a second was "1000 ms"
        (1.234, "1.23 s"),
        (59.994, "59.99 s"),
        (59.996, "1m00s"),  # not "60.00 s", nor "0m59s"
        (75, "1m15s"),
        (3599.6, "1h00m"),
        (4000, "1h06m"),
    ],
)
def test_seconds_are_said_in_the_unit_they_round_to(value: float, text: str) -> None:
    assert fmt.seconds(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1023, "1023B"),
        (1024, "1.0K"),
        (1_048_524, "1023.9K"),
        (1_048_535, "1.0M"),  # was "1024.0K"
        (1024**3 - 1000, "1.0G"),  # was "1024.0M"
        (30_000_000, "28.6M"),
    ],
)
def test_sizes_are_said_in_the_unit_they_round_to(value: int, text: str) -> None:
    assert fmt.size(value) == text
