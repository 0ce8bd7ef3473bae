"""BandSplit: per-band normalisation and projection of a packed spectrum."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from bsrnn_tf.bands import check_ranges
from bsrnn_tf.layers.grouping import band_groups, band_order, feature_index
from bsrnn_tf.layers.norm import (DEFAULT_NORM, check_norm, normalize, pooled_normalize,
                                  with_legacy_norm)


def _per_row_normal(row_scale: np.ndarray):
    """Initializer: normal noise with a per-row standard deviation."""
    def init(shape, dtype=None):
        noise = keras.random.normal(shape, dtype="float32")
        return noise * tf.constant(row_scale.reshape(-1, *([1] * (len(shape) - 1))), tf.float32)
    return init


@keras.saving.register_keras_serializable(package="bsrnn_tf")
class BandSplit(keras.layers.Layer):
    """Splits a packed spectrum into K bands, normalises each band over its
    (bins x real/imag x channels) features and projects it to ``feature_dim``.

    ``norm="chunk"`` (the BSRNN authors'): the statistics of a band cover its
    features and all frames of the chunk, so a band's level over time is kept;
    ``norm="frame"``: per frame (a one-bin band then keeps only the direction
    of its 4 numbers); ``norm="cumulative"``: over the frames so far (causal;
    :meth:`step` carries the running statistics). See :mod:`bsrnn_tf.layers.norm`.

    Bands run as one batched matmul per group of similar-width bands; weights
    are stored unpadded (``num_bins * features_per_bin`` rows), so the
    parameter count is exactly that of K separate per-band layers.

    Input: ``(batch, frames, bins, features_per_bin)`` with
    ``features_per_bin = channels * 2``. Output: ``(batch, frames, K, feature_dim)``.
    """

    def __init__(self, band_ranges, feature_dim: int, standardize: bool = True,
                 group_tolerance: float = 1.25, epsilon: float = 1e-5,
                 norm: str = DEFAULT_NORM, **kwargs):
        super().__init__(**kwargs)
        self.norm = check_norm(norm)
        self.band_ranges = [tuple(int(v) for v in r) for r in band_ranges]
        self.num_bins = self.band_ranges[-1][1]
        check_ranges(self.band_ranges, self.num_bins)
        if feature_dim < 1:
            raise ValueError(f"BandSplit: feature_dim must be positive, got {feature_dim}")
        self.feature_dim = feature_dim
        self.standardize = standardize
        self.group_tolerance = group_tolerance
        self.epsilon = epsilon
        self.groups = band_groups(self.band_ranges, group_tolerance)

    @property
    def num_bands(self) -> int:
        return len(self.band_ranges)

    def build(self, input_shape):
        bins, per_bin = input_shape[-2], input_shape[-1]
        if bins != self.num_bins:
            raise ValueError(f"BandSplit: input has {bins} bins, band ranges cover {self.num_bins}")
        self.features_per_bin = per_bin
        rows = self.num_bins * per_bin
        widths = np.array([b - a for a, b in self.band_ranges])
        band_of_bin = np.repeat(np.arange(self.num_bands), widths)
        fan_in = np.repeat(widths[band_of_bin] * per_bin, per_bin)
        self.norm_gamma = self.add_weight(shape=(rows,), initializer="ones", name="norm_gamma")
        self.norm_beta = self.add_weight(shape=(rows,), initializer="zeros", name="norm_beta")
        self.kernel = self.add_weight(shape=(rows, self.feature_dim),
                                      initializer=_per_row_normal(1.0 / np.sqrt(fan_in)),
                                      name="kernel")
        self.bias = self.add_weight(shape=(self.num_bands, self.feature_dim),
                                    initializer="zeros", name="bias")
        self._index = [feature_index(g.bins, per_bin, self.num_bins) for g in self.groups]
        self._valid = [np.repeat(g.valid, per_bin, axis=1) for g in self.groups]
        self._order = band_order(self.groups)

    def call(self, spectrum):
        return self.step(spectrum)[0]

    def step(self, spectrum, norm_state=None):
        """The band split continuing from ``norm_state``: the running
        statistics of a cumulative norm (:data:`~bsrnn_tf.layers.norm.NormState`,
        sums ``(batch, K)`` in band order; None: the start of a song).

        Returns:
          ``(features, new norm state)``; the state is None unless
          ``norm="cumulative"``.
        """
        x = tf.cast(spectrum, self.compute_dtype)
        if self.standardize:
            x = standardize(x, self.epsilon)
        batch, frames = tf.shape(x)[0], tf.shape(x)[1]
        x = tf.concat([x, tf.zeros_like(x[:, :, :1])], axis=2)  # zero bin for padding
        zero_row = tf.zeros([1], x.dtype)
        gamma = tf.concat([tf.cast(self.norm_gamma, x.dtype), zero_row], 0)
        beta = tf.concat([tf.cast(self.norm_beta, x.dtype), zero_row], 0)
        kernel = tf.concat([tf.cast(self.kernel, x.dtype),
                            tf.zeros([1, self.feature_dim], x.dtype)], 0)
        outputs, states = [], []
        for group, index, valid in zip(self.groups, self._index, self._valid):
            g = len(group.bands)
            xg = tf.gather(x, group.bins.reshape(-1), axis=2)
            xg = tf.reshape(xg, [batch, frames, g, index.shape[1]])
            group_state = None if norm_state is None else (
                tf.gather(norm_state[0], group.bands, axis=1),
                tf.gather(norm_state[1], group.bands, axis=1), norm_state[2])
            xg, group_state = pooled_normalize(xg, self.norm, [3], self.epsilon,
                                               valid=tf.constant(valid), state=group_state)
            states.append(group_state)
            xg = xg * tf.gather(gamma, index) + tf.gather(beta, index)
            outputs.append(tf.einsum("btgi,gin->btgn", xg, tf.gather(kernel, index)))
        y = tf.gather(tf.concat(outputs, axis=2), self._order, axis=2)
        if self.norm == "cumulative":  # the groups' statistics back in band order
            norm_state = tuple(tf.gather(tf.concat([s[i] for s in states], axis=1), self._order,
                                         axis=1) for i in (0, 1)) + (states[0][2],)
        else:
            norm_state = None
        return y + tf.cast(self.bias, y.dtype), norm_state

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.num_bands, self.feature_dim)

    @classmethod
    def from_config(cls, config):
        return super().from_config(with_legacy_norm(config))

    def get_config(self):
        return {**super().get_config(), "band_ranges": [list(r) for r in self.band_ranges],
                "feature_dim": self.feature_dim, "standardize": self.standardize,
                "group_tolerance": self.group_tolerance, "epsilon": self.epsilon,
                "norm": self.norm}


def standardize(x: tf.Tensor, epsilon: float) -> tf.Tensor:
    """Zero mean, unit variance per example over all but the batch axis; a
    silent example stays zero (no division by zero)."""
    return normalize(x, list(range(1, len(x.shape))), epsilon)
