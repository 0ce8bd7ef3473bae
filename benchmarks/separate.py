"""Speed and memory of separating whole songs (``bsrnn_tf.separate``).

- Real-time factor (seconds of audio per second of wall time) of each preset
  (untrained weights; speed does not depend on them) on a 60 s stereo
  44.1 kHz file: reading, separating (normalisation, overlap-add, 3 s chunks
  at 0.25 overlap, 4 chunks per call) and writing the stems, with the model
  loaded and traced beforehand (as for the second file of a batch).
- Peak resident memory (``ru_maxrss``) of the whole job (model load, read,
  separate, write) for a short and a long file, each in a fresh process: the
  difference, set against the difference in size of the audio arrays
  themselves (input + one output per target, float32), shows whether
  anything else grows with the song's length.

- Peak resident memory of the command ``bsrnn-tf separate`` (which reads,
  separates and writes a block at a time) for a 1-minute and a 30-minute
  file, each in a fresh process (``--stream-memory-minutes``): it should not
  grow with the song.

    python benchmarks/separate.py                          # small and paper, with and without XLA
    python benchmarks/separate.py --presets small --memory-minutes 1 10
    python benchmarks/separate.py --presets --memory-minutes 0 0 --stream-memory-minutes 1 30 \
        --stream-model saved_models/bsrnn-cpu-mtl --out benchmarks/results/separate_stream.json

Table on stdout, JSON to ``benchmarks/results/separate.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))

RATE = 44100
TARGETS = ["drums", "bass", "other", "vocals"]


# ------------------------------------------------------------------ inputs

def write_song(path: str, seconds: float, seed: int = 0, block_seconds: float = 30.0) -> str:
    """A stereo int16 WAV of tones and noise, written in blocks (the parent
    process never holds the whole song)."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    total = int(seconds * RATE)
    block = int(block_seconds * RATE)
    with sf.SoundFile(path, "w", RATE, 2, subtype="PCM_16") as f:
        for start in range(0, total, block):
            t = (start + np.arange(min(block, total - start))) / RATE
            tone = 0.2 * np.sin(2 * np.pi * 110 * t) + 0.1 * np.sin(2 * np.pi * 880 * t)
            noise = 0.05 * rng.standard_normal((t.size, 2))
            f.write((tone[:, None] + noise).astype(np.float32))
    return path


# ---------------------------------------------------------- worker process

def worker(args) -> dict:
    """One measurement in this (fresh) process; returns a JSON-able dict."""
    import numpy as np

    from bsrnn_tf.audio import save_audio
    from bsrnn_tf.inference.separate import open_model, separate
    from bsrnn_tf.models import build_separator, preset, save_separator

    name, xla = args.preset.split("+")[0], args.preset.endswith("+xla")
    model_dir = os.path.join(args.work, f"{name}-random")
    if not os.path.exists(os.path.join(model_dir, "model.keras")):
        save_separator(build_separator(preset(name), targets=TARGETS), model_dir)
    start = time.perf_counter()
    backend = open_model(model_dir, jit_compile=xla)
    separate(np.zeros((backend.segment_samples, 2), np.float32), backend)  # trace
    ready = time.perf_counter() - start
    rss_ready = _maxrss_bytes()
    start = time.perf_counter()
    stems = separate(args.file, backend)
    separated = time.perf_counter() - start
    out = os.path.join(args.work, f"out-{os.getpid()}")
    for target, audio in stems.items():
        save_audio(os.path.join(out, f"{target}.wav"), audio, RATE, overwrite=True)
    total = time.perf_counter() - start
    samples = next(iter(stems.values())).shape[0]
    return {"preset": args.preset, "audio_seconds": samples / RATE,
            "load_and_trace_seconds": ready, "separate_seconds": separated,
            "total_seconds": total, "rtf_separate": samples / RATE / separated,
            "rtf_total": samples / RATE / total, "peak_rss_bytes": _maxrss_bytes(),
            "rss_after_load_bytes": rss_ready,
            "audio_array_bytes": samples * 2 * 4 * (1 + len(stems)),
            "targets": list(stems), "segment_samples": backend.segment_samples}


def stream_worker(args) -> dict:
    """``bsrnn-tf separate`` (streaming) of one file in this fresh process."""
    from bsrnn_tf.cli import main as cli

    model = args.preset
    if not os.path.exists(model):  # a preset: an untrained model of it
        from bsrnn_tf.models import build_separator, preset, save_separator
        model = os.path.join(args.work, f"{args.preset}-random")
        if not os.path.exists(os.path.join(model, "model.keras")):
            save_separator(build_separator(preset(args.preset), targets=TARGETS), model)
    out = os.path.join(args.work, f"stream-out-{os.getpid()}")
    start = time.perf_counter()
    code = cli(["separate", args.file, "-m", model, "-o", out, "--quiet", "--overwrite"])
    seconds = time.perf_counter() - start
    import soundfile as sf
    audio_seconds = sf.info(args.file).duration
    written = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(out)
                  for f in files)
    return {"model": args.preset, "exit_status": code, "audio_seconds": audio_seconds,
            "seconds": seconds, "rtf": audio_seconds / seconds,
            "peak_rss_bytes": _maxrss_bytes(), "stem_file_bytes": written}


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def run_worker(preset: str, file: str, work: str, kind: str = "--worker") -> dict:
    command = [sys.executable, os.path.abspath(__file__), kind, "--preset", preset,
               "--file", file, "--work", work]
    print(f"running {preset} on {os.path.basename(file)} ...", file=sys.stderr, flush=True)
    from model import run_json_worker
    return run_json_worker(command, f"{preset} worker")


