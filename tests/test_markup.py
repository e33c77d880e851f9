"""Text a person or a child controls is shown as it is, never read as Textual markup.

A process named `a[/]` ended the app on a MarkupError traceback (its details, the
terminate question, the output pane's border, the rename prompt, the join notice); a
target `x:[/b]` did so from the form's error, and `[/]` typed as a filter or in the
scheduling view's cells. `[worker] A` lost its `[worker]` in every one of them. Driven as
a person drives the app (Textual's Pilot), against a real controller and real children."""

from __future__ import annotations

import pytest
from support import TASKS, wait_for
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from proclab.core.controller import Controller
from proclab.core.spec import build_spec
from proclab.tui.app import ProclabApp
from proclab.tui.screens.details import DetailsScreen
from proclab.tui.screens.dialogs import ConfirmScreen, PromptScreen
from proclab.tui.screens.schedule import ScheduleScreen
from proclab.tui.screens.spawn_form import SpawnScreen

SIZE = (120, 40)


def shown(text: str | None) -> str:
    """A border title as drawn (the widget hands it back as markup)."""
    return Content.from_markup(text or "").plain


def said(widget: Static) -> str:
    return str(widget.render())


@pytest.mark.parametrize("name", ["a[/]", "[worker] A", "[b]x[/b] y[/]"])
async def test_a_process_name_is_shown_as_it_is_in_every_view_of_it(
    controller: Controller, name: str
) -> None:
    (rec_id,) = controller.spawn(build_spec(f"{TASKS}:sleep", "(30,)", name=name))
    (joined,) = controller.spawn(build_spec(f"{TASKS}:sleep", "(0.5,)", name=name + "-2"))
    app = ProclabApp(controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        table = app.lab.table
        await wait_for(pilot, lambda: table.cell_text(rec_id, "pid").strip() != "")
        table.select(rec_id)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
        assert shown(app.screen.query_one("#details-box").border_title).startswith(f"{name} (")
        await pilot.press("escape")
        await pilot.press("t")
        assert isinstance(app.screen, ConfirmScreen)
        assert f"Terminate {name} (" in said(app.screen.query_one(".question", Static))
        await pilot.press("n")
        await pilot.press("2", "f")  # the output pane: only this process's lines
        await wait_for(pilot, lambda: name in shown(app.lab.query_one("#log").border_subtitle))
        await pilot.press("f", "1")
        await pilot.press("r")
        assert isinstance(app.screen, PromptScreen)
        assert name in said(app.screen.query_one(".question", Static))
        app.screen.query_one("#answer", Widget).value = "[/]" + name  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.press("r")  # asked again, under the new name
        assert "[/]" + name in said(app.screen.query_one(".question", Static))
        await pilot.press("escape")
        await pilot.press("slash", *"[/]")
        await wait_for(pilot, lambda: "'[/]'" in shown(app.lab.query_one("#procs").border_subtitle))
        await pilot.press("escape")
        table.select(joined)
        await pilot.press("j")  # its notice names it
        await wait_for(pilot, lambda: controller.row(joined).state.is_over)
        await pilot.pause(0.3)
        assert app.is_running


async def test_a_target_that_is_markup_gets_its_error_beside_the_field(
    controller: Controller,
) -> None:
    app = ProclabApp(controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, SpawnScreen))
        await wait_for(pilot, lambda: app.screen.query("#spawn"))
        app.screen.query_one("#target", Widget).value = "x:[/b]"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "'[/b]' is not a Python function name" in said(
            app.screen.query_one("#error-target", Static)
        )
        assert controller.rows() == ()  # nothing started


async def test_markup_typed_in_the_scheduling_view_is_named_in_its_error(
    controller: Controller,
) -> None:
    app = ProclabApp(controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, ScheduleScreen))
        await pilot.pause()
        await pilot.press("ctrl+a", "delete", *"[/]", "enter")  # the first job's Burst cell
        await pilot.pause()
        errors = " ".join(said(w) for w in app.screen.query(".sched-row-error").results(Static))
        assert "[/]" in errors, errors
