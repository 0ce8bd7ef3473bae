"""BandSequence: interleaved BLSTMs along time and along the band axis."""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from bsrnn_tf.config import parse_use_cudnn
from bsrnn_tf.layers.blstm import (forward_lstm, fused_bidirectional_time_major,
                                   unrolled_bidirectional, use_fused, use_unrolled)
from bsrnn_tf.layers.norm import (CAUSAL_NORMS, DEFAULT_NORM, check_norm, normalize,
                                  pooled_normalize, with_legacy_norm)


@contextlib.contextmanager
def _outside_object_sharing():
    """Suspends Keras' object-sharing scope while sub-layers are created.

    ``keras.saving.load_model`` recognises shared objects by ``id()``.
    ``Bidirectional.__init__`` serialises its template LSTM twice, and the
    temporary templates of successive blocks can reuse one address, so inside
    that scope the wrapper can receive another block's LSTM (or a forward
    layer twice).  Our sub-layers are never shared, so sharing is switched off
    while they are built.
    """
    global_state = _keras_global_state()
    if global_state is None:  # a Keras that moved it: _blstm checks the result instead
        yield
        return
    saved = [global_state.get_global_attribute(k) for k in SHARING_KEYS]
    for k in SHARING_KEYS:
        global_state.set_global_attribute(k, None)
    try:
        yield
    finally:
        for k, v in zip(SHARING_KEYS, saved):
            global_state.set_global_attribute(k, v)


# Keras' object-sharing state (private: keras.src.backend.common.global_state;
# tests/test_private_apis.py fails if Keras moves or renames it).
SHARING_KEYS = ("shared_objects/id_to_obj_map", "shared_objects/id_to_config_map")


def _keras_global_state():
    """Keras' private ``global_state`` module, or None if it moved."""
    try:
        from keras.src.backend.common import global_state
    except ImportError:
        return None
    if not all(hasattr(global_state, f) for f in ("get_global_attribute",
                                                  "set_global_attribute")):
        return None
    return global_state


def _blstm(units, use_cudnn, policy, name):
    template = keras.layers.LSTM(units, return_sequences=True, use_cudnn=use_cudnn,
                                 dtype=policy)
    with _outside_object_sharing():
        wrapper = keras.layers.Bidirectional(template, name=name, dtype=policy)
    # Whatever Keras does with object sharing, the wrapper must hold its own
    # two fresh copies of the template, never another block's LSTM.
    own = {"forward": wrapper.forward_layer, "backward": wrapper.backward_layer}
    for side, layer in own.items():
        if (layer.name != f"{side}_{template.name}" or layer.built
                or layer.go_backwards != (side == "backward")):
            raise RuntimeError(
                f"{name}: keras.layers.Bidirectional received a shared {side} LSTM "
                f"({layer.name!r}, not a copy of {template.name!r}): this Keras "
                f"({keras.__version__}) shares objects while loading in a way that "
                "_outside_object_sharing does not switch off")
    return wrapper


def _forward_lstm(units, use_cudnn, policy, name):
    return keras.layers.LSTM(units, return_sequences=True, return_state=True,
                             use_cudnn=use_cudnn, dtype=policy, name=name)


def _affine(layer, y):
    """``y`` times a ``LayerNormalization`` layer's gamma plus its beta."""
    return y * tf.cast(layer.gamma, y.dtype) + tf.cast(layer.beta, y.dtype)


# A causal block's forward time LSTM has CAUSAL_TIME_RATIO / hidden_ratio
# times the units of one direction of the BLSTM it replaces: 3N against 2N
# per direction, 51 N^2 + 13 N parameters with its FC against 52 N^2 + 17 N
# (the same count within 2 %).
CAUSAL_TIME_RATIO = 3


def _dims(x):
    """``(batch, frames, bands)`` of ``x``: static where known (the unrolled
    path needs static steps), else dynamic."""
    dynamic = tf.shape(x)
    return tuple(x.shape[i] if x.shape[i] is not None else dynamic[i] for i in range(3))


