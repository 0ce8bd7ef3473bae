"""experiments/: the drivers at a hidden tiny ``--scale test`` (real fit.py
runs in this process), resumability, reuse across experiments, the commands
at the cpu and paper scales, and report.py's tables against statistics
computed here with numpy from the JSON files."""

import json
import math
import os
import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from experiments import (band_split, common, multitask, new_instrument,  # noqa: E402
                         records, report, report_format)

RESULT_FIELDS = {"experiment", "setting", "seed", "scale", "command", "config", "wall_seconds",
                 "parameters", "trainable_parameters", "num_bands", "targets", "epochs",
                 "valid_usdr", "final_valid_usdr", "best_valid_usdr", "best_epoch",
                 "best_valid_usdr_mean", "train_loss", "fit_args_key", "valid_gain",
                 "final_valid_gain", "best_valid_gain", "epoch_seconds", "train_seconds"}


# ------------------------------------------------------------ real drivers

@pytest.fixture(scope="module")
def band_split_run(generated_dataset, tmp_path_factory):
    """band_split at the test scale, only its universal41 drums run (one
    real fit.py run, in this process: no TensorFlow start-up per run)."""
    out = tmp_path_factory.mktemp("results") / "band_split"
    argv = ["--scale", "test", "--musdb-root", generated_dataset, "--out", str(out),
            "--in-process", "--only", "drums_universal41"]
    assert band_split.main(argv) == 0
    return out, argv


