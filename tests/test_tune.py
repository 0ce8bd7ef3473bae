"""``training/tune.py``: a two-trial search on ``tiny``, its report and best
config (which trains with fit.py), resuming, and invalid search spaces."""

import csv
import json
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
    scores = [float(r["val_usdr"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
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


@pytest.mark.parametrize("extra,message", [
    (["--num-layers", "-1", "2"], "positive integers"),
    (["--bands", "v7", "v99"], "unknown band schema"),
    (["--bands", "universal:x"], "NAME:NUMBER_OF_EDGES"),
    (["--lr", "5"], "must lie in"),
])
def test_invalid_search_space_is_clear_error(tmp_path, capsys, extra, message):
    assert tune.main([*COMMON, "--directory", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("tune.py: error:")
