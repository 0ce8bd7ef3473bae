"""Normalisation over the chunk (the BSRNN authors'), per frame or over the
frames so far (cumulative): ``normalize`` and ``cumulative_normalize``
against numpy, what the chunk statistics keep that per-frame ones lose,
models and configs saved before ``norm`` existed, and statistics in float32
under ``mixed_float16``.

The per-layer references (BandSplit, BandSequence, MaskHead against a numpy
one-group group norm, both norms) are in ``test_layers.py``.

``tests/data/legacy_tiny/`` is a ``tiny`` separator saved by the code from
before the norm option; ``tests/data/make_legacy_model.py`` made it and says
how.
"""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers.reference import cumulative_norm, group_norm

from bsrnn_tf import bands
from bsrnn_tf.config import ExperimentConfig, ModelConfig, model_config_from_dict
from bsrnn_tf.layers import BandSequence, BandSplit
from bsrnn_tf.layers.norm import cumulative_normalize, normalize
from bsrnn_tf.layers.stft import stft
from bsrnn_tf.models.io import load_separator, save_separator
from bsrnn_tf.models.presets import PRESETS, build_separator, preset

LEGACY = os.path.join(os.path.dirname(__file__), "data", "legacy_tiny")
FLOAT16_MAX = 65504.0


def _randomise(layer, rng, scale=0.3):
    """Adds noise to every weight: gamma away from 1, beta away from 0."""
    for w in layer.weights:
        w.assign((w.numpy() + scale * rng.standard_normal(w.shape)).astype(np.float32))


# ---------------------------------------------------------------- normalize

@pytest.mark.parametrize("axes", [[3], [1, 3], [2, 3], [1, 2, 3]])
def test_normalize_matches_numpy(rng, axes):
    x = (rng.standard_normal((2, 5, 3, 6)) * rng.uniform(0.1, 20, (2, 5, 3, 1)) + 2.0)
    ours = normalize(tf.constant(x, tf.float32), axes, 1e-5).numpy()
    np.testing.assert_allclose(ours, group_norm(x, axes), rtol=1e-4, atol=1e-5)


def test_normalize_counts_only_valid_entries(rng):
    """Padded entries (valid 0, value 0) neither count in the statistics nor
    come out non-zero; the reference normalises each row's valid entries
    alone."""
    x = rng.standard_normal((2, 4, 3, 8)) * 5 + 1
    valid = np.ones((3, 8))
    valid[1, 3:] = 0  # a band of 3 features padded to 8
    valid[2, 1:] = 0  # a one-feature band
    x = x * valid
    # axes of x, and of one band's slice x[:, :, g] (batch, frames, features)
    for axes, band_axes in (([3], [2]), ([1, 3], [1, 2])):
        ours = normalize(tf.constant(x, tf.float32), axes, 1e-5,
                         valid=tf.constant(valid, tf.float32)).numpy()
        expected = np.zeros_like(x)
        for g, width in enumerate([8, 3, 1]):
            expected[:, :, g, :width] = group_norm(x[:, :, g, :width], band_axes)
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)
        assert np.all(ours[:, :, 1, 3:] == 0) and np.all(ours[:, :, 2, 1:] == 0)


@pytest.mark.parametrize("valid", [None, np.ones((1, 4))])
def test_normalize_keeps_the_dtype_and_computes_in_float32(valid):
    """float16 in and out; its sums (240000 here) exceed float16's 65504."""
    x = np.full((1, 300, 1, 4), 200.0) + np.tile([[-1.0], [1.0]], (150, 4))[None, :, None]
    x = tf.constant(x, tf.float16)
    y = normalize(x, [1, 3], 1e-5, valid=None if valid is None else tf.constant(valid))
    assert y.dtype == tf.float16
    np.testing.assert_allclose(y.numpy().astype(np.float64), group_norm(x.numpy(), [1, 3]),
                               atol=2e-3)


# ------------------------------------------------------- cumulative_normalize

def _uneven(rng, shape, offset=2.0):
    """Levels that change over frames, bands and examples: statistics over
    the wrong frames or axes cannot pass."""
    level = rng.uniform(0.1, 20, shape[:3] + (1,) * (len(shape) - 3))
    return rng.standard_normal(shape) * level + offset