@keras.saving.register_keras_serializable(package="bsrnn_tf")
class BandSequence(keras.layers.Layer):
    """One band-and-sequence modelling block.

    ``x + FC(BLSTM_time(norm(x)))``, then ``x + FC(BLSTM_band(norm(x)))``;
    each BLSTM has ``hidden_ratio * feature_dim`` units per direction and is
    shared by all bands (time axis) or all frames (band axis).

    Input and output: ``(batch, frames, bands, feature_dim)``.

    ``norm="chunk"`` (the BSRNN authors'): before the time BLSTM, statistics
    per example and band over ``feature_dim`` x frames; before the band BLSTM,
    per example and frame over ``feature_dim`` x bands. ``norm="frame"``: a
    layer norm over ``feature_dim`` per frame and band. ``norm="cumulative"``:
    before the time BLSTM, per example and band over ``feature_dim`` x the
    frames so far (causal); before the band BLSTM as ``"chunk"`` (per frame
    already). The affine parameters are the ``time_norm`` / ``band_norm``
    layers' in every case.

    ``causal=True`` (a streaming model): the time BLSTM is a forward LSTM of
    ``3 * feature_dim`` units (:data:`CAUSAL_TIME_RATIO`: about the BLSTM's
    parameter count), so frame ``t``'s output depends on frames ``<= t``
    only; :meth:`step` carries its state from call to call. The band BLSTM
    stays bidirectional (it runs inside one frame); ``norm`` must be
    ``"frame"`` or ``"cumulative"`` (:data:`~bsrnn_tf.layers.norm.CAUSAL_NORMS`),
    and :meth:`step` also carries the cumulative norm's statistics.

    On CPUs the BLSTMs run through TensorFlow's fused LSTM kernel on the same
    weights (:mod:`bsrnn_tf.layers.blstm`), with the sequences laid out
    step-major straight from the block's 4-D input, so each BLSTM costs two
    transposes in all; for TFLite they run unrolled over the static steps.
    """

    def __init__(self, feature_dim: int, hidden_ratio: int = 2, use_cudnn="auto",
                 epsilon: float = 1e-5, norm: str = DEFAULT_NORM, causal: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.norm = check_norm(norm)
        self.causal = bool(causal)
        if self.causal and self.norm not in CAUSAL_NORMS:
            raise ValueError(f"BandSequence: a causal block needs norm "
                             f"{' or '.join(map(repr, CAUSAL_NORMS))}; {norm!r} takes "
                             f"statistics over the chunk's frames")
        self.feature_dim = feature_dim
        self.hidden_ratio = hidden_ratio
        self.use_cudnn = use_cudnn = parse_use_cudnn(use_cudnn)
        self.epsilon = epsilon
        units = hidden_ratio * feature_dim
        policy = self.dtype_policy
        self.time_norm = keras.layers.LayerNormalization(epsilon=epsilon, name="time_norm",
                                                         dtype=policy)
        if self.causal:
            self.time_units = CAUSAL_TIME_RATIO * feature_dim
            self.time_rnn = _forward_lstm(self.time_units, use_cudnn, policy, "time_lstm")
        else:
            self.time_units = 2 * units
            self.time_rnn = _blstm(units, use_cudnn, policy, "time_blstm")
        self.time_fc = keras.layers.Dense(feature_dim, name="time_fc", dtype=policy)
        self.band_norm = keras.layers.LayerNormalization(epsilon=epsilon, name="band_norm",
                                                         dtype=policy)
        self.band_rnn = _blstm(units, use_cudnn, policy, "band_blstm")
        self.band_fc = keras.layers.Dense(feature_dim, name="band_fc", dtype=policy)

    def build(self, input_shape):
        features = (None, None, self.feature_dim)
        for norm, rnn, fc, width in (
                (self.time_norm, self.time_rnn, self.time_fc, self.time_units),
                (self.band_norm, self.band_rnn, self.band_fc,
                 2 * self.hidden_ratio * self.feature_dim)):
            norm.build(features)
            rnn.build(features)
            fc.build((None, None, width))

    def normalize_time(self, x):
        """The norm before the time BLSTM, ``(batch, frames, bands, N)``."""
        return self.normalize_time_step(x)[0]

    def normalize_time_step(self, x, norm_state=None):
        """:meth:`normalize_time` continuing from a cumulative norm's running
        statistics (:data:`~bsrnn_tf.layers.norm.NormState`, sums ``(batch,
        bands)``; None: the start of a song). Returns ``(y, new state)``, the
        state None unless ``norm="cumulative"``."""
        if self.norm == "frame":
            return self.time_norm(x), None
        y, norm_state = pooled_normalize(x, self.norm, [3], self.epsilon, state=norm_state)
        return _affine(self.time_norm, y), norm_state

    def normalize_band(self, x):
        """The norm before the band BLSTM, ``(batch, frames, bands, N)``:
        per frame for every norm ("chunk" and "cumulative" over N x bands)."""
        if self.norm == "frame":
            return self.band_norm(x)
        return _affine(self.band_norm, normalize(x, [2, 3], self.epsilon))

    def call(self, x, training=None):
        if self.causal:
            return self.step(x, None, training)[0]
        if use_fused(self.time_rnn) and use_fused(self.band_rnn):
            return self._fused_call(x)
        batch, frames, bands = _dims(x)
        n = self.feature_dim
        # Time axis: one sequence of `frames` steps per (example, band).
        y = tf.transpose(self.normalize_time(x), [0, 2, 1, 3])
        y = tf.reshape(y, [batch * bands, frames, n])
        y = self.time_fc(self._bidirectional(self.time_rnn, y, training))
        x = x + tf.transpose(tf.reshape(y, [batch, bands, frames, n]), [0, 2, 1, 3])
        return self._band_axis(x, training)

    def _band_axis(self, x, training):
        """The band half of the block: one sequence of ``bands`` steps per
        (example, frame)."""
        batch, frames, bands = _dims(x)
        n = self.feature_dim
        y = tf.reshape(self.normalize_band(x), [batch * frames, bands, n])
        y = self.band_fc(self._bidirectional(self.band_rnn, y, training))
        return x + tf.reshape(y, [batch, frames, bands, n])

    def step(self, x, state=None, training=None, norm_state=None):
        """A causal block on ``x (batch, frames, bands, N)`` whose time LSTM
        starts from ``state`` (``(h, c)``, each ``(batch * bands,
        time_units)``, example-major; zeros if None) and whose cumulative
        time norm starts from ``norm_state`` (:meth:`normalize_time_step`):
        the whole offline sequence, or one hop of a stream.

        Returns:
          ``(output like x, final (h, c), final norm state or None)``.
        """
        if not self.causal:
            raise ValueError(f"{self.name}: step() needs a causal block (model.causal)")
        batch, frames, bands = _dims(x)
        n = self.feature_dim
        y, norm_state = self.normalize_time_step(x, norm_state)
        y = tf.transpose(y, [0, 2, 1, 3])
        y, state = forward_lstm(self.time_rnn, tf.reshape(y, [batch * bands, frames, n]),
                                state, training)
        y = tf.reshape(self.time_fc(y), [batch, bands, frames, n])
        x = x + tf.transpose(y, [0, 2, 1, 3])
        return self._band_axis(x, training), state, norm_state

    @staticmethod
    def _bidirectional(rnn, y, training):
        """The Keras BLSTM, or unrolled (the TFLite export's path, see
        :mod:`bsrnn_tf.layers.blstm`)."""
        return unrolled_bidirectional(rnn, y) if use_unrolled(rnn) else rnn(y, training=training)

    def _fused_call(self, x):
        """``call`` through the fused kernel, which wants step-major
        sequences: frames-major for the time axis, bands-major for the band
        axis."""
        shape = tf.shape(x)
        batch, frames, bands = shape[0], shape[1], shape[2]
        n = self.feature_dim
        y = tf.transpose(self.normalize_time(x), [1, 0, 2, 3])  # (frames, batch, bands, n)
        y = fused_bidirectional_time_major(self.time_rnn, tf.reshape(y, [frames, -1, n]))
        y = tf.reshape(self.time_fc(y), [frames, batch, bands, n])
        x = x + tf.transpose(y, [1, 0, 2, 3])
        y = tf.transpose(self.normalize_band(x), [2, 0, 1, 3])  # (bands, batch, frames, n)
        y = fused_bidirectional_time_major(self.band_rnn, tf.reshape(y, [bands, -1, n]))
        y = tf.reshape(self.band_fc(y), [bands, batch, frames, n])
        return x + tf.transpose(y, [1, 2, 0, 3])

    def compute_output_shape(self, input_shape):
        return input_shape

    @classmethod
    def from_config(cls, config):
        return super().from_config(with_legacy_norm(config))

    def get_config(self):
        return {**super().get_config(), "feature_dim": self.feature_dim,
                "hidden_ratio": self.hidden_ratio, "use_cudnn": self.use_cudnn,
                "epsilon": self.epsilon, "norm": self.norm,
                **({"causal": True} if self.causal else {})}
