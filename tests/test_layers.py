"""Layers against independent numpy computations, and config round trips."""

import keras
import numpy as np
import pytest
import scipy.signal
import tensorflow as tf
from helpers.reference import frame_pooled_norm, group_norm

from bsrnn_tf import bands
from bsrnn_tf.layers import BandSequence, BandSplit, MaskHead, apply_mask
from bsrnn_tf.layers.stft import ISTFT_METHODS, hann_window, istft, stft

NORMS = ["frame", "chunk", "cumulative"]
# The axes a norm's statistics cover within a frame, for features (batch,
# frames, bands, N) and for one band's features (batch, frames, features):
# "chunk" also pools over all frames (the BSRNN authors' one-group group
# norm), "cumulative" over the frames so far, "frame" over none
# (helpers.reference.frame_pooled_norm). Before the band BLSTM the statistics
# are per frame for every norm.
TIME_AXES = [3]
BAND_AXES = {"frame": [3], "chunk": [2, 3], "cumulative": [2, 3]}
BAND_SPLIT_AXES = [2]


def _numpy_stft(wave, n_fft, hop):
    """(samples, channels) -> complex (channels, frames, bins), centred, by
    scipy (zero padding of n_fft // 2 at both ends, periodic Hann window;
    scipy scales by 1 / sum(window), undone here)."""
    _, _, spec = scipy.signal.stft(wave.T, window="hann", nperseg=n_fft, noverlap=n_fft - hop,
                                   boundary="zeros", padded=False, detrend=False)
    return spec.transpose(0, 2, 1) * scipy.signal.get_window("hann", n_fft).sum()


def _pack(spec):
    """complex (channels, frames, bins) -> packed (frames, bins, channels*2)."""
    out = np.stack([spec.real, spec.imag], -1)  # (C, T, F, 2)
    return out.transpose(1, 2, 0, 3).reshape(spec.shape[1], spec.shape[2], -1)


@pytest.mark.parametrize("length", [2048, 44100, 44101, 10000])
def test_stft_matches_scipy(rng, length):
    """The model's STFT and the numpy one of the spectrum-variant backends."""
    from bsrnn_tf.spectral import numpy_stft
    wave = rng.standard_normal((length, 2)).astype(np.float32)
    ref = _pack(_numpy_stft(wave.astype(np.float64), 2048, 512))
    for ours in (stft(wave[None], 2048, 512).numpy()[0], numpy_stft(wave[None], 2048, 512)[0]):
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, atol=2e-3 * np.abs(ref).max() / 100)


@pytest.mark.parametrize("method", ISTFT_METHODS)
@pytest.mark.parametrize("n_fft,hop,length", [(2048, 512, 132300), (2048, 512, 3001),
                                              (512, 128, 22050), (1024, 512, 5000)])
def test_stft_istft_reconstructs(rng, method, n_fft, hop, length):
    wave = rng.standard_normal((2, length, 2)).astype(np.float32)
    back = istft(stft(wave, n_fft, hop), n_fft, hop, length, method=method).numpy()
    rel = np.linalg.norm(back - wave) / np.linalg.norm(wave)
    assert rel < (1e-5 if method == "irfft" else 3e-5)


@pytest.mark.parametrize("n_fft,hop", [(512, 128), (2048, 512), (12, 3)])
def test_istft_methods_agree_with_numpys_irfft_on_any_spectrum(n_fft, hop):
    """Also for spectra that are not the STFT of any signal (12: ``rfft``
    falls back to ``matmul``), against the numpy reference."""
    from bsrnn_tf.spectral import numpy_istft
    rng = np.random.default_rng(n_fft)
    wave = rng.standard_normal((1, 6000, 2)).astype(np.float32)
    spec = stft(wave, n_fft, hop).numpy()
    spec += rng.standard_normal(spec.shape).astype(np.float32)
    reference = numpy_istft(spec, n_fft, hop, 6000)
    for method in ISTFT_METHODS:
        np.testing.assert_allclose(istft(tf.constant(spec), n_fft, hop, 6000, method).numpy(),
                                   reference, atol=2e-5, err_msg=method)


@pytest.mark.parametrize("samples,n_fft,hop", [(44100, 2048, 512), (132300, 2048, 512),
                                               (3001, 512, 128), (5000, 1024, 512),
                                               (1, 12, 3), (511, 256, 64)])