@pytest.mark.parametrize("axes", [[3], [2, 3], [2]])
def test_cumulative_normalize_matches_a_loop_over_frames(rng, axes):
    x = _uneven(rng, (2, 9, 3, 6))
    ours, state = cumulative_normalize(tf.constant(x, tf.float32), axes, 1e-5)
    np.testing.assert_allclose(ours.numpy(), cumulative_norm(x, axes), rtol=1e-4, atol=1e-4)
    # Frame 0 alone is a per-frame norm, the last frame sees the whole chunk's statistics.
    np.testing.assert_allclose(ours.numpy()[:, 0], group_norm(x[:, :1], axes)[:, 0],
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.numpy()[:, -1], group_norm(x, [1, *axes])[:, -1],
                               rtol=1e-4, atol=1e-4)
    kept = [a for a in range(4) if a not in [1, *axes]]
    np.testing.assert_allclose(state[0].numpy(), x.sum(axis=(1, *axes)), rtol=1e-5)
    np.testing.assert_allclose(state[1].numpy(), (x ** 2).sum(axis=(1, *axes)), rtol=1e-5)
    assert state[0].shape == tuple(x.shape[a] for a in kept)
    np.testing.assert_array_equal(state[2].numpy(), [9.0, 9.0])


def test_cumulative_normalize_counts_only_valid_entries(rng):
    """The band split's case: bands padded to one width, padded entries 0;
    each band's counts are its own width times the frames so far."""
    valid = np.ones((3, 8))
    valid[1, 3:] = 0  # a band of 3 features padded to 8
    valid[2, 1:] = 0  # a one-feature band
    x = _uneven(rng, (2, 7, 3, 8), 1.0) * valid
    ours, state = cumulative_normalize(tf.constant(x, tf.float32), [3], 1e-5,
                                       valid=tf.constant(valid, tf.float32))
    ours = ours.numpy()
    expected = np.zeros_like(x)
    for g, width in enumerate([8, 3, 1]):
        expected[:, :, g, :width] = cumulative_norm(x[:, :, g, :width], [2])
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)
    assert np.all(ours[:, :, 1, 3:] == 0) and np.all(ours[:, :, 2, 1:] == 0)
    # The same through the mask of the reference.
    np.testing.assert_allclose(ours, cumulative_norm(x, [3], valid=valid), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("valid", [None, np.ones((1, 4))])
def test_cumulative_normalize_keeps_the_dtype_and_computes_in_float32(valid):
    """float16 in and out; the running sums of squares (up to 240000 here)
    exceed float16's 65504."""
    x = np.full((1, 300, 1, 4), 200.0) + np.tile([[-1.0], [1.0]], (150, 4))[None, :, None]
    x[0, :, 0, 1::2] *= -1  # a varying frame: the variance is not 0 at frame 0
    y, state = cumulative_normalize(tf.constant(x, tf.float16), [3], 1e-5,
                                    valid=None if valid is None else tf.constant(valid))
    assert y.dtype == tf.float16 and state[1].dtype == tf.float32
    assert state[1].numpy().max() > 10 * FLOAT16_MAX
    np.testing.assert_allclose(y.numpy().astype(np.float64), cumulative_norm(x, [3]), atol=3e-3)


def test_cumulative_normalize_carries_its_state_from_piece_to_piece(rng):
    """A song normalised in pieces (one frame at a time, as a stream, or
    several), each from the state the last one left, is the song normalised
    whole; the state of a constant input gives no negative variance."""
    x = _uneven(rng, (1, 12, 4, 5))
    whole, whole_state = cumulative_normalize(tf.constant(x, tf.float32), [3], 1e-5)
    for sizes in ([1] * 12, [5, 1, 6]):
        state, parts, start = None, [], 0
        for size in sizes:
            y, state = cumulative_normalize(tf.constant(x[:, start:start + size], tf.float32),
                                            [3], 1e-5, state=state)
            parts.append(y.numpy())
            start += size
        np.testing.assert_allclose(np.concatenate(parts, axis=1), whole.numpy(),
                                   rtol=1e-5, atol=1e-5)
        for a, b in zip(state, whole_state):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    constant = tf.fill((1, 50, 2, 8), 1234.5)
    y, _ = cumulative_normalize(constant, [3], 1e-5)
    assert np.all(np.isfinite(y.numpy())) and np.abs(y.numpy()).max() < 1.0


def test_cumulative_band_sequence_norms_look_only_at_the_past(rng):
    """A causal cumulative block: before the time LSTM, per band over N x
    frames 0..t; before the band BLSTM per frame over N x bands (as "chunk");
    a change at frame 5 leaves frames 0..4 alone."""
    block = BandSequence(6, use_cudnn=False, norm="cumulative", causal=True)
    block.build((None, None, 5, 6))
    _randomise(block, rng)
    x = _uneven(rng, (2, 8, 5, 6), -1.0)
    for method, layer, expected in (
            (block.normalize_time, block.time_norm, cumulative_norm(x, [3])),
            (block.normalize_band, block.band_norm, group_norm(x, [2, 3]))):
        expected = expected * layer.gamma.numpy() + layer.beta.numpy()
        np.testing.assert_allclose(method(tf.constant(x, tf.float32)).numpy(), expected,
                                   rtol=1e-4, atol=1e-4)
    changed = x.copy()
    changed[:, 5:] *= 10
    a, b = (block(tf.constant(v, tf.float32)).numpy() for v in (x, changed))
    assert np.array_equal(a[:, :5], b[:, :5]) and not np.allclose(a[:, 5:], b[:, 5:])


# ---------------------------------------------------------- band sequence norms

@pytest.mark.parametrize("norm,time_axes,band_axes", [("chunk", [1, 3], [2, 3]),
                                                      ("frame", [3], [3])])
def test_band_sequence_norms_pool_the_stated_axes(rng, norm, time_axes, band_axes):
    """Before the time BLSTM: per example and band over N x frames; before
    the band BLSTM: per example and frame over N x bands ("chunk"); per
    frame and band over N ("frame"). Gamma/beta per feature."""
    block = BandSequence(6, use_cudnn=False, norm=norm)
    block.build((None, None, 5, 6))
    _randomise(block, rng)
    x = rng.standard_normal((2, 7, 5, 6)) * rng.uniform(0.1, 10, (2, 7, 5, 1)) - 1.0
    for method, layer, axes in ((block.normalize_time, block.time_norm, time_axes),
                                (block.normalize_band, block.band_norm, band_axes)):
        expected = group_norm(x, axes) * layer.gamma.numpy() + layer.beta.numpy()
        np.testing.assert_allclose(method(tf.constant(x, tf.float32)).numpy(), expected,
                                   rtol=1e-4, atol=1e-4)


# ------------------------------------------------------ what chunk statistics keep

def test_per_frame_gain_on_a_one_bin_band_reaches_the_band_split_only_with_chunk_norm(rng):
    """A gain from 0.1x to 1000x over the frames of a one-bin band: with
    statistics over the chunk the band's features follow it; per frame the
    band keeps only the direction of its 4 numbers (changes near 1e-3, from
    epsilon alone)."""
    ranges = bands.band_ranges("universal", 44100, 2048)
    one_bin = [k for k, (a, b) in enumerate(ranges) if b - a == 1]
    assert len(one_bin) >= 20  # the issue counts 24
    k = one_bin[len(one_bin) // 2]
    a = ranges[k][0]
    x = rng.standard_normal((1, 24, 1025, 4)).astype(np.float32)
    louder = x.copy()
    louder[0, :, a] *= np.logspace(-1, 3, 24, dtype=np.float32)[:, None]
    change = {}
    for norm in ("chunk", "frame"):
        layer = BandSplit(ranges, 8, norm=norm)
        layer.build(x.shape)
        _randomise(layer, rng)
        y, y_louder = layer(x).numpy()[0, :, k], layer(louder).numpy()[0, :, k]
        change[norm] = np.linalg.norm(y_louder - y) / np.linalg.norm(y)
    assert change["chunk"] > 0.3
    assert change["frame"] < 0.03
    assert change["chunk"] > 30 * change["frame"]


# ------------------------------------------------------------- saved models

def _legacy_outputs():
    data = np.load(os.path.join(LEGACY, "outputs.npz"))
    return data["input"], {k: data[k] for k in data.files if k != "input"}


def test_model_saved_before_the_norm_option_loads_with_per_frame_norms_and_same_outputs():
    model = load_separator(LEGACY)
    assert model.targets == ["drums", "bass"]
    layers = [model.backbone.band_split, *model.backbone.blocks, *model.heads.values()]
    assert [layer.norm for layer in layers] == ["frame"] * len(layers)
    assert model.norm == model.backbone.norm == "frame"
    assert model.config_object().norm == "frame"
    wave, saved = _legacy_outputs()
    out = model(wave)
    assert set(out) == set(saved)
    for target, expected in saved.items():
        np.testing.assert_allclose(out[target].numpy(), expected, rtol=0, atol=1e-6)
    # The fixture tells the norms apart: its weights with chunk norms differ.
    config = model.get_config()
    chunk = type(model).from_config({**config, "norm": "chunk"})
    chunk.build()
    chunk.set_weights(model.get_weights())
    moved = max(np.abs(chunk(wave)[t].numpy() - saved[t]).max() for t in saved)
    assert moved > 1e-3


def test_configs_saved_without_norm_mean_frame_and_new_configs_chunk():
    path = os.path.join(LEGACY, "config.json")
    with open(path) as f:
        saved = json.load(f)
    assert "norm" not in saved["model"]
    assert model_config_from_dict(saved["model"]).norm == "frame"
    assert ExperimentConfig.from_json(path, saved=True).model.norm == "frame"
    # A config someone writes (not saved with a model) gets today's default.
    assert ExperimentConfig.from_json(path).model.norm == "chunk"
    assert ModelConfig().norm == "chunk"
    offline = [name for name, p in PRESETS.items() if not p.causal]
    assert {name: PRESETS[name].norm for name in offline} == {name: "chunk" for name in offline}
    # Streaming presets use the causal norm over the frames so far.
    assert {p.norm for p in PRESETS.values() if p.causal} == {"cumulative"}
    # A saved field wins over the legacy default.
    assert model_config_from_dict({**saved["model"], "norm": "chunk"}).norm == "chunk"


def test_layers_built_directly_use_chunk_and_saved_layer_configs_without_norm_use_frame():
    """The constructors default to the authors' chunk norm (as ModelConfig
    does); a layer or model config saved before the field existed (no
    ``norm`` key) is revived with per-frame norms, what it was trained with."""
    from bsrnn_tf.layers import MaskHead
    from bsrnn_tf.models.backbone import Backbone
    from bsrnn_tf.models.separator import Separator
    ranges = [(0, 3), (3, 9)]
    built = {
        BandSplit: BandSplit(ranges, 8),
        BandSequence: BandSequence(8),
        MaskHead: MaskHead(ranges, 8),
        Backbone: Backbone(ranges, 8, 1),
        Separator: Separator(bands.band_ranges("v7", 44100, 256), ["drums"], 8, 1, n_fft=256,
                             hop_length=64, segment_samples=1024),
    }
    for cls, layer in built.items():
        assert layer.norm == "chunk", cls
        assert ModelConfig().norm == "chunk"
        config = layer.get_config()
        assert config["norm"] == "chunk", cls
        assert cls.from_config(config).norm == "chunk", cls
        legacy = {k: v for k, v in config.items() if k != "norm"}
        revived = cls.from_config(legacy)
        assert revived.norm == "frame", cls
        if cls is Separator:  # the sublayers follow the model's norm
            sub = [revived.backbone.band_split, *revived.backbone.blocks, *revived.heads.values()]
            assert {layer.norm for layer in sub} == {"frame"}
        # Through Keras' own deserialisation (what load_model runs) too.
        serialized = keras.saving.serialize_keras_object(layer)
        serialized["config"].pop("norm")
        assert keras.saving.deserialize_keras_object(serialized).norm == "frame", cls


def test_chunk_model_round_trips_through_keras_file(tmp_path):
    keras.utils.set_random_seed(1)
    model = build_separator(preset("tiny"), targets=["drums", "bass"])
    _randomise(model, np.random.default_rng(1))
    wave = np.random.default_rng(2).standard_normal((1, 4096, 2)).astype(np.float32)
    before = model(wave)
    save_separator(model, str(tmp_path / "run"))
    loaded = load_separator(str(tmp_path / "run"))
    assert loaded.norm == "chunk" and loaded.backbone.band_split.norm == "chunk"
    assert [h.norm for h in loaded.heads.values()] == ["chunk", "chunk"]
    assert ExperimentConfig.from_json(str(tmp_path / "run" / "config.json"),
                                      saved=True).model.norm == "chunk"
    after = loaded(wave)
    for t in before:
        np.testing.assert_array_equal(after[t].numpy(), before[t].numpy())


# ----------------------------------------------------------------- float16

@pytest.fixture(scope="module")
def loud_song():
    """One second of a generated song (drums, bass, other, vocals), its
    mixture scaled to peak 1.0 (full scale), ``(1, samples, 2)`` float32."""
    from bsrnn_tf.datasets.synth import render_song
    _, stems = render_song(3, "train", 0, seconds=1.0)
    mixture = sum(s.astype(np.float32) for s in stems.values())
    return (mixture / np.abs(mixture).max())[None]


def test_band_split_in_float16_matches_float32_on_a_loud_song(rng, loud_song):
    ranges = bands.band_ranges("v7", 44100, 2048)
    spectrum = stft(loud_song, 2048, 512).numpy()
    # What the band norms see (the spectrum standardised per example) has
    # bands whose float16 sum of squares over the chunk overflows.
    seen = group_norm(spectrum, [1, 2, 3])
    sums = [tf.reduce_sum(tf.square(tf.constant(seen[:, :, a:b], tf.float16))).numpy()
            for a, b in ranges]
    assert np.sum(np.isinf(sums)) >= 1
    assert max(np.sum(spectrum[:, :, a:b].astype(np.float64) ** 2) for a, b in ranges) \
        > 10 * FLOAT16_MAX
    for norm in ("chunk", "frame", "cumulative"):
        full = BandSplit(ranges, 16, norm=norm)
        full.build(spectrum.shape)
        _randomise(full, rng)
        half = BandSplit(ranges, 16, norm=norm, dtype="mixed_float16")
        half.build(spectrum.shape)
        half.set_weights(full.get_weights())
        expected = full(spectrum).numpy()
        got = half(spectrum)
        assert got.dtype == tf.float16
        got = got.numpy().astype(np.float32)
        assert np.all(np.isfinite(got))
        assert np.linalg.norm(got - expected) / np.linalg.norm(expected) < 1e-2
        # Every band carries its input (a band zeroed by an overflow would not).
        per_band = np.sqrt(np.sum((got - expected) ** 2, axis=(0, 1, 3))
                           / np.sum(expected ** 2, axis=(0, 1, 3)))
        assert per_band.max() < 3e-2


def test_backbone_in_float16_matches_float32_on_a_loud_song(loud_song):
    keras.utils.set_random_seed(4)
    config = preset("tiny")
    full = build_separator(config, targets=["drums"])
    _randomise(full, np.random.default_rng(4))
    half = build_separator(config, targets=["drums"], dtype="mixed_float16")
    half.set_weights(full.get_weights())
    assert half.backbone.compute_dtype == "float16" and config.norm == "chunk"
    spectrum = full.stft(loud_song)
    expected = full.backbone(spectrum).numpy()
    got = half.backbone(spectrum).numpy().astype(np.float32)
    assert np.all(np.isfinite(got))
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) < 2e-2
    masks = {"full": full.masks(spectrum)["drums"].numpy(),
             "half": half.masks(spectrum)["drums"].numpy().astype(np.float32)}
    assert np.abs(masks["half"] - masks["full"]).max() < 5e-2


def test_dataclass_field_norm_is_saved_in_the_model_config():
    """``model_config`` (saved in the .keras file) carries the field."""
    model = build_separator(dataclasses.replace(preset("tiny"), norm="frame"), targets=["bass"])
    assert model.model_config["norm"] == "frame" and model.norm == "frame"
    assert model.backbone.blocks[0].norm == "frame"
