"""``bsrnn_tf.commands.evaluate`` (``training/evaluate.py``) on the generated
test subset with a tiny model: outputs, museval layout, the mixture baseline
against an independent computation, resuming, single-target models, the
built-in default."""

import json
import os

import numpy as np
import pytest

from bsrnn_tf.commands import evaluate, evaluate_scores
from bsrnn_tf.data.musdb import load_tracks
from bsrnn_tf.metrics import usdr
from bsrnn_tf.models import build_separator, preset, save_separator


def _model_dir(tmp_path_factory, targets):
    config = preset("tiny")
    config.segment_seconds = 2.0
    path = str(tmp_path_factory.mktemp("models") / "-".join(targets))
    save_separator(build_separator(config, targets=targets), path)
    return path


@pytest.fixture(scope="module")
def evaluated(generated_dataset, tmp_path_factory):
    """One evaluation of a drums + vocals model: ``(out folder, stdout)``."""
    model = _model_dir(tmp_path_factory, ["drums", "vocals"])
    out = str(tmp_path_factory.mktemp("eval") / "out")
    assert evaluate.main(["-m", model, "--musdb-root", generated_dataset, "-o", out]) == 0
    return model, out


def _museval_csdr(references, estimates, rate):
    """cSDR per target straight from museval's BSSEval v4 (``bss_eval``, 1 s
    windows and hops), median over the windows that are not NaN."""
    import museval
    sdr = museval.metrics.bss_eval(
        np.stack([references[t] for t in references]),
        np.stack([estimates[t] for t in references]), window=rate, hop=rate,
        compute_permutation=False, bsseval_sources_version=False)[0]
    return {t: float(np.median(v[~np.isnan(v)])) for t, v in zip(references, sdr)}


def _sources(seconds=3, rate=44100):
    rng = np.random.default_rng(1)
    t = np.arange(seconds * rate) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t))[:, None] * np.array([1.0, 0.8])
    noise = 0.1 * rng.standard_normal((seconds * rate, 2))
    return {"tone": tone, "noise": noise}


@pytest.mark.slow
def test_score_track_csdr_perfect_high_zero_low_swapped_negative():
    refs = _sources()
    mixture = refs["tone"] + refs["noise"]

    def csdr(estimates):
        return evaluate_scores.score_track("t", refs, estimates, mixture, 44100)["csdr"]

    perfect = csdr({k: v + 1e-5 * np.sin(np.arange(len(v)))[:, None] for k, v in refs.items()})
    assert all(v > 60 for v in perfect.values())
    zeros = csdr({k: np.zeros_like(v) for k, v in refs.items()})  # dithered, not refused
    assert all(v < 1 for v in zeros.values())
    swapped = csdr({"tone": refs["noise"], "noise": refs["tone"]})
    assert all(v < 0 for v in swapped.values())


@pytest.mark.slow
def test_score_track_single_target_against_its_complement():
    refs = _sources()
    mixture = refs["tone"] + refs["noise"]
    half = evaluate_scores.score_track("t", {"tone": refs["tone"]}, {"tone": 0.5 * refs["tone"]},
                                mixture, 44100)
    # Half the target: BSSEval v4 (framewise filters off) counts the missing
    # half as error, 20 log10(2) = 6.02 dB in every window.
    assert half["csdr"]["tone"] == pytest.approx(20 * np.log10(2), abs=0.01)
    assert set(half["csdr"]) == {"tone"}


def _track_names(root):
    return [t.name for t in load_tracks(root, subset="test")]


