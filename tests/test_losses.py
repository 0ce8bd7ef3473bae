"""The BSRNN loss and its multi-task sum against hand computations.

BSRNN loss per example (Luo & Yu 2023; refined BSRNN eq. 1): mean |Re(S_hat
- S)| + mean |Im(S_hat - S)| over frames x bins x channels, plus mean |s_hat
- s| over samples x channels. Multi-task (refined BSRNN eq. 2): the sum of the
per-target losses, here optionally weighted.
"""

import numpy as np
import pytest
import tensorflow as tf

from bsrnn_tf.training.losses import bsrnn_loss, multitask_loss


def _pack(spec):
    """complex (batch, frames, bins, channels) -> packed real (..., channels * 2),
    ``[ch0.re, ch0.im, ch1.re, ch1.im, ...]``."""
    return np.stack([spec.real, spec.imag], axis=-1).reshape(*spec.shape[:-1], -1)


def test_bsrnn_loss_of_one_bin_by_hand():
    # One frame, one bin, one channel: estimate 3 - 4j, reference 1 + 1j;
    # waveform estimate [0.5, -1, 2], reference [0, 0, 0.5].
    est_spec = np.array([3.0, -4.0], np.float32).reshape(1, 1, 1, 2)
    ref_spec = np.array([1.0, 1.0], np.float32).reshape(1, 1, 1, 2)
    est_wave = np.array([0.5, -1.0, 2.0], np.float32).reshape(1, 3, 1)
    ref_wave = np.array([0.0, 0.0, 0.5], np.float32).reshape(1, 3, 1)
    # |3 - 1| + |-4 - 1| + (0.5 + 1 + 1.5) / 3 = 2 + 5 + 1 = 8
    loss = bsrnn_loss(est_spec, ref_spec, est_wave, ref_wave)
    assert loss.shape == (1,)
    assert float(loss[0]) == pytest.approx(8.0, abs=1e-6)


def test_bsrnn_loss_matches_complex_l1_per_example(rng):
    batch, frames, bins, channels, samples = 3, 4, 5, 2, 40
    shape = (batch, frames, bins, channels)
    est = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    ref = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    ref[1] = est[1]  # a perfect spectrum for example 1
    est_wave = rng.standard_normal((batch, samples, channels))
    ref_wave = rng.standard_normal((batch, samples, channels)) * np.array([1.0, 3.0, 0.1])[
        :, None, None]
    expected = []
    for b in range(batch):
        re = sum(abs((est[b] - ref[b]).real.ravel()))
        im = sum(abs((est[b] - ref[b]).imag.ravel()))
        wave = sum(abs((est_wave[b] - ref_wave[b]).ravel()))
        expected.append(re / (frames * bins * channels) + im / (frames * bins * channels)
                        + wave / (samples * channels))
    f32 = np.float32
    loss = bsrnn_loss(tf.constant(_pack(est), tf.float16), _pack(ref).astype(f32),
                      est_wave.astype(f32), ref_wave.astype(f32))
    assert loss.shape == (batch,) and loss.dtype == tf.float32  # float16 estimates are cast
    np.testing.assert_allclose(loss.numpy(), expected, rtol=2e-3)
    exact = bsrnn_loss(_pack(est).astype(f32), _pack(ref).astype(f32), est_wave.astype(f32),
                       ref_wave.astype(f32))
    np.testing.assert_allclose(exact.numpy(), expected, rtol=1e-5)
    # Example 1: only its waveform term is left.
    wave_only = np.mean(np.abs(est_wave[1] - ref_wave[1]))
    assert float(exact[1]) == pytest.approx(wave_only, rel=1e-5)


def test_multitask_loss_sums_weighted_targets():
    per_target = {"vocals": tf.constant([1.0, 2.0]), "bass": tf.constant([10.0, 20.0]),
                  "drums": tf.constant([100.0, 300.0])}
    np.testing.assert_allclose(multitask_loss(per_target).numpy(), [111.0, 322.0])
    # Missing weights are 1; a weight of 0 drops a target.
    weighted = multitask_loss(per_target, {"bass": 0.5, "drums": 0.0})
    assert weighted.shape == (2,)
    np.testing.assert_allclose(weighted.numpy(), [1.0 + 5.0, 2.0 + 10.0])
    np.testing.assert_allclose(multitask_loss({"vocals": per_target["vocals"]}, {"vocals": 3}),
                               [3.0, 6.0])


def test_negative_sdr_and_the_combined_loss_by_hand():
    import math

    import tensorflow as tf

    from bsrnn_tf.training.losses import bsrnn_loss, negative_sdr, target_loss

    ref = np.zeros((2, 4, 1), np.float32)
    ref[0, :, 0] = [1, 1, 1, 1]  # energy 4
    est = np.zeros_like(ref)
    est[0, :, 0] = [1, 1, 1, 0]  # error energy 1: uSDR = 10 log10(4 / 1)
    expected = -10 * math.log10((4 + 1e-7) / (1 + 1e-7))
    got = negative_sdr(tf.constant(est), tf.constant(ref)).numpy()
    assert got[0] == pytest.approx(expected, abs=1e-5)
    spec_est = np.zeros((2, 1, 1, 2), np.float32)
    spec_ref = np.ones((2, 1, 1, 2), np.float32)
    base = bsrnn_loss(tf.constant(spec_est), tf.constant(spec_ref), tf.constant(est),
                      tf.constant(ref)).numpy()
    combined = target_loss("bsrnn+sdr", tf.constant(spec_est), tf.constant(spec_ref),
                           tf.constant(est), tf.constant(ref), sdr_weight=0.5).numpy()
    # Example 0: base + 0.5 x (-6.02 dB); example 1 has a silent reference: no SDR term.
    assert combined[0] == pytest.approx(base[0] + 0.5 * expected, abs=1e-5)
    assert combined[1] == pytest.approx(base[1], abs=1e-7)
    assert np.allclose(target_loss("bsrnn", tf.constant(spec_est), tf.constant(spec_ref),
                                   tf.constant(est), tf.constant(ref)).numpy(), base)
    with pytest.raises(ValueError, match="unknown loss"):
        target_loss("l2", tf.constant(spec_est), tf.constant(spec_ref), tf.constant(est),
                    tf.constant(ref))