# -------------------------------------------------------------------- main

def stream_table(stream: dict) -> str:
    lines = ["", f"`bsrnn-tf separate` ({stream['model']}): peak RSS of the whole command "
                 f"(fresh process)", "", "| audio (min) | peak RSS (MiB) | separate (s) | RTF |",
             "|---:|---:|---:|---:|"]
    for r in stream["runs"]:
        lines.append(f"| {r['audio_seconds'] / 60:.0f} | {r['peak_rss_bytes'] / 2 ** 20:.0f} | "
                     f"{r['seconds']:.0f} | {r['rtf']:.2f} |")
    lines.append(f"\npeak RSS changes by {stream['peak_growth_bytes'] / 2 ** 20:+.0f} MiB from "
                 f"{stream['short_seconds'] / 60:.0f} to {stream['long_seconds'] / 60:.0f} min")
    return "\n".join(lines)


def table(speed: list, memory: dict) -> str:
    lines = ["| preset | audio (s) | load + trace (s) | separate (s) | RTF separate "
             "| RTF incl. read/write |", "|---|---:|---:|---:|---:|---:|"]
    for r in speed:
        lines.append(f"| {r['preset']} | {r['audio_seconds']:.0f} | "
                     f"{r['load_and_trace_seconds']:.1f} | {r['separate_seconds']:.1f} | "
                     f"{r['rtf_separate']:.2f} | {r['rtf_total']:.2f} |")
    if memory:
        lines += ["", "| preset | audio (s) | peak RSS (MiB) | RSS after model load (MiB) "
                      "| audio arrays (MiB) |", "|---|---:|---:|---:|---:|"]
        for r in memory["runs"]:
            lines.append(f"| {r['preset']} | {r['audio_seconds']:.0f} | "
                         f"{r['peak_rss_bytes'] / 2 ** 20:.0f} | "
                         f"{r['rss_after_load_bytes'] / 2 ** 20:.0f} | "
                         f"{r['audio_array_bytes'] / 2 ** 20:.0f} |")
        lines.append(f"\npeak RSS grows by {memory['peak_growth_bytes'] / 2 ** 20:.0f} MiB from "
                     f"{memory['short_seconds']:.0f} s to {memory['long_seconds']:.0f} s; the audio "
                     f"arrays (input + {len(memory['runs'][0]['targets'])} stems, float32 stereo) "
                     f"grow by {memory['audio_growth_bytes'] / 2 ** 20:.0f} MiB: ratio "
                     f"{memory['growth_ratio']:.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="*", default=["small", "small+xla", "paper", "paper+xla"],
                   help="presets; NAME+xla compiles the model with XLA")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the RTF file")
    p.add_argument("--memory-preset", default="small")
    p.add_argument("--memory-minutes", type=float, nargs=2, default=[1.0, 10.0],
                   metavar=("SHORT", "LONG"), help="0 0: skip the memory measurement")
    p.add_argument("--stream-memory-minutes", type=float, nargs=2, default=[0.0, 0.0],
                   metavar=("SHORT", "LONG"),
                   help="peak RSS of the bsrnn-tf separate command for these song lengths "
                        "(default 0 0: skipped; the issue-26 figures: 1 30)")
    p.add_argument("--stream-model", default="tiny",
                   help="model for --stream-memory-minutes: a path, or a preset (untrained)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "separate.json"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--stream-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--preset", help=argparse.SUPPRESS)
    p.add_argument("--file", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    if args.stream_worker:
        print(json.dumps(stream_worker(args)))
        return 0
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as work:
        song = write_song(os.path.join(work, "song.wav"), args.seconds) if args.presets else ""
        speed = [run_worker(name, song, work) for name in args.presets]
        memory = {}
        if max(args.memory_minutes) > 0:
            short, long = (60.0 * m for m in args.memory_minutes)
            runs = [run_worker(args.memory_preset,
                               write_song(os.path.join(work, f"m{s:.0f}.wav"), s), work)
                    for s in (short, long)]
            growth = runs[1]["peak_rss_bytes"] - runs[0]["peak_rss_bytes"]
            audio = runs[1]["audio_array_bytes"] - runs[0]["audio_array_bytes"]
            memory = {"runs": runs, "short_seconds": short, "long_seconds": long,
                      "peak_growth_bytes": growth, "audio_growth_bytes": audio,
                      "growth_ratio": growth / audio}
        stream = {}
        if max(args.stream_memory_minutes) > 0:
            short, long = (60.0 * m for m in args.stream_memory_minutes)
            runs = []
            for s in (short, long):
                song = write_song(os.path.join(work, f"stream{s:.0f}.wav"), s)
                runs.append(run_worker(args.stream_model, song, work, "--stream-worker"))
                os.remove(song)
            stream = {"model": args.stream_model, "runs": runs, "short_seconds": short,
                      "long_seconds": long,
                      "peak_growth_bytes": runs[1]["peak_rss_bytes"] - runs[0]["peak_rss_bytes"]}
    if speed or memory:
        print(table(speed, memory))
    if stream:
        print(stream_table(stream))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                               "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
                   "command": " ".join(["python", "benchmarks/separate.py", *sys.argv[1:]]),
                   "speed": speed, "memory": memory, "stream_memory": stream}, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from bsrnn_tf.console import quiet_tensorflow

    quiet_tensorflow("3")  # TensorFlow's start-up notices filtered from stderr
    sys.exit(main())
