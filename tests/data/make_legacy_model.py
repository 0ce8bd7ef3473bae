"""Writes the legacy-model fixture of ``tests/test_norm.py`` (run once, with
the code from *before* ``norm`` existed).

The fixture is a ``tiny`` separator (targets drums, bass) saved by bsrnn_tf as
it was at commit 6e685a5 (the parent of the commit that added
``norm="chunk"|"frame"``), whose norms were all per-frame layer norms. Its
weights are drawn at random (seed 0, including the norms' gamma/beta and the
biases, so that every norm's statistics matter), and its outputs on a fixed
generated input are stored beside it. Today's code must load it as a
``norm="frame"`` model and give the same outputs.

How it was made (from a checkout of this repository)::

    mkdir /tmp/old && git archive 6e685a5 | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old python tests/data/make_legacy_model.py tests/data/legacy_tiny

which writes ``legacy_tiny/model.keras``, ``legacy_tiny/config.json`` (the
experiment config of that time, without ``model.norm``) and
``legacy_tiny/outputs.npz`` (``input`` (1, 4096, 2) and one array per target).
"""

import os
import sys

import keras
import numpy as np


def main(out: str) -> None:
    import bsrnn_tf
    from bsrnn_tf.config import ExperimentConfig
    from bsrnn_tf.models.io import save_separator
    from bsrnn_tf.models.presets import build_separator, preset

    print("bsrnn_tf from", bsrnn_tf.__file__)
    if hasattr(preset("tiny"), "norm"):
        sys.exit("run this with the code from before the norm option (commit 6e685a5)")
    keras.utils.set_random_seed(0)
    config = preset("tiny")
    config.targets = ["drums", "bass"]
    model = build_separator(config)
    rng = np.random.default_rng(0)
    for w in model.weights:
        w.assign((w.numpy() + 0.3 * rng.standard_normal(w.shape)).astype(np.float32))
    t = np.arange(4096) / 44100.0
    tone = 0.3 * np.sin(2 * np.pi * 220.0 * t) * np.linspace(0.1, 1.0, t.size)
    wave = np.stack([tone, 0.5 * tone], axis=-1) + 0.05 * rng.standard_normal((4096, 2))
    wave = wave[None].astype(np.float32)
    outputs = {k: v.numpy() for k, v in model(wave).items()}
    os.makedirs(out, exist_ok=True)
    save_separator(model, out, ExperimentConfig(name="legacy_tiny", preset="tiny", model=config))
    np.savez(os.path.join(out, "outputs.npz"), input=wave, **outputs)


if __name__ == "__main__":
    main(sys.argv[1])
