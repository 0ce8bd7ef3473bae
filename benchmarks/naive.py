"""The naive baseline: BandSplit and MaskHead as K separate Python-level
Keras layers (one LayerNorm + Dense per band), sharing the weights of a
batched :class:`Separator`, for the speed benchmark's "before" figures."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from bsrnn_tf.layers.mask_head import apply_mask


class NaiveSeparator:
    """Same function as ``model`` (a built Separator), per-band layers."""

    def __init__(self, model):
        self.model = model
        split = model.backbone.band_split
        d = split.features_per_bin
        n = model.feature_dim
        self.split = []
        for k, (a, b) in enumerate(model.band_ranges):
            norm = keras.layers.LayerNormalization(epsilon=split.epsilon)
            dense = keras.layers.Dense(n)
            norm.build((None, (b - a) * d))
            dense.build((None, (b - a) * d))
            norm.set_weights([split.norm_gamma.numpy()[a * d:b * d],
                              split.norm_beta.numpy()[a * d:b * d]])
            dense.set_weights([split.kernel.numpy()[a * d:b * d], split.bias.numpy()[k]])
            self.split.append((a, b, norm, dense))
        self.heads = {t: self._naive_head(h) for t, h in model.heads.items()}

    @staticmethod
    def _naive_head(head):
        per_bin = 2 * head.features_per_bin
        n, hidden = head.feature_dim, head.mlp_ratio * head.feature_dim
        layers = []
        w2 = head.output_kernel.numpy()
        b2 = head.output_bias.numpy()
        for k, (a, b) in enumerate(head.band_ranges):
            norm = keras.layers.LayerNormalization(epsilon=head.epsilon)
            mlp = keras.layers.Dense(hidden, activation="tanh")
            out = keras.layers.Dense((b - a) * per_bin)
            norm.build((None, n))
            mlp.build((None, n))
            out.build((None, hidden))
            norm.set_weights([head.norm_gamma.numpy()[k], head.norm_beta.numpy()[k]])
            mlp.set_weights([head.hidden_kernel.numpy()[k], head.hidden_bias.numpy()[k]])
            out.set_weights([w2[a * per_bin:b * per_bin].T, b2[a * per_bin:b * per_bin]])
            layers.append((a, b, norm, mlp, out))
        return layers

    def __call__(self, waveform):
        m = self.model
        spec = m.stft(waveform)
        x = spec
        if m.standardize:
            mean, var = tf.nn.moments(x, axes=[1, 2, 3], keepdims=True)
            x = (x - mean) * tf.math.rsqrt(var + m.backbone.band_split.epsilon)
        batch, frames = tf.shape(x)[0], tf.shape(x)[1]
        bands = [dense(norm(tf.reshape(x[:, :, a:b], [batch, frames, -1])))
                 for a, b, norm, dense in self.split]
        q = tf.stack(bands, axis=2)
        for block in m.backbone.blocks:
            q = block(q)
        outputs = {}
        for target, layers in self.heads.items():
            parts = []
            for k, (a, b, norm, mlp, out) in enumerate(layers):
                o = out(mlp(norm(q[:, :, k])))
                o = tf.reshape(o, [batch, frames, b - a, -1])
                value, gate = tf.split(o, 2, axis=-1)
                parts.append(value * tf.sigmoid(gate))
            mask = tf.concat(parts, axis=2)
            outputs[target] = m.istft(apply_mask(mask, spec), waveform.shape[1])
        return outputs


def max_relative_error(a: dict, b: dict) -> float:
    """max |a - b| / max |a| over all targets."""
    return max(float(np.abs(np.asarray(a[t]) - np.asarray(b[t])).max()
                   / (np.abs(np.asarray(a[t])).max() + 1e-12)) for t in a)
