"""One band-sequence BLSTM of the ``paper`` preset (128 features, 256 units
per direction) three ways, on the shapes a 3 s stereo chunk gives it:

- ``fused``: the library's path, one ``BlockLSTM`` per direction (one Eigen
  product of ``[x_t, h]`` with ``[W; U]`` per step, fused gates);
- ``stacked``: what PyTorch's oneDNN RNN primitive does, written in
  TensorFlow ops: the input projection of every step hoisted out of the
  recurrence into one large product, both directions stacked in one
  ``tf.while_loop`` with one batched ``h @ U`` per step;
- ``stacked_xla``: the same function compiled with XLA.

It answers whether the hoisted, stacked recurrence is worth adding to
:mod:`bsrnn_tf.layers.blstm`: it was not (see ``benchmarks/README.md``),
so it lives here only. Outputs are checked against ``fused`` (max abs error
over max abs output).

    python benchmarks/lstm_variants.py
    TF_NUM_INTEROP_THREADS=2 python benchmarks/lstm_variants.py --shapes 259x41 41x259

Shapes are ``steps x sequences``: 259 x 41 is the time axis at batch 1 (259
frames, 41 bands), 41 x 259 the band axis; 259 x 164 and 41 x 1036 are batch 4.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))

from model import _write_json  # noqa: E402  (after the environment set-up)

FEATURES, UNITS = 128, 256
VARIANTS = ("fused", "stacked", "stacked_xla")


def stacked_bidirectional(layer, x):
    """``Bidirectional(LSTM)`` on time-major ``x (steps, sequences, features)``
    with the input projection hoisted and both directions in one loop."""
    import tensorflow as tf

    units = layer.forward_layer.cell.units

    def ifoc(w):  # Keras' (i, f, c, o) gate blocks -> (i, f, o, c): one sigmoid over 3H
        i, f, c, o = tf.split(tf.convert_to_tensor(w), 4, axis=-1)
        return tf.concat([i, f, o, c], axis=-1)

    cells = (layer.forward_layer.cell, layer.backward_layer.cell)
    kernel = tf.stack([ifoc(c.kernel) for c in cells])  # (2, F, 4H)
    recurrent = tf.stack([ifoc(c.recurrent_kernel) for c in cells])  # (2, H, 4H)
    bias = tf.stack([ifoc(c.bias) for c in cells])[:, None, :]  # (2, 1, 4H)
    steps, sequences = tf.shape(x)[0], tf.shape(x)[1]
    both = tf.stack([x, tf.reverse(x, [0])], axis=1)  # (T, 2, S, F)
    projected = tf.einsum("tdsf,dfg->tdsg", both, kernel) + bias  # one large product
    inputs = tf.TensorArray(x.dtype, size=steps).unstack(projected)
    outputs = tf.TensorArray(x.dtype, size=steps)
    zeros = tf.zeros([2, sequences, units], x.dtype)

    def step(t, h, c, outputs):
        gates = inputs.read(t) + tf.matmul(h, recurrent)  # (2, S, 4H)
        i, f, o = tf.split(tf.sigmoid(gates[..., :3 * units]), 3, axis=-1)
        c = f * c + i * tf.tanh(gates[..., 3 * units:])
        h = o * tf.tanh(c)
        return t + 1, h, c, outputs.write(t, h)

    _, _, _, outputs = tf.while_loop(lambda t, *_: t < steps, step, (0, zeros, zeros, outputs))
    h = outputs.stack()  # (T, 2, S, H)
    return tf.concat([h[:, 0], tf.reverse(h[:, 1], [0])], axis=-1)


def shape(value: str) -> tuple:
    """``'259x41'`` -> ``(259, 41)``."""
    try:
        steps, sequences = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected STEPSxSEQUENCES, got {value!r}") from None
    if steps < 1 or sequences < 1:
        raise argparse.ArgumentTypeError(f"steps and sequences must be positive: {value!r}")
    return steps, sequences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", type=shape,
                        default=[(259, 41), (41, 259), (259, 164), (41, 1036)],
                        metavar="STEPSxSEQUENCES")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "lstm_variants.json"))
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from bsrnn_tf.layers.blstm import fused_bidirectional_time_major

    layer = keras.layers.Bidirectional(keras.layers.LSTM(UNITS, return_sequences=True))
    layer.build((None, None, FEATURES))
    rng = np.random.default_rng(0)
    for w in layer.weights:
        w.assign(rng.normal(0.0, 0.1, w.shape).astype("float32"))
    functions = {
        "fused": tf.function(lambda x: fused_bidirectional_time_major(layer, x),
                             reduce_retracing=True),
        "stacked": tf.function(lambda x: stacked_bidirectional(layer, x), reduce_retracing=True),
        "stacked_xla": tf.function(lambda x: stacked_bidirectional(layer, x), jit_compile=True),
    }
    rows = []
    for steps, sequences in args.shapes:
        x = tf.constant(rng.normal(size=(steps, sequences, FEATURES)).astype("float32"))
        reference = functions["fused"](x).numpy()
        row = {"steps": steps, "sequences": sequences}
        for name in VARIANTS[1:]:
            out = functions[name](x).numpy()
            row[f"{name}_max_rel_error"] = float(np.abs(out - reference).max()
                                                 / np.abs(reference).max())
        times = {name: [] for name in VARIANTS}
        for _ in range(args.repeats):  # interleaved, so drifts in machine load hit all alike
            for name in VARIANTS:
                start = time.perf_counter()
                functions[name](x).numpy()
                times[name].append(time.perf_counter() - start)
        for name in VARIANTS:
            row[f"{name}_ms"] = 1e3 * float(np.median(times[name]))
        rows.append(row)
        print(f"{steps} x {sequences}: " + ", ".join(
            f"{n} {row[n + '_ms']:.1f} ms" for n in VARIANTS), flush=True)

    print("\n| steps x sequences | fused | stacked | stacked + XLA | stacked / fused | "
          "stacked + XLA / fused | max rel error |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['steps']} x {r['sequences']} | {r['fused_ms']:.1f} ms | "
              f"{r['stacked_ms']:.1f} ms | {r['stacked_xla_ms']:.1f} ms | "
              f"{r['stacked_ms'] / r['fused_ms']:.2f}x | "
              f"{r['stacked_xla_ms'] / r['fused_ms']:.2f}x | "
              f"{max(r['stacked_max_rel_error'], r['stacked_xla_max_rel_error']):.1e} |")
    threads = {"inter_op": os.environ.get("TF_NUM_INTEROP_THREADS"),
               "intra_op": os.environ.get("TF_NUM_INTRAOP_THREADS")}
    _write_json(args.out, {"threads": threads, "repeats": args.repeats, "shapes": rows})
    return 0


if __name__ == "__main__":
    from bsrnn_tf.console import quiet_tensorflow

    quiet_tensorflow("3")  # TensorFlow's start-up notices filtered from stderr
    sys.exit(main())
