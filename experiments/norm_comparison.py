"""Chunk vs per-frame normalisation, for the v7 and the universal-41 band split.

Trains the ``cpu`` preset with ``--mtl`` four times with the same seed and
the same budget (epochs of the same examples), once per (norm, band split),
on the built-in sampled dataset, then evaluates each on the held-out songs
(a soundfont training never sees). Reports, per target, the validation and
test uSDR and the gain over the best-scaled mixture (the headline figure of
``training/evaluate.py``).

Every step is resumable: a run that has finished is not trained again (fit.py
resumes an interrupted one from its newest checkpoint) and a finished
evaluation is kept. Run it in the background::

    nohup .venv/bin/python experiments/norm_comparison.py --epochs 12 \\
        > scratch/norms.log 2>&1 &

Results: ``<out>/results.md`` and ``results.json`` (default
``experiments/results/norms``); run directories under ``--runs``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bsrnn_tf.fileio import atomic_write_text  # noqa: E402

RUNS = [("chunk", "universal"), ("frame", "universal"), ("chunk", "v7"), ("frame", "v7")]


def run_name(norm: str, bands: str) -> str:
    return f"cpu-mtl-{bands}-{norm}"


def fit(args, norm: str, bands: str) -> str:
    run_dir = os.path.join(args.runs, run_name(norm, bands))
    if os.path.exists(os.path.join(run_dir, "model.keras")) and _finished(run_dir, args.epochs):
        return run_dir
    cmd = [sys.executable, os.path.join(ROOT, "training", "fit.py"), "--mtl", "--preset", "cpu",
           "--norm", norm, "--bands", bands, "--epochs", str(args.epochs),
           "--seed", str(args.seed), "--run-dir", run_dir, "--name", run_name(norm, bands)]
    if bands == "universal":
        cmd += ["--num-edges", "41"]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return run_dir


def _finished(run_dir: str, epochs: int) -> bool:
    history = _history(run_dir)
    return bool(history) and history[-1]["epoch"] >= epochs


def _history(run_dir: str) -> list:
    try:
        with open(os.path.join(run_dir, "history.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return []


def evaluate(run_dir: str) -> dict:
    out = os.path.join(run_dir, "evaluation")
    results = os.path.join(out, "results.json")
    if not os.path.exists(results):
        cmd = [sys.executable, os.path.join(ROOT, "training", "evaluate.py"), "-m", run_dir,
               "-o", out]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    with open(results) as f:
        return json.load(f)


def summarise(run_dir: str, evaluation: dict) -> dict:
    history = _history(run_dir)
    last = history[-1]
    return {"epochs": last["epoch"],
            "epoch_seconds": sum(h["seconds"] for h in history),
            "valid_usdr": last["valid_usdr"], "valid_gain": last["valid_gain"],
            "test": evaluation["targets"]}


def table(results: dict) -> str:
    targets = list(next(iter(results.values()))["valid_gain"])
    lines = ["| run | epoch time (min) | " + " | ".join(
        f"{t} valid uSDR / gain" for t in targets) + " | " + " | ".join(
        f"{t} test uSDR / gain" for t in targets) + " | mean test gain |",
        "|---|---:|" + "---:|" * (2 * len(targets) + 1)]
    for name, r in results.items():
        valid = [f"{r['valid_usdr'][t]:.2f} / {r['valid_gain'][t]:+.2f}" for t in targets]
        test = [f"{r['test'][t]['usdr']:.2f} / {r['test'][t]['gain']:+.2f}" for t in targets]
        mean = sum(r["test"][t]["gain"] for t in targets) / len(targets)
        lines.append(f"| {name} | {r['epoch_seconds'] / 60:.1f} | " + " | ".join(valid)
                     + " | " + " | ".join(test) + f" | {mean:+.2f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", default=os.path.join(ROOT, "scratch", "norms"))
    p.add_argument("--out", default=os.path.join(ROOT, "experiments", "results", "norms"))
    args = p.parse_args()
    results = {}
    for norm, bands in RUNS:
        run_dir = fit(args, norm, bands)
        results[run_name(norm, bands)] = summarise(run_dir, evaluate(run_dir))
        os.makedirs(args.out, exist_ok=True)
        atomic_write_text(os.path.join(args.out, "results.json"),
                          json.dumps(results, indent=2) + "\n")
        atomic_write_text(os.path.join(args.out, "results.md"), table(results))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
