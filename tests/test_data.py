"""Data: the generated dataset, track loading and bad data, augmentations,
the tf.data pipelines."""

import dataclasses
import filecmp
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf

from bsrnn_tf.config import DataConfig
from bsrnn_tf.datasets import synth as generate
from bsrnn_tf.data.musdb import (SOURCES, DataError, DataWarning, Track, load_tracks,
                                 resolve_root, split_names)

SR = 44100
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_cfg(**overrides) -> DataConfig:
    base = dict(segment_seconds=1.0, examples_per_epoch=8, valid_examples=4)
    return DataConfig(**{**base, **overrides})


def write_track(folder, seconds=0.5, rate=SR, rng=None, channels=2, silent=()):
    """A MUSDB18-HQ track folder of noise stems (plus their mixture)."""
    rng = rng or np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    n = int(seconds * rate)
    stems = {s: (0.0 if s in silent else 0.1) * rng.standard_normal((n, channels))
             for s in SOURCES}
    for name, audio in {**stems, "mixture": sum(stems.values())}.items():
        sf.write(os.path.join(folder, f"{name}.wav"), audio, rate, subtype="PCM_16")
    return stems


@pytest.fixture
def bad_root(tmp_path):
    """A train subset with two good tracks; tests add one bad track."""
    root = tmp_path / "musdb"
    for i in range(2):
        write_track(root / "train" / f"Good {i} - Song", rng=np.random.default_rng(i))
    return root


def load_bad(root, strict=False):
    return load_tracks(str(root), "train", strict=strict)


# ------------------------------------------------------------- generator


def test_generated_dataset_loads_through_musdb_and_mixture_is_stem_sum(generated_dataset):
    import musdb
    db = musdb.DB(root=generated_dataset, is_wav=True)
    assert len(db) == 6
    assert sum(t.subset == "train" for t in db) == 4
    track = db.tracks[0]
    assert track.rate == SR
    mixture = track.audio
    assert mixture.shape == (8 * SR, 2)
    np.testing.assert_allclose(mixture, sum(track.sources[s].audio for s in SOURCES),
                               atol=1e-6)
    for subset in ("train", "test"):
        for name in os.listdir(os.path.join(generated_dataset, subset)):
            folder = os.path.join(generated_dataset, subset, name)
            info = sf.info(os.path.join(folder, "mixture.wav"))
            assert (info.samplerate, info.channels, info.subtype) == (SR, 2, "PCM_16")
            ints = {s: sf.read(os.path.join(folder, f"{s}.wav"), dtype="int16")[0].astype(int)
                    for s in (*SOURCES, "mixture")}
            assert np.array_equal(ints["mixture"], sum(ints[s] for s in SOURCES))
            assert np.abs(ints["mixture"]).max() < 32767
            assert all(np.std(ints[s]) > 10 for s in SOURCES)  # no silent stem


def test_generator_is_deterministic_for_a_seed(tmp_path):
    args = dict(tracks_train=1, tracks_test=1, seconds=2.0)
    a = generate.make_dataset(str(tmp_path / "a"), seed=5, **args)
    b = generate.make_dataset(str(tmp_path / "b"), seed=5, **args)
    c = generate.make_dataset(str(tmp_path / "c"), seed=6, **args)
    names_a = sorted(os.listdir(os.path.join(a, "train")))
    assert names_a == sorted(os.listdir(os.path.join(b, "train")))
    folder = os.path.join("train", names_a[0])
    for stem in SOURCES:
        assert filecmp.cmp(os.path.join(a, folder, f"{stem}.wav"),
                           os.path.join(b, folder, f"{stem}.wav"), shallow=False)
    assert sorted(os.listdir(os.path.join(c, "train"))) != names_a
    meta = json.load(open(os.path.join(a, generate.MARKER_FILE)))
    assert meta["seed"] == 5 and len(meta["tracks"]) == 2