def test_writes_table_json_png_and_museval_layout(evaluated, generated_dataset):
    _, out = evaluated
    names = _track_names(generated_dataset)
    assert len(names) == 2
    for name in names:
        for target in ["drums", "vocals"]:
            assert os.path.exists(os.path.join(out, "estimates", "test", name, f"{target}.wav"))
        with open(os.path.join(out, "scores", "test", f"{name}.json")) as f:
            scores = json.load(f)
        assert [t["name"] for t in scores["targets"]] == ["drums", "vocals"]  # museval's JSON
        assert len(scores["targets"][0]["frames"]) == 8  # 8 s, 1 s windows
        assert set(scores["bsrnn_tf"]["usdr"]) == {"drums", "vocals"}
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    assert set(results["targets"]) == {"drums", "vocals", "mean"}
    row = results["targets"]["vocals"]
    assert row["gain"] == pytest.approx(row["usdr"] - row["scaled_mixture_usdr"])
    assert row["scaled_mixture_usdr"] < row["oracle_irm_usdr"]
    table = open(os.path.join(out, "results.md")).read()
    assert "| vocals |" in table and "gain over best-scaled mixture" in table
    with open(os.path.join(out, "results.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # museval's own aggregation reads the scores folder.
    import museval
    store = museval.MethodStore()
    store.add_eval_dir(os.path.join(out, "scores"))
    assert set(store.df["target"]) == {"drums", "vocals"}


def test_mixture_baseline_matches_an_independent_computation(evaluated, generated_dataset):
    _, out = evaluated
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    usdrs, csdrs = [], []
    for track in load_tracks(generated_dataset, subset="test"):
        reference, mixture = track.sources["vocals"], track.mixture
        usdrs.append(usdr(reference, mixture))
        # museval drops a window for every source when any source of the call
        # is silent there: the same two targets are evaluated together.
        references = {t: track.sources[t] for t in ["drums", "vocals"]}
        csdrs.append(_museval_csdr(references, {t: mixture for t in references},
                                   track.sample_rate)["vocals"])
        saved = results["tracks"][track.name]["mixture"]
        assert saved["usdr"]["vocals"] == pytest.approx(usdrs[-1], abs=1e-6)
        assert saved["csdr"]["vocals"] == pytest.approx(csdrs[-1], abs=1e-4)
    row = results["targets"]["vocals"]
    assert row["mixture_usdr"] == pytest.approx(np.mean(usdrs), abs=1e-6)
    # The best-scaled mixture, from the least-squares gain written out here.
    scaled = []
    for track in load_tracks(generated_dataset, subset="test"):
        s, m = track.sources["vocals"].astype(np.float64), track.mixture.astype(np.float64)
        scaled.append(usdr(s, (np.sum(s * m) / np.sum(m * m)) * m))
    assert row["scaled_mixture_usdr"] == pytest.approx(np.mean(scaled), abs=1e-6)
    assert row["mixture_csdr"] == pytest.approx(np.median(csdrs), abs=1e-4)


def test_model_scores_match_the_written_estimates(evaluated, generated_dataset):
    _, out = evaluated
    from bsrnn_tf.audio import load_audio
    track = load_tracks(generated_dataset, subset="test")[0]
    estimate, _ = load_audio(os.path.join(out, "estimates", "test", track.name, "drums.wav"))
    with open(os.path.join(out, "scores", "test", f"{track.name}.json")) as f:
        saved = json.load(f)["bsrnn_tf"]
    assert saved["usdr"]["drums"] == pytest.approx(usdr(track.sources["drums"], estimate),
                                                   abs=1e-5)


def test_resumes_without_separating_again(evaluated, generated_dataset, capsys):
    model, out = evaluated
    estimate = os.path.join(out, "estimates", "test", _track_names(generated_dataset)[0],
                            "vocals.wav")
    before = os.stat(estimate).st_mtime_ns
    capsys.readouterr()
    assert evaluate.main(["-m", model, "--musdb-root", generated_dataset, "-o", out]) == 0
    assert "already evaluated" in capsys.readouterr().out
    assert os.stat(estimate).st_mtime_ns == before


@pytest.mark.slow
def test_single_target_on_the_builtin_default(generated_dataset, tmp_path_factory,
                                              monkeypatch, capsys):
    from bsrnn_tf.datasets import synth as generate
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    monkeypatch.setattr(generate, "builtin_dataset_root", lambda: generated_dataset)
    model = _model_dir(tmp_path_factory, ["vocals"])
    out = str(tmp_path_factory.mktemp("eval1") / "out")
    name = _track_names(generated_dataset)[1]
    assert evaluate.main(["-m", model, "-o", out, "--tracks", name, "--dataset", "synth"]) == 0
    printed = capsys.readouterr().out
    assert "built-in synth dataset" in printed
    with open(os.path.join(out, "scores", "test", f"{name}.json")) as f:
        scores = json.load(f)
    # museval needs two sources: vocals is scored with its complement.
    assert [t["name"] for t in scores["targets"]] == ["vocals", "no_vocals"]
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    assert results["builtin_dataset"] and set(results["targets"]) == {"vocals", "mean"}


def test_bad_track_name_and_target_one_line(evaluated, generated_dataset, capsys):
    model, out = evaluated
    capsys.readouterr()
    assert evaluate.main(["-m", model, "--musdb-root", generated_dataset, "-o", out,
                          "--tracks", "No Such Song"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "No Such Song" in err
    assert evaluate.main(["-m", model, "--musdb-root", generated_dataset, "-o", out,
                          "--targets", "bass"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bass" in err


def test_ctrl_c_keeps_finished_tracks_and_says_so(generated_dataset, tmp_path_factory,
                                                  monkeypatch, capsys):
    model = _model_dir(tmp_path_factory, ["vocals"])
    out = str(tmp_path_factory.mktemp("eval") / "interrupted")
    names = _track_names(generated_dataset)[:2]
    real = evaluate.evaluate_track

    def second_interrupted(track, *args, **kwargs):
        if track.name == names[1]:
            raise KeyboardInterrupt
        return real(track, *args, **kwargs)

    monkeypatch.setattr(evaluate, "evaluate_track", second_interrupted)
    args = ["-m", model, "--musdb-root", generated_dataset, "-o", out, "--tracks", *names]
    assert evaluate.main(args) == 130
    err = [line for line in capsys.readouterr().err.splitlines() if "evaluate.py" in line]
    assert len(err) == 1 and "interrupted" in err[0] and "run the same command again" in err[0]
    assert os.path.exists(evaluate.track_json_path(out, "test", names[0]))
    assert not os.path.exists(evaluate.track_json_path(out, "test", names[1]))
    monkeypatch.setattr(evaluate, "evaluate_track", real)
    assert evaluate.main(args) == 0
    assert "already evaluated" in capsys.readouterr().out


def test_no_csdr_gives_the_same_gains_without_museval(evaluated, generated_dataset,
                                                      tmp_path):
    model, out = evaluated
    fast = str(tmp_path / "fast")
    assert evaluate.main(["-m", model, "--musdb-root", generated_dataset, "-o", fast,
                          "--no-csdr"]) == 0
    full = json.load(open(os.path.join(out, "results.json")))["targets"]
    quick = json.load(open(os.path.join(fast, "results.json")))["targets"]
    for target, row in full.items():
        for key in ("gain", "usdr", "scaled_mixture_usdr", "oracle_irm_usdr"):
            assert quick[target][key] == pytest.approx(row[key], abs=1e-6)
        assert quick[target]["csdr"] is None and np.isfinite(row["csdr"])
    # every file is standard JSON (no NaN), and the table leaves the cSDR columns out
    strict = {"parse_constant": _refuse_constant}
    json.loads(open(os.path.join(fast, "results.json")).read(), **strict)
    for name in os.listdir(os.path.join(fast, "scores", "test")):
        json.loads(open(os.path.join(fast, "scores", "test", name)).read(), **strict)
    table = open(os.path.join(fast, "results.md")).read()
    assert "nan" not in table.lower() and "| cSDR |" not in table and "--no-csdr" in table
    assert "| cSDR |" in open(os.path.join(out, "results.md")).read()


def test_a_silent_reference_is_listed_and_left_out_of_the_means(generated_dataset,
                                                               tmp_path_factory, capsys):
    import shutil

    import soundfile as sf

    root = tmp_path_factory.mktemp("silent") / "data"
    shutil.copytree(generated_dataset, root)
    first, second = sorted(t.name for t in load_tracks(str(root), subset="test"))[:2]
    folder = root / "test" / first
    drums, rate = sf.read(folder / "drums.wav", dtype="float32")
    mixture, _ = sf.read(folder / "mixture.wav", dtype="float32")
    sf.write(folder / "mixture.wav", mixture - drums, rate, subtype="FLOAT")
    sf.write(folder / "drums.wav", np.zeros_like(drums), rate, subtype="FLOAT")
    model = _model_dir(tmp_path_factory, ["drums", "vocals"])
    out = str(tmp_path_factory.mktemp("eval-silent") / "out")
    assert evaluate.main(["-m", model, "--musdb-root", str(root), "-o", out, "--no-csdr"]) == 0
    printed = capsys.readouterr().out
    assert "(silent reference: not averaged)" in printed
    results = json.load(open(os.path.join(out, "results.json")))
    assert results["silent_references"] == {"drums": [first]}
    per_track = {name: json.load(open(os.path.join(out, "scores", "test", f"{name}.json")))
                 ["bsrnn_tf"] for name in (first, second)}
    assert per_track[first]["silent_references"] == ["drums"]
    # The silent track's drums score exists but would only measure leakage.
    assert per_track[first]["usdr"]["drums"] < -30
    table = results["targets"]
    assert table["drums"]["gain"] == pytest.approx(per_track[second]["gain"]["drums"])
    assert table["vocals"]["gain"] == pytest.approx(
        np.mean([per_track[n]["gain"]["vocals"] for n in (first, second)]))
    assert f"drums: 1 of 2 ({first})" in open(os.path.join(out, "results.md")).read()
    # Reused scores keep the exclusion.
    assert evaluate.main(["-m", model, "--musdb-root", str(root), "-o", out, "--no-csdr"]) == 0
    again = json.load(open(os.path.join(out, "results.json")))
    assert again["targets"]["drums"]["gain"] == pytest.approx(table["drums"]["gain"])
    # A score stored before silent references were recorded: found from the audio.
    path = os.path.join(out, "scores", "test", f"{first}.json")
    document = json.load(open(path))
    del document["bsrnn_tf"]["silent_references"]
    with open(path, "w") as f:
        json.dump(document, f)
    assert evaluate.main(["-m", model, "--musdb-root", str(root), "-o", out, "--no-csdr"]) == 0
    older = json.load(open(os.path.join(out, "results.json")))
    assert older["silent_references"] == {"drums": [first]}
    assert older["targets"]["drums"]["gain"] == pytest.approx(table["drums"]["gain"])


def _refuse_constant(name):
    raise AssertionError(f"non-standard JSON constant {name}")


def test_json_text_writes_null_for_non_finite_values():
    from bsrnn_tf.fileio import json_text

    data = {"a": float("nan"), "b": [1.5, float("inf"), {"c": -float("inf")}],
            "d": np.float64("nan"), "e": (2.0, "x"), "f": None}
    back = json.loads(json_text(data), parse_constant=_refuse_constant)
    assert back == {"a": None, "b": [1.5, None, {"c": None}], "d": None, "e": [2.0, "x"],
                    "f": None}


def test_scores_of_another_model_are_recomputed_not_reused(generated_dataset, tmp_path_factory,
                                                           capsys):
    """Training on changes model.keras: its old scores in the same folder must
    not be reported for the new model; scores without a model record neither."""
    model = _model_dir(tmp_path_factory, ["vocals"])
    out = str(tmp_path_factory.mktemp("eval") / "stale")
    name = _track_names(generated_dataset)[0]
    args = ["-m", model, "--musdb-root", generated_dataset, "-o", out, "--tracks", name]
    assert evaluate.main(args) == 0
    first = json.load(open(os.path.join(out, "results.json")))["targets"]["vocals"]["usdr"]
    capsys.readouterr()
    config = preset("tiny")
    config.segment_seconds = 2.0
    import keras
    keras.utils.set_random_seed(7)  # other weights, same architecture and path
    save_separator(build_separator(config, targets=["vocals"]), model)
    assert evaluate.main(args) == 0
    printed = capsys.readouterr().out
    assert "evaluated again (its score is of another model" in printed
    assert "1 track(s) evaluated now, 0 score(s) of this same model reused" in printed
    second = json.load(open(os.path.join(out, "results.json")))["targets"]["vocals"]["usdr"]
    assert second != first
    assert evaluate.main(args) == 0  # the same model again: reused
    assert "already evaluated with this model" in capsys.readouterr().out
    # A score written before models were recorded: recomputed.
    path = evaluate.track_json_path(out, "test", name)
    document = json.load(open(path))
    del document["bsrnn_tf"]["made_by"]
    open(path, "w").write(json.dumps(document))
    assert evaluate.main(args) == 0
    assert "does not record which model" in capsys.readouterr().out
    # Another --overlap is another computation too.
    assert evaluate.main(args + ["--overlap", "0.5"]) == 0
    assert "another overlap (0.25, now 0.5)" in capsys.readouterr().out


def test_ctrl_c_while_tensorflow_starts_is_one_line(monkeypatch, capsys, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "quiet_tensorflow", interrupted)
    assert evaluate.main(["-m", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err and "Traceback" not in err
