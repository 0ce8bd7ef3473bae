"""Two training runs on one machine: TensorFlow's default thread pools against
one thread per run.

The experiments run two ``fit.py`` processes side by side on 2-core machines.
By default each TensorFlow process sizes its intra-op and inter-op pools to
every core, so two runs oversubscribe the cores. This script measures
training throughput (optimizer steps per second of the ``cpu`` preset, four
targets, batch 4, 2 s chunks, the BSRNN loss, Adam; generated audio, no input
pipeline) for each arrangement, its workers started together and timed over
the same window:

* ``1 run``: one process with TensorFlow's default threads (the machine to itself);
* ``2 runs, default``: two processes, default threads each;
* ``2 runs, T thread(s)``: two processes, each with ``T`` intra-op and ``T``
  inter-op threads (``--threads``, default 1; ``fit.py`` has no such option
  yet: this measurement decides whether it should).

Reported: steps/s of each process and of all together, and the total
against ``2 runs, default`` (measured in this run).

    python benchmarks/parallel_runs.py                     # about 6 minutes on 2 cores
    python benchmarks/parallel_runs.py --seconds 120 --threads 1 2

Writes ``benchmarks/results/parallel_runs.json``. Run it on an otherwise idle
machine: the comparison is the point.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = ["drums", "bass", "other", "vocals"]


def worker(threads: int, warmup: int, start_at: float, seconds: float) -> dict:
    """Trains the cpu preset on one fixed generated batch: ``warmup`` steps,
    then waits for ``start_at`` (wall clock, shared with the other workers)
    and counts steps for ``seconds``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    import numpy as np

    sys.path.insert(0, HERE)
    from model import train_step_function  # the step benchmarks/model.py times

    from bsrnn_tf.models import build_separator, preset

    model = build_separator(preset("cpu"), targets=TARGETS)
    rng = np.random.default_rng(0)
    mixture = (rng.standard_normal((4, 2 * model.sample_rate, 2)) * 0.1).astype(np.float32)
    run_step = train_step_function(model, mixture)

    def step():
        float(run_step())  # blocks until the step is done

    for _ in range(warmup):
        step()
    while time.time() < start_at:
        time.sleep(0.05)
    late = time.time() - start_at
    steps, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        step()
        steps += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"threads": threads, "steps": steps, "seconds": wall, "cpu_seconds": cpu,
            "steps_per_s": steps / wall, "late_start_s": late}


def arrangement(label: str, threads: list, warmup: int, seconds: float, grace: float) -> dict:
    """Starts one worker per entry of ``threads`` together; returns their results."""
    start_at = time.time() + grace
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker",
                               str(t), str(warmup), repr(start_at), repr(seconds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for t in threads]
    runs = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"{label}: a worker failed ({p.returncode}):\n{err[-3000:]}")
        runs.append(json.loads(out.strip().splitlines()[-1]))
    late = max(r["late_start_s"] for r in runs)
    total = sum(r["steps_per_s"] for r in runs)
    row = {"arrangement": label, "runs": runs, "total_steps_per_s": total,
           "late_start_s": late}
    per = ", ".join(f"{r['steps_per_s']:.3f}" for r in runs)
    print(f"{label:<24} total {total:.3f} steps/s  (per run {per}; started up to "
          f"{late:.1f} s late)", flush=True)
    return row


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        threads, warmup, start_at, seconds = argv[1:5]
        print(json.dumps(worker(int(threads), int(warmup), float(start_at), float(seconds))))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=90.0, help="timed window per arrangement")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per worker first")
    p.add_argument("--threads", type=int, nargs="+", default=[1],
                   help="threads per run of the 'two runs' arrangements besides the default")
    p.add_argument("--grace", type=float, default=60.0,
                   help="seconds for the workers to start, build and warm up before the window")
    p.add_argument("--out", default=os.path.join(HERE, "results", "parallel_runs.json"))
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    rows = [arrangement("1 run, default", [0], args.warmup, args.seconds, args.grace),
            arrangement("2 runs, default", [0, 0], args.warmup, args.seconds, args.grace)]
    for t in args.threads:
        rows.append(arrangement(f"2 runs, {t} thread(s)", [t, t], args.warmup, args.seconds,
                                args.grace))
    base = rows[1]["total_steps_per_s"]
    for r in rows:
        r["total_vs_2_runs_default"] = r["total_steps_per_s"] / base
    print("\n| arrangement | steps/s, all runs | per run | vs 2 runs, default |")
    print("|---|---:|---|---:|")
    for r in rows:
        per = " / ".join(f"{x['steps_per_s']:.3f}" for x in r["runs"])
        print(f"| {r['arrangement']} | {r['total_steps_per_s']:.3f} | {per} | "
              f"{r['total_vs_2_runs_default']:.2f}x |")
    report = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
              "command": " ".join(["python", "benchmarks/parallel_runs.py", *argv]),
              "model": "cpu preset, 4 targets, batch 4, 2 s chunks, generated audio",
              "rows": rows}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    from bsrnn_tf.fileio import atomic_write_text
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