def test_stft_geometry_helpers_match_tf_signal_and_counting(samples, n_fft, hop):
    """``num_bins`` and ``num_frames`` (bsrnn_tf.spectral, the one home of the
    geometry) against shapes computed elsewhere: ``tf.signal.stft`` of the
    centred padding, and the causal frames counted one by one (frame ``t``
    covers ``[(t + 1) * hop - n_fft, (t + 1) * hop)``; frames run while one
    still starts at or before the last sample)."""
    from bsrnn_tf.config import StftConfig
    from bsrnn_tf.inference.backends import ModelInfo
    from bsrnn_tf.spectral import num_bins, num_frames
    x = np.zeros((samples,), np.float32)
    centred = tf.signal.stft(np.pad(x, n_fft // 2), n_fft, hop, n_fft, pad_end=False)
    assert num_bins(n_fft) == centred.shape[1] == np.fft.rfft(np.zeros(n_fft)).shape[0]
    assert num_frames(samples, n_fft, hop) == centred.shape[0]
    causal = 0
    while (causal + 1) * hop - n_fft <= samples - 1:
        causal += 1
    assert num_frames(samples, n_fft, hop, "causal") == causal
    # The transforms and the figures the config and the backends report agree.
    wave = np.zeros((1, samples, 1), np.float32)
    assert stft(wave, n_fft, hop).shape[1:3] == (centred.shape[0], num_bins(n_fft))
    assert stft(wave, n_fft, hop, framing="causal").shape[1] == causal
    config = StftConfig(44100, n_fft, hop)
    assert (config.num_frames(samples), config.num_bins) == tuple(centred.shape)
    info = ModelInfo(44100, samples, 1, ["drums"], n_fft, hop)
    assert (info.frames, info.bins) == tuple(centred.shape)


def _randomise(layer, rng):
    """Random weights (gamma, beta and biases too, so the affine parameters
    and every statistic matter)."""
    for w in layer.weights:
        w.assign(rng.standard_normal(w.shape).astype(np.float32) * 0.3)


def _numpy_band_split(layer, x):
    """BandSplit from scratch: per example standardisation over everything,
    then per band its own norm, gamma/beta per feature and projection."""
    batch, frames, bins, per_bin = x.shape
    x = np.asarray(x, np.float64)
    if layer.standardize:
        x = group_norm(x, [1, 2, 3])
    gamma = layer.norm_gamma.numpy().reshape(bins, per_bin)
    beta = layer.norm_beta.numpy().reshape(bins, per_bin)
    kernel = layer.kernel.numpy().reshape(bins, per_bin, -1)
    out = []
    for k, (a, b) in enumerate(layer.band_ranges):
        band = frame_pooled_norm(x[:, :, a:b].reshape(batch, frames, -1), layer.norm,
                                 BAND_SPLIT_AXES)
        normed = band * gamma[a:b].reshape(-1) + beta[a:b].reshape(-1)
        out.append(normed @ kernel[a:b].reshape((b - a) * per_bin, -1) + layer.bias.numpy()[k])
    return np.stack(out, axis=2)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("schema,n_fft,standardize", [
    ("v7", 2048, False), ("universal", 2048, True), ("bass", 512, False), ("v7", 512, True)])
def test_band_split_matches_per_band_reference(rng, norm, schema, n_fft, standardize):
    """``universal`` has one-bin bands grouped (and padded) with wider ones."""
    ranges = bands.band_ranges(schema, 44100, n_fft)
    bins, per_bin, n = n_fft // 2 + 1, 4, 6
    layer = BandSplit(ranges, n, standardize=standardize, norm=norm)
    layer.build((None, None, bins, per_bin))
    _randomise(layer, rng)
    # Uneven levels over frames, bins and examples: statistics over the
    # wrong axes cannot pass.
    level = rng.uniform(0.1, 10.0, (2, 5, bins, 1))
    x = (rng.standard_normal((2, 5, bins, per_bin)) * level + 0.5).astype(np.float32)
    np.testing.assert_allclose(layer(x).numpy(), _numpy_band_split(layer, x),
                               rtol=1e-4, atol=2e-4)


def test_band_split_standardises_each_example(rng):
    """Features do not depend on the scale of each example's spectrum."""
    layer = BandSplit(bands.band_ranges("v7"), 4)
    x = rng.standard_normal((2, 5, 1025, 4)).astype(np.float32)
    scaled = x * np.array([1000.0, 1e-3], np.float32)[:, None, None, None]
    np.testing.assert_allclose(layer(scaled).numpy(), layer(x).numpy(), rtol=1e-3, atol=1e-3)
    assert np.all(np.isfinite(layer(np.zeros_like(x)).numpy()))


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("schema", ["v7", "drums"])
def test_mask_head_matches_per_band_reference(rng, norm, schema):
    ranges = bands.band_ranges(schema)
    n, ratio, channels = 6, 2, 2
    head = MaskHead(ranges, n, channels, ratio, norm=norm)
    head.build((None, None, len(ranges), n))
    _randomise(head, rng)
    level = rng.uniform(0.1, 10.0, (2, 4, len(ranges), 1))
    q = (rng.standard_normal((2, 4, len(ranges), n)) * level + 0.3).astype(np.float32)
    ours = head(q).numpy()
    normed = frame_pooled_norm(q, norm, TIME_AXES)
    gamma, beta = head.norm_gamma.numpy(), head.norm_beta.numpy()
    w1, b1 = head.hidden_kernel.numpy(), head.hidden_bias.numpy()
    per_bin = 2 * channels
    w2 = head.output_kernel.numpy().reshape(1025, 2 * per_bin, -1)
    b2 = head.output_bias.numpy().reshape(1025, 2 * per_bin)
    for k, (a, b) in enumerate(ranges):
        h = np.tanh((normed[:, :, k] * gamma[k] + beta[k]) @ w1[k] + b1[k])
        out = np.einsum("bth,fjh->btfj", h, w2[a:b]) + b2[a:b]
        ref = out[..., :per_bin] / (1 + np.exp(-out[..., per_bin:]))
        np.testing.assert_allclose(ours[:, :, a:b], ref, rtol=1e-4, atol=1e-5)


def test_apply_mask_is_complex_product(rng):
    mask = rng.standard_normal((1, 3, 7, 4)).astype(np.float32)
    spec = rng.standard_normal((1, 3, 7, 4)).astype(np.float32)
    ours = apply_mask(mask, spec).numpy()
    m = mask[..., 0::2] + 1j * mask[..., 1::2]
    s = spec[..., 0::2] + 1j * spec[..., 1::2]
    ref = m * s
    np.testing.assert_allclose(ours[..., 0::2], ref.real, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours[..., 1::2], ref.imag, rtol=1e-5, atol=1e-6)


def test_band_sequence_is_residual(rng):
    block = BandSequence(8, use_cudnn=False)
    block.build((None, None, 5, 8))
    x = rng.standard_normal((2, 7, 5, 8)).astype(np.float32)
    for fc in (block.time_fc, block.band_fc):
        for w in fc.weights:
            w.assign(np.zeros(w.shape, np.float32))
    np.testing.assert_allclose(block(x).numpy(), x, atol=1e-6)


def test_band_sequence_time_rnn_mixes_frames_not_bands(rng):
    """With the band-axis path zeroed, changing one band's features at one
    frame changes that band at other frames, but no other band."""
    block = BandSequence(8, use_cudnn=False)
    block.build((None, None, 5, 8))
    for w in block.band_fc.weights:
        w.assign(np.zeros(w.shape, np.float32))
    x = rng.standard_normal((1, 6, 5, 8)).astype(np.float32)
    y0 = block(x).numpy()
    x[0, 2, 3] += rng.standard_normal(8).astype(np.float32)  # not a constant: norm removes those
    diff = np.abs(block(x).numpy() - y0).max(axis=-1)[0]  # (frames, bands)
    assert diff[:, 3].min() > 0
    assert np.delete(diff, 3, axis=1).max() == 0


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("make", [
    lambda r, norm: BandSplit(r, 6, norm=norm),
    lambda r, norm: MaskHead(r, 6, 2, 2, norm=norm),
    lambda r, norm: BandSequence(6, use_cudnn=False, norm=norm),
])
def test_layer_config_round_trip(rng, make, norm):
    ranges = bands.band_ranges("v7", 44100, 512)
    layer = make(ranges, norm)
    inputs = {BandSplit: (2, 3, 257, 4), MaskHead: (2, 3, len(ranges), 6),
              BandSequence: (2, 3, len(ranges), 6)}[type(layer)]
    x = rng.standard_normal(inputs).astype(np.float32)
    y = layer(x).numpy()
    clone = type(layer).from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x).numpy(), y)
    serialised = keras.saving.serialize_keras_object(layer)
    again = keras.saving.deserialize_keras_object(serialised)
    assert type(again) is type(layer)
    assert clone.norm == again.norm == norm


