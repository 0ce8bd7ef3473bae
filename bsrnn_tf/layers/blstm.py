"""How the band-sequence BLSTMs run: Keras' ``Bidirectional(LSTM)``,
TensorFlow's fused LSTM kernel, or unrolled over static steps, all on the
Keras layers' own weights (so checkpoints, saved models and every path stay
interchangeable and only speed changes; ``benchmarks/model.py`` measures
them).

*Fused* (CPU training and serving). Keras 3 runs an LSTM on the CPU as a
``tf.while_loop`` whose body is about ten small ops per step, each dispatched
by the graph executor. ``BlockLSTM`` runs the whole sequence inside one C++
kernel and has a registered gradient, so it serves training as well. Its gate
layout is (input, cell, forget, output) where Keras' is (input, forget, cell,
output): the weights are permuted on the fly (differentiable).
``BlockLSTMV2`` has Keras' layout, but TensorFlow (2.21) registers the V1
gradient for it, which assumes the other layout: its gradients are wrong, so
it is not used.

*Unrolled* (TFLite export). TFLite runs a Keras 3 LSTM as a WHILE loop,
several times slower than TF; unrolled over the static steps, each step is a
few builtin ops that XNNPACK runs inside one delegated graph. Needs static
shapes.

Which path a layer takes is decided when a function is traced:

* ``"auto"`` (default): fused on CPU-only machines for float32 LSTMs with
  tanh/sigmoid gates and no dropout, and never inside an XLA compilation
  (XLA has no kernel for ``BlockLSTM``); otherwise Keras (cuDNN on GPUs).
* ``"keras"``: always ``keras.layers.Bidirectional(LSTM)``.
* ``"fused"``: always the fused kernel (an error where it cannot run).
* ``"unrolled"``: always unrolled (an error where it cannot run); the
  TFLite export traces with it.

Set it with :func:`set_lstm_implementation`, the ``lstm_implementation``
context manager, or the ``BSRNN_TF_LSTM`` environment variable.
"""

from __future__ import annotations

import contextlib
import os
from typing import Optional

import tensorflow as tf

IMPLEMENTATIONS = ("auto", "keras", "fused", "unrolled")
_ENV = "BSRNN_TF_LSTM"


def _checked(name: str) -> str:
    value = str(name).strip().lower()
    if value not in IMPLEMENTATIONS:
        raise ValueError(f"LSTM implementation must be one of {', '.join(IMPLEMENTATIONS)}, "
                         f"got {name!r}")
    return value


_current = {"impl": None}


def get_lstm_implementation() -> str:
    """The implementation in force: set explicitly, else ``$BSRNN_TF_LSTM``,
    else ``"auto"``."""
    if _current["impl"] is None:
        value = os.environ.get(_ENV, "auto")
        try:
            return _checked(value)
        except ValueError as e:
            raise ValueError(f"${_ENV}: {e}") from None
    return _current["impl"]


def set_lstm_implementation(name) -> None:
    """Chooses the BLSTM path for functions traced from now on (``None``:
    back to ``$BSRNN_TF_LSTM`` / ``"auto"``)."""
    _current["impl"] = None if name is None else _checked(name)


@contextlib.contextmanager
def lstm_implementation(name):
    """``with lstm_implementation("keras"): ...`` for a traced function."""
    saved = _current["impl"]
    set_lstm_implementation(name)
    try:
        yield
    finally:
        _current["impl"] = saved


def xla_probe():
    """TensorFlow's private test of whether the graph being traced is
    compiled by XLA (no public API tells), as a function of no arguments,
    or None if TensorFlow moved it (tests/test_private_apis.py fails then)."""
    try:
        from tensorflow.python.framework import ops
        from tensorflow.python.ops import control_flow_util
        in_xla, default_graph = control_flow_util.GraphOrParentsInXlaContext, ops.get_default_graph
    except (ImportError, AttributeError):
        return None
    return lambda: bool(in_xla(default_graph()))


