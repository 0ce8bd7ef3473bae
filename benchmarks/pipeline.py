"""Examples per second the training pipeline delivers on this machine,
against the examples per second a training step of a preset consumes.

Stereo chunks at 44.1 kHz (the preset's training chunk length, 3 s without
one) with every augmentation on (remix, +-10 dB gain, channel swap, target
silencing p = 0.1, source-activity detection), for a few configurations: one
target or four, decoded audio in memory or read from disk per chunk, remix
or not. Each row reports wall-clock examples/s and the process CPU time per
example (steadier than wall time when other work shares the cores). The
training step is the preset's (``--preset``, default ``cpu``) with four
targets (multi-task) at its batch size.

    python benchmarks/pipeline.py                      # built-in dataset, cpu preset
    python benchmarks/pipeline.py --preset small --batch-size 2
    python benchmarks/pipeline.py --musdb-root PATH --seconds 20

Prints a table and writes ``benchmarks/results/pipeline.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))

from bsrnn_tf.config import DataConfig  # noqa: E402

RESULTS = os.path.join(HERE, "results", "pipeline.json")

# name -> (targets, DataConfig overrides)
CONFIGS = {
    "vocals, in memory": (["vocals"], {}),
    "4 targets, in memory": (["drums", "bass", "other", "vocals"], {}),
    "vocals, from disk": (["vocals"], {"cache_budget_mb": 0}),
    "vocals, in memory, no remix": (["vocals"], {"remix": False}),
}


def count_examples_per_second(ds, seconds: float, warmup_batches: int = 3) -> dict:
    """Iterates ``ds`` (repeated) for ``seconds`` after ``warmup_batches``;
    returns examples/s, CPU ms per example (all threads of this process),
    and the counts."""
    iterator = iter(ds.repeat())
    for _ in range(warmup_batches):
        next(iterator)
    examples, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        mixture, _ = next(iterator)
        examples += int(mixture.shape[0])
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"examples_per_second": examples / wall, "cpu_ms_per_example": 1e3 * cpu / examples,
            "examples": examples, "wall_s": wall}


def measure_pipeline(tracks, targets=("vocals",), batch_size: int = 4, seconds: float = 10.0,
                     data_cfg: DataConfig | None = None, seed: int = 0) -> dict:
    """Examples/s that ``train_dataset`` delivers for ``tracks`` (3 s chunks,
    all augmentations on unless ``data_cfg`` says otherwise). Tracks that
    fit the cache budget are decoded before timing starts."""
    from bsrnn_tf.data.pipeline import fits_in_memory, train_dataset
    cfg = data_cfg or DataConfig()
    cfg = dataclasses.replace(cfg, examples_per_epoch=max(cfg.examples_per_epoch, 64 * batch_size))
    if fits_in_memory(tracks, cfg.cache_budget_mb):
        for track in tracks:
            track.load()
    ds = train_dataset(tracks, list(targets), cfg, batch_size, seed=seed)
    result = count_examples_per_second(ds, seconds)
    result.update(batch_size=batch_size, targets=list(targets),
                  segment_seconds=cfg.segment_seconds)
    return result


def training_consumption(name: str, batch_size: int, segment_seconds: float,
                         repeats: int) -> dict:
    """Examples/s one multi-task training step (four targets) of preset
    ``name`` consumes at ``batch_size`` and ``segment_seconds``, measured in
    this run."""
    import numpy as np

    from bsrnn_tf.models import build_separator, preset
    from model import train_step_seconds
    model = build_separator(preset(name), targets=["drums", "bass", "other", "vocals"])
    samples = int(round(segment_seconds * 44100))
    mixture = (np.random.default_rng(0).standard_normal((batch_size, samples, 2)) * 0.1).astype(
        np.float32)
    seconds = train_step_seconds(model, mixture, repeats)
    return {"preset": name, "targets": 4, "batch_size": batch_size,
            "segment_seconds": segment_seconds, "train_step_s": seconds,
            "examples_per_second": batch_size / seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--musdb-root", help="dataset (default: $MUSDB_PATH or built-in)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per row")
    parser.add_argument("--preset", default="cpu", help="preset whose training step is timed "
                                                        "(default cpu)")
    parser.add_argument("--batch-size", type=int,
                        help="default: the preset's training batch (4 without one)")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--out", default=RESULTS)
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    args = parser.parse_args(argv)

    import tensorflow as tf
    from bsrnn_tf.data.musdb import load_tracks, resolve_root
    from bsrnn_tf.models.presets import PRESET_TRAINING
    training = PRESET_TRAINING.get(args.preset, {})
    batch = args.batch_size or training.get("train", {}).get("batch_size", 4)
    segment = training.get("data", {}).get("segment_seconds", DataConfig().segment_seconds)
    root, builtin = resolve_root(args.musdb_root)
    rows = []
    for name in args.configs:
        targets, overrides = CONFIGS[name]
        tracks = load_tracks(root, "train", split="train")  # fresh: nothing decoded
        cfg = dataclasses.replace(DataConfig(segment_seconds=segment), **overrides)
        result = measure_pipeline(tracks, targets, batch, args.seconds, cfg)
        rows.append({"config": name, **result})
        print(f"{name:32s} {result['examples_per_second']:8.1f} ex/s "
              f"{result['cpu_ms_per_example']:7.2f} CPU ms/ex", flush=True)

    step = training_consumption(args.preset, batch, segment, args.steps)
    print(f"\nmulti-task training step of the {args.preset} preset at batch {batch}, "
          f"{segment:g} s chunks: "
          f"{step['train_step_s']:.2f} s = {step['examples_per_second']:.1f} examples/s consumed")
    print(f"\n| configuration | examples/s | CPU ms/example | x training demand |\n"
          f"|---|---:|---:|---:|")
    for r in rows:
        r["ratio_to_training"] = r["examples_per_second"] / step["examples_per_second"]
        print(f"| {r['config']} | {r['examples_per_second']:.0f} | "
              f"{r['cpu_ms_per_example']:.2f} | {r['ratio_to_training']:.0f}x |")
    report = {
        "what": f"training examples/s of bsrnn_tf.data.pipeline.train_dataset, {segment:g} s "
                "stereo chunks, all augmentations on",
        "dataset": f"built-in ({root})" if builtin else root,
        "tracks": len(load_tracks(root, "train", split="train")),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "tensorflow": tf.__version__},
        "command": "python benchmarks/pipeline.py " + " ".join(argv or sys.argv[1:]),
        "rows": rows,
        "training": step,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from bsrnn_tf.console import quiet_tensorflow

    quiet_tensorflow("3")  # TensorFlow's start-up notices filtered from stderr
    sys.exit(main())
