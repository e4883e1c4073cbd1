"""The snf-ganeti command line: every subcommand reachable, each part imported only when used."""

import argparse
import os
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


RUN = "import sys; sys.argv[0] = 'snf-ganeti'; from snf_ganeti import cli; cli.run()"


def _env():
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as Ganeti runs it


def _run(code, *argv):
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          env=_env())


def test_run_flushes_piped_output_and_keeps_the_exit_status():
    # stdout is a pipe: block-buffered, so only the flush before the fast exit delivers it.
    tasks = _run(RUN, "os", "tasks")
    normal = _run(RUN.replace("cli.run()", "sys.exit(cli.main())"), "os", "tasks")
    assert tasks.returncode == 0 and tasks.stdout.count("\n") > 20
    assert tasks.stdout == normal.stdout
    verify = _run(RUN, "os", "verify")
    assert verify.returncode == 2 and verify.stderr.startswith("snf-ganeti: error: OS_API_VERSION")


def test_run_with_stdout_closed_keeps_the_status():
    code = "import os, sys; os.close(1); sys.stdout = None; from snf_ganeti import cli; cli.run()"
    proc = _run(code, "os", "rename")
    assert proc.returncode == 0, proc.stderr


def test_run_reports_output_lost_to_a_closed_pipe():
    proc = subprocess.Popen([sys.executable, "-c", RUN, "os", "tasks"], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is flushed
    proc.stderr.read()
    assert proc.wait() == 141


def test_run_waits_for_a_thread_still_working():
    code = ("import threading, time; from snf_ganeti import cli\n"
            "def main():\n"
            "    threading.Thread(target=lambda: (time.sleep(0.2), print('done'))).start()\n"
            "    return 7\n"
            "cli.main = main; cli.run()")
    proc = _run(code)
    assert proc.returncode == 7 and proc.stdout == "done\n"
