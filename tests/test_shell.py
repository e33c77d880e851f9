"""core/shell.py: a command line shown as a person reads it, and as a shell takes it back."""

from __future__ import annotations

import shlex
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proclab.core import shell

WORDS = [
    "python",
    "",
    "a b",
    "main(11, 12, ['__main__'], **{'sys_path': ['/x']})",
    "it's $HOME",
    'say "hi" it\'s',
    "back\\slash 'q'",
    "bang! 'q'",
    "`date` 'q'",
    "tab\there 'q'",
    "new\nline 'q'",
    "ünï 'cödé'",
]


def test_a_fork_server_s_command_reads_as_python_wrote_it() -> None:
    argv = ["python", "-c", "from multiprocessing.forkserver import main; main(11, ['__main__'])"]
    assert shell.join(argv) == (
        "python -c \"from multiprocessing.forkserver import main; main(11, ['__main__'])\""
    )


@pytest.mark.parametrize("word", WORDS)
def test_every_word_reads_back_as_itself(word: str) -> None:
    assert shlex.split(shell.join([word, word])) == [word, word]


def test_a_shell_reads_the_words_back_as_they_were() -> None:
    """bash itself, not only shlex: what it prints of each word is the word."""
    line = shell.join(["printf", "%s\\0", *WORDS])
    done = subprocess.run(["bash", "-c", line], capture_output=True, check=True)
    assert done.stdout.decode().split("\0")[:-1] == WORDS


@given(st.lists(st.text(st.characters(blacklist_characters="\0"))))
def test_any_words_read_back_as_themselves(words: list[str]) -> None:
    assert shlex.split(shell.join(words)) == words
