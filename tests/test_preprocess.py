"""The one pre-processing path (bsrnn_tf.preprocess): the rule against a
hand computation, the TF and numpy forms against each other, and the same
level at the model's input in training, validation and separation."""

import os

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from bsrnn_tf import preprocess


def _expected(audio, target_db=-20.0, peak=0.99):
    x = np.asarray(audio, np.float64)
    rms = np.sqrt(np.mean(x ** 2))
    return min(10 ** (target_db / 20) / rms, peak / np.abs(x).max())


def test_song_scale_rule_in_blocks(rng):
    audio = (rng.standard_normal((30001, 2)) * 0.05).astype(np.float32)
    for block in (7, 4096, 1 << 20):  # blocks that do and do not divide the size
        assert preprocess.song_scale(audio, block=block) == pytest.approx(_expected(audio),
                                                                         rel=1e-9)
    audio[12345, 1] = 0.95  # the peak limit wins, in whichever block holds the peak
    assert preprocess.song_scale(audio, block=7) == pytest.approx(0.99 / 0.95, rel=1e-6)
    quiet = (rng.standard_normal((44100, 2)) * 1e-3).astype(np.float32)
    out = quiet * preprocess.song_scale(quiet)
    assert 10 * np.log10(np.mean(out.astype(np.float64) ** 2)) == pytest.approx(-20.0, abs=0.01)
    for silent in (np.zeros((100, 2), np.float32), np.full((100, 2), 1e-20, np.float32)):
        assert preprocess.song_scale(silent) == 1.0


def test_example_scale_agrees_with_song_scale(rng):
    batch = (rng.standard_normal((3, 5000, 2)) * [[[0.001]], [[0.1]], [[0.3]]]).astype(np.float32)
    batch[2, 10, 0] = 0.98  # peak-limited example
    got = preprocess.example_scale(tf.constant(batch)).numpy()
    for i in range(3):
        assert got[i] == pytest.approx(preprocess.song_scale(batch[i]), rel=1e-5)
    assert preprocess.example_scale(tf.zeros([1, 100, 2])).numpy()[0] == 1.0
    mixture, sources = preprocess.normalize_example(tf.constant(batch),
                                                    {"a": tf.constant(batch / 2)})
    np.testing.assert_allclose(mixture.numpy(), 2 * sources["a"].numpy(), rtol=1e-6)


def _rms_db(x):
    return 10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2))


@pytest.mark.slow
def test_training_validation_and_separation_inputs_at_the_same_level(tmp_path, rng):
    """The same stationary song, at -35 dBFS on disk, reaches the model at
    -20 dBFS in a training example, a validation chunk and separation."""
    from bsrnn_tf.config import DataConfig
    from bsrnn_tf.data.musdb import SOURCES, load_tracks
    from bsrnn_tf.data.pipeline import train_dataset, valid_dataset
    from bsrnn_tf.inference.separate import separate

    rate, seconds = 8000, 4.0
    n = int(rate * seconds)
    for subset in ("train",):
        for k in range(2):
            folder = tmp_path / subset / f"song{k}"
            os.makedirs(folder)
            stems = {s: (rng.standard_normal((n, 2)) * 10 ** (-41 / 20)).astype(np.float32)
                     for s in SOURCES}
            for s, x in stems.items():
                sf.write(folder / f"{s}.wav", x, rate, subtype="FLOAT")
            sf.write(folder / "mixture.wav", sum(stems.values()), rate, subtype="FLOAT")
    tracks = load_tracks(str(tmp_path), subset="train", split=None)
    data = DataConfig(segment_seconds=1.0, examples_per_epoch=4, valid_examples=2, remix=False,
                      gain_db=0.0, channel_swap=False, silence_target_prob=0.0,
                      source_activity=False)
    mixture, _ = next(iter(train_dataset(tracks, ["vocals"], data, 2, rate)))
    assert _rms_db(tracks[0].mixture) == pytest.approx(-35.0, abs=0.2)
    for example in mixture.numpy():
        assert _rms_db(example) == pytest.approx(-20.0, abs=0.05)
    mixture, _ = next(iter(valid_dataset(tracks, ["vocals"], data, 2, rate)))
    for example in mixture.numpy():
        assert _rms_db(example) == pytest.approx(-20.0, abs=0.05)

    from bsrnn_tf.inference.backends import Backend, ModelInfo

    seen = []

    class Recorder(Backend):
        def _run(self, batch):
            seen.extend(batch)
            return {"vocals": batch / 4}

    recorder = Recorder("recorder", ModelInfo(rate, rate, 2, ["vocals"], 256, 64), 4)
    estimates = separate(tracks[0].mixture, recorder, targets=["vocals"], sample_rate=rate)
    assert all(_rms_db(chunk) == pytest.approx(-20.0, abs=0.5) for chunk in seen[1:-1])
    # The inverse scale is applied to the estimates: mixture / 4 at the song's level.
    np.testing.assert_allclose(estimates["vocals"], tracks[0].mixture / 4, atol=1e-5)
