"""The README's screenshots: made by `proclab screenshots` from the recorded scene,
identical every time, and current."""

from __future__ import annotations

from pathlib import Path

import pytest

from proclab.tui.commands.screenshots import SCENE_NAME, SHOTS, make_screenshots

pytestmark = pytest.mark.once

SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"


# Every picture is a whole app run: about 40 s alone, several minutes on a loaded machine.
@pytest.mark.timeout(600)
def test_screenshots_are_current_and_regenerate_identically(tmp_path: Path) -> None:
    written = make_screenshots(tmp_path, SCREENSHOTS / SCENE_NAME)
    assert [p.name for p in written] == [f"{shot.name}.svg" for shot in SHOTS]
    for path in written:
        committed = SCREENSHOTS / path.name
        assert committed.exists(), f"{committed} is missing: run proclab screenshots"
        assert path.read_text() == committed.read_text(), (
            f"{path.name} is out of date: run `proclab screenshots` and look at the result"
        )


def test_out_elsewhere_uses_the_repository_scene(tmp_path: Path, monkeypatch) -> None:
    """`proclab screenshots --out DIR`, from any folder: the repository's scene is replayed
    unless --scene names another (it looked for DIR/scene.jsonl and failed)."""
    from proclab.tui import cli
    from proclab.tui.commands import screenshots

    made: list[tuple[Path, Path]] = []
    monkeypatch.setattr(
        screenshots, "make_screenshots", lambda out, scene: made.append((out, scene)) or []
    )
    monkeypatch.chdir(tmp_path)
    assert cli.main(["screenshots", "--out", str(tmp_path / "pictures")]) == 0
    assert made == [(tmp_path / "pictures", SCREENSHOTS / SCENE_NAME)]
    other = tmp_path / "mine.jsonl"
    other.write_text((SCREENSHOTS / SCENE_NAME).read_text())
    assert cli.main(["screenshots", "--out", "pictures", "--scene", str(other)]) == 0
    assert made[-1] == (Path("pictures"), other)


def test_a_bad_out_or_scene_is_one_line_and_makes_nothing(tmp_path: Path, capsys) -> None:
    """--out naming a file was a FileExistsError traceback, a 300-character --scene an
    OSError one, and a missing scene was said after the whole --out tree was made."""
    from proclab.tui import cli

    a_file = tmp_path / "a-file"
    a_file.write_text("kept\n")
    assert cli.main(["screenshots", "--out", str(a_file)]) == 2
    assert capsys.readouterr().err == f"proclab screenshots: --out {a_file} is not a folder\n"
    assert cli.main(["screenshots", "--scene", "A" * 300]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no scene at AAAA" in err
    deep = tmp_path / "no" / "such" / "folder"
    assert cli.main(["screenshots", "--out", str(deep), "--scene", str(tmp_path / "none")]) == 2
    assert "no scene at" in capsys.readouterr().err and not (tmp_path / "no").exists()
    # an empty --scene replayed the repository's and wrote every picture
    assert cli.main(["screenshots", "--out", str(tmp_path / "pics"), "--scene", ""]) == 2
    assert "no scene at" in capsys.readouterr().err and not (tmp_path / "pics").exists()
    assert a_file.read_text() == "kept\n"
