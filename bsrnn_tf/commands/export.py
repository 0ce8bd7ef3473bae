"""Export a trained separator: SavedModel for TF Serving, TFLite for devices,
and the backbone alone (a frozen feature extractor) with its heads.

Examples::

    # everything: SavedModel, 2 TFLite variants x 3 quantizations, backbone
    python export/export.py -m saved_models/small-mtl-v7 --format all -o saved_models/export
    # TF Serving only, 6 s chunks, a chosen model name
    python export/export.py -m run/model.keras --format savedmodel --segment 6 --name bsrnn \\
        -o saved_models/export
    # a causal model's streaming step (SavedModel + TFLite float32/float16/int8)
    python export/export.py -m saved_models/cpu-stream --format stream -o saved_models/export
    # the waveform TFLite model in float16 only
    python export/export.py -m saved_models/small-mtl-v7 --format tflite --variant waveform \\
        --quantize float16 -o saved_models/export

Layout under OUT: serving/<name>/<version>/ (TF Serving base path
OUT/serving/<name>; each export adds a version), tflite/<name>-<variant>-<q>.tflite,
backbone/ (backbone.keras, heads.keras and their SavedModels), stream/ (a causal
model's one-hop step: savedmodel/, <name>-stream-<q>.tflite). Each directory
carries config.json and export.json (parity against Keras, sizes).
Full-integer int8 is not offered: the TFLite converter crashes on Keras 3 LSTMs.
``bsrnn-tf export`` is the same command as ``python export/export.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bsrnn_tf.console import quiet_tensorflow  # noqa: E402
from bsrnn_tf.deploy import (FORMATS, QUANTIZATIONS, STREAM_FORMAT, VARIANTS,  # noqa: E402
                             ExportError, export_model)


PROG = "export.py"  # the name in messages (``bsrnn-tf export`` passes its own)


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("-m", "--model", required=True, help="run directory or .keras file")
    p.add_argument("-o", "--output", required=True, help="export root directory")
    p.add_argument("--format", nargs="+", default=["all"],
                   choices=[*FORMATS, STREAM_FORMAT, "all"],
                   help="what to export (default all; stream: a causal model's one-hop "
                        "streaming step, part of all for causal models)")
    p.add_argument("--quantize", nargs="+", default=["all"], choices=[*QUANTIZATIONS, "all"],
                   help="TFLite quantizations (default all): none = float32, float16 "
                        "weights, dynamic-int8 = int8 weights with float activations")
    p.add_argument("--variant", nargs="+", default=["all"], choices=[*VARIANTS, "all"],
                   help="TFLite variants (default all): waveform -> stems, or packed "
                        "spectrum -> packed masks (the app does STFT/iSTFT)")
    p.add_argument("--segment", type=float, metavar="SECONDS",
                   help="fixed chunk length (default: the model's training segment)")
    p.add_argument("--name", help="TF Serving model name (default: from the model path)")
    p.add_argument("--no-parity", action="store_true",
                   help="skip measuring parity against the Keras model")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the TFLite files and backbone/ of an earlier export into the "
                        "same -o (SavedModels get a new version either way)")
    p.add_argument("--threads", type=int, default=1,
                   help="TFLite interpreter threads for the parity runs (default 1)")
    return p


def _expand(values: Sequence[str], choices: Sequence[str]) -> list:
    return list(choices) if "all" in values else list(dict.fromkeys(values))


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """Exit status; ``prog`` names the command in usage and messages."""
    args = build_parser(prog).parse_args(argv)
    prog = prog or PROG
    quiet_tensorflow()
    start = time.time()

    def log(message: str) -> None:
        print(f"[{time.time() - start:6.1f}s] {message}", flush=True)

    try:
        formats = None if "all" in args.format else list(dict.fromkeys(args.format))
        results = export_model(args.model, args.output, formats,
                               _expand(args.variant, VARIANTS),
                               _expand(args.quantize, QUANTIZATIONS), args.segment, args.name,
                               parity=not args.no_parity, num_threads=args.threads, log=log,
                               overwrite=args.overwrite)
    except ExportError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; every artifact finished before it is complete (each is "
              "written under a temporary name, then renamed), none is half-written: run again "
              "with --overwrite to redo them all", file=sys.stderr)
        return 130
    print_summary(results)
    return 0


def print_summary(results: dict) -> None:
    """One line per artifact: size and the parity figures of export.json."""
    rows = []
    if "savedmodel" in results:
        data = _read(os.path.join(results["savedmodel"], "export.json"))
        rows.append((results["savedmodel"], data.get("size_bytes"), data.get("parity_vs_keras")))
    if "tflite" in results and results["tflite"]:
        data = _read(os.path.join(os.path.dirname(results["tflite"][0]), "export.json"))
        for path in results["tflite"]:
            entry = data["artifacts"][os.path.basename(path)]
            rows.append((path, entry["size_bytes"], entry.get("parity_vs_keras")))
    if "backbone" in results:
        data = _read(os.path.join(results["backbone"], "export.json"))
        rows.append((results["backbone"], sum(data["files"].values()), None))
    if STREAM_FORMAT in results:
        data = _read(os.path.join(results[STREAM_FORMAT][0], "..", "export.json"))
        for path in results[STREAM_FORMAT][1:]:
            entry = data["artifacts"][os.path.basename(path)]
            parity = entry.get("parity_vs_keras")
            rows.append((path, entry["size_bytes"], parity and {
                "random_chunks": {"max_abs_error": parity["max_abs_error"]},
                "song": {"min_sdr_db": min(parity["sdr_db"].values())}}))
    print(f"\n{'artifact':<64} {'MB':>7} {'max abs err':>12} {'song SDR dB':>12}")
    for path, size, parity in rows:
        err = f"{parity['random_chunks']['max_abs_error']:.2e}" if parity else "-"
        sdr = f"{parity['song']['min_sdr_db']:.1f}" if parity else "-"
        print(f"{path:<64} {(size or 0) / 1e6:>7.2f} {err:>12} {sdr:>12}")


def _read(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


if __name__ == "__main__":
    sys.exit(main())