def test_generated_stems_have_stereo_placement_and_rests(generated_dataset):
    tracks = load_tracks(generated_dataset, "train")
    track = tracks[0]
    other = track.sources["other"]
    assert not np.allclose(other[:, 0], other[:, 1])  # panned parts and a stereo tail
    vocals = track.sources["vocals"]
    frames = np.sqrt(np.mean(vocals[: len(vocals) // 2205 * 2205].reshape(-1, 2205 * 2) ** 2, 1))
    assert np.mean(frames < 1e-3) > 0.05  # phrases with rests


def test_make_dataset_cli(tmp_path):
    import argparse
    parser = argparse.ArgumentParser()
    from bsrnn_tf.datasets.cli import register_cli
    register_cli(parser.add_subparsers())
    args = parser.parse_args(["make-dataset", str(tmp_path / "out"), "--tracks-train", "1",
                              "--tracks-test", "1", "--seconds", "1", "--seed", "2",
                              "--workers", "1"])
    assert args.func(args) == 0
    assert len(os.listdir(tmp_path / "out" / "test")) == 1


def test_builtin_root_is_created_once_atomically(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BSRNN_TF_DATA", str(tmp_path / "builtin"))
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    monkeypatch.setattr(generate, "DEFAULT_TRACKS_TRAIN", 2)
    monkeypatch.setattr(generate, "DEFAULT_TRACKS_TEST", 1)
    monkeypatch.setattr(generate, "DEFAULT_SECONDS", 1.0)

    def interrupted(out_dir, **kwargs):
        os.makedirs(os.path.join(out_dir, "train", "half"))
        raise KeyboardInterrupt

    real = generate.make_dataset
    monkeypatch.setattr(generate, "make_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate.builtin_dataset_root()
    assert os.listdir(tmp_path) == []  # neither the dataset nor the temporary folder
    monkeypatch.setattr(generate, "make_dataset", real)
    root, is_builtin = resolve_root(None, "synth")
    assert is_builtin and root == str(tmp_path / "builtin")
    assert "built-in synth dataset" in capsys.readouterr().out
    assert len(load_tracks(root, "train")) == 2
    stamp = os.path.getmtime(os.path.join(root, generate.MARKER_FILE))
    assert generate.builtin_dataset_root() == root
    assert os.path.getmtime(os.path.join(root, generate.MARKER_FILE)) == stamp
    assert sorted(os.listdir(tmp_path)) == ["builtin"]


def test_resolve_root_prefers_argument_then_env(generated_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("MUSDB_PATH", generated_dataset)
    assert resolve_root(None) == (generated_dataset, False)
    assert resolve_root(generated_dataset) == (generated_dataset, False)
    with pytest.raises(DataError, match="does not exist"):
        resolve_root(str(tmp_path / "nowhere"))


# ----------------------------------------------------------------- splits


def test_own_split_for_non_musdb_names_is_deterministic_and_disjoint(generated_dataset):
    train = [t.name for t in load_tracks(generated_dataset, "train", split="train")]
    valid = [t.name for t in load_tracks(generated_dataset, "train", split="valid")]
    everything = [t.name for t in load_tracks(generated_dataset, "train")]
    assert len(valid) == 1 and len(train) == 3
    assert sorted(train + valid) == sorted(everything)
    assert valid == [t.name for t in load_tracks(generated_dataset, "train", split="valid")]


def test_musdb_names_use_musdb_validation_list():
    names = ["Actions - One Minute Smile", "A Classic Education - NightOwl", "Other - Song"]
    musdb_valid = ["Actions - One Minute Smile", "Leaf - Summerghost"]
    assert split_names(names, "valid", musdb_valid) == ["Actions - One Minute Smile"]
    assert split_names(names, "train", musdb_valid) == names[1:]
    assert split_names(["Only - One"], "valid", []) == []


# --------------------------------------------------------------- bad data


def test_truncated_wav_is_skipped_with_its_name(bad_root):
    write_track(bad_root / "train" / "Bad - Truncated")
    path = bad_root / "train" / "Bad - Truncated" / "bass.wav"
    path.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])
    with pytest.warns(DataWarning, match=r"skipped 1 of 3(.|\n)*Bad - Truncated.*bass.*truncated"):
        assert len(load_bad(bad_root)) == 2
    with pytest.raises(DataError, match="'Bad - Truncated': bass is truncated"):
        load_bad(bad_root, strict=True)


def test_garbage_mixture_is_skipped(bad_root):
    write_track(bad_root / "train" / "Bad - Garbage")
    (bad_root / "train" / "Bad - Garbage" / "mixture.wav").write_bytes(os.urandom(3000))
    with pytest.warns(DataWarning, match="Bad - Garbage.*mixture cannot be read as audio"):
        assert [t.name for t in load_bad(bad_root)] == ["Good 0 - Song", "Good 1 - Song"]


def test_garbage_stem_gives_message(bad_root):
    write_track(bad_root / "train" / "Bad - Garbage")
    (bad_root / "train" / "Bad - Garbage" / "drums.wav").write_bytes(b"RIFF" + os.urandom(100))
    with pytest.raises(DataError, match="'Bad - Garbage': drums"):
        load_bad(bad_root, strict=True)


def test_missing_stem(bad_root):
    write_track(bad_root / "train" / "Bad - Missing")
    os.remove(bad_root / "train" / "Bad - Missing" / "vocals.wav")
    with pytest.raises(DataError, match=r"'Bad - Missing': missing stem 'vocals' \(vocals.wav\)"):
        load_bad(bad_root, strict=True)


def test_stem_of_different_length(bad_root):
    write_track(bad_root / "train" / "Bad - Length")
    sf.write(bad_root / "train" / "Bad - Length" / "other.wav", np.zeros((100, 2)), SR)
    with pytest.raises(DataError, match="'Bad - Length': stems have different lengths.*other 100"):
        load_bad(bad_root, strict=True)


def test_stem_of_different_sample_rate(bad_root):
    folder = bad_root / "train" / "Bad - Rate"
    write_track(folder)
    sf.write(folder / "drums.wav", np.zeros((int(0.5 * SR), 2)), 22050)
    with pytest.raises(DataError, match="'Bad - Rate': stems have different sample rates.*22050"):
        load_bad(bad_root, strict=True)


def test_mono_stem_is_duplicated_with_a_warning(bad_root):
    folder = bad_root / "train" / "Mono - Song"
    write_track(folder)
    mono = np.random.default_rng(1).standard_normal(int(0.5 * SR)) * 0.1
    sf.write(folder / "vocals.wav", mono, SR, subtype="PCM_16")
    expected = r"mono stems, duplicated to stereo: Mono - Song \(vocals\)"
    with pytest.warns(DataWarning, match=expected):
        tracks = load_bad(bad_root)
    track = next(t for t in tracks if t.name == "Mono - Song")
    vocals = track.sources["vocals"]
    assert vocals.shape == (int(0.5 * SR), 2)
    assert np.array_equal(vocals[:, 0], vocals[:, 1])
    assert track.read("vocals", 10, 20).shape == (20, 2)


def test_empty_track_folder_is_skipped(bad_root):
    os.makedirs(bad_root / "train" / "Empty - Folder")
    with pytest.warns(DataWarning, match="'Empty - Folder': missing stem 'drums'"):
        assert len(load_bad(bad_root)) == 2


def test_empty_or_non_musdb_roots_fail_before_any_work(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not a MUSDB18 dataset folder"):
        load_tracks(str(tmp_path / "empty"))
    (tmp_path / "emptysub" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="is empty: no tracks"):
        load_tracks(str(tmp_path / "emptysub"))
    odd = tmp_path / "odd" / "train" / "folder"
    odd.mkdir(parents=True)
    (odd / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="not a MUSDB18 layout"):
        load_tracks(str(tmp_path / "odd"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is not a folder"):
        resolve_root(str(tmp_path / "file"))
    with pytest.raises(DataError, match="no test subfolder"):
        load_tracks(str(tmp_path / "odd"), "test")


def test_all_tracks_bad_is_an_error(tmp_path):
    write_track(tmp_path / "r" / "train" / "Bad - One")
    os.remove(tmp_path / "r" / "train" / "Bad - One" / "bass.wav")
    with pytest.warns(DataWarning), pytest.raises(DataError, match="no usable tracks"):
        load_tracks(str(tmp_path / "r"))


@pytest.mark.slow
def test_stem_mp4_tracks_load(tmp_path):
    import stempeg
    root = tmp_path / "musdb18"
    (root / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    stems = (0.1 * rng.standard_normal((5, SR, 2))).astype(np.float32)
    stempeg.write_stems(str(root / "train" / "Stem - Song.stem.mp4"), stems, sample_rate=SR,
                        writer=stempeg.StreamsWriter(codec="aac"))
    (root / "train" / "Broken - Song.stem.mp4").write_bytes(os.urandom(2000))
    with pytest.warns(DataWarning, match="Broken - Song"):
        tracks = load_tracks(str(root), "train")
    (track,) = tracks
    assert not track.is_wav and track.num_samples == SR
    assert track.sources["vocals"].shape == (SR, 2)
    assert track.read("bass", 1000, 500).shape == (500, 2)
    assert track.mixture.shape == (SR, 2)


# ------------------------------------------------------------ augmentations


def test_gain_stays_within_bounds():
    import tensorflow as tf
    from bsrnn_tf.data import augment
    ones = tf.ones([200, 64, 2])
    gain_only = small_cfg(gain_db=10.0, channel_swap=False, silence_target_prob=0.0)
    out = augment.augment(ones, tf.constant([3, 4]), gain_only, True).numpy()
    gains = 20 * np.log10(out[:, 0, 0])
    assert gains.min() >= -10.0 - 1e-4 and gains.max() <= 10.0 + 1e-4
    assert gains.min() < -8 and gains.max() > 8  # spread over the range
    assert np.allclose(out, out[:, :1, :1])  # one gain per source, both channels


def test_channel_swap_and_silence():
    import tensorflow as tf
    from bsrnn_tf.data import augment
    audio = tf.tile(tf.constant([[[1.0, 2.0]]]), [400, 8, 1])
    swap_only = small_cfg(gain_db=0.0, channel_swap=True, silence_target_prob=0.0)
    swapped = augment.augment(audio, tf.constant([1, 2]), swap_only, True).numpy()
    is_swapped = swapped[:, 0, 0] == 2.0
    assert np.all(swapped[is_swapped] == [2.0, 1.0]) and np.all(swapped[~is_swapped] == [1.0, 2.0])
    assert 0.4 < is_swapped.mean() < 0.6
    silence_only = small_cfg(gain_db=0.0, channel_swap=False, silence_target_prob=0.1)
    silenced = augment.augment(audio, tf.constant([5, 6]), silence_only, True).numpy()
    zero = np.all(silenced == 0, axis=(1, 2))
    assert 0.04 < zero.mean() < 0.17 and np.all(silenced[~zero] == audio.numpy()[~zero])
    # Only targets are silenced.
    assert np.array_equal(augment.augment(audio, tf.constant([5, 6]), silence_only, False),
                          audio)


def test_all_augmentations_together_give_a_gain_a_swap_or_silence():
    """Each source comes out zero (target only), or as itself or its swap
    times one gain within +-10 dB."""
    import tensorflow as tf
    from bsrnn_tf.data import augment
    rng = np.random.default_rng(7)
    audio = rng.standard_normal((300, 16, 2)).astype(np.float32)
    is_target = np.arange(300) % 2 == 0
    cfg = small_cfg(gain_db=10.0, channel_swap=True, silence_target_prob=0.3)
    out = augment.augment(tf.constant(audio), tf.constant([8, 9]), cfg, is_target).numpy()
    zero = np.all(out == 0, axis=(1, 2))
    assert not np.any(zero[~is_target]) and 0.15 < zero[is_target].mean() < 0.45
    kept = np.flatnonzero(~zero)
    swapped = 0
    for i in kept:
        candidates = [audio[i], audio[i, :, ::-1]]
        gains = [np.sum(out[i] * c) / np.sum(c * c) for c in candidates]
        errors = [np.abs(out[i] - g * c).max() for g, c in zip(gains, candidates)]
        j = int(np.argmin(errors))
        assert errors[j] < 1e-4 and abs(20 * np.log10(gains[j])) <= 10.0 + 1e-4
        swapped += j
    assert 0.35 < swapped / len(kept) < 0.65


def test_augment_switches_follow_the_config():
    import tensorflow as tf
    from bsrnn_tf.data import augment
    audio = tf.random.normal([4, 100, 2])
    off = small_cfg(gain_db=0.0, channel_swap=False, silence_target_prob=0.0)
    assert np.array_equal(augment.augment(audio, tf.constant([1, 1]), off, True), audio)
    always = small_cfg(gain_db=0.0, channel_swap=False, silence_target_prob=1.0)
    out = augment.augment(audio, tf.constant([1, 1]), always, [False, True, False, True])
    assert np.all(out.numpy()[[1, 3]] == 0) and np.array_equal(out[0], audio[0])


def test_source_activity_rejects_silence_and_keeps_activity():
    import tensorflow as tf
    from bsrnn_tf.data.augment import source_activity
    noise = 0.1 * tf.random.stateless_normal([44100, 2], [1, 2])
    track_db = 20.0  # track RMS -20 dB re full scale
    assert bool(source_activity(noise, -track_db))
    assert not bool(source_activity(tf.zeros([44100, 2]), -track_db))
    mostly_silent = tf.concat([noise[:10000], tf.zeros([34100, 2])], axis=0)
    assert not bool(source_activity(mostly_silent, -track_db))
    assert not bool(source_activity(noise * 1e-4, -track_db))  # -100 dB: under the floor
    assert not bool(source_activity(noise * 1e-2, -track_db))  # 40 dB under the track
    assert bool(source_activity(noise * 0.1, float("-inf")))  # -40 dB; silent track: floor


# --------------------------------------------------------------- pipeline


@pytest.fixture(scope="module")
def tracks(generated_dataset):
    return load_tracks(generated_dataset, "train")


def batches(ds):
    return [(m.numpy(), {k: v.numpy() for k, v in t.items()}) for m, t in ds]


def test_train_batches_have_static_shapes_and_dtypes(tracks):
    import tensorflow as tf
    from bsrnn_tf.data.pipeline import train_dataset
    ds = train_dataset(tracks, ["vocals", "bass"], small_cfg(examples_per_epoch=7), 2)
    spec = tf.TensorSpec([2, SR, 2], tf.float32)
    assert ds.element_spec == (spec, {"vocals": spec, "bass": spec})
    got = batches(ds)
    assert len(got) == 3  # 7 examples, drop_remainder
    assert all(m.dtype == np.float32 and m.shape == (2, SR, 2) for m, _ in got)


def test_mixture_is_the_sum_of_augmented_sources(tracks):
    from bsrnn_tf.data.pipeline import train_dataset
    cfg = small_cfg(silence_target_prob=0.5)
    for mixture, sources in batches(train_dataset(tracks, list(SOURCES), cfg, 4)):
        np.testing.assert_allclose(mixture, sum(sources.values()), atol=1e-5)
        rms = np.sqrt(np.mean(np.stack(list(sources.values())) ** 2, axis=(2, 3)))
        assert np.all((rms > 1e-4) | (rms == 0))  # active, or silenced entirely


def test_train_chunks_follow_the_seed_and_change_every_epoch(tracks):
    from bsrnn_tf.data.pipeline import train_dataset
    cfg = small_cfg(examples_per_epoch=4)
    ds = train_dataset(tracks, ["vocals"], cfg, 2, seed=3)
    first, second = batches(ds), batches(ds)
    again = batches(train_dataset(tracks, ["vocals"], cfg, 2, seed=3))
    assert not np.array_equal(first[0][0], second[0][0])
    assert np.array_equal(first[0][0], again[0][0])
    assert np.array_equal(first[1][1]["vocals"], again[1][1]["vocals"])


def test_streaming_from_disk_gives_the_same_examples(generated_dataset):
    from bsrnn_tf.data.pipeline import train_dataset
    cfg = small_cfg(examples_per_epoch=4)
    loaded = load_tracks(generated_dataset, "train")
    streamed = load_tracks(generated_dataset, "train")
    a = batches(train_dataset(loaded, ["drums"], cfg, 2, seed=1))
    b = batches(train_dataset(streamed, ["drums"], dataclasses.replace(cfg, cache_budget_mb=0),
                              2, seed=1))
    assert all(t.is_loaded for t in loaded) and not any(t.is_loaded for t in streamed)
    np.testing.assert_allclose(a[0][0], b[0][0], atol=1e-6)


def test_activity_detection_never_yields_a_silent_target(tmp_path):
    from bsrnn_tf.data.pipeline import train_dataset
    root = tmp_path / "r"
    write_track(root / "train" / "A - Silent vocals", seconds=2.0, silent=("vocals",))
    write_track(root / "train" / "B - Loud", seconds=2.0, rng=np.random.default_rng(1))
    tracks = load_tracks(str(root))
    cfg = small_cfg(segment_seconds=0.2, examples_per_epoch=32, gain_db=0.0,
                    silence_target_prob=0.0)
    for _, sources in batches(train_dataset(tracks, ["vocals"], cfg, 8)):
        assert np.all(np.abs(sources["vocals"]).max(axis=(1, 2)) > 0.01)
    off = dataclasses.replace(cfg, source_activity=False, examples_per_epoch=64)
    peaks = np.concatenate([np.abs(s["vocals"]).max(axis=(1, 2))
                            for _, s in batches(train_dataset(tracks, ["vocals"], off, 8))])
    assert np.any(peaks == 0)  # without detection, silent chunks come through


def test_a_target_silent_everywhere_stops_with_a_message(tmp_path, monkeypatch):
    import tensorflow as tf
    from bsrnn_tf.data import pipeline
    monkeypatch.setattr(pipeline, "MAX_REJECTIONS", 20)
    write_track(tmp_path / "r" / "train" / "A - Song", seconds=1.0, silent=("bass",))
    cfg = small_cfg(segment_seconds=0.1, examples_per_epoch=4)
    ds = pipeline.train_dataset(load_tracks(str(tmp_path / "r")), ["bass"], cfg, 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="rejected 20 chunks of bass in a row"):
        batches(ds)


def test_no_remix_reads_one_track_at_one_position(tracks, monkeypatch):
    from bsrnn_tf.data import pipeline
    from bsrnn_tf.data.pipeline import train_dataset
    # Compare with the files' own level (the loudness normalisation has its
    # own tests in test_preprocess.py).
    monkeypatch.setattr(pipeline, "normalize_example", lambda mixture, sources: (mixture, sources))
    cfg = small_cfg(remix=False, gain_db=0.0, channel_swap=False, silence_target_prob=0.0)
    mixture, sources = batches(train_dataset(tracks, list(SOURCES), cfg, 2))[0]
    found = 0
    for track in tracks:  # the mixture chunk is a window of one track's mixture.wav
        full = track.mixture
        hits = np.flatnonzero(np.all(np.abs(full[:-1] - mixture[0, 0]) < 1e-6, axis=1))
        found += any(np.allclose(full[h:h + SR], mixture[0], atol=1e-5) for h in hits)
    assert found == 1


def test_validation_batches_are_identical_across_runs(generated_dataset):
    from bsrnn_tf.data.pipeline import valid_dataset
    cfg = small_cfg(valid_examples=5)
    valid = load_tracks(generated_dataset, "train", split="valid")
    ds = valid_dataset(valid, ["vocals", "drums"], cfg, 2)
    first, second = batches(ds), batches(ds)
    other = batches(valid_dataset(load_tracks(generated_dataset, "train", split="valid"),
                                  ["vocals", "drums"], cfg, 2))
    assert len(first) == 3  # 5 rounded up to a multiple of the batch size
    for a, b, c in zip(first, second, other):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[0], c[0])
        assert np.array_equal(a[1]["drums"], c[1]["drums"])
    mixture, sources = first[0]
    assert not np.allclose(mixture, sources["vocals"] + sources["drums"])  # bass, other too


def test_validation_chunks_have_the_validation_length(generated_dataset, tracks):
    """data.valid_segment_seconds sets the validation chunks' length apart
    from the training chunks'; None (an old config without the field) keeps
    the training length."""
    from bsrnn_tf.config import ConfigError, ExperimentConfig
    from bsrnn_tf.data.pipeline import train_dataset, valid_dataset
    valid = load_tracks(generated_dataset, "train", split="valid")
    cfg = small_cfg(valid_segment_seconds=1.5)
    long = batches(valid_dataset(valid, ["vocals"], cfg, 2))
    assert [m.shape for m, _ in long] == [(2, int(1.5 * SR), 2)] * 2
    assert all(s["vocals"].shape == (2, int(1.5 * SR), 2) for _, s in long)
    assert train_dataset(tracks, ["vocals"], cfg, 2).element_spec[0].shape == (2, SR, 2)
    same = batches(valid_dataset(valid, ["vocals"], small_cfg(), 2))
    assert [m.shape for m, _ in same] == [(2, SR, 2)] * 2
    old = ExperimentConfig().to_dict()
    del old["data"]["valid_segment_seconds"]
    assert ExperimentConfig.from_dict(old).data.valid_segment_seconds is None
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ConfigError, match="data.valid_segment_seconds"):
            small_cfg(valid_segment_seconds=bad).validate()


def test_pipeline_rejects_bad_arguments(tracks):
    from bsrnn_tf.data.pipeline import train_dataset
    with pytest.raises(ValueError, match="unknown targets"):
        train_dataset(tracks, ["piano"], small_cfg(), 2)
    with pytest.raises(DataError, match="is at 44100 Hz, the pipeline runs at 48000 Hz"):
        train_dataset(tracks, ["vocals"], small_cfg(), 2, sample_rate=48000)
    partial = [Track("X", "train", SR, SR, ["vocals"], paths={"vocals": "x.wav"})]
    with pytest.raises(DataError, match="lacks"):
        train_dataset(partial, ["vocals"], small_cfg(), 2)


@pytest.mark.slow
def test_pipeline_under_mirrored_strategy(generated_dataset):
    code = textwrap.dedent("""
        import sys
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from bsrnn_tf.config import DataConfig
        from bsrnn_tf.data.musdb import load_tracks
        from bsrnn_tf.data.pipeline import train_dataset, valid_dataset
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        tracks = load_tracks(sys.argv[1], "train")
        cfg = DataConfig(segment_seconds=0.5, examples_per_epoch=8, valid_examples=4)

        @tf.function
        def step(mixture, sources):
            return strategy.run(lambda m, s: tf.reduce_sum(m - s["vocals"]), (mixture, sources))

        datasets = [(2, train_dataset(tracks, ["vocals"], cfg, 4)),
                    (1, valid_dataset(tracks, ["vocals"], cfg, 4))]
        for batches, ds in datasets:
            dist = strategy.experimental_distribute_dataset(ds)
            for epoch in range(2):
                count = 0
                for mixture, sources in dist:
                    local = strategy.experimental_local_results(mixture)
                    assert [x.shape for x in local] == [(2, 22050, 2)] * 2, local
                    step(mixture, sources)
                    count += 1
                assert count == batches, count
        print("OK")
    """)
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2",
           "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-c", code, generated_dataset], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


def test_one_stem_list_for_tracks_generators_and_config():
    """The MUSDB stem names live in bsrnn_tf.data.track; the generators and
    the config's default targets use that tuple, and a generated song's stems
    come in its order."""
    from bsrnn_tf.config import DEFAULT_TARGETS
    from bsrnn_tf.data.track import SOURCES as TRACK_SOURCES
    from bsrnn_tf.datasets import compose, sampled_song, score
    assert TRACK_SOURCES == ("drums", "bass", "other", "vocals")
    for copy in (DEFAULT_TARGETS, SOURCES, compose.SOURCES, sampled_song.SOURCES,
                 score.SOURCES, generate.SOURCES):
        assert copy is TRACK_SOURCES
    _, stems = generate.render_song(3, "train", 0, seconds=0.5)
    assert tuple(stems) == TRACK_SOURCES
