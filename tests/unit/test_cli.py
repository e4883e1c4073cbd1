"""The snf-ganeti command line: every subcommand reachable, each part imported only when used."""

import argparse
import ast
import os
import shutil
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


def last_line_of(code):
    """The last line ``code`` prints, run in a fresh interpreter (its own sys.modules)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.splitlines()[-1]


def test_a_subcommand_imports_only_its_own_part():
    code = ("import sys; from snf_ganeti import cli\n"
            "try: cli.main(['ifup', '--help'])\n"
            "except SystemExit: pass\n"
            "print(sorted(p for p in cli.PARTS if p in sys.modules))")
    out = last_line_of(code)
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


def test_the_command_runs_with_the_collector_the_launcher_disabled_enabled_again():
    code = ("import gc, sys; gc.disable(); from snf_ganeti import cli\n"
            "cli.main = lambda: print(gc.isenabled()) or 0; cli.run()")
    assert _run(code).stdout == "True\n"


def test_the_launcher_runs_the_command():
    # Its own path, without site, is tested on the installed package (tests/system).
    root = os.path.dirname(os.path.dirname(os.path.abspath(cli.__file__)))
    proc = subprocess.run([os.path.join(root, "debian", "scripts", "snf-ganeti"), "--version"],
                          capture_output=True, text=True, env={**_env(), "PYTHONPATH": root})
    assert proc.returncode == 0 and proc.stdout.startswith("snf-ganeti "), proc.stderr


def test_the_launcher_path_is_debians_without_its_own_directory(tmp_path):
    # A stand-in snf_ganeti.cli prints the path the launcher built. One beside the launcher
    # (as if /usr/bin held a module) must not be the one imported: -P.
    root = os.path.dirname(os.path.dirname(os.path.abspath(cli.__file__)))
    launcher = tmp_path / "bin" / "snf-ganeti"
    launcher.parent.mkdir()
    shutil.copy(os.path.join(root, "debian", "scripts", "snf-ganeti"), launcher)
    for where, body in ((tmp_path / "bin", "raise SystemExit('imported from beside the launcher')"),
                        (tmp_path / "lib", "import sys\ndef run(): print(repr(sys.path))")):
        (where / "snf_ganeti").mkdir(parents=True)
        (where / "snf_ganeti" / "__init__.py").write_text("")
        (where / "snf_ganeti" / "cli.py").write_text(body)
    proc = subprocess.run([str(launcher)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "lib")})
    assert proc.returncode == 0, proc.stderr
    path = ast.literal_eval(proc.stdout)
    python = launcher.read_text().split()[0][2:]  # its #!: Debian's python3
    site = ast.literal_eval(subprocess.run(
        [python, "-c", "import site; print(repr(site.getsitepackages()))"],
        capture_output=True, text=True, check=True).stdout)
    assert [p for p in path if p in site] == site
    assert str(tmp_path / "bin") not in path


@pytest.mark.parametrize("columns, terminal", [
    ("60", None), ("132", None), ("0", None), ("x", None), (None, None), (None, 100),
    ("70", 100)])
def test_help_is_as_wide_as_argparse_makes_it(monkeypatch, columns, terminal):
    # argparse sizes help with shutil, which the command does not import for it.
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)

    def terminal_size(fd=None):
        if terminal is None:
            raise OSError("not a terminal")
        return os.terminal_size((terminal, 24))
    monkeypatch.setattr(os, "get_terminal_size", terminal_size)
    parser = cli.build_parser(("snf_ganeti.osdefinition.cli",))
    ours = parser.format_help()
    parser.formatter_class = argparse.HelpFormatter
    assert ours == parser.format_help()
    width = int(columns) if columns and columns.isdigit() and int(columns) else terminal or 80
    assert max(map(len, ours.splitlines())) <= width - 2


# What a deploy (a diskdump copy, no customization) must not import: PyYAML, as the parse
# of a config that has not changed is cached; the messages, as this deploy relays no progress
# to AMQP; the rest, as only other paths use them (the customization's code).
UNUSED_BY_A_DEPLOY = ("yaml", "shutil", "subprocess", "tempfile", "typing", "ipaddress",
                      "urllib.parse", "snf_ganeti.ifscripts.firewall",
                      "snf_ganeti.osdefinition.customize", "snf_ganeti.osdefinition.devices",
                      "snf_ganeti.messages", "ctypes")


def test_a_deploy_with_a_cached_config_imports_only_what_it_uses(tmp_path, monkeypatch):
    from snf_ganeti import config as config_mod, configcache
    (tmp_path / "image").write_bytes(b"\x55" * 65536 + bytes(65536))  # data, then zero blocks
    with open(tmp_path / "disk", "wb") as disk:  # a new file disk: all hole, nothing to punch
        disk.truncate(1 << 20)
    conf, cache = tmp_path / "config.yaml", str(tmp_path / "config.cache")
    conf.write_text(f"osdefinition:\n  image_dir: {tmp_path}\n  publish_progress: false\n")
    monkeypatch.setattr(configcache, "SETTLE_SECONDS", 0.0)
    config_mod.load(str(conf), cache)
    code = ("import sys; at_start = set(sys.modules)  # the interpreter's own (site, .pth)\n"
            "from snf_ganeti import pathutils\n"
            f"pathutils.CONFIG_CACHE = {cache!r}\n"
            "from snf_ganeti import cli\n"
            "status = cli.main(['--config', sys.argv[1], 'os', 'create'])\n"
            f"print(status, [m for m in {UNUSED_BY_A_DEPLOY!r} if m in sys.modules and "
            "m not in at_start])")
    env = {**_env(), "OS_API_VERSION": "20", "INSTANCE_NAME": "vm", "HYPERVISOR": "kvm",
           "DISK_COUNT": "1", "DISK_0_PATH": str(tmp_path / "disk"), "NIC_COUNT": "0",
           "OSP_IMG_ID": "image", "OSP_IMG_FORMAT": "diskdump",
           "OSP_IMG_PROPERTIES": '{"EXCLUDE_ALL_TASKS": "yes"}'}
    proc = subprocess.run([sys.executable, "-c", code, str(conf)], capture_output=True,
                          text=True, env=env)
    assert proc.stdout.splitlines()[-1] == "0 []", proc.stderr
    assert (tmp_path / "disk").read_bytes() == b"\x55" * 65536 + bytes((1 << 20) - 65536)


def test_the_nic_script_plumbs_a_nic_before_loading_pyroute2_or_pika():
    """ifup's code up to the NIC's routes and announcements, with either firewall backend:
    no pyroute2 (0.13 s to import; ip does its part) and no broker client (pika is loaded
    to publish, once the NIC is plumbed)."""
    code = ("import sys\n"
            "from snf_ganeti import cli\n"
            "from snf_ganeti.ifscripts import apply, host, iptables, nft\n"
            "print(sorted(m for m in ('pyroute2', 'pika') if m in sys.modules))")
    out = last_line_of(code)
    assert out == "[]"


GANETI_RUNS = [("os", "create"), ("os", "import"), ("os", "export"), ("os", "rename"),
               ("os", "verify", "parameters"), ("ifup",), ("hook",)]


def test_every_argv_ganeti_runs_is_dispatched_without_argparse():
    listed = {argv for part in cli.parts() for argv in getattr(part, "GANETI_ARGV", {})}
    assert listed == set(GANETI_RUNS)


@pytest.mark.parametrize("argv", GANETI_RUNS, ids=" ".join)
def test_what_ganeti_runs_gets_the_arguments_argparse_would_give(argv):
    assert vars(cli.ganeti_args(list(argv))) == vars(cli.build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [["os", "create", "--help"], ["-v", "ifup"], ["os"],
                                  ["ifdown"], ["os", "verify", "other"], []])
def test_anything_else_goes_through_argparse(argv):
    assert cli.ganeti_args(argv) is None


def test_a_ganeti_run_imports_no_argparse():
    code = ("import sys; from snf_ganeti import cli\n"
            "cli.main(['os', 'rename'])\n"
            "print('argparse' in sys.modules)")
    out = last_line_of(code)
    assert out == "False"
