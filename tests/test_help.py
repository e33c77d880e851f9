"""The help at 80 columns keeps its two columns: text wraps under its own start, never
back under the labels; where it fits it is shown as written."""

from __future__ import annotations

import re

import pytest
from fakes import NOW, FakeController
from textual.geometry import Region

from proclab.tui.app import ProclabApp
from proclab.tui.screens.help import READING, SCHEDULING, SEEING, WATCHING, HelpScreen

pytestmark = pytest.mark.once


async def help_lines(size: tuple[int, int], selector: str = ".help-text") -> list[str]:
    """The lines the help's texts (or keys) are drawn as."""
    app = ProclabApp(FakeController(), clock=lambda: NOW)
    async with app.run_test(size=size) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        lines = []
        for widget in app.screen.query(selector):
            width, height = widget.size
            region = Region(0, 0, width, height)
            lines += [strip.text.rstrip() for strip in widget.render_lines(region)]
        return lines


async def test_help_text_keeps_its_indent_at_80_columns() -> None:
    labels = set(
        re.findall(r"^(\S+(?: \S+)*)\s{2,}", READING + WATCHING + SCHEDULING + SEEING, re.M)
    )
    lines = [line for line in await help_lines((80, 24)) if line]
    assert len(lines) > 40
    for line in lines:
        if not line.startswith(" "):
            assert re.match(r"\S+(?: \S+)*", line)[0] in labels, (  # type: ignore[index]
                f"text came back under the labels: {line!r}"
            )


async def test_help_is_as_written_where_it_fits_and_says_f9() -> None:
    text = "\n".join(await help_lines((160, 48)))
    for line in READING.splitlines():
        assert line.rstrip() in text
    keys = "\n".join(await help_lines((160, 48), "#help-keys"))
    assert "k, F9" in keys and "q, F10" in keys and "F6" in keys


async def test_a_key_is_listed_once() -> None:
    """The log's f, whose action turns with the state, was listed twice."""
    f_lines = [
        line for line in await help_lines((160, 48), "#help-keys") if line.split()[:1] == ["f"]
    ]
    assert len(f_lines) == 1, f_lines
    assert "Show only the selected process's lines; or show every process's lines" in f_lines[0]


async def test_a_list_under_a_label_keeps_its_items_apart_at_80_columns() -> None:
    """Joined into one paragraph, the States read "the OS has not made the process yet
    running / sleeping / stopped / zombie: what the kernel reports now exited: ..."."""
    lines = await help_lines((80, 24))
    starts = [line.strip() for line in lines]
    for item in ("running / sleeping / stopped / zombie:", "exited:", "failed:", "killed:"):
        assert any(line.startswith(item) for line in starts), item
    assert not any(re.search(r"\byet running\b|\bnow exited:", line) for line in lines)
