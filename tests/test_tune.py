"""``training/tune.py``: a two-trial search on ``tiny``, its report and best
config (which trains with fit.py), resuming, and invalid search spaces."""

import csv
import json
import math
import os

import numpy as np
import pytest

from bsrnn_tf.commands import fit, tune

COMMON = ["--preset", "tiny", "--examples-per-epoch", "4", "--valid-examples", "2",
          "--segment-seconds", "0.5", "--batch-size", "2", "--quiet", "--no-activity-detection"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from bsrnn_tf.datasets.synth import make_dataset
    root = tmp_path_factory.mktemp("tunedata") / "musdb"
    make_dataset(str(root), tracks_train=4, tracks_test=1, seconds=4.0, seed=5)
    return str(root)


@pytest.mark.slow
def test_hyperband_search_writes_report_and_best_config_trains(dataset, tmp_path, capsys):
    args = [*COMMON, "--musdb-root", dataset, "--mtl", "--targets", "bass", "vocals",
            "--max-trials", "2", "--epochs", "2", "--num-layers", "1", "2",
            "--feature-dim", "8", "--bands", "v7", "universal:41", "--lr", "1e-3",
            "--directory", str(tmp_path), "--name", "hb"]
    assert tune.main(args) == 0
    project = tmp_path / "hb"
    with open(project / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    gains = [float(r["gain_at_equal_time_db"]) for r in rows]  # NaN (none by T) last
    assert gains == sorted(gains, key=lambda g: (not math.isnan(g), g), reverse=True)
    assert not math.isnan(gains[0])
    assert {r["bands"] for r in rows} <= {"v7", "universal:41"}
    assert all(int(r["parameters"]) > 0 for r in rows)
    assert "| rank |" in (project / "results.md").read_text()
    assert (project / "usdr_vs_params.png").read_bytes()[:4] == b"\x89PNG"
    best = json.loads((project / "best_config.json").read_text())
    top = rows[0]
    assert best["model"]["num_layers"] == int(top["num_layers"])
    assert best["model"]["targets"] == ["bass", "vocals"]
    # TensorBoard hparams logs per trial.
    assert len(os.listdir(project / "logs")) == 2
    run = tmp_path / "from_best"
    assert fit.main(["--config", str(project / "best_config.json"), "--mtl", "--epochs", "1",
                     "--musdb-root", dataset, "--run-dir", str(run), "--quiet"]) == 0
    assert (run / "model.keras").exists()


@pytest.mark.slow
def test_resumed_search_does_not_rerun_finished_trials(dataset, tmp_path, capsys):
    """Also: --mixed-precision and --recompute-blocks reach every trial, and
    the caller's dtype policy is back afterwards."""
    import keras
    args = [*COMMON, "--musdb-root", dataset, "--targets", "drums", "--tuner", "random",
            "--epochs", "1", "--num-layers", "1", "--feature-dim", "4", "8", "--bands", "v7",
            "--lr", "1e-3", "3e-3", "--directory", str(tmp_path), "--name", "rs",
            "--mixed-precision", "--recompute-blocks"]
    assert tune.main([*args, "--max-trials", "1"]) == 0
    assert keras.mixed_precision.global_policy().name == "float32"
    trial = tmp_path / "rs" / "trial_0"
    train = json.loads((trial / "config.json").read_text())["train"]
    assert train["mixed_precision"] is True and train["recompute_blocks"] is True
    model = keras.saving.load_model(str(trial / "model.keras"), compile=False)
    assert model.backbone.dtype_policy.name == "mixed_float16"
    summary = trial / tune.SUMMARY_FILE
    first = summary.read_text()
    assert np.isfinite(json.loads(first)["val_usdr"])
    stamp = summary.stat().st_mtime_ns
    capsys.readouterr()
    assert tune.main([*args, "--max-trials", "2"]) == 0
    out = capsys.readouterr().out
    assert "Reloading Tuner" in out
    assert summary.stat().st_mtime_ns == stamp and summary.read_text() == first
    assert len(tune.collect(str(tmp_path / "rs"))) == 2


def _summary(trial_id, layers, segment, val_usdr, history):
    """A trial_summary.json of a trial whose epochs ended at the cumulative
    ``seconds`` with the mean validation ``gain``: ``history`` [(seconds, gain)]."""
    return {"trial_id": trial_id, "values": {"num_layers": layers, "feature_dim": 8,
                                             "bands": "v7", "segment_seconds": segment,
                                             "learning_rate": 1e-3},
            "epochs": len(history), "parameters": 1000 * layers, "bands": 7,
            "val_usdr": val_usdr, "segment_seconds": segment, "valid_segment_seconds": 1.0,
            "seconds": history[-1][0],
            "history": [{"epoch": i + 1, "seconds": t, "valid_gain": g}
                        for i, (t, g) in enumerate(history)]}


def test_report_ranks_by_the_gain_reached_at_equal_time(tmp_path):
    """T is the shortest total time (b: 250 s). a reached 2.0 dB by then
    (its 3.0 dB came at 300 s), b 2.5 dB; c, best in uSDR and in gain, had
    no validated epoch by T: it comes last, and b's config is the best."""
    from bsrnn_tf.config import ExperimentConfig
    from bsrnn_tf.models import preset
    trials = {"a": _summary("a", 1, 1.0, 6.0, [(100.0, 1.0), (200.0, 2.0), (300.0, 3.0)]),
              "b": _summary("b", 2, 2.0, 5.0, [(150.0, 2.5), (250.0, 2.4)]),
              "c": _summary("c", 4, 3.0, 9.0, [(400.0, 5.0), (800.0, None)])}
    for name, summary in trials.items():
        (tmp_path / f"trial_{name}").mkdir()
        (tmp_path / f"trial_{name}" / tune.SUMMARY_FILE).write_text(json.dumps(summary))
    base = ExperimentConfig(preset="tiny", model=preset("tiny"))
    base.data.valid_segment_seconds = 1.0
    text = tune.write_report(str(tmp_path), base)
    assert "T = 250.0 s (0.0694 h)" in text
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["trial_id"] for r in rows] == ["b", "a", "c"]
    assert [r["gain_at_equal_time_db"] for r in rows] == ["2.5", "2.0", "nan"]
    assert [r["best_gain_db"] for r in rows] == ["2.5", "3.0", "5.0"]
    assert [r["segment_seconds"] for r in rows] == ["2.0", "1.0", "3.0"]
    assert [float(r["hours"]) for r in rows] == [round(t / 3600, 4) for t in (250, 300, 800)]
    assert "| 3 | c | v7 |" in text and text.rstrip().endswith("| - | 0.2222 | 800.0 |")
    best = json.loads((tmp_path / "best_config.json").read_text())
    assert best["model"]["num_layers"] == 2 and best["data"]["segment_seconds"] == 2.0
    assert best["data"]["valid_segment_seconds"] == 1.0
    assert (tmp_path / "gain_vs_hours.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("tuner_id", ["chief", "tuner0"])
def test_distributed_chief_loads_no_data_and_alone_writes_the_report(tuner_id, tmp_path,
                                                                      monkeypatch, capsys):
    """Keras Tuner's distributed mode: the chief trains nothing (no data
    loaded, no tracks for its trials) and writes the report; a worker loads
    the data and leaves the report to the chief (it may end while another
    worker's trial still runs). The search itself is Keras Tuner's."""
    from bsrnn_tf.commands import fit_checks
    from bsrnn_tf.training import trainer_setup
    project = tmp_path / "study" / "d"
    (project / "trial_0").mkdir(parents=True)
    (project / "trial_0" / tune.SUMMARY_FILE).write_text(
        json.dumps(_summary("0", 1, 0.5, 1.0, [(10.0, 1.0)])))
    loaded, handed = [], []
    monkeypatch.setattr(trainer_setup, "load_tracks_for",
                        lambda base: loaded.append(base.name) or ("train", "valid"))
    monkeypatch.setattr(fit_checks, "check_segment_fits", lambda config, *tracks: None)

    class SearchDone:
        project_dir = str(project)

        def search(self):
            pass

    monkeypatch.setattr(tune, "make_tuner", lambda args, base, strategy, tracks, name:
                        handed.append(tracks) or SearchDone())
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8765")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", tuner_id)
    argv = [*COMMON, "--musdb-root", str(tmp_path / "musdb"), "--targets", "drums",
            "--tuner", "random", "--epochs", "1", "--num-layers", "1", "--feature-dim", "4",
            "--bands", "v7", "--directory", str(tmp_path / "study"), "--name", "d"]
    assert tune.main(argv) == 0
    out = capsys.readouterr().out
    if tuner_id == "chief":
        assert loaded == [] and handed == [None]
        assert "| 1 | 0 | v7 |" in (project / "results.md").read_text()
    else:
        assert loaded == ["d"] and handed == [("train", "valid")]
        assert not (project / "results.md").exists()
        assert "tuner0: no trial left for this worker; the chief writes the report" in out


@pytest.mark.slow
def test_trials_of_different_chunk_lengths_are_validated_on_the_same_chunks(dataset, tmp_path):
    """--segment-seconds 0.75 0.5: both trials train on their own chunks and
    are scored on 0.75 s validation chunks (the first value), so their
    references (the scaled mixture's uSDR) are the same numbers. Also: a
    --max-minutes budget reaches every trial (each stops after one of its
    3 epochs), and so does --dataset (recorded; --musdb-root is what they
    read)."""
    args = [*COMMON, "--musdb-root", dataset, "--targets", "drums", "--tuner", "random",
            "--max-trials", "2", "--epochs", "3", "--max-minutes", "1e-9", "--dataset", "synth",
            "--num-layers", "1", "--feature-dim", "4",
            "--bands", "v7", "--lr", "1e-3", "--segment-seconds", "0.75", "0.5",
            "--directory", str(tmp_path), "--name", "seg"]
    assert tune.main(args) == 0
    project = tmp_path / "seg"
    summaries = [json.loads((project / d / tune.SUMMARY_FILE).read_text())
                 for d in sorted(os.listdir(project)) if d.startswith("trial_")]
    assert sorted(s["segment_seconds"] for s in summaries) == [0.5, 0.75]
    configs = [json.loads((project / f"trial_{s['trial_id']}" / "config.json").read_text())
               for s in summaries]
    assert sorted(c["data"]["segment_seconds"] for c in configs) == [0.5, 0.75]
    assert [c["data"]["valid_segment_seconds"] for c in configs] == [0.75, 0.75]
    assert [c["train"]["max_minutes"] for c in configs] == [1e-9, 1e-9]
    assert [c["data"]["builtin_dataset"] for c in configs] == ["synth", "synth"]
    first, second = (s["valid_references"] for s in summaries)
    assert first == second and np.isfinite(first["scaled_mixture"]["drums"])
    for s in summaries:
        (epoch,) = s["history"]
        assert epoch["seconds"] == s["seconds"] > 0 and np.isfinite(epoch["valid_gain"])
    with open(project / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["segment_seconds"] for r in rows) == ["0.5", "0.75"]
    assert [r["epochs"] for r in rows] == ["1", "1"]  # trained, not the --epochs cap
    assert "validated on the same 0.75 s chunks" in (project / "results.md").read_text()
    assert (project / "gain_vs_hours.png").exists()


@pytest.mark.parametrize("extra,message", [
    (["--num-layers", "-1", "2"], "positive integers"),
    (["--bands", "v7", "v99"], "unknown band schema"),
    (["--bands", "universal:x"], "NAME:NUMBER_OF_EDGES"),
    (["--lr", "5"], "must lie in"),
    (["--segment-seconds", "0.5", "0"], "--segment-seconds values must be positive"),
    (["--threads", "0"], "--threads must be at least 1, got 0"),
    (["--max-minutes", "5"], "--max-minutes needs --tuner random or bayesian"),
])
def test_invalid_search_space_is_clear_error(tmp_path, capsys, extra, message):
    assert tune.main([*COMMON, "--directory", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("tune.py: error:")
