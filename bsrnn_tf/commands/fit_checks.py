"""Checks ``bsrnn-tf fit`` (``training/fit.py``) makes before it trains, and
the one-line messages of the errors a user can act on."""

from __future__ import annotations

import math
import os
import sys
from typing import Optional

from bsrnn_tf.config import ConfigError, ExperimentConfig


def one_line_error(error: Exception) -> Optional[str]:
    """The message of an error a user can act on; None for a bug."""
    from bsrnn_tf.datasets.synth import GenerationError
    from bsrnn_tf.data.musdb import DataError
    from bsrnn_tf.models import ModelLoadError
    from bsrnn_tf.training.trainer import TrainingError
    if isinstance(error, (ConfigError, DataError, GenerationError, ModelLoadError,
                          TrainingError)):
        return str(error)
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror}{write_advice(error.errno)}"
    return None


def write_advice(errno: Optional[int]) -> str:
    """What to do about a failed write, by its errno."""
    import errno as codes
    return {codes.ENOSPC: " (the disk is full: free space, then rerun)",
            codes.EFBIG: " (a file-size limit, ulimit -f, or the file system's: raise it, "
                         "then rerun)",
            codes.EROFS: " (a read-only file system: give another --run-dir)",
            codes.EACCES: " (no permission: give another --run-dir)"}.get(errno, "")


def check_run_dir(run_dir: str) -> None:
    """Refuses a --run-dir that cannot hold a run, before any work: a file,
    or a folder (or its nearest existing parent) that cannot be written."""
    existing = os.path.abspath(run_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError(f"--run-dir {run_dir}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--run-dir {run_dir}: {existing} is not writable; give another "
                          f"--run-dir")

def check_target_activity(config: ExperimentConfig, tracks) -> None:
    """Source-activity detection would reject every chunk of a target that
    is silent in every track: say so now, not after thousands of draws."""
    from bsrnn_tf.data.musdb import DataError
    d = config.data
    if not d.source_activity or not tracks:
        return
    for target in config.model.targets:
        if all(t.rms_db(target) < d.activity_floor_db for t in tracks):
            raise DataError(f"target {target!r} is silent (RMS below data.activity_floor_db, "
                            f"{d.activity_floor_db:g} dB) in every training track: source-"
                            f"activity detection would reject every chunk; train another "
                            f"target, or use --no-activity-detection")


def _chunk_lengths(config: ExperimentConfig) -> list:
    """``[(what, flag, seconds, samples)]`` of the training and the
    validation chunk; the flag is the one that set the length."""
    from bsrnn_tf.data import pipeline
    d, rate = config.data, config.model.stft.sample_rate
    valid_flag = "--segment-seconds" if d.valid_segment_seconds is None else (
        "--valid-segment-seconds")
    return [("training", "--segment-seconds", d.segment_seconds,
             pipeline.segment_samples(d, rate)),
            ("validation", valid_flag, pipeline.valid_segment_seconds(d),
             pipeline.valid_segment_samples(d, rate))]


def check_segment_length(config: ExperimentConfig) -> None:
    """A training or validation chunk shorter than the STFT window has no
    frame to learn from or to score (``--segment-seconds 0.001`` trained on
    44-sample chunks)."""
    stft = config.model.stft
    for what, flag, seconds, samples in _chunk_lengths(config):
        if samples < stft.n_fft:
            raise ConfigError(f"{flag} {seconds:g}: the {what} chunk is {samples} samples, "
                              f"shorter than the model's STFT window (n_fft {stft.n_fft} = "
                              f"{stft.n_fft / stft.sample_rate:.3f} s); give at least that")


def check_target_names(config: ExperimentConfig) -> None:
    """A target that cannot name a stem file is a config error."""
    from bsrnn_tf.data.musdb import source_set
    try:
        source_set(config.model.targets)
    except ValueError as e:
        raise ConfigError(f"--targets: {e}") from None


def check_segment_fits(config: ExperimentConfig, tracks, valid_tracks=()) -> None:
    """A chunk longer than every track can never be drawn (training: say so
    now, not after minutes of rejected draws), and a validation chunk longer
    than every validation track would be scored on padding."""
    from bsrnn_tf.data.musdb import DataError
    rate = config.model.stft.sample_rate
    for (what, flag, seconds, samples), group in zip(_chunk_lengths(config),
                                                     (tracks, valid_tracks)):
        longest = max((t.num_samples for t in group), default=0)
        if group and samples > longest:
            raise DataError(f"{flag} {seconds:g} is longer than every {what} track (the "
                            f"longest is {longest / rate:.2f} s); give at most "
                            f"{math.floor(longest / rate * 100) / 100:g}")


def load_train_valid(config: ExperimentConfig, prog: str = "fit.py") -> tuple:
    """``(train, valid)`` tracks; a validation split without usable tracks
    (a bad track that was the only one) means training without validation.
    ``prog`` names the command in the warning."""
    from bsrnn_tf.data.musdb import DataError, load_tracks, resolve_root, source_set
    from bsrnn_tf.training.trainer_setup import load_tracks_for
    try:
        train, valid = load_tracks_for(config)
    except DataError as e:
        root, _ = resolve_root(config.data.musdb_root, config.data.builtin_dataset)
        train = load_tracks(root, subset="train", split="train", is_wav=config.data.is_wav,
                            targets=source_set(config.model.targets))
        print(f"{prog}: warning: {e}; {NO_VALIDATION}", file=sys.stderr)
        return train, []
    if not valid:
        print(f"{prog}: warning: the dataset has no validation tracks with a "
              f"{' and '.join(config.model.targets)} stem (a root with too few training tracks "
              f"for a validation split?); {NO_VALIDATION}", file=sys.stderr)
    return train, valid


NO_VALIDATION = ("training without validation (early stopping and the best model follow the "
                 "training loss)")

def write_failure(error: Exception) -> Optional[str]:
    """The message of a TensorFlow file write that failed for a reason a
    user can act on (disk full, file-size limit, read-only, permission)."""
    import errno as codes
    text = getattr(error, "message", str(error))
    for words, errno in [("No space left", codes.ENOSPC), ("File too large", codes.EFBIG),
                         ("Read-only file system", codes.EROFS),
                         ("Permission denied", codes.EACCES)]:
        if words in text:
            return text.strip().splitlines()[0][:200] + write_advice(errno)
    return None


def assert_message(error: Exception) -> str:
    """The message of a ``tf.debugging.assert_*`` inside the input pipeline
    (between the first brackets), else the error's first line."""
    text = getattr(error, "message", str(error))
    start = text.find("[")
    end = text.find("]", start)
    return text[start + 1:end] if 0 <= start < end else text.strip().splitlines()[0]
