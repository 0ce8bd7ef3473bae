"""Setting up a :class:`~bsrnn_tf.training.trainer.Trainer` for an experiment.

The configured dataset's train and valid tracks (:func:`load_tracks_for`),
a trainer fed by the tf.data pipelines over them, one input pipeline per
``tf.distribute`` input context (:func:`make_trainer`), and the removal of a
non-chief worker's scratch checkpoints (:func:`cleanup_worker_dir`). The
training loop itself is :mod:`bsrnn_tf.training.trainer`.
"""

from __future__ import annotations

import shutil

import tensorflow as tf

from bsrnn_tf.config import ExperimentConfig
from bsrnn_tf.training.trainer import Trainer


def load_tracks_for(config: ExperimentConfig) -> tuple:
    """``(train_tracks, valid_tracks)`` of the configured dataset (MUSDB root,
    ``$MUSDB_PATH`` or the built-in one), with the instrument stems the
    model's targets name (:func:`~bsrnn_tf.data.track.source_set`); raises
    ``DataError``.

    Validation keeps only the tracks that have every target's stem: a track
    without an instrument stem reads it as silence, and a silent reference
    would score the model on nothing; none left means no validation.
    Training needs no such rule: its source-activity detection only draws
    chunks where the target plays."""
    from bsrnn_tf.data.musdb import load_tracks, resolve_root, source_set
    root, _ = resolve_root(config.data.musdb_root, config.data.builtin_dataset)
    stems = source_set(config.model.targets)
    train = load_tracks(root, subset="train", split="train", is_wav=config.data.is_wav,
                        targets=stems)
    valid = load_tracks(root, subset="train", split="valid", is_wav=config.data.is_wav,
                        targets=stems)
    return train, [t for t in valid if all(t.has_stem(s) for s in config.model.targets)]


def make_trainer(model, config: ExperimentConfig, run_dir: str,
                 strategy: tf.distribute.Strategy, train_tracks, valid_tracks,
                 **kwargs) -> Trainer:
    """A :class:`Trainer` fed by the tf.data pipeline over the given tracks:
    each input pipeline draws its own random stream (seed + pipeline id)."""
    from bsrnn_tf.data.pipeline import train_dataset, valid_dataset
    targets, rate = model.targets, model.sample_rate

    def train_fn(context: tf.distribute.InputContext):
        batch = context.get_per_replica_batch_size(config.train.batch_size)
        return train_dataset(train_tracks, targets, config.data, batch, rate,
                             seed=config.train.seed + 1000 * context.input_pipeline_id)

    valid = (valid_dataset(valid_tracks, targets, config.data, config.train.batch_size, rate)
             if valid_tracks else None)
    return Trainer(model, config, run_dir, strategy, train_fn, valid, **kwargs)


def cleanup_worker_dir(trainer: Trainer) -> None:
    """Removes a non-chief worker's scratch checkpoints."""
    if not trainer.chief:
        shutil.rmtree(trainer.manager.directory, ignore_errors=True)
