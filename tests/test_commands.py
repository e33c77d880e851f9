"""Every subcommand owns its options: tui/commands/NAME.py declares them and carries them
out, and the command table names it without importing it."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from proclab.tui import cli


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_each_command_module_has_the_contract(name: str) -> None:
    module = importlib.import_module(cli.COMMANDS[name].module)
    assert cli.COMMANDS[name].help == module.HELP  # the table's copy is the module's
    assert isinstance(module.DESCRIPTION, str) and module.DESCRIPTION
    parser = argparse.ArgumentParser(prog=f"proclab {name}")
    module.add_arguments(parser)
    assert callable(module.run)


def _imported_commands(code: str) -> set[str]:
    """The command modules a fresh interpreter imported while running `code`."""
    modules = [entry.module for entry in cli.COMMANDS.values()]
    out = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(out.stdout.split())
    return {module for module in modules if module in loaded}


def test_the_apps_help_imports_no_command() -> None:
    code = "from proclab.tui import cli\ncli.build_app_parser().format_help()"
    assert _imported_commands(code) == set()


def test_a_commands_parser_imports_that_command_only() -> None:
    code = "from proclab.tui import cli\ncli.build_parser('client').parse_args(['client'])"
    assert _imported_commands(code) == {"proclab.tui.commands.client"}
