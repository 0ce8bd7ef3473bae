"""``bsrnn-tf fit | evaluate | tune | export``: the installed command hands its
arguments to ``bsrnn_tf.commands.<name>``, and the repository's scripts
(``training/fit.py`` ...) still run the same code."""

import importlib
import os
import re
import subprocess
import sys

import pytest

from bsrnn_tf.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = {"fit": "training/fit.py", "evaluate": "training/evaluate.py",
           "tune": "training/tune.py", "export": "export/export.py"}


def _run(command):
    # PYTHONPATH: this checkout's bsrnn_tf, whatever copy is installed
    return subprocess.run(command, env={**os.environ, "PYTHONPATH": ROOT}, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def _bsrnn_tf() -> list:
    """The installed console script beside this Python, else the module."""
    script = os.path.join(os.path.dirname(sys.executable), "bsrnn-tf")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "bsrnn_tf.cli"]


def _flags(name: str) -> set:
    parser = importlib.import_module(f"bsrnn_tf.commands.{name}").build_parser()
    return {flag for action in parser._actions for flag in action.option_strings}


def _shown(text: str) -> set:
    return set(re.findall(r"(?<![\w-])--?[A-Za-z][\w-]*", text))


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_installed_command_shows_its_own_flags(name):
    out = _run([*_bsrnn_tf(), name, "--help"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: bsrnn-tf {name} "), out.stdout[:200]
    assert _flags(name) <= _shown(out.stdout), _flags(name) - _shown(out.stdout)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_is_the_same_command(name):
    out = _run([sys.executable, SCRIPTS[name], "--help"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: {os.path.basename(SCRIPTS[name])} ")
    assert _flags(name) <= _shown(out.stdout)


def test_top_level_help_lists_the_commands():
    out = _run([*_bsrnn_tf(), "--help"])
    assert out.returncode == 0, out.stderr
    listed = re.search(r"\{([\w,-]+)\}", out.stdout).group(1).split(",")
    assert set(SCRIPTS) <= set(listed)


def test_messages_name_the_command(capsys):
    assert main(["fit", "--preset", "tiny", "--batch-size", "0"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "bsrnn-tf fit: error: train.batch_size must be >= 1, got 0"]
    with pytest.raises(SystemExit) as e:
        main(["evaluate"])
    assert e.value.code == 2
    assert "usage: bsrnn-tf evaluate " in capsys.readouterr().err
