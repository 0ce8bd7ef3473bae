"""Backbone: band split + L band-sequence blocks (loss-agnostic)."""

from __future__ import annotations

import keras
import tensorflow as tf

from bsrnn_tf.config import parse_use_cudnn
from bsrnn_tf.layers.band_sequence import BandSequence
from bsrnn_tf.layers.band_split import BandSplit
from bsrnn_tf.layers.norm import DEFAULT_NORM, with_legacy_norm


@keras.saving.register_keras_serializable(package="bsrnn_tf")
class Backbone(keras.Model):
    """Packed spectrum ``(batch, frames, bins, channels * 2)`` ->
    band features ``(batch, frames, K, feature_dim)``.

    It ends where the mask heads begin, so it can be frozen and reused for
    new targets (refined BSRNN, section III.B).

    ``recompute_blocks`` (a run-time switch, not part of the architecture or
    the saved config): in training, each band-sequence block keeps only its
    input for the backward pass and runs its forward pass again there
    (``tf.recompute_grad``), instead of keeping every LSTM gate and state of
    every block. Peak training memory drops 1.6x (``small``) to 4.2x
    (``paper``) for 1.1x-1.6x the time per step
    (``benchmarks/model.py --train-memory``); gradients are unchanged.

    ``causal``: forward time LSTMs (:class:`BandSequence`), for streaming.
    """

    recompute_blocks = False

    def __init__(self, band_ranges, feature_dim: int = 128, num_layers: int = 12,
                 audio_channels: int = 2, standardize: bool = True, use_cudnn="auto",
                 norm: str = DEFAULT_NORM, causal: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.causal = bool(causal)
        self.band_ranges = [tuple(int(v) for v in r) for r in band_ranges]
        self.feature_dim = feature_dim
        self.num_layers = num_layers
        self.audio_channels = audio_channels
        self.standardize = standardize
        self.use_cudnn = use_cudnn = parse_use_cudnn(use_cudnn)
        self.norm = norm  # from_config: LEGACY_NORM when absent (saved before the field)
        self.band_split = BandSplit(self.band_ranges, feature_dim, standardize=standardize,
                                    norm=norm, name="band_split", dtype=self.dtype_policy)
        self.blocks = [BandSequence(feature_dim, use_cudnn=use_cudnn, norm=norm,
                                    causal=self.causal, name=f"band_sequence_{i}", dtype=self.dtype_policy)
                       for i in range(num_layers)]

    @property
    def num_bands(self) -> int:
        return len(self.band_ranges)

    @property
    def num_bins(self) -> int:
        return self.band_ranges[-1][1]

    def build(self, input_shape=None):
        bins = self.num_bins
        self.band_split.build((None, None, bins, 2 * self.audio_channels))
        for block in self.blocks:
            block.build((None, None, self.num_bands, self.feature_dim))
        self.built = True

    def call(self, spectrum, training=None):
        x = self.band_split(spectrum)
        recompute = bool(self.recompute_blocks and training and self.trainable)
        for block in self.blocks:
            if recompute:
                x = tf.recompute_grad(lambda t, block=block: block(t, training=True))(x)
            else:
                x = block(x, training=training)
        return x

    def step(self, spectrum, state, norm_states=None):
        """A causal backbone from a carried state (:mod:`bsrnn_tf.inference.streaming`).

        Args:
          spectrum: packed ``(batch, frames, bins, C * 2)`` (one frame in a stream).
          state: per block ``(h, c)`` of its time LSTM, each ``(batch * K,
            time_units)``.
          norm_states: with ``norm="cumulative"``, the running statistics
            (:data:`~bsrnn_tf.layers.norm.NormState`) of the band split's norm
            and of each block's time norm, ``1 + L`` of them; None: the start
            of a song.
        Returns:
          ``(features (batch, frames, K, N), new state, new norm states)``,
          the norm states None for the other norms.
        """
        norm_states = norm_states or [None] * (1 + len(self.blocks))
        x, split_state = self.band_split.step(spectrum, norm_states[0])
        new_state, new_norm_states = [], [split_state]
        for block, block_state, norm_state in zip(self.blocks, state, norm_states[1:]):
            x, block_state, norm_state = block.step(x, block_state, training=False,
                                                    norm_state=norm_state)
            new_state.append(block_state)
            new_norm_states.append(norm_state)
        return x, new_state, new_norm_states

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return super().from_config(with_legacy_norm(config), custom_objects=custom_objects)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
                "band_ranges": [list(r) for r in self.band_ranges],
                "feature_dim": self.feature_dim, "num_layers": self.num_layers,
                "audio_channels": self.audio_channels, "standardize": self.standardize,
                "use_cudnn": self.use_cudnn, "norm": self.norm,
                **({"causal": True} if self.causal else {})}
