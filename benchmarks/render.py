"""CPU seconds to render one song of the sampled dataset, plain and with each
lever of :mod:`bsrnn_tf.datasets.produced` (this process and its
FluidSynth / espeak-ng children; wall time depends on what else runs).

    python benchmarks/render.py                    # 3 songs of 30 s per setting
    python benchmarks/render.py --songs 2 --seconds 10

Prints a table and writes ``benchmarks/results/render.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

RESULTS = os.path.join(HERE, "results", "render.json")


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def settings() -> dict:
    from bsrnn_tf.datasets.produced import (MORE_TRAIN_SOUNDFONTS, PRODUCED_RECIPE,
                                            PRODUCED_TEST_RECIPE, Recipe)
    from bsrnn_tf.datasets.sampled import TEST_SOUNDFONTS, TRAIN_SOUNDFONTS
    return {"plain": (None, TRAIN_SOUNDFONTS, "train"),
            "production": (Recipe(production=1.0), TRAIN_SOUNDFONTS, "train"),
            "recorded kits": (Recipe(recorded_kits=1.0), TRAIN_SOUNDFONTS, "train"),
            "sung vocals": (Recipe(sung_vocals=1.0), TRAIN_SOUNDFONTS, "train"),
            "more timbres": (Recipe(more_timbres=True), MORE_TRAIN_SOUNDFONTS, "train"),
            "all (train recipe)": (PRODUCED_RECIPE, MORE_TRAIN_SOUNDFONTS, "train"),
            "produced test split": (PRODUCED_TEST_RECIPE, TEST_SOUNDFONTS, "test")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args(argv)

    from bsrnn_tf.datasets.fluidsynth import resolve_soundfont
    from bsrnn_tf.datasets.produced import for_subset
    from bsrnn_tf.datasets.sampled import render_song
    rows = {}
    print("| setting | CPU s per song | wall s per song |\n|---|---:|---:|")
    for name, (recipe, fonts, subset) in settings().items():
        paths = [resolve_soundfont(f) for f in fonts]
        r = for_subset(recipe, subset) if recipe else None
        render_song(0, subset, 99, 2.0, paths, recipe=r)  # warm caches (kits, imports)
        cpu, wall = cpu_seconds(), time.perf_counter()
        for i in range(args.songs):
            render_song(0, subset, i, args.seconds, paths, recipe=r)
        rows[name] = {"cpu_s_per_song": (cpu_seconds() - cpu) / args.songs,
                      "wall_s_per_song": (time.perf_counter() - wall) / args.songs}
        print(f"| {name} | {rows[name]['cpu_s_per_song']:.1f} | "
              f"{rows[name]['wall_s_per_song']:.1f} |", flush=True)
    from bsrnn_tf.fileio import atomic_write_text
    atomic_write_text(args.out, json.dumps({"songs": args.songs, "seconds": args.seconds,
                                            "cpus": os.cpu_count(), "rows": rows,
                                            "command": "python benchmarks/render.py " +
                                            " ".join(argv or sys.argv[1:])}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