def _in_xla_context() -> Optional[bool]:
    """Whether the function being traced is compiled by XLA; None when it
    cannot be told (the private probe moved or failed)."""
    probe = xla_probe()
    if probe is None:
        return None
    try:
        return probe()
    except Exception:  # noqa: BLE001  (a private API that changed its behaviour)
        return None


def _gpu_present() -> bool:
    try:
        return bool(tf.config.list_logical_devices("GPU"))
    except Exception:  # noqa: BLE001
        return False


def unsupported_reason(layer, any_dtype: bool = False) -> str:
    """Why ``layer`` (a ``Bidirectional(LSTM)``, or a forward ``LSTM``: a
    causal model's time axis) cannot take the fused path (with
    ``any_dtype``: the unrolled path), or ``""`` when it can."""
    if hasattr(layer, "cell"):
        lstms = (layer,)
    elif getattr(layer, "merge_mode", None) != "concat":
        return f"merge_mode {getattr(layer, 'merge_mode', None)!r}"
    else:
        lstms = (layer.forward_layer, layer.backward_layer)
    for lstm in lstms:
        cell = lstm.cell
        if lstm.compute_dtype != "float32" and not any_dtype:
            return f"compute dtype {lstm.compute_dtype}"
        gates = (getattr(cell.activation, "__name__", ""),
                 getattr(cell.recurrent_activation, "__name__", ""))
        if gates != ("tanh", "sigmoid"):
            return f"activations {gates}"
        if not cell.use_bias:
            return "no bias"
        if cell.dropout or cell.recurrent_dropout:
            return "dropout"
        if getattr(lstm, "stateful", False) or getattr(lstm, "unroll", False):
            return "stateful or unrolled LSTM"
    return ""


def use_fused(layer) -> bool:
    """Whether ``layer`` runs fused in the function being traced now."""
    impl = get_lstm_implementation()
    if impl in ("keras", "unrolled"):
        return False
    reason = unsupported_reason(layer)
    if impl == "fused":
        if reason:
            raise ValueError(f"{layer.name}: the fused LSTM cannot run this layer ({reason})")
        if _in_xla_context():  # None (cannot tell): the explicit choice is honoured
            raise ValueError(f"{layer.name}: the fused LSTM has no XLA kernel; use "
                             "lstm_implementation('keras') or 'auto' with jit_compile")
        return True
    # "auto" takes the fused kernel only when it is known not to be inside XLA.
    return not reason and _in_xla_context() is False and not _gpu_present()


def use_unrolled(layer) -> bool:
    """Whether ``layer`` runs unrolled in the function being traced now."""
    if get_lstm_implementation() != "unrolled":
        return False
    reason = unsupported_reason(layer, any_dtype=True)
    if reason:
        raise ValueError(f"{layer.name}: the unrolled LSTM cannot run this layer ({reason})")
    return True


def _keras_to_block_gates(gates):
    """Keras' (i, f, c, o) gate blocks on the last axis -> BlockLSTM's (i, c, f, o)."""
    i, f, c, o = tf.split(gates, 4, axis=-1)
    return tf.concat([i, c, f, o], axis=-1)


def _fused_lstm(cell, x, reverse: bool, state=None, return_state: bool = False):
    """One direction over time-major ``x (steps, batch, features)``; outputs
    in input order (and, with ``return_state``, the final ``(h, c)``).
    ``state``: initial ``(h, c)``, each ``(batch, units)``; zeros if None."""
    steps, batch = tf.shape(x)[0], tf.shape(x)[1]
    if reverse:
        x = tf.reverse(x, [0])
    weights = _keras_to_block_gates(tf.concat([tf.convert_to_tensor(cell.kernel),
                               tf.convert_to_tensor(cell.recurrent_kernel)], axis=0))
    zeros = tf.zeros([batch, cell.units], x.dtype)
    h0, c0 = (zeros, zeros) if state is None else state
    no_peephole = tf.zeros([cell.units], x.dtype)
    out = tf.raw_ops.BlockLSTM(
        seq_len_max=tf.cast(steps, tf.int64), x=x, cs_prev=c0, h_prev=h0, w=weights,
        wci=no_peephole, wcf=no_peephole, wco=no_peephole,
        b=_keras_to_block_gates(tf.convert_to_tensor(cell.bias)), forget_bias=0.0, cell_clip=-1.0,
        use_peephole=False)
    h = out[6]
    if return_state:
        return h, (h[-1], out[1][-1])
    return tf.reverse(h, [0]) if reverse else h


