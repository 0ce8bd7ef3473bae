"""A quiet start: TensorFlow's start-up notices are filtered, real messages
are not; oneDNN is only forced on where the CPU has AVX-512."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(**extra):
    env = {**os.environ, "PYTHONPATH": ROOT, **extra}
    env.pop("BSRNN_TF_VERBOSE", None)
    return env


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "bsrnn_tf.cli", "bands", "list"],
    [sys.executable, os.path.join(ROOT, "training", "fit.py"), "--preset", "tiny",
     "--batch-size", "0"],
])
def test_commands_print_no_tensorflow_start_up_noise(command):
    out = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert not any(line[:5] in ("I0000", "E0000", "W0000") or "absl::InitializeLog" in line
                   for line in lines), lines
    if "fit.py" in command[1]:
        assert lines == ["fit.py: error: train.batch_size must be >= 1, got 0"]


def test_real_messages_pass_the_filter(capsys):
    from bsrnn_tf.console import _replay
    _replay("I0000 00:00:1 12 port.cc:153] oneDNN custom operations are on. ...\n"
            "E0000 00:00:1 12 cuda_platform.cc:52] failed call to cuInit: (303)\n"
            "E0000 00:00:1 12 something.cc:1] a real problem\n")
    assert capsys.readouterr().err == "E0000 00:00:1 12 something.cc:1] a real problem\n"


@pytest.mark.parametrize("has_avx512, user, expected", [
    (False, None, None), (True, None, "1"), (True, "0", "0"), (False, "1", "1")])
def test_onednn_forced_only_with_avx512_and_never_over_the_user(monkeypatch, has_avx512, user,
                                                                expected):
    from bsrnn_tf import console
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    monkeypatch.setattr(console, "_cpu_has", lambda flag: has_avx512 and flag == "avx512f")
    monkeypatch.setattr(console.platform, "machine", lambda: "x86_64")
    if user is None:
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    else:
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", user)
    console.prefer_onednn()
    assert os.environ.get("TF_ENABLE_ONEDNN_OPTS") == expected
