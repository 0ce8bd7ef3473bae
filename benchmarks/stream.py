"""Per-hop compute of the streaming TFLite graph on one core, against the
hop's duration (the real-time budget).

For each n_fft (hop = n_fft / 4) a ``cpu-stream`` sized causal model with
random weights (the speed does not depend on them) and four targets is
exported (:mod:`bsrnn_tf.deploy.stream`); each requested quantization's file
runs with one interpreter thread, the process pinned to one CPU core, over a
generated song hop by hop (``bsrnn_tf.inference.streaming.stream_song``: what
``bsrnn-tf stream`` does). The time of each call from Python (state in and
out included) is recorded, as wall time and as the CPU time of the calling
thread (the graph runs in it with one interpreter thread: its compute, without
the time other processes held the core, which dominates the wall-time p99 on a
loaded machine); the table gives p50, p99 and max per hop, and p99 as a
fraction of the hop (goal for int8: at most 0.5). The parity of each
file's stream against the offline Keras model on the same song is reported
too.

    python benchmarks/stream.py                                  # 2048 and 1024, float32 and int8
    python benchmarks/stream.py --n-fft 2048 --quantize dynamic-int8 --seconds 30

Writes ``benchmarks/results/stream.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from typing import Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))

TARGETS = ["drums", "bass", "other", "vocals"]


def run(n_fft: int, quantizations, seconds: float, warmup: int, work: str,
        norm: Optional[str] = None) -> list:
    from bsrnn_tf.config import StftConfig
    from bsrnn_tf.deploy.parity import music_chunks
    from bsrnn_tf.deploy.stream import export_stream, stream_parity
    from bsrnn_tf.inference.streaming import (TFLiteStream, TimedStep, algorithmic_latency,
                                              stream_song)
    from bsrnn_tf.models import build_separator, count_parameters, preset

    config = preset("cpu-stream")
    if norm:
        config.norm = norm
    config.stft = StftConfig(n_fft=n_fft, hop_length=n_fft // 4)
    model = build_separator(config, targets=TARGETS)
    out = os.path.join(work, str(n_fft))
    paths = export_stream(model, out, "bench", quantizations, parity=False)
    samples = int(seconds * model.sample_rate)
    track, chunks = music_chunks(model.sample_rate, samples, 2, 1)
    song = chunks[0]
    reference = {t: v.numpy()[0] for t, v in model(song[None], training=False).items()}
    rows = []
    for path, quantize in zip(paths[1:], quantizations):
        stream = TFLiteStream(path, num_threads=1)
        timed = TimedStep(stream)
        stream_song(timed, song[:warmup * model.hop_length], model.hop_length, n_fft,
                    stream.initial_state())
        timed.clear()
        stream_song(timed, song, model.hop_length, n_fft, stream.initial_state())
        parity = stream_parity(stream, track, song, reference)
        rows.append({"n_fft": n_fft, "hop_length": model.hop_length, "quantization": quantize,
                     "norm": config.norm, "bands": model.backbone.num_bands,
                     "parameters": count_parameters(model),
                     "file_bytes": os.path.getsize(path),
                     "latency": algorithmic_latency(n_fft, model.hop_length, model.sample_rate),
                     **timed.summary(model.hop_length / model.sample_rate),
                     "parity_vs_keras": {k: parity[k] for k in ("max_rel_error", "sdr_db")}})
        print(_line(rows[-1]), flush=True)
    return rows


def _line(r: dict) -> str:
    return (f"n_fft {r['n_fft']:>4} {r['quantization']:<13} hop {r['hop_ms']:5.2f} ms | wall "
            f"p50 {r['p50_ms']:6.3f} p99 {r['p99_ms']:6.3f} max {r['max_ms']:6.1f} "
            f"p99/hop {r['p99_over_hop']:.2f} | cpu p50 {r['cpu_p50_ms']:6.3f} "
            f"p99 {r['cpu_p99_ms']:6.3f} p99/hop {r['cpu_p99_over_hop']:.2f} | "
            f"latency {r['latency']['ms']:.1f} ms  "
            f"rel err {r['parity_vs_keras']['max_rel_error']:.1e}  "
            f"SDR {min(r['parity_vs_keras']['sdr_db'].values()):.0f} dB")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-fft", type=int, nargs="+", default=[2048, 1024])
    p.add_argument("--quantize", nargs="+", default=["none", "dynamic-int8"],
                   choices=["none", "float16", "dynamic-int8"])
    p.add_argument("--seconds", type=float, default=20.0, help="song length streamed")
    p.add_argument("--warmup", type=int, default=50, help="hops run before timing")
    p.add_argument("--core", type=int, default=None,
                   help="CPU core to pin to (default: the last one this process may use)")
    p.add_argument("--norm", choices=["frame", "cumulative"],
                   help="the causal model's norm (default: the cpu-stream preset's, "
                        "cumulative; figures measured before 2026-12-05 are of frame)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "stream.json"))
    args = p.parse_args(argv)
    allowed = sorted(os.sched_getaffinity(0))
    core = allowed[-1] if args.core is None else args.core
    os.sched_setaffinity(0, {core})
    from bsrnn_tf.console import quiet_tensorflow

    quiet_tensorflow("3")  # after pinning: TensorFlow's threads start on the core; start-up notices filtered
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for n_fft in args.n_fft:
            rows += run(n_fft, args.quantize, args.seconds, args.warmup, work, args.norm)
    report = {"machine": {"cpu_count": os.cpu_count(), "pinned_core": core,
                          "platform": platform.platform(), "loadavg_before": load_before,
                          "loadavg_after": os.getloadavg()},
              "command": " ".join(["python", "benchmarks/stream.py", *(argv or sys.argv[1:])]),
              "model": f"cpu-stream (norm {rows[0]['norm']}), 4 targets, random weights",
              "rows": rows}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    from bsrnn_tf.fileio import atomic_write_text
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
