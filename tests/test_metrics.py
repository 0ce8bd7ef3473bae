"""uSDR against a direct computation; cSDR through museval itself."""

import numpy as np
import pytest
import tensorflow as tf

from bsrnn_tf.metrics import USDR, aggregate_csdr, aggregate_usdr, csdr, usdr, usdr_tf


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


def test_tf_usdr_and_keras_metric_agree_with_numpy(rng):
    s = rng.standard_normal((3, 500, 2)).astype(np.float32)
    e = (s + rng.standard_normal(s.shape) * np.array([0.1, 0.5, 1.0])[:, None, None]).astype(
        np.float32)
    expected = [usdr(s[i], e[i]) for i in range(3)]
    np.testing.assert_allclose(usdr_tf(s, e).numpy(), expected, rtol=1e-4)
    metric = USDR()
    metric.update_state(s[:2], e[:2])
    metric.update_state(s[2:], e[2:])
    assert float(metric.result()) == pytest.approx(np.mean(expected), rel=1e-4)
    assert USDR.from_config(metric.get_config()).name == "usdr"


def _sources(seconds=3, rate=44100):
    rng = np.random.default_rng(1)
    t = np.arange(seconds * rate) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t))[:, None] * np.array([1.0, 0.8])
    noise = 0.1 * rng.standard_normal((seconds * rate, 2))
    return {"tone": tone, "noise": noise}


@pytest.mark.slow
def test_csdr_perfect_high_zero_low_through_museval():
    refs = _sources()
    perfect = csdr(refs, {k: v + 1e-5 * np.sin(np.arange(len(v)))[:, None]
                          for k, v in refs.items()})
    assert all(v > 60 for v in perfect.values())
    zeros = csdr(refs, {k: np.zeros_like(v) for k, v in refs.items()})
    assert all(v < 1 for v in zeros.values())
    swapped = csdr(refs, {"tone": refs["noise"], "noise": refs["tone"]})
    assert all(v < 0 for v in swapped.values())


@pytest.mark.slow
def test_csdr_single_target_needs_mixture():
    refs = _sources()
    mixture = refs["tone"] + refs["noise"]
    half = csdr({"tone": refs["tone"]}, {"tone": 0.5 * refs["tone"]}, mixture=mixture)
    # Half the target: BSSEval v4 (framewise filters off) counts the missing
    # half as error, 20 log10(2) = 6.02 dB in every window.
    assert half["tone"] == pytest.approx(20 * np.log10(2), abs=0.01)
    with pytest.raises(ValueError, match="mixture"):
        csdr({"tone": refs["tone"]}, {"tone": refs["tone"]})


def test_aggregates():
    tracks = [{"a": 1.0, "b": 4.0}, {"a": 3.0, "b": float("nan")}, {"a": 8.0, "b": 2.0}]
    assert aggregate_usdr(tracks)["a"] == pytest.approx(4.0)
    assert aggregate_csdr(tracks)["a"] == 3.0
    assert aggregate_csdr(tracks)["b"] == 3.0  # NaN track ignored
