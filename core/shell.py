"""A command line written as a shell would take it back, and as a person reads it."""

from __future__ import annotations

import shlex
from collections.abc import Iterable

# What a shell still reads inside double quotes ("!" in an interactive bash's history).
_LIVE_IN_DOUBLE_QUOTES = frozenset('"$`\\!')


def quote(word: str) -> str:
    """shlex.quote, but a word holding single quotes and nothing a shell reads inside
    double quotes goes in those: shlex wrote a fork server's `main(11, 12, ['__main__'])`
    as `'main(11, 12, ['"'"'__main__'"'"'])'`. Both read back as the same word."""
    quoted = shlex.quote(word)
    if "'" in word and quoted != word and _LIVE_IN_DOUBLE_QUOTES.isdisjoint(word):
        return f'"{word}"'
    return quoted


def join(words: Iterable[str]) -> str:
    """shlex.join with `quote`'s quotes."""
    return " ".join(map(quote, words))
