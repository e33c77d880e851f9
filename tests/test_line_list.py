"""The scrolling log list (the server's log): it follows its newest line."""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.app import App, ComposeResult

from proclab.tui.widgets.line_list import LineList

pytestmark = pytest.mark.once  # drawing only


class _Host(App[None]):
    def compose(self) -> ComposeResult:
        yield LineList()


def _lines(first: int, last: int) -> list[tuple[Text, int]]:
    return [(Text(f"line {i}"), i) for i in range(first, last)]


async def test_a_burst_of_lines_shows_the_newest_and_a_moved_cursor_stays() -> None:
    """Three clients' 50 lines in one burst left the server log showing its first 13
    lines, with "served 6" above it, until the next connection came: it scrolled to the
    end of its old size."""
    app = _Host()
    async with app.run_test(size=(80, 15)) as pilot:
        log = app.query_one(LineList)
        await pilot.pause()
        log.add(_lines(0, 3))  # the server's first line: listening
        await pilot.pause()
        log.add(_lines(3, 50))
        await pilot.pause()
        assert log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y
        log.add(_lines(50, 60))
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y
        # moved up by the person, it stays where they put it
        log.focus()
        await pilot.press("home")
        log.add(_lines(60, 70))
        await pilot.pause()
        assert log.scroll_y == 0
