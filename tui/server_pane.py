"""The TCP server pane. The server itself is not part of this version of proclab yet, and
the pane says so rather than show anything it has not measured."""

from __future__ import annotations

from textual.widgets import Static

NOT_YET = (
    "TCP server: stopped.\n\n"
    "The lesson's concurrent echo server (one process per client, with a log of every"
    " connection) is not part of this version of proclab yet."
)


class ServerPane(Static):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(NOT_YET, **kwargs)  # type: ignore[arg-type]
