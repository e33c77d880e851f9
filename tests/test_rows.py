"""A row changed in place of dataclasses.replace (ProcessRow.with_changes) is the row
replace would make, field by field, and refuses a field it does not have."""

from __future__ import annotations

import dataclasses

import pytest

from proclab.core.model import ProcessRow, ProcState


def row() -> ProcessRow:
    return ProcessRow(id=7, name="worker", spec=None, state=ProcState.RUNNING, pid=4242)


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(ProcessRow)])
def test_each_field_changes_as_replace_changes_it(name: str) -> None:
    value = object()
    changed = row().with_changes(**{name: value})
    assert changed == dataclasses.replace(row(), **{name: value})
    assert getattr(changed, name) is value


def test_several_fields_at_once_and_the_row_itself_untouched() -> None:
    before = row()
    after = before.with_changes(state=ProcState.EXITED, exitcode=3, pid=None)
    assert after == dataclasses.replace(before, state=ProcState.EXITED, exitcode=3, pid=None)
    assert before == row()


def test_a_field_it_does_not_have_is_refused() -> None:
    with pytest.raises(TypeError, match="no field 'exit_code'"):
        row().with_changes(exit_code=3)