def test_band_split_parameter_count_is_unpadded():
    ranges = bands.band_ranges("v7")
    layer = BandSplit(ranges, 16)
    layer.build((None, None, 1025, 4))
    # norm (gamma, beta) per feature + kernel per feature + bias per band.
    assert layer.count_params() == 1025 * 4 * 2 + 1025 * 4 * 16 + len(ranges) * 16


@pytest.mark.parametrize("n", [8, 512, 2048])
def test_hann_windows_are_scipys_periodic_hann(n):
    from bsrnn_tf import spectral
    expected = scipy.signal.get_window("hann", n, fftbins=True)
    np.testing.assert_allclose(hann_window(n), expected, atol=1e-7)
    np.testing.assert_allclose(spectral.hann_window(n), expected, atol=1e-12)


def test_band_sequences_built_inside_a_loading_scope_get_their_own_lstms():
    # keras.saving.load_model recognises shared objects by id(); temporary
    # LSTM templates of successive blocks reuse addresses, which used to hand
    # one block's LSTM to another (or a forward LSTM twice) while loading.
    from keras.src.saving.serialization_lib import ObjectSharingScope

    with ObjectSharingScope():
        blocks = [BandSequence(8, name=f"block{i}") for i in range(12)]
    rnns = [r for b in blocks for r in (b.time_rnn, b.band_rnn)]
    lstms = [layer for r in rnns for layer in (r.forward_layer, r.backward_layer)]
    assert len({id(layer) for layer in lstms}) == len(lstms)
    assert all(r.backward_layer.go_backwards and not r.forward_layer.go_backwards for r in rnns)


