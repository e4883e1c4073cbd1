"""The snf-ganeti command line: every subcommand reachable, each part imported only when used."""

import argparse
import subprocess
import sys

import pytest

from snf_ganeti import cli

pytestmark = pytest.mark.unit


def _subcommands(parser, path=()):
    """Every (words...) path of the parser's subcommand tree."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield path + (name,)
                yield from _subcommands(sub, path + (name,))


def test_commands_name_every_top_level_subcommand_its_part_registers():
    for name in cli.PARTS:
        parser = cli.build_parser((name,))
        top = {path[0] for path in _subcommands(parser)}
        assert top == {command for command, part in cli.COMMANDS.items() if part == name}


@pytest.mark.parametrize("path", sorted(_subcommands(cli.build_parser())), ids=" ".join)
def test_every_subcommand_has_help(path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([*path, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("usage: snf-ganeti " + " ".join(path))


@pytest.mark.parametrize("argv, word", [
    (["os", "create"], "os"), (["--config", "os", "hook"], "hook"),
    (["--conf", "os", "hook"], "hook"), (["--config=x", "-v", "ifup"], "ifup"),
    (["--version"], None), (["-h", "ifup"], None), (["-vh", "ifup"], None),
    (["--help", "status"], None), (["--hel", "os"], None), ([], None)])
def test_command_word_skips_the_common_options(argv, word):
    assert cli.command_word(argv) == word


def test_a_subcommand_imports_only_its_own_part():
    code = ("import sys; from snf_ganeti import cli\n"
            "try: cli.main(['ifup', '--help'])\n"
            "except SystemExit: pass\n"
            "print(sorted(p for p in cli.PARTS if p in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()[-1]
    assert out == "['snf_ganeti.ifscripts.cli']"


def test_the_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(command in out for command in cli.COMMANDS)


def test_help_asked_before_a_subcommand_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["-h", "ifup"])
    out = capsys.readouterr().out
    assert all(command in out for command in cli.COMMANDS)
