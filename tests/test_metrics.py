"""uSDR against a direct computation; aggregation over tracks. (cSDR per
track is training/evaluate.py's, tested in test_evaluate.py.)"""

import numpy as np
import pytest

from bsrnn_tf.metrics import (aggregate_csdr, aggregate_usdr, ideal_ratio_mask_estimates,
                              reference_scores, scaled_mixture, silent_reference, usdr)


def _direct_usdr(s, e):
    num, den = 1e-7, 1e-7
    for value, estimate in zip(np.ravel(s), np.ravel(e)):
        num += float(value) ** 2
        den += (float(value) - float(estimate)) ** 2
    return 10 * np.log10(num / den)


def test_usdr_matches_direct_sum(rng):
    s = rng.standard_normal((3000, 2))
    e = s + 0.1 * rng.standard_normal((3000, 2))
    assert usdr(s, e) == pytest.approx(_direct_usdr(s, e), abs=1e-9)
    assert usdr(s, e) == pytest.approx(20.0, abs=0.3)  # noise at -20 dB


def test_usdr_special_cases(rng):
    s = rng.standard_normal((100, 2))
    assert usdr(s, s) > 90  # only eps keeps it finite
    silent = np.zeros((100, 2))
    assert usdr(silent, silent) == 0.0  # documented: silent vs silent is 0 dB
    value = usdr(silent, s)
    assert np.isfinite(value) and value < -90
    with pytest.raises(ValueError, match="shapes differ"):
        usdr(s, s[:50])


def test_aggregates():
    tracks = [{"a": 1.0, "b": 4.0}, {"a": 3.0, "b": float("nan")}, {"a": 8.0, "b": 2.0}]
    assert aggregate_usdr(tracks)["a"] == pytest.approx(4.0)
    assert aggregate_csdr(tracks)["a"] == 3.0
    assert aggregate_csdr(tracks)["b"] == 3.0  # NaN track ignored


def test_scaled_mixture_is_the_least_squares_gain(rng):
    source = rng.standard_normal((2000, 2))
    mixture = source + rng.standard_normal((2000, 2))
    gain = np.linalg.lstsq(mixture.reshape(-1, 1), source.reshape(-1), rcond=None)[0][0]
    np.testing.assert_allclose(scaled_mixture(source, mixture), gain * mixture, rtol=1e-10)
    assert gain == pytest.approx(0.5, abs=0.05)  # equal powers
    assert not np.any(scaled_mixture(source, np.zeros_like(mixture)))


def test_ideal_ratio_masks_split_the_mixture(rng):
    t = np.arange(8192) / 44100
    sources = {"tone": np.stack([np.sin(2 * np.pi * 440 * t)] * 2, -1),
               "noise": 0.3 * rng.standard_normal((8192, 2)),
               "silent": np.zeros((8192, 2))}
    estimates = ideal_ratio_mask_estimates(sources, 512, 128)
    mixture = sum(sources.values())
    # Masks sum to 1 in every bin: the estimates add up to the mixture.
    np.testing.assert_allclose(sum(estimates.values()), mixture, atol=1e-4)
    assert np.abs(estimates["silent"]).max() < 1e-6
    scores = reference_scores(sources, ["tone", "noise"], 512, 128)
    for target in ("tone", "noise"):
        assert scores["oracle_irm"][target] > scores["scaled_mixture"][target] \
            >= usdr(sources[target], mixture)


def test_silent_reference_is_60_db_below_the_mixture_or_zero():
    rng = np.random.default_rng(3)
    mixture = rng.standard_normal((44100, 2))
    # energy ratios by hand: amplitude a gives 20 log10(a) dB against the mixture
    assert silent_reference(np.zeros_like(mixture), mixture)
    assert silent_reference(10 ** (-61 / 20) * mixture, mixture)
    assert not silent_reference(10 ** (-59 / 20) * mixture, mixture)
    assert silent_reference(10 ** (-41 / 20) * mixture, mixture, below_db=-40)
    assert silent_reference(np.zeros((10, 2)), np.zeros((10, 2)))  # silent everywhere
    # the uSDR such a reference would give to an estimate 40 dB below the mixture
    assert usdr(np.zeros_like(mixture), 0.01 * mixture) < -70
