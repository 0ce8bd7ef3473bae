"""``bsrnn-tf`` command line: thin subcommands over the library API.

Every subcommand is testable as ``main([...])``, which returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from bsrnn_tf.console import quiet_tensorflow

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Commands with their own parsers, in bsrnn_tf.commands (each is also a
# script: python training/fit.py ... is bsrnn-tf fit ...): name -> help.
COMMANDS = {
    "fit": "train a separator (= python training/fit.py)",
    "evaluate": "score a separator on a dataset's test songs (= python training/evaluate.py)",
    "tune": "Keras Tuner search over a model's shape (= python training/tune.py)",
    "export": "SavedModel, TFLite and backbone exports (= python export/export.py)",
}


def _bands_list(args) -> int:
    from bsrnn_tf import bands
    print(f"band schemas at {args.sample_rate} Hz, n_fft {args.n_fft}:")
    for name, count in bands.describe(args.sample_rate, args.n_fft):
        print(f"  {name:<26} {count:>3} bands")
    print("  FILE.json                  a JSON list of band edges in Hz")
    return 0


def _ranges(args):
    from bsrnn_tf import bands
    return bands.band_ranges(args.name, args.sample_rate, args.n_fft, args.num_edges)


def _bands_show(args) -> int:
    ranges = _ranges(args)
    if args.json:
        print(json.dumps([list(r) for r in ranges]))
        return 0
    bin_hz = args.sample_rate / args.n_fft
    print(f"{args.name}: {len(ranges)} bands")
    for k, (a, b) in enumerate(ranges):
        print(f"  {k:>3}  bins {a:>4}..{b - 1:<4} ({b - a:>3} bins)  "
              f"{a * bin_hz:>8.1f} .. {(b - 1) * bin_hz:>8.1f} Hz")
    return 0


def _bands_plot(args) -> int:
    from bsrnn_tf import bands
    ranges = _ranges(args)
    title = (f"{args.name}{'' if args.num_edges is None else f' ({args.num_edges} edges)'}: "
             f"{len(ranges)} bands at {args.sample_rate} Hz, n_fft {args.n_fft}")
    bands.plot_bands(ranges, args.output, args.sample_rate, args.n_fft, title)
    print(f"wrote {args.output}")
    return 0


def _info(args) -> int:
    from bsrnn_tf.models import build_separator, count_parameters, preset
    config = preset(args.preset)
    if args.bands:
        config.bands = args.bands
    if args.num_edges is not None:
        config.num_edges = args.num_edges
    config.targets = list(args.targets)
    model = build_separator(config)
    print(json.dumps(model.model_config, indent=2, sort_keys=True))
    print(f"bands: {model.backbone.num_bands}")
    backbone = count_parameters(model.backbone)
    print(f"backbone: {backbone} parameters; each head: "
          f"{count_parameters(next(iter(model.heads.values())))} parameters")
    print(f"{count_parameters(model)} parameters")
    return 0


def _add_band_args(parser) -> None:
    parser.add_argument("name", help="v7, bass, drums, universal, or a JSON file of edges (Hz)")
    parser.add_argument("--num-edges", type=int, default=None,
                        help="universal only: use this many of its 120 edges, chosen evenly")
    parser.add_argument("--sample-rate", type=int, default=44100)
    parser.add_argument("--n-fft", type=int, default=2048)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bsrnn-tf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help in COMMANDS.items():  # listed here; main() hands them their arguments
        sub.add_parser(name, help=help, add_help=False)

    bands = sub.add_parser("bands", help="list, show and plot band schemas")
    bands_sub = bands.add_subparsers(dest="bands_command", required=True)
    p = bands_sub.add_parser("list", help="names of the schemas with their band counts")
    p.add_argument("--sample-rate", type=int, default=44100)
    p.add_argument("--n-fft", type=int, default=2048)
    p.set_defaults(func=_bands_list)
    p = bands_sub.add_parser("show", help="bin ranges of a schema")
    _add_band_args(p)
    p.add_argument("--json", action="store_true", help="print [[start, stop], ...] (stop exclusive)")
    p.set_defaults(func=_bands_show)
    p = bands_sub.add_parser("plot", help="draw a schema against musical notes (PNG)")
    _add_band_args(p)
    p.add_argument("-o", "--output", required=True, help="PNG file to write")
    p.set_defaults(func=_bands_plot)

    p = sub.add_parser("info", help="configuration and parameter count of a preset")
    p.add_argument("preset", help="paper, small or tiny")
    p.add_argument("--targets", nargs="+", default=["vocals"])
    p.add_argument("--bands", default=None, help="override the preset's band schema")
    p.add_argument("--num-edges", type=int, default=None)
    p.set_defaults(func=_info)

    p = sub.add_parser("add-heads", help="merge heads trained on a model's frozen backbone "
                                         "into that model: one separator for all targets")
    p.add_argument("base", help="the model whose backbone the heads were trained on (run "
                                "directory or .keras)")
    p.add_argument("heads", nargs="+", help="runs trained with fit.py --init-backbone BASE "
                                            "--freeze-backbone (each adds its targets)")
    p.add_argument("-o", "--output", required=True, help="new run directory (model.keras, "
                                                         "config.json)")
    p.add_argument("--replace", action="store_true",
                   help="a head for a target the base has replaces the base's head")
    p.set_defaults(func=_add_heads)

    _register_optional(sub)
    return parser


def _add_heads(args) -> int:
    from bsrnn_tf.config import ConfigError
    from bsrnn_tf.fileio import MODEL_FILE
    from bsrnn_tf.models import load_separator
    from bsrnn_tf.models.io import ModelLoadError, save_separator
    from bsrnn_tf.models.transfer import merge_heads

    out = args.output
    if os.path.exists(os.path.join(out, MODEL_FILE)) or out.endswith(".keras"):
        raise ConfigError(f"{out}: holds a model already (or is a file); give a new "
                                f"directory")
    try:
        base = load_separator(args.base)
        before = list(base.targets)
        others = [load_separator(path) for path in args.heads]
        merged = merge_heads(base, others, replace=args.replace, names=args.heads)
    except (ModelLoadError, ValueError) as e:
        raise ConfigError(str(e)) from None
    save_separator(merged, out)
    print(f"{out}: targets {' '.join(merged.targets)} (base {' '.join(before)}; one backbone "
          f"pass for all)")
    return 0


def _register_optional(sub) -> None:
    """Subcommands that live beside their modules."""
    from bsrnn_tf.datasets import cli as datasets_cli
    datasets_cli.register_cli(sub)
    from bsrnn_tf.inference import separate_cli
    separate_cli.register_cli(sub)
    from bsrnn_tf.inference import stream_cli
    stream_cli.register_cli(sub)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from bsrnn_tf.bands import BandSchemaError
    from bsrnn_tf.config import ConfigError
    from bsrnn_tf.datasets.cache import GenerationError
    from bsrnn_tf.data.musdb import DataError

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        import importlib
        command = importlib.import_module(f"bsrnn_tf.commands.{argv[0]}")
        return int(command.main(argv[1:], prog=f"bsrnn-tf {argv[0]}") or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        quiet_tensorflow()  # seconds of importing: a Ctrl-C here is one line too
        return int(args.func(args) or 0)
    except (BandSchemaError, ConfigError, DataError, GenerationError) as e:
        print(f"bsrnn-tf: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # subcommands that write say what they finished
        print(f"bsrnn-tf {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
