"""What a tab's page may say to `proclab web` (tui/commands/web_tabs.py): only what
textual.js sends is passed on to the tab's proclab; sizes are whole and bounded."""

from __future__ import annotations

import asyncio
import signal
import sys
from asyncio.subprocess import PIPE

import pytest

from proclab.tui.commands.web_tabs import MAX_COLUMNS, MAX_ROWS, tab_message, tab_size


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('["stdin", "q"]', ("stdin", b"q")),
        ('["stdin", "\\ud800"]', ("stdin", b"?")),  # valid JSON, no UTF-8
        ('["resize", {"width": 120, "height": 40}]', ("resize", (120, 40))),
        ('["resize", {"width": -5, "height": 0}]', ("resize", (1, 1))),
        ('["resize", {"width": 3000, "height": 3000}]', ("resize", (MAX_COLUMNS, MAX_ROWS))),
        ('["ping", "1700000000"]', ("ping", "1700000000")),
        ('["blur"]', ("blur", None)),
        ('["focus"]', ("focus", None)),
    ],
)
def test_what_textual_js_sends_is_passed_on(text: str, said: tuple[str, object]) -> None:
    assert tab_message(text) == said


@pytest.mark.parametrize(
    "text",
    [
        "notjson",
        "[]",
        "{}",
        "null",
        '["stdin"]',
        '["stdin", 5]',
        '["resize", 5]',
        '["resize", {"width": "x", "height": 3}]',
        '["resize", {"width": 1.5, "height": null}]',
        '["resize", {"width": true, "height": 3}]',
        '["ping", {"a": 1}]',
        '["quit"]',
        "[5]",
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_anything_else_is_ignored(text: str) -> None:
    assert tab_message(text) is None


def test_a_size_from_the_address_is_whole_and_bounded() -> None:
    assert tab_size("200", "60") == (200, 60)
    assert tab_size("99999", "0") == (MAX_COLUMNS, 1)
    assert tab_size("9" * 5000, "0" * 5000 + "30") == (MAX_COLUMNS, 30)  # int() raises past 4,300
    for width, height in (("-5", "3"), ("1e3", "3"), ("٣", "3"), (None, "3")):
        assert tab_size(width, height) is None, (width, height)


async def test_a_tab_s_proclab_that_will_not_quit_is_signalled_until_it_ends(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The quit is asked through stdin; one that reads none (a blocked app) gets SIGTERM,
    and one that ignores that SIGKILL, each said in the server's log."""
    from proclab.tui.commands import web_tabs

    monkeypatch.setattr(web_tabs, "QUIT_S", 0.3)
    monkeypatch.setattr(web_tabs, "KILL_S", 0.3)
    deaf = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('deaf', file=sys.stderr, flush=True)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", deaf, stdin=PIPE, stdout=PIPE, stderr=PIPE
    )
    said = web_tabs.LastWords(process.stderr)

    async def quit() -> None:
        assert process.stdin is not None
        process.stdin.write(b'{"type": "quit"}\n')  # as textual-serve's meta: not read here
        await process.stdin.drain()

    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 30) == b"ready\n"  # SIGTERM ignored
    await web_tabs.end_tab(process, quit, said)
    assert process.returncode == -signal.SIGKILL
    logged = [r.getMessage() for r in caplog.records]
    assert any("had not ended 0.3 s after its tab closed: sent SIGTERM" in m for m in logged)
    assert any("sent SIGKILL" in m for m in logged)
    assert any(m.endswith(f"ended with status {-signal.SIGKILL}: deaf") for m in logged), logged
