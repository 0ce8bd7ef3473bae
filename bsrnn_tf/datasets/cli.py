"""``bsrnn-tf make-dataset``: writes either built-in dataset (synthesized
or sampled) to a folder, in the MUSDB18-HQ layout."""

from __future__ import annotations

import argparse
import os
import sys
import time

from bsrnn_tf.datasets.cache import GenerationError
from bsrnn_tf.datasets.sampled import add_cli_arguments
from bsrnn_tf.datasets.synth import (DEFAULT_SECONDS, DEFAULT_SEED, DEFAULT_TRACKS_TEST,
                                     DEFAULT_TRACKS_TRAIN, make_dataset)


def register_cli(subparsers) -> argparse.ArgumentParser:
    """Adds ``make-dataset OUT --tracks-train N --tracks-test M --seconds S
    --seed K`` to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "make-dataset", help="write the built-in generated multitrack dataset (MUSDB18-HQ layout)")
    parser.add_argument("out", metavar="OUT", help="output folder")
    parser.add_argument("--tracks-train", type=int, default=DEFAULT_TRACKS_TRAIN)
    parser.add_argument("--tracks-test", type=int, default=DEFAULT_TRACKS_TEST)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                        help="length of every track (s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--sample-rate", type=int, default=44100)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="processes rendering songs (the output does not depend on it)")
    add_cli_arguments(parser)  # --kind {synth,sampled} and the sampled options
    parser.set_defaults(func=_cli_make_dataset)
    return parser


def _cli_make_dataset(args: argparse.Namespace) -> int:
    sampled = getattr(args, "kind", "synth") == "sampled"
    common = dict(tracks_train=args.tracks_train, tracks_test=args.tracks_test,
                  seconds=args.seconds, seed=args.seed, sample_rate=args.sample_rate,
                  workers=args.workers)
    start = time.perf_counter()
    try:
        if sampled:
            from bsrnn_tf.datasets.sampled import make_sampled_dataset, recipes_from_args
            recipe, test_recipe, train_fonts = recipes_from_args(args)
            make_sampled_dataset(args.out, train_soundfonts=train_fonts,
                                 test_soundfonts=args.test_soundfonts,
                                 instrument_stems=args.instrument_stems, recipe=recipe,
                                 test_recipe=test_recipe, **common)
        else:
            make_dataset(args.out, **common)
    except GenerationError as e:
        print(f"bsrnn-tf make-dataset: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.tracks_train} train + {args.tracks_test} test {args.kind} tracks of "
          f"{args.seconds:g} s to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0
