"""Real-time factor of separating one song with given model artifacts.

For each artifact (run directory / ``.keras``, SavedModel or ``.tflite``):
load it, separate 3 s once (tracing, warm-up), then time
``bsrnn_tf.separate`` on the whole song (loudness normalisation, overlap-add
at 0.25 overlap, all targets; no file I/O). RTF = seconds of audio per
second of wall time (above 1: faster than real time). The artifacts run in
turn in one process, so their ratio is measured under the same load.

    python benchmarks/artifact_rtf.py SONG.wav saved_models/bsrnn-cpu-mtl model.tflite
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("song", help="audio file to separate")
    p.add_argument("models", nargs="+", help="model artifacts")
    p.add_argument("--threads", type=int, default=2, help="TFLite interpreter threads")
    p.add_argument("--repeats", type=int, default=2, help="timed passes (the best is kept)")
    args = p.parse_args(argv)

    from bsrnn_tf.audio import load_audio
    from bsrnn_tf.inference.separate import open_model, separate

    audio, rate = load_audio(args.song)
    seconds = audio.shape[0] / rate
    print(f"{args.song}: {seconds:.1f} s at {rate} Hz")
    print("| artifact | best of %d passes (s) | RTF |\n|---|---:|---:|" % args.repeats)
    for path in args.models:
        backend = open_model(path, threads=args.threads)
        separate(audio[: 3 * rate], backend, sample_rate=rate)  # trace, warm up
        best = min(_timed(lambda: separate(audio, backend, sample_rate=rate))
                   for _ in range(args.repeats))
        print(f"| {path} ({backend.kind}) | {best:.2f} | {seconds / best:.1f}x |", flush=True)
    return 0


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    from bsrnn_tf.console import quiet_tensorflow

    quiet_tensorflow("3")  # TensorFlow's start-up notices filtered from stderr
    sys.exit(main())