@pytest.mark.slow
def test_driver_writes_one_result_json_per_run(band_split_run):
    out, _ = band_split_run
    names = sorted(n for n in os.listdir(out) if n.endswith(".json"))
    assert names == ["drums_universal41-seed0.json", "summary.json"]
    r = json.loads((out / "drums_universal41-seed0.json").read_text())
    assert RESULT_FIELDS <= set(r)
    assert r["experiment"] == "band_split" and r["scale"] == "test" and r["seed"] == 0
    assert r["setting"] == "drums_universal41" and r["targets"] == ["drums"]
    assert r["band_split"] == "universal41"
    assert r["command"].startswith("python training/fit.py ")
    assert "--bands universal --num-edges 41" in r["command"]
    assert r["wall_seconds"] > 0 and r["fit_args_key"]
    # Numbers come from the files fit.py wrote.
    run_dir = out / "runs" / "drums_universal41-seed0"
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history) == common.BASE["test"]["epochs"]
    assert r["valid_usdr"]["drums"] == [h["valid_usdr"]["drums"] for h in history]
    assert r["valid_gain"]["drums"] == [h["valid_gain"]["drums"] for h in history]
    assert r["final_valid_gain"]["drums"] == history[-1]["valid_gain"]["drums"]
    assert r["best_valid_usdr"]["drums"] == max(h["valid_usdr"]["drums"] for h in history)
    assert r["epoch_seconds"] == [h["seconds"] for h in history]
    assert r["train_seconds"] == pytest.approx(sum(h["seconds"] for h in history))
    assert r["config"] == json.loads((run_dir / "config.json").read_text())
    assert r["config"]["model"]["bands"] == "universal"
    assert r["config"]["train"]["epochs"] == common.BASE["test"]["epochs"]
    assert r["num_bands"] > 0 and r["parameters"] == r["trainable_parameters"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["drums_universal41"]["metrics"]["best_valid_usdr.drums"][
        "mean"] == pytest.approx(r["best_valid_usdr"]["drums"])
    assert summary["failures"] == [] and summary["missing_runs"] == []
    assert (out / "gain_per_epoch.png").stat().st_size > 1000


@pytest.mark.slow
def test_rerun_skips_finished_runs_and_recollects_a_lost_result(band_split_run, capsys):
    out, argv = band_split_run
    result = out / "drums_universal41-seed0.json"
    before = result.read_text()
    mtime = result.stat().st_mtime_ns
    capsys.readouterr()
    assert band_split.main(argv) == 0
    assert "drums_universal41-seed0: finished earlier, skipped" in capsys.readouterr().out
    assert result.stat().st_mtime_ns == mtime and result.read_text() == before
    # As if the driver died after fit.py finished: the result is collected
    # again, fit.py resumes from the run's last checkpoint and trains nothing.
    result.unlink()
    assert band_split.main(argv) == 0
    again = json.loads(result.read_text())
    assert again["resumed"] is True
    assert again["valid_usdr"] == json.loads(before)["valid_usdr"]


@pytest.mark.slow
def test_multitask_reuses_band_splits_drums_run_as_its_full_budget_drums(band_split_run,
                                                                          capsys):
    out, _ = band_split_run
    other = out.parent / "multitask"
    assert multitask.main(["--scale", "test", "--musdb-root", _root(out), "--out", str(other),
                           "--in-process", "--only", "single_drums_full", "--no-plots"]) == 0
    assert "reused" in capsys.readouterr().out
    reused = json.loads((other / "single_drums_full-seed0.json").read_text())
    source = json.loads((out / "drums_universal41-seed0.json").read_text())
    assert reused["reused_from"].endswith("band_split/drums_universal41-seed0.json")
    assert reused["valid_usdr"] == source["valid_usdr"]
    assert reused["setting"] == "single_drums_full" and reused["experiment"] == "multitask"
    assert not (other / "runs" / "single_drums_full-seed0").exists()
    summary = json.loads((other / "summary.json").read_text())
    assert summary["reused_runs"] == 1 and summary["wall_seconds_runs_total"] == 0


def test_threads_reach_every_fit_but_not_the_runs_identity(band_split_run, capsys):
    out, _ = band_split_run
    other = out.parent / "multitask-threads"  # a dry run writes nothing there
    text = _dry_run(multitask, ["--scale", "test", "--musdb-root", _root(out), "--out",
                                str(other), "--threads", "1", "--evaluate"], capsys)
    fits = _fits(text)
    assert fits and all(c.endswith("--threads 1") for c in fits)
    evaluations = [line for line in text.splitlines() if "training/evaluate.py" in line]
    assert evaluations and not any("--threads" in line for line in evaluations)
    # The drums run of band_split finished without --threads: still the same run.
    assert re.search(r"single_drums_full-seed0: would reuse .*drums_universal41-seed0", text)


def test_a_finished_transfer_run_is_changed_only_by_flags_that_change_its_model(
        tmp_path, monkeypatch):
    """A head finished with --threads 1 on its backbone's run dir is the run
    this scale plans on the backbone's kept copy without --threads; another
    epoch count is not."""
    from experiments import driver
    monkeypatch.setenv("BSRNN_TF_EXPERIMENT_DATA", str(tmp_path / "data"))
    args = new_instrument.build_parser().parse_args(
        ["--scale", "cpu", "--out", str(tmp_path / "x"), "--dry-run"])
    drv = driver.Driver(new_instrument.EXPERIMENT, args, log=lambda line: None)
    run = [r for r in new_instrument.plan(common.scale_base(args))
           if r.key == "vocals_head_v7-seed0"][0]
    planned = drv.fit_argv(run)
    at = planned.index("--init-backbone") + 1
    assert planned[at] == drv.backbone_dir("mtl3_novocals_v7-seed0")
    finished = [*planned[:at], "runs/mtl3_novocals_v7-seed0", *planned[at + 1:],
                "--threads", "1"]
    assert not drv._changed(run, {"argv": finished})
    epochs = finished.index("--epochs") + 1
    longer = [*finished[:epochs], "12", *finished[epochs + 1:]]
    assert drv._changed(run, {"argv": longer})
    assert not drv._changed(run, {"argv": longer, "reused_from": "elsewhere"})


def test_a_fit_option_added_after_a_run_at_its_default_does_not_block_reuse():
    from bsrnn_tf.commands import fit
    from experiments.driver import same_fit_args

    def key(argv, drop=()):
        namespace = vars(fit.build_parser().parse_args(argv))
        return json.dumps({k: v for k, v in namespace.items() if k not in drop}, sort_keys=True)

    argv = ["--preset", "cpu", "--targets", "bass", "--seed", "1"]
    assert fit.build_parser().get_default("channels") is None
    # A run finished before fit.py had --channels: its key lacks the option.
    older = key(argv, drop=("channels",))
    assert same_fit_args(older, key(argv))
    assert not same_fit_args(older, key([*argv, "--channels", "batch"]))
    assert not same_fit_args(older, key(["--preset", "cpu", "--targets", "bass", "--seed", "2"]))
    assert not same_fit_args(None, key(argv))


@pytest.mark.slow
def test_transfer_starts_from_the_kept_backbone_once_the_run_dir_is_gone(band_split_run,
                                                                        tmp_path):
    """A later session has the result files and backbones/ (in git) but not
    runs/ (checkpoints): the bass head trains on the kept headless copy."""
    from bsrnn_tf.models import load_separator
    out, _ = band_split_run
    kept = out / "backbones" / "drums_universal41-seed0"
    original = load_separator(str(out / "runs" / "drums_universal41-seed0"))
    copy = load_separator(str(kept))
    assert copy.targets == [] and os.path.getsize(kept / "model.keras") < \
        os.path.getsize(out / "runs" / "drums_universal41-seed0" / "model.keras")
    for a, b in zip(original.backbone.weights, copy.backbone.weights):
        assert np.array_equal(a.numpy(), b.numpy())
    later = tmp_path / "band_split"
    shutil.copytree(out, later)
    shutil.rmtree(later / "runs" / "drums_universal41-seed0")
    assert band_split.main(["--scale", "test", "--musdb-root", _root(out), "--out", str(later),
                            "--in-process", "--only", "bass_from_drums_universal41",
                            "--no-plots"]) == 0
    result = json.loads((later / "bass_from_drums_universal41-seed0.json").read_text())
    assert result["argv"][result["argv"].index("--init-backbone") + 1].endswith(
        "backbones/drums_universal41-seed0")
    head = load_separator(str(later / "runs" / "bass_from_drums_universal41-seed0"))
    assert head.targets == ["bass"]
    for a, b in zip(original.backbone.weights, head.backbone.weights):
        assert np.array_equal(a.numpy(), b.numpy())


def _root(out) -> str:
    return json.loads((out / "drums_universal41-seed0.json").read_text())["dataset"]


@pytest.fixture(scope="module")
def piano_dataset(generated_dataset, tmp_path_factory):
    """The generated dataset with a piano stem (half of ``other``, in
    integers, so that other = the rest + piano exactly) in every train track
    and in the first test track."""
    root = tmp_path_factory.mktemp("piano") / "musdb"
    shutil.copytree(generated_dataset, root)
    for subset in ("train", "test"):
        tracks = sorted(os.listdir(root / subset))
        for name in tracks if subset == "train" else tracks[:1]:
            other, sr = sf.read(str(root / subset / name / "other.wav"), dtype="int16")
            sf.write(str(root / subset / name / "piano.wav"), other // 2, sr, subtype="PCM_16")
    return str(root)


@pytest.mark.slow
def test_new_instrument_head_and_small_model_at_the_test_scale(generated_dataset,
                                                                piano_dataset, tmp_path):
    out = tmp_path / "results" / "new_instrument"
    argv = ["--scale", "test", "--musdb-root", generated_dataset, "--instrument-root",
            piano_dataset, "--out", str(out), "--in-process", "--evaluate",
            "--only", "piano_head_universal41", "piano_small_universal41"]
    assert new_instrument.main(argv) == 0
    names = sorted(n for n in os.listdir(out) if n.endswith("-seed0.json"))
    assert names == ["mtl4-seed0.json", "piano_head_universal41-seed0.json",
                     "piano_small_universal41-seed0.json"]
    backbone, head, small = (json.loads((out / n).read_text()) for n in names)
    assert backbone["targets"] == list(multitask.TARGETS) and backbone["arm"] == "backbone"
    assert backbone["dataset"] == generated_dataset
    assert head["stage"] == "transfer" and head["backbone_run"] == "mtl4-seed0"
    assert head["targets"] == ["piano"] and head["dataset"] == piano_dataset
    assert head["instrument"] == "piano" and head["arm"] == "head"
    assert 0 < head["trainable_parameters"] < head["parameters"]
    assert small["config"]["model"]["feature_dim"] == common.BASE["test"]["small_feature_dim"]
    assert small["trainable_parameters"] == small["parameters"]
    for r in (head, small):
        evaluation = json.loads((out / "runs" / f"{r['setting']}-seed0" / "evaluation" /
                                 "results.json").read_text())["targets"]["piano"]
        assert r["test_gain"]["piano"] == evaluation["gain"]
        assert r["test_oracle_irm_usdr"]["piano"] == evaluation["oracle_irm_usdr"]
        # Every track's scores are kept: their mean is the table's.
        per_track = r["test_per_track"]
        assert len(per_track) == r["test_tracks"] >= 1
        assert np.mean([t["gain"]["piano"] for t in per_track.values()]) == pytest.approx(
            r["test_gain"]["piano"])
        assert all(t["gain"]["piano"] == pytest.approx(t["usdr"]["piano"]
                                                       - t["scaled_mixture_usdr"]["piano"])
                   for t in per_track.values())
    # The report reads these real files: numbers where they exist, the rest missing.
    text = report.build_report(str(out.parent), str(tmp_path / "REPORT.md"))
    rows = [r for t in _parse_tables(text) for r in t if r.get("model") and
            r.get("band split") == "universal41" and r.get("instrument") == "piano"]
    assert [r["test gain"] for r in rows] == [f"{head['test_gain']['piano']:.2f} (n=1)", "–",
                                              f"{small['test_gain']['piano']:.2f} (n=1)"]
    assert "Runs not yet finished" in text and "piano_scratch_universal41-seed0" in text
    # A result written before per-track scores were kept gets them back from
    # its run's evaluation on the next pass (nothing is trained again).
    path = out / "piano_head_universal41-seed0.json"
    older = {k: v for k, v in head.items() if k not in ("test_per_track",
                                                         "test_silent_references")}
    path.write_text(json.dumps(older))
    assert new_instrument.main(argv) == 0
    assert json.loads(path.read_text())["test_per_track"] == head["test_per_track"]
    # A run whose evaluation failed is evaluated again on the next pass.
    failed = {k: v for k, v in head.items() if not k.startswith("test_")}
    path.write_text(json.dumps({**failed, "test_error": "evaluate.py exit status 2"}))
    assert new_instrument.main(argv) == 0
    again = json.loads(path.read_text())
    assert "test_error" not in again and again["test_gain"] == head["test_gain"]
    assert again["test_per_track"] == head["test_per_track"]


# ------------------------------------------------------------- commands

def _dry_run(module, argv, capsys) -> str:
    capsys.readouterr()
    assert module.main(["--dry-run", *argv]) == 0
    return capsys.readouterr().out


def _fits(text: str) -> list:
    return [line.strip() for line in text.splitlines() if "training/fit.py" in line]


def _run_dir(command: str) -> str:
    return os.path.basename(command.split("--run-dir ")[1].split()[0])


def test_paper_scale_commands(tmp_path, capsys):
    args = ["--scale", "paper", "--musdb-root", "/data/musdb18hq", "--out",
            str(tmp_path / "x")]
    text = _dry_run(band_split, args, capsys)
    fits = _fits(text)
    assert len(fits) == 27  # 3 seeds x 3 splits x (drums, bass head, bass from scratch)
    assert all("--preset small" in c and "--musdb-root /data/musdb18hq" in c for c in fits)
    assert sum("--epochs 150 " in c for c in fits) == 9
    assert sum("--epochs 50 " in c for c in fits) == 18
    assert sum("--bands universal --num-edges 41" in c for c in fits) == 6
    assert text.count("training/evaluate.py") == 27
    transfer = [c for c in fits if _run_dir(c) == "bass_from_drums_universal-seed1"][0]
    assert "--init-backbone" in transfer and "drums_universal-seed1 --freeze-backbone" in transfer
    scratch = [c for c in fits if _run_dir(c) == "bass_scratch_v7-seed1"][0]
    assert "--targets bass --bands v7" in scratch and "--epochs 50 " in scratch
    assert "--init-backbone" not in scratch

    fits = _fits(_dry_run(multitask, args, capsys))
    assert len(fits) == 3 * (1 + 4 + 4)
    mtl = [c for c in fits if _run_dir(c) == "mtl4-seed0"][0]
    quarter = [c for c in fits if _run_dir(c) == "single_vocals_quarter-seed0"][0]
    full = [c for c in fits if _run_dir(c) == "single_vocals_full-seed0"][0]
    assert "--mtl --targets drums bass other vocals" in mtl
    assert "--examples-per-epoch 1000" in mtl and "--examples-per-epoch 250" in quarter
    assert "--examples-per-epoch 1000" in full and "--targets vocals" in full
    assert all("--bands universal --num-edges 41" in c for c in fits)

    args[-1] = str(tmp_path / "y")
    text = _dry_run(new_instrument, [*args, "--instrument-root", "/data/with_piano"], capsys)
    fits = _fits(text)
    assert len(fits) == 3 * (3 + 4 * 2)  # no small models at this scale
    head = [c for c in fits if _run_dir(c) == "guitar_head_universal41-seed1"][0]
    assert "mtl4-seed1 --freeze-backbone" in head and "--targets guitar" in head
    assert "--musdb-root /data/with_piano" in head
    backbone = [c for c in fits if _run_dir(c) == "mtl4-seed1"][0]
    assert "--mtl --targets drums bass other vocals" in backbone
    assert "--musdb-root /data/musdb18hq" in backbone
    backbone = [c for c in fits if _run_dir(c) == "mtl3_novocals_v7-seed1"][0]
    assert "--bands v7 " in backbone and "--mtl --targets drums bass other --" in backbone
    head = [c for c in fits if _run_dir(c) == "vocals_head_v7-seed1"][0]
    assert "mtl3_novocals_v7-seed1 --freeze-backbone" in head and "--targets vocals" in head


def test_new_instrument_cpu_scale_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BSRNN_TF_EXPERIMENT_DATA", str(tmp_path / "data"))
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "piano_small_universal41-seed0.json").write_text(
        json.dumps({"best_valid_usdr": {"piano": 1.0}}))  # finished: not planned again
    text = _dry_run(new_instrument, ["--scale", "cpu", "--out", str(tmp_path / "x")], capsys)
    fits = _fits(text)
    # 3 seeds x (3 backbones + 4 cases x head, scratch, small), less the finished one
    planned = 3 * (3 + 4 * 3) - 1
    assert len(fits) == planned and text.count("training/evaluate.py") == len(fits)
    assert "piano_small_universal41-seed0: finished earlier, would be skipped" in text
    assert not [c for c in fits if _run_dir(c) == "piano_small_universal41-seed0"]
    assert f"new_instrument: {planned} run(s) to train: mtl3_novocals-seed0 " in text
    holdout, full, no_vocals = (str(tmp_path / "data" / d) for d in (
        "holdout-piano-guitar-v1", "instruments-v1", "holdout-no-vocals-v1"))
    for c in fits:
        name = _run_dir(c)
        assert "--preset cpu" in c and "--loss bsrnn+sdr" in c
        if name.startswith("mtl4"):
            assert f"--musdb-root {holdout}" in c and "--epochs 12 " in c
        elif name.startswith("mtl3_novocals"):
            assert f"--musdb-root {no_vocals}" in c and "--epochs 12 " in c
            assert "--mtl --targets drums bass other --" in c
        elif name.startswith("vocals"):
            assert f"--musdb-root {holdout}" in c and "--epochs 6 " in c
            assert "--targets vocals" in c
        else:
            assert f"--musdb-root {full}" in c and "--epochs 6 " in c
        if "_small_" in name:
            assert "--feature-dim 25" in c
    head = [c for c in fits if _run_dir(c) == "piano_head_universal41-seed2"][0]
    assert "mtl4-seed2 --freeze-backbone" in head
    head = [c for c in fits if _run_dir(c) == "vocals_head_universal41-seed1"][0]
    assert "mtl3_novocals-seed1 --freeze-backbone" in head
    # Every backbone is trained before the first head on it.
    order = [_run_dir(c) for c in fits]
    for seed in (0, 1, 2):
        assert order.index(f"mtl3_novocals-seed{seed}") < order.index(
            f"vocals_head_universal41-seed{seed}")
        assert order.index(f"mtl3_novocals_v7-seed{seed}") < order.index(
            f"vocals_head_v7-seed{seed}")
        assert order.index(f"mtl4-seed{seed}") < order.index(
            f"piano_head_universal41-seed{seed}")


def test_songs_without_vocals_need_a_dataset_of_wav_stems(tmp_path, monkeypatch, capsys):
    """mtl3_novocals derives its songs from --musdb-root: a folder without
    train/<track>/<stem>.wav is one line naming it, before any training."""
    monkeypatch.setenv("BSRNN_TF_EXPERIMENT_DATA", str(tmp_path / "data"))
    (tmp_path / "musdb" / "train").mkdir(parents=True)
    (tmp_path / "musdb" / "train" / "song.stem.mp4").write_bytes(b"not a folder of stems")
    code = new_instrument.main(["--scale", "test", "--musdb-root", str(tmp_path / "musdb"),
                                "--out", str(tmp_path / "x"), "--in-process",
                                "--only", "vocals_head_universal41"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(tmp_path / "musdb") in err and "take the vocals out of" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists() or not os.listdir(tmp_path / "data")


def test_paper_scale_needs_a_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    code = band_split.main(["--scale", "paper", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "--musdb-root" in capsys.readouterr().err


def test_only_rejects_unknown_settings(tmp_path, capsys):
    code = band_split.main(["--scale", "test", "--dry-run", "--out", str(tmp_path),
                            "--only", "drums_v8"])
    assert code == 2
    assert "unknown setting" in capsys.readouterr().err


# ---------------------------------------------------------------- report

SEEDS = [0, 1, 2]
# Runs left out of the fake results: a partial set of seeds, and a setting
# with no run at all.
MISSING = {"drums_universal-seed2", "single_bass_quarter-seed1", "vocals_small_v7-seed1",
           "guitar_small_universal41-seed0", "guitar_small_universal41-seed1",
           "guitar_small_universal41-seed2"}


def _targets(run: common.Run) -> list:
    at = run.flags.index("--targets") + 1
    end = next((i for i in range(at, len(run.flags)) if run.flags[i].startswith("--")),
               len(run.flags))
    return run.flags[at:end]


def _fake_result(run: common.Run, experiment: str, rng, shift: float = 0.0) -> dict:
    """A result JSON as a driver writes it, with random values."""
    targets = _targets(run)
    epochs = 4
    curves = {t: list(rng.normal(2.0 + shift, 1.0, epochs)) for t in targets}
    gains = {t: list(rng.normal(shift, 1.0, epochs)) for t in targets}
    seconds = list(rng.uniform(30, 90, epochs))
    result = records.history_curves(
        [{"epoch": i + 1, "train_loss": 1.0 - 0.1 * i, "seconds": seconds[i],
          "valid_usdr": {t: curves[t][i] for t in targets},
          "valid_gain": {t: gains[t][i] for t in targets}} for i in range(epochs)], targets)
    result["test_gain"] = {t: float(rng.normal(shift, 1.0)) for t in targets}
    result["test_scaled_mixture_usdr"] = {t: float(rng.normal(1.0, 0.1)) for t in targets}
    result["test_oracle_irm_usdr"] = {t: float(rng.normal(9.0, 0.1)) for t in targets}
    parameters = 1000 + 10 * len(run.setting)
    result.update({
        "experiment": experiment, "setting": run.setting, "group": run.group,
        "stage": run.stage, "seed": run.seed, "scale": "cpu", "command": "python x",
        "backbone_run": run.backbone, "targets": targets, "num_bands": 30 + len(run.group),
        "parameters": parameters,
        "trainable_parameters": 300 if run.stage == "transfer" else parameters,
        "wall_seconds": float(rng.uniform(100, 1000)), "train_seconds": float(sum(seconds)),
        "dataset": "/cache/holdout-piano-guitar-v1", "builtin_dataset": False,
        "machine": {"cpus": 2, "platform": "test", "cpu_model": "Test CPU"}, **run.meta,
        "config": {"preset": "cpu", "model": {
            "feature_dim": 32, "num_layers": 3, "mlp_ratio": 4,
            "stft": {"n_fft": 2048, "hop_length": 512}},
            "data": {"segment_seconds": 2.0, "remix": True, "source_activity": True,
                     "valid_examples": 32, "examples_per_epoch": 400},
            "train": {"batch_size": 4, "learning_rate": 0.001, "lr_decay": 0.98,
                      "lr_decay_epochs": 2, "clip_norm": 5.0, "patience": 0, "epochs": 12}}})
    return result


def _parse_tables(text: str) -> list:
    """Every markdown table as a list of {header: cell} rows."""
    tables, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header = [c.strip() for c in line.strip("|").split("|")]
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(header, [c.strip() for c in row.strip("|").split("|")])))
            tables.append(rows)
    return tables


def _table(tables: list, header: str, without: str = "") -> list:
    """The one table that has a column ``header`` (and not ``without``)."""
    found = [t for t in tables if t and header in t[0] and (not without or without not in t[0])]
    assert len(found) == 1, (header, len(found))
    return found[0]


def _cell_stats(cell: str):
    """``(mean, std, min, max, n)`` of a report cell, None for "–"."""
    if cell == "–":
        return None
    one = re.fullmatch(r"(-?\d+\.\d\d) \(n=1\)", cell)
    if one:
        return (float(one.group(1)), 0.0, float(one.group(1)), float(one.group(1)), 1.0)
    m = re.fullmatch(r"(-?\d+\.\d\d) ± (\d+\.\d\d) \[(-?\d+\.\d\d), (-?\d+\.\d\d)\] "
                     r"\(n=(\d+)\)", cell)
    assert m, cell
    return tuple(float(x) for x in m.groups())


def _expect(values):
    """What a cell should hold for ``values`` (a {seed: value} dict or a
    list), computed with numpy."""
    v = np.asarray(list(values.values()) if isinstance(values, dict) else values, float)
    if not len(v):
        return None
    std = v.std(ddof=1) if len(v) > 1 else 0.0
    return tuple(float(f"{x:.2f}") for x in (v.mean(), std, v.min(), v.max())) + (
        float(len(v)),)


def _r2(x) -> str:
    return "–" if x is None else f"{x:.2f}"


@pytest.fixture
def fake_results(tmp_path):
    rng = np.random.default_rng(7)
    base = dict(common.BASE["cpu"], seeds=SEEDS)
    results = tmp_path / "results"
    for name, module in (("band_split", band_split), ("multitask", multitask),
                         ("new_instrument", new_instrument)):
        folder = results / name
        folder.mkdir(parents=True)
        for run in module.plan(base):
            if run.key in MISSING:
                continue
            # Piano heads clearly ahead of their models from scratch.
            shift = 10.0 if run.setting == "piano_head_universal41" else 0.0
            records.write_json(str(folder / f"{run.key}.json"),
                               _fake_result(run, name, rng, shift))
        (folder / "fig.png").write_bytes(b"\x89PNG fake")
        records.write_json(str(folder / "summary.json"), {"figures": ["fig.png"]})
    (results / "notes.md").write_text("Hand-written notes.\n")
    return results


class Fake:
    """The fake result files, read back with json: {seed: result} per setting."""

    def __init__(self, folder):
        self.folder = folder

    def runs(self, experiment, setting) -> dict:
        folder = self.folder / experiment
        out = {}
        for n in sorted(os.listdir(folder)):
            if n.startswith(f"{setting}-seed"):
                r = json.loads((folder / n).read_text())
                out[r["seed"]] = r
        return out

    def gain(self, experiment, setting, target, key="test_gain") -> dict:
        return {s: r[key][target] for s, r in self.runs(experiment, setting).items()}


def _diff(a: dict, b: dict) -> dict:
    return {s: a[s] - b[s] for s in a if s in b}


def _seed_mean(per_target: list) -> dict:
    seeds = set.intersection(*(set(v) for v in per_target))
    return {s: float(np.mean([v[s] for v in per_target])) for s in seeds}


def _pooled_mean(dicts: list) -> float:
    return float(np.mean([v for d in dicts for v in d.values()]))


def test_report_band_split_tables_equal_numpy_statistics(fake_results, tmp_path):
    out = tmp_path / "REPORT.md"
    assert report.main(["--results", str(fake_results), "--out", str(out)]) == 0
    text = out.read_text()
    tables, fake = _parse_tables(text), Fake(fake_results)
    section = text.split("## 1. Band split")[1].split("## 2.")[0]

    table = _table(tables, "drums test gain")
    assert [r["band split"] for r in table] == list(band_split.SPLITS)
    for row in table:
        split = row["band split"]
        drums = fake.runs("band_split", f"drums_{split}")
        gain = fake.gain("band_split", f"drums_{split}", "drums")
        assert len(gain) == (2 if split == "universal" else 3)
        assert _cell_stats(row["drums test gain"]) == _expect(gain)
        assert _cell_stats(row["drums validation gain (kept epoch)"]) == _expect(
            fake.gain("band_split", f"drums_{split}", "drums", "best_valid_gain"))
        assert row["bands"] == str(drums[0]["num_bands"])
        assert row["parameters"] == f"{drums[0]['parameters']:,}"
        assert row["drums oracle IRM uSDR"] == _r2(_pooled_mean(
            [fake.gain("band_split", f"drums_{split}", "drums", "test_oracle_irm_usdr")]))

    table = _table(tables, "bass head test gain")
    points = {}
    for row in table:
        split = row["band split"]
        head = fake.gain("band_split", f"bass_from_drums_{split}", "bass")
        scratch = fake.gain("band_split", f"bass_scratch_{split}", "bass")
        assert _cell_stats(row["bass head test gain"]) == _expect(head)
        assert _cell_stats(row["bass from scratch test gain"]) == _expect(scratch)
        assert _cell_stats(row["head − from scratch (paired)"]) == _expect(_diff(head, scratch))
        assert row["bass best-scaled mixture uSDR"] == _r2(_pooled_mean([
            fake.gain("band_split", s, "bass", "test_scaled_mixture_usdr")
            for s in (f"bass_from_drums_{split}", f"bass_scratch_{split}")]))
        drums = fake.gain("band_split", f"drums_{split}", "drums")
        seeds = sorted(set(head) & set(drums))  # each head with its own backbone's seed
        points[split] = (np.array([drums[s] for s in seeds]), np.array([head[s] for s in seeds]))
    # The confound: slopes with numpy, the head gain at a common drums gain.
    x = np.concatenate([p[0] for p in points.values()])
    y = np.concatenate([p[1] for p in points.values()])
    overall = np.polyfit(x, y, 1)[0]
    within = (sum(((px - px.mean()) * (py - py.mean())).sum() for px, py in points.values())
              / sum(((px - px.mean()) ** 2).sum() for px, _ in points.values()))
    assert f"Slope over all runs: {overall:.2f} dB" in section
    assert f"(each split its own intercept): {within:.2f}." in section
    lo = max(p[0].min() for p in points.values())
    hi = min(p[0].max() for p in points.values())
    table = _table(tables, "bass head at equal drums quality")
    for row in table:
        px, py = points[row["band split"]]
        assert row["runs"] == str(len(px))
        assert row["drums test gain of the backbones [min, max]"] == \
            f"[{px.min():.2f}, {px.max():.2f}]"
        assert row["bass head test gain (mean)"] == f"{py.mean():.2f}"
        expected = "–" if lo > hi else f"{py.mean() + within * ((lo + hi) / 2 - px.mean()):.2f}"
        assert row["bass head at equal drums quality"] == expected
    assert ("do not overlap" in section) == (lo > hi)

    # every seed's value, missing ones as "–"
    table = _table(_parse_tables(section), "seed 2")
    row = [r for r in table if r["run"] == "drums from scratch, universal"][0]
    gain = fake.gain("band_split", "drums_universal", "drums")
    assert [row[f"seed {s}"] for s in SEEDS] == [f"{gain[0]:.2f}", f"{gain[1]:.2f}", "–"]
    assert "drums_universal-seed2" in section.split("Runs not yet finished")[1]
    assert "![fig.png](results/band_split/fig.png)" in section


def test_report_multitask_table_equals_numpy_statistics(fake_results, tmp_path):
    out = tmp_path / "REPORT.md"
    text = report.build_report(str(fake_results), str(out))
    tables, fake = _parse_tables(text), Fake(fake_results)
    table = _table(tables, "MTL − quarter (paired)")
    assert [r["target"] for r in table] == [*multitask.TARGETS, "**mean of the four**"]
    gains = {"mtl": {t: fake.gain("multitask", "mtl4", t) for t in multitask.TARGETS}}
    for arm in ("quarter", "full"):
        gains[arm] = {t: fake.gain("multitask", f"single_{t}_{arm}", t)
                      for t in multitask.TARGETS}
    assert len(gains["quarter"]["bass"]) == 2
    for row in table:
        target = row["target"]
        if target in multitask.TARGETS:
            v = {arm: gains[arm][target] for arm in gains}
            mtl = fake.runs("multitask", "mtl4")
            assert row["oracle IRM uSDR"] == _r2(_pooled_mean([
                {s: r["test_oracle_irm_usdr"][target] for s, r in mtl.items()},
                *(fake.gain("multitask", f"single_{target}_{arm}", target,
                            "test_oracle_irm_usdr") for arm in ("quarter", "full"))]))
        else:  # per seed, the mean over the four targets
            v = {arm: _seed_mean(list(gains[arm].values())) for arm in gains}
            assert sorted(v["quarter"]) == [0, 2]
        assert _cell_stats(row["MTL"]) == _expect(v["mtl"])
        assert _cell_stats(row["single, quarter budget"]) == _expect(v["quarter"])
        assert _cell_stats(row["single, full budget"]) == _expect(v["full"])
        assert _cell_stats(row["MTL − quarter (paired)"]) == _expect(_diff(v["mtl"],
                                                                           v["quarter"]))
        assert _cell_stats(row["MTL − full (paired)"]) == _expect(_diff(v["mtl"], v["full"]))
    table = _table(tables, "single, quarter budget", without="MTL − full (paired)")
    assert _cell_stats(table[1]["MTL"]) == _expect(fake.gain("multitask", "mtl4", "bass",
                                                             "best_valid_gain"))
    section = text.split("## 2. Multi-task")[1].split("## 3.")[0]
    assert "single_bass_quarter-seed1" in section.split("Runs not yet finished")[1]


def test_report_new_instrument_tables_equal_numpy_statistics(fake_results, tmp_path):
    out = tmp_path / "REPORT.md"
    text = report.build_report(str(fake_results), str(out))
    tables, fake = _parse_tables(text), Fake(fake_results)
    table = _table(tables, "mean of its targets")
    for row in table:
        runs = fake.runs("new_instrument", row["backbone"])
        targets = new_instrument.BACKBONES[row["backbone"]][1]
        per_target = [{s: r["test_gain"][t] for s, r in runs.items()} for t in targets]
        for t in multitask.TARGETS:
            if t in targets:
                assert _cell_stats(row[t]) == _expect(per_target[targets.index(t)])
            else:
                assert row[t] == "not a target"
        assert _cell_stats(row["mean of its targets"]) == _expect(_seed_mean(per_target))
    assert [r["backbone"] for r in table] == ["mtl3_novocals", "mtl3_novocals_v7", "mtl4"]

    table = _table(tables, "head − this model (paired)")
    assert len(table) == len(new_instrument.CASES) * 3
    assert [(r["instrument"], r["band split"]) for r in table[::3]] == \
        [(i, s) for i, s, _ in new_instrument.CASES]
    labels = {v: k for k, v in new_instrument.ARM_LABELS.items()}
    for row in table:
        inst, split, arm = row["instrument"], row["band split"], labels[row["model"]]
        setting = f"{inst}_{arm}_{split}"
        runs = fake.runs("new_instrument", setting)
        gain = fake.gain("new_instrument", setting, inst)
        head = fake.gain("new_instrument", f"{inst}_head_{split}", inst)
        assert _cell_stats(row["test gain"]) == _expect(gain)
        assert _cell_stats(row["validation gain (final)"]) == _expect(
            fake.gain("new_instrument", setting, inst, "final_valid_gain"))
        scratch = fake.runs("new_instrument", f"{inst}_scratch_{split}")
        ratios = {s: runs[s]["train_seconds"] / scratch[s]["train_seconds"]
                  for s in runs if s in scratch}
        assert _cell_stats(row["time ÷ scratch's (paired)"]) == _expect(ratios)
        if not runs:
            assert row["trainable parameters"] == row["minutes of training"] == "–"
            assert row["head − this model (paired)"] == "–"
            continue
        assert row["trainable parameters"] == f"{runs[min(runs)]['trainable_parameters']:,}"
        assert row["minutes of training"] == \
            f"{np.mean([r['train_seconds'] for r in runs.values()]) / 60:.1f}"
        expected = "" if arm == "head" else _expect(_diff(head, gain))
        assert (row["head − this model (paired)"] if arm == "head" else
                _cell_stats(row["head − this model (paired)"])) == expected
        every = [fake.gain("new_instrument", f"{inst}_{a}_{split}", inst,
                           "test_scaled_mixture_usdr") for a in new_instrument.ARMS]
        assert row["best-scaled mixture uSDR"] == _r2(_pooled_mean(every))
    assert len(fake.gain("new_instrument", "vocals_small_v7", "vocals")) == 2

    # minutes to reach the scratch model's final validation gain
    table = _table(tables, "level (dB)")
    for row in table:
        inst, split = row["instrument"], row["band split"]
        level = np.mean(list(fake.gain("new_instrument", f"{inst}_scratch_{split}", inst,
                                       "final_valid_gain").values()))
        assert row["level (dB)"] == f"{level:.2f}"
        for arm, label in new_instrument.ARM_LABELS.items():
            runs = list(fake.runs("new_instrument", f"{inst}_{arm}_{split}").values())
            if not runs:
                assert row[label] == "–"
                continue
            curve = np.mean([r["valid_gain"][inst] for r in runs], axis=0)
            clock = np.mean([np.cumsum(r["epoch_seconds"]) / 60 for r in runs], axis=0)
            reached = np.nonzero(curve >= level)[0]
            assert row[label] == (f"epoch {reached[0] + 1}, {clock[reached[0]]:.1f} min"
                                  if len(reached) else f"not reached (best {curve.max():.2f})")

    section = text.split("## 3. A new instrument")[1]
    line = [x for x in section.splitlines()
            if x.startswith("- piano, universal41: head vs whole model from scratch")][0]
    diff = _diff(fake.gain("new_instrument", "piano_head_universal41", "piano"),
                 fake.gain("new_instrument", "piano_scratch_universal41", "piano"))
    d = np.array(list(diff.values()))
    assert f"the head is ahead by {d.mean():.2f} dB" in line
    assert f"std of the differences {d.std(ddof=1):.2f} dB" in line
    assert line.endswith("larger than the spread.")
    missing = section.split("Runs not yet finished")[1].split("\n")[0]
    assert all(k in missing for k in MISSING if k.startswith(("vocals", "piano", "guitar")))
    assert "![fig.png](results/new_instrument/fig.png)" in section


def test_report_setup_wall_time_and_notes(fake_results, tmp_path):
    text = report.build_report(str(fake_results), str(tmp_path / "REPORT.md"))
    assert "Hand-written notes." in text and "experiments/holdout_data.py" in text
    assert "- Machine: 2 CPU cores (Test CPU), test; no GPU." in text
    for old in ("model_size", "normalisation", "mtl3_no_vocals"):
        assert old not in text
    wall = _table(_parse_tables(text), "wall time")
    total = 0.0
    for row in wall[:3]:
        folder = fake_results / row["experiment"]
        seconds = sum(json.loads((folder / n).read_text())["wall_seconds"]
                      for n in os.listdir(folder) if n.endswith(".json") and n != "summary.json")
        total += seconds
        assert f"({seconds:.0f} s)" in row["wall time"]
    assert [r["experiment"] for r in wall] == [*report.EXPERIMENTS, "**total**"]
    assert f"({total:.0f} s)" in wall[3]["wall time"]


def test_report_without_results_says_so(tmp_path):
    text = report.build_report(str(tmp_path / "none"), str(tmp_path / "REPORT.md"))
    assert "No results found" in text
    assert text.count("Not run (no result files).") == 3


def test_total_elapsed_counts_overlaps_once_and_gaps_not_at_all():
    assert report.union_elapsed([(0.0, 10.0), (5.0, 20.0), None, (100.0, 110.0)]) == 30.0
    assert report.union_elapsed([(0.0, 50.0), (10.0, 20.0)]) == 50.0
    assert report.union_elapsed([None]) is None
    # Two runs side by side one evening (10 and 20 min, overlapping 5), a
    # third the next day (30 min): 25 + 30 minutes, not the day between.
    runs = [{"finished_at": "2026-12-06 20:10:00", "wall_seconds": 600.0},
            {"finished_at": "2026-12-06 20:25:00", "wall_seconds": 1200.0},
            {"finished_at": "2026-12-07 09:30:00", "wall_seconds": 1800.0},
            {"finished_at": "2026-12-07 09:30:00", "wall_seconds": 900.0,
             "reused_from": "elsewhere"}]
    assert report.elapsed(runs) == pytest.approx((25 + 30) * 60.0)
    assert report.elapsed(runs[3:]) is None


def test_compare_wording_follows_the_paired_differences():
    compare = report_format.compare
    ahead = compare({0: 3.0, 1: 4.0, 2: 5.0}, {0: 1.0, 1: 2.2, 2: 2.9}, "a", "b", "x")
    assert "a is ahead by 1.97 dB" in ahead and "paired, 3 seeds" in ahead
    assert ahead.endswith(": larger than the spread.")
    mixed = compare({0: 1.0, 1: 2.0}, {0: 1.5, 1: 1.0}, "a", "b", "x")
    assert "a is ahead by 0.25 dB" in mixed and mixed.endswith(": within the spread.")
    behind = compare({0: 1.0, 1: 2.0}, {0: 3.0, 1: 4.5}, "a", "b", "x")
    assert "b is ahead by 2.25 dB" in behind and "larger than the spread" in behind
    small = compare({0: 1.0, 1: 1.1, 2: 1.0}, {0: 0.0, 1: 1.0, 2: 0.99}, "a", "b", "x")
    assert small.endswith("within the spread.")  # same sign, mean below the std
    one = compare({0: 3.0, 1: 2.0}, {0: 1.0}, "a", "b", "x")
    assert "one seed: a direction, not a result" in one and "left out: [1]" in one
    assert "not measured" in compare({}, {0: 1.0}, "a", "b", "x")
    assert "not measured" in compare({0: 1.0}, {1: 1.0}, "a", "b", "x")


def test_stats_match_numpy():
    values = [1.0, 2.5, -0.5, 4.0]
    s = records.stats(values + [float("nan"), None])
    assert s["n"] == 4
    assert s["mean"] == pytest.approx(np.mean(values))
    assert s["std"] == pytest.approx(np.std(values, ddof=1))
    assert (s["min"], s["max"]) == (-0.5, 4.0)
    assert records.stats([3.0])["std"] == 0.0
    assert records.stats([])["mean"] is None and not math.isnan(records.stats([1.0])["mean"])


def _int16_track(folder, rng, stems):
    """Writes int16 stems (and their exact sum as the mixture); returns them."""
    os.makedirs(folder)
    audio = {s: rng.integers(-3000, 3000, (2000, 2)).astype(np.int32) for s in stems}
    for name, a in {**audio, "mixture": sum(audio[s] for s in ("drums", "bass", "other",
                                                               "vocals"))}.items():
        sf.write(os.path.join(folder, f"{name}.wav"), a.astype(np.int16), 44100,
                 subtype="PCM_16")
    return audio


def test_holdout_derivation_takes_instruments_out_of_other_and_silences_a_stem(tmp_path):
    from experiments.holdout_data import derive_without
    rng = np.random.default_rng(3)
    src = tmp_path / "full"
    a = _int16_track(str(src / "train" / "a"), rng, ("drums", "bass", "other", "vocals", "piano"))
    b = _int16_track(str(src / "test" / "b"), rng, ("drums", "bass", "other", "vocals"))

    def read(root, track, stem):
        return sf.read(str(root / track / f"{stem}.wav"), dtype="int16")[0].astype(np.int32)

    out = tmp_path / "holdout"
    derive_without(str(src), str(out), ("piano", "guitar"))
    assert np.array_equal(read(out, "train/a", "other"), a["other"] - a["piano"])
    assert np.array_equal(read(out, "train/a", "mixture"),
                          a["drums"] + a["bass"] + a["other"] - a["piano"] + a["vocals"])
    assert not (out / "train" / "a" / "piano.wav").exists()
    assert np.array_equal(read(out, "test/b", "other"), b["other"])
    assert np.array_equal(read(out, "train/a", "vocals"), a["vocals"])

    quiet = tmp_path / "no-vocals"
    derive_without(str(out), str(quiet), ("vocals",))
    assert not np.any(read(quiet, "train/a", "vocals"))
    assert np.array_equal(read(quiet, "test/b", "mixture"), b["drums"] + b["bass"] + b["other"])
    assert np.array_equal(read(quiet, "train/a", "other"), a["other"] - a["piano"])
    assert np.array_equal(read(quiet, "train/a", "drums"), a["drums"])


def test_report_warns_when_mtl_and_single_target_scores_differ_by_a_silent_song():
    from experiments.report_sections import mixed_scoring_notes
    singles = [{"seed": 0, "test_gain": {"other": -0.3}, "test_per_track": {},
                "test_silent_references": {"other": ["Song 7"]},
                "best_valid_gain": {"other": -1.25}},
               {"seed": 0, "test_gain": {"drums": 4.1}, "test_per_track": {},
                "test_silent_references": {}, "best_valid_gain": {"drums": 3.0}}]
    old_mtl = [{"seed": 0, "test_gain": {t: 0.0 for t in multitask.TARGETS},
                "best_valid_gain": {t: 0.5 for t in multitask.TARGETS}}]
    notes = [n for n in mixed_scoring_notes(old_mtl, {"single-target runs": singles},
                                            multitask.TARGETS, "MTL runs") if n]
    assert len(notes) == 1 and notes[0].startswith("- **other: test figures not comparable")
    assert "Song 7" in notes[0]
    assert "MTL runs 0.50 (n=1), single-target runs -1.25 (n=1)" in notes[0]
    rescored = [{**old_mtl[0], "test_per_track": {}}]
    assert mixed_scoring_notes(rescored, {"b": singles}, multitask.TARGETS, "a") == []


def test_multitask_mean_leaves_out_a_target_scored_on_different_songs():
    """MTL runs scored before evaluate.py left silent references out, single-
    target runs scored since: ``other`` differs by the song, so the mean row
    pools drums, bass and vocals only (checked against numpy)."""
    from experiments.report_sections import multitask_section
    rng = np.random.default_rng(3)
    runs, gains = [], {}
    for seed in range(3):
        g = {t: float(v) for t, v in zip(multitask.TARGETS, rng.normal(2, 1, 4))}
        runs.append({"setting": multitask.MTL, "seed": seed, "test_gain": g})
        gains[("mtl", seed)] = g
        for arm in multitask.ARMS:
            for t in multitask.TARGETS:
                v = float(rng.normal(1, 1))
                gains[(arm, seed, t)] = v
                runs.append({"setting": multitask.single_setting(t, arm), "seed": seed,
                             "test_gain": {t: v}, "test_per_track": {},
                             "test_silent_references": {"other": ["Song 7"]} if t == "other"
                             else {}})
    text = "\n".join(multitask_section(runs))
    table = _table(_parse_tables(text), "MTL − quarter (paired)")
    assert table[-1]["target"] == "**mean of drums, bass, vocals**"
    kept = [t for t in multitask.TARGETS if t != "other"]
    mtl = {s: np.mean([gains[("mtl", s)][t] for t in kept]) for s in range(3)}
    full = {s: np.mean([gains[("full", s, t)] for t in kept]) for s in range(3)}
    assert _cell_stats(table[-1]["MTL"]) == _expect(mtl)
    assert _cell_stats(table[-1]["MTL − full (paired)"]) == _expect(_diff(mtl, full))
    assert "other is left out of it" in text
    assert "other: MTL vs single-target at the same total budget (scored on different" in text
    for run in runs:  # the MTL runs rescored: the four are pooled again
        run.setdefault("test_per_track", {})
    table = _table(_parse_tables("\n".join(multitask_section(runs))), "MTL − quarter (paired)")
    assert table[-1]["target"] == "**mean of the four**"


def test_figures_of_a_subset_run_show_every_finished_run(tmp_path):
    """An --only/--seeds invocation plots the experiment's every result file,
    its own (newer) results over them, not only the runs it selected."""
    from experiments.driver import all_results
    old = {"setting": "drums_v7", "seed": 0, "best_valid_usdr": {"drums": 1.0}}
    mine = {"setting": "drums_v7", "seed": 1, "best_valid_usdr": {"drums": 2.0}}
    records.write_json(str(tmp_path / "drums_v7-seed0.json"), old)
    records.write_json(str(tmp_path / "drums_v7-seed1.json"), {**mine, "best_valid_usdr": {}})
    records.write_json(str(tmp_path / "summary.json"), {"figures": []})
    merged = all_results(str(tmp_path), {"drums_v7-seed1": mine})
    assert merged == {"drums_v7-seed0": old, "drums_v7-seed1": mine}
