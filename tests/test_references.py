"""The references that say how much of a score is separation: the
best-scaled mixture and the oracle ideal ratio mask, against hand
computations on tiny signals; and the trainer's validation references
against the numpy ones."""

import math

import numpy as np
import pytest

from bsrnn_tf.metrics import (ideal_ratio_mask_estimates, reference_scores, scaled_mixture,
                              usdr)


def test_scaled_mixture_by_hand():
    s = np.array([[1.0], [0.0]])
    m = np.array([[1.0], [1.0]])
    # g = <s, m> / <m, m> = 1 / 2; error energy 0.25 + 0.25.
    np.testing.assert_allclose(scaled_mixture(s, m), [[0.5], [0.5]])
    assert usdr(s, scaled_mixture(s, m)) == pytest.approx(10 * math.log10(1 / 0.5), abs=1e-6)
    # No other gain does better than the least-squares one.
    for g in (0.3, 0.45, 0.55, 0.8):
        assert usdr(s, g * m) < usdr(s, scaled_mixture(s, m))
    assert np.all(scaled_mixture(s, np.zeros_like(m)) == 0)


def test_ideal_ratio_mask_of_proportional_sources_is_exact(rng):
    # s2 = 2 s1: |S1| / (|S1| + |S2|) = 1/3 in every bin, and mixture / 3 = s1.
    s1 = rng.standard_normal((4096, 2)).astype(np.float32)
    out = ideal_ratio_mask_estimates({"a": s1, "b": 2 * s1}, n_fft=256, hop_length=64)
    np.testing.assert_allclose(out["a"], s1, atol=1e-4)
    np.testing.assert_allclose(out["b"], 2 * s1, atol=1e-4)


def test_ideal_ratio_mask_separates_sources_in_different_bins():
    n, sr = 8192, 8000
    t = np.arange(n) / sr
    # Bin-centred sines far apart (bins 16 and 64 of a 256-point STFT).
    a = np.stack([np.sin(2 * np.pi * 500 * t)] * 2, axis=1).astype(np.float32)
    b = np.stack([np.sin(2 * np.pi * 2000 * t)] * 2, axis=1).astype(np.float32)
    scores = reference_scores({"a": a, "b": b}, ["a", "b"], n_fft=256, hop_length=64)
    assert scores["oracle_irm"]["a"] > 30 and scores["oracle_irm"]["b"] > 30
    # Equal energies, orthogonal: g = 1/2, error (a - b) / 2 has half a's energy: +3.01 dB.
    assert scores["scaled_mixture"]["a"] == pytest.approx(10 * math.log10(2), abs=0.01)


@pytest.mark.slow
def test_trainer_validation_references_match_numpy(generated_dataset, tmp_path):
    from bsrnn_tf.config import ExperimentConfig
    from bsrnn_tf.data.musdb import SOURCES, load_tracks
    from bsrnn_tf.data.pipeline import valid_dataset
    from bsrnn_tf.models import build_separator, preset
    from bsrnn_tf.training.trainer import Trainer
    import tensorflow as tf

    config = ExperimentConfig(preset="tiny")
    config.model = preset("tiny")
    config.model.targets = list(SOURCES)
    config.data.segment_seconds = 1.0
    config.data.valid_examples = 4
    config.train.batch_size = 2
    model = build_separator(config.model)
    tracks = load_tracks(generated_dataset, subset="train", split="valid")
    valid = valid_dataset(tracks, SOURCES, config.data, 2, model.sample_rate)
    trainer = Trainer(model, config, str(tmp_path), tf.distribute.get_strategy(),
                      lambda ctx: valid, valid, log=lambda _: None)
    got = trainer.reference_usdr()
    signal = {t: 0.0 for t in SOURCES}
    errors = {"scaled_mixture": {t: 0.0 for t in SOURCES},
              "oracle_irm": {t: 0.0 for t in SOURCES}}
    stft = config.model.stft
    for mixture, sources in valid.as_numpy_iterator():
        for i in range(mixture.shape[0]):
            chunk = {t: sources[t][i] for t in SOURCES}
            irm = ideal_ratio_mask_estimates(chunk, stft.n_fft, stft.hop_length)
            for t in SOURCES:
                signal[t] += np.sum(chunk[t].astype(np.float64) ** 2)
                errors["scaled_mixture"][t] += np.sum(
                    (chunk[t] - scaled_mixture(chunk[t], mixture[i])) ** 2)
                errors["oracle_irm"][t] += np.sum((chunk[t] - irm[t]) ** 2)
    for name, values in errors.items():
        for t in SOURCES:
            expected = 10 * math.log10((signal[t] + 1e-7) / (values[t] + 1e-7))
            assert got[name][t] == pytest.approx(expected, abs=0.02), (name, t)
