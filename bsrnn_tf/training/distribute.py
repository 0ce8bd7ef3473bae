"""Choosing a ``tf.distribute`` strategy.

- ``TF_CONFIG`` naming a cluster with more than one worker:
  ``MultiWorkerMirroredStrategy`` (must be created before any other TF op).
- several visible GPUs, or ``cpu_devices > 1`` (tests, CPU-only machines):
  ``MirroredStrategy`` over them.
- otherwise the default strategy (one device).

:func:`set_threads` sizes TensorFlow's thread pools (``--threads``): two
training runs side by side on a 2-core machine train 1.19x faster in all
with one thread each than with the default pools, which each size
themselves to every core (``benchmarks/parallel_runs.py``).
"""

from __future__ import annotations

import json
import os
from typing import Optional

import tensorflow as tf

from bsrnn_tf.config import ConfigError


def cluster_workers() -> int:
    """Number of workers named by ``TF_CONFIG`` (0 when unset)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from None
    cluster = spec.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def set_threads(threads: Optional[int]) -> None:
    """``threads`` intra-op and inter-op threads for this process (None: the
    default, every core). Must come before TensorFlow runs its first op;
    afterwards only the value already in effect is accepted."""
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        current = (tf.config.threading.get_intra_op_parallelism_threads(),
                   tf.config.threading.get_inter_op_parallelism_threads())
        if current != (threads, threads):
            raise ConfigError(f"--threads {threads}: TensorFlow has already started in this "
                             f"process with other thread pools") from None


def make_strategy(cpu_devices: int = 1) -> tf.distribute.Strategy:
    """The strategy for this process (see module docstring)."""
    if cluster_workers() > 1:
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    if cpu_devices > 1 and not gpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
        except RuntimeError:
            pass  # already configured in this process
        devices = [d.name for d in tf.config.list_logical_devices("CPU")][:cpu_devices]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()


def is_chief(strategy: Optional[tf.distribute.Strategy] = None) -> bool:
    """True for the process that writes checkpoints, models and logs."""
    raw = os.environ.get("TF_CONFIG")
    if not raw or cluster_workers() <= 1:
        return True
    task = json.loads(raw).get("task", {})
    return task.get("type") == "chief" or (task.get("type") == "worker"
                                           and int(task.get("index", 0)) == 0
                                           and "chief" not in json.loads(raw)["cluster"])


def worker_index() -> int:
    raw = os.environ.get("TF_CONFIG")
    if not raw or cluster_workers() <= 1:
        return 0
    return int(json.loads(raw).get("task", {}).get("index", 0))
