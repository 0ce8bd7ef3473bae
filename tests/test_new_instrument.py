"""A new instrument: instrument stems (``piano.wav`` carved out of ``other``)
in tracks and pipelines, merging a head trained on a frozen backbone into
its model, and the whole user path end to end on a tiny dataset."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from bsrnn_tf.commands import evaluate, fit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SR = 44100
STEMS = ("drums", "bass", "other", "vocals")


def _tone(rng, seconds, freq, amp):
    t = np.arange(int(seconds * SR)) / SR
    left = amp * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6))
    right = amp * np.sin(2 * np.pi * freq * 1.003 * t)
    return np.stack([left, right], axis=1)


def write_track(folder, rng, seconds, piano: bool):
    """A track whose other = piano + pad (int16 files, exact sums)."""
    os.makedirs(folder)
    n = int(seconds * SR)
    parts = {
        "drums": rng.normal(0, 0.05, (n, 2)) * (np.arange(n) % 11025 < 2000)[:, None],
        "bass": _tone(rng, seconds, rng.uniform(50, 90), 0.1),
        "vocals": _tone(rng, seconds, rng.uniform(300, 600), 0.08),
        "pad": _tone(rng, seconds, rng.uniform(700, 900), 0.04),
    }
    if piano:
        gate = (np.arange(n) % 22050 < 15000)[:, None]
        parts["piano"] = _tone(rng, seconds, rng.uniform(220, 260), 0.07) * gate
    ints = {k: np.round(v * 32767).astype(np.int32) for k, v in parts.items()}
    ints["other"] = ints["pad"] + ints.get("piano", 0)
    files = {s: ints[s] for s in STEMS}
    if piano:
        files["piano"] = ints["piano"]
    files["mixture"] = sum(ints[s] for s in STEMS)
    for name, audio in files.items():
        sf.write(os.path.join(folder, f"{name}.wav"), audio.astype(np.int16), SR,
                 subtype="PCM_16")
    return {k: v.astype(np.float64) / 32768 for k, v in files.items()}


@pytest.fixture(scope="module")
def piano_root(tmp_path_factory):
    """4 train + 2 test tracks of 4 s; piano in train 0, 1, 3 and test 0."""
    root = tmp_path_factory.mktemp("piano") / "musdb"
    rng = np.random.default_rng(5)
    for subset, flags in (("train", (True, True, False, True)), ("test", (True, False))):
        for i, has in enumerate(flags):
            write_track(str(root / subset / f"song{i}"), rng, 4.0, has)
    return str(root)


def test_source_set_names_instrument_stems():
    from bsrnn_tf.data.track import source_set
    assert source_set(["vocals"]) == STEMS
    assert source_set(["piano", "drums", "piano"]) == (*STEMS, "piano")
    for bad in ("mixture", "Piano", "../x", ""):
        with pytest.raises(ValueError, match="cannot be a target"):
            source_set([bad])


def test_track_carves_the_instrument_out_of_other(tmp_path, rng):
    from bsrnn_tf.data.musdb import load_tracks, source_set
    truth = {i: write_track(str(tmp_path / "train" / f"t{i}"), rng, 2.0, piano=i == 0)
             for i in range(2)}
    tracks = {t.name: t for t in load_tracks(str(tmp_path), "train",
                                               targets=source_set(["piano"]))}
    with_piano, without = tracks["t0"], tracks["t1"]
    assert with_piano.source_names == (*STEMS, "piano")
    assert np.allclose(with_piano.sources["other"], truth[0]["other"] - truth[0]["piano"],
                       atol=1e-6)
    assert np.allclose(with_piano.sources["piano"], truth[0]["piano"], atol=1e-6)
    assert np.allclose(sum(with_piano.sources.values()), truth[0]["mixture"], atol=1e-5)
    assert not np.any(without.sources["piano"])
    assert np.allclose(without.sources["other"], truth[1]["other"], atol=1e-6)
    # A window read from disk equals the loaded audio.
    with_piano.unload()
    window = with_piano.read("other", 1000, 500)
    assert np.allclose(window, (truth[0]["other"] - truth[0]["piano"])[1000:1500], atol=1e-6)


def test_no_track_with_the_stem_is_one_clear_error(piano_root):
    from bsrnn_tf.data.musdb import DataError, load_tracks, source_set
    with pytest.raises(DataError, match="has the instrument stem banjo.wav"):
        load_tracks(piano_root, "train", targets=source_set(["banjo"]))


def test_validation_keeps_only_tracks_with_the_instrument_stem(tmp_path, rng):
    """A validation track without piano.wav reads piano as silence: scoring
    the model on it would measure nothing, so validation drops it."""
    from bsrnn_tf.config import ExperimentConfig
    from bsrnn_tf.data.musdb import load_tracks
    from bsrnn_tf.training.trainer_setup import load_tracks_for
    root = tmp_path / "musdb"
    for i in range(15):
        write_track(str(root / "train" / f"song{i:02d}"), rng, 0.5, piano=True)
    all_valid = [t.name for t in load_tracks(str(root), "train", split="valid")]
    assert len(all_valid) >= 2
    os.remove(root / "train" / all_valid[0] / "piano.wav")  # piano stays inside other
    config = ExperimentConfig()
    config.data.musdb_root = str(root)
    config.model.targets = ["piano", "drums"]
    train, valid = load_tracks_for(config)
    assert sorted(t.name for t in valid) == sorted(all_valid[1:])
    assert len(train) == 15 - len(all_valid)
    config.model.targets = ["drums"]
    assert sorted(t.name for t in load_tracks_for(config)[1]) == sorted(all_valid)


def test_pipeline_examples_sum_to_the_mixture_with_the_instrument(piano_root):
    from bsrnn_tf.config import DataConfig
    from bsrnn_tf.data.musdb import load_tracks, source_set
    from bsrnn_tf.data.pipeline import valid_dataset, valid_positions
    tracks = load_tracks(piano_root, "train", targets=source_set(["piano"]))
    cfg = DataConfig(segment_seconds=0.5, valid_examples=4)
    segment = int(0.5 * SR)
    index, starts = valid_positions(tracks, 4, segment, cfg.valid_seed)
    batches = list(valid_dataset(tracks, ["piano", "other"], cfg, 2).as_numpy_iterator())
    examples = [(m[i], {k: v[i] for k, v in s.items()}) for m, s in batches for i in range(2)]
    for (mixture, sources), track, start in zip(examples, index, starts):
        track = tracks[track]
        raw_mix = track.mixture[start:start + segment]
        scale = np.sum(mixture * raw_mix) / np.sum(raw_mix * raw_mix)  # loudness factor
        assert np.allclose(mixture, scale * raw_mix, atol=1e-4)
        assert np.allclose(sources["piano"], scale * track.sources["piano"][start:start + segment],
                           atol=1e-4)
        assert np.allclose(sources["other"], scale * track.sources["other"][start:start + segment],
                           atol=1e-4)


def _tiny(targets):
    from bsrnn_tf.models import build_separator, preset
    return build_separator(preset("tiny"), targets=list(targets))


def test_merged_model_keeps_the_old_heads_and_adds_the_new_one(tmp_path, rng):
    import tensorflow as tf
    from bsrnn_tf.models import load_separator, save_separator
    from bsrnn_tf.models.transfer import merge_heads
    base = _tiny(["drums", "bass"])
    save_separator(base, str(tmp_path / "base"))
    head = load_separator(str(tmp_path / "base"))
    for t in head.targets:
        head.remove_head(t)
    head.add_head("piano")
    head.freeze_backbone()
    for w in head.heads["piano"].weights:  # as if trained
        w.assign(w + rng.normal(0, 0.05, w.shape).astype(np.float32))
    audio = tf.constant(rng.normal(0, 0.1, (1, 8000, 2)).astype(np.float32))
    before, new = base(audio), head(audio)
    merged = merge_heads(load_separator(str(tmp_path / "base")), [head])
    after = merged(audio)
    assert merged.targets == ["drums", "bass", "piano"]
    for t in ("drums", "bass"):
        assert np.array_equal(after[t].numpy(), before[t].numpy())
    assert np.allclose(after["piano"].numpy(), new["piano"].numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="has a 'piano' head already"):
        merge_heads(merged, [head])
    other = _tiny(["piano"])  # its own backbone
    with pytest.raises(ValueError, match="head.keras: its heads were trained on another"):
        merge_heads(load_separator(str(tmp_path / "base")), [other], names=["head.keras"])


@pytest.mark.slow
def test_add_an_instrument_end_to_end(piano_root, tmp_path):
    """MTL base -> piano head on its frozen backbone -> add-heads -> separate
    --targets piano and evaluate (tracks without piano skipped)."""
    fast = ["--preset", "tiny", "--segment-seconds", "0.5", "--valid-examples", "4",
            "--batch-size", "2", "--quiet", "--no-activity-detection",
            "--examples-per-epoch", "8", "--epochs", "1", "--musdb-root", piano_root]
    base, head, merged = tmp_path / "base", tmp_path / "head", tmp_path / "merged"
    assert fit.main(["--mtl", *fast, "--run-dir", str(base)]) == 0
    assert fit.main(["--init-backbone", str(base), "--freeze-backbone", "--targets", "piano",
                     *fast, "--run-dir", str(head)]) == 0
    env = {**os.environ, "PYTHONPATH": ROOT}
    cli = [sys.executable, "-m", "bsrnn_tf.cli"]
    out = subprocess.run([*cli, "add-heads", str(base), str(head), "-o", str(merged)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "targets drums bass other vocals piano" in out.stdout
    again = subprocess.run([*cli, "add-heads", str(base), str(head), "-o", str(merged)],
                           capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 2 and "holds a model already" in again.stderr
    song = os.path.join(piano_root, "test", "song0", "mixture.wav")
    sep = subprocess.run([*cli, "separate", song, "-m", str(merged), "--targets", "piano",
                          "-o", str(tmp_path / "sep"), "--quiet"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert sep.returncode == 0, sep.stderr
    written = [f for _, _, fs in os.walk(tmp_path / "sep") for f in fs]
    assert written == ["piano.wav"]
    assert evaluate.main(["-m", str(merged), "--musdb-root", piano_root,
                          "-o", str(tmp_path / "eval")]) == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    tracks = results["tracks"]
    assert set(tracks["song0"]["gain"]) == {"drums", "bass", "other", "vocals", "piano"}
    assert set(tracks["song1"]["gain"]) == {"drums", "bass", "other", "vocals"}  # no piano
    assert np.isfinite(results["targets"]["piano"]["gain"])
