"""MaskHead: per-band MLP that estimates a complex mask for its bins."""

from __future__ import annotations

import keras
import tensorflow as tf

from bsrnn_tf.bands import check_ranges
from bsrnn_tf.layers.grouping import band_groups, bin_order, feature_index
from bsrnn_tf.layers.norm import DEFAULT_NORM, check_norm, pooled_normalize, with_legacy_norm


@keras.saving.register_keras_serializable(package="bsrnn_tf")
class MaskHead(keras.layers.Layer):
    """Mask estimation for one target.

    Per band: norm (``"chunk"``: per example and band over ``feature_dim``
    x frames, the BSRNN authors'; ``"frame"``: over ``feature_dim`` per
    frame; ``"cumulative"``: over ``feature_dim`` x the frames so far,
    :meth:`step` carrying the running statistics) -> dense to
    ``mlp_ratio * feature_dim`` with tanh -> dense to ``2 * width * C2`` ->
    GLU, giving the band's packed complex mask (real and imaginary part per
    bin and channel). Bands are concatenated into a full-band mask.

    Input: ``(batch, frames, K, feature_dim)``.
    Output: ``(batch, frames, bins, channels * 2)`` packed complex mask.
    """

    def __init__(self, band_ranges, feature_dim: int, audio_channels: int = 2,
                 mlp_ratio: int = 4, group_tolerance: float = 1.25, epsilon: float = 1e-5,
                 norm: str = DEFAULT_NORM, **kwargs):
        super().__init__(**kwargs)
        self.norm = check_norm(norm)
        self.band_ranges = [tuple(int(v) for v in r) for r in band_ranges]
        self.num_bins = self.band_ranges[-1][1]
        check_ranges(self.band_ranges, self.num_bins)
        self.feature_dim = feature_dim
        self.audio_channels = audio_channels
        self.mlp_ratio = mlp_ratio
        self.group_tolerance = group_tolerance
        self.epsilon = epsilon
        self.groups = band_groups(self.band_ranges, group_tolerance)
        self.features_per_bin = 2 * audio_channels  # packed real/imag per channel

    @property
    def num_bands(self) -> int:
        return len(self.band_ranges)

    def build(self, input_shape):
        k, n = self.num_bands, self.feature_dim
        if input_shape[-2] not in (None, k) or input_shape[-1] != n:
            raise ValueError(f"MaskHead: expected (..., {k}, {n}) features, got {input_shape}")
        hidden = self.mlp_ratio * n
        out_per_bin = 2 * self.features_per_bin  # GLU values and gates
        self.norm_gamma = self.add_weight(shape=(k, n), initializer="ones", name="norm_gamma")
        self.norm_beta = self.add_weight(shape=(k, n), initializer="zeros", name="norm_beta")
        self.hidden_kernel = self.add_weight(
            shape=(k, n, hidden), initializer=keras.initializers.RandomNormal(stddev=n ** -0.5),
            name="hidden_kernel")
        self.hidden_bias = self.add_weight(shape=(k, hidden), initializer="zeros",
                                           name="hidden_bias")
        self.output_kernel = self.add_weight(
            shape=(self.num_bins * out_per_bin, hidden),
            initializer=keras.initializers.RandomNormal(stddev=hidden ** -0.5),
            name="output_kernel")
        self.output_bias = self.add_weight(shape=(self.num_bins * out_per_bin,),
                                           initializer="zeros", name="output_bias")
        self._index = [feature_index(g.bins, out_per_bin, self.num_bins) for g in self.groups]
        self._bin_order = bin_order(self.groups, self.num_bins)

    def call(self, features):
        return self.step(features)[0]

    def step(self, features, norm_state=None):
        """The head continuing from ``norm_state``: the running statistics of
        a cumulative norm (:data:`~bsrnn_tf.layers.norm.NormState`, sums
        ``(batch, K)``; None: the start of a song).

        Returns:
          ``(mask, new norm state)``; the state is None unless
          ``norm="cumulative"``.
        """
        x = tf.cast(features, self.compute_dtype)
        x, norm_state = pooled_normalize(x, self.norm, [3], self.epsilon, state=norm_state)
        x = x * tf.cast(self.norm_gamma, x.dtype) + tf.cast(self.norm_beta, x.dtype)
        h = tf.einsum("btkn,knh->btkh", x, tf.cast(self.hidden_kernel, x.dtype))
        h = tf.tanh(h + tf.cast(self.hidden_bias, x.dtype))
        out_per_bin = 2 * self.features_per_bin
        kernel = tf.concat([tf.cast(self.output_kernel, x.dtype),
                            tf.zeros([1, h.shape[-1]], x.dtype)], 0)
        bias = tf.concat([tf.cast(self.output_bias, x.dtype), tf.zeros([1], x.dtype)], 0)
        batch, frames = tf.shape(x)[0], tf.shape(x)[1]
        outputs = []
        for group, index in zip(self.groups, self._index):
            hg = tf.gather(h, group.bands, axis=2)
            o = tf.einsum("btgh,gjh->btgj", hg, tf.gather(kernel, index)) + tf.gather(bias, index)
            outputs.append(tf.reshape(o, [batch, frames, -1, out_per_bin]))
        o = tf.gather(tf.concat(outputs, axis=2), self._bin_order, axis=2)
        value, gate = tf.split(o, 2, axis=-1)
        return value * tf.sigmoid(gate), norm_state

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.num_bins, self.features_per_bin)

    @classmethod
    def from_config(cls, config):
        return super().from_config(with_legacy_norm(config))

    def get_config(self):
        return {**super().get_config(), "band_ranges": [list(r) for r in self.band_ranges],
                "feature_dim": self.feature_dim, "audio_channels": self.audio_channels,
                "mlp_ratio": self.mlp_ratio, "group_tolerance": self.group_tolerance,
                "epsilon": self.epsilon, "norm": self.norm}


def apply_mask(mask: tf.Tensor, spectrum: tf.Tensor) -> tf.Tensor:
    """Complex product of packed mask and packed spectrum, both
    ``(batch, frames, bins, channels * 2)``."""
    m = tf.cast(mask, tf.float32)
    x = tf.cast(spectrum, tf.float32)
    mr, mi = m[..., 0::2], m[..., 1::2]
    xr, xi = x[..., 0::2], x[..., 1::2]
    real = mr * xr - mi * xi
    imag = mr * xi + mi * xr
    out = tf.stack([real, imag], axis=-1)
    return tf.reshape(out, tf.shape(x))
