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


def test_the_tflite_xnnpack_info_line_is_filtered_and_real_lines_kept(tmp_path, capfd):
    """Opening a TFLite model prints ``INFO: Created TensorFlow Lite XNNPACK
    delegate for CPU.`` from C++ (file descriptor 2) when its tensors are
    first allocated; the interpreter the backends open drops that line and
    nothing else, and the model still runs."""
    import numpy as np
    import tensorflow as tf

    from bsrnn_tf.console import filtered_stderr, open_tflite_interpreter

    class Double(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
        def run(self, x):
            return {"y": x * 2.0 + 1.0}

    module = Double()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.run.get_concrete_function()], module)
    path = tmp_path / "double.tflite"
    path.write_bytes(converter.convert())
    capfd.readouterr()
    interpreter = open_tflite_interpreter(str(path))
    out = interpreter.get_signature_runner()(x=np.ones((1, 4), np.float32))
    np.testing.assert_array_equal(out["y"], np.full((1, 4), 3.0, np.float32))
    assert "XNNPACK" not in capfd.readouterr().err
    # The same filter on descriptor 2: the notice goes, a real line stays.
    with filtered_stderr():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
                    b"ERROR: a real problem\n")
    assert capfd.readouterr().err == "ERROR: a real problem\n"


_SUMMARY_SCRIPT = r"""
import sys, tempfile
import tensorflow as tf
from bsrnn_tf.training.summaries import write_examples

class Stub:  # what write_examples reads of a model
    sample_rate = 8000
    def stft(self, x):  # a packed (1, frames, bins, re/im) spectrum
        return tf.random.normal((1, 3, 5, 2))

audio = tf.random.normal((1, 800, 2)) * 0.1
with tf.summary.create_file_writer(tempfile.mkdtemp()).as_default(step=0):
    if sys.argv[1] == "raw":
        tf.summary.audio("raw", audio, 8000, max_outputs=1)
    else:
        write_examples(Stub(), ["vocals"], audio, {"vocals": audio}, {"vocals": audio})
"""


def test_training_audio_summaries_drop_the_onednn_string_line():
    """With oneDNN forced on, a raw ``tf.summary.audio`` logs "oneDNN supports
    DT_STRING only on platforms with AVX-512"; training's summaries do not
    (one process each: TensorFlow logs it once per process); lines before
    them (the cuInit error) are kept."""
    stderr = {}
    for way in ("raw", "ours"):  # TensorFlow logs the line once per process
        out = subprocess.run([sys.executable, "-c", _SUMMARY_SCRIPT, way], capture_output=True,
                             text=True, timeout=120, cwd=ROOT, env=_env(TF_ENABLE_ONEDNN_OPTS="1"))
        assert out.returncode == 0, out.stderr[-2000:]
        stderr[way] = out.stderr
    raw, ours = stderr["raw"], stderr["ours"]
    if "DT_STRING" not in raw:
        pytest.skip("this TensorFlow build logs no oneDNN string line")
    assert "DT_STRING" not in ours, ours
    assert "failed call to cuInit" in ours or "cuInit" not in raw  # other lines untouched
