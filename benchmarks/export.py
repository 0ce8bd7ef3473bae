"""Per-chunk latency of every export of a model, in one run.

Keras (the model in a ``tf.function``), the SavedModel's ``serving_default``
and each TFLite file (waveform and spectrum variants in float32, float16 and
dynamic-range int8; interpreter with 1 and 2 threads) separate the same 3 s
stereo chunk of a generated song, batch 1. After one warm-up call each, the
candidates are called round-robin ``--repeats`` times, so load from other
processes falls on all of them alike; the table gives the median and the
minimum. Spectrum-variant times include the numpy STFT and iSTFT around the
interpreter (what an app pays). File sizes and the parity figures recorded
in ``export.json`` are listed too.

    python benchmarks/export.py                      # small preset, random weights
    python benchmarks/export.py --model saved_models/small-mtl-v7 --repeats 9

Writes ``benchmarks/results/export.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))


def prepare(args, work: str):
    """Saves (or takes) the model and exports SavedModel + all TFLite files."""
    from bsrnn_tf import deploy
    from bsrnn_tf.models import build_separator, preset, save_separator

    model_path = args.model
    if model_path is None:
        model_path = os.path.join(work, f"{args.preset}-random")
        save_separator(build_separator(preset(args.preset), targets=args.targets), model_path)
    start = time.time()
    results = deploy.export_model(model_path, os.path.join(work, "out"),
                                  formats=["savedmodel", "tflite"], name="bench",
                                  log=lambda m: print(f"[{time.time() - start:6.1f}s] {m}",
                                                      file=sys.stderr, flush=True))
    return model_path, results, time.time() - start


def candidates(model_path: str, results: dict) -> dict:
    """``{name: (backend, size in bytes, parity dict or None)}``."""
    from bsrnn_tf import deploy
    from bsrnn_tf.inference.backends import KerasBackend, load_backend
    from bsrnn_tf.models import load_separator

    saved = results["savedmodel"]
    with open(os.path.join(saved, "export.json")) as f:
        saved_info = json.load(f)
    segment = saved_info["model"]["segment_samples"]
    keras_model = deploy.cpu_copy(load_separator(model_path))
    out = {"keras tf.function": (KerasBackend(model_path, model=keras_model,
                                              segment_samples=segment), None, None),
           "savedmodel": (load_backend(saved), saved_info["size_bytes"],
                          saved_info.get("parity_vs_keras"))}
    tflite_dir = os.path.dirname(results["tflite"][0])
    with open(os.path.join(tflite_dir, "export.json")) as f:
        artifacts = json.load(f)["artifacts"]
    for path in results["tflite"]:
        entry = artifacts[os.path.basename(path)]
        label = f"tflite {entry['variant']} {deploy.QUANTIZATION_LABELS[entry['quantization']]}"
        for threads in (1, 2):
            out[f"{label} t{threads}"] = (load_backend(path, num_threads=threads),
                                          entry["size_bytes"], entry.get("parity_vs_keras"))
    return out


def measure(cands: dict, chunk, repeats: int) -> dict:
    """Round-robin timings: ``{name: [seconds, ...]}``."""
    for backend, _, _ in cands.values():
        backend(chunk)  # warm-up (tracing, allocation)
    times = {name: [] for name in cands}
    for _ in range(repeats):
        for name, (backend, _, _) in cands.items():
            start = time.perf_counter()
            backend(chunk)
            times[name].append(time.perf_counter() - start)
    return times


def table(rows: list) -> str:
    lines = [f"{'candidate':<32} {'MB':>7} {'median ms':>10} {'min ms':>8} {'vs keras':>9} "
             f"{'max abs err':>12} {'song SDR dB':>12}"]
    for r in rows:
        size = f"{r['size_bytes'] / 1e6:.2f}" if r["size_bytes"] else "-"
        err = f"{r['max_abs_error']:.1e}" if r["max_abs_error"] is not None else "-"
        sdr = f"{r['song_min_sdr_db']:.1f}" if r["song_min_sdr_db"] is not None else "-"
        lines.append(f"{r['name']:<32} {size:>7} {r['median_ms']:>10.1f} {r['min_ms']:>8.1f} "
                     f"{r['ratio_vs_keras']:>8.2f}x {err:>12} {sdr:>12}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="run directory or .keras file (default: a random "
                                        "model of --preset)")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--targets", nargs="+", default=["vocals"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "export.json"))
    args = parser.parse_args()

    import numpy as np

    from bsrnn_tf.deploy import music_chunks

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bsrnn-export-bench-") as work:
        model_path, results, export_seconds = prepare(args, work)
        cands = candidates(model_path, results)
        keras_backend = cands["keras tf.function"][0]
        _, chunk = music_chunks(keras_backend.sample_rate, keras_backend.segment_samples,
                                keras_backend.channels, 1, seed=1)
        times = measure(cands, chunk, args.repeats)
    keras_median = float(np.median(times["keras tf.function"]))
    rows = []
    for name, (_, size, parity) in cands.items():
        median = float(np.median(times[name]))
        rows.append({"name": name, "size_bytes": size, "median_ms": 1e3 * median,
                     "min_ms": 1e3 * min(times[name]), "ratio_vs_keras": median / keras_median,
                     "max_abs_error": parity["random_chunks"]["max_abs_error"] if parity else None,
                     "song_min_sdr_db": parity["song"]["min_sdr_db"] if parity else None,
                     "times_ms": [1e3 * t for t in times[name]]})
    print(table(rows))
    report = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
              "command": " ".join(sys.argv), "model": args.model or f"{args.preset} (random "
              f"weights, targets {args.targets})", "segment_samples":
              keras_backend.segment_samples, "export_seconds": export_seconds,
              "repeats": args.repeats, "results": rows}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(args.out), delete=False) as f:
        json.dump(report, f, indent=2)
    os.replace(f.name, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from bsrnn_tf.console import quiet_tensorflow

    quiet_tensorflow("3")  # TensorFlow's start-up notices filtered from stderr
    sys.exit(main())
