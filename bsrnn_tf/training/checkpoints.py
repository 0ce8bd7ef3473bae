"""Resuming from the newest checkpoint that can actually be read.

``tf.train.CheckpointManager`` trusts the ``checkpoint`` state file: when it
is missing or unparsable the run looks new, and when the newest ``ckpt-N``
is truncated or lost its ``.index`` restoring raises from deep inside
TensorFlow. Here every ``ckpt-N`` in the folder is a candidate, newest first;
unreadable ones are moved to ``unreadable/`` (kept for inspection, out of the
manager's way) and the state file is rewritten to list the readable ones, so
the manager never deletes an intact checkpoint to make room while a broken
one is counted as the newest.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Callable, List, Optional

import tensorflow as tf

_CKPT_FILE = re.compile(r"^(ckpt-(\d+))\.(index|data-\d+-of-\d+)$")
UNREADABLE_DIR = "unreadable"
KEEP_CHECKPOINTS = 2  # ckpt-N files a run keeps


class CheckpointError(RuntimeError):
    """No checkpoint of a run can be read; the message names them and why."""


def checkpoint_prefixes(directory: str) -> List[str]:
    """Paths (without extension) of the ``ckpt-N`` files in ``directory``,
    oldest (smallest N) first, whether or not they are complete."""
    if not os.path.isdir(directory):
        return []
    numbers = {}
    for name in os.listdir(directory):
        match = _CKPT_FILE.match(name)
        if match:
            numbers[match.group(1)] = int(match.group(2))
    return [os.path.join(directory, p) for p in sorted(numbers, key=numbers.get)]


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, tf.errors.NotFoundError) or "not found" in text.lower():
        return "missing file"
    if isinstance(error, (IndexError, tf.errors.DataLossError)) or "less bytes" in text:
        return "truncated or corrupt data"
    return f"{type(error).__name__}: {text[:160]}"


def _set_aside(prefix: str) -> None:
    """Moves the files of ``prefix`` into ``unreadable/`` next to it."""
    directory, stem = os.path.split(prefix)
    target = os.path.join(directory, UNREADABLE_DIR)
    os.makedirs(target, exist_ok=True)
    for name in os.listdir(directory):
        if name.startswith(stem + "."):
            shutil.move(os.path.join(directory, name), os.path.join(target, name))


def restore_newest_readable(checkpoint: tf.train.Checkpoint, directory: str,
                            log: Callable[[str], None] = print) -> Optional[str]:
    """Restores ``checkpoint`` from the newest readable ``ckpt-N`` in
    ``directory`` and returns its prefix; None when there is none at all.

    Raises:
      CheckpointError: there are checkpoints, but none can be read (nothing
        is moved or deleted then).
    """
    prefixes = checkpoint_prefixes(directory)
    failed = []
    for prefix in reversed(prefixes):
        try:
            checkpoint.restore(prefix).assert_existing_objects_matched()
        except (tf.errors.OpError, IndexError, ValueError, AssertionError) as e:
            failed.append((prefix, _reason(e)))
            continue
        _after_restore(directory, prefix, prefixes, failed, log)
        return prefix
    if failed:
        details = "; ".join(f"{os.path.basename(p)}: {r}" for p, r in failed)
        raise CheckpointError(f"{directory}: no checkpoint can be read ({details}); nothing "
                              f"was changed: move the folder away to start the run over")
    return None


def _after_restore(directory: str, restored: str, prefixes: List[str], failed: list,
                   log: Callable[[str], None]) -> None:
    for prefix, reason in failed:
        _set_aside(prefix)
        log(f"warning: {prefix} cannot be read ({reason}); moved to "
            f"{os.path.join(directory, UNREADABLE_DIR)}, resuming from the older "
            f"{os.path.basename(restored)}")
    state = tf.train.get_checkpoint_state(directory)
    if not failed and state is not None and state.model_checkpoint_path and \
            os.path.basename(state.model_checkpoint_path) == os.path.basename(restored):
        return
    if not failed:
        log(f"warning: {os.path.join(directory, 'checkpoint')} is missing or unreadable; "
            f"resuming from the newest checkpoint file, {os.path.basename(restored)}")
    kept = [p for p in prefixes if p not in dict(failed)]
    # With their times listed, the manager sweeps them like its own (oldest
    # first, only once newer ones are saved); without, it would keep them all.
    times = [_mtime(p) for p in kept]
    update = update_checkpoint_state_function()
    if update is None:
        log(f"warning: this TensorFlow ({tf.__version__}) has no "
            f"tf.compat.v1.train.update_checkpoint_state; "
            f"{os.path.join(directory, 'checkpoint')} still lists the checkpoints as before "
            f"(the older ones are not swept until the run saves new ones)")
        return
    update(directory, restored, all_model_checkpoint_paths=kept,
           all_model_checkpoint_timestamps=times, last_preserved_timestamp=min(times) - 1.0)


def update_checkpoint_state_function():
    """``tf.compat.v1.train.update_checkpoint_state`` (TF 2 has no other way
    to write the ``checkpoint`` index with its timestamps), or None if a
    TensorFlow dropped it (tests/test_private_apis.py fails then)."""
    compat = getattr(getattr(getattr(tf, "compat", None), "v1", None), "train", None)
    return getattr(compat, "update_checkpoint_state", None)


def _mtime(prefix: str) -> float:
    directory, stem = os.path.split(prefix)
    return max(os.path.getmtime(os.path.join(directory, name)) for name in os.listdir(directory)
               if name.startswith(stem + "."))


__all__ = ["KEEP_CHECKPOINTS", "CheckpointError", "checkpoint_prefixes", "restore_newest_readable"]
