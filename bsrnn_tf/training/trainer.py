"""Training: one replica step shared by every ``tf.distribute`` strategy.

The loop is a custom ``strategy.run`` loop (Keras 3 ``model.fit`` fails under
``MultiWorkerMirroredStrategy``), so the default strategy, ``MirroredStrategy``
and ``MultiWorkerMirroredStrategy`` all run the same :meth:`Trainer._replica_step`.

Gradients are summed over replicas, clipped by their global norm, then
applied: exactly what one device with the global batch would do.

Building a trainer for a configuration (tracks, tf.data pipelines) is
:mod:`bsrnn_tf.training.trainer_setup`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from typing import Callable, List, Optional

import keras
import numpy as np
import tensorflow as tf

from bsrnn_tf.config import ExperimentConfig
from bsrnn_tf.data.pipeline import valid_segment_samples
from bsrnn_tf.fileio import BEST_FILE, MODEL_FILE, atomic_write_text
from bsrnn_tf.models.io import save_separator
from bsrnn_tf.training.checkpoints import KEEP_CHECKPOINTS, CheckpointError, restore_newest_readable
from bsrnn_tf.training.distribute import cluster_workers, is_chief, worker_index
from bsrnn_tf.training.losses import multitask_loss, target_loss
from bsrnn_tf.training.summaries import write_examples, write_hparams
from bsrnn_tf.training.validation import db_ratio, reference_usdr


class TrainingError(RuntimeError):
    """Training cannot go on (diverged, bad data); the message says why."""


def mean_over_targets(values: dict) -> float:
    """The mean of ``{target: dB}`` (an epoch's ``valid_usdr`` or
    ``valid_gain``); NaN for an empty dict (no validation)."""
    return float(np.mean(list(values.values()))) if values else float("nan")


@dataclasses.dataclass
class EpochResult:
    epoch: int
    train_loss: float
    train_losses: dict
    valid_usdr: dict
    valid_gain: dict
    seconds: float
    learning_rate: float
    skipped_examples: int


class LineProgress:
    """The progress of an epoch as whole lines, for a log file (nohup, CI):
    one line at every tenth of the epoch instead of a bar redrawn with
    carriage returns on one ever-growing line."""

    def __init__(self, target: int, label: str, log: Callable[[str], None], parts: int = 10):
        self.target, self.label, self.log = target, label, log
        self.marks = sorted({max(1, round(target * k / parts)) for k in range(1, parts)})
        self.started = time.time()
        self.losses: List[float] = []

    def update(self, step: int, values=()) -> None:
        values = dict(values)
        if "mean_loss" in values:
            self.losses.append(values["mean_loss"])
        if self.marks and step >= self.marks[0] and step < self.target:
            while self.marks and step >= self.marks[0]:
                self.marks.pop(0)
            mean = sum(self.losses) / len(self.losses) if self.losses else float("nan")
            self.log(f"{self.label}: step {step}/{self.target}, mean loss {mean:.4f}, "
                     f"{time.time() - self.started:.0f} s")


def progress_bar(target: int, verbose: int, label: str, log: Callable[[str], None]):
    """Keras' bar on a terminal, :class:`LineProgress` otherwise (nothing
    when ``verbose`` is 0)."""
    if verbose and not sys.stdout.isatty():
        return LineProgress(target, label, log)
    return keras.utils.Progbar(target, verbose=verbose, stateful_metrics=["grad_norm"])


class Trainer:
    """Trains a :class:`Separator` built under ``strategy.scope()``.

    Args:
      model: the separator (variables created in the strategy's scope).
      config: the experiment (train section: optimiser, epochs, patience...).
      run_dir: checkpoints, ``model.keras`` + ``config.json`` of the best
        epoch, ``history.json`` and (by default) the TensorBoard logs.
      train_data_fn: ``input_context -> tf.data.Dataset`` of per-replica
        batches ``(mixture, {target: source})``.
      valid_data: a ``tf.data.Dataset`` of global batches, or None.
    """

    def __init__(self, model, config: ExperimentConfig, run_dir: str,
                 strategy: tf.distribute.Strategy, train_data_fn: Callable,
                 valid_data: Optional[tf.data.Dataset], logdir: Optional[str] = None,
                 log: Callable[[str], None] = print, verbose: int = 1):
        self.model = model
        self.config = config
        self.train_cfg = config.train
        self.targets = list(model.targets)
        self.run_dir = run_dir
        self.strategy = strategy
        self.valid_data = valid_data
        self.log = log
        self.verbose = verbose
        self.chief = is_chief(strategy)
        self.global_batch = config.train.batch_size
        replicas = strategy.num_replicas_in_sync
        if self.global_batch % replicas:
            raise TrainingError(f"batch size {self.global_batch} is not divisible by the "
                                f"{replicas} replicas of the {type(strategy).__name__}")
        self.steps_per_epoch = max(1, config.data.examples_per_epoch // self.global_batch)
        # The validation chunk length (the training one is each batch's own).
        self.valid_segment = valid_segment_samples(config.data, model.sample_rate)
        model.backbone.recompute_blocks = bool(config.train.recompute_blocks)
        self.logdir = logdir or os.path.join(run_dir, "logs")
        with strategy.scope():
            schedule = keras.optimizers.schedules.ExponentialDecay(
                config.train.learning_rate,
                decay_steps=config.train.lr_decay_epochs * self.steps_per_epoch,
                decay_rate=config.train.lr_decay, staircase=True)
            optimizer = keras.optimizers.Adam(schedule)
            if config.train.mixed_precision:
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self.optimizer.build(model.trainable_variables)
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False,
                                             name="step_in_epoch")
            self.best_usdr = tf.Variable(-np.inf, dtype=tf.float64, trainable=False,
                                         name="best_usdr")
            self.bad_epochs = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_epochs")
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=self.optimizer, epoch=self.epoch,
            step_in_epoch=self.step_in_epoch, best_usdr=self.best_usdr,
            bad_epochs=self.bad_epochs)
        ckpt_dir = os.path.join(run_dir, "checkpoints")
        if not self.chief:  # other workers write to a scratch directory
            ckpt_dir = os.path.join(tempfile.gettempdir(),
                                    f"bsrnn_tf_worker{worker_index()}_{os.getpid()}")
        self.manager = tf.train.CheckpointManager(self.checkpoint, ckpt_dir,
                                                  max_to_keep=KEEP_CHECKPOINTS)
        # One pass over this dataset is one epoch (a fresh iterator per epoch).
        self.train_data = strategy.distribute_datasets_from_function(train_data_fn)
        self._train_step = tf.function(self._distributed_step, reduce_retracing=True)
        self._valid_step = tf.function(self._valid_batch, reduce_retracing=True)
        self.valid_references = None  # {name: {target: uSDR dB}}, computed once
        self.history = self._load_history()

    # -- steps ---------------------------------------------------------------------
    def _losses(self, mixture, sources, training: bool):
        """Per-example loss per target, each ``(batch,)``, and the estimates
        (as long as ``mixture``)."""
        model = self.model
        length = mixture.shape[1]
        if length is None:
            length = tf.shape(mixture)[1]
        spectrum = model.stft(mixture)
        estimates = model.estimate_spectra(spectrum, training=training)
        losses, waves = {}, {}
        for target in self.targets:
            reference = sources[target]
            waves[target] = model.istft(estimates[target], length)
            losses[target] = target_loss(self.train_cfg.loss, estimates[target],
                                         model.stft(reference), waves[target], reference,
                                         self.train_cfg.sdr_weight)
        return losses, waves

    def _replica_step(self, mixture, sources):
        # Examples with non-finite samples are zeroed and weighted out.
        finite = tf.reduce_all(tf.math.is_finite(mixture), axis=[1, 2])
        for target in self.targets:
            finite &= tf.reduce_all(tf.math.is_finite(sources[target]), axis=[1, 2])
        keep = tf.cast(finite, tf.float32)
        clean = lambda x: tf.where(finite[:, None, None], x, tf.zeros_like(x))  # noqa: E731
        mixture = clean(mixture)
        sources = {t: clean(sources[t]) for t in self.targets}
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            losses, _ = self._losses(mixture, sources, training=True)
            losses = {t: v * keep for t, v in losses.items()}
            per_example = multitask_loss(losses, self.train_cfg.target_weights)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)
            scaled = (self.optimizer.scale_loss(loss) if self.train_cfg.mixed_precision
                      else loss)
        grads = tape.gradient(scaled, variables)
        # Dense gradients (gathered per-band weights give IndexedSlices).
        grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                 for g, v in zip(grads, variables)]
        replicas = self.strategy.num_replicas_in_sync
        if replicas > 1:  # global gradient, so clipping matches one device
            grads = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, grads)
        scale = (tf.cast(self.optimizer.scale_loss(tf.constant(1.0)), tf.float32)
                 if self.train_cfg.mixed_precision else tf.constant(1.0))
        norm = tf.linalg.global_norm(grads) / scale
        if self.train_cfg.clip_norm:
            grads, _ = tf.clip_by_global_norm(grads, self.train_cfg.clip_norm * scale,
                                              use_norm=norm * scale)
        if replicas > 1:  # the optimizer sums over replicas again
            grads = [g / replicas for g in grads]
        self.optimizer.apply_gradients(zip(grads, variables))
        target_losses = {t: tf.nn.compute_average_loss(v, global_batch_size=self.global_batch)
                         for t, v in losses.items()}
        return loss, target_losses, tf.reduce_sum(1 - keep), norm

    def _distributed_step(self, iterator):
        mixture, sources = next(iterator)
        loss, target_losses, skipped, norm = self.strategy.run(
            self._replica_step, args=(mixture, sources))
        total = lambda v: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)  # noqa
        return (total(loss), {t: total(v) for t, v in target_losses.items()}, total(skipped),
                self.strategy.reduce(tf.distribute.ReduceOp.MEAN, norm, axis=None))

    def _valid_batch(self, mixture, sources):
        outputs = self.model(mixture, training=False)
        energies = {t: (tf.reduce_sum(tf.square(sources[t])),
                        tf.reduce_sum(tf.square(sources[t] - outputs[t])))
                    for t in self.targets}
        return energies, outputs

    # -- loop ----------------------------------------------------------------------
    def restore(self) -> bool:
        """Restores the newest readable checkpoint of the run, if any
        (:func:`bsrnn_tf.training.checkpoints.restore_newest_readable`).

        Raises:
          TrainingError: checkpoints that cannot be read, or a trained
            ``model.keras`` without any checkpoint: starting over would
            overwrite it.
        """
        directory = self.manager.directory
        try:
            latest = restore_newest_readable(self.checkpoint, directory, self.log)
        except CheckpointError as e:
            raise TrainingError(str(e)) from None
        if latest is None:
            model_file = os.path.join(self.run_dir, MODEL_FILE)
            if self.chief and os.path.exists(model_file):
                raise TrainingError(
                    f"{self.run_dir} holds a trained {os.path.basename(model_file)} but no "
                    f"checkpoint in {directory} to resume from; starting over would overwrite "
                    f"it: use another --run-dir, or move the folder away")
            return False
        # A manager that reads the state file as restore_newest_readable left it.
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory,
                                                  max_to_keep=KEEP_CHECKPOINTS)
        self._reconcile()
        if int(self.epoch.numpy()) >= self.train_cfg.epochs:
            return True  # a finished run: the caller says so
        self.log(f"resumed from {latest}: epoch {int(self.epoch.numpy()) + 1}, step "
                 f"{int(self.step_in_epoch.numpy())} of {self.steps_per_epoch}, "
                 f"{int(self.optimizer.iterations.numpy())} optimizer steps so far")
        return True

    def fit(self) -> list:
        """Trains until ``epochs``, early stopping or the ``max_minutes`` budget; returns
        the history."""
        cfg = self.train_cfg
        writer = tf.summary.create_file_writer(self.logdir) if self.chief else None
        if writer is not None:
            write_hparams(writer, self.config, self.targets, self.run_dir)
        while int(self.epoch.numpy()) < cfg.epochs:
            if int(self.bad_epochs.numpy()) >= cfg.patience > 0:
                self.log(f"early stopping: no validation improvement for {cfg.patience} epochs")
                break
            if self.out_of_time():
                if self.trained_minutes() >= cfg.max_minutes:
                    self.log(f"time budget reached: {self.trained_minutes():.1f} minutes of "
                             f"training (max_minutes {cfg.max_minutes:g})")
                else:
                    self.log("another worker reached its time budget: stopping with it")
                break
            result = self._run_epoch(writer)
            self.history.append(dataclasses.asdict(result))
            improved = self._end_epoch(result, writer)
            self.log(self._summary_line(result, improved))
        if writer is not None:
            writer.flush()
        return self.history

    def trained_minutes(self) -> float:
        """Minutes of the epochs in the history (their epoch lines' seconds)."""
        return sum(float(h["seconds"]) for h in self.history) / 60.0

    def out_of_time(self) -> bool:
        """Whether the run has used its ``max_minutes`` (never when 0). Workers
        of a cluster time their epochs apart, so they agree: once one of them
        is out of time, all stop after the same epoch."""
        budget = self.train_cfg.max_minutes
        if not budget > 0:
            return False
        out = self.trained_minutes() >= budget
        if cluster_workers() > 1:
            out = float(self._sum_over_replicas(tf.constant(float(out)))) > 0
        return out

    @tf.function
    def _sum_over_replicas(self, value: tf.Tensor) -> tf.Tensor:
        per_replica = self.strategy.run(tf.identity, args=(value,))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def _run_epoch(self, writer) -> EpochResult:
        epoch = int(self.epoch.numpy())
        start_step = int(self.step_in_epoch.numpy())
        # The bar's mean_loss is the mean over this epoch's steps, as on the
        # epoch line; grad_norm is the last step's.
        progbar = progress_bar(self.steps_per_epoch, self.verbose if self.chief else 0,
                               f"epoch {epoch + 1}", self.log)
        learning_rate = self._learning_rate()  # the rate of this epoch's steps
        if start_step:
            progbar.update(start_step)
        started = time.time()
        sums = {t: 0.0 for t in self.targets}
        total, skipped, steps = 0.0, 0, 0
        every = self.train_cfg.checkpoint_every_steps
        iterator = iter(self.train_data)
        for step in range(start_step, self.steps_per_epoch):
            loss, target_losses, bad, norm = self._train_step(iterator)
            loss = float(loss)
            if not math.isfinite(loss):
                raise TrainingError(
                    f"training diverged: non-finite loss ({loss}) at epoch {epoch + 1}, step "
                    f"{step + 1}; the last good checkpoint in {self.manager.directory} is kept "
                    "(lower --lr or check the data)")
            bad = int(bad)
            if bad:
                skipped += bad
                self.log(f"warning: {bad} example(s) with NaN/Inf samples at epoch {epoch + 1},"
                         f" step {step + 1} were left out of the update")
            total += loss
            steps += 1
            for t in self.targets:
                sums[t] += float(target_losses[t])
            self.step_in_epoch.assign(step + 1)
            iteration = int(self.optimizer.iterations.numpy())
            if writer is not None and iteration % 10 == 0:
                with writer.as_default(step=iteration):
                    tf.summary.scalar("train/loss", loss)
                    for t in self.targets:
                        tf.summary.scalar(f"train/loss_{t}", float(target_losses[t]))
                    tf.summary.scalar("train/grad_norm", float(norm))
                    tf.summary.scalar("train/learning_rate", self._learning_rate())
            progbar.update(step + 1, [("mean_loss", loss), ("grad_norm", float(norm))])
            if every and (step + 1) % every == 0 and step + 1 < self.steps_per_epoch:
                self.manager.save(checkpoint_number=self.optimizer.iterations)
        steps = max(steps, 1)
        valid = {}
        if self.valid_data is not None:
            self._status(f"epoch {epoch + 1}: validating ...")
            valid = self.validate(writer, epoch)
        self._status(f"epoch {epoch + 1}: saving the checkpoint"
                     f"{' (and the model if it improved)' if self.chief else ''} ...")
        gain = ({t: v - self.valid_references["scaled_mixture"][t] for t, v in valid.items()}
                if valid else {})
        return EpochResult(epoch + 1, total / steps, {t: v / steps for t, v in sums.items()},
                           valid, gain, time.time() - started, learning_rate, skipped)

    def _status(self, message: str) -> None:
        """A progress note for the slow steps after the bar (not with --quiet)."""
        if self.verbose and self.chief:
            self.log(message)

    def validate(self, writer=None, epoch: int = 0) -> dict:
        """uSDR (dB) per target over the whole validation set: signal and error
        energies summed over all chunks (as one signal per target), so chunks
        where a target is silent do not dominate as a mean of per-chunk dB
        values would. The references of the same chunks are computed on the
        first call (:meth:`reference_usdr`)."""
        signal = {t: 0.0 for t in self.targets}
        error = {t: 0.0 for t in self.targets}
        first = None
        for mixture, sources in self.valid_data:
            energies, outputs = self._valid_step(mixture, sources)
            for t in self.targets:
                signal[t] += float(energies[t][0])
                error[t] += float(energies[t][1])
            if first is None:
                first = (mixture, sources, outputs)
        if first is None:
            return {}
        result = {t: db_ratio(signal[t], error[t]) for t in self.targets}
        if self.valid_references is None:
            self.valid_references = self.reference_usdr()
            self.log("validation references (uSDR, dB): " + "; ".join(
                f"{name.replace('_', ' ')} " + " ".join(f"{t} {v:.2f}" for t, v in values.items())
                for name, values in self.valid_references.items()))
        if writer is not None:
            every = max(1, self.train_cfg.summary_every_epochs)
            scaled = self.valid_references["scaled_mixture"]
            with writer.as_default(step=epoch + 1):
                for t, v in result.items():
                    tf.summary.scalar(f"valid/usdr_{t}", v)
                    tf.summary.scalar(f"valid/gain_{t}", v - scaled[t])
                    for name, values in self.valid_references.items():
                        if t in values:
                            tf.summary.scalar(f"valid_reference/{name}_{t}", values[t])
                if (epoch + 1) % every == 0 or epoch == 0:
                    write_examples(self.model, self.targets, *first)
        return result

    def reference_usdr(self) -> dict:
        """The validation set's references (:func:`bsrnn_tf.training.validation.reference_usdr`)."""
        return reference_usdr(self.model, self.valid_data, self.targets, self.valid_segment)

    def _end_epoch(self, result: EpochResult, writer) -> bool:
        score = mean_over_targets(result.valid_usdr) if result.valid_usdr else -result.train_loss
        improved = score > float(self.best_usdr.numpy())
        if improved:
            self.best_usdr.assign(score)
            self.bad_epochs.assign(0)
        else:
            self.bad_epochs.assign_add(1)
        self.epoch.assign_add(1)
        self.step_in_epoch.assign(0)
        # The order makes a crash between two writes harmless (restore()
        # reconciles): the history first (epochs past the checkpoint are
        # dropped on resume), then the checkpoint, then the model with its
        # score (a checkpoint whose best epoch is newer than model.keras
        # saves the model again on resume).
        if self.chief:
            atomic_write_text(os.path.join(self.run_dir, "history.json"),
                              json.dumps(self.history, indent=2) + "\n")
        self.manager.save(checkpoint_number=self.optimizer.iterations)
        if improved and self.chief:
            self._save_best(result.epoch, score)
        if writer is not None:
            with writer.as_default(step=result.epoch):
                tf.summary.scalar("epoch/train_loss", result.train_loss)
                tf.summary.scalar("epoch/seconds", result.seconds)
            writer.flush()
        return improved

    def _save_best(self, epoch: int, score: float) -> None:
        """``model.keras`` + ``config.json``, then ``best.json`` naming the
        epoch and score they are of."""
        save_separator(self.model, self.run_dir, self.config)
        atomic_write_text(os.path.join(self.run_dir, BEST_FILE),
                          json.dumps({"epoch": int(epoch), "score": float(score)}) + "\n")

    def read_best(self) -> Optional[dict]:
        """``best.json`` as ``{"epoch", "score"}``; ``{"epoch": 0, "score": -inf}``
        without a model; None for a model of a run from before best.json (or
        an unreadable one): nothing is known about it."""
        path = os.path.join(self.run_dir, BEST_FILE)
        if not os.path.exists(os.path.join(self.run_dir, MODEL_FILE)):
            return {"epoch": 0, "score": -math.inf}
        try:
            with open(path) as f:
                data = json.load(f)
            return {"epoch": int(data["epoch"]), "score": float(data["score"])}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _reconcile(self) -> None:
        """Makes ``history.json`` and ``model.keras`` agree with the restored
        checkpoint after a crash between their writes, or a fallback past an
        unreadable checkpoint: no epoch twice in the history, and the best
        model is never replaced by a worse one."""
        done = int(self.epoch.numpy())
        later = [h.get("epoch") for h in self.history if h.get("epoch", 0) > done]
        if later:
            self.history = [h for h in self.history if h.get("epoch", 0) <= done]
            self.log(f"warning: history.json has epoch(s) {', '.join(map(str, later))} past the "
                     f"checkpoint (epoch {done}): they are trained again and recorded once")
        saved = self.read_best() if self.chief else None
        if saved is None:
            return
        best = float(self.best_usdr.numpy())
        if saved["score"] > best:
            self.best_usdr.assign(saved["score"])
            self.log(f"warning: {MODEL_FILE} (epoch {saved['epoch']}, score "
                     f"{saved['score']:.2f}) is newer than the checkpoint restored (epoch "
                     f"{done}): it is kept, and only a better epoch replaces it")
        elif best > saved["score"]:
            if (done > saved["epoch"] and int(self.step_in_epoch.numpy()) == 0
                    and int(self.bad_epochs.numpy()) == 0):  # these weights are the best
                self._save_best(done, best)
                self.log(f"warning: {MODEL_FILE} was older than the checkpoint's best epoch "
                         f"{done} (stopped between the two writes?): saved again from the "
                         f"checkpoint")
            else:
                self.log(f"warning: the checkpoint records a best score of {best:.2f} but "
                         f"{MODEL_FILE} is of epoch {saved['epoch']} ({saved['score']:.2f}), "
                         f"and the best weights are not in the checkpoint: {MODEL_FILE} is kept")

    # -- helpers -------------------------------------------------------------------
    def _learning_rate(self) -> float:
        optimizer = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        lr = optimizer.learning_rate
        return float(lr.numpy() if hasattr(lr, "numpy") else lr)

    def _summary_line(self, r: EpochResult, improved: bool) -> str:
        gain = " ".join(f"{t} {v:+.2f}" for t, v in r.valid_gain.items()) or "-"
        mean_gain = mean_over_targets(r.valid_gain)
        mean = mean_over_targets(r.valid_usdr)
        return (f"epoch {r.epoch}/{self.train_cfg.epochs}: mean loss {r.train_loss:.4f}  "
                f"valid gain over the best-scaled mixture {gain} (mean over targets "
                f"{mean_gain:+.2f} dB; uSDR mean {mean:.2f} dB){' *best' if improved else ''}  "
                f"lr {r.learning_rate:.2e}  {r.seconds:.0f} s")

    def _load_history(self) -> list:
        """The run's ``history.json``; an unreadable one is moved aside with
        a warning (the checkpoints, not the history, hold the run's state)."""
        path = os.path.join(self.run_dir, "history.json")
        if not os.path.exists(path):
            return []
        try:
            with open(path) as f:
                history = json.load(f)
            if isinstance(history, list) and all(isinstance(h, dict) for h in history):
                return history
            problem = f"a {type(history).__name__}, not a list of epochs"
        except (OSError, ValueError) as e:
            problem = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        aside = path + ".unreadable"
        if self.chief:
            os.replace(path, aside)
        self.log(f"warning: {path} cannot be read ({problem}); moved to {aside}: the history "
                 f"goes on from the next epoch without the earlier ones")
        return []


__all__ = ["EpochResult", "Trainer", "TrainingError", "mean_over_targets"]
