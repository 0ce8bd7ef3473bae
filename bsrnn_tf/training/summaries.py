"""What training writes to TensorBoard besides scalars: the run's
hyperparameters, and audio and spectrograms of one validation example."""

from __future__ import annotations

import math
import os
from typing import Sequence

import tensorflow as tf


def write_hparams(writer, config, targets: Sequence[str], run_dir: str) -> None:
    """The run's hyperparameters (TensorBoard's HParams plugin)."""
    from tensorboard.plugins.hparams import api as hp
    m, t = config.model, config.train
    hparams = {"preset": config.preset, "bands": m.bands, "num_edges": m.num_edges or 0,
               "feature_dim": m.feature_dim, "num_layers": m.num_layers, "norm": m.norm,
               "targets": ",".join(targets), "learning_rate": t.learning_rate,
               "batch_size": t.batch_size, "loss": t.loss}
    with writer.as_default():
        hp.hparams(hparams, trial_id=os.path.basename(os.path.abspath(run_dir)))


def write_examples(model, targets: Sequence[str], mixture, sources, outputs) -> None:
    """Audio of the first example of a batch (mixture, each target's estimate
    and reference) and log-magnitude spectrograms, in the writer's default
    scope and step. The audio is written with stderr filtered: with oneDNN
    on, its string encoding logs an error line per call that a user cannot
    act on (see :func:`bsrnn_tf.console.prefer_onednn`)."""
    from bsrnn_tf.console import filtered_stderr

    rate = model.sample_rate
    with filtered_stderr():
        tf.summary.audio("audio/mixture", mixture[:1], rate, max_outputs=1)
        for t in targets:
            tf.summary.audio(f"audio/{t}_estimate", tf.clip_by_value(outputs[t][:1], -1, 1),
                             rate, max_outputs=1)
            tf.summary.audio(f"audio/{t}_reference", sources[t][:1], rate, max_outputs=1)
    for t in targets:
        tf.summary.image(f"spectrogram/{t}_estimate",
                         spectrogram_image(model.stft(outputs[t][:1])), max_outputs=1)
        tf.summary.image(f"spectrogram/{t}_reference",
                         spectrogram_image(model.stft(sources[t][:1])), max_outputs=1)


def spectrogram_image(spectrum: tf.Tensor) -> tf.Tensor:
    """Log-magnitude of channel 0 of a packed spectrum as a ``(1, bins,
    frames, 1)`` image in [0, 1] (80 dB range, low frequencies at the
    bottom)."""
    power = tf.square(spectrum[..., 0]) + tf.square(spectrum[..., 1])
    db = 10.0 * tf.math.log(power + 1e-10) / math.log(10.0)
    db = tf.maximum(db, tf.reduce_max(db) - 80.0)
    img = (db - tf.reduce_min(db)) / (tf.reduce_max(db) - tf.reduce_min(db) + 1e-6)
    return tf.reverse(tf.transpose(img, [0, 2, 1]), axis=[1])[..., None]