def fused_bidirectional_time_major(layer, x):
    """``Bidirectional(LSTM(return_sequences=True))`` on time-major
    ``x (steps, batch, features)`` through ``BlockLSTM``; time-major
    output ``(steps, batch, 2 * units)``, forward units first.

    Zero initial states, no masking: the band-sequence blocks' use.
    """
    forward = _fused_lstm(layer.forward_layer.cell, x, reverse=False)
    backward = _fused_lstm(layer.backward_layer.cell, x, reverse=True)
    return tf.concat([forward, backward], axis=-1)


def unrolled_bidirectional(layer, x):
    """``Bidirectional(LSTM(return_sequences=True))`` on batch-major ``x
    (batch, steps, features)`` with static ``steps``, one group of ops per
    step; output ``(batch, steps, 2 * units)``, forward units first."""
    forward = _unrolled_lstm(layer.forward_layer.cell, x, reverse=False)
    backward = _unrolled_lstm(layer.backward_layer.cell, x, reverse=True)
    return tf.concat([forward, backward], axis=-1)


def forward_lstm(layer, x, state=None, training=None):
    """A causal model's time LSTM (a forward ``keras.layers.LSTM`` built
    with ``return_sequences`` and ``return_state``) on batch-major ``x
    (batch, steps, features)`` from ``state`` (``(h, c)``, each ``(batch,
    units)``; zeros if None), through the path in force (fused, unrolled or
    Keras).

    Returns:
      ``(outputs (batch, steps, units), (h, c))``.
    """
    if use_unrolled(layer):
        return _unrolled_lstm(layer.cell, x, reverse=False, state=state, return_state=True)
    if use_fused(layer):
        y, final = _fused_lstm(layer.cell, tf.transpose(x, [1, 0, 2]), reverse=False,
                               state=state, return_state=True)
        return tf.transpose(y, [1, 0, 2]), final
    y, h, c = layer(x, initial_state=None if state is None else list(state), training=training)
    return y, (h, c)


def _unrolled_lstm(cell, x, reverse: bool, state=None, return_state: bool = False):
    """One direction from ``state`` (``(h, c)``; zeros if None); outputs in
    input order (and the final ``(h, c)`` with ``return_state``)."""
    steps, features, units = x.shape[1], x.shape[2], cell.units
    if steps is None:
        raise ValueError("the unrolled LSTM needs a static number of steps")
    batch = x.shape[0] or tf.shape(x)[0]
    kernel, recurrent, bias = (tf.cast(v, x.dtype) for v in
                               (cell.kernel, cell.recurrent_kernel, cell.bias))
    # The input part of every step in one matmul, then one UNPACK: per-step
    # strided slices of a batch-major tensor cost more than the step itself.
    z = tf.matmul(tf.reshape(x, [-1, features]), kernel) + bias
    z = tf.unstack(tf.transpose(tf.reshape(z, [batch, steps, 4 * units]), [1, 0, 2]))
    h, c = (tf.zeros([batch, units], x.dtype),) * 2 if state is None else state
    outputs = [None] * steps
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        i, f, g, o = tf.split(z[t] + tf.matmul(h, recurrent), 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        outputs[t] = h
    y = tf.transpose(tf.stack(outputs), [1, 0, 2])
    return (y, (h, c)) if return_state else y
