"""``training/fit.py`` end to end on a small generated dataset: MTL training,
transfer learning with a frozen backbone, kill-and-resume, bad arguments."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bsrnn_tf.commands import fit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIT = os.path.join(ROOT, "training", "fit.py")

FAST = ["--preset", "tiny", "--segment-seconds", "0.5", "--valid-examples", "4",
        "--batch-size", "2", "--quiet", "--no-activity-detection"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from bsrnn_tf.datasets.synth import make_dataset
    root = tmp_path_factory.mktemp("fitdata") / "musdb"
    make_dataset(str(root), tracks_train=6, tracks_test=1, seconds=6.0, seed=3)
    return str(root)


def _weights(path):
    from bsrnn_tf.models import load_separator
    model = load_separator(path)
    backbone = [w.numpy() for w in model.backbone.weights]
    heads = {t: [w.numpy() for w in h.weights] for t, h in model.heads.items()}
    return backbone, heads


@pytest.mark.slow
def test_mtl_training_lowers_loss_and_leaves_model_config_logs(dataset, tmp_path):
    run = tmp_path / "mtl"
    code = fit.main(["--mtl", *FAST, "--musdb-root", dataset, "--epochs", "4",
                     "--examples-per-epoch", "16", "--lr", "3e-3", "--run-dir", str(run),
                     "--recompute-blocks"])
    assert code == 0
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 4
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert set(history[-1]["valid_usdr"]) == {"drums", "bass", "other", "vocals"}
    assert (run / "model.keras").exists()
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["targets"] == ["drums", "bass", "other", "vocals"]
    assert config["train"]["epochs"] == 4
    assert config["train"]["recompute_blocks"] is True
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(run / "logs"))


@pytest.mark.slow
def test_transfer_freezes_backbone_and_trains_new_head(dataset, tmp_path):
    source, transfer = tmp_path / "drums", tmp_path / "bass"
    assert fit.main(["--targets", "drums", *FAST, "--musdb-root", dataset, "--epochs", "1",
                     "--examples-per-epoch", "8", "--run-dir", str(source)]) == 0
    args = ["--init-backbone", str(source), "--freeze-backbone", "--targets", "bass", *FAST,
            "--musdb-root", dataset, "--examples-per-epoch", "8", "--patience", "0",
            "--run-dir", str(transfer)]
    assert fit.main([*args, "--epochs", "1"]) == 0
    backbone0, _ = _weights(str(source))
    backbone1, heads1 = _weights(str(transfer))
    assert list(heads1) == ["bass"]
    assert fit.main([*args, "--epochs", "2"]) == 0  # resumes for one more epoch
    backbone2, heads2 = _weights(str(transfer))
    for a, b, c in zip(backbone0, backbone1, backbone2):
        assert np.array_equal(a, b) and np.array_equal(a, c)
    assert any(not np.array_equal(a, b) for a, b in zip(heads1["bass"], heads2["bass"]))
    config = json.loads((transfer / "config.json").read_text())
    assert config["train"]["freeze_backbone"] is True
    assert config["model"]["targets"] == ["bass"]


@pytest.mark.slow
def test_init_model_keeps_the_trained_heads_and_adds_new_ones(dataset, tmp_path):
    """--init-model: fine-tuning starts from every weight of the run (at a
    learning rate of 1e-12 one epoch leaves them where they were), a target
    the run has no head for gets a new head, its other heads are dropped."""
    source, tuned = tmp_path / "drums-bass", tmp_path / "tuned"
    assert fit.main(["--mtl", "--targets", "drums", "bass", *FAST, "--musdb-root", dataset,
                     "--epochs", "1", "--examples-per-epoch", "8",
                     "--run-dir", str(source)]) == 0
    assert fit.main(["--init-model", str(source), "--mtl", "--targets", "drums", "vocals",
                     *FAST, "--musdb-root", dataset, "--epochs", "1", "--lr", "1e-12",
                     "--examples-per-epoch", "8", "--patience", "0",
                     "--run-dir", str(tuned)]) == 0
    backbone0, heads0 = _weights(str(source))
    backbone1, heads1 = _weights(str(tuned))
    assert sorted(heads1) == ["drums", "vocals"]
    for a, b in zip(backbone0 + heads0["drums"], backbone1 + heads1["drums"]):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # the new vocals head is not a copy of a trained one
    assert not any(a.shape == b.shape and np.allclose(a, b)
                   for a, b in zip(heads0["bass"], heads1["vocals"]) if a.size > 1)
    train = json.loads((tuned / "config.json").read_text())["train"]
    assert train["init_model"] == str(source) and train["init_backbone"] is None


def test_init_model_and_init_backbone_exclude_each_other(dataset, tmp_path, capsys):
    assert fit.main(["--init-model", "a", "--init-backbone", "b", *FAST, "--musdb-root",
                     dataset, "--run-dir", str(tmp_path / "x")]) == 2
    assert "not both" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_killed_run_resumes_from_last_checkpoint(dataset, tmp_path):
    run = tmp_path / "killed"
    command = [sys.executable, FIT, "--targets", "vocals", *FAST, "--musdb-root", dataset,
               "--epochs", "1", "--examples-per-epoch", "400", "--checkpoint-every", "3",
               "--run-dir", str(run)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpts = run / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline:
        if ckpts.exists() and any(f.startswith("ckpt-6.") for f in os.listdir(ckpts)):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    import tensorflow as tf
    saved_step = int(tf.train.latest_checkpoint(str(ckpts)).rsplit("-", 1)[1])
    assert 6 <= saved_step < 200
    # The same command resumes mid-epoch with the saved step count and
    # finishes the epoch (400 examples at batch 2: 200 steps); a run killed
    # for lack of memory would come back with --recompute-blocks, which
    # applies to the resumed run.
    out = subprocess.run(command + ["--recompute-blocks"], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"ckpt-{saved_step}: epoch 1, step {saved_step} of" in out.stdout
    assert f"{saved_step} optimizer steps so far" in out.stdout
    final = int(tf.train.latest_checkpoint(str(ckpts)).rsplit("-", 1)[1])
    assert final == 200
    assert json.loads((run / "config.json").read_text())["train"]["recompute_blocks"] is True


def test_bad_arguments_are_clear_errors(dataset, tmp_path, capsys):
    assert fit.main(["--targets", "drums", "bass", *FAST, "--musdb-root", dataset,
                     "--run-dir", str(tmp_path / "x")]) == 2
    assert "need --mtl" in capsys.readouterr().err
    assert fit.main(["--targets", "drums", *FAST, "--musdb-root", str(tmp_path / "nowhere"),
                     "--run-dir", str(tmp_path / "y")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert fit.main(["--targets", "drums", *FAST, "--bands", "v9", "--musdb-root", dataset,
                     "--run-dir", str(tmp_path / "z")]) == 2
    assert "unknown band schema" in capsys.readouterr().err
    assert fit.main(["--targets", "bass", *FAST, "--musdb-root", dataset,
                     "--init-backbone", str(tmp_path / "missing"),
                     "--run-dir", str(tmp_path / "w")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert fit.main(["--targets", "drums", *FAST, "--threads", "0", "--musdb-root", dataset,
                     "--run-dir", str(tmp_path / "t")]) == 2
    assert "fit.py: error: --threads must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


# -- issue 18: one-line errors, finished runs, resume flags, bad validation --------

def _copy_dataset(dataset, tmp_path, change):
    """A copy of ``dataset`` with ``change(path, audio, rate)`` writing each WAV."""
    import shutil
    import soundfile as sf
    root = tmp_path / "copy"
    shutil.copytree(dataset, root)
    for path in sorted(root.glob("*/*/*.wav")):
        audio, rate = sf.read(path)
        change(str(path), audio, rate)
    return str(root)


@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "0"], "train.batch_size must be >= 1, got 0"),
    (["--batch-size", "4", "--examples-per-epoch", "2"],
     "data.examples_per_epoch (2) is smaller than train.batch_size (4)"),
    (["--epochs", "0"], "train.epochs must be >= 1, got 0"),
    (["--lr", "nan"], "train.learning_rate must be a number, got nan"),
    (["--segment-seconds", "inf"], "data.segment_seconds must be a number, got inf"),
    (["--valid-segment-seconds", "0"], "data.valid_segment_seconds must be > 0, got 0.0"),
])
def test_bad_numbers_are_one_line_errors(dataset, tmp_path, capsys, flags, message):
    code = fit.main(["--targets", "vocals", *FAST, "--musdb-root", dataset,
                     "--run-dir", str(tmp_path / "r"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_config_pointing_at_a_folder_is_a_one_line_error(tmp_path, capsys):
    assert fit.main(["--config", str(tmp_path), "--run-dir", str(tmp_path / "r")]) == 2
    assert f"{tmp_path}: is a folder, not a JSON file" in capsys.readouterr().err


def test_dataset_at_48khz_is_a_one_line_error(dataset, tmp_path, capsys):
    import soundfile as sf
    root = _copy_dataset(dataset, tmp_path, lambda p, a, r: sf.write(p, a, 48000))
    code = fit.main(["--targets", "vocals", *FAST, "--musdb-root", root, "--epochs", "1",
                     "--examples-per-epoch", "4", "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "is at 48000 Hz, the pipeline runs at 44100 Hz" in err, err


def test_target_silent_in_every_track_is_a_one_line_error(dataset, tmp_path, capsys):
    import soundfile as sf
    root = _copy_dataset(dataset, tmp_path, lambda p, a, r: sf.write(
        p, a * 0 if p.endswith("vocals.wav") else a, r))
    args = ["--targets", "vocals", *FAST, "--musdb-root", root, "--epochs", "1",
            "--examples-per-epoch", "4", "--run-dir", str(tmp_path / "r")]
    args.remove("--no-activity-detection")
    code = fit.main(args)
    err = capsys.readouterr().err
    assert code == 2 and "'vocals' is silent" in err and "--no-activity-detection" in err, err


@pytest.mark.slow
def test_a_bad_only_validation_track_means_training_without_validation(dataset, tmp_path,
                                                                       capsys):
    from bsrnn_tf.data.musdb import load_tracks
    import shutil
    root = tmp_path / "copy"
    shutil.copytree(dataset, root)
    valid = load_tracks(str(root), subset="train", split="valid")
    assert len(valid) == 1
    (root / "train" / valid[0].name / "bass.wav").write_bytes(b"RIFF not audio")
    code = fit.main(["--targets", "vocals", *FAST, "--musdb-root", str(root), "--epochs", "1",
                     "--examples-per-epoch", "4", "--run-dir", str(tmp_path / "r")])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "training without validation" in out.err
    assert "5 train / 0 validation tracks" in out.out
    assert "(no validation: chosen by the training loss, " in out.out  # not a uSDR


@pytest.mark.slow
def test_finished_run_is_reported_and_flags_on_resume_are_applied_or_refused(dataset, tmp_path,
                                                                             capsys):
    run = tmp_path / "run"
    args = ["--targets", "vocals", *FAST, "--musdb-root", dataset, "--examples-per-epoch", "4",
            "--run-dir", str(run)]
    assert fit.main([*args, "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    # The last line gives the kept epoch's headline (the gain), and the
    # TensorBoard command as this Python's environment has it.
    assert "(epoch 1: validation gain over the best-scaled mixture " in out
    assert os.path.join(os.path.dirname(sys.executable), "tensorboard") + " --logdir" in out
    before = {p: os.path.getmtime(p) for p in run.rglob("*")}
    # The same command again: complete, nothing written (no new event file).
    assert fit.main([*args, "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "is already complete: 1 of 1 epochs" in out and "--epochs 2" in out, out
    assert "resumed from" not in out
    assert {p: os.path.getmtime(p) for p in run.rglob("*")} == before
    # Flags that change the run are refused, naming them.
    assert fit.main([*args, "--epochs", "2", "--lr", "0.5", "--batch-size", "4"]) == 2
    err = capsys.readouterr().err
    assert "--batch-size" in err and "--lr" in err and "drop those flags" in err, err
    assert {p: os.path.getmtime(p) for p in run.rglob("*")} == before
    # Safe ones apply, and say so.
    assert fit.main([*args, "--epochs", "2", "--patience", "5"]) == 0
    out = capsys.readouterr().out
    assert "resuming with --epochs 2 (the run had 1)" in out
    assert "resuming with --patience 5 (the run had 10)" in out
    assert "epoch 2/2: mean loss" in out
    assert json.loads((run / "config.json").read_text())["train"]["patience"] == 5


def test_max_minutes_stops_early_says_so_and_may_change_on_resume(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--targets", "vocals", *FAST, "--musdb-root", dataset, "--examples-per-epoch", "2",
            "--epochs", "3", "--run-dir", str(run)]
    assert fit.main([*args, "--max-minutes", "1e-6"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/3: mean loss" in out and "epoch 2/3" not in out, out
    assert "time budget reached" in out
    assert json.loads((run / "config.json").read_text())["train"]["max_minutes"] == 1e-6
    # Again: nothing left within the budget, nothing written.
    before = {p: os.path.getmtime(p) for p in run.rglob("*")}
    assert fit.main([*args, "--max-minutes", "1e-6"]) == 0
    out = capsys.readouterr().out
    assert "has used its time budget" in out and "--max-minutes above" in out, out
    assert {p: os.path.getmtime(p) for p in run.rglob("*")} == before
    # The budget is safe to change on resume: 0 lifts it.
    assert fit.main([*args, "--max-minutes", "0"]) == 0
    out = capsys.readouterr().out
    assert "resuming with --max-minutes 0.0 (the run had 1e-06)" in out, out
    assert "epoch 3/3: mean loss" in out
    assert len(json.loads((run / "history.json").read_text())) == 3


def test_norm_and_band_flags_reach_the_config():
    parse = fit.build_parser().parse_args
    config = fit.config_from_args(parse(["--mtl", "--preset", "cpu", "--norm", "frame"]))
    assert (config.model.norm, config.model.bands, config.model.num_edges) == \
        ("frame", "universal", 41)
    # The cpu preset's edge count belongs to its universal split: another
    # split given by flag drops it, an explicit --num-edges keeps it.
    config = fit.config_from_args(parse(["--mtl", "--bands", "v7"]))
    assert (config.model.norm, config.model.bands, config.model.num_edges) == \
        ("chunk", "v7", None)
    config = fit.config_from_args(parse(["--mtl", "--bands", "universal", "--num-edges", "60"]))
    assert config.model.num_edges == 60
    with pytest.raises(SystemExit):
        parse(["--norm", "batch"])


def test_the_causal_preset_norm_is_cumulative_frame_by_flag_and_refuses_chunk():
    from bsrnn_tf.config import ConfigError
    from bsrnn_tf.models import build_separator

    parse = fit.build_parser().parse_args
    for flags, norm in (([], "cumulative"), (["--norm", "frame"], "frame")):
        config = fit.config_from_args(parse(["--mtl", "--preset", "cpu-stream", *flags]))
        config.validate()
        m = config.model
        assert (m.causal, m.norm, m.standardize) == (True, norm, False)
        model = build_separator(m, targets=m.targets)
        layers = [model.backbone.band_split, *model.backbone.blocks, *model.heads.values()]
        assert model.causal and {layer.norm for layer in layers} == {norm}
        assert all(block.causal for block in model.backbone.blocks)
    with pytest.raises(ConfigError, match="model.causal needs norm 'frame' or 'cumulative'"):
        fit.config_from_args(parse(["--mtl", "--preset", "cpu-stream", "--norm", "chunk"]))


def test_valid_segment_seconds_reaches_the_config_and_defaults_to_the_training_length():
    from bsrnn_tf.data.pipeline import valid_segment_samples
    parse = fit.build_parser().parse_args
    config = fit.config_from_args(parse(["--segment-seconds", "1", "--valid-segment-seconds",
                                         "1.5"]))
    assert (config.data.segment_seconds, config.data.valid_segment_seconds) == (1.0, 1.5)
    assert valid_segment_samples(config.data, 44100) == 66150
    config = fit.config_from_args(parse(["--segment-seconds", "1"]))
    assert config.data.valid_segment_seconds is None
    assert valid_segment_samples(config.data, 44100) == 44100
    assert fit.FIELD_FLAGS["data.valid_segment_seconds"] == "--valid-segment-seconds"


# -- issue 26: one line for every remaining fault ----------------------------------

def _short_run(dataset, tmp_path, *flags, targets=("vocals",)):
    return ["--targets", *targets, *FAST, "--musdb-root", dataset, "--epochs", "1",
            "--examples-per-epoch", "4", "--run-dir", str(tmp_path / "r"), *flags]


def _one_error_line(capsys, words):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "fit.py: error:" in line]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("flags, targets, words", [
    ([], ("bogus",), "has the instrument stem bogus.wav (a target other than drums"),
    ([], ("Bogus",), "--targets: 'Bogus' cannot be a target"),
    (["--cpu-devices", "3"], ("vocals",), "batch size 2 is not divisible by the 3 replicas"),
    (["--segment-seconds", "100"], ("vocals",),
     "--segment-seconds 100 is longer than every training track (the longest is 6.00 s)"),
    (["--segment-seconds", "0.001"], ("vocals",),
     "is 44 samples, shorter than the model's STFT window (n_fft 512"),
    (["--valid-segment-seconds", "100"], ("vocals",),
     "--valid-segment-seconds 100 is longer than every validation track (the longest is 6.00 s)"),
    (["--valid-segment-seconds", "0.001"], ("vocals",),
     "--valid-segment-seconds 0.001: the validation chunk is 44 samples, shorter than the "
     "model's STFT window"),
])
def test_bad_runs_are_one_line_before_training(dataset, tmp_path, capsys, flags, targets, words):
    if "--cpu-devices" in flags:  # logical devices are fixed once TensorFlow has started
        out = subprocess.run([sys.executable, FIT, *_short_run(dataset, tmp_path, *flags)],
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert out.returncode == 2
        lines = [line for line in out.stderr.splitlines() if "fit.py: error:" in line]
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in out.stderr, \
            out.stderr[-2000:]
        return
    assert fit.main(_short_run(dataset, tmp_path, *flags, targets=targets)) == 2
    _one_error_line(capsys, words)
    assert not (tmp_path / "r").exists()


def test_a_file_or_unwritable_run_dir_is_one_line(dataset, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    args = _short_run(dataset, tmp_path)
    args[args.index("--run-dir") + 1] = str(blocker / "run")
    assert fit.main(args) == 2
    _one_error_line(capsys, "is a file, not a folder")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access  # root writes anywhere: read-only as os.access says
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(locked)
                        else real_access(path, mode))
    args[args.index("--run-dir") + 1] = str(locked / "run")
    assert fit.main(args) == 2
    _one_error_line(capsys, "is not writable")


def test_disk_full_while_saving_a_checkpoint_is_one_line(dataset, tmp_path, capsys,
                                                         monkeypatch):
    import errno
    import tensorflow as tf

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "r" / "ckpt"))

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full)
    assert fit.main(_short_run(dataset, tmp_path)) == 1
    line = _one_error_line(capsys, "No space left on device (the disk is full")
    assert "no checkpoint was saved yet" in line


def test_a_corrupt_history_is_a_warning_not_a_traceback(dataset, tmp_path, capsys):
    args = _short_run(dataset, tmp_path)
    assert fit.main(args) == 0
    (tmp_path / "r" / "history.json").write_text("{ not json")
    args[args.index("--epochs") + 1] = "2"
    assert fit.main(args) == 0
    captured = capsys.readouterr()
    assert "history.json cannot be read" in captured.out + captured.err
    assert "Traceback" not in captured.err
    assert [h["epoch"] for h in json.loads((tmp_path / "r" / "history.json").read_text())] == [2]


def test_ctrl_c_while_tensorflow_starts_is_one_line(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fit, "quiet_tensorflow", interrupted)
    assert fit.main(["--mtl"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err


def test_one_training_track_and_no_validation_says_so(dataset, tmp_path, capsys):
    import shutil
    root = tmp_path / "one"
    (root / "train").mkdir(parents=True)
    first = sorted(os.listdir(os.path.join(dataset, "train")))[0]
    shutil.copytree(os.path.join(dataset, "train", first), root / "train" / first)
    args = _short_run(str(root), tmp_path)
    assert fit.main(args) == 0
    captured = capsys.readouterr()
    assert "no validation tracks" in captured.err and "training loss" in captured.err
    assert "validation uSDR" not in captured.out
    assert "no validation: chosen by the training loss" in captured.out
