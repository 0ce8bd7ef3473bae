"""Where production effects should live: rendered into the dataset, or
applied on the fly in the tf.data pipeline? Measured on this machine.

Three figures, one run:

1. the training pipeline (``train_dataset``, four targets, the preset's
   chunk length and batch) as it is: examples/s and CPU ms per example;
2. the same pipeline with every source of every example run through a
   freshly drawn effect chain (:func:`bsrnn_tf.datasets.production.
   draw_chain` / ``apply_chain`` in ``tf.numpy_function``) and the mixture
   summed again; ``--preroll`` seconds of audio in front of each chunk are
   processed too (what a reverb or echo tail and a compressor's state
   need; without it each chunk starts dry);
3. rendering: the seconds of CPU that producing the four stems of a 30 s
   song costs once, when the dataset is written;

against the examples/s a multi-task training step of the preset consumes.

    python benchmarks/production.py --musdb-root DATASET       # a sampled dataset
    python benchmarks/production.py --musdb-root DATASET --preroll 0

Prints a table and writes ``benchmarks/results/production.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))

import numpy as np  # noqa: E402

from bsrnn_tf.config import DataConfig  # noqa: E402
from bsrnn_tf.data.track import SOURCES  # noqa: E402

RESULTS = os.path.join(HERE, "results", "production.json")
SR = 44100


def produce_batch(sources: np.ndarray, seed: int, preroll: int) -> np.ndarray:
    """``(batch, 4, samples, 2)`` float32 with each source of each example
    through its own chain (tempo drawn 60-180 bpm); ``preroll`` samples of
    (here: mirrored) audio precede each chunk and are cut afterwards."""
    from bsrnn_tf.datasets.production import apply_chain, draw_chain
    rng = np.random.default_rng(int(seed))
    out = np.empty_like(sources)
    for b in range(sources.shape[0]):
        tempo = rng.uniform(60, 180)
        for s, name in enumerate(SOURCES):
            chunk = sources[b, s]
            x = np.concatenate([chunk[:preroll][::-1], chunk]) if preroll else chunk
            out[b, s] = apply_chain(x, draw_chain(rng, name, tempo), SR)[preroll:]
    return out


def with_production(ds, preroll_seconds: float):
    """``ds`` of ``(mixture, {target: source})`` with all four targets, the
    sources produced on the fly and the mixture summed again."""
    import tensorflow as tf
    preroll = int(preroll_seconds * SR)
    counter = tf.data.Dataset.counter()

    def produce(element, seed):
        _, targets = element
        stack = tf.stack([targets[s] for s in SOURCES], axis=1)
        produced = tf.numpy_function(lambda a, k: produce_batch(a, k, preroll), [stack, seed],
                                     tf.float32, name="produce_batch")
        produced = tf.ensure_shape(produced, stack.shape)
        return tf.reduce_sum(produced, axis=1), {s: produced[:, i] for i, s in
                                                 enumerate(SOURCES)}

    return tf.data.Dataset.zip((ds, counter)).map(produce, num_parallel_calls=tf.data.AUTOTUNE)


def render_cost(tracks, songs: int) -> dict:
    """CPU seconds to produce the four stems of a song when it is rendered
    (the chains of a produced dataset), per 30 s of audio."""
    from bsrnn_tf.datasets.production import apply_chain, draw_chain
    rng = np.random.default_rng(0)
    per_song = []
    for track in tracks[:songs]:
        stems = {s: track.read(s, 0, track.num_samples) for s in SOURCES}
        start = time.process_time()
        for name, audio in stems.items():
            apply_chain(audio, draw_chain(rng, name, 120.0), SR)
        per_song.append((time.process_time() - start) * 30.0 * SR / track.num_samples)
    return {"songs": len(per_song), "cpu_s_per_30s_song": float(np.mean(per_song))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--musdb-root", help="dataset (default: $MUSDB_PATH or built-in)")
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per row")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--preroll", type=float, default=1.0, metavar="SECONDS")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--songs", type=int, default=4, help="songs timed for rendering")
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args(argv)

    import tensorflow as tf
    from pipeline import count_examples_per_second, training_consumption

    from bsrnn_tf.data.musdb import load_tracks, resolve_root
    from bsrnn_tf.data.pipeline import train_dataset
    from bsrnn_tf.models.presets import PRESET_TRAINING
    training = PRESET_TRAINING.get(args.preset, {})
    batch = training.get("train", {}).get("batch_size", 4)
    segment = training.get("data", {}).get("segment_seconds", DataConfig().segment_seconds)
    root, _ = resolve_root(args.musdb_root)
    tracks = load_tracks(root, "train", split=None)
    for track in tracks:
        track.load()
    cfg = DataConfig(segment_seconds=segment, examples_per_epoch=256 * batch)
    rows = {}
    for name, preroll in (("as it is", None), (f"on the fly, {args.preroll:g} s pre-roll",
                                               args.preroll)):
        ds = train_dataset(tracks, list(SOURCES), cfg, batch, seed=0)
        if preroll is not None:
            ds = with_production(ds, preroll)
        rows[name] = count_examples_per_second(ds, args.seconds)
        print(f"{name:34s} {rows[name]['examples_per_second']:7.1f} ex/s "
              f"{rows[name]['cpu_ms_per_example']:8.1f} CPU ms/ex", flush=True)
    rendered = render_cost(tracks, args.songs)
    step = training_consumption(args.preset, batch, segment, args.steps)
    demand = step["examples_per_second"]
    base, fly = rows["as it is"], rows[f"on the fly, {args.preroll:g} s pre-roll"]
    extra_ms = fly["cpu_ms_per_example"] - base["cpu_ms_per_example"]
    print(f"\ntraining step ({args.preset}, batch {batch}, {segment:g} s): "
          f"{step['train_step_s']:.2f} s = {demand:.1f} examples/s consumed")
    print(f"on the fly: +{extra_ms:.0f} CPU ms per example = "
          f"{extra_ms * demand / 10:.0f} % of one core while training at that pace")
    print(f"rendered: {rendered['cpu_s_per_30s_song']:.2f} CPU s per 30 s song, once")
    report = {"dataset": root, "tracks": len(tracks), "preset": args.preset, "batch": batch,
              "segment_seconds": segment, "preroll_seconds": args.preroll, "pipeline": rows,
              "on_the_fly_extra_cpu_ms_per_example": extra_ms, "rendered": rendered,
              "training": step,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "tensorflow": tf.__version__},
              "command": "python benchmarks/production.py " + " ".join(argv or sys.argv[1:])}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    from bsrnn_tf.fileio import atomic_write_text
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from bsrnn_tf.console import quiet_tensorflow

    quiet_tensorflow("3")  # TensorFlow's start-up notices filtered from stderr
    sys.exit(main())
