"""The README's screenshots: made by `proclab screenshots` from the recorded scene,
identical every time, and current."""

from __future__ import annotations

from pathlib import Path

import pytest

from proclab.tui.screenshots import SCENE_NAME, SHOTS, make_screenshots

pytestmark = pytest.mark.once

SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"


def test_screenshots_are_current_and_regenerate_identically(tmp_path: Path) -> None:
    written = make_screenshots(tmp_path, SCREENSHOTS / SCENE_NAME)
    assert [p.name for p in written] == [f"{shot.name}.svg" for shot in SHOTS]
    for path in written:
        committed = SCREENSHOTS / path.name
        assert committed.exists(), f"{committed} is missing: run proclab screenshots"
        assert path.read_text() == committed.read_text(), (
            f"{path.name} is out of date: run `proclab screenshots` and look at the result"
        )
