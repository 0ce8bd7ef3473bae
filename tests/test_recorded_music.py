"""experiments/recorded_music.py (one lever at a time against the plain
sampled dataset) and the produced split's place in evaluate.py."""

import json
import os
import shutil

import pytest

from experiments import recorded_music


def test_cpu_scale_commands_one_dataset_per_lever(tmp_path, capsys):
    out, data = tmp_path / "out", tmp_path / "levers"
    assert recorded_music.main(["--scale", "cpu", "--dry-run", "--seeds", "0", "1", "2",
                                "--out", str(out), "--data", str(data), "--no-reuse"]) == 0
    text = capsys.readouterr().out
    fits = [line for line in text.splitlines() if "training/fit.py" in line]
    assert len(fits) == 9 * 3
    for line in fits:
        setting = line.split("--run-dir ")[1].split("/")[-1].split("-seed")[0]
        # the same CPU time: the deeper model's 1.24 x cost per example
        # buys 12 / 1.24 = 9.7 -> 10 epochs
        epochs = 10 if setting == "capacity" else 12
        assert "--mtl" in line and f"--epochs {epochs} --examples-per-epoch 400" in line
        assert ("--num-layers 6" in line) == (setting == "capacity")
        if setting == "control":
            assert "--musdb-root" not in line
        elif setting == "weighted":  # the songs of `all`, bass and other weighted twice
            assert f"--musdb-root {data}/all-v1" in line
            assert "--target-weights bass=2 other=2" in line
        elif setting == "capacity":
            assert f"--musdb-root {data}/all-v1" in line and "--target-weights" not in line
        elif setting == "more_songs":  # its own dataset: the recipe of `all`, 3 x the songs
            assert f"--musdb-root {data}/more_songs-v1" in line
        else:
            assert f"--musdb-root {data}/{setting}-v1" in line
            assert "--target-weights" not in line
    assert not data.exists()  # a dry run makes nothing
    assert "recorded_music: 27 run(s) to train: control-seed0 " in text
    assert recorded_music.main(["--scale", "cpu", "--dry-run", "--only", "weighted",
                                "--out", str(out), "--data", str(data), "--no-reuse"]) == 0
    text = capsys.readouterr().out
    assert f"(data) all: {data}/all-v1" in text and "(data) weighted" not in text


def test_more_songs_makes_three_times_the_songs_of_all(tmp_path, monkeypatch):
    from bsrnn_tf.datasets import sampled
    made = {}

    def fake_make(out, tracks_train, recipe, train_soundfonts, **kwargs):
        made[os.path.basename(out)] = (tracks_train, recipe, train_soundfonts)  # a temp folder
        with open(os.path.join(out, sampled.MARKER_FILE), "w") as f:
            f.write("{}")

    monkeypatch.setattr(sampled, "make_sampled_dataset", fake_make)
    for setting in ("all", "more_songs"):
        root = recorded_music.make_lever_data(str(tmp_path), setting, 60, 30.0)
        assert root == str(tmp_path / f"{setting}-v1")
    (all_n, all_recipe, all_fonts), = [v for k, v in made.items() if "all-v1" in k]
    (more_n, more_recipe, more_fonts), = [v for k, v in made.items() if "more_songs-v1" in k]
    assert (all_n, more_n) == (60, 180)
    assert more_recipe == all_recipe and list(more_fonts) == list(all_fonts)


def test_levers_table_means_over_seeds():
    gain = {"drums": 1.0, "bass": 2.0, "other": 3.0, "vocals": 4.0}
    results = {f"production-seed{s}": {"setting": "production", "seed": s,
                                       "test_gain": {t: v + s for t, v in gain.items()},
                                       "produced_gain": gain} for s in (0, 1)}
    row = recorded_music.table(results)["production"]
    assert row["seeds"] == [0, 1]
    assert row["test_gain"]["drums"] == 1.5 and row["test_gain"]["mean"] == 3.0
    assert row["produced_gain"]["mean"] == 2.5


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("fluidsynth") is None,
                    reason="needs the Debian package fluidsynth and its sound fonts")
def test_a_lever_run_at_the_test_scale(tmp_path):
    pytest.importorskip("pedalboard")
    out, data = tmp_path / "out", tmp_path / "levers"
    argv = ["--scale", "test", "--only", "production", "--tracks", "3", "--song-seconds", "3",
            "--out", str(out), "--data", str(data), "--in-process", "--no-evaluate"]
    assert recorded_music.main(argv) == 0
    meta = json.loads((data / "production-v1" / "bsrnn_tf_sampled.json").read_text())
    assert meta["recipe"]["train"]["production"] == 0.8 and meta["tracks_train"] == 3
    result = json.loads((out / "production-seed0.json").read_text())
    assert str(data / "production-v1") in result["command"]
    assert json.loads((out / "summary.json").read_text())["levers"]["production"]["seeds"] == [0]


def test_evaluate_knows_the_produced_split(tmp_path, monkeypatch):
    from bsrnn_tf.data import musdb
    from bsrnn_tf.datasets.sampled import MARKER_FILE
    from bsrnn_tf.commands import evaluate
    args = evaluate.build_parser().parse_args(["-m", "model", "--dataset", "produced-test"])
    assert args.dataset == "produced-test"
    done = tmp_path / "produced"
    (done / "test").mkdir(parents=True)
    (done / MARKER_FILE).write_text("{}")
    monkeypatch.setenv("BSRNN_TF_PRODUCED_TEST_DATA", str(done))
    assert musdb.builtin_root("produced-test") == str(done)   # complete: not made again
    assert "produced-test" in musdb.BUILTIN_DATASETS and "produced" in musdb.BUILTIN_DATASETS