# ------------------------------------------------ fused and Keras BLSTM paths

def _numpy_lstm(x, kernel, recurrent, bias, reverse=False):
    """Keras-layout LSTM (gates i, f, c, o) over ``x (batch, steps, features)``."""
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    batch, steps, _ = x.shape
    units = recurrent.shape[0]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    out = np.zeros((batch, steps, units))
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = np.split(z, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        out[:, t] = h
    return out


def _numpy_blstm(layer, x):
    parts = []
    for lstm, reverse in ((layer.forward_layer, False), (layer.backward_layer, True)):
        cell = lstm.cell
        weights = [np.asarray(v, np.float64) for v in (cell.kernel, cell.recurrent_kernel,
                                                        cell.bias)]
        parts.append(_numpy_lstm(x, *weights, reverse=reverse))
    return np.concatenate(parts, axis=-1)


def _numpy_band_sequence(block, x):
    def dense(layer, v):
        return v @ np.asarray(layer.kernel, np.float64) + np.asarray(layer.bias, np.float64)

    def affine(layer, v):
        return v * np.asarray(layer.gamma, np.float64) + np.asarray(layer.beta, np.float64)

    batch, frames, bands, n = x.shape
    y = affine(block.time_norm, frame_pooled_norm(x, block.norm, TIME_AXES))
    y = y.transpose(0, 2, 1, 3).reshape(batch * bands, frames, n)
    y = dense(block.time_fc, _numpy_blstm(block.time_rnn, y))
    x = x + y.reshape(batch, bands, frames, n).transpose(0, 2, 1, 3)
    y = affine(block.band_norm, group_norm(x, BAND_AXES[block.norm]))
    y = y.reshape(batch * frames, bands, n)
    y = dense(block.band_fc, _numpy_blstm(block.band_rnn, y))
    return x + y.reshape(batch, frames, bands, n)


def _random_block(rng, n=8, bands=5, norm="frame"):
    block = BandSequence(n, use_cudnn=False, norm=norm)
    block.build((None, None, bands, n))
    _randomise(block, rng)
    return block


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("impl", ["keras", "fused", "unrolled"])
def test_band_sequence_matches_numpy_reference(rng, impl, norm):
    import tensorflow as tf

    from bsrnn_tf.layers import lstm_implementation
    block = _random_block(rng, norm=norm)
    x = rng.standard_normal((2, 9, 5, 8)).astype(np.float32)
    with lstm_implementation(impl):
        ours = tf.function(block)(x).numpy()
    np.testing.assert_allclose(ours, _numpy_band_sequence(block, x.astype(np.float64)),
                               rtol=1e-4, atol=1e-5)


def test_fused_and_keras_paths_agree_on_values_and_gradients(rng):
    """The fused kernel must give Keras' gradients too (TensorFlow's
    ``BlockLSTMV2`` does not: its registered gradient assumes another gate
    layout)."""
    import tensorflow as tf

    from bsrnn_tf.layers import lstm_implementation
    block = _random_block(rng)
    x = tf.constant(rng.standard_normal((2, 9, 5, 8)).astype(np.float32))
    target = tf.constant(rng.standard_normal((2, 9, 5, 8)).astype(np.float32))
    results = {}
    for impl in ("keras", "fused"):
        with lstm_implementation(impl):
            @tf.function
            def step(x):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = block(x, training=True)
                    loss = tf.reduce_sum(y * target)
                return y, tape.gradient(loss, [x] + block.trainable_variables)

            y, grads = step(x)
            graph = step.get_concrete_function(x).graph
            results[impl] = (y.numpy(), [g.numpy() for g in grads],
                             {op.type for op in graph.get_operations()})
    assert "BlockLSTM" in results["fused"][2]
    assert "BlockLSTM" not in results["keras"][2]
    np.testing.assert_allclose(results["fused"][0], results["keras"][0], rtol=1e-5, atol=1e-6)
    for keras_grad, fused_grad in zip(results["keras"][1], results["fused"][1]):
        scale = np.abs(keras_grad).max()
        assert np.abs(fused_grad - keras_grad).max() <= 1e-4 * scale + 1e-7


def test_auto_lstm_path_falls_back_to_keras_under_xla(rng):
    import tensorflow as tf

    from bsrnn_tf.layers import lstm_implementation
    block = _random_block(rng)
    x = rng.standard_normal((1, 6, 5, 8)).astype(np.float32)
    with lstm_implementation("auto"):
        plain = tf.function(block)
        xla = tf.function(block, jit_compile=True)
        np.testing.assert_allclose(xla(x).numpy(), plain(x).numpy(), rtol=1e-4, atol=1e-5)
        ops = {op.type for op in plain.get_concrete_function(x).graph.get_operations()}
        # On a CPU-only machine (CI, here) auto takes the fused kernel; with a GPU, cuDNN.
        assert ("BlockLSTM" in ops) == (not tf.config.list_logical_devices("GPU"))
    with lstm_implementation("fused"):
        with pytest.raises(ValueError, match="no XLA kernel"):
            tf.function(block, jit_compile=True)(x)


def test_lstm_implementation_names_are_checked(monkeypatch):
    from bsrnn_tf.layers import (get_lstm_implementation, lstm_implementation,
                                 set_lstm_implementation)
    with pytest.raises(ValueError, match="auto, keras, fused"):
        set_lstm_implementation("cudnn")
    monkeypatch.setenv("BSRNN_TF_LSTM", "Keras")
    assert get_lstm_implementation() == "keras"
    with lstm_implementation("fused"):
        assert get_lstm_implementation() == "fused"
    assert get_lstm_implementation() == "keras"
    monkeypatch.setenv("BSRNN_TF_LSTM", "fast")
    with pytest.raises(ValueError, match="BSRNN_TF_LSTM"):
        get_lstm_implementation()


def test_mixed_precision_blocks_keep_the_keras_lstm(rng):
    from bsrnn_tf.layers.blstm import unsupported_reason, use_fused
    block = BandSequence(8, use_cudnn=False, dtype="mixed_bfloat16")
    block.build((None, None, 5, 8))
    assert "bfloat16" in unsupported_reason(block.time_rnn)
    assert not use_fused(block.time_rnn)
    y = block(rng.standard_normal((1, 4, 5, 8)).astype(np.float32))
    assert y.shape == (1, 4, 5, 8)
