"""Runs a few Trainer steps on a deterministic synthetic dataset and saves the
final weights; used by the distribution tests as a separate process.

usage: trainer_run.py OUT.npz RUN_DIR [--cpu-devices N] [--steps S] [--clip C]
                      [--epochs E] [--max-minutes M]
TF_CONFIG selects MultiWorkerMirroredStrategy.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SEGMENT = 8192
TARGETS = ("drums", "bass")


def examples(start: int):
    """Example i is a fixed function of i, so any split of a global batch
    over replicas sees the same global batch."""
    import numpy as np
    i = start
    while True:
        rng = np.random.default_rng(i)
        drums = (rng.standard_normal((SEGMENT, 2)) * 0.1).astype(np.float32)
        bass = (np.sin(np.arange(SEGMENT) * 0.01 * (1 + i % 5))[:, None]
                * np.array([0.3, 0.2])).astype(np.float32)
        yield drums + bass, {"drums": drums, "bass": bass}
        i += 1


def data_fn(global_batch: int):
    import tensorflow as tf
    spec = tf.TensorSpec((SEGMENT, 2), tf.float32)

    def fn(context):
        per_replica = context.get_per_replica_batch_size(global_batch)
        # Pipeline p of n serves examples p, p+n, ... in global-batch order.
        n, p = context.num_input_pipelines, context.input_pipeline_id
        ds = tf.data.Dataset.from_generator(lambda: examples(0),
                                            output_signature=(spec, {t: spec for t in TARGETS}))
        ds = ds.shard(n, p) if n > 1 else ds
        return ds.batch(per_replica, drop_remainder=True)
    return fn


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("run_dir")
    parser.add_argument("--cpu-devices", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--clip", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-minutes", type=float, default=0.0)
    args = parser.parse_args()

    from bsrnn_tf.training.distribute import make_strategy
    strategy = make_strategy(args.cpu_devices)
    import keras
    import numpy as np

    from bsrnn_tf.config import ExperimentConfig
    from bsrnn_tf.models import build_separator, preset
    from bsrnn_tf.training.trainer import Trainer
    from bsrnn_tf.training.trainer_setup import cleanup_worker_dir

    keras.utils.set_random_seed(0)
    config = ExperimentConfig(preset="tiny", model=preset("tiny"))
    config.model.targets = list(TARGETS)
    config.data.segment_seconds = SEGMENT / 44100
    config.data.examples_per_epoch = 2 * args.steps
    config.train.batch_size = 2
    config.train.epochs = args.epochs
    config.train.max_minutes = args.max_minutes
    config.train.clip_norm = args.clip
    with strategy.scope():
        model = build_separator(config.model)
    trainer = Trainer(model, config, args.run_dir, strategy, data_fn(2), None, verbose=0)
    trainer.fit()
    cleanup_worker_dir(trainer)
    np.savez(args.out, *[np.asarray(v.numpy()) for v in model.weights],
             iterations=int(trainer.optimizer.iterations.numpy()))


if __name__ == "__main__":
    main()