def test_levers_report_from_hand_made_results(tmp_path):
    """LEVERS.md: per-lever means over seeds and the paired difference to the
    control, computed by hand from two seeds."""
    from experiments import levers_report
    from experiments.records import write_json

    def result(setting, seed, test, produced):
        gains = lambda base: {t: base + i for i, t in enumerate(recorded_music.TARGETS)}
        write_json(str(tmp_path / f"{setting}-seed{seed}.json"),
                   {"setting": setting, "seed": seed, "best_valid_usdr": {"drums": 0.0},
                    "wall_seconds": 600.0 * (seed + 1), "test_gain": gains(test),
                    "produced_gain": gains(produced),
                    "test_oracle_irm_usdr": {t: 10.0 for t in recorded_music.TARGETS}})

    result("control", 0, 1.0, 0.0)
    result("control", 1, 2.0, 0.5)
    result("production", 0, 1.5, 1.0)
    result("production", 1, 1.0, 2.5)
    result("all", 0, 2.0, 2.0)
    result("weighted", 0, 2.5, 1.0)
    result("more_songs", 0, 2.0, 3.0)
    assert levers_report.main(["--results", str(tmp_path)]) == 0
    text = (tmp_path / "LEVERS.md").read_text()
    # more songs are compared with `all` too, whose songs they extend
    assert "| more_songs − all |" + " +0.00 (n=1) |" * 4 in text
    assert "produced split, mean over targets, more_songs vs all: more_songs is ahead by 1.00" \
        in text
    # a change of the fit is also compared with the lever whose songs it trains on
    assert "| weighted − all |" + " +0.50 (n=1) |" * 5 in text
    assert "| weighted |" + " +1.50 (n=1) |" * 5 in text  # against the control, seed 0
    assert "produced split, mean over targets, weighted vs all: all is ahead by 1.00" in text
    # test split: control mean over targets (1+1.5)/2 + 1.5 = 3.0, production 2.75;
    # per-seed differences +0.5 and -1.0: mean -0.25, std 1.06
    assert "| control | 0, 1 | 1.50 | 2.50 | 3.50 | 4.50 | 3.00 |  | 15.0 |" in text
    assert "| production | 0, 1 | 1.25 | 2.25 | 3.25 | 4.25 | 2.75 | -0.25 ± 1.06" in text
    # produced split: control 0.25 + 1.5 = 1.75, production 1.75 + 1.5 = 3.25, diffs +1, +2
    assert "| production | 0, 1 | 1.75 | 2.75 | 3.75 | 4.75 | 3.25 | 1.50 ± 0.71" in text
    assert "production is ahead by 1.50 dB" in text and "larger than the spread" in text
    assert "| *oracle IRM uSDR (ceiling)* | | 10.00 | 10.00 | 10.00 | 10.00 | 10.00 |" in text
    # per target, paired: every target moves like the mean here (gains are base + i)
    assert "| production |" + " -0.25 ± 1.06 (n=2) |" * 5 in text
    assert "| production |" + " +1.50 ± 0.71 (n=2) |" * 5 in text
    for name in ("levers_gain.png", "levers_curves.png"):
        assert (tmp_path / name).stat().st_size > 0 and f"]({name})" in text


def test_each_run_is_scored_on_the_produced_split_before_the_next_starts(tmp_path,
                                                                          monkeypatch):
    """A set cut off after its first run keeps that run's produced score: the
    produced split is scored after each run (also one finished earlier), not
    after the whole set."""
    from experiments import driver
    events = []

    def fake_fit(self, run):
        events.append(("fit", run.key))
        return {"setting": run.setting, "seed": run.seed, "wall_seconds": 1.0,
                "best_valid_usdr": {"drums": 0.0}}

    monkeypatch.setattr(driver.Driver, "_run_one", fake_fit)
    monkeypatch.setattr(driver.Driver, "write_summary", lambda self, runs, extra: {"levers": {}})
    monkeypatch.setattr(driver, "finish", lambda drv, summary: 0)
    monkeypatch.setattr(recorded_music, "make_lever_data", lambda *a: None)
    monkeypatch.setattr(recorded_music, "evaluate_produced",
                        lambda drv, run: events.append(("produced", run.key)))
    monkeypatch.setattr(driver, "read_result", lambda path: (
        {"setting": "control", "seed": 0} if path.endswith("control-seed0.json") else None))
    argv = ["--scale", "cpu", "--only", "control", "production", "--seeds", "0", "1",
            "--out", str(tmp_path / "out"), "--data", str(tmp_path / "levers"), "--no-reuse"]
    assert recorded_music.main(argv) == 0
    assert events == [("produced", "control-seed0"),
                      ("fit", "production-seed0"), ("produced", "production-seed0"),
                      ("fit", "control-seed1"), ("produced", "control-seed1"),
                      ("fit", "production-seed1"), ("produced", "production-seed1")]


def test_a_run_whose_model_is_gone_is_named_not_scored(tmp_path, monkeypatch):
    from experiments import common, driver
    lines = []
    args = recorded_music.build_parser().parse_args(["--scale", "cpu",
                                                     "--out", str(tmp_path / "out")])
    drv = driver.Driver(recorded_music.EXPERIMENT, args, log=lines.append)
    run = recorded_music.plan_for(str(tmp_path / "levers"))(common.scale_base(args))[0]
    drv.results[run.key] = {"setting": run.setting, "seed": run.seed}
    monkeypatch.setattr(driver, "call_script",
                        lambda *a, **k: pytest.fail("evaluate.py called without a model"))
    recorded_music.evaluate_produced(drv, run)
    assert drv.evaluate and "its model is gone" in lines[-1] and run.key in lines[-1]
    assert "produced_gain" not in drv.results[run.key]
