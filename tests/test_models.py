"""Separator: shapes, parameter counts, the full path with known masks,
save/load, heads, freezing, training signal and robustness."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bsrnn_tf.models import (build_separator, count_parameters, load_separator, preset,
                             save_separator)
from bsrnn_tf.models.io import ModelLoadError

TARGETS = ["drums", "bass", "other", "vocals"]


@pytest.fixture(scope="module")
def tiny():
    return build_separator(preset("tiny"), targets=["drums", "vocals"])


def _set_constant_mask(head, real, imag):
    """Zero output kernel; biases give value = (real, imag) per bin (arrays of
    shape (bins,)) for every channel and a saturated gate (sigmoid = 1)."""
    per_bin = head.features_per_bin
    bins = head.num_bins
    head.output_kernel.assign(np.zeros(head.output_kernel.shape, np.float32))
    bias = np.zeros((bins, 2 * per_bin), np.float32)
    bias[:, 0:per_bin:2] = real[:, None]
    bias[:, 1:per_bin:2] = imag[:, None]
    bias[:, per_bin:] = 40.0
    head.output_bias.assign(bias.reshape(-1))


@pytest.mark.parametrize("name,length", [("tiny", 22050), ("small", 44100)])
def test_output_shapes(name, length):
    model = build_separator(preset(name), targets=TARGETS)
    wave = np.random.default_rng(1).standard_normal((2, length, 2)).astype(np.float32)
    out = model(wave)
    assert sorted(out) == sorted(TARGETS)
    for value in out.values():
        assert value.shape == (2, length, 2)
    spec = model.stft(wave)
    cfg = preset(name).stft
    assert spec.shape == (2, 1 + length // cfg.hop_length, cfg.n_fft // 2 + 1, 4)
    assert model.backbone(spec).shape == (2, spec.shape[1], model.backbone.num_bands,
                                          model.feature_dim)


def test_parameter_counts():
    paper = count_parameters(build_separator(preset("paper")))
    assert paper == 27_968_912  # the figure README.md gives for `bsrnn-tf info paper`
    small = count_parameters(build_separator(preset("small")))
    assert 3e6 <= small <= 5e6
    assert count_parameters(build_separator(preset("tiny"))) < 100_000


def test_known_mask_goes_through_whole_path(tiny):
    """A per-bin complex mask set through the head weights gives exactly
    mask * STFT(mixture), and the all-ones mask returns the mixture."""
    rng = np.random.default_rng(2)
    bins = tiny.n_fft // 2 + 1
    real, imag = rng.standard_normal(bins), rng.standard_normal(bins)
    _set_constant_mask(tiny.heads["drums"], real, imag)
    _set_constant_mask(tiny.heads["vocals"], np.ones(bins), np.zeros(bins))
    wave = rng.standard_normal((1, 8192, 2)).astype(np.float32)
    spec = tiny.stft(wave).numpy()
    est = tiny.estimate_spectra(spec)
    mix = spec[..., 0::2] + 1j * spec[..., 1::2]
    expected = mix * (real + 1j * imag)[None, None, :, None]
    got = est["drums"].numpy()
    np.testing.assert_allclose(got[..., 0::2], expected.real, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(got[..., 1::2], expected.imag, rtol=1e-4, atol=1e-3)
    out = tiny(wave)
    np.testing.assert_allclose(out["vocals"].numpy(), wave, atol=1e-5)


def test_keras_round_trip_identical(tmp_path):
    model = build_separator(preset("tiny"), targets=["bass", "other"])
    wave = np.random.default_rng(3).standard_normal((1, 4096, 2)).astype(np.float32)
    before = model(wave)
    path = save_separator(model, str(tmp_path / "run"))
    assert (tmp_path / "run" / "config.json").exists()
    loaded = load_separator(str(tmp_path / "run"))
    assert loaded.targets == ["bass", "other"]
    assert loaded.band_ranges == model.band_ranges
    after = loaded(wave)
    for t in before:
        np.testing.assert_array_equal(before[t].numpy(), after[t].numpy())
    # Keras' own loader in safe mode works too.
    assert keras.saving.load_model(path, safe_mode=True).targets == ["bass", "other"]


def test_load_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="no such file"):
        load_separator(str(tmp_path / "nope.keras"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="has no model.keras"):
        load_separator(str(tmp_path / "empty"))
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError, match="bad.keras"):
        load_separator(str(bad))
    # A truncated model: Keras itself would say "File not found".
    good = str(tmp_path / "good.keras")
    save_separator(build_separator(preset("tiny"), targets=["bass"]), good)
    cut = tmp_path / "cut.keras"
    cut.write_bytes(open(good, "rb").read()[:20000])
    with pytest.raises(ModelLoadError, match="cut.keras: truncated or corrupt .keras file"):
        load_separator(str(cut))


def test_add_head_and_freeze_backbone():
    model = build_separator(preset("tiny"), targets=["drums"])
    backbone_vars = {id(v) for v in model.backbone.trainable_weights}
    model.freeze_backbone()
    model.remove_head("drums")
    head = model.add_head("bass")
    assert model.targets == ["bass"]
    trainable = {id(v) for v in model.trainable_weights}
    assert not trainable & backbone_vars
    assert trainable == {id(v) for v in head.trainable_weights}
    wave = np.zeros((1, 2048, 2), np.float32)
    assert set(model(wave)) == {"bass"}
    with pytest.raises(ValueError, match="already has a head"):
        model.add_head("bass")


def test_changed_heads_survive_save_and_load(tmp_path):
    model = build_separator(preset("tiny"), targets=["drums", "bass"])
    model.remove_head("drums")
    model.add_head("vocals")
    wave = np.random.default_rng(8).standard_normal((1, 4096, 2)).astype(np.float32)
    before = model(wave)
    loaded = load_separator(save_separator(model, str(tmp_path / "m.keras")))
    assert loaded.targets == ["bass", "vocals"]
    assert loaded.model_config["targets"] == ["bass", "vocals"]
    assert count_parameters(loaded) == count_parameters(model)
    for t in before:
        np.testing.assert_array_equal(before[t].numpy(), loaded(wave)[t].numpy())


def test_gradient_step_reduces_loss():
    tf.random.set_seed(0)
    model = build_separator(preset("tiny"), targets=["vocals"])
    rng = np.random.default_rng(4)
    mix = rng.standard_normal((2, 8192, 2)).astype(np.float32) * 0.1
    target = mix * 0.5
    optimizer = keras.optimizers.Adam(1e-2)

    def loss_fn():
        est = model(mix, training=True)["vocals"]
        return tf.reduce_mean(tf.abs(est - target))

    first = float(loss_fn())
    for _ in range(10):
        with tf.GradientTape() as tape:
            loss = loss_fn()
        grads = tape.gradient(loss, model.trainable_weights)
        assert all(g is not None for g in grads)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
    assert float(loss_fn()) < 0.8 * first


def test_recomputed_blocks_give_the_same_gradients(monkeypatch):
    from bsrnn_tf.layers.band_sequence import BandSequence

    keras.utils.set_random_seed(3)
    model = build_separator(preset("tiny"), targets=["vocals"])
    rng = np.random.default_rng(5)
    mix = rng.standard_normal((2, 8192, 2)).astype(np.float32) * 0.1
    target = np.roll(mix, 7, axis=1) * 0.5
    calls = []
    original = BandSequence.call
    monkeypatch.setattr(BandSequence, "call",
                        lambda self, *a, **k: calls.append(self.name) or original(self, *a, **k))

    def gradients(recompute):
        model.backbone.recompute_blocks = recompute
        calls.clear()
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(model(mix, training=True)["vocals"] - target))
        grads = tape.gradient(loss, model.trainable_weights)
        return float(loss), [tf.convert_to_tensor(g).numpy() for g in grads], len(calls)

    loss, grads, forward_calls = gradients(False)
    loss_r, grads_r, calls_r = gradients(True)
    layers = len(model.backbone.blocks)
    assert forward_calls == layers
    assert calls_r == 2 * layers  # each block ran again in the backward pass
    assert loss_r == loss
    for w, g, g_r in zip(model.trainable_weights, grads, grads_r):
        scale = np.abs(g).max()
        assert scale > 0, w.path
        assert np.abs(g - g_r).max() <= 1e-5 * scale, w.path
    model.backbone.recompute_blocks = True
    model.freeze_backbone()
    calls.clear()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(mix, training=True)["vocals"])
    tape.gradient(loss, model.trainable_weights)
    assert len(calls) == layers  # nothing to recompute for a frozen backbone


def test_float16_compute_stays_close_to_float32():
    """``fit.py --mixed-precision`` computes in float16: the separation must
    stay within 40 dB SDR of float32 (issue 9's bar) and come out float32."""
    keras.utils.set_random_seed(6)
    config = preset("tiny")
    model = build_separator(config, targets=["vocals"])
    half = build_separator(config, targets=["vocals"], dtype="mixed_float16")
    half.set_weights(model.get_weights())
    t = np.arange(16384) / 44100.0
    mix = np.stack([np.sin(2 * np.pi * 220 * t), 0.5 * np.sin(2 * np.pi * 331 * t)], -1)
    mix = (0.3 * mix + 0.01 * np.random.default_rng(2).standard_normal(mix.shape))[None]
    mix = mix.astype(np.float32)
    reference = model(mix)["vocals"].numpy().astype(np.float64)
    estimate = half(mix)["vocals"]
    assert estimate.dtype == tf.float32
    error = np.sum((reference - estimate.numpy()) ** 2)
    assert 10 * np.log10(np.sum(reference ** 2) / error) > 40


@pytest.mark.parametrize("kind", ["silence", "impulse", "noise", "dc", "tiny_noise"])
def test_degenerate_inputs_give_finite_outputs(tiny, kind):
    n = 8192
    wave = np.zeros((1, n, 2), np.float32)
    if kind == "impulse":
        wave[0, n // 2] = 1.0
    elif kind == "noise":
        wave = np.clip(np.random.default_rng(5).standard_normal((1, n, 2)), -1, 1).astype(
            np.float32)
    elif kind == "dc":
        wave[:] = 1.0
    elif kind == "tiny_noise":
        wave = np.random.default_rng(6).standard_normal((1, n, 2)).astype(np.float32) * 1e-12
    for value in tiny(wave).values():
        assert np.all(np.isfinite(value.numpy()))
    if kind == "silence":
        assert all(np.abs(v.numpy()).max() == 0 for v in tiny(wave).values())


def test_output_scales_with_input():
    """Spectrum standardisation is undone: separating a*x gives a*separate(x)."""
    model = build_separator(preset("tiny"), targets=["vocals"])
    wave = np.random.default_rng(7).standard_normal((1, 8192, 2)).astype(np.float32) * 0.1
    base = model(wave)["vocals"].numpy()
    loud = model(wave * 8.0)["vocals"].numpy()
    np.testing.assert_allclose(loud, base * 8.0, rtol=1e-3, atol=1e-4 * np.abs(base).max() * 8)


def test_the_private_keras_apis_we_rely_on_still_exist():
    """Two private Keras APIs are used, each in one function: the tracker
    lock of a built model (Separator._unlocked, for adding heads after
    building) and the object-sharing scope of the loader
    (band_sequence._outside_object_sharing). If Keras changes either, this
    fails before anything subtler does."""
    from keras.src.backend.common import global_state

    for key in ("shared_objects/id_to_obj_map", "shared_objects/id_to_config_map"):
        global_state.set_global_attribute(key, None)
        assert global_state.get_global_attribute(key) is None
    model = build_separator(preset("tiny"), targets=["bass"])
    tracker = model._tracker
    assert isinstance(tracker.locked, bool) and tracker.locked
    with model._unlocked():
        assert not tracker.locked
    assert tracker.locked


@pytest.mark.parametrize("given, stored", [("auto", "auto"), (True, True), ("False", False),
                                           ("true", True), (False, False)])
def test_use_cudnn_is_auto_or_a_boolean_whatever_an_old_config_held(given, stored):
    from bsrnn_tf.config import ModelConfig
    from bsrnn_tf.layers import BandSequence
    config = ModelConfig(use_cudnn=given)
    config.validate()
    assert config.use_cudnn is stored or config.use_cudnn == stored == "auto"
    block = BandSequence(4, use_cudnn=given)
    assert block.get_config()["use_cudnn"] == stored
    assert block.time_rnn.forward_layer.use_cudnn == stored


def test_use_cudnn_other_values_are_config_errors():
    from bsrnn_tf.config import ConfigError, ModelConfig
    with pytest.raises(ConfigError, match="model.use_cudnn must be auto, true or false"):
        ModelConfig(use_cudnn="maybe").validate()


def test_a_corrupt_optional_config_beside_a_backbone_export_is_an_error_naming_it(tmp_path):
    """``separator_from_backbone`` reads the export's optional config.json:
    absent, the new separator has no provenance config; corrupt, the load
    fails naming the file (it used to be read as absent)."""
    import json

    from bsrnn_tf import bands
    from bsrnn_tf.models.backbone import Backbone
    from bsrnn_tf.models.transfer import separator_from_backbone
    backbone = Backbone(bands.band_ranges("v7", 44100, 256), 8, 1)
    backbone.build()
    backbone.save(str(tmp_path / "backbone.keras"))
    info = {"mlp_ratio": 2, "sample_rate": 44100, "n_fft": 256, "hop_length": 64,
            "model_segment_samples": 1024}
    (tmp_path / "export.json").write_text(json.dumps({"model": info}))
    model = separator_from_backbone(str(tmp_path), ["piano"])
    assert model.targets == ["piano"] and model.model_config == {}
    (tmp_path / "config.json").write_text('{"model": {"feature_dim": 8,')
    with pytest.raises(ModelLoadError, match=r"config\.json: not valid JSON"):
        separator_from_backbone(str(tmp_path), ["piano"])
    (tmp_path / "config.json").write_bytes(b'{"model": "\xff"}')
    with pytest.raises(ModelLoadError, match=r"config\.json: cannot read"):
        separator_from_backbone(str(tmp_path), ["piano"])


def _tiny_with_channels(channels):
    config = preset("tiny")
    config.channels = channels
    return build_separator(config, targets=["drums", "vocals"])


def test_channels_in_batch_keep_the_channels_apart():
    """channels='batch' (the authors' layout): a channel's estimate depends on
    that channel alone, and swapping the input channels swaps the outputs;
    with channels in the features (the default) the channels mix."""
    rng = np.random.default_rng(11)
    a, b, c = (rng.standard_normal((1, 8192, 1)).astype(np.float32) for _ in range(3))
    batch = _tiny_with_channels("batch")
    ab, ac, ba = (batch(np.concatenate(p, axis=-1)) for p in ((a, b), (a, c), (b, a)))
    for t in batch.targets:
        np.testing.assert_allclose(ab[t].numpy()[..., 0], ac[t].numpy()[..., 0], atol=1e-5)
        np.testing.assert_allclose(ab[t].numpy()[..., 0], ba[t].numpy()[..., 1], atol=1e-5)
        np.testing.assert_allclose(ab[t].numpy()[..., 1], ba[t].numpy()[..., 0], atol=1e-5)
    features = _tiny_with_channels("features")
    ab, ac = (features(np.concatenate(p, axis=-1)) for p in ((a, b), (a, c)))
    assert np.max(np.abs(ab["drums"].numpy()[..., 0] - ac["drums"].numpy()[..., 0])) > 1e-3


def test_channels_in_batch_parameters_and_round_trip(tmp_path):
    """A band of w bins has w*2 input features instead of w*4: the band
    split's norm (gamma, beta) and projection lose bins*2*(2 + N) weights;
    the heads emit 2 numbers per bin instead of 4. Saved and loaded, the
    model keeps its layout and its outputs."""
    features, batch = _tiny_with_channels("features"), _tiny_with_channels("batch")
    bins, n = features.n_fft // 2 + 1, features.feature_dim
    assert (count_parameters(features.backbone) - count_parameters(batch.backbone)
            == bins * 2 * (2 + n))
    assert batch.heads["drums"].features_per_bin == 2
    assert features.heads["drums"].features_per_bin == 4
    wave = np.random.default_rng(12).standard_normal((2, 4096, 2)).astype(np.float32)
    before = batch(wave)
    save_separator(batch, str(tmp_path / "run"))
    loaded = load_separator(str(tmp_path / "run"))
    assert loaded.channels == "batch" and loaded.config_object().channels == "batch"
    after = loaded(wave)
    for t in before:
        assert before[t].shape == (2, 4096, 2)
        np.testing.assert_array_equal(before[t].numpy(), after[t].numpy())


def test_channels_setting_is_checked():
    from bsrnn_tf.config import ConfigError
    config = preset("tiny")
    config.channels = "stereo"
    with pytest.raises(ConfigError, match="model.channels"):
        config.validate()
    config = preset("cpu-stream")
    config.channels = "batch"
    with pytest.raises(ConfigError, match="causal"):
        config.validate()
