"""experiments/: the drivers at a hidden tiny ``--scale test`` (real fit.py
runs in this process), resumability, reuse across experiments, the paper-scale
commands, and report.py's tables against means computed here from the JSON."""

import json
import math
import os
import re
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from experiments import (band_split, common, model_size, multitask,  # noqa: E402
                         normalisation, records, report)

RESULT_FIELDS = {"experiment", "setting", "seed", "scale", "command", "config", "wall_seconds",
                 "parameters", "trainable_parameters", "num_bands", "targets", "epochs",
                 "valid_usdr", "final_valid_usdr", "best_valid_usdr", "best_epoch",
                 "best_valid_usdr_mean", "train_loss", "fit_args_key"}


# ------------------------------------------------------------ real drivers

@pytest.fixture(scope="module")
def band_split_run(generated_dataset, tmp_path_factory):
    """band_split at the test scale, only its v7 drums run (one real fit.py
    run, in this process: no TensorFlow start-up per run)."""
    out = tmp_path_factory.mktemp("results") / "band_split"
    argv = ["--scale", "test", "--musdb-root", generated_dataset, "--out", str(out),
            "--in-process", "--only", "drums_v7"]
    assert band_split.main(argv) == 0
    return out, argv


@pytest.mark.slow
def test_driver_writes_one_result_json_per_run(band_split_run):
    out, _ = band_split_run
    names = sorted(n for n in os.listdir(out) if n.endswith(".json"))
    assert names == ["drums_v7-seed0.json", "summary.json"]
    r = json.loads((out / "drums_v7-seed0.json").read_text())
    assert RESULT_FIELDS <= set(r)
    assert r["experiment"] == "band_split" and r["scale"] == "test" and r["seed"] == 0
    assert r["setting"] == "drums_v7" and r["targets"] == ["drums"]
    assert r["command"].startswith("python training/fit.py ") and "--bands v7" in r["command"]
    assert r["wall_seconds"] > 0 and r["fit_args_key"]
    # Numbers come from the files fit.py wrote.
    history = json.loads((out / "runs" / "drums_v7-seed0" / "history.json").read_text())
    assert len(history) == common.BASE["test"]["epochs"]
    assert r["valid_usdr"]["drums"] == [h["valid_usdr"]["drums"] for h in history]
    assert r["final_valid_usdr"]["drums"] == history[-1]["valid_usdr"]["drums"]
    assert r["best_valid_usdr"]["drums"] == max(h["valid_usdr"]["drums"] for h in history)
    assert r["config"] == json.loads((out / "runs" / "drums_v7-seed0" / "config.json").read_text())
    assert r["config"]["model"]["bands"] == "v7"
    assert r["config"]["train"]["epochs"] == common.BASE["test"]["epochs"]
    assert r["num_bands"] == 41 and r["parameters"] == r["trainable_parameters"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["drums_v7"]["metrics"]["best_valid_usdr.drums"]["mean"] == \
        pytest.approx(r["best_valid_usdr"]["drums"])
    assert summary["failures"] == [] and summary["missing_runs"] == []
    assert (out / "usdr_per_epoch.png").stat().st_size > 1000


@pytest.mark.slow
def test_rerun_skips_finished_runs_and_recollects_a_lost_result(band_split_run, capsys):
    out, argv = band_split_run
    result = out / "drums_v7-seed0.json"
    before = result.read_text()
    mtime = result.stat().st_mtime_ns
    capsys.readouterr()
    assert band_split.main(argv) == 0
    assert "drums_v7-seed0: finished earlier, skipped" in capsys.readouterr().out
    assert result.stat().st_mtime_ns == mtime and result.read_text() == before
    # As if the driver died after fit.py finished: the result is collected
    # again, fit.py resumes from the run's last checkpoint and trains nothing.
    result.unlink()
    assert band_split.main(argv) == 0
    again = json.loads(result.read_text())
    assert again["resumed"] is True
    assert again["valid_usdr"] == json.loads(before)["valid_usdr"]


@pytest.mark.slow
def test_identical_run_of_another_experiment_is_reused(band_split_run, capsys):
    out, _ = band_split_run
    other = out.parent / "model_size"
    assert model_size.main(["--scale", "test", "--musdb-root", _root(out), "--out", str(other),
                            "--in-process", "--only", "drums_v7_N8_L1", "--no-plots"]) == 0
    assert "reused" in capsys.readouterr().out
    reused = json.loads((other / "drums_v7_N8_L1-seed0.json").read_text())
    source = json.loads((out / "drums_v7-seed0.json").read_text())
    assert reused["reused_from"].endswith("band_split/drums_v7-seed0.json")
    assert reused["valid_usdr"] == source["valid_usdr"]
    assert reused["setting"] == "drums_v7_N8_L1" and reused["feature_dim"] == 8
    assert not (other / "runs" / "drums_v7_N8_L1-seed0").exists()
    summary = json.loads((other / "summary.json").read_text())
    assert summary["reused_runs"] == 1 and summary["wall_seconds_runs_total"] == 0


def _root(out) -> str:
    return json.loads((out / "drums_v7-seed0.json").read_text())["dataset"]


# ------------------------------------------------------------- commands

def _dry_run(module, argv, capsys) -> str:
    capsys.readouterr()
    assert module.main(["--dry-run", *argv]) == 0
    return capsys.readouterr().out


def test_paper_scale_commands(tmp_path, capsys):
    args = ["--scale", "paper", "--musdb-root", "/data/musdb18hq", "--out",
            str(tmp_path / "x")]
    text = _dry_run(band_split, args, capsys)
    fits = [line.strip() for line in text.splitlines() if "training/fit.py" in line]
    assert len(fits) == 12  # 3 splits x 2 seeds, backbones and transfers
    assert all("--preset small" in c and "--musdb-root /data/musdb18hq" in c for c in fits)
    assert sum("--epochs 150 " in c for c in fits) == 6
    assert sum("--bands universal --num-edges 41" in c for c in fits) == 2
    assert text.count("training/evaluate.py") == 12
    transfer = [c for c in fits if "bass_from_drums_universal-seed1" in c][0]
    assert "--init-backbone" in transfer and "drums_universal-seed1 --freeze-backbone" in transfer

    text = _dry_run(multitask, args, capsys)
    fits = [line.strip() for line in text.splitlines() if "training/fit.py" in line]
    mtl = [c for c in fits if "--run-dir" in c and "mtl4-seed0" in c][0]
    single = [c for c in fits if "single_vocals_quarter-seed0" in c][0]
    assert "--mtl --targets drums bass other vocals" in mtl
    assert "--examples-per-epoch 1000" in mtl and "--examples-per-epoch 250" in single
    holdout = [c for c in fits if "--run-dir" in c and c.split("--run-dir ")[1].startswith(
        str(tmp_path / "x" / "runs" / "mtl3_no_vocals-seed1"))][0]
    assert "--mtl --targets drums bass other " in holdout and "vocals" not in holdout.split(
        "--run-dir")[0]
    to_vocals = [c for c in fits if "vocals_from_mtl3_no_vocals-seed1 " in c][0]
    assert "mtl3_no_vocals-seed1 --freeze-backbone" in to_vocals
    assert "--targets vocals" in to_vocals

    text = _dry_run(model_size, [*args, "--seeds", "0"], capsys)
    fits = [line for line in text.splitlines() if "training/fit.py" in line]
    assert len(fits) == len(common.BASE["paper"]["sizes"]) * 3
    assert any("--feature-dim 128 --num-layers 12" in c for c in fits)


@pytest.mark.slow
def test_normalisation_runs_record_the_gain_over_the_scaled_mixture(generated_dataset, tmp_path):
    out = tmp_path / "normalisation"
    argv = ["--scale", "test", "--musdb-root", generated_dataset, "--out", str(out),
            "--in-process", "--only", "frame_v7", "--evaluate"]
    assert normalisation.main(argv) == 0
    result = json.loads((out / "frame_v7-seed0.json").read_text())
    assert result["config"]["model"]["norm"] == "frame" and result["config"]["model"]["bands"] == "v7"
    history = json.loads((out / "runs" / "frame_v7-seed0" / "history.json").read_text())
    assert result["valid_gain"]["drums"] == [h["valid_gain"]["drums"] for h in history]
    evaluation = json.loads((out / "runs" / "frame_v7-seed0" / "evaluation" / "results.json")
                            .read_text())["targets"]
    for target in result["targets"]:
        assert result["test_gain"][target] == evaluation[target]["gain"]
        assert result["test_gain"][target] == pytest.approx(
            evaluation[target]["usdr"] - evaluation[target]["scaled_mixture_usdr"])
    summary = json.loads((out / "summary.json").read_text())
    assert "test_gain.vocals" in summary["settings"]["frame_v7"]["metrics"]


def test_normalisation_cpu_scale_commands(tmp_path, capsys):
    text = _dry_run(normalisation, ["--scale", "cpu", "--out", str(tmp_path / "x")], capsys)
    fits = [line.strip() for line in text.splitlines() if "training/fit.py" in line]
    assert len(fits) == 4 and text.count("training/evaluate.py") == 4
    assert all("--preset cpu" in c and "--mtl" in c and "--seed 0" in c and "--epochs 12" in c
               for c in fits)
    assert sorted((c.split("--norm ")[1].split()[0], "--num-edges 41" in c) for c in fits) == [
        ("chunk", False), ("chunk", True), ("frame", False), ("frame", True)]


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

def _fake_result(run: common.Run, experiment: str, rng, shift: float = 0.0) -> dict:
    """A result JSON as a driver writes it, with random uSDR values."""
    targets = (list(multitask.TARGETS) if "--mtl" in run.flags and (
        "drums bass other vocals" in " ".join(run.flags) or "--targets" not in run.flags) else
               run.flags[run.flags.index("--targets") + 1:run.flags.index("--targets") + 4]
               if "--mtl" in run.flags else [run.flags[run.flags.index("--targets") + 1]])
    epochs = 3
    curves = {t: list(rng.normal(2.0 + shift, 1.0, epochs)) for t in targets}
    gains = {t: list(rng.normal(shift, 1.0, epochs)) for t in targets}
    result = records.history_curves(
        [{"epoch": i + 1, "train_loss": 1.0 - 0.1 * i, "seconds": 1.0,
          "valid_usdr": {t: curves[t][i] for t in targets},
          "valid_gain": {t: gains[t][i] for t in targets}} for i in range(epochs)], targets)
    result["test_gain"] = {t: float(rng.normal(shift, 1.0)) for t in targets}
    result.update({
        "experiment": experiment, "setting": run.setting, "group": run.group,
        "stage": run.stage, "seed": run.seed, "scale": "cpu-small", "command": "python x",
        "targets": targets, "num_bands": 41, "parameters": 1000 + len(run.setting),
        "trainable_parameters": 900, "wall_seconds": float(rng.uniform(10, 100)),
        "dataset": "built-in generated dataset (/tmp/x)", "builtin_dataset": True,
        "machine": {"cpus": 2, "platform": "test"}, **run.meta,
        "config": {"preset": "tiny", "model": {
            "feature_dim": run.meta.get("feature_dim", 8),
            "num_layers": run.meta.get("num_layers", 1), "mlp_ratio": 2,
            "stft": {"n_fft": 512, "hop_length": 128}},
            "data": {"segment_seconds": 1.0, "remix": True, "source_activity": True,
                     "valid_examples": 16, "examples_per_epoch": 48},
            "train": {"batch_size": 4, "learning_rate": 0.001, "lr_decay": 0.98,
                      "lr_decay_epochs": 2, "clip_norm": 5.0, "patience": 0, "epochs": 6}}})
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


def _cell_stats(cell: str) -> tuple:
    m = re.match(r"(-?\d+\.\d\d) ± (\d+\.\d\d) \[(-?\d+\.\d\d), (-?\d+\.\d\d)\] \(n=(\d+)\)",
                 cell)
    assert m, cell
    return tuple(float(x) for x in m.groups())


def _expect(values) -> tuple:
    v = np.asarray(values, float)
    return tuple(float(f"{x:.2f}") for x in (v.mean(), v.std(ddof=1), v.min(), v.max())) + (
        float(len(v)),)


@pytest.fixture
def fake_results(tmp_path):
    rng = np.random.default_rng(7)
    base = dict(common.BASE["cpu-small"], seeds=[0, 1, 2])
    results = tmp_path / "results"
    for name, module in (("band_split", band_split), ("multitask", multitask),
                         ("model_size", model_size), ("normalisation", normalisation)):
        folder = results / name
        folder.mkdir(parents=True)
        for run in module.plan(base):
            # universal transfers clearly better than v7 ones: a separated claim.
            shift = 10.0 if run.setting == "bass_from_drums_universal" else 0.0
            records.write_json(str(folder / f"{run.key}.json"),
                              _fake_result(run, name, rng, shift))
        (folder / "fig.png").write_bytes(b"\x89PNG fake")
        records.write_json(str(folder / "summary.json"), {"figures": ["fig.png"]})
    return results


def test_report_tables_equal_means_of_the_json_files(fake_results, tmp_path):
    out = tmp_path / "REPORT.md"
    assert report.main(["--results", str(fake_results), "--out", str(out)]) == 0
    text = out.read_text()
    tables = _parse_tables(text)

    def load(experiment, setting):
        folder = fake_results / experiment
        return [json.loads((folder / n).read_text()) for n in sorted(os.listdir(folder))
                if n.startswith(f"{setting}-seed")]

    # 1. band split
    table = [t for t in tables if t and "drums best" in t[0]][0]
    for row in table:
        split = row["band split"]
        drums = load("band_split", f"drums_{split}")
        bass = load("band_split", f"bass_from_drums_{split}")
        assert len(drums) == 3
        assert _cell_stats(row["drums best"]) == _expect(
            [r["best_valid_usdr"]["drums"] for r in drums])
        assert _cell_stats(row["bass final"]) == _expect(
            [r["final_valid_usdr"]["bass"] for r in bass])
    assert [r["band split"] for r in table] == ["v7", "universal", "universal41"]
    # 2A. MTL vs single, per target and the mean of the four
    table = [t for t in tables if t and "single-target best" in t[0]][0]
    mtl = load("multitask", "mtl4")
    for row in table[:4]:
        target = row["target"]
        single = load("multitask", f"single_{target}_quarter")
        mtl_key = [k for k in row if k.startswith("MTL best")][0]
        assert _cell_stats(row[mtl_key]) == _expect([r["best_valid_usdr"][target] for r in mtl])
        assert _cell_stats(row["single-target best"]) == _expect(
            [r["best_valid_usdr"][target] for r in single])
    mean_row = table[4]
    singles = {t: load("multitask", f"single_{t}_quarter") for t in multitask.TARGETS}
    per_seed = [np.mean([singles[t][s]["best_valid_usdr"][t] for t in multitask.TARGETS])
                for s in range(3)]
    assert _cell_stats(mean_row["single-target best"]) == _expect(per_seed)
    # 2B. hold-out transfer
    table = [t for t in tables if t and "vocals best" in t[0]][0]
    assert _cell_stats(table[0]["vocals best"]) == _expect(
        [r["best_valid_usdr"]["vocals"] for r in load("multitask",
                                                      "vocals_from_mtl3_no_vocals")])
    # 3. model size
    table = [t for t in tables if t and "parameters" in t[0] and "N" in t[0]][0]
    assert len(table) == 3 * len(common.BASE["cpu-small"]["sizes"])
    for row in table:
        runs = load("model_size", f"drums_{row['band split']}_N{row['N']}_L{row['L']}")
        assert _cell_stats(row["drums best"]) == _expect(
            [r["best_valid_usdr"]["drums"] for r in runs])
    # 4. normalisation: validation (best epoch) / test gain per target, mean test gain
    table = [t for t in tables if t and "mean test" in t[0]][0]
    assert [(r["norm"], r["band split"]) for r in table] == [
        ("chunk", "universal41"), ("frame", "universal41"), ("chunk", "v7"), ("frame", "v7")]
    for row in table:
        runs = load("normalisation", f"{row['norm']}_{row['band split']}")
        valid, test = row["bass valid / test"].split(" / ")
        assert _cell_stats(valid) == _expect([r["best_valid_gain"]["bass"] for r in runs])
        assert _cell_stats(test) == _expect([r["test_gain"]["bass"] for r in runs])
        assert _cell_stats(row["mean test"]) == _expect(
            [np.mean(list(r["test_gain"].values())) for r in runs])
    # wall time: the sum over the JSON files, per experiment and in total
    wall = [t for t in tables if t and "wall time" in t[0]][0]
    total = 0.0
    for row in wall[:4]:
        seconds = sum(json.loads((fake_results / row["experiment"] / n).read_text())[
            "wall_seconds"] for n in os.listdir(fake_results / row["experiment"])
            if n.endswith(".json") and n != "summary.json")
        total += seconds
        assert f"({seconds:.0f} s)" in row["wall time"]
    assert f"({total:.0f} s)" in wall[4]["wall time"]
    # figures are linked relative to the report
    assert "![fig.png](results/band_split/fig.png)" in text
    # claims: a separated difference and the honest default
    claims = text.split("## What the numbers support and do not support")[1]
    line = [x for x in claims.splitlines() if "(universal vs v7, best validation bass" in x][0]
    assert "every seed of universal is above every seed of v7" in line


def test_total_elapsed_counts_overlaps_once_and_gaps_not_at_all():
    assert report.union_elapsed([(0.0, 10.0), (5.0, 20.0), None, (100.0, 110.0)]) == 30.0
    assert report.union_elapsed([(0.0, 50.0), (10.0, 20.0)]) == 50.0
    assert report.union_elapsed([None]) is None


def test_compare_wording_follows_the_seed_ranges():
    assert "overlap" in report.compare([1.0, 2.0], [1.5, 2.5], "a", "b", "x")
    assert "every seed of a is above" in report.compare([3.0, 4.0], [1.0, 2.0], "a", "b", "x")
    assert "every seed of b is above" in report.compare([1.0, 2.0], [3.0, 4.0], "a", "b", "x")
    assert "only one seed" in report.compare([3.0], [1.0, 2.0], "a", "b", "x")
    assert "not measured" in report.compare([], [1.0], "a", "b", "x")


def test_stats_match_numpy():
    values = [1.0, 2.5, -0.5, 4.0]
    s = records.stats(values + [float("nan"), None])
    assert s["n"] == 4
    assert s["mean"] == pytest.approx(np.mean(values))
    assert s["std"] == pytest.approx(np.std(values, ddof=1))
    assert (s["min"], s["max"]) == (-0.5, 4.0)
    assert records.stats([3.0])["std"] == 0.0
    assert records.stats([])["mean"] is None and not math.isnan(records.stats([1.0])["mean"])
