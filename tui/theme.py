"""Theme colours for Rich text built in Python (table cells, gauges, log lines).

`$success` and the like resolve to the current Textual theme's colours, as they do in
.tcss. Variables whose value Rich cannot draw ("auto 60%": Textual's contrast-derived text
colours) fall back to the terminal's own text, dimmed where the name says so.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rich.color import Color, ColorParseError
from textual.app import App

_VARIABLE = re.compile(r"\$([a-z0-9-]+)")
_FALLBACK = {"text-muted": "dim", "text-disabled": "dim", "text": "default"}


def resolve(app: App[object], style: str) -> str:
    variables = app.theme_variables or app.get_css_variables()
    return _VARIABLE.sub(lambda m: _drawable(m.group(1), variables.get(m.group(1), "")), style)


def _drawable(name: str, value: str) -> str:
    colour = _rich_colour(value.split(" ")[0]) if value else None
    return colour or _FALLBACK.get(name, "default")


@lru_cache(maxsize=256)
def _rich_colour(value: str) -> str | None:
    try:
        Color.parse(value)
    except ColorParseError:
        return None
    return value
